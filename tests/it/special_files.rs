//! Every input file may be a pipe, a FIFO, /dev/stdin or a /proc file, as
//! with libvirt's Python tool: owners keep keys in a password manager and
//! pipe them in (`--tk <(pass show sev/tk)`). Such files report a size of 0,
//! so sizes must come from what was read.
//!
//! Each option is fed by process substitution (`bash -c` with `<(cat FILE)`)
//! and by a FIFO (a writer thread), and must give what the same run gives
//! with the regular file. The expected values come from independent
//! implementations: the simulated Secure Processor (tests/sim/sev_sp.py)
//! measures the launch and decrypts the secret packets, Debian's Python tool
//! must accept the same special files, and for the SNP subcommands
//! sev-snp-measure computes the digest from the regular file.

use crate::common;
use common::Args;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OURS: &str = env!("CARGO_BIN_EXE_virt-qemu-sev-validate");
const PYTHON: &str = "/usr/bin/python3";
const PY_TOOL: &str = "/usr/bin/virt-qemu-sev-validate";
const LUKS: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";
const CMDLINE: &str = "root=/dev/vda console=ttyS0";
/// Long enough for a debug build hashing a few MiB; short enough that a tool
/// waiting forever on a FIFO fails the test instead of hanging it.
const TIMEOUT: Duration = Duration::from_secs(120);

/// How one input file reaches the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// The regular file itself.
    Regular,
    /// `<(cat FILE)`: a pipe, named /dev/fd/N.
    Subst,
    /// A FIFO made with mkfifo, written by a thread of this test.
    Fifo,
    /// `cat FILE | tool ... /dev/stdin`.
    Stdin,
}

const PIPES: &[Feed] = &[Feed::Subst, Feed::Fifo];

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

struct Run {
    code: i32,
    out: String,
    err: String,
    what: String,
}

/// Runs `program` with `args`, where `args[at]` is `prefix` followed by the
/// path of `file`, fed as `feed`. Kills the tool after [`TIMEOUT`].
fn run_fed(
    program: &[&str],
    args: &[String],
    at: usize,
    prefix: &str,
    file: &Path,
    feed: Feed,
    scratch: &Path,
) -> Run {
    let mut args = args.to_vec();
    let file_s = file.to_str().unwrap();
    let mut writer = None;
    let mut fifo = None;
    let mut cmd = match feed {
        Feed::Regular | Feed::Fifo => {
            if feed == Feed::Fifo {
                let path = scratch.join(format!("fifo-{at}-{}", std::process::id()));
                let _ = fs::remove_file(&path);
                let ok = Command::new("mkfifo").arg(&path).status().unwrap();
                assert!(ok.success(), "mkfifo failed");
                let data = fs::read(file).unwrap();
                let p = path.clone();
                // Opening a FIFO for writing waits for the reader.
                writer = Some(std::thread::spawn(move || {
                    if let Ok(mut f) = fs::OpenOptions::new().write(true).open(&p) {
                        let _ = f.write_all(&data);
                    }
                }));
                args[at] = format!("{prefix}{}", path.display());
                fifo = Some(path);
            } else {
                args[at] = format!("{prefix}{file_s}");
            }
            let mut c = Command::new(program[0]);
            c.args(&program[1..]).args(&args);
            c
        }
        Feed::Subst | Feed::Stdin => {
            let special = if feed == Feed::Subst {
                format!("{}<(cat {})", q(prefix), q(file_s))
            } else {
                format!("{}/dev/stdin", q(prefix))
            };
            let mut words: Vec<String> = program.iter().map(|s| q(s)).collect();
            for (i, a) in args.iter().enumerate() {
                words.push(if i == at { special.clone() } else { q(a) });
            }
            let script = if feed == Feed::Stdin {
                format!("cat {} | {}", q(file_s), words.join(" "))
            } else {
                format!("exec {}", words.join(" "))
            };
            let mut c = Command::new("bash");
            c.arg("-c").arg(script);
            c
        }
    };
    cmd.env_remove("LIBVIRT_DEFAULT_URI");
    let what = format!(
        "{} {} ({feed:?} for {:?})",
        program.join(" "),
        args.join(" "),
        args[at]
    );
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes on threads so a chatty tool cannot block on them.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A writer still waiting for a reader (the tool never opened the FIFO,
    // or closed it early): open the read end without blocking, so its open
    // returns, and close it, so its write fails instead of waiting.
    if let (Some(w), Some(p)) = (writer, fifo) {
        while !w.is_finished() {
            let r = fs::OpenOptions::new()
                .read(true)
                .custom_flags(0o4000) // O_NONBLOCK
                .open(&p);
            drop(r);
            std::thread::sleep(Duration::from_millis(10));
        }
        w.join().unwrap();
        let _ = fs::remove_file(&p);
    }
    let out = out_t.join().unwrap();
    let mut err = err_t.join().unwrap();
    let code = match status {
        Some(s) => s.code().unwrap_or(-1),
        None => {
            err.push_str(&format!("\n(killed after {TIMEOUT:?}: it waited forever)"));
            -1
        }
    };
    Run {
        code,
        out,
        err,
        what,
    }
}

/// The owner's files for one SEV-ES launch, and the measurement the
/// simulated Secure Processor reports for it.
struct Launch {
    dir: tempfile::TempDir,
    measurement: String,
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

impl Launch {
    fn new() -> Option<Launch> {
        common::sev_sp()?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let w = |name: &str, data: &[u8]| fs::write(d.join(name), data).unwrap();
        w("fw.fd", &common::amdsev_like_firmware());
        w("tik", &[0x5a; 16]);
        w("tek", &[0xa5; 16]);
        // --tk: TEK then TIK.
        w("tk", &[[0xa5u8; 16], [0x5a; 16]].concat());
        // More than a pipe's 64 KiB buffer, so the writer blocks while the tool reads.
        w(
            "vmlinuz",
            &(0..300_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>(),
        );
        w(
            "initrd",
            &(0..500_000u32).map(|i| (i % 241) as u8).collect::<Vec<_>>(),
        );
        w(
            "vmsa0",
            &(0..4096u32).map(|i| (i % 7) as u8).collect::<Vec<_>>(),
        );
        w(
            "vmsa1",
            &(0..4096u32).map(|i| (i % 11) as u8).collect::<Vec<_>>(),
        );
        w("secret", b"correct horse battery staple\n");
        let p = |name: &str| s(&d.join(name));
        let measurement = common::sev_measure(
            Args::new()
                .opt("--firmware", p("fw.fd"))
                .opt("--kernel", p("vmlinuz"))
                .opt("--initrd", p("initrd"))
                .opt("--cmdline", CMDLINE)
                .arg("--kernel-hashes")
                .platform(1, 55, 21, 5)
                .opt("--tik", p("tik"))
                .opt("--num-cpus", 3)
                .opt("--vmsa-bsp", p("vmsa0"))
                .opt("--vmsa-ap", p("vmsa1")),
        )?;
        Some(Launch { dir, measurement })
    }

    fn p(&self, name: &str) -> String {
        s(&self.dir.path().join(name))
    }

    /// The command line, with --tk instead of --tik/--tek when `tk`; the
    /// secret packet goes to hdr-TAG and payload-TAG.
    fn args(&self, tk: bool, tag: &str) -> Vec<String> {
        let a = Args::of(&["-m", &self.measurement])
            .platform(1, 55, 21, 5)
            .opt("--firmware", self.p("fw.fd"))
            .opt("--kernel", self.p("vmlinuz"))
            .opt("--initrd", self.p("initrd"))
            .opt("--cmdline", CMDLINE)
            .opt("--num-cpus", 3)
            .opt("--vmsa-cpu0", self.p("vmsa0"))
            .opt("--vmsa-cpu1", self.p("vmsa1"))
            .opt("--inject-secret", format!("{LUKS}:{}", self.p("secret")))
            .opt("--secret-header", self.p(&format!("hdr-{tag}")))
            .opt("--secret-payload", self.p(&format!("payload-{tag}")));
        if tk {
            a.opt("--tk", self.p("tk")).vec()
        } else {
            a.keys(self.p("tik"), self.p("tek")).vec()
        }
    }

    /// The simulated Secure Processor checks and decrypts the packet the
    /// run tagged `tag` wrote: exactly the secret file, under LUKS's GUID.
    fn decrypts(&self, tag: &str) -> Result<(), String> {
        let mut sp = common::sev_sp().unwrap();
        sp.arg("decrypt-secret")
            .args(Args::new().keys(self.p("tik"), self.p("tek")))
            .args(["--measurement", &self.measurement])
            .args(["--header", &self.p(&format!("hdr-{tag}"))])
            .args(["--payload", &self.p(&format!("payload-{tag}"))])
            .args(["--expect", &format!("{LUKS}={}", self.p("secret"))]);
        let (code, out, err) = common::split(sp.output().unwrap());
        if code == 0 {
            Ok(())
        } else {
            Err(format!(
                "the simulated SP refused the packet ({code}): {out}{err}"
            ))
        }
    }
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.out)
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {}\n{}", r.what, r.out, r.err))
}

/// What a run computed, without the paths it was given.
fn values(v: &serde_json::Value) -> serde_json::Value {
    let mut inputs = v["inputs"].clone();
    for k in ["firmware", "kernel", "initrd"] {
        if let Some(o) = inputs.get_mut(k).and_then(|x| x.as_object_mut()) {
            o.remove("path");
        }
    }
    let mut injection = v["injection"].clone();
    if let Some(o) = injection.as_object_mut() {
        o.remove("detail");
        o.remove("destination");
    }
    serde_json::json!({
        "verdict": v["verdict"],
        "computed": v["computed"],
        "inputs": inputs,
        "injection": injection,
    })
}

/// (option, file name, prefix of the option's value, --tk form)
const SEV_INPUTS: &[(&str, &str, &str, bool)] = &[
    ("--tk", "tk", "", true),
    ("--tik", "tik", "", false),
    ("--tek", "tek", "", false),
    ("--firmware", "fw.fd", "", false),
    ("--kernel", "vmlinuz", "", false),
    ("--initrd", "initrd", "", false),
    ("--vmsa-cpu0", "vmsa0", "", false),
    ("--vmsa-cpu1", "vmsa1", "", false),
    (
        "--inject-secret",
        "secret",
        "736869e5-84f0-4973-92ec-06879ce3da0b:",
        false,
    ),
];

#[test]
fn every_sev_input_file_may_be_a_pipe_or_a_fifo() {
    let Some(l) = Launch::new() else {
        return;
    };
    let python = Path::new(PY_TOOL).is_file() && Path::new(PYTHON).is_file();
    if !python {
        common::skip_or_fail(
            "special_files",
            "the Python tool (libvirt-clients-qemu) is needed",
        );
    }
    let scratch = l.dir.path().to_path_buf();
    // `program ARGS` with the value of `opt` fed from `prefix` and the launch's `file`.
    let fed = |program: &[&str], args: &[String], opt: &str, prefix: &str, file: &str, feed| {
        let at = args.iter().position(|a| a == opt).unwrap() + 1;
        run_fed(
            program,
            args,
            at,
            prefix,
            &scratch.join(file),
            feed,
            &scratch,
        )
    };
    // The same launch from regular files: the values every other run must give.
    let mut reference = None;
    let mut fails = Vec::new();
    for tk in [false, true] {
        let args = common::with(&l.args(tk, &format!("regular-{tk}")), &["--json"]);
        let r = fed(&[OURS], &args, "--firmware", "", "fw.fd", Feed::Regular);
        assert_eq!(r.code, 0, "{}: {}{}", r.what, r.out, r.err);
        l.decrypts(&format!("regular-{tk}")).unwrap();
        let v = values(&json(&r));
        assert_eq!(v["injection"]["secrets"][0]["bytes"], 29, "{v}");
        match &reference {
            None => reference = Some(v),
            Some(x) => assert_eq!(&v, x),
        }
    }
    let reference = reference.unwrap();
    let mut feeds: Vec<(&str, &str, &str, bool, Feed)> = Vec::new();
    for &(opt, file, prefix, tk) in SEV_INPUTS {
        for &feed in PIPES {
            feeds.push((opt, file, prefix, tk, feed));
        }
    }
    feeds.push(("--tk", "tk", "", true, Feed::Stdin));
    feeds.push(("--firmware", "fw.fd", "", false, Feed::Stdin));
    feeds.push(("--initrd", "initrd", "", false, Feed::Stdin));
    for (i, &(opt, file, prefix, tk, feed)) in feeds.iter().enumerate() {
        let tag = format!("ours-{i}");
        let args = common::with(&l.args(tk, &tag), &["--json"]);
        let r = fed(&[OURS], &args, opt, prefix, file, feed);
        if r.code != 0 {
            fails.push(format!("{}: exit {}: {}", r.what, r.code, r.err.trim()));
            continue;
        }
        let v = values(&json(&r));
        if v != reference {
            fails.push(format!(
                "{}: computed {v}\n  but the regular files give {reference}",
                r.what
            ));
        }
        if let Err(e) = l.decrypts(&tag) {
            fails.push(format!("{}: {e}", r.what));
        }
        if python {
            let tag = format!("python-{i}");
            let args = l.args(tk, &tag);
            let r = fed(&[PYTHON, PY_TOOL], &args, opt, prefix, file, feed);
            if r.code != 0 {
                fails.push(format!(
                    "the Python tool refused {}: exit {}: {}",
                    r.what,
                    r.code,
                    r.err.trim()
                ));
            } else if let Err(e) = l.decrypts(&tag) {
                fails.push(format!("Python tool, {}: {e}", r.what));
            }
        }
    }
    assert!(
        fails.is_empty(),
        "{} of {} runs failed:\n{}",
        fails.len(),
        feeds.len(),
        fails.join("\n")
    );
}

/// A /proc file reports size 0 and has content: the firmware read from it is
/// measured as it reads, like the Python tool and the simulated SP do.
#[test]
fn firmware_from_proc_is_measured() {
    if common::sev_sp().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("tk"), [[0xa5u8; 16], [0x5a; 16]].concat()).unwrap();
    fs::write(dir.path().join("tik"), [0x5a; 16]).unwrap();
    // Stable over the run, unlike /proc/self/*.
    let fw = "/proc/version";
    let m = common::sev_measure(
        Args::new()
            .opt("--firmware", fw)
            .platform(1, 55, 21, 1)
            .opt("--tik", s(&dir.path().join("tik"))),
    )
    .unwrap();
    let args = Args::of(&["-m", &m])
        .platform(1, 55, 21, 1)
        .opt("--firmware", fw)
        .opt("--tk", s(&dir.path().join("tk")))
        .vec();
    let (code, out, err) = common::run(&args);
    assert_eq!(code, 0, "ours, firmware {fw}: {out}{err}");
    if Path::new(PY_TOOL).is_file() {
        let o = Command::new(PYTHON)
            .arg(PY_TOOL)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "Python tool: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The size limits hold for pipes too, while reading: nothing is cut short
/// or accepted because the size could not be known in advance.
#[test]
fn limits_hold_while_reading_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("fw.fd"), common::amdsev_like_firmware()).unwrap();
    fs::write(d.join("tk33"), [1u8; 33]).unwrap();
    fs::write(d.join("tk31"), [1u8; 31]).unwrap();
    fs::write(d.join("tik17"), [1u8; 17]).unwrap();
    fs::write(d.join("tik"), [1u8; 16]).unwrap();
    fs::write(d.join("vmsa4097"), [1u8; 4097]).unwrap();
    fs::write(d.join("empty"), b"").unwrap();
    let tik = s(&d.join("tik"));
    let base = Args::of(&[
        "-m",
        "Zs2pf19ubFSafpZ2WKkwquXvACx9Wt/BV+eJwQ/taO8jhyIj/F8swFrybR1fZ2ID",
    ])
    .platform(0, 24, 13, 5)
    .opt("--firmware", s(&d.join("fw.fd")))
    .keys(&tik, &tik)
    .opt("--num-cpus", 1)
    .opt("--vmsa-cpu0", &tik)
    .vec();
    let tk = common::with(
        &common::without(&common::without(&base, "--tik"), "--tek"),
        &["--tk", "X"],
    );
    let cases: Vec<(Vec<String>, &str, &str, &str, &str)> = vec![
        (
            tk.clone(),
            "--tk",
            "",
            "tk33",
            "must be exactly 32 bytes, but it is more than 32 bytes",
        ),
        (
            tk.clone(),
            "--tk",
            "",
            "tk31",
            "must be exactly 32 bytes, but it is 31 bytes",
        ),
        (
            base.clone(),
            "--tik",
            "",
            "tik17",
            "must be exactly 16 bytes, but it is more than 16 bytes",
        ),
        (
            base.clone(),
            "--tek",
            "",
            "empty",
            "must be exactly 16 bytes, but it is 0 bytes",
        ),
        (
            base.clone(),
            "--vmsa-cpu0",
            "",
            "vmsa4097",
            "must be exactly 4096 bytes, but it is more than 4096 bytes",
        ),
        (base.clone(), "--firmware", "", "empty", "is empty"),
    ];
    for feed in [Feed::Subst, Feed::Fifo] {
        for (args, opt, prefix, file, needle) in &cases {
            let at = args.iter().position(|a| a == opt).unwrap() + 1;
            let r = run_fed(&[OURS], args, at, prefix, &d.join(file), feed, d);
            assert_eq!(r.code, 2, "{}: {}{}", r.what, r.out, r.err);
            assert!(
                r.err.contains(needle),
                "{}: wanted {needle:?} in {}",
                r.what,
                r.err
            );
            assert!(!r.err.contains("panicked"), "{}", r.err);
        }
    }
}

/// A secret larger than the firmware's secret area is refused from a pipe
/// too, never cut short. Needs a launch that validates.
#[test]
fn a_piped_secret_over_the_secret_area_is_refused() {
    let Some(l) = Launch::new() else {
        return;
    };
    fs::write(l.dir.path().join("big"), vec![b'x'; 0xC01]).unwrap();
    let args = l.args(false, "big");
    let at = args.iter().position(|a| a == "--inject-secret").unwrap() + 1;
    for feed in [Feed::Subst, Feed::Fifo] {
        let r = run_fed(
            &[OURS],
            &args,
            at,
            &format!("{LUKS}:"),
            &l.dir.path().join("big"),
            feed,
            l.dir.path(),
        );
        assert_eq!(r.code, 2, "{}: {}{}", r.what, r.out, r.err);
        assert!(
            r.err.contains("more than the 3072 bytes"),
            "{}: {}",
            r.what,
            r.err
        );
        assert!(!Path::new(&l.p("hdr-big")).exists(), "a header was written");
    }
}

// ------------------------------------------------------------------------ SEV-SNP ----

fn sev_snp_measure() -> Option<PathBuf> {
    let p = std::env::var_os("SEV_SNP_MEASURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/sev-snp-measure/bin/sev-snp-measure"));
    if p.is_file() {
        Some(p)
    } else {
        common::skip_or_fail(
            "special_files",
            "sev-snp-measure is needed (scripts/setup.sh)",
        );
        None
    }
}

#[test]
fn snp_subcommand_files_may_be_pipes_or_fifos() {
    let Some(ssm) = sev_snp_measure() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("fw.fd"), common::snp_test_firmware()).unwrap();
    fs::write(
        d.join("vmlinuz"),
        (0..300_000u32).map(|i| (i % 253) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    fs::write(
        d.join("initrd"),
        (0..500_000u32).map(|i| (i % 241) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let common_args = [
        "--vcpus",
        "2",
        "--vcpu-type",
        "EPYC-v4",
        "--output-format",
        "hex",
    ];
    let kernel = [
        format!("--kernel={}", s(&d.join("vmlinuz"))),
        format!("--initrd={}", s(&d.join("initrd"))),
        format!("--append={CMDLINE}"),
    ];
    let theirs = Command::new(&ssm)
        .args(["--mode", "snp", "--ovmf", &s(&d.join("fw.fd"))])
        .args(common_args)
        .args(&kernel)
        .output()
        .unwrap();
    assert!(
        theirs.status.success(),
        "sev-snp-measure: {}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    let expected = String::from_utf8(theirs.stdout)
        .unwrap()
        .trim()
        .to_lowercase();
    let theirs_fw = Command::new(&ssm)
        .args(["--mode", "snp:ovmf-hash", "--ovmf", &s(&d.join("fw.fd"))])
        .output()
        .unwrap();
    assert!(theirs_fw.status.success());
    let expected_fw = String::from_utf8(theirs_fw.stdout)
        .unwrap()
        .trim()
        .to_lowercase();

    let mut digest = vec![
        "snp-digest".to_string(),
        "--ovmf".into(),
        s(&d.join("fw.fd")),
    ];
    digest.extend(common_args.iter().map(|x| x.to_string()));
    digest.extend(kernel.iter().cloned());
    let ovmf_hash = vec![
        "snp-ovmf-hash".to_string(),
        "--ovmf".into(),
        s(&d.join("fw.fd")),
    ];
    let mut fails = Vec::new();
    let mut n = 0;
    let feeds = [Feed::Regular, Feed::Subst, Feed::Fifo, Feed::Stdin];
    for feed in feeds {
        // (arguments, index of the value, prefix, file, expected)
        let cases: Vec<(&Vec<String>, usize, &str, &str, &str)> = vec![
            (&digest, 2, "", "fw.fd", &expected),
            (&digest, 9, "--kernel=", "vmlinuz", &expected),
            (&digest, 10, "--initrd=", "initrd", &expected),
            (&ovmf_hash, 2, "", "fw.fd", &expected_fw),
        ];
        for (args, at, prefix, file, want) in cases {
            n += 1;
            let r = run_fed(&[OURS], args, at, prefix, &d.join(file), feed, d);
            if r.code != 0 {
                fails.push(format!("{}: exit {}: {}", r.what, r.code, r.err.trim()));
            } else if r.out.trim() != want {
                fails.push(format!(
                    "{}: {} but sev-snp-measure gives {want}",
                    r.what,
                    r.out.trim()
                ));
            }
        }
    }
    assert!(
        fails.is_empty(),
        "{} of {n} runs failed:\n{}",
        fails.len(),
        fails.join("\n")
    );
}

#[test]
fn snp_firmware_limit_holds_for_a_pipe() {
    // One byte more than the 64 MiB limit, made by dd: refused, not measured.
    let script = format!(
        "exec {} snp-ovmf-hash --ovmf <(head -c {} /dev/zero)",
        q(OURS),
        64 * 1024 * 1024 + 1
    );
    let o = Command::new("bash").arg("-c").arg(script).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("more than 67108864 bytes"), "{err}");
}

#[test]
fn snp_id_keys_may_be_pipes_or_fifos() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for k in ["id.pem", "author.pem"] {
        let ok = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
                "-out",
            ])
            .arg(d.join(k))
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    // The key digests, from the regular files.
    let args = common::argv(&[
        "snp-id-block",
        "--digest",
        &"ab".repeat(48),
        "--id-key",
        &s(&d.join("id.pem")),
        "--author-key",
        &s(&d.join("author.pem")),
    ]);
    // The key digests: the `id_key_digest:` and `author_key_digest:` lines.
    let lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.contains("_key_digest:"))
            .map(|l| l.to_string())
            .collect()
    };
    let r = run_fed(&[OURS], &args, 4, "", &d.join("id.pem"), Feed::Regular, d);
    assert_eq!(r.code, 0, "{}", r.err);
    let reference = lines(&r.out);
    assert_eq!(reference.len(), 2, "{}", r.out);
    // And from sev-snp-measure's snp-create-id-block, given the regular files.
    if let Some(ssm) = sev_snp_measure() {
        let o = Command::new(ssm.with_file_name("snp-create-id-block"))
            .args(["--measurement", &"q6ur".repeat(16)])
            .args(["--idkey", &s(&d.join("id.pem"))])
            .args(["--authorkey", &s(&d.join("author.pem"))])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let theirs = String::from_utf8(o.stdout).unwrap();
        let field = |out: &str, key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {key} in {out}"))
        };
        // sev-snp-measure prints base64; ours is hex, as every digest we print.
        let unb64 = |s: String| {
            use base64::Engine as _;
            hex::encode(base64::engine::general_purpose::STANDARD.decode(s).unwrap())
        };
        assert_eq!(
            unb64(field(&theirs, "id_key_hash:")),
            field(&r.out, "id_key_digest:")
        );
        assert_eq!(
            unb64(field(&theirs, "author_key:")),
            field(&r.out, "author_key_digest:")
        );
    }
    let mut fails = Vec::new();
    for feed in [Feed::Subst, Feed::Fifo, Feed::Stdin] {
        for (at, file) in [(4, "id.pem"), (6, "author.pem")] {
            let r = run_fed(&[OURS], &args, at, "", &d.join(file), feed, d);
            if r.code != 0 {
                fails.push(format!("{}: exit {}: {}", r.what, r.code, r.err.trim()));
            } else if lines(&r.out) != reference {
                fails.push(format!(
                    "{}: {:?}, regular files give {reference:?}",
                    r.what,
                    lines(&r.out)
                ));
            }
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}
