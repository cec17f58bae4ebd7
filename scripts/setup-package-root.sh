#!/usr/bin/env bash
# Builds, once, a clean Debian 12 chroot in which scripts/test-package.sh installs and purges
# our .deb: a machine as a new user has it, with libvirt's Python virt-qemu-sev-validate
# (libvirt-clients-qemu) already installed, so that the diversion is tried on the real file.
#
#   scripts/setup-package-root.sh          build the chroot if it is missing or stale, as root
#   scripts/setup-package-root.sh --check  exit 0 if it is ready, 1 if not (no changes)
#
# The chroot: debootstrap --variant=minbase bookworm, then libvirt-clients-qemu (the Python
# tool) with python3-lxml and python3-cryptography, which it imports without depending on them
# (a user of that tool has installed them), man-db (man -w), bash-completion (the completion loader), and
# libvirt0, named because our package depends on it (python3-libvirt brings it too; our other
# Depends, libssl3 and zlib1g, come with python3), so that dpkg -i needs no network. No
# Recommends: the smallest machine that has the Python tool. The .deb of libvirt-clients-qemu
# stays in /root, so that the test can install it again over the diversion without network.
# The tests never change it: scripts/test-package.sh works on an overlay of it. All mounts
# live in a private mount namespace; an interrupted build is simply redone.
#
# Location: $SEV_PACKAGE_ROOT, default /var/lib/virt-qemu-sev-validate/package-root.
# Mirror: $DEBIAN_MIRROR.
set -euo pipefail

ROOT=${SEV_PACKAGE_ROOT:-/var/lib/virt-qemu-sev-validate/package-root}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
LOG=${ROOT}.log
# What the chroot must hold; a change here rebuilds it (the stamp records this line).
PACKAGES=(libvirt-clients-qemu python3-lxml python3-cryptography man-db bash-completion libvirt0)
WANT="v2 bookworm ${PACKAGES[*]}, libvirt-clients-qemu's .deb in /root"
STAMP=$ROOT/.sev-package-ready

ready() {
    [[ -f $STAMP && $(head -n1 "$STAMP") == "$WANT" && -x $ROOT/usr/bin/virt-qemu-sev-validate &&
        -x $ROOT/usr/bin/man && -x $ROOT/usr/bin/python3 ]] &&
        compgen -G "$ROOT/root/libvirt-clients-qemu_*.deb" >/dev/null
}

if [[ ${1:-} == --check ]]; then
    ready
    exit
fi

if ready; then
    echo "setup-package-root.sh: ready: $(sed -n 2p "$STAMP") in $ROOT"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "setup-package-root.sh: need root to build the chroot in $ROOT" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "setup-package-root.sh: debootstrap missing (scripts/setup.sh installs it)" >&2
    exit 1
fi

t0=$(date +%s)
mkdir -p "$(dirname "$ROOT")"
: >"$LOG"
fail() {
    echo "setup-package-root.sh: $1 failed after $(($(date +%s) - t0)) s; last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2
    exit 1
}

# Anything but a finished build (the stamp is written last) starts over: a chroot that a
# package was installed into by hand is not the clean machine the test needs either.
rm -rf --one-file-system "$ROOT"
debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >>"$LOG" 2>&1 || fail debootstrap

cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -f "$ROOT/etc/apt/sources.list"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

in_root() {
    unshare --mount --propagation private -- /bin/sh -c '
        root=$1; shift
        mount -t proc proc "$root/proc" &&
        mount --rbind /sys "$root/sys" &&
        mount --rbind /dev "$root/dev" &&
        exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C \
            DEBIAN_FRONTEND=noninteractive "$@"' in_root "$ROOT" "$@"
}

in_root apt-get update >>"$LOG" 2>&1 || fail "apt-get update"
in_root apt-get install -y --no-install-recommends "${PACKAGES[@]}" >>"$LOG" 2>&1 || fail "apt-get install"
# The installed libvirt-clients-qemu's own .deb, for the test to install it again while ours
# is installed, as a security update of libvirt would.
in_root /bin/sh -c 'cd /root && apt-get download libvirt-clients-qemu' >>"$LOG" 2>&1 ||
    fail "apt-get download libvirt-clients-qemu"
in_root apt-get clean >>"$LOG" 2>&1 || true

versions=$(in_root dpkg-query -W -f='${Package}=${Version} ' libvirt-clients-qemu man-db bash-completion)
printf '%s\n%s\n' "$WANT" "${versions% }" >"$STAMP"
echo "setup-package-root.sh: built in $(($(date +%s) - t0)) s: ${versions% } in $ROOT (log $LOG)"
