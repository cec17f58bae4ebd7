//! The GHCB certificate table that may follow a report (SNP_GET_EXT_REPORT
//! pages, configfs-tsm `auxblob`): the VEK, ASK and ARK the host offers.

use uuid::{uuid, Uuid};

use super::{arr, u32_at, ReportError};

// GHCB certificate table GUIDs (RFC 4122 byte order).
/// The GUID of the ARK entry.
pub const GUID_ARK: Uuid = uuid!("c0b406a4-a803-4952-9743-3fb6014cd0ae");
/// The GUID of the ASK entry (the ASVK when a VLEK signs).
pub const GUID_ASK: Uuid = uuid!("4ab7b379-bbac-4fe4-a02f-05aef327c782");
/// The GUID of the VCEK entry.
pub const GUID_VCEK: Uuid = uuid!("63da758d-e664-4564-adc5-f4b93be8accd");
/// The GUID of the VLEK entry.
pub const GUID_VLEK: Uuid = uuid!("a8074bc2-a25a-483e-aae6-39c045a0b8a1");
/// The GUID of the certificate revocation list entry.
pub const GUID_CRL: Uuid = uuid!("92f81bc3-5811-4d3d-97ff-d19f88dc67ea");
/// The GUID of the extra platform info entry.
pub const GUID_EXTRA_PLATFORM_INFO: Uuid = uuid!("ecae0c0f-9502-43b1-afa2-0ae2e0d565b6");

/// What a cert table entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// The AMD Root Key ([`GUID_ARK`]).
    Ark,
    /// The ASK, or the ASVK when a VLEK signs.
    Ask,
    /// The chip's VCEK ([`GUID_VCEK`]).
    Vcek,
    /// The cloud provider's VLEK ([`GUID_VLEK`]).
    Vlek,
    /// A certificate revocation list ([`GUID_CRL`]).
    Crl,
    /// Extra platform information ([`GUID_EXTRA_PLATFORM_INFO`]).
    ExtraPlatformInfo,
    /// A GUID this tool does not know.
    Other,
}

impl CertKind {
    /// The kind an entry's GUID names; [`CertKind::Other`] for the rest.
    pub fn of(g: &Uuid) -> CertKind {
        match *g {
            GUID_ARK => CertKind::Ark,
            GUID_ASK => CertKind::Ask,
            GUID_VCEK => CertKind::Vcek,
            GUID_VLEK => CertKind::Vlek,
            GUID_CRL => CertKind::Crl,
            GUID_EXTRA_PLATFORM_INFO => CertKind::ExtraPlatformInfo,
            _ => CertKind::Other,
        }
    }

    /// What messages call the kind.
    pub fn name(self) -> &'static str {
        match self {
            CertKind::Ark => "ARK",
            CertKind::Ask => "ASK/ASVK",
            CertKind::Vcek => "VCEK",
            CertKind::Vlek => "VLEK",
            CertKind::Crl => "CRL",
            CertKind::ExtraPlatformInfo => "extra platform info",
            CertKind::Other => "other",
        }
    }
}

/// One entry of a cert table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEntry {
    /// The entry's GUID.
    pub guid: Uuid,
    /// What the GUID names.
    pub kind: CertKind,
    /// Offset of the blob from the start of the table, in bytes.
    pub offset: u32,
    /// The blob (a DER certificate for the certificate kinds).
    pub data: Vec<u8>,
}

/// A GHCB certificate table (SNP_GET_EXT_REPORT pages, configfs-tsm
/// `auxblob`): 24-byte entries {GUID, offset, length} ending with an
/// all-zero entry, then the blobs, offsets from the start of the table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertTable {
    /// The entries in table order, the terminating all-zero entry excluded.
    pub entries: Vec<CertEntry>,
}

const ENTRY_LEN: usize = 24;

impl CertTable {
    /// Parses a table, refusing entries whose blob starts inside the header,
    /// runs past the end, or overlaps another, and duplicate GUIDs.
    pub fn parse(b: &[u8]) -> Result<CertTable, ReportError> {
        let err = |m: String| ReportError::CertTable(m);
        let mut raw = Vec::new();
        let mut pos = 0usize;
        loop {
            let Some(e) = b.get(pos..pos + ENTRY_LEN) else {
                return Err(err(format!(
                    "no all-zero terminating entry within the {} bytes given",
                    b.len()
                )));
            };
            if e.iter().all(|&x| x == 0) {
                break;
            }
            let guid = Uuid::from_bytes(arr(e, 0));
            if guid.is_nil() {
                return Err(err(format!(
                    "entry {} has a zero GUID but a non-zero offset or length",
                    raw.len()
                )));
            }
            raw.push((guid, u32_at(e, 16), u32_at(e, 20)));
            pos += ENTRY_LEN;
        }
        let header_end = pos + ENTRY_LEN;
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        let mut entries = Vec::with_capacity(raw.len());
        for (i, &(guid, off, len)) in raw.iter().enumerate() {
            let (o, l) = (off as usize, len as usize);
            if o < header_end {
                return Err(err(format!(
                    "entry {i} ({guid}) points at offset {o:#x}, inside the table header (which ends at {header_end:#x})"
                )));
            }
            let end = o.checked_add(l).filter(|&e| e <= b.len()).ok_or_else(|| {
                err(format!(
                    "entry {i} ({guid}) runs from {o:#x} for {l} bytes, past the end of the {} bytes given",
                    b.len()
                ))
            })?;
            if raw[..i].iter().any(|&(g, _, _)| g == guid) {
                return Err(err(format!("GUID {guid} appears twice")));
            }
            if let Some(&(j, ..)) = spans.iter().find(|&&(_, so, se)| o < se && so < end) {
                return Err(err(format!("entry {i} ({guid}) overlaps entry {j}")));
            }
            if l > 0 {
                spans.push((i, o, end));
            }
            entries.push(CertEntry {
                guid,
                kind: CertKind::of(&guid),
                offset: off,
                data: b[o..end].to_vec(),
            });
        }
        Ok(CertTable { entries })
    }

    /// The first entry of a kind.
    pub fn get(&self, kind: CertKind) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.data.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(Uuid, u32, u32)], total: usize) -> Vec<u8> {
        let mut t = vec![0u8; total];
        for (i, (g, o, l)) in entries.iter().enumerate() {
            let p = i * ENTRY_LEN;
            t[p..p + 16].copy_from_slice(g.as_bytes());
            t[p + 16..p + 20].copy_from_slice(&o.to_le_bytes());
            t[p + 20..p + 24].copy_from_slice(&l.to_le_bytes());
        }
        t
    }

    #[test]
    fn cert_table_bounds() {
        let hdr = 3 * ENTRY_LEN;
        let ok = table(
            &[(GUID_ARK, hdr as u32, 4), (GUID_VCEK, hdr as u32 + 4, 4)],
            hdr + 8,
        );
        let t = CertTable::parse(&ok).unwrap();
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[1].kind, CertKind::Vcek);
        let overlap = table(
            &[(GUID_ARK, hdr as u32, 4), (GUID_VCEK, hdr as u32 + 2, 4)],
            hdr + 8,
        );
        assert!(CertTable::parse(&overlap)
            .unwrap_err()
            .to_string()
            .contains("overlaps"));
        let past = table(&[(GUID_ARK, hdr as u32, 100)], hdr + 8);
        assert!(CertTable::parse(&past)
            .unwrap_err()
            .to_string()
            .contains("past the end"));
        let inside = table(&[(GUID_ARK, 4, 4)], hdr + 8);
        assert!(CertTable::parse(&inside)
            .unwrap_err()
            .to_string()
            .contains("header"));
        let huge = table(&[(GUID_ARK, u32::MAX, u32::MAX)], hdr + 8);
        assert!(CertTable::parse(&huge).is_err());
        assert!(CertTable::parse(&[1u8; 30]).is_err());
        let dup = table(
            &[(GUID_ARK, hdr as u32, 4), (GUID_ARK, hdr as u32 + 4, 4)],
            hdr + 8,
        );
        assert!(CertTable::parse(&dup)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }
}
