//! `snp-ovmf-hash`: the SEV-SNP launch digest after the firmware image
//! alone, to seed `snp-digest --ovmf-hash` later.

use std::path::PathBuf;

use clap::Args;

use super::snp_digest::{format_ld, OutputFormat};
use crate::error::Result;
use crate::snp::digest;

#[derive(Debug, Args)]
pub(crate) struct OvmfHashArgs {
    /// OVMF firmware image
    #[arg(long, value_name = "FILE")]
    ovmf: PathBuf,

    /// How to print the hash
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Hex)]
    output_format: OutputFormat,
}

/// Runs `snp-ovmf-hash`; returns what it prints.
pub(crate) fn snp_ovmf_hash(a: &OvmfHashArgs) -> Result<String> {
    let ld = digest::ovmf_hash(&a.ovmf)?;
    Ok(format!("{}\n", format_ld(&ld, a.output_format)))
}
