//! Offline validation and secret packaging, checked by the simulated Secure
//! Processor in tests/sim/sev_sp.py: an independent implementation that
//! computes LAUNCH_MEASURE as the firmware does, then verifies the header
//! MAC with the TIK, decrypts with the TEK and walks the GUID table.

use crate::common;

use common::Args;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

struct Launch {
    dir: tempfile::TempDir,
    measurement: String,
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// The simulated SEV firmware measures an SEV launch of `fw` with a kernel.
fn launch(policy: &str) -> Option<Launch> {
    launch_of(policy, common::amdsev_like_firmware())
}

/// The same with a firmware image of the caller's.
fn launch_of(policy: &str, firmware: Vec<u8>) -> Option<Launch> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("fw.fd"), firmware).unwrap();
    fs::write(d.join("tik"), [0x5a; 16]).unwrap();
    fs::write(d.join("tek"), [0xa5; 16]).unwrap();
    fs::write(d.join("vmlinuz"), b"not really a kernel").unwrap();
    fs::write(d.join("initrd"), vec![7u8; 100_000]).unwrap();
    let measurement = common::sev_measure(
        Args::new()
            .opt("--firmware", s(&d.join("fw.fd")))
            .opt("--kernel", s(&d.join("vmlinuz")))
            .opt("--initrd", s(&d.join("initrd")))
            .opt("--cmdline", "root=/dev/vda console=ttyS0")
            .arg("--kernel-hashes")
            .platform(1, 55, 21, policy)
            .opt("--tik", s(&d.join("tik")))
            .opt("--num-cpus", 3)
            .opt("--cpu-signature", "0xA00F11"),
    )?;
    Some(Launch { dir, measurement })
}

impl Launch {
    fn p(&self, name: &str) -> String {
        s(&self.dir.path().join(name))
    }

    fn args(&self, policy: &str) -> Vec<String> {
        let a = Args::of(&["-m", &self.measurement])
            .platform(1, 55, 21, policy)
            .opt("-f", self.p("fw.fd"))
            .keys(self.p("tik"), self.p("tek"))
            .opt("-k", self.p("vmlinuz"))
            .opt("-r", self.p("initrd"))
            .opt("-e", "root=/dev/vda console=ttyS0");
        if policy == "5" {
            a.opt("-n", 3).milan().vec()
        } else {
            a.vec()
        }
    }

    /// `--secret-header HEADER --secret-payload PAYLOAD -s luks-key:SECRET`.
    fn packet_to(&self, header: &str, payload: &str, secret: &str) -> Args {
        Args::new()
            .opt("--secret-header", header)
            .opt("--secret-payload", payload)
            .opt("-s", format!("luks-key:{secret}"))
    }

    /// The same into `hdr` and `payload` beside the launch's files.
    fn packet(&self, secret: &str) -> Args {
        self.packet_to(&self.p("hdr"), &self.p("payload"), secret)
    }

    /// The simulated SP decrypts the packet; returns (exit code, stdout, stderr).
    fn decrypt(&self, expect: &[(&str, &str)]) -> (i32, String, String) {
        self.decrypt_as(&self.measurement, expect)
    }

    /// The same, for a launch that reported `measurement`.
    fn decrypt_as(&self, measurement: &str, expect: &[(&str, &str)]) -> (i32, String, String) {
        let mut sp = common::sev_sp().unwrap();
        sp.arg("decrypt-secret")
            .args(Args::new().keys(self.p("tik"), self.p("tek")))
            .args(["--measurement", measurement])
            .args(["--header", &self.p("hdr"), "--payload", &self.p("payload")]);
        for (g, f) in expect {
            sp.args(["--expect", &format!("{g}={f}")]);
        }
        common::split(sp.output().unwrap())
    }
}

const LUKS: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";
const OTHER: &str = "0c6b2b9a-47b5-4d4a-9e38-4d1c2b8a7e11";

#[test]
fn validates_sev_and_sev_es_launches_measured_by_the_simulator() {
    for policy in ["1", "5"] {
        let Some(l) = launch(policy) else { return };
        let (code, out, err) = common::run(l.args(policy));
        assert_eq!(
            (code, out.as_str()),
            (0, "OK: Looks good to me\n"),
            "policy {policy}: {err}"
        );
        // Another cmdline, another vCPU count: rejected.
        let mut a = l.args(policy);
        let at = a.iter().position(|x| x == "-e").unwrap() + 1;
        a[at].push('\n');
        assert_eq!(common::run(&a).0, 1);
        if policy == "5" {
            let mut a = l.args(policy);
            let at = a.iter().position(|x| x == "-n").unwrap() + 1;
            a[at] = "4".into();
            assert_eq!(common::run(&a).0, 1);
        }
    }
}

#[test]
fn secrets_decrypt_back_exactly() {
    for policy in ["1", "5"] {
        let Some(l) = launch(policy) else { return };
        // A path with ':' in it works (the Python tool split on every ':').
        let colon_dir = l.dir.path().join("keys:v1");
        fs::create_dir(&colon_dir).unwrap();
        let key = s(&colon_dir.join("disk.key"));
        fs::write(&key, b"correct horse battery staple\n").unwrap();
        let other = l.p("other");
        fs::write(&other, [0u8, 1, 2, 255, 0]).unwrap();
        let mut a = l.args(policy);
        a.extend(
            l.packet(&key)
                .opt("--inject-secret", format!("{OTHER}:{other}")),
        );
        let (code, out, err) = common::run(&a);
        assert_eq!(code, 0, "{err}");
        // "OK: Looks good to me" is the Python tool's line, which scripts
        // test for; offline nothing is injected yet, and the line says so.
        assert_eq!(
            out,
            format!(
                "OK: Looks good to me\nOK: Wrote 2 secrets to '{}' (header) and '{}' (payload) for the host to inject\n",
                l.p("hdr"),
                l.p("payload")
            )
        );
        for f in ["hdr", "payload"] {
            let mode = fs::metadata(l.p(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f} must be private");
        }
        let (code, out, err) = l.decrypt(&[(LUKS, &key), (OTHER, &other)]);
        assert_eq!(code, 0, "simulated SP rejected the packet: {out}{err}");
        // A different measurement (as a replaying host would have) fails the MAC.
        let mut wrong = l.decrypt(&[]);
        assert_eq!(wrong.0, 0);
        wrong = l.decrypt_as(&base64_flip(&l.measurement), &[]);
        assert_eq!(
            wrong.0, 1,
            "a packet for another measurement must not verify"
        );
    }
}

fn base64_flip(b64: &str) -> String {
    let mut c: Vec<char> = b64.chars().collect();
    c[0] = if c[0] == 'A' { 'B' } else { 'A' };
    c.into_iter().collect()
}

/// A table that is already a multiple of 16 gets no padding block
/// (the Python tool's bug 4); the simulated SP refuses an extra block.
#[test]
fn aligned_table_gets_no_extra_block() {
    let Some(l) = launch("1") else { return };
    // 20 (header) + 20 (entry header) + 24 = 64 bytes.
    let key = l.p("k24");
    fs::write(&key, [b'k'; 24]).unwrap();
    let mut a = l.args("1");
    a.extend(l.packet(&key));
    assert_eq!(common::run(&a).0, 0);
    let payload = fs::read_to_string(l.p("payload")).unwrap();
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .unwrap()
            .len(),
        64
    );
    assert_eq!(l.decrypt(&[(LUKS, &key)]).0, 0);
}

#[test]
fn nothing_is_written_when_validation_fails() {
    let Some(l) = launch("1") else { return };
    let mut a = l.args("1");
    let at = a.iter().position(|x| x == "--api-minor").unwrap() + 1;
    a[at] = "54".into();
    fs::write(l.p("secret"), b"s").unwrap();
    a.extend(l.packet(&l.p("secret")));
    let (code, out, err) = common::run(&a);
    assert_eq!(code, 1, "{out}{err}");
    assert!(!Path::new(&l.p("hdr")).exists() && !Path::new(&l.p("payload")).exists());
}

#[test]
fn secrets_larger_than_the_firmware_secret_area_are_refused() {
    let Some(l) = launch("1") else { return };
    let big = l.p("big");
    fs::write(&big, vec![1u8; 0xC00]).unwrap();
    let mut a = l.args("1");
    a.extend(l.packet(&big));
    let (code, _, err) = common::run(&a);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("larger than the 3072 bytes the firmware's secret area holds"),
        "{err}"
    );
}

#[test]
fn keys_are_never_printed_unless_asked() {
    let Some(l) = launch("1") else { return };
    fs::write(l.p("tik"), [0xC3; 16]).unwrap(); // a recognisable key (mismatch is fine)
    fs::write(l.p("tek"), [0x3C; 16]).unwrap();
    fs::write(l.p("secret"), b"TOP-SECRET-VALUE").unwrap();
    let mut a = l.args("1");
    a.push("--debug".into());
    let (_, out, err) = common::run(&a);
    let all = format!("{out}{err}");
    assert!(
        all.contains("Measurement computed(hex)"),
        "--debug prints the digests: {all}"
    );
    assert!(
        !all.contains(&"c3".repeat(16)) && !all.contains(&"3c".repeat(16)),
        "keys leaked: {all}"
    );
    a.push("--show-keys".into());
    let (_, _, err) = common::run(&a);
    assert!(
        err.contains(&"c3".repeat(16)) && err.contains(&"3c".repeat(16)),
        "{err}"
    );
}

#[test]
fn debug_shows_every_intermediate_digest() {
    let Some(l) = launch("5") else { return };
    let mut a = l.args("5");
    a.push("-d".into());
    let (code, _, err) = common::run(&a);
    assert_eq!(code, 0, "{err}");
    for label in [
        "Firmware(sha256)",
        "Kernel(sha256)",
        "Initrd(sha256)",
        "Cmdline(sha256)",
        "Kernel hashes table(hex)",
        "VMSA CPU 0(sha256)",
        "VMSA CPU 1(sha256)",
        "Launch digest GCTX.LD(sha256)",
        "Measured-msg(hex)",
        "Measurement reported(hex)",
        "Measurement computed(hex)",
    ] {
        assert!(err.contains(label), "--debug lacks {label}: {err}");
    }
}

/// Offline, --secret-address is refused (the host picks the address when it
/// injects), so the warning for a firmware without a secret area must not
/// recommend it: it says what the host has to do instead.
#[test]
fn offline_warning_for_a_firmware_without_secret_area_is_true_offline() {
    let area = |base: u32, size: u32| [base.to_le_bytes(), size.to_le_bytes()].concat();
    let fw = common::firmware_with(
        &[
            (common::RESET_BLOCK, 0x0080_B004u32.to_le_bytes().to_vec()),
            (common::HASH_AREA, area(0x80FC00, 0x400)),
        ],
        64 * 1024,
    );
    let Some(l) = launch_of("1", fw) else { return };
    fs::write(l.p("secret"), b"s").unwrap();
    let mut a = l.args("1");
    a.extend(l.packet(&l.p("secret")));
    let (code, out, err) = common::run(&a);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("has no SEV secret area"), "{err}");
    assert!(!err.contains("--secret-address"), "{err}");
    assert!(err.contains("--set-address"), "{err}");
    // The advice it gave before is refused offline: it must stay refused.
    a.extend(["--secret-address", "0x80F000"].map(String::from));
    let (code, _, err) = common::run(&a);
    assert_eq!(code, 2, "{err}");
}

/// An output file that cannot be written is refused before validating:
/// no "OK: Looks good to me" first, and the message names the user's path,
/// never the temporary file beside it.
#[test]
fn unwritable_output_is_refused_before_validating() {
    let Some(l) = launch("1") else { return };
    fs::write(l.p("secret"), b"s").unwrap();
    fs::write(l.p("plain-file"), b"not a directory").unwrap();
    for (hdr, payload) in [
        (l.p("no-such-dir/hdr"), l.p("payload")),
        (l.p("hdr"), l.p("plain-file/payload")),
        (l.p("hdr"), l.dir.path().to_str().unwrap().to_string()),
    ] {
        let mut a = l.args("1");
        a.extend(["--secret-header", &hdr, "--secret-payload", &payload].map(String::from));
        a.extend(["-s".into(), format!("luks-key:{}", l.p("secret"))]);
        let (code, out, err) = common::run(&a);
        assert_eq!(code, 2, "{hdr} {payload}: {out}{err}");
        assert!(!out.contains("Looks good"), "validated first: {out}");
        assert!(!err.contains(".sev-secret"), "temporary path shown: {err}");
        let bad = if hdr.contains("no-such-dir") {
            &hdr
        } else {
            &payload
        };
        assert!(err.contains(&format!("cannot write '{bad}'")), "{err}");
        assert!(!Path::new(&l.p("hdr")).exists(), "half the output written");
    }
}

/// One path for both outputs would leave the header overwritten by the payload: refused
/// (exit 2) before any work, however the two paths are spelled, and nothing is written. An
/// output that names an input (the firmware, a secret) is refused too: writing it would
/// destroy the owner's copy.
#[test]
fn one_path_for_two_outputs_or_an_output_over_an_input_is_refused() {
    let Some(l) = launch("1") else { return };
    fs::write(l.p("secret"), b"s").unwrap();
    let dir = Path::new(&l.p("secret")).parent().unwrap().to_path_buf();
    let same = l.p("out.b64");
    let dotted = format!("{}/./out.b64", dir.display());
    let firmware = l.p("fw.fd");
    let fw_before = fs::read(&firmware).unwrap();
    let secret = l.p("secret");
    let cases: [(&str, &str, &str); 4] = [
        (
            &same,
            &same,
            "--secret-header and --secret-payload name the same file",
        ),
        (
            &same,
            &dotted,
            "--secret-header and --secret-payload name the same file",
        ),
        (&l.p("hdr"), &firmware, "--secret-payload '"),
        (
            &secret,
            &l.p("payload"),
            "is the file given as --inject-secret",
        ),
    ];
    let mut refused = 0;
    for (header, payload, says) in cases {
        let mut a = l.args("1");
        a.extend(l.packet_to(header, payload, &l.p("secret")));
        let (code, out, err) = common::run(&a);
        assert_eq!(code, 2, "{header} {payload}: {out}{err}");
        assert!(err.contains(says), "{err}");
        assert!(!out.contains("Wrote"), "{out}");
        refused += 1;
    }
    assert_eq!(refused, 4);
    assert!(!Path::new(&same).exists() && !Path::new(&l.p("hdr")).exists());
    assert_eq!(
        fs::read(&firmware).unwrap(),
        fw_before,
        "the firmware was changed"
    );
    assert_eq!(fs::read(l.p("secret")).unwrap(), b"s");
    // Two paths of their own: written.
    let mut a = l.args("1");
    a.extend(l.packet_to(&l.p("hdr"), &same, &l.p("secret")));
    let (code, out, err) = common::run(&a);
    assert_eq!(code, 0, "{out}{err}");
    assert!(Path::new(&same).exists() && Path::new(&l.p("hdr")).exists());
}
