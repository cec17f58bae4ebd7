//! The IGVM explainer: when a report's MEASUREMENT differs from the launch
//! digest of the owner's IGVM file, which change of the launch gives it.
//!
//! An IGVM launch is a chain of PAGE_INFO hashes, one per page, then one
//! per VMSA; [`IgvmLaunch`] keeps each page's PAGE_INFO inputs, so a
//! variant is the chain recomputed from its first changed page, continuing
//! from the digest before that page (computed once). What varies, one
//! change at a time (the plan, cheapest first):
//! - the VMSA count: fewer (the first VMSAs only), or more vCPUs than the
//!   file has VMSAs, the extra ones in QEMU's reset state (each named vCPU
//!   model, both VMSA forms, the file's SEV_FEATURES or 0x1) or as copies of
//!   the first VMSA; other state of the extra vCPUs is not in the file;
//! - SEV_FEATURES of every VMSA and of each: each of bits 0 to 15 (and each
//!   other bit the file sets) toggled;
//! - each VMSA's RIP with one of its 64 bits toggled;
//! - each parameter area's size, up to 16 pages more or any fewer;
//! - each directive's pages imported as another type (normal or zero as
//!   unmeasured, unmeasured as zero, secrets and CPUID swapped first);
//! - each directive's GPA with one of bits 12 to 51 toggled.
//!
//! The page variants go from the file's last directive back (a variant
//! there costs a few hashes, one at the first directive the whole file), and
//! the plan stops at a budget of PAGE_INFO hashes ([`IGVM_SEARCH_BUDGET`]),
//! saying so. With the host's copy of the file, the two launches are
//! compared and each difference named ([`differences`]).

use serde::Serialize;

use super::explanation::ser_hex;
use super::{Change, SnpExplainError, SnpExplanation};
use crate::core::igvm::IgvmLaunch;
use crate::core::snp::Ld;

mod chain;
mod change;
mod diff;
mod plan;
mod search;

#[cfg(test)]
mod tests;

pub use change::{IgvmChange, VmsaCountHow};
pub use diff::{differences, MAX_DIFFERENCES};

/// PAGE_INFO hashes the search may spend: about 2 s on two cores. A file
/// of 2,500 pages (10 MiB) has every directive's likely other type tried
/// within it; the GPA variants of large files are cut.
pub const IGVM_SEARCH_BUDGET: u64 = 8_000_000;

/// What the explainer adds for an IGVM launch (`explanation.igvm`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgvmExplanation {
    /// SHA-384 of the owner's IGVM file: it names the build, as the OVMF
    /// hash names a firmware build (`ovmf_hash` holds it too).
    #[serde(serialize_with = "ser_hex")]
    pub file_sha384: Ld,
    /// The search's budget in PAGE_INFO hashes.
    pub budget: u64,
    /// PAGE_INFO hashes spent, in search order up to the answer.
    pub hashes: u64,
    /// Whether the budget left variants untried (and none of those tried matched).
    pub budget_exhausted: bool,
    /// The host's copy of the file, when given.
    pub host_file: Option<HostFileComparison>,
}

/// The host's copy of the IGVM file compared with the owner's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFileComparison {
    /// SHA-384 of the host's file.
    #[serde(serialize_with = "ser_hex")]
    pub sha384: Ld,
    /// Its launch digest.
    #[serde(serialize_with = "ser_hex")]
    pub launch_digest: Ld,
    /// Whether its launch digest is the reported MEASUREMENT: the host
    /// launched this other file.
    pub gives_reported: bool,
    /// Every difference from the owner's file, measured or not.
    pub differences: Vec<Change>,
}

/// An IGVM file as the explainer takes it: its launch and its SHA-384.
#[derive(Debug, Clone, Copy)]
pub struct IgvmFile<'a> {
    /// The launch QEMU makes of it.
    pub launch: &'a IgvmLaunch,
    /// SHA-384 of the file's bytes.
    pub sha384: Ld,
}

fn search_error(_: ()) -> SnpExplainError {
    SnpExplainError::Incomplete
}

/// Compares the owner's IGVM launch with a report's MEASUREMENT and, when
/// they differ, names what the host changed: from the host's copy of the
/// file if it is given and gives the reported value, else the first
/// single change (of the owner's launch, then of the host's) within
/// `budget` PAGE_INFO hashes.
pub fn explain(
    owner: IgvmFile,
    reported: &Ld,
    host: Option<IgvmFile>,
    budget: u64,
) -> Result<SnpExplanation, SnpExplainError> {
    let chain = chain::Chain::new(owner.launch);
    let computed = chain.digest();
    let host_chain = host.map(|h| chain::Chain::new(h.launch));
    let host_file = host
        .zip(host_chain.as_ref())
        .map(|(h, c)| HostFileComparison {
            sha384: h.sha384,
            launch_digest: c.digest(),
            gives_reported: c.digest() == *reported,
            differences: differences(owner.launch, h.launch)
                .into_iter()
                .map(Change::Igvm)
                .collect(),
        });
    let mut x = SnpExplanation::start(*reported, computed, owner.sha384, super::FirmwareForm::Ovmf);
    x.variants_tried += usize::from(host.is_some());
    x.igvm = Some(IgvmExplanation {
        file_sha384: owner.sha384,
        budget,
        hashes: 0,
        budget_exhausted: false,
        host_file,
    });
    if x.matches() {
        return Ok(x);
    }
    let measured = x.host_measured_differences();
    if x.host_gives_reported() {
        x.searched = "the host's copy of the IGVM file".into();
        x.changes = Some(measured);
        return Ok(x);
    }
    let found = search::search(&chain, reported, budget).map_err(search_error)?;
    x.variants_tried += found.tried;
    x.searched = found.words;
    let mut spent = found.hashes;
    let mut exhausted = found.exhausted;
    x.changes = found.change.map(|c| vec![Change::Igvm(c)]);
    if let (None, Some(hc)) = (&x.changes, &host_chain) {
        if hc.digest() != computed {
            let f =
                search::search(hc, reported, budget.saturating_sub(spent)).map_err(search_error)?;
            x.variants_tried += f.tried;
            x.searched = format!(
                "{}; then one change of the host's file: {}",
                x.searched, f.words
            );
            spent += f.hashes;
            exhausted |= f.exhausted;
            x.changes = f
                .change
                .map(|c| measured.into_iter().chain([Change::Igvm(c)]).collect());
        }
    }
    if let Some(i) = x.igvm.as_mut() {
        i.hashes = spent;
        i.budget_exhausted = exhausted && x.changes.is_none();
    }
    Ok(x)
}
