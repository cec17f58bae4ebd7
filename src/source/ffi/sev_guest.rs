//! The `/dev/sev-guest` ioctls of the Linux SEV guest driver (UAPI header
//! `<linux/sev-guest.h>`): SNP_GET_REPORT and SNP_GET_EXT_REPORT.
//!
//! The layouts below are written from that header's declarations; the
//! `guest_report` integration tests compile a C program against the header
//! (gcc) and compare every size, offset and ioctl number with
//! [`layout`], so a mistake here fails a test rather than corrupting memory.
//!
//! The ioctl's argument is `struct snp_guest_request_ioctl`, which holds the
//! *addresses* of the request and the response: the kernel reads the request
//! (`struct snp_report_req`, or `struct snp_ext_report_req` for the extended
//! report) and writes the 4000-byte response (`struct snp_report_resp`),
//! and for the extended report the certificate table into a buffer the
//! request names, at most `certs_len` bytes. Every buffer here is owned by
//! the calling function and outlives the call.

use std::fs::File;
use std::os::fd::AsRawFd;

/// `sizeof(struct snp_report_resp)`: the response buffer the kernel fills.
pub(crate) const RESPONSE_LEN: usize = 4000;

/// `struct snp_report_req`: the REPORT_DATA and the VMPL to report at.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct SnpReportReq {
    /// `user_data[64]`: the report's REPORT_DATA.
    user_data: [u8; 64],
    /// `vmpl`: the VMPL the report is made for.
    vmpl: u32,
    /// `rsvd[28]`: must be zero.
    rsvd: [u8; 28],
}

/// `struct snp_report_resp`: status, report size, 24 reserved bytes, report.
#[repr(C)]
pub(crate) struct SnpReportResp {
    /// `data[4000]`.
    data: [u8; RESPONSE_LEN],
}

/// `struct snp_guest_request_ioctl`: the ioctl's argument.
#[repr(C)]
struct SnpGuestRequestIoctl {
    /// `msg_version`: must be non-zero (1).
    msg_version: u8,
    /// `req_data`: the request's address.
    req_data: u64,
    /// `resp_data`: the response's address.
    resp_data: u64,
    /// `exitinfo2`: bits 31:0 the firmware's error, bits 63:32 the VMM's
    /// (the union of `fw_error` and `vmm_error` on little-endian x86).
    exitinfo2: u64,
}

/// `struct snp_ext_report_req`: a report request and the certificate buffer.
#[repr(C)]
struct SnpExtReportReq {
    /// `data`: the report request.
    data: SnpReportReq,
    /// `certs_address`: where the kernel copies the certificate table.
    certs_address: u64,
    /// `certs_len`: the buffer's length, a multiple of the page size; on
    /// [`VMM_ERR_INVALID_LEN`] the kernel writes back the length needed.
    certs_len: u32,
}

/// `SNP_GUEST_REQ_IOC_TYPE`.
const IOC_TYPE: u8 = b'S';

/// `_IOWR(type, nr, size)` of the Linux ioctl encoding (x86: 2 direction
/// bits, 14 size bits, 8 type bits, 8 number bits; read|write = 3).
const fn iowr(nr: u8, size: usize) -> u64 {
    (3u64 << 30) | ((size as u64) << 16) | ((IOC_TYPE as u64) << 8) | nr as u64
}

/// `SNP_GET_REPORT`.
pub(crate) const SNP_GET_REPORT: u64 = iowr(0x0, std::mem::size_of::<SnpGuestRequestIoctl>());
/// `SNP_GET_EXT_REPORT`.
pub(crate) const SNP_GET_EXT_REPORT: u64 = iowr(0x2, std::mem::size_of::<SnpGuestRequestIoctl>());
/// `SNP_GUEST_VMM_ERR_INVALID_LEN`: the certificate buffer is too small.
pub(crate) const VMM_ERR_INVALID_LEN: u32 = 1;
/// `SNP_GUEST_VMM_ERR_BUSY`: the host throttled the request.
pub(crate) const VMM_ERR_BUSY: u32 = 2;

impl SnpReportReq {
    fn new(user_data: &[u8; 64], vmpl: u32) -> SnpReportReq {
        SnpReportReq {
            user_data: *user_data,
            vmpl,
            rsvd: [0; 28],
        }
    }
}

/// Why an ioctl failed: the operating system's error and what the firmware
/// and the VMM said (`exitinfo2`).
#[derive(Debug)]
pub(crate) struct IoctlError {
    /// The ioctl's errno.
    pub errno: std::io::Error,
    /// `fw_error`: the firmware's status (0 when it was not the firmware).
    pub fw_error: u32,
    /// `vmm_error`: the VMM's status ([`VMM_ERR_INVALID_LEN`], [`VMM_ERR_BUSY`]).
    pub vmm_error: u32,
    /// For SNP_GET_EXT_REPORT: `certs_len` as the kernel left it (the
    /// length needed after [`VMM_ERR_INVALID_LEN`]).
    pub certs_len: u32,
}

/// Issues one ioctl whose request is `req`, into a fresh response buffer.
///
/// # Safety
///
/// `req` must be the request structure the ioctl `nr` reads (and may write
/// back), and every address inside it must point at memory that is valid,
/// and not otherwise borrowed, for as many bytes as the length beside it says,
/// for the whole call.
unsafe fn call<T>(
    dev: &File,
    nr: u64,
    req: &mut T,
) -> Result<Box<SnpReportResp>, (std::io::Error, u64)> {
    let mut resp = Box::new(SnpReportResp {
        data: [0; RESPONSE_LEN],
    });
    let mut arg = SnpGuestRequestIoctl {
        msg_version: 1,
        req_data: req as *mut T as u64,
        resp_data: &mut *resp as *mut SnpReportResp as u64,
        exitinfo2: 0,
    };
    // SAFETY: `dev` is an open file, so its descriptor is valid for the
    // call. `arg` is a live `struct snp_guest_request_ioctl` (layout checked
    // against the UAPI header by the tests) the kernel reads and writes back.
    // Its two addresses point at `*req`, the request `nr` reads (and may
    // write back), as the caller guarantees, and at `*resp`, a 4000-byte
    // `struct snp_report_resp` the kernel fills; both are exclusively
    // borrowed here and outlive the call. Addresses inside `*req` are the
    // caller's guarantee too. The kernel writes nothing else.
    let rc = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            nr as libc::Ioctl,
            &mut arg as *mut SnpGuestRequestIoctl,
        )
    };
    if rc < 0 {
        return Err((std::io::Error::last_os_error(), arg.exitinfo2));
    }
    Ok(resp)
}

fn split(exitinfo2: u64) -> (u32, u32) {
    (exitinfo2 as u32, (exitinfo2 >> 32) as u32)
}

/// SNP_GET_REPORT: the 4000-byte response (status, report size, report).
pub(crate) fn get_report(
    dev: &File,
    user_data: &[u8; 64],
    vmpl: u32,
) -> Result<Box<[u8; RESPONSE_LEN]>, IoctlError> {
    let mut req = SnpReportReq::new(user_data, vmpl);
    // SAFETY: SNP_GET_REPORT reads a `struct snp_report_req`, which `req`
    // is; it holds no address.
    match unsafe { call(dev, SNP_GET_REPORT, &mut req) } {
        Ok(resp) => Ok(Box::new(resp.data)),
        Err((errno, info)) => {
            let (fw_error, vmm_error) = split(info);
            Err(IoctlError {
                errno,
                fw_error,
                vmm_error,
                certs_len: 0,
            })
        }
    }
}

/// SNP_GET_EXT_REPORT: the response, with the certificate table written
/// into `certs` (whose length must be a multiple of the page size, at most
/// what the kernel accepts; the kernel zeroes what the host leaves empty).
pub(crate) fn get_ext_report(
    dev: &File,
    user_data: &[u8; 64],
    vmpl: u32,
    certs: &mut [u8],
) -> Result<Box<[u8; RESPONSE_LEN]>, IoctlError> {
    let mut req = SnpExtReportReq {
        data: SnpReportReq::new(user_data, vmpl),
        certs_address: certs.as_mut_ptr() as u64,
        // Exactly the buffer's length: the kernel writes at most this many
        // bytes there (0, asking for no certificates, should it not fit).
        certs_len: u32::try_from(certs.len()).unwrap_or(0),
    };
    // SAFETY: SNP_GET_EXT_REPORT reads a `struct snp_ext_report_req`, which
    // `req` is, and writes it back after VMM_ERR_INVALID_LEN; the kernel
    // writes at most `certs_len` bytes at `certs_address`, which are `certs`,
    // exclusively borrowed for this function, and `certs_len` is its length
    // (or 0, asking for no certificates).
    match unsafe { call(dev, SNP_GET_EXT_REPORT, &mut req) } {
        Ok(resp) => Ok(Box::new(resp.data)),
        Err((errno, info)) => {
            let (fw_error, vmm_error) = split(info);
            Err(IoctlError {
                errno,
                fw_error,
                vmm_error,
                certs_len: req.certs_len,
            })
        }
    }
}

/// Byte offset of `field` inside `base` (no unsafe code: two addresses).
fn offset<T, F>(base: &T, field: &F) -> u64 {
    (field as *const F as usize - base as *const T as usize) as u64
}

/// Every size, offset and ioctl number this module relies on, named as
/// `sizeof(struct X)`, `offsetof(struct X, f)` and the macro names, for the
/// tests to compare with what a C compiler says of `<linux/sev-guest.h>`.
pub(crate) fn layout() -> Vec<(&'static str, u64)> {
    let mut all = request_layout();
    all.extend(ioctl_layout());
    all
}

/// The report requests and the response.
fn request_layout() -> Vec<(&'static str, u64)> {
    use std::mem::size_of;
    let r = SnpReportReq::new(&[0; 64], 0);
    let resp = SnpReportResp {
        data: [0; RESPONSE_LEN],
    };
    let ext = SnpExtReportReq {
        data: r,
        certs_address: 0,
        certs_len: 0,
    };
    vec![
        (
            "sizeof(struct snp_report_req)",
            size_of::<SnpReportReq>() as u64,
        ),
        (
            "offsetof(struct snp_report_req, user_data)",
            offset(&r, &r.user_data),
        ),
        ("offsetof(struct snp_report_req, vmpl)", offset(&r, &r.vmpl)),
        ("offsetof(struct snp_report_req, rsvd)", offset(&r, &r.rsvd)),
        (
            "sizeof(struct snp_report_resp)",
            size_of::<SnpReportResp>() as u64,
        ),
        (
            "offsetof(struct snp_report_resp, data)",
            offset(&resp, &resp.data),
        ),
        (
            "sizeof(struct snp_ext_report_req)",
            size_of::<SnpExtReportReq>() as u64,
        ),
        (
            "offsetof(struct snp_ext_report_req, data)",
            offset(&ext, &ext.data),
        ),
        (
            "offsetof(struct snp_ext_report_req, certs_address)",
            offset(&ext, &ext.certs_address),
        ),
        (
            "offsetof(struct snp_ext_report_req, certs_len)",
            offset(&ext, &ext.certs_len),
        ),
    ]
}

/// The ioctl's argument, its numbers and the VMM's error codes.
fn ioctl_layout() -> Vec<(&'static str, u64)> {
    let io = SnpGuestRequestIoctl {
        msg_version: 0,
        req_data: 0,
        resp_data: 0,
        exitinfo2: 0,
    };
    let exitinfo2 = offset(&io, &io.exitinfo2);
    vec![
        (
            "sizeof(struct snp_guest_request_ioctl)",
            std::mem::size_of::<SnpGuestRequestIoctl>() as u64,
        ),
        (
            "offsetof(struct snp_guest_request_ioctl, msg_version)",
            offset(&io, &io.msg_version),
        ),
        (
            "offsetof(struct snp_guest_request_ioctl, req_data)",
            offset(&io, &io.req_data),
        ),
        (
            "offsetof(struct snp_guest_request_ioctl, resp_data)",
            offset(&io, &io.resp_data),
        ),
        (
            "offsetof(struct snp_guest_request_ioctl, exitinfo2)",
            exitinfo2,
        ),
        // `split` reads fw_error from the low and vmm_error from the high half.
        (
            "offsetof(struct snp_guest_request_ioctl, fw_error)",
            exitinfo2,
        ),
        (
            "offsetof(struct snp_guest_request_ioctl, vmm_error)",
            exitinfo2 + 4,
        ),
        ("SNP_GET_REPORT", SNP_GET_REPORT),
        ("SNP_GET_EXT_REPORT", SNP_GET_EXT_REPORT),
        (
            "SNP_GUEST_VMM_ERR_INVALID_LEN",
            u64::from(VMM_ERR_INVALID_LEN),
        ),
        ("SNP_GUEST_VMM_ERR_BUSY", u64::from(VMM_ERR_BUSY)),
    ]
}
