//! The containers a report arrives in (a bare report, the `/dev/sev-guest`
//! response, a report followed by a certificate table, Azure's HCL report),
//! told apart by size and content.

use super::hcl::{is_hcl, split_hcl, HclData};
use super::{u32_at, AttestationReport, CertTable, ReportError, REPORT_LEN};

/// The report's offset in the `/dev/sev-guest` SNP_GET_REPORT response.
pub const RESPONSE_REPORT_OFFSET: usize = 0x20;
/// Size of the SNP_GET_REPORT response buffer (`snp_report_resp.data`).
pub const RESPONSE_BUFFER_LEN: usize = 4000;
/// Largest input any container holds: a report and a cert table of a few
/// certificates fit in far less; anything bigger is not one of ours.
pub const MAX_INPUT_LEN: usize = 1 << 20;

/// The container a report arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// The bare 1184-byte report (snpguest, configfs-tsm `outblob`).
    Raw,
    /// The `/dev/sev-guest` SNP_GET_REPORT response, report at +0x20.
    GetReportResponse,
    /// A report followed by a GHCB cert table (go-sev-guest `-inform bin`).
    ReportWithCertTable,
    /// Azure's vTPM HCL report (magic `HCLA`), report at +0x20, runtime data after it.
    Hcl,
    /// A key-release evidence file (JSON: the report, its certificate
    /// table, the owner's nonce and the guest's public key).
    Evidence,
}

impl Container {
    /// The container described for messages.
    pub fn name(self) -> &'static str {
        match self {
            Container::Raw => "raw attestation report (1184 bytes)",
            Container::GetReportResponse => {
                "SNP_GET_REPORT response from /dev/sev-guest (report at +0x20)"
            }
            Container::ReportWithCertTable => "attestation report followed by a certificate table",
            Container::Hcl => {
                "Azure vTPM HCL report (magic HCLA, report at +0x20, runtime data after it)"
            }
            Container::Evidence => {
                "key-release evidence: JSON with the report, its certificate table, the nonce and the public key"
            }
        }
    }
}

/// A report as read from a file, with what came around it.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// How the report was wrapped.
    pub container: Container,
    /// The decoded report.
    pub report: AttestationReport,
    /// The GHCB certificate table after the report, in [`Container::ReportWithCertTable`].
    pub cert_table: Option<CertTable>,
    /// The runtime data and header of [`Container::Hcl`].
    pub hcl: Option<HclData>,
}

/// Detects the container of `b`, names it, and decodes the report in it.
pub fn parse_input(b: &[u8]) -> Result<ReportInput, ReportError> {
    if b.len() < REPORT_LEN {
        return Err(ReportError::Truncated { len: b.len() });
    }
    if b.len() > MAX_INPUT_LEN {
        return Err(ReportError::Oversized {
            len: b.len(),
            detail: format!(" or any container of one (at most {MAX_INPUT_LEN} bytes)"),
        });
    }
    if is_hcl(b) {
        let (report, hcl) = split_hcl(b)?;
        return Ok(ReportInput {
            container: Container::Hcl,
            report: AttestationReport::parse(report)?,
            cert_table: None,
            hcl: Some(hcl),
        });
    }
    if b.len() == REPORT_LEN {
        return Ok(ReportInput {
            container: Container::Raw,
            report: AttestationReport::parse(b)?,
            cert_table: None,
            hcl: None,
        });
    }
    // SNP_GET_REPORT response: status, report_size = 0x4A0, 24 reserved bytes.
    let status = u32_at(b, 0);
    let size = u32_at(b, 4);
    let response_end = RESPONSE_REPORT_OFFSET + REPORT_LEN;
    if size as usize == REPORT_LEN
        && b.len() >= response_end
        && b.len() <= RESPONSE_BUFFER_LEN
        && b[8..RESPONSE_REPORT_OFFSET].iter().all(|&x| x == 0)
        && b[response_end..].iter().all(|&x| x == 0)
    {
        if status != 0 {
            return Err(ReportError::ResponseStatus(status));
        }
        return Ok(ReportInput {
            container: Container::GetReportResponse,
            report: AttestationReport::parse(&b[RESPONSE_REPORT_OFFSET..response_end])?,
            cert_table: None,
            hcl: None,
        });
    }
    let report = AttestationReport::parse(&b[..REPORT_LEN])?;
    match CertTable::parse(&b[REPORT_LEN..]) {
        Ok(t) => Ok(ReportInput {
            container: Container::ReportWithCertTable,
            report,
            cert_table: Some(t),
            hcl: None,
        }),
        Err(ReportError::CertTable(m)) => Err(ReportError::Oversized {
            len: b.len(),
            detail: format!(
                "; the {} bytes after it are not a certificate table either ({m})",
                b.len() - REPORT_LEN
            ),
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snp_report::zero_report;

    #[test]
    fn versions_and_sizes() {
        assert!(matches!(
            AttestationReport::parse(&zero_report(1)),
            Err(ReportError::UnknownVersion(1))
        ));
        assert!(matches!(
            AttestationReport::parse(&zero_report(6)),
            Err(ReportError::UnknownVersion(6))
        ));
        assert!(AttestationReport::parse(&zero_report(4))
            .unwrap()
            .cpuid
            .is_some());
        assert!(AttestationReport::parse(&zero_report(2))
            .unwrap()
            .cpuid
            .is_none());
        assert!(matches!(
            parse_input(&zero_report(2)[..100]),
            Err(ReportError::Truncated { len: 100 })
        ));
        let mut big = zero_report(2);
        big.extend_from_slice(&[0xAB; 7]);
        assert!(matches!(
            parse_input(&big),
            Err(ReportError::Oversized { .. })
        ));
    }

    #[test]
    fn get_report_response() {
        let mut b = vec![0u8; RESPONSE_BUFFER_LEN];
        b[4..8].copy_from_slice(&(REPORT_LEN as u32).to_le_bytes());
        b[0x20..0x24].copy_from_slice(&3u32.to_le_bytes());
        let r = parse_input(&b).unwrap();
        assert_eq!(r.container, Container::GetReportResponse);
        assert_eq!(r.report.version, 3);
        b[0] = 0x16;
        assert!(matches!(
            parse_input(&b),
            Err(ReportError::ResponseStatus(0x16))
        ));
    }
}
