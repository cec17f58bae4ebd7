//! Attested key release for SEV-SNP guests (schema/snp-key-release.md): the
//! guest binds an ephemeral HPKE public key and the owner's nonce into
//! REPORT_DATA ([`binding`]); the owner validates the report and only then
//! seals the secret table to that key ([`sealed`]); the guest opens it. The
//! host relays the evidence ([`evidence`]) and the sealed file, and can
//! neither read nor forge them. No I/O here.
//!
//! HPKE (RFC 9180) base mode with DHKEM(P-384, HKDF-SHA384), HKDF-SHA384 and
//! AES-256-GCM: the curve and hash of the VCEK's signature over the report.

pub mod binding;
pub mod evidence;
pub mod sealed;

use hpke::kem::DhP384HkdfSha384;
use hpke::{Deserializable, Kem as _, Serializable};
use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

pub use binding::report_data;
pub use evidence::{Evidence, ReportSource};
pub use sealed::{open, seal, SealedHeader};

/// The label of every value this protocol derives: the ASCII bytes
/// `virt-qemu-sev-validate snp-key-release v1` and one 0x00 byte.
pub const LABEL: &[u8] = b"virt-qemu-sev-validate snp-key-release v1\0";
/// The owner's nonce is exactly this many bytes.
pub const NONCE_LEN: usize = 32;
/// A public key is a SEC1 uncompressed P-384 point: 0x04, X, Y.
pub const PUBLIC_KEY_LEN: usize = 97;
/// HPKE KEM identifier: DHKEM(P-384, HKDF-SHA384).
pub const KEM_ID: u16 = 0x0011;
/// HPKE KDF identifier: HKDF-SHA384.
pub const KDF_ID: u16 = 0x0002;
/// HPKE AEAD identifier: AES-256-GCM.
pub const AEAD_ID: u16 = 0x0002;

/// The KEM of the suite.
pub(crate) type Kem = DhP384HkdfSha384;
/// The KDF of the suite.
pub(crate) type Kdf = hpke::kdf::HkdfSha384;
/// The AEAD of the suite.
pub(crate) type Aead = hpke::aead::AesGcm256;

/// Why key-release input is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyReleaseError {
    /// The input is not in the format it claims (bad magic, wrong lengths,
    /// an unknown suite, JSON that does not follow the schema).
    #[error("{0}")]
    Malformed(String),
    /// The AEAD refused the ciphertext: another recipient key, or changed bytes.
    #[error(
        "the sealed file cannot be opened: it was not sealed to this key, or it was tampered with"
    )]
    NotForThisKey,
    /// The HPKE library refused an operation it should not refuse.
    #[error("HPKE failed: {0}")]
    Hpke(String),
}

/// An ephemeral recipient key pair: the private scalar (48 bytes, wiped on
/// drop) and the SEC1 uncompressed public key.
pub struct KeyPair {
    private: Zeroizing<Vec<u8>>,
    /// The public key, 97 bytes SEC1 uncompressed.
    pub public: [u8; PUBLIC_KEY_LEN],
}

impl KeyPair {
    /// A fresh key pair from `rng`.
    pub fn generate<R: CryptoRng + RngCore>(rng: &mut R) -> KeyPair {
        let (sk, pk) = Kem::gen_keypair(rng);
        KeyPair::from_parts(&sk, &pk)
    }

    fn from_parts(
        sk: &<Kem as hpke::Kem>::PrivateKey,
        pk: &<Kem as hpke::Kem>::PublicKey,
    ) -> KeyPair {
        let mut public = [0u8; PUBLIC_KEY_LEN];
        public.copy_from_slice(&pk.to_bytes());
        KeyPair {
            private: Zeroizing::new(sk.to_bytes().to_vec()),
            public,
        }
    }

    /// The key pair of a private scalar (48 bytes, big-endian).
    pub fn from_private_bytes(b: &[u8]) -> Result<KeyPair, KeyReleaseError> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(b).map_err(|_| {
            KeyReleaseError::Malformed("not a P-384 private key (48 bytes, below the order)".into())
        })?;
        let pk = Kem::sk_to_pk(&sk);
        Ok(KeyPair::from_parts(&sk, &pk))
    }

    /// The private key as PKCS#8 PEM ("PRIVATE KEY"), wiped on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyReleaseError> {
        let sk = p384::SecretKey::from_slice(&self.private)
            .map_err(|e| KeyReleaseError::Hpke(format!("P-384 key: {e}")))?;
        sk.to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyReleaseError::Hpke(format!("PKCS#8: {e}")))
    }

    /// The key pair of a PKCS#8 PEM private key (as [`Self::to_pkcs8_pem`] writes).
    pub fn from_pkcs8_pem(pem: &str) -> Result<KeyPair, KeyReleaseError> {
        let sk = p384::SecretKey::from_pkcs8_pem(pem).map_err(|e| {
            KeyReleaseError::Malformed(format!("not a PKCS#8 PEM P-384 private key: {e}"))
        })?;
        let b = Zeroizing::new(sk.to_bytes().to_vec());
        KeyPair::from_private_bytes(&b)
    }

    pub(crate) fn hpke_private(&self) -> Result<<Kem as hpke::Kem>::PrivateKey, KeyReleaseError> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(&self.private)
            .map_err(|e| KeyReleaseError::Hpke(e.to_string()))
    }
}

/// Checks that `pk` is a SEC1 uncompressed point on P-384.
pub fn check_public_key(pk: &[u8]) -> Result<(), KeyReleaseError> {
    if pk.len() != PUBLIC_KEY_LEN || pk[0] != 0x04 {
        return Err(KeyReleaseError::Malformed(format!(
            "the public key must be a SEC1 uncompressed P-384 point ({PUBLIC_KEY_LEN} bytes starting with 04), not {} bytes",
            pk.len()
        )));
    }
    <Kem as hpke::Kem>::PublicKey::from_bytes(pk)
        .map(|_| ())
        .map_err(|_| KeyReleaseError::Malformed("the public key is not a point on P-384".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_keeps_the_key() {
        let kp = KeyPair::generate(&mut rand_core::OsRng);
        let pem = kp.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = KeyPair::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.public, kp.public);
        assert_eq!(kp.public[0], 4);
        check_public_key(&kp.public).unwrap();
    }

    #[test]
    fn off_curve_points_are_refused() {
        let mut pk = [0u8; PUBLIC_KEY_LEN];
        pk[0] = 4;
        pk[96] = 1;
        assert!(check_public_key(&pk).is_err());
        assert!(check_public_key(&pk[..96]).is_err());
    }
}
