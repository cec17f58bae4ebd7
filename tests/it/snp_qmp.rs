//! `--qmp` on an SEV-SNP guest, against a peer that answers QMP as QEMU 10.0
//! does for an SNP guest (shared/spec/snp-libvirt.md: `query-sev` with
//! `sev-type: sev-snp` and `snp-policy`, `query-cpus-fast`; nothing else).
//! The expected launch digest comes from sev-snp-measure (through the
//! simulated SNP firmware, tests/sim/snp_sp.py), and the guest's reports are
//! signed by that simulator's test chain: the tool's digest and verdicts are
//! checked against an independent implementation, never its own output.
//! Real QEMU 10.0 behind the end-to-end wrapper is the end-to-end suite's.

use crate::common;
use crate::common::netns;
use crate::common::snp_sim;
use crate::common::MILAN;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
const NONCE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// A monitor that answers as QEMU 10.0 for an SNP guest with `policy` and
/// `vcpus` vCPUs; everything else gets QEMU's "command not found".
pub(crate) fn snp_monitor(sock: &Path, policy: u64, vcpus: usize) {
    let listener = UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            serve(s, policy, vcpus);
        }
    });
}

fn serve(mut s: UnixStream, policy: u64, vcpus: usize) {
    let _ = s.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 0, \"major\": 10}, \"package\": \"Debian 1:10.0.2+ds-2+deb13u1~bpo12+1\"}, \"capabilities\": [\"oob\"]}}\r\n");
    let r = BufReader::new(s.try_clone().unwrap());
    for line in r.lines() {
        let Ok(line) = line else { return };
        let m: serde_json::Value = serde_json::from_str(&line).unwrap();
        let mut reply = match m["execute"].as_str().unwrap_or("") {
            "qmp_capabilities" => serde_json::json!({"return": {}}),
            "query-sev" => serde_json::json!({"return": {
                "enabled": true, "api-major": 1, "api-minor": 55, "build-id": 24,
                "state": "launch-update", "sev-type": "sev-snp", "snp-policy": policy}}),
            "query-cpus-fast" => serde_json::json!({"return": (0..vcpus)
                .map(|i| serde_json::json!({"cpu-index": i, "qom-path": format!("/machine/unattached/device[{i}]"), "thread-id": 1000 + i, "props": {"core-id": i, "thread-id": 0, "socket-id": 0}, "target": "x86_64"}))
                .collect::<Vec<_>>()}),
            "query-sev-launch-measure" => serde_json::json!({"error": {
                "class": "GenericError", "desc": "SEV launch measurement is not available"}}),
            other => serde_json::json!({"error": {
                "class": "CommandNotFound", "desc": format!("The command {other} has not been found")}}),
        };
        if let Some(id) = m.get("id") {
            reply["id"] = id.clone();
        }
        let _ = s.write_all(format!("{reply}\r\n").as_bytes());
    }
}

struct Guest {
    dir: tempfile::TempDir,
    sock: PathBuf,
}

impl Guest {
    fn start(policy: u64) -> Option<Guest> {
        if !Path::new(OVMF).is_file() {
            common::skip_or_fail("snp_qmp", &format!("{OVMF} missing (Debian's ovmf)"));
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("qmp.sock");
        snp_monitor(&sock, policy, 2);
        Some(Guest { dir, sock })
    }

    /// The owner's command line for an SEV-SNP guest on this monitor, then `extra`.
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = [
            "--qmp",
            self.sock.to_str().unwrap(),
            "--generation",
            "sev-snp",
            "--firmware",
            OVMF,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The digest sev-snp-measure gives for Debian's OVMF, `vcpus` Milan vCPUs.
fn oracle_digest(vcpus: &str) -> Option<String> {
    snp_sim::measure(&[
        "--ovmf",
        OVMF,
        "--vcpus",
        vcpus,
        "--vcpu-sig",
        "0xa00f11",
        "--guest-features",
        "0x1",
    ])
}

#[test]
fn the_expected_digest_is_sev_snp_measures() {
    let Some(g) = Guest::start(0x30000) else {
        return;
    };
    let Some(want) = oracle_digest("2") else {
        return;
    };
    let mut a = vec!["--insecure", "--num-cpus", "2"];
    a.extend(MILAN);
    let (code, out, err) = common::run(g.args(&a));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("Expected launch digest: {want}")),
        "{out}"
    );
    assert!(
        out.contains("NOT ATTESTED: launch configuration accepted")
            && out.contains("nothing about the running guest is attested"),
        "{out}"
    );
    assert!(!out.contains("OK: Looks good"), "{out}");
    // --json: the SNP part of the document.
    a.push("--json");
    let (code, out, _) = common::run(g.args(&a));
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["guest"], "sev-snp");
    // Nothing was attested: no report was checked.
    assert_eq!(doc["verdict"], "not-attested");
    assert_eq!(doc["snp"]["policy"], "0x30000");
    assert_eq!(doc["snp"]["state"], "launch-update");
    assert_eq!(doc["snp"]["expected_measurement"], want.as_str());
}

#[test]
fn what_an_snp_guest_cannot_do_is_a_usage_error() {
    let Some(g) = Guest::start(0x30000) else {
        return;
    };
    let secret = g.p("disk.key");
    std::fs::write(&secret, "passphrase").unwrap();
    let secret_arg = format!("luks-key:{}", secret.display());
    for (extra, code, says) in [
        (
            vec!["--inject-secret", secret_arg.as_str()],
            2,
            "no LAUNCH_SECRET",
        ),
        (
            vec!["--measurement", "AAAA"],
            2,
            "--measurement only SEV and SEV-ES guests have",
        ),
        (
            vec!["--min-api", "1.55"],
            2,
            "for --min-api, use --min-version",
        ),
        (
            vec!["--vmsa-cpu0", "/dev/null"],
            2,
            "built from --cpu-family, --cpu-model and --cpu-stepping",
        ),
    ] {
        let mut a = vec!["--insecure", "--num-cpus", "2"];
        // VMSA files and a CPU signature exclude each other before the guest is known.
        if extra[0] != "--vmsa-cpu0" {
            a.extend(MILAN);
        }
        a.extend(extra.iter().copied());
        let (got, out, err) = common::run(g.args(&a));
        assert_eq!(got, code, "{extra:?}: {out}{err}");
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn host_values_need_insecure_and_are_named() {
    let Some(g) = Guest::start(0x30000) else {
        return;
    };
    // The monitor is local (a unix socket): --insecure is needed anyway; the
    // vCPU count from QEMU then is named as the host's.
    let mut a = vec!["--insecure"];
    a.extend(MILAN);
    let (code, out, err) = common::run(g.args(&a));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("taken from the host (--insecure), not from you: vCPU count"),
        "{err}"
    );
    let want = oracle_digest("2").unwrap();
    assert!(out.contains(&want), "{out}");
    // Without a vCPU signature there is nothing to build the VMSAs from.
    let (code, _, err) = common::run(g.args(&["--insecure", "--num-cpus", "2"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--cpu-family"), "{err}");
    // Not local without --insecure.
    let mut a = vec!["--num-cpus", "2"];
    a.extend(MILAN);
    let (code, _, err) = common::run(g.args(&a));
    assert_eq!(code, 3, "{err}");
}

#[test]
fn a_debug_policy_is_refused_unless_allowed_and_the_owners_policy_is_compared() {
    let Some(g) = Guest::start(0xB0000) else {
        return;
    };
    let mut a = vec!["--insecure", "--num-cpus", "2"];
    a.extend(MILAN);
    let (code, _, err) = common::run(g.args(&a));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("DEBUG"), "{err}");
    a.push("--allow-debug");
    let (code, out, err) = common::run(g.args(&a));
    assert_eq!(code, 0, "{out}{err}");
    a.extend(["--policy", "0x30000"]);
    let (code, _, err) = common::run(g.args(&a));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("0x30000"), "{err}");
}

#[test]
fn the_guests_report_is_validated_against_the_launch_and_the_policy() {
    let Some(g) = Guest::start(0x30000) else {
        return;
    };
    let chain = g.p("chain");
    std::fs::create_dir_all(&chain).unwrap();
    if snp_sim::chain("milan", &chain, &[]).is_none() {
        return;
    }
    let c = |n: &str| chain.join(n).display().to_string();
    let report = |name: &str, extra: &[&str]| -> PathBuf {
        let out = g.p(name);
        let mut args = vec![
            "--signer",
            "vcek",
            "--version",
            "3",
            "--report-data",
            NONCE,
            "--ovmf",
            OVMF,
            "--vcpu-sig",
            "0xa00f11",
            "--guest-features",
            "0x1",
        ];
        args.extend_from_slice(extra);
        snp_sim::report(&chain, &out, &args).unwrap();
        out
    };
    let (vcek, ark, ask) = (c("vcek.der"), c("ark.pem"), c("ask.pem"));
    let check_with = |r: &Path, pins: &[&str]| {
        let mut a = vec![
            "--insecure",
            "--num-cpus",
            "2",
            "--report",
            r.to_str().unwrap(),
            "--vcek",
            &vcek,
            "--trust-anchors",
            &ark,
            "--trust-anchors",
            &ask,
            "--report-data",
            NONCE,
        ];
        a.extend(MILAN);
        a.extend(pins);
        common::run(g.args(&a))
    };
    let check = |r: &Path| check_with(r, &[]);
    let good = report("good.bin", &["--vcpus", "2", "--policy", "0x30000"]);
    let (code, out, err) = check(&good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS  expect.measurement"), "{out}");
    assert!(out.contains("PASS  domain.policy"), "{out}");
    assert!(
        out.contains("OK: the guest's attestation report matches the domain"),
        "{out}"
    );
    // Launched with 4 vCPUs: the measurement fails and the explainer names it.
    let four = report("four.bin", &["--vcpus", "4", "--policy", "0x30000"]);
    let (code, out, err) = check(&four);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAIL  expect.measurement"), "{out}");
    // In the main command's own options.
    assert!(out.contains("4 vCPUs instead of 2: --num-cpus 4"), "{out}");
    // Launched with another policy than QEMU reports.
    let other = report("policy.bin", &["--vcpus", "2", "--policy", "0x70000"]);
    let (code, out, err) = check(&other);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAIL  domain.policy"), "{out}");
    assert!(err.contains("domain.policy"), "{err}");

    // What the host declares, pinned by the owner: QEMU's monitor gives no host data or ID
    // block to check before launch, so the report is held to the owner's values. The
    // simulator's report carries HOST_DATA 0x33 x 32 and no ID block (FAMILY_ID, IMAGE_ID and
    // GUEST_SVN zero).
    let declared = report(
        "declared.bin",
        &[
            "--vcpus",
            "2",
            "--policy",
            "0x30000",
            "--host-data",
            &"33".repeat(32),
        ],
    );
    let (code, out, err) = check(&declared);
    assert_eq!(code, 0, "{out}{err}");
    for unpinned in ["host_data", "family_id", "image_id", "guest_svn"] {
        assert!(out.contains(&format!("skip  expect.{unpinned}")), "{out}");
    }
    let h33 = "33".repeat(32);
    let z16 = "00".repeat(16);
    let pinned = [
        "--host-data",
        &h33,
        "--family-id",
        &z16,
        "--image-id",
        &z16,
        "--min-guest-svn",
        "0",
    ];
    let (code, out, err) = check_with(&declared, &pinned);
    assert_eq!(code, 0, "{out}{err}");
    for name in ["host_data", "family_id", "image_id", "guest_svn"] {
        assert!(out.contains(&format!("PASS  expect.{name}")), "{out}");
    }
    let h34 = "34".repeat(32);
    let f1 = "f1".repeat(16);
    let mut ran = 0;
    for (pin, fails) in [
        (["--host-data", h34.as_str()], "expect.host_data"),
        (["--family-id", f1.as_str()], "expect.family_id"),
        (["--image-id", f1.as_str()], "expect.image_id"),
        (["--min-guest-svn", "1"], "expect.guest_svn"),
    ] {
        let (code, out, err) = check_with(&declared, &pin);
        assert_eq!(code, 1, "{pin:?}: {out}{err}");
        assert!(out.contains(&format!("FAIL  {fails}")), "{pin:?}: {out}");
        ran += 1;
    }
    assert_eq!(ran, 4);
}

fn validate_schema(doc: &str) {
    if !common::schema::have_jsonschema() {
        common::skip_or_fail(
            "snp_qmp",
            "python3-jsonschema is needed to validate the schema",
        );
        return;
    }
    common::schema::validate_json("result.schema.json", doc)
        .unwrap_or_else(|e| panic!("{e}\n{doc}"));
}

/// The host must not choose the guest's generation (issue: an SEV-ES check answered "this guest
/// is SNP" exited 0). A monitor on another host (its own network namespace, no --insecure) that
/// answers `query-sev` for an SNP guest is refused for owners whose options are SEV's or SEV-ES's,
/// or who named one with --generation: exit 10, both sides named, nothing computed. The same
/// monitor, reached the same way, passes an owner who expects SEV-SNP, so each refusal is the
/// generation's and not the harness's.
#[test]
fn a_remote_monitor_claiming_snp_cannot_answer_an_sev_or_sev_es_check() {
    let Some(g) = Guest::start(0x30000) else {
        return;
    };
    let remote = match netns::RemoteMonitor::start(&g.sock) {
        Ok(r) => r,
        Err(why) => {
            common::skip_or_fail("snp_qmp remote monitor", &why);
            return;
        }
    };
    let tk = g.p("tk.bin");
    std::fs::write(&tk, [0x5Au8; 32]).unwrap();
    let tk = tk.display().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["--qmp", remote.endpoint.as_str(), "--firmware", OVMF];
        v.extend(extra);
        v.iter().map(|s| s.to_string()).collect()
    };
    let sev_es: Vec<&str> = [&["--tk", tk.as_str(), "--num-cpus", "2"][..], &MILAN[..]].concat();
    let named_es: Vec<&str> = [&["--generation", "sev-es"][..], &sev_es[..]].concat();
    let cases: [(&[&str], &str, &[&str]); 4] = [
        (&sev_es, "an SEV or SEV-ES guest (--tk)", &["sev", "sev-es"]),
        (
            &["--tk", &tk],
            "an SEV or SEV-ES guest (--tk)",
            &["sev", "sev-es"],
        ),
        (
            &named_es,
            "an SEV-ES guest (--generation sev-es)",
            &["sev-es"],
        ),
        (
            &["--generation", "sev", "--tk", &tk],
            "an SEV guest (--generation sev)",
            &["sev"],
        ),
    ];
    let mut refused = 0;
    for (extra, expectation, generations) in cases {
        let (code, out, err) = common::run(args(extra));
        assert_eq!(code, 10, "{extra:?}: {out}{err}");
        assert!(
            err.contains(
                "the host says the guest is SEV-SNP (QEMU's query-sev answers sev-type 'sev-snp')"
            ),
            "{err}"
        );
        assert!(
            err.contains(&format!("but you expect {expectation}")),
            "{err}"
        );
        assert!(
            !out.contains("Expected launch digest") && !out.contains("OK"),
            "{out}"
        );
        let (code, out, _) = common::run([args(extra), vec!["--json".into()]].concat());
        assert_eq!(code, 10);
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(doc["verdict"], "error", "{doc}");
        assert_eq!(doc["exit_code"], 10);
        assert_eq!(doc["guest"], "sev-snp");
        assert_eq!(
            doc["generation"]["expected"],
            serde_json::json!(generations)
        );
        assert!(
            doc.get("snp").is_none() && doc.get("computed").is_none(),
            "{doc}"
        );
        validate_schema(&out);
        refused += 1;
    }
    assert_eq!(refused, 4);

    // No option says which generation: the host's answer alone does not decide.
    let mut bare = vec!["--num-cpus", "2"];
    bare.extend(MILAN);
    let (code, out, err) = common::run(args(&bare));
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("Give --generation sev-snp"), "{err}");
    assert!(!out.contains("Expected launch digest"), "{out}");

    // The owner who expects SEV-SNP: the same remote monitor, still no --insecure.
    let Some(want) = oracle_digest("2") else {
        return;
    };
    let snp: Vec<&str> = [&["--generation", "sev-snp"][..], &bare[..]].concat();
    let (code, out, err) = common::run(args(&snp));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("Expected launch digest: {want}")),
        "{out}"
    );
    assert!(
        out.contains("NOT ATTESTED: launch configuration accepted"),
        "{out}"
    );
    let (code, out, _) = common::run([args(&snp), vec!["--json".into()]].concat());
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["verdict"], "not-attested", "{doc}");
    assert_eq!(doc["generation"]["because"], "--generation sev-snp");
    validate_schema(&out);
}

/// `--report EVIDENCE --nonce --inject-secret --sealed-out`: the main command
/// seals the secrets to the guest's key once the report matched the launch
/// and the owner's expectations, and writes nothing when it did not.
#[test]
fn secrets_are_sealed_to_the_guests_key_once_everything_matched() {
    use std::os::unix::fs::PermissionsExt;
    let Some(g) = Guest::start(0x30000) else {
        return;
    };
    let chain = g.p("chain");
    std::fs::create_dir_all(&chain).unwrap();
    if snp_sim::chain("milan", &chain, &[]).is_none() {
        return;
    }
    let keys = g.p("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out_dir = g.p("out");
    std::fs::create_dir(&out_dir).unwrap();
    let s = |p: &Path| p.display().to_string();
    let nonce = "42".repeat(32);
    let evidence = |name: &str, vcpus: &str| -> PathBuf {
        let (code, rd, err) = common::run([
            "snp-request",
            "--nonce",
            &nonce,
            "--key-dir",
            &s(&keys),
            "--print-report-data",
        ]);
        assert_eq!(code, 0, "{err}");
        let report = g.p(&format!("{name}.bin"));
        let args = [
            "--report-data",
            rd.trim(),
            "--ovmf",
            OVMF,
            "--vcpu-sig",
            "0xa00f11",
            "--guest-features",
            "0x1",
            "--vcpus",
            vcpus,
            "--policy",
            "0x30000",
        ];
        snp_sim::report(&chain, &report, &args).unwrap();
        let ev = g.p(name);
        let (code, _, err) = common::run([
            "snp-request",
            "--nonce",
            &nonce,
            "--key-dir",
            &s(&keys),
            "--report",
            &s(&report),
            "--evidence-out",
            &s(&ev),
        ]);
        assert_eq!(code, 0, "{err}");
        ev
    };
    let secret = g.p("disk.key");
    std::fs::write(&secret, "passphrase").unwrap();
    let sealed = out_dir.join("sealed.bin");
    let run = |ev: &Path| {
        let (vcek, ark, ask) = (
            s(&chain.join("vcek.der")),
            s(&chain.join("ark.pem")),
            s(&chain.join("ask.pem")),
        );
        let spec = format!("luks-key:{}", s(&secret));
        let (ev, out) = (s(ev), s(&sealed));
        let mut a = vec![
            "--insecure",
            "--num-cpus",
            "2",
            "--report",
            &ev,
            "--nonce",
            &nonce,
            "--inject-secret",
            &spec,
            "--sealed-out",
            &out,
            "--vcek",
            &vcek,
            "--trust-anchors",
            &ark,
            "--trust-anchors",
            &ask,
        ];
        a.extend(MILAN);
        common::run(g.args(&a))
    };
    // Launched with 4 vCPUs, not the 2 expected: nothing sealed, nothing left.
    let four = evidence("four.json", "4");
    let (code, out, err) = run(&four);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "{out}");
    // The launch expected: sealed, and the guest opens it.
    let good = evidence("good.json", "2");
    let (code, out, err) = run(&good);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS  expect.key_binding"), "{out}");
    assert!(out.contains("SEALED: "), "{out}");
    let (code, opened, err) = common::run([
        "snp-open",
        &s(&sealed),
        "--key-dir",
        &s(&keys),
        "--secret",
        "luks-key",
    ]);
    assert_eq!((code, opened.as_str()), (0, "passphrase"), "{err}");
    // --sealed-out without --nonce is a usage error before any work.
    let (code, _, err) = common::run(g.args(&[
        "--insecure",
        "--report",
        &s(&good),
        "--inject-secret",
        &format!("luks-key:{}", s(&secret)),
        "--sealed-out",
        &s(&out_dir.join("x")),
    ]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--nonce"), "{err}");
}
