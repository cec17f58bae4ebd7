//! The SEV-SNP ID block and ID authentication information structure
//! (measurement.md §6 "ID block"): what the guest owner signs so that the
//! firmware refuses to launch a guest whose launch digest differs, and the
//! digests of the keys that appear in the attestation report.
//!
//! Keys are ECDSA P-384 private keys in PEM (PKCS#8 `PRIVATE KEY` or SEC1
//! `EC PRIVATE KEY`). Signatures are ECDSA-P384 with SHA-384 over the raw
//! structure bytes, stored as R ‖ S little-endian, zero-extended to 72 bytes.

use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use p384::pkcs8::der::pem as pem_rfc7468;
use p384::pkcs8::{self, DecodePrivateKey, ObjectIdentifier};
use p384::{EncodedPoint, SecretKey};
use sha2::{Digest, Sha384};

/// Length of the ID block.
pub const ID_BLOCK_LEN: usize = 0x60;
/// Length of the ID authentication information structure.
pub const ID_AUTH_LEN: usize = 0x1000;
/// Length of the public key structure.
pub const PUBLIC_KEY_LEN: usize = 0x404;
/// Length of the signature structure.
pub const SIGNATURE_LEN: usize = 0x200;
/// The policy the tools default to: bit 17 (must be one) and bit 16 (SMT allowed).
pub const DEFAULT_POLICY: u64 = 0x30000;
/// ID_KEY_ALGO / AUTH_KEY_ALGO: ECDSA P-384 with SHA-384.
pub const ALGO_ECDSA_P384_SHA384: u32 = 1;
/// The public key structure's curve field: P-384.
pub const CURVE_P384: u32 = 2;

const COORD_LEN: usize = 72;
const SCALAR_LEN: usize = 48;

// ID auth offsets.
const AUTH_ID_KEY_ALGO: usize = 0x000;
const AUTH_AUTH_KEY_ALGO: usize = 0x004;
const AUTH_ID_BLOCK_SIG: usize = 0x040;
const AUTH_ID_KEY: usize = 0x240;
const AUTH_ID_KEY_SIG: usize = 0x680;
const AUTH_AUTHOR_KEY: usize = 0x880;

/// Why 96 bytes are not an ID block this firmware accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdBlockError {
    /// VERSION (offset 0x50) is not 1.
    #[error("its VERSION (bytes 0x50..0x54) is {0}, but the only ID block version the SNP firmware accepts is 1")]
    Version(u32),
}

/// Why a key or signature cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No PEM block, or a malformed one.
    #[error("it is not a PEM file: {0}")]
    NotPem(String),
    /// PEM blocks, but none with a private key; holds their labels.
    #[error("it holds no private key (PEM blocks found: {0}); give the PEM private key (PKCS#8 'PRIVATE KEY' or SEC1 'EC PRIVATE KEY')")]
    NoPrivateKey(String),
    /// A PKCS#8 `ENCRYPTED PRIVATE KEY` or a SEC1 key with `Proc-Type`/`DEK-Info`.
    #[error(
        "it is an encrypted private key; decrypt it first (openssl pkey -in KEY -out PLAIN.pem)"
    )]
    Encrypted,
    /// A private key of another algorithm (RSA, Ed25519, DSA, ...).
    #[error(
        "it holds a key of type {0}, but SEV-SNP ID and author keys must be ECDSA P-384 (secp384r1) keys"
    )]
    NotEc(String),
    /// An EC private key on a curve other than P-384.
    #[error("it is an EC key on curve {0}, but SEV-SNP ID and author keys must be on curve P-384 (secp384r1)")]
    WrongCurve(String),
    /// A PKCS#8 or SEC1 structure that does not decode to a P-384 key.
    #[error("the private key is malformed: {0}")]
    Malformed(String),
    /// A public key structure whose curve is not 2 or whose point is invalid.
    #[error("the public key structure is not a P-384 key: {0}")]
    BadPublicKey(String),
    /// A signature structure whose R or S is too wide, zero or out of range.
    #[error("the signature structure is malformed: {0}")]
    BadSignature(String),
    /// A well-formed signature that the public key rejects.
    #[error("the signature does not verify with the key")]
    VerifyFailed,
}

/// The 96-byte ID block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdBlock {
    /// The expected launch digest.
    pub ld: [u8; 48],
    /// FAMILY_ID (offset 0x30): owner-chosen, copied into the report's FAMILY_ID.
    pub family_id: [u8; 16],
    /// IMAGE_ID (offset 0x40): owner-chosen, copied into the report's IMAGE_ID.
    pub image_id: [u8; 16],
    /// GUEST_SVN (offset 0x54): the guest's security version, copied into the report.
    pub guest_svn: u32,
    /// Must equal the guest's SNP policy.
    pub policy: u64,
}

impl IdBlock {
    /// An ID block for `ld` with the tools' defaults: zero IDs and SVN, policy 0x30000.
    pub fn new(ld: [u8; 48]) -> IdBlock {
        IdBlock {
            ld,
            family_id: [0; 16],
            image_id: [0; 16],
            guest_svn: 0,
            policy: DEFAULT_POLICY,
        }
    }

    /// `LD[48] | FAMILY_ID[16] | IMAGE_ID[16] | u32 VERSION = 1 | u32 GUEST_SVN | u64 POLICY`.
    pub fn to_bytes(&self) -> [u8; ID_BLOCK_LEN] {
        let mut b = [0u8; ID_BLOCK_LEN];
        b[0x00..0x30].copy_from_slice(&self.ld);
        b[0x30..0x40].copy_from_slice(&self.family_id);
        b[0x40..0x50].copy_from_slice(&self.image_id);
        b[0x50..0x54].copy_from_slice(&1u32.to_le_bytes());
        b[0x54..0x58].copy_from_slice(&self.guest_svn.to_le_bytes());
        b[0x58..0x60].copy_from_slice(&self.policy.to_le_bytes());
        b
    }

    /// Reads an ID block (a libvirt `<idBlock>` or QEMU `id-block=`). VERSION
    /// must be 1, so [`IdBlock::to_bytes`] gives back exactly these bytes, which
    /// is what the ID key signed.
    pub fn from_bytes(b: &[u8; ID_BLOCK_LEN]) -> Result<IdBlock, IdBlockError> {
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let version = u32_at(0x50);
        if version != 1 {
            return Err(IdBlockError::Version(version));
        }
        let mut ld = [0u8; 48];
        ld.copy_from_slice(&b[0x00..0x30]);
        let mut family_id = [0u8; 16];
        family_id.copy_from_slice(&b[0x30..0x40]);
        let mut image_id = [0u8; 16];
        image_id.copy_from_slice(&b[0x40..0x50]);
        let mut policy = [0u8; 8];
        policy.copy_from_slice(&b[0x58..0x60]);
        Ok(IdBlock {
            ld,
            family_id,
            image_id,
            guest_svn: u32_at(0x54),
            policy: u64::from_le_bytes(policy),
        })
    }
}

fn curve_name(oid: &ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.10045.3.1.7" => "P-256 (prime256v1)",
        "1.3.132.0.34" => "P-384 (secp384r1)",
        "1.3.132.0.35" => "P-521 (secp521r1)",
        "1.3.132.0.33" => "P-224 (secp224r1)",
        "1.3.132.0.10" => "secp256k1",
        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        _ => return format!("with OID {oid}"),
    };
    name.to_string()
}

fn algorithm_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA".into(),
        "1.2.840.113549.1.1.10" => "RSA-PSS".into(),
        "1.3.101.112" => "Ed25519".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.3.101.110" => "X25519".into(),
        "1.3.101.111" => "X448".into(),
        "1.2.840.10040.4.1" => "DSA".into(),
        o => format!("non-EC (algorithm OID {o})"),
    }
}

const ID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const SECP384R1: &str = "1.3.132.0.34";

/// The PEM blocks of `text`, each from its BEGIN line to its END line.
fn pem_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let from = &rest[start..];
        // The END line of this block: "-----END <label>-----".
        let Some(end) = from.find("-----END ") else {
            break;
        };
        let after_end = &from[end + 9..];
        let Some(close) = after_end.find("-----") else {
            break;
        };
        let len = end + 9 + close + 5;
        blocks.push(&from[..len]);
        rest = &from[len..];
    }
    blocks
}

/// Explains why a PKCS#8 document is not a P-384 key.
fn diagnose_pkcs8(der: &[u8]) -> KeyError {
    match pkcs8::PrivateKeyInfo::try_from(der) {
        Err(e) => KeyError::Malformed(format!("not a PKCS#8 private key ({e})")),
        Ok(info) => {
            if info.algorithm.oid.to_string() != ID_EC_PUBLIC_KEY {
                return KeyError::NotEc(algorithm_name(&info.algorithm.oid));
            }
            match info.algorithm.parameters_oid() {
                Ok(c) if c.to_string() != SECP384R1 => KeyError::WrongCurve(curve_name(&c)),
                Ok(_) => KeyError::Malformed("the P-384 private key value is invalid".into()),
                Err(_) => KeyError::Malformed(
                    "the EC key does not name its curve (explicit curve parameters are not supported)"
                        .into(),
                ),
            }
        }
    }
}

/// Explains why a SEC1 `ECPrivateKey` is not a P-384 key.
fn diagnose_sec1(der: &[u8]) -> KeyError {
    match sec1::EcPrivateKey::try_from(der) {
        Err(e) => KeyError::Malformed(format!("not a SEC1 EC private key ({e})")),
        Ok(k) => match k.parameters.and_then(|p| p.named_curve()) {
            Some(c) if c.to_string() != SECP384R1 => KeyError::WrongCurve(curve_name(&c)),
            Some(_) => KeyError::Malformed("the P-384 private key value is invalid".into()),
            None => KeyError::WrongCurve(format!(
                "unnamed ({}-byte private key)",
                k.private_key.len()
            )),
        },
    }
}

/// An ECDSA P-384 key pair that signs ID blocks or ID keys.
#[derive(Clone)]
pub struct SnpKey {
    signing: SigningKey,
}

impl std::fmt::Debug for SnpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnpKey")
            .field("public_key_digest", &super::hex(&self.public_key_digest()))
            .finish()
    }
}

impl SnpKey {
    /// Reads a P-384 private key from PEM text: PKCS#8 (`PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`, with or without a leading `EC PARAMETERS` block).
    pub fn from_pem(text: &str) -> Result<SnpKey, KeyError> {
        let blocks = pem_blocks(text);
        if blocks.is_empty() {
            return Err(KeyError::NotPem(
                "no '-----BEGIN ...-----' line found".into(),
            ));
        }
        let mut labels = Vec::new();
        for block in &blocks {
            let label = pem_rfc7468::decode_label(block.as_bytes())
                .map_err(|e| KeyError::NotPem(format!("malformed PEM block ({e})")))?;
            labels.push(label.to_string());
            match label {
                "PRIVATE KEY" => {
                    let (_, der) = pem_rfc7468::decode_vec(block.as_bytes())
                        .map_err(|e| KeyError::NotPem(format!("malformed PEM block ({e})")))?;
                    return match SecretKey::from_pkcs8_der(&der) {
                        Ok(k) => Ok(SnpKey::from_secret(&k)),
                        Err(_) => Err(diagnose_pkcs8(&der)),
                    };
                }
                "EC PRIVATE KEY" => {
                    if block.contains("Proc-Type:") || block.contains("DEK-Info:") {
                        return Err(KeyError::Encrypted);
                    }
                    let (_, der) = pem_rfc7468::decode_vec(block.as_bytes())
                        .map_err(|e| KeyError::NotPem(format!("malformed PEM block ({e})")))?;
                    return match SecretKey::from_sec1_der(&der) {
                        Ok(k) => Ok(SnpKey::from_secret(&k)),
                        Err(_) => Err(diagnose_sec1(&der)),
                    };
                }
                "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
                "RSA PRIVATE KEY" => return Err(KeyError::NotEc("RSA".into())),
                "DSA PRIVATE KEY" => return Err(KeyError::NotEc("DSA".into())),
                _ => {}
            }
        }
        Err(KeyError::NoPrivateKey(labels.join(", ")))
    }

    fn from_secret(k: &SecretKey) -> SnpKey {
        SnpKey {
            signing: SigningKey::from(k),
        }
    }

    /// The public key structure (0x404 bytes) of this key.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        public_key_struct(self.signing.verifying_key())
    }

    /// SHA-384 of the public key structure: ID_KEY_DIGEST or AUTHOR_KEY_DIGEST.
    pub fn public_key_digest(&self) -> [u8; 48] {
        key_digest(&self.public_key())
    }

    /// Signs `msg` (ECDSA P-384, SHA-384) into a signature structure.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        let sig: Signature = self.signing.sign(msg);
        signature_struct(&sig)
    }
}

/// `u32 curve = 2 | Qx[72] | Qy[72] | zero[0x370]`, coordinates little-endian.
pub fn public_key_struct(vk: &VerifyingKey) -> [u8; PUBLIC_KEY_LEN] {
    let point = vk.to_encoded_point(false);
    let mut b = [0u8; PUBLIC_KEY_LEN];
    b[0..4].copy_from_slice(&CURVE_P384.to_le_bytes());
    let (x, y) = (
        point.x().expect("an uncompressed point has x"),
        point.y().expect("an uncompressed point has y"),
    );
    for i in 0..SCALAR_LEN {
        b[4 + i] = x[SCALAR_LEN - 1 - i];
        b[4 + COORD_LEN + i] = y[SCALAR_LEN - 1 - i];
    }
    b
}

fn signature_struct(sig: &Signature) -> [u8; SIGNATURE_LEN] {
    let (r, s) = sig.split_bytes();
    let mut b = [0u8; SIGNATURE_LEN];
    for i in 0..SCALAR_LEN {
        b[i] = r[SCALAR_LEN - 1 - i];
        b[COORD_LEN + i] = s[SCALAR_LEN - 1 - i];
    }
    b
}

/// Reads 48 little-endian bytes zero-extended to 72 as a big-endian value.
fn le72_to_be48(b: &[u8]) -> Option<[u8; SCALAR_LEN]> {
    if b[SCALAR_LEN..COORD_LEN].iter().any(|&x| x != 0) {
        return None;
    }
    let mut out = [0u8; SCALAR_LEN];
    for i in 0..SCALAR_LEN {
        out[i] = b[SCALAR_LEN - 1 - i];
    }
    Some(out)
}

/// SHA-384 of a public key structure: the ID_KEY_DIGEST or AUTHOR_KEY_DIGEST
/// a report carries for it.
pub fn key_digest(public_key: &[u8; PUBLIC_KEY_LEN]) -> [u8; 48] {
    Sha384::digest(public_key).into()
}

/// The verifying key in a public key structure.
pub fn parse_public_key(b: &[u8; PUBLIC_KEY_LEN]) -> Result<VerifyingKey, KeyError> {
    let curve = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if curve != CURVE_P384 {
        return Err(KeyError::BadPublicKey(format!(
            "curve field is {curve}, not 2 (P-384)"
        )));
    }
    let x = le72_to_be48(&b[4..4 + COORD_LEN])
        .ok_or_else(|| KeyError::BadPublicKey("Qx is wider than 48 bytes".into()))?;
    let y = le72_to_be48(&b[4 + COORD_LEN..4 + 2 * COORD_LEN])
        .ok_or_else(|| KeyError::BadPublicKey("Qy is wider than 48 bytes".into()))?;
    let point = EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    VerifyingKey::from_encoded_point(&point)
        .map_err(|_| KeyError::BadPublicKey("the point is not on the curve".into()))
}

/// Checks a signature structure over `msg` against a public key structure.
pub fn verify(
    public_key: &[u8; PUBLIC_KEY_LEN],
    msg: &[u8],
    sig: &[u8; SIGNATURE_LEN],
) -> Result<(), KeyError> {
    let vk = parse_public_key(public_key)?;
    let r = le72_to_be48(&sig[0..COORD_LEN])
        .ok_or_else(|| KeyError::BadSignature("R is wider than 48 bytes".into()))?;
    let s = le72_to_be48(&sig[COORD_LEN..2 * COORD_LEN])
        .ok_or_else(|| KeyError::BadSignature("S is wider than 48 bytes".into()))?;
    let sig = Signature::from_scalars(r, s)
        .map_err(|_| KeyError::BadSignature("R or S is zero or out of range".into()))?;
    vk.verify(msg, &sig).map_err(|_| KeyError::VerifyFailed)
}

/// The ID authentication information structure.
#[derive(Clone, PartialEq, Eq)]
pub struct IdAuth {
    /// ID_KEY_ALGO (offset 0x000): [`ALGO_ECDSA_P384_SHA384`].
    pub id_key_algo: u32,
    /// AUTH_KEY_ALGO (offset 0x004): [`ALGO_ECDSA_P384_SHA384`], or 0 without an author key.
    pub auth_key_algo: u32,
    /// ID_BLOCK_SIG (offset 0x040): the ID key's signature over the 96-byte ID block.
    pub id_block_sig: [u8; SIGNATURE_LEN],
    /// ID_KEY (offset 0x240): the ID key's public key structure.
    pub id_key: [u8; PUBLIC_KEY_LEN],
    /// ID_KEY_SIG (offset 0x680): the author key's signature over ID_KEY; zero without one.
    pub id_key_sig: [u8; SIGNATURE_LEN],
    /// AUTHOR_KEY (offset 0x880): the author key's public key structure; zero without one.
    pub author_key: [u8; PUBLIC_KEY_LEN],
}

impl std::fmt::Debug for IdAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdAuth")
            .field("id_key_algo", &self.id_key_algo)
            .field("auth_key_algo", &self.auth_key_algo)
            .finish_non_exhaustive()
    }
}

impl IdAuth {
    /// Signs `block` with the ID key and, if given, the ID key with the author
    /// key. Without an author key the author fields stay zero (QEMU's
    /// `author-key-enabled=off` makes the firmware ignore them).
    pub fn sign(block: &IdBlock, id_key: &SnpKey, author_key: Option<&SnpKey>) -> IdAuth {
        let id_pub = id_key.public_key();
        let (auth_key_algo, id_key_sig, author_key) = match author_key {
            Some(a) => (ALGO_ECDSA_P384_SHA384, a.sign(&id_pub), a.public_key()),
            None => (0, [0u8; SIGNATURE_LEN], [0u8; PUBLIC_KEY_LEN]),
        };
        IdAuth {
            id_key_algo: ALGO_ECDSA_P384_SHA384,
            auth_key_algo,
            id_block_sig: id_key.sign(&block.to_bytes()),
            id_key: id_pub,
            id_key_sig,
            author_key,
        }
    }

    /// The 4096-byte structure QEMU's `id-auth=` takes.
    pub fn to_bytes(&self) -> Box<[u8; ID_AUTH_LEN]> {
        let mut b = Box::new([0u8; ID_AUTH_LEN]);
        b[AUTH_ID_KEY_ALGO..AUTH_ID_KEY_ALGO + 4].copy_from_slice(&self.id_key_algo.to_le_bytes());
        b[AUTH_AUTH_KEY_ALGO..AUTH_AUTH_KEY_ALGO + 4]
            .copy_from_slice(&self.auth_key_algo.to_le_bytes());
        b[AUTH_ID_BLOCK_SIG..AUTH_ID_BLOCK_SIG + SIGNATURE_LEN].copy_from_slice(&self.id_block_sig);
        b[AUTH_ID_KEY..AUTH_ID_KEY + PUBLIC_KEY_LEN].copy_from_slice(&self.id_key);
        b[AUTH_ID_KEY_SIG..AUTH_ID_KEY_SIG + SIGNATURE_LEN].copy_from_slice(&self.id_key_sig);
        b[AUTH_AUTHOR_KEY..AUTH_AUTHOR_KEY + PUBLIC_KEY_LEN].copy_from_slice(&self.author_key);
        b
    }

    /// Splits a 4096-byte structure into its fields (reserved bytes are not kept).
    pub fn from_bytes(b: &[u8; ID_AUTH_LEN]) -> IdAuth {
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        IdAuth {
            id_key_algo: u32_at(AUTH_ID_KEY_ALGO),
            auth_key_algo: u32_at(AUTH_AUTH_KEY_ALGO),
            id_block_sig: b[AUTH_ID_BLOCK_SIG..AUTH_ID_BLOCK_SIG + SIGNATURE_LEN]
                .try_into()
                .expect("fixed length"),
            id_key: b[AUTH_ID_KEY..AUTH_ID_KEY + PUBLIC_KEY_LEN]
                .try_into()
                .expect("fixed length"),
            id_key_sig: b[AUTH_ID_KEY_SIG..AUTH_ID_KEY_SIG + SIGNATURE_LEN]
                .try_into()
                .expect("fixed length"),
            author_key: b[AUTH_AUTHOR_KEY..AUTH_AUTHOR_KEY + PUBLIC_KEY_LEN]
                .try_into()
                .expect("fixed length"),
        }
    }

    /// Whether the structure holds an author key (an all-zero AUTHOR_KEY is none).
    pub fn has_author_key(&self) -> bool {
        self.author_key.iter().any(|&b| b != 0)
    }

    /// Checks both signatures as the firmware does: the ID block against the
    /// ID key and, when an author key is present, the ID key against it.
    pub fn verify(&self, block: &IdBlock) -> Result<(), KeyError> {
        verify(&self.id_key, &block.to_bytes(), &self.id_block_sig)?;
        if self.has_author_key() {
            verify(&self.author_key, &self.id_key, &self.id_key_sig)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A P-384 key in SEC1 form with the EC PARAMETERS block openssl ecparam writes.
    const P384_SEC1_WITH_PARAMS: &str = "-----BEGIN EC PARAMETERS-----
BgUrgQQAIg==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDDd3NjrPduToA3Y2bU8u+m+wL+icE6wZOiAm5FopHJjHx2a67ZcqhcX
mB/DBwn4WsKgBwYFK4EEACKhZANiAASyD9Ghwr0rZRg6duI5CsgF9tjl4q9yXlqO
k8+H7AKfnUXrMmsEuSvrcU4U+phviposlKC4qzDMdjUmdZRIdokelU/271gmpiMb
ptbX9uv7aM4zDh5ZOU77cICIPdxpNks=
-----END EC PRIVATE KEY-----
";

    #[test]
    fn id_block_layout() {
        let mut b = IdBlock::new([0xAA; 48]);
        b.family_id = [1; 16];
        b.image_id = [2; 16];
        b.guest_svn = 0x0403_0201;
        let bytes = b.to_bytes();
        assert_eq!(&bytes[..48], &[0xAA; 48]);
        assert_eq!(&bytes[0x30..0x40], &[1; 16]);
        assert_eq!(&bytes[0x40..0x50], &[2; 16]);
        assert_eq!(
            &bytes[0x50..0x60],
            &[1, 0, 0, 0, 1, 2, 3, 4, 0, 0, 3, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn id_block_from_bytes_round_trips() {
        let mut b = IdBlock::new([0x5A; 48]);
        b.family_id = [3; 16];
        b.image_id = [4; 16];
        b.guest_svn = 0xDEAD_BEEF;
        b.policy = 0x0013_0000;
        let bytes = b.to_bytes();
        assert_eq!(IdBlock::from_bytes(&bytes), Ok(b));
        // Every byte of a version-1 block comes back as it was.
        let mut any = [0u8; ID_BLOCK_LEN];
        for (i, x) in any.iter_mut().enumerate() {
            *x = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        any[0x50..0x54].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(IdBlock::from_bytes(&any).unwrap().to_bytes(), any);
    }

    #[test]
    fn id_block_from_bytes_reads_the_public_vector() {
        // measurement.md §8.6: sev-snp-measure's test_id_block.py ID block.
        use base64::Engine as _;
        let b64 = "B28FLQi9p6cAqipgjFyqawDrrSl7bWioWkWx5mmlWLZ+G5HShKMB/mPE+gdQRn7tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAwAAAAAA";
        let ld_b64 = "B28FLQi9p6cAqipgjFyqawDrrSl7bWioWkWx5mmlWLZ+G5HShKMB/mPE+gdQRn7t";
        let engine = base64::engine::general_purpose::STANDARD;
        let bytes: [u8; ID_BLOCK_LEN] = engine.decode(b64).unwrap().try_into().unwrap();
        let block = IdBlock::from_bytes(&bytes).unwrap();
        assert_eq!(block.ld.to_vec(), engine.decode(ld_b64).unwrap());
        assert_eq!(block.policy, 0x30000);
        assert_eq!(
            (block.guest_svn, block.family_id, block.image_id),
            (0, [0; 16], [0; 16])
        );
        assert_eq!(block.to_bytes(), bytes);
    }

    #[test]
    fn id_block_version_other_than_1_is_refused() {
        for v in [0u32, 2, u32::MAX] {
            let mut bytes = IdBlock::new([1; 48]).to_bytes();
            bytes[0x50..0x54].copy_from_slice(&v.to_le_bytes());
            let e = IdBlock::from_bytes(&bytes).unwrap_err();
            assert_eq!(e, IdBlockError::Version(v));
            assert!(e
                .to_string()
                .contains(&format!("VERSION (bytes 0x50..0x54) is {v}")));
        }
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let k = SnpKey::from_pem(P384_SEC1_WITH_PARAMS).unwrap();
        let block = IdBlock::new([7; 48]);
        let auth = IdAuth::sign(&block, &k, Some(&k));
        auth.verify(&block).unwrap();
        let bytes = auth.to_bytes();
        assert_eq!(IdAuth::from_bytes(&bytes), auth);
        let mut other = block;
        other.guest_svn = 1;
        assert_eq!(auth.verify(&other), Err(KeyError::VerifyFailed));
        let mut bad = auth.clone();
        bad.id_block_sig[100] ^= 1; // a bit of S
        assert_eq!(bad.verify(&block), Err(KeyError::VerifyFailed));
        let mut bad = auth.clone();
        bad.id_block_sig[60] = 1; // R's zero extension
        assert!(matches!(bad.verify(&block), Err(KeyError::BadSignature(_))));
        let no_author = IdAuth::sign(&block, &k, None);
        assert_eq!(no_author.auth_key_algo, 0);
        no_author.verify(&block).unwrap();
    }

    #[test]
    fn bad_pem_is_an_error_not_a_panic() {
        assert!(matches!(
            SnpKey::from_pem("hello"),
            Err(KeyError::NotPem(_))
        ));
        assert!(matches!(
            SnpKey::from_pem("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"),
            Err(KeyError::NotPem(_))
        ));
        assert!(matches!(
            SnpKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            SnpKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            Err(KeyError::NoPrivateKey(_))
        ));
        assert!(matches!(
            SnpKey::from_pem(
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
            ),
            Err(KeyError::Encrypted)
        ));
        // Every truncation of a good key: an error or a key, never a panic.
        for cut in 0..P384_SEC1_WITH_PARAMS.len() {
            let _ = SnpKey::from_pem(&P384_SEC1_WITH_PARAMS[..cut]);
        }
    }
}
