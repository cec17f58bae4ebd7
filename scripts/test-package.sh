#!/usr/bin/env bash
# Tries the Debian package as a new user would, on a clean Debian 12 that has libvirt's Python
# virt-qemu-sev-validate installed (libvirt-clients-qemu):
#
#   1. builds it (scripts/package.sh; or takes $SEV_PACKAGE_DEB) and runs lintian on it
#      (--display-info --pedantic: any tag not in debian/*.lintian-overrides fails);
#   2. on an overlay of the chroot scripts/setup-package-root.sh builds once, so that the chroot
#      itself stays clean: installs it with dpkg -i, and checks, against dpkg, man, bash-completion
#      and the Python tool itself, that `virt-qemu-sev-validate` is ours (--version, man -w, the
#      page's text, the bash completion), that an offline validation of a launch measured by the
#      simulated Secure Processor (tests/sim/sev_sp.py) passes with ours and with the Python tool
#      under its new name, and fails for a tampered firmware; installs libvirt-clients-qemu again
#      (its file goes to the new name) and ours again (the upgrade path);
#   3. purges it and checks that the Python tool and its page are back under their own names,
#      byte for byte as libvirt-clients-qemu shipped them, with no diversion left;
#   4. runs README's install -D lines after a stand-in for its cargo install into /usr/local,
#      and checks that man and bash-completion find what they installed.
#
# As root (chroot, mounts). Prints one "ok:" line per check; exits 1 at the first failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "test-package.sh: $*"; }
die() {
    echo "test-package.sh: FAIL: $*" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || die "needs root (a chroot and mounts)"

t0=$SECONDS
if [[ -n ${SEV_PACKAGE_DEB:-} ]]; then
    deb=$SEV_PACKAGE_DEB
else
    deb=$(scripts/package.sh | tail -n1)
fi
[[ -f $deb ]] || die "no package at '$deb'"
say "package: $deb ($((SECONDS - t0)) s)"

echo "== lintian $deb"
command -v lintian >/dev/null || die "lintian missing (scripts/setup.sh installs it)"
# As root, lintian adds a line saying it is not recommended; that line is not a tag.
lintian_out=$(mktemp)
fail_on=error,warning,info,pedantic
ignore='^$'
if [[ ${PACKAGE_PROFILE:-release} == dev ]]; then
    # The test build's executables (scripts/test.sh): the overrides for strings(1)'s reading of
    # the release build's machine code ("lengH", "ment") find nothing to override there, which
    # lintian reports as mismatched-override; every other tag still fails.
    fail_on=none
    ignore=': mismatched-override spelling-error-in-binary '
fi
set +e
lintian --display-info --pedantic --fail-on "$fail_on" "$deb" >"$lintian_out" 2>&1
lst=$?
set -e
grep -v 'running with root privileges is not recommended' "$lintian_out" || true
if grep -E '^[EWIPXC]: ' "$lintian_out" | grep -Evq "$ignore"; then
    lst=1
fi
rm -f "$lintian_out"
((lst == 0)) || die "lintian reports tags (above) that debian/virt-qemu-sev-validate.lintian-overrides does not explain"
say "ok: lintian: no tag left (overrides: $(grep -c '^[a-z]' debian/virt-qemu-sev-validate.lintian-overrides))"

echo "== the clean Debian 12 chroot (scripts/setup-package-root.sh)"
scripts/setup-package-root.sh
ROOT=${SEV_PACKAGE_ROOT:-/var/lib/virt-qemu-sev-validate/package-root}

# The offline validation's inputs, made outside the chroot by the simulated Secure Processor
# (an implementation that shares no code with the tool): a firmware image, a TEK+TIK file and
# the LAUNCH_MEASURE an SEV guest (policy 3, firmware only) would report.
work=$(mktemp -d /var/tmp/sev-test-package.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
mkdir -p "$work/upper" "$work/work" "$work/merged" "$work/in"
head -c 1048576 /dev/urandom >"$work/in/fw.bin"
head -c 32 /dev/urandom >"$work/in/tk.bin"
/usr/bin/python3 tests/sim/sev_sp.py measure --firmware "$work/in/fw.bin" --tk "$work/in/tk.bin" \
    --policy 3 --api-major 0 --api-minor 24 --build-id 13 >"$work/in/measurement"
cp "$deb" "$work/in/package.deb"
# README's other way: cargo install into /usr/local, then its install -D lines, run as written.
mkdir -p "$work/in/src/man"
cp man/virt-qemu-sev-validate.1 "$work/in/src/man/"
awk '/^## Install$/ { f = 1; next } /^## / { f = 0 } f && /^    / && /install -D/' README.md |
    sed 's/^    //' >"$work/in/readme-install.sh"
[[ $(wc -l <"$work/in/readme-install.sh") -ge 4 ]] ||
    die "README.md's Install section has no install -D lines for the man page and 3 completions"

# Everything below runs in a private mount namespace: the overlay, /proc and /dev vanish with
# it, and the chroot's tree is never written to.
unshare --mount --propagation private -- /bin/bash -c '
    set -e
    root=$1 work=$2
    mount -t overlay overlay -o "lowerdir=$root,upperdir=$work/upper,workdir=$work/work" "$work/merged"
    mount -t proc proc "$work/merged/proc"
    mount --rbind /dev "$work/merged/dev"
    mkdir -p "$work/merged/tmp/in"
    cp -r "$work"/in/* "$work/merged/tmp/in/"
    exec chroot "$work/merged" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        HOME=/root DEBIAN_FRONTEND=noninteractive /bin/bash -s' test-package "$ROOT" "$work" <<'IN_CHROOT'
set -euo pipefail
ok() { echo "ok: $*"; }
die() { echo "test-package.sh: FAIL (in the chroot): $*" >&2; exit 1; }
PKG=virt-qemu-sev-validate
BIN=/usr/bin/$PKG
PAGE=/usr/share/man/man1/$PKG.1.gz
# Only our page has this section; the Python tool's page does not.
OURS='DIFFERENCES FROM THE PYTHON TOOL'
# Whole outputs, not pipes into grep -q: with pipefail, a writer cut short by grep fails.
page_has() { zcat "$1" >/tmp/page.txt && grep -q "$2" /tmp/page.txt; }
# What libvirt-clients-qemu shipped, as dpkg recorded it.
md5_of() { md5sum "$1" | cut -d' ' -f1; }
shipped() { awk -v f="${1#/}" '$2 == f { print $1 }' /var/lib/dpkg/info/libvirt-clients-qemu.md5sums; }
is_python_tool() { # path of the executable, path of the page
    head -n1 "$1" | grep -q '^#!.*python3' || die "$1 is not the Python tool: $(head -c 80 "$1" | head -n1)"
    [[ $(md5_of "$1") == "$(shipped $BIN)" ]] || die "$1 differs from libvirt-clients-qemu's $BIN"
    [[ $(md5_of "$2") == "$(shipped $PAGE)" ]] || die "$2 differs from libvirt-clients-qemu's $PAGE"
    ! page_has "$2" "$OURS" || die "$2 has our page's text"
}
measure=$(cat /tmp/in/measurement)
validate() { # program, firmware; the README's offline example
    "$1" --measurement "$measure" --api-major 0 --api-minor 24 --build-id 13 --policy 3 \
        --firmware "$2" --tk /tmp/in/tk.bin
}

echo "== before: the Python tool of libvirt-clients-qemu $(dpkg-query -W -f='${Version}' libvirt-clients-qemu)"
is_python_tool $BIN $PAGE
ok "$BIN and $PAGE are libvirt-clients-qemu's"

echo "== dpkg -i"
dpkg -i /tmp/in/package.deb >/tmp/dpkg-i.log 2>&1 || { cat /tmp/dpkg-i.log; die "dpkg -i failed"; }
grep -F "diversion of $BIN to $BIN-python by $PKG" /tmp/dpkg-i.log
version=$(dpkg-query -W -f='${Version}' $PKG)
ok "installed $PKG $version"

checks_installed() {
    [[ $(dpkg-divert --truename $BIN) == $BIN-python ]] || die "$BIN is not diverted to $BIN-python"
    [[ $(dpkg-divert --truename $PAGE) == /usr/share/man/man1/$PKG-python.1.gz ]] ||
        die "$PAGE is not diverted"
    [[ $(dpkg-divert --listpackage $BIN) == "$PKG" ]] || die "the diversion of $BIN is not ours"
    ok "dpkg-divert: $BIN -> $BIN-python, $PAGE -> $PKG-python.1.gz, by $PKG"
    # dpkg -S names both packages for a diverted path, and the diversion.
    out=$(dpkg-query -S $BIN)
    grep -qx "diversion by $PKG from: $BIN" <<<"$out" || die "dpkg -S $BIN: $out"
    out=$($PKG --version)
    [[ $out == "$PKG $version"* ]] || die "$PKG --version: '$out', expected '$PKG $version...'"
    ok "$PKG --version: $out"
    is_python_tool $BIN-python /usr/share/man/man1/$PKG-python.1.gz
    $BIN-python --help >/tmp/py-help 2>&1 || { cat /tmp/py-help; die "$BIN-python --help failed"; }
    grep -q '^usage: ' /tmp/py-help || die "$BIN-python --help: no argparse usage"
    ok "$BIN-python is libvirt's Python tool, byte for byte, and runs: $(head -n1 /tmp/py-help)"
    [[ $(man -w $PKG) == "$PAGE" ]] || die "man -w $PKG: $(man -w $PKG)"
    out=$(dpkg-query -S $PAGE)
    grep -qx "diversion by $PKG from: $PAGE" <<<"$out" || die "dpkg -S $PAGE: $out"
    page_has "$PAGE" "$OURS" || die "$PAGE lacks '$OURS'"
    ok "man -w $PKG: $PAGE, ours ('$OURS')"
    [[ $(man -w $PKG-python) == /usr/share/man/man1/$PKG-python.1.gz ]] ||
        die "man -w $PKG-python: $(man -w $PKG-python)"
    # The -libvirt page is a link to ours (man-db may answer with either name).
    [[ $(readlink -f "$(man -w $PKG-libvirt)") == "$PAGE" ]] || die "man -w $PKG-libvirt: $(man -w $PKG-libvirt)"
    ok "man -w $PKG-python and $PKG-libvirt find their pages"
}
checks_installed

echo "== bash completion, loaded by bash-completion on demand"
bash_completes_gen() {
    local want got
    want=$($PKG --help | grep -o -- '--gen[a-z-]*' | sort -u)
    [[ -n $want ]] || die "--help lists no --gen... option"
    got=$(bash -c '
        source /usr/share/bash-completion/bash_completion
        __load_completion virt-qemu-sev-validate || exit 3
        fn=$(complete -p virt-qemu-sev-validate | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
        COMP_WORDS=(virt-qemu-sev-validate --gen) COMP_CWORD=1
        COMP_LINE="virt-qemu-sev-validate --gen" COMP_POINT=${#COMP_LINE}
        "$fn" virt-qemu-sev-validate --gen virt-qemu-sev-validate
        printf "%s\n" "${COMPREPLY[@]}"' | sort -u) || die "bash-completion did not load our completion"
    [[ $got == "$want" ]] || die "completing --gen gave '$got', --help lists '$want'"
    ok "bash: 'virt-qemu-sev-validate --gen<TAB>' completes to $got"
}
bash_completes_gen
for f in /usr/share/zsh/vendor-completions/_$PKG /usr/share/fish/vendor_completions.d/$PKG.fish; do
    grep -q -- generation "$f" || die "$f does not complete --generation"
done
ok "zsh and fish completions installed"
for f in result snp-report snp-validate snp-explanation; do
    [[ -s /usr/share/$PKG/schema/$f.schema.json ]] || die "schema $f missing"
done
ok "schemas in /usr/share/$PKG/schema/"

echo "== an offline validation (measurement from the simulated Secure Processor)"
validate $PKG /tmp/in/fw.bin || die "ours refused a good launch"
validate $PKG-python /tmp/in/fw.bin || die "the Python tool refused a good launch"
cp /tmp/in/fw.bin /tmp/fw-tampered.bin
printf '\x01' | dd of=/tmp/fw-tampered.bin bs=1 seek=4096 conv=notrunc status=none
set +e
validate $PKG /tmp/fw-tampered.bin >/dev/null 2>&1
st=$?
validate $PKG-python /tmp/fw-tampered.bin >/dev/null 2>&1
pst=$?
set -e
[[ $st == 1 && $pst == 1 ]] || die "a tampered firmware: exit $st (ours), $pst (Python), both should be 1"
ok "a good launch validates with both tools; a tampered firmware exits 1 with both"

echo "== libvirt-clients-qemu installed again while ours is, as by a security update"
dpkg -i /root/libvirt-clients-qemu_*.deb >/tmp/dpkg-i.log 2>&1 || { cat /tmp/dpkg-i.log; die "reinstalling libvirt-clients-qemu failed"; }
checks_installed

echo "== dpkg -i again (preinst upgrade, old postrm upgrade)"
dpkg -i /tmp/in/package.deb >/tmp/dpkg-i.log 2>&1 || { cat /tmp/dpkg-i.log; die "reinstalling failed"; }
checks_installed

echo "== dpkg --purge"
dpkg --purge $PKG 2>&1
is_python_tool $BIN $PAGE
ok "$BIN and $PAGE are libvirt-clients-qemu's again"
[[ ! -e $BIN-python && ! -e /usr/share/man/man1/$PKG-python.1.gz ]] || die "a -python name is left"
left=$(dpkg-divert --list | grep "by $PKG\$" || true)
[[ -z $left ]] || die "diversions left: $left"
[[ $(dpkg-divert --truename $BIN) == "$BIN" ]] || die "$BIN still diverted"
ok "no diversion by $PKG left"
[[ $(man -w $PKG) == "$PAGE" ]] || die "man -w $PKG after purge: $(man -w $PKG)"
[[ ! -e /usr/share/bash-completion/completions/$PKG && ! -e /usr/share/$PKG ]] || die "files left"
dpkg --verify libvirt-clients-qemu || die "dpkg --verify libvirt-clients-qemu"
$BIN --help >/tmp/py-help 2>&1 && grep -q '^usage: ' /tmp/py-help || die "$BIN --help after purge"
ok "dpkg --verify libvirt-clients-qemu is clean and $BIN runs the Python tool"

echo "== README's install without the package: cargo install --root /usr/local, then its install -D lines"
# cargo install's part, with the package's executables (no toolchain in the chroot).
mkdir -p /tmp/deb && dpkg-deb -x /tmp/in/package.deb /tmp/deb
install -m 755 /tmp/deb/usr/bin/$PKG /tmp/deb/usr/bin/$PKG-libvirt /usr/local/bin/
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin # root's PATH on Debian
(cd /tmp/in/src && set -x && . /tmp/in/readme-install.sh) || die "README's install -D lines failed"
[[ $(command -v $PKG) == /usr/local/bin/$PKG ]] || die "$PKG runs $(command -v $PKG)"
[[ $($PKG --version) == "$PKG $version"* ]] || die "$PKG --version: $($PKG --version)"
is_python_tool $BIN $PAGE
ok "$PKG is /usr/local/bin's; $BIN is still the Python tool"
# (Debian's /usr/local/man is a link to /usr/local/share/man; man-db may give either.)
[[ $(readlink -f "$(man -w $PKG)") == /usr/local/share/man/man1/$PKG.1 ]] || die "man -w $PKG: $(man -w $PKG)"
ok "man -w $PKG: /usr/local/share/man/man1/$PKG.1"
bash_completes_gen
IN_CHROOT
say "all checks passed in $((SECONDS - t0)) s"
