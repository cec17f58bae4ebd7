//! The machine-readable result (`--json`): one document on stdout with the
//! verdict, the exit code, the reported and computed values, the digests of
//! every input, the checks that ran, the explainer's result and what was
//! injected. Never the TIK, the TEK or secret data. Field names are stable;
//! schema/result.schema.json describes them.
//!
//! The document is built once, at the end, from the record of the run
//! ([`Run`]): each stage's result, or the error that stopped it.

use serde::Serialize;

use crate::core::hex;
use crate::error::Error;
use crate::provenance::{DomainCheck, Origin};
use crate::sev::policy;
use crate::sev::resolve::{ExpectedLaunch, Resolved};
use crate::sev::validate::{Outcome, Verdict};
use crate::snp::run::SnpRun;
use crate::snp::validate::Status;
use crate::source::{Comparison, Connection, GuestKind, HostReport, SourceKind};

/// Schema version of the document; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// What one run produced, stage by stage; `None` where a stage did not run.
pub struct Run {
    pub source: SourceKind,
    /// The guest's kind, once the source said it.
    pub guest: Option<GuestKind>,
    /// The generation the owner expects, once the arguments said.
    pub generation: Option<crate::generation::Expected>,
    /// The stages of an SEV-SNP guest (instead of the SEV ones below).
    pub snp: Option<SnpRun>,
    pub host: Option<HostReport>,
    pub resolved: Option<Resolved>,
    pub expected: Option<ExpectedLaunch>,
    pub outcome: Option<Outcome>,
    /// On a mismatch: the host's copies of the owner's files, where reachable.
    pub host_files: Option<Result<Vec<Comparison>, String>>,
    pub injection: Option<Injection>,
    /// Warnings of the secrets stage.
    pub warnings: Vec<String>,
    pub error: Option<Error>,
}

impl Run {
    pub fn new(source: SourceKind) -> Run {
        Run {
            source,
            guest: None,
            generation: None,
            snp: None,
            host: None,
            resolved: None,
            expected: None,
            outcome: None,
            host_files: None,
            injection: None,
            warnings: Vec::new(),
            error: None,
        }
    }

    /// The exit code of the run.
    pub fn exit_code(&self) -> i32 {
        match &self.error {
            None => crate::ExitCode::Ok as i32,
            Some(e) => e.exit_code() as i32,
        }
    }
}

/// The JSON `verdict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportVerdict {
    /// A measurement or an attestation report was checked against the
    /// owner's expectation, and every check passed.
    Validated,
    /// An SEV-SNP launch configuration passed its checks (domain, ID block)
    /// but no report was checked: nothing about the guest is attested.
    NotAttested,
    Mismatch,
    RequirementFailed,
    Error,
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    Passed,
    Failed,
    Skipped,
}

/// How the VMSAs were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VmsaOrigin {
    /// The owner's --vmsa-cpu0/--vmsa-cpu1 files.
    Files,
    /// Built here from a vCPU signature.
    Built,
}

/// The VMSA form (`--vmsa-form`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VmsaFormName {
    Legacy,
    Init2,
}

/// Where packaged secrets went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    Files,
    Libvirt,
    Qmp,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub verdict: ReportVerdict,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub source: SourceKind,
    /// "sev" or "sev-snp", once the source said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<GuestKind>,
    /// The generation the owner expects, and what said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<crate::generation::Expected>,
    /// An SEV-SNP guest's launch, ID block and report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snp: Option<SnpSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported: Option<Reported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computed: Option<Computed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<policy::Decoded>,
    pub warnings: Vec<String>,
    pub inputs: Inputs,
    /// Who gave each value of the expected launch (owner, or host under --insecure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection: Option<Injection>,
    /// On a mismatch over qemu+ssh: the host's copies compared over SFTP.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_files: Vec<HostFile>,
}

#[derive(Debug, Default, Serialize)]
pub struct HostFile {
    pub what: String,
    pub host_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_sha256: Option<String>,
    pub owner_sha256: String,
    /// Whether the host's copy equals the owner's; null when it could not be read.
    pub same: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Reported {
    pub measurement: String,
    pub measure: String,
    pub mnonce: String,
    pub api_major: u8,
    pub api_minor: u8,
    pub build_id: u8,
    pub policy: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct Computed {
    pub launch_digest: String,
    pub measure: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Inputs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FileDigest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<FileDigest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initrd: Option<FileDigest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Cmdline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_hashes_table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmsa: Option<Vmsa>,
}

#[derive(Debug, Default, Serialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Cmdline {
    pub value: String,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct Vmsa {
    pub source: VmsaOrigin,
    pub num_cpus: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<VmsaFormName>,
    pub bsp_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ap_sha256: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub result: CheckResult,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Explanation {
    pub matched: Option<Vec<String>>,
    pub variants_tried: usize,
    pub hint: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Injection {
    pub destination: Destination,
    pub secrets: Vec<InjectedSecret>,
    pub table_bytes: usize,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct InjectedSecret {
    pub guid: String,
    pub bytes: usize,
}

/// Who gave each value of the expected launch; absent values are left out.
#[derive(Debug, Default, Serialize)]
pub struct Provenance {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<Origin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Origin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initrd: Option<Origin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Origin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_cpus: Option<Origin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcpu_signature: Option<Origin>,
}

impl From<&Resolved> for Provenance {
    fn from(r: &Resolved) -> Provenance {
        use crate::sev::resolve::VmsaInput;
        Provenance {
            firmware: r.firmware.as_ref().map(|s| s.origin),
            kernel: r.kernel.as_ref().map(|s| s.origin),
            initrd: r.initrd.as_ref().map(|s| s.origin),
            cmdline: r.cmdline.as_ref().map(|s| s.origin),
            num_cpus: r.num_cpus.as_ref().map(|s| s.origin),
            vcpu_signature: matches!(r.vmsa.value, VmsaInput::Signature(_))
                .then_some(r.vmsa.origin),
        }
    }
}

impl Report {
    /// The document of a command line that could not be parsed.
    pub fn usage_error(message: &str) -> Report {
        let mut r = Report::empty(SourceKind::Offline);
        r.verdict = ReportVerdict::Error;
        r.exit_code = crate::ExitCode::UnsupportedUsage as i32;
        r.error = Some(message.trim().to_string());
        r
    }

    fn empty(source: SourceKind) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            verdict: ReportVerdict::Validated,
            exit_code: 0,
            error: None,
            source,
            guest: None,
            generation: None,
            snp: None,
            reported: None,
            computed: None,
            policy: None,
            warnings: Vec::new(),
            inputs: Inputs::default(),
            provenance: None,
            checks: Vec::new(),
            explanation: None,
            injection: None,
            host_files: Vec::new(),
        }
    }
}

impl From<&Run> for Report {
    fn from(run: &Run) -> Report {
        let mut r = Report::empty(run.source);
        r.exit_code = run.exit_code();
        r.error = run.error.as_ref().map(|e| e.to_string());
        r.guest = run.guest;
        r.generation = run.generation.clone();
        if let Some(snp) = &run.snp {
            snp_report(&mut r, run, snp);
            return r;
        }
        r.verdict = match (&run.error, run.outcome.as_ref().map(|o| o.verdict)) {
            (None, _) => ReportVerdict::Validated,
            (Some(_), Some(Verdict::Mismatch)) => ReportVerdict::Mismatch,
            (Some(_), Some(Verdict::RequirementFailed)) => ReportVerdict::RequirementFailed,
            (Some(_), _) => ReportVerdict::Error,
        };
        if let Some(h) = &run.host {
            let (m, info) = (&h.launch.measurement, &h.launch.info);
            r.reported = Some(Reported {
                measurement: m.to_base64(),
                measure: hex(&m.measure),
                mnonce: hex(&m.mnonce),
                api_major: info.api_major,
                api_minor: info.api_minor,
                build_id: info.build_id,
                policy: info.policy,
            });
            r.policy = Some(policy::decode(info.policy));
        }
        r.checks = checks(run);
        r.provenance = run.resolved.as_ref().map(Provenance::from);
        if let Some(e) = &run.expected {
            r.inputs = inputs(e, run.outcome.as_ref());
        }
        if let Some(o) = &run.outcome {
            r.computed = Some(Computed {
                launch_digest: hex(&o.trace.ld),
                measure: hex(&o.computed),
            });
            r.explanation = o.explanation.as_ref().map(|x| Explanation {
                matched: x.matched.clone(),
                variants_tried: x.tried,
                hint: x.hint.clone(),
            });
            r.warnings.extend(o.warnings.iter().cloned());
        }
        r.warnings.extend(run.warnings.iter().cloned());
        if let Some(Ok(list)) = &run.host_files {
            r.host_files = list.iter().map(host_file).collect();
        }
        r.injection = run.injection.clone();
        r
    }
}

fn check(name: &str, result: CheckResult, message: impl Into<String>) -> Check {
    Check {
        name: name.to_string(),
        result,
        message: message.into(),
    }
}

/// A libvirt connection: remote, or local under --insecure (else the run stopped).
fn connection_check(c: &Connection) -> Check {
    let msg = if c.remote {
        format!("{} is a remote connection", c.uri)
    } else {
        format!("{} is a local connection, allowed by --insecure", c.uri)
    };
    check("connection", CheckResult::Passed, msg)
}

/// The checks in the order they ran: connection, domain XML, measurement, requirements.
fn checks(run: &Run) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(c) = run.host.as_ref().and_then(|h| h.facts.connection.as_ref()) {
        out.push(connection_check(c));
    }
    let domain = "domain-xml";
    match (run.resolved.as_ref().map(|r| r.domain_check), &run.error) {
        (Some(DomainCheck::Passed), _) => out.push(check(
            domain,
            CheckResult::Passed,
            "the domain XML passed every check",
        )),
        (Some(DomainCheck::Skipped), _) => out.push(check(
            domain,
            CheckResult::Skipped,
            "skipped: --ignore-config",
        )),
        (None, Some(Error::DomainXml(e))) => {
            out.push(check(domain, CheckResult::Failed, e.to_string()))
        }
        _ => {}
    }
    if let Some(o) = &run.outcome {
        if o.verdict != Verdict::Mismatch {
            out.push(check(
                "measurement",
                CheckResult::Passed,
                "the reported measurement matches the expected launch",
            ));
        }
        for q in &o.requirements {
            let result = if q.passed {
                CheckResult::Passed
            } else {
                CheckResult::Failed
            };
            out.push(check(q.name, result, q.message.clone()));
        }
    }
    out
}

/// The digests of every input, and the VMSAs as measured.
fn inputs(e: &ExpectedLaunch, outcome: Option<&Outcome>) -> Inputs {
    let path = |p: &std::path::Path| p.display().to_string();
    let mut i = Inputs {
        firmware: e
            .firmware
            .digest_after_firmware
            .firmware_digest()
            .map(|d| FileDigest {
                path: path(&e.firmware_path.value),
                sha256: hex(&d),
            }),
        ..Inputs::default()
    };
    if let Some(k) = &e.kernel {
        i.kernel = Some(FileDigest {
            path: path(&k.kernel.value),
            sha256: hex(&k.hashes.kernel),
        });
        i.initrd = k.initrd.as_ref().map(|p| FileDigest {
            path: path(&p.value),
            sha256: hex(&k.hashes.initrd),
        });
        i.cmdline = Some(Cmdline {
            value: k
                .cmdline
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default(),
            sha256: hex(&k.hashes.cmdline),
        });
    }
    let Some(t) = outcome.map(|o| &o.trace) else {
        return i;
    };
    i.kernel_hashes_table = t.kernel_table.as_ref().map(|t| hex(t));
    if let (Some(v), Some(bsp)) = (&e.vmsa, &t.vmsa_bsp_sha256) {
        let (source, sig, form) = match &v.source {
            crate::sev::launch::VmsaSource::Pages { .. } => (VmsaOrigin::Files, None, None),
            crate::sev::launch::VmsaSource::Built { config, .. } => (
                VmsaOrigin::Built,
                Some(format!("{:#x}", config.cpu_signature)),
                Some(match config.form {
                    crate::core::vmsa::VmsaForm::Legacy => VmsaFormName::Legacy,
                    crate::core::vmsa::VmsaForm::Init2 => VmsaFormName::Init2,
                }),
            ),
        };
        i.vmsa = Some(Vmsa {
            source,
            num_cpus: v.num_cpus.value,
            cpu_signature: sig,
            form,
            bsp_sha256: hex(bsp),
            ap_sha256: t.vmsa_ap_sha256.map(|d| hex(&d)),
        });
    }
    i
}

fn host_file(c: &Comparison) -> HostFile {
    HostFile {
        what: c.what.clone(),
        host_path: c.host_path.clone(),
        host_sha256: c.host_sha256.as_ref().ok().map(|h| hex(h)),
        owner_sha256: hex(&c.owner_sha256),
        same: c.differs().map(|d| !d),
        error: c.host_sha256.as_ref().err().cloned(),
    }
}

/// An SEV-SNP guest's part of the document.
#[derive(Debug, Default, Serialize)]
pub struct SnpSection {
    /// The domain's state ("shut off", "paused", "running") or QEMU's SEV state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The guest policy (the domain's `<policy>`, or QEMU's `snp-policy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// What the domain XML states of the launch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<SnpDomainValues>,
    /// The expected launch digest (MEASUREMENT), and how to recompute it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_measurement: Option<String>,
    /// The same launch as snp-digest options, to recompute the digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snp_digest_options: Option<Vec<String>>,
    /// Values taken from the host under --insecure.
    pub from_host: Vec<String>,
    /// On an ID block made for another launch: the explainer's answer
    /// (schema/snp-explanation.schema.json) and its words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_block_explanation: Option<crate::snp::explain::SnpExplanation>,
    /// The explainer's answer in ID block words, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_block_hint: Option<String>,
    /// The report's validation, as `snp-validate --json` gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<crate::snp::attest::ValidationDocument>,
    /// What the host could not say, and why.
    pub notes: Vec<String>,
}

/// What an SEV-SNP domain's XML states of its launch (`snp.domain`).
#[derive(Debug, Default, Serialize)]
pub struct SnpDomainValues {
    /// The guest policy (`<policy>`), in hex.
    pub policy: String,
    /// `<hostData>` (HOST_DATA in the report), in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_data: Option<String>,
    /// The ID block's fields (`<idBlock>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_block: Option<SnpIdBlockValues>,
    /// The digest of the ID key in `<idAuth>` (ID_KEY_DIGEST in the report), in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_key_digest: Option<String>,
    /// The digest of the author key in `<idAuth>`, if it holds one, in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author_key_digest: Option<String>,
    /// `authorKey='yes'`.
    pub author_key_enabled: bool,
    /// `vcek='no'`: the firmware signs the report with a VLEK.
    pub vcek_disabled: bool,
    /// `kernelHashes='yes'`.
    pub kernel_hashes: bool,
}

/// The fields of a domain's ID block (`snp.domain.id_block`).
#[derive(Debug, Default, Serialize)]
pub struct SnpIdBlockValues {
    /// LD: the launch digest the ID block was made for, in hex.
    pub ld: String,
    /// FAMILY_ID, in hex.
    pub family_id: String,
    /// IMAGE_ID, in hex.
    pub image_id: String,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// The guest policy the ID block allows, in hex.
    pub policy: String,
}

/// An SNP run's checks in the order they ran: connection, domain XML, ID
/// block, report.
fn snp_checks(run: &Run, snp: &SnpRun) -> Vec<Check> {
    let mut out = Vec::new();
    let host = snp.host.as_ref();
    if let Some(c) = host.and_then(|h| h.connection.as_ref()) {
        out.push(connection_check(c));
    }
    match snp.domain_check {
        Some(DomainCheck::Passed) => out.push(check(
            "domain-xml",
            CheckResult::Passed,
            "the domain XML passed every SEV-SNP check",
        )),
        Some(DomainCheck::Skipped) => out.push(check(
            "domain-xml",
            CheckResult::Skipped,
            "skipped: --ignore-config",
        )),
        Some(DomainCheck::NotApplicable) => {}
        None => {
            if let (Some(e), Some(_)) = (&run.error, host.and_then(|h| h.domain.as_ref())) {
                out.push(check("domain-xml", CheckResult::Failed, e.to_string()));
            }
        }
    }
    out.extend(snp.prelaunch.iter().flatten().map(snp_check));
    if let Some(v) = &snp.validation {
        out.extend(v.outcome.checks.iter().map(snp_check));
    }
    out
}

fn snp_check(c: &crate::snp::validate::Check) -> Check {
    check(
        c.name,
        match c.status {
            Status::Pass => CheckResult::Passed,
            Status::Fail => CheckResult::Failed,
            Status::Skip => CheckResult::Skipped,
        },
        c.message.clone(),
    )
}

/// The document of an SEV-SNP run: verdict, checks in the order they ran
/// (connection, domain XML, ID block, report), and the SNP section.
fn snp_report(r: &mut Report, run: &Run, snp: &SnpRun) {
    r.verdict = match &run.error {
        // Nothing attested without a report, whatever else passed.
        None if snp.validation.is_none() => ReportVerdict::NotAttested,
        None => ReportVerdict::Validated,
        Some(_) if snp.mismatch() => ReportVerdict::Mismatch,
        Some(Error::AttestationFailed(_)) => ReportVerdict::RequirementFailed,
        Some(_) => ReportVerdict::Error,
    };
    r.warnings = snp.warnings.clone();
    r.checks = snp_checks(run, snp);
    let host = snp.host.as_ref();
    let d = snp.domain.as_ref();
    r.snp = Some(SnpSection {
        state: host.and_then(|h| h.state.clone()),
        policy: snp.launch.as_ref().map(|l| format!("{:#x}", l.policy)),
        domain: d.map(|d| SnpDomainValues {
            policy: format!("{:#x}", d.policy),
            host_data: d.host_data.map(|h| hex(&h)),
            id_block: d.id_block.map(|b| SnpIdBlockValues {
                ld: hex(&b.ld),
                family_id: hex(&b.family_id),
                image_id: hex(&b.image_id),
                guest_svn: b.guest_svn,
                policy: format!("{:#x}", b.policy),
            }),
            id_key_digest: d.id_key_digest().map(|k| hex(&k)),
            author_key_digest: d.author_key_digest().map(|k| hex(&k)),
            author_key_enabled: d.author_key_enabled,
            vcek_disabled: d.vcek_disabled,
            kernel_hashes: d.kernel_hashes,
        }),
        expected_measurement: snp.computed.as_ref().map(|c| hex(&c.ld)),
        snp_digest_options: snp.launch.as_ref().map(|l| {
            l.digest_options()
                .iter()
                .map(|o| o.to_string_lossy().into_owned())
                .collect()
        }),
        from_host: snp
            .launch
            .as_ref()
            .map(|l| l.from_host().iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        id_block_hint: snp
            .id_block_explanation
            .as_ref()
            .map(crate::snp::run::id_block_answer),
        id_block_explanation: snp.id_block_explanation.clone(),
        report: snp.validation.as_ref().map(|v| {
            let code = if v.outcome.passed() { 0 } else { 1 };
            crate::snp::attest::validation_document(v, code)
        }),
        notes: host.map(|h| h.notes.clone()).unwrap_or_default(),
    });
}
