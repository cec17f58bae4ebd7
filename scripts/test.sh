#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, unit and integration tests
# (public vectors, usage checks, secrets, differential tests against the
# Python tool, the man page), and the simulated Secure Processor's own checks. The end-to-end
# tests (real libvirtd and QEMU) then run a second time on libvirt 11.3 + QEMU 10.0 from
# bookworm-backports, in the chroot scripts/setup-libvirt11.sh builds, with the SEV-SNP domains
# (tests/e2e/e2e_snp.rs) that libvirt 9.0 cannot run, and the IGVM launch form on the QEMU with
# IGVM support scripts/setup-qemu-igvm.sh builds (tests/e2e/e2e_qemu_igvm.rs). Last, the Debian
# package is built (from the test build's executables: PACKAGE_PROFILE=dev), checked by lintian,
# and installed over libvirt's Python tool and purged in a clean Debian 12 chroot
# (scripts/test-package.sh, through tests/it/package.rs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# What the checkout looks like before the tests, to tell their changes from
# the developer's own.
before=$(git status --porcelain 2>/dev/null || true)

scripts/setup.sh
# On a fresh machine the chroot takes about 3 minutes, mostly downloads: built in the
# background while the lints and the first test run use the CPU.
lv11_out=$(mktemp)
scripts/setup-libvirt11.sh >"$lv11_out" 2>&1 &
lv11_pid=$!
# Likewise QEMU 10.2.2 with IGVM support (scripts/setup-qemu-igvm.sh: 9 to 16 minutes of
# compiling the first time, at nice 19); its tests (tests/e2e/e2e_qemu_igvm.rs) run in the
# second end-to-end pass, after it.
igvm_out=$(mktemp)
scripts/setup-qemu-igvm.sh >"$igvm_out" 2>&1 &
igvm_pid=$!
# Likewise the clean Debian 12 chroot the package is tried in (about 2 minutes the first time).
pkgroot_out=$(mktemp)
scripts/setup-package-root.sh >"$pkgroot_out" 2>&1 &
pkgroot_pid=$!

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
# The library without libvirt-dev and libssh2 (offline, QMP and SNP work only).
# clippy compiles it: a separate build would only compile it again.
echo "== cargo clippy --no-default-features -- -D warnings"
cargo clippy --no-default-features --quiet -- -D warnings
# The library's documentation: a link to a private item or a broken one fails.
echo "== cargo doc --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
echo "== simulated Secure Processor against the public vectors"
SEV_VECTORS_DIR=${SEV_VECTORS_DIR:-../shared/vectors} /usr/bin/python3 tests/sim/test_sev_sp.py
echo "== simulated SNP Secure Processor against the real SNP reports, AMD's certificates and openssl"
# RSA-4096 keys are made once and kept where the Rust tests keep theirs (tests/common/snp_sim.rs).
SNP_SP_KEYS=${SNP_SP_KEYS:-target/tmp/snp-sim-keys} SNP_VECTORS_DIR=${SNP_VECTORS_DIR:-../shared/snp-vectors} \
    /usr/bin/python3 tests/sim/test_snp_sp.py
echo "== fuzz targets, briefly, on the committed corpus (scripts/fuzz.sh for long runs)"
# Without AddressSanitizer here: the parsers under fuzzing hold no unsafe code, so in a few
# seconds per target it finds nothing the targets' own assertions and panics do not, and its
# build of every dependency costs about a minute; scripts/fuzz.sh's long runs keep it. Built
# unoptimised (with overflow checks) for the same reason: 1 minute instead of 2.
FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} FUZZ_PROFILE=${FUZZ_PROFILE:-dev} \
    FUZZ_QUICK_SECONDS=${FUZZ_QUICK_SECONDS:-3} scripts/fuzz.sh --quick
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log" "$lv11_out" "$igvm_out" "$pkgroot_out" "$pkg_out"' EXIT
set +e
# The SEV-SNP end-to-end tests run in the libvirt 11.3 pass below (tests/e2e/harness/, snp_pass);
# the Debian package's test (tests/it/package.rs) in its own pass at the end.
SEV_E2E_LIBVIRT11_PASS_FOLLOWS=1 SEV_TEST_PACKAGE=0 cargo test --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# --all-targets leaves out the documentation's examples; run them too. They
# read their fixtures with include_bytes!, so each file they read must be in
# the crate as cargo packages it (cargo package --list), or the examples would
# not build from crates.io.
echo "== cargo test --doc, and every file the examples read is in the package"
cargo test --doc 2>&1 | tee -a "$log"
doc_status=${PIPESTATUS[0]}
if ! packaged=$(cargo package --list --allow-dirty --quiet 2>&1) ||
    ! /usr/bin/python3 - "$packaged" <<'PY'
import os, pathlib, re, sys
listed = set(sys.argv[1].split())
missing = []
for f in pathlib.Path("src").rglob("*.rs"):
    for rel in re.findall(r'include_(?:bytes|str)!\("([^"]+)"\)', f.read_text()):
        path = os.path.normpath(os.path.join(f.parent, rel))
        if path not in listed:
            missing.append(f"{f}: {path}")
if missing:
    print("test.sh: files the code includes but cargo package leaves out:", *missing, sep="\n  ")
    sys.exit(1)
PY
then
    echo "test.sh: cargo package --list failed or leaves out included files" >&2
    doc_status=1
fi
[ "$status" -ne 0 ] || status=$doc_status
set -e

echo "== end-to-end again on libvirt 11.3 + QEMU 10.0 (SEV_E2E_LIBVIRT=11, chroot of scripts/setup-libvirt11.sh)"
if wait "$lv11_pid"; then
    cat "$lv11_out"
else
    cat "$lv11_out"
    # Without the chroot the tests below skip (SKIPPED lines); CI must have it.
    echo "test.sh: the libvirt 11 chroot could not be built" >&2
    [[ -z ${CI:-} ]] || status=1
fi
if wait "$igvm_pid"; then
    cat "$igvm_out"
else
    cat "$igvm_out"
    # Without it the IGVM tests below skip (SKIPPED lines); CI must have it.
    echo "test.sh: QEMU with IGVM support could not be built" >&2
    [[ -z ${CI:-} ]] || status=1
fi
t0=$SECONDS
set +e
SEV_E2E_LIBVIRT=11 cargo test --test e2e 2>&1 | tee -a "$log"
lv11_status=${PIPESTATUS[0]}
set -e
echo "== libvirt 11.3 + QEMU 10.0 end-to-end run: $((SECONDS - t0)) s"
((lv11_status == 0)) || status=$lv11_status

echo "== the Debian package: built, lintian, installed over libvirt's Python tool in a clean Debian 12 chroot, purged"
if wait "$pkgroot_pid"; then
    cat "$pkgroot_out"
else
    cat "$pkgroot_out"
    echo "test.sh: the package test's chroot could not be built" >&2
    [[ -z ${CI:-} ]] || status=1
fi
t0=$SECONDS
set +e
# The package of the executables cargo test built above (a release build would add minutes;
# scripts/package.sh alone makes the release package).
pkg_out=$(mktemp)
if PACKAGE_PROFILE=dev scripts/package.sh >"$pkg_out" 2>&1; then
    deb=$(tail -n1 "$pkg_out")
    echo "== package built: $deb ($((SECONDS - t0)) s)"
    # tests/it/package.rs runs scripts/test-package.sh on it (about 20 s); only that test, as the
    # package module's others ran above.
    PACKAGE_PROFILE=dev SEV_PACKAGE_DEB=$deb SEV_TEST_PACKAGE=1 \
        cargo test --test it package::package_installs 2>&1 | tee -a "$log"
    pkg_status=${PIPESTATUS[0]}
else
    tail -n 30 "$pkg_out"
    echo "test.sh: scripts/package.sh failed (its output's end above)" >&2
    pkg_status=1
fi
set -e
echo "== Debian package test: $((SECONDS - t0)) s"
((pkg_status == 0)) || status=$pkg_status
# One closing line over every test binary (some binaries hold no tests, and
# cargo's own last line is then theirs).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
# The tests must leave the checkout as they found it: a tracked file they
# rewrite (a lock file) or a file they leave behind is a bug of the tests.
# CI starts from a clean clone, so there it must end clean.
echo "== the tests left the checkout as they found it (git status --porcelain)"
if git rev-parse --git-dir >/dev/null 2>&1; then
    after=$(git status --porcelain)
    if [[ -n ${CI:-} ]]; then
        before=""
    fi
    if [[ $after != "$before" ]]; then
        echo "ERROR: the tests changed the checkout; git status --porcelain:" >&2
        diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed -n 's/^> /    /p' >&2
        git --no-pager diff --stat >&2
        exit 1
    fi
fi
exit "$status"
