//! The JSON documents of `snp-validate`, typed. Their fields are in
//! alphabetical order, the order of the documents' keys.

use serde::{Serialize, Serializer};

use crate::core::snp_report::Product;
use crate::snp::explain::SnpExplanation;
use crate::snp::validate::Status;

/// Schema version of the `snp-validate --json` documents
/// (schema/snp-validate.schema.json); bumped on incompatible changes.
pub const VALIDATE_SCHEMA_VERSION: u32 = 1;

/// `snp-validate --json` once the report was read and every check ran
/// (schema/snp-validate.schema.json), and the main command's `snp.report`.
/// The fields are in alphabetical order: the document's key order.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationDocument {
    /// Every check, in the order it ran.
    pub checks: Vec<CheckEntry>,
    /// The container the report was found in, described.
    pub container: &'static str,
    /// The exit code: 0 when every check passed, 1 when one failed.
    pub exit_code: i32,
    /// The names of the failed checks, in the order they ran.
    pub failed: Vec<&'static str>,
    /// The report's MEASUREMENT, in hex.
    pub measurement: String,
    /// The product whose chain and TCB layout the report was held to.
    #[serde(serialize_with = "product_name")]
    pub product: Product,
    /// Where the product came from: CPUID, the VEK's productName, or --product.
    pub product_source: &'static str,
    /// [`VALIDATE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// SIGNING_KEY of the report: VCEK, VLEK, NONE or reserved (n).
    pub signer: String,
    /// Where the VEK and each certificate of its chain came from.
    pub sources: Vec<SourceEntry>,
    /// Whose roots the chain ends in.
    pub trust_anchors: TrustAnchorKind,
    /// No check failed.
    pub valid: bool,
    /// The report's VERSION.
    pub version: u32,
}

/// One check of a [`ValidationDocument`], fields in alphabetical order.
#[derive(Debug, Clone, Serialize)]
pub struct CheckEntry {
    /// The explainer's whole answer (schema/snp-explanation.schema.json, its
    /// keys in alphabetical order): on `expect.measurement` only, when it
    /// failed and the launch options were given.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "keys_sorted"
    )]
    pub explanation: Option<SnpExplanation>,
    /// How long the explainer's search took, with `explanation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation_seconds: Option<f64>,
    /// On a failed check, what to say beside it ([`hint`](super::hint)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// What the check found.
    pub message: String,
    /// The check's stable name, e.g. `chain.validity`.
    pub name: &'static str,
    /// `pass`, `fail` or `skip`.
    #[serde(serialize_with = "status_name")]
    pub status: Status,
}

/// Where one certificate (or the VEK) of a [`ValidationDocument`] came from.
#[derive(Debug, Clone, Serialize)]
pub struct SourceEntry {
    /// The file, directory, certificate table or KDS URL it was read from.
    pub from: String,
    /// VEK, ASK, ASVK or ARK.
    pub role: String,
}

/// Whose roots a [`ValidationDocument`]'s chain ends in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustAnchorKind {
    /// AMD's ARK, ASK and ASVK, built in.
    Builtin,
    /// Certificates given with --trust-anchors (warned on stderr).
    Custom,
}

/// `snp-validate --json` on bad input or usage (exit 2): nothing was
/// validated. The fields are in alphabetical order.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorDocument {
    /// What was wrong.
    pub error: String,
    /// The exit code (2).
    pub exit_code: i32,
    /// [`VALIDATE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always false.
    pub valid: bool,
}

impl ErrorDocument {
    /// The document of an error that exits with `exit_code`.
    pub fn new(exit_code: i32, error: impl Into<String>) -> ErrorDocument {
        ErrorDocument {
            error: error.into(),
            exit_code,
            schema_version: VALIDATE_SCHEMA_VERSION,
            valid: false,
        }
    }
}

fn product_name<S: Serializer>(p: &Product, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

fn status_name<S: Serializer>(st: &Status, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(st.name())
}

/// The explainer's answer with its keys (and its changes' keys) in
/// alphabetical order, as the rest of the document: through a
/// `serde_json::Value`, whose maps keep their keys sorted.
fn keys_sorted<S: Serializer>(
    x: &Option<SnpExplanation>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    serde_json::to_value(x)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}
