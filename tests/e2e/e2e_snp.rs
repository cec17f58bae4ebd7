//! SEV-SNP domains end to end on a REAL libvirtd 11.3 and QEMU 10.0 (TCG) whose emulator
//! simulates the SNP firmware (tests/e2e/harness/, tests/sim/qemu_sev_wrapper.py), run with
//! `SEV_E2E_LIBVIRT=11` (scripts/test.sh's second run). libvirt 9.0 has no SNP: there every
//! test here says so and returns (`e2e::snp_pass`).
//!
//! Independent values only: launch digests come from PyPI sev-snp-measure (over what the
//! wrapper recorded QEMU got), ID blocks are made by the tool's `snp-id-block` from those
//! digests (never from the tool's own `snp-digest`), their acceptance is decided by the
//! wrapper's simulated SNP_LAUNCH_FINISH (python3-cryptography), and guest reports are signed
//! by the test chain of tests/sim/snp_sp.py.
//!
//! First the harness: libvirt sees SNP, starts an SNP domain paused with the launch
//! parameters QEMU 10 gets, refuses what it refuses for SNP, and the simulated firmware
//! accepts the right ID block at `virsh resume` and refuses a wrong one. Then the tool with
//! `--domain`: the right domain passes (defined, paused, running; locally with --insecure and
//! over qemu+ssh://), ID blocks made for another launch are caught before start exactly where
//! the firmware refuses them, and a guest report validates against the domain.
//!
//! One daemon serves every test of this binary; few domains are started (a TCG guest that
//! runs eats CPU until destroyed).

use crate::common::schema;
use crate::common::snp_sim;
use crate::common::MILAN;
use crate::harness as e2e;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine as _;
use e2e::{Cpu, DomainSpec, Host, Validator};

const POLICY: u64 = 0x30000;
/// REPORT_DATA of the guest reports: the owner's nonce.
const NONCE: &str = "736e702d6532652d6e6f6e63652d66726f6d2d7468652d6f776e6572000000000000000000000000000000000000000000000000000000000000000000000000";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_else(|e| panic!("base64 {s:?}: {e}"))
}

/// The shared daemon, if this pass runs SNP domains ([`e2e::snp_pass`]) and it can.
pub(crate) fn host(test: &str) -> Option<&'static Host> {
    if !e2e::snp_pass(test) {
        return None;
    }
    let h = Host::shared()?;
    if let Some(why) = h.snp_missing() {
        e2e::skip_or_fail(test, why);
        return None;
    }
    Some(h)
}

/// A domain of the shared daemon, destroyed and undefined when dropped.
struct Dom {
    host: &'static Host,
    name: String,
}

impl Drop for Dom {
    fn drop(&mut self) {
        self.host.destroy(&self.name);
    }
}

fn define(h: &'static Host, spec: &DomainSpec) -> Dom {
    let name = h
        .define(&spec.xml())
        .unwrap_or_else(|e| panic!("define {}: {e}", spec.name));
    Dom { host: h, name }
}

fn start_paused(dom: &Dom) {
    let t0 = Instant::now();
    let (rc, _, err) = dom.host.virsh(&["start", "--paused", &dom.name]);
    assert_eq!(rc, 0, "start {}: {err}\n{}", dom.name, dom.host.tail_logs());
    assert_eq!(dom.host.state(&dom.name), "paused");
    eprintln!("started {} paused in {:.2?}", dom.name, t0.elapsed());
}

/// The domain's QEMU log once it holds `needle`: QEMU's stderr reaches the log file through
/// virtlogd, shortly after the monitor closed.
fn log_with(h: &Host, name: &str, needle: &str) -> String {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = h.domain_log(name);
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------------ the owner's side

/// The owner's keys and the guest's expected values, made once per test binary.
struct Owner {
    id_key: PathBuf,
    author_key: PathBuf,
    host_data: [u8; 32],
    /// sev-snp-measure's digest of the right launch (1 vCPU EPYC-Milan, features 0x1, the
    /// harness's firmware, kernel, initrd and command line), hex.
    ld: String,
    right: IdBlock,
}

#[derive(Clone, Debug)]
struct IdBlock {
    block: String,
    auth: String,
    /// SHA-384 of the ID / author public key as the report carries them, hex.
    id_key_digest: String,
    author_key_digest: String,
}

fn owner(h: &Host) -> &'static Owner {
    static OWNER: OnceLock<Owner> = OnceLock::new();
    OWNER.get_or_init(|| {
        let key = |name: &str| {
            let out = Command::new("openssl")
                .args(["ecparam", "-name", "secp384r1", "-genkey", "-noout"])
                .output()
                .expect("run openssl");
            assert!(out.status.success(), "openssl ecparam");
            h.file(name, &out.stdout)
        };
        let (id_key, author_key) = (key("id-key.pem"), key("author-key.pem"));
        let mut host_data = [0u8; 32];
        host_data.copy_from_slice(&random(32));
        let ld = measure(h, 1, "0x1", e2e::CMDLINE);
        let right = id_block_with(h, &id_key, &author_key, &ld, POLICY);
        Owner {
            id_key,
            author_key,
            host_data,
            ld,
            right,
        }
    })
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut v))
        .expect("/dev/urandom");
    v
}

/// sev-snp-measure's launch digest (hex) for the harness's SNP firmware, kernel and initrd
/// with `vcpus` EPYC-Milan vCPUs, guest features `features` and command line `cmdline`.
fn measure(h: &Host, vcpus: u32, features: &str, cmdline: &str) -> String {
    let fw = h.firmware_snp().display().to_string();
    let (k, i) = (
        h.kernel().display().to_string(),
        h.initrd().display().to_string(),
    );
    snp_sim::measure(&[
        "--ovmf",
        &fw,
        "--vcpus",
        &vcpus.to_string(),
        "--vcpu-type",
        "EPYC-Milan",
        "--guest-features",
        features,
        "--kernel",
        &k,
        "--initrd",
        &i,
        "--append",
        cmdline,
    ])
    .expect("sev-snp-measure")
}

/// sev-snp-measure's digest of what the wrapper recorded QEMU really got for `launch`.
fn measure_recorded(launch: &serde_json::Value) -> String {
    let s = |k: &str| {
        launch[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k}: {launch}"))
    };
    assert_eq!(
        launch["cpu"].as_str().map(|c| c.split(',').next().unwrap()),
        Some("EPYC-Milan"),
        "{launch}"
    );
    assert_eq!(launch["kernel_hashes"], true, "{launch}");
    snp_sim::measure(&[
        "--ovmf",
        s("firmware"),
        "--vcpus",
        &launch["smp"].as_u64().unwrap().to_string(),
        "--vcpu-type",
        "EPYC-Milan",
        "--guest-features",
        &format!("{:#x}", launch["sev_features"].as_u64().unwrap()),
        "--kernel",
        s("kernel"),
        "--initrd",
        s("initrd"),
        "--append",
        s("cmdline"),
    ])
    .expect("sev-snp-measure")
}

/// The tool's `snp-id-block` for digest `ld` (hex) and `policy`, signed by the owner's keys.
fn id_block(h: &Host, ld: &str, policy: u64) -> IdBlock {
    let o = owner(h);
    id_block_with(h, &o.id_key, &o.author_key, ld, policy)
}

fn id_block_with(h: &Host, id_key: &Path, author_key: &Path, ld: &str, policy: u64) -> IdBlock {
    let _ = h;
    let out = e2e::run_timeout(
        Command::new(e2e::our_validator_path())
            .arg("snp-id-block")
            .args(["--digest", ld, "--policy", &format!("{policy:#x}")])
            .arg("--id-key")
            .arg(id_key)
            .arg("--author-key")
            .arg(author_key),
        e2e::CMD_TIMEOUT,
    );
    let (rc, out, err) = e2e::split(&out);
    assert_eq!(rc, 0, "snp-id-block: {err}");
    let between = |open: &str, close: &str| {
        out.split(open)
            .nth(1)
            .and_then(|r| r.split(close).next())
            .unwrap_or_else(|| panic!("no {open} in {out}"))
            .trim()
            .to_string()
    };
    // snp-id-block prints the key digests in hex.
    let line = |k: &str| between(&format!("{k}: "), "\n");
    IdBlock {
        block: between("<idBlock>", "</idBlock>"),
        auth: between("<idAuth>", "</idAuth>"),
        id_key_digest: line("id_key_digest"),
        author_key_digest: line("author_key_digest"),
    }
}

/// An SNP domain (1 vCPU unless changed) with the owner's hostData and, if given, an ID
/// block signed by the ID and author keys (authorKey='yes').
fn snp_spec(h: &Host, prefix: &str, idb: Option<&IdBlock>) -> DomainSpec {
    let mut spec = h.spec_snp(&h.unique_name(prefix), 1);
    let snp = spec.snp.as_mut().unwrap();
    snp.host_data = Some(b64(&owner(h).host_data));
    if let Some(idb) = idb {
        snp.id_block = Some(idb.block.clone());
        snp.id_auth = Some(idb.auth.clone());
        snp.author_key = Some(true);
    }
    spec
}

// ------------------------------------------------------------------------ running the tool

/// How the tool reaches the daemon.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    /// The daemon's own socket, on the hypervisor host: needs --insecure.
    Local,
    /// qemu+ssh:// from elsewhere (another hostname and network namespace).
    Ssh,
}

/// The owner's command line for `dom`: connection, firmware, kernel, initrd, command line,
/// vCPU count and signature (EPYC-Milan 25/1/1), policy and trusted keys, then `extra`.
fn owner_args(h: &Host, via: Via, dom: &str, extra: &[&str]) -> Option<Vec<OsString>> {
    let o = owner(h);
    let uri = match via {
        Via::Local => h.uri(),
        Via::Ssh => h.ssh_uri()?,
    };
    let mut v: Vec<OsString> = vec![
        "--connect".into(),
        uri.into(),
        "--domain".into(),
        dom.into(),
    ];
    if via == Via::Local {
        v.push("--insecure".into());
    }
    v.extend(
        [
            "--firmware".into(),
            h.firmware_snp().into(),
            "--kernel".into(),
            h.kernel().into(),
            "--initrd".into(),
            h.initrd().into(),
            "--cmdline".into(),
            e2e::CMDLINE.into(),
            "--num-cpus".into(),
            "1".into(),
            "--cpu-family".into(),
            "25".into(),
            "--cpu-model".into(),
            "1".into(),
            "--cpu-stepping".into(),
            "1".into(),
            "--policy".into(),
            format!("{POLICY:#x}").into(),
            "--trusted-id-key-digest".into(),
            o.right.id_key_digest.clone().into(),
            "--trusted-author-key-digest".into(),
            o.right.author_key_digest.clone().into(),
        ]
        .into_iter()
        .map(|s: OsString| s),
    );
    v.extend(extra.iter().map(OsString::from));
    Some(v)
}

/// Runs the tool: on the hypervisor host for a local URI, elsewhere for qemu+ssh://.
fn run(h: &Host, argv: &[OsString]) -> (i32, String, String) {
    h.validate(Validator::Ours, argv)
}

#[track_caller]
fn expect(h: &Host, argv: &[OsString], code: i32) -> String {
    let (out, err) = h.expect_validate(Validator::Ours, argv, code);
    format!("{out}{err}")
}

// ============================================================================ the harness

#[test]
fn harness_domcapabilities_show_sev_snp() {
    let Some(h) = host("harness_domcapabilities_show_sev_snp") else {
        return;
    };
    let (rc, out, err) = h.virsh(&["domcapabilities", "--virttype", "qemu"]);
    assert_eq!(rc, 0, "{err}");
    let ls = out
        .split("<launchSecurity supported='yes'>")
        .nth(1)
        .and_then(|r| r.split("</launchSecurity>").next())
        .unwrap_or_else(|| panic!("no supported launchSecurity: {out}"));
    assert!(ls.contains("<value>sev</value>"), "{ls}");
    assert!(ls.contains("<value>sev-snp</value>"), "{ls}");
}

/// The right domain: libvirt starts it paused and hands QEMU the launch parameters as
/// snp-libvirt.md says, refuses what it refuses for SNP, and the simulated SNP_LAUNCH_FINISH
/// accepts its ID block at `virsh resume`.
#[test]
fn harness_snp_domain_starts_paused_and_finishes_its_launch() {
    let Some(h) = host("harness_snp_domain_starts_paused_and_finishes_its_launch") else {
        return;
    };
    let o = owner(h);
    let mut spec = snp_spec(h, "snp-harness", Some(&o.right));
    let gosvw = random(16);
    spec.snp.as_mut().unwrap().guest_visible_workarounds = Some(b64(&gosvw));
    spec.snp.as_mut().unwrap().vcek = Some(false);
    let dom = define(h, &spec);
    start_paused(&dom);

    // What QEMU got.
    let argv = h.emulator_argv(&dom.name).expect("emulator argv logged");
    assert!(argv.contains("confidential-guest-support=lsec0"), "{argv}");
    assert!(
        argv.contains(&format!("-bios {}", h.firmware_snp().display())),
        "{argv}"
    );
    let obj: serde_json::Value = argv
        .split(" -object ")
        .skip(1)
        .filter_map(|a| {
            let end = a.find("} ").map(|i| i + 1).unwrap_or(a.len());
            serde_json::from_str::<serde_json::Value>(&a[..end]).ok()
        })
        .find(|v| v["qom-type"] == "sev-snp-guest")
        .unwrap_or_else(|| panic!("no sev-snp-guest object: {argv}"));
    assert_eq!(obj["id"], "lsec0");
    assert_eq!(obj["policy"], 196608, "policy in decimal: {obj}");
    assert_eq!(obj["kernel-hashes"], true);
    assert_eq!(obj["author-key-enabled"], true);
    assert_eq!(obj["vcek-disabled"], true, "vcek='no': {obj}");
    assert_eq!(obj["id-block"], o.right.block.as_str());
    assert_eq!(obj["id-auth"], o.right.auth.as_str());
    assert_eq!(obj["host-data"], b64(&o.host_data).as_str());
    assert_eq!(obj["guest-visible-workarounds"], b64(&gosvw).as_str());
    assert!(argv.contains(&format!("-kernel {}", h.kernel().display())));

    // What the wrapper recorded, and its digest is sev-snp-measure's for the right launch.
    let launch = h.launches(&dom.name).pop().expect("launch recorded");
    assert_eq!(launch["sev_type"], "sev-snp", "{launch}");
    assert_eq!(launch["policy"], 0x30000);
    assert_eq!(launch["smp"], 1);
    assert_eq!(launch["signature"], 0xA00F11);
    assert_eq!(launch["host_data"], b64(&o.host_data).as_str());
    assert_eq!(measure_recorded(&launch), o.ld);
    assert_eq!(launch["ld_hex"].as_str(), Some(o.ld.as_str()));

    // libvirt gives no launch security info for SNP, and refuses LAUNCH_SECRET itself.
    let (rc, _, err) = h.virsh(&["domlaunchsecinfo", &dom.name]);
    assert_ne!(rc, 0);
    assert!(
        err.contains("query-sev-launch-measure")
            && err.contains("SEV launch measurement is not available"),
        "{err}"
    );
    let hdr = h.file("hdr.b64", b"AAAA");
    let sec = h.file("sec.b64", b"AAAA");
    let (rc, _, err) = h.virsh(&[
        "domsetlaunchsecstate",
        &dom.name,
        "--secrethdr",
        &hdr.to_string_lossy(),
        "--secret",
        &sec.to_string_lossy(),
    ]);
    assert_ne!(rc, 0);
    assert!(
        err.contains("only supported in SEV-enabled domains"),
        "{err}"
    );
    // QMP through libvirt: query-sev as QEMU 10.0 answers for an SNP guest.
    let qmp = |cmd: &str| -> serde_json::Value {
        let (rc, out, err) = h.virsh(&[
            "qemu-monitor-command",
            &dom.name,
            &format!("{{\"execute\":\"{cmd}\"}}"),
        ]);
        if rc != 0 {
            return serde_json::json!({ "virsh_error": err });
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let sev = qmp("query-sev");
    assert_eq!(
        sev["return"],
        serde_json::json!({"enabled": true, "api-major": 1, "api-minor": 55, "build-id": 24,
                           "state": "launch-update", "sev-type": "sev-snp",
                           "snp-policy": 196608}),
        "{sev}"
    );

    // SNP_LAUNCH_FINISH at resume: accepted.
    h.resume(&dom.name)
        .unwrap_or_else(|e| panic!("{e}\n{}", h.tail_logs()));
    assert_eq!(h.state(&dom.name), "running");
    let fin = h.launch_finishes(&dom.name);
    assert_eq!(fin.len(), 1, "{fin:?}");
    assert_eq!(fin[0]["ok"], true, "{}", fin[0]);
    assert_eq!(fin[0]["checks"]["id_block_signature"], true);
    assert_eq!(fin[0]["checks"]["id_key_signature"], true);
    assert_eq!(
        fin[0]["checks"]["id_key_digest_hex"].as_str(),
        Some(o.right.id_key_digest.as_str())
    );
    assert_eq!(
        fin[0]["checks"]["author_key_digest_hex"].as_str(),
        Some(o.right.author_key_digest.as_str())
    );
    assert_eq!(qmp("query-sev")["return"]["state"], "running");
}

/// An ID block made for 2 vCPUs on a 1-vCPU domain: the domain starts paused (the firmware
/// checks the ID block only at LAUNCH_FINISH), and `virsh resume` fails with QEMU 10's
/// "Bad measurement", the domain gone.
#[test]
fn harness_launch_finish_refuses_an_id_block_for_two_vcpus() {
    let Some(h) = host("harness_launch_finish_refuses_an_id_block_for_two_vcpus") else {
        return;
    };
    let ld2 = measure(h, 2, "0x1", e2e::CMDLINE);
    assert_ne!(ld2, owner(h).ld);
    let dom = define(
        h,
        &snp_spec(h, "snp-2vcpu", Some(&id_block(h, &ld2, POLICY))),
    );
    start_paused(&dom);
    assert!(h.resume(&dom.name).is_err(), "resume must fail");
    let fin = h.launch_finishes(&dom.name);
    assert_eq!(fin.len(), 1, "{fin:?}");
    assert_eq!(fin[0]["fw_error"], 11, "{}", fin[0]);
    assert_eq!(
        fin[0]["checks"]["id_block_ld_hex"].as_str(),
        Some(ld2.as_str())
    );
    assert_eq!(fin[0]["ld_hex"].as_str(), Some(owner(h).ld.as_str()));
    let want = "SNP_LAUNCH_FINISH ret=-5 fw_error=11 'Bad measurement'";
    let log = log_with(h, &dom.name, want);
    assert!(log.contains(want), "{log}");
    // libvirt notices QEMU's end through the monitor's EOF, shortly after resume returns.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while h.state(&dom.name) != "shut off" && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(h.state(&dom.name), "shut off");
}

/// `auth` (base64 ID auth) with one byte of the signature at `offset` changed: 0x40 is in
/// ID_BLOCK_SIG (the ID key's over the ID block), 0x680 in ID_KEY_SIG (the author key's over
/// the ID key).
fn corrupt_signature(auth: &str, offset: usize) -> String {
    let mut a = unb64(auth);
    a[offset] ^= 0x01;
    b64(&a)
}

/// The ID auth signatures are checked as the firmware does: the right LD with either
/// signature broken is refused at LAUNCH_FINISH with "Bad signature" (fw_error 10).
#[test]
fn harness_launch_finish_checks_the_id_auth_signatures() {
    let Some(h) = host("harness_launch_finish_checks_the_id_auth_signatures") else {
        return;
    };
    let o = owner(h);
    for (what, offset, check) in [
        ("idsig", 0x40, "id_block_signature"),
        ("authorsig", 0x680, "id_key_signature"),
    ] {
        let mut spec = snp_spec(h, &format!("snp-{what}"), Some(&o.right));
        spec.snp.as_mut().unwrap().id_auth = Some(corrupt_signature(&o.right.auth, offset));
        let dom = define(h, &spec);
        start_paused(&dom);
        assert!(h.resume(&dom.name).is_err(), "{what}: resume must fail");
        let fin = h.launch_finishes(&dom.name);
        assert_eq!(fin.len(), 1, "{what}: {fin:?}");
        assert_eq!(fin[0]["fw_error"], 10, "{what}: {}", fin[0]);
        assert_eq!(fin[0]["checks"][check], false, "{what}: {}", fin[0]);
        let want = "SNP_LAUNCH_FINISH ret=-5 fw_error=10 'Bad signature'";
        let log = log_with(h, &dom.name, want);
        assert!(log.contains(want), "{what}: {log}");
    }
}

// ============================================================================ the tool

/// The names of the checks the tool's text output marks FAIL.
fn failed_checks(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim_start().strip_prefix("FAIL "))
        .filter_map(|r| r.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The tool's `--json` document for `dom` (local, --insecure), checked against
/// schema/result.schema.json by python3-jsonschema, and its exit code.
fn json(h: &Host, dom: &str, code: i32) -> serde_json::Value {
    let argv = owner_args(h, Via::Local, dom, &["--json"]).unwrap();
    let (rc, out, err) = run(h, &argv);
    assert_eq!(rc, code, "{out}{err}");
    if schema::have_jsonschema() {
        schema::validate_json("result.schema.json", &out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    } else {
        e2e::skip_or_fail("--json schema check", "python3-jsonschema is missing");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(doc["exit_code"], code);
    doc
}

/// Runs the owner's command line for `dom` on each transport (the ssh one only when the
/// harness can run sshd) and checks the exit code; returns the outputs.
fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn on_both(h: &Host, dom: &str, extra: &[&str], code: i32) -> Vec<(Via, String)> {
    let mut outs = Vec::new();
    for via in [Via::Local, Via::Ssh] {
        if let Some(argv) = owner_args(h, via, dom, extra) {
            outs.push((via, expect(h, &argv, code)));
        }
    }
    outs
}

/// The right domain passes before it ever started, paused, and running, locally (with
/// --insecure) and over qemu+ssh://; then a report from the guest, signed by the test chain
/// with MEASUREMENT = sev-snp-measure's digest of what QEMU got, validates against the domain,
/// and reports with other HOST_DATA or from another launch fail, named.
#[test]
fn ours_passes_the_right_domain_and_validates_its_report() {
    let Some(h) = host("ours_passes_the_right_domain_and_validates_its_report") else {
        return;
    };
    let o = owner(h);
    let dom = define(h, &snp_spec(h, "snp-right", Some(&o.right)));
    let ok = |state: &str| {
        for (via, out) in on_both(h, &dom.name, &[], 0) {
            assert!(
                out.contains("OK: the ID block matches the launch"),
                "{state}, {via:?}: {out}"
            );
        }
    };
    ok("defined, never started");
    // Only an active domain is asked for launch security info, which libvirt cannot give for
    // SNP (it asks QEMU for the SEV measurement first): expected, said once with --debug.
    let debug_line = "libvirt gives no launch security info for SEV-SNP domains";
    let argv = owner_args(h, Via::Local, &dom.name, &["--debug"]).unwrap();
    assert!(!expect(h, &argv, 0).contains(debug_line));
    start_paused(&dom);
    ok("paused");
    let out = expect(h, &argv, 0);
    assert_eq!(out.matches(debug_line).count(), 1, "{out}");
    assert!(
        out.contains("SEV launch measurement is not available"),
        "{out}"
    );
    let doc = json(h, &dom.name, 0);
    assert_eq!(doc["guest"], "sev-snp", "{doc:#}");
    assert_eq!(doc["snp"]["state"], "paused");
    assert_eq!(
        doc["snp"]["expected_measurement"].as_str(),
        Some(o.ld.as_str())
    );
    assert_eq!(
        doc["snp"]["domain"]["host_data"].as_str(),
        Some(hex::encode(o.host_data).as_str())
    );
    assert_eq!(
        doc["snp"]["domain"]["id_key_digest"].as_str(),
        Some(o.right.id_key_digest.as_str())
    );
    h.resume(&dom.name)
        .unwrap_or_else(|e| panic!("{e}\n{}", h.tail_logs()));
    assert_eq!(h.state(&dom.name), "running");
    let fin = h.launch_finishes(&dom.name);
    assert_eq!(fin.last().map(|f| &f["ok"]), Some(&serde_json::json!(true)));
    ok("running");

    // The guest's report.
    let tmp = tempfile::tempdir().unwrap();
    let chain = tmp.path().join("chain");
    std::fs::create_dir(&chain).unwrap();
    if snp_sim::chain("milan", &chain, &[]).is_none() {
        return;
    }
    let launch = h.launches(&dom.name).pop().expect("launch recorded");
    let measurement = measure_recorded(&launch);
    assert_eq!(
        measurement, o.ld,
        "the wrapper launched what the domain says"
    );
    let report = |name: &str, host_data: &str, measurement: &str| -> PathBuf {
        let out = tmp.path().join(name);
        snp_sim::report(
            &chain,
            &out,
            &[
                "--measurement",
                measurement,
                "--host-data",
                host_data,
                "--id-key-digest",
                &o.right.id_key_digest,
                "--author-key-digest",
                &o.right.author_key_digest,
                "--author-key-en",
                "--policy",
                "0x30000",
                "--report-data",
                NONCE,
            ],
        )
        .expect("report");
        out
    };
    let (vcek, ark, ask) = (
        chain.join("vcek.der"),
        chain.join("ark.pem"),
        chain.join("ask.pem"),
    );
    let with_report = |r: &Path| -> Vec<String> {
        [
            "--report",
            &r.to_string_lossy(),
            "--vcek",
            &vcek.to_string_lossy(),
            "--trust-anchors",
            &ark.to_string_lossy(),
            "--trust-anchors",
            &ask.to_string_lossy(),
            "--report-data",
            NONCE,
        ]
        .map(String::from)
        .to_vec()
    };
    let host_data = hex::encode(o.host_data);

    let right = report("right.bin", &host_data, &measurement);
    for (via, out) in on_both(h, &dom.name, &refs(&with_report(&right)), 0) {
        assert!(out.contains("report matches the domain"), "{via:?}: {out}");
    }

    let other_host_data = report("hostdata.bin", &hex::encode([0x5a; 32]), &measurement);
    let argv = owner_args(
        h,
        Via::Local,
        &dom.name,
        &refs(&with_report(&other_host_data)),
    );
    let out = expect(h, &argv.unwrap(), 1);
    let failed = failed_checks(&out);
    assert!(
        failed.len() == 1 && failed[0].ends_with(".host_data"),
        "{failed:?}: {out}"
    );

    let ld2 = measure(h, 2, "0x1", e2e::CMDLINE);
    let other_launch = report("launch.bin", &host_data, &ld2);
    let argv = owner_args(h, Via::Local, &dom.name, &refs(&with_report(&other_launch)));
    let out = expect(h, &argv.unwrap(), 1);
    let failed = failed_checks(&out);
    assert!(
        failed.len() == 1 && failed[0].ends_with(".measurement"),
        "{failed:?}: {out}"
    );
    assert!(
        out.contains("2 vCPUs"),
        "the explainer names the change: {out}"
    );
}

/// ID blocks made for another launch, each caught before the domain ever starts (exit 1, the
/// change named), and refused by the simulated SNP_LAUNCH_FINISH when the domain is started
/// anyway: the tool's verdict and the firmware's agree in every case.
#[test]
fn ours_catches_wrong_id_blocks_before_start_as_launch_finish_refuses_them() {
    let Some(h) = host("ours_catches_wrong_id_blocks_before_start_as_launch_finish_refuses_them")
    else {
        return;
    };
    let o = owner(h);
    let cases: [(&str, String, u64, &[&str], u64); 4] = [
        (
            "vcpus",
            measure(h, 2, "0x1", e2e::CMDLINE),
            POLICY,
            &[
                "id-block-ld",
                "the ID block was made for 2 vCPUs; the domain has 1",
            ],
            11,
        ),
        (
            "features",
            measure(h, 1, "0x21", e2e::CMDLINE),
            POLICY,
            &[
                "id-block-ld",
                "the ID block was made for guest features 0x21",
            ],
            11,
        ),
        (
            "cmdline",
            measure(h, 1, "0x1", &format!("{}\n", e2e::CMDLINE)),
            POLICY,
            &["id-block-ld", "command line that ends with a newline"],
            11,
        ),
        (
            "policy",
            o.ld.clone(),
            0x20000,
            &["id-block-policy", "0x20000"],
            7,
        ),
    ];
    for (i, (what, ld, policy, words, fw_error)) in cases.iter().enumerate() {
        let idb = id_block(h, ld, *policy);
        let dom = define(h, &snp_spec(h, &format!("snp-{what}"), Some(&idb)));
        // Both transports, alternately.
        let via = if i % 2 == 0 { Via::Local } else { Via::Ssh };
        let argv = owner_args(h, via, &dom.name, &[])
            .or_else(|| owner_args(h, Via::Local, &dom.name, &[]));
        let out = expect(h, &argv.unwrap(), 1);
        // words: the one check that fails, then what its message must say.
        assert_eq!(failed_checks(&out), [words[0]], "{what}: {out}");
        for w in &words[1..] {
            assert!(out.contains(w), "{what}: no {w:?} in {out}");
        }
        if i == 0 {
            let doc = json(h, &dom.name, 1);
            let failed: Vec<&str> = doc["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["result"] == "failed")
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            assert_eq!(failed, ["id-block-ld"], "{doc:#}");
            let change = &doc["snp"]["id_block_explanation"]["changes"][0];
            assert_eq!(change["kind"], "vcpus", "{doc:#}");
            assert_eq!(change["option"], "--vcpus 2", "{doc:#}");
        }
        // The firmware's verdict on the same domain.
        start_paused(&dom);
        assert!(h.resume(&dom.name).is_err(), "{what}: resume must fail");
        let fin = h.launch_finishes(&dom.name);
        assert_eq!(fin.len(), 1, "{what}: {fin:?}");
        assert_eq!(
            fin[0]["ok"], false,
            "{what}: the tool refused, the firmware accepted"
        );
        assert_eq!(fin[0]["fw_error"], *fw_error, "{what}: {}", fin[0]);
        let want = format!("SNP_LAUNCH_FINISH ret=-5 fw_error={fw_error} ");
        let log = log_with(h, &dom.name, &want);
        assert!(log.contains(&want), "{what}: {log}");
    }
}

/// Broken ID auth signatures (the same as in harness_launch_finish_checks_the_id_auth_signatures,
/// where the firmware refuses them): caught before start, the check named.
#[test]
fn ours_catches_broken_id_auth_signatures_before_start() {
    let Some(h) = host("ours_catches_broken_id_auth_signatures_before_start") else {
        return;
    };
    let o = owner(h);
    for (what, offset, check) in [
        ("idsig", 0x40, "id-block-signature"),
        ("authorsig", 0x680, "id-key-signature"),
    ] {
        let mut spec = snp_spec(h, &format!("snp-tool-{what}"), Some(&o.right));
        spec.snp.as_mut().unwrap().id_auth = Some(corrupt_signature(&o.right.auth, offset));
        let dom = define(h, &spec);
        let out = expect(h, &owner_args(h, Via::Local, &dom.name, &[]).unwrap(), 1);
        // (A trusted author key that does not sign the ID key fails author-key-trusted too.)
        assert_eq!(
            failed_checks(&out).first().map(String::as_str),
            Some(check),
            "{what}: {out}"
        );
    }
}

/// QEMU's SNP needs ROM firmware (-bios): a pflash loader is an XML finding.
#[test]
fn ours_refuses_a_pflash_snp_domain() {
    let Some(h) = host("ours_refuses_a_pflash_snp_domain") else {
        return;
    };
    let mut spec = snp_spec(h, "snp-pflash", Some(&owner(h).right));
    spec.loader_type = "pflash".into();
    let dom = define(h, &spec);
    let argv = owner_args(h, Via::Local, &dom.name, &[]).unwrap();
    let out = expect(h, &argv, 4);
    assert!(out.contains("pflash"), "{out}");
}

/// `<cpu mode='maximum'>` gives the guest the host's CPU signature (from the
/// capabilities: this machine's CPU, never the owner's EPYC-Milan here): the
/// owner's VMSAs would not be what the guest runs.
#[test]
fn ours_refuses_a_host_cpu_the_owners_vmsas_do_not_describe() {
    let Some(h) = host("ours_refuses_a_host_cpu_the_owners_vmsas_do_not_describe") else {
        return;
    };
    let (rc, caps, err) = h.virsh(&["capabilities"]);
    assert_eq!(rc, 0, "{err}");
    let sig = caps
        .lines()
        .find(|l| l.contains("<signature "))
        .unwrap_or_else(|| panic!("no host CPU signature in the capabilities: {caps}"));
    assert!(
        !sig.contains("family='25' model='1' stepping='1'"),
        "the host is an EPYC-Milan; this test needs another CPU: {sig}"
    );
    let mut spec = snp_spec(h, "snp-maxcpu", Some(&owner(h).right));
    spec.cpu = Cpu::Maximum;
    let dom = define(h, &spec);
    let argv = owner_args(h, Via::Local, &dom.name, &[]).unwrap();
    let out = expect(h, &argv, 4);
    assert!(
        out.contains("<cpu mode='maximum'> gives the guest the host CPU signature"),
        "{out}"
    );
}

/// Secrets are not injected into SNP guests: a usage error that says what to do instead.
#[test]
fn ours_refuses_to_inject_a_secret_into_an_snp_domain() {
    let Some(h) = host("ours_refuses_to_inject_a_secret_into_an_snp_domain") else {
        return;
    };
    let dom = define(h, &snp_spec(h, "snp-inject", Some(&owner(h).right)));
    let secret = h.file("secret.txt", b"MY-LUKS-PASSPHRASE");
    let spec = format!("luks-key:{}", secret.display());
    let argv = owner_args(h, Via::Local, &dom.name, &["--inject-secret", &spec]).unwrap();
    let out = expect(h, &argv, 2);
    assert!(
        out.contains("SEV-SNP") && out.contains("no LAUNCH_SECRET"),
        "{out}"
    );
    assert!(out.contains("give --report"), "{out}");
}

/// The host must not choose the guest's generation: an owner who runs an SEV-ES check (the
/// TK, vCPU count and signature) over qemu+ssh:// without --insecure, against a domain the host
/// made SEV-SNP, is refused with exit 10 before anything is computed; with --json the verdict
/// is an error, never 'validated'. The same domain, reached the same way, passes the owner
/// who expects SNP, so the refusal is the generation's.
#[test]
fn ours_refuses_an_snp_domain_to_an_sev_es_owner() {
    let Some(h) = host("ours_refuses_an_snp_domain_to_an_sev_es_owner") else {
        return;
    };
    let dom = define(h, &snp_spec(h, "snp-downgrade", Some(&owner(h).right)));
    let Some(uri) = h.ssh_uri() else { return };
    let tk = h.file("owner-tk.bin", &[0x5A; 32]);
    let mut sev_es: Vec<OsString> = vec![
        "--connect".into(),
        uri.into(),
        "--domain".into(),
        dom.name.clone().into(),
        "--tk".into(),
        tk.into(),
        "--firmware".into(),
        h.firmware_snp().into(),
    ];
    sev_es.extend(["--num-cpus", "1"].iter().chain(&MILAN).map(OsString::from));
    let out = expect(h, &sev_es, 10);
    assert!(
        out.contains("the host says the guest is SEV-SNP (its domain XML has <launchSecurity type='sev-snp'>)")
            && out.contains("but you expect an SEV or SEV-ES guest (--tk)"),
        "{out}"
    );
    assert!(!out.contains("Expected launch digest"), "{out}");
    sev_es.push("--json".into());
    let (rc, doc, _) = run(h, &sev_es);
    assert_eq!(rc, 10);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["verdict"], "error", "{doc}");
    assert_eq!(
        doc["generation"]["expected"],
        serde_json::json!(["sev", "sev-es"])
    );
    assert!(doc.get("snp").is_none(), "{doc}");
    let argv = owner_args(h, Via::Ssh, &dom.name, &[]).unwrap();
    let out = expect(h, &argv, 0);
    assert!(
        out.contains("NOT ATTESTED: launch configuration accepted"),
        "{out}"
    );
}
