//! The CA certificates a verdict rests on: AMD's ARK, ASK and ASVK per
//! product, built into the binary and pinned, or the owner's own.

use std::sync::OnceLock;

use super::{pem_certificates, CertError, CertRole, Certificate};
use crate::core::hex;
use crate::core::snp_report::Product;

/// The role of a CA certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    /// AMD Root Key: self-signed, signs the ASK and the ASVK (CN `ARK-{product}`).
    Ark,
    /// AMD SEV Key: signs VCEKs (CN `SEV-{product}`).
    Ask,
    /// AMD SEV VLEK Key: signs VLEKs (CN `SEV-VLEK-{product}`).
    Asvk,
}

impl CaRole {
    /// What AMD calls the role.
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
pub(super) const BUILTIN_PEM: [(Product, bool, &str); 6] = [
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
            let mut in_file = Vec::new();
            for der in ders {
                let c = Certificate::from_der(&der)?;
                // A bundle's VCEK or VLEK (Azure's serves them with the
                // ASK and ARK) is not an anchor: the chain check takes the
                // VEK from --vcek or --vlek.
                if CertRole::of(&c).is_some_and(CertRole::is_vek) {
                    continue;
                }
                let (role, p) = CaRole::from_cn(c.subject.cn()).ok_or_else(|| {
                    CertError::Anchors(format!(
                        "certificate with subject CN '{}' is none of ARK-<product>, SEV-<product>, SEV-VLEK-<product>",
                        c.subject.cn()
                    ))
                })?;
                if in_file.contains(&(p, role)) {
                    return Err(CertError::Anchors(format!(
                        "one file holds the {} {} twice; give one chain per file",
                        p,
                        role.name()
                    )));
                }
                in_file.push((p, role));
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

    /// The certificate of a role for a product, if the anchors hold one.
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
    use crate::core::snp_cert::KeyKind;

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
    fn a_chain_twice_in_one_file_is_refused_but_not_across_files() {
        let one = BUILTIN_PEM[0].2.as_bytes().to_vec();
        let twice = [one.clone(), one.clone()].concat();
        let e = TrustAnchors::from_files(&[twice]).unwrap_err().to_string();
        assert!(e.contains("holds the Milan ASK twice"), "{e}");
        assert!(TrustAnchors::from_files(&[one.clone(), one]).is_ok());
    }
}
