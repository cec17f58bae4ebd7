#!/usr/bin/env bash
# Installs what building, the demo and the tests need on Debian 12, as root.
# Idempotent: packages already installed are left alone.
set -euo pipefail

# Debian packages:
#   libvirt-clients-qemu  the Python virt-qemu-sev-validate, our differential oracle
#   python3-{libvirt,lxml,cryptography}  what that tool and tests/sim/sev_sp.py import
#   ovmf                  Debian's real OVMF images the tests and demo measure
#   time                  /usr/bin/time for the benchmark's peak memory
#   groff-base, man-db    to render and check the man page
PACKAGES=(
    libvirt-clients-qemu python3 python3-libvirt python3-lxml python3-cryptography
    ovmf time groff-base man-db python3-jsonschema python3-venv
    # the ssh2 crate (SFTP fingerprint of the host's files) links libssh2
    libssh2-1-dev libssl-dev
    # the openssl command line: an independent check of every SNP signature and chain verdict
    openssl
    # the guest side (tests/it/guest_report.rs): <linux/sev-guest.h>, which gcc compiles to
    # check the ioctl layouts, and fusepy, which serves the simulated configfs-tsm
    # (tests/sim/configfs_tsm.py) over /dev/fuse
    linux-libc-dev python3-fusepy
    # e2e (tests/e2e/e2e_libvirt.rs): a real session libvirtd driving real QEMU (TCG) through
    # tests/sim/qemu_sev_wrapper.py; libvirt-dev + pkg-config build the `virt` crate;
    # openssh + netcat-openbsd + iproute2 (veth into sshd's network namespace) for the
    # qemu+ssh:// cases; passwd (useradd) and util-linux (setpriv, unshare, nsenter) to run the
    # daemon as an unprivileged user with a hostname of its own
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config
    qemu-system-x86 openssh-server openssh-client netcat-openbsd iproute2 passwd util-linux hostname
    # the second e2e run's libvirt 11.3 + QEMU 10.0 live in a bookworm chroot
    # (scripts/setup-libvirt11.sh), so that the host keeps Debian 12's libvirt 9.0;
    # the Debian package is tried in another (scripts/setup-package-root.sh)
    debootstrap
    # the Debian package (scripts/package.sh: dpkg-buildpackage with debhelper) and its check
    # (scripts/test-package.sh: lintian)
    dpkg-dev debhelper lintian
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup.sh: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    # apt and dpkg's progress goes to a log file, not into the output of the
    # demo or the tests; one line says where, and a failure shows its end.
    log=${SETUP_LOG:-${TMPDIR:-/tmp}/virt-qemu-sev-validate-setup.log}
    echo "setup.sh: installing ${#missing[@]} Debian packages (${missing[*]}); apt's output: $log" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        echo "setup.sh: ERROR: installing the packages failed; the end of $log:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup.sh: cargo not found; install a current Rust toolchain (rustup) first" >&2
    exit 1
fi

# PyPI's sev-snp-measure, the oracle of the SNP differential tests, in a venv
# of its own (Debian's python3 keeps pip away from the system packages).
if [[ ! -x /opt/sev-snp-measure/bin/sev-snp-measure ]]; then
    echo "setup.sh: installing sev-snp-measure 0.0.13 from PyPI into /opt/sev-snp-measure" >&2
    /usr/bin/python3 -m venv /opt/sev-snp-measure
    /opt/sev-snp-measure/bin/pip install -q --disable-pip-version-check sev-snp-measure==0.0.13 >&2
fi

# PyPI's pyhpke, the independent HPKE of the SNP key release tests
# (tests/sim/snp_key_release.py), in a venv of its own.
if ! /opt/pyhpke/bin/python3 -c 'import pyhpke' >/dev/null 2>&1; then
    echo "setup.sh: installing pyhpke 0.6.5 from PyPI into /opt/pyhpke" >&2
    /usr/bin/python3 -m venv /opt/pyhpke
    /opt/pyhpke/bin/pip install -q --disable-pip-version-check pyhpke==0.6.5 >&2
fi
