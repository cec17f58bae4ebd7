//! The SEV-SNP launch digest (measurement.md §6): one SHA-384 chain over a
//! PAGE_INFO structure per page that SNP_LAUNCH_UPDATE adds to the guest, in
//! the order QEMU and KVM add them.
//!
//! ```text
//! 1. the OVMF image as NORMAL pages at GPA 4 GiB - size          (= "OVMF hash")
//! 2. every OVMF metadata section, in table order                 (ZERO, SECRETS, CPUID, ...)
//! 3. ec2 only: the CPUID sections
//! 4. one VMSA page per vCPU at GPA 0xFFFFFFFFF000                 (BSP first)
//! ```
//!
//! Pure: the only input it reads is the firmware image from a reader it is
//! handed, a batch of pages at a time.
//!
//! Its parts, all re-exported here: `gctx` (the guest context and
//! PAGE_INFO), `firmware` (step 1), `metadata` (steps 2 and 3) and `launch`
//! (the launch, its checks and step 4); `svsm`, the OVMF + COCONUT-SVSM
//! form of the launch (sev-snp-measure's `snp:svsm`), built on them.

use std::io;

use crate::core::ovmf::OvmfError;

mod firmware;
mod gctx;
mod launch;
mod metadata;
mod svsm;

pub use firmware::{
    default_hash_threads, firmware_gpa, measure_firmware, measure_firmware_on, ovmf_hash,
    page_digests, MAX_HASH_THREADS,
};
pub use gctx::{GuestContext, PageType};
pub use launch::{check_launch, launch_digest, measure_launch, vmsa_contents, SnpLaunch};
pub use metadata::{kernel_hashes_page, measure_sections, SnpFirmware};
pub use svsm::{
    check_svsm_launch, measure_svsm_image, svsm_launch_digest, svsm_vmsa_contents, SvsmError,
    SvsmImage, SvsmLaunch, SvsmLayout,
};

/// Length of the launch digest (SHA-384).
pub const LD_LEN: usize = 48;
/// The page size SNP_LAUNCH_UPDATE measures in.
pub const PAGE_LEN: usize = 4096;
/// The GPA recorded for VMSA pages: (u64)-1, page-aligned, bits above 51 cleared.
pub const VMSA_GPA: u64 = 0x0000_FFFF_FFFF_F000;
/// More vCPUs than any SNP launch has.
pub const MAX_VCPUS: u32 = 512;

const FOUR_GIB: u64 = 1 << 32;

/// A launch digest value.
pub type Ld = [u8; LD_LEN];

/// Why an SNP launch digest cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum SnpError {
    /// The image size (bytes) is zero, not a multiple of 4096, or above 4 GiB.
    #[error("the firmware image is {0} bytes; SNP measures whole 4096-byte pages, so its size must be a non-zero multiple of 4096 no larger than 4 GiB")]
    FirmwareSize(u64),
    /// Reading the firmware image failed.
    #[error("reading the firmware image failed: {0}")]
    Io(#[from] io::Error),
    /// The reader ended before the size the image was announced with.
    #[error("the firmware image ended after {read} of its {len} bytes")]
    FirmwareTruncated {
        /// Bytes read before the end.
        read: u64,
        /// Bytes announced.
        len: u64,
    },
    /// The OVMF footer table or SEV metadata is corrupt.
    #[error(transparent)]
    Ovmf(#[from] OvmfError),
    /// The image has no OVMF footer table.
    #[error("the firmware has no OVMF footer table, so it has no SEV metadata: QEMU cannot launch an SEV-SNP guest with it; use an OVMF build with SEV-SNP support (edk2 OvmfPkgX64 or AmdSevX64 since 2022)")]
    NoFooter,
    /// The footer table has no SEV metadata entry.
    #[error("the firmware has no SEV metadata (OVMF footer entry dc886566-984a-4798-a75e-5585a7bf67cc), which lists the pages QEMU must add for SNP: QEMU cannot launch an SEV-SNP guest with it; use an OVMF build with SEV-SNP support (edk2 OvmfPkgX64 or AmdSevX64 since 2022)")]
    NoMetadata,
    /// The metadata offset reaches before the image tail that was read.
    #[error("the SEV metadata is {offset:#x} bytes from the end of the image, beyond the {tail:#x} bytes read")]
    MetadataBeyondTail {
        /// The metadata's offset from the end of the image, from the footer entry.
        offset: u32,
        /// Bytes of the image tail read.
        tail: usize,
    },
    /// The SEV-ES reset block (AP reset address) is missing or zero.
    #[error("the firmware has no SEV-ES reset block (OVMF footer entry 00f771de-1a7e-4fcb-890e-68c77e2fb44e) or it is zero, so QEMU cannot start the vCPUs of an SEV-SNP guest with it")]
    NoResetBlock,
    /// A metadata section that is not whole pages below 4 GiB.
    #[error("SEV-SNP metadata section {index} (gpa {gpa:#x}, size {size:#x}, type {kind:#x}) is not made of whole pages: its address and size must be non-zero multiples of 4096 below 4 GiB")]
    BadSection {
        /// Position of the section in the metadata, from 0.
        index: usize,
        /// The section's guest-physical address.
        gpa: u32,
        /// The section's size in bytes.
        size: u32,
        /// The section's type ([`crate::core::ovmf::MetadataSection`] constants).
        kind: u32,
    },
    /// A kernel is given, but no metadata section has type SNP_KERNEL_HASHES (0x10).
    #[error("a kernel was given, but the firmware's SEV metadata has no SNP_KERNEL_HASHES section (type 0x10) to hold the kernel hashes table, so QEMU cannot boot a kernel with measured direct boot in an SEV-SNP guest with it; use a firmware built for it (edk2 AmdSevX64, e.g. OVMF.amdsev.fd) or drop --kernel/--initrd/--append")]
    NoKernelHashesSection,
    /// A kernel is given, but the footer's hash-table area is missing, zero or under 176 bytes.
    #[error("a kernel was given, but the firmware has no usable area for the kernel hashes table (OVMF footer entry 7255371f-3a3b-4b04-927b-1da6efa8d454 is missing, zero or smaller than 176 bytes), so QEMU refuses measured direct boot with it; use a firmware built for it (edk2 AmdSevX64) or drop --kernel/--initrd/--append")]
    NoKernelHashArea,
    /// The 176-byte table at its offset overruns the SNP_KERNEL_HASHES section.
    #[error("the kernel hashes table (176 bytes at offset {offset:#x} of its page) does not fit in the SNP_KERNEL_HASHES section of {size:#x} bytes")]
    KernelTableDoesNotFit {
        /// The table's offset in its page: hash-area base & 0xFFF.
        offset: u32,
        /// The section's size in bytes.
        size: u32,
    },
    /// A vCPU count of 0 or above [`MAX_VCPUS`].
    #[error("the number of vCPUs must be between 1 and {MAX_VCPUS}, not {0}")]
    Vcpus(u32),
}

/// SHA-384, with aws-lc's assembly: the launch digest hashes every page
/// and every PAGE_INFO, and this is about twice as fast as the portable
/// sha2 code on these machines.
pub fn sha384(data: &[u8]) -> Ld {
    sha384_parts(&[data])
}

/// SHA-384 of the concatenation of `parts`.
pub fn sha384_parts(parts: &[&[u8]]) -> Ld {
    let mut c = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA384);
    for p in parts {
        c.update(p);
    }
    let mut out = [0u8; LD_LEN];
    out.copy_from_slice(c.finish().as_ref());
    out
}

/// The firmware and launch the unit tests of every part start from.
#[cfg(test)]
mod fixtures {
    use super::*;
    use crate::core::ovmf::{GuestArea, MetadataSection};
    use crate::core::vmsa::{VmmType, VmsaConfig, VmsaForm};

    pub(super) fn section(gpa: u32, size: u32, kind: u32) -> MetadataSection {
        MetadataSection { gpa, size, kind }
    }

    pub(super) fn fw() -> SnpFirmware {
        SnpFirmware {
            sections: vec![
                section(0x800000, 0x9000, 1),
                section(0x80D000, 0x1000, 2),
                section(0x80E000, 0x1000, 3),
                section(0x80F000, 0x1000, 4),
                section(0x810000, 0x1000, 0x10),
            ],
            ap_reset_eip: Some(0x80B004),
            kernel_hash_area: Some(GuestArea {
                base: 0x810C00,
                size: 0x400,
            }),
        }
    }

    pub(super) fn launch(vcpus: u32) -> SnpLaunch<'static> {
        SnpLaunch {
            vcpus,
            vmm: VmmType::Qemu.profile(),
            vmsa: VmsaConfig {
                form: VmsaForm::Init2,
                cpu_signature: 0x800F12,
                sev_features: 1,
            },
            kernel: None,
        }
    }
}
