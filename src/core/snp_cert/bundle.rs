//! A certificate file that may hold more than one certificate (a PEM
//! bundle, as Azure's instance metadata serves the VCEK with its ASK and
//! ARK), each certificate placed by its role: the CA roles by subject CN
//! (`ARK-*`, `SEV-*`, `SEV-VLEK-*`) on an RSA key, the VCEK and VLEK by their
//! ECDSA P-384 key and their CN or AMD extensions.

use super::{pem_certificates, CaRole, CertError, Certificate, KeyKind};

/// What a certificate is in AMD's SEV-SNP chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    /// AMD Root Key (CN `ARK-{product}`, RSA).
    Ark,
    /// AMD SEV Key, signs VCEKs (CN `SEV-{product}`, RSA).
    Ask,
    /// AMD SEV VLEK Key, signs VLEKs (CN `SEV-VLEK-{product}`, RSA).
    Asvk,
    /// Versioned Chip Endorsement Key (CN `SEV-VCEK`, ECDSA P-384, hwid).
    Vcek,
    /// Versioned Loaded Endorsement Key (CN `SEV-VLEK`, ECDSA P-384, csp_id).
    Vlek,
}

impl CertRole {
    /// What AMD calls the role.
    pub fn name(self) -> &'static str {
        match self {
            CertRole::Ark => "ARK",
            CertRole::Ask => "ASK",
            CertRole::Asvk => "ASVK",
            CertRole::Vcek => "VCEK",
            CertRole::Vlek => "VLEK",
        }
    }

    /// The role with its article, "an ARK" or "a VCEK".
    pub fn with_article(self) -> String {
        let a = if self.is_vek() { "a" } else { "an" };
        format!("{a} {}", self.name())
    }

    /// A VCEK or a VLEK: the key that signs reports.
    pub fn is_vek(self) -> bool {
        matches!(self, CertRole::Vcek | CertRole::Vlek)
    }

    /// The role of a CA certificate.
    pub fn from_ca(r: CaRole) -> CertRole {
        match r {
            CaRole::Ark => CertRole::Ark,
            CaRole::Ask => CertRole::Ask,
            CaRole::Asvk => CertRole::Asvk,
        }
    }

    /// The role of `c`, `None` when it is none of AMD's.
    pub fn of(c: &Certificate) -> Option<CertRole> {
        match c.key {
            KeyKind::EcP384 => {
                let cn = c.subject.cn();
                if cn == "SEV-VLEK" || (cn != "SEV-VCEK" && c.amd.csp_id.is_some()) {
                    Some(CertRole::Vlek)
                } else if cn == "SEV-VCEK" || c.amd.hwid.is_some() {
                    Some(CertRole::Vcek)
                } else {
                    None
                }
            }
            KeyKind::Rsa(_) => CaRole::from_cn(c.subject.cn()).map(|(r, _)| CertRole::from_ca(r)),
            KeyKind::Other(_) => None,
        }
    }
}

/// A certificate described for messages: its role, CN and key.
pub fn describe(c: &Certificate) -> String {
    match CertRole::of(c) {
        Some(r) => format!("the {} '{}' ({})", r.name(), c.subject.cn(), c.key),
        None => format!("a certificate '{}' ({})", c.subject.cn(), c.key),
    }
}

/// The certificates of one file, each with its role.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// In the file's order.
    pub certs: Vec<(CertRole, Certificate)>,
}

impl Bundle {
    /// One DER certificate, or every certificate of PEM text; refused when a
    /// certificate has no known role or a role comes twice (a VCEK and a
    /// VLEK count as the same role: the report's signer).
    pub fn parse(b: &[u8]) -> Result<Bundle, CertError> {
        let ders = if b.first() == Some(&0x30) {
            vec![b.to_vec()]
        } else {
            pem_certificates(b)?
        };
        let n = ders.len();
        let mut certs: Vec<(CertRole, Certificate)> = Vec::new();
        for (i, der) in ders.iter().enumerate() {
            let c = Certificate::from_der(der)?;
            let role = CertRole::of(&c).ok_or_else(|| CertError::Bundle {
                n,
                what: format!(
                    "certificate {} (subject CN '{}', {}) is none of AMD's: an ARK-*, SEV-* or SEV-VLEK-* CA on an RSA key, or a VCEK or VLEK on ECDSA P-384",
                    i + 1,
                    c.subject.cn(),
                    c.key
                ),
            })?;
            let same = |r: CertRole| r == role || (r.is_vek() && role.is_vek());
            if let Some((r, _)) = certs.iter().find(|(r, _)| same(*r)) {
                return Err(CertError::Bundle {
                    n,
                    what: format!(
                        "certificate {} is {} where the file already holds {}; give one chain per file",
                        i + 1,
                        role.with_article(),
                        r.with_article()
                    ),
                });
            }
            certs.push((role, c));
        }
        Ok(Bundle { certs })
    }

    /// The certificate of `role`, if the file holds one.
    pub fn get(&self, role: CertRole) -> Option<&Certificate> {
        self.certs.iter().find(|(r, _)| *r == role).map(|(_, c)| c)
    }

    /// The VCEK or VLEK, if the file holds one.
    pub fn vek(&self) -> Option<(CertRole, &Certificate)> {
        self.certs
            .iter()
            .find(|(r, _)| r.is_vek())
            .map(|(r, c)| (*r, c))
    }

    /// Every certificate described, for messages.
    pub fn describe(&self) -> String {
        self.certs
            .iter()
            .map(|(_, c)| describe(c))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snp_cert::anchors::BUILTIN_PEM;

    #[test]
    fn kds_chains_place_by_role() {
        // AMD's cert_chain bodies: AS(V)K then ARK.
        let b = Bundle::parse(BUILTIN_PEM[0].2.as_bytes()).unwrap();
        assert_eq!(b.certs.len(), 2);
        assert_eq!(b.certs[0].0, CertRole::Ask);
        assert_eq!(b.get(CertRole::Ark).unwrap().subject.cn(), "ARK-Milan");
        assert!(b.vek().is_none());
        let v = Bundle::parse(BUILTIN_PEM[1].2.as_bytes()).unwrap();
        assert_eq!(v.certs[0].0, CertRole::Asvk);
        let twice = format!("{}{}", BUILTIN_PEM[0].2, BUILTIN_PEM[2].2);
        let e = Bundle::parse(twice.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("certificate 3 is an ASK where the file already holds an ASK"),
            "{e}"
        );
        assert!(Bundle::parse(b"hello").is_err());
    }
}
