//! The sealed file: the secret table under HPKE to the guest's key, bound
//! to the MEASUREMENT and REPORT_ID of the report the owner validated.
//!
//! ```text
//! magic "SNPSEAL1" (8) ‖ kem u16be ‖ kdf u16be ‖ aead u16be
//! ‖ MEASUREMENT (48) ‖ REPORT_ID (32) ‖ enc length u16be ‖ enc
//! ‖ ciphertext length u32be ‖ ciphertext (AES-256-GCM, tag included)
//! ```
//!
//! HPKE `info` = label ‖ "sealed" ‖ MEASUREMENT ‖ REPORT_ID; the AEAD's
//! `aad` is every byte before the ciphertext length.

use hpke::aead::AeadTag;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{check_public_key, Aead, Kdf, Kem, KeyPair, KeyReleaseError, LABEL};
use super::{AEAD_ID, KDF_ID, KEM_ID};
use crate::core::secret::{parse_table, SecretTable, MAX_SECRET_TABLE_LEN};

/// The first 8 bytes of a sealed file.
pub const MAGIC: &[u8; 8] = b"SNPSEAL1";
/// The AES-256-GCM tag at the end of the ciphertext.
pub const TAG_LEN: usize = 16;
/// The DHKEM(P-384) `enc`: an uncompressed point.
pub const ENC_LEN: usize = 97;
/// Bytes before `enc`: magic, suite, MEASUREMENT, REPORT_ID, enc length.
const FIXED_LEN: usize = 8 + 6 + 48 + 32 + 2;
/// The largest sealed file read: a secret table of the largest size and the headers.
pub const MAX_SEALED_LEN: usize = FIXED_LEN + ENC_LEN + 4 + MAX_SECRET_TABLE_LEN + TAG_LEN;

/// What a sealed file says in the clear: the launch it was sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedHeader {
    /// MEASUREMENT of the validated report.
    pub measurement: [u8; 48],
    /// REPORT_ID of the validated report.
    pub report_id: [u8; 32],
}

/// The HPKE `info`: label ‖ "sealed" ‖ MEASUREMENT ‖ REPORT_ID.
pub fn info(h: &SealedHeader) -> Vec<u8> {
    [LABEL, b"sealed", &h.measurement, &h.report_id].concat()
}

fn header_bytes(h: &SealedHeader, enc: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(FIXED_LEN + enc.len());
    b.extend_from_slice(MAGIC);
    for id in [KEM_ID, KDF_ID, AEAD_ID] {
        b.extend_from_slice(&id.to_be_bytes());
    }
    b.extend_from_slice(&h.measurement);
    b.extend_from_slice(&h.report_id);
    // ENC_LEN fits a u16.
    b.extend_from_slice(&(enc.len() as u16).to_be_bytes());
    b.extend_from_slice(enc);
    b
}

/// Seals `table` to `recipient_pk` for the launch in `header`: the whole file.
pub fn seal<R: CryptoRng + RngCore>(
    table: &SecretTable,
    recipient_pk: &[u8],
    header: &SealedHeader,
    rng: &mut R,
) -> Result<Vec<u8>, KeyReleaseError> {
    check_public_key(recipient_pk)?;
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient_pk)
        .map_err(|e| KeyReleaseError::Hpke(e.to_string()))?;
    let plain = table
        .build()
        .map_err(|e| KeyReleaseError::Malformed(e.to_string()))?;
    let info = info(header);
    // The encapsulation comes first: the aad holds it.
    let (enc, mut ctx) = hpke::setup_sender::<Aead, Kdf, Kem, R>(&OpModeS::Base, &pk, &info, rng)
        .map_err(|e| KeyReleaseError::Hpke(e.to_string()))?;
    let enc = enc.to_bytes();
    let aad = header_bytes(header, &enc);
    let mut body = Zeroizing::new(plain.to_vec());
    let tag = ctx
        .seal_in_place_detached(&mut body, &aad)
        .map_err(|e| KeyReleaseError::Hpke(e.to_string()))?;
    let ct_len = u32::try_from(body.len() + TAG_LEN)
        .map_err(|_| KeyReleaseError::Malformed("the secret table is too large".into()))?;
    let mut out = aad;
    out.extend_from_slice(&ct_len.to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag.to_bytes());
    Ok(out)
}

fn malformed(m: impl Into<String>) -> KeyReleaseError {
    KeyReleaseError::Malformed(m.into())
}

/// The parts of a sealed file, its layout checked (nothing decrypted).
pub struct Parsed<'a> {
    /// The launch it was sealed for.
    pub header: SealedHeader,
    /// The HPKE encapsulated key.
    pub enc: &'a [u8],
    /// Every byte before the ciphertext length.
    pub aad: &'a [u8],
    /// The ciphertext, tag included.
    pub ciphertext: &'a [u8],
}

/// Checks a sealed file's layout and suite.
pub fn parse(b: &[u8]) -> Result<Parsed<'_>, KeyReleaseError> {
    if b.len() < 8 || &b[..8] != MAGIC {
        return Err(malformed(
            "not a sealed file: it does not start with SNPSEAL1 (snp-validate --sealed-out writes one)",
        ));
    }
    if b.len() > MAX_SEALED_LEN {
        return Err(malformed(format!(
            "a sealed file is at most {MAX_SEALED_LEN} bytes; this one is {}",
            b.len()
        )));
    }
    if b.len() < FIXED_LEN {
        return Err(malformed(format!(
            "the sealed file is cut short at {} bytes",
            b.len()
        )));
    }
    let u16_at = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
    let suite = (u16_at(8), u16_at(10), u16_at(12));
    if suite != (KEM_ID, KDF_ID, AEAD_ID) {
        return Err(malformed(format!(
            "the sealed file's suite kem {:#06x}, kdf {:#06x}, aead {:#06x} is not supported; only {KEM_ID:#06x}, {KDF_ID:#06x}, {AEAD_ID:#06x} (DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM)",
            suite.0, suite.1, suite.2
        )));
    }
    let mut header = SealedHeader {
        measurement: [0; 48],
        report_id: [0; 32],
    };
    header.measurement.copy_from_slice(&b[14..62]);
    header.report_id.copy_from_slice(&b[62..94]);
    let enc_len = usize::from(u16_at(94));
    if enc_len != ENC_LEN {
        return Err(malformed(format!(
            "the sealed file's enc is {enc_len} bytes; DHKEM(P-384) gives {ENC_LEN}"
        )));
    }
    let aad_end = FIXED_LEN + enc_len;
    let Some(len_bytes) = b.get(aad_end..aad_end + 4) else {
        return Err(malformed(
            "the sealed file is cut short in its enc or ciphertext length",
        ));
    };
    let ct_len =
        u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
    let ct = &b[aad_end + 4..];
    if ct.len() != ct_len || ct_len < TAG_LEN {
        return Err(malformed(format!(
            "the sealed file's ciphertext length says {ct_len} bytes but {} follow (at least the {TAG_LEN}-byte tag)",
            ct.len()
        )));
    }
    Ok(Parsed {
        header,
        enc: &b[FIXED_LEN..aad_end],
        aad: &b[..aad_end],
        ciphertext: ct,
    })
}

/// The secrets of an opened file, in the table's order.
pub type Secrets = crate::core::secret::Entries;

/// Opens a sealed file with the guest's key: the header and the secrets.
pub fn open(b: &[u8], key: &KeyPair) -> Result<(SealedHeader, Secrets), KeyReleaseError> {
    let p = parse(b)?;
    let sk = key.hpke_private()?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(p.enc)
        // Only a changed byte makes the sender's point leave the curve.
        .map_err(|_| KeyReleaseError::NotForThisKey)?;
    let (ct, tag) = p.ciphertext.split_at(p.ciphertext.len() - TAG_LEN);
    let tag = AeadTag::<Aead>::from_bytes(tag).map_err(|e| KeyReleaseError::Hpke(e.to_string()))?;
    let mut ctx =
        hpke::setup_receiver::<Aead, Kdf, Kem>(&OpModeR::Base, &sk, &enc, &info(&p.header))
            .map_err(|_| KeyReleaseError::NotForThisKey)?;
    let mut plain = Zeroizing::new(ct.to_vec());
    ctx.open_in_place_detached(&mut plain, p.aad, &tag)
        .map_err(|_| KeyReleaseError::NotForThisKey)?;
    let entries =
        parse_table(&plain).map_err(|e| malformed(format!("the sealed secret table: {e}")))?;
    Ok((p.header, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::guid;

    fn sealed_for(kp: &KeyPair) -> (SealedHeader, Vec<u8>) {
        let mut t = SecretTable::new();
        t.add(guid::LUKS_KEY, Zeroizing::new(b"disk key".to_vec()))
            .unwrap();
        let h = SealedHeader {
            measurement: [1; 48],
            report_id: [2; 32],
        };
        (h, seal(&t, &kp.public, &h, &mut rand_core::OsRng).unwrap())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Any table opens to the same entries, bound to the same launch.
        #[test]
        fn any_table_round_trips(
            secrets in proptest::collection::vec(proptest::collection::vec(0u8.., 0..300), 0..5),
            m in proptest::array::uniform32(0u8..),
        ) {
            let kp = KeyPair::generate(&mut rand_core::OsRng);
            let mut t = SecretTable::new();
            for (i, s) in secrets.iter().enumerate() {
                t.add(uuid::Uuid::from_u128(i as u128 + 1), Zeroizing::new(s.clone())).unwrap();
            }
            let mut measurement = [0u8; 48];
            measurement[..32].copy_from_slice(&m);
            let h = SealedHeader { measurement, report_id: m };
            let b = seal(&t, &kp.public, &h, &mut rand_core::OsRng).unwrap();
            let (got, entries) = open(&b, &kp).unwrap();
            proptest::prop_assert_eq!(got, h);
            proptest::prop_assert_eq!(entries.len(), secrets.len());
            for (i, (g, d)) in entries.iter().enumerate() {
                proptest::prop_assert_eq!(*g, uuid::Uuid::from_u128(i as u128 + 1));
                proptest::prop_assert_eq!(d.as_slice(), secrets[i].as_slice());
            }
        }
    }

    #[test]
    fn round_trip_and_every_flipped_byte_is_refused() {
        let kp = KeyPair::generate(&mut rand_core::OsRng);
        let (h, b) = sealed_for(&kp);
        let (got, e) = open(&b, &kp).unwrap();
        assert_eq!(got, h);
        assert_eq!(e[0].0, guid::LUKS_KEY);
        assert_eq!(e[0].1.as_slice(), b"disk key");
        for i in 0..b.len() {
            let mut x = b.clone();
            x[i] ^= 0x01;
            assert!(open(&x, &kp).is_err(), "byte {i} flipped was accepted");
        }
        let other = KeyPair::generate(&mut rand_core::OsRng);
        assert_eq!(open(&b, &other).err(), Some(KeyReleaseError::NotForThisKey));
        for n in 0..b.len() {
            assert!(open(&b[..n], &kp).is_err());
        }
    }
}
