#!/usr/bin/env bash
# Builds the Debian package target/debian/virt-qemu-sev-validate_<version>_<arch>.deb:
# both executables (release build, --locked), the manual page, bash, zsh and fish completions
# written by the built program, the JSON schemas, README.md, SECURITY.md and a machine-readable
# copyright. Installing it diverts libvirt's Python tool to virt-qemu-sev-validate-python
# (debian/virt-qemu-sev-validate.preinst). Install with
#
#   apt install ./target/debian/virt-qemu-sev-validate_0.1.0_amd64.deb
#
# Why dpkg-buildpackage with debhelper (debian/) rather than cargo-deb: every tool that builds
# the package then comes from Debian's signed archive (a security tool should not need one more
# program compiled from crates.io to be packaged), and debhelper does what Debian policy and
# lintian expect by itself: stripping, gzip -9n of the manual page and changelog,
# dpkg-shlibdeps for Depends, md5sums, and the #DEBHELPER# parts of the maintainer scripts.
#
# Installs the build dependencies (debian/control) when missing, as root; cargo must be on
# PATH (rustup). The build's output goes to stderr; stdout is the path of the package alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "package.sh: $*" >&2; }

if ! command -v dpkg-buildpackage >/dev/null 2>&1 || ! command -v dh >/dev/null 2>&1 ||
    ! dpkg-checkbuilddeps >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
        say "need root to install the build dependencies:"
        dpkg-checkbuilddeps >&2 || true
        exit 1
    fi
    log=${TMPDIR:-/tmp}/virt-qemu-sev-validate-package-apt.log
    say "installing the build dependencies (dpkg-dev, debhelper, debian/control's Build-Depends); apt's output: $log"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends dpkg-dev debhelper &&
        apt-get build-dep -y -qq --no-install-recommends ./; } >"$log" 2>&1; then
        say "ERROR: installing the build dependencies failed; the end of $log:"
        tail -n 20 "$log" >&2
        exit 1
    fi
fi
if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found; install a current Rust toolchain (rustup) first"
    exit 1
fi

# debian/changelog names the package's version; it must be the crate's.
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
deb_version=$(dpkg-parsechangelog -S Version)
if [[ $crate_version != "$deb_version" ]]; then
    say "ERROR: debian/changelog is at $deb_version, Cargo.toml at $crate_version; add a debian/changelog entry (dch -v $crate_version)"
    exit 1
fi

target=${CARGO_TARGET_DIR:-target}
out=$target/debian
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$out/virt-qemu-sev-validate_${deb_version}_${arch}.deb
mkdir -p "$out"
rm -f "$deb"

# -b: the binary package only. The .changes and .buildinfo (upload metadata, not needed to
# install) go to target/debian/ too, not to the directory above the checkout; debian/rules
# puts the .deb there. --no-pre-clean keeps the cargo build cache (debian/rules clean would
# not remove it anyway).
t0=$SECONDS
if [[ ${PACKAGE_PROFILE:-release} == dev ]]; then
    say "PACKAGE_PROFILE=dev: packaging the test build's executables (target/debug), for testing the packaging only"
fi
say "building $deb (cargo build --locked, ${PACKAGE_PROFILE:-release} profile, then debhelper)"
dpkg-buildpackage -b --no-sign --no-pre-clean \
    --buildinfo-option=-u"$out" --buildinfo-option=-O"$out/virt-qemu-sev-validate_${deb_version}_${arch}.buildinfo" \
    --changes-option=-u"$out" --changes-option=-O"$out/virt-qemu-sev-validate_${deb_version}_${arch}.changes" >&2
# debhelper's work tree (debian/virt-qemu-sev-validate/ and its logs) goes; the checkout stays
# as it was.
debian/rules clean >/dev/null
say "built in $((SECONDS - t0)) s"
[[ -f $deb ]] || { say "ERROR: $deb was not made"; exit 1; }
echo "$deb"
