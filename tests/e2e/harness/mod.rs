//! End-to-end harness: a REAL unprivileged libvirtd (session mode) driving REAL QEMU (TCG)
//! whose emulator is `tests/sim/qemu_sev_wrapper.py`, which simulates the AMD SEV firmware on
//! the QMP monitor. SEV / SEV-ES domains can then be started paused, measured through
//! `virDomainGetLaunchSecurityInfo` and given secrets through
//! `virDomainSetLaunchSecurityState`, exactly as on SEV hardware (see
//! shared/spec/e2e-libvirt.md). On libvirt 11.3, SEV-SNP domains ([`SnpSpec`]) start too, and
//! their ID block is checked at `virsh resume` as SNP_LAUNCH_FINISH checks it
//! (shared/spec/snp-libvirt.md).
//!
//! The e2e test binary's `harness` module (tests/e2e/main.rs; the demos in examples/ include it
//! with `#[path]`). [`Host::shared`] is one daemon per test binary, torn down at exit;
//! [`Host::start`] a daemon torn down on drop.
//!
//! Two libvirt/QEMU versions ([`Libvirt`], chosen by `SEV_E2E_LIBVIRT`): the host's own
//! (Debian 12: libvirt 9.0, QEMU 7.2), or, with `SEV_E2E_LIBVIRT=11`, libvirt 11.3 and QEMU
//! 10.0 from bookworm-backports in the chroot `scripts/setup-libvirt11.sh` builds. The chroot's
//! daemon, python3 and QEMU run in a private mount namespace where the temporary directory is
//! bind-mounted at the same path, so the domain XML's paths, the wrapper script and the socket
//! mean the same on both sides; clients (virsh, the validators, sshd) stay on the host and
//! speak libvirt's RPC to the newer daemon.
//!
//! Layout of the temporary directory (owned by the daemon's user, `sevtest` when run as root):
//! ```text
//! bin/qemu-system-x86_64   generated shell script: SEV_WRAPPER_CONFIG=... exec python3 wrapper
//! sim/                     copies of qemu_sev_wrapper.py and sev_sp.py, and of PyPI
//!                          sev-snp-measure's `sevsnpmeasure` (SNP digests; libvirt 11 only)
//! config.json tik.bin tek.bin
//! fw/OVMF.fd               copy of Debian's /usr/share/ovmf/OVMF.fd (SEV firmware-only, SEV-ES)
//! fw/OVMF-hashes.fd        the same with a usable kernel hashes area (0x80FC00, 0x400)
//! fw/OVMF-snp.fd           the same with an SNP_KERNEL_HASHES metadata section (SEV-SNP)
//! fw/vmlinuz fw/initrd.img small random files (measured, never booted)
//! home/ run/ config/ cache/  the daemon's HOME and XDG_* dirs; run/libvirt/libvirt-sock
//! state/record.json        what the wrapper recorded: launches, injected secrets, conts and
//!                          SNP_LAUNCH_FINISH verdicts
//! state/wrapper.log libvirtd.log   logs (printed when something fails)
//! ssh/                     sshd config, keys and logs when the ssh transport is used
//! ```
//!
//! When run as root, the daemon runs in its own UTS namespace with hostname
//! [`DAEMON_HOSTNAME`], so `virConnectGetHostname` differs from the test's hostname. Clients
//! on the "hypervisor host" run in that namespace ([`Side::OnHost`], via nsenter); clients
//! "elsewhere" use `qemu+ssh://` ([`Host::ssh_uri`]) to an sshd in that UTS namespace and in a
//! network namespace of its own, reached over a veth pair at an address the test machine does
//! not have: the connection is remote by every test a validator can make.
//!
//! Files: `daemon.rs` (the [`Host`]: work directory, keys, firmware, emulator script, daemon),
//! `domain.rs` (domain XML templates, virsh), `records.rs` (what the simulated firmware
//! recorded), `ssh.rs` (the `qemu+ssh://` host), `clients.rs` (running the validators),
//! `teardown.rs` (logs, teardown), `libvirt.rs` (the two versions, the chroot), `firmware.rs`
//! (patched OVMF images) and `process.rs` (commands with a timeout).
#![allow(dead_code)]

mod clients;
mod daemon;
mod domain;
mod firmware;
mod libvirt;
mod process;
mod records;
mod ssh;
mod teardown;

// The harness as one module; each includer (the e2e tests, the demos) uses a part of it.
#[allow(unused_imports)]
pub use self::{
    clients::*, daemon::*, domain::*, firmware::*, libvirt::*, process::*, records::Injection,
};

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

pub const LIBVIRTD: &str = "/usr/sbin/libvirtd";
pub const VIRSH: &str = "/usr/bin/virsh";
pub const REAL_QEMU: &str = "/usr/bin/qemu-system-x86_64";
pub const PYTHON: &str = "/usr/bin/python3";
pub const DEBIAN_OVMF: &str = "/usr/share/ovmf/OVMF.fd";
pub const PY_VALIDATOR: &str = "/usr/bin/virt-qemu-sev-validate";
pub const SSHD: &str = "/usr/sbin/sshd";
pub const SSH: &str = "/usr/bin/ssh";
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
pub const IP: &str = "/usr/sbin/ip";
/// The daemon's hostname (in its own UTS namespace). It has a dot so that libvirt's
/// virGetHostname returns it as is, without a DNS lookup.
pub const DAEMON_HOSTNAME: &str = "sev-host.test";
/// The unprivileged user that runs the daemon when the tests run as root.
pub const USER: &str = "sevtest";
/// What the simulated firmware reports in query-sev.
pub const API_MAJOR: u32 = 1;
pub const API_MINOR: u32 = 55;
pub const BUILD_ID: u32 = 21;
/// The kernel command line of the direct-boot template.
pub const CMDLINE: &str = "console=ttyS0 root=/dev/vda1 quiet";
/// Hash area patched into the copy of Debian's OVMF.fd for kernel hashes.
pub const HASH_AREA_BASE: u32 = 0x80FC00;
pub const HASH_AREA_SIZE: u32 = 0x400;
/// The OVMF footer entry of the SEV secret area, `{u32 base; u32 size}`.
pub const SECRET_AREA_GUID: &str = "4c2eb361-7d9b-4cc3-8081-127c90d3d294";

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn getuid() -> u32;
    fn getpid() -> i32;
    fn atexit(cb: extern "C" fn()) -> i32;
}
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

// Included here, not taken from tests/common, so that the demos (examples/) can include the
// harness alone; in the e2e binary it is then loaded twice.
#[allow(clippy::duplicate_mod)]
#[path = "../../common/skip.rs"]
mod skip;
#[allow(unused_imports)]
pub use skip::skip_or_fail;

fn random_bytes(n: usize) -> Vec<u8> {
    let mut f = fs::File::open("/dev/urandom").expect("/dev/urandom");
    let mut v = vec![0u8; n];
    f.read_exact(&mut v).expect("read /dev/urandom");
    v
}

fn write_file(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}
