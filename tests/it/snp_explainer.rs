//! The SEV-SNP mismatch explainer (`snp-digest --measurement`), against an
//! independent oracle: every reported MEASUREMENT comes from PyPI's
//! sev-snp-measure (0.0.13), never from our code. Each seeded random launch
//! changes exactly one input on the reported side (vCPU count, vCPU model,
//! VMM type, guest features: DebugSwap, Secure TSC or another bit, VMSA form,
//! kernel hashes off, a command line with a trailing newline or space, a
//! leading space, without its trailing newline or empty, no initrd), and the explainer must name that change, as the option to give
//! and what the host did. Then: two changes at once, a firmware that differs
//! (nothing matches, and it says so), a match, and bad `--measurement` values.
//!
//! sev-snp-measure always builds KVM_SEV_INIT2 VMSAs, so the VMSA form is
//! tested the other way round: the owner expects `--vmsa-form legacy` and
//! the host (sev-snp-measure) used INIT2.
//!
//! The same one-input changes then go through `snp-validate`: the simulated
//! SNP firmware (tests/sim/snp_sp.py, python3-cryptography) signs a report
//! holding sev-snp-measure's MEASUREMENT for the host's launch, and the
//! failed `expect.measurement` check must carry the change as its hint.
//!
//! Prerequisite: sev-snp-measure in /opt/sev-snp-measure (scripts/setup.sh),
//! or `$SEV_SNP_MEASURE`. Missing: a SKIPPED line, or a failure when `CI` is
//! set. Knobs: `SNP_EXPLAIN_SEED` (printed on every run), `SNP_EXPLAIN_CASES`
//! (default 42).

use crate::common;
use crate::common::rng;
use crate::common::schema;
use crate::common::snp_sim;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use base64::Engine as _;
use rng::{env_u64, Rng};

const DEFAULT_SEED: u64 = 0x5EE5_E8A1_2026_1201;
const DEFAULT_CASES: usize = 42;

/// vCPU models and their signatures (measurement.md §5), unversioned names:
/// the explainer names a model by the first QEMU name with its signature.
const MODELS: &[(&str, u32)] = &[
    ("EPYC", 0x800F12),
    ("EPYC-Rome", 0x830F10),
    ("EPYC-Milan", 0xA00F11),
    ("EPYC-Genoa", 0xA10F10),
    ("EPYC-Turin", 0xB00F00),
];

const CMDLINE_WORDS: &[&str] = &[
    "console=ttyS0",
    "root=/dev/vda1",
    "ro",
    "quiet",
    "loglevel=7",
    "init=/bin/sh",
    "a=b,c=d",
];

fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("snp_explainer: {why} (CI must provide it)");
    }
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED: snp_explainer: {why}");
}

fn oracle() -> Option<PathBuf> {
    let ssm = std::env::var_os("SEV_SNP_MEASURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/sev-snp-measure/bin/sev-snp-measure"));
    let works = Command::new(&ssm)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !works {
        skip_or_fail(&format!(
            "sev-snp-measure not found at {} (scripts/setup.sh installs it; or set SEV_SNP_MEASURE)",
            ssm.display()
        ));
        return None;
    }
    Some(ssm)
}

/// A 256 KiB firmware image: random bytes ending in an OVMF footer table and
/// SEV metadata laid out as edk2's AmdSevX64 build (measurement.md §4): SEV-ES
/// reset block, secret area, kernel hashes area and seven metadata sections,
/// SNP_KERNEL_HASHES among them.
fn firmware(seed: u64) -> Vec<u8> {
    let sections = [
        (0x800000, 0x9000, 1),
        (0x80A000, 0x3000, 1),
        (0x80D000, 0x1000, 2),
        (0x80E000, 0x1000, 3),
        (0x80F000, 0x1000, 4),
        (0x810000, 0x1000, 0x10),
        (0x811000, 0xF000, 1),
    ];
    let area = |b: u32, s: u32| [b.to_le_bytes(), s.to_le_bytes()].concat();
    common::snp_firmware_with(
        Rng::new(seed).bytes(64 * 4096),
        &sections,
        0x554,
        &[
            (common::RESET_BLOCK, 0x80B004u32.to_le_bytes().to_vec()),
            (common::SECRET_AREA, area(0x810000, 0xC00)),
            (common::HASH_AREA, area(0x810C00, 0x400)),
        ],
    )
}

/// One launch, as both tools take it.
#[derive(Debug, Clone)]
struct Launch {
    vcpus: u32,
    model: &'static str,
    vmm: &'static str,
    features: u64,
    legacy_form: bool,
    kernel: bool,
    initrd: bool,
    append: Option<String>,
}

struct Files {
    _dir: tempfile::TempDir,
    fw: PathBuf,
    other_fw: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
}

fn files(seed: u64) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("fw.fd"), firmware(seed)).unwrap();
    let mut other = firmware(seed);
    other[4096 * 3 + 17] ^= 0x40;
    std::fs::write(p("other.fd"), other).unwrap();
    let mut r = Rng::new(seed ^ 0xC0FFEE);
    std::fs::write(p("vmlinuz"), r.bytes(70_000)).unwrap();
    std::fs::write(p("initrd"), r.bytes(20_000)).unwrap();
    Files {
        fw: p("fw.fd"),
        other_fw: p("other.fd"),
        kernel: p("vmlinuz"),
        initrd: p("initrd"),
        _dir: dir,
    }
}

impl Launch {
    /// The arguments both tools share (sev-snp-measure spells QEMU in capitals).
    fn args(&self, f: &Files, fw: &Path, oracle: bool) -> Vec<String> {
        let mut a = vec![
            "--ovmf".to_string(),
            fw.display().to_string(),
            "--vcpus".into(),
            self.vcpus.to_string(),
            "--vcpu-type".into(),
            self.model.into(),
            "--vmm-type".into(),
            if oracle && self.vmm == "qemu" {
                "QEMU".into()
            } else {
                self.vmm.into()
            },
            "--guest-features".into(),
            format!("{:#x}", self.features),
        ];
        if self.kernel {
            a.push(format!("--kernel={}", f.kernel.display()));
            if self.initrd {
                a.push(format!("--initrd={}", f.initrd.display()));
            }
            if let Some(c) = &self.append {
                a.push(format!("--append={c}"));
            }
        }
        if !oracle && self.legacy_form {
            a.extend(["--vmsa-form".into(), "legacy".into()]);
        }
        a
    }
}

fn run(program: &Path, args: &[String]) -> (i32, String, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_virt-qemu-sev-validate"))
}

/// The MEASUREMENT sev-snp-measure computes for `l` (hex).
fn reported(ssm: &Path, f: &Files, fw: &Path, l: &Launch) -> String {
    assert!(!l.legacy_form, "sev-snp-measure builds INIT2 VMSAs only");
    let mut a = vec!["--mode".to_string(), "snp".into()];
    a.extend(l.args(f, fw, true));
    let (code, out, err) = run(ssm, &a);
    assert_eq!(code, 0, "sev-snp-measure {a:?} failed: {err}");
    let m = out.trim().to_string();
    assert_eq!(m.len(), 96, "sev-snp-measure printed {m:?}");
    m
}

/// Runs `snp-digest` with the owner's launch and `--measurement`.
fn compare(f: &Files, owner: &Launch, measurement: &str) -> (i32, String, String) {
    let mut a = vec!["snp-digest".to_string()];
    a.extend(owner.args(f, &f.fw, false));
    a.extend(["--measurement".into(), measurement.into()]);
    run(ours(), &a)
}

fn random_cmdline(r: &mut Rng) -> String {
    let n = r.range(1, 4);
    (0..n)
        .map(|_| r.pick(CMDLINE_WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

fn random_owner(r: &mut Rng) -> Launch {
    let kernel = r.chance(80);
    Launch {
        vcpus: r.range(1, 16) as u32,
        model: r.pick(MODELS).0,
        // ec2 and gce ignore the vCPU model and the VMSA form: those kinds set QEMU.
        vmm: r.pick(&["qemu", "qemu", "ec2", "gce"]),
        features: r.pick(&[0x1u64, 0x1, 0x21, 0x201]),
        legacy_form: false,
        kernel,
        initrd: kernel && r.chance(60),
        append: (kernel && r.chance(85)).then(|| random_cmdline(r)),
    }
}

/// The kinds of one-input change, each with what the explainer must print.
const KINDS: &[&str] = &[
    "vcpus",
    "model",
    "vmm",
    "debugswap",
    "secure-tsc",
    "feature-bit",
    "vmsa-form",
    "no-kernel-hashes",
    "cmdline-newline",
    "cmdline-space",
    "cmdline-leading-space",
    "cmdline-no-newline",
    "cmdline-empty",
    "no-initrd",
];

/// Adjusts `owner` where `kind` needs it (a kernel, a command line...) and
/// changes one input of it of that kind into the host's launch; returns the
/// owner's launch, the host's and the texts the explanation must hold.
fn one_change(r: &mut Rng, kind: &str, mut owner: Launch) -> (Launch, Launch, Vec<String>) {
    match kind {
        "debugswap" => owner.features = r.pick(&[0x1, 0x201]),
        "secure-tsc" => owner.features = r.pick(&[0x1, 0x21]),
        "vmsa-form" => {
            owner.vmm = "qemu";
            owner.legacy_form = true;
        }
        "model" => owner.vmm = "qemu",
        "no-kernel-hashes" => owner.kernel = true,
        "cmdline-newline" | "cmdline-space" | "cmdline-leading-space" | "cmdline-empty" => {
            owner.kernel = true;
            owner.append = Some(random_cmdline(r));
        }
        "cmdline-no-newline" => {
            owner.kernel = true;
            owner.append = Some(format!("{}\n", random_cmdline(r)));
        }
        "no-initrd" => {
            owner.kernel = true;
            owner.initrd = true;
        }
        _ => {}
    }
    let mut host = owner.clone();
    let expect: Vec<String> = match kind {
        "vcpus" => {
            while host.vcpus == owner.vcpus {
                host.vcpus = r.range(1, 64) as u32;
            }
            vec![format!(
                "with {} vCPU{} instead of {}: --vcpus {}",
                host.vcpus,
                if host.vcpus == 1 { "" } else { "s" },
                owner.vcpus,
                host.vcpus
            )]
        }
        "model" => {
            while host.model == owner.model {
                host.model = r.pick(MODELS).0;
            }
            vec![format!(
                "the host's vCPU model is {}, not {}: --vcpu-type {}",
                host.model, owner.model, host.model
            )]
        }
        "vmm" => {
            while host.vmm == owner.vmm {
                host.vmm = r.pick(&["qemu", "ec2", "gce"]);
            }
            vec![
                "the guest was launched by ".to_string(),
                format!(": --vmm-type {}", host.vmm),
            ]
        }
        "debugswap" => {
            host.features |= 0x20;
            vec![format!(
                "the host enabled DebugSwap: --guest-features {:#x}",
                host.features
            )]
        }
        "secure-tsc" => {
            host.features |= 0x200;
            vec![format!(
                "the host enabled SecureTSC: --guest-features {:#x}",
                host.features
            )]
        }
        "feature-bit" => {
            let bit = r.pick(&[1u32, 2, 3, 4, 6, 7, 8, 10, 14, 15]);
            host.features ^= 1 << bit;
            let verb = if host.features & (1 << bit) != 0 {
                "enabled"
            } else {
                "did not enable"
            };
            vec![format!(
                "the host {verb} {}: --guest-features {:#x}",
                FEATURE_NAMES[bit as usize], host.features
            )]
        }
        "vmsa-form" => {
            host.legacy_form = false;
            vec!["the host created the VM with KVM_SEV_INIT2 (every upstream Linux SNP host): its VMSAs hold the FPU control words: --vmsa-form init2".into()]
        }
        "no-kernel-hashes" => {
            host.kernel = false;
            vec![
                "the host did not measure the kernel".into(),
                ": no --kernel, --initrd or --append".into(),
            ]
        }
        "cmdline-newline" => {
            let line = owner.append.clone().unwrap();
            host.append = Some(format!("{line}\n"));
            vec![format!(
                "the host's kernel command line ends with a newline: --append $'{line}\\n'"
            )]
        }
        "cmdline-space" => {
            let line = owner.append.clone().unwrap();
            host.append = Some(format!("{line} "));
            vec![format!(
                "the host's kernel command line ends with a space: --append '{line} '"
            )]
        }
        "cmdline-leading-space" => {
            let line = owner.append.clone().unwrap();
            host.append = Some(format!(" {line}"));
            vec![format!(
                "the host's kernel command line starts with a space: --append ' {line}'"
            )]
        }
        "cmdline-no-newline" => {
            let line = owner.append.clone().unwrap();
            let trimmed = line.strip_suffix('\n').unwrap().to_string();
            host.append = Some(trimmed.clone());
            vec![format!(
                "the host's kernel command line has no trailing newline: --append '{trimmed}'"
            )]
        }
        "cmdline-empty" => {
            host.append = None;
            vec!["the host's kernel command line is empty (no -append): no --append".into()]
        }
        "no-initrd" => {
            host.initrd = false;
            vec!["the host booted the kernel without the initrd: no --initrd".into()]
        }
        k => panic!("unknown kind {k}"),
    };
    (owner, host, expect)
}

/// SEV_FEATURES bit names (measurement.md §5), by bit.
const FEATURE_NAMES: &[&str] = &[
    "SNPActive",
    "vTOM",
    "ReflectVC",
    "RestrictedInj",
    "AlternateInj",
    "DebugSwap",
    "PreventHostIBS",
    "BTBIsolation",
    "VmplSSS",
    "SecureTSC",
    "VmgexitParam",
    "",
    "IbsVirt",
    "",
    "VmsaRegProt",
    "SmtProt",
];

/// The one-change cases' outcome: how many were named, and what went wrong
/// in the others (all listed at the end, not only the first).
#[derive(Default)]
struct Tally {
    named: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    /// Counts a case as named when it has no problems; otherwise keeps
    /// `describe(problems)`, the case and what went wrong with it.
    fn record(&self, problems: &[String], describe: impl FnOnce(&str) -> String) {
        if problems.is_empty() {
            self.named.fetch_add(1, Ordering::SeqCst);
        } else {
            let text = describe(&problems.join("; "));
            self.failures.lock().unwrap().push(text);
        }
    }

    fn finish(self, what: &str, cases: usize) {
        let failures = self.failures.into_inner().unwrap();
        assert!(
            failures.is_empty(),
            "{} of {cases} cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        let named = self.named.load(Ordering::SeqCst);
        assert!(cases < 30 || named >= 30);
        eprintln!("{what}: {named} of {cases} one-input changes named");
    }
}

#[test]
fn one_changed_input_is_named() {
    let Some(ssm) = oracle() else { return };
    let seed = env_u64("SNP_EXPLAIN_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("SNP_EXPLAIN_CASES").map_or(DEFAULT_CASES, |n| n as usize);
    eprintln!("snp_explainer: SNP_EXPLAIN_SEED={seed:#x} SNP_EXPLAIN_CASES={cases}");
    let f = files(seed);
    let next = AtomicUsize::new(0);
    let tally = Tally::default();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases {
                    break;
                }
                let mut r = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let kind = KINDS[i % KINDS.len()];
                let owner = random_owner(&mut r);
                let (owner, host, expect) = one_change(&mut r, kind, owner);
                let m = reported(&ssm, &f, &f.fw, &host);
                let (code, out, err) = compare(&f, &owner, &m);
                let mut problems = Vec::new();
                if code != 1 {
                    problems.push(format!("exit {code}, not 1"));
                }
                if !err.contains("differs in one input") {
                    problems.push("no single change named".to_string());
                }
                for e in &expect {
                    if !err.contains(e.as_str()) {
                        problems.push(format!("missing {e:?}"));
                    }
                }
                tally.record(&problems, |p| {
                    format!("case {i} ({kind}): {p}\n  owner {owner:?}\n  host  {host:?}\n  stdout: {out}\n  stderr: {err}")
                });
            });
        }
    });
    tally.finish("snp_explainer", cases);
}

fn base_launch() -> Launch {
    Launch {
        vcpus: 4,
        model: "EPYC-Milan",
        vmm: "qemu",
        features: 0x1,
        legacy_form: false,
        kernel: true,
        initrd: true,
        append: Some("console=ttyS0 root=/dev/vda1".into()),
    }
}

#[test]
fn two_changes_are_named_together() {
    let Some(ssm) = oracle() else { return };
    let f = files(DEFAULT_SEED ^ 2);
    let owner = base_launch();
    // The AMDSEV report: an out-of-tree host kernel with DebugSwap, and 2 vCPUs, not 4.
    let host = Launch {
        vcpus: 2,
        features: 0x21,
        ..owner.clone()
    };
    let (code, _, err) = compare(&f, &owner, &reported(&ssm, &f, &f.fw, &host));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("differs in 2 inputs"), "{err}");
    assert!(
        err.contains("the host enabled DebugSwap: --guest-features 0x21"),
        "{err}"
    );
    assert!(
        err.contains("with 2 vCPUs instead of 4: --vcpus 2"),
        "{err}"
    );
    // Three changes (model, no initrd, Secure TSC) but the model alone would
    // not do: either named or said to be beyond the search, never a wrong one.
    let host = Launch {
        model: "EPYC-Genoa",
        initrd: false,
        features: 0x201,
        ..owner.clone()
    };
    let (code, _, err) = compare(&f, &owner, &reported(&ssm, &f, &f.fw, &host));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("None of") && err.contains("another firmware build"),
        "three changes are beyond a search of two at once: {err}"
    );
}

#[test]
fn another_firmware_matches_nothing_and_says_so() {
    let Some(ssm) = oracle() else { return };
    let f = files(DEFAULT_SEED ^ 3);
    let owner = base_launch();
    let m = reported(&ssm, &f, &f.other_fw, &owner);
    let (code, out, err) = compare(&f, &owner, &m);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "nothing on stdout on a mismatch: {out}");
    let tried: usize = err
        .split("None of ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no variant count in {err}"));
    assert!(tried >= 10_000, "only {tried} variants searched: {err}");
    assert!(err.contains("another firmware build"), "{err}");
    // The owner's computed digest is given, and it is sev-snp-measure's.
    let own = reported(&ssm, &f, &f.fw, &owner);
    assert!(err.contains(&format!("computed: {own}")), "{err}");
    assert!(err.contains(&format!("reported: {m}")), "{err}");
}

#[test]
fn a_match_exits_0_and_base64_is_taken() {
    let Some(ssm) = oracle() else { return };
    let f = files(DEFAULT_SEED ^ 4);
    let owner = base_launch();
    let m = reported(&ssm, &f, &f.fw, &owner);
    let bytes: Vec<u8> = (0..48)
        .map(|i| u8::from_str_radix(&m[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    for given in [m.clone(), m.to_uppercase(), b64] {
        let (code, out, err) = compare(&f, &owner, &given);
        assert_eq!(code, 0, "{err}");
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(m.as_str()), "the digest first: {out}");
        assert!(lines.next().is_some_and(|l| l.starts_with("OK: ")), "{out}");
    }
}

#[test]
fn a_bad_measurement_is_a_usage_error() {
    let f = files(DEFAULT_SEED ^ 5);
    let owner = base_launch();
    for bad in ["", "abcd", "zz", &"0".repeat(94), &"0".repeat(98), "!!!!"] {
        let (code, out, err) = compare(&f, &owner, bad);
        assert_eq!(code, 2, "{bad:?}: {out}{err}");
        assert!(err.contains("--measurement"), "{bad:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The library entry point (what the report validation calls) with the
/// inputs hashed by the library's own readers, and its JSON against
/// schema/snp-explanation.schema.json, checked by python3-jsonschema.
#[test]
fn library_answer_and_its_json_schema() {
    use sev_validate::core::snp::{self, SnpFirmware};
    use sev_validate::core::vmsa::{VmmType, VmsaConfig, VmsaForm};
    use sev_validate::snp::explain::{self, DirectBoot, OwnerLaunch};

    let Some(ssm) = oracle() else { return };
    let f = files(DEFAULT_SEED ^ 6);
    let owner = base_launch();
    let host = Launch {
        features: 0x21,
        ..owner.clone()
    };
    let m = reported(&ssm, &f, &f.fw, &host);
    let measurement: [u8; 48] = reported_hex_bytes(&m).try_into().unwrap();
    let image = std::fs::read(&f.fw).unwrap();
    let fw = SnpFirmware::parse(&image).unwrap();
    let hashes =
        sev_validate::input::kernel_hashes(&f.kernel, Some(&f.initrd), owner.append.as_deref())
            .unwrap();
    let launch = OwnerLaunch {
        ovmf_hash: snp::ovmf_hash(&image[..], image.len() as u64).unwrap(),
        firmware: &fw,
        vcpus: owner.vcpus,
        vmm: VmmType::Qemu,
        vmsa: VmsaConfig {
            form: VmsaForm::Init2,
            cpu_signature: 0xA00F11,
            sev_features: 0x1,
        },
        signature_given: true,
        kernel: Some(DirectBoot {
            hashes,
            cmdline: owner.append.as_deref(),
            initrd: true,
        }),
    };
    let x = explain::explain(&launch, &measurement).unwrap();
    assert!(!x.matches());
    // The owner's digest is sev-snp-measure's for the owner's inputs.
    assert_eq!(
        x.computed.to_vec(),
        reported_hex_bytes(&reported(&ssm, &f, &f.fw, &owner))
    );
    let changes = x.changes.clone().expect("a change is named");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].option(), "--guest-features 0x21");
    assert!(x.variants_tried > 1);

    let json = serde_json::to_string(&x).unwrap();
    if !schema::have_jsonschema() {
        skip_or_fail("python3-jsonschema is needed to validate the schema");
        return;
    }
    if let Err(err) = schema::validate_json("snp-explanation.schema.json", &json) {
        panic!("schema violation: {err}\n{json}");
    }
}

fn reported_hex_bytes(m: &str) -> Vec<u8> {
    (0..m.len() / 2)
        .map(|i| u8::from_str_radix(&m[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The nonce the owner gave the guest (REPORT_DATA), 64 bytes in hex.
const NONCE: &str = "6f776e65722d6e6f6e63652d666f722d736e702d76616c6964617465000000000000000000000000000000000000000000000000000000000000000000000000";

/// A test chain from the simulated SNP firmware, and the options that make
/// `snp-validate` trust it.
fn sim_chain(dir: &Path) -> Option<Vec<String>> {
    snp_sim::chain("milan", dir, &[])?;
    let p = |n: &str| dir.join(n).display().to_string();
    Some(vec![
        "--trust-anchors".into(),
        p("ark.pem"),
        "--trust-anchors".into(),
        p("ask.pem"),
        "--vcek".into(),
        p("vcek.der"),
    ])
}

/// A report signed by the simulated firmware with this MEASUREMENT (and
/// REPORT_DATA the owner's nonce) plus `extra` report options.
fn sim_report(chain: &Path, out: &Path, measurement: &str, extra: &[&str]) {
    let mut a = vec!["--measurement", measurement, "--report-data", NONCE];
    a.extend_from_slice(extra);
    let m = snp_sim::report(chain, out, &a).expect("the simulator ran before");
    assert_eq!(m, measurement, "the simulator signs the MEASUREMENT given");
}

/// `snp-validate REPORT --report-data NONCE CHAIN EXTRA [-- LAUNCH]`.
fn snp_validate(
    report: &Path,
    chain: &[String],
    extra: &[&str],
    launch: Option<Vec<String>>,
) -> (i32, String, String) {
    let mut a = vec![
        "snp-validate".to_string(),
        report.display().to_string(),
        "--report-data".into(),
        NONCE.into(),
    ];
    a.extend(chain.iter().cloned());
    a.extend(extra.iter().map(|s| s.to_string()));
    if let Some(l) = launch {
        a.push("--".into());
        a.extend(l);
    }
    run(ours(), &a)
}

/// `snp-validate --json` against its schema, which takes the explanation
/// from schema/snp-explanation.schema.json by $id (python3-jsonschema).
fn snp_validate_schema(doc: &str) -> Result<(), String> {
    if !schema::have_jsonschema() {
        skip_or_fail("python3-jsonschema is needed to validate the schema");
        return Ok(());
    }
    schema::validate_json("snp-validate.schema.json", doc)
}

fn check<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {doc:#}"))
}

#[test]
fn snp_validate_names_the_changed_input() {
    let Some(ssm) = oracle() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some(chain) = sim_chain(tmp.path()) else {
        return;
    };
    let seed = env_u64("SNP_EXPLAIN_SEED").unwrap_or(DEFAULT_SEED) ^ 0x5A11;
    let cases = env_u64("SNP_VALIDATE_EXPLAIN_CASES").map_or(30, |n| n as usize);
    eprintln!("snp_validate explainer: seed {seed:#x}, {cases} cases");
    let f = files(seed);
    let next = AtomicUsize::new(0);
    let tally = Tally::default();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= cases {
                    break;
                }
                let mut r = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let kind = KINDS[i % KINDS.len()];
                let owner = random_owner(&mut r);
                let (owner, host, expect) = one_change(&mut r, kind, owner);
                let m = reported(&ssm, &f, &f.fw, &host);
                let report = tmp.path().join(format!("report-{i}.bin"));
                sim_report(tmp.path(), &report, &m, &[]);
                let launch = owner.args(&f, &f.fw, false);
                let (code, out, err) =
                    snp_validate(&report, &chain, &["--json"], Some(launch.clone()));
                let mut problems = Vec::new();
                if code != 1 {
                    problems.push(format!("exit {code}, not 1"));
                }
                let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
                if doc["failed"] != serde_json::json!(["expect.measurement"]) {
                    problems.push(format!("failed checks {}", doc["failed"]));
                }
                let c = if doc.is_object() {
                    check(&doc, "expect.measurement").clone()
                } else {
                    serde_json::Value::Null
                };
                let hint = c["hint"].as_str().unwrap_or_default();
                for e in &expect {
                    if !hint.contains(e.as_str()) {
                        problems.push(format!("hint lacks {e:?}"));
                    }
                }
                if c["explanation"]["changes"].as_array().map(Vec::len) != Some(1) {
                    problems.push("the explanation names not exactly one change".into());
                }
                if i == 0 {
                    if let Err(e) = snp_validate_schema(&out) {
                        problems.push(format!("schema/snp-validate.schema.json: {e}"));
                    }
                }
                if c["explanation"]["reported"] != m.as_str() {
                    problems.push("the explanation's reported value is not the report's".into());
                }
                // Every fifth case: the human output too, the hint under the check.
                if i % 5 == 0 {
                    let (code, out, _) = snp_validate(&report, &chain, &[], Some(launch));
                    let line = out
                        .lines()
                        .skip_while(|l| !l.contains("FAIL  expect.measurement"))
                        .nth(1)
                        .unwrap_or_default();
                    if code != 1 || !line.trim_start().starts_with("HINT: ") {
                        problems.push(format!("human output: exit {code}, no HINT line"));
                    }
                    for e in &expect {
                        if !line.contains(e.as_str()) {
                            problems.push(format!("human HINT lacks {e:?}"));
                        }
                    }
                }
                tally.record(&problems, |p| {
                    format!("case {i} ({kind}): {p}\n  owner {owner:?}\n  host  {host:?}\n  stdout: {out}\n  stderr: {err}")
                });
            });
        }
    });
    tally.finish("snp_validate explainer", cases);
}

#[test]
fn snp_validate_matching_launch_passes_without_a_search() {
    let Some(ssm) = oracle() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let Some(chain) = sim_chain(tmp.path()) else {
        return;
    };
    let f = files(DEFAULT_SEED ^ 8);
    let owner = base_launch();
    let report = tmp.path().join("report.bin");
    sim_report(tmp.path(), &report, &reported(&ssm, &f, &f.fw, &owner), &[]);
    let (code, out, err) = snp_validate(
        &report,
        &chain,
        &["--json"],
        Some(owner.args(&f, &f.fw, false)),
    );
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = check(&doc, "expect.measurement");
    assert_eq!(c["status"], "pass", "{c:#}");
    assert!(
        c.get("hint").is_none() && c.get("explanation").is_none(),
        "{c:#}"
    );
}

/// HOST_DATA and VMPL differ: each failed check says where the value comes
/// from (snp-attestation.md section 6): libvirt's <hostData>, the VMPL the
/// guest asked the report for.
#[test]
fn snp_validate_says_where_host_data_and_vmpl_come_from() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(chain) = sim_chain(tmp.path()) else {
        return;
    };
    let m = "ab".repeat(48);
    let report = tmp.path().join("report.bin");
    sim_report(
        tmp.path(),
        &report,
        &m,
        &["--host-data", &"11".repeat(32), "--vmpl", "1"],
    );
    let extra = [
        "--measurement",
        m.as_str(),
        "--host-data",
        &"22".repeat(32),
        "--vmpl",
        "0",
    ];
    let (code, out, err) = snp_validate(&report, &chain, &[&extra[..], &["--json"]].concat(), None);
    assert_eq!(code, 1, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["failed"],
        serde_json::json!(["expect.host_data", "expect.vmpl"]),
        "{doc:#}"
    );
    let host_data = check(&doc, "expect.host_data")["hint"]
        .as_str()
        .unwrap_or_default();
    assert!(host_data.contains("<hostData>"), "{host_data}");
    assert!(host_data.contains("host-data="), "{host_data}");
    let vmpl = check(&doc, "expect.vmpl")["hint"]
        .as_str()
        .unwrap_or_default();
    assert!(
        vmpl.contains("the guest asked for the report from"),
        "{vmpl}"
    );
    // Passed and skipped checks carry no hint.
    for c in doc["checks"].as_array().unwrap() {
        assert_eq!(c.get("hint").is_some(), c["status"] == "fail", "{c:#}");
    }
    let (code, out, _) = snp_validate(&report, &chain, &extra, None);
    assert_eq!(code, 1);
    assert!(
        out.contains("HINT: HOST_DATA is whatever the host gave at launch (libvirt <hostData>"),
        "{out}"
    );
    assert!(
        out.contains("HINT: VMPL is the level the guest asked for the report from"),
        "{out}"
    );
}

/// A report for another TCB than the VCEK's (the host's firmware moved on,
/// the VCEK given is stale): the failed binding check says to fetch the VCEK
/// for this REPORTED_TCB.
#[test]
fn snp_validate_says_a_vcek_for_another_tcb_is_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(chain) = sim_chain(tmp.path()) else {
        return;
    };
    let m = "cd".repeat(48);
    let report = tmp.path().join("report.bin");
    // The chain's VCEK is for bl=3,tee=0,snp=8,ucode=115 (snp_sp.py's default).
    let tcb = "bl=3,tee=0,snp=9,ucode=115";
    sim_report(
        tmp.path(),
        &report,
        &m,
        &[
            "--reported-tcb",
            tcb,
            "--current-tcb",
            tcb,
            "--committed-tcb",
            tcb,
            "--launch-tcb",
            tcb,
        ],
    );
    let (code, out, err) = snp_validate(&report, &chain, &["--measurement", &m, "--json"], None);
    assert_eq!(code, 1, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["failed"],
        serde_json::json!(["binding.reported_tcb"]),
        "{doc:#}"
    );
    let hint = check(&doc, "binding.reported_tcb")["hint"]
        .as_str()
        .unwrap_or_default();
    assert!(hint.contains("stale"), "{hint}");
    assert!(
        hint.contains("fetch the VCEK for this REPORTED_TCB"),
        "{hint}"
    );
}
