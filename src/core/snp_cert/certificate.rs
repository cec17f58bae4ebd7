//! One X.509 certificate parsed into what the SNP checks need, from DER or
//! PEM.

use sha2::{Digest, Sha256};
use x509_cert::certificate::{CertificateInner, Raw};
use x509_cert::der::asn1::AnyRef;
use x509_cert::der::{oid::ObjectIdentifier, Reader};
use x509_cert::der::{Decode, Encode, SliceReader, Tag, Tagged};

use super::extensions::amd_extensions;
use super::{AmdExtensions, CertError};

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// The public key of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with the modulus size in bits.
    Rsa(usize),
    /// ECDSA on P-384.
    EcP384,
    /// Anything else, by algorithm OID.
    Other(String),
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa(b) => write!(f, "RSA-{b}"),
            KeyKind::EcP384 => f.write_str("ECDSA P-384"),
            KeyKind::Other(o) => write!(f, "key algorithm {o}"),
        }
    }
}

/// A parsed X.509 certificate with what the SNP checks need.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The whole certificate in DER.
    pub der: Vec<u8>,
    /// The exact TBSCertificate bytes the issuer signed.
    pub tbs: Vec<u8>,
    /// SHA-256 of [`Certificate::der`]: the fingerprint the built-in roots are pinned by.
    pub sha256: [u8; 32],
    /// The serial number's big-endian INTEGER bytes (0 on VCEKs and VLEKs).
    pub serial: Vec<u8>,
    /// The subject's name attributes.
    pub subject: NameFields,
    /// The subject's Name in DER, what a CRL this certificate issued names as its issuer.
    pub subject_der: Vec<u8>,
    /// The issuer's name attributes.
    pub issuer: NameFields,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: u64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: u64,
    /// Start of validity as RFC 3339 UTC text, for messages.
    pub not_before_text: String,
    /// End of validity as RFC 3339 UTC text, for messages.
    pub not_after_text: String,
    /// The subject public key's algorithm (RSA-4096 for CAs, P-384 for a VCEK/VLEK).
    pub key: KeyKind,
    /// The subjectPublicKey bits: an RSAPublicKey or an uncompressed point.
    pub public_key: Vec<u8>,
    /// The signature algorithm is RSASSA-PSS with SHA-384 named in it.
    pub sig_rsa_pss_sha384: bool,
    /// The signatureAlgorithm OID, dotted.
    pub sig_alg: String,
    /// The signatureValue bytes the issuer's key must verify over [`Certificate::tbs`].
    pub signature: Vec<u8>,
    /// The AMD extensions (empty on the CA certificates).
    pub amd: AmdExtensions,
}

/// The attributes of a distinguished name that AMD's certificates carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFields {
    /// commonName (2.5.4.3), e.g. `SEV-VCEK` or `ARK-Milan`.
    pub cn: Option<String>,
    /// organizationalUnitName (2.5.4.11), `Engineering` for AMD.
    pub ou: Option<String>,
    /// organizationName (2.5.4.10), `Advanced Micro Devices` for AMD.
    pub o: Option<String>,
    /// localityName (2.5.4.7), `Santa Clara` for AMD.
    pub l: Option<String>,
    /// stateOrProvinceName (2.5.4.8), `CA` for AMD.
    pub st: Option<String>,
    /// countryName (2.5.4.6), `US` for AMD.
    pub c: Option<String>,
}

impl NameFields {
    /// The fixed location and organisation every AMD SEV certificate names.
    pub fn is_amd(&self) -> bool {
        self.ou.as_deref() == Some("Engineering")
            && self.c.as_deref() == Some("US")
            && self.l.as_deref() == Some("Santa Clara")
            && self.st.as_deref() == Some("CA")
            && self.o.as_deref() == Some("Advanced Micro Devices")
    }

    /// The common name, empty when there is none.
    pub fn cn(&self) -> &str {
        self.cn.as_deref().unwrap_or("")
    }
}

fn der_err(e: x509_cert::der::Error) -> CertError {
    CertError::Malformed(e.to_string())
}

pub(super) fn name_fields(name: &x509_cert::name::Name) -> NameFields {
    let mut n = NameFields::default();
    for rdn in &name.0 {
        for atv in rdn.0.iter() {
            let text = String::from_utf8_lossy(atv.value.value()).into_owned();
            let slot = match atv.oid.to_string().as_str() {
                "2.5.4.3" => &mut n.cn,
                "2.5.4.11" => &mut n.ou,
                "2.5.4.10" => &mut n.o,
                "2.5.4.7" => &mut n.l,
                "2.5.4.8" => &mut n.st,
                "2.5.4.6" => &mut n.c,
                _ => continue,
            };
            *slot = Some(text);
        }
    }
    n
}

/// RSASSA-PSS with SHA-384 named in its parameters: the algorithm of every
/// AMD certificate and CRL signature.
pub(super) fn is_rsa_pss_sha384(sa: &x509_cert::spki::AlgorithmIdentifierOwned) -> bool {
    sa.oid == OID_RSASSA_PSS
        && sa.parameters.as_ref().is_some_and(|p| {
            let sha384 = OID_SHA384.as_bytes();
            p.value().windows(sha384.len()).any(|w| w == sha384)
        })
}

/// The modulus size of a DER RSAPublicKey.
fn rsa_bits(pk: &[u8]) -> Option<usize> {
    let any = AnyRef::from_der(pk).ok()?;
    if any.tag() != Tag::Sequence {
        return None;
    }
    let mut r = SliceReader::new(any.value()).ok()?;
    let m = x509_cert::der::asn1::UintRef::decode(&mut r).ok()?;
    let b = m.as_bytes();
    let lead = b.first().map_or(0, |x| 8 - x.leading_zeros() as usize);
    Some(b.len().saturating_sub(1) * 8 + lead)
}

impl Certificate {
    /// Parses one DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
        let c = CertificateInner::<Raw>::from_der(der).map_err(|e| {
            if der.first() != Some(&0x30) {
                CertError::NotCertificate("neither PEM text nor a DER certificate".into())
            } else {
                der_err(e)
            }
        })?;
        // The exact signed bytes: the first element of the outer SEQUENCE.
        let outer = AnyRef::from_der(der).map_err(der_err)?;
        let mut r = SliceReader::new(outer.value()).map_err(der_err)?;
        let tbs = r
            .decode::<AnyRef>()
            .map_err(der_err)?
            .to_der()
            .map_err(der_err)?;
        let t = &c.tbs_certificate;
        let spki = &t.subject_public_key_info;
        let public_key = spki.subject_public_key.raw_bytes().to_vec();
        let key = if spki.algorithm.oid == OID_RSA {
            KeyKind::Rsa(rsa_bits(&public_key).unwrap_or(0))
        } else if spki.algorithm.oid == OID_EC {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            if curve == Some(OID_P384) {
                KeyKind::EcP384
            } else {
                KeyKind::Other(format!("EC on {curve:?}"))
            }
        } else {
            KeyKind::Other(spki.algorithm.oid.to_string())
        };
        let sa = &c.signature_algorithm;
        let sig_rsa_pss_sha384 = is_rsa_pss_sha384(sa);
        let amd = match &t.extensions {
            Some(e) => amd_extensions(e)?,
            None => AmdExtensions::default(),
        };
        let nb = t.validity.not_before;
        let na = t.validity.not_after;
        Ok(Certificate {
            der: der.to_vec(),
            tbs,
            sha256: Sha256::digest(der).into(),
            serial: t.serial_number.as_bytes().to_vec(),
            subject: name_fields(&t.subject),
            subject_der: t.subject.to_der().map_err(der_err)?,
            issuer: name_fields(&t.issuer),
            not_before: nb.to_unix_duration().as_secs(),
            not_after: na.to_unix_duration().as_secs(),
            not_before_text: nb.to_date_time().to_string(),
            not_after_text: na.to_date_time().to_string(),
            key,
            public_key,
            sig_rsa_pss_sha384,
            sig_alg: sa.oid.to_string(),
            signature: c.signature.raw_bytes().to_vec(),
            amd,
        })
    }

    /// Parses a file's bytes: DER, or PEM holding exactly one certificate.
    pub fn from_der_or_pem(b: &[u8]) -> Result<Certificate, CertError> {
        if b.first() == Some(&0x30) {
            return Certificate::from_der(b);
        }
        let ders = pem_certificates(b)?;
        if ders.len() != 1 {
            return Err(CertError::SeveralCertificates(ders.len()));
        }
        Certificate::from_der(&ders[0])
    }

    /// The serial number as an integer, when it fits.
    pub fn serial_u64(&self) -> Option<u64> {
        if self.serial.len() > 8 {
            return None;
        }
        Some(
            self.serial
                .iter()
                .fold(0u64, |a, &b| (a << 8) | u64::from(b)),
        )
    }

    /// Valid at `now` (seconds since the epoch).
    pub fn valid_at(&self, now: u64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// Every CERTIFICATE block of PEM text, decoded; other blocks are refused.
pub fn pem_certificates(b: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    let text = std::str::from_utf8(b)
        .map_err(|_| CertError::NotCertificate("neither PEM text nor a DER certificate".into()))?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let end_marker = block.find("-----END ").ok_or_else(|| {
            CertError::NotCertificate("a PEM block has no '-----END' line".into())
        })?;
        let after = block[end_marker + 9..]
            .find("-----")
            .map(|i| end_marker + 9 + i + 5)
            .ok_or_else(|| CertError::NotCertificate("a PEM '-----END' line is cut off".into()))?;
        let (label, der) = x509_cert::der::pem::decode_vec(&block.as_bytes()[..after])
            .map_err(|e| CertError::NotCertificate(format!("malformed PEM block ({e})")))?;
        if label != "CERTIFICATE" {
            return Err(CertError::NotCertificate(format!(
                "a PEM block is a '{label}', not a CERTIFICATE"
            )));
        }
        out.push(der);
        rest = &block[after..];
    }
    if out.is_empty() {
        return Err(CertError::NotCertificate(
            "neither PEM text (no '-----BEGIN CERTIFICATE-----' line) nor a DER certificate".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snp_cert::anchors::BUILTIN_PEM;

    #[test]
    fn garbage_and_several() {
        assert!(matches!(
            Certificate::from_der_or_pem(b"hello"),
            Err(CertError::NotCertificate(_))
        ));
        assert!(Certificate::from_der_or_pem(&[0x30, 0x03, 1, 2, 3]).is_err());
        assert!(matches!(
            Certificate::from_der_or_pem(BUILTIN_PEM[0].2.as_bytes()),
            Err(CertError::SeveralCertificates(2))
        ));
        let cut = &BUILTIN_PEM[0].2[..200];
        assert!(Certificate::from_der_or_pem(cut.as_bytes()).is_err());
    }
}
