//! The SEV-SNP ATTESTATION_REPORT (SEV-SNP ABI, 1184 bytes): its layout for
//! report versions 2, 3 (and 4, read as 3) and 5, the containers it arrives
//! in, the GHCB certificate table that may follow it, which product made it,
//! and the AMD KDS URL of the VCEK that signs it.
//!
//! Pure: bytes in, values out. Every length and offset is checked, so no
//! input makes it panic.
//!
//! Its parts, all re-exported here: `report` (the fields and their
//! decoding), `tcb` (TCB_VERSION), `cert_table` (the GHCB certificate
//! table), `input` (the containers) and `product` (product and KDS URL).

mod cert_table;
mod hcl;
mod input;
mod product;
mod report;
mod tcb;

pub use cert_table::{
    CertEntry, CertKind, CertTable, GUID_ARK, GUID_ASK, GUID_CRL, GUID_EXTRA_PLATFORM_INFO,
    GUID_VCEK, GUID_VLEK,
};
pub use hcl::{is_hcl, split_hcl, HclData, HCL_MAGIC, HCL_REPORT_OFFSET, HCL_RUNTIME_DATA_OFFSET};
pub use input::{
    parse_input, Container, ReportInput, MAX_INPUT_LEN, RESPONSE_BUFFER_LEN, RESPONSE_REPORT_OFFSET,
};
pub use product::{kds_vcek_url, resolve_product, Product, ProductSource, KDS_BASE};
pub use report::{
    AttestationReport, FwVersion, GuestPolicy, KeyInfo, PlatformInfo, PolicyFlags, SigningKey,
    POLICY_MBZ, REPORT_LEN, SIGNED_LEN, SIG_ALGO_ECDSA_P384_SHA384,
};
pub use tcb::{TcbLayout, TcbVersion};

/// What is wrong with the bytes given as a report or a cert table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Fewer than [`REPORT_LEN`] bytes.
    #[error("{len} bytes is too short for an attestation report ({REPORT_LEN} bytes): the file is truncated or not a report")]
    Truncated {
        /// Bytes given.
        len: usize,
    },
    /// More bytes than a report, and not a container this tool knows.
    #[error("{len} bytes is too large for an attestation report ({REPORT_LEN} bytes){detail}")]
    Oversized {
        /// Bytes given.
        len: usize,
        /// Why no container fits, starting with its own separator; empty for a bare report.
        detail: String,
    },
    /// VERSION (offset 0x000) outside 2..=5.
    #[error("report version {0} is not one this tool reads (2, 3, 4 and 5 are defined); the file may not be an SNP attestation report")]
    UnknownVersion(u32),
    /// A `/dev/sev-guest` response whose status word is not 0.
    #[error("the SNP_GET_REPORT response has status {0:#x}: the firmware refused the request, so there is no report in it")]
    ResponseStatus(u32),
    /// An Azure HCL report (magic `HCLA`) that cannot be read.
    #[error("Azure HCL report (magic HCLA): {0}; give the HCL report as the vTPM returns it (2600 bytes), or the SNP report alone")]
    Hcl(String),
    /// The GHCB certificate table is malformed.
    #[error("certificate table: {0}")]
    CertTable(String),
    /// The product cannot be determined, or the sources contradict each other.
    #[error("{0}")]
    Product(String),
    /// The VCEK cannot be looked up at the KDS (a VLEK signed, or CHIP_ID is masked).
    #[error("no KDS URL: {0}")]
    Kds(String),
}

// Little-endian readers for the fixed layouts: every caller has checked the
// length first, so the slicing cannot fail.
fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

/// A report of `version` with every other byte zero: the unit tests'
/// starting point.
#[cfg(test)]
fn zero_report(version: u32) -> Vec<u8> {
    let mut b = vec![0u8; REPORT_LEN];
    b[0..4].copy_from_slice(&version.to_le_bytes());
    b
}
