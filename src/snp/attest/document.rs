//! The JSON documents of `snp-validate` and `snp-report`, typed. Their
//! fields are in alphabetical order, the order of the documents' keys.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::core::snp_report::{Product, TcbLayout, TcbVersion};
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
    /// No MEASUREMENT was expected: `--no-measurement-check` waived the
    /// check, so nothing about the guest's contents was attested.
    pub measurement_waived: bool,
    /// The product whose chain and TCB layout the report was held to.
    #[serde(serialize_with = "product_name")]
    pub product: Product,
    /// Where the product came from: CPUID, the VEK's productName, or --product.
    pub product_source: &'static str,
    /// [`VALIDATE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// What was sealed to the guest's key (`--seal-secret`), when every
    /// check passed and the file was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedDocument>,
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

/// The sealed file of a [`ValidationDocument`]: never the secrets, only
/// their GUIDs and lengths. Fields in alphabetical order.
#[derive(Debug, Clone, Serialize)]
pub struct SealedDocument {
    /// Each secret of the sealed table, in its order.
    pub entries: Vec<SealedEntry>,
    /// The MEASUREMENT the file is bound to, in hex.
    pub measurement: String,
    /// The sealed file written.
    pub path: String,
    /// The REPORT_ID the file is bound to, in hex.
    pub report_id: String,
}

/// One secret of a [`SealedDocument`].
#[derive(Debug, Clone, Serialize)]
pub struct SealedEntry {
    /// The secret's GUID.
    pub guid: String,
    /// The secret's length in bytes.
    pub length: usize,
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

/// `snp-report --json` (schema/snp-report.schema.json): a report's fields
/// decoded, numbers that are bit fields or addresses in hex, byte strings in
/// hex. The fields are in alphabetical order: the document's key order.
#[derive(Debug, Clone, Serialize)]
pub struct ReportFields {
    /// AUTHOR_KEY_DIGEST.
    pub author_key_digest: String,
    /// The certificate table after the report, when there is one; null otherwise.
    pub cert_table: Option<Vec<CertTableEntry>>,
    /// CHIP_ID.
    pub chip_id: String,
    /// COMMITTED_TCB.
    pub committed_tcb: TcbFields,
    /// COMMITTED_MAJOR.COMMITTED_MINOR.COMMITTED_BUILD.
    pub committed_version: String,
    /// The container the report was found in, described.
    pub container: &'static str,
    /// CPUID family, model and stepping (version 3 and later); null before.
    pub cpuid_fam_mod_step: Option<[u8; 3]>,
    /// CURRENT_MIT_VECTOR (version 5 and later); null before.
    pub current_mit_vector: Option<String>,
    /// CURRENT_TCB.
    pub current_tcb: TcbFields,
    /// CURRENT_MAJOR.CURRENT_MINOR.CURRENT_BUILD.
    pub current_version: String,
    /// FAMILY_ID.
    pub family_id: String,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// HOST_DATA.
    pub host_data: String,
    /// ID_KEY_DIGEST.
    pub id_key_digest: String,
    /// IMAGE_ID.
    pub image_id: String,
    /// Where AMD's KDS serves the VCEK of this chip and REPORTED_TCB; null
    /// when the product is not known.
    pub kds_vcek_url: Option<String>,
    /// The signer info word.
    pub key_info: KeyInfoFields,
    /// LAUNCH_MIT_VECTOR (version 5 and later); null before.
    pub launch_mit_vector: Option<String>,
    /// LAUNCH_TCB.
    pub launch_tcb: TcbFields,
    /// MEASUREMENT.
    pub measurement: String,
    /// PLATFORM_INFO.
    pub platform_info: String,
    /// The names of PLATFORM_INFO's bits that are set.
    pub platform_info_flags: Vec<&'static str>,
    /// POLICY.
    pub policy: String,
    /// POLICY's ABI_MAJOR.ABI_MINOR.
    pub policy_abi: String,
    /// The names of POLICY's bits that are set.
    pub policy_flags: Vec<&'static str>,
    /// The product, from CPUID, the VEK's productName or --product; null
    /// when none says (the TCB fields are then raw only).
    #[serde(serialize_with = "product_name_or_null")]
    pub product: Option<Product>,
    /// Where the product came from; null with it.
    pub product_source: Option<&'static str>,
    /// REPORT_DATA.
    pub report_data: String,
    /// REPORT_ID.
    pub report_id: String,
    /// REPORT_ID_MA.
    pub report_id_ma: String,
    /// REPORTED_TCB.
    pub reported_tcb: TcbFields,
    /// SIGNATURE_ALGO.
    pub sig_algo: u32,
    /// The signature's R component, as the report holds it (little-endian, zero-padded).
    pub signature_r: String,
    /// The signature's S component, likewise.
    pub signature_s: String,
    /// VERSION.
    pub version: u32,
    /// VMPL.
    pub vmpl: u32,
}

/// A TCB_VERSION: its components when the product, and so the layout, is
/// known, and the raw value. The fields are in alphabetical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcbFields {
    /// BOOT_LOADER's SPL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bl: Option<u8>,
    /// FMC's SPL (Turin only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// The 8 bytes as a little-endian integer, in hex (0x and 16 digits).
    pub raw: String,
    /// SNP firmware's SPL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snp: Option<u8>,
    /// TEE's SPL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee: Option<u8>,
    /// Microcode's SPL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ucode: Option<u8>,
}

impl TcbFields {
    /// `raw` decoded in `layout`, or raw only without one.
    pub fn new(raw: u64, layout: Option<TcbLayout>) -> TcbFields {
        let t = layout.map(|l| TcbVersion::decode(raw, l));
        TcbFields {
            bl: t.map(|t| t.bootloader),
            fmc: t.and_then(|t| t.fmc),
            raw: format!("{raw:#018x}"),
            snp: t.map(|t| t.snp),
            tee: t.map(|t| t.tee),
            ucode: t.map(|t| t.microcode),
        }
    }
}

/// The components in the layout's order, then the raw value:
/// `fmc=1 bl=3 tee=0 snp=8 ucode=115 raw=0x...`.
impl fmt::Display for TcbFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            ("fmc", self.fmc),
            ("bl", self.bl),
            ("tee", self.tee),
            ("snp", self.snp),
            ("ucode", self.ucode),
        ];
        for (name, v) in parts {
            if let Some(v) = v {
                write!(f, "{name}={v} ")?;
            }
        }
        write!(f, "raw={}", self.raw)
    }
}

/// The signer info word of [`ReportFields`], fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfoFields {
    /// AUTHOR_KEY_EN: 1 when AUTHOR_KEY_DIGEST is the ID block's author key.
    pub author_key_en: u8,
    /// MASK_CHIP_KEY: 1 when CHIP_ID is masked (all zero).
    pub mask_chip_key: u8,
    /// SIGNING_KEY: VCEK, VLEK, NONE or reserved (n).
    pub signing_key: String,
}

impl fmt::Display for KeyInfoFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "author_key_en={} mask_chip_key={} signing_key={}",
            self.author_key_en, self.mask_chip_key, self.signing_key
        )
    }
}

/// One entry of the certificate table after a report, fields in
/// alphabetical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertTableEntry {
    /// The entry's GUID.
    pub guid: String,
    /// What the GUID says the certificate is: ARK, ASK/ASVK, VCEK, VLEK...
    pub kind: &'static str,
    /// The certificate's length in bytes.
    pub length: usize,
    /// Its offset from the start of the table.
    pub offset: u32,
}

fn product_name_or_null<S: Serializer>(
    p: &Option<Product>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(p.name()),
        None => s.serialize_none(),
    }
}
