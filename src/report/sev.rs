//! The SEV and SEV-ES parts of the `--json` document: the reported and
//! computed values, the digests of every input, who gave each, and the
//! checks of an SEV run.

use serde::Serialize;

use super::{check, connection_check, Check, CheckResult, Run};
use crate::core::hex;
use crate::error::Error;
use crate::provenance::{DomainCheck, Origin};
use crate::sev::resolve::{ExpectedLaunch, Resolved};
use crate::sev::validate::{Outcome, Verdict};
use crate::source::Comparison;

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
    /// KVM_SEV_ES_INIT: the FPU area stays zero.
    Legacy,
    /// KVM_SEV_INIT2: MXCSR and the x87 control word are set.
    Init2,
}

/// One of the host's files compared with the owner's (`host_files`).
#[derive(Debug, Default, Serialize)]
pub struct HostFile {
    /// Which input: `firmware`, `kernel` or `initrd`.
    pub what: String,
    /// The path the domain XML names on the host.
    pub host_path: String,
    /// SHA-256 of the host's file, in hex; absent when it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_sha256: Option<String>,
    /// SHA-256 of the owner's file, in hex.
    pub owner_sha256: String,
    /// Whether the host's copy equals the owner's; null when it could not be read.
    pub same: Option<bool>,
    /// Why the host's file could not be read; absent when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The values of an SEV launch the host reported or the command line gave
/// (`reported`).
#[derive(Debug, Default, Serialize)]
pub struct Reported {
    /// MEASURE and MNONCE as reported (48 bytes), in base64.
    pub measurement: String,
    /// MEASURE (32 bytes), in hex.
    pub measure: String,
    /// MNONCE (16 bytes), in hex.
    pub mnonce: String,
    /// The firmware's API major version.
    pub api_major: u8,
    /// The firmware's API minor version.
    pub api_minor: u8,
    /// The firmware's build ID.
    pub build_id: u8,
    /// The guest policy, as a number.
    pub policy: u32,
}

/// What the owner's inputs give (`computed`).
#[derive(Debug, Default, Serialize)]
pub struct Computed {
    /// GCTX.LD of the owner's inputs (SHA-256), in hex.
    pub launch_digest: String,
    /// The MEASURE that launch digest gives with the reported values and the
    /// TIK, in hex.
    pub measure: String,
}

/// The inputs of the expected launch (`inputs`).
#[derive(Debug, Default, Serialize)]
pub struct Inputs {
    /// The firmware's path and SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FileDigest>,
    /// The kernel's path and SHA-256; absent without measured direct boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<FileDigest>,
    /// The initrd's path and SHA-256; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initrd: Option<FileDigest>,
    /// The kernel command line and its SHA-256; absent without measured direct
    /// boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Cmdline>,
    /// The padded kernel hashes table (176 bytes), in hex; absent without
    /// measured direct boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_hashes_table: Option<String>,
    /// The VMSA pages measured; absent for SEV (not SEV-ES).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmsa: Option<Vmsa>,
}

/// An input file: its path and digest.
#[derive(Debug, Default, Serialize)]
pub struct FileDigest {
    /// The owner's path to the file.
    pub path: String,
    /// SHA-256 of the file, in hex.
    pub sha256: String,
}

/// The kernel command line (`inputs.cmdline`).
#[derive(Debug, Default, Serialize)]
pub struct Cmdline {
    /// The command line; empty when none was given.
    pub value: String,
    /// SHA-256 of the command line and its terminating NUL, in hex.
    pub sha256: String,
}

/// The VMSA pages of an SEV-ES launch, as measured (`inputs.vmsa`).
#[derive(Debug, Serialize)]
pub struct Vmsa {
    /// Whether the pages are the owner's files or were built here.
    pub source: VmsaOrigin,
    /// The number of vCPUs, each measured with one VMSA page.
    pub num_cpus: u32,
    /// The vCPU signature the pages were built for, as a 0x-number; absent for
    /// files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_signature: Option<String>,
    /// The form the pages were built in; absent for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<VmsaFormName>,
    /// SHA-256 of the boot CPU's VMSA page, in hex.
    pub bsp_sha256: String,
    /// SHA-256 of the other vCPUs' VMSA page, in hex; absent with one vCPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ap_sha256: Option<String>,
}

/// The explainer's result on an SEV mismatch (`explanation`).
#[derive(Debug, Default, Serialize)]
pub struct Explanation {
    /// The smallest set of changes to the inputs that reproduces the reported
    /// measurement; null when none does.
    pub matched: Option<Vec<String>>,
    /// How many variants of the inputs were evaluated.
    pub variants_tried: usize,
    /// The answer for the owner, in one sentence.
    pub hint: String,
}

/// Who gave each value of the expected launch; absent values are left out.
#[derive(Debug, Default, Serialize)]
pub struct Provenance {
    /// Who gave the firmware.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<Origin>,
    /// Who gave the kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Origin>,
    /// Who gave the initrd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initrd: Option<Origin>,
    /// Who gave the kernel command line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Origin>,
    /// Who gave the number of vCPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_cpus: Option<Origin>,
    /// Who gave the vCPU signature the VMSAs are built from.
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

/// The checks in the order they ran: connection, domain XML, measurement, requirements.
pub(super) fn checks(run: &Run) -> Vec<Check> {
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
pub(super) fn inputs(e: &ExpectedLaunch, outcome: Option<&Outcome>) -> Inputs {
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

pub(super) fn host_file(c: &Comparison) -> HostFile {
    HostFile {
        what: c.what.clone(),
        host_path: c.host_path.clone(),
        host_sha256: c.host_sha256.as_ref().ok().map(|h| hex(h)),
        owner_sha256: hex(&c.owner_sha256),
        same: c.differs().map(|d| !d),
        error: c.host_sha256.as_ref().err().cloned(),
    }
}
