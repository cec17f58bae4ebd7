//! The main command on an SEV-SNP guest (`--domain` or `--qmp` found
//! `sev-snp`): the stages after the source, in order, each result kept in
//! the run's record ([`SnpRun`]) from which the CLI prints and the JSON
//! document is built.
//!
//! resolve (the owner's inputs, the domain's launch) → the launch digest
//! (as `snp-digest` computes it) → the ID block before launch
//! ([`domain::prelaunch`], with the explainer on an LD mismatch)
//! → the guest's attestation report, when given ([`crate::snp::validate`]).
//!
//! An SNP guest has no LAUNCH_MEASURE and no LAUNCH_SECRET: what proves its
//! launch is its report, signed by the AMD Secure Processor; the ID block
//! lets the firmware refuse a wrong launch before the guest runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::core::hex;
use crate::core::vmsa::VmsaForm;
use crate::error::{Error, Result};
use crate::provenance::{DomainCheck, Origin, Sourced};
use crate::snp::attest::Validation;
use crate::snp::digest::{self, ComputedLaunch, DigestInput};
use crate::snp::domain::{self, IdKeys, SnpContext, SnpDomain};
use crate::snp::endorsement::EndorsementSource;
use crate::snp::explain::SnpExplanation;
use crate::snp::key_release::agent::{AgentChannel, AgentPlan};
use crate::snp::key_release::{self, SealPlan, SealedSummary};
use crate::snp::validate::{Check, Expectations, Status};
use crate::source::SnpHostReport;

/// SEV_FEATURES of an SNP guest's VMSAs on upstream KVM: SNPActive alone.
pub const DEFAULT_SEV_FEATURES: u64 = 0x1;

/// What the owner gave for an SNP guest, from the command line.
#[derive(Debug, Clone)]
pub struct SnpOwner {
    /// `--firmware`: the OVMF image the guest should boot.
    pub firmware: Option<PathBuf>,
    /// `--igvm`: the IGVM file the guest should launch from, instead.
    pub igvm: Option<PathBuf>,
    /// `--kernel`: the kernel of a measured direct boot.
    pub kernel: Option<PathBuf>,
    /// `--initrd`: the initrd of a measured direct boot.
    pub initrd: Option<PathBuf>,
    /// `--cmdline`: the kernel command line of a measured direct boot.
    pub cmdline: Option<String>,
    /// `--num-cpus`: the vCPU count; each vCPU's VMSA is measured.
    pub num_cpus: Option<u32>,
    /// CPUID(1).EAX of every vCPU (--cpu-family/--cpu-model/--cpu-stepping).
    pub vcpu_signature: Option<u32>,
    /// SEV_FEATURES (default [`DEFAULT_SEV_FEATURES`]).
    pub sev_features: Option<u64>,
    /// The VMSA form (default INIT2: every upstream SNP host).
    pub vmsa_form: Option<VmsaForm>,
    /// The SNP policy the owner expects.
    pub policy: Option<u64>,
    /// `--insecure`: what the owner left out may come from the host.
    pub insecure: bool,
    /// `--ignore-config`: the domain's form is not checked, only its policy
    /// and the values the owner pins.
    pub ignore_config: bool,
    /// The owner's requirements of the report and the ID keys (their
    /// launch values are filled from the domain).
    pub expectations: Expectations,
    /// The guest's attestation report.
    pub report: Option<PathBuf>,
    /// Where the VCEK or VLEK and AMD's chain for the report come from.
    pub endorsement: EndorsementSource,
    /// The nonce given to the guest's `snp-request`: the report is then key-
    /// release evidence, and REPORT_DATA must bind this nonce and its key.
    pub nonce: Option<[u8; 32]>,
    /// The secrets to seal to the guest's key once everything validated.
    pub seal: Option<SealPlan>,
    /// `--guest-agent`: the whole exchange through the domain's QEMU guest
    /// agent, the secrets sealed and written into the guest.
    pub agent: Option<AgentPlan>,
}

/// The launch the domain will have, each value with who gave it: the
/// inputs of the expected launch digest.
#[derive(Debug, Clone)]
pub struct SnpLaunchInputs {
    /// The OVMF image: the owner's, or under `--insecure` the domain's
    /// `<loader>`.
    pub firmware: Sourced<PathBuf>,
    /// The direct-boot kernel: the owner's, or under `--insecure` the domain's
    /// (only with `kernelHashes='yes'`).
    pub kernel: Option<Sourced<PathBuf>>,
    /// The direct-boot initrd: the owner's, or under `--insecure` the domain's.
    pub initrd: Option<Sourced<PathBuf>>,
    /// The kernel command line: the owner's, or under `--insecure` the domain's.
    pub cmdline: Option<Sourced<String>>,
    /// The vCPU count: the owner's, or under `--insecure` the domain's `<vcpu>`
    /// or QEMU's.
    pub vcpus: Sourced<u32>,
    /// CPUID(1).EAX in every VMSA: the owner's, or under `--insecure` the
    /// domain's named CPU model's or, for host-passthrough, host-model or
    /// maximum, the host's.
    pub vcpu_signature: Sourced<u32>,
    /// SEV_FEATURES of every VMSA: the owner's, else
    /// [`DEFAULT_SEV_FEATURES`].
    pub sev_features: u64,
    /// How KVM created the VM: the owner's form, else INIT2.
    pub vmsa_form: VmsaForm,
    /// From the domain XML, or QEMU's query-sev.
    pub policy: u64,
}

impl SnpLaunchInputs {
    /// The same launch as `snp-digest` options (`NAME=VALUE`, so no value is
    /// read as an option): computed by the same code, and printed for the
    /// owner to rerun.
    pub fn digest_options(&self) -> Vec<OsString> {
        let mut o = Vec::new();
        let mut opt = |name: &str, value: &std::ffi::OsStr| {
            let mut s = OsString::from(format!("--{name}="));
            s.push(value);
            o.push(s);
        };
        opt("ovmf", self.firmware.value.as_os_str());
        opt("vcpus", self.vcpus.value.to_string().as_ref());
        opt(
            "vcpu-sig",
            format!("{:#x}", self.vcpu_signature.value).as_ref(),
        );
        opt(
            "guest-features",
            format!("{:#x}", self.sev_features).as_ref(),
        );
        opt(
            "vmsa-form",
            match self.vmsa_form {
                VmsaForm::Init2 => "init2",
                VmsaForm::Legacy => "legacy",
            }
            .as_ref(),
        );
        if let Some(k) = &self.kernel {
            opt("kernel", k.value.as_os_str());
        }
        if let Some(i) = &self.initrd {
            opt("initrd", i.value.as_os_str());
        }
        if let Some(c) = &self.cmdline {
            opt("append", c.value.as_ref());
        }
        o
    }

    /// The same launch as the digest's typed input.
    pub fn digest_input(&self) -> DigestInput {
        DigestInput {
            ovmf: self.firmware.value.clone(),
            ovmf_hash: None,
            vcpus: self.vcpus.value,
            vcpu_signature: Some(self.vcpu_signature.value),
            vmm: crate::core::vmsa::VmmType::Qemu,
            vmsa_form: self.vmsa_form,
            guest_features: self.sev_features,
            kernel: self.kernel.as_ref().map(|k| k.value.clone()),
            initrd: self.initrd.as_ref().map(|i| i.value.clone()),
            append: self.cmdline.as_ref().map(|c| c.value.clone()),
        }
    }

    /// Which values came from the host (under `--insecure`).
    pub fn from_host(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let host = |o: Origin| o == Origin::Host;
        if host(self.firmware.origin) {
            v.push("firmware");
        }
        if self.kernel.as_ref().is_some_and(|k| host(k.origin)) {
            v.push("kernel");
        }
        if self.initrd.as_ref().is_some_and(|k| host(k.origin)) {
            v.push("initrd");
        }
        if self.cmdline.as_ref().is_some_and(|k| host(k.origin)) {
            v.push("cmdline");
        }
        if host(self.vcpus.origin) {
            v.push("vCPU count");
        }
        if host(self.vcpu_signature.origin) {
            v.push("vCPU signature");
        }
        v
    }
}

/// What one SNP run produced, stage by stage; `None` where a stage did not run.
#[derive(Default)]
pub struct SnpRun {
    /// What the host said about the guest.
    pub host: Option<SnpHostReport>,
    /// What the domain XML says about the launch, decoded (libvirt only).
    pub domain: Option<SnpDomain>,
    /// Whether the domain's checks passed, were skipped (`--ignore-config`) or
    /// do not apply (QEMU's monitor).
    pub domain_check: Option<DomainCheck>,
    /// The inputs of the expected launch digest, each with who gave it.
    pub launch: Option<SnpLaunchInputs>,
    /// The expected launch digest, computed as `snp-digest` does.
    pub computed: Option<ComputedLaunch>,
    /// The ID block's checks (None without an ID block).
    pub prelaunch: Option<Vec<Check>>,
    /// On an ID block made for another launch: which input differs.
    pub id_block_explanation: Option<SnpExplanation>,
    /// The attestation report's validation (with `--report`).
    pub validation: Option<Validation>,
    /// The sealed file, once everything validated (with `--sealed-out`).
    pub sealed: Option<SealedSummary>,
    /// Where the sealed file was written in the guest (`--guest-agent`).
    pub guest_sealed: Option<String>,
    /// Warnings for the owner, starting with those of the run before the SNP
    /// stages.
    pub warnings: Vec<String>,
}

impl SnpRun {
    /// Whether a launch digest was found to differ (the ID block's LD or the
    /// report's MEASUREMENT): the run's verdict is then a mismatch.
    pub fn mismatch(&self) -> bool {
        let failed = |c: &Check, name: &str| c.name == name && c.status == Status::Fail;
        self.prelaunch
            .iter()
            .flatten()
            .any(|c| failed(c, "id-block-ld"))
            || self
                .validation
                .iter()
                .flat_map(|v| v.outcome.checks.iter())
                .any(|c| failed(c, "expect.measurement"))
    }
}

/// Runs the SNP stages on what the host said, filling `run`.
pub fn run(
    owner: &SnpOwner,
    host: SnpHostReport,
    run: &mut SnpRun,
    agent: Option<&mut dyn AgentChannel>,
) -> Result<()> {
    let domain = host.domain.as_ref().map(domain::decode).transpose()?;
    run.domain = domain.clone();
    let domain = match domain {
        Some(d) => d,
        // QEMU's monitor: only the policy is known.
        None => qmp_domain(&host)?,
    };
    run.domain_check = Some(check(owner, &host, &domain, &mut run.warnings)?);
    if let Some(computed) = super::igvm_run::igvm_launch(owner, &host, &mut run.warnings)? {
        run.host = Some(host);
        run.computed = Some(computed);
        return after_prelaunch(owner, &domain, run, agent);
    }
    let launch = resolve(owner, &host, &domain)?;
    run.host = Some(host);
    let computed = digest::compute(&launch.digest_input())?;
    run.launch = Some(launch);
    let (checks, explanation, verdict) = prelaunch(owner, &domain, &computed);
    run.computed = Some(computed);
    run.prelaunch = checks;
    run.id_block_explanation = explanation;
    verdict?;
    after_prelaunch(owner, &domain, run, agent)
}

/// The stages after the launch was judged: the exchange through the guest
/// agent, or the report given.
fn after_prelaunch(
    owner: &SnpOwner,
    domain: &SnpDomain,
    run: &mut SnpRun,
    agent: Option<&mut dyn AgentChannel>,
) -> Result<()> {
    if let Some(plan) = &owner.agent {
        return super::guest_agent::through_agent(owner, plan, agent, domain, run);
    }
    if let Some(path) = &owner.report {
        attest(owner, path, owner.nonce, owner.seal.as_ref(), domain, run)?;
    }
    Ok(())
}

/// The guest's report (or key-release evidence) at `path`, validated against
/// `domain` and the owner's expectations; then, when every check passed and
/// `seal` is given, the secrets sealed to the evidence's key.
pub(crate) fn attest(
    owner: &SnpOwner,
    path: &Path,
    nonce: Option<[u8; 32]>,
    seal: Option<&SealPlan>,
    domain: &SnpDomain,
    run: &mut SnpRun,
) -> Result<()> {
    let has_xml = run.host.as_ref().is_some_and(|h| h.domain.is_some());
    // The owner's requirements; MEASUREMENT is the computed digest.
    let mut v = crate::snp::attest::validate_evidence(
        path,
        &owner.endorsement,
        owner.expectations.clone(),
        run.computed.as_ref(),
        nonce,
    )?;
    v.main_command = true;
    // What the domain (or QEMU, for the policy) gave the firmware, beside
    // the owner's own expect.* lines (skipped where nothing was pinned).
    let mut domain_checks: Vec<Check> = domain::report_checks(domain, &v.input.report)
        .into_iter()
        .filter(|c| has_xml || c.name == "domain.policy")
        .collect();
    crate::snp::pins::annotate(&mut domain_checks, &pins(owner));
    v.outcome.checks.extend(domain_checks);
    let failed: Vec<&str> = v.outcome.failures().map(|c| c.name).collect();
    let passed = failed.is_empty();
    let failed = failed.join(", ");
    let v = run.validation.insert(v);
    if !passed {
        return Err(Error::AttestationFailed(format!(
            "the guest's attestation report does not match the domain and the owner's expectations: {failed} failed"
        )));
    }
    run.sealed = seal_to(seal, v)?;
    Ok(())
}

/// Seals the owner's secrets to the key of the evidence `v` came in, once
/// every check of the run passed.
fn seal_to(plan: Option<&SealPlan>, v: &Validation) -> Result<Option<SealedSummary>> {
    let Some(plan) = plan else {
        return Ok(None);
    };
    let Some(evidence) = &v.evidence else {
        return Err(Error::Usage(
            "--sealed-out needs --report EVIDENCE, the key-release evidence of the guest's snp-request"
                .into(),
        ));
    };
    key_release::seal_validated(v, evidence, plan).map(Some)
}

/// The owner's values for what the domain declares.
fn pins(owner: &SnpOwner) -> crate::snp::pins::Pins {
    let e = &owner.expectations;
    crate::snp::pins::Pins {
        host_data: e.host_data,
        family_id: e.family_id,
        image_id: e.image_id,
        min_guest_svn: e.min_guest_svn,
    }
}

/// The SNP launch QEMU's monitor describes: its policy, nothing else.
fn qmp_domain(host: &SnpHostReport) -> Result<SnpDomain> {
    let q = host.query_sev.as_ref().ok_or_else(|| {
        Error::Unexpected("an SNP guest with neither a domain XML nor query-sev".into())
    })?;
    Ok(SnpDomain {
        policy: q.policy,
        guest_visible_workarounds: None,
        id_block: None,
        id_auth: None,
        host_data: None,
        author_key_enabled: false,
        vcek_disabled: false,
        kernel_hashes: false,
        loader: None,
        vcpus: None,
        cpu_mode: None,
        cpu_model: None,
        model_signature: None,
    })
}

/// The domain's checks (the policy alone for QEMU's monitor).
/// What `--insecure` let pass is added to `warnings`.
fn check(
    owner: &SnpOwner,
    host: &SnpHostReport,
    domain: &SnpDomain,
    warnings: &mut Vec<String>,
) -> Result<DomainCheck> {
    let Some(xml) = &host.domain else {
        check_qemu_policy(owner, domain.policy)?;
        return Ok(DomainCheck::NotApplicable);
    };
    let ctx = SnpContext {
        secure: !owner.insecure,
        ignore_config: owner.ignore_config,
        owner_firmware: owner.firmware.is_some(),
        owner_kernel: owner.kernel.is_some(),
        owner_cmdline: owner.cmdline.clone(),
        owner_policy: owner.policy,
        num_cpus: owner.num_cpus,
        vcpu_signature: owner.vcpu_signature,
        allow_debug: owner.expectations.allow_debug,
        allow_migrate_ma: owner.expectations.allow_migrate_ma,
        host_signature: host.host_signature,
        reported_policy: host.reported_policy,
        pins: pins(owner),
    };
    domain::check(xml, domain, &ctx)?;
    warnings.extend(domain::unmeasured_kernel_warning(xml, domain, &ctx));
    Ok(if owner.ignore_config {
        DomainCheck::Skipped
    } else {
        DomainCheck::Passed
    })
}

/// The policy QEMU's monitor reports (`query-sev` `snp-policy`) against the
/// owner's: DEBUG and MIGRATE_MA only when allowed, and `--policy` exactly.
fn check_qemu_policy(owner: &SnpOwner, policy: u64) -> Result<()> {
    let flags = crate::core::snp_report::PolicyFlags::from_bits_truncate(policy);
    let said = format!("QEMU reports the guest's SNP policy {policy:#x} (query-sev snp-policy)");
    for (flag, bit, allowed, option, risk) in [
        (
            crate::core::snp_report::PolicyFlags::DEBUG,
            "DEBUG (bit 19)",
            owner.expectations.allow_debug,
            "--allow-debug",
            "the host can read and change the guest's memory",
        ),
        (
            crate::core::snp_report::PolicyFlags::MIGRATE_MA,
            "MIGRATE_MA (bit 18)",
            owner.expectations.allow_migrate_ma,
            "--allow-migrate-ma",
            "a migration agent may export the guest's memory",
        ),
    ] {
        if flags.contains(flag) && !allowed {
            return Err(Error::Insecure(format!(
                "{said}, with {bit} set: {risk}; start the guest without it, or pass {option} if that is what you want"
            )));
        }
    }
    match owner.policy {
        Some(p) if p != policy => Err(Error::Config(format!(
            "{said}, but --policy is {p:#x}: the guest is not launched with the policy you expect"
        ))),
        _ => Ok(()),
    }
}

/// A file path from the domain XML: only from this machine, and only with `--insecure`.
fn host_path(
    what: &str,
    option: &str,
    path: Option<&str>,
    host: &SnpHostReport,
    insecure: bool,
) -> Result<Option<Sourced<PathBuf>>> {
    let Some(p) = path else { return Ok(None) };
    let remote = host.connection.as_ref().is_some_and(|c| c.remote);
    if remote || !insecure {
        return Err(Error::Insecure(format!(
            "the domain boots the {what} '{p}' on the host; give --{option} with your own copy of it \
             (taking the host's path needs --insecure, and works only on the host itself)"
        )));
    }
    Ok(Some(Sourced {
        value: PathBuf::from(p),
        origin: Origin::Host,
    }))
}

/// The launch the owner expects, the host's values only under `--insecure`.
fn resolve(owner: &SnpOwner, host: &SnpHostReport, d: &SnpDomain) -> Result<SnpLaunchInputs> {
    let xml = host.domain.as_ref();
    let firmware = match &owner.firmware {
        Some(f) => Sourced::owner(f.clone()),
        None => host_path(
            "firmware",
            "firmware",
            d.loader.as_deref(),
            host,
            owner.insecure,
        )?
        .ok_or_else(|| {
            Error::Usage(
                "--firmware is needed: give the OVMF image you expect the guest to boot".into(),
            )
        })?,
    };
    let (kernel, initrd, cmdline) = match &owner.kernel {
        Some(k) => (
            Some(Sourced::owner(k.clone())),
            owner.initrd.clone().map(Sourced::owner),
            owner.cmdline.clone().map(Sourced::owner),
        ),
        None if d.kernel_hashes => {
            let x =
                xml.ok_or_else(|| Error::Unexpected("kernel hashes without a domain XML".into()))?;
            let cmdline = match x.cmdline() {
                Some(c) if owner.insecure => Some(Sourced {
                    value: c.to_string(),
                    origin: Origin::Host,
                }),
                Some(_) => {
                    return Err(Error::Insecure(
                        "Using cmdline string from XML is not secure: give --cmdline, or pass --insecure".into(),
                    ))
                }
                None => None,
            };
            (
                host_path("kernel", "kernel", x.kernel(), host, owner.insecure)?,
                host_path("initrd", "initrd", x.initrd(), host, owner.insecure)?,
                cmdline,
            )
        }
        None => (None, None, None),
    };
    Ok(SnpLaunchInputs {
        firmware,
        kernel,
        initrd,
        cmdline,
        vcpus: vcpus(owner, host, d)?,
        vcpu_signature: vcpu_signature(owner, host, d)?,
        sev_features: owner.sev_features.unwrap_or(DEFAULT_SEV_FEATURES),
        vmsa_form: owner.vmsa_form.unwrap_or(VmsaForm::Init2),
        policy: d.policy,
    })
}

/// Every vCPU is measured as one VMSA: the owner's count, or the host's
/// under `--insecure`.
fn vcpus(owner: &SnpOwner, host: &SnpHostReport, d: &SnpDomain) -> Result<Sourced<u32>> {
    if let Some(n) = owner.num_cpus {
        return Ok(Sourced::owner(n));
    }
    let from_host = d.vcpus.map(|(current, _)| current).or(host.vcpu_count);
    match from_host {
        Some(n) if owner.insecure => Ok(Sourced {
            value: n,
            origin: Origin::Host,
        }),
        Some(_) => Err(Error::Insecure(
            "Using CPU count from guest is not secure: give --num-cpus (each vCPU is measured as one VMSA), or pass --insecure".into(),
        )),
        None => Err(Error::Usage(
            "the host does not say how many vCPUs the guest has: give --num-cpus".into(),
        )),
    }
}

/// Every VMSA holds the vCPU signature: the owner's, or under `--insecure`
/// the domain's named CPU model or, for host-passthrough, the host's.
fn vcpu_signature(owner: &SnpOwner, host: &SnpHostReport, d: &SnpDomain) -> Result<Sourced<u32>> {
    if let Some(s) = owner.vcpu_signature {
        return Ok(Sourced::owner(s));
    }
    let passthrough = matches!(
        d.cpu_mode.as_deref(),
        Some("host-passthrough") | Some("host-model") | Some("maximum")
    );
    let from_host = if passthrough {
        host.host_signature
    } else {
        d.model_signature
    };
    match from_host {
        Some(s) if owner.insecure => Ok(Sourced {
            value: s,
            origin: Origin::Host,
        }),
        Some(_) => Err(Error::Insecure(
            "Using the vCPU signature from the host is not secure: give --cpu-family, --cpu-model and --cpu-stepping of the CPU the guest sees (every VMSA holds it), or pass --insecure".into(),
        )),
        None => Err(Error::Usage(format!(
            "give --cpu-family, --cpu-model and --cpu-stepping of the CPU the guest sees (every VMSA holds its signature){}",
            match d.cpu_model.as_deref() {
                Some(m) => format!("; the domain's CPU model '{m}' is not one whose signature this tool knows"),
                None => String::new(),
            }
        ))),
    }
}

/// The owner's trusted ID and author keys.
fn id_keys(owner: &SnpOwner) -> IdKeys {
    IdKeys {
        trusted_id_keys: owner.expectations.trusted_id_keys.clone(),
        trusted_author_keys: owner.expectations.trusted_author_keys.clone(),
        require_author_key: owner.expectations.require_author_key,
    }
}

/// The ID block's checks, the explainer's answer on an LD mismatch, and
/// the verdict.
type Prelaunch = (Option<Vec<Check>>, Option<SnpExplanation>, Result<()>);

/// The ID block before launch: would SNP_LAUNCH_FINISH accept it?
fn prelaunch(owner: &SnpOwner, domain: &SnpDomain, computed: &ComputedLaunch) -> Prelaunch {
    let Some(checks) = domain::prelaunch(domain, &computed.ld, &id_keys(owner)) else {
        return (None, None, Ok(()));
    };
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.name)
        .collect();
    if failed.is_empty() {
        return (Some(checks), None, Ok(()));
    }
    let failed = failed.join(", ");
    let ld_failed = checks
        .iter()
        .any(|c| c.name == "id-block-ld" && c.status == Status::Fail);
    let explanation = match (&domain.id_block, ld_failed) {
        (Some(block), true) => match computed.explain(&block.ld) {
            Ok(x) => Some(x),
            Err(e) => return (Some(checks), None, Err(e)),
        },
        _ => None,
    };
    let answer = explanation
        .as_ref()
        .map(|x| format!(": {}", id_block_answer(x)))
        .unwrap_or_default();
    let verdict = Err(Error::AttestationFailed(format!(
        "the domain's ID block would be refused at launch (SNP_LAUNCH_FINISH fails with 'Bad measurement'): {failed} failed{answer}"
    )));
    (Some(checks), explanation, verdict)
}

/// The explainer's answer in ID-block words.
pub fn id_block_answer(x: &SnpExplanation) -> String {
    match &x.changes {
        Some(c) if c.is_empty() => "the ID block's LD is the expected launch digest".into(),
        Some(c) => c
            .iter()
            .map(|c| c.id_block_words())
            .collect::<Vec<_>>()
            .join("; "),
        None => format!(
            "the ID block's LD {} is not the digest of this launch nor of any of {} variants of it ({}): it was made for another firmware, kernel or initrd",
            hex(&x.reported),
            x.variants_tried,
            x.searched
        ),
    }
}
