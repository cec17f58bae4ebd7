//! The SEV-SNP attested key release (schema/snp-key-release.md), end to end:
//! `snp-request` in the guest, the simulated SNP firmware (tests/sim/snp_sp.py)
//! signing a report for the REPORT_DATA it prints, `snp-validate --nonce
//! --seal-secret` for the owner, `snp-open` in the guest. The oracle is an
//! independent implementation written from the document
//! (tests/sim/snp_key_release.py: pyhpke and hashlib): it computes the
//! binding, opens what we seal, and seals what `snp-open` must open.
//!
//! Every way the host could cheat is tried (another nonce, another key in
//! the evidence, a replayed evidence, a report of another launch, a chain
//! that does not end in the anchors, a flipped byte of the sealed file):
//! each is refused, with no sealed file and no temporary file left behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common;
use crate::common::snp_sim;
use crate::common::tool::Tool;

const PYHPKE: &str = "/opt/pyhpke/bin/python3";
const LUKS_KEY: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";
const SECRET: &[u8] = b"correct horse battery staple\n";

/// tests/sim/snp_key_release.py on pyhpke's Python, or None (after a
/// SKIPPED line; a failure in CI) without it.
fn oracle() -> Option<Command> {
    let ok = Command::new(PYHPKE)
        .args(["-c", "import pyhpke, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        common::skip::skip_or_fail(
            "snp_secrets",
            "pyhpke is needed in /opt/pyhpke (scripts/setup.sh installs it)",
        );
        return None;
    }
    let mut c = Command::new(PYHPKE);
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/snp_key_release.py"));
    Some(c)
}

fn py(args: &[&str]) -> String {
    let out = oracle().unwrap().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "snp_key_release.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn p(x: &Path) -> String {
    x.display().to_string()
}

fn fresh_nonce() -> String {
    let mut n = [0u8; 32];
    getrandom::getrandom(&mut n).unwrap();
    hex::encode(n)
}

/// A guest with its key directory, an owner with a test chain, and the
/// folder the sealed file goes to.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    chain: PathBuf,
    keys: PathBuf,
    out: PathBuf,
    secret: PathBuf,
}

const MEASUREMENT: &str = "abababababababababababababababababababababababababababababababababababababababababababababababab";
const REPORT_ID: &str = "1111111111111111111111111111111111111111111111111111111111111111";

impl Setup {
    fn new() -> Option<Setup> {
        oracle()?;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let chain = dir.join("chain");
        let keys = dir.join("keys");
        let out = dir.join("out");
        for d in [&chain, &keys, &out] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
        snp_sim::chain("milan", &chain, &[])?;
        let secret = dir.join("disk.key");
        std::fs::write(&secret, SECRET).unwrap();
        Some(Setup {
            _tmp: tmp,
            dir,
            chain,
            keys,
            out,
            secret,
        })
    }

    /// Step 1 of snp-request: REPORT_DATA in hex.
    fn print_report_data(&self, nonce: &str) -> String {
        let o = Tool::new()
            .args(["snp-request", "--nonce", nonce, "--key-dir", &p(&self.keys)])
            .arg("--print-report-data")
            .run()
            .expect_code(0);
        o.stdout.trim().to_string()
    }

    /// The simulated firmware's report for `report_data`, of the launch `measurement`.
    fn report(&self, name: &str, report_data: &str, measurement: &str) -> PathBuf {
        let f = self.dir.join(name);
        snp_sim::report(
            &self.chain,
            &f,
            &[
                "--report-data",
                report_data,
                "--measurement",
                measurement,
                "--report-id",
                REPORT_ID,
            ],
        )
        .unwrap();
        f
    }

    /// Both steps of snp-request: the evidence file.
    fn evidence(&self, name: &str, nonce: &str, measurement: &str) -> PathBuf {
        let rd = self.print_report_data(nonce);
        let report = self.report(&format!("{name}.bin"), &rd, measurement);
        let ev = self.dir.join(name);
        Tool::new()
            .args(["snp-request", "--nonce", nonce, "--key-dir", &p(&self.keys)])
            .args(["--report", &p(&report), "--evidence-out", &p(&ev)])
            .run()
            .expect_code(0);
        ev
    }

    fn sealed(&self) -> PathBuf {
        self.out.join("sealed.bin")
    }

    /// snp-validate EVIDENCE --nonce N --seal-secret luks-key:... --json; the
    /// test chain as anchors unless `builtin_roots`.
    fn validate(
        &self,
        ev: &Path,
        nonce: &str,
        extra: &[&str],
        builtin_roots: bool,
    ) -> (i32, Value) {
        let mut t = Tool::new().args(["snp-validate", &p(ev), "--nonce", nonce, "--json"]);
        t = t.args(["--vcek", &p(&self.chain.join("vcek.der"))]);
        if !builtin_roots {
            t = t.args(["--trust-anchors", &p(&self.chain.join("ark.pem"))]);
            t = t.args(["--trust-anchors", &p(&self.chain.join("ask.pem"))]);
        }
        let secret = format!("luks-key:{}", p(&self.secret));
        let o = t
            .args(["--seal-secret", &secret, "--sealed-out", &p(&self.sealed())])
            .args(extra)
            .run();
        let doc = serde_json::from_str(&o.stdout)
            .unwrap_or_else(|_| panic!("{}: {}{}", o.command, o.stdout, o.stderr));
        (o.code, doc)
    }

    /// Nothing in the sealed file's folder: no file, no temporary file.
    fn assert_nothing_written(&self, what: &str) {
        let left: Vec<_> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{what}: left behind {left:?}");
    }
}

fn failed(doc: &Value) -> Vec<String> {
    doc["failed"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn evidence_json(ev: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(ev).unwrap()).unwrap()
}

#[test]
fn sealed_for_a_validated_guest_opens_with_pyhpke_and_snp_open() {
    let Some(s) = Setup::new() else { return };
    let nonce = fresh_nonce();
    let rd = s.print_report_data(&nonce);
    let key = s.keys.join("snp-key-release.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key file");
    let report = s.report("r.bin", &rd, MEASUREMENT);
    let ev = s.dir.join("evidence.json");
    Tool::new()
        .args(["snp-request", "--nonce", &nonce, "--key-dir", &p(&s.keys)])
        .args(["--report", &p(&report), "--evidence-out", &p(&ev)])
        .run()
        .expect_code(0);
    let e = evidence_json(&ev);
    assert_eq!(e["format"], "virt-qemu-sev-validate/snp-evidence/v1");
    assert_eq!(e["nonce"], nonce.as_str());
    assert_eq!(e["report_source"], "external");
    assert_eq!(
        e["suite"],
        serde_json::json!({"kem": 17, "kdf": 2, "aead": 2})
    );
    // REPORT_DATA = SHA-512(label || nonce || public key), computed by hashlib.
    let pk = e["public_key"].as_str().unwrap();
    assert_eq!(py(&["binding", &nonce, pk]), rd);
    let schema = |file: &str, doc: &Value| {
        if common::schema::have_jsonschema() {
            common::schema::validate_json(file, &doc.to_string())
                .unwrap_or_else(|x| panic!("{file}: {x}"));
        } else {
            common::skip::skip_or_fail("snp_secrets schema", "python3-jsonschema is needed");
        }
    };
    schema("snp-evidence.schema.json", &e);

    let (code, doc) = s.validate(&ev, &nonce, &["--measurement", MEASUREMENT], false);
    assert_eq!(code, 0, "{doc:#}");
    let check = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "expect.key_binding")
        .unwrap();
    assert_eq!(check["status"], "pass");
    let sealed = &doc["sealed"];
    assert_eq!(sealed["path"], p(&s.sealed()));
    assert_eq!(sealed["entries"][0]["guid"], LUKS_KEY);
    assert_eq!(sealed["entries"][0]["length"], SECRET.len());
    assert_eq!(sealed["measurement"], MEASUREMENT);
    assert_eq!(sealed["report_id"], REPORT_ID);
    assert!(!doc.to_string().contains(&hex::encode(SECRET)));
    schema("snp-validate.schema.json", &doc);
    let mode = std::fs::metadata(s.sealed()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the sealed file");

    // pyhpke opens it with the guest's key: the same table, bound to the report.
    let opened: Value = serde_json::from_str(&py(&["open", &p(&s.sealed()), &p(&key)])).unwrap();
    assert_eq!(opened["measurement"], MEASUREMENT);
    assert_eq!(opened["report_id"], REPORT_ID);
    assert_eq!(
        opened["entries"],
        serde_json::json!([{"guid": LUKS_KEY, "data": hex::encode(SECRET)}])
    );

    // snp-open: to stdout for cryptsetup's --key-file=-, or to a 0600 file.
    let out = Command::new(common::tool::OURS)
        .args(["snp-open", &p(&s.sealed()), "--key-dir", &p(&s.keys)])
        .args(["--secret", "luks-key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, SECRET);
    let file = s.dir.join("secret.out");
    Tool::new()
        .args(["snp-open", &p(&s.sealed()), "--key", &p(&key)])
        .args(["--secret", LUKS_KEY, "--out", &p(&file)])
        .run()
        .expect_code(0);
    assert_eq!(std::fs::read(&file).unwrap(), SECRET);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the opened secret");
}

#[test]
fn snp_open_opens_what_pyhpke_seals() {
    let Some(s) = Setup::new() else { return };
    let nonce = fresh_nonce();
    let ev = s.evidence("ev.json", &nonce, MEASUREMENT);
    let pk = evidence_json(&ev)["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    let other = "01234567-89ab-cdef-0123-456789abcdef";
    let sealed = s.dir.join("py.sealed");
    py(&[
        "seal",
        "--public-key",
        &pk,
        "--measurement",
        MEASUREMENT,
        "--report-id",
        REPORT_ID,
        "--secret",
        &format!("{other}:00ff"),
        "--secret",
        &format!("{LUKS_KEY}:{}", hex::encode(b"from pyhpke")),
        "--out",
        &p(&sealed),
    ]);
    let open = |secret: &str| {
        Command::new(common::tool::OURS)
            .args(["snp-open", &p(&sealed), "--key-dir", &p(&s.keys)])
            .args(["--secret", secret])
            .output()
            .unwrap()
    };
    let o = open("luks-key");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.stdout, b"from pyhpke");
    assert_eq!(open(other).stdout, [0x00, 0xff]);
    // A GUID not in the table: the ones present are listed.
    let o = open("00000000-0000-0000-0000-000000000001");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(other) && err.contains("luks-key"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn every_way_the_host_can_cheat_is_refused_and_nothing_is_written() {
    let Some(s) = Setup::new() else { return };
    let nonce = fresh_nonce();
    let m = ["--measurement", MEASUREMENT];
    let ev = s.evidence("ev.json", &nonce, MEASUREMENT);

    // The owner's nonce is not the one the guest bound.
    let (code, doc) = s.validate(&ev, &fresh_nonce(), &m, false);
    assert_eq!(
        (code, failed(&doc)),
        (1, vec!["expect.key_binding".to_string()])
    );
    assert!(doc["sealed"].is_null());
    s.assert_nothing_written("another nonce");

    // Another public key in the evidence (the host swapped it for its own).
    let mut e = evidence_json(&ev);
    let host_key = py(&["keypair", "--out", &p(&s.dir.join("host.pem"))]);
    e["public_key"] = Value::String(host_key);
    let swapped = s.dir.join("swapped.json");
    std::fs::write(&swapped, e.to_string()).unwrap();
    let (code, doc) = s.validate(&swapped, &nonce, &m, false);
    assert_eq!(
        (code, failed(&doc)),
        (1, vec!["expect.key_binding".to_string()])
    );
    s.assert_nothing_written("another key");

    // A replayed evidence: an earlier request's, for an old nonce.
    let (code, doc) = s.validate(&ev, &fresh_nonce(), &m, false);
    assert_eq!(code, 1);
    let kb = &doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "expect.key_binding")
        .unwrap()
        .clone();
    assert!(
        kb["message"]
            .as_str()
            .unwrap()
            .contains("the evidence names the nonce"),
        "{kb:#}"
    );
    assert!(kb["hint"].as_str().unwrap().contains("replayed"), "{kb:#}");
    s.assert_nothing_written("replayed evidence");

    // A report of another launch: MEASUREMENT is not the owner's.
    let other = s.evidence("other.json", &nonce, &"cd".repeat(48));
    let (code, doc) = s.validate(&other, &nonce, &m, false);
    assert_eq!(
        (code, failed(&doc)),
        (1, vec!["expect.measurement".to_string()])
    );
    s.assert_nothing_written("another launch");

    // A chain that does not end in the trust anchors (AMD's, built in).
    let ev = s.evidence("ev2.json", &nonce, MEASUREMENT);
    let (code, doc) = s.validate(&ev, &nonce, &m, true);
    assert_eq!(code, 1);
    assert!(
        failed(&doc).contains(&"chain.vek_signed_by_ask".to_string()),
        "{doc:#}"
    );
    s.assert_nothing_written("failed chain");

    // Malformed evidence: an unknown field is bad input (exit 2).
    let mut e = evidence_json(&ev);
    e["extra"] = Value::Bool(true);
    let bad = s.dir.join("bad.json");
    std::fs::write(&bad, e.to_string()).unwrap();
    let (code, doc) = s.validate(&bad, &nonce, &m, false);
    assert_eq!(code, 2, "{doc:#}");
    assert!(doc["error"].as_str().unwrap().contains("extra"), "{doc:#}");
    s.assert_nothing_written("malformed evidence");

    // The control: the same evidence and nonce pass and seal.
    let (code, _) = s.validate(&ev, &nonce, &m, false);
    assert_eq!(code, 0);
    assert!(s.sealed().is_file());
}

#[test]
fn a_changed_sealed_file_or_another_key_is_refused_by_snp_open() {
    let Some(s) = Setup::new() else { return };
    let nonce = fresh_nonce();
    let ev = s.evidence("ev.json", &nonce, MEASUREMENT);
    let (code, _) = s.validate(&ev, &nonce, &["--measurement", MEASUREMENT], false);
    assert_eq!(code, 0);
    let good = std::fs::read(s.sealed()).unwrap();
    let opened = s.dir.join("opened");
    std::fs::create_dir(&opened).unwrap();
    let open = |sealed: &Path, key: &[&str]| {
        Tool::new()
            .args(["snp-open", &p(sealed), "--secret", "luks-key"])
            .args(key)
            .args(["--out", &p(&opened.join("key"))])
            .run()
    };
    let keydir = ["--key-dir", &p(&s.keys)];
    // Every byte of the header, enc, and ciphertext: 0 (magic) to the tag's last.
    for (i, want) in [
        (0, 2),
        (9, 2),
        (20, 1),
        (70, 1),
        (100, 1),
        (good.len() - 1, 1),
    ] {
        let mut b = good.clone();
        b[i] ^= 0x40;
        let f = s.dir.join(format!("flipped-{i}"));
        std::fs::write(&f, &b).unwrap();
        let o = open(&f, &keydir);
        assert_eq!(o.code, want, "byte {i}: {}", o.stderr);
        if want == 1 {
            assert!(
                o.stderr.contains("not sealed to this key, or tampered"),
                "{}",
                o.stderr
            );
        }
        assert_eq!(std::fs::read_dir(&opened).unwrap().count(), 0, "byte {i}");
    }
    let other = s.dir.join("other.pem");
    py(&["keypair", "--out", &p(&other)]);
    let o = open(&s.sealed(), &["--key", &p(&other)]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("not sealed to this key"), "{}", o.stderr);
    assert_eq!(std::fs::read_dir(&opened).unwrap().count(), 0);
    open(&s.sealed(), &keydir).expect_code(0);
}

#[test]
fn sealing_options_need_each_other_and_the_nonce() {
    let Some(s) = Setup::new() else { return };
    let nonce = fresh_nonce();
    let ev = s.evidence("ev.json", &nonce, MEASUREMENT);
    let secret = format!("luks-key:{}", p(&s.secret));
    let out = p(&s.sealed());
    let base = ["snp-validate".to_string(), p(&ev)];
    for (extra, says) in [
        (
            vec!["--nonce", &nonce, "--seal-secret", &secret],
            "--sealed-out",
        ),
        (
            vec!["--nonce", &nonce, "--sealed-out", &out],
            "--seal-secret",
        ),
        (
            vec!["--seal-secret", &secret, "--sealed-out", &out],
            "--nonce",
        ),
        (
            vec![
                "--nonce",
                &nonce,
                "--seal-secret",
                "nokey:/x",
                "--sealed-out",
                &out,
            ],
            "alias",
        ),
        (
            vec![
                "--nonce",
                &nonce,
                "--seal-secret",
                &secret,
                "--sealed-out",
                "/nonexistent/x",
            ],
            "does not exist",
        ),
    ] {
        let o = Tool::new().args(&base).args(&extra).run().expect_code(2);
        assert!(o.stderr.contains(says), "{extra:?}: {}", o.stderr);
        s.assert_nothing_written("usage");
    }
    // --nonce needs evidence: a bare report carries no public key.
    let rd = s.print_report_data(&nonce);
    let raw = s.report("raw.bin", &rd, MEASUREMENT);
    let o = Tool::new()
        .args(["snp-validate", &p(&raw), "--nonce", &nonce])
        .run()
        .expect_code(2);
    assert!(o.stderr.contains("evidence"), "{}", o.stderr);
    // A report for another REPORT_DATA is refused by snp-request.
    let o = Tool::new()
        .args([
            "snp-request",
            "--nonce",
            &fresh_nonce(),
            "--key-dir",
            &p(&s.keys),
        ])
        .args([
            "--report",
            &p(&raw),
            "--evidence-out",
            &p(&s.dir.join("x.json")),
        ])
        .run()
        .expect_code(2);
    assert!(o.stderr.contains("REPORT_DATA"), "{}", o.stderr);
}

#[test]
fn a_key_dir_others_can_read_is_refused() {
    let Some(s) = Setup::new() else { return };
    std::fs::set_permissions(&s.keys, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Tool::new()
        .args([
            "snp-request",
            "--nonce",
            &fresh_nonce(),
            "--key-dir",
            &p(&s.keys),
        ])
        .arg("--print-report-data")
        .run()
        .expect_code(3);
    assert!(o.stderr.contains("0755"), "{}", o.stderr);
    assert_eq!(std::fs::read_dir(&s.keys).unwrap().count(), 0);
}

/// The worked example of schema/snp-key-release.md, computed by pyhpke and
/// hashlib (tests/fixtures/snp-key-release-example.json): the library
/// computes the same REPORT_DATA, opens the example's sealed file to the
/// same table and, given the same ephemeral IKM, seals the same bytes; the
/// document shows exactly these values.
#[test]
fn the_documents_worked_example_interoperates() {
    use sev_validate::core::snp_secret::{self, KeyPair};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ex: Value = serde_json::from_slice(
        &std::fs::read(root.join("tests/fixtures/snp-key-release-example.json")).unwrap(),
    )
    .unwrap();
    let h = |k: &str| hex::decode(ex[k].as_str().unwrap()).unwrap();
    let key = KeyPair::from_pkcs8_pem(ex["recipient_private_key_pem"].as_str().unwrap()).unwrap();
    assert_eq!(key.public.to_vec(), h("recipient_public_key"));
    let nonce: [u8; 32] = h("nonce").try_into().unwrap();
    assert_eq!(
        snp_secret::report_data(&nonce, &key.public).to_vec(),
        h("report_data")
    );
    let (header, entries) = snp_secret::open(&h("sealed"), &key).unwrap();
    assert_eq!(header.measurement.to_vec(), h("measurement"));
    assert_eq!(header.report_id.to_vec(), h("report_id"));
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0.to_string(), LUKS_KEY);
    assert_eq!(entries[0].1.as_slice(), b"example disk key");
    assert_eq!(&h("sealed")[..193], &h("aad")[..]);
    // Sealing with the example's ephemeral IKM as the only randomness gives
    // pyhpke's bytes exactly (DeriveKeyPair, RFC 9180 7.1.3, of 48 bytes).
    let mut t = sev_validate::core::secret::SecretTable::new();
    let luks = uuid::Uuid::parse_str(LUKS_KEY).unwrap();
    t.add(luks, zeroize::Zeroizing::new(b"example disk key".to_vec()))
        .unwrap();
    let mut ikm = b"snp-key-release example ephemeral".to_vec();
    ikm.resize(48, 0);
    let sealed = snp_secret::seal(&t, &key.public, &header, &mut FixedIkm(ikm)).unwrap();
    assert_eq!(hex::encode(sealed), ex["sealed"].as_str().unwrap());
    let doc = std::fs::read_to_string(root.join("schema/snp-key-release.md"))
        .unwrap()
        .replace('\n', "");
    for k in [
        "nonce",
        "recipient_public_key",
        "report_data",
        "info",
        "sealed",
    ] {
        assert!(
            doc.contains(ex[k].as_str().unwrap()),
            "schema/snp-key-release.md does not show the example's {k}"
        );
    }
}

/// A report source that answers at once, as the kernel's configfs-tsm does:
/// here the simulated firmware signs a report for the REPORT_DATA asked.
struct SimulatedTsm<'a>(&'a Setup);

impl sev_validate::snp::key_release::ReportProvider for SimulatedTsm<'_> {
    fn source(&self) -> sev_validate::core::snp_secret::ReportSource {
        sev_validate::core::snp_secret::ReportSource::ConfigfsTsm
    }

    fn get_report(
        &mut self,
        report_data: &[u8; 64],
    ) -> sev_validate::error::Result<sev_validate::snp::key_release::ObtainedReport> {
        let f = self
            .0
            .report("tsm.bin", &hex::encode(report_data), MEASUREMENT);
        Ok(sev_validate::snp::key_release::ObtainedReport {
            report: std::fs::read(f).unwrap(),
            cert_table: None,
        })
    }
}

#[test]
fn a_report_provider_plugs_into_the_request() {
    use sev_validate::snp::key_release::request;
    let Some(s) = Setup::new() else { return };
    let nonce = fresh_nonce();
    let n: [u8; 32] = hex::decode(&nonce).unwrap().try_into().unwrap();
    let evidence = request::request(&n, &s.keys, &mut SimulatedTsm(&s)).unwrap();
    let ev = s.dir.join("tsm.json");
    std::fs::write(&ev, evidence.to_json()).unwrap();
    let e = evidence_json(&ev);
    assert_eq!(e["report_source"], "configfs-tsm");
    let rd = py(&["binding", &nonce, e["public_key"].as_str().unwrap()]);
    let report = std::fs::read(s.dir.join("tsm.bin")).unwrap();
    assert_eq!(hex::encode(&report[0x50..0x90]), rd);
    let (code, doc) = s.validate(&ev, &nonce, &["--measurement", MEASUREMENT], false);
    assert_eq!(code, 0, "{doc:#}");
    let o = Command::new(common::tool::OURS)
        .args(["snp-open", &p(&s.sealed()), "--key-dir", &p(&s.keys)])
        .args(["--secret", "luks-key"])
        .output()
        .unwrap();
    assert_eq!(o.stdout, SECRET);
}

/// A "random" source that gives fixed bytes once: the example's ephemeral
/// IKM, so that the sealed file is the example's.
struct FixedIkm(Vec<u8>);

impl rand_core::RngCore for FixedIkm {
    fn next_u32(&mut self) -> u32 {
        panic!("only fill_bytes is expected")
    }
    fn next_u64(&mut self) -> u64 {
        panic!("only fill_bytes is expected")
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert_eq!(dest.len(), self.0.len(), "one IKM of a private key's size");
        dest.copy_from_slice(&self.0);
        self.0.clear();
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for FixedIkm {}
