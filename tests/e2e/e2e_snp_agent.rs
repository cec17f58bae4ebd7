//! The SEV-SNP key release in one command through libvirt (`--domain ... --guest-agent`), end
//! to end on libvirt 11.3 + QEMU 10.0 (`SEV_E2E_LIBVIRT=11`; libvirt 9.0 has no SNP).
//!
//! The domain has a QEMU guest agent channel; QEMU runs no guest OS, so the wrapper
//! (tests/sim/qemu_sev_wrapper.py) relays libvirt's agent connection to a simulated guest agent
//! (tests/sim/guest_agent.py) that runs commands on this machine, "the guest": the REAL
//! `snp-request` built by cargo, against the simulated configfs-tsm (tests/sim/configfs_tsm.py,
//! FUSE) whose reports the simulated SNP firmware signs with the REPORT_DATA snp-request
//! asked for and the MEASUREMENT sev-snp-measure computed for the domain's launch.
//! Expected values are independent of the tool: the disk key is the test's file, opened back
//! by `snp-open` with the guest's key; the launch digest is sev-snp-measure's.

use crate::common::snp_sim;
use crate::harness as e2e;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::e2e_snp::host;
use e2e::{Host, Validator};

const AGENT_CHANNEL: &str =
    "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";

/// A child process killed and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The simulated configfs-tsm mounted on `dir/tsm`, unmounted when dropped.
struct Tsm {
    mnt: PathBuf,
    _proc: Proc,
}

impl Drop for Tsm {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

fn python(script: &str) -> Command {
    let mut c = Command::new("/usr/bin/python3");
    c.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sim")
            .join(script),
    );
    c
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} not ready after 15 s: {}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mount_tsm(test: &str, dir: &Path, chain: &Path, ld: &str) -> Option<Tsm> {
    let fuse = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse");
    let fusepy = Command::new("/usr/bin/python3")
        .args(["-c", "import fusepy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if fuse.is_err() || !fusepy {
        e2e::skip_or_fail(
            test,
            "FUSE (/dev/fuse, as root) and python3-fusepy are needed",
        );
        return None;
    }
    let mnt = dir.join("tsm");
    fs::create_dir(&mnt).unwrap();
    let log = dir.join("tsm.log");
    let child = python("configfs_tsm.py")
        .arg(&mnt)
        .arg("--chain")
        .arg(chain)
        .args(["--measurement", ld, "--policy", "0x30000"])
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .expect("start configfs_tsm.py");
    let tsm = Tsm {
        mnt: mnt.clone(),
        _proc: Proc(child),
    };
    wait_for("configfs-tsm", || mnt.join("report").is_dir(), &log);
    Some(tsm)
}

/// The simulated guest agent on the socket the wrapper relays the domain's channel to.
fn start_agent(h: &Host, dom: &str, log: &Path, extra: &[&str]) -> Proc {
    let sock = h.dir().join("state").join(format!("agent-{dom}.sock"));
    let _ = fs::remove_file(&sock);
    let child = python("guest_agent.py")
        .arg(&sock)
        .arg("--log")
        .arg(log)
        .args(extra)
        .stdin(Stdio::null())
        .spawn()
        .expect("start guest_agent.py");
    wait_for("the simulated guest agent", || sock.exists(), log);
    Proc(child)
}

fn agent_answers(h: &Host, dom: &str) -> bool {
    let (rc, out, _) = h.virsh(&["qemu-agent-command", dom, r#"{"execute":"guest-ping"}"#]);
    rc == 0 && out.contains("return")
}

/// The owner's command line: the launch (as e2e_snp.rs), the test chain, the agent options.
fn argv(h: &Host, dom: &str, chain: &Path, guest: &Path, tsm: &Path, key: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        "--connect".into(),
        h.uri().into(),
        "--insecure".into(),
        "--domain".into(),
        dom.into(),
        "--firmware".into(),
        h.firmware_snp().into(),
        "--kernel".into(),
        h.kernel().into(),
        "--initrd".into(),
        h.initrd().into(),
        "--cmdline".into(),
        e2e::CMDLINE.into(),
    ];
    let more: Vec<String> = vec![
        "--num-cpus=1".into(),
        "--cpu-family=25".into(),
        "--cpu-model=1".into(),
        "--cpu-stepping=1".into(),
        "--policy=0x30000".into(),
        format!("--vcek={}", chain.join("vcek.der").display()),
        format!("--trust-anchors={}", chain.join("ark.pem").display()),
        format!("--trust-anchors={}", chain.join("ask.pem").display()),
        "--guest-agent".into(),
        format!("--inject-secret=luks-key:{}", key.display()),
        format!("--guest-key-dir={}", guest.display()),
        format!("--guest-sealed-path={}", guest.join("sealed.bin").display()),
        format!(
            "--guest-request-command={}",
            e2e::our_validator_path().display()
        ),
        format!(
            "--guest-request-arg=--tsm-root={}",
            tsm.join("report").display()
        ),
    ];
    v.extend(more.into_iter().map(OsString::from));
    v
}

/// What the test sets up on "the guest" and the owner's side.
struct Setup {
    tmp: tempfile::TempDir,
    chain: PathBuf,
    tsm: Tsm,
    /// The guest's key directory (0700, this user's), where the sealed file goes.
    guest: tempfile::TempDir,
    /// The owner's disk key file and its bytes.
    key: PathBuf,
    disk_key: Vec<u8>,
}

impl Setup {
    fn argv(&self, h: &Host, dom: &str) -> Vec<OsString> {
        argv(
            h,
            dom,
            &self.chain,
            self.guest.path(),
            &self.tsm.mnt,
            &self.key,
        )
    }

    fn sealed(&self) -> PathBuf {
        self.guest.path().join("sealed.bin")
    }

    fn agent_log(&self) -> PathBuf {
        self.tmp.path().join("agent.log")
    }
}

fn setup(test: &str, h: &Host) -> Option<Setup> {
    let tmp = tempfile::tempdir().unwrap();
    let chain = tmp.path().join("chain");
    fs::create_dir(&chain).unwrap();
    snp_sim::chain("milan", &chain, &[])?;
    // sev-snp-measure's digest of the domain's launch: what the simulated firmware signs.
    let ld = snp_sim::measure(&[
        "--ovmf",
        &h.firmware_snp().to_string_lossy(),
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-Milan",
        "--guest-features",
        "0x1",
        "--kernel",
        &h.kernel().to_string_lossy(),
        "--initrd",
        &h.initrd().to_string_lossy(),
        "--append",
        e2e::CMDLINE,
    ])
    .expect("sev-snp-measure");
    let tsm = mount_tsm(test, tmp.path(), &chain, &ld)?;
    let guest = tempfile::tempdir().unwrap();
    fs::set_permissions(
        guest.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let key = tmp.path().join("disk.key");
    let mut disk_key = vec![0u8; 48];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut disk_key))
        .unwrap();
    fs::write(&key, &disk_key).unwrap();
    Some(Setup {
        tmp,
        chain,
        tsm,
        guest,
        key,
        disk_key,
    })
}

/// Without the agent's channel: refused before anything is asked of the guest (exit 4).
fn refused_without_a_channel(h: &Host, s: &Setup) {
    let plain = h.define(&h.spec_snp(&h.unique_name("snp-noagent"), 1).xml());
    let plain = plain.expect("define");
    let (rc, out, err) = h.validate(Validator::Ours, &s.argv(h, &plain));
    h.destroy(&plain);
    assert_eq!(rc, 4, "{out}{err}");
    assert!(
        err.contains("no QEMU guest agent channel") && err.contains("--report EVIDENCE"),
        "{err}"
    );
}

/// Runs the owner's command with a simulated agent started with `agent_args`.
fn run_with_agent(h: &Host, s: &Setup, dom: &str, agent_args: &[&str]) -> (i32, String) {
    let log = s.agent_log();
    let _agent = start_agent(h, dom, &log, agent_args);
    wait_for("libvirt's agent connection", || agent_answers(h, dom), &log);
    let (rc, out, err) = h.validate(Validator::Ours, &s.argv(h, dom));
    let agent = fs::read_to_string(&log).unwrap_or_default();
    (rc, format!("{out}{err}\n--- the simulated agent:\n{agent}"))
}

/// The agent's failures, each with its class: no agent answering in the guest (exit 5),
/// guest-exec blocked in the agent (exit 8); nothing written into the guest.
fn agent_failures(h: &Host, s: &Setup, dom: &str) {
    let (rc, out, err) = h.validate(Validator::Ours, &s.argv(h, dom));
    assert_eq!(rc, 5, "{out}{err}");
    assert!(err.contains("qemu-guest-agent started"), "{err}");
    let (rc, out) = run_with_agent(h, s, dom, &["--disable", "guest-exec"]);
    assert_eq!(rc, 8, "{out}");
    assert!(out.contains("allow guest-exec"), "{out}");
    assert!(
        !s.sealed().exists(),
        "written into the guest after a failure"
    );
}

#[test]
fn guest_agent_releases_the_disk_key_only_to_the_validated_guest() {
    let test = "guest_agent_releases_the_disk_key_only_to_the_validated_guest";
    let Some(h) = host(test) else { return };
    let Some(s) = setup(test, h) else { return };
    refused_without_a_channel(h, &s);

    let spec = h.spec_snp(&h.unique_name("snp-agent"), 1);
    let xml = spec
        .xml()
        .replace("</devices>", &format!("{AGENT_CHANNEL}</devices>"));
    let dom = h.define(&xml).expect("define");
    let _dom = Guard(h, dom.clone());
    let (rc, _, err) = h.virsh(&["start", "--paused", &dom]);
    assert_eq!(rc, 0, "start: {err}\n{}", h.tail_logs());
    h.resume(&dom)
        .unwrap_or_else(|e| panic!("{e}\n{}", h.tail_logs()));

    agent_failures(h, &s, &dom);

    // The host's agent hands back evidence for another nonce: exit 1, nothing in the guest.
    let (rc, out) = run_with_agent(h, &s, &dom, &["--tamper-nonce"]);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("tampered: another nonce"), "{out}");
    assert!(out.contains("FAIL  expect.key_binding"), "{out}");
    assert!(
        !s.sealed().exists(),
        "written into the guest after a failed check"
    );

    // The honest agent: the sealed file appears in the guest, and opens to the owner's key.
    let (rc, out) = run_with_agent(h, &s, &dom, &[]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("written into the guest"), "{out}");
    let opened = Command::new(e2e::our_validator_path())
        .arg("snp-open")
        .arg(s.sealed())
        .arg("--key-dir")
        .arg(s.guest.path())
        .args(["--secret", "luks-key"])
        .output()
        .unwrap();
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    assert_eq!(opened.stdout, s.disk_key);
}

/// A domain destroyed and undefined when dropped.
struct Guard(&'static Host, String);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.destroy(&self.1);
    }
}
