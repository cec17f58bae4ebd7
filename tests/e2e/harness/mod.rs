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
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

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
const HASH_AREA_GUID: &str = "7255371f-3a3b-4b04-927b-1da6efa8d454";
/// The OVMF footer entry of the SEV secret area, `{u32 base; u32 size}`.
pub const SECRET_AREA_GUID: &str = "4c2eb361-7d9b-4cc3-8081-127c90d3d294";
const FOOTER_GUID: &str = "96b582de-1fb2-45f7-baea-a366c55a082d";

/// Runs its arguments as a child and reaps every orphan that is reparented to it. libvirt
/// daemonizes QEMU, so a QEMU that exits becomes a zombie of whatever reaps orphans; on hosts
/// whose init reaps slowly, `virsh destroy` then waits (libvirt polls the pid) for about a
/// second per domain. As a child subreaper this process reaps them at once. Signals are
/// forwarded; it exits with the child.
const REAPER: &str = r#"
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
def forward(sig, _frame):
    try:
        os.kill(pid, sig)
    except OSError:
        pass
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, forward)
while True:
    try:
        p, st = os.wait()
    except ChildProcessError:
        sys.exit(0)
    if p == pid:
        sys.exit(os.waitstatus_to_exitcode(st) & 0xFF)
"#;

/// How long one virsh / validator command may take before the harness kills it.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn getuid() -> u32;
    fn getpid() -> i32;
    fn atexit(cb: extern "C" fn()) -> i32;
}
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// Processes still running that a host with work directory `dir` started:
/// libvirtd, the virtlogd it spawns, QEMU and whatever they run all inherit
/// HOME and XDG_RUNTIME_DIR under `dir`, a fresh temporary directory, so
/// their environment names it. As (pid, command name).
pub fn processes_started_in(dir: &Path) -> Vec<(i32, String)> {
    let needle = dir.to_string_lossy().into_owned().into_bytes();
    let me = unsafe { getpid() };
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = fs::read(e.path().join("environ")) else {
            continue;
        };
        let ours = env.split(|&b| b == 0).any(|var| {
            let value = var.splitn(2, |&b| b == b'=').nth(1).unwrap_or(&[]);
            value.starts_with(&needle)
        });
        if ours {
            let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            found.push((pid, comm.trim().to_string()));
        }
    }
    found
}

// Included here, not taken from tests/common, so that the demos (examples/) can include the
// harness alone; in the e2e binary it is then loaded twice.
#[allow(clippy::duplicate_mod)]
#[path = "../../common/skip.rs"]
mod skip;
#[allow(unused_imports)]
pub use skip::skip_or_fail;

/// Which libvirt daemon and QEMU the harness runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libvirt {
    /// The host's own: Debian 12's libvirt 9.0 and QEMU 7.2.
    V9,
    /// bookworm-backports' libvirt 11.3 and QEMU 10.0 in the chroot of
    /// `scripts/setup-libvirt11.sh` ([`libvirt11_root`]).
    V11,
}

/// Whether a test that needs SEV-SNP (libvirt 10.5+, QEMU 9.1+) runs in this pass: only with
/// `SEV_E2E_LIBVIRT=11`. scripts/test.sh runs the end-to-end tests once per libvirt version
/// and sets `SEV_E2E_LIBVIRT11_PASS_FOLLOWS` for the libvirt 9.0 pass: such a test then says
/// where it runs. Otherwise a SKIPPED line, or a failure in CI.
pub fn snp_pass(test: &str) -> bool {
    if Libvirt::from_env() == Libvirt::V11 {
        return true;
    }
    if std::env::var_os("SEV_E2E_LIBVIRT11_PASS_FOLLOWS").is_some() {
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!("NOTE: {test}: runs in the libvirt 11.3 + QEMU 10.0 pass that follows (libvirt 9.0 \
             and QEMU 7.2 have no SEV-SNP)\n"),
        );
        return false;
    }
    skip_or_fail(
        test,
        "libvirt 9.0 and QEMU 7.2 have no SEV-SNP: run with SEV_E2E_LIBVIRT=11 (scripts/test.sh does)",
    );
    false
}

impl Libvirt {
    /// `SEV_E2E_LIBVIRT`: unset, empty or `9` for the host's, `11` for the chroot's.
    pub fn from_env() -> Libvirt {
        match std::env::var("SEV_E2E_LIBVIRT").as_deref() {
            Err(_) | Ok("") | Ok("9") => Libvirt::V9,
            Ok("11") => Libvirt::V11,
            Ok(other) => {
                panic!("SEV_E2E_LIBVIRT={other:?}: use 9 (the host's) or 11 (the chroot's)")
            }
        }
    }

    /// The root the daemon, python3 and QEMU come from (None: the host's `/`).
    pub fn root(self) -> Option<PathBuf> {
        match self {
            Libvirt::V9 => None,
            Libvirt::V11 => Some(libvirt11_root()),
        }
    }

    /// The major version `virsh version --daemon` must report.
    pub fn daemon_major(self) -> &'static str {
        match self {
            Libvirt::V9 => "9",
            Libvirt::V11 => "11",
        }
    }

    /// The major version of the QEMU that comes with it.
    pub fn qemu_major(self) -> u64 {
        match self {
            Libvirt::V9 => 7,
            Libvirt::V11 => 10,
        }
    }
}

/// Where `scripts/setup-libvirt11.sh` builds its chroot (same variable, same default).
pub fn libvirt11_root() -> PathBuf {
    std::env::var_os("SEV_LIBVIRT11_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/virt-qemu-sev-validate/libvirt11-root"))
}

/// What is missing to run programs from the libvirt 11 chroot (empty: nothing).
pub fn libvirt11_missing() -> Vec<String> {
    let root = libvirt11_root();
    let mut missing = Vec::new();
    if unsafe { getuid() } != 0 {
        missing.push("root (chroot and mount namespaces)".to_string());
        return missing;
    }
    if !root.join(".sev-e2e-ready").exists() {
        missing.push(format!(
            "the libvirt 11 chroot {} (run scripts/setup-libvirt11.sh)",
            root.display()
        ));
        return missing;
    }
    let ns_ok = Command::new("/usr/bin/unshare")
        .args(["--mount", "--uts", "--", "/bin/true"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ns_ok {
        missing.push("mount and UTS namespaces (unshare --mount --uts)".to_string());
    }
    missing
}

/// A command that runs `argv` (paths inside the chroot) chrooted into `root`, in a private
/// mount namespace (and a UTS namespace with `hostname`, if given) where /proc, /sys, /dev and
/// a fresh /tmp are mounted and each of `binds` is bind-mounted at its own path. Every program
/// in the chain execs the next, so the child's pid is the last program's. The mounts vanish
/// with the namespace's last process: nothing to clean up on the host.
pub fn chroot_command(
    root: &Path,
    binds: &[&Path],
    hostname: Option<&str>,
    argv: &[OsString],
) -> Command {
    let script = r#"set -e
host=$1 root=$2 n=$3; shift 3
[ -z "$host" ] || hostname "$host"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
while [ "$n" -gt 0 ]; do
  mkdir -p "$root$1"
  mount --bind "$1" "$root$1"
  n=$((n - 1)); shift
done
exec /usr/sbin/chroot "$root" "$@""#;
    let mut c = Command::new("/usr/bin/unshare");
    c.arg("--mount").arg("--propagation").arg("private");
    if hostname.is_some() {
        c.arg("--uts");
    }
    c.args(["--", "/bin/sh", "-c", script, "chroot_command"])
        .arg(hostname.unwrap_or(""))
        .arg(root)
        .arg(binds.len().to_string())
        .args(binds)
        .args(argv);
    c
}

/// Output of a command as (exit code, stdout, stderr); -1 when killed.
pub fn split(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` with stdin closed, killing it after `timeout`.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The target dir may be shared with a concurrent `cargo build` replacing the binary:
    // retry briefly on "not found" / "text file busy" (ETXTBSY = 26).
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            Err(e)
                if tries < 50
                    && (e.kind() == std::io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(26)) =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot run {what}: {e}"),
        }
    };
    // Drain both pipes in threads so a chatty child cannot block.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let st = child.wait().expect("wait");
            eprintln!("harness: killed after {timeout:?}: {what}");
            break st;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    }
}

fn guid_le(s: &str) -> [u8; 16] {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for i in 0..16 {
        b[i] = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    b
}

/// Copy of `src` with the OVMF footer entry `HASH_AREA_GUID` set to (base, size).
pub fn patch_hash_area(src: &[u8], base: u32, size: u32) -> Vec<u8> {
    patch_area(src, HASH_AREA_GUID, base, size)
}

/// Copy of `src` with the OVMF footer entry `guid` (a `{u32 base; u32 size}`
/// area: kernel hashes or secret) set to (base, size).
pub fn patch_area(src: &[u8], guid: &str, base: u32, size: u32) -> Vec<u8> {
    let mut fw = src.to_vec();
    let n = fw.len();
    assert_eq!(
        &fw[n - 48..n - 32],
        &guid_le(FOOTER_GUID),
        "no OVMF footer table"
    );
    let table_len = u16::from_le_bytes([fw[n - 50], fw[n - 49]]) as usize;
    let start = n - 32 - table_len;
    let mut pos = n - 50; // end of the last real entry
    let want = guid_le(guid);
    while pos >= start + 18 {
        let len = u16::from_le_bytes([fw[pos - 18], fw[pos - 17]]) as usize;
        if fw[pos - 16..pos] == want {
            assert!(len >= 26, "area entry {guid} too short");
            let d = pos - 18 - 8;
            fw[d..d + 4].copy_from_slice(&base.to_le_bytes());
            fw[d + 4..d + 8].copy_from_slice(&size.to_le_bytes());
            return fw;
        }
        assert!(
            len >= 18 && pos >= start + len,
            "malformed OVMF footer table"
        );
        pos -= len;
    }
    panic!("firmware has no footer entry {guid}");
}

/// The OVMF footer entry of the SEV metadata (`{u32 offset from the end of the image}`).
const SEV_METADATA_GUID: &str = "dc886566-984a-4798-a75e-5585a7bf67cc";
/// SEV metadata section type of the page that holds the SNP kernel hash table.
pub const SNP_KERNEL_HASHES_SECTION: u32 = 0x10;
/// Where [`snp_kernel_hashes_firmware`] writes the new SEV metadata: this many bytes before
/// the end of Debian's OVMF.fd, in free space of the last firmware volume (all 0xFF).
const SNP_METADATA_FROM_END: usize = 0x2000;

/// (start, length) of the data of the OVMF footer entry `guid`.
fn footer_entry(fw: &[u8], guid: &str) -> Option<(usize, usize)> {
    let n = fw.len();
    if n < 50 || fw[n - 48..n - 32] != guid_le(FOOTER_GUID) {
        return None;
    }
    let table_len = u16::from_le_bytes([fw[n - 50], fw[n - 49]]) as usize;
    let start = (n - 32).checked_sub(table_len)?;
    let want = guid_le(guid);
    let mut pos = n - 50;
    while pos >= start + 18 {
        let len = u16::from_le_bytes([fw[pos - 18], fw[pos - 17]]) as usize;
        if len < 18 || pos < start + len {
            return None;
        }
        if fw[pos - 16..pos] == want {
            return Some((pos - len, len - 18));
        }
        pos -= len;
    }
    None
}

/// Copy of Debian's OVMF.fd (`src`) an SNP guest can boot with kernel hashes: the hash area
/// at [`HASH_AREA_BASE`] / [`HASH_AREA_SIZE`] as for SEV, and SEV metadata with an
/// SNP_KERNEL_HASHES section for the hash area's page (Debian's build has none: only the
/// AmdSev build does). The page is cut out of the SNP_SEC_MEM section that covers it; the new
/// metadata goes into free space near the end of the image and the footer entry points
/// there. QEMU under TCG never reads the metadata; QEMU on SNP hardware, sev-snp-measure and
/// the tool measure the image by it.
pub fn snp_kernel_hashes_firmware(src: &[u8]) -> Vec<u8> {
    let mut fw = patch_hash_area(src, HASH_AREA_BASE, HASH_AREA_SIZE);
    let n = fw.len();
    let (at, len) = footer_entry(&fw, SEV_METADATA_GUID).expect("no SEV metadata footer entry");
    assert!(len >= 4);
    let off = u32::from_le_bytes(fw[at..at + 4].try_into().unwrap()) as usize;
    let hdr = n - off;
    assert_eq!(&fw[hdr..hdr + 4], b"ASEV", "no SEV metadata header");
    let count = u32::from_le_bytes(fw[hdr + 12..hdr + 16].try_into().unwrap()) as usize;
    let page = HASH_AREA_BASE & !0xFFF;
    let mut sections: Vec<[u32; 3]> = Vec::new();
    for i in 0..count {
        let e = hdr + 16 + 12 * i;
        let w = |k: usize| u32::from_le_bytes(fw[e + 4 * k..e + 4 * k + 4].try_into().unwrap());
        let (gpa, size, kind) = (w(0), w(1), w(2));
        if gpa <= page && page < gpa + size && kind != SNP_KERNEL_HASHES_SECTION {
            if gpa < page {
                sections.push([gpa, page - gpa, kind]);
            }
            sections.push([page, 0x1000, SNP_KERNEL_HASHES_SECTION]);
            if page + 0x1000 < gpa + size {
                sections.push([page + 0x1000, gpa + size - page - 0x1000, kind]);
            }
        } else {
            sections.push([gpa, size, kind]);
        }
    }
    assert!(
        sections.iter().any(|s| s[2] == SNP_KERNEL_HASHES_SECTION),
        "no SEV metadata section covers the hash area's page 0x{page:x}"
    );
    let mut meta = Vec::new();
    meta.extend_from_slice(b"ASEV");
    meta.extend_from_slice(&(16 + 12 * sections.len() as u32).to_le_bytes());
    meta.extend_from_slice(&1u32.to_le_bytes());
    meta.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for s in &sections {
        for w in s {
            meta.extend_from_slice(&w.to_le_bytes());
        }
    }
    let new = n - SNP_METADATA_FROM_END;
    assert!(
        fw[new..new + meta.len()].iter().all(|&b| b == 0xFF),
        "no free space for the SEV metadata at 0x{new:x}"
    );
    fw[new..new + meta.len()].copy_from_slice(&meta);
    fw[at..at + 4].copy_from_slice(&(SNP_METADATA_FROM_END as u32).to_le_bytes());
    fw
}

/// Where PyPI sev-snp-measure's `sevsnpmeasure` package is (scripts/setup.sh installs it in
/// a venv). The SNP simulation of the wrapper imports a copy of it from the run's `sim/`
/// (the chroot's python3 cannot see /opt).
pub const SEVSNPMEASURE_PKG: &str =
    "/opt/sev-snp-measure/lib/python3.11/site-packages/sevsnpmeasure";

/// Copies the `sevsnpmeasure` package into `sim_dir` (no byte-code).
pub fn copy_sevsnpmeasure(sim_dir: &Path) -> Result<(), String> {
    let src = Path::new(SEVSNPMEASURE_PKG);
    let dst = sim_dir.join("sevsnpmeasure");
    let rd = fs::read_dir(src).map_err(|e| format!("{}: {e} (scripts/setup.sh)", src.display()))?;
    fs::create_dir_all(&dst).map_err(|e| format!("{}: {e}", dst.display()))?;
    for e in rd.flatten() {
        let name = e.file_name();
        if Path::new(&name).extension() == Some(OsStr::new("py")) {
            fs::copy(e.path(), dst.join(&name)).map_err(|e| format!("copy sevsnpmeasure: {e}"))?;
        }
    }
    Ok(())
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut f = fs::File::open("/dev/urandom").expect("/dev/urandom");
    let mut v = vec![0u8; n];
    f.read_exact(&mut v).expect("read /dev/urandom");
    v
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

/// The vCPU model of a domain template.
#[derive(Clone, Debug, PartialEq)]
pub enum Cpu {
    /// No `<cpu>` element (QEMU gets libvirt's default, qemu64 under TCG).
    Default,
    /// `<cpu mode='custom' match='exact'><model fallback='forbid'>NAME</model></cpu>`.
    Custom(String),
    /// `<cpu mode='maximum'/>`: `-cpu max`; the wrapper then uses the host's CPUID signature,
    /// like `-cpu host` would give on SEV hardware (host-passthrough needs KVM).
    Maximum,
    /// `<cpu mode='host-passthrough'/>` (libvirt refuses it for TCG domains).
    HostPassthrough,
}

/// `<launchSecurity type='sev-snp'>` of a domain template (libvirt >= 10.5); the base64
/// values go into the XML as they are.
#[derive(Clone, Debug, Default)]
pub struct SnpSpec {
    pub policy: u64,
    /// `authorKey` and `vcek` attributes: None = absent.
    pub author_key: Option<bool>,
    pub vcek: Option<bool>,
    pub id_block: Option<String>,
    pub id_auth: Option<String>,
    pub host_data: Option<String>,
    pub guest_visible_workarounds: Option<String>,
}

/// A domain XML template; [`DomainSpec::xml`] renders it.
#[derive(Clone, Debug)]
pub struct DomainSpec {
    pub name: String,
    pub emulator: PathBuf,
    pub firmware: PathBuf,
    /// `<loader type='...'>`: "rom" (QEMU -bios) or "pflash".
    pub loader_type: String,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
    /// `kernelHashes` attribute: None = absent.
    pub kernel_hashes: Option<bool>,
    pub policy: u32,
    /// Online vCPUs (`current`), and the maximum if different.
    pub vcpus: u32,
    pub max_vcpus: Option<u32>,
    pub cpu: Cpu,
    /// Whether `<launchSecurity type='sev'>` is present at all.
    pub launch_security: bool,
    /// Whether `<dhCert>` and `<session>` are present (the validators require them).
    pub dh_session: bool,
    pub memory_mib: u32,
    /// An SNP domain: `<launchSecurity type='sev-snp'>` instead of `type='sev'` (the
    /// `policy` and `dh_session` fields are then unused).
    pub snp: Option<SnpSpec>,
}

impl DomainSpec {
    pub fn xml(&self) -> String {
        let mut x = String::new();
        let e = |p: &Path| xml_escape(&p.to_string_lossy());
        let _ = writeln!(x, "<domain type='qemu'>");
        let _ = writeln!(x, "  <name>{}</name>", xml_escape(&self.name));
        let _ = writeln!(x, "  <memory unit='MiB'>{}</memory>", self.memory_mib);
        match self.max_vcpus {
            Some(max) => {
                let _ = writeln!(
                    x,
                    "  <vcpu placement='static' current='{}'>{max}</vcpu>",
                    self.vcpus
                );
            }
            None => {
                let _ = writeln!(x, "  <vcpu placement='static'>{}</vcpu>", self.vcpus);
            }
        }
        let _ = writeln!(x, "  <os>");
        let _ = writeln!(x, "    <type arch='x86_64' machine='q35'>hvm</type>");
        // A pflash loader without NVRAM must be stateless (libvirt >= 8.6); NVRAM is not
        // measured, so attestation wants none.
        let stateless = if self.loader_type == "pflash" {
            " stateless='yes'"
        } else {
            ""
        };
        let _ = writeln!(
            x,
            "    <loader readonly='yes' type='{}'{stateless}>{}</loader>",
            self.loader_type,
            e(&self.firmware)
        );
        if let Some(k) = &self.kernel {
            let _ = writeln!(x, "    <kernel>{}</kernel>", e(k));
        }
        if let Some(i) = &self.initrd {
            let _ = writeln!(x, "    <initrd>{}</initrd>", e(i));
        }
        if let Some(c) = &self.cmdline {
            let _ = writeln!(x, "    <cmdline>{}</cmdline>", xml_escape(c));
        }
        let _ = writeln!(x, "  </os>");
        let _ = writeln!(x, "  <features><acpi/></features>");
        match &self.cpu {
            Cpu::Default => {}
            Cpu::Custom(m) => {
                let _ = writeln!(
                    x,
                    "  <cpu mode='custom' match='exact'><model fallback='forbid'>{}</model></cpu>",
                    xml_escape(m)
                );
            }
            Cpu::Maximum => {
                let _ = writeln!(x, "  <cpu mode='maximum'/>");
            }
            Cpu::HostPassthrough => {
                let _ = writeln!(x, "  <cpu mode='host-passthrough'/>");
            }
        }
        let _ = writeln!(
            x,
            "  <devices><emulator>{}</emulator></devices>",
            e(&self.emulator)
        );
        if let Some(snp) = &self.snp {
            let yes_no = |name: &str, v: Option<bool>| match v {
                Some(true) => format!(" {name}='yes'"),
                Some(false) => format!(" {name}='no'"),
                None => String::new(),
            };
            let _ = writeln!(
                x,
                "  <launchSecurity type='sev-snp'{}{}{}>",
                yes_no("kernelHashes", self.kernel_hashes),
                yes_no("authorKey", snp.author_key),
                yes_no("vcek", snp.vcek)
            );
            let _ = writeln!(
                x,
                "    <cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits>"
            );
            let _ = writeln!(x, "    <policy>0x{:08x}</policy>", snp.policy);
            for (tag, v) in [
                ("guestVisibleWorkarounds", &snp.guest_visible_workarounds),
                ("idBlock", &snp.id_block),
                ("idAuth", &snp.id_auth),
                ("hostData", &snp.host_data),
            ] {
                if let Some(v) = v {
                    let _ = writeln!(x, "    <{tag}>{v}</{tag}>");
                }
            }
            let _ = writeln!(x, "  </launchSecurity>");
        } else if self.launch_security {
            let kh = match self.kernel_hashes {
                Some(true) => " kernelHashes='yes'",
                Some(false) => " kernelHashes='no'",
                None => "",
            };
            let _ = writeln!(x, "  <launchSecurity type='sev'{kh}>");
            let _ = writeln!(
                x,
                "    <cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits>"
            );
            let _ = writeln!(x, "    <policy>0x{:04x}</policy>", self.policy);
            if self.dh_session {
                // Base64 of placeholder owner data: QEMU would hand them to the firmware,
                // the simulation takes TIK/TEK from its configuration instead.
                let _ = writeln!(x, "    <dhCert>ZGgtY2VydC1wbGFjZWhvbGRlcg==</dhCert>");
                let _ = writeln!(x, "    <session>c2Vzc2lvbi1wbGFjZWhvbGRlcg==</session>");
            }
            let _ = writeln!(x, "  </launchSecurity>");
        }
        let _ = writeln!(x, "</domain>");
        x
    }
}

/// One injected secret table, as the simulated firmware decrypted it.
#[derive(Clone, Debug)]
pub struct Injection {
    pub domain: String,
    pub accepted: bool,
    /// (GUID, data) entries of the decrypted secret table (lenient walk, as Linux does).
    pub entries: Vec<(String, Vec<u8>)>,
    /// Why tests/sim/sev_sp.py's strict table check rejects the table, if it does
    /// (e.g. the Python tool's extra 16 bytes of padding).
    pub strict_error: Option<String>,
    pub gpa: u64,
    pub gpa_given: bool,
    pub plaintext: Vec<u8>,
    pub raw: serde_json::Value,
}

struct Sshd {
    child: Child,
    /// Address of the "hypervisor host" (sshd's network namespace) seen from the test.
    addr: String,
    port: u16,
    /// Test-side end of the veth pair (removed at teardown).
    veth: String,
    uri_params: String,
}

/// A running session libvirtd with the SEV-simulating emulator; see the module docs.
pub struct Host {
    dir: PathBuf,
    uid: u32,
    gid: u32,
    as_root: bool,
    daemon: Mutex<Option<Child>>,
    daemon_pid: i32,
    socket: PathBuf,
    emulator: PathBuf,
    tik: PathBuf,
    tek: PathBuf,
    tk: PathBuf,
    record: PathBuf,
    fw_plain: PathBuf,
    fw_hashes: PathBuf,
    /// [`snp_kernel_hashes_firmware`] of Debian's OVMF.fd.
    fw_snp: PathBuf,
    /// Why SNP domains cannot run on this host (None: they can).
    snp_missing: Option<String>,
    kernel: PathBuf,
    initrd: PathBuf,
    hostname: Option<String>,
    libvirt: Libvirt,
    /// `virsh version --daemon`'s daemon and hypervisor versions, e.g. ("11.3.0", "QEMU 10.0.2").
    versions: (String, String),
    domains: Mutex<Vec<String>>,
    sshd: Mutex<Option<Sshd>>,
    torn_down: Mutex<bool>,
    counter: std::sync::atomic::AtomicU32,
}

static SHARED: OnceLock<Option<Host>> = OnceLock::new();

extern "C" fn teardown_shared() {
    if let Some(Some(h)) = SHARED.get() {
        h.teardown();
    }
}

fn which_missing(libvirt: Libvirt) -> Vec<String> {
    if libvirt == Libvirt::V11 {
        // The daemon, QEMU and python3 come from the chroot; virsh and the firmware from here.
        let mut missing = libvirt11_missing();
        for p in [VIRSH, DEBIAN_OVMF] {
            if !Path::new(p).exists() {
                missing.push(p.to_string());
            }
        }
        return missing;
    }
    let mut missing = Vec::new();
    for p in [
        LIBVIRTD,
        VIRSH,
        REAL_QEMU,
        PYTHON,
        DEBIAN_OVMF,
        "/usr/bin/setpriv",
    ] {
        if !Path::new(p).exists() {
            missing.push(p.to_string());
        }
    }
    if Path::new(PYTHON).exists() {
        let ok = Command::new(PYTHON)
            .args(["-c", "import cryptography"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            missing.push("python3-cryptography".into());
        }
    }
    missing
}

fn lookup_id(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, USER]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Creates the unprivileged system user if absent; returns (uid, gid).
fn ensure_user() -> (u32, u32) {
    if lookup_id("-u").is_none() {
        let out = Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/bin/sh", "--password", "*", USER])
            .output()
            .expect("run useradd");
        // Another test binary may have created it concurrently: re-check below.
        if !out.status.success() && lookup_id("-u").is_none() {
            panic!(
                "useradd {USER} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    (lookup_id("-u").unwrap(), lookup_id("-g").unwrap())
}

/// Gives the chroot a passwd and group entry for the daemon's user, so that lookups of its
/// uid inside (libvirt, python) find the same name as on the host.
fn ensure_chroot_user(root: &Path, uid: u32, gid: u32) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap();
    let name = USER;
    for (file, line, id) in [
        (
            "etc/passwd",
            format!("{name}:x:{uid}:{gid}::/nonexistent:/bin/sh\n"),
            uid,
        ),
        ("etc/group", format!("{name}:x:{gid}:\n"), gid),
    ] {
        let p = root.join(file);
        let cur = fs::read_to_string(&p).unwrap_or_default();
        let known = cur.lines().any(|l| {
            let f: Vec<&str> = l.split(':').collect();
            f.len() > 2 && (f[0] == name || f[2] == id.to_string())
        });
        if !known {
            use std::io::Write as _;
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            f.write_all(line.as_bytes()).unwrap();
        }
    }
}

fn chown_r(path: &Path, uid: u32, gid: u32) {
    let out = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .output()
        .expect("chown");
    assert!(
        out.status.success(),
        "chown: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_file(path: &Path, data: &[u8], mode: u32) {
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn unique_dir() -> PathBuf {
    let base = std::env::temp_dir();
    let pid = unsafe { getpid() };
    let tag: String = random_bytes(4).iter().map(|b| format!("{b:02x}")).collect();
    let dir = base.join(format!("sve2e-{pid}-{tag}"));
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Host {
    /// The daemon shared by all tests of this test binary (started on first use, torn down
    /// when the process exits). None (after a SKIPPED line) when prerequisites are missing.
    pub fn shared() -> Option<&'static Host> {
        SHARED
            .get_or_init(|| {
                let h = Host::start();
                if h.is_some() {
                    unsafe {
                        atexit(teardown_shared);
                    }
                }
                h
            })
            .as_ref()
    }

    /// Starts a fresh daemon of the version `SEV_E2E_LIBVIRT` asks for ([`Libvirt::from_env`]).
    pub fn start() -> Option<Host> {
        Host::start_with(Libvirt::from_env())
    }

    /// Starts a fresh daemon of the given version. None (after a visible SKIPPED line) when
    /// libvirtd, QEMU, python3 with cryptography, Debian's OVMF or (for [`Libvirt::V11`]) the
    /// chroot are missing and CI is unset; panics in CI.
    pub fn start_with(libvirt: Libvirt) -> Option<Host> {
        let missing = which_missing(libvirt);
        if !missing.is_empty() {
            skip_or_fail(
                &format!("e2e libvirt harness ({libvirt:?})"),
                &format!("missing {}", missing.join(", ")),
            );
            return None;
        }
        let t0 = Instant::now();
        let as_root = unsafe { getuid() } == 0;
        let (uid, gid) = if as_root {
            ensure_user()
        } else {
            let m = fs::metadata("/proc/self").unwrap();
            (m.uid(), m.gid())
        };
        let dir = unique_dir();
        for sub in [
            "bin", "sim", "fw", "home", "run", "config", "cache", "state", "files", "xml",
        ] {
            fs::create_dir(dir.join(sub)).unwrap();
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(dir.join("run"), fs::Permissions::from_mode(0o700)).unwrap();

        // Simulator sources, copied so the daemon's user can read them wherever the checkout is.
        let sim_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim");
        for f in ["qemu_sev_wrapper.py", "sev_sp.py"] {
            fs::copy(sim_src.join(f), dir.join("sim").join(f)).expect("copy simulator");
        }
        // SEV-SNP: libvirt >= 10.5 only, and the wrapper measures with sev-snp-measure.
        let snp_missing = if libvirt == Libvirt::V9 {
            Some("libvirt 9.0 has no SEV-SNP (run with SEV_E2E_LIBVIRT=11)".to_string())
        } else {
            copy_sevsnpmeasure(&dir.join("sim")).err()
        };

        // Keys: the owner's TIK and TEK (the firmware would unwrap them from the session blob).
        let tik = dir.join("tik.bin");
        let tek = dir.join("tek.bin");
        let tk = dir.join("tk.bin");
        let (tik_b, tek_b) = (random_bytes(16), random_bytes(16));
        write_file(&tik, &tik_b, 0o644);
        write_file(&tek, &tek_b, 0o644);
        write_file(&tk, &[tek_b.clone(), tik_b.clone()].concat(), 0o644);

        // Firmware and kernel files.
        let fw_plain = dir.join("fw/OVMF.fd");
        let fw_hashes = dir.join("fw/OVMF-hashes.fd");
        let ovmf = fs::read(DEBIAN_OVMF).expect("read Debian OVMF");
        write_file(&fw_plain, &ovmf, 0o644);
        write_file(
            &fw_hashes,
            &patch_hash_area(&ovmf, HASH_AREA_BASE, HASH_AREA_SIZE),
            0o644,
        );
        let fw_snp = dir.join("fw/OVMF-snp.fd");
        write_file(&fw_snp, &snp_kernel_hashes_firmware(&ovmf), 0o644);
        let kernel = dir.join("fw/vmlinuz");
        let initrd = dir.join("fw/initrd.img");
        write_file(&kernel, &random_bytes(8192 + 123), 0o644);
        write_file(&initrd, &random_bytes(4096 + 77), 0o644);

        let record = dir.join("state/record.json");
        let config = serde_json::json!({
            "real_qemu": REAL_QEMU,
            "tik": tik, "tek": tek,
            "api_major": API_MAJOR, "api_minor": API_MINOR, "build_id": BUILD_ID,
            "record": record,
            "run_dir": dir.join("state"),
        });
        let config_path = dir.join("config.json");
        write_file(
            &config_path,
            serde_json::to_string_pretty(&config).unwrap().as_bytes(),
            0o644,
        );
        let emulator = dir.join("bin/qemu-system-x86_64");
        let script = format!(
            "#!/bin/sh\n# Generated by tests/e2e/harness: QEMU with a simulated SEV firmware.\n\
             SEV_WRAPPER_CONFIG={}\nexport SEV_WRAPPER_CONFIG\nexec {PYTHON} {} \"$@\"\n",
            shell_quote(&config_path.to_string_lossy()),
            shell_quote(&dir.join("sim/qemu_sev_wrapper.py").to_string_lossy()),
        );
        write_file(&emulator, script.as_bytes(), 0o755);
        if as_root {
            chown_r(&dir, uid, gid);
        }
        if let Some(root) = libvirt.root() {
            ensure_chroot_user(&root, uid, gid);
        }

        // The daemon.
        let socket = dir.join("run/libvirt/libvirt-sock");
        let log = fs::File::create(dir.join("libvirtd.log")).unwrap();
        let path_env = format!(
            "{}:/usr/sbin:/usr/bin:/sbin:/bin",
            dir.join("bin").display()
        );
        let pidfile = dir.join("libvirtd.pid");
        // A hostname of its own needs a UTS namespace (root, and a kernel/container allowing it).
        let use_uts = as_root
            && Command::new("/usr/bin/unshare")
                .args(["--uts", "--", "/bin/true"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
        if as_root && !use_uts {
            eprintln!("e2e: no UTS namespace: the daemon keeps this machine's hostname");
        }
        let root = libvirt.root();
        // The chain, each program exec'ing the next in place:
        //   unshare --uts (own hostname) -> setpriv (drop to the unprivileged user)
        //   -> python3 REAPER (subreaper, see below) -> libvirtd
        // With a chroot ([`Libvirt::V11`]), the first step is [`chroot_command`] instead: the
        // UTS namespace, a mount namespace with the temp dir at its own path, then chroot; the
        // rest runs inside it (its setpriv, python3 and libvirtd).
        let mut argv: Vec<OsString> = Vec::new();
        if use_uts && root.is_none() {
            argv.extend(["/usr/bin/unshare", "--uts", "--", "/bin/sh", "-c"].map(OsString::from));
            argv.push("hostname \"$0\" && exec \"$@\"".into());
            argv.push(DAEMON_HOSTNAME.into());
        }
        if as_root {
            argv.push("/usr/bin/setpriv".into());
            argv.push(format!("--reuid={uid}").into());
            argv.push(format!("--regid={gid}").into());
            argv.push("--clear-groups".into());
        }
        argv.extend([PYTHON, "-c", REAPER, LIBVIRTD].map(OsString::from));
        argv.push("--pid-file".into());
        argv.push(pidfile.clone().into());
        let mut cmd = match &root {
            Some(root) => chroot_command(root, &[&dir], use_uts.then_some(DAEMON_HOSTNAME), &argv),
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.env_clear()
            .env("HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("PATH", &path_env)
            .env("LANG", "C")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut child = cmd.spawn().expect("spawn libvirtd");
        let daemon_pid = child.id() as i32;

        let mut host = Host {
            dir: dir.clone(),
            uid,
            gid,
            as_root,
            daemon: Mutex::new(None),
            daemon_pid,
            socket: socket.clone(),
            emulator,
            tik,
            tek,
            tk,
            record,
            fw_plain,
            fw_hashes,
            fw_snp,
            snp_missing,
            kernel,
            initrd,
            hostname: if use_uts {
                Some(DAEMON_HOSTNAME.to_string())
            } else {
                None
            },
            libvirt,
            versions: (String::new(), String::new()),
            domains: Mutex::new(Vec::new()),
            sshd: Mutex::new(None),
            torn_down: Mutex::new(false),
            counter: std::sync::atomic::AtomicU32::new(0),
        };
        host.spawn_watchdog();

        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            if let Some(st) = child.try_wait().unwrap() {
                let logs = host.logs();
                host.teardown();
                panic!("libvirtd exited ({st}) before creating its socket\n{logs}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let logs = host.logs();
                host.teardown();
                panic!(
                    "libvirtd did not create {} in 20s\n{logs}",
                    socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        *host.daemon.get_mut().unwrap() = Some(child);
        let t_socket = t0.elapsed();

        // First capability probe (a few seconds; cached for the daemon's lifetime).
        let (rc, out, err) = host.virsh(&["domcapabilities", "--virttype", "qemu"]);
        if rc != 0 || !out.contains("<sev supported='yes'>") {
            let logs = host.logs();
            host.teardown();
            panic!("libvirt does not see SEV through the wrapper (rc {rc}): {err}\n{out}\n{logs}");
        }
        // Which daemon and QEMU answered, once per daemon, on stderr itself (not captured by
        // the test harness) so that every run's output says which versions it tested.
        let (rc, out, err) = host.virsh(&["version", "--daemon"]);
        let field = |k: &str| {
            out.lines()
                .find_map(|l| l.split_once(k).map(|(_, v)| v.trim().to_string()))
                .unwrap_or_default()
        };
        host.versions = (
            field("Running against daemon:"),
            field("Running hypervisor:"),
        );
        if rc != 0 || host.versions.0.is_empty() {
            let logs = host.logs();
            host.teardown();
            panic!("virsh version --daemon (rc {rc}): {err}\n{out}\n{logs}");
        }
        {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "e2e: libvirt daemon {}, {} ({}), libvirtd under reaper pid {daemon_pid} as uid \
                 {uid} in {} (socket {:.2?}, probe {:.2?})",
                host.versions.0,
                host.versions.1,
                match &root {
                    Some(r) => format!("chroot {}", r.display()),
                    None => "host".to_string(),
                },
                dir.display(),
                t_socket,
                t0.elapsed()
            );
        }
        Some(host)
    }

    /// A detached shell that kills what the harness started if the test process dies without
    /// tearing down (SIGKILL, abort). It only signals pids the harness recorded.
    fn spawn_watchdog(&self) {
        let me = unsafe { getpid() };
        let script = r#"
me=$1; dir=$2
while kill -0 "$me" 2>/dev/null; do sleep 1; done
[ -d "$dir" ] || exit 0
for f in "$dir"/run/libvirt/qemu/run/*.pid "$dir"/libvirtd.pid "$dir"/run/libvirt/virtlogd.pid "$dir"/ssh/sshd.pid "$dir"/pids; do
  [ -f "$f" ] || continue
  for p in $(cat "$f"); do kill -9 "$p" 2>/dev/null; done
done
sleep 0.5
# SEV_E2E_KEEP (inherited) keeps the logs and records for inspection, as teardown does.
[ -n "$SEV_E2E_KEEP" ] || rm -rf "$dir"
"#;
        let _ = Command::new("/bin/sh")
            .args(["-c", script, "watchdog"])
            .arg(me.to_string())
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let _ = fs::write(self.dir.join("pids"), format!("{}\n", self.daemon_pid));
    }

    fn note_pid(&self, pid: u32) {
        use std::io::Write as _;
        if let Ok(mut f) = fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("pids"))
        {
            let _ = writeln!(f, "{pid}");
        }
    }

    /// `qemu:///session?socket=...` for the daemon (usable by root and by the daemon's user).
    pub fn uri(&self) -> String {
        format!("qemu:///session?socket={}", self.socket.display())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn tik(&self) -> &Path {
        &self.tik
    }
    pub fn tek(&self) -> &Path {
        &self.tek
    }
    /// TEK ‖ TIK in one 32-byte file (`--tk`).
    pub fn tk(&self) -> &Path {
        &self.tk
    }
    /// Copy of Debian's OVMF.fd (no usable kernel hashes area).
    pub fn firmware(&self) -> &Path {
        &self.fw_plain
    }
    /// The same image with the kernel hashes area patched to 0x80FC00 / 0x400.
    pub fn firmware_hashes(&self) -> &Path {
        &self.fw_hashes
    }
    /// Debian's OVMF.fd with the hash area and an SNP_KERNEL_HASHES metadata section
    /// ([`snp_kernel_hashes_firmware`]): the SNP domains' ROM firmware.
    pub fn firmware_snp(&self) -> &Path {
        &self.fw_snp
    }
    /// Why this host cannot run SNP domains (libvirt 9.0, no sev-snp-measure), or None.
    pub fn snp_missing(&self) -> Option<&str> {
        self.snp_missing.as_deref()
    }
    pub fn kernel(&self) -> &Path {
        &self.kernel
    }
    pub fn initrd(&self) -> &Path {
        &self.initrd
    }
    pub fn emulator(&self) -> &Path {
        &self.emulator
    }
    /// Which libvirt and QEMU this host runs.
    pub fn libvirt(&self) -> Libvirt {
        self.libvirt
    }
    /// The daemon's version as `virsh version --daemon` reports it (e.g. "11.3.0").
    pub fn daemon_version(&self) -> &str {
        &self.versions.0
    }
    /// The hypervisor's, e.g. "QEMU 10.0.2".
    pub fn hypervisor_version(&self) -> &str {
        &self.versions.1
    }
    /// The daemon's hostname when it runs in its own UTS namespace.
    pub fn daemon_hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }
    pub fn record_path(&self) -> &Path {
        &self.record
    }

    /// A fresh domain name with the given prefix (unique within this host).
    pub fn unique_name(&self, prefix: &str) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        format!("{prefix}-{n}")
    }

    /// Writes `data` to a new world-readable file under the temp dir (readable by the daemon).
    pub fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = self.dir.join("files").join(format!("{n}-{name}"));
        write_file(&p, data, 0o644);
        p
    }

    // ------------------------------------------------------------------- templates

    fn base_spec(&self, name: &str) -> DomainSpec {
        DomainSpec {
            name: name.to_string(),
            emulator: self.emulator.clone(),
            firmware: self.fw_plain.clone(),
            loader_type: "rom".into(),
            kernel: None,
            initrd: None,
            cmdline: None,
            kernel_hashes: None,
            policy: 0x3,
            vcpus: 1,
            max_vcpus: None,
            cpu: Cpu::Default,
            launch_security: true,
            dh_session: true,
            memory_mib: 128,
            snp: None,
        }
    }

    /// SEV (policy 0x3), firmware only: loader = the copy of Debian's OVMF.fd.
    pub fn spec_sev_firmware(&self, name: &str) -> DomainSpec {
        self.base_spec(name)
    }

    /// SEV (policy 0x1) direct kernel boot with kernelHashes='yes', on the patched firmware,
    /// with the harness's kernel, initrd and [`CMDLINE`].
    pub fn spec_sev_kernel_hashes(&self, name: &str) -> DomainSpec {
        DomainSpec {
            firmware: self.fw_hashes.clone(),
            kernel: Some(self.kernel.clone()),
            initrd: Some(self.initrd.clone()),
            cmdline: Some(CMDLINE.to_string()),
            kernel_hashes: Some(true),
            policy: 0x1,
            ..self.base_spec(name)
        }
    }

    /// SEV-ES (policy 0x5) with `vcpus` online vCPUs (of `vcpus + 2` maximum) and `cpu`.
    pub fn spec_sev_es(&self, name: &str, vcpus: u32, cpu: Cpu) -> DomainSpec {
        DomainSpec {
            policy: 0x5,
            vcpus,
            max_vcpus: Some(vcpus + 2),
            cpu,
            ..self.base_spec(name)
        }
    }

    /// SEV-SNP (policy 0x30000) direct kernel boot with kernelHashes='yes' on the ROM
    /// [`Host::firmware_snp`], the harness's kernel, initrd and [`CMDLINE`], `vcpus` vCPUs of
    /// model EPYC-Milan; no ID block, no hostData.
    pub fn spec_snp(&self, name: &str, vcpus: u32) -> DomainSpec {
        DomainSpec {
            firmware: self.fw_snp.clone(),
            kernel: Some(self.kernel.clone()),
            initrd: Some(self.initrd.clone()),
            cmdline: Some(CMDLINE.to_string()),
            kernel_hashes: Some(true),
            vcpus,
            cpu: Cpu::Custom("EPYC-Milan".into()),
            launch_security: false,
            dh_session: false,
            snp: Some(SnpSpec {
                policy: 0x30000,
                ..SnpSpec::default()
            }),
            ..self.base_spec(name)
        }
    }

    pub fn domain_xml_sev_firmware(&self, name: &str) -> String {
        self.spec_sev_firmware(name).xml()
    }
    pub fn domain_xml_sev_kernel_hashes(&self, name: &str) -> String {
        self.spec_sev_kernel_hashes(name).xml()
    }
    pub fn domain_xml_sev_es(&self, name: &str, vcpus: u32, cpu: Cpu) -> String {
        self.spec_sev_es(name, vcpus, cpu).xml()
    }

    // ------------------------------------------------------------------- virsh

    /// `virsh -c URI ARGS` (as root, through the daemon's socket).
    pub fn virsh(&self, args: &[&str]) -> (i32, String, String) {
        let out = run_timeout(
            Command::new(VIRSH)
                .arg("-q")
                .arg("-c")
                .arg(self.uri())
                .args(args),
            CMD_TIMEOUT,
        );
        split(&out)
    }

    fn virsh_ok(&self, args: &[&str]) -> Result<String, String> {
        let (rc, out, err) = self.virsh(args);
        if rc == 0 {
            Ok(out)
        } else {
            Err(format!(
                "virsh {}: exit {rc}: {}{}",
                args.join(" "),
                err.trim(),
                out.trim()
            ))
        }
    }

    /// Defines the domain (registered for teardown).
    pub fn define(&self, xml: &str) -> Result<String, String> {
        let name = xml
            .split("<name>")
            .nth(1)
            .and_then(|s| s.split("</name>").next())
            .ok_or("domain XML has no <name>")?
            .to_string();
        let path = self.dir.join("xml").join(format!("{name}.xml"));
        write_file(&path, xml.as_bytes(), 0o644);
        self.virsh_ok(&["define", &path.to_string_lossy()])?;
        self.domains.lock().unwrap().push(name.clone());
        Ok(name)
    }

    /// Defines the domain and starts it paused (`virsh start --paused`); returns its name.
    pub fn define_and_start_paused(&self, xml: &str) -> Result<String, String> {
        let name = self.define(xml)?;
        if let Err(e) = self.virsh_ok(&["start", "--paused", &name]) {
            return Err(format!("{e}\n{}", self.tail_logs()));
        }
        Ok(name)
    }

    /// Makes the "host" measure something other than what the domain XML and libvirt ask for
    /// when `name` next starts (a compromised host): `overrides` may set "firmware",
    /// "kernel", "initrd", "cmdline" (strings), "smp" (number) and "cpu" (QEMU -cpu value).
    pub fn tamper(&self, name: &str, overrides: serde_json::Value) {
        let p = self.dir.join("state").join(format!("tamper-{name}.json"));
        write_file(&p, overrides.to_string().as_bytes(), 0o644);
    }

    /// `virsh domstate NAME` (e.g. "paused", "running", "shut off").
    pub fn state(&self, name: &str) -> String {
        self.virsh(&["domstate", name]).1.trim().to_string()
    }

    pub fn resume(&self, name: &str) -> Result<String, String> {
        self.virsh_ok(&["resume", name])
    }

    /// `virsh domlaunchsecinfo NAME` as key → value.
    pub fn launch_sec_info(&self, name: &str) -> Result<Vec<(String, String)>, String> {
        let out = self.virsh_ok(&["domlaunchsecinfo", name])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect())
    }

    /// Destroys (if running) and undefines the domain.
    pub fn destroy(&self, name: &str) {
        let _ = self.virsh(&["destroy", name]);
        let _ = self.virsh(&["undefine", "--nvram", name]);
        self.domains.lock().unwrap().retain(|d| d != name);
    }

    // ------------------------------------------------------------------- records

    fn read_record(&self) -> serde_json::Value {
        match fs::read_to_string(&self.record) {
            Ok(s) => serde_json::from_str(&s).unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// What the wrapper recorded for the domain's launches (firmware, kernel, policy, smp,
    /// cpu, signature, LD, measurement), oldest first.
    pub fn launches(&self, domain: &str) -> Vec<serde_json::Value> {
        let rec = self.read_record();
        rec["launches"]
            .as_array()
            .map(|a| a.iter().filter(|l| l["name"] == domain).cloned().collect())
            .unwrap_or_default()
    }

    /// The simulated SNP_LAUNCH_FINISH verdicts for the domain (at `cont`, or at start when
    /// not paused): `ok`, `fw_error`, `error`, `ld_hex`, `checks`, oldest first.
    pub fn launch_finishes(&self, domain: &str) -> Vec<serde_json::Value> {
        self.records("launch_finish", domain)
    }

    /// Every `cont` the domain's QEMU got, with the SEV state it found, oldest first.
    pub fn conts(&self, domain: &str) -> Vec<serde_json::Value> {
        self.records("conts", domain)
    }

    fn records(&self, kind: &str, domain: &str) -> Vec<serde_json::Value> {
        let rec = self.read_record();
        rec[kind]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|l| l["domain"] == domain)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The domain's QEMU log as libvirt keeps it (command lines, QEMU's stderr).
    pub fn domain_log(&self, name: &str) -> String {
        fs::read_to_string(
            self.dir
                .join("cache/libvirt/qemu/log")
                .join(format!("{name}.log")),
        )
        .unwrap_or_default()
    }

    /// The arguments libvirt gave the emulator for the domain's last start, as the wrapper
    /// logged them (one string, arguments separated by spaces).
    pub fn emulator_argv(&self, name: &str) -> Option<String> {
        let log = fs::read_to_string(self.dir.join("state/wrapper.log")).ok()?;
        let tag = format!("-name guest={name},");
        log.lines()
            .filter_map(|l| l.split_once("argv: ").map(|(_, a)| a))
            .rfind(|a| a.contains(&tag))
            .map(str::to_string)
    }

    /// Every `sev-inject-launch-secret` the domain received (accepted or refused by the
    /// simulated firmware), oldest first.
    pub fn injections(&self, domain: &str) -> Vec<Injection> {
        let rec = self.read_record();
        let Some(all) = rec["injections"].as_array() else {
            return Vec::new();
        };
        all.iter()
            .filter(|i| i["domain"] == domain)
            .map(|i| Injection {
                domain: domain.to_string(),
                accepted: i["accepted"].as_bool().unwrap_or(false),
                entries: i["entries"]
                    .as_array()
                    .map(|es| {
                        es.iter()
                            .map(|e| {
                                (
                                    e["guid"].as_str().unwrap_or("").to_string(),
                                    hex::decode(e["data_hex"].as_str().unwrap_or("")).unwrap(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                strict_error: i["strict_error"].as_str().map(str::to_string),
                gpa: i["gpa"].as_u64().unwrap_or(0),
                gpa_given: i["gpa_given"].as_bool().unwrap_or(false),
                plaintext: hex::decode(i["plaintext_hex"].as_str().unwrap_or(""))
                    .unwrap_or_default(),
                raw: i.clone(),
            })
            .collect()
    }

    /// The secrets of the accepted injections into the domain: (GUID, data).
    pub fn injected_secrets(&self, domain: &str) -> Vec<(String, Vec<u8>)> {
        self.injections(domain)
            .into_iter()
            .filter(|i| i.accepted)
            .flat_map(|i| i.entries)
            .collect()
    }

    // ------------------------------------------------------------------- ssh

    /// Starts (once) an sshd playing the hypervisor host's, and returns a `qemu+ssh://` URI
    /// reaching this daemon through it as the daemon's user (`netcat` proxy to its socket).
    ///
    /// So that the connection is really remote, sshd runs in the daemon's UTS namespace (its
    /// hostname) and in a network namespace of its own, reached over a veth pair at
    /// 198.18.N.2 (RFC 2544 benchmarking range) from the test's 198.18.N.1: an address the
    /// client machine does not have. Own host key, generated client key, random high port.
    /// None (after a SKIPPED line) when not root or ssh/sshd/ip are missing.
    pub fn ssh_uri(&self) -> Option<String> {
        let mut guard = self.sshd.lock().unwrap();
        if guard.is_none() {
            match self.start_sshd() {
                Ok(s) => *guard = Some(s),
                Err(why) => {
                    skip_or_fail("qemu+ssh transport", &why);
                    return None;
                }
            }
        }
        let s = guard.as_ref().unwrap();
        Some(format!(
            "qemu+ssh://{USER}@{}:{}/session?{}",
            s.addr, s.port, s.uri_params
        ))
    }

    /// The address of the simulated remote hypervisor host (after [`Host::ssh_uri`]).
    pub fn remote_addr(&self) -> Option<String> {
        self.sshd.lock().unwrap().as_ref().map(|s| s.addr.clone())
    }

    fn start_sshd(&self) -> Result<Sshd, String> {
        if !self.as_root {
            return Err("needs root (sshd, network and UTS namespaces)".into());
        }
        if self.hostname.is_none() {
            return Err("the daemon has no hostname of its own (unshare missing)".into());
        }
        for p in [
            SSHD,
            SSH,
            SSH_KEYGEN,
            IP,
            "/usr/bin/nsenter",
            "/usr/bin/unshare",
        ] {
            if !Path::new(p).exists() {
                return Err(format!(
                    "missing {p} (openssh-server, openssh-client, iproute2, util-linux)"
                ));
            }
        }
        // sshd refuses users whose shell is nologin or whose password is locked ('!').
        let out = Command::new("usermod")
            .args(["--shell", "/bin/sh", "--password", "*", USER])
            .output()
            .map_err(|e| format!("usermod: {e}"))?;
        if !out.status.success() {
            return Err(format!("usermod: {}", String::from_utf8_lossy(&out.stderr)));
        }
        // Privilege separation directory (normally made by the service unit).
        let _ = fs::create_dir_all("/run/sshd");
        let _ = fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755));

        let d = self.dir.join("ssh");
        fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        for key in ["hostkey", "clientkey"] {
            let out = Command::new(SSH_KEYGEN)
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "sev-e2e", "-f"])
                .arg(d.join(key))
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "ssh-keygen: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        fs::copy(d.join("clientkey.pub"), d.join("authorized_keys")).map_err(|e| e.to_string())?;
        fs::set_permissions(d.join("authorized_keys"), fs::Permissions::from_mode(0o644)).unwrap();
        // The external ssh client libvirt runs (URI param `command`): root's ~/.ssh (config,
        // known_hosts) is neither read nor written.
        let ssh_cmd = d.join("ssh");
        write_file(
            &ssh_cmd,
            format!(
                "#!/bin/sh\nexec {SSH} -F /dev/null -o UserKnownHostsFile=/dev/null \
                 -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 \"$@\"\n"
            )
            .as_bytes(),
            0o755,
        );

        let rnd = random_bytes(4);
        let port = 20000 + (u16::from_le_bytes([rnd[0], rnd[1]]) % 30000);
        let conf = format!(
            "ListenAddress 0.0.0.0\nPort {port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             PidFile {pid}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowUsers {USER}\n\
             PermitRootLogin no\nX11Forwarding no\nAllowTcpForwarding no\nPrintMotd no\n\
             PrintLastLog no\nUseDNS no\nLogLevel VERBOSE\n",
            hk = d.join("hostkey").display(),
            ak = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
        );
        write_file(&d.join("sshd_config"), conf.as_bytes(), 0o644);
        let log = fs::File::create(d.join("sshd.log")).unwrap();
        // nsenter (daemon's hostname) and unshare (new network namespace) exec in place: the
        // child's pid is sshd's, and its network namespace is the "hypervisor host's".
        let mut child = Command::new("/usr/bin/nsenter")
            .arg("--uts")
            .arg(format!("--target={}", self.daemon_pid))
            .args([
                "--",
                "/usr/bin/unshare",
                "--net",
                "--",
                SSHD,
                "-D",
                "-e",
                "-f",
            ])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn sshd: {e}"))?;
        self.note_pid(child.id());
        let fail = |child: &mut Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "{why}\n{}",
                fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            ))
        };

        // The child execs nsenter, then unshare, which makes the new network
        // namespace, then sshd. Wait for the namespace: a veth peer moved to
        // the child's pid before then lands in this namespace, and the steps
        // below fail with "Cannot find device" (seen under load).
        let own_ns = fs::read_link("/proc/self/ns/net").ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ns = fs::read_link(format!("/proc/{}/ns/net", child.id())).ok();
            if ns.is_some() && ns != own_ns {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                return fail(
                    &mut child,
                    format!("sshd exited ({st}) before it had a network namespace"),
                );
            }
            if Instant::now() > deadline {
                return fail(
                    &mut child,
                    "sshd got no network namespace of its own in 10 s".into(),
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }

        // veth pair: test side 198.18.N.1/30, sshd side 198.18.N.2/30.
        let tag: String = rnd.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let (veth, peer) = (format!("sve{}a", &tag[..6]), format!("sve{}b", &tag[..6]));
        let net = 4 * (rnd[2] as u32 % 64);
        let third = 100 + (rnd[3] as u32 % 100);
        let (here, there) = (
            format!("198.18.{third}.{}", net + 1),
            format!("198.18.{third}.{}", net + 2),
        );
        let pid = child.id().to_string();
        let steps: Vec<Vec<String>> = vec![
            vec![
                IP.into(),
                "link".into(),
                "add".into(),
                veth.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                peer.clone(),
                "netns".into(),
                pid.clone(),
            ],
            vec![
                IP.into(),
                "addr".into(),
                "add".into(),
                format!("{here}/30"),
                "dev".into(),
                veth.clone(),
            ],
            vec![
                IP.into(),
                "link".into(),
                "set".into(),
                veth.clone(),
                "up".into(),
            ],
            vec![
                "/usr/bin/nsenter".into(),
                "--net".into(),
                format!("--target={pid}"),
                IP.into(),
                "addr".into(),
                "add".into(),
                format!("{there}/30"),
                "dev".into(),
                peer.clone(),
            ],
            vec![
                "/usr/bin/nsenter".into(),
                "--net".into(),
                format!("--target={pid}"),
                IP.into(),
                "link".into(),
                "set".into(),
                peer.clone(),
                "up".into(),
            ],
            vec![
                "/usr/bin/nsenter".into(),
                "--net".into(),
                format!("--target={pid}"),
                IP.into(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
        ];
        for step in &steps {
            let out = Command::new(&step[0])
                .args(&step[1..])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                let _ = Command::new(IP).args(["link", "del", &veth]).output();
                return fail(
                    &mut child,
                    format!(
                        "{}: {}",
                        step.join(" "),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                );
            }
        }

        // Ready when the port accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                let _ = Command::new(IP).args(["link", "del", &veth]).output();
                return fail(&mut child, format!("sshd exited: {st}"));
            }
            let addr: std::net::SocketAddr = format!("{there}:{port}").parse().unwrap();
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                let params = format!(
                    "socket={}&keyfile={}&no_verify=1&command={}",
                    self.socket.display(),
                    d.join("clientkey").display(),
                    ssh_cmd.display()
                );
                return Ok(Sshd {
                    child,
                    addr: there,
                    port,
                    veth,
                    uri_params: params,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new(IP).args(["link", "del", &veth]).output();
        fail(&mut child, format!("sshd not reachable at {there}:{port}"))
    }

    // ------------------------------------------------------------------- logs, teardown

    /// libvirtd's and the wrapper's logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for (what, p) in [
            ("libvirtd.log", self.dir.join("libvirtd.log")),
            ("wrapper.log", self.dir.join("state/wrapper.log")),
            ("sshd.log", self.dir.join("ssh/sshd.log")),
        ] {
            if let Ok(t) = fs::read_to_string(&p) {
                let _ = writeln!(s, "----- {what}\n{t}");
            }
        }
        s
    }

    /// The last lines of the logs and of the per-domain QEMU logs.
    pub fn tail_logs(&self) -> String {
        let mut s = String::new();
        let mut files = vec![
            self.dir.join("libvirtd.log"),
            self.dir.join("state/wrapper.log"),
        ];
        if let Ok(rd) = fs::read_dir(self.dir.join("cache/libvirt/qemu/log")) {
            files.extend(rd.flatten().map(|e| e.path()));
        }
        for p in files {
            if let Ok(t) = fs::read_to_string(&p) {
                let lines: Vec<&str> = t.lines().collect();
                let from = lines.len().saturating_sub(15);
                let _ = writeln!(
                    s,
                    "----- {} (tail)\n{}",
                    p.display(),
                    lines[from..].join("\n")
                );
            }
        }
        s
    }

    /// Destroys the domains, stops sshd and libvirtd (by pid), removes the temp dir.
    /// Idempotent; also run by Drop and, for [`Host::shared`], at process exit.
    pub fn teardown(&self) {
        {
            let mut done = self.torn_down.lock().unwrap();
            if *done {
                return;
            }
            *done = true;
        }
        let keep = std::env::var_os("SEV_E2E_KEEP").is_some();
        let domains: Vec<String> = self.domains.lock().unwrap().clone();
        for d in &domains {
            let _ = run_timeout(
                Command::new(VIRSH)
                    .arg("-q")
                    .arg("-c")
                    .arg(self.uri())
                    .args(["destroy", d]),
                Duration::from_secs(15),
            );
            let _ = run_timeout(
                Command::new(VIRSH)
                    .arg("-q")
                    .arg("-c")
                    .arg(self.uri())
                    .args(["undefine", "--nvram", d]),
                Duration::from_secs(15),
            );
        }
        if let Some(mut s) = self.sshd.lock().unwrap().take() {
            let _ = s.child.kill();
            let _ = s.child.wait();
            // Normally gone with sshd's network namespace already.
            let _ = Command::new(IP).args(["link", "del", &s.veth]).output();
        }
        // QEMU processes libvirt may still track (pidfiles), then the daemon.
        if let Ok(rd) = fs::read_dir(self.dir.join("run/libvirt/qemu/run")) {
            for e in rd.flatten() {
                if e.path().extension() == Some(OsStr::new("pid")) {
                    if let Ok(Ok(p)) = fs::read_to_string(e.path()).map(|s| s.trim().parse::<i32>())
                    {
                        unsafe {
                            kill(p, SIGKILL);
                        }
                    }
                }
            }
        }
        // The session virtlogd libvirtd spawned outlives libvirtd: stop it (and
        // anything else left but the daemon) first, while the reaper above the
        // daemon is still there to reap it, so no zombie is left behind.
        let daemon_pid = self.daemon_pid;
        let others = || -> Vec<i32> {
            processes_started_in(&self.dir)
                .into_iter()
                .filter(|(p, name)| *p != daemon_pid && name != "libvirtd")
                .map(|(p, _)| p)
                .collect()
        };
        let stopping = others();
        for p in &stopping {
            unsafe {
                kill(*p, SIGTERM);
            }
        }
        // Gone from /proc, not only exited: reaped, not a zombie.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && stopping
                .iter()
                .any(|p| Path::new(&format!("/proc/{p}")).exists())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let child = self.daemon.lock().unwrap().take();
        unsafe {
            kill(self.daemon_pid, SIGTERM);
        }
        if let Some(mut c) = child {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        // Anything still running with this host's directory in its
        // environment (only processes this host started carry it).
        let mut left = processes_started_in(&self.dir);
        let deadline = Instant::now() + Duration::from_secs(5);
        for sig in [SIGTERM, SIGKILL] {
            for (pid, _) in &left {
                unsafe {
                    kill(*pid, sig);
                }
            }
            while !left.is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                left = processes_started_in(&self.dir);
            }
            if left.is_empty() {
                break;
            }
        }
        if keep {
            eprintln!("e2e: SEV_E2E_KEEP set: leaving {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.teardown();
    }
}

// ------------------------------------------------------------------- the validators

/// Where a client runs: on the hypervisor host (in the daemon's UTS namespace, so its hostname
/// is the daemon's and the Python tool's hostname check sees a local connection), or
/// elsewhere (the test's own namespace, another hostname: "remote").
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Side {
    OnHost,
    Elsewhere,
}

impl Host {
    /// A command for `program` run on `side`.
    pub fn command(&self, side: Side, program: impl AsRef<OsStr>) -> Command {
        if side == Side::OnHost && self.hostname.is_some() {
            let mut c = Command::new("/usr/bin/nsenter");
            c.arg("--uts")
                .arg(format!("--target={}", self.daemon_pid))
                .arg("--")
                .arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// Runs libvirt's Python validator (Debian's, with Debian's python3) on `side`.
    pub fn python_validator(&self, side: Side, args: &[&OsStr]) -> (i32, String, String) {
        let mut c = self.command(side, PYTHON);
        c.arg(PY_VALIDATOR).args(args);
        split(&run_timeout(&mut c, CMD_TIMEOUT))
    }

    /// Runs our validator binary ([`our_validator_path`]) on `side`.
    pub fn our_validator(&self, side: Side, args: &[&OsStr]) -> (i32, String, String) {
        let mut c = self.command(side, our_validator_path());
        c.args(args);
        split(&run_timeout(&mut c, CMD_TIMEOUT))
    }
}

/// Our validator binary: Cargo's for integration tests; elsewhere (a cargo example, where
/// `CARGO_BIN_EXE_*` does not exist) `$SEV_VALIDATE_BIN`, else the release build.
pub fn our_validator_path() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_virt-qemu-sev-validate") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("SEV_VALIDATE_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/virt-qemu-sev-validate")
}

/// Whether Debian's Python validator is installed (with its modules).
pub fn python_validator_available() -> bool {
    Path::new(PY_VALIDATOR).exists()
        && Command::new(PYTHON)
            .args(["-c", "import libvirt, lxml, cryptography"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}
