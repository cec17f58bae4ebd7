//! `snp-validate` without an expected MEASUREMENT: refused as a missing
//! nonce is, unless the owner waives the check, which is then said on every
//! run and in the JSON document. On the public vectors (../shared/snp-vectors),
//! whose MEASUREMENT comes from the set's own source.

use crate::common;
use crate::snp_validate_cli::{expected, have_jsonschema, options, snp_dir, validate_schema};

use serde_json::Value;

/// Without an expected MEASUREMENT nothing about the guest's contents is
/// attested: refused as a missing nonce is (exit 1, the failed check saying
/// what to give), unless waived with --no-measurement-check, which says so
/// on every run and in the JSON document.
#[test]
fn a_missing_measurement_is_refused_unless_waived() {
    let Some(dir) = snp_dir("measurement_required") else {
        return;
    };
    let json_ok = have_jsonschema();
    let exp = expected(&dir);
    let e = &exp["milan-v2-virtee"];
    let mut with = vec![
        "snp-validate".to_string(),
        dir.join("milan-v2-virtee/report.bin").display().to_string(),
        "--vcek".into(),
        dir.join("milan-v2-virtee/vcek.der").display().to_string(),
    ];
    with.extend(options(e));
    let at = with.iter().position(|a| a == "--measurement").unwrap();
    let mut without = with.clone();
    without.drain(at..at + 2);
    let json = |args: &[String]| {
        let (code, out, err) = common::run(args.iter().chain(&["--json".to_string()]));
        if json_ok {
            validate_schema(&out).unwrap_or_else(|m| panic!("{m}: {out}"));
        }
        (code, serde_json::from_str::<Value>(&out).unwrap(), err)
    };
    let note = "NOTE: --no-measurement-check";
    // Refused without one.
    let (code, out, err) = common::run(&without);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAIL  expect.measurement"), "{out}");
    assert!(
        out.contains("INVALID: 1 failed: expect.measurement"),
        "{out}"
    );
    for what in ["--measurement", "after '--'", "--no-measurement-check"] {
        assert!(out.contains(what), "want {what:?} in {out}");
    }
    assert!(!out.contains("VALID: every check"), "{out}");
    assert!(!err.contains(note), "{err}");
    let (code, doc, _) = json(&without);
    assert_eq!(code, 1);
    assert_eq!(doc["failed"], serde_json::json!(["expect.measurement"]));
    assert_eq!(doc["measurement_waived"], false);
    // Waived: valid, with a NOTE on stderr on every run and in the document.
    let mut waived = without.clone();
    waived.push("--no-measurement-check".into());
    let (code, out, err) = common::run(&waived);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains(note), "{err}");
    assert!(out.contains("skip  expect.measurement"), "{out}");
    let (code, doc, err) = json(&waived);
    assert_eq!(code, 0);
    assert!(err.contains(note), "{err}");
    assert_eq!(doc["measurement_waived"], true);
    assert_eq!(doc["valid"], true);
    // With the expected MEASUREMENT (the set's, from its source): no NOTE.
    let (code, doc, err) = json(&with);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["measurement_waived"], false);
    assert_eq!(doc["measurement"], e["measurement"]);
    assert!(!err.contains(note), "{err}");
    let pass = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "expect.measurement")
        .unwrap();
    assert_eq!(pass["status"], "pass");
    // The waiver and a measurement together: a usage error.
    let mut both = with.clone();
    both.push("--no-measurement-check".into());
    let (code, _, err) = common::run(&both);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--no-measurement-check"), "{err}");
}
