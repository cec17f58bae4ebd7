//! End to end through a REAL libvirtd and REAL QEMU (TCG) whose emulator simulates the AMD SEV
//! firmware on QMP (tests/e2e/harness/, tests/sim/qemu_sev_wrapper.py).
//!
//! First the harness is proven with libvirt's own Python `virt-qemu-sev-validate` (Debian's
//! /usr/bin/virt-qemu-sev-validate) as the client: it must validate the simulated SEV and
//! SEV-ES launches, inject a secret the simulated firmware decrypts back exactly, and reject
//! wrong owner inputs. Then the same cases run against our tool with `--domain`.
//!
//! Clients given a local URI run "on the hypervisor host" (in the daemon's UTS namespace, with
//! its hostname); `qemu+ssh://` clients run in the test's namespace, whose hostname differs.
//!
//! One daemon serves every test of this binary (about 2 s to start and probe). Set
//! `SEV_E2E_KEEP=1` to keep its temporary directory (logs, records) for inspection. Missing
//! prerequisites (libvirt-daemon-driver-qemu, qemu-system-x86, ovmf, python3-cryptography; root
//! and openssh for the remote cases) skip with a visible SKIPPED line, or fail when CI is set.

use crate::harness as e2e;

use std::ffi::{OsStr, OsString};
use std::path::Path;

use e2e::{Cpu, DomainSpec, Host};

use crate::common::MILAN;

const LUKS_GUID: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";
const OTHER_GUID: &str = "83c83f7f-1356-4975-8b7e-d3a0b54312c6";

/// A started domain, destroyed and undefined when dropped (even if the test panics), so that
/// resumed TCG guests do not eat the CPU of the tests that follow.
struct Dom {
    host: &'static Host,
    name: String,
}

impl Drop for Dom {
    fn drop(&mut self) {
        let t0 = std::time::Instant::now();
        self.host.destroy(&self.name);
        eprintln!("destroyed {} in {:.2?}", self.name, t0.elapsed());
    }
}

fn host() -> Option<&'static Host> {
    Host::shared()
}

fn start(host: &'static Host, spec: &DomainSpec) -> Dom {
    let t0 = std::time::Instant::now();
    let name = host
        .define_and_start_paused(&spec.xml())
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", spec.name));
    let dom = Dom { host, name };
    eprintln!("started {} paused in {:.2?}", dom.name, t0.elapsed());
    assert_eq!(
        host.state(&dom.name),
        "paused",
        "domain {} not paused",
        dom.name
    );
    dom
}

/// A validator's command line: connection, domain and the owner's TIK and TEK
/// ([`Argv::to`]), then what the case gives.
struct Argv(Vec<OsString>);

impl Argv {
    fn to(host: &Host, uri: &str, dom: &str) -> Argv {
        Argv(Vec::new())
            .opt("--connect", uri)
            .opt("--domain", dom)
            .opt("--tik", host.tik())
            .opt("--tek", host.tek())
    }

    fn arg(mut self, a: impl AsRef<OsStr>) -> Argv {
        self.0.push(a.as_ref().to_os_string());
        self
    }

    fn args<S: AsRef<OsStr>>(self, args: &[S]) -> Argv {
        args.iter().fold(self, |v, a| v.arg(a))
    }

    fn opt(self, name: &str, value: impl AsRef<OsStr>) -> Argv {
        self.arg(name).arg(value)
    }

    fn insecure(self) -> Argv {
        self.arg("--insecure")
    }

    fn fw(self, firmware: &Path) -> Argv {
        self.opt(FW, firmware)
    }

    /// The harness's direct boot: the firmware with a hash area, kernel, initrd, command line.
    fn kernel_hashes(self, h: &Host) -> Argv {
        self.fw(h.firmware_hashes())
            .opt("--kernel", h.kernel())
            .opt("--initrd", h.initrd())
            .opt("--cmdline", e2e::CMDLINE)
    }

    /// `--num-cpus N` EPYC-Milan vCPUs.
    fn milan(self, vcpus: &str) -> Argv {
        self.opt("--num-cpus", vcpus).args(&MILAN)
    }
}

impl std::ops::Deref for Argv {
    type Target = [OsString];
    fn deref(&self) -> &[OsString] {
        &self.0
    }
}

use e2e::Validator as Tool;

/// Runs a validator: on the hypervisor host for local URIs, elsewhere for `qemu+ssh://`.
fn run(tool: Tool, host: &Host, argv: &[OsString]) -> (i32, String, String) {
    host.validate(tool, argv)
}

#[track_caller]
fn expect(tool: Tool, host: &Host, argv: &[OsString], code: i32) -> (String, String) {
    host.expect_validate(tool, argv, code)
}

fn python_ok() -> bool {
    if e2e::python_validator_available() {
        true
    } else {
        e2e::skip_or_fail(
            "python validator",
            "libvirt-clients-qemu / python3-libvirt missing",
        );
        false
    }
}

const FW: &str = "--firmware";

// ============================================================================ the harness

#[test]
fn harness_daemon_sees_simulated_sev() {
    let Some(h) = host() else { return };
    // The daemon is the one SEV_E2E_LIBVIRT asked for (9: the host's, 11: the chroot's).
    assert!(
        h.daemon_version()
            .starts_with(&format!("{}.", h.libvirt().daemon_major())),
        "{:?} asked, daemon {} ({}) answered",
        h.libvirt(),
        h.daemon_version(),
        h.hypervisor_version()
    );
    let (rc, out, err) = h.virsh(&["domcapabilities", "--virttype", "qemu"]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("<sev supported='yes'>"), "{out}");
    assert!(
        out.contains("<cbitpos>51</cbitpos>")
            && out.contains("<reducedPhysBits>1</reducedPhysBits>")
    );
    // virNodeGetSEVInfo: the default emulator, i.e. the wrapper first on the daemon's PATH.
    let (rc, out, err) = h.virsh(&["nodesevinfo"]);
    assert_eq!(rc, 0, "nodesevinfo: {err}");
    assert!(
        out.contains("pdh") && out.contains("cert-chain") && out.contains("cbitpos"),
        "{out}"
    );
    // Host CPU signature (the Python tool builds SEV-ES VMSAs from it with --insecure).
    let (rc, caps, _) = h.virsh(&["capabilities"]);
    assert_eq!(rc, 0);
    assert!(
        caps.contains("<signature family="),
        "no host CPU signature in capabilities"
    );
    if let Some(name) = h.daemon_hostname() {
        assert_eq!(h.virsh(&["hostname"]).1.trim(), name);
    }
}

#[test]
fn harness_launch_security_info_and_firmware_semantics() {
    let Some(h) = host() else { return };
    let dom = start(h, &h.spec_sev_firmware(&h.unique_name("harness")));
    let info = h.launch_sec_info(&dom.name).expect("domlaunchsecinfo");
    let get = |k: &str| info.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
    assert_eq!(get("sev-api-major").as_deref(), Some("1"));
    assert_eq!(get("sev-api-minor").as_deref(), Some("55"));
    assert_eq!(get("sev-build-id").as_deref(), Some("21"));
    assert_eq!(get("sev-policy").as_deref(), Some("3"));
    let launch = h.launches(&dom.name).pop().expect("launch recorded");
    assert_eq!(
        get("sev-measurement").as_deref(),
        launch["measurement_b64"].as_str()
    );
    assert_eq!(
        launch["firmware"].as_str(),
        Some(h.firmware().to_str().unwrap())
    );

    // A header whose MAC does not verify is refused by the simulated firmware.
    // 52 zero bytes: the right size, a MAC that cannot verify.
    let hdr = h.file("bad-hdr.b64", format!("{}==", "A".repeat(70)).as_bytes());
    let sec = h.file(
        "bad-sec.b64",
        b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    let (rc, _, err) = h.virsh(&[
        "domsetlaunchsecstate",
        &dom.name,
        "--secrethdr",
        hdr.to_str().unwrap(),
        "--secret",
        sec.to_str().unwrap(),
    ]);
    assert_ne!(rc, 0);
    assert!(err.contains("fw_error=11 'Bad measurement'"), "{err}");
    let inj = h.injections(&dom.name);
    assert_eq!(inj.len(), 1);
    assert!(!inj[0].accepted);
    assert_eq!(h.state(&dom.name), "paused");

    // After `cont` the firmware has left LAUNCH_SECRET: even paused again, injection fails
    // the way QEMU fails it.
    h.resume(&dom.name).unwrap();
    h.virsh(&["suspend", &dom.name]);
    assert_eq!(h.state(&dom.name), "paused");
    let (rc, _, err) = h.virsh(&[
        "domsetlaunchsecstate",
        &dom.name,
        "--secrethdr",
        hdr.to_str().unwrap(),
        "--secret",
        sec.to_str().unwrap(),
    ]);
    assert_ne!(rc, 0);
    assert!(
        err.contains("SEV: Not in correct state. (LSECRET) 3"),
        "{err}"
    );
}

/// A pflash loader (`-blockdev` + `-machine pflash0=`): the wrapper measures the file behind it.
#[test]
fn harness_pflash_firmware() {
    let Some(h) = host() else { return };
    let mut spec = h.spec_sev_firmware(&h.unique_name("pflash"));
    spec.loader_type = "pflash".into();
    let dom = start(h, &spec);
    let launch = h.launches(&dom.name).pop().expect("launch recorded");
    assert_eq!(
        launch["firmware"].as_str(),
        Some(h.firmware().to_str().unwrap()),
        "{launch}"
    );
    if python_ok() {
        expect(
            Tool::Python,
            h,
            &Argv::to(h, &h.uri(), &dom.name).insecure().fw(h.firmware()),
            0,
        );
    }
}

#[test]
fn harness_kernel_hashes_need_a_hash_area() {
    // QEMU refuses kernel-hashes=on when the firmware has no usable hash area; so does the
    // simulation (Debian's OVMF.fd has the entry, zeroed).
    let Some(h) = host() else { return };
    let mut spec = h.spec_sev_kernel_hashes(&h.unique_name("nohasharea"));
    spec.firmware = h.firmware().to_path_buf();
    let r = h.define_and_start_paused(&spec.xml());
    let _guard = Dom {
        host: h,
        name: spec.name.clone(),
    };
    let err = r.expect_err("start must fail");
    assert!(err.contains("hashes table area is invalid"), "{err}");
}

// ============================================================================ shared cases

fn case_sev_firmware(tool: Tool) {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-fw"))),
    );
    let (out, _) = expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom.name).insecure().fw(h.firmware()),
        0,
    );
    assert!(out.contains("OK: Looks good to me"), "{out}");
    assert_eq!(
        h.state(&dom.name),
        "paused",
        "validation alone must not resume"
    );
    // The same firmware from the domain XML (insecure, local).
    expect(tool, h, &Argv::to(h, &h.uri(), &dom.name).insecure(), 0);
    // --tk instead of --tik/--tek.
    let tk = Argv(Vec::new())
        .opt("--connect", h.uri())
        .opt("--domain", &dom.name)
        .opt("--tk", h.tk())
        .insecure();
    expect(tool, h, &tk, 0);
}

fn case_sev_kernel_hashes(tool: Tool) {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_kernel_hashes(&h.unique_name(&format!("{tool:?}-kh"))),
    );
    let kernel_args = |fw: &Path, k: &Path, cmdline: &str| {
        Argv::to(h, &h.uri(), &dom.name)
            .insecure()
            .fw(fw)
            .opt("--kernel", k)
            .opt("--initrd", h.initrd())
            .opt("--cmdline", cmdline)
    };
    let (out, _) = expect(
        tool,
        h,
        &kernel_args(h.firmware_hashes(), h.kernel(), e2e::CMDLINE),
        0,
    );
    assert!(out.contains("OK: Looks good to me"));
    // Everything from the domain XML (insecure, local).
    expect(tool, h, &Argv::to(h, &h.uri(), &dom.name).insecure(), 0);
    // A different kernel, command line or firmware than the domain really launched with.
    let other_kernel = h.file("vmlinuz-other", b"not the kernel the domain booted");
    expect(
        tool,
        h,
        &kernel_args(h.firmware_hashes(), &other_kernel, e2e::CMDLINE),
        1,
    );
    expect(
        tool,
        h,
        &kernel_args(
            h.firmware_hashes(),
            h.kernel(),
            "console=ttyS0 init=/bin/sh",
        ),
        1,
    );
    let other_fw = h.file(
        "OVMF-other.fd",
        &e2e::patch_hash_area(&std::fs::read(h.firmware()).unwrap(), 0x80FC00, 0x800),
    );
    expect(
        tool,
        h,
        &kernel_args(&other_fw, h.kernel(), e2e::CMDLINE),
        1,
    );
}

fn case_sev_es(tool: Tool) {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_es(
            &h.unique_name(&format!("{tool:?}-es")),
            2,
            Cpu::Custom("EPYC-Milan".into()),
        ),
    );
    let launch = h.launches(&dom.name).pop().unwrap();
    assert_eq!(launch["signature"].as_u64(), Some(0xA00F11), "{launch}");
    assert_eq!(launch["smp"].as_u64(), Some(2));
    let owner = |vcpus| {
        Argv::to(h, &h.uri(), &dom.name)
            .insecure()
            .fw(h.firmware())
            .milan(vcpus)
    };
    let (out, _) = expect(tool, h, &owner("2"), 0);
    assert!(out.contains("OK: Looks good to me"));
    // Wrong vCPU count: the VMSA count is part of the measurement (the Python tool finds a
    // mismatch: 1; ours refuses earlier because the domain XML starts another count: 4).
    let (rc, out, err) = run(tool, h, &owner("3"));
    match tool {
        Tool::Python => assert_eq!(rc, 1, "{out}{err}"),
        Tool::Ours => assert_eq!(rc, 4, "our XML checks catch it first: {out}{err}"),
    }
    // Wrong CPU signature (EPYC-Rome 23/49/0 instead of Milan): a mismatch for the Python
    // tool (1); ours sees that the domain's <cpu> model has another signature (4).
    let (rc, out, err) = run(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom.name)
            .insecure()
            .fw(h.firmware())
            .opt("--num-cpus", "2")
            .opt("--cpu-family", "23")
            .opt("--cpu-model", "49")
            .opt("--cpu-stepping", "0"),
    );
    match tool {
        Tool::Python => assert_eq!(rc, 1, "{out}{err}"),
        Tool::Ours => assert_eq!(rc, 4, "our XML checks catch it first: {out}{err}"),
    }
}

/// SEV-ES with `<cpu mode='maximum'/>`: the vCPU signature is the host's, which libvirt reports
/// in its capabilities, so with --insecure everything can come from the domain and the host.
fn case_sev_es_from_domain(tool: Tool) {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_es(&h.unique_name(&format!("{tool:?}-esmax")), 3, Cpu::Maximum),
    );
    let (out, _) = expect(tool, h, &Argv::to(h, &h.uri(), &dom.name).insecure(), 0);
    assert!(out.contains("OK: Looks good to me"));
}

fn case_inject(tool: Tool) {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-inject"))),
    );
    let secret = b"correct horse battery staple\n";
    let file = h.file("luks-key", secret);
    let spec = format!("luks-key:{}", file.display());
    let (out, _) = expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom.name)
            .insecure()
            .fw(h.firmware())
            .opt("--inject-secret", spec),
        0,
    );
    assert!(out.contains("OK: Injected 1 secrets"), "{out}");
    let got = h.injected_secrets(&dom.name);
    assert_eq!(
        got,
        vec![(LUKS_GUID.to_string(), secret.to_vec())],
        "{:?}",
        h.injections(&dom.name)
    );
    assert_eq!(
        h.state(&dom.name),
        "running",
        "the domain must be resumed after injection"
    );
}

fn case_inject_two_secrets_kernel_hashes(tool: Tool) {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_kernel_hashes(&h.unique_name(&format!("{tool:?}-inject2"))),
    );
    let s1 = h.file("s1", b"first secret");
    let s2 = h.file("s2", &[0u8, 1, 2, 3, 255, 254, 10, 13]);
    let a1 = format!("luks-key:{}", s1.display());
    let a2 = format!("{OTHER_GUID}:{}", s2.display());
    expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom.name)
            .insecure()
            .kernel_hashes(h)
            .opt("--inject-secret", a1)
            .opt("--inject-secret", a2),
        0,
    );
    let mut got = h.injected_secrets(&dom.name);
    got.sort();
    let mut want = vec![
        (LUKS_GUID.to_string(), b"first secret".to_vec()),
        (OTHER_GUID.to_string(), vec![0u8, 1, 2, 3, 255, 254, 10, 13]),
    ];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(h.state(&dom.name), "running");
}

fn case_wrong_firmware(tool: Tool) {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-wrongfw"))),
    );
    // The owner expects the patched image; the domain launched with the plain one.
    let (_, err) = expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom.name)
            .insecure()
            .fw(h.firmware_hashes()),
        1,
    );
    assert!(err.contains("ERROR"), "{err}");
    // No secret may be injected when validation fails, and the domain stays paused.
    let f = h.file("never", b"never injected");
    let spec = format!("luks-key:{}", f.display());
    expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom.name)
            .insecure()
            .fw(h.firmware_hashes())
            .opt("--inject-secret", spec),
        1,
    );
    assert!(h.injections(&dom.name).is_empty());
    assert_eq!(h.state(&dom.name), "paused");
}

/// A compromised host: the domain XML and libvirt look right, but what really launched (and
/// what the firmware measured) differs. Only the measurement can tell.
fn case_tampered_host(tool: Tool) {
    let Some(h) = host() else { return };
    let spec = h.spec_sev_kernel_hashes(&h.unique_name(&format!("{tool:?}-tamper")));
    h.tamper(
        &spec.name,
        serde_json::json!({"cmdline": "console=ttyS0 init=/bin/evil"}),
    );
    let dom = start(h, &spec);
    let owner = Argv::to(h, &h.uri(), &dom.name).insecure().kernel_hashes(h);
    expect(tool, h, &owner, 1);
    // Taking everything from the (honest-looking) XML does not help.
    expect(tool, h, &Argv::to(h, &h.uri(), &dom.name).insecure(), 1);

    // SEV-ES: the host starts one more vCPU than the XML says.
    let spec = h.spec_sev_es(
        &h.unique_name(&format!("{tool:?}-tamperes")),
        2,
        Cpu::Custom("EPYC-Milan".into()),
    );
    h.tamper(&spec.name, serde_json::json!({"smp": 3}));
    let es = start(h, &spec);
    expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &es.name)
            .insecure()
            .fw(h.firmware())
            .milan("2"),
        1,
    );
    assert!(h.injections(&es.name).is_empty());
}

/// Offline: the owner validates a measurement copied from `virsh domlaunchsecinfo` and writes
/// the secret packet to files; the host operator injects them with `virsh
/// domsetlaunchsecstate --set-address` (QMP `gpa`). The simulated firmware decrypts the same
/// secret at that address.
fn case_offline_then_virsh(tool: Tool) {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-offline"))),
    );
    let info = h.launch_sec_info(&dom.name).expect("domlaunchsecinfo");
    let get = |k: &str| {
        info.iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {info:?}"))
    };
    let secret = h.file("offline-secret", b"offline passphrase \x00\x01\xff");
    let spec = format!("luks-key:{}", secret.display());
    let hdr = h.dir().join("files").join(format!("{}.hdr", dom.name));
    let payload = h.dir().join("files").join(format!("{}.payload", dom.name));
    // What the host reported, as domlaunchsecinfo names it, then the owner's files.
    let reported = [
        "measurement",
        "api-major",
        "api-minor",
        "build-id",
        "policy",
    ];
    let argv = reported
        .iter()
        .fold(Argv(Vec::new()), |a, k| {
            a.opt(&format!("--{k}"), get(&format!("sev-{k}")))
        })
        .fw(h.firmware())
        .opt("--tik", h.tik())
        .opt("--tek", h.tek())
        .opt("--inject-secret", spec)
        .opt("--secret-header", &hdr)
        .opt("--secret-payload", &payload);
    expect(tool, h, &argv, 0);
    let (rc, _, err) = h.virsh(&[
        "domsetlaunchsecstate",
        &dom.name,
        "--secrethdr",
        hdr.to_str().unwrap(),
        "--secret",
        payload.to_str().unwrap(),
        "--set-address",
        "8450048", // 0x80F000
    ]);
    assert_eq!(rc, 0, "domsetlaunchsecstate: {err}");
    let inj = h.injections(&dom.name);
    assert_eq!(inj.len(), 1);
    assert!(
        inj[0].accepted && inj[0].gpa_given && inj[0].gpa == 0x80f000,
        "{:?}",
        inj[0].raw
    );
    assert_eq!(
        inj[0].entries,
        vec![(
            LUKS_GUID.to_string(),
            b"offline passphrase \x00\x01\xff".to_vec()
        )]
    );
    // libvirt does not resume: the operator does.
    assert_eq!(h.state(&dom.name), "paused");
}

fn case_misconfigured(tool: Tool) {
    let Some(h) = host() else { return };
    // No <launchSecurity> at all.
    let mut spec = h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-nosev")));
    spec.launch_security = false;
    let dom = start(h, &spec);
    expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom.name).insecure().fw(h.firmware()),
        4,
    );
    // SEV without the owner's <dhCert>/<session>: nothing the owner could have measured.
    let mut spec = h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-nosession")));
    spec.dh_session = false;
    let dom2 = start(h, &spec);
    expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom2.name)
            .insecure()
            .fw(h.firmware()),
        4,
    );
    // kernelHashes='yes' without a kernel (libvirt and QEMU accept it; nothing is measured).
    let mut spec = h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-khnokernel")));
    spec.kernel_hashes = Some(true);
    spec.firmware = h.firmware_hashes().to_path_buf();
    let dom3 = start(h, &spec);
    expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom3.name)
            .insecure()
            .fw(h.firmware_hashes()),
        4,
    );
}

fn case_inactive(tool: Tool) {
    let Some(h) = host() else { return };
    let name = h
        .define(&h.domain_xml_sev_firmware(&h.unique_name(&format!("{tool:?}-off"))))
        .unwrap();
    let dom = Dom { host: h, name };
    assert_eq!(h.state(&dom.name), "shut off");
    expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom.name).insecure().fw(h.firmware()),
        5,
    );
}

/// A client on the hypervisor host (same hostname as the daemon, URI without a host part) is
/// refused without --insecure.
fn case_local_needs_insecure(tool: Tool) {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-local"))),
    );
    expect(
        tool,
        h,
        &Argv::to(h, &h.uri(), &dom.name).fw(h.firmware()),
        3,
    );
}

// ---------------------------------------------------------------------------- remote (ssh)

fn case_remote_secure(tool: Tool) {
    let Some(h) = host() else { return };
    let Some(uri) = h.ssh_uri() else { return };
    assert_eq!(
        e2e::split(&e2e::run_timeout(
            std::process::Command::new(e2e::VIRSH).args(["-q", "-c", &uri, "hostname"]),
            e2e::CMD_TIMEOUT
        ))
        .1
        .trim(),
        e2e::DAEMON_HOSTNAME,
        "the daemon must look like another host"
    );
    // SEV firmware only, no --insecure: the owner gives the firmware.
    let dom = start(
        h,
        &h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-rfw"))),
    );
    let (out, _) = expect(tool, h, &Argv::to(h, &uri, &dom.name).fw(h.firmware()), 0);
    assert!(out.contains("OK: Looks good to me"));
    // SEV-ES, no --insecure: vCPU count and signature from the owner.
    let es = start(
        h,
        &h.spec_sev_es(
            &h.unique_name(&format!("{tool:?}-res")),
            2,
            Cpu::Custom("EPYC-Milan".into()),
        ),
    );
    expect(
        tool,
        h,
        &Argv::to(h, &uri, &es.name).fw(h.firmware()).milan("2"),
        0,
    );
    // Kernel hashes, no --insecure.
    let kh = start(
        h,
        &h.spec_sev_kernel_hashes(&h.unique_name(&format!("{tool:?}-rkh"))),
    );
    expect(tool, h, &Argv::to(h, &uri, &kh.name).kernel_hashes(h), 0);
    // Inject over ssh.
    let secret = h.file("remote-secret", b"remote luks passphrase");
    let spec = format!("luks-key:{}", secret.display());
    let (out, _) = expect(
        tool,
        h,
        &Argv::to(h, &uri, &dom.name)
            .fw(h.firmware())
            .opt("--inject-secret", spec),
        0,
    );
    assert!(out.contains("OK: Injected 1 secrets"));
    assert_eq!(
        h.injected_secrets(&dom.name),
        vec![(LUKS_GUID.to_string(), b"remote luks passphrase".to_vec())]
    );
    assert_eq!(h.state(&dom.name), "running");
    // Now running: refused without --insecure.
    expect(tool, h, &Argv::to(h, &uri, &dom.name).fw(h.firmware()), 5);
    // A resumed domain is refused too.
    h.resume(&es.name).unwrap();
    expect(
        tool,
        h,
        &Argv::to(h, &uri, &es.name).fw(h.firmware()).milan("2"),
        5,
    );
}

fn case_remote_insecure_defaults(tool: Tool) {
    // Remote + secure: the firmware path must come from the owner (the XML's path is on the
    // other host), the vCPU count/signature too.
    let Some(h) = host() else { return };
    let Some(uri) = h.ssh_uri() else { return };
    let dom = start(
        h,
        &h.spec_sev_firmware(&h.unique_name(&format!("{tool:?}-rnofw"))),
    );
    let (rc, out, err) = run(tool, h, &Argv::to(h, &uri, &dom.name));
    assert!(rc == 2 || rc == 3, "exit {rc}: {out} {err}");
    let es = start(
        h,
        &h.spec_sev_es(
            &h.unique_name(&format!("{tool:?}-resnocpu")),
            2,
            Cpu::Custom("EPYC-Milan".into()),
        ),
    );
    let (rc, out, err) = run(tool, h, &Argv::to(h, &uri, &es.name).fw(h.firmware()));
    assert!(rc == 2 || rc == 3, "exit {rc}: {out} {err}");
}

// ============================================================================ Python tool

macro_rules! py_tests {
    ($($name:ident => $case:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            if !python_ok() { return }
            $case(Tool::Python);
        }
    )*};
}

py_tests! {
    python_validates_sev_firmware_only => case_sev_firmware,
    python_validates_sev_kernel_hashes => case_sev_kernel_hashes,
    python_validates_sev_es_epyc_milan => case_sev_es,
    python_validates_sev_es_from_domain_and_host => case_sev_es_from_domain,
    python_injects_secret => case_inject,
    python_injects_two_secrets_kernel_hashes => case_inject_two_secrets_kernel_hashes,
    python_rejects_wrong_firmware => case_wrong_firmware,
    python_rejects_tampered_host => case_tampered_host,
    python_offline_packet_injected_by_virsh => case_offline_then_virsh,
    python_rejects_misconfigured_domain => case_misconfigured,
    python_refuses_inactive_domain => case_inactive,
    python_refuses_local_connection_without_insecure => case_local_needs_insecure,
    python_remote_over_ssh_without_insecure => case_remote_secure,
    python_remote_needs_owner_inputs => case_remote_insecure_defaults,
}

/// Injects a 24-byte secret with `tool` into a fresh SEV domain: its table (20-byte header,
/// 20-byte entry header, 24 bytes = 64) is already a multiple of 16. What the simulated
/// firmware received.
fn inject_aligned(tool: Tool, h: &'static Host, name: &str) -> Vec<e2e::Injection> {
    let dom = start(h, &h.spec_sev_firmware(&h.unique_name(name)));
    let file = h.file("aligned", &[b'x'; 24]);
    let spec = format!("luks-key:{}", file.display());
    let argv = Argv::to(h, &h.uri(), &dom.name).insecure().fw(h.firmware());
    expect(tool, h, &argv.opt("--inject-secret", spec), 0);
    h.injections(&dom.name)
}

/// The Python tool pads its secret table with 16 zero bytes when it is already aligned
/// (cli-compat.md, known bug 4); the simulated firmware shows it.
#[test]
fn python_secret_table_padding_is_visible() {
    if !python_ok() {
        return;
    }
    let Some(h) = host() else { return };
    let inj = inject_aligned(Tool::Python, h, "py-pad");
    assert_eq!(inj.len(), 1);
    assert_eq!(
        inj[0].plaintext.len(),
        80,
        "64-byte table + 16 bytes of padding"
    );
    assert!(
        inj[0]
            .strict_error
            .as_deref()
            .unwrap_or("")
            .contains("whole extra block"),
        "{:?}",
        inj[0].strict_error
    );
    assert_eq!(
        inj[0].entries,
        vec![(LUKS_GUID.to_string(), vec![b'x'; 24])]
    );
}

// ============================================================================ our tool

macro_rules! our_tests {
    ($($name:ident => $case:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            $case(Tool::Ours);
        }
    )*};
}

our_tests! {
    ours_validates_sev_firmware_only => case_sev_firmware,
    ours_validates_sev_kernel_hashes => case_sev_kernel_hashes,
    ours_validates_sev_es_epyc_milan => case_sev_es,
    ours_validates_sev_es_from_domain_and_host => case_sev_es_from_domain,
    ours_injects_secret => case_inject,
    ours_injects_two_secrets_kernel_hashes => case_inject_two_secrets_kernel_hashes,
    ours_rejects_wrong_firmware => case_wrong_firmware,
    ours_rejects_tampered_host => case_tampered_host,
    ours_offline_packet_injected_by_virsh => case_offline_then_virsh,
    ours_rejects_misconfigured_domain => case_misconfigured,
    ours_refuses_inactive_domain => case_inactive,
    ours_refuses_local_connection_without_insecure => case_local_needs_insecure,
    ours_remote_over_ssh_without_insecure => case_remote_secure,
    ours_remote_needs_owner_inputs => case_remote_insecure_defaults,
}

/// Our secret table is padded to the next multiple of 16 only: the strict check passes.
#[test]
fn ours_secret_table_padding_is_exact() {
    let Some(h) = host() else { return };
    let inj = inject_aligned(Tool::Ours, h, "ours-pad");
    assert_eq!(inj.len(), 1);
    assert_eq!(inj[0].strict_error, None);
    assert_eq!(inj[0].plaintext.len(), 64);
    assert_eq!(
        inj[0].entries,
        vec![(LUKS_GUID.to_string(), vec![b'x'; 24])]
    );
}

/// The explainer's policy variant: the owner gives a policy on the command
/// line that differs from what the SEV firmware reported; with the XML
/// checks off, the mismatch is explained by the host's policy.
#[test]
fn ours_explains_a_policy_given_on_the_command_line() {
    let Some(h) = host() else { return };
    let dom = start(h, &h.spec_sev_firmware(&h.unique_name("ours-pol")));
    let reported = h
        .launches(&dom.name)
        .pop()
        .and_then(|l| l["policy"].as_u64())
        .expect("the simulator records the policy");
    let other = (reported ^ 0x2).to_string();
    let argv = Argv::to(h, &h.uri(), &dom.name)
        .insecure()
        .arg("--ignore-config")
        .fw(h.firmware())
        .opt("--policy", other);
    let (rc, _, err) = run(Tool::Ours, h, &argv);
    assert_eq!(rc, 1, "{err}");
    assert!(
        err.contains(&format!(
            "matches with policy {reported:#x} (the policy the host reported)"
        )),
        "{err}"
    );
}

/// The explainer's host-signature variant: the guest runs with the host's
/// CPU (`<cpu mode='maximum'/>`), the owner builds VMSAs for another
/// signature; with the XML checks off, the mismatch is explained by the
/// signature libvirt reports for the host.
#[test]
fn ours_explains_the_hosts_cpu_signature() {
    let Some(h) = host() else { return };
    let dom = start(
        h,
        &h.spec_sev_es(&h.unique_name("ours-hostsig"), 2, Cpu::Maximum),
    );
    let host_sig = h
        .launches(&dom.name)
        .pop()
        .and_then(|l| l["signature"].as_u64())
        .expect("the simulator records the vCPU signature");
    // Family 14, model 1, stepping 2 (0xE12): surely not this host's CPU.
    let argv = Argv::to(h, &h.uri(), &dom.name)
        .insecure()
        .arg("--ignore-config")
        .fw(h.firmware())
        .opt("--num-cpus", "2")
        .opt("--cpu-family", "14")
        .opt("--cpu-model", "1")
        .opt("--cpu-stepping", "2");
    let (rc, _, err) = run(Tool::Ours, h, &argv);
    assert_eq!(rc, 1, "{err}");
    assert!(
        err.contains(&format!("matches the host's CPU signature ({host_sig:#X})")),
        "{err}"
    );
}

/// The owner decides the generation, on both libvirt versions, over qemu+ssh:// without
/// --insecure: an owner who names SEV-ES refuses an SEV domain (its policy has no ES bit), and
/// one who names SEV refuses an SEV-ES domain, each with exit 10 before anything is computed;
/// the same command lines naming the domain's own generation validate it, so each refusal is
/// the generation's. libvirt 9.0 cannot define an SEV-SNP domain at all, so a 9.0 host cannot
/// claim one; on 11.3 that claim is refused (e2e_snp.rs).
#[test]
fn ours_refuses_a_guest_of_another_generation_than_the_owner_names() {
    let Some(h) = host() else { return };
    if e2e::Libvirt::from_env() == e2e::Libvirt::V9 {
        let xml = h.spec_snp(&h.unique_name("gen-snp9"), 1).xml();
        let refused = h.define(&xml);
        eprintln!("libvirt 9.0 on an SEV-SNP domain: {refused:?}");
        assert!(refused.is_err(), "libvirt 9.0 defined an SEV-SNP domain");
    }
    let Some(uri) = h.ssh_uri() else { return };
    let sev = start(h, &h.spec_sev_firmware(&h.unique_name("gen-sev")));
    let named = |dom: &str, generation: &str| {
        Argv::to(h, &uri, dom)
            .opt("--generation", generation)
            .fw(h.firmware())
    };
    let (out, err) = expect(Tool::Ours, h, &named(&sev.name, "sev-es"), 10);
    assert!(
        err.contains("the SEV-ES bit (0x4), so the guest is SEV, but you expect an SEV-ES guest (--generation sev-es)"),
        "{err}"
    );
    assert!(
        !out.contains("Looks good") && !err.contains("Measurement computed"),
        "{out}{err}"
    );
    let (out, _) = expect(Tool::Ours, h, &named(&sev.name, "sev"), 0);
    assert!(out.contains("OK: Looks good to me"), "{out}");

    let es = start(
        h,
        &h.spec_sev_es(
            &h.unique_name("gen-es"),
            2,
            Cpu::Custom("EPYC-Milan".into()),
        ),
    );
    let (_, err) = expect(Tool::Ours, h, &named(&es.name, "sev").milan("2"), 10);
    assert!(
        err.contains("has the SEV-ES bit (0x4), so the guest is SEV-ES, but you expect an SEV guest (--generation sev)"),
        "{err}"
    );
    let (out, _) = expect(Tool::Ours, h, &named(&es.name, "sev-es").milan("2"), 0);
    assert!(out.contains("OK: Looks good to me"), "{out}");
}
