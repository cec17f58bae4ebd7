//! The expected launch digest of an OVMF + COCONUT-SVSM guest
//! (`snp-digest --svsm`, the same as sev-snp-measure 0.0.13's `--mode
//! snp:svsm`) from its files: the OVMF image, the SVSM image and the
//! OVMF_VARS size, given in bytes or as the file whose length it is. The
//! layout and the chain are [`crate::core::snp`]'s (`SvsmLayout`,
//! `svsm_launch_digest`); this module opens and hashes the files once and
//! keeps what the explainer searches from.
//!
//! The OVMF_VARS file is read only for its length: a regular file's from its
//! metadata, unread (the layout bounds it); a pipe, FIFO or `-` counted while
//! read into nothing, up to the firmware size limit (64 MiB), as every input
//! of this program may be a pipe.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::digest::{ComputedLaunch, FirmwareFile};
use crate::core::hex;
use crate::core::ovmf::FOOTER_TAIL_LEN;
use crate::core::snp::{self, Ld, SnpError, SvsmError, SvsmImage, SvsmLaunch, SvsmLayout};
use crate::error::{Error, Result};
use crate::input::{self, Size, MAX_FIRMWARE_LEN};
use crate::snp::explain;

/// Where the OVMF_VARS size comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarsSize {
    /// Given in bytes (`--vars-size`).
    Bytes(u64),
    /// The length of this file (`--vars-file`); its bytes are not read.
    File(PathBuf),
}

/// What an OVMF + SVSM launch digest is computed from.
#[derive(Debug, Clone)]
pub struct SvsmInput {
    /// The OVMF image (pflash unit 0), mapped to end at 4 GiB.
    pub ovmf: PathBuf,
    /// The COCONUT-SVSM image, mapped to end where OVMF_VARS begins.
    pub svsm: PathBuf,
    /// The OVMF_VARS flash's size (pflash unit 1), between the two.
    pub vars: VarsSize,
    /// The number of vCPUs: one VMSA each.
    pub vcpus: u32,
    /// CPUID(1).EAX of every vCPU (RDX of every VMSA).
    pub vcpu_signature: u32,
}

/// The OVMF + SVSM form's inputs as hashed: what `--verbose` shows and the
/// explainer searches from.
pub struct SvsmComputed {
    ovmf: PathBuf,
    svsm: PathBuf,
    vars_file: Option<PathBuf>,
    ovmf_hash: Ld,
    svsm_pages: Vec<Ld>,
    image: SvsmImage,
    layout: SvsmLayout,
    vcpus: u32,
    cpu_signature: u32,
}

/// An error of the layout or the SVSM image, said of the input at fault.
fn svsm_error(input: &SvsmInput, e: SvsmError) -> Error {
    let svsm = input.svsm.display();
    match e {
        SvsmError::VarsSize(_) => match &input.vars {
            VarsSize::Bytes(n) => Error::Usage(format!("--vars-size {n}: {e}")),
            VarsSize::File(p) => Error::Usage(format!("OVMF_VARS file '{}': {e}", p.display())),
        },
        SvsmError::DoesNotFit { .. } => Error::Usage(format!(
            "SVSM image '{svsm}': {e}; check --ovmf, --svsm and the OVMF_VARS size"
        )),
        SvsmError::Snp(SnpError::FirmwareSize(_)) => {
            Error::Usage(format!("firmware '{}': {e}", input.ovmf.display()))
        }
        SvsmError::Snp(SnpError::Vcpus(_)) => Error::Usage(e.to_string()),
        e => Error::Usage(format!("SVSM image '{svsm}': {e}")),
    }
}

/// The OVMF_VARS size in bytes.
fn vars_len(vars: &VarsSize) -> Result<u64> {
    match vars {
        VarsSize::Bytes(n) => Ok(*n),
        VarsSize::File(p) => input::input_len("OVMF_VARS file", p, MAX_FIRMWARE_LEN, |size| {
            Error::Usage(format!(
                "OVMF_VARS file '{}' is {size}; an OVMF_VARS file that is not a regular file is counted only up to {MAX_FIRMWARE_LEN} bytes (real ones are a few MiB): give its size with --vars-size",
                p.display()
            ))
        }),
    }
}

/// The SVSM image's footer table, SVSM info entry and SEV metadata.
fn read_image(f: &mut FirmwareFile, input: &SvsmInput) -> Result<SvsmImage> {
    let tail = f.read_tail(FOOTER_TAIL_LEN as u64)?;
    let parsed = match SvsmImage::parse(&tail) {
        Err(SvsmError::MetadataBeyondTail { offset, .. }) if u64::from(offset) <= f.len => {
            SvsmImage::parse(&f.read_tail(u64::from(offset))?)
        }
        Err(SvsmError::MetadataBeyondTail { offset, .. }) => {
            return Err(Error::Usage(format!(
                "SVSM image '{}': the SEV metadata offset {offset:#x} lies before the start of the {}-byte image: the footer table is corrupt",
                input.svsm.display(),
                f.len
            )))
        }
        other => other,
    };
    parsed.map_err(|e| svsm_error(input, e))
}

/// The launch digest of an OVMF + SVSM guest, with the inputs as hashed.
/// Everything QEMU or the layout refuses is refused before any page is
/// hashed.
pub fn compute(input: &SvsmInput) -> Result<ComputedLaunch> {
    if input.vcpus == 0 || input.vcpus > snp::MAX_VCPUS {
        return Err(Error::Usage(format!(
            "--vcpus must be between 1 and {}, not {}",
            snp::MAX_VCPUS,
            input.vcpus
        )));
    }
    let vars_len = vars_len(&input.vars)?;
    let mut ovmf = FirmwareFile::open(&input.ovmf)?;
    let too_large = |size: Size| {
        Error::Usage(format!(
            "SVSM image '{}' is {size}; no SVSM image is larger than {MAX_FIRMWARE_LEN} bytes, so this is not one: check the path",
            input.svsm.display()
        ))
    };
    let mut svsm = FirmwareFile::open_as("SVSM image", &input.svsm, too_large)?;
    let layout = SvsmLayout {
        ovmf_len: ovmf.len,
        vars_len,
        svsm_len: svsm.len,
    };
    layout.svsm_gpa().map_err(|e| svsm_error(input, e))?;
    let image = read_image(&mut svsm, input)?;
    let launch = SvsmLaunch {
        image: &image,
        layout,
        vcpus: input.vcpus,
        cpu_signature: input.vcpu_signature,
    };
    snp::check_svsm_launch(&launch).map_err(|e| svsm_error(input, e))?;
    let threads = snp::default_hash_threads();
    let ovmf_hash = ovmf.ovmf_hash(threads)?;
    let svsm_pages = svsm.page_digests(threads)?;
    let ld = snp::svsm_launch_digest(ovmf_hash, &svsm_pages, &launch)
        .map_err(|e| svsm_error(input, e))?;
    Ok(ComputedLaunch::svsm(
        ld,
        SvsmComputed {
            ovmf: input.ovmf.clone(),
            svsm: input.svsm.clone(),
            vars_file: match &input.vars {
                VarsSize::File(p) => Some(p.clone()),
                VarsSize::Bytes(_) => None,
            },
            ovmf_hash,
            svsm_pages,
            image,
            layout,
            vcpus: input.vcpus,
            cpu_signature: input.vcpu_signature,
        },
    ))
}

impl SvsmComputed {
    /// The owner's launch in the explainer's terms.
    pub fn owner(&self) -> explain::SvsmOwner<'_> {
        explain::SvsmOwner {
            ovmf_hash: self.ovmf_hash,
            svsm_pages: &self.svsm_pages,
            image: &self.image,
            layout: self.layout,
            vcpus: self.vcpus,
            cpu_signature: self.cpu_signature,
        }
    }

    /// Which input the host changed to launch with `reported`.
    pub(super) fn explain(&self, reported: &Ld) -> Result<explain::SnpExplanation> {
        explain::explain_svsm(&self.owner(), reported).map_err(|e| match e {
            explain::SnpExplainError::Incomplete => Error::Unexpected(e.to_string()),
            e => Error::Usage(format!("SVSM image '{}': {e}", self.svsm.display())),
        })
    }

    /// What went into the digest (`snp-digest --verbose`), one line each.
    pub(super) fn describe(&self) -> String {
        let l = &self.layout;
        // Both were checked before anything was hashed.
        let ovmf_gpa = snp::firmware_gpa(l.ovmf_len).unwrap_or(0);
        let svsm_gpa = l.svsm_gpa().unwrap_or(0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "firmware: {} ({} bytes, GPA {ovmf_gpa:#x})",
            self.ovmf.display(),
            l.ovmf_len
        );
        let _ = writeln!(s, "OVMF hash: {}", hex(&self.ovmf_hash));
        let from = match &self.vars_file {
            Some(p) => format!("the length of {}", p.display()),
            None => "--vars-size".into(),
        };
        let _ = writeln!(
            s,
            "OVMF_VARS: {} bytes ({from}), GPA {:#x}",
            l.vars_len,
            ovmf_gpa - l.vars_len.min(ovmf_gpa)
        );
        let _ = writeln!(
            s,
            "SVSM image: {} ({} bytes, GPA {svsm_gpa:#x}), entry offset {:#x}",
            self.svsm.display(),
            l.svsm_len,
            self.image.entry_offset
        );
        for m in &self.image.sections {
            let _ = writeln!(
                s,
                "SVSM metadata section: gpa {:#010x} size {:#x} type {:#x}",
                m.gpa, m.size, m.kind
            );
        }
        let _ = writeln!(
            s,
            "VMSA: SVSM form, {} vCPU(s), the same page for each, RIP {:#x}, RDX {:#x}, SEV_FEATURES 0x1, MXCSR 0x1f80, FCW 0",
            self.vcpus,
            svsm_gpa + u64::from(self.image.entry_offset),
            self.cpu_signature
        );
        s
    }
}
