#!/usr/bin/env bash
# Builds, once, a Debian 12 chroot holding libvirt 11.3 and QEMU 10.0 from bookworm-backports,
# so that the end-to-end tests run against both the host's libvirt 9.0 + QEMU 7.2 and these
# (SEV_E2E_LIBVIRT=11, see tests/e2e/harness/) without replacing the host's own packages.
#
#   scripts/setup-libvirt11.sh          build the chroot if it is missing or stale, as root
#   scripts/setup-libvirt11.sh --check  exit 0 if it is ready, 1 if not (no changes)
#
# The chroot: debootstrap --variant=minbase bookworm, then from bookworm-backports the session
# daemon (libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients), qemu-system-x86, and
# python3 + python3-cryptography for the emulator wrapper (tests/sim/qemu_sev_wrapper.py runs
# with the chroot's python3 and execs the chroot's QEMU). All mounts needed while installing
# live in a private mount namespace, so nothing stays mounted on the host and an interrupted
# build is simply redone. apt's output goes to a log file; one line is printed.
#
# Location: $SEV_LIBVIRT11_ROOT, default /var/lib/virt-qemu-sev-validate/libvirt11-root
# (tests/e2e/harness/ reads the same variable). Mirror: $DEBIAN_MIRROR.
set -euo pipefail

ROOT=${SEV_LIBVIRT11_ROOT:-/var/lib/virt-qemu-sev-validate/libvirt11-root}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
LOG=${ROOT}.log
# What the chroot must hold; a change here rebuilds it (the stamp records this line).
PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86
    python3 python3-cryptography)
WANT="v1 bookworm-backports ${PACKAGES[*]}"
STAMP=$ROOT/.sev-e2e-ready

ready() {
    [[ -f $STAMP && $(head -n1 "$STAMP") == "$WANT" && -x $ROOT/usr/sbin/libvirtd &&
        -x $ROOT/usr/bin/qemu-system-x86_64 && -x $ROOT/usr/bin/python3 ]]
}

if [[ ${1:-} == --check ]]; then
    ready
    exit
fi

if ready; then
    echo "setup-libvirt11.sh: ready: $(sed -n 2p "$STAMP") in $ROOT"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "setup-libvirt11.sh: need root to build the libvirt 11 chroot in $ROOT" >&2
    exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "setup-libvirt11.sh: debootstrap missing (scripts/setup.sh installs it)" >&2
    exit 1
fi

t0=$(date +%s)
mkdir -p "$(dirname "$ROOT")"
: >"$LOG"
fail() {
    echo "setup-libvirt11.sh: $1 failed after $(($(date +%s) - t0)) s; last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2
    exit 1
}

# A finished debootstrap leaves apt-get and no debootstrap/ work directory; anything else is
# a partial tree from an interrupted run: start over. Mounts are only ever made in private
# namespaces (below), so removing the tree cannot reach into the host.
if [[ ! -x $ROOT/usr/bin/apt-get || -d $ROOT/debootstrap ]]; then
    rm -rf --one-file-system "$ROOT"
    debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >>"$LOG" 2>&1 || fail debootstrap
fi

cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates bookworm-backports
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
# No service may start inside the chroot while packages are configured.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# In a private mount namespace: /proc, /sys and /dev for the maintainer scripts, gone with
# the namespace when apt exits.
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
in_root apt-get install -y --no-install-recommends -t bookworm-backports "${PACKAGES[@]}" \
    >>"$LOG" 2>&1 || fail "apt-get install"
in_root apt-get clean >>"$LOG" 2>&1 || true

versions=$(in_root dpkg-query -W -f='${Package}=${Version} ' libvirt-daemon qemu-system-x86 python3)
printf '%s\n%s\n' "$WANT" "${versions% }" >"$STAMP"
echo "setup-libvirt11.sh: built in $(($(date +%s) - t0)) s: ${versions% } in $ROOT (log $LOG)"
