//! `snp-report`: every field of an SEV-SNP attestation report the guest
//! obtained, human or JSON (schema/snp-report.schema.json). Exit codes: 0,
//! or 2 for bad input.

use std::path::PathBuf;

use clap::Args;

use super::snp_options::ProductArg;
use crate::core::snp_report::Product;
use crate::error::Result;
use crate::snp::attest;

/// `snp-report`: print every field of a report.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report: raw 1184 bytes, an SNP_GET_REPORT response, or a report followed by its certificate table
    #[arg(value_name = "REPORT")]
    report: PathBuf,

    /// Product for decoding the TCB fields of a v2 report (v3+ reports name it in CPUID)
    #[arg(long, value_enum)]
    product: Option<ProductArg>,

    /// The VCEK or VLEK (DER or PEM): its productName places a v2 report
    #[arg(long, value_name = "FILE")]
    vek: Option<PathBuf>,

    /// Print one JSON document (schema/snp-report.schema.json)
    #[arg(long)]
    json: bool,
}

/// `snp-report`: every field, human or JSON.
pub fn report_main(a: &ReportArgs) -> Result<String> {
    let vek = a.vek.iter().map(|p| ("--vek", p.as_path()));
    crate::input::at_most_one_stdin([("REPORT", a.report.as_path())].into_iter().chain(vek))?;
    let doc = attest::report_document(&a.report, a.vek.as_deref(), a.product.map(Product::from))?;
    if a.json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&doc.json).unwrap_or_default()
        ));
    }
    Ok(doc.text)
}
