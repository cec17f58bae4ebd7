//! The simulated SNP Secure Processor (tests/sim/snp_sp.py) from Rust tests:
//! mint a test chain, sign a report (its MEASUREMENT from sev-snp-measure for
//! a launch), measure a launch. `common::snp_sim` in the test binaries.
//!
//! RSA-4096 keys are made once per build directory and reused
//! (`$CARGO_TARGET_TMPDIR/snp-sim-keys`), so a chain takes well under a
//! second after the first.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const PRODUCTS: [&str; 3] = ["milan", "genoa", "turin"];

/// `/usr/bin/python3 tests/sim/snp_sp.py`, or None (after a SKIPPED line,
/// a panic in CI) without python3-cryptography.
pub fn command() -> Option<Command> {
    let py = PathBuf::from("/usr/bin/python3");
    let ok = Command::new(&py)
        .args(["-c", "import cryptography"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let why = "/usr/bin/python3 with python3-cryptography is needed";
        if std::env::var_os("CI").is_some() {
            panic!("snp_sp.py: {why} (CI must provide it)");
        }
        eprintln!("SKIPPED: snp_sp.py: {why}");
        return None;
    }
    let mut c = Command::new(py);
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/snp_sp.py"));
    Some(c)
}

/// Where the simulator keeps its keys between runs.
pub fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("snp-sim-keys")
}

/// Runs `snp_sp.py ARGS`; stdout, or a panic with its stderr.
pub fn run(args: &[&str]) -> Option<String> {
    let out = command()?.args(args).output().expect("run snp_sp.py");
    assert!(
        out.status.success(),
        "snp_sp.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).expect("UTF-8"))
}

/// Mints a chain for `product` into `out` (ark.pem, ask.pem, asvk.pem,
/// vcek.der/.pem, vlek.der/.pem, keys, cert_chain.pem, chain.json); `extra`
/// are more `chain` options (--chip-id, --tcb, --not-before ...). Returns
/// chain.json.
pub fn chain(product: &str, out: &Path, extra: &[&str]) -> Option<serde_json::Value> {
    let keys = keys_dir();
    let mut args = vec![
        "chain",
        "--product",
        product,
        "--out",
        out.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let stdout = run(&args)?;
    Some(serde_json::from_str(&stdout).expect("chain.json"))
}

/// Signs a report with the chain in `chain_dir` into `out`; `extra` are
/// `report` options (--signer, --version, --policy, --ovmf ... for a
/// measured launch). Returns the MEASUREMENT in hex.
pub fn report(chain_dir: &Path, out: &Path, extra: &[&str]) -> Option<String> {
    let mut args = vec![
        "report",
        "--chain",
        chain_dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let stdout = run(&args)?;
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("report JSON");
    Some(v["measurement"].as_str().unwrap().to_string())
}

/// The MEASUREMENT sev-snp-measure computes for a launch (`measure` options:
/// --ovmf, --vcpus, --vcpu-type/--vcpu-sig, --vmm-type, --guest-features,
/// --kernel/--initrd/--append), in hex.
pub fn measure(args: &[&str]) -> Option<String> {
    let mut all = vec!["measure"];
    all.extend_from_slice(args);
    Some(run(&all)?.trim().to_string())
}

/// The simulator's own verdicts on a report (`check`): report signature,
/// chain, TCB and chip-ID binding, reserved bytes, committed TCB, DEBUG and
/// VEK validity at `now` (ISO 8601), plus the VEK's fields. `roots` is a PEM
/// file with the ASK (or ASVK) then the ARK. The oracle for the tool's
/// verdicts.
pub fn check(report: &Path, vek: &Path, roots: &Path, now: &str) -> Option<serde_json::Value> {
    let stdout = run(&[
        "check",
        report.to_str().unwrap(),
        "--vek",
        vek.to_str().unwrap(),
        "--roots",
        roots.to_str().unwrap(),
        "--now",
        now,
    ])?;
    Some(serde_json::from_str(&stdout).expect("check JSON"))
}

/// sev-snp-measure's vCPU model names (vcpu_types.CPU_SIGS, 0.0.13).
pub const SSM_VCPU_TYPES: &[&str] = &[
    "EPYC",
    "EPYC-v1",
    "EPYC-v2",
    "EPYC-IBPB",
    "EPYC-v3",
    "EPYC-v4",
    "EPYC-Rome",
    "EPYC-Rome-v1",
    "EPYC-Rome-v2",
    "EPYC-Rome-v3",
    "EPYC-Milan",
    "EPYC-Milan-v1",
    "EPYC-Milan-v2",
    "EPYC-Genoa",
    "EPYC-Genoa-v1",
    "EPYC-Turin",
];
