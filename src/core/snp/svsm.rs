//! The launch digest of an OVMF + COCONUT-SVSM guest, as sev-snp-measure
//! 0.0.13 computes it (`--mode snp:svsm`, measurement.md §5 and §6): the
//! SVSM image is mapped right below the OVMF_VARS flash, which is right
//! below OVMF, and every vCPU starts in the SVSM.
//!
//! ```text
//! 1. the OVMF image as NORMAL pages at GPA 4 GiB - ovmf size       (= "OVMF hash")
//! 2. the SVSM image as NORMAL pages ending at OVMF GPA - vars size
//! 3. every section of the SVSM image's SEV metadata, in table order (as step 2 of §6)
//! 4. one VMSA page per vCPU, the same page for all (the boot vCPU's too):
//!    RIP = SVSM GPA + the SVSM info entry's u32
//! ```
//!
//! OVMF's own footer table and metadata play no part. Pure: the pages'
//! digests are handed in, hashed by the caller once
//! ([`page_digests`](super::page_digests)), so a search can lay the same
//! SVSM image at many addresses without reading it again.

use super::launch::check_section;
use super::metadata::measure_section;
use super::{firmware_gpa, sha384, GuestContext, Ld, PageType, SnpError};
use super::{FOUR_GIB, MAX_VCPUS, PAGE_LEN, VMSA_GPA};
use crate::core::guid;
use crate::core::ovmf::{self, FooterTable, MetadataSection, OvmfError};
use crate::core::vmsa;

/// Why an OVMF + SVSM launch digest cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum SvsmError {
    /// The SVSM image size is zero, not a multiple of 4096, or above 4 GiB.
    #[error("the SVSM image is {0} bytes; SNP measures whole 4096-byte pages, so its size must be a non-zero multiple of 4096")]
    SvsmSize(u64),
    /// The OVMF_VARS size is zero or not a multiple of 4096.
    #[error("the OVMF_VARS size is {0} bytes; QEMU maps the vars flash (pflash unit 1) only when its size is a non-zero multiple of 4096, and the SVSM image ends where it begins")]
    VarsSize(u64),
    /// The SVSM image would start below GPA 0.
    #[error("an SVSM image of {svsm_len:#x} bytes does not fit below OVMF ({ovmf_len:#x} bytes) and OVMF_VARS ({vars_len:#x} bytes): they leave {room:#x} bytes below them")]
    DoesNotFit {
        /// OVMF image bytes.
        ovmf_len: u64,
        /// OVMF_VARS bytes.
        vars_len: u64,
        /// SVSM image bytes.
        svsm_len: u64,
        /// The address space left below OVMF_VARS (where the SVSM image would end).
        room: u64,
    },
    /// The SVSM image has no footer table.
    #[error("the SVSM image has no OVMF-style footer table, so it has no SVSM info entry or SEV metadata: it is not a COCONUT-SVSM image (are --svsm and --ovmf swapped?)")]
    NoFooter,
    /// The footer table has no SVSM info entry.
    #[error("the SVSM image's footer table has no SVSM info entry (a789a612-0597-4c4b-a49f-cbb1fe9d1ddd), which says where its vCPUs start: it is not a COCONUT-SVSM image (are --svsm and --ovmf swapped?)")]
    NoSvsmInfo,
    /// The footer table has no SEV metadata entry.
    #[error("the SVSM image's footer table has no SEV metadata (entry dc886566-984a-4798-a75e-5585a7bf67cc), which lists the pages QEMU adds for it (secrets, CPUID, calling area): QEMU cannot launch it")]
    NoMetadata,
    /// The footer table or SEV metadata is corrupt.
    #[error("the SVSM image's footer table or SEV metadata is unusable: {0}")]
    Ovmf(#[from] OvmfError),
    /// The metadata offset reaches before the image tail that was read.
    #[error("the SEV metadata is {offset:#x} bytes from the end of the SVSM image, beyond the {tail:#x} bytes read")]
    MetadataBeyondTail {
        /// The metadata's offset from the end of the image.
        offset: u32,
        /// Bytes of the image tail read.
        tail: usize,
    },
    /// The SVSM info entry points outside the image.
    #[error("the SVSM entry point (offset {offset:#x} in the SVSM info entry) lies outside the {len:#x}-byte SVSM image")]
    EntryOutside {
        /// The entry's offset from the image start.
        offset: u32,
        /// The image's size.
        len: u64,
    },
    /// A page digest list that does not match the image size (a caller's bug).
    #[error("{pages} page digests were given for an SVSM image of {len} bytes")]
    Pages {
        /// Digests given.
        pages: usize,
        /// The image size in the layout.
        len: u64,
    },
    /// A bad metadata section or vCPU count, as in the OVMF form.
    #[error(transparent)]
    Snp(#[from] SnpError),
}

/// What the SVSM image's footer table and SEV metadata say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvsmImage {
    /// The SEV metadata sections, in table order.
    pub sections: Vec<MetadataSection>,
    /// The SVSM info entry: the entry point's offset from the image start.
    pub entry_offset: u32,
}

impl SvsmImage {
    /// Reads the footer table, its SVSM info entry and the SEV metadata from
    /// `tail`, the last bytes of the SVSM image (at least
    /// [`ovmf::FOOTER_TAIL_LEN`] of them, or the whole image if smaller). The
    /// metadata must lie within `tail`: see [`SvsmImage::metadata_offset`].
    pub fn parse(tail: &[u8]) -> Result<SvsmImage, SvsmError> {
        let footer = FooterTable::parse(tail)?.ok_or(SvsmError::NoFooter)?;
        let info = footer
            .entry(&guid::SVSM_INFO)
            .ok_or(SvsmError::NoSvsmInfo)?;
        let Some(entry) = info.get(..4) else {
            return Err(OvmfError::ShortEntry {
                guid: guid::SVSM_INFO,
                got: info.len(),
                want: 4,
            }
            .into());
        };
        let entry_offset = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let offset = footer.sev_metadata_offset()?.ok_or(SvsmError::NoMetadata)?;
        if offset as usize > tail.len() {
            return Err(SvsmError::MetadataBeyondTail {
                offset,
                tail: tail.len(),
            });
        }
        Ok(SvsmImage {
            sections: ovmf::parse_sev_metadata(tail, offset)?,
            entry_offset,
        })
    }

    /// How many bytes from the end of the image the SEV metadata starts, if
    /// the footer table in `tail` names it.
    pub fn metadata_offset(tail: &[u8]) -> Result<Option<u32>, SvsmError> {
        Ok(match FooterTable::parse(tail)? {
            Some(f) => f.sev_metadata_offset()?,
            None => None,
        })
    }
}

/// Where the three images sit below 4 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvsmLayout {
    /// The OVMF image's size: it ends at 4 GiB.
    pub ovmf_len: u64,
    /// The OVMF_VARS flash's size (pflash unit 1): it ends where OVMF begins.
    pub vars_len: u64,
    /// The SVSM image's size: it ends where OVMF_VARS begins.
    pub svsm_len: u64,
}

impl SvsmLayout {
    /// The SVSM image's GPA, after checking that every size is whole pages
    /// and that the image fits above GPA 0. A positive vars size keeps the
    /// SVSM image and OVMF apart.
    pub fn svsm_gpa(&self) -> Result<u64, SvsmError> {
        let page = PAGE_LEN as u64;
        let ovmf_gpa = firmware_gpa(self.ovmf_len)?;
        if self.vars_len == 0 || self.vars_len % page != 0 {
            return Err(SvsmError::VarsSize(self.vars_len));
        }
        if self.svsm_len == 0 || self.svsm_len % page != 0 || self.svsm_len > FOUR_GIB {
            return Err(SvsmError::SvsmSize(self.svsm_len));
        }
        let end = ovmf_gpa.checked_sub(self.vars_len);
        end.and_then(|e| e.checked_sub(self.svsm_len))
            .ok_or(SvsmError::DoesNotFit {
                ovmf_len: self.ovmf_len,
                vars_len: self.vars_len,
                svsm_len: self.svsm_len,
                room: end.unwrap_or(0),
            })
    }
}

/// An OVMF + SVSM launch beyond the images' pages.
#[derive(Debug, Clone, Copy)]
pub struct SvsmLaunch<'a> {
    /// The SVSM image's footer table and metadata.
    pub image: &'a SvsmImage,
    /// The images' sizes.
    pub layout: SvsmLayout,
    /// Number of vCPUs: one VMSA page each, 1 to [`MAX_VCPUS`].
    pub vcpus: u32,
    /// CPUID(1).EAX of the vCPU model, loaded into RDX.
    pub cpu_signature: u32,
}

/// Checks everything [`svsm_launch_digest`] could refuse, without hashing;
/// returns the SVSM image's GPA.
pub fn check_svsm_launch(l: &SvsmLaunch) -> Result<u64, SvsmError> {
    if l.vcpus == 0 || l.vcpus > MAX_VCPUS {
        return Err(SnpError::Vcpus(l.vcpus).into());
    }
    let gpa = l.layout.svsm_gpa()?;
    if u64::from(l.image.entry_offset) >= l.layout.svsm_len {
        return Err(SvsmError::EntryOutside {
            offset: l.image.entry_offset,
            len: l.layout.svsm_len,
        });
    }
    for (i, s) in l.image.sections.iter().enumerate() {
        check_section(i, s)?;
    }
    Ok(gpa)
}

/// Continues `gctx` (after the OVMF image) with steps 2 and 3: the SVSM
/// image's pages, whose digests are `pages`, at `svsm_gpa`, then its
/// metadata sections as QEMU adds them. The sections must have passed
/// [`check_svsm_launch`].
pub fn measure_svsm_image(gctx: &mut GuestContext, image: &SvsmImage, svsm_gpa: u64, pages: &[Ld]) {
    let mut gpa = svsm_gpa;
    for d in pages {
        gctx.update(PageType::Normal, gpa, d);
        gpa += PAGE_LEN as u64;
    }
    for s in &image.sections {
        measure_section(gctx, s, false, None);
    }
}

/// The CONTENTS of every vCPU's VMSA page when the SVSM image is at
/// `svsm_gpa`: the entry point moves with the image.
pub fn svsm_vmsa_contents(image: &SvsmImage, svsm_gpa: u64, cpu_signature: u32) -> Ld {
    let rip = svsm_gpa + u64::from(image.entry_offset);
    sha384(&vmsa::build_svsm(cpu_signature, rip)[..])
}

/// The launch digest of an OVMF + SVSM guest whose OVMF image measured to
/// `ovmf_hash` (see [`ovmf_hash`](super::ovmf_hash)) and whose SVSM image's
/// pages have the digests `pages`.
pub fn svsm_launch_digest(ovmf_hash: Ld, pages: &[Ld], l: &SvsmLaunch) -> Result<Ld, SvsmError> {
    let svsm_gpa = check_svsm_launch(l)?;
    if (pages.len() as u64).checked_mul(PAGE_LEN as u64) != Some(l.layout.svsm_len) {
        return Err(SvsmError::Pages {
            pages: pages.len(),
            len: l.layout.svsm_len,
        });
    }
    let mut gctx = GuestContext::from_ld(ovmf_hash);
    measure_svsm_image(&mut gctx, l.image, svsm_gpa, pages);
    let contents = svsm_vmsa_contents(l.image, svsm_gpa, l.cpu_signature);
    for _ in 0..l.vcpus {
        gctx.update(PageType::Vmsa, VMSA_GPA, &contents);
    }
    Ok(gctx.ld())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snp::fixtures::section;

    fn image() -> SvsmImage {
        SvsmImage {
            sections: vec![
                section(0x80_0000, 0x2000, 1),
                section(0x80_2000, 0x1000, 2),
                section(0x80_3000, 0x1000, 3),
                section(0x80_4000, 0x1000, 4),
            ],
            entry_offset: 0x10,
        }
    }

    fn layout() -> SvsmLayout {
        SvsmLayout {
            ovmf_len: 0x40_0000,
            vars_len: 0x8_4000,
            svsm_len: 0x2000,
        }
    }

    #[test]
    fn layout_refusals() {
        assert_eq!(
            layout().svsm_gpa().unwrap(),
            0xFFC0_0000 - 0x8_4000 - 0x2000
        );
        let with = |f: fn(&mut SvsmLayout)| {
            let mut l = layout();
            f(&mut l);
            l.svsm_gpa()
        };
        assert!(matches!(
            with(|l| l.vars_len = 0),
            Err(SvsmError::VarsSize(0))
        ));
        assert!(matches!(
            with(|l| l.vars_len = 100),
            Err(SvsmError::VarsSize(100))
        ));
        assert!(matches!(
            with(|l| l.svsm_len = 0),
            Err(SvsmError::SvsmSize(0))
        ));
        assert!(matches!(
            with(|l| l.svsm_len = 0x1001),
            Err(SvsmError::SvsmSize(_))
        ));
        assert!(matches!(
            with(|l| l.ovmf_len = 0x1001),
            Err(SvsmError::Snp(SnpError::FirmwareSize(_)))
        ));
        assert!(matches!(
            with(|l| l.vars_len = 0xFFC0_0000),
            Err(SvsmError::DoesNotFit { room: 0, .. })
        ));
        assert!(matches!(
            with(|l| l.vars_len = 0xFFC0_1000),
            Err(SvsmError::DoesNotFit { room: 0, .. })
        ));
        // Exactly down to GPA 0 fits.
        assert_eq!(with(|l| l.vars_len = 0xFFBF_E000).unwrap(), 0);
    }

    #[test]
    fn launch_refusals() {
        let img = image();
        let pages = [[1u8; 48], [2; 48]];
        let launch = |vcpus, image| SvsmLaunch {
            image,
            layout: layout(),
            vcpus,
            cpu_signature: 0xA00F11,
        };
        assert!(svsm_launch_digest([0; 48], &pages, &launch(2, &img)).is_ok());
        assert!(matches!(
            svsm_launch_digest([0; 48], &pages, &launch(0, &img)),
            Err(SvsmError::Snp(SnpError::Vcpus(0)))
        ));
        assert!(matches!(
            svsm_launch_digest([0; 48], &pages[..1], &launch(1, &img)),
            Err(SvsmError::Pages { pages: 1, .. })
        ));
        let mut far = image();
        far.entry_offset = 0x2000;
        assert!(matches!(
            svsm_launch_digest([0; 48], &pages, &launch(1, &far)),
            Err(SvsmError::EntryOutside { .. })
        ));
        let mut bad = image();
        bad.sections[1].size = 0x800;
        assert!(matches!(
            svsm_launch_digest([0; 48], &pages, &launch(1, &bad)),
            Err(SvsmError::Snp(SnpError::BadSection { index: 1, .. }))
        ));
    }

    #[test]
    fn the_chain_in_its_order() {
        // Written out page by page from measurement.md §6 and the module doc.
        let img = image();
        let pages = [[1u8; 48], [2; 48]];
        let gpa = layout().svsm_gpa().unwrap();
        let mut g = GuestContext::from_ld([9; 48]);
        g.update(PageType::Normal, gpa, &pages[0]);
        g.update(PageType::Normal, gpa + 0x1000, &pages[1]);
        g.update(PageType::Zero, 0x80_0000, &[0; 48]);
        g.update(PageType::Zero, 0x80_1000, &[0; 48]);
        g.update(PageType::Secrets, 0x80_2000, &[0; 48]);
        g.update(PageType::Cpuid, 0x80_3000, &[0; 48]);
        g.update(PageType::Zero, 0x80_4000, &[0; 48]);
        let vmsa = sha384(&vmsa::build_svsm(0xA00F11, gpa + 0x10)[..]);
        for _ in 0..3 {
            g.update(PageType::Vmsa, VMSA_GPA, &vmsa);
        }
        let l = SvsmLaunch {
            image: &img,
            layout: layout(),
            vcpus: 3,
            cpu_signature: 0xA00F11,
        };
        assert_eq!(svsm_launch_digest([9; 48], &pages, &l).unwrap(), g.ld());
    }

    #[test]
    fn image_parsing() {
        let meta_at = 0x400u32;
        let mut tail = vec![0u8; 0x1000];
        let n = tail.len();
        let meta = n - meta_at as usize;
        tail[meta..meta + 4].copy_from_slice(b"ASEV");
        for (i, v) in [28u32, 1, 1, 0x80_0000, 0x1000, 2].iter().enumerate() {
            tail[meta + 4 + 4 * i..meta + 8 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        let footer = |entries: &[(uuid::Uuid, Vec<u8>)]| {
            let mut t = tail.clone();
            let f = ovmf::lay_out_footer(entries);
            t[n - f.len()..].copy_from_slice(&f);
            t
        };
        let info = (guid::SVSM_INFO, 0x1234u32.to_le_bytes().to_vec());
        let md = (guid::OVMF_SEV_METADATA, meta_at.to_le_bytes().to_vec());
        let img = SvsmImage::parse(&footer(&[info.clone(), md.clone()])).unwrap();
        assert_eq!(img.entry_offset, 0x1234);
        assert_eq!(img.sections, vec![section(0x80_0000, 0x1000, 2)]);
        assert!(matches!(SvsmImage::parse(&tail), Err(SvsmError::NoFooter)));
        assert!(matches!(
            SvsmImage::parse(&footer(std::slice::from_ref(&md))),
            Err(SvsmError::NoSvsmInfo)
        ));
        assert!(matches!(
            SvsmImage::parse(&footer(std::slice::from_ref(&info))),
            Err(SvsmError::NoMetadata)
        ));
        let short = (guid::SVSM_INFO, vec![1, 2]);
        assert!(matches!(
            SvsmImage::parse(&footer(&[short, md.clone()])),
            Err(SvsmError::Ovmf(OvmfError::ShortEntry { .. }))
        ));
        let far = (guid::OVMF_SEV_METADATA, 0x2000u32.to_le_bytes().to_vec());
        assert!(matches!(
            SvsmImage::parse(&footer(&[info, far])),
            Err(SvsmError::MetadataBeyondTail { offset: 0x2000, .. })
        ));
    }
}
