//! The QMP source against QEMU run by hand, the way owners run it without libvirt
//! (`-S -object sev-guest,... -qmp unix:PATH,server=on,wait=off`), with the AMD SEV firmware
//! simulated on the monitor: tests/sim/qemu_sev_wrapper.py in its direct mode listens on PATH,
//! gives real QEMU 7.2 (TCG) a monitor of its own and answers `query-sev`,
//! `query-sev-launch-measure` and `sev-inject-launch-secret` as QEMU on SEV hardware would
//! (measurement from tests/sim/sev_sp.py over what QEMU really launches). Everything else,
//! `cont` and `query-status` included, is real QEMU's.
//!
//! Each guest has its own temporary directory: the simulator's config (TIK/TEK), its record of
//! launches, injected secrets (decrypted with the TEK) and `cont`s, and the logs. Guests are
//! killed on drop (the wrapper execs QEMU in place, so the child is QEMU; the proxy follows it).
//!
//! Prerequisites: /usr/bin/qemu-system-x86_64, /usr/bin/python3 with python3-cryptography and
//! Debian's /usr/share/ovmf/OVMF.fd. Without them: a visible SKIPPED line, or a failure in CI.
//!
//! With `SEV_E2E_LIBVIRT=11` the wrapper runs with the python3 of the libvirt 11 chroot
//! (scripts/setup-libvirt11.sh) and execs its QEMU 10.0, the guest's directory bind-mounted at
//! its own path (tests/e2e/harness/, `chroot_command`); the tool stays on the host.

use crate::harness as e2e;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::MILAN;

const WRAPPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sim/qemu_sev_wrapper.py");
const LUKS_GUID: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";

/// What is missing to run these tests (checked once).
fn missing() -> &'static Vec<String> {
    static MISSING: OnceLock<Vec<String>> = OnceLock::new();
    MISSING.get_or_init(|| {
        if e2e::Libvirt::from_env() == e2e::Libvirt::V11 {
            let mut m = e2e::libvirt11_missing();
            if !Path::new(e2e::DEBIAN_OVMF).exists() {
                m.push(e2e::DEBIAN_OVMF.into());
            }
            if m.is_empty() {
                print_qemu_version();
            }
            return m;
        }
        print_qemu_version();
        let mut m: Vec<String> = [e2e::REAL_QEMU, e2e::PYTHON, e2e::DEBIAN_OVMF]
            .iter()
            .filter(|p| !Path::new(p).exists())
            .map(|p| p.to_string())
            .collect();
        if Path::new(e2e::PYTHON).exists()
            && !e2e::succeeds(e2e::PYTHON, &["-c", "import cryptography"])
        {
            m.push("python3-cryptography".into());
        }
        m
    })
}

/// Says once, on stderr itself (not captured), which QEMU these tests run.
fn print_qemu_version() {
    let mut c = match e2e::Libvirt::from_env().root() {
        Some(root) => e2e::chroot_command(&root, &[], None, &[e2e::REAL_QEMU.into()]),
        None => Command::new(e2e::REAL_QEMU),
    };
    let (_, out, err) = e2e::split(&e2e::run_timeout(
        c.arg("--version"),
        Duration::from_secs(30),
    ));
    let first = out.lines().next().unwrap_or(err.trim()).to_string();
    let _ = writeln!(
        std::io::stderr(),
        "qmp_sim: {first} ({})",
        match e2e::Libvirt::from_env().root() {
            Some(r) => format!("chroot {}", r.display()),
            None => "host".into(),
        }
    );
}

use e2e::skip_or_fail;

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut v))
        .expect("read /dev/urandom");
    v
}

/// The owner's files and the simulator's configuration, in a directory of their own.
struct Sim {
    dir: tempfile::TempDir,
    tik: PathBuf,
    tek: PathBuf,
    tk: PathBuf,
    config: PathBuf,
    record: PathBuf,
    /// Copy of Debian's OVMF.fd.
    fw: PathBuf,
    /// The same with the kernel hashes area patched to 0x80FC00 / 0x400.
    fw_hashes: PathBuf,
    /// The same with an SNP_KERNEL_HASHES metadata section too (SEV-SNP direct boot).
    fw_snp: PathBuf,
    /// Why SNP guests cannot be simulated here (no sev-snp-measure to copy), or None.
    snp_missing: Option<String>,
    kernel: PathBuf,
    initrd: PathBuf,
}

impl Sim {
    /// None (after a visible SKIPPED line) when prerequisites are missing; panics in CI.
    fn new(test: &str) -> Option<Sim> {
        if !missing().is_empty() {
            skip_or_fail(test, &format!("missing {}", missing().join(", ")));
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("qmpsim-")
            .tempdir()
            .unwrap();
        let p = |n: &str| dir.path().join(n);
        let (tik_b, tek_b) = (random_bytes(16), random_bytes(16));
        std::fs::write(p("tik.bin"), &tik_b).unwrap();
        std::fs::write(p("tek.bin"), &tek_b).unwrap();
        std::fs::write(p("tk.bin"), [tek_b, tik_b].concat()).unwrap();
        let ovmf = std::fs::read(e2e::DEBIAN_OVMF).unwrap();
        std::fs::write(p("OVMF.fd"), &ovmf).unwrap();
        std::fs::write(
            p("OVMF-hashes.fd"),
            e2e::patch_hash_area(&ovmf, e2e::HASH_AREA_BASE, e2e::HASH_AREA_SIZE),
        )
        .unwrap();
        std::fs::write(p("OVMF-snp.fd"), e2e::snp_kernel_hashes_firmware(&ovmf)).unwrap();
        std::fs::write(p("vmlinuz"), random_bytes(8192 + 123)).unwrap();
        std::fs::write(p("initrd.img"), random_bytes(4096 + 77)).unwrap();
        std::fs::create_dir(p("run")).unwrap();
        // The wrapper from inside the directory, which is all a chroot run can see of the host.
        std::fs::create_dir(p("sim")).unwrap();
        let sim_src = Path::new(WRAPPER).parent().unwrap();
        for f in ["qemu_sev_wrapper.py", "sev_sp.py", "guest_agent.py"] {
            std::fs::copy(sim_src.join(f), p("sim").join(f)).unwrap();
        }
        let snp_missing = e2e::copy_sevsnpmeasure(&p("sim")).err();
        let config = json!({
            "real_qemu": e2e::REAL_QEMU,
            "tik": p("tik.bin"), "tek": p("tek.bin"),
            "api_major": e2e::API_MAJOR, "api_minor": e2e::API_MINOR, "build_id": e2e::BUILD_ID,
            "record": p("record.json"),
            "run_dir": p("run"),
        });
        std::fs::write(p("config.json"), config.to_string()).unwrap();
        Some(Sim {
            tik: p("tik.bin"),
            tek: p("tek.bin"),
            tk: p("tk.bin"),
            config: p("config.json"),
            record: p("record.json"),
            fw: p("OVMF.fd"),
            fw_hashes: p("OVMF-hashes.fd"),
            fw_snp: p("OVMF-snp.fd"),
            snp_missing,
            kernel: p("vmlinuz"),
            initrd: p("initrd.img"),
            dir,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file into the directory; returns its path.
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    /// Starts `qemu_sev_wrapper.py ARGS` as an owner starts QEMU, paused (-S), and waits until
    /// its monitor is there.
    fn start(&self, spec: Spec) -> Guest {
        let name = spec.name.to_string();
        let mut sev = match spec.snp {
            Some(extra) => format!(
                "sev-snp-guest,id=sev0,policy={:#x},cbitpos=51,reduced-phys-bits=1{extra}",
                spec.policy
            ),
            None => format!(
                "sev-guest,id=sev0,policy={:#x},cbitpos=51,reduced-phys-bits=1",
                spec.policy
            ),
        };
        if spec.kernel {
            sev.push_str(",kernel-hashes=on");
        }
        let mut args: Vec<String> = vec![
            "-S".into(),
            "-name".into(),
            format!("guest={name}"),
            "-machine".into(),
            "q35,accel=tcg,confidential-guest-support=sev0".into(),
            "-object".into(),
            sev,
            "-bios".into(),
            spec.firmware.display().to_string(),
        ];
        if spec.kernel {
            args.extend([
                "-kernel".into(),
                self.kernel.display().to_string(),
                "-initrd".into(),
                self.initrd.display().to_string(),
                "-append".into(),
                e2e::CMDLINE.into(),
            ]);
        }
        args.extend(["-smp".into(), spec.smp.to_string()]);
        if let Some(cpu) = spec.cpu {
            args.extend(["-cpu".into(), cpu.into()]);
        }
        let sock = self.path(&format!("{name}.qmp"));
        let endpoint = match spec.monitor {
            Monitor::Qmp => {
                args.extend([
                    "-qmp".into(),
                    format!("unix:{},server=on,wait=off", sock.display()),
                ]);
                Endpoint::Unix(sock)
            }
            Monitor::Chardev => {
                args.extend([
                    "-chardev".into(),
                    format!("socket,id=mon0,path={},server=on,wait=off", sock.display()),
                    "-mon".into(),
                    "chardev=mon0,mode=control".into(),
                ]);
                Endpoint::Unix(sock)
            }
            Monitor::Tcp(port) => {
                args.extend([
                    "-qmp".into(),
                    format!("tcp:127.0.0.1:{port},server=on,wait=off"),
                ]);
                Endpoint::Tcp(format!("127.0.0.1:{port}"))
            }
        };
        args.extend(["-display", "none", "-nodefaults"].map(String::from));
        let log = self.path(&format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut argv: Vec<std::ffi::OsString> = vec![
            e2e::PYTHON.into(),
            self.path("sim/qemu_sev_wrapper.py").into(),
        ];
        argv.extend(args.iter().map(Into::into));
        let mut cmd = match e2e::Libvirt::from_env().root() {
            Some(root) => e2e::chroot_command(&root, &[self.dir.path()], None, &argv),
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        let child = cmd
            .env("SEV_WRAPPER_CONFIG", &self.config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("run qemu_sev_wrapper.py");
        let mut g = Guest {
            child,
            name,
            endpoint,
            log,
            wrapper_log: self.path("run/wrapper.log"),
        };
        // The wrapper binds the monitor socket, then records the launch, then starts QEMU.
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.launch(&g.name).is_none() {
            if let Some(st) = g.child.try_wait().unwrap() {
                panic!(
                    "the wrapper exited ({st}) before QEMU started\n{}",
                    g.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no launch recorded in 20 s\n{}",
                g.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        g
    }

    fn record(&self) -> Value {
        std::fs::read_to_string(&self.record)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }

    fn entries(&self, kind: &str, name: &str) -> Vec<Value> {
        self.record()[kind]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["name"] == name || e["domain"] == name)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the wrapper recorded for the guest's launch (firmware, policy, smp, signature, ...).
    fn launch(&self, name: &str) -> Option<Value> {
        self.entries("launches", name).pop()
    }

    /// Every `sev-inject-launch-secret` the simulated firmware checked (accepted or not).
    fn injections(&self, name: &str) -> Vec<Value> {
        self.entries("injections", name)
    }

    /// The secrets of the accepted injections, as the simulator decrypted them with the TEK.
    fn injected_secrets(&self, name: &str) -> Vec<(String, Vec<u8>)> {
        self.injections(name)
            .iter()
            .filter(|i| i["accepted"] == true)
            .flat_map(|i| i["entries"].as_array().cloned().unwrap_or_default())
            .map(|e| {
                (
                    e["guid"].as_str().unwrap().to_string(),
                    hex::decode(e["data_hex"].as_str().unwrap()).unwrap(),
                )
            })
            .collect()
    }

    /// Every `cont` QEMU answered, with the SEV state it found.
    fn conts(&self, name: &str) -> Vec<Value> {
        self.entries("conts", name)
    }

    /// Our tool's arguments for the guest, as its owner gives them.
    fn owner(&self, g: &Guest, firmware: &Path) -> Vec<String> {
        vec![
            "--qmp".into(),
            g.endpoint.text(),
            "--firmware".into(),
            firmware.display().to_string(),
            "--tik".into(),
            self.tik.display().to_string(),
            "--tek".into(),
            self.tek.display().to_string(),
        ]
    }

    /// The same with the kernel, initrd and command line the guest was started with.
    fn owner_kernel(&self, g: &Guest, firmware: &Path) -> Vec<String> {
        let mut v = self.owner(g, firmware);
        v.extend([
            "--kernel".into(),
            self.kernel.display().to_string(),
            "--initrd".into(),
            self.initrd.display().to_string(),
            "--cmdline".into(),
            e2e::CMDLINE.into(),
        ]);
        v
    }
}

#[derive(Clone, Copy)]
enum Monitor {
    /// `-qmp unix:PATH,server=on,wait=off`
    Qmp,
    /// `-chardev socket,id=mon0,path=PATH,server=on,wait=off -mon chardev=mon0,mode=control`
    Chardev,
    /// `-qmp tcp:127.0.0.1:PORT,server=on,wait=off`
    Tcp(u16),
}

struct Spec<'a> {
    name: &'a str,
    policy: u32,
    firmware: &'a Path,
    /// -kernel/-initrd/-append with kernel-hashes=on
    kernel: bool,
    smp: u32,
    cpu: Option<&'a str>,
    monitor: Monitor,
    /// A `sev-snp-guest` object instead of `sev-guest`, with these more `,key=value` options.
    snp: Option<&'a str>,
}

impl<'a> Spec<'a> {
    fn sev(name: &'a str, firmware: &'a Path) -> Spec<'a> {
        Spec {
            name,
            policy: 0x3,
            firmware,
            kernel: false,
            smp: 1,
            cpu: None,
            monitor: Monitor::Qmp,
            snp: None,
        }
    }
}

enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Endpoint {
    fn text(&self) -> String {
        match self {
            Endpoint::Unix(p) => p.display().to_string(),
            Endpoint::Tcp(a) => format!("tcp:{a}"),
        }
    }
}

/// QEMU (exec'd by the wrapper in place), killed on drop.
struct Guest {
    child: Child,
    name: String,
    endpoint: Endpoint,
    log: PathBuf,
    wrapper_log: PathBuf,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Guest {
    fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- QEMU {}:\n{}\n--- wrapper.log:\n{}",
            self.name,
            read(&self.log),
            read(&self.wrapper_log)
        )
    }

    /// Runs `commands` on a fresh monitor connection (through the simulator, as any client);
    /// returns each one's `return` value, or `{"error": ...}`.
    fn qmp(&self, commands: &[&str]) -> Vec<Value> {
        match &self.endpoint {
            Endpoint::Unix(p) => {
                let s = UnixStream::connect(p).unwrap_or_else(|e| panic!("connect {p:?}: {e}"));
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                talk(BufReader::new(s.try_clone().unwrap()), s, commands)
            }
            Endpoint::Tcp(a) => {
                let s = TcpStream::connect(a).unwrap_or_else(|e| panic!("connect {a}: {e}"));
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                talk(BufReader::new(s.try_clone().unwrap()), s, commands)
            }
        }
    }

    /// `query-status`: (running, status), e.g. (false, "prelaunch") or (true, "running").
    fn status(&self) -> (bool, String) {
        let r = self.qmp(&["query-status"]).remove(0);
        (
            r["running"].as_bool().unwrap_or_else(|| panic!("{r}")),
            r["status"].as_str().unwrap().to_string(),
        )
    }

    /// The SEV state `query-sev` reports ("launch-secret", "running").
    fn sev_state(&self) -> String {
        let r = self.qmp(&["query-sev"]).remove(0);
        r["state"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_string()
    }

    /// Paused before its first `cont`, SEV launch state still open for secrets.
    #[track_caller]
    fn assert_paused(&self) {
        assert_eq!(
            self.status(),
            (false, "prelaunch".into()),
            "{}",
            self.logs()
        );
        assert_eq!(self.sev_state(), "launch-secret");
    }

    /// Continued: vCPUs running, SEV state running (LAUNCH_FINISH done).
    #[track_caller]
    fn assert_running(&self) {
        assert_eq!(self.status(), (true, "running".into()), "{}", self.logs());
        assert_eq!(self.sev_state(), "running");
    }
}

fn talk<S: Write>(mut r: BufReader<impl Read>, mut w: S, commands: &[&str]) -> Vec<Value> {
    let read = |r: &mut BufReader<_>| -> Value {
        let mut line = String::new();
        r.read_line(&mut line).expect("read from the monitor");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    let greeting = read(&mut r);
    assert!(greeting.get("QMP").is_some(), "{greeting}");
    let mut out = Vec::new();
    for (i, c) in std::iter::once(&"qmp_capabilities")
        .chain(commands)
        .enumerate()
    {
        let cmd = json!({"execute": c, "id": i});
        w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        let reply = loop {
            let m = read(&mut r);
            if m["id"] == json!(i) {
                break m;
            }
        };
        if i > 0 {
            out.push(reply.get("return").cloned().unwrap_or(reply));
        }
    }
    out
}

/// Runs our tool; returns (exit code, stdout, stderr).
fn tool(args: &[String]) -> (i32, String, String) {
    let out = e2e::run_timeout(
        Command::new(env!("CARGO_BIN_EXE_virt-qemu-sev-validate")).args(args),
        Duration::from_secs(60),
    );
    e2e::split(&out)
}

/// Runs our tool and checks its exit code.
#[track_caller]
fn expect(g: &Guest, args: Vec<String>, code: i32) -> (String, String) {
    let (rc, out, err) = tool(&args);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        rc,
        code,
        "{args:?}\nstdout: {out}\nstderr: {err}\n{}",
        g.logs()
    );
    (out, err)
}

fn plus(mut v: Vec<String>, extra: &[&str]) -> Vec<String> {
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// SEV (policy 0x3), firmware only: refused without --insecure, a wrong firmware fails and
/// leaves the guest untouched, validation alone leaves it paused, injection delivers exactly
/// the owner's secret and continues it, and a second injection after `cont` is refused (5)
/// without another `cont`.
#[test]
fn sev_firmware_only() {
    let Some(s) = Sim::new("sev_firmware_only") else {
        return;
    };
    let g = s.start(Spec::sev("fw", &s.fw));
    let launch = s.launch("fw").unwrap();
    assert_eq!(launch["mode"], "direct", "{launch}");
    assert_eq!(launch["policy"], 3);
    g.assert_paused();
    // The QEMU behind the monitor is the one SEV_E2E_LIBVIRT asked for (7.2 or 10.0).
    let version = g.qmp(&["query-version"]).remove(0);
    assert_eq!(
        version["qemu"]["major"].as_u64(),
        Some(e2e::Libvirt::from_env().qemu_major()),
        "{version}"
    );

    // A unix socket is on this machine: refused before connecting.
    let (_, err) = expect(&g, s.owner(&g, &s.fw), 3);
    assert!(err.contains("unix socket on this machine"), "{err}");

    // The owner's firmware differs from what QEMU loaded (one byte): no injection, no cont.
    let mut wrong = std::fs::read(&s.fw).unwrap();
    let mid = wrong.len() / 2;
    wrong[mid] ^= 0x01;
    let wrong_fw = s.file("OVMF-wrong.fd", &wrong);
    let key = s.file("luks.key", b"correct horse battery staple\n");
    let inject = format!("luks-key:{}", key.display());
    let (_, err) = expect(
        &g,
        plus(
            s.owner(&g, &wrong_fw),
            &["--insecure", "--inject-secret", &inject],
        ),
        1,
    );
    assert!(err.contains("Measurement does not match"), "{err}");
    assert!(s.injections("fw").is_empty());
    assert!(s.conts("fw").is_empty());
    g.assert_paused();

    // Validation alone: the guest stays paused, still open for secrets.
    let (out, _) = expect(&g, plus(s.owner(&g, &s.fw), &["--insecure"]), 0);
    assert!(out.contains("OK: Looks good to me"), "{out}");
    g.assert_paused();

    // Injection: the simulated firmware decrypts exactly the owner's secret; QEMU continues.
    let (out, _) = expect(
        &g,
        plus(
            s.owner(&g, &s.fw),
            &["--insecure", "--inject-secret", &inject],
        ),
        0,
    );
    assert!(out.contains("OK: Injected 1 secrets"), "{out}");
    assert_eq!(
        s.injected_secrets("fw"),
        vec![(
            LUKS_GUID.to_string(),
            b"correct horse battery staple\n".to_vec()
        )],
        "{:?}",
        s.injections("fw")
    );
    let inj = s.injections("fw").pop().unwrap();
    assert_eq!(inj["strict_error"], Value::Null, "{inj}");
    assert_eq!(inj["gpa_given"], false, "{inj}");
    let conts = s.conts("fw");
    assert_eq!(conts.len(), 1, "{conts:?}");
    assert_eq!(conts[0]["state_before"], "launch-secret");
    assert_eq!(conts[0]["ok"], true);
    g.assert_running();

    // After `cont`: --insecure skips the state check at open, validation still passes, but the
    // injection itself is refused by QEMU (not in launch-secret): exit 5, no second `cont`.
    let (out, err) = expect(
        &g,
        plus(
            s.owner(&g, &s.fw),
            &["--insecure", "--inject-secret", &inject],
        ),
        5,
    );
    assert!(out.contains("OK: Looks good to me"), "{out}");
    assert!(err.contains("not in the launch-secret state"), "{err}");
    assert!(err.contains("the guest was not continued"), "{err}");
    assert!(!out.contains("Injected"), "{out}");
    assert_eq!(s.injections("fw").len(), 1, "no second LAUNCH_SECRET");
    assert_eq!(s.conts("fw").len(), 1, "no second cont");
    g.assert_running();
}

/// SEV (policy 0x1) direct boot with kernel-hashes=on on the patched firmware: a wrong kernel
/// or command line fails (1); --no-resume injects and leaves the guest paused.
#[test]
fn sev_kernel_hashes_no_resume() {
    let Some(s) = Sim::new("sev_kernel_hashes_no_resume") else {
        return;
    };
    let g = s.start(Spec {
        policy: 0x1,
        kernel: true,
        ..Spec::sev("kh", &s.fw_hashes)
    });
    let launch = s.launch("kh").unwrap();
    assert_eq!(launch["kernel_hashes"], true, "{launch}");
    g.assert_paused();

    // The owner's kernel is not the one QEMU was given.
    let other = s.file("vmlinuz-other", &random_bytes(8192 + 123));
    let mut args = s.owner(&g, &s.fw_hashes);
    args.extend([
        "--kernel".into(),
        other.display().to_string(),
        "--initrd".into(),
        s.initrd.display().to_string(),
        "--cmdline".into(),
        e2e::CMDLINE.into(),
        "--insecure".into(),
    ]);
    let (_, err) = expect(&g, args, 1);
    assert!(err.contains("Measurement does not match"), "{err}");
    // Nor the command line.
    let mut args = s.owner(&g, &s.fw_hashes);
    args.extend([
        "--kernel".into(),
        s.kernel.display().to_string(),
        "--initrd".into(),
        s.initrd.display().to_string(),
        "--cmdline".into(),
        "console=ttyS0 init=/bin/sh".into(),
        "--insecure".into(),
    ]);
    expect(&g, args, 1);
    g.assert_paused();

    // Right inputs, --no-resume: injected, still paused (and still in launch-secret).
    let key = s.file("luks.key", &[0x5a; 64]);
    let inject = format!("luks-key:{}", key.display());
    let (out, _) = expect(
        &g,
        plus(
            s.owner_kernel(&g, &s.fw_hashes),
            &["--insecure", "--no-resume", "--inject-secret", &inject],
        ),
        0,
    );
    assert!(out.contains("OK: Injected 1 secrets"), "{out}");
    assert_eq!(
        s.injected_secrets("kh"),
        vec![(LUKS_GUID.to_string(), vec![0x5a; 64])]
    );
    assert!(s.conts("kh").is_empty(), "{:?}", s.conts("kh"));
    g.assert_paused();
}

/// SEV-ES (policy 0x5), 2 vCPUs of EPYC-Milan: the owner gives the vCPU count and the CPU
/// SKU; a wrong SKU or count fails (1); the right ones validate, inject and continue.
#[test]
fn sev_es_two_vcpus() {
    let Some(s) = Sim::new("sev_es_two_vcpus") else {
        return;
    };
    let g = s.start(Spec {
        policy: 0x5,
        smp: 2,
        cpu: Some("EPYC-Milan"),
        ..Spec::sev("es", &s.fw)
    });
    let launch = s.launch("es").unwrap();
    assert_eq!(launch["signature"], 0xA00F11, "{launch}");
    assert_eq!(launch["smp"], 2);
    g.assert_paused();

    // EPYC-Rome's signature instead of Milan's.
    expect(
        &g,
        plus(
            s.owner(&g, &s.fw),
            &[
                "--insecure",
                "--num-cpus",
                "2",
                "--cpu-family",
                "23",
                "--cpu-model",
                "49",
                "--cpu-stepping",
                "0",
            ],
        ),
        1,
    );
    // One vCPU instead of two.
    let mut args = plus(s.owner(&g, &s.fw), &["--insecure", "--num-cpus", "1"]);
    args.extend(MILAN.iter().map(|s| s.to_string()));
    expect(&g, args, 1);
    g.assert_paused();

    // Right: --tk instead of --tik/--tek this time.
    let key = s.file("luks.key", b"es secret");
    let mut args = vec![
        "--qmp".to_string(),
        g.endpoint.text(),
        "--firmware".into(),
        s.fw.display().to_string(),
        "--tk".into(),
        s.tk.display().to_string(),
        "--insecure".into(),
        "--num-cpus".into(),
        "2".into(),
        "--inject-secret".into(),
        format!("luks-key:{}", key.display()),
    ];
    args.extend(MILAN.iter().map(|s| s.to_string()));
    let (out, _) = expect(&g, args, 0);
    assert!(out.contains("OK: Looks good to me"), "{out}");
    assert!(out.contains("OK: Injected 1 secrets"), "{out}");
    assert_eq!(
        s.injected_secrets("es"),
        vec![(LUKS_GUID.to_string(), b"es secret".to_vec())]
    );
    assert_eq!(s.conts("es").len(), 1);
    g.assert_running();
}

/// The other ways owners give QEMU a monitor: `-chardev socket,path=... -mon mode=control`,
/// and `-qmp tcp:127.0.0.1:PORT` (an address of this machine: refused without --insecure).
#[test]
fn other_monitor_forms() {
    let Some(s) = Sim::new("other_monitor_forms") else {
        return;
    };
    let g = s.start(Spec {
        monitor: Monitor::Chardev,
        ..Spec::sev("chardev", &s.fw)
    });
    g.assert_paused();
    let (out, _) = expect(&g, plus(s.owner(&g, &s.fw), &["--insecure"]), 0);
    assert!(out.contains("OK: Looks good to me"), "{out}");
    drop(g);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let g = s.start(Spec {
        monitor: Monitor::Tcp(port),
        ..Spec::sev("tcp", &s.fw)
    });
    g.assert_paused();
    let (_, err) = expect(&g, s.owner(&g, &s.fw), 3);
    assert!(err.contains("address of this machine"), "{err}");
    let (out, _) = expect(&g, plus(s.owner(&g, &s.fw), &["--insecure"]), 0);
    assert!(out.contains("OK: Looks good to me"), "{out}");
    g.assert_paused();
}

/// SEV-SNP run by hand (`-object sev-snp-guest,...`) on QEMU 10.0: the simulated monitor
/// answers as QEMU 10.0 does for an SNP guest (query-sev sev-type sev-snp with snp-policy, no
/// launch measurement), and the tool recognises the guest as SNP from `query-sev` and runs its
/// SNP flow: the expected MEASUREMENT (the wrapper's sev-snp-measure digest of what QEMU got)
/// is printed, the guest is left paused, and a secret is refused as a usage error. QEMU 7.2
/// (libvirt 9.0's) predates SNP: it runs in the libvirt 11 pass (`e2e::snp_pass`).
#[test]
fn snp_guest_recognised_from_query_sev() {
    if !e2e::snp_pass("snp_guest_recognised_from_query_sev") {
        return;
    }
    let Some(s) = Sim::new("snp_guest_recognised_from_query_sev") else {
        return;
    };
    if let Some(why) = &s.snp_missing {
        skip_or_fail("snp_guest_recognised_from_query_sev", why);
        return;
    }
    let host_data = random_bytes(32);
    let extra = format!(
        ",host-data={}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &host_data)
    );
    let g = s.start(Spec {
        policy: 0x30000,
        kernel: true,
        cpu: Some("EPYC-Milan"),
        snp: Some(&extra),
        ..Spec::sev("snp", &s.fw_snp)
    });
    let launch = s.launch("snp").unwrap();
    assert_eq!(launch["sev_type"], "sev-snp", "{launch}");
    assert_eq!(launch["signature"], 0xA00F11, "{launch}");
    let ld = launch["ld_hex"].as_str().unwrap().to_string();
    let r = g.qmp(&["query-sev", "query-sev-launch-measure", "query-status"]);
    assert_eq!(
        r[0],
        json!({"enabled": true, "api-major": 1, "api-minor": 55, "build-id": 24,
               "state": "launch-update", "sev-type": "sev-snp", "snp-policy": 0x30000}),
        "{}",
        g.logs()
    );
    assert_eq!(
        r[1]["error"]["desc"], "SEV launch measurement is not available",
        "{}",
        r[1]
    );
    assert_eq!(r[2]["status"], "prelaunch");

    let mut owner = vec![
        "--qmp".to_string(),
        g.endpoint.text(),
        "--insecure".into(),
        "--generation".into(),
        "sev-snp".into(),
        "--firmware".into(),
        s.fw_snp.display().to_string(),
        "--kernel".into(),
        s.kernel.display().to_string(),
        "--initrd".into(),
        s.initrd.display().to_string(),
        "--cmdline".into(),
        e2e::CMDLINE.into(),
        "--num-cpus".into(),
        "1".into(),
        "--policy".into(),
        "0x30000".into(),
    ];
    owner.extend(MILAN.map(String::from));
    let (out, err) = expect(&g, owner.clone(), 0);
    assert!(
        out.contains(&ld) || err.contains(&ld),
        "the expected MEASUREMENT {ld}: {out}{err}"
    );
    assert_eq!(g.qmp(&["query-status"])[0]["status"], "prelaunch");
    assert!(
        s.conts("snp").is_empty(),
        "the tool must not continue the guest"
    );

    // An SEV-ES owner's check (the TIK, vCPUs, signature) is refused by the generation,
    // before anything is computed, even with --insecure: the host does not choose it.
    let tk = s.file("tk.bin", &[0x5A; 32]);
    let mut sev_es = owner.clone();
    sev_es.retain(|a| a != "--generation" && a != "sev-snp");
    sev_es.extend(["--tk".to_string(), tk.display().to_string()]);
    let (out, err) = expect(&g, sev_es, 10);
    assert!(
        err.contains("QEMU's query-sev answers sev-type 'sev-snp'")
            && err.contains("you expect an SEV or SEV-ES guest (--tk)"),
        "{err}"
    );
    assert!(!out.contains(&ld) && !err.contains(&ld), "{out}{err}");

    let key = s.file("luks.key", b"correct horse battery staple\n");
    let inject = format!("luks-key:{}", key.display());
    let (out, err) = expect(&g, plus(owner, &["--inject-secret", &inject]), 2);
    let all = format!("{out}{err}");
    assert!(
        all.contains("SEV-SNP")
            && all.contains("no LAUNCH_SECRET")
            && all.contains("give --report"),
        "{all}"
    );
    assert!(s.injections("snp").is_empty());
}
