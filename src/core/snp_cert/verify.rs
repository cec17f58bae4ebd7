//! The signature checks (aws-lc-rs): the report's by the VEK, and each
//! certificate's by its issuer.

use aws_lc_rs::signature::{self as rsig, UnparsedPublicKey};

use super::{Certificate, KeyKind};
use crate::core::snp_report::AttestationReport;

impl Certificate {
    /// `self` was signed by `issuer`'s RSA key with RSASSA-PSS, SHA-384,
    /// MGF1-SHA-384 and a 48-byte salt (RSA_PSS_2048_8192_SHA384 fixes all three).
    pub fn signed_by(&self, issuer: &Certificate) -> Result<(), String> {
        if !self.sig_rsa_pss_sha384 {
            return Err(format!(
                "signature algorithm {} is not RSASSA-PSS with SHA-384",
                self.sig_alg
            ));
        }
        if !matches!(issuer.key, KeyKind::Rsa(_)) {
            return Err(format!("the issuer's key is {}, not RSA", issuer.key));
        }
        UnparsedPublicKey::new(&rsig::RSA_PSS_2048_8192_SHA384, &issuer.public_key)
            .verify(&self.tbs, &self.signature)
            .map_err(|_| "the RSASSA-PSS signature does not verify".to_string())
    }
}

/// Verifies the report signature: ECDSA P-384 / SHA-384 by the VEK's key over
/// bytes 0x000..0x29F, R and S little-endian in the report.
pub fn verify_report_signature(
    report: &AttestationReport,
    vek: &Certificate,
) -> Result<(), String> {
    if vek.key != KeyKind::EcP384 {
        return Err(format!("the VEK's key is {}, not ECDSA P-384", vek.key));
    }
    let rs = report.signature_rs().ok_or_else(|| {
        "SIGNATURE.R or .S has non-zero bytes beyond the 48 a P-384 scalar holds".to_string()
    })?;
    UnparsedPublicKey::new(&rsig::ECDSA_P384_SHA384_FIXED, &vek.public_key)
        .verify(report.signed_bytes(), &rs)
        .map_err(|_| {
            "the ECDSA P-384 signature over bytes 0x000..0x29F does not verify with the VEK's key"
                .to_string()
        })
}
