//! AMD SEV-SNP endorsement certificates: the VCEK or VLEK that signs a report,
//! the ASK/ASVK and ARK above it, AMD's own ARK/ASK/ASVK built into the
//! binary, and the signature checks (aws-lc-rs) for the report and the chain.
//!
//! Every signature is checked on its own, over the raw TBS bytes, rather
//! than through RFC 5280 path validation: VCEKs have serial 0 and no
//! key identifiers, which strict path validation refuses.

use std::sync::OnceLock;

use aws_lc_rs::signature::{self as rsig, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::certificate::{CertificateInner, Raw};
use x509_cert::der::asn1::{AnyRef, Ia5StringRef, OctetStringRef};
use x509_cert::der::{oid::ObjectIdentifier, Reader};
use x509_cert::der::{Decode, Encode, SliceReader, Tag, Tagged};

use super::hex;
use super::snp_report::{AttestationReport, Product, TcbLayout, TcbVersion};

/// What is wrong with a certificate given as a VCEK, VLEK, ASK or ARK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("not a certificate: {0}")]
    NotCertificate(String),
    #[error("the PEM file holds {0} certificates where one is expected; give each certificate in its own file")]
    SeveralCertificates(usize),
    #[error("malformed certificate: {0}")]
    Malformed(String),
    #[error("AMD extension {oid}: {what}")]
    Extension { oid: String, what: String },
    #[error("trust anchors: {0}")]
    Anchors(String),
}

const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const AMD_PREFIX: &str = "1.3.6.1.4.1.3704.1.";

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

/// The AMD extensions of a VCEK or VLEK (1.3.6.1.4.1.3704.1.*).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmdExtensions {
    pub struct_version: Option<u32>,
    pub product_name: Option<String>,
    pub bl_spl: Option<u8>,
    pub tee_spl: Option<u8>,
    pub snp_spl: Option<u8>,
    pub ucode_spl: Option<u8>,
    pub fmc_spl: Option<u8>,
    /// spl_4 .. spl_7 (reserved), where present.
    pub reserved_spl: Vec<(u8, u8)>,
    /// The chip's hardware ID: 64 bytes, or 8 on Turin.
    pub hwid: Option<Vec<u8>>,
    /// The cloud provider a VLEK belongs to.
    pub csp_id: Option<String>,
    /// AMD OIDs this tool does not know.
    pub unknown: Vec<String>,
}

impl AmdExtensions {
    /// The TCB the certificate is derived for, in a product layout; `None`
    /// when a component that layout needs is missing.
    pub fn tcb(&self, layout: TcbLayout) -> Option<TcbVersion> {
        let (bl, tee, snp, ucode) = (self.bl_spl?, self.tee_spl?, self.snp_spl?, self.ucode_spl?);
        let fmc = match layout {
            TcbLayout::Turin => self.fmc_spl?,
            TcbLayout::Legacy => 0,
        };
        Some(TcbVersion::decode(
            TcbVersion::encode(layout, fmc, bl, tee, snp, ucode),
            layout,
        ))
    }
}

/// A parsed X.509 certificate with what the SNP checks need.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub der: Vec<u8>,
    /// The exact TBSCertificate bytes the issuer signed.
    pub tbs: Vec<u8>,
    pub sha256: [u8; 32],
    pub serial: Vec<u8>,
    pub subject: NameFields,
    pub issuer: NameFields,
    pub not_before: u64,
    pub not_after: u64,
    pub not_before_text: String,
    pub not_after_text: String,
    pub key: KeyKind,
    /// The subjectPublicKey bits: an RSAPublicKey or an uncompressed point.
    pub public_key: Vec<u8>,
    /// The signature algorithm is RSASSA-PSS with SHA-384 named in it.
    pub sig_rsa_pss_sha384: bool,
    pub sig_alg: String,
    pub signature: Vec<u8>,
    pub amd: AmdExtensions,
}

/// The attributes of a distinguished name that AMD's certificates carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFields {
    pub cn: Option<String>,
    pub ou: Option<String>,
    pub o: Option<String>,
    pub l: Option<String>,
    pub st: Option<String>,
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

    pub fn cn(&self) -> &str {
        self.cn.as_deref().unwrap_or("")
    }
}

fn der_err(e: x509_cert::der::Error) -> CertError {
    CertError::Malformed(e.to_string())
}

fn name_fields(name: &x509_cert::name::Name) -> NameFields {
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

/// An AMD SPL: a DER INTEGER that must fit a byte.
fn spl(oid: &str, v: &[u8]) -> Result<u8, CertError> {
    let n = u32::from_der(v).map_err(|e| CertError::Extension {
        oid: oid.into(),
        what: format!("not an INTEGER ({e})"),
    })?;
    u8::try_from(n).map_err(|_| CertError::Extension {
        oid: oid.into(),
        what: format!("SPL {n} does not fit the byte a TCB_VERSION holds"),
    })
}

fn ia5(oid: &str, v: &[u8]) -> Result<String, CertError> {
    Ia5StringRef::from_der(v)
        .map(|s| s.as_str().to_string())
        .map_err(|e| CertError::Extension {
            oid: oid.into(),
            what: format!("not an IA5String ({e})"),
        })
}

/// The hwid: raw 64 or 8 bytes in every real certificate, or the same
/// wrapped in a DER OCTET STRING.
fn hwid(oid: &str, v: &[u8]) -> Result<Vec<u8>, CertError> {
    if v.len() == 64 || v.len() == 8 {
        return Ok(v.to_vec());
    }
    if let Ok(o) = OctetStringRef::from_der(v) {
        if o.as_bytes().len() == 64 || o.as_bytes().len() == 8 {
            return Ok(o.as_bytes().to_vec());
        }
    }
    Err(CertError::Extension {
        oid: oid.into(),
        what: format!(
            "hwid of {} bytes; a chip ID is 64 bytes (8 on Turin), raw or in an OCTET STRING",
            v.len()
        ),
    })
}

fn amd_extensions(exts: &[x509_cert::ext::Extension]) -> Result<AmdExtensions, CertError> {
    let mut a = AmdExtensions::default();
    for e in exts {
        let oid = e.extn_id.to_string();
        let Some(suffix) = oid.strip_prefix(AMD_PREFIX) else {
            continue;
        };
        let v = e.extn_value.as_bytes();
        match suffix {
            "1" => {
                a.struct_version = Some(u32::from_der(v).map_err(|e| CertError::Extension {
                    oid: oid.clone(),
                    what: format!("structVersion is not an INTEGER ({e})"),
                })?)
            }
            "2" => a.product_name = Some(ia5(&oid, v)?),
            "3.1" => a.bl_spl = Some(spl(&oid, v)?),
            "3.2" => a.tee_spl = Some(spl(&oid, v)?),
            "3.3" => a.snp_spl = Some(spl(&oid, v)?),
            "3.4" | "3.5" | "3.6" | "3.7" => {
                let n = suffix.as_bytes()[2] - b'0';
                a.reserved_spl.push((n, spl(&oid, v)?));
            }
            "3.8" => a.ucode_spl = Some(spl(&oid, v)?),
            "3.9" => a.fmc_spl = Some(spl(&oid, v)?),
            "4" => a.hwid = Some(hwid(&oid, v)?),
            "5" => a.csp_id = Some(ia5(&oid, v)?),
            _ => a.unknown.push(oid),
        }
    }
    Ok(a)
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
        let sig_rsa_pss_sha384 = sa.oid == OID_RSASSA_PSS
            && sa.parameters.as_ref().is_some_and(|p| {
                let sha384 = OID_SHA384.as_bytes();
                p.value().windows(sha384.len()).any(|w| w == sha384)
            });
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

/// The role of a CA certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    Ark,
    Ask,
    Asvk,
}

impl CaRole {
    pub fn name(self) -> &'static str {
        match self {
            CaRole::Ark => "ARK",
            CaRole::Ask => "ASK",
            CaRole::Asvk => "ASVK",
        }
    }

    /// The subject CN AMD gives this role for a product.
    pub fn cn(self, p: Product) -> String {
        match self {
            CaRole::Ark => format!("ARK-{p}"),
            CaRole::Ask => format!("SEV-{p}"),
            CaRole::Asvk => format!("SEV-VLEK-{p}"),
        }
    }

    /// Reads a CN back into (role, product).
    pub fn from_cn(cn: &str) -> Option<(CaRole, Product)> {
        let (role, p) = if let Some(p) = cn.strip_prefix("ARK-") {
            (CaRole::Ark, p)
        } else if let Some(p) = cn.strip_prefix("SEV-VLEK-") {
            (CaRole::Asvk, p)
        } else if let Some(p) = cn.strip_prefix("SEV-") {
            (CaRole::Ask, p)
        } else {
            return None;
        };
        Product::ALL
            .into_iter()
            .find(|x| x.name() == p)
            .map(|x| (role, x))
    }
}

/// AMD's KDS `cert_chain` bodies (AS[V]K then ARK), public certificates.
const BUILTIN_PEM: [(Product, bool, &str); 6] = [
    (
        Product::Milan,
        false,
        include_str!("../amd_roots/ask_ark_milan.pem"),
    ),
    (
        Product::Milan,
        true,
        include_str!("../amd_roots/ask_ark_milan_vlek.pem"),
    ),
    (
        Product::Genoa,
        false,
        include_str!("../amd_roots/ask_ark_genoa.pem"),
    ),
    (
        Product::Genoa,
        true,
        include_str!("../amd_roots/ask_ark_genoa_vlek.pem"),
    ),
    (
        Product::Turin,
        false,
        include_str!("../amd_roots/ask_ark_turin_vcek.pem"),
    ),
    (
        Product::Turin,
        true,
        include_str!("../amd_roots/ask_ark_turin_vlek.pem"),
    ),
];

/// SHA-256 of the DER of every built-in root, as published beside the
/// vectors and identical in virtee/sev, go-sev-guest, trustee and
/// microsoft/TEE-Attestation-Verification. A built-in certificate that does
/// not hash to its pin is never used.
pub const BUILTIN_PINS: [(Product, CaRole, &str); 9] = [
    (
        Product::Milan,
        CaRole::Ark,
        "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
    ),
    (
        Product::Milan,
        CaRole::Ask,
        "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
    ),
    (
        Product::Milan,
        CaRole::Asvk,
        "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5",
    ),
    (
        Product::Genoa,
        CaRole::Ark,
        "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
    ),
    (
        Product::Genoa,
        CaRole::Ask,
        "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
    ),
    (
        Product::Genoa,
        CaRole::Asvk,
        "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372",
    ),
    (
        Product::Turin,
        CaRole::Ark,
        "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
    ),
    (
        Product::Turin,
        CaRole::Ask,
        "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
    ),
    (
        Product::Turin,
        CaRole::Asvk,
        "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c",
    ),
];

/// The CA certificates a verdict rests on: per product, the ARK, ASK and ASVK.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    certs: Vec<(Product, CaRole, Certificate)>,
    /// AMD's built-in roots, parsed per product on first use.
    builtin: bool,
    /// Replaced by the owner (`--trust-anchors`), not AMD's built-in roots.
    pub custom: bool,
}

/// AMD's roots for one product, parsed once and each checked against its
/// pin: a process validating a Milan report never parses Genoa's or Turin's.
fn builtin_roots(product: Product) -> &'static [(CaRole, Certificate)] {
    static CELLS: [OnceLock<Vec<(CaRole, Certificate)>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = Product::ALL.iter().position(|&p| p == product).unwrap_or(0);
    CELLS[i].get_or_init(|| {
        let mut certs: Vec<(CaRole, Certificate)> = Vec::new();
        for (_, _, pem) in BUILTIN_PEM.iter().filter(|(p, _, _)| *p == product) {
            for der in pem_certificates(pem.as_bytes()).unwrap_or_default() {
                let Ok(c) = Certificate::from_der(&der) else {
                    continue;
                };
                let Some((role, p)) = CaRole::from_cn(c.subject.cn()) else {
                    continue;
                };
                let pinned = BUILTIN_PINS
                    .iter()
                    .any(|&(pp, r, h)| pp == p && r == role && h == hex(&c.sha256));
                if pinned && p == product && !certs.iter().any(|(r, _)| *r == role) {
                    certs.push((role, c));
                }
            }
        }
        certs
    })
}

impl TrustAnchors {
    /// AMD's roots built into the binary, each checked against its pin.
    pub fn builtin() -> &'static TrustAnchors {
        static ANCHORS: TrustAnchors = TrustAnchors {
            certs: Vec::new(),
            builtin: true,
            custom: false,
        };
        &ANCHORS
    }

    /// Anchors from the owner's PEM or DER files, for private deployments and
    /// tests. Each certificate's role and product come from its subject CN
    /// (`ARK-Milan`, `SEV-Milan`, `SEV-VLEK-Milan`).
    pub fn from_files(files: &[Vec<u8>]) -> Result<TrustAnchors, CertError> {
        let mut certs = Vec::new();
        for f in files {
            let ders = if f.first() == Some(&0x30) {
                vec![f.clone()]
            } else {
                pem_certificates(f)?
            };
            for der in ders {
                let c = Certificate::from_der(&der)?;
                let (role, p) = CaRole::from_cn(c.subject.cn()).ok_or_else(|| {
                    CertError::Anchors(format!(
                        "certificate with subject CN '{}' is none of ARK-<product>, SEV-<product>, SEV-VLEK-<product>",
                        c.subject.cn()
                    ))
                })?;
                certs.retain(|(q, r, _): &(Product, CaRole, Certificate)| !(*q == p && *r == role));
                certs.push((p, role, c));
            }
        }
        if certs.is_empty() {
            return Err(CertError::Anchors("no certificate given".into()));
        }
        Ok(TrustAnchors {
            certs,
            builtin: false,
            custom: true,
        })
    }

    pub fn get(&self, product: Product, role: CaRole) -> Option<&Certificate> {
        if self.builtin {
            return builtin_roots(product)
                .iter()
                .find(|(r, _)| *r == role)
                .map(|(_, c)| c);
        }
        self.certs
            .iter()
            .find(|(p, r, _)| *p == product && *r == role)
            .map(|(_, _, c)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roots_match_their_published_fingerprints() {
        let a = TrustAnchors::builtin();
        for (p, role, pin) in BUILTIN_PINS {
            let c = a
                .get(p, role)
                .unwrap_or_else(|| panic!("{p} {} missing", role.name()));
            assert_eq!(hex(&c.sha256), pin);
            assert_eq!(c.subject.cn(), role.cn(p));
            assert_eq!(c.key, KeyKind::Rsa(4096));
            assert!(c.subject.is_amd());
        }
    }

    #[test]
    fn builtin_chains_verify() {
        let a = TrustAnchors::builtin();
        for p in Product::ALL {
            let ark = a.get(p, CaRole::Ark).unwrap();
            ark.signed_by(ark).unwrap();
            a.get(p, CaRole::Ask).unwrap().signed_by(ark).unwrap();
            a.get(p, CaRole::Asvk).unwrap().signed_by(ark).unwrap();
            // Another product's ARK does not sign it.
            let other = Product::ALL.into_iter().find(|&q| q != p).unwrap();
            assert!(a
                .get(p, CaRole::Ask)
                .unwrap()
                .signed_by(a.get(other, CaRole::Ark).unwrap())
                .is_err());
        }
    }

    #[test]
    fn hwid_raw_or_der_wrapped() {
        let chip: Vec<u8> = (0..64u8).collect();
        assert_eq!(hwid("x", &chip).unwrap(), chip);
        assert_eq!(hwid("x", &chip[..8]).unwrap(), &chip[..8]);
        // trustee's "new" format: an OCTET STRING around the 64 bytes.
        let mut wrapped = vec![0x04, 0x40];
        wrapped.extend(&chip);
        assert_eq!(hwid("x", &wrapped).unwrap(), chip);
        let mut short = vec![0x04, 0x08];
        short.extend(&chip[..8]);
        assert_eq!(hwid("x", &short).unwrap(), &chip[..8]);
        // A raw ID that starts like a DER tag is still raw (snpguest#38).
        let mut tagged = chip.clone();
        tagged[0] = 0x04;
        tagged[1] = 0x40;
        assert_eq!(hwid("x", &tagged).unwrap(), tagged);
        assert!(hwid("x", &chip[..10]).is_err());
        assert!(hwid("x", &[0x04, 0x03, 1, 2, 3]).is_err());
        assert!(hwid("x", &[]).is_err());
    }

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
