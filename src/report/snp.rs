//! The SEV-SNP part of the `--json` document (`snp`) and the checks of an
//! SNP run, in the order they ran.

use serde::Serialize;

use super::{check, connection_check, Check, CheckResult, Report, ReportVerdict, Run};
use crate::core::hex;
use crate::error::Error;
use crate::provenance::DomainCheck;
use crate::snp::run::SnpRun;
use crate::snp::validate::Status;

/// An SEV-SNP guest's part of the document.
#[derive(Debug, Default, Serialize)]
pub struct SnpSection {
    /// The domain's state ("shut off", "paused", "running") or QEMU's SEV state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The guest policy (the domain's `<policy>`, or QEMU's `snp-policy`), as
    /// a 0x-number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// What the domain XML states of the launch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<SnpDomainValues>,
    /// The launch digest of the owner's files and the domain's launch: the
    /// MEASUREMENT a genuine report holds and the LD a right ID block holds,
    /// in hex.
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
    /// The guest policy (`<policy>`), as a 0x-number.
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
    /// The guest policy the ID block allows, as a 0x-number.
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
    // The result document has no warning result: a warned check held, and
    // says so first in its message.
    let (result, message) = match c.status {
        Status::Pass => (CheckResult::Passed, c.message.clone()),
        Status::Fail => (CheckResult::Failed, c.message.clone()),
        Status::Skip => (CheckResult::Skipped, c.message.clone()),
        Status::Warn => (CheckResult::Passed, format!("WARNING: {}", c.message)),
    };
    check(c.name, result, message)
}

/// The document of an SEV-SNP run: verdict, checks in the order they ran
/// (connection, domain XML, ID block, report), and the SNP section.
pub(super) fn snp_report(r: &mut Report, run: &Run, snp: &SnpRun) {
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
            let mut doc = crate::snp::attest::validation_document(v, code);
            doc.sealed = snp.sealed.as_ref().map(|s| s.document());
            doc
        }),
        notes: host.map(|h| h.notes.clone()).unwrap_or_default(),
    });
}
