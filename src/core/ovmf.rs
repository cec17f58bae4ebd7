//! The OVMF footer GUID table (edk2 `OvmfPkg/ResetVector`) and the SEV
//! metadata it points at.
//!
//! Everything here reads bytes an untrusted image supplies, so every offset is
//! checked: a truncated or corrupt table is an error, never a panic.

use uuid::Uuid;

use super::guid;

/// How many bytes at the end of the image can hold the footer table: its
/// length field is a u16 and the table ends 32 bytes before the end.
pub const FOOTER_TAIL_LEN: usize = u16::MAX as usize + 32;

/// The last bytes of an image holding `entries` as edk2 lays them out: per
/// entry its data, a u16 length and the GUID; then the footer (u16 table
/// length, footer GUID); then 32 bytes. The one builder of synthetic images
/// for the tests and the fuzz targets; [`FooterTable::parse`] reads it back.
///
/// ```
/// use sev_validate::core::{guid, ovmf};
/// let area = [0x80F000u32.to_le_bytes(), 0xC00u32.to_le_bytes()].concat();
/// let tail = ovmf::lay_out_footer(&[(guid::SEV_SECRET_BLOCK, area)]);
/// let table = ovmf::FooterTable::parse(&tail).unwrap().unwrap();
/// assert_eq!(table.secret_area().unwrap().unwrap().size, 0xC00);
/// ```
pub fn lay_out_footer(entries: &[(Uuid, Vec<u8>)]) -> Vec<u8> {
    let mut table = Vec::new();
    for (g, d) in entries {
        table.extend_from_slice(d);
        table.extend_from_slice(&((d.len() + 18) as u16).to_le_bytes());
        table.extend_from_slice(&g.to_bytes_le());
    }
    let total = table.len() + 18;
    table.extend_from_slice(&(total as u16).to_le_bytes());
    table.extend_from_slice(&guid::OVMF_TABLE_FOOTER.to_bytes_le());
    table.extend_from_slice(&[0u8; 32]);
    table
}

/// Why an OVMF image's footer table or metadata could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OvmfError {
    /// The image (or tail) has fewer than the 50 bytes a footer needs.
    #[error("the firmware image is {0} bytes, too short to hold an OVMF footer table")]
    TooShort(usize),
    /// The footer's u16 table length is below 18 or reaches past the image start.
    #[error("the OVMF footer table length {0} does not fit in the firmware image")]
    BadTableLength(usize),
    /// An entry's u16 length is below 18 or larger than the bytes left.
    #[error("the OVMF footer table is corrupt: entry at {offset} bytes before the table end has length {len}")]
    BadEntry {
        /// Bytes from the entry's end to the table end, footer excluded.
        offset: usize,
        /// The entry's length field, or the bytes left when fewer than 18.
        len: usize,
    },
    /// A known entry holds fewer data bytes than its fields need.
    #[error(
        "the OVMF footer table entry {guid} has {got} bytes of data, expected at least {want}"
    )]
    ShortEntry {
        /// The entry's GUID.
        guid: Uuid,
        /// Data bytes present.
        got: usize,
        /// Data bytes needed: 4 for a u32, 8 for a `{base, size}` area.
        want: usize,
    },
    /// The "ASEV" metadata header or its section list is unusable.
    #[error("the SEV metadata is corrupt: {0}")]
    BadMetadata(String),
}

/// A `{u32 base; u32 size}` guest-physical area named by the footer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestArea {
    /// Guest-physical address of the area's start.
    pub base: u32,
    /// Size of the area in bytes.
    pub size: u32,
}

/// The parsed footer table: each entry's GUID and data, in table order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FooterTable {
    entries: Vec<(Uuid, Vec<u8>)>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl FooterTable {
    /// Parses the footer table from `tail`, the last bytes of the image (at
    /// least [`FOOTER_TAIL_LEN`] of them, or the whole image if smaller).
    /// Returns `Ok(None)` when the image has no footer table at all.
    pub fn parse(tail: &[u8]) -> Result<Option<FooterTable>, OvmfError> {
        let n = tail.len();
        if n < 50 {
            return Err(OvmfError::TooShort(n));
        }
        let footer_guid = guid::to_le_bytes(&guid::OVMF_TABLE_FOOTER);
        if tail[n - 48..n - 32] != footer_guid {
            return Ok(None);
        }
        let table_len = u16_at(tail, n - 50) as usize;
        // The length covers the footer's own 18 bytes (u16 length + GUID).
        if table_len < 18 || table_len + 32 > n {
            return Err(OvmfError::BadTableLength(table_len));
        }
        let mut data = &tail[n - 32 - table_len..n - 50];
        let mut entries = Vec::new();
        while !data.is_empty() {
            let m = data.len();
            let offset = table_len - 18 - m;
            if m < 18 {
                return Err(OvmfError::BadEntry { offset, len: m });
            }
            let len = u16_at(data, m - 18) as usize;
            if len < 18 || len > m {
                return Err(OvmfError::BadEntry { offset, len });
            }
            let mut g = [0u8; 16];
            g.copy_from_slice(&data[m - 16..]);
            entries.push((Uuid::from_bytes_le(g), data[m - len..m - 18].to_vec()));
            data = &data[..m - len];
        }
        entries.reverse();
        Ok(Some(FooterTable { entries }))
    }

    /// The entries in table order.
    pub fn entries(&self) -> &[(Uuid, Vec<u8>)] {
        &self.entries
    }

    /// The data of the entry with `guid`, if present.
    pub fn entry(&self, guid: &Uuid) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(g, _)| g == guid)
            .map(|(_, d)| d.as_slice())
    }

    fn u32_entry(&self, guid: &Uuid) -> Result<Option<u32>, OvmfError> {
        match self.entry(guid) {
            None => Ok(None),
            Some(d) if d.len() < 4 => Err(OvmfError::ShortEntry {
                guid: *guid,
                got: d.len(),
                want: 4,
            }),
            Some(d) => Ok(Some(u32_at(d, 0))),
        }
    }

    fn area_entry(&self, guid: &Uuid) -> Result<Option<GuestArea>, OvmfError> {
        match self.entry(guid) {
            None => Ok(None),
            Some(d) if d.len() < 8 => Err(OvmfError::ShortEntry {
                guid: *guid,
                got: d.len(),
                want: 8,
            }),
            Some(d) => Ok(Some(GuestArea {
                base: u32_at(d, 0),
                size: u32_at(d, 4),
            })),
        }
    }

    /// The SEV-ES AP reset address; `None` when the firmware has no reset
    /// block or it is zero (no SEV-ES support).
    pub fn sev_es_reset_addr(&self) -> Result<Option<u32>, OvmfError> {
        Ok(self
            .u32_entry(&guid::SEV_ES_RESET_BLOCK)?
            .filter(|&a| a != 0))
    }

    /// The area OVMF reserves for injected secrets; `None` when absent or empty.
    pub fn secret_area(&self) -> Result<Option<GuestArea>, OvmfError> {
        Ok(self
            .area_entry(&guid::SEV_SECRET_BLOCK)?
            .filter(|a| a.base != 0 && a.size != 0))
    }

    /// The area for the kernel hashes table; `None` unless QEMU can use it
    /// (base != 0 and room for the 176-byte table), exactly QEMU's own test.
    pub fn kernel_hash_area(&self) -> Result<Option<GuestArea>, OvmfError> {
        Ok(self
            .area_entry(&guid::SEV_HASH_TABLE_AREA)?
            .filter(|a| a.base != 0 && a.size as usize >= super::kernel_hashes::PADDED_TABLE_LEN))
    }

    /// The offset of the SEV metadata from the end of the image, if present.
    pub fn sev_metadata_offset(&self) -> Result<Option<u32>, OvmfError> {
        self.u32_entry(&guid::OVMF_SEV_METADATA)
    }
}

/// One SNP metadata section `{u32 gpa, u32 size, u32 type}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataSection {
    /// Guest-physical address of the section's start.
    pub gpa: u32,
    /// Size of the section in bytes.
    pub size: u32,
    /// Section type: one of the associated constants below.
    pub kind: u32,
}

impl MetadataSection {
    /// Pre-validated memory, measured as ZERO pages (UNMEASURED for gce).
    pub const SNP_SEC_MEM: u32 = 1;
    /// The SNP secrets page, measured as one SECRETS page.
    pub const SNP_SECRETS: u32 = 2;
    /// The CPUID page, measured as one CPUID page.
    pub const CPUID: u32 = 3;
    /// The SVSM calling area, measured as ZERO pages.
    pub const SVSM_CAA: u32 = 4;
    /// The page holding the kernel hashes table: NORMAL with a kernel, ZERO without.
    pub const SNP_KERNEL_HASHES: u32 = 0x10;
}

/// Parses the "ASEV" metadata found `offset` bytes before the end of the
/// image; `tail` is the last bytes of the image (it must reach that far).
pub fn parse_sev_metadata(tail: &[u8], offset: u32) -> Result<Vec<MetadataSection>, OvmfError> {
    let offset = offset as usize;
    let bad = |m: String| OvmfError::BadMetadata(m);
    if offset < 16 || offset > tail.len() {
        return Err(bad(format!(
            "offset {offset:#x} from the end is outside the image tail of {:#x} bytes",
            tail.len()
        )));
    }
    let meta = &tail[tail.len() - offset..];
    if &meta[0..4] != b"ASEV" {
        return Err(bad("signature 'ASEV' not found".into()));
    }
    let len = u32_at(meta, 4) as usize;
    let version = u32_at(meta, 8);
    let num = u32_at(meta, 12) as usize;
    if version != 1 {
        return Err(bad(format!("unknown version {version}")));
    }
    let need = num
        .checked_mul(12)
        .and_then(|s| s.checked_add(16))
        .ok_or_else(|| bad(format!("{num} sections overflow")))?;
    if need > meta.len() || need > len {
        return Err(bad(format!(
            "{num} sections need {need} bytes but the header says {len} and {} remain",
            meta.len()
        )));
    }
    Ok((0..num)
        .map(|i| {
            let at = 16 + 12 * i;
            MetadataSection {
                gpa: u32_at(meta, at),
                size: u32_at(meta, at + 4),
                kind: u32_at(meta, at + 8),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tail with the given entries followed by the footer, as edk2 lays it out.
    pub(crate) fn tail_with(entries: &[(Uuid, Vec<u8>)]) -> Vec<u8> {
        let mut table = Vec::new();
        for (g, d) in entries {
            table.extend_from_slice(d);
            table.extend_from_slice(&((d.len() + 18) as u16).to_le_bytes());
            table.extend_from_slice(&g.to_bytes_le());
        }
        let total = table.len() + 18;
        table.extend_from_slice(&(total as u16).to_le_bytes());
        table.extend_from_slice(&guid::OVMF_TABLE_FOOTER.to_bytes_le());
        let mut tail = vec![0xffu8; 64];
        tail.extend_from_slice(&table);
        tail.extend_from_slice(&[0u8; 32]);
        tail
    }

    #[test]
    fn parses_entries_in_order() {
        let tail = tail_with(&[
            (
                guid::SEV_ES_RESET_BLOCK,
                0x0080B004u32.to_le_bytes().to_vec(),
            ),
            (
                guid::SEV_HASH_TABLE_AREA,
                [0x0081_0C00u32.to_le_bytes(), 0x400u32.to_le_bytes()].concat(),
            ),
        ]);
        let t = FooterTable::parse(&tail).unwrap().unwrap();
        assert_eq!(t.entries().len(), 2);
        assert_eq!(t.sev_es_reset_addr().unwrap(), Some(0x0080B004));
        assert_eq!(
            t.kernel_hash_area().unwrap(),
            Some(GuestArea {
                base: 0x810C00,
                size: 0x400
            })
        );
        assert_eq!(t.secret_area().unwrap(), None);
    }

    #[test]
    fn no_footer_is_none() {
        assert_eq!(FooterTable::parse(&[0u8; 4096]).unwrap(), None);
    }

    #[test]
    fn corrupt_tables_are_errors_not_panics() {
        let good = tail_with(&[(guid::SEV_ES_RESET_BLOCK, vec![4, 0xb0, 0x80, 0])]);
        let n = good.len();
        // Table length larger than the image.
        let mut t = good.clone();
        t[n - 50..n - 48].copy_from_slice(&0xfff0u16.to_le_bytes());
        assert!(FooterTable::parse(&t).is_err());
        // Table length below the footer's own size.
        t[n - 50..n - 48].copy_from_slice(&3u16.to_le_bytes());
        assert!(FooterTable::parse(&t).is_err());
        // Entry length of zero would loop forever if accepted.
        let mut t = good.clone();
        t[n - 50 - 18..n - 50 - 16].copy_from_slice(&0u16.to_le_bytes());
        assert!(matches!(
            FooterTable::parse(&t),
            Err(OvmfError::BadEntry { .. })
        ));
        // Entry length past the table start.
        t[n - 50 - 18..n - 50 - 16].copy_from_slice(&500u16.to_le_bytes());
        assert!(matches!(
            FooterTable::parse(&t),
            Err(OvmfError::BadEntry { .. })
        ));
        // Too short to hold anything.
        assert!(matches!(
            FooterTable::parse(&good[n - 40..]),
            Err(OvmfError::TooShort(40))
        ));
        // Every truncation and every single-byte corruption parses or errors, never panics.
        for cut in 0..n {
            let _ = FooterTable::parse(&good[cut..]);
        }
        for i in 0..n {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut t = good.clone();
                t[i] = v;
                if let Ok(Some(t)) = FooterTable::parse(&t) {
                    let _ = t.sev_es_reset_addr();
                    let _ = t.kernel_hash_area();
                    let _ = t.secret_area();
                }
            }
        }
    }

    #[test]
    fn short_entry_data_is_an_error() {
        let tail = tail_with(&[(guid::SEV_HASH_TABLE_AREA, vec![1, 2, 3])]);
        let t = FooterTable::parse(&tail).unwrap().unwrap();
        assert!(matches!(
            t.kernel_hash_area(),
            Err(OvmfError::ShortEntry { .. })
        ));
    }

    #[test]
    fn metadata_bounds() {
        let mut tail = vec![0u8; 64];
        tail[0..4].copy_from_slice(b"ASEV");
        tail[4..8].copy_from_slice(&40u32.to_le_bytes());
        tail[8..12].copy_from_slice(&1u32.to_le_bytes());
        tail[12..16].copy_from_slice(&2u32.to_le_bytes());
        tail[16..20].copy_from_slice(&0x800000u32.to_le_bytes());
        tail[20..24].copy_from_slice(&0x9000u32.to_le_bytes());
        tail[24..28].copy_from_slice(&1u32.to_le_bytes());
        let s = parse_sev_metadata(&tail, 64).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            MetadataSection {
                gpa: 0x800000,
                size: 0x9000,
                kind: 1
            }
        );
        tail[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_sev_metadata(&tail, 64).is_err());
        assert!(parse_sev_metadata(&tail, 65).is_err());
        assert!(parse_sev_metadata(&tail, 3).is_err());
    }
}
