//! Evidence in the forms other tools give it, tried as a new user would:
//! every digest option in hex or base64 (read one way only, a clear error
//! for a short value), snp-id-block's key digest taken back, PEM bundles of
//! VCEK, ASK and ARK (Azure's instance metadata) placed by role, Azure's HCL
//! report with its runtime data bound to REPORT_DATA, the hints beside a
//! MEASUREMENT that differs and a certificate out of its validity, and
//! "valid at" under --now. Expected values come from ../shared/snp-vectors'
//! EXPECTED.json, Python (hashlib, base64, cryptography), openssl and the
//! simulated SP.

use crate::common;
use crate::common::snp_sim;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Inside the Turin VCEK's validity (2026-02-05 .. 2033-02-05).
const NOW: &str = "2026-12-01T00:00:00Z";
const SET: &str = "turin-v5-microsoft";

fn vectors(test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/snp-vectors");
    if dir.join("EXPECTED.json").is_file() {
        return Some(dir);
    }
    common::skip_or_fail(test, &format!("SNP vectors not found at {}", dir.display()));
    None
}

fn expected(dir: &Path, set: &str) -> Value {
    let all: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("EXPECTED.json")).unwrap()).unwrap();
    all[set].clone()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// Python's answer to `code` (argv[1..] = `args`), trimmed.
fn python(code: &str, args: &[&str]) -> String {
    let o = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// Base64 of hex, by Python's base64 module.
fn b64(hex: &str) -> String {
    python(
        "import base64,sys;print(base64.b64encode(bytes.fromhex(sys.argv[1])).decode())",
        &[hex],
    )
}

/// `snp-validate --json ARGS`: the exit code, the document, stderr.
fn validate(args: &[String]) -> (i32, Value, String) {
    let mut full = vec!["snp-validate".to_string()];
    full.extend(args.iter().cloned());
    full.push("--json".into());
    // These tests are about the files and the hints; where no MEASUREMENT
    // is expected, say so (snp-validate requires one otherwise).
    if !args
        .iter()
        .any(|a| a == "--measurement" || a == "--" || a == "--no-measurement-check")
    {
        full.push("--no-measurement-check".into());
    }
    let (code, out, err) = common::run(&full);
    let doc = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{full:?}: {out}{err}"));
    (code, doc, err)
}

fn check(doc: &Value, name: &str) -> (String, String, Option<String>) {
    let c = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {doc:#}"));
    (
        c["status"].as_str().unwrap().to_string(),
        c["message"].as_str().unwrap().to_string(),
        c["hint"].as_str().map(String::from),
    )
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The Turin set's report and VCEK, validated at NOW.
fn turin(dir: &Path) -> Vec<String> {
    let d = dir.join(SET);
    s(&[
        &p(&d.join("report.bin")),
        "--vcek",
        &p(&d.join("vcek.pem")),
        "--now",
        NOW,
    ])
}

/// Every option that takes a digest, the check it feeds, the report's value
/// (EXPECTED.json) in the form the option takes.
fn digest_options(e: &Value) -> Vec<(&'static str, &'static str, String)> {
    let f = |k: &str| e[k].as_str().unwrap().to_string();
    vec![
        ("--measurement", "expect.measurement", f("measurement")),
        ("--host-data", "expect.host_data", f("host_data")),
        ("--family-id", "expect.family_id", f("family_id")),
        ("--image-id", "expect.image_id", f("image_id")),
        ("--report-id", "expect.report_id", f("report_id")),
        ("--report-id-ma", "expect.report_id_ma", f("report_id_ma")),
        // Turin: the 8-byte hwid, zero-padded.
        (
            "--chip-id",
            "expect.chip_id",
            f("chip_id")[..16].to_string(),
        ),
        (
            "--trusted-id-key-digest",
            "expect.id_key",
            f("id_key_digest"),
        ),
        ("--report-data", "expect.report_data", f("report_data")),
    ]
}

#[test]
fn every_digest_option_takes_hex_and_base64() {
    let Some(dir) = vectors("every_digest_option_takes_hex_and_base64") else {
        return;
    };
    let e = expected(&dir, SET);
    let table = digest_options(&e);
    // The report's own values: every check passes in either form.
    for form in ["hex", "base64"] {
        let mut args = turin(&dir);
        for (opt, _, hex) in &table {
            let v = if form == "hex" { hex.clone() } else { b64(hex) };
            args.extend([opt.to_string(), v]);
        }
        let (code, doc, err) = validate(&args);
        assert_eq!(code, 0, "{form}: {doc:#}{err}");
        for (opt, name, _) in &table {
            assert_eq!(check(&doc, name).0, "pass", "{form} {opt}: {doc:#}");
        }
    }
    // One byte changed, in base64: each check fails and names the value.
    let mut args = turin(&dir);
    for (opt, _, hex) in &table {
        let mut b = hex::decode(hex).unwrap();
        b[1] ^= 0x5a;
        args.extend([opt.to_string(), b64(&hex::encode(&b))]);
    }
    let (code, doc, _) = validate(&args);
    assert_eq!(code, 1, "{doc:#}");
    for (opt, name, _) in &table {
        assert_eq!(check(&doc, name).0, "fail", "{opt}: {doc:#}");
    }
}

#[test]
fn a_short_digest_says_both_forms_and_the_length() {
    let want =
        "'abcd' is 2 bytes of hex; a MEASUREMENT is 48 bytes: 96 hex digits or 64 base64 characters";
    let (code, _, err) = common::run([
        "snp-digest",
        "--ovmf",
        "/nonexistent",
        "--vcpus",
        "1",
        "--measurement",
        "abcd",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(want), "{err}");
    let (code, _, err) = common::run(["snp-validate", "r.bin", "--measurement", "abcd"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(want), "{err}");
    let (code, _, err) = common::run(["snp-validate", "r.bin", "--family-id", "AAECAw=="]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("'AAECAw==' is 4 bytes of base64; a FAMILY_ID is 16 bytes: 32 hex digits or 24 base64 characters"),
        "{err}"
    );
}

#[test]
fn snp_id_blocks_key_digest_is_taken_back() {
    let Some(dir) = vectors("snp_id_blocks_key_digest_is_taken_back") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("id.pem");
    let o = Command::new("openssl")
        .args(["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out"])
        .arg(&key)
        .output()
        .expect("openssl");
    assert!(o.status.success());
    let (code, out, err) = common::run([
        "snp-id-block",
        "--digest",
        &"ab".repeat(48),
        "--id-key",
        &p(&key),
    ]);
    assert_eq!(code, 0, "{err}");
    let printed = out
        .lines()
        .find_map(|l| l.strip_prefix("id_key_digest: "))
        .unwrap()
        .to_string();
    // SHA-384 of the SNP public key form (curve 2 = P-384, Qx and Qy
    // little-endian in 72 bytes each, zero to 0x404), by Python.
    let theirs = python(
        "import sys,hashlib\n\
from cryptography.hazmat.primitives.serialization import load_pem_private_key\n\
n=load_pem_private_key(open(sys.argv[1],'rb').read(),None).public_key().public_numbers()\n\
b=(2).to_bytes(4,'little')+n.x.to_bytes(72,'little')+n.y.to_bytes(72,'little')\n\
print(hashlib.sha384(b.ljust(0x404,b'\\0')).hexdigest())",
        &[&p(&key)],
    );
    assert_eq!(printed, theirs);
    // Taken back as it is printed, and in base64: the same verdict as the key file.
    let mut verdicts = Vec::new();
    for how in [
        vec!["--trusted-id-key".to_string(), p(&key)],
        vec!["--trusted-id-key-digest".to_string(), printed.clone()],
        vec!["--trusted-id-key-digest".to_string(), b64(&printed)],
    ] {
        let mut args = turin(&dir);
        args.extend(how);
        let (code, doc, err) = validate(&args);
        assert_eq!(code, 1, "{doc:#}{err}");
        verdicts.push(check(&doc, "expect.id_key"));
    }
    assert_eq!(verdicts[0].0, "fail");
    assert_eq!(verdicts[0], verdicts[1]);
    assert_eq!(verdicts[1], verdicts[2]);
}

#[test]
fn the_three_hints() {
    let Some(dir) = vectors("the_three_hints") else {
        return;
    };
    // MEASUREMENT differs: one input, and how to find which.
    let mut args = turin(&dir);
    args.extend(s(&[
        "--measurement",
        &"00".repeat(48),
        "--no-report-data-check",
    ]));
    let (code, doc, _) = validate(&args);
    assert_eq!(code, 1);
    let (st, msg, hint) = check(&doc, "expect.measurement");
    assert_eq!(st, "fail");
    assert!(msg.contains("one of its inputs differs"), "{msg}");
    let hint = hint.expect("a hint");
    assert!(
        hint.contains("at least one input of the launch differs"),
        "{hint}"
    );
    assert!(hint.contains("after '--'"), "{hint}");

    // The VLEK expired 2025-12-10: the hint says --now.
    let v = dir.join("milan-v3-vlek-trustee");
    let base = s(&[
        &p(&v.join("report.bin")),
        "--vlek",
        &p(&v.join("vlek.der")),
        "--no-report-data-check",
        "--allow-provisional-firmware",
    ]);
    let (code, doc, _) = validate(&base);
    assert_eq!(code, 1, "{doc:#}");
    let (st, msg, hint) = check(&doc, "chain.validity");
    assert_eq!(st, "fail");
    assert!(msg.contains("2025-12-10"), "{msg}");
    let hint = hint.expect("a hint");
    assert!(hint.contains("--now") && hint.contains("VLEK"), "{hint}");
    let mut at = base.clone();
    at.extend(s(&["--now", "2025-06-01T00:00:00Z"]));
    let (code, doc, _) = validate(&at);
    assert_eq!(code, 0, "{doc:#}");
    assert!(check(&doc, "chain.validity")
        .1
        .contains("valid at 2025-06-01T00:00:00Z"));

    // An ARK given as the VCEK: one message that says what it is.
    let d = dir.join(SET);
    let (code, out, err) = common::run([
        "snp-validate",
        &p(&d.join("report.bin")),
        "--vcek",
        &p(&d.join("ark.pem")),
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("holds the ARK 'ARK-Turin' (RSA-4096), not a VCEK"),
        "{err}"
    );
    assert_eq!(err.matches("ERROR").count(), 1, "{err}");
    assert!(!err.contains("stale"), "{err}");
}

#[test]
fn valid_at_the_time_given() {
    let Some(dir) = vectors("valid_at_the_time_given") else {
        return;
    };
    let mut args = turin(&dir);
    args.push("--no-report-data-check".into());
    let (_, doc, _) = validate(&args);
    let (st, msg, _) = check(&doc, "chain.validity");
    assert_eq!(st, "pass");
    assert!(msg.starts_with(&format!("valid at {NOW};")), "{msg}");
    let no_now: Vec<String> = args
        .iter()
        .filter(|a| *a != "--now" && *a != NOW)
        .cloned()
        .collect();
    let (_, doc, _) = validate(&no_now);
    assert!(check(&doc, "chain.validity").1.starts_with("valid now;"));
}

/// The set's VCEK, ASK and ARK in one PEM file, in Azure's order.
fn bundle(d: &Path, into: &Path, files: &[&str]) -> PathBuf {
    let mut pem = String::new();
    for f in files {
        pem.push_str(&fs::read_to_string(d.join(f)).unwrap());
        pem.push('\n');
    }
    let out = into.join("bundle.pem");
    fs::write(&out, pem).unwrap();
    out
}

#[test]
fn a_pem_bundle_is_placed_by_role() {
    let Some(dir) = vectors("a_pem_bundle_is_placed_by_role") else {
        return;
    };
    let d = dir.join(SET);
    let tmp = tempfile::tempdir().unwrap();
    let b = bundle(&d, tmp.path(), &["vcek.pem", "ask.pem", "ark.pem"]);
    let report = p(&d.join("report.bin"));
    let common_args = s(&["--no-report-data-check", "--now", NOW]);
    // As --vcek: the VCEK signs, the ASK and ARK are the supplied roots.
    let mut args = s(&[&report, "--vcek", &p(&b)]);
    args.extend(common_args.clone());
    let (code, doc, err) = validate(&args);
    assert_eq!(code, 0, "{doc:#}{err}");
    assert_eq!(check(&doc, "chain.supplied_roots").0, "pass");
    let roles: Vec<&str> = doc["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["VEK", "ASK", "ARK"]);
    // As --trust-anchors (its VCEK is not an anchor) and in --certs.
    let mut args = s(&[&report, "--vcek", &p(&b), "--trust-anchors", &p(&b)]);
    args.extend(common_args.clone());
    let (code, doc, err) = validate(&args);
    assert_eq!(code, 0, "{doc:#}{err}");
    assert_eq!(doc["trust_anchors"], "custom");
    let certs = tmp.path().join("certs");
    fs::create_dir(&certs).unwrap();
    fs::copy(&b, certs.join("vcek.pem")).unwrap();
    let mut args = s(&[&report, "--certs", &p(&certs)]);
    args.extend(common_args.clone());
    let (code, doc, err) = validate(&args);
    assert_eq!(code, 0, "{doc:#}{err}");

    // Two VCEKs (Turin's and Milan's): refused, saying which.
    let two = tmp.path().join("two.pem");
    let mut pem = fs::read_to_string(d.join("vcek.pem")).unwrap();
    pem.push_str(&fs::read_to_string(dir.join("milan-v3-microsoft/vcek.pem")).unwrap());
    fs::write(&two, pem).unwrap();
    let (code, _, err) = common::run(["snp-validate", &report, "--vcek", &p(&two)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("certificate 2 is a VCEK where the file already holds a VCEK"),
        "{err}"
    );
    // A certificate of no AMD role (openssl's own): refused.
    let other = tmp.path().join("other.pem");
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ])
        .args(["-nodes", "-subj", "/CN=example", "-days", "1", "-keyout"])
        .arg(tmp.path().join("k.pem"))
        .arg("-out")
        .arg(&other)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut pem = fs::read_to_string(d.join("vcek.pem")).unwrap();
    pem.push_str(&fs::read_to_string(&other).unwrap());
    fs::write(&two, pem).unwrap();
    let (code, _, err) = common::run(["snp-validate", &report, "--vcek", &p(&two)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("certificate 2 (subject CN 'example'"), "{err}");
    assert!(err.contains("none of AMD's"), "{err}");
}

/// An Azure HCL report around `report`: the header (magic HCLA), the
/// report at 0x20, the IGVM request data (report type 2 = SNP, hash type
/// 1 = SHA-256) and the runtime data, padded to 2600 bytes.
fn hcl(report: &[u8], runtime: &[u8]) -> Vec<u8> {
    let le = |v: u32| v.to_le_bytes();
    let mut b = Vec::new();
    b.extend_from_slice(b"HCLA");
    b.extend_from_slice(&le(2)); // version
                                 // The bytes used: header, report area, request data, runtime data.
    b.extend_from_slice(&le((0x4C0 + 20 + runtime.len()) as u32));
    b.extend_from_slice(&le(2)); // request type
    b.extend_from_slice(&le(0)); // status
    b.extend_from_slice(&[0; 12]);
    assert_eq!(b.len(), 0x20);
    b.extend_from_slice(report);
    let var = runtime.len() as u32;
    for v in [20 + var, 1, 2, 1, var] {
        b.extend_from_slice(&le(v));
    }
    b.extend_from_slice(runtime);
    b.resize(2600, 0);
    b
}

const RUNTIME: &str = r#"{"keys":[{"kid":"HCLAkPub","kty":"RSA","e":"AQAB","n":"sim"}],"vm-configuration":{"secure-boot":true,"tpm-enabled":true},"user-data":"6e6f6e6365"}"#;

#[test]
fn an_azure_hcl_report_and_its_runtime_data() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = tmp.path().join("chain");
    fs::create_dir(&chain).unwrap();
    if snp_sim::chain("milan", &chain, &[]).is_none() {
        return;
    }
    let rt = tmp.path().join("runtime.json");
    fs::write(&rt, RUNTIME).unwrap();
    let digest = python(
        "import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())",
        &[&p(&rt)],
    );
    let report_data = format!("{digest}{}", "00".repeat(32));
    let raw = tmp.path().join("report.bin");
    snp_sim::report(&chain, &raw, &["--report-data", &report_data]).unwrap();
    let h = tmp.path().join("hcl.bin");
    fs::write(&h, hcl(&fs::read(&raw).unwrap(), RUNTIME.as_bytes())).unwrap();
    let mut args = s(&[&p(&h), "--vcek", &p(&chain.join("vcek.der"))]);
    for f in ["ark.pem", "ask.pem"] {
        args.extend(s(&["--trust-anchors", &p(&chain.join(f))]));
    }
    args.extend(s(&["--report-data", &report_data]));
    let (code, doc, err) = validate(&args);
    assert_eq!(code, 0, "{doc:#}{err}");
    assert!(
        doc["container"].as_str().unwrap().contains("HCL"),
        "{doc:#}"
    );
    let (st, msg, _) = check(&doc, "binding.runtime_data");
    assert_eq!(st, "pass");
    assert!(msg.contains("SHA-256"), "{msg}");
    assert!(msg.contains("not checked"), "{msg}");
    if common::schema::have_jsonschema() {
        common::schema::validate_json("snp-validate.schema.json", &doc.to_string()).unwrap();
        let (code, out, err) = common::run(["snp-report", &p(&h), "--json"]);
        assert_eq!(code, 0, "{err}");
        common::schema::validate_json("snp-report.schema.json", &out).unwrap();
    }
    // The text says what is not checked.
    let mut text = vec!["snp-validate".to_string()];
    text.extend(args.iter().cloned());
    text.push("--no-measurement-check".into());
    let (code, out, _) = common::run(&text);
    assert_eq!(code, 0);
    assert!(out.contains("NOTE: Azure HCL report"), "{out}");

    // The nonce given as --report-data: the hint says where it is.
    let mut nonce = args.clone();
    let at = nonce.iter().position(|a| a == &report_data).unwrap();
    nonce[at] = "6e6f6e6365".into();
    let (code, doc, _) = validate(&nonce);
    assert_eq!(code, 1, "{doc:#}");
    let hint = check(&doc, "expect.report_data").2.expect("a hint");
    assert!(hint.contains("user-data"), "{hint}");

    // Another runtime data (user-data changed): the binding fails, alone.
    let forged = RUNTIME.replace("6e6f6e6365", "6f6f6f6f6f");
    fs::write(&h, hcl(&fs::read(&raw).unwrap(), forged.as_bytes())).unwrap();
    let (code, doc, _) = validate(&args);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["failed"], serde_json::json!(["binding.runtime_data"]));
    assert!(check(&doc, "binding.runtime_data").1.contains(&digest));

    // Runtime data longer than the file: refused as input.
    let mut cut = hcl(&fs::read(&raw).unwrap(), RUNTIME.as_bytes());
    cut.truncate(0x4C0 + 20 + 10);
    fs::write(&h, cut).unwrap();
    let (code, _, err) = common::run(["snp-validate", &p(&h)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Azure HCL report"), "{err}");
}

#[test]
fn a_real_report_in_an_hcl_container() {
    let Some(dir) = vectors("a_real_report_in_an_hcl_container") else {
        return;
    };
    let d = dir.join(SET);
    let tmp = tempfile::tempdir().unwrap();
    let h = tmp.path().join("hcl.bin");
    fs::write(
        &h,
        hcl(&fs::read(d.join("report.bin")).unwrap(), RUNTIME.as_bytes()),
    )
    .unwrap();
    let mut args = turin(&dir);
    args[0] = p(&h);
    args.push("--no-report-data-check".into());
    let (code, doc, _) = validate(&args);
    // Read from 0x20: signed by its VCEK; its REPORT_DATA (zero) binds no runtime data.
    assert_eq!(check(&doc, "signature").0, "pass", "{doc:#}");
    assert_eq!(doc["measurement"], expected(&dir, SET)["measurement"]);
    assert_eq!(code, 1);
    assert_eq!(doc["failed"], serde_json::json!(["binding.runtime_data"]));
}
