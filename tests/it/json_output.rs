//! `--json`: one document on stdout, validated against
//! schema/result.schema.json by an independent validator (Debian's
//! python3-jsonschema), for success, mismatch, a configuration error and an
//! injection; and the secrets never appear in it.

use crate::common;

use common::{Args, Tool};

use std::fs;

fn validate(doc: &str) -> Result<(), String> {
    common::schema::validate_json("result.schema.json", doc)
}

fn have_validator() -> bool {
    let ok = common::schema::have_jsonschema();
    if !ok {
        common::skip_or_fail(
            "json_output",
            "python3-jsonschema is needed to validate the schema",
        );
    }
    ok
}

struct Launch {
    dir: tempfile::TempDir,
    measurement: String,
}

impl Launch {
    fn new() -> Option<Launch> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("fw.fd"), common::amdsev_like_firmware()).unwrap();
        fs::write(d.join("tik"), [0xA1u8; 16]).unwrap();
        fs::write(d.join("tek"), [0xB2u8; 16]).unwrap();
        fs::write(d.join("kernel"), b"kernel").unwrap();
        fs::write(d.join("secret"), b"SECRET-DISK-PASSPHRASE").unwrap();
        let p = |n: &str| d.join(n).display().to_string();
        let measurement = common::sev_measure(
            Args::new()
                .opt("--firmware", p("fw.fd"))
                .opt("--kernel", p("kernel"))
                .opt("--cmdline", "ro")
                .arg("--kernel-hashes")
                .platform(1, 55, 21, 7)
                .opt("--tik", p("tik"))
                .opt("--num-cpus", 2)
                .opt("--cpu-signature", "0xA00F11"),
        )?;
        Some(Launch { dir, measurement })
    }

    fn p(&self, n: &str) -> String {
        self.dir.path().join(n).display().to_string()
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        Args::of(&["--json", "-m", &self.measurement])
            .platform(1, 55, 21, 7)
            .opt("-f", self.p("fw.fd"))
            .opt("-k", self.p("kernel"))
            .opt("-e", "ro")
            .keys(self.p("tik"), self.p("tek"))
            .opt("-n", 2)
            .milan()
            .args(extra)
            .vec()
    }
}

fn run_json(args: &[String]) -> (i32, serde_json::Value, String) {
    let o = Tool::new().args(args).run();
    validate(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "schema violation: {e}\nstdout: {}\nstderr: {}",
            o.stdout, o.stderr
        )
    });
    let v = o.json();
    let (code, out, err) = o.parts();
    assert_eq!(v["exit_code"], code);
    // Nothing secret in the document.
    for secret in [
        "a1a1a1a1a1a1a1a1",
        "b2b2b2b2b2b2b2b2",
        "SECRET-DISK-PASSPHRASE",
    ] {
        assert!(!out.contains(secret), "{secret} leaked into the JSON");
    }
    (code, v, err)
}

#[test]
fn success_and_injection() {
    if !have_validator() {
        return;
    }
    let Some(l) = Launch::new() else { return };
    let (code, v, _) = run_json(&l.args(&[]));
    assert_eq!((code, v["verdict"].as_str()), (0, Some("validated")));
    assert_eq!(
        v["policy"]["flags"],
        serde_json::json!(["NODBG", "NOKS", "ES"])
    );
    assert_eq!(v["inputs"]["vmsa"]["num_cpus"], 2);
    assert_eq!(v["reported"]["measure"], v["computed"]["measure"]);
    let secret = format!("luks-key:{}", l.p("secret"));
    let (code, v, _) = run_json(&l.args(&[
        "-s",
        &secret,
        "--secret-header",
        &l.p("h"),
        "--secret-payload",
        &l.p("p"),
    ]));
    assert_eq!(code, 0);
    assert_eq!(v["injection"]["destination"], "files");
    assert_eq!(
        v["injection"]["secrets"][0]["guid"],
        "736869e5-84f0-4973-92ec-06879ce3da0b"
    );
    assert_eq!(v["injection"]["secrets"][0]["bytes"], 22);
}

#[test]
fn mismatch_with_explanation() {
    if !have_validator() {
        return;
    }
    let Some(l) = Launch::new() else { return };
    let mut a = l.args(&[]);
    let at = a.iter().position(|x| x == "-e").unwrap() + 1;
    a[at] = "ro ".into();
    let (code, v, err) = run_json(&a);
    assert_eq!((code, v["verdict"].as_str()), (1, Some("mismatch")));
    assert!(
        v["explanation"]["matched"][0]
            .as_str()
            .unwrap()
            .contains("no leading or trailing whitespace"),
        "{v}"
    );
    assert!(err.contains("ERROR: Measurement does not match"));
}

#[test]
fn usage_error_and_requirement_failure() {
    if !have_validator() {
        return;
    }
    let Some(l) = Launch::new() else { return };
    let mut a = l.args(&[]);
    let at = a.iter().position(|x| x == "-n").unwrap() + 1;
    a[at] = "0".into();
    let (code, v, _) = run_json(&a);
    assert_eq!((code, v["verdict"].as_str()), (2, Some("error")));
    assert!(v["error"].as_str().unwrap().contains("between 1 and 512"));
    // Even a command line clap cannot parse gives the document.
    let (code, v, _) = run_json(&l.args(&["--no-such-option"]));
    assert_eq!((code, v["verdict"].as_str()), (2, Some("error")));
    let (code, v, _) = run_json(&l.args(&["--allow-build", "20"]));
    assert_eq!(
        (code, v["verdict"].as_str()),
        (1, Some("requirement-failed"))
    );
    let (code, v, _) = run_json(&l.args(&["--allow-build", "21", "--min-api", "1.55"]));
    assert_eq!(code, 0, "{v}");
}

#[test]
fn config_error_through_libvirt() {
    if !have_validator() {
        return;
    }
    let Some(l) = Launch::new() else { return };
    let xml = fs::read_to_string(format!(
        "{}/testdata-xml/no-session.trips.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let body: String = xml
        .lines()
        .filter(|x| !x.trim_start().starts_with("<!--"))
        .collect::<Vec<_>>()
        .join("\n");
    let body = body.replacen(
        "<domain type='kvm'>",
        "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>",
        1,
    );
    let body = body.replacen("</domain>", "<test:runstate>3</test:runstate></domain>", 1);
    fs::write(l.p("node.xml"), format!("<node>{body}</node>")).unwrap();
    let uri = format!("test://{}", l.p("node.xml"));
    let mut a = l.args(&["--connect", &uri, "--domain", "guest", "--insecure"]);
    let at = a.iter().position(|x| x == "--policy").unwrap() + 1;
    a[at] = "1".into();
    let (code, v, _) = run_json(&a);
    assert_eq!(
        (code, v["verdict"].as_str(), v["source"].as_str()),
        (4, Some("error"), Some("libvirt"))
    );
    let checks = v["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "domain-xml" && c["result"] == "failed"),
        "{v}"
    );
}

/// The schema check itself can fail: a document missing the required fields,
/// and one with a verdict the schema does not name, are refused.
#[test]
fn the_schema_refuses_a_document_it_does_not_describe() {
    if !have_validator() {
        return;
    }
    assert!(validate("{}").is_err());
    assert!(validate(r#"{"verdict": "probably", "exit_code": 0}"#).is_err());
}
