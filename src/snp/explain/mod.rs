//! The SEV-SNP mismatch explainer. When the MEASUREMENT of a guest's
//! attestation report differs from the launch digest of the owner's inputs,
//! the owner's question is which input the host changed. The launch digest is
//! a public function of the launch inputs, so the explainer recomputes it for
//! plausible variants of them and names the smallest change that reproduces
//! the reported value, in the words of the `snp-digest` option to change and
//! of what the host did.
//!
//! Pure and cheap: the firmware image is hashed once by the caller (the LD
//! after its pages, [`OwnerLaunch::ovmf_hash`]) and the kernel, initrd and
//! command line once too ([`DirectBoot::hashes`]); every variant continues a
//! clone of that state. The vCPU count costs one PAGE_INFO per extra vCPU, so
//! every count from 1 to [`MAX_VCPUS_TRIED`] is tried for every other variant.
//!
//! What varies (measurement.md §5 and §6, snp-attestation.md §6):
//! - the vCPU count;
//! - the vCPU signature: every named QEMU model, and the owner's own;
//! - the VMM (QEMU, ec2, gce);
//! - the guest features (SEV_FEATURES): 0x1, 0x21 (DebugSwap), Secure TSC,
//!   and each of bits 0 to 15 of the owner's value toggled;
//! - the VMSA form (KVM_SEV_INIT2 or legacy);
//! - with a direct kernel boot: kernel hashes off, whitespace changes of the
//!   command line, no initrd (and a command line change with no initrd).
//!
//! Up to [`MAX_CHANGES`] of these at once, each with any vCPU count.
//!
//! The OVMF + COCONUT-SVSM form (`snp-digest --svsm`) has its own search
//! ([`explain_svsm`]) over the inputs that form has: the vCPU count and
//! signature and the OVMF_VARS size; its answer is the same
//! [`SnpExplanation`].
//!
//! The parts: the words of a change (`change`) and of the whole answer
//! (`explanation`), the variants of each input (`variants`) and the search
//! over their combinations (`search`); `svsm`, the OVMF + SVSM form's search.

use crate::core::kernel_hashes::KernelHashes;
use crate::core::snp::{Ld, SnpError, SnpFirmware, SvsmError};
use crate::core::vmsa::{VmmType, VmsaConfig};

mod change;
mod explanation;
pub mod igvm;
mod search;
mod svsm;
mod variants;

#[cfg(test)]
mod tests;

pub use change::{Change, CmdlineChange};
pub use explanation::{FirmwareForm, ReportField, SnpExplanation};
pub use search::explain;
pub use svsm::{explain_svsm, SvsmOwner, COMMON_VARS_SIZES, VARS_PAGE_STEPS};

/// vCPU counts tried: 1 to this (or to the owner's count, if larger).
pub const MAX_VCPUS_TRIED: u32 = 64;
/// Changes combined at most, besides the vCPU count.
pub const MAX_CHANGES: usize = 2;

/// The owner's direct kernel boot (`--kernel`, `--initrd`, `--append`), hashed once.
#[derive(Debug, Clone, Copy)]
pub struct DirectBoot<'a> {
    /// The kernel, initrd and command line digests QEMU puts in the table.
    pub hashes: KernelHashes,
    /// The command line as given (`--append`); `None` measures as empty.
    pub cmdline: Option<&'a str>,
    /// Whether an initrd was given (`--initrd`).
    pub initrd: bool,
}

/// The owner's expected SNP launch: what `snp-digest` takes, with the files
/// already hashed.
#[derive(Debug, Clone, Copy)]
pub struct OwnerLaunch<'a> {
    /// The launch digest after the firmware image's pages (`snp-ovmf-hash`).
    pub ovmf_hash: Ld,
    /// The firmware's footer table and SEV metadata.
    pub firmware: &'a SnpFirmware,
    /// vCPUs at launch (`--vcpus`), one VMSA each.
    pub vcpus: u32,
    /// The VMM expected to launch the guest (`--vmm-type`).
    pub vmm: VmmType,
    /// VMSA form, vCPU signature and guest features.
    pub vmsa: VmsaConfig,
    /// Whether the owner gave a vCPU signature (`--vcpu-type`, `--vcpu-sig` or
    /// family/model/stepping); without one `vmsa.cpu_signature` is unused
    /// (ec2 and gce load a fixed RDX).
    pub signature_given: bool,
    /// Measured direct kernel boot, if the owner expects one.
    pub kernel: Option<DirectBoot<'a>>,
}

/// Why the explainer cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SnpExplainError {
    /// The owner's own launch cannot be measured (the same refusal `snp-digest` gives).
    #[error("the expected launch cannot be measured: {0}")]
    Launch(#[from] SnpError),
    /// The owner's own OVMF + SVSM launch cannot be measured.
    #[error("the expected launch cannot be measured: {0}")]
    Svsm(#[from] SvsmError),
    /// A search thread stopped (a bug): an incomplete search names nothing.
    #[error("the search for the changed input stopped before its end (a bug in virt-qemu-sev-validate; please report it)")]
    Incomplete,
    /// The VMM loads the vCPU signature into RDX, and the owner gave none.
    #[error("--vmm-type {} loads the vCPU signature into every VMSA, but no vCPU signature was given", .0.name())]
    NoSignature(VmmType),
}
