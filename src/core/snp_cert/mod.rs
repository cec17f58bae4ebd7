//! AMD SEV-SNP endorsement certificates: the VCEK or VLEK that signs a report,
//! the ASK/ASVK and ARK above it, AMD's own ARK/ASK/ASVK built into the
//! binary, and the signature checks (aws-lc-rs) for the report and the chain.
//!
//! Every signature is checked on its own, over the raw TBS bytes, rather
//! than through RFC 5280 path validation: VCEKs have serial 0 and no
//! key identifiers, which strict path validation refuses.
//!
//! Its parts, all re-exported here: `certificate` (parsing), `crl` (AMD's
//! revocation lists), `extensions` (AMD's extensions), `verify` (the
//! signature checks) and `anchors` (the trust anchors and AMD's built-in
//! roots).

mod anchors;
mod bundle;
mod certificate;
mod crl;
mod extensions;
mod verify;

pub use anchors::{CaRole, TrustAnchors, BUILTIN_PINS};
pub use bundle::{describe, Bundle, CertRole};
pub use certificate::{pem_certificates, Certificate, KeyKind, NameFields};
pub use crl::Crl;
pub use extensions::AmdExtensions;
pub use verify::verify_report_signature;

/// What is wrong with a certificate given as a VCEK, VLEK, ASK or ARK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Neither DER nor PEM CERTIFICATE text.
    #[error("not a certificate: {0}")]
    NotCertificate(String),
    /// A PEM file with this many certificates where exactly one is expected.
    #[error("the PEM file holds {0} certificates where one is expected; give each certificate in its own file")]
    SeveralCertificates(usize),
    /// A file of several certificates that cannot be placed by role.
    #[error("the file holds {n} certificate(s): {what}")]
    Bundle {
        /// How many certificates the file holds.
        n: usize,
        /// What is wrong with them.
        what: String,
    },
    /// DER that does not decode as an X.509 certificate.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// An AMD extension (1.3.6.1.4.1.3704.1.*) with a value of the wrong type or size.
    #[error("AMD extension {oid}: {what}")]
    Extension {
        /// The extension's dotted OID.
        oid: String,
        /// What is wrong with its value.
        what: String,
    },
    /// The owner's CA certificates cannot serve as trust anchors.
    #[error("trust anchors: {0}")]
    Anchors(String),
}
