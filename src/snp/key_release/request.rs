//! The guest's side before the owner: a key pair, REPORT_DATA binding it
//! to the owner's nonce, a report for that REPORT_DATA from a
//! [`ReportProvider`], and the evidence file.

use std::path::PathBuf;

use std::path::Path;

use super::files::{self, read_bounded};
use crate::core::snp_report::{self, MAX_INPUT_LEN, REPORT_LEN};
use crate::core::snp_secret::{self, Evidence, KeyPair, ReportSource, NONCE_LEN};
use crate::error::{Error, Result};
use crate::source::guest_report::{self, GuestReportOptions, ReportVia};

/// A report as a [`ReportProvider`] obtained it.
#[derive(Debug, Clone)]
pub struct ObtainedReport {
    /// The attestation report, exactly 1184 bytes.
    pub report: Vec<u8>,
    /// The GHCB certificate table that came with it (configfs-tsm
    /// `auxblob`, SNP_GET_EXT_REPORT), if any.
    pub cert_table: Option<Vec<u8>>,
}

/// A way for the guest to obtain an attestation report whose REPORT_DATA
/// is a given value: the kernel's configfs-tsm or /dev/sev-guest, or a
/// report the user obtained another way ([`ExternalReport`]).
pub trait ReportProvider {
    /// How the evidence file names this source.
    fn source(&self) -> ReportSource;
    /// A report for `report_data` (at VMPL and with options the source
    /// chose), and its certificate table if the source gives one.
    fn get_report(&mut self, report_data: &[u8; 64]) -> Result<ObtainedReport>;
}

/// A report the user obtained for the printed REPORT_DATA, in a file (any
/// container `snp-validate` reads), and optionally its certificate table.
#[derive(Debug, Clone)]
pub struct ExternalReport {
    /// The report file.
    pub report: PathBuf,
    /// The certificate table file, if given.
    pub cert_table: Option<PathBuf>,
}

impl ReportProvider for ExternalReport {
    fn source(&self) -> ReportSource {
        ReportSource::External
    }

    fn get_report(&mut self, _report_data: &[u8; 64]) -> Result<ObtainedReport> {
        let b = read_bounded("report", &self.report, MAX_INPUT_LEN)?;
        let input = snp_report::parse_input(&b)
            .map_err(|e| Error::Usage(format!("report '{}': {e}", self.report.display())))?;
        let mut cert_table = input.cert_table.as_ref().map(|_| b[REPORT_LEN..].to_vec());
        if let Some(p) = &self.cert_table {
            let t = read_bounded("certificate table", p, MAX_INPUT_LEN)?;
            snp_report::CertTable::parse(&t)
                .map_err(|e| Error::Usage(format!("certificate table '{}': {e}", p.display())))?;
            cert_table = Some(t.to_vec());
        }
        Ok(ObtainedReport {
            report: input.report.raw.to_vec(),
            cert_table,
        })
    }
}

/// The guest kernel's report interface (configfs-tsm, else /dev/sev-guest),
/// as [`crate::source::guest_report::request`] asks it.
#[derive(Debug, Clone, Default)]
pub struct KernelReport {
    /// Where the interfaces are, and the VMPL to ask for.
    pub options: GuestReportOptions,
    /// The interface that answered, once one did.
    via: Option<ReportVia>,
}

impl KernelReport {
    /// The kernel's interfaces at `options`.
    pub fn new(options: GuestReportOptions) -> KernelReport {
        KernelReport { options, via: None }
    }
}

impl ReportProvider for KernelReport {
    fn source(&self) -> ReportSource {
        match self.via {
            Some(ReportVia::SevGuest) => ReportSource::SevGuest,
            _ => ReportSource::ConfigfsTsm,
        }
    }

    fn get_report(&mut self, report_data: &[u8; 64]) -> Result<ObtainedReport> {
        let got = guest_report::request(report_data, &self.options)?;
        self.via = Some(got.via);
        Ok(ObtainedReport {
            report: got.report,
            cert_table: got.cert_table,
        })
    }
}

/// REPORT_DATA for `nonce` and `kp`'s public key.
pub fn report_data_for(nonce: &[u8; NONCE_LEN], kp: &KeyPair) -> [u8; 64] {
    snp_secret::report_data(nonce, &kp.public)
}

/// The evidence for `nonce` and `kp`: a report from `provider` for their
/// REPORT_DATA, checked to carry it.
pub fn build_evidence(
    nonce: &[u8; NONCE_LEN],
    kp: &KeyPair,
    provider: &mut dyn ReportProvider,
) -> Result<Evidence> {
    let rd = report_data_for(nonce, kp);
    let got = provider.get_report(&rd)?;
    let report = snp_report::AttestationReport::parse(&got.report)
        .map_err(|e| Error::Usage(format!("the report obtained: {e}")))?;
    if report.report_data != rd {
        return Err(Error::Usage(format!(
            "the report's REPORT_DATA is {}, not {}, the binding of this nonce and the key in the key directory: request the report for the REPORT_DATA snp-request --print-report-data printed, with the same --nonce and --key-dir",
            crate::core::hex(&report.report_data),
            crate::core::hex(&rd)
        )));
    }
    Ok(Evidence {
        nonce: *nonce,
        public_key: kp.public,
        report: got.report,
        cert_table: got.cert_table,
        report_source: provider.source(),
    })
}

/// One request with a provider that answers at once (the kernel's
/// configfs-tsm or /dev/sev-guest): a new key pair, stored in `key_dir`
/// (checked to be the user's own, 0600, replacing any older key), and the
/// evidence for `nonce` with a report from `provider`.
pub fn request(
    nonce: &[u8; NONCE_LEN],
    key_dir: &Path,
    provider: &mut dyn ReportProvider,
) -> Result<Evidence> {
    files::check_key_dir(key_dir)?;
    let kp = KeyPair::generate(&mut rand_core::OsRng);
    files::store_key(key_dir, &kp)?;
    build_evidence(nonce, &kp, provider)
}
