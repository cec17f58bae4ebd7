//! The machine-readable result (`--json`): one document on stdout with the
//! verdict, the exit code, the reported and computed values, the digests of
//! every input, the checks that ran, the explainer's result and what was
//! injected. Never the TIK, the TEK or secret data. Field names are stable;
//! schema/result.schema.json describes them.
//!
//! The document is built once, at the end, from the record of the run
//! ([`Run`]): each stage's result, or the error that stopped it.

mod sev;
mod snp;

use serde::Serialize;

use self::sev::{checks, host_file, inputs};
pub use self::sev::{
    Cmdline, Computed, Explanation, FileDigest, HostFile, Inputs, Provenance, Reported, Vmsa,
    VmsaFormName, VmsaOrigin,
};
use self::snp::snp_report;
pub use self::snp::{SnpDomainValues, SnpIdBlockValues, SnpSection};
use crate::core::hex;
use crate::error::Error;
use crate::sev::policy;
use crate::sev::resolve::{ExpectedLaunch, Resolved};
use crate::sev::validate::{Outcome, Verdict};
use crate::snp::run::SnpRun;
use crate::source::{Comparison, Connection, GuestKind, HostReport, SourceKind};

/// Schema version of the document; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// What one run produced, stage by stage; `None` where a stage did not run.
pub struct Run {
    /// The kind of source the run uses.
    pub source: SourceKind,
    /// The guest's kind, once the source said it.
    pub guest: Option<GuestKind>,
    /// The generation the owner expects, once the arguments said.
    pub generation: Option<crate::generation::Expected>,
    /// The stages of an SEV-SNP guest (instead of the SEV ones below).
    pub snp: Option<SnpRun>,
    /// What the host reported of an SEV or SEV-ES launch.
    pub host: Option<HostReport>,
    /// The expected launch decided: who gave each value, and the domain XML's check.
    pub resolved: Option<Resolved>,
    /// The expected launch with its files read and hashed.
    pub expected: Option<ExpectedLaunch>,
    /// The validation: verdict, computed values, requirements and the explainer's result.
    pub outcome: Option<Outcome>,
    /// On a mismatch: the host's copies of the owner's files, where reachable.
    pub host_files: Option<Result<Vec<Comparison>, String>>,
    /// What the secrets stage injected.
    pub injection: Option<Injection>,
    /// Warnings of the secrets stage.
    pub warnings: Vec<String>,
    /// The error that stopped the run; `None` when it succeeded.
    pub error: Option<Error>,
}

impl Run {
    /// A run over `source` with no stage done yet.
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
    /// The measurement differs from the expected one: an SEV guest's MEASURE,
    /// or an SEV-SNP ID block's LD or report's MEASUREMENT.
    Mismatch,
    /// Another check failed: an owner requirement (SEV), or an ID block or
    /// report check (SEV-SNP).
    RequirementFailed,
    /// The run stopped on any other error.
    Error,
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    /// The check ran and held.
    Passed,
    /// The check ran and did not hold.
    Failed,
    /// The check was skipped (`--ignore-config`).
    Skipped,
}

/// Where packaged secrets went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    /// Written to files for the host to inject (offline).
    Files,
    /// Injected through libvirt.
    Libvirt,
    /// Injected through QMP.
    Qmp,
}

/// The `--json` document of one run (schema/result.schema.json).
#[derive(Debug, Serialize)]
pub struct Report {
    /// The schema's version, [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The verdict.
    pub verdict: ReportVerdict,
    /// The process's exit status, 0 to 10 (the man page's EXIT STATUS).
    pub exit_code: i32,
    /// The error message; absent when `exit_code` is 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The kind of source: offline, libvirt or qmp.
    pub source: SourceKind,
    /// `sev` or `sev-snp`, once the source said; absent when the run stopped before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<GuestKind>,
    /// The generation the owner expects, and what said so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<crate::generation::Expected>,
    /// An SEV-SNP guest's launch, ID block and report; absent for SEV.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snp: Option<SnpSection>,
    /// What the host reported (or the command line gave) of an SEV launch;
    /// absent before the host answered, and for SEV-SNP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported: Option<Reported>,
    /// The launch digest and MEASURE computed from the owner's inputs; absent
    /// when the validation did not run, and for SEV-SNP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computed: Option<Computed>,
    /// The reported policy decoded: its value, flag names and minimum API
    /// version; absent with `reported`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<policy::Decoded>,
    /// Warning messages, such as a policy that allows debugging.
    pub warnings: Vec<String>,
    /// Path and digest of each input, and the VMSAs as measured; empty before
    /// the inputs were read, and for SEV-SNP.
    pub inputs: Inputs,
    /// Who gave each value of the expected launch (owner, or host under --insecure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// The checks that ran, in order.
    pub checks: Vec<Check>,
    /// On an SEV mismatch: the explainer's result; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// What the secrets stage injected; absent when it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection: Option<Injection>,
    /// On a mismatch over qemu+ssh: the host's copies compared over SFTP;
    /// left out when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_files: Vec<HostFile>,
}

/// One check that ran (`checks`).
#[derive(Debug, Serialize)]
pub struct Check {
    /// The check's name, such as `connection`, `domain-xml`, `measurement` or
    /// `min-api`.
    pub name: String,
    /// Whether it passed, failed or was skipped.
    pub result: CheckResult,
    /// What it found, in one sentence.
    pub message: String,
}

/// What the secrets stage injected (`injection`); never the secrets.
#[derive(Debug, Clone, Serialize)]
pub struct Injection {
    /// Where the secret packet went.
    pub destination: Destination,
    /// Each secret's GUID and size.
    pub secrets: Vec<InjectedSecret>,
    /// The length of the padded secret table, in bytes.
    pub table_bytes: usize,
    /// How the packet was injected (and whether the guest was resumed), or
    /// where its files were written.
    pub detail: String,
}

/// One injected secret.
#[derive(Debug, Clone, Serialize)]
pub struct InjectedSecret {
    /// The secret's GUID, hyphenated lowercase hex.
    pub guid: String,
    /// The secret's length, in bytes.
    pub bytes: usize,
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

pub(super) fn check(name: &str, result: CheckResult, message: impl Into<String>) -> Check {
    Check {
        name: name.to_string(),
        result,
        message: message.into(),
    }
}

/// A libvirt connection: remote, or local under --insecure (else the run stopped).
pub(super) fn connection_check(c: &Connection) -> Check {
    let msg = if c.remote {
        format!("{} is a remote connection", c.uri)
    } else {
        format!("{} is a local connection, allowed by --insecure", c.uri)
    };
    check("connection", CheckResult::Passed, msg)
}
