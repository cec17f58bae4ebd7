//! The SEV kernel hashes table that QEMU measures for direct kernel boot
//! (`-kernel` with `sev-guest,kernel-hashes=on`).

use sha2::{Digest, Sha256};

use super::guid;

/// The table proper: header GUID, u16 length, three 50-byte entries.
pub const TABLE_LEN: usize = 18 + 3 * ENTRY_LEN;
/// What QEMU measures: the table padded with zeros to a multiple of 16.
pub const PADDED_TABLE_LEN: usize = 176;
const ENTRY_LEN: usize = 16 + 2 + 32;

/// The SHA-256 digests of the three direct-boot inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelHashes {
    /// SHA-256 of the whole bzImage as given to `-kernel`.
    pub kernel: [u8; 32],
    /// SHA-256 of the initrd file; [`empty_digest`] without `-initrd`.
    pub initrd: [u8; 32],
    /// SHA-256 of the command line and its NUL ([`cmdline_digest`]).
    pub cmdline: [u8; 32],
}

/// The digest QEMU puts in the table for a command line: SHA-256 of the
/// string and its terminating NUL. No `-append` means the empty string.
pub fn cmdline_digest(cmdline: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(cmdline);
    h.update([0u8]);
    h.finalize().into()
}

/// The digest of an absent initrd: SHA-256 of no bytes.
pub fn empty_digest() -> [u8; 32] {
    Sha256::digest([]).into()
}

impl KernelHashes {
    /// The 176-byte padded table. Entry order is cmdline, initrd, kernel, as
    /// QEMU writes it.
    pub fn padded_table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut t = [0u8; PADDED_TABLE_LEN];
        t[0..16].copy_from_slice(&guid::to_le_bytes(&guid::KERNEL_HASH_TABLE));
        t[16..18].copy_from_slice(&(TABLE_LEN as u16).to_le_bytes());
        let entries = [
            (guid::KERNEL_HASH_CMDLINE, &self.cmdline),
            (guid::KERNEL_HASH_INITRD, &self.initrd),
            (guid::KERNEL_HASH_KERNEL, &self.kernel),
        ];
        for (i, (g, digest)) in entries.iter().enumerate() {
            let at = 18 + i * ENTRY_LEN;
            t[at..at + 16].copy_from_slice(&guid::to_le_bytes(g));
            t[at + 16..at + 18].copy_from_slice(&(ENTRY_LEN as u16).to_le_bytes());
            t[at + 18..at + 50].copy_from_slice(*digest);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// measurement.md §3: empty kernel and initrd, cmdline "console=ttyS0 loglevel=7".
    #[test]
    fn public_example_table() {
        let expected = concat!(
            "06d63894224fc94cb479a793d411fd21a800d82dd09720bd944caa78e7714d36ab2a3200321c8eec6a77bad179511397f913a083067ad8cb737bb260aacbfe8df70fc50a",
            "31f7ba442f3ad74b9af141e29169781d3200e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "3794e74dd2ab7f42b835d5b172d2045b3200e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550000000000000000"
        );
        let t = KernelHashes {
            kernel: empty_digest(),
            initrd: empty_digest(),
            cmdline: cmdline_digest(b"console=ttyS0 loglevel=7"),
        }
        .padded_table();
        assert_eq!(hex::encode(t), expected);
    }

    #[test]
    fn no_append_hashes_a_single_nul() {
        assert_eq!(
            hex::encode(cmdline_digest(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }
}
