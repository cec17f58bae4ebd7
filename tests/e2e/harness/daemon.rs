//! The session libvirtd ([`Host`]): its work directory, keys, firmware and emulator script, the
//! daemon started as the unprivileged user (in its own UTS namespace, or in the libvirt 11
//! chroot), and what the tests read of it.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::ssh::Sshd;
use super::*;

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

/// A running session libvirtd with the SEV-simulating emulator; see the module docs.
pub struct Host {
    pub(super) dir: PathBuf,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) as_root: bool,
    pub(super) daemon: Mutex<Option<Child>>,
    pub(super) daemon_pid: i32,
    pub(super) socket: PathBuf,
    pub(super) emulator: PathBuf,
    pub(super) tik: PathBuf,
    pub(super) tek: PathBuf,
    pub(super) tk: PathBuf,
    pub(super) record: PathBuf,
    pub(super) fw_plain: PathBuf,
    pub(super) fw_hashes: PathBuf,
    /// [`snp_kernel_hashes_firmware`] of Debian's OVMF.fd.
    pub(super) fw_snp: PathBuf,
    /// Why SNP domains cannot run on this host (None: they can).
    pub(super) snp_missing: Option<String>,
    pub(super) kernel: PathBuf,
    pub(super) initrd: PathBuf,
    pub(super) hostname: Option<String>,
    pub(super) libvirt: Libvirt,
    /// `virsh version --daemon`'s daemon and hypervisor versions, e.g. ("11.3.0", "QEMU 10.0.2").
    pub(super) versions: (String, String),
    pub(super) domains: Mutex<Vec<String>>,
    pub(super) sshd: Mutex<Option<Sshd>>,
    pub(super) torn_down: Mutex<bool>,
    pub(super) counter: std::sync::atomic::AtomicU32,
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
    if Path::new(PYTHON).exists() && !succeeds(PYTHON, &["-c", "import cryptography"]) {
        missing.push("python3-cryptography".into());
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
        for f in ["qemu_sev_wrapper.py", "sev_sp.py", "guest_agent.py"] {
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
        let use_uts = as_root && succeeds("/usr/bin/unshare", &["--uts", "--", "/bin/true"]);
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

    pub(super) fn note_pid(&self, pid: u32) {
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
}
