//! A report through `/dev/sev-guest`: SNP_GET_EXT_REPORT with a certificate
//! buffer, else SNP_GET_REPORT; the response's status and report size are
//! checked before the report is taken out of it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

use super::super::ffi::sev_guest::{self as ffi, IoctlError, RESPONSE_LEN};
use super::{kernel_error, GuestReport, GuestReportOptions, ReportVia, MAX_BLOB_LEN};
use crate::core::snp_report::{REPORT_LEN, RESPONSE_REPORT_OFFSET};
use crate::error::{Error, Result};

/// The certificate buffer asked with first: the kernel's largest
/// (`SEV_FW_BLOB_MAX_SIZE`, 16 KiB), which its own configfs-tsm path uses.
const CERTS_LEN: usize = 16 * 1024;
/// The kernel wants the certificate buffer in whole pages.
const PAGE_LEN: usize = 4096;
/// One GHCB certificate table entry: GUID, offset, length.
const CERT_ENTRY_LEN: usize = 24;

/// SNP firmware status `INVALID_PARAM`.
const STATUS_INVALID_PARAM: u32 = 0x16;
/// SNP firmware status `INVALID_KEY`.
const STATUS_INVALID_KEY: u32 = 0x27;

/// A report through the device; `None` when it does not exist.
pub(super) fn request(
    report_data: &[u8; 64],
    opts: &GuestReportOptions,
) -> Result<Option<GuestReport>> {
    let path = &opts.sev_guest;
    let what = "the SEV guest device";
    let dev = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(kernel_error("open", what, path, &e)),
    };
    let meta = dev
        .metadata()
        .map_err(|e| kernel_error("inspect", what, path, &e))?;
    if !meta.file_type().is_char_device() {
        return Err(Error::Usage(format!(
            "'{}' is not a character device, so not the sev-guest module's device \
             (normally {})",
            path.display(),
            super::DEFAULT_SEV_GUEST
        )));
    }
    let (resp, certs) = ask(&dev, report_data, opts.vmpl, path)?;
    let report = report_of(&resp, path)?;
    Ok(Some(GuestReport {
        report,
        cert_table: certs.and_then(trim_cert_table),
        via: ReportVia::SevGuest,
    }))
}

type Response = Box<[u8; RESPONSE_LEN]>;

/// SNP_GET_EXT_REPORT, its buffer grown once if the host asks for a
/// larger one; SNP_GET_REPORT when the kernel or host has no extended
/// requests. A firmware error is final: the kernel stops using the
/// guest's key after one.
fn ask(
    dev: &File,
    report_data: &[u8; 64],
    vmpl: u32,
    path: &Path,
) -> Result<(Response, Option<Vec<u8>>)> {
    let mut certs = vec![0u8; CERTS_LEN];
    let first = match ffi::get_ext_report(dev, report_data, vmpl, &mut certs) {
        Ok(resp) => return Ok((resp, Some(certs))),
        Err(e) => e,
    };
    if first.vmm_error == ffi::VMM_ERR_INVALID_LEN {
        let needed = first.certs_len as usize;
        if needed <= certs.len() || needed > MAX_BLOB_LEN {
            return Err(Error::HostCall(format!(
                "SNP_GET_EXT_REPORT on '{}': the host asks for a certificate buffer of {needed} \
                 bytes, which is not more than the {} given or more than {MAX_BLOB_LEN}; the \
                 host is broken",
                path.display(),
                certs.len()
            )));
        }
        let mut certs = vec![0u8; needed.div_ceil(PAGE_LEN) * PAGE_LEN];
        return match ffi::get_ext_report(dev, report_data, vmpl, &mut certs) {
            Ok(resp) => Ok((resp, Some(certs))),
            Err(e) => Err(ioctl_error("SNP_GET_EXT_REPORT", path, &e, None)),
        };
    }
    if first.fw_error != 0 {
        return Err(ioctl_error("SNP_GET_EXT_REPORT", path, &first, None));
    }
    match ffi::get_report(dev, report_data, vmpl) {
        Ok(resp) => Ok((resp, None)),
        Err(e) => Err(ioctl_error("SNP_GET_REPORT", path, &e, Some(&first))),
    }
}

/// What a failed ioctl means and what to do; `earlier` is the failed
/// SNP_GET_EXT_REPORT before a SNP_GET_REPORT.
fn ioctl_error(name: &str, path: &Path, e: &IoctlError, earlier: Option<&IoctlError>) -> Error {
    if matches!(
        e.errno.raw_os_error(),
        Some(libc::EACCES) | Some(libc::EPERM)
    ) {
        return kernel_error("use", "the SEV guest device", path, &e.errno);
    }
    let before = earlier
        .map(|x| {
            format!(
                " (SNP_GET_EXT_REPORT failed before it: {}, firmware error {:#x}, VMM error {:#x})",
                x.errno, x.fw_error, x.vmm_error
            )
        })
        .unwrap_or_default();
    let advice = if e.fw_error != 0 {
        format!(
            "the SEV firmware refused the request ({}); after a firmware error the guest kernel \
             stops asking the firmware (see 'dmesg'), so the guest must be restarted before it \
             can get a report",
            status_name(e.fw_error)
        )
    } else {
        "the guest kernel or the host refused the request; 'dmesg' may say why".to_string()
    };
    Error::HostCall(format!(
        "{name} on '{}' failed: {} (firmware error {:#x}, VMM error {:#x}){before}; {advice}",
        path.display(),
        e.errno,
        e.fw_error,
        e.vmm_error
    ))
}

fn status_name(status: u32) -> String {
    match status {
        STATUS_INVALID_PARAM => {
            "INVALID_PARAM: the request is malformed, or asks for a VMPL below the guest's own"
                .to_string()
        }
        STATUS_INVALID_KEY => "INVALID_KEY: the guest's message key is not valid".to_string(),
        s => format!("status {s:#x}"),
    }
}

/// The report in a response: status 0, a report size from [`REPORT_LEN`]
/// to what the buffer holds after the 32-byte header.
fn report_of(resp: &[u8; RESPONSE_LEN], path: &Path) -> Result<Vec<u8>> {
    let word = |at: usize| u32::from_le_bytes([resp[at], resp[at + 1], resp[at + 2], resp[at + 3]]);
    let (status, size) = (word(0), word(4));
    if status != 0 {
        return Err(Error::HostCall(format!(
            "the SEV firmware answered the report request on '{}' with {}: there is no \
             report in the answer; ask for a VMPL at or above the one this guest runs at, or \
             see 'dmesg'",
            path.display(),
            status_name(status)
        )));
    }
    let size = size as usize;
    let end = RESPONSE_REPORT_OFFSET.saturating_add(size);
    if size < REPORT_LEN || end > RESPONSE_LEN {
        return Err(Error::HostCall(format!(
            "the answer on '{}' says its report is {size} bytes; a report is at least \
             {REPORT_LEN} bytes and the answer holds at most {}: the guest kernel or firmware \
             is broken",
            path.display(),
            RESPONSE_LEN - RESPONSE_REPORT_OFFSET
        )));
    }
    Ok(resp[RESPONSE_REPORT_OFFSET..end].to_vec())
}

/// The certificate table cut where its last blob ends, as the kernel cuts
/// configfs-tsm's `auxblob`; `None` when the host wrote no entry (the
/// buffer is still zero). A table whose entries point past the buffer is
/// kept whole, for its parser to refuse.
fn trim_cert_table(mut certs: Vec<u8>) -> Option<Vec<u8>> {
    let mut end = 0u64;
    let mut header_end = certs.len();
    for (i, e) in certs.chunks_exact(CERT_ENTRY_LEN).enumerate() {
        if e.iter().all(|&b| b == 0) {
            if i == 0 {
                return None;
            }
            header_end = (i + 1) * CERT_ENTRY_LEN;
            break;
        }
        let word =
            |at: usize| u64::from(u32::from_le_bytes([e[at], e[at + 1], e[at + 2], e[at + 3]]));
        end = end.max(word(16) + word(20));
    }
    let end = usize::try_from(end).unwrap_or(usize::MAX).max(header_end);
    if end < certs.len() {
        certs.truncate(end);
    }
    Some(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u32, size: u32) -> [u8; RESPONSE_LEN] {
        let mut r = [0u8; RESPONSE_LEN];
        r[0..4].copy_from_slice(&status.to_le_bytes());
        r[4..8].copy_from_slice(&size.to_le_bytes());
        for (i, b) in r[0x20..0x20 + REPORT_LEN].iter_mut().enumerate() {
            *b = i as u8;
        }
        r
    }

    #[test]
    fn report_taken_from_a_good_response() {
        let r = report_of(&response(0, 0x4A0), Path::new("/dev/x")).unwrap();
        assert_eq!(r.len(), 0x4A0);
        assert_eq!((r[0], r[1], r[0x49F]), (0, 1, 0x9F));
    }

    #[test]
    fn bad_status_and_sizes_are_refused() {
        let p = Path::new("/dev/x");
        let e = report_of(&response(0x16, 0x4A0), p).unwrap_err();
        assert!(e.to_string().contains("INVALID_PARAM"), "{e}");
        assert_eq!(e.exit_code() as i32, 8);
        for size in [0, 0x49F, 4000 - 0x20 + 1, u32::MAX] {
            let e = report_of(&response(0, size), p).unwrap_err();
            assert!(e.to_string().contains(&format!("{size} bytes")), "{e}");
        }
        assert_eq!(report_of(&response(0, 4000 - 0x20), p).unwrap().len(), 3968);
    }

    #[test]
    fn cert_table_trimmed_to_its_last_blob() {
        assert_eq!(trim_cert_table(vec![0; 4096]), None);
        let mut t = vec![0u8; 4096];
        t[0] = 1; // one entry, blob at 48 for 100 bytes, then the terminator
        t[16..20].copy_from_slice(&48u32.to_le_bytes());
        t[20..24].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(trim_cert_table(t.clone()).map(|t| t.len()), Some(148));
        t[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(trim_cert_table(t).map(|t| t.len()), Some(4096));
    }
}
