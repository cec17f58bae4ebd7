//! LAUNCH_SECRET packaging: the secret GUID table that OVMF and the Linux
//! `efi_secret` driver read, encrypted under the TEK with a header MAC'd
//! under the TIK (SEV API §6.6).

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::guid;
use super::keys::{Tek, Tik};

/// Size of the LAUNCH_SECRET packet header: flags, IV, MAC.
pub const HEADER_LEN: usize = 4 + 16 + 32;
/// Header GUID and u32 total length.
const TABLE_HEADER_LEN: usize = 16 + 4;
/// Entry GUID and u32 length.
const ENTRY_HEADER_LEN: usize = 16 + 4;

/// Largest secret table accepted when the firmware names no secret area:
/// the payload size sevctl's tests bound (16 KiB).
pub const MAX_SECRET_TABLE_LEN: usize = 16 * 1024;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// The secrets to inject, by GUID, in the order given.
#[derive(Default)]
pub struct SecretTable {
    entries: Vec<(Uuid, Zeroizing<Vec<u8>>)>,
}

impl SecretTable {
    /// A table with no secrets.
    pub fn new() -> SecretTable {
        SecretTable::default()
    }

    /// Adds a secret; a GUID may appear once.
    pub fn add(&mut self, guid: Uuid, data: Zeroizing<Vec<u8>>) -> Result<(), SecretError> {
        if self.entries.iter().any(|(g, _)| *g == guid) {
            return Err(SecretError::Duplicate(guid));
        }
        self.entries.push((guid, data));
        Ok(())
    }

    /// Number of secrets in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The length of the secret given for `guid`, as read.
    pub fn secret_len(&self, guid: &Uuid) -> Option<usize> {
        self.entries
            .iter()
            .find(|(g, _)| g == guid)
            .map(|(_, d)| d.len())
    }

    /// Whether no secret has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Length of the table before padding.
    pub fn unpadded_len(&self) -> usize {
        TABLE_HEADER_LEN
            + self
                .entries
                .iter()
                .map(|(_, d)| ENTRY_HEADER_LEN + d.len())
                .sum::<usize>()
    }

    /// Length of the table as injected: padded to the next multiple of 16.
    pub fn padded_len(&self) -> usize {
        self.unpadded_len().next_multiple_of(16)
    }

    /// The plaintext table. The total-length field holds the unpadded length
    /// (as sevctl writes it); zeros pad it to the next multiple of 16 only,
    /// never a whole extra block.
    pub fn build(&self) -> Result<Zeroizing<Vec<u8>>, SecretError> {
        let total = u32::try_from(self.unpadded_len()).map_err(|_| SecretError::TableTooLarge)?;
        let mut t = Zeroizing::new(Vec::with_capacity(self.padded_len()));
        t.extend_from_slice(&guid::to_le_bytes(&guid::SECRET_TABLE_HEADER));
        t.extend_from_slice(&total.to_le_bytes());
        for (g, data) in &self.entries {
            // Fits: the whole table's length fits in a u32.
            let len = (ENTRY_HEADER_LEN + data.len()) as u32;
            t.extend_from_slice(&guid::to_le_bytes(g));
            t.extend_from_slice(&len.to_le_bytes());
            t.extend_from_slice(data);
        }
        t.resize(self.padded_len(), 0);
        Ok(t)
    }
}

/// The secrets of a table, by GUID, in its order.
pub type Entries = Vec<(Uuid, Zeroizing<Vec<u8>>)>;

/// Reads a secret table as [`SecretTable::build`] writes it (the header
/// GUID, the unpadded total length, the entries, zeros to a multiple of 16):
/// the entries in order, each secret wiped on drop.
pub fn parse_table(b: &[u8]) -> Result<Entries, String> {
    let guid_at = |o: usize| {
        let mut g = [0u8; 16];
        g.copy_from_slice(&b[o..o + 16]);
        Uuid::from_bytes_le(g)
    };
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
    if b.len() < TABLE_HEADER_LEN || guid_at(0) != guid::SECRET_TABLE_HEADER {
        return Err(format!(
            "no secret table header (GUID {})",
            guid::SECRET_TABLE_HEADER
        ));
    }
    let total = u32_at(16);
    if total < TABLE_HEADER_LEN || total > b.len() || b.len() != total.next_multiple_of(16) {
        return Err(format!(
            "the table's length field says {total} bytes, which does not fit its {} bytes",
            b.len()
        ));
    }
    if b[total..].iter().any(|&x| x != 0) {
        return Err("the padding after the table is not zero".into());
    }
    let mut entries: Entries = Vec::new();
    let mut o = TABLE_HEADER_LEN;
    while o < total {
        if total - o < ENTRY_HEADER_LEN {
            return Err(format!("an entry at offset {o} is cut short"));
        }
        let (g, len) = (guid_at(o), u32_at(o + 16));
        if len < ENTRY_HEADER_LEN || len > total - o {
            return Err(format!(
                "the entry at offset {o} says {len} bytes, which does not fit"
            ));
        }
        if entries.iter().any(|(x, _)| *x == g) {
            return Err(format!("GUID {g} appears twice"));
        }
        entries.push((g, Zeroizing::new(b[o + ENTRY_HEADER_LEN..o + len].to_vec())));
        o += len;
    }
    Ok(entries)
}

/// Why a secret table or packet cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The GUID already has a secret in the table.
    #[error("a secret for GUID {0} is given twice")]
    Duplicate(Uuid),
    /// The table's length does not fit its u32 total-length field.
    #[error("the secrets are too large for a secret table")]
    TableTooLarge,
    /// The plaintext does not fit the u32 GUEST_LENGTH / TRANS_LENGTH.
    #[error("the secret table is too large for a LAUNCH_SECRET packet")]
    PacketTooLarge,
    /// The operating system's random source failed.
    #[error("cannot get random bytes for the IV: {0}")]
    Random(String),
}

/// A LAUNCH_SECRET packet: the 52-byte header and the encrypted table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretPacket {
    /// `FLAGS (u32 LE, 0) ‖ IV[16] ‖ MAC[32]` (SEV API §6.6), the QMP `packet-header`.
    pub header: [u8; HEADER_LEN],
    /// TRANS_DATA: the table under AES-128-CTR with the TEK, the QMP `secret`.
    pub payload: Vec<u8>,
}

/// Encrypts `plaintext` under the TEK with the counter block `iv` and MACs
/// the header under the TIK, binding it to `measure` (the first 32 bytes of
/// the launch measurement). Flags are 0 (not compressed).
pub fn package(
    tik: &Tik,
    tek: &Tek,
    measure: &[u8; 32],
    plaintext: &[u8],
    iv: [u8; 16],
) -> Result<SecretPacket, SecretError> {
    let len = u32::try_from(plaintext.len()).map_err(|_| SecretError::PacketTooLarge)?;
    let mut payload = plaintext.to_vec();
    Aes128Ctr::new(tek.as_bytes().into(), &iv.into()).apply_keystream(&mut payload);

    let flags = 0u32;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(tik.as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(&[0x01]);
    mac.update(&flags.to_le_bytes());
    mac.update(&iv);
    mac.update(&len.to_le_bytes()); // GUEST_LENGTH
    mac.update(&len.to_le_bytes()); // TRANS_LENGTH
    mac.update(&payload);
    mac.update(measure);

    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&flags.to_le_bytes());
    header[4..20].copy_from_slice(&iv);
    header[20..52].copy_from_slice(&mac.finalize().into_bytes());
    Ok(SecretPacket { header, payload })
}

/// A fresh random IV from the operating system.
pub fn random_iv() -> Result<[u8; 16], SecretError> {
    let mut iv = [0u8; 16];
    getrandom::getrandom(&mut iv).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(iv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_to_the_next_multiple_of_16_only() {
        // 20 + 20 + 24 = 64: already aligned, so no padding at all.
        let mut t = SecretTable::new();
        t.add(guid::LUKS_KEY, Zeroizing::new(vec![b'x'; 24]))
            .unwrap();
        assert_eq!(t.build().unwrap().len(), 64);
        let mut t = SecretTable::new();
        t.add(guid::LUKS_KEY, Zeroizing::new(vec![b'x'; 25]))
            .unwrap();
        let b = t.build().unwrap();
        assert_eq!(b.len(), 80);
        assert_eq!(&b[16..20], &65u32.to_le_bytes());
        assert!(b[65..].iter().all(|&x| x == 0));
    }

    #[test]
    fn parse_reads_what_build_writes() {
        let mut t = SecretTable::new();
        t.add(guid::LUKS_KEY, Zeroizing::new(vec![b'k'; 25]))
            .unwrap();
        let g = Uuid::from_u128(1);
        t.add(g, Zeroizing::new(vec![])).unwrap();
        let e = parse_table(&t.build().unwrap()).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].0, e[0].1.as_slice()),
            (guid::LUKS_KEY, &[b'k'; 25][..])
        );
        assert_eq!((e[1].0, e[1].1.len()), (g, 0));
        let mut b = t.build().unwrap();
        let n = b.len();
        b[n - 1] = 1;
        assert!(parse_table(&b).is_err());
        assert!(parse_table(&b[..n - 16]).is_err());
    }

    #[test]
    fn duplicate_guid_is_refused() {
        let mut t = SecretTable::new();
        t.add(guid::LUKS_KEY, Zeroizing::new(vec![1])).unwrap();
        assert!(t.add(guid::LUKS_KEY, Zeroizing::new(vec![2])).is_err());
    }
}
