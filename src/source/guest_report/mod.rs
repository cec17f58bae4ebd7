//! Inside an SEV-SNP guest: asks the guest kernel for an attestation report
//! carrying the caller's 64-byte REPORT_DATA, and for the certificate table
//! the host offers with it.
//!
//! Two kernel interfaces give reports, tried in this order:
//!
//! 1. **configfs-tsm** (Linux 6.7 and later, `CONFIG_TSM_REPORTS`), the
//!    directory `/sys/kernel/config/tsm/report` (configfs mounted at
//!    `/sys/kernel/config`). [`request`] makes an entry of its own there
//!    (`mkdir`), checks that its `provider` is `sev_guest`, writes the VMPL
//!    to `privlevel` and the REPORT_DATA to `inblob`, reads `outblob` (the
//!    report, made by the firmware when read) and `auxblob` (the
//!    certificate table, absent or empty when the host offers none), and
//!    removes the entry again (`rmdir`), on errors too. The entry's
//!    `generation` counts the writes made to it: read before writing and
//!    again after the reads, it must have grown by exactly our writes, or
//!    another process wrote to the entry in between and the report may
//!    carry its values, so the result is refused ([`Error::HostCall`],
//!    exit 8), as the kernel's ABI document for configfs-tsm advises.
//! 2. **`/dev/sev-guest`** (the `sev-guest` module, Linux 5.19 and later),
//!    used when the configfs-tsm directory does not exist: the
//!    SNP_GET_EXT_REPORT ioctl with a 16 KiB certificate buffer (grown once
//!    to the size the host asks for), else SNP_GET_REPORT without
//!    certificates. The response's status and report size are checked
//!    before the report is taken out of it.
//!
//! Either way the report returned has been checked to carry the REPORT_DATA
//! and the VMPL asked for (a report made for another request is refused),
//! and every file is read within [`MAX_BLOB_LEN`] bytes, so a hostile
//! or broken kernel file cannot make the program grow without bound.
//!
//! Neither the report nor the certificate table is validated here: the
//! report is the guest's evidence, for the owner to validate on a machine
//! they trust (`snp-validate`); the certificate table comes from the
//! untrusted host.
//!
//! The errors say what to check: an interface missing altogether (is this
//! an SEV-SNP guest? Linux 6.7+ with configfs mounted, or the `sev-guest`
//! module?) is [`Error::Installation`] (exit 7); a kernel or firmware that
//! refuses the request, a concurrent writer, or a malformed response is
//! [`Error::HostCall`] (exit 8); a VMPL outside 0..=3 or below what the
//! kernel allows is [`Error::Usage`] (exit 2).
//!
//! ```no_run
//! use sev_validate::source::guest_report::{self, GuestReportOptions, ReportVia};
//!
//! let mut report_data = [0u8; 64];
//! report_data[..5].copy_from_slice(b"nonce");
//! let got = guest_report::request(&report_data, &GuestReportOptions::default())?;
//! assert_eq!(&got.report[0x50..0x90], &report_data[..]);
//! if got.via == ReportVia::SevGuest {
//!     println!("an older kernel: the report came from /dev/sev-guest");
//! }
//! # Ok::<(), sev_validate::Error>(())
//! ```

mod configfs;
mod device;

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::core::snp_report::REPORT_LEN;
use crate::error::{Error, Result};

/// Where the kernel's configfs-tsm report directory is, by default.
pub const DEFAULT_TSM_ROOT: &str = "/sys/kernel/config/tsm/report";
/// Where the `sev-guest` module's device is, by default.
pub const DEFAULT_SEV_GUEST: &str = "/dev/sev-guest";
/// The most bytes read from any kernel file: a report is 1184 bytes and a
/// certificate table a few pages (the kernel caps both at 32 KiB), so more
/// is not what a kernel gives.
pub const MAX_BLOB_LEN: usize = 1 << 20;
/// The highest VMPL (privilege level) a report can be asked for.
pub const MAX_VMPL: u32 = 3;

/// Which kernel interface gave the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportVia {
    /// `/sys/kernel/config/tsm/report` (Linux 6.7+).
    ConfigfsTsm,
    /// The `/dev/sev-guest` ioctls.
    SevGuest,
}

impl ReportVia {
    /// The interface named for messages.
    pub fn name(self) -> &'static str {
        match self {
            ReportVia::ConfigfsTsm => "configfs-tsm",
            ReportVia::SevGuest => "/dev/sev-guest",
        }
    }
}

/// A report as the guest kernel returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestReport {
    /// The ATTESTATION_REPORT, at least [`REPORT_LEN`] bytes (the firmware's
    /// report size), carrying the REPORT_DATA and VMPL asked for. Not
    /// validated: that is the owner's job, elsewhere.
    pub report: Vec<u8>,
    /// The GHCB certificate table the host gave with it (VCEK or VLEK, ASK,
    /// ARK ...), trimmed to its last blob; `None` when the host gave none
    /// or only SNP_GET_REPORT worked. Untrusted, unparsed.
    pub cert_table: Option<Vec<u8>>,
    /// The interface that gave it.
    pub via: ReportVia,
}

/// Where the kernel's interfaces are and the VMPL to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestReportOptions {
    /// The configfs-tsm report directory ([`DEFAULT_TSM_ROOT`]).
    pub tsm_root: PathBuf,
    /// The `sev-guest` device ([`DEFAULT_SEV_GUEST`]).
    pub sev_guest: PathBuf,
    /// The VMPL the report is made for (configfs-tsm's `privlevel`), 0..=3;
    /// 0 by default. The kernel refuses one below the VMPL it runs at.
    pub vmpl: u32,
}

impl Default for GuestReportOptions {
    fn default() -> Self {
        GuestReportOptions {
            tsm_root: PathBuf::from(DEFAULT_TSM_ROOT),
            sev_guest: PathBuf::from(DEFAULT_SEV_GUEST),
            vmpl: 0,
        }
    }
}

/// Asks the guest kernel for an attestation report with `report_data` as
/// its REPORT_DATA: through configfs-tsm when `opts.tsm_root` exists, else
/// through `opts.sev_guest` (module documentation). Needs root.
pub fn request(report_data: &[u8; 64], opts: &GuestReportOptions) -> Result<GuestReport> {
    if opts.vmpl > MAX_VMPL {
        return Err(Error::Usage(format!(
            "VMPL {} does not exist: an SEV-SNP report is made for VMPL 0, 1, 2 or 3",
            opts.vmpl
        )));
    }
    let got = match configfs::request(report_data, opts)? {
        Some(got) => got,
        None => match device::request(report_data, opts)? {
            Some(got) => got,
            None => return Err(no_interface(opts)),
        },
    };
    check_report(&got, report_data, opts.vmpl)?;
    Ok(got)
}

/// Neither interface exists: what to check.
fn no_interface(opts: &GuestReportOptions) -> Error {
    Error::Installation(format!(
        "no SEV-SNP attestation interface on this machine: neither {} nor {} exists. \
         Check that this is an SEV-SNP guest ('dmesg | grep -i sev' lists SEV-SNP among the \
         active memory encryption features); that its kernel is Linux 6.7 or later with \
         CONFIG_TSM_REPORTS and configfs mounted at /sys/kernel/config \
         ('mount -t configfs none /sys/kernel/config'); or that the sev-guest module is \
         loaded ('modprobe sev-guest'), which makes /dev/sev-guest",
        opts.tsm_root.display(),
        opts.sev_guest.display()
    ))
}

/// The report must be one, made for this request: REPORT_DATA (0x50) and
/// VMPL (0x30) are where every report version has them.
fn check_report(got: &GuestReport, report_data: &[u8; 64], vmpl: u32) -> Result<()> {
    let via = got.via.name();
    let r = &got.report;
    if r.len() < REPORT_LEN {
        return Err(Error::HostCall(format!(
            "{via} returned {} bytes, too few for an attestation report ({REPORT_LEN} bytes); \
             the guest kernel or firmware is broken: see 'dmesg'",
            r.len()
        )));
    }
    if r.get(0x50..0x90) != Some(&report_data[..]) {
        return Err(Error::HostCall(format!(
            "{via} returned a report whose REPORT_DATA is not the one requested: another \
             process changed the request, or the kernel is broken; run again, and make sure \
             nothing else writes to the request"
        )));
    }
    let got_vmpl = r
        .get(0x30..0x34)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes);
    if got_vmpl != Some(vmpl) {
        return Err(Error::HostCall(format!(
            "{via} returned a report for VMPL {}, not the VMPL {vmpl} requested; run again, \
             and make sure nothing else writes to the request",
            got_vmpl.unwrap_or(u32::MAX)
        )));
    }
    Ok(())
}

/// Reads at most `limit` bytes of a kernel file; more is refused.
fn read_bounded(path: &Path, limit: usize, what: &str) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| kernel_error("read", what, path, &e))?;
    let mut buf = crate::input::read_limited(file, limit, limit)
        .map_err(|e| kernel_error("read", what, path, &e))?;
    if buf.len() > limit {
        return Err(Error::HostCall(format!(
            "{what} '{}' holds more than {limit} bytes, which no guest kernel gives; \
             is it the kernel's file?",
            path.display()
        )));
    }
    Ok(std::mem::take(&mut *buf))
}

/// A kernel file or device refused an operation: permission (run as root)
/// or the kernel's refusal (see dmesg).
fn kernel_error(op: &str, what: &str, path: &Path, e: &std::io::Error) -> Error {
    let path = path.display();
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        return Error::Installation(format!(
            "cannot {op} {what} '{path}': permission denied; asking the guest kernel for a \
             report needs root"
        ));
    }
    Error::HostCall(format!(
        "cannot {op} {what} '{path}': {e}; the guest kernel refused the request \
         ('dmesg' may say why)"
    ))
}

/// The sizes, offsets and ioctl numbers of `<linux/sev-guest.h>` this
/// module relies on, as `("sizeof(struct X)", n)`, `("offsetof(struct X,
/// f)", n)` and `("SNP_GET_REPORT", n)`: for tests that compare them with a
/// C compiler's view of the kernel header.
#[doc(hidden)]
pub fn sev_guest_abi_layout() -> Vec<(&'static str, u64)> {
    super::ffi::sev_guest::layout()
}
