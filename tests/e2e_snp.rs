//! SEV-SNP domains end to end on a REAL libvirtd 11.3 and QEMU 10.0 (TCG) whose emulator
//! simulates the SNP firmware (tests/common/e2e.rs, tests/sim/qemu_sev_wrapper.py), run with
//! `SEV_E2E_LIBVIRT=11` (scripts/test.sh's second run). libvirt 9.0 has no SNP: there every
//! test here prints a SKIPPED line and returns.
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

#[path = "common/e2e.rs"]
mod e2e;
#[path = "common/snp_sim.rs"]
mod snp_sim;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine as _;
use e2e::{DomainSpec, Host};

const POLICY: u64 = 0x30000;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_else(|e| panic!("base64 {s:?}: {e}"))
}

/// The shared daemon, if it can run SNP domains; else a SKIPPED line (libvirt 9.0 has no SNP,
/// so that one never fails, not even in CI: CI runs these with SEV_E2E_LIBVIRT=11).
fn host(test: &str) -> Option<&'static Host> {
    if e2e::Libvirt::from_env() == e2e::Libvirt::V9 {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {test}: libvirt 9.0 has no SEV-SNP; these run with SEV_E2E_LIBVIRT=11 \
             (scripts/test.sh)"
        );
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
    let line = |k: &str| hex::encode(unb64(&between(&format!("{k}: "), "\n")));
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
    let log = h.domain_log(&dom.name);
    assert!(
        log.contains("SNP_LAUNCH_FINISH ret=-5 fw_error=11 'Bad measurement'"),
        "{log}"
    );
    assert_eq!(h.state(&dom.name), "shut off");
}
