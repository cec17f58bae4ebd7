#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, unit and integration tests
# (public vectors, usage checks, secrets, differential tests against the
# Python tool, the man page), and the simulated Secure Processor's own checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
# The library without libvirt-dev and libssh2 (offline, QMP and SNP work only).
echo "== cargo build --no-default-features, and clippy for it"
cargo build --no-default-features --quiet
cargo clippy --no-default-features --quiet -- -D warnings
echo "== simulated Secure Processor against the public vectors"
SEV_VECTORS_DIR=${SEV_VECTORS_DIR:-../shared/vectors} /usr/bin/python3 tests/sim/test_sev_sp.py
echo "== fuzz targets, briefly, on the committed corpus (scripts/fuzz.sh for long runs)"
FUZZ_QUICK_SECONDS=${FUZZ_QUICK_SECONDS:-3} scripts/fuzz.sh --quick
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --all-targets 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# --all-targets leaves out the documentation's examples; run them too.
echo "== cargo test --doc"
cargo test --doc 2>&1 | tee -a "$log"
doc_status=${PIPESTATUS[0]}
[ "$status" -ne 0 ] || status=$doc_status
set -e
# One closing line over every test binary (some binaries hold no tests, and
# cargo's own last line is then theirs).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
