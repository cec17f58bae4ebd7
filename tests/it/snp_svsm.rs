//! The OVMF + COCONUT-SVSM form of `snp-digest` (`--svsm`, `--vars-size`,
//! `--vars-file`) against PyPI's sev-snp-measure 0.0.13 `--mode snp:svsm`,
//! an independent implementation. Every expected digest, and every
//! "reported" MEASUREMENT the explainer is handed, comes from
//! sev-snp-measure, never from this program.
//!
//! - Random launches: OVMF-like images this test builds (random bodies; no
//!   footer table, a footer table of unrelated entries, or a whole SNP
//!   firmware), SVSM images with a footer table holding the SVSM info entry
//!   (a random entry offset) and SEV metadata with SNP_SEC_MEM, SECRETS,
//!   CPUID, SVSM_CAA and SNP_KERNEL_HASHES sections at random addresses
//!   (metadata sometimes beyond the last 64 KiB), OVMF_VARS sizes common,
//!   random and so large that the SVSM image lands at GPA 0 to 3 pages,
//!   given as `--vars-size` or as a (sparse) `--vars-file`, 1 to 64 vCPUs,
//!   vCPU types, signatures and family/model/stepping, hex and base64
//!   output: byte-identical output in every case.
//! - The explainer names a changed vCPU count, OVMF_VARS size or vCPU
//!   model, two of them at once, says "another OVMF or SVSM build" when the
//!   SVSM image differs, and passes a match; `snp-validate ... -- --svsm`
//!   does the same with a report the simulated SNP firmware signs.
//! - Usage errors (exit 2, naming the option): what sev-snp-measure ignores
//!   in this mode, vars sizes QEMU cannot map, images that do not fit or are
//!   not an SVSM.
//!
//! Not here: the two public snp:svsm vectors (measurement.md §8.1) need
//! sev-snp-measure's `svsm.bin` and `svsm_ovmf.fd`, which are not among the
//! copied fixtures (../shared/vectors).
//!
//! Prerequisite: sev-snp-measure in /opt/sev-snp-measure (scripts/setup.sh),
//! or `$SEV_SNP_MEASURE`. Missing: a SKIPPED line, or a failure when `CI` is
//! set. Knobs: `SNP_SVSM_SEED` (printed on every run), `SNP_SVSM_CASES`
//! (default 64), `SNP_SVSM_EXPLAIN_CASES` (default 16).

use crate::common::rng::{env_u64, Rng};
use crate::common::{self, schema, skip_or_fail, snp_sim, Files, Tool};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use base64::Engine as _;

const DEFAULT_SEED: u64 = 0x5EE5_5C05_2026_0001;
const SVSM_INFO: &str = "a789a612-0597-4c4b-a49f-cbb1fe9d1ddd";
const FOUR_GIB: u64 = 1 << 32;
const COMMON_VARS: &[u64] = &[131_072, 540_672, 786_432, 1 << 20, 2 << 20, 4 << 20];

fn oracle() -> Option<PathBuf> {
    let ssm = std::env::var_os("SEV_SNP_MEASURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/sev-snp-measure/bin/sev-snp-measure"));
    if Tool::program(&ssm).arg("--version").run().code != 0 {
        skip_or_fail(
            "snp_svsm",
            &format!(
                "sev-snp-measure not found at {} (scripts/setup.sh installs it; or set SEV_SNP_MEASURE)",
                ssm.display()
            ),
        );
        return None;
    }
    Some(ssm)
}

// ------------------------------------------------------------------------ images ----

/// An SVSM image: a random body with SEV metadata and a footer table holding
/// the SVSM info entry, laid out as edk2 lays out OVMF's
/// (`common::snp_firmware_with`).
#[derive(Debug, Clone)]
struct Svsm {
    pages: usize,
    seed: u64,
    sections: Vec<(u32, u32, u32)>,
    entry: u32,
    metadata_offset: u32,
    other_entries: bool,
}

impl Svsm {
    fn bytes(&self) -> Vec<u8> {
        let mut entries = vec![(SVSM_INFO, self.entry.to_le_bytes().to_vec())];
        if self.other_entries {
            entries.push((common::RESET_BLOCK, 0x80B004u32.to_le_bytes().to_vec()));
            entries.push((
                common::HASH_AREA,
                [0x80FC00u32, 0x400].map(u32::to_le_bytes).concat(),
            ));
        }
        common::snp_firmware_with(
            Rng::new(self.seed).bytes(self.pages * 4096),
            &self.sections,
            self.metadata_offset,
            &entries,
        )
    }
}

/// Sections both tools measure alike: sev-snp-measure measures one page of
/// a SECRETS or CPUID section and knows no other types (those differences
/// are the OVMF form's, tested in snp_differential).
fn random_svsm(r: &mut Rng) -> Svsm {
    let pages = match r.below(10) {
        0 => 300,
        1 => 64,
        _ => r.range(2, 40) as usize,
    };
    let len = pages as u64 * 4096;
    let sections = (0..r.range(1, 7))
        .map(|_| {
            let (kind, n) = match r.below(5) {
                0 => (1, r.range(1, 8)),
                1 => (2, 1),
                2 => (3, 1),
                3 => (4, r.range(1, 2)),
                _ => (0x10, 1),
            };
            let size = n as u32 * 4096;
            let gpa = r.below(u64::from((0xFFFF_F000 - size) / 4096)) as u32 * 4096;
            (gpa, size, kind)
        })
        .collect();
    let metadata_offset = if len > 0x11000 && r.chance(40) {
        // Beyond the last 64 KiB: the tail is read again from there.
        r.range(0x10100 / 16, (len - 0x1000) / 16) as u32 * 16
    } else {
        r.range(0x30, len.min(0x10000) / 16) as u32 * 16
    };
    Svsm {
        pages,
        seed: r.next_u64(),
        sections,
        entry: r.below(len) as u32,
        metadata_offset,
        other_entries: r.chance(30),
    }
}

/// An OVMF-like image: sev-snp-measure reads OVMF's footer table but
/// measures only its pages in this form.
fn random_ovmf(r: &mut Rng) -> Vec<u8> {
    let pages = match r.below(8) {
        0 => 512,
        1 => 1024,
        _ => r.range(1, 64) as usize,
    };
    match r.below(3) {
        0 => Rng::new(r.next_u64()).bytes(pages * 4096),
        1 => common::firmware_with(
            &[(common::RESET_BLOCK, 0x80B004u32.to_le_bytes().to_vec())],
            pages * 4096,
        ),
        _ => {
            let mut fw = common::snp_test_firmware();
            fw.splice(0..0, Rng::new(r.next_u64()).bytes(pages * 4096));
            fw
        }
    }
}

#[derive(Debug, Clone)]
enum Vcpu {
    Type(&'static str),
    Sig(u32),
    Fms(u32, u32, u32),
}

fn vcpu_args(v: &Vcpu) -> Vec<String> {
    let s = |x: &[&str]| x.iter().map(|a| a.to_string()).collect();
    match v {
        Vcpu::Type(t) => s(&["--vcpu-type", t]),
        Vcpu::Sig(n) => s(&["--vcpu-sig", &format!("{n:#x}")]),
        Vcpu::Fms(f, m, st) => s(&[
            "--vcpu-family",
            &f.to_string(),
            "--vcpu-model",
            &m.to_string(),
            "--vcpu-stepping",
            &st.to_string(),
        ]),
    }
}

/// One launch, as both tools take it (the same options, but for the mode).
struct Launch {
    ovmf: PathBuf,
    svsm: PathBuf,
    vars: u64,
    vars_file: Option<PathBuf>,
    vcpus: u32,
    vcpu: Vcpu,
    base64: bool,
}

impl Launch {
    fn args(&self) -> Vec<String> {
        let mut a = vec![
            "--ovmf".to_string(),
            self.ovmf.display().to_string(),
            "--svsm".into(),
            self.svsm.display().to_string(),
        ];
        match &self.vars_file {
            Some(f) => a.extend(["--vars-file".into(), f.display().to_string()]),
            None => a.extend(["--vars-size".into(), self.vars.to_string()]),
        }
        a.extend(["--vcpus".into(), self.vcpus.to_string()]);
        a.extend(vcpu_args(&self.vcpu));
        if self.base64 {
            a.extend(["--output-format".into(), "base64".into()]);
        }
        a
    }

    fn ssm(&self, ssm: &Path) -> common::Outcome {
        Tool::program(ssm)
            .args(["--mode", "snp:svsm"])
            .args(self.args())
            .run()
    }

    fn ours(&self, extra: &[&str]) -> common::Outcome {
        Tool::new()
            .arg("snp-digest")
            .args(self.args())
            .args(extra)
            .run()
    }
}

/// A sparse file of `len` bytes: only its length is read.
fn vars_file(path: &Path, len: u64) -> PathBuf {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
    path.to_path_buf()
}

fn random_launch(r: &mut Rng, dir: &Path, idx: usize) -> (Launch, String) {
    let ovmf_bytes = random_ovmf(r);
    let svsm = random_svsm(r);
    let ovmf = dir.join(format!("ovmf{idx}.fd"));
    let svsm_path = dir.join(format!("svsm{idx}.bin"));
    std::fs::write(&ovmf, &ovmf_bytes).unwrap();
    std::fs::write(&svsm_path, svsm.bytes()).unwrap();
    let room = FOUR_GIB - ovmf_bytes.len() as u64 - svsm.pages as u64 * 4096;
    let vars = match r.below(10) {
        0..=3 => r.pick(COMMON_VARS),
        4..=7 => r.range(1, 4096) * 4096,
        // The SVSM image at GPA 0 to 3 pages.
        _ => room - r.below(4) * 4096,
    };
    let vars_file = r
        .chance(35)
        .then(|| vars_file(&dir.join(format!("vars{idx}.fd")), vars));
    let vcpu = match r.below(3) {
        0 => Vcpu::Type(r.pick(snp_sim::SSM_VCPU_TYPES)),
        1 => Vcpu::Sig(r.range(1, u64::from(u32::MAX)) as u32),
        _ => Vcpu::Fms(
            r.range(1, 0x10E) as u32,
            r.below(256) as u32,
            r.below(16) as u32,
        ),
    };
    let launch = Launch {
        ovmf,
        svsm: svsm_path,
        vars,
        vars_file,
        vcpus: r.range(1, 64) as u32,
        vcpu,
        base64: r.chance(30),
    };
    let what = format!(
        "ovmf {} bytes, svsm {svsm:?}, vars {vars:#x} (file: {}), vcpus {}, {:?}",
        ovmf_bytes.len(),
        launch.vars_file.is_some(),
        launch.vcpus,
        launch.vcpu
    );
    (launch, what)
}

#[test]
fn random_launches_match_sev_snp_measure() {
    let Some(ssm) = oracle() else { return };
    let seed = env_u64("SNP_SVSM_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("SNP_SVSM_CASES").map_or(64, |n| n as usize);
    eprintln!("snp_svsm: seed {seed:#x}, {cases} cases (SNP_SVSM_SEED, SNP_SVSM_CASES)");
    let dir = Files::new();
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases {
                    break;
                }
                let mut r = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
                let (launch, what) = random_launch(&mut r, dir.path(), i);
                let theirs = launch.ssm(&ssm);
                let ours = launch.ours(&[]);
                if theirs.code != 0 || ours.code != 0 || theirs.stdout != ours.stdout {
                    failures.lock().unwrap().push(format!(
                        "case {i}: {what}\n  sev-snp-measure exit {}: {}{}\n  ours exit {}: {}{}",
                        theirs.code,
                        theirs.stdout,
                        theirs.stderr,
                        ours.code,
                        ours.stdout,
                        ours.stderr
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ (seed {seed:#x}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("snp_svsm: {cases} random launches byte-identical with sev-snp-measure");
}

#[test]
fn a_piped_vars_file_is_measured_by_its_length() {
    let Some(ssm) = oracle() else { return };
    let dir = Files::new();
    let mut r = Rng::new(DEFAULT_SEED ^ 0x91BE);
    let (mut launch, _) = random_launch(&mut r, dir.path(), 0);
    launch.vars = 540_672;
    launch.vars_file = None;
    let want = launch.ssm(&ssm).expect_code(0).stdout;
    let mut args = vec!["snp-digest".to_string()];
    args.extend(common::without(&launch.args(), "--vars-size"));
    args.extend(["--vars-file".into(), "-".into()]);
    let out = std::process::Command::new(common::tool::OURS)
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(&vec![0xAA; 540_672])?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

// --------------------------------------------------------------------- explainer ----

/// The owner's launch of the explainer tests: EPYC-Milan, 4 vCPUs, 528 KiB vars.
fn owner(dir: &Path, seed: u64) -> Launch {
    let mut r = Rng::new(seed);
    let ovmf = dir.join("owner-ovmf.fd");
    std::fs::write(&ovmf, Rng::new(r.next_u64()).bytes(64 * 4096)).unwrap();
    let svsm = dir.join("owner-svsm.bin");
    let mut img = random_svsm(&mut r);
    img.pages = 48;
    img.entry %= 48 * 4096;
    img.metadata_offset = 0x800;
    std::fs::write(&svsm, img.bytes()).unwrap();
    Launch {
        ovmf,
        svsm,
        vars: 540_672,
        vars_file: None,
        vcpus: 4,
        vcpu: Vcpu::Type("EPYC-Milan"),
        base64: false,
    }
}

/// A host launch that differs from `owner` in one or two of the inputs
/// this form has, and the words the explainer must name it with.
fn host_change(r: &mut Rng, kind: usize, o: &Launch) -> (Launch, Vec<String>) {
    let mut h = Launch {
        vcpu: o.vcpu.clone(),
        ovmf: o.ovmf.clone(),
        svsm: o.svsm.clone(),
        vars_file: None,
        ..*o
    };
    let mut words = Vec::new();
    let vcpus = |r: &mut Rng, h: &mut Launch, w: &mut Vec<String>| {
        h.vcpus = r.pick(&[1u32, 2, 3, 8, 64]);
        w.push(format!("--vcpus {}", h.vcpus));
    };
    match kind % 5 {
        0 => vcpus(r, &mut h, &mut words),
        1 => {
            h.vars = r.pick(&[131_072, 786_432, 1 << 20, 2 << 20, 4 << 20]);
            words.push(format!("--vars-size {}", h.vars));
        }
        2 => {
            let k = r.range(1, 64) * 4096;
            h.vars = if r.chance(50) { o.vars + k } else { o.vars - k };
            words.push(format!("--vars-size {}", h.vars));
        }
        3 => {
            let (t, name) = r.pick(&[
                ("EPYC-Genoa-v1", "EPYC-Genoa"),
                ("EPYC-Rome", "EPYC-Rome"),
                ("EPYC-Turin", "EPYC-Turin"),
                ("EPYC-v4", "EPYC"),
            ]);
            h.vcpu = Vcpu::Type(t);
            words.push(format!("--vcpu-type {name}"));
        }
        _ => {
            h.vars = 1 << 20;
            words.push("--vars-size 1048576".into());
            vcpus(r, &mut h, &mut words);
        }
    }
    if words.iter().any(|w| w == "--vcpus 4") {
        // Drawn the owner's own count: no change there.
        words.retain(|w| w != "--vcpus 4");
    }
    (h, words)
}

#[test]
fn the_explainer_names_the_changed_input() {
    let Some(ssm) = oracle() else { return };
    let seed = env_u64("SNP_SVSM_SEED").unwrap_or(DEFAULT_SEED) ^ 0xE8A1;
    let cases = env_u64("SNP_SVSM_EXPLAIN_CASES").map_or(16, |n| n as usize);
    eprintln!("snp_svsm explainer: seed {seed:#x}, {cases} cases");
    let dir = Files::new();
    let o = owner(dir.path(), seed);
    let mut failures = Vec::new();
    for i in 0..cases {
        let mut r = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (host, words) = host_change(&mut r, i, &o);
        let reported = host.ssm(&ssm).expect_code(0).stdout;
        let m = reported.trim();
        let run = o.ours(&["--measurement", m]);
        let one = words.len() == 1;
        let ok = run.code == 1
            && run.stdout.is_empty()
            && words.iter().all(|w| run.stderr.contains(w.as_str()))
            && (!one
                || run
                    .stderr
                    .contains("The host's launch differs in one input"))
            && run.stderr.contains(&format!("reported: {m}"));
        if !ok {
            failures.push(format!("case {i}: want {words:?}\n{}", run.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn another_svsm_build_matches_nothing_and_a_match_passes() {
    let Some(ssm) = oracle() else { return };
    let dir = Files::new();
    let o = owner(dir.path(), DEFAULT_SEED ^ 0xB11D);
    // The host's SVSM image differs in one byte of its body.
    let mut img = std::fs::read(&o.svsm).unwrap();
    img[100] ^= 1;
    let other = dir.write("host-svsm.bin", &img);
    let host = Launch {
        svsm: other.into(),
        vcpu: o.vcpu.clone(),
        ovmf: o.ovmf.clone(),
        vars_file: None,
        ..o
    };
    let m = host.ssm(&ssm).expect_code(0).stdout;
    let run = o.ours(&["--measurement", m.trim()]).expect_code(1);
    assert!(
        run.stderr.contains("None of") && run.stderr.contains("another OVMF or SVSM build"),
        "{}",
        run.stderr
    );
    // The owner's own launch, its digest given as base64: OK, exit 0.
    let own = o.ssm(&ssm).expect_code(0).stdout;
    let bytes = hex::decode(own.trim()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let ok = o.ours(&["--measurement", &b64]).expect_code(0);
    assert_eq!(
        ok.stdout,
        format!(
            "{own}OK: the reported MEASUREMENT equals the launch digest of the expected inputs\n"
        )
    );
}

/// `snp-validate REPORT ... -- --svsm ...`: the expected MEASUREMENT is the
/// OVMF + SVSM digest, and on a mismatch the hint and the JSON explanation
/// name the change (a report the simulated SNP firmware signs, holding
/// sev-snp-measure's digest).
#[test]
fn snp_validate_takes_the_svsm_options() {
    let Some(ssm) = oracle() else { return };
    let dir = Files::new();
    if snp_sim::chain("milan", dir.path(), &[]).is_none() {
        return;
    }
    let o = owner(dir.path(), DEFAULT_SEED ^ 0x5A11);
    let host = Launch {
        vars: 128 << 10,
        vcpu: o.vcpu.clone(),
        ovmf: o.ovmf.clone(),
        svsm: o.svsm.clone(),
        vars_file: None,
        ..o
    };
    for (launch, code) in [(&o, 0), (&host, 1)] {
        let m = launch.ssm(&ssm).expect_code(0).stdout;
        let report = dir.p("report.bin");
        let signed = snp_sim::report(dir.path(), Path::new(&report), &["--measurement", m.trim()]);
        assert_eq!(signed.as_deref(), Some(m.trim()));
        let out = Tool::new()
            .args(["snp-validate", &report, "--no-report-data-check", "--json"])
            .args(["--trust-anchors", &dir.p("ark.pem")])
            .args(["--trust-anchors", &dir.p("ask.pem")])
            .args(["--vcek", &dir.p("vcek.der"), "--"])
            .args(o.args())
            .run()
            .expect_code(code);
        let doc = out.json();
        let check = doc["checks"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["name"] == "expect.measurement"))
            .cloned()
            .unwrap_or_default();
        if code == 0 {
            assert_eq!(check["status"], "pass", "{doc:#}");
            continue;
        }
        assert_eq!(doc["failed"], serde_json::json!(["expect.measurement"]));
        let hint = check["hint"].as_str().unwrap_or_default();
        assert!(hint.contains("--vars-size 131072"), "{hint}");
        assert_eq!(check["explanation"]["changes"][0]["kind"], "vars-size");
        if schema::have_jsonschema() {
            schema::validate_json("snp-validate.schema.json", &out.stdout).unwrap();
        }
    }
}

// ------------------------------------------------------------------ usage errors ----

#[test]
fn what_the_svsm_form_cannot_take_is_a_usage_error() {
    let dir = Files::new();
    let o = owner(dir.path(), DEFAULT_SEED ^ 0x0BAD);
    let base: Vec<String> = [vec!["snp-digest".to_string()], o.args()].concat();
    let hash = "ab".repeat(48);
    let empty = dir.write("empty.fd", b"");
    let odd = dir.write("odd.fd", vec![0u8; 1000]);
    let kernel = dir.write("vmlinuz", b"kernel");
    let plus = |extra: &[&str]| common::with(&base, extra);
    let no_vars = common::without(&base, "--vars-size");
    let swap = |opt: &str, path: &str| {
        let mut a = base.clone();
        common::set(&mut a, opt, path);
        a
    };
    // Images that are not an SVSM, or do not fit.
    let mut r = Rng::new(7);
    let no_footer = dir.write("nofooter.bin", r.bytes(8 * 4096));
    let mut img = owner(dir.path(), DEFAULT_SEED ^ 0x0BAD);
    let no_info = common::snp_test_firmware();
    let no_info = dir.write("noinfo.bin", no_info);
    let no_meta = common::firmware_with(&[(SVSM_INFO, vec![0; 4])], 8 * 4096);
    let no_meta = dir.write("nometa.bin", no_meta);
    img.svsm = dir.path().join("entry-outside.bin");
    let mut outside = random_svsm(&mut r);
    outside.entry = outside.pages as u32 * 4096;
    std::fs::write(&img.svsm, outside.bytes()).unwrap();
    let mut short = std::fs::read(&o.svsm).unwrap();
    short.drain(..100);
    let short = dir.write("short.bin", short);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            plus(&["--kernel", &kernel]),
            "--kernel cannot be used with --svsm",
        ),
        (
            plus(&["--initrd", &kernel]),
            "--initrd cannot be used with --svsm",
        ),
        (
            plus(&["--append", "x"]),
            "--append cannot be used with --svsm",
        ),
        (
            plus(&["--ovmf-hash", &hash]),
            "--ovmf-hash cannot be used with --svsm",
        ),
        (
            plus(&["--guest-features", "0x1"]),
            "--guest-features cannot be used",
        ),
        (
            plus(&["--vmsa-form", "init2"]),
            "--vmsa-form cannot be used with --svsm",
        ),
        (
            plus(&["--vmm-type", "ec2"]),
            "--vmm-type cannot be used with --svsm",
        ),
        (
            plus(&["--vmm-type", "gce"]),
            "--vmm-type cannot be used with --svsm",
        ),
        (
            swap("--vars-size", "0"),
            "--vars-size 0: the OVMF_VARS size is 0 bytes",
        ),
        (swap("--vars-size", "4097"), "--vars-size 4097"),
        (
            common::with(&no_vars, &["--vars-file", &empty]),
            "OVMF_VARS file",
        ),
        (
            common::with(&no_vars, &["--vars-file", &odd]),
            "is 1000 bytes",
        ),
        (plus(&["--vars-file", &empty]), "--vars-file"),
        (no_vars.clone(), "--svsm needs --vars-size or --vars-file"),
        (common::without(&base, "--svsm"), "--vars-size needs --svsm"),
        (common::without(&base, "--vcpu-type"), "--vcpu-type"),
        (swap("--vcpus", "0"), "--vcpus"),
        (swap("--vars-size", "4294901760"), "does not fit"),
        (swap("--svsm", &no_footer), "no OVMF-style footer table"),
        (swap("--svsm", &no_info), "no SVSM info entry"),
        (swap("--svsm", &no_meta), "no SEV metadata"),
        (
            swap("--svsm", img.svsm.to_str().unwrap()),
            "SVSM entry point",
        ),
        (swap("--svsm", &short), "multiple of 4096"),
        (swap("--ovmf", &odd), "firmware"),
    ];
    let mut vars_only = common::without(&common::without(&base, "--svsm"), "--vars-size");
    vars_only.extend(["--vars-file".into(), empty.clone()]);
    let mut both_stdin = swap("--svsm", "-");
    both_stdin = common::with(
        &common::without(&both_stdin, "--vars-size"),
        &["--vars-file", "-"],
    );
    let cases = [
        cases,
        vec![
            (vars_only, "--vars-file needs --svsm"),
            (both_stdin, "standard input"),
        ],
    ]
    .concat();
    for (args, needle) in &cases {
        common::expect(args, 2, needle);
    }
    // The same options after snp-validate's '--' are refused the same way,
    // before the report is read.
    let report = dir.write("report.bin", vec![0u8; 1184]);
    for (args, needle) in cases.iter().step_by(3) {
        let mut v = common::argv(&["snp-validate", &report, "--no-report-data-check", "--"]);
        v.extend(args[1..].iter().cloned());
        common::expect(&v, 2, needle);
    }
}
