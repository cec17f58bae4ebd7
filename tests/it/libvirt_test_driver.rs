//! The libvirt path against libvirt's own test driver (`test:///PATH.xml`
//! node files): lookup, domain state, locality and the XML checks, through
//! the real libvirt client library. The test driver cannot report launch
//! security info, so these give the launch state on the command line.

use crate::common;

use common::{expect, Args, Files, Tool};

use std::fs;
use std::path::Path;

const NS: &str = "xmlns:test='http://libvirt.org/schemas/domain/test/1.0'";

/// A node file holding `domain_xml` (a testdata-xml fixture or any domain)
/// as a test-driver domain in run state `state` (3 = paused, 1 = running).
fn node_file(dir: &Path, domain_xml: &str, state: u32) -> String {
    let body = domain_xml
        .lines()
        .filter(|l| !l.trim_start().starts_with("<!--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replacen(
            "<domain type='kvm'>",
            &format!("<domain type='test' {NS}>"),
            1,
        )
        .replacen(
            "</domain>",
            &format!("  <test:runstate>{state}</test:runstate>\n</domain>"),
            1,
        );
    let p = dir.join(format!("node-{state}-{}.xml", body.len()));
    fs::write(&p, format!("<node>\n{body}\n</node>\n")).unwrap();
    format!("test://{}", p.display())
}

fn fixture(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata-xml")
            .join(name),
    )
    .unwrap()
}

fn available() -> bool {
    // A valid TK file, so that the run gets as far as connecting.
    let f = Files::new();
    let domain = Tool::new().args(common::TEST_DRIVER_DOMAIN);
    let (_, _, err) = domain
        .args(["--tk", &f.write("tk", [0u8; 32])])
        .run()
        .parts();
    // The local test driver is refused without --insecure: libvirt connected.
    if err.contains("cannot connect to libvirt") {
        common::skip_or_fail(
            "libvirt_test_driver",
            "libvirt's test driver is not available",
        );
        return false;
    }
    true
}

struct Owner {
    dir: tempfile::TempDir,
}

impl Owner {
    fn new() -> Owner {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("fw.fd"), common::amdsev_like_firmware()).unwrap();
        fs::write(dir.path().join("tik"), [9u8; 16]).unwrap();
        fs::write(dir.path().join("tek"), [8u8; 16]).unwrap();
        Owner { dir }
    }

    fn p(&self, n: &str) -> String {
        self.dir.path().join(n).display().to_string()
    }

    /// Launch state and owner files on the command line, as the test driver needs.
    fn args(&self, uri: &str, domain: &str, policy: &str, extra: &[&str]) -> Vec<String> {
        Args::of(&["--connect", uri, "--domain", domain])
            .keys(self.p("tik"), self.p("tek"))
            .opt("--measurement", "A".repeat(64))
            .platform(1, 55, 21, policy)
            .opt("--firmware", self.p("fw.fd"))
            .args(extra)
            .vec()
    }
}

#[test]
fn local_connection_is_refused_without_insecure() {
    if !available() {
        return;
    }
    let o = Owner::new();
    let uri = node_file(o.dir.path(), &fixture("policy-mismatch.passes.xml"), 3);
    expect(
        &o.args(&uri, "guest", "1", &[]),
        3,
        "running locally on the hypervisor host is not secure",
    );
}

#[test]
fn lookup_by_name_id_and_uuid() {
    if !available() {
        return;
    }
    let o = Owner::new();
    let xml = fixture("policy-mismatch.passes.xml").replacen(
        "<name>guest</name>",
        "<name>guest</name>\n  <uuid>5e1f6b0e-8d0f-4d36-9d51-0d2f0b6f7c11</uuid>",
        1,
    );
    let uri = node_file(o.dir.path(), &xml, 3);
    // Past lookup, state and checks, the (wrong) measurement is compared: exit 1.
    for id in ["guest", "1", "5e1f6b0e-8d0f-4d36-9d51-0d2f0b6f7c11"] {
        expect(
            &o.args(&uri, id, "1", &["--insecure"]),
            1,
            "Measurement does not match",
        );
    }
    expect(
        &o.args(&uri, "nosuch", "1", &["--insecure"]),
        2,
        "no domain 'nosuch'",
    );
}

#[test]
fn domain_state() {
    if !available() {
        return;
    }
    let o = Owner::new();
    let running = node_file(o.dir.path(), &fixture("policy-mismatch.passes.xml"), 1);
    // A running domain is refused in secure mode; the local connection is the
    // first refusal here, so check the state rule with --insecure (accepted) and
    // with a shut-off domain (never accepted).
    expect(
        &o.args(&running, "guest", "1", &["--insecure"]),
        1,
        "does not match",
    );
    let xml = fixture("policy-mismatch.passes.xml").replacen(
        "<domain type='kvm'>",
        &format!("<domain type='test' {NS}>"),
        1,
    );
    let off = o.dir.path().join("off.xml");
    fs::write(
        &off,
        format!(
            "<node>{}</node>",
            xml.replacen("</domain>", "<test:runstate>5</test:runstate></domain>", 1)
        ),
    )
    .unwrap();
    expect(
        &o.args(
            &format!("test://{}", off.display()),
            "guest",
            "1",
            &["--insecure"],
        ),
        5,
        "Domain must be running",
    );
}

#[test]
fn xml_checks_run_through_libvirt_and_ignore_config_skips_them() {
    if !available() {
        return;
    }
    let o = Owner::new();
    let uri = node_file(o.dir.path(), &fixture("policy-mismatch.trips.xml"), 3);
    expect(
        &o.args(&uri, "guest", "1", &["--insecure"]),
        4,
        "<launchSecurity><policy> is 0x3",
    );
    expect(
        &o.args(&uri, "guest", "1", &["--insecure", "--ignore-config"]),
        1,
        "does not match",
    );
    let uri = node_file(o.dir.path(), &fixture("vcpu-count.trips.xml"), 3);
    let es = [&["--insecure", "-n", "4"][..], &common::MILAN].concat();
    expect(&o.args(&uri, "guest", "5", &es), 4, "starts 2 vCPUs");
    let uri = node_file(o.dir.path(), &fixture("no-dhcert.trips.xml"), 3);
    expect(&o.args(&uri, "guest", "1", &["--insecure"]), 4, "<dhCert>");
}

#[test]
fn host_supplied_inputs_need_insecure_and_a_local_connection() {
    if !available() {
        return;
    }
    let o = Owner::new();
    // The firmware path comes from the XML only with --insecure (local here).
    let xml =
        fixture("policy-mismatch.passes.xml").replace("/usr/share/ovmf/OVMF.fd", &o.p("fw.fd"));
    let uri = node_file(o.dir.path(), &xml, 3);
    let mut args = o.args(&uri, "guest", "1", &["--insecure", "--debug"]);
    let at = args.iter().position(|a| a == "--firmware").unwrap();
    args.drain(at..at + 2);
    expect(&args, 1, "firmware (from the domain XML)");
    // The owner is told which values came from the host, on a NOTE line and
    // in the JSON document's provenance.
    expect(
        &args,
        1,
        "NOTE: taken from the host (--insecure), not from you: firmware",
    );
    let mut json = args.clone();
    json.push("--json".into());
    let (code, out, _) = common::run(&json);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["provenance"]["firmware"], "host", "{out}");
    assert_eq!(doc["provenance"].get("num_cpus"), None, "{out}");
    // SEV-ES: vCPU count from the host and the signature of the XML's named model.
    let xml = fixture("cpu-model-signature.trips.xml");
    let uri = node_file(o.dir.path(), &xml, 3);
    let mut es = o.args(&uri, "guest", "5", &["--insecure", "--debug"]);
    expect(&es, 1, "CPU signature: 0xa00f11");
    es.push("--json".into());
    let (code, out, _) = common::run(&es);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["provenance"]["firmware"], "owner", "{out}");
    assert_eq!(doc["provenance"]["num_cpus"], "host", "{out}");
    assert_eq!(doc["provenance"]["vcpu_signature"], "host", "{out}");
}

#[test]
fn injection_failure_is_reported_and_nothing_is_resumed() {
    if !available() {
        return;
    }
    let Some(mut sp) = common::sev_sp() else {
        return;
    };
    let o = Owner::new();
    let out = sp
        .args([
            "measure",
            "--firmware",
            &o.p("fw.fd"),
            "--policy",
            "1",
            "--api-major",
            "1",
            "--api-minor",
            "55",
        ])
        .args(["--build-id", "21", "--tik", &o.p("tik")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let m = String::from_utf8(out.stdout).unwrap().trim().to_string();
    fs::write(o.p("key"), b"k").unwrap();
    let uri = node_file(o.dir.path(), &fixture("policy-mismatch.passes.xml"), 3);
    let mut args = o.args(
        &uri,
        "guest",
        "1",
        &["--insecure", "-s", &format!("luks-key:{}", o.p("key"))],
    );
    let at = args.iter().position(|a| a == "--measurement").unwrap() + 1;
    args[at] = m;
    // The measurement validates; the test driver cannot take secrets, so the
    // injection fails with libvirt's own message and exit 8: a libvirt call
    // failed (not a bug in this program, which is what 6 means).
    let (code, out, err) = common::run(&args);
    assert_eq!(out, "OK: Looks good to me\n", "{err}");
    assert_eq!(code, 8, "{err}");
    assert!(
        err.contains("libvirt refused the secret") && err.contains("not resumed"),
        "{err}"
    );
}

/// A domain that boots a kernel directly without kernelHashes='yes' passes
/// under --insecure when the owner gives no --kernel (only the firmware is
/// measured), but the run warns that the kernel was not checked, on stderr
/// and in the JSON document. The measurement is computed here as the SEV
/// API's LAUNCH_MEASURE defines it: HMAC-SHA256 keyed with the TIK over
/// 0x04, API major, minor, build, the policy (LE32), the launch digest
/// (SHA-256 of the firmware) and the nonce.
#[test]
fn insecure_unmeasured_kernel_passes_with_a_warning() {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    if !available() {
        return;
    }
    let o = Owner::new();
    let uri = node_file(
        o.dir.path(),
        &fixture("unmeasured-direct-boot.trips.xml"),
        3,
    );
    let firmware = fs::read(o.p("fw.fd")).unwrap();
    let nonce = [0x5au8; 16];
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[9u8; 16]).unwrap();
    for part in [
        &[4u8, 1, 55, 21][..],
        &1u32.to_le_bytes(),
        &Sha256::digest(&firmware),
        &nonce,
    ] {
        mac.update(part);
    }
    let mut blob = mac.finalize().into_bytes().to_vec();
    blob.extend_from_slice(&nonce);
    let measurement = base64::engine::general_purpose::STANDARD.encode(blob);
    let mut args = o.args(&uri, "guest", "1", &["--insecure"]);
    let at = args.iter().position(|a| a == "--measurement").unwrap();
    args[at + 1] = measurement;
    let (code, _, err) = common::run(&args);
    assert_eq!(code, 0, "{err}");
    let warning = err
        .lines()
        .find(|l| l.starts_with("WARNING: "))
        .unwrap_or_else(|| panic!("no WARNING line: {err}"));
    assert!(
        warning.contains("kernelHashes='yes'") && warning.contains("--kernel"),
        "{warning}"
    );
    args.push("--json".into());
    let (code, out, _) = common::run(&args);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warnings = doc["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("kernelHashes='yes'"))),
        "{out}"
    );
}
