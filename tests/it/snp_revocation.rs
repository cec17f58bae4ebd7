//! `chain.revocation`: AMD's CRL checked against the chain. The CRLs are
//! issued by tests/sim/snp_crl.py (python3-cryptography, from RFC 5280 and
//! the spec) for chains minted by tests/sim/snp_sp.py; the serials, names
//! and dates the messages must name come from the simulator's chain, not from
//! the tool. The KDS is the loopback stand-in tests/sim/kds_server.py; the
//! real KDS is never contacted.

use crate::common;
use crate::common::snp_sim;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

const NONCE: &str = "7265766f63617465642d6e6f6e636500000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

/// A Milan chain (its ASK serial is 0x10001, §2.1; the VCEK valid from
/// 2025-06-01) and a report signed by its VCEK; None without python3-cryptography.
fn setup(dir: &Path) -> Option<PathBuf> {
    snp_sim::chain("milan", dir, &["--not-before", "2025-06-01T00:00:00"])?;
    let report = dir.join("report.bin");
    snp_sim::report(dir, &report, &["--report-data", NONCE])?;
    Some(report)
}

/// `snp_crl.py --chain DIR ARGS`.
fn crl(chain: &Path, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/snp_crl.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg("--chain")
        .arg(chain)
        .args(args)
        .output()
        .expect("run snp_crl.py");
    assert!(
        out.status.success(),
        "snp_crl.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `snp-validate REPORT --json` with the chain's test anchors, its VCEK and `extra`;
/// the exit code, the document (checked against its schema) and stderr.
fn validate(chain: &Path, report: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut args: Vec<String> = vec![
        "snp-validate".into(),
        report.display().to_string(),
        "--report-data".into(),
        NONCE.into(),
        "--trust-anchors".into(),
        chain.join("ark.pem").display().to_string(),
        "--trust-anchors".into(),
        chain.join("ask.pem").display().to_string(),
        "--vcek".into(),
        chain.join("vcek.der").display().to_string(),
        "--json".into(),
        // The chain is under test here, not the launch.
        "--no-measurement-check".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let (code, out, err) = common::run(&args);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{args:?}: {out}{err}"));
    if common::schema::have_jsonschema() {
        common::schema::validate_json("snp-validate.schema.json", &out)
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"));
    }
    (code, doc, err)
}

/// (status, message, hint) of `chain.revocation`.
fn revocation(doc: &Value) -> (String, String, Option<String>) {
    let c = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "chain.revocation")
        .unwrap_or_else(|| panic!("no chain.revocation: {doc:#}"));
    (
        c["status"].as_str().unwrap().to_string(),
        c["message"].as_str().unwrap().to_string(),
        c["hint"].as_str().map(str::to_string),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_crl_file_is_checked_against_the_ark() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(report) = setup(tmp.path()) else {
        return;
    };
    let chain = tmp.path();
    let f = |n: &str| chain.join(n);
    crl(chain, &["--out", s(&f("empty.der"))]);
    crl(chain, &["--out", s(&f("empty.pem")), "--pem"]);
    // An empty CRL, DER or PEM: the chain passes, the CRL is a source.
    for name in ["empty.der", "empty.pem"] {
        let (code, doc, _) = validate(chain, &report, &["--crl", s(&f(name))]);
        assert_eq!(code, 0, "{name}: {doc:#}");
        let (status, m, _) = revocation(&doc);
        assert_eq!(status, "pass", "{name}: {m}");
        assert!(m.contains("SEV-Milan") && m.contains("0x10001"), "{m}");
        assert!(doc["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["role"] == "CRL" && x["from"].as_str().unwrap().contains(name)));
    }
    // The ASK revoked, at the date snp_crl.py put in the CRL.
    crl(
        chain,
        &[
            "--out",
            s(&f("ask.der")),
            "--revoke",
            "ask",
            "--this-update",
            "2026-03-04T05:06:07Z",
        ],
    );
    let (code, doc, _) = validate(chain, &report, &["--crl", s(&f("ask.der"))]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["failed"], serde_json::json!(["chain.revocation"]));
    let (status, m, hint) = revocation(&doc);
    assert_eq!(status, "fail");
    assert!(
        m.contains("the ASK 'SEV-Milan' (serial 0x10001) is revoked since 2026-03-04T05:06:07Z"),
        "{m}"
    );
    assert!(!m.contains("VEK"), "only the ASK is listed: {m}");
    assert!(hint.unwrap().contains("revoked"));
    // Serial 0 on the ARK's list: every VCEK's serial, but the ARK issues
    // no VCEK (the ASK does), so the entry is about another certificate.
    crl(chain, &["--out", s(&f("vcek.crl")), "--revoke", "vcek"]);
    let (code, doc, _) = validate(chain, &report, &["--crl", s(&f("vcek.crl"))]);
    assert_eq!(code, 0, "{doc:#}");
    let (status, m, _) = revocation(&doc);
    assert_eq!(status, "pass");
    assert!(m.contains("(1 entries"), "{m}");
    // Signed by the ASK's key under the ARK's name: refused.
    crl(chain, &["--out", s(&f("wrong.der")), "--signed-by", "ask"]);
    let (code, doc, _) = validate(chain, &report, &["--crl", s(&f("wrong.der"))]);
    assert_eq!(code, 1);
    let (status, m, hint) = revocation(&doc);
    assert_eq!(status, "fail");
    assert!(m.contains("not signed by ARK-Milan"), "{m}");
    assert!(hint.unwrap().contains("not AMD's"));
    // Signed by the ARK but naming another issuer: refused.
    crl(
        chain,
        &["--out", s(&f("issuer.der")), "--issuer-cn", "ARK-Genoa"],
    );
    let (code, doc, _) = validate(chain, &report, &["--crl", s(&f("issuer.der"))]);
    assert_eq!(code, 1);
    let (status, m, _) = revocation(&doc);
    assert_eq!(status, "fail");
    assert!(m.contains("names its issuer 'ARK-Genoa'"), "{m}");
    // Another chain's ARK (another product's test key): refused too.
    let genoa = tmp.path().join("genoa");
    snp_sim::chain("genoa", &genoa, &[]).unwrap();
    crl(&genoa, &["--out", s(&f("genoa.der"))]);
    let (code, doc, _) = validate(chain, &report, &["--crl", s(&f("genoa.der"))]);
    assert_eq!((code, revocation(&doc).0.as_str()), (1, "fail"));
}

#[test]
fn an_out_of_date_crl_warns_and_fails_when_required() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(report) = setup(tmp.path()) else {
        return;
    };
    let chain = tmp.path();
    let stale = chain.join("stale.der");
    crl(
        chain,
        &[
            "--out",
            s(&stale),
            "--this-update",
            "2026-01-01T00:00:00",
            "--next-update",
            "2026-02-01T00:00:00",
        ],
    );
    // After nextUpdate: a warning, the report still valid.
    let at = ["--now", "2026-03-01T00:00:00Z"];
    let (code, doc, _) = validate(chain, &report, &[&["--crl", s(&stale)][..], &at].concat());
    assert_eq!(code, 0, "{doc:#}");
    let (status, m, _) = revocation(&doc);
    assert_eq!(status, "warn");
    assert!(m.contains("nextUpdate 2026-02-01T00:00:00Z"), "{m}");
    // Within its time: a pass.
    let (code, doc, _) = validate(
        chain,
        &report,
        &["--crl", s(&stale), "--now", "2026-01-15T00:00:00Z"],
    );
    assert_eq!((code, revocation(&doc).0.as_str()), (0, "pass"));
    // Before thisUpdate: the CRL is from the future.
    let (code, doc, _) = validate(
        chain,
        &report,
        &["--crl", s(&stale), "--now", "2025-12-01T00:00:00Z"],
    );
    assert_eq!((code, revocation(&doc).0.as_str()), (1, "fail"));
    // Required: out of date fails.
    let (code, doc, _) = validate(
        chain,
        &report,
        &[&["--crl", s(&stale), "--require-revocation-check"][..], &at].concat(),
    );
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["failed"], serde_json::json!(["chain.revocation"]));
}

#[test]
fn without_a_crl_the_check_is_skipped_or_required() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(report) = setup(tmp.path()) else {
        return;
    };
    let chain = tmp.path();
    let (code, doc, _) = validate(chain, &report, &[]);
    assert_eq!(code, 0, "{doc:#}");
    let (status, m, _) = revocation(&doc);
    assert_eq!(status, "skip");
    assert!(m.starts_with("no CRL: give --crl FILE"), "{m}");
    // Required, offline with an empty cache: a failure saying why.
    let cache = tmp.path().join("cache");
    let (code, doc, _) = validate(
        chain,
        &report,
        &[
            "--require-revocation-check",
            "--offline",
            "--kds-cache",
            s(&cache),
        ],
    );
    assert_eq!(code, 1, "{doc:#}");
    let (status, m, hint) = revocation(&doc);
    assert_eq!(status, "fail");
    assert!(
        m.contains("/vcek/v1/Milan/crl") && m.contains("not in the cache"),
        "{m}"
    );
    assert!(hint.unwrap().contains("--crl"));
}

#[test]
fn the_certificate_table_carries_the_crl() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(report) = setup(tmp.path()) else {
        return;
    };
    let chain = tmp.path();
    let table = chain.join("table.bin");
    let t = ["--certtable", s(&table)];
    crl(
        chain,
        &[&["--out", s(&chain.join("t.der"))][..], &t].concat(),
    );
    let (code, doc, _) = validate(chain, &report, &["--cert-table", s(&table)]);
    assert_eq!(code, 0, "{doc:#}");
    let (status, m, _) = revocation(&doc);
    assert_eq!(status, "pass");
    assert!(m.contains("the certificate table"), "{m}");
    crl(
        chain,
        &[
            &["--out", s(&chain.join("t.der")), "--revoke", "ask"][..],
            &t,
        ]
        .concat(),
    );
    let (code, doc, _) = validate(chain, &report, &["--cert-table", s(&table)]);
    assert_eq!(code, 1, "{doc:#}");
    assert!(revocation(&doc).1.contains("SEV-Milan"));
    // snpguest's directory layout: crl.der beside the certificates.
    let certs = chain.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    crl(
        chain,
        &["--out", s(&certs.join("crl.der")), "--revoke", "ask"],
    );
    let (code, doc, _) = validate(chain, &report, &["--certs", s(&certs)]);
    assert_eq!(code, 1, "{doc:#}");
    let m = revocation(&doc).1;
    assert!(
        m.contains("the ASK 'SEV-Milan'") && m.contains("crl.der"),
        "{m}"
    );
    // --crl wins over the table's.
    crl(chain, &["--out", s(&chain.join("e.der"))]);
    let (code, _, _) = validate(
        chain,
        &report,
        &["--cert-table", s(&table), "--crl", s(&chain.join("e.der"))],
    );
    assert_eq!(code, 0);
}

/// tests/sim/kds_server.py serving `chain`, ended on drop.
struct Kds(Child, String, PathBuf);

impl Kds {
    fn start(chain: &Path, log: PathBuf) -> Kds {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/kds_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg("--chain")
            .arg(chain)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start kds_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("PORT ").expect("PORT line");
        Kds(child, format!("http://127.0.0.1:{port}"), log)
    }

    fn crl_requests(&self) -> usize {
        std::fs::read_to_string(&self.2)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("GET /vcek/v1/Milan/crl 200"))
            .count()
    }
}

impl Drop for Kds {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(feature = "kds")]
#[test]
fn the_kds_serves_the_crl_into_the_cache_until_its_next_update() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(report) = setup(tmp.path()) else {
        return;
    };
    let chain = tmp.path();
    let served = chain.join("crl.der");
    let kds = Kds::start(chain, tmp.path().join("requests.log"));
    let cache = tmp.path().join("cache");
    let online = [
        "--require-revocation-check",
        "--kds-url",
        &kds.1,
        "--kds-cache",
        s(&cache),
    ];
    // No CRL served yet: 404, said as such, a failure when required.
    let (code, doc, _) = validate(chain, &report, &online);
    assert_eq!(code, 1, "{doc:#}");
    let m = revocation(&doc).1;
    assert!(
        m.contains("the KDS has no CRL at") && m.contains("404"),
        "{m}"
    );
    crl(chain, &["--out", s(&served)]);
    let (code, doc, _) = validate(chain, &report, &online);
    assert_eq!(code, 0, "{doc:#}");
    let (status, m, _) = revocation(&doc);
    assert_eq!(status, "pass");
    assert!(
        m.contains(&format!("KDS {}/vcek/v1/Milan/crl", kds.1)),
        "{m}"
    );
    assert_eq!(kds.crl_requests(), 1);
    let cached = cache.join("vcek/v1/Milan/crl");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        std::fs::read(&served).unwrap()
    );
    // Current: from the cache, online or not, no request.
    let (code, _, _) = validate(chain, &report, &online);
    let (code2, _, _) = validate(chain, &report, &[&online[..], &["--offline"]].concat());
    assert_eq!((code, code2, kds.crl_requests()), (0, 0, 1));
    // The KDS now lists the ASK, and the cached CRL is past its nextUpdate:
    // offline it is used (and warned about); online it is fetched again.
    crl(
        chain,
        &[
            "--out",
            s(&cached),
            "--this-update",
            "2026-01-01T00:00:00",
            "--next-update",
            "2026-02-01T00:00:00",
        ],
    );
    crl(chain, &["--out", s(&served), "--revoke", "ask"]);
    let (code, doc, _) = validate(chain, &report, &[&online[..], &["--offline"]].concat());
    assert_eq!((code, kds.crl_requests()), (1, 1), "{doc:#}");
    assert!(revocation(&doc).1.contains("out of date"));
    let (code, doc, _) = validate(chain, &report, &online);
    assert_eq!((code, kds.crl_requests()), (1, 2), "{doc:#}");
    assert!(revocation(&doc).1.contains("is revoked since"));
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        std::fs::read(&served).unwrap()
    );
    // A cached file that is not a CRL is fetched again.
    std::fs::write(&cached, [0x30, 0x03, 1, 2, 3]).unwrap();
    let (code, _, _) = validate(chain, &report, &online);
    assert_eq!((code, kds.crl_requests()), (1, 3));
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        std::fs::read(&served).unwrap()
    );
}

/// A run that takes its VCEK from the KDS asks the same KDS for the CRL,
/// without --require-revocation-check: reachable, so checked.
#[cfg(feature = "kds")]
#[test]
fn a_vcek_from_the_kds_brings_the_crl_along() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(report) = setup(tmp.path()) else {
        return;
    };
    let chain = tmp.path();
    let kds = Kds::start(chain, tmp.path().join("requests.log"));
    let cache = tmp.path().join("cache");
    let run = || {
        let args: Vec<String> = [
            "snp-validate",
            s(&report),
            "--report-data",
            NONCE,
            "--trust-anchors",
            s(&chain.join("ark.pem")),
            "--trust-anchors",
            s(&chain.join("ask.pem")),
            "--kds-url",
            &kds.1,
            "--kds-cache",
            s(&cache),
            "--json",
            "--no-measurement-check",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        let (code, out, err) = common::run(&args);
        let doc: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
        (code, doc)
    };
    // No CRL served: the VCEK still validates, the check is skipped with the KDS's answer.
    let (code, doc) = run();
    assert_eq!(code, 0, "{doc:#}");
    let (status, m, _) = revocation(&doc);
    assert_eq!(status, "skip", "{m}");
    assert!(m.contains("the KDS has no CRL at"), "{m}");
    // The KDS lists the ASK: the run fails although nothing asked for the check.
    crl(
        chain,
        &["--out", s(&chain.join("crl.der")), "--revoke", "ask"],
    );
    let (code, doc) = run();
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["failed"], serde_json::json!(["chain.revocation"]));
    assert!(revocation(&doc).1.contains("is revoked since"));
    assert_eq!(kds.crl_requests(), 1);
}

#[test]
fn a_vlek_report_is_checked_against_the_asvk_serial_and_the_vlek_crl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Some(_) = snp_sim::chain("milan", dir, &[]) else {
        return;
    };
    let report = dir.join("vlek-report.bin");
    snp_sim::report(dir, &report, &["--signer", "vlek", "--report-data", NONCE]).unwrap();
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "snp-validate",
            s(&report),
            "--report-data",
            NONCE,
            "--trust-anchors",
            s(&dir.join("ark.pem")),
            "--trust-anchors",
            s(&dir.join("asvk.pem")),
            "--vlek",
            s(&dir.join("vlek.der")),
            "--json",
            "--no-measurement-check",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        args.extend(extra.iter().map(|x| x.to_string()));
        let (code, out, err) = common::run(&args);
        let doc: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
        (code, doc)
    };
    // The ASK revoked does not touch a VLEK's chain; the ASVK (0x10101) does.
    crl(dir, &["--out", s(&dir.join("ask.der")), "--revoke", "ask"]);
    let (code, doc) = run(&["--crl", s(&dir.join("ask.der"))]);
    assert_eq!((code, revocation(&doc).0.as_str()), (0, "pass"), "{doc:#}");
    crl(
        dir,
        &["--out", s(&dir.join("asvk.der")), "--revoke", "asvk"],
    );
    let (code, doc) = run(&["--crl", s(&dir.join("asvk.der"))]);
    assert_eq!(code, 1, "{doc:#}");
    let m = revocation(&doc).1;
    assert!(
        m.contains("the ASVK 'SEV-VLEK-Milan' (serial 0x10101) is revoked"),
        "{m}"
    );
    // Required and offline: the KDS path asked for is the VLEK one.
    let (code, doc) = run(&[
        "--require-revocation-check",
        "--offline",
        "--kds-cache",
        s(&dir.join("cache")),
    ]);
    assert_eq!(code, 1);
    assert!(revocation(&doc).1.contains("/vlek/v1/Milan/crl"), "{doc:#}");
}

/// OpenSSL, a third implementation, agrees with the tool on which CRLs the
/// ARK signed: the simulator's CRLs are not merely ones both sides misread
/// the same way.
#[test]
fn openssl_agrees_on_which_crls_the_ark_signed() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIPPED: no openssl");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some(report) = setup(tmp.path()) else {
        return;
    };
    let chain = tmp.path();
    for (name, extra, ark_signed) in [
        ("good.der", vec![], true),
        ("ask.der", vec!["--revoke", "ask"], true),
        ("wrong.der", vec!["--signed-by", "ask"], false),
        ("asvk.der", vec!["--signed-by", "asvk"], false),
    ] {
        let path = chain.join(name);
        crl(chain, &[&["--out", s(&path)][..], &extra].concat());
        let openssl = Command::new("openssl")
            .args([
                "crl",
                "-inform",
                "DER",
                "-noout",
                "-in",
                s(&path),
                "-CAfile",
            ])
            .arg(chain.join("ark.pem"))
            .output()
            .unwrap();
        let says_ok = openssl.status.success()
            && String::from_utf8_lossy(&openssl.stderr).contains("verify OK");
        assert_eq!(says_ok, ark_signed, "openssl on {name}: {openssl:?}");
        let (_, doc, _) = validate(chain, &report, &["--crl", s(&path)]);
        let m = revocation(&doc).1;
        assert_eq!(!m.contains("not signed by"), ark_signed, "{name}: {m}");
    }
}
