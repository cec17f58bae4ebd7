//! Steps 2 and 3 of the launch digest: what the firmware's footer table and
//! SEV metadata list, and how QEMU adds each metadata section's pages.

use super::{check_launch, GuestContext, PageType, SnpError, SnpLaunch, PAGE_LEN};
use crate::core::kernel_hashes::PADDED_TABLE_LEN;
use crate::core::ovmf::{self, FooterTable, GuestArea, MetadataSection};

/// What the firmware's footer table and SEV metadata tell about an SNP launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpFirmware {
    /// The SEV metadata sections, in table order.
    pub sections: Vec<MetadataSection>,
    /// The SEV-ES reset block: where the application processors start.
    pub ap_reset_eip: Option<u32>,
    /// The area QEMU places the kernel hashes table in (base != 0, size >= 176).
    pub kernel_hash_area: Option<GuestArea>,
}

impl SnpFirmware {
    /// Reads the footer table and the SEV metadata from `tail`, the last bytes
    /// of the image (the whole image if it is smaller than
    /// [`ovmf::FOOTER_TAIL_LEN`]). The metadata must lie within `tail`: see
    /// [`SnpFirmware::metadata_offset`] to learn how much to read.
    pub fn parse(tail: &[u8]) -> Result<SnpFirmware, SnpError> {
        let footer = FooterTable::parse(tail)?.ok_or(SnpError::NoFooter)?;
        let offset = footer.sev_metadata_offset()?.ok_or(SnpError::NoMetadata)?;
        if offset as usize > tail.len() {
            return Err(SnpError::MetadataBeyondTail {
                offset,
                tail: tail.len(),
            });
        }
        Ok(SnpFirmware {
            sections: ovmf::parse_sev_metadata(tail, offset)?,
            ap_reset_eip: footer.sev_es_reset_addr()?,
            kernel_hash_area: footer.kernel_hash_area()?,
        })
    }

    /// How many bytes from the end of the image the SEV metadata starts, if the
    /// footer table in `tail` names it: a caller whose tail is shorter reads
    /// that many bytes and parses again.
    pub fn metadata_offset(tail: &[u8]) -> Result<Option<u32>, SnpError> {
        Ok(match FooterTable::parse(tail)? {
            Some(f) => f.sev_metadata_offset()?,
            None => None,
        })
    }
}

/// Measures one metadata section the way QEMU adds it.
pub(super) fn measure_section(
    gctx: &mut GuestContext,
    s: &MetadataSection,
    sec_mem_unmeasured: bool,
    kernel_page: Option<&[u8; PAGE_LEN]>,
) {
    let (gpa, size) = (u64::from(s.gpa), u64::from(s.size));
    match s.kind {
        MetadataSection::SNP_SEC_MEM if sec_mem_unmeasured => {
            gctx.update_contentless_pages(PageType::Unmeasured, gpa, size)
        }
        MetadataSection::SNP_SECRETS => gctx.update_contentless_pages(PageType::Secrets, gpa, size),
        MetadataSection::CPUID => gctx.update_contentless_pages(PageType::Cpuid, gpa, size),
        MetadataSection::SNP_KERNEL_HASHES => match kernel_page {
            // QEMU zeroes the whole section, copies the table in and adds it as NORMAL pages.
            Some(first) => {
                gctx.update_normal_page(gpa, first);
                let zero = [0u8; PAGE_LEN];
                let mut off = PAGE_LEN as u64;
                while off < size {
                    gctx.update_normal_page(gpa + off, &zero);
                    off += PAGE_LEN as u64;
                }
            }
            None => gctx.update_contentless_pages(PageType::Zero, gpa, size),
        },
        // SNP_SEC_MEM, SVSM_CAA and every type QEMU does not know: ZERO pages.
        _ => gctx.update_contentless_pages(PageType::Zero, gpa, size),
    }
}

/// The page QEMU measures for SNP_KERNEL_HASHES: zeros with the 176-byte
/// table at the hash area's offset within its page.
pub fn kernel_hashes_page(table: &[u8; PADDED_TABLE_LEN], area: GuestArea) -> [u8; PAGE_LEN] {
    let mut page = [0u8; PAGE_LEN];
    let offset = (area.base as usize) & (PAGE_LEN - 1);
    let end = (offset + PADDED_TABLE_LEN).min(PAGE_LEN);
    page[offset..end].copy_from_slice(&table[..end - offset]);
    page
}

/// Continues `gctx` (after the firmware) with the metadata sections alone
/// (steps 2 and 3, no VMSA): a caller trying many vCPU states continues
/// clones of the result with [`vmsa_contents`](super::vmsa_contents) and
/// [`GuestContext::update`].
pub fn measure_sections(
    gctx: &mut GuestContext,
    fw: &SnpFirmware,
    launch: &SnpLaunch,
) -> Result<(), SnpError> {
    check_launch(fw, launch)?;
    let kernel_page = match (launch.kernel, fw.kernel_hash_area) {
        (Some(k), Some(area)) => Some(kernel_hashes_page(&k.padded_table(), area)),
        _ => None,
    };
    for s in &fw.sections {
        if launch.vmm.cpuid_last && s.kind == MetadataSection::CPUID {
            continue;
        }
        measure_section(gctx, s, launch.vmm.sec_mem_unmeasured, kernel_page.as_ref());
    }
    if launch.vmm.cpuid_last {
        for s in fw
            .sections
            .iter()
            .filter(|s| s.kind == MetadataSection::CPUID)
        {
            gctx.update_contentless_pages(PageType::Cpuid, u64::from(s.gpa), u64::from(s.size));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snp::fixtures::{fw, launch, section};
    use crate::core::snp::launch_digest;

    #[test]
    fn unknown_section_types_are_zero_pages() {
        let mut a = fw();
        a.sections[3].kind = 0x77;
        let b = fw(); // SVSM_CAA: ZERO pages too
        assert_eq!(
            launch_digest([0; 48], &a, &launch(1)).unwrap(),
            launch_digest([0; 48], &b, &launch(1)).unwrap()
        );
    }

    #[test]
    fn multi_page_secrets_measure_every_page() {
        let mut a = fw();
        a.sections[1].size = 0x2000;
        a.sections[2].gpa = 0x80F000;
        a.sections.remove(3);
        let mut b = a.clone();
        b.sections[1].size = 0x1000;
        b.sections.insert(2, section(0x80E000, 0x1000, 2));
        assert_eq!(
            launch_digest([0; 48], &a, &launch(1)).unwrap(),
            launch_digest([0; 48], &b, &launch(1)).unwrap()
        );
    }

    #[test]
    fn kernel_page_places_the_table_at_the_area_offset() {
        let table = [0xAB; PADDED_TABLE_LEN];
        let page = kernel_hashes_page(
            &table,
            GuestArea {
                base: 0x80FC00,
                size: 0x400,
            },
        );
        assert!(page[..0xC00].iter().all(|&b| b == 0));
        assert_eq!(&page[0xC00..0xC00 + 176], &table[..]);
        assert!(page[0xC00 + 176..].iter().all(|&b| b == 0));
    }
}
