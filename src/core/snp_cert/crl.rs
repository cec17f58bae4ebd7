//! AMD's certificate revocation lists (KDS `/vcek/v1/{P}/crl` and
//! `/vlek/v1/{P}/crl`, or the certificate table's CRL entry): parsed from DER
//! or PEM, their ARK signature verified like the certificates' (RSASSA-PSS,
//! SHA-384, aws-lc-rs), and looked up by serial number.

use aws_lc_rs::signature::{self as rsig, UnparsedPublicKey};
use x509_cert::crl::CertificateList;
use x509_cert::der::asn1::AnyRef;
use x509_cert::der::{Decode, Encode, Reader, SliceReader};

use super::certificate::is_rsa_pss_sha384;
use super::{CertError, Certificate, KeyKind};

/// A parsed X.509 CRL (RFC 5280 §5) with what the revocation check needs.
#[derive(Debug, Clone)]
pub struct Crl {
    /// The whole CRL in DER.
    pub der: Vec<u8>,
    /// The exact TBSCertList bytes the issuer signed.
    pub tbs: Vec<u8>,
    /// The issuer's Name in DER, compared byte for byte with the ARK's subject.
    pub issuer_der: Vec<u8>,
    /// The issuer's common name, for messages.
    pub issuer_cn: String,
    /// thisUpdate, seconds since the Unix epoch.
    pub this_update: u64,
    /// thisUpdate as text, for messages.
    pub this_update_text: String,
    /// nextUpdate, seconds since the Unix epoch, when the CRL gives one.
    pub next_update: Option<u64>,
    /// nextUpdate as text, for messages.
    pub next_update_text: Option<String>,
    /// The revoked serial numbers (big-endian INTEGER bytes) and their revocation dates as text.
    pub revoked: Vec<(Vec<u8>, String)>,
    /// The signature algorithm is RSASSA-PSS with SHA-384 named in it, and
    /// the TBSCertList's algorithm is the same.
    pub sig_rsa_pss_sha384: bool,
    /// The signatureAlgorithm OID, dotted.
    pub sig_alg: String,
    /// The signatureValue bytes.
    pub signature: Vec<u8>,
}

fn malformed(e: impl std::fmt::Display) -> CertError {
    CertError::Malformed(format!("CRL: {e}"))
}

/// A serial number without its leading zero bytes, so `00 80` and `80` compare equal.
fn trimmed(serial: &[u8]) -> &[u8] {
    let n = serial.iter().take_while(|&&b| b == 0).count();
    &serial[n..]
}

impl Crl {
    /// Parses one DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Crl, CertError> {
        let c = CertificateList::from_der(der).map_err(|e| {
            if der.first() != Some(&0x30) {
                CertError::NotCertificate("neither PEM text nor a DER CRL".into())
            } else {
                malformed(e)
            }
        })?;
        // The exact signed bytes: the first element of the outer SEQUENCE.
        let outer = AnyRef::from_der(der).map_err(malformed)?;
        let mut r = SliceReader::new(outer.value()).map_err(malformed)?;
        let tbs = r
            .decode::<AnyRef>()
            .map_err(malformed)?
            .to_der()
            .map_err(malformed)?;
        let t = &c.tbs_cert_list;
        let sa = &c.signature_algorithm;
        let time = |x: &x509_cert::time::Time| {
            (x.to_unix_duration().as_secs(), x.to_date_time().to_string())
        };
        let (this_update, this_update_text) = time(&t.this_update);
        let next = t.next_update.as_ref().map(time);
        let revoked = t
            .revoked_certificates
            .iter()
            .flatten()
            .map(|e| {
                (
                    e.serial_number.as_bytes().to_vec(),
                    e.revocation_date.to_date_time().to_string(),
                )
            })
            .collect();
        let issuer_cn = super::certificate::name_fields(&t.issuer)
            .cn
            .unwrap_or_default();
        Ok(Crl {
            der: der.to_vec(),
            tbs,
            issuer_der: t.issuer.to_der().map_err(malformed)?,
            issuer_cn,
            this_update,
            this_update_text,
            next_update: next.as_ref().map(|n| n.0),
            next_update_text: next.map(|n| n.1),
            revoked,
            sig_rsa_pss_sha384: is_rsa_pss_sha384(sa) && t.signature == *sa,
            sig_alg: sa.oid.to_string(),
            signature: c.signature.raw_bytes().to_vec(),
        })
    }

    /// Parses a file's bytes: DER, or PEM holding exactly one `X509 CRL` block.
    pub fn from_der_or_pem(b: &[u8]) -> Result<Crl, CertError> {
        if b.first() == Some(&0x30) {
            return Crl::from_der(b);
        }
        let not = || {
            CertError::NotCertificate(
                "neither a DER CRL nor PEM text with one '-----BEGIN X509 CRL-----' block".into(),
            )
        };
        let text = std::str::from_utf8(b).map_err(|_| not())?;
        let start = text.find("-----BEGIN ").ok_or_else(not)?;
        let block = &text[start..];
        let end = block.find("-----END ").ok_or_else(not)?;
        let close = block[end + 9..].find("-----").ok_or_else(not)? + end + 9 + 5;
        if block[close..].contains("-----BEGIN ") {
            return Err(CertError::NotCertificate(
                "the PEM file holds more than one block; give the CRL alone".into(),
            ));
        }
        let (label, der) = x509_cert::der::pem::decode_vec(&block.as_bytes()[..close])
            .map_err(|e| CertError::NotCertificate(format!("malformed PEM block ({e})")))?;
        if label != "X509 CRL" {
            return Err(CertError::NotCertificate(format!(
                "the PEM block is a '{label}', not an X509 CRL"
            )));
        }
        Crl::from_der(&der)
    }

    /// The CRL was signed by `issuer`'s RSA key with RSASSA-PSS, SHA-384,
    /// MGF1-SHA-384 and a 48-byte salt, as AMD's certificates are.
    pub fn signed_by(&self, issuer: &Certificate) -> Result<(), String> {
        if !self.sig_rsa_pss_sha384 {
            return Err(format!(
                "signature algorithm {} is not RSASSA-PSS with SHA-384 (in both the signature \
                 and the signed list)",
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

    /// When `serial` (big-endian INTEGER bytes) is listed: its revocation date.
    pub fn revocation_of(&self, serial: &[u8]) -> Option<&str> {
        self.revoked
            .iter()
            .find(|(s, _)| trimmed(s) == trimmed(serial))
            .map(|(_, d)| d.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_panic() {
        for b in [
            &b""[..],
            b"hello",
            &[0x30, 0x03, 1, 2, 3],
            b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
            b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
            b"-----BEGIN X509 CRL-----\n",
        ] {
            assert!(Crl::from_der_or_pem(b).is_err(), "{b:?}");
        }
    }

    #[test]
    fn serials_compare_without_leading_zeros() {
        assert_eq!(trimmed(&[0, 0x80]), trimmed(&[0x80]));
        assert_eq!(trimmed(&[0]), trimmed(&[]));
        assert_ne!(trimmed(&[1, 0]), trimmed(&[1]));
    }
}
