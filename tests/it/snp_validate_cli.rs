//! `snp-validate` and `snp-report` as a user runs them, on the real report
//! sets in ../shared/snp-vectors: exit 0 with the options each set needs,
//! 1 with the failing check named, 2 with a clear message for bad input
//! (never a panic), `--json` valid against schema/snp-validate.schema.json
//! and schema/snp-report.schema.json (checked by Debian's
//! python3-jsonschema), and the endorsement read from a file, an snpguest
//! directory or a certificate table.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub(crate) fn snp_dir(test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/snp-vectors");
    if dir.join("EXPECTED.json").is_file() {
        return Some(dir);
    }
    common::skip_or_fail(test, &format!("SNP vectors not found at {}", dir.display()));
    None
}

/// The time the sets are validated at: inside every VCEK's validity
/// (turin-v5-anolis's starts 2026-06-28, milan-v2-debug-gosevguest's ends
/// 2029-09-24), so the verdicts do not change when a VCEK expires.
const NOW: &str = "2026-12-01T00:00:00Z";
/// Inside the VLEK's validity (2024-12-10 .. 2025-12-10).
const VLEK_NOW: &str = "2025-06-01T00:00:00Z";

pub(crate) fn expected(dir: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(dir.join("EXPECTED.json")).unwrap()).unwrap()
}

pub(crate) fn validate_schema(doc: &str) -> Result<(), String> {
    // The explanation it embeds is a copy of schema/snp-explanation.schema.json.
    common::schema::validate_json("snp-validate.schema.json", doc)
}

pub(crate) fn have_jsonschema() -> bool {
    let ok = common::schema::have_jsonschema();
    if !ok {
        common::skip_or_fail("snp_validate_cli", "python3-jsonschema is needed");
    }
    ok
}

/// An snpguest-layout directory for a set: ark.pem, ask.pem or asvk.pem,
/// vcek.* or vlek.* copied from the vectors.
fn certs_dir(dir: &Path, e: &Value, into: &Path) {
    let files = &e["files"];
    let vek = dir.join(files["vek"].as_str().unwrap());
    let vlek = e["key_info"]["signing_key"] == "VLEK";
    let ext = vek.extension().unwrap().to_str().unwrap().to_string();
    fs::copy(
        &vek,
        into.join(format!("{}.{ext}", if vlek { "vlek" } else { "vcek" })),
    )
    .unwrap();
    let mut pems = String::new();
    match &files["roots"] {
        Value::String(s) => pems.push_str(&fs::read_to_string(dir.join(s)).unwrap()),
        Value::Array(a) => {
            for s in a {
                pems.push_str(&fs::read_to_string(dir.join(s.as_str().unwrap())).unwrap());
            }
        }
        _ => panic!(),
    }
    // The KDS cert_chain order: AS(V)K first, then ARK.
    let blocks: Vec<&str> = pems
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN"))
        .collect();
    assert_eq!(blocks.len(), 2);
    fs::write(
        into.join(if vlek { "asvk.pem" } else { "ask.pem" }),
        blocks[0].trim(),
    )
    .unwrap();
    fs::write(into.join("ark.pem"), blocks[1].trim()).unwrap();
}

/// The options a set needs to validate.
pub(crate) fn options(e: &Value) -> Vec<String> {
    let mut v = vec![
        "--report-data".to_string(),
        e["report_data"].as_str().unwrap().to_string(),
        "--measurement".into(),
        e["measurement"].as_str().unwrap().to_string(),
    ];
    if e["checks"]["committed_equals_current"] == false {
        v.push("--allow-provisional-firmware".into());
    }
    if e["checks"]["debug_policy_bit19"] == true {
        v.push("--allow-debug".into());
    }
    let now = if e["key_info"]["signing_key"] == "VLEK" {
        VLEK_NOW
    } else {
        NOW
    };
    v.extend(["--now".into(), now.into()]);
    v
}

#[test]
fn every_set_validates_from_an_snpguest_directory() {
    let Some(dir) = snp_dir("every_set_validates_from_an_snpguest_directory") else {
        return;
    };
    let json_ok = have_jsonschema();
    let exp = expected(&dir);
    for (name, e) in exp.as_object().unwrap() {
        let tmp = tempfile::tempdir().unwrap();
        certs_dir(&dir, e, tmp.path());
        let report = dir.join(e["files"]["report"].as_str().unwrap());
        let mut args = vec!["snp-validate".to_string(), report.display().to_string()];
        args.extend(["--certs".into(), tmp.path().display().to_string()]);
        args.extend(options(e));
        let (code, out, err) = common::run(&args);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.contains("VALID: every check passed"), "{name}");
        assert!(out.contains("PASS  chain.supplied_roots"), "{name}: {out}");
        args.push("--json".into());
        let (code, out, _) = common::run(&args);
        assert_eq!(code, 0);
        let doc: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["valid"], true);
        assert_eq!(doc["product"], e["product"], "{name}");
        assert_eq!(doc["measurement"], e["measurement"]);
        if json_ok {
            validate_schema(&out).unwrap_or_else(|m| panic!("{name}: {m}"));
        }
    }
}

#[test]
fn the_safe_defaults_refuse_debug_provisional_firmware_and_a_missing_nonce() {
    let Some(dir) = snp_dir("safe_defaults") else {
        return;
    };
    let json_ok = have_jsonschema();
    let d = |s: &str| dir.join(s).display().to_string();
    // DEBUG, by default.
    let (code, out, _) = common::run([
        "snp-validate",
        &d("milan-v2-debug-gosevguest/report.bin"),
        "--vcek",
        &d("milan-v2-debug-gosevguest/vcek.der"),
        "--no-report-data-check",
        "--no-measurement-check",
        "--now",
        NOW,
        "--json",
    ]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["failed"], serde_json::json!(["policy.debug"]));
    if json_ok {
        validate_schema(&out).unwrap();
    }
    // The VLEK set: provisional firmware by default, accepted with the option;
    // expired at the real time, valid at --now before 2025-12-10.
    let vlek = [
        "snp-validate",
        &d("milan-v3-vlek-trustee/report.bin"),
        "--vlek",
        &d("milan-v3-vlek-trustee/vlek.der"),
        "--no-report-data-check",
        "--no-measurement-check",
    ];
    let (code, out, _) = common::run(vlek.iter().chain(&["--now", VLEK_NOW]));
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  firmware.provisional"), "{out}");
    assert!(
        out.contains("INVALID: 1 failed: firmware.provisional"),
        "{out}"
    );
    let (code, out, _) =
        common::run(
            vlek.iter()
                .chain(&["--now", VLEK_NOW, "--allow-provisional-firmware"]),
        );
    assert_eq!(code, 0, "{out}");
    let (code, out, _) =
        common::run(
            vlek.iter()
                .chain(&["--now", "2025-12-11", "--allow-provisional-firmware"]),
        );
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  chain.validity"), "{out}");
    assert!(out.contains("2025-12-10T22:14:21Z"), "{out}");
    // No nonce: REPORT_DATA must be expected unless waived.
    let (code, out, _) = common::run([
        "snp-validate",
        &d("milan-v2-virtee/report.bin"),
        "--vcek",
        &d("milan-v2-virtee/vcek.der"),
        "--no-measurement-check",
        "--now",
        NOW,
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("INVALID: 1 failed: expect.report_data"),
        "{out}"
    );
    assert!(out.contains("--report-data"), "{out}");
}

#[test]
fn the_certificate_table_after_the_report_or_in_a_file() {
    let Some(dir) = snp_dir("cert_table") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut b = fs::read(dir.join("turin-v5-microsoft/report.bin")).unwrap();
    let table = dir.join("synthetic/turin-v5-microsoft.certtable.bin");
    b.extend(fs::read(&table).unwrap());
    let joined = tmp.path().join("report+table.bin");
    fs::write(&joined, &b).unwrap();
    let (code, out, err) = common::run([
        "snp-validate",
        joined.to_str().unwrap(),
        "--no-report-data-check",
        "--no-measurement-check",
        "--now",
        NOW,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("report followed by a certificate table"),
        "{out}"
    );
    assert!(out.contains("PASS  chain.supplied_roots"), "{out}");
    let (code, out, err) = common::run([
        "snp-validate",
        dir.join("turin-v5-microsoft/report.bin").to_str().unwrap(),
        "--cert-table",
        table.to_str().unwrap(),
        "--no-report-data-check",
        "--no-measurement-check",
        "--now",
        NOW,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // snp-report names the container and lists the entries.
    let (code, out, _) = common::run(["snp-report", joined.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<&str> = doc["cert_table"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 3);
    for k in ["ARK", "ASK/ASVK", "VCEK"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
}

#[test]
fn another_products_ark_in_the_directory_is_refused() {
    let Some(dir) = snp_dir("another_products_ark") else {
        return;
    };
    let exp = expected(&dir);
    let e = &exp["milan-v2-virtee"];
    let tmp = tempfile::tempdir().unwrap();
    certs_dir(&dir, e, tmp.path());
    let genoa = fs::read_to_string(dir.join("amd-roots/ask_ark_genoa.pem")).unwrap();
    let ark = genoa
        .split_inclusive("-----END CERTIFICATE-----")
        .nth(1)
        .unwrap();
    fs::write(tmp.path().join("ark.pem"), ark.trim()).unwrap();
    let mut args = vec![
        "snp-validate".to_string(),
        dir.join("milan-v2-virtee/report.bin").display().to_string(),
        "--certs".into(),
        tmp.path().display().to_string(),
    ];
    args.extend(options(e));
    let (code, out, _) = common::run(&args);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("INVALID: 1 failed: chain.supplied_roots"),
        "{out}"
    );
    assert!(out.contains("ARK-Genoa"), "{out}");
}

#[test]
fn replaced_trust_anchors_warn_on_every_run() {
    let Some(dir) = snp_dir("trust_anchors") else {
        return;
    };
    let exp = expected(&dir);
    let e = &exp["genoa-v5-cdai"];
    let mut args = vec![
        "snp-validate".to_string(),
        dir.join("genoa-v5-cdai/report.bin").display().to_string(),
        "--vcek".into(),
        dir.join("genoa-v5-cdai/vcek.der").display().to_string(),
        "--trust-anchors".into(),
        dir.join("amd-roots/ask_ark_genoa.pem")
            .display()
            .to_string(),
        "--json".into(),
    ];
    args.extend(options(e));
    let (code, out, err) = common::run(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("WARNING: --trust-anchors"), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["trust_anchors"], "custom");
    // Milan anchors cannot vouch for a Genoa report.
    args[5] = dir
        .join("amd-roots/ask_ark_milan.pem")
        .display()
        .to_string();
    let (code, out, err) = common::run(&args);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("WARNING: --trust-anchors"));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert!(doc["failed"]
        .as_array()
        .unwrap()
        .contains(&Value::from("chain.ark_self_signed")));
}

/// Bad input: a clear message, exit 2, never a panic.
#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let Some(dir) = snp_dir("bad_input") else {
        return;
    };
    let json_ok = have_jsonschema();
    let tmp = tempfile::tempdir().unwrap();
    let t = |n: &str| tmp.path().join(n).display().to_string();
    let report = fs::read(dir.join("milan-v2-virtee/report.bin")).unwrap();
    let vcek = dir.join("milan-v2-virtee/vcek.der").display().to_string();
    fs::write(t("short"), &report[..1000]).unwrap();
    let mut long = report.clone();
    long.extend([0x41u8; 100]);
    fs::write(t("long"), &long).unwrap();
    let mut v9 = report.clone();
    v9[0] = 9;
    fs::write(t("v9"), &v9).unwrap();
    fs::write(
        t("garbage.pem"),
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    fs::write(t("text"), b"hello").unwrap();
    fs::copy(dir.join("amd-roots/ask_ark_milan.pem"), t("two.pem")).unwrap();
    // Cert tables: two entries overlapping; one past the end.
    let entry = |g: &[u8; 16], off: u32, len: u32| {
        let mut e = g.to_vec();
        e.extend(off.to_le_bytes());
        e.extend(len.to_le_bytes());
        e
    };
    let ark = *uuid::Uuid::parse_str("c0b406a4-a803-4952-9743-3fb6014cd0ae")
        .unwrap()
        .as_bytes();
    let vc = *uuid::Uuid::parse_str("63da758d-e664-4564-adc5-f4b93be8accd")
        .unwrap()
        .as_bytes();
    let mut overlap = entry(&ark, 72, 100);
    overlap.extend(entry(&vc, 100, 100));
    overlap.extend([0u8; 24]);
    overlap.resize(400, 0x30);
    fs::write(t("overlap.tbl"), &overlap).unwrap();
    let mut past = entry(&vc, 48, 5000);
    past.extend([0u8; 24]);
    past.resize(400, 0x30);
    fs::write(t("past.tbl"), &past).unwrap();
    let mut with_overlap = report.clone();
    with_overlap.extend(&overlap);
    fs::write(t("report+overlap"), &with_overlap).unwrap();
    let rep = dir.join("milan-v2-virtee/report.bin").display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![t("short"), "--vcek".into(), vcek.clone()], "too short"),
        (vec![t("long"), "--vcek".into(), vcek.clone()], "too large"),
        (
            vec![t("v9"), "--vcek".into(), vcek.clone()],
            "report version 9",
        ),
        (
            vec![t("report+overlap"), "--vcek".into(), vcek.clone()],
            "overlaps",
        ),
        (
            vec![rep.clone(), "--vcek".into(), t("garbage.pem")],
            "malformed PEM",
        ),
        (vec![rep.clone(), "--vcek".into(), t("text")], "neither PEM"),
        (
            vec![rep.clone(), "--vcek".into(), t("two.pem")],
            "holds 2 certificates",
        ),
        (
            vec![rep.clone(), "--cert-table".into(), t("overlap.tbl")],
            "overlaps",
        ),
        (
            vec![rep.clone(), "--cert-table".into(), t("past.tbl")],
            "past the end",
        ),
        (
            vec![rep.clone(), "--vcek".into(), t("missing")],
            "no such file",
        ),
        (
            vec![rep.clone(), "--certs".into(), t("text")],
            "not a directory",
        ),
        (vec![rep.clone()], "--product"),
        (
            vec![
                dir.join("genoa-v5-cdai/report.bin").display().to_string(),
                "--vcek".into(),
                dir.join("genoa-v5-cdai/vcek.der").display().to_string(),
                "--product".into(),
                "turin".into(),
            ],
            "contradicts the report",
        ),
        (
            // A v2 report: the product is the VCEK's productName (Milan-B0).
            vec![
                rep.clone(),
                "--vcek".into(),
                vcek.clone(),
                "--product".into(),
                "genoa".into(),
            ],
            "--product Genoa contradicts the VEK, whose productName 'Milan-B0' says Milan",
        ),
        (
            vec![
                rep.clone(),
                "--product".into(),
                "milan".into(),
                "--offline".into(),
                "--kds-cache".into(),
                t("cache"),
            ],
            "kdsintf.amd.com/vcek/v1/Milan/d49554ec",
        ),
        (
            vec![
                rep.clone(),
                "--vcek".into(),
                vcek.clone(),
                "--now".into(),
                "yesterday".into(),
            ],
            "RFC 3339",
        ),
        (
            vec![
                rep.clone(),
                "--vcek".into(),
                vcek.clone(),
                "--report-data".into(),
                "zz".into(),
            ],
            "hex",
        ),
    ];
    for (args, needle) in cases {
        let mut full = vec!["snp-validate".to_string()];
        full.extend(args.iter().cloned());
        let (code, out, err) = common::run(&full);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(needle), "{args:?}: want '{needle}' in: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if json_ok && err.starts_with("ERROR") {
            full.push("--json".into());
            let (code, out, _) = common::run(&full);
            assert_eq!(code, 2);
            validate_schema(&out).unwrap_or_else(|m| panic!("{args:?}: {m}"));
        }
    }
    // snp-report refuses the same way.
    let (code, _, err) = common::run(["snp-report", &t("short")]);
    assert_eq!(code, 2);
    assert!(err.contains("too short"), "{err}");
}

#[test]
fn snp_report_prints_every_field() {
    let Some(dir) = snp_dir("snp_report") else {
        return;
    };
    let exp = expected(&dir);
    for (name, e) in exp.as_object().unwrap() {
        let report = dir.join(e["files"]["report"].as_str().unwrap());
        let vek = dir.join(e["files"]["vek"].as_str().unwrap());
        let (code, out, err) = common::run([
            "snp-report",
            report.to_str().unwrap(),
            "--vek",
            vek.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, 0, "{name}: {err}");
        let doc: Value = serde_json::from_str(&out).unwrap();
        for k in [
            "version",
            "product",
            "guest_svn",
            "policy",
            "vmpl",
            "platform_info",
            "key_info",
            "cpuid_fam_mod_step",
            "current_version",
            "committed_version",
            "family_id",
            "image_id",
            "report_data",
            "measurement",
            "host_data",
            "id_key_digest",
            "author_key_digest",
            "report_id",
            "report_id_ma",
            "chip_id",
        ] {
            assert_eq!(doc[k], e[k], "{name} {k}");
        }
        for k in ["reported_tcb", "current_tcb"] {
            let raw =
                u64::from_str_radix(e[k]["raw"].as_str().unwrap().trim_start_matches("0x"), 16)
                    .unwrap();
            assert_eq!(doc[k]["raw"], format!("{raw:#018x}"), "{name}");
            assert_eq!(doc[k]["ucode"], e[k]["ucode"], "{name}");
        }
        let (code, out, _) = common::run([
            "snp-report",
            report.to_str().unwrap(),
            "--vek",
            vek.to_str().unwrap(),
        ]);
        assert_eq!(code, 0);
        assert!(out.contains(e["measurement"].as_str().unwrap()));
    }
}

/// `snp-report --json` on every set, alone and with its VEK (which gives a
/// v2 report's product, so its TCB fields are decoded), and on a report
/// followed by its certificate table: valid against
/// schema/snp-report.schema.json (checked by Debian's python3-jsonschema).
#[test]
fn snp_report_json_matches_its_schema() {
    let Some(dir) = snp_dir("snp_report_json_matches_its_schema") else {
        return;
    };
    if !have_jsonschema() {
        return;
    }
    let check = |args: &[String]| {
        let (code, out, err) = common::run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        common::schema::validate_json("snp-report.schema.json", &out)
            .unwrap_or_else(|m| panic!("{args:?}: {m}"));
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let exp = expected(&dir);
    let mut v2_sets = 0;
    for (name, e) in exp.as_object().unwrap() {
        let report = dir.join(e["files"]["report"].as_str().unwrap());
        let vek = dir.join(e["files"]["vek"].as_str().unwrap());
        let args = ["snp-report", report.to_str().unwrap(), "--json"].map(String::from);
        let alone = check(&args);
        assert_eq!(alone["measurement"], e["measurement"], "{name}");
        let with_vek = check(&[&args[..], &["--vek".into(), vek.display().to_string()]].concat());
        assert_eq!(with_vek["product"], e["product"], "{name}");
        v2_sets += usize::from(alone["product"].is_null());
    }
    // The v2 sets' product is known only from their VEK.
    assert!(v2_sets > 0);
    let tmp = tempfile::tempdir().unwrap();
    let mut b = fs::read(dir.join("turin-v5-microsoft/report.bin")).unwrap();
    b.extend(fs::read(dir.join("synthetic/turin-v5-microsoft.certtable.bin")).unwrap());
    let joined = tmp.path().join("report+table.bin");
    fs::write(&joined, &b).unwrap();
    let doc = check(&["snp-report", joined.to_str().unwrap(), "--json"].map(String::from));
    assert_eq!(doc["cert_table"].as_array().map(Vec::len), Some(3));
}

/// The snp-report schema refuses what the tool never prints, and names
/// every flag the decoder can print.
#[test]
fn the_snp_report_schema_refuses_a_document_it_does_not_describe() {
    let Some(dir) = snp_dir("snp_report_schema_refuses") else {
        return;
    };
    if !have_jsonschema() {
        return;
    }
    let report = dir.join("turin-v5-microsoft/report.bin");
    let (code, out, _) = common::run(["snp-report", report.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    let good: Value = serde_json::from_str(&out).unwrap();
    let valid = |v: &Value| common::schema::validate_json("snp-report.schema.json", &v.to_string());
    valid(&good).unwrap();
    type Break = fn(&mut Value);
    let broken: [(&str, Break); 5] = [
        ("a Turin TCB without fmc", |d| {
            d["current_tcb"].as_object_mut().unwrap().remove("fmc");
        }),
        ("decoded TCBs without a product", |d| {
            d["product"] = Value::Null
        }),
        ("an unknown key", |d| d["key_info"]["x"] = 1.into()),
        ("a missing field", |d| {
            d.as_object_mut().unwrap().remove("vmpl");
        }),
        ("an unknown flag", |d| {
            d["policy_flags"] = serde_json::json!(["NOPE"])
        }),
    ];
    for (what, change) in broken {
        let mut d = good.clone();
        change(&mut d);
        assert!(valid(&d).is_err(), "{what} passed");
    }
    // Every flag name the decoder prints is one the schema lists.
    let schema: Value = serde_json::from_str(
        &fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/snp-report.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    use sev_validate::core::snp_report::{PlatformInfo, PolicyFlags};
    let listed = |k: &str| {
        schema["properties"][k]["items"]["enum"]
            .as_array()
            .unwrap()
            .clone()
    };
    let names = |n: Vec<&str>| n.into_iter().map(Value::from).collect::<Vec<_>>();
    let policy: Vec<&str> = PolicyFlags::all().iter_names().map(|(n, _)| n).collect();
    let platform: Vec<&str> = PlatformInfo::all().iter_names().map(|(n, _)| n).collect();
    assert_eq!(listed("policy_flags"), names(policy));
    assert_eq!(listed("platform_info_flags"), names(platform));
}

/// `snp-validate REPORT ... -- SNP-DIGEST OPTIONS`: the expected MEASUREMENT
/// is the digest snp-digest gives for those options. The sets' reports come
/// from images not in the vectors, so the check fails; its message names
/// the expected value, which must be sev-snp-measure's digest for the same
/// inputs (../shared/vectors/VECTORS.json).
#[test]
fn the_expected_measurement_from_snp_digest_options() {
    let (Some(snp), Some(vec)) = (
        snp_dir("measurement_from_options"),
        common::vectors_dir("measurement_from_options"),
    ) else {
        return;
    };
    let all: Value =
        serde_json::from_str(&fs::read_to_string(vec.join("VECTORS.json")).unwrap()).unwrap();
    let cases: Vec<&Value> = all["launch_digests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["mode"] == "snp" && v.get("kernel").is_none() && v.get("vcpu_sig").is_some())
        .take(3)
        .collect();
    assert!(!cases.is_empty());
    for v in cases {
        let mut args = vec![
            "snp-validate".to_string(),
            snp.join("milan-v2-virtee/report.bin").display().to_string(),
            "--vcek".into(),
            snp.join("milan-v2-virtee/vcek.der").display().to_string(),
            "--no-report-data-check".into(),
            "--now".into(),
            NOW.into(),
            "--".into(),
            "--ovmf".into(),
            vec.join(v["ovmf"].as_str().unwrap()).display().to_string(),
            "--vcpus".into(),
            v["vcpus"].to_string(),
            "--vcpu-sig".into(),
            v["vcpu_sig"].as_str().unwrap().into(),
        ];
        if let Some(g) = v["guest_features"].as_str() {
            args.extend(["--guest-features".into(), g.into()]);
        }
        let (code, out, err) = common::run(&args);
        assert_eq!(code, 1, "{out}{err}");
        let want = format!("expected {}", v["expected"].as_str().unwrap());
        assert!(out.contains(&want), "want '{want}' in {out}");
        assert!(
            out.contains("INVALID: 1 failed: expect.measurement"),
            "{out}"
        );
    }
    // Bad snp-digest options are a usage error naming what is missing.
    let (code, _, err) = common::run([
        "snp-validate",
        snp.join("milan-v2-virtee/report.bin").to_str().unwrap(),
        "--vcek",
        snp.join("milan-v2-virtee/vcek.der").to_str().unwrap(),
        "--no-report-data-check",
        "--",
        "--vcpus",
        "1",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("snp-digest options") && err.contains("--ovmf"),
        "{err}"
    );
}

/// A VCEK not given is fetched from the KDS (a stand-in on loopback,
/// tests/sim/kds_server.py, serving the vector certificates), cached, and
/// taken from the cache by a later `--offline` run; offline with an empty
/// cache, the error names the URL. The real KDS is never contacted.
#[cfg(feature = "kds")]
#[test]
fn a_vcek_not_given_comes_from_the_kds_then_the_cache() {
    let Some(dir) = snp_dir("kds_fetch") else {
        return;
    };
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip_or_fail(
            "kds_fetch",
            "python3-cryptography is needed by kds_server.py",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("requests.log");
    // Ended on drop, so a failed assertion leaves no server behind.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut server = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/kds_server.py"))
        .arg("--vectors")
        .arg(&dir)
        .arg("--log")
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let server = Server(server);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let port: u16 = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let cache = tmp.path().join("cache");
    let exp = expected(&dir);
    let count = || fs::read_to_string(&log).unwrap_or_default().lines().count();
    for set in ["genoa-v5-cdai", "turin-v5-anolis", "milan-v3-microsoft"] {
        let e = &exp[set];
        let mut args = vec![
            "snp-validate".to_string(),
            dir.join(e["files"]["report"].as_str().unwrap())
                .display()
                .to_string(),
            "--kds-url".into(),
            base.clone(),
            "--kds-cache".into(),
            cache.display().to_string(),
        ];
        args.extend(options(e));
        let (code, out, err) = common::run(&args);
        assert_eq!(code, 0, "{set}: {out}{err}");
        let path = e["kds_vcek_url"]
            .as_str()
            .unwrap()
            .strip_prefix("https://kdsintf.amd.com")
            .unwrap();
        assert!(
            out.contains(&format!("VEK: KDS {base}{path}")),
            "{set}: {out}"
        );
        // Again, offline: from the cache, no request.
        let before = count();
        args.push("--offline".into());
        let (code, out, err) = common::run(&args);
        assert_eq!(code, 0, "{set} offline: {out}{err}");
        assert_eq!(count(), before, "{set}");
    }
    // Each online run asked for its VCEK (200) and, since the KDS was in
    // use, for AMD's CRL, which the stand-in has none of for the real
    // chains (404, not cached, so asked again by nothing offline).
    let requests = fs::read_to_string(&log).unwrap_or_default();
    let (crl, vcek): (Vec<&str>, Vec<&str>) = requests.lines().partition(|l| l.contains("/crl "));
    assert_eq!(vcek.len(), 3, "{requests}");
    assert!(vcek.iter().all(|l| l.ends_with(" 200")), "{requests}");
    assert_eq!(crl.len(), 3, "{requests}");
    assert!(crl.iter().all(|l| l.ends_with(" 404")), "{requests}");
    drop(server);
    // Offline with an empty cache: exit 2, the URL named.
    let e = &exp["genoa-v5-cdai"];
    let mut args = vec![
        "snp-validate".to_string(),
        dir.join("genoa-v5-cdai/report.bin").display().to_string(),
        "--offline".into(),
        "--kds-cache".into(),
        tmp.path().join("empty").display().to_string(),
    ];
    args.extend(options(e));
    let (code, _, err) = common::run(&args);
    assert_eq!(code, 2);
    assert!(err.contains(e["kds_vcek_url"].as_str().unwrap()), "{err}");
}

/// A command line clap refuses (unknown option, bad value, missing report)
/// still gives one JSON document with --json, valid against the schema, and
/// exit status 2; without --json, or with --json only after '--' (where it
/// is an snp-digest option), stdout stays empty.
#[test]
fn usage_errors_give_json_with_json() {
    let json_ok = have_jsonschema();
    for args in [
        &["snp-validate", "report.bin", "--json", "--no-such-option"][..],
        &["snp-validate", "--json", "report.bin", "--vmpl", "7"],
        &["snp-validate", "--json"],
        &[
            "snp-validate",
            "report.bin",
            "--json",
            "--measurement",
            "abcd",
        ],
    ] {
        let (code, out, err) = common::run(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        let doc: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"));
        assert_eq!(doc["valid"], false);
        assert_eq!(doc["exit_code"], 2);
        let msg = doc["error"].as_str().unwrap();
        assert!(!msg.is_empty() && !msg.starts_with("error:"), "{msg}");
        assert!(!msg.contains("Usage:"), "{msg}");
        assert!(
            err.contains("error:"),
            "clap's message stays on stderr: {err}"
        );
        if json_ok {
            validate_schema(&out).unwrap_or_else(|m| panic!("{args:?}: {m}"));
        }
    }
    for args in [
        &["snp-validate", "report.bin", "--no-such-option"][..],
        &["snp-validate", "report.bin", "--bogus", "--", "--json"],
    ] {
        let (code, out, _) = common::run(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
}

/// The schema check (with the embedded explanation schema) can fail.
#[test]
fn the_snp_validate_schema_refuses_a_document_it_does_not_describe() {
    if !have_jsonschema() {
        return;
    }
    assert!(validate_schema("{}").is_err());
    assert!(validate_schema("[1, 2]").is_err());
}

/// A report or certificate that is a device or an endless pipe reports size 0: the limit holds
/// while reading, so /dev/zero is refused (exit 2) after 1 MiB, not read until memory runs out.
#[test]
fn endless_report_and_certificate_files_are_refused_while_reading() {
    let cases: [&[&str]; 3] = [
        &["snp-validate", "/dev/zero", "--no-report-data-check"],
        &["snp-report", "/dev/zero"],
        &["snp-report", "/dev/zero", "--vek", "/dev/zero"],
    ];
    let mut refused = 0;
    for args in cases {
        let (code, out, err) = common::run(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("is more than 1048576 bytes"),
            "{args:?}: {err}"
        );
        refused += 1;
    }
    assert_eq!(refused, 3);
}

/// Without a VCEK and offline with an empty cache, the error says the
/// report's KDS URL (the vectors' own record of it) once, on a line of its
/// own, with every way to give a VCEK.
#[test]
fn no_vcek_error_says_the_kds_url_once() {
    let Some(dir) = snp_dir("no_vcek_error_says_the_kds_url_once") else {
        return;
    };
    let e = &expected(&dir)["genoa-v5-cdai"];
    let url = e["kds_vcek_url"].as_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut args = vec![
        "snp-validate".to_string(),
        dir.join("genoa-v5-cdai/report.bin").display().to_string(),
        "--offline".into(),
        "--kds-cache".into(),
        tmp.path().join("empty").display().to_string(),
    ];
    args.extend(options(e));
    let (code, _, err) = common::run(&args);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.matches(url).count(), 1, "{err}");
    assert!(err.lines().any(|l| l.trim() == url), "{err}");
    assert!(
        err.contains("--vcek") && err.contains("--cert-table"),
        "{err}"
    );
}
