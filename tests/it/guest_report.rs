//! `source::guest_report`, the report an SEV-SNP guest asks its kernel for:
//! the `/dev/sev-guest` layouts against the kernel's UAPI header (compiled
//! by gcc), configfs-tsm against a simulated one served by FUSE
//! (tests/sim/configfs_tsm.py, whose reports the simulated SNP firmware
//! tests/sim/snp_sp.py signs), and the errors when neither interface is
//! there. The signature is checked by the simulator's `verify` (Python
//! cryptography) and the certificate table compared with the simulator's
//! own `certtable`, not with this crate's output.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sev_validate::core::snp_report::{parse_input, CertKind, CertTable};
use sev_validate::source::guest_report::{
    self, sev_guest_abi_layout, GuestReport, GuestReportOptions, ReportVia,
};

use crate::common::{skip_or_fail, snp_sim};

fn random_report_data() -> [u8; 64] {
    let mut rd = [0u8; 64];
    getrandom::getrandom(&mut rd).expect("random numbers");
    rd
}

/// Options whose paths are under `dir` and exist only where a test makes them.
fn options(tsm_root: PathBuf, dir: &Path, vmpl: u32) -> GuestReportOptions {
    GuestReportOptions {
        tsm_root,
        sev_guest: dir.join("no-sev-guest"),
        vmpl,
    }
}

// ---------------------------------------------------------------------------------------------
// The ioctl layouts, against a C compiler's view of <linux/sev-guest.h>.

/// The names the module must report: every struct, field and number it uses.
const REQUIRED: &[&str] = &[
    "sizeof(struct snp_report_req)",
    "offsetof(struct snp_report_req, vmpl)",
    "sizeof(struct snp_report_resp)",
    "sizeof(struct snp_guest_request_ioctl)",
    "offsetof(struct snp_guest_request_ioctl, req_data)",
    "offsetof(struct snp_guest_request_ioctl, resp_data)",
    "offsetof(struct snp_guest_request_ioctl, fw_error)",
    "offsetof(struct snp_guest_request_ioctl, vmm_error)",
    "sizeof(struct snp_ext_report_req)",
    "offsetof(struct snp_ext_report_req, certs_address)",
    "offsetof(struct snp_ext_report_req, certs_len)",
    "SNP_GET_REPORT",
    "SNP_GET_EXT_REPORT",
    "SNP_GUEST_VMM_ERR_INVALID_LEN",
];

#[test]
fn sev_guest_layouts_match_the_kernel_header() {
    let test = "sev_guest_layouts_match_the_kernel_header";
    let gcc_ok = Command::new("gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !gcc_ok {
        return skip_or_fail(test, "gcc is needed to read <linux/sev-guest.h>");
    }
    let ours = sev_guest_abi_layout();
    for name in REQUIRED {
        assert!(
            ours.iter().any(|(n, _)| n == name),
            "{name} missing from the layout table"
        );
    }
    // Each name is a C expression: the C side evaluates the very same text.
    // The header uses _IOWR without including <linux/ioctl.h>, as its users do.
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <linux/ioctl.h>\n#include <linux/sev-guest.h>\n\
         #define S(x) printf(\"%s=%llu\\n\", #x, (unsigned long long)(x))\nint main(void) {\n",
    );
    for (name, _) in &ours {
        c += &format!("    S({name});\n");
    }
    c += "    return 0;\n}\n";
    let tmp = tempfile::tempdir().unwrap();
    let (src, exe) = (tmp.path().join("layout.c"), tmp.path().join("layout"));
    fs::write(&src, c).unwrap();
    let built = Command::new("gcc")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap();
    if !built.status.success() {
        let err = String::from_utf8_lossy(&built.stderr);
        if err.contains("sev-guest.h: No such file") {
            return skip_or_fail(
                test,
                "<linux/sev-guest.h> is missing (Debian: linux-libc-dev)",
            );
        }
        panic!("gcc failed:\n{err}");
    }
    let out = Command::new(&exe).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let theirs: Vec<(String, u64)> = text
        .lines()
        .map(|l| {
            let (n, v) = l.rsplit_once('=').unwrap();
            (n.to_string(), v.parse().unwrap())
        })
        .collect();
    assert_eq!(theirs.len(), ours.len(), "{text}");
    for ((n, v), (cn, cv)) in ours.iter().zip(&theirs) {
        assert_eq!(
            (*n, *v),
            (cn.as_str(), *cv),
            "ours vs gcc's <linux/sev-guest.h>"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Without a kernel interface.

#[test]
fn no_interface_says_what_to_check() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path().join("no-tsm"), tmp.path(), 0);
    let e = guest_report::request(&[7; 64], &opts).unwrap_err();
    assert_eq!(e.exit_code() as i32, 7, "{e}");
    let msg = e.to_string();
    for needle in [
        opts.tsm_root.to_str().unwrap(),
        opts.sev_guest.to_str().unwrap(),
        "SEV-SNP guest",
        "6.7",
        "/sys/kernel/config",
        "modprobe sev-guest",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in: {msg}");
    }
}

#[test]
fn vmpl_above_3_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let e =
        guest_report::request(&[0; 64], &options(tmp.path().join("x"), tmp.path(), 4)).unwrap_err();
    assert_eq!(e.exit_code() as i32, 2, "{e}");
    assert!(e.to_string().contains("VMPL 4"), "{e}");
}

#[test]
fn a_device_that_is_not_sev_guest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path().join("no-tsm"), tmp.path(), 0);
    // A regular file is not the module's device.
    opts.sev_guest = tmp.path().join("regular");
    fs::write(&opts.sev_guest, b"").unwrap();
    let e = guest_report::request(&[0; 64], &opts).unwrap_err();
    assert_eq!(e.exit_code() as i32, 2, "{e}");
    assert!(e.to_string().contains("not a character device"), "{e}");
    // /dev/null is a character device that knows no ioctl (ENOTTY): both
    // requests fail, and the message names both.
    opts.sev_guest = PathBuf::from("/dev/null");
    let e = guest_report::request(&[0; 64], &opts).unwrap_err();
    assert_eq!(e.exit_code() as i32, 8, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("SNP_GET_REPORT on '/dev/null' failed"),
        "{msg}"
    );
    assert!(msg.contains("SNP_GET_EXT_REPORT failed before it"), "{msg}");
}

#[test]
fn entry_removed_when_the_directory_is_not_configfs_tsm() {
    // A plain directory: the entry is made, has no `provider`, and is removed.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("report");
    fs::create_dir(&root).unwrap();
    let e = guest_report::request(&[0; 64], &options(root.clone(), tmp.path(), 0)).unwrap_err();
    assert_eq!(e.exit_code() as i32, 8, "{e}");
    assert!(e.to_string().contains("'provider'"), "{e}");
    assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "entry left behind");
}

// ---------------------------------------------------------------------------------------------
// configfs-tsm simulated over FUSE.

/// A test chain for the simulated firmware, minted once for this binary.
fn chain() -> Option<&'static Path> {
    static CHAIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    CHAIN
        .get_or_init(|| {
            // Minted afresh on each run, in one place, so runs leave nothing behind.
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("guest-report-chain");
            let _ = fs::remove_dir_all(&dir);
            snp_sim::chain("milan", &dir, &[]).map(|_| dir)
        })
        .as_deref()
}

/// The simulator mounted on a temporary folder; unmounted (and its process
/// reaped) when dropped, also when the test fails.
struct TsmSim {
    dir: tempfile::TempDir,
    child: Child,
}

impl TsmSim {
    fn start(test: &str, extra: &[&str]) -> Option<TsmSim> {
        if fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .is_err()
        {
            skip_or_fail(test, "FUSE is needed: /dev/fuse, opened as root");
            return None;
        }
        let fusepy = Command::new("/usr/bin/python3")
            .args(["-c", "import fusepy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !fusepy {
            skip_or_fail(
                test,
                "/usr/bin/python3 with fusepy is needed (Debian: python3-fusepy)",
            );
            return None;
        }
        let chain = chain()?;
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("tsm");
        fs::create_dir(&mnt).unwrap();
        let log = fs::File::create(dir.path().join("sim.log")).unwrap();
        let child = Command::new("/usr/bin/python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/configfs_tsm.py"))
            .arg(&mnt)
            .arg("--chain")
            .arg(chain)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start configfs_tsm.py");
        let mut sim = TsmSim { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sim.root().is_dir() {
            if let Ok(Some(status)) = sim.child.try_wait() {
                panic!("configfs_tsm.py exited ({status}): {}", sim.log());
            }
            assert!(
                Instant::now() < deadline,
                "no mount after 10 s: {}",
                sim.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(sim)
    }

    fn mnt(&self) -> PathBuf {
        self.dir.path().join("tsm")
    }

    /// What `opts.tsm_root` names: `report/` of the mount.
    fn root(&self) -> PathBuf {
        self.mnt().join("report")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sim.log")).unwrap_or_default()
    }

    fn options(&self, vmpl: u32) -> GuestReportOptions {
        options(self.root(), self.dir.path(), vmpl)
    }

    fn entries(&self) -> usize {
        fs::read_dir(self.root()).unwrap().count()
    }
}

impl Drop for TsmSim {
    fn drop(&mut self) {
        let mnt = self.mnt();
        let unmounted = Command::new("umount")
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The report verifies with the chain's VCEK (the simulator's `verify`,
/// Python cryptography) and carries the REPORT_DATA and VMPL asked for.
fn check_report(got: &GuestReport, rd: &[u8; 64], vmpl: u32, chain: &Path, tmp: &Path) {
    assert_eq!(got.via, ReportVia::ConfigfsTsm);
    let input = parse_input(&got.report).expect("a report");
    assert_eq!(input.report.report_data, *rd);
    assert_eq!(input.report.vmpl, vmpl);
    let file = tmp.join(format!("report-{vmpl}.bin"));
    fs::write(&file, &got.report).unwrap();
    let vek = chain.join("vcek.der");
    let out = snp_sim::run(&[
        "verify",
        file.to_str().unwrap(),
        "--vek",
        vek.to_str().unwrap(),
    ]);
    assert_eq!(out.unwrap().trim(), "signature ok");
}

#[test]
fn configfs_tsm_report_verifies_and_carries_the_certificates() {
    let Some(sim) = TsmSim::start("configfs_tsm_report_verifies", &[]) else {
        return;
    };
    let chain = chain().unwrap();
    let rd = random_report_data();
    let got = guest_report::request(&rd, &sim.options(0)).unwrap_or_else(|e| {
        panic!("{e}\nsimulator: {}", sim.log());
    });
    check_report(&got, &rd, 0, chain, sim.dir.path());
    let table = got.cert_table.as_deref().expect("a certificate table");
    let parsed = CertTable::parse(table).expect("the table parses");
    assert_eq!(
        parsed.get(CertKind::Vcek),
        Some(&fs::read(chain.join("vcek.der")).unwrap()[..])
    );
    // The simulator's own table for the chain, byte for byte.
    let expected = sim.dir.path().join("certtable.bin");
    let (c, e) = (chain.to_str().unwrap(), expected.to_str().unwrap());
    snp_sim::run(&["certtable", "--chain", c, "--out", e]).unwrap();
    assert_eq!(table, &fs::read(&expected).unwrap()[..]);
    assert_eq!(sim.entries(), 0, "the entry was not removed");

    // Another VMPL and another nonce, in a fresh entry of its own.
    let rd2 = random_report_data();
    let got = guest_report::request(&rd2, &sim.options(2)).unwrap();
    check_report(&got, &rd2, 2, chain, sim.dir.path());
    assert_eq!(sim.entries(), 0, "the entry was not removed");
}

#[test]
fn configfs_tsm_concurrent_writer_is_refused() {
    let Some(sim) = TsmSim::start("configfs_tsm_concurrent_writer_is_refused", &[]) else {
        return;
    };
    fs::write(sim.mnt().join("sim_race"), b"1").unwrap();
    let e = guest_report::request(&random_report_data(), &sim.options(0)).unwrap_err();
    assert_eq!(e.exit_code() as i32, 8, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("another process wrote to the configfs-tsm entry"),
        "{msg}"
    );
    assert!(msg.contains("run again"), "{msg}");
    assert_eq!(
        sim.entries(),
        0,
        "the entry was not removed after the error"
    );
    // The race was one: the next request succeeds.
    let rd = random_report_data();
    let got = guest_report::request(&rd, &sim.options(0)).unwrap();
    assert_eq!(&got.report[0x50..0x90], &rd[..]);
}

#[test]
fn configfs_tsm_oversized_outblob_is_refused_within_its_limit() {
    let test = "configfs_tsm_oversized_outblob_is_refused_within_its_limit";
    let Some(sim) = TsmSim::start(test, &[]) else {
        return;
    };
    // The simulator serves 2 MiB; reading stops one byte past 1 MiB.
    fs::write(sim.mnt().join("sim_oversize"), b"1").unwrap();
    let e = guest_report::request(&random_report_data(), &sim.options(0)).unwrap_err();
    assert_eq!(e.exit_code() as i32, 8, "{e}");
    assert!(e.to_string().contains("more than 1048576 bytes"), "{e}");
    assert_eq!(
        sim.entries(),
        0,
        "the entry was not removed after the error"
    );
}

#[test]
fn configfs_tsm_without_privlevel_or_auxblob() {
    let test = "configfs_tsm_without_privlevel_or_auxblob";
    let hide = [
        "--hide",
        "privlevel",
        "--hide",
        "privlevel_floor",
        "--hide",
        "auxblob",
    ];
    let Some(sim) = TsmSim::start(test, &hide) else {
        return;
    };
    let e = guest_report::request(&random_report_data(), &sim.options(1)).unwrap_err();
    assert_eq!(e.exit_code() as i32, 2, "{e}");
    assert!(e.to_string().contains("no 'privlevel'"), "{e}");
    let rd = random_report_data();
    let got = guest_report::request(&rd, &sim.options(0)).unwrap();
    check_report(&got, &rd, 0, chain().unwrap(), sim.dir.path());
    assert_eq!(got.cert_table, None, "no auxblob is no table");
    assert_eq!(sim.entries(), 0, "the entry was not removed");
}

#[test]
fn configfs_tsm_floor_and_no_certificates() {
    let test = "configfs_tsm_floor_and_no_certificates";
    let Some(sim) = TsmSim::start(test, &["--privlevel-floor", "1", "--no-certs"]) else {
        return;
    };
    let e = guest_report::request(&random_report_data(), &sim.options(0)).unwrap_err();
    assert_eq!(e.exit_code() as i32, 2, "{e}");
    assert!(e.to_string().contains("runs at VMPL 1"), "{e}");
    assert_eq!(
        sim.entries(),
        0,
        "the entry was not removed after the error"
    );
    let rd = random_report_data();
    let got = guest_report::request(&rd, &sim.options(1)).unwrap();
    check_report(&got, &rd, 1, chain().unwrap(), sim.dir.path());
    assert_eq!(got.cert_table, None, "an empty auxblob is no table");
}

/// The simulator's `--measurement` and `--host-data` (the launch the demo's
/// key release uses) land at the report's offsets 0x90 and 0xC0, and the
/// report still validates against the chain.
#[test]
fn configfs_tsm_reports_carry_the_launch_given() {
    let (m, h) = ([0x6d_u8; 48], *b"demo: this guest's disk is 0042\0");
    let launch = [
        "--measurement",
        &hex::encode(m),
        "--host-data",
        &hex::encode(h),
    ];
    let Some(sim) = TsmSim::start("configfs_tsm_reports_carry_the_launch_given", &launch) else {
        return;
    };
    let rd = random_report_data();
    let got = guest_report::request(&rd, &sim.options(0)).unwrap();
    check_report(&got, &rd, 0, chain().unwrap(), sim.dir.path());
    assert_eq!(&got.report[0x90..0xC0], &m[..]);
    assert_eq!(&got.report[0xC0..0xE0], &h[..]);
}

/// The whole key release with the kernel's interface: `snp-request` asks the
/// simulated configfs-tsm (one step: key pair, REPORT_DATA, report), the
/// owner's `snp-validate` seals to the evidence's key, and `snp-open` opens.
/// REPORT_DATA is recomputed by Python's hashlib from the documented
/// binding; the simulated firmware's MEASUREMENT is zero unless told.
#[test]
fn snp_request_asks_the_kernel_and_the_sealed_key_opens() {
    use crate::common::tool::Tool;
    use std::os::unix::fs::PermissionsExt;
    let Some(sim) = TsmSim::start("snp_request_asks_the_kernel", &[]) else {
        return;
    };
    let chain = chain().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    fs::create_dir(&keys).unwrap();
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o700)).unwrap();
    let nonce = hex::encode(&random_report_data()[..32]);
    let ev = tmp.path().join("evidence.json");
    let p = |x: &Path| x.display().to_string();
    Tool::new()
        .args(["snp-request", "--nonce", &nonce, "--key-dir", &p(&keys)])
        .args(["--tsm-root", &p(&sim.root()), "--evidence-out", &p(&ev)])
        .run()
        .expect_code(0);
    assert_eq!(sim.entries(), 0, "the request's entry is removed");
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&ev).unwrap()).unwrap();
    assert_eq!(doc["report_source"], "configfs-tsm");
    let script = "import base64,hashlib,json,sys\n\
        e=json.load(open(sys.argv[1]))\n\
        label=b'virt-qemu-sev-validate snp-key-release v1\\x00'\n\
        rd=hashlib.sha512(label+bytes.fromhex(sys.argv[2])+bytes.fromhex(e['public_key'])).digest()\n\
        print(int(base64.b64decode(e['report'])[0x50:0x90]==rd))";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, &p(&ev), &nonce])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "REPORT_DATA binds"
    );
    let secret = tmp.path().join("disk.key");
    fs::write(&secret, b"the disk key\n").unwrap();
    let sealed = tmp.path().join("sealed.bin");
    Tool::new()
        .args(["snp-validate", &p(&ev), "--nonce", &nonce])
        .args(["--measurement", &"00".repeat(48)])
        .args(["--vcek", &p(&chain.join("vcek.der"))])
        .args(["--trust-anchors", &p(&chain.join("ark.pem"))])
        .args(["--trust-anchors", &p(&chain.join("ask.pem"))])
        .args(["--seal-secret", &format!("luks-key:{}", p(&secret))])
        .args(["--sealed-out", &p(&sealed)])
        .run()
        .expect_code(0);
    let opened = Tool::new()
        .args(["snp-open", &p(&sealed), "--key-dir", &p(&keys)])
        .args(["--secret", "luks-key"])
        .run()
        .expect_code(0);
    assert_eq!(opened.stdout, "the disk key\n");
    // Without the kernel's interfaces: exit 7, naming what to check.
    let o = Tool::new()
        .args(["snp-request", "--nonce", &nonce, "--key-dir", &p(&keys)])
        .args(["--tsm-root", &p(&tmp.path().join("none"))])
        .args(["--sev-guest", &p(&tmp.path().join("none-dev"))])
        .args(["--evidence-out", &p(&tmp.path().join("e2.json"))])
        .run()
        .expect_code(7);
    assert!(o.stderr.contains("configfs"), "{}", o.stderr);
}
