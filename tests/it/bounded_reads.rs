//! Every file option of every command, fed an input without end: /dev/zero,
//! a FIFO whose writer never stops, and a 2 GB pipe on standard input (`-`).
//! Each is refused with exit code 2 and a message naming the input and its
//! limit, while the tool's peak memory stays within 64 MiB plus what the
//! limit lets it hold (tried as a new user would: `snp-report /dev/zero`
//! once grew to 23.8 GB, and a 2 GB pipe to snp-validate to 1.96 GB).
//!
//! The limits themselves are the man page's (FILES): 1 MiB for reports,
//! certificates, certificate tables, trust anchors and public keys, 64 KiB
//! for private keys, the exact sizes of the TIK, TEK, TK and VMSA files,
//! the secret area for secrets, 64 MiB of firmware, 256 MiB of kernel and
//! 512 MiB of initrd.

use crate::common;
use common::endless::{self, run_endless, Endless};
use common::Args;

use std::path::Path;
use std::sync::Mutex;

const MIB: u64 = 1024 * 1024;
const REPORT: u64 = MIB;
const KEY: u64 = 64 * 1024;
const FIRMWARE: u64 = 64 * MIB;

/// One file option: the command line, which argument is the file (after
/// `prefix`), what stderr must say, and how much the tool may hold of it.
struct Case {
    name: &'static str,
    args: Vec<String>,
    at: usize,
    prefix: &'static str,
    needle: String,
    /// Bytes of the input the tool may hold in memory (0: streamed).
    held: u64,
}

fn case(name: &'static str, args: &[String], opt: &str, needle: &str, held: u64) -> Case {
    let at = args.iter().position(|a| a == opt).expect(opt) + 1;
    Case {
        name,
        args: args.to_vec(),
        at,
        prefix: "",
        needle: needle.to_string(),
        held,
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `base` with `--opt value` added.
fn plus(base: &[String], more: &[&str]) -> Vec<String> {
    common::with(base, more)
}

/// The main command's SEV-ES launch, offline, every file given and valid;
/// with the measurement the simulated Secure Processor reports for it when
/// it is there (then the secret is read too), else an arbitrary one.
fn main_cases(d: &Path) -> Vec<Case> {
    let fw = endless::write(d, "fw.fd", &common::amdsev_like_firmware());
    let key = endless::write(d, "key16", &[0x11; 16]);
    let tk = endless::write(d, "key32", &[0x22; 32]);
    let vmsa = endless::write(d, "vmsa", &[0xa5; 4096]);
    let kernel = endless::write(d, "kernel", b"a kernel");
    let initrd = endless::write(d, "initrd", b"an initrd");
    let both = Args::new()
        .platform(1, 49, 6, 5)
        .opt("--firmware", &fw)
        .opt("--kernel", &kernel)
        .opt("--initrd", &initrd)
        .opt("--cmdline", "console=ttyS0")
        .opt("--num-cpus", 2);
    let launch = both
        .clone()
        .opt("--vmsa-cpu0", &vmsa)
        .opt("--vmsa-cpu1", &vmsa);
    let sim = both
        .args(["--kernel-hashes", "--vmsa-bsp", &vmsa, "--vmsa-ap", &vmsa])
        .opt("--tik", &key)
        .opt("--nonce-hex", "4e".repeat(16));
    let measured = common::sev_measure(sim.vec());
    let m = measured
        .clone()
        .unwrap_or_else(|| format!("{}=", "A".repeat(63)));
    let base = launch.opt("--measurement", &m).keys(&key, &key).vec();
    let tk_base = plus(
        &common::without(&common::without(&base, "--tik"), "--tek"),
        &["--tk", &tk],
    );
    let exact = |n: usize| format!("must be exactly {n} bytes, but it is more than {n} bytes");
    let mut cases = vec![
        case(
            "--firmware",
            &base,
            "--firmware",
            "more than 67108864 bytes",
            0,
        ),
        case(
            "--kernel",
            &base,
            "--kernel",
            "more than 268435456 bytes",
            0,
        ),
        case(
            "--initrd",
            &base,
            "--initrd",
            "more than 536870912 bytes",
            0,
        ),
        case("--vmsa-cpu0", &base, "--vmsa-cpu0", &exact(4096), 4096),
        case("--vmsa-cpu1", &base, "--vmsa-cpu1", &exact(4096), 4096),
        case("--tik", &base, "--tik", &exact(16), 16),
        case("--tek", &base, "--tek", &exact(16), 16),
        case("--tk", &tk_base, "--tk", &exact(32), 32),
    ];
    if measured.is_some() {
        let secret = endless::write(d, "secret", b"s");
        let out = [
            "--secret-header",
            &s(&d.join("hdr")),
            "--secret-payload",
            &s(&d.join("payload")),
        ];
        let with_secret = plus(&plus(&base, &out), &["-s", &format!("luks-key:{secret}")]);
        let mut c = case(
            "--inject-secret",
            &with_secret,
            "-s",
            "more than the 3072 bytes",
            3072,
        );
        c.prefix = "luks-key:";
        cases.push(c);
    } else {
        common::skip_or_fail(
            "bounded_reads --inject-secret",
            "the simulated Secure Processor (python3-cryptography) is needed for a launch that validates",
        );
    }
    cases
}

/// The SEV-SNP subcommands, each file option.
fn snp_cases(d: &Path) -> Vec<Case> {
    let sim = |f: &str| fixture(&format!("snp-sim/{f}"));
    let fw = endless::write(d, "snp.fd", &common::snp_test_firmware());
    let kernel = endless::write(d, "snp-kernel", b"a kernel");
    let initrd = endless::write(d, "snp-initrd", b"an initrd");
    let launch = common::argv(&[
        "--ovmf",
        &fw,
        "--vcpus",
        "1",
        "--vcpu-type",
        "EPYC-v4",
        "--kernel",
        &kernel,
        "--initrd",
        &initrd,
    ]);
    let digest = [common::argv(&["snp-digest"]), launch.clone()].concat();
    let report = common::argv(&["snp-report", &sim("report.bin"), "--vek", &sim("vcek.der")]);
    let validate = common::argv(&[
        "snp-validate",
        &sim("report.bin"),
        "--vcek",
        &sim("vcek.der"),
        "--trust-anchors",
        &sim("ark.pem"),
        "--trust-anchors",
        &sim("ask.pem"),
        "--no-report-data-check",
        "--now",
        "2026-06-01T00:00:00Z",
    ]);
    let waived = plus(&validate, &["--no-measurement-check"]);
    let vlek = plus(&common::without(&waived, "--vcek"), &["--vlek", "X"]);
    let after = [validate.clone(), common::argv(&["--"]), launch].concat();
    let id_block = common::argv(&[
        "snp-id-block",
        "--digest",
        &"ab".repeat(48),
        "--id-key",
        &fixture("id-key.pem"),
        "--author-key",
        &fixture("author-key.pem"),
    ]);
    let big = "more than 1048576 bytes";
    let key = "more than 65536 bytes";
    let fw_over = "more than 67108864 bytes";
    let mut positional = case("snp-report REPORT", &report, "snp-report", big, REPORT);
    positional.at = 1;
    let mut validate_report = case("snp-validate REPORT", &waived, "snp-validate", big, REPORT);
    validate_report.at = 1;
    vec![
        positional,
        case("snp-report --vek", &report, "--vek", big, REPORT),
        validate_report,
        case("snp-validate --vcek", &waived, "--vcek", big, REPORT),
        case("snp-validate --vlek", &vlek, "--vlek", big, REPORT),
        case(
            "snp-validate --cert-table",
            &plus(&waived, &["--cert-table", "X"]),
            "--cert-table",
            big,
            REPORT,
        ),
        case(
            "snp-validate --trust-anchors",
            &waived,
            "--trust-anchors",
            big,
            REPORT,
        ),
        case(
            "snp-validate --trusted-id-key",
            &plus(&waived, &["--trusted-id-key", "X"]),
            "--trusted-id-key",
            big,
            REPORT,
        ),
        case(
            "snp-validate --trusted-author-key",
            &plus(&waived, &["--trusted-author-key", "X"]),
            "--trusted-author-key",
            big,
            REPORT,
        ),
        case(
            "snp-validate -- --ovmf",
            &after,
            "--ovmf",
            fw_over,
            FIRMWARE,
        ),
        case(
            "snp-validate -- --kernel",
            &after,
            "--kernel",
            "more than 268435456 bytes",
            0,
        ),
        case(
            "snp-validate -- --initrd",
            &after,
            "--initrd",
            "more than 536870912 bytes",
            0,
        ),
        case("snp-digest --ovmf", &digest, "--ovmf", fw_over, FIRMWARE),
        case(
            "snp-digest --kernel",
            &digest,
            "--kernel",
            "more than 268435456 bytes",
            0,
        ),
        case(
            "snp-digest --initrd",
            &digest,
            "--initrd",
            "more than 536870912 bytes",
            0,
        ),
        case(
            "snp-ovmf-hash --ovmf",
            &common::argv(&["snp-ovmf-hash", "--ovmf", &fw]),
            "--ovmf",
            fw_over,
            FIRMWARE,
        ),
        case("snp-id-block --id-key", &id_block, "--id-key", key, KEY),
        case(
            "snp-id-block --author-key",
            &id_block,
            "--author-key",
            key,
            KEY,
        ),
    ]
}

/// The main command's SEV-SNP file options, through a QMP monitor that
/// answers as QEMU 10.0 for an SNP guest (Debian's OVMF as the firmware):
/// the report and its endorsement are read after the launch digest.
fn main_snp_cases(d: &Path) -> Option<Vec<Case>> {
    const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
    if !Path::new(OVMF).is_file() {
        common::skip_or_fail("bounded_reads", &format!("{OVMF} missing (Debian's ovmf)"));
        return None;
    }
    let sock = d.join("qmp.sock");
    crate::snp_qmp::snp_monitor(&sock, 0x30000, 2);
    let sim = |f: &str| fixture(&format!("snp-sim/{f}"));
    let mut base = common::argv(&[
        "--qmp",
        &s(&sock),
        "--generation",
        "sev-snp",
        "--firmware",
        OVMF,
        "--insecure",
        "--num-cpus",
        "2",
        "--report",
        &sim("report.bin"),
        "--vcek",
        &sim("vcek.der"),
        "--trust-anchors",
        &sim("ark.pem"),
        "--trust-anchors",
        &sim("ask.pem"),
        "--no-report-data-check",
        "--now",
        "2026-06-01T00:00:00Z",
    ]);
    base.extend(common::MILAN.iter().map(|a| a.to_string()));
    let vlek = plus(&common::without(&base, "--vcek"), &["--vlek", "X"]);
    let big = "more than 1048576 bytes";
    let add = |opt: &str| plus(&base, &[opt, "X"]);
    Some(vec![
        case("--report", &base, "--report", big, REPORT),
        case("--vcek", &base, "--vcek", big, REPORT),
        case("--vlek", &vlek, "--vlek", big, REPORT),
        case(
            "--cert-table",
            &add("--cert-table"),
            "--cert-table",
            big,
            REPORT,
        ),
        case("--trust-anchors", &base, "--trust-anchors", big, REPORT),
        case(
            "--trusted-id-key",
            &add("--trusted-id-key"),
            "--trusted-id-key",
            big,
            REPORT,
        ),
        case(
            "--trusted-author-key",
            &add("--trusted-author-key"),
            "--trusted-author-key",
            big,
            REPORT,
        ),
    ])
}

/// Runs every case with every feed on two threads; returns the failures
/// and the largest peak RSS seen, per case.
fn run_all(cases: &[Case], feeds: &[Endless], d: &Path) -> (Vec<String>, Vec<(String, u64)>) {
    let jobs: Mutex<Vec<(&Case, Endless)>> = Mutex::new(
        cases
            .iter()
            .flat_map(|c| feeds.iter().map(move |f| (c, *f)))
            .collect(),
    );
    let fails = Mutex::new(Vec::new());
    let peaks = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let Some((c, feed)) = jobs.lock().unwrap().pop() else {
                    return;
                };
                let r = run_endless(&c.args, c.at, c.prefix, feed, d);
                let bound_kib = (64 * MIB + c.held) / 1024;
                let mut problems = Vec::new();
                if r.code != 2 {
                    problems.push(format!("exit {}, not 2", r.code));
                }
                if !r.stderr.contains(&c.needle) {
                    problems.push(format!("no {:?} in stderr", c.needle));
                }
                // The message names the input it refuses.
                let given = &r.what[r.what.find(" as \"").unwrap() + 5..];
                let given = &given[c.prefix.len()..given.find('"').unwrap()];
                if !r.stderr.contains(&format!("'{given}'")) {
                    problems.push(format!("stderr does not name '{given}'"));
                }
                if r.stderr.contains("panicked") {
                    problems.push("panicked".into());
                }
                match r.peak_kib {
                    Some(k) if k > bound_kib => {
                        problems.push(format!("peak RSS {k} KiB, over {bound_kib} KiB"))
                    }
                    Some(k) => peaks
                        .lock()
                        .unwrap()
                        .push((format!("{} {feed:?}", c.name), k)),
                    None => {}
                }
                if !problems.is_empty() {
                    fails.lock().unwrap().push(format!(
                        "{}: {} ({:?}): {}\n  {}",
                        c.name,
                        problems.join("; "),
                        r.took,
                        r.stderr.trim(),
                        r.what
                    ));
                }
            });
        }
    });
    (fails.into_inner().unwrap(), peaks.into_inner().unwrap())
}

fn check(cases: Vec<Case>, feeds: &[Endless]) {
    if !endless::have_time() {
        common::skip_or_fail(
            "bounded_reads",
            "/usr/bin/time (Debian package time) is needed to measure the peak RSS",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (fails, mut peaks) = run_all(&cases, feeds, dir.path());
    peaks.sort_by_key(|(_, k)| std::cmp::Reverse(*k));
    let top: Vec<String> = peaks
        .iter()
        .take(3)
        .map(|(n, k)| format!("{n}: {} MiB", k / 1024))
        .collect();
    eprintln!("largest peak RSS: {}", top.join(", "));
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[test]
fn main_command_inputs_without_end_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    check(main_cases(dir.path()), &endless::ALL);
}

#[test]
fn main_command_snp_inputs_without_end_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(cases) = main_snp_cases(dir.path()) {
        check(cases, &endless::ALL);
    }
}

#[test]
fn snp_subcommand_inputs_without_end_are_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    check(snp_cases(dir.path()), &endless::ALL);
}

/// `/dev/stdin` is read like `-`, under the same limit.
#[test]
fn dev_stdin_is_bounded_like_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Case> = snp_cases(dir.path())
        .into_iter()
        .filter(|c| c.name == "snp-validate REPORT" || c.name == "snp-id-block --id-key")
        .collect();
    assert_eq!(cases.len(), 2);
    check(cases, &[Endless::DevStdin]);
}

/// A path of exactly `-` is standard input: what a regular file gives, and
/// two inputs given as `-` in one run are a usage error naming both.
#[test]
fn a_dash_reads_standard_input_once() {
    let sim = |f: &str| fixture(&format!("snp-sim/{f}"));
    let report = std::fs::read(sim("report.bin")).unwrap();
    let from_file = common::Tool::new()
        .args(["snp-report", &sim("report.bin"), "--json"])
        .run()
        .expect_code(0)
        .stdout;
    let mut child = common::bin()
        .args(["snp-report", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &report).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8(o.stdout).unwrap(), from_file);
    let two: [&[&str]; 4] = [
        &["snp-report", "-", "--vek", "-"],
        &[
            "snp-validate",
            "-",
            "--vcek",
            "-",
            "--no-report-data-check",
            "--no-measurement-check",
        ],
        &[
            "snp-id-block",
            "--digest",
            &"ab".repeat(48),
            "--id-key",
            "-",
            "--author-key",
            "-",
        ],
        &[
            "snp-digest",
            "--ovmf",
            "-",
            "--vcpus",
            "1",
            "--vcpu-type",
            "EPYC-v4",
            "--kernel",
            "-",
        ],
    ];
    for args in two {
        let err = common::Tool::new().args(args).run().expect_code(2).stderr;
        assert!(
            err.contains("standard input ('-') is given for both")
                && err.contains("read only once"),
            "{args:?}: {err}"
        );
    }
    // The main command: two of its inputs as '-'.
    let err = common::Tool::new()
        .args(
            Args::new()
                .platform(1, 49, 6, 1)
                .opt("--firmware", "-")
                .opt("--measurement", format!("{}=", "A".repeat(63)))
                .keys("-", "/dev/null")
                .vec(),
        )
        .run()
        .expect_code(2)
        .stderr;
    assert!(err.contains("given for both --firmware and --tik"), "{err}");
}

/// A KDS cache file that never ends (a link to /dev/zero) is refused at
/// what a download may be, 256 KiB. The
/// cache path is the VCEK URL the public vectors give for the report.
#[test]
fn an_endless_kds_cache_file_is_refused() {
    let Some(vec) = common::snp_vectors_dir("bounded_reads", "SNP_VECTORS") else {
        return;
    };
    let exp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vec.join("EXPECTED.json")).unwrap()).unwrap();
    let url = exp["genoa-v5-cdai"]["kds_vcek_url"].as_str().unwrap();
    let (path, query) = url
        .strip_prefix("https://kdsintf.amd.com/")
        .unwrap()
        .split_once('?')
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let file = cache.join(format!("{path}@{query}"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let args = common::argv(&[
        "snp-validate",
        &s(&vec.join("genoa-v5-cdai/report.bin")),
        "--offline",
        "--kds-cache",
        &s(&cache),
        "--no-report-data-check",
        "--no-measurement-check",
    ]);
    std::os::unix::fs::symlink("/dev/zero", &file).unwrap();
    let run = common::Tool::new().args(&args).run().expect_code(2);
    assert!(
        run.stderr
            .contains("is more than 262144 bytes; a KDS answer is at most 262144 bytes"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&s(&file)), "{}", run.stderr);
}
