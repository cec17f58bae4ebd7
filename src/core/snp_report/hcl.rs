//! Azure's vTPM "HCL report": a 32-byte header (magic `HCLA`), the SNP
//! report at 0x20 in a 1184-byte area, then the IGVM request data (five
//! little-endian u32: size, version, report type, hash type, runtime-data
//! size) and the runtime data itself (JSON: the vTPM's keys, user-data).
//! The report's REPORT_DATA begins with the digest of that runtime data, so
//! the runtime data is as trusted as the signed report; the header is not
//! signed. The layout and the binding (SHA-256 of the runtime data, then 32
//! zero bytes) were checked on two real Azure HCL reports (Milan and Genoa,
//! the public az-snp-vtpm evidence in trustee's verifier test data), which
//! this code validates end to end with their VCEKs.

use sha2::{Digest, Sha256, Sha384, Sha512};

use super::{u32_at, ReportError, REPORT_LEN};

/// The HCL report's first four bytes.
pub const HCL_MAGIC: &[u8; 4] = b"HCLA";
/// The SNP report's offset in the HCL report.
pub const HCL_REPORT_OFFSET: usize = 0x20;
/// Where the IGVM request data starts: after the 1184-byte report area.
const REQUEST_OFFSET: usize = HCL_REPORT_OFFSET + REPORT_LEN;
/// Where the runtime data starts: after the five u32 of the request data.
pub const HCL_RUNTIME_DATA_OFFSET: usize = REQUEST_OFFSET + 20;
/// The request data's report type for an SNP report (4 is TDX).
const REPORT_TYPE_SNP: u32 = 2;

/// What the HCL report holds beside the SNP report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HclData {
    /// The header's version word (not signed).
    pub header_version: u32,
    /// The request data's hash type: 1 SHA-256, 2 SHA-384, 3 SHA-512.
    pub hash_type: u32,
    /// The runtime data (JSON) the report's REPORT_DATA binds.
    pub runtime_data: Vec<u8>,
}

/// Whether `b` starts as an HCL report.
pub fn is_hcl(b: &[u8]) -> bool {
    b.get(..4) == Some(&HCL_MAGIC[..])
}

/// Splits an HCL report into the SNP report's bytes and the rest.
pub fn split_hcl(b: &[u8]) -> Result<(&[u8], HclData), ReportError> {
    let bad = |what: String| ReportError::Hcl(what);
    if b.len() < HCL_RUNTIME_DATA_OFFSET {
        return Err(bad(format!(
            "{} bytes is too short: the header, the 1184-byte report and the request data take {HCL_RUNTIME_DATA_OFFSET}",
            b.len()
        )));
    }
    let report_type = u32_at(b, REQUEST_OFFSET + 8);
    if report_type != REPORT_TYPE_SNP {
        return Err(bad(format!(
            "its report type is {report_type}, not {REPORT_TYPE_SNP} (SEV-SNP){}",
            if report_type == 4 {
                ": it holds an Intel TDX report"
            } else {
                ""
            }
        )));
    }
    let size = u32_at(b, REQUEST_OFFSET + 16) as usize;
    let end = HCL_RUNTIME_DATA_OFFSET.saturating_add(size);
    if end > b.len() {
        return Err(bad(format!(
            "its runtime data is {size} bytes, but only {} follow the request data",
            b.len() - HCL_RUNTIME_DATA_OFFSET
        )));
    }
    let data = HclData {
        header_version: u32_at(b, 4),
        hash_type: u32_at(b, REQUEST_OFFSET + 12),
        runtime_data: b[HCL_RUNTIME_DATA_OFFSET..end].to_vec(),
    };
    Ok((&b[HCL_REPORT_OFFSET..REQUEST_OFFSET], data))
}

impl HclData {
    /// The runtime data's digest in the request data's hash, and its name.
    pub fn runtime_digest(&self) -> Option<(&'static str, Vec<u8>)> {
        let d = &self.runtime_data;
        match self.hash_type {
            1 => Some(("SHA-256", Sha256::digest(d).to_vec())),
            2 => Some(("SHA-384", Sha384::digest(d).to_vec())),
            3 => Some(("SHA-512", Sha512::digest(d).to_vec())),
            _ => None,
        }
    }

    /// The binding of the runtime data to the report: REPORT_DATA starts
    /// with its digest. Bytes after the digest are not read.
    pub fn binding(&self, report_data: &[u8; 64]) -> Result<String, String> {
        let n = self.runtime_data.len();
        let Some((name, d)) = self.runtime_digest() else {
            return Err(format!(
                "the HCL request data names hash type {}, none of 1 (SHA-256), 2 (SHA-384), 3 (SHA-512): the {n}-byte runtime data cannot be bound to REPORT_DATA",
                self.hash_type
            ));
        };
        let k = d.len();
        if report_data[..k] == d[..] {
            Ok(format!(
                "REPORT_DATA[0..{k}] is the {name} of the {n}-byte runtime data after the report (what the runtime data says, and the unsigned HCL header, are not checked)"
            ))
        } else {
            Err(format!(
                "REPORT_DATA[0..{k}] is {}, but the {name} of the {n}-byte runtime data after the report is {}: the runtime data is not the one the guest's vTPM bound to this report",
                crate::core::hex(&report_data[..k]),
                crate::core::hex(&d)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snp_report::{parse_input, zero_report, Container};

    fn hcl(report_type: u32, hash_type: u32, size: u32, runtime: &[u8]) -> Vec<u8> {
        let mut b = b"HCLA".to_vec();
        b.resize(HCL_REPORT_OFFSET, 0);
        b.extend_from_slice(&zero_report(3));
        for v in [size.wrapping_add(20), 1, report_type, hash_type, size] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(runtime);
        b
    }

    #[test]
    fn the_container_and_its_binding() {
        let i = parse_input(&hcl(2, 1, 3, b"abc")).unwrap();
        assert_eq!(i.container, Container::Hcl);
        let h = i.hcl.unwrap();
        assert_eq!(h.runtime_data, b"abc");
        // SHA-256("abc"), FIPS 180-2's example.
        let mut rd = [0u8; 64];
        rd[..32].copy_from_slice(
            &hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .unwrap(),
        );
        assert!(h.binding(&rd).is_ok());
        rd[31] ^= 1;
        assert!(h.binding(&rd).unwrap_err().contains("not the one"));
        let unknown = HclData { hash_type: 9, ..h };
        assert!(unknown.binding(&rd).is_err());
    }

    #[test]
    fn broken_containers_are_refused() {
        let tdx = parse_input(&hcl(4, 1, 0, b"")).unwrap_err().to_string();
        assert!(tdx.contains("Intel TDX"), "{tdx}");
        let long = parse_input(&hcl(2, 1, u32::MAX, b"x"))
            .unwrap_err()
            .to_string();
        assert!(long.contains("runtime data is"), "{long}");
        let mut short = hcl(2, 1, 0, b"");
        short.truncate(REPORT_LEN + 8);
        assert!(matches!(parse_input(&short), Err(ReportError::Hcl(_))));
    }
}
