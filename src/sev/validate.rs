//! Validation: the expected launch against what the host reported. Pure:
//! no file, socket or clock is touched beyond the explainer's own timing,
//! so it can be tested with launches built by hand.
//!
//! The launch digest is recomputed from the hashed inputs, MEASURE from it
//! under the owner's TIK, and the two MEASUREs compared in constant time. On
//! a mismatch the explainer looks for the smallest change that reproduces
//! the reported value; on a match the owner's requirements are checked,
//! because only then are the reported API, build and policy bound by the TIK.

use serde::Serialize;

use crate::core::hex;
use crate::core::measurement::{self, LaunchInfo};
use crate::sev::explain;
use crate::sev::launch::{self, LdTrace};
use crate::sev::policy::{self, Requirements};
use crate::sev::resolve::ExpectedLaunch;
use crate::source::ReportedLaunch;

/// The verdict; the JSON `verdict` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The measurement matches and every requirement holds.
    Validated,
    /// The measurement does not match.
    Mismatch,
    /// The measurement matches, but a requirement does not hold.
    RequirementFailed,
}

/// One owner requirement checked against the reported values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementResult {
    /// The requirement: `min-api`, `allowed-build`, `require-policy` or
    /// `forbid-policy`.
    pub name: &'static str,
    /// Whether the reported value meets it.
    pub passed: bool,
    /// One sentence with the reported and the required values.
    pub message: String,
}

/// What the explainer found on a mismatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// The smallest set of changes that reproduces the reported measurement.
    pub matched: Option<Vec<String>>,
    /// How many variants were evaluated.
    pub tried: usize,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// One sentence for the owner.
    pub hint: String,
}

/// The result of validating one launch.
pub struct Outcome {
    /// Whether the measurement matched and the requirements held.
    pub verdict: Verdict,
    /// The launch digest and its intermediate values.
    pub trace: LdTrace,
    /// MEASURE computed from the expected launch.
    pub computed: [u8; 32],
    /// The message MEASURE is the HMAC of.
    pub measure_message: [u8; 56],
    /// What the explainer found, on a mismatch with [`Explain::Yes`].
    pub explanation: Option<Explained>,
    /// Checked only when the measurement matches.
    pub requirements: Vec<RequirementResult>,
    /// What the policy lets the host do (on a match).
    pub warnings: Vec<String>,
}

impl Outcome {
    /// The error a run ends with for this verdict, if any.
    pub fn error(&self) -> Option<crate::Error> {
        let msg = match self.verdict {
            Verdict::Validated => return None,
            Verdict::Mismatch => "Measurement does not match, VM is not trustworthy".to_string(),
            Verdict::RequirementFailed => {
                let failed: Vec<&str> = self
                    .requirements
                    .iter()
                    .filter(|r| !r.passed)
                    .map(|r| r.message.as_str())
                    .collect();
                format!(
                    "the measurement matches, but the launch does not meet your requirements: {}",
                    failed.join("; ")
                )
            }
        };
        Some(crate::Error::AttestationFailed(msg))
    }
}

/// Whether a mismatch is explained (the explainer's search costs time a
/// `--quiet` run does not want).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explain {
    /// Search variants of the inputs for the change that reproduces the
    /// reported measurement.
    Yes,
    /// Report the mismatch alone (`--quiet` without `--json`).
    No,
}

/// Validates `reported` against `expected`, explaining a mismatch.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use sev_validate::core::keys::{Tek, Tik};
/// use sev_validate::core::measurement::{LaunchDigest, LaunchInfo, Measurement};
/// use sev_validate::sev::launch::Firmware;
/// use sev_validate::sev::policy::Requirements;
/// use sev_validate::sev::resolve::{ExpectedLaunch, Keys, Sourced};
/// use sev_validate::source::ReportedLaunch;
/// use sev_validate::sev::validate::{validate, Verdict};
///
/// let firmware = Firmware {
///     digest_after_firmware: LaunchDigest::from_firmware(&b"not really OVMF"[..])?,
///     footer: None,
///     len: 15,
/// };
/// let expected = ExpectedLaunch {
///     firmware,
///     firmware_path: Sourced::owner("OVMF.fd".into()),
///     kernel: None,
///     vmsa: None,
///     keys: Keys {
///         tik: Tik::from_slice(&[1; 16]).unwrap(),
///         tek: Tek::from_slice(&[2; 16]).unwrap(),
///         from_tk_file: false,
///     },
///     host_signature: None,
///     other_policies: vec![],
///     unused_vmsa: None,
/// };
/// let reported = ReportedLaunch {
///     measurement: Measurement::from_bytes(&[0; 48]).unwrap(),
///     info: LaunchInfo { api_major: 1, api_minor: 40, build_id: 40, policy: 3 },
/// };
/// let outcome = validate(&expected, &reported, &Requirements::default())?;
/// assert_eq!(outcome.verdict, Verdict::Mismatch);
/// # Ok(())
/// # }
/// ```
pub fn validate(
    expected: &ExpectedLaunch,
    reported: &ReportedLaunch,
    requirements: &Requirements,
) -> crate::Result<Outcome> {
    validate_with(expected, reported, requirements, Explain::Yes)
}

/// [`validate`], with the explainer on or off.
pub fn validate_with(
    expected: &ExpectedLaunch,
    reported: &ReportedLaunch,
    requirements: &Requirements,
    explain: Explain,
) -> crate::Result<Outcome> {
    let info = reported.info;
    let trace = launch::compute_ld(
        &expected.firmware,
        expected.kernel.as_ref().map(|k| &k.hashes),
        expected
            .vmsa
            .as_ref()
            .map(|v| (&v.source, v.num_cpus.value)),
    )
    .map_err(|e| crate::Error::Usage(e.to_string()))?;
    let nonce = reported.measurement.mnonce;
    let computed = measurement::compute_measure(&expected.keys.tik, &info, &trace.ld, &nonce);
    let mut outcome = Outcome {
        verdict: Verdict::Validated,
        measure_message: measurement::measure_message(&info, &trace.ld, &nonce),
        trace,
        computed,
        explanation: None,
        requirements: Vec::new(),
        warnings: Vec::new(),
    };
    if !measurement::measures_equal(&computed, &reported.measurement.measure) {
        outcome.verdict = Verdict::Mismatch;
        if explain == Explain::Yes {
            outcome.explanation = Some(explain_mismatch(expected, reported, &outcome.trace));
        }
        return Ok(outcome);
    }
    outcome.requirements = check_requirements(requirements, &info);
    if outcome.requirements.iter().any(|r| !r.passed) {
        outcome.verdict = Verdict::RequirementFailed;
        return Ok(outcome);
    }
    outcome.warnings = policy::warnings(info.policy);
    Ok(outcome)
}

fn check_requirements(requirements: &Requirements, info: &LaunchInfo) -> Vec<RequirementResult> {
    requirements
        .check(info)
        .into_iter()
        .map(|(name, passed, message)| RequirementResult {
            name,
            passed,
            message,
        })
        .collect()
}

/// Runs the explainer over variants of the expected launch.
fn explain_mismatch(
    expected: &ExpectedLaunch,
    reported: &ReportedLaunch,
    trace: &LdTrace,
) -> Explained {
    let firmware = &expected.firmware;
    let known = explain::Known {
        firmware: &firmware.digest_after_firmware,
        kernel: expected.kernel.as_ref().map(|k| {
            (
                &k.hashes,
                k.cmdline.as_ref().map(|c| c.value.as_str()),
                k.initrd.is_some(),
            )
        }),
        vmsa: expected
            .vmsa
            .as_ref()
            .or(expected.unused_vmsa.as_ref())
            .map(|v| (&v.source, v.num_cpus.value)),
        ap_reset_addr: firmware
            .footer
            .as_ref()
            .and_then(|t| t.sev_es_reset_addr().ok().flatten()),
        host_signature: expected.host_signature,
        tik: &expected.keys.tik,
        tek: &expected.keys.tek,
        tk_file: expected.keys.from_tk_file,
        info: reported.info,
        other_policies: expected.other_policies.clone(),
        reported: reported.measurement,
    };
    let started = std::time::Instant::now();
    let x = explain::explain(&known);
    let seconds = started.elapsed().as_secs_f64();
    let hint = match &x.matched {
        Some(changes) => format!(
            "the reported measurement {}",
            explain::join_changes(changes)
        ),
        None => format!(
            "none of {} variants of the inputs (TIK/TEK, kernel hashes, cmdline whitespace, initrd, \
             vCPU counts, VMSA forms, CPU signatures, policy ES and NODBG bits) reproduces the reported measurement, so the \
             firmware image or the TIK is most likely wrong, or the values come from another launch; \
             compare the firmware SHA-256 {} and the launch digest {} with the host's",
            x.tried,
            firmware
                .digest_after_firmware
                .firmware_digest()
                .map(|d| hex(&d))
                .unwrap_or_default(),
            hex(&trace.ld)
        ),
    };
    Explained {
        matched: x.matched,
        tried: x.tried,
        seconds,
        hint,
    }
}
