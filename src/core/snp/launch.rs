//! The launch beyond the firmware (vCPUs, VMM, VMSA, kernel), the checks
//! it must pass, and step 4 of the launch digest: one VMSA page per vCPU.

use super::{measure_sections, sha384, GuestContext, Ld, PageType, SnpError, SnpFirmware};
use super::{FOUR_GIB, MAX_VCPUS, PAGE_LEN, VMSA_GPA};
use crate::core::kernel_hashes::{KernelHashes, PADDED_TABLE_LEN};
use crate::core::ovmf::MetadataSection;
use crate::core::vmsa::{self, VmmProfile, VmsaConfig};

/// The launch of one SNP guest, beyond its firmware.
#[derive(Debug, Clone, Copy)]
pub struct SnpLaunch<'a> {
    /// Number of vCPUs: one VMSA page each, 1 to [`super::MAX_VCPUS`].
    pub vcpus: u32,
    /// The VMM's register values and page order ([`vmsa::VmmType::profile`]).
    pub vmm: VmmProfile,
    /// The VMSA form, vCPU signature and SEV_FEATURES (the guest features).
    pub vmsa: VmsaConfig,
    /// With measured direct boot (`-kernel`), the kernel, initrd and cmdline hashes.
    pub kernel: Option<&'a KernelHashes>,
}

pub(super) fn check_section(index: usize, s: &MetadataSection) -> Result<(), SnpError> {
    let page = PAGE_LEN as u64;
    let (gpa, size) = (u64::from(s.gpa), u64::from(s.size));
    if gpa % page != 0 || size == 0 || size % page != 0 || gpa + size > FOUR_GIB {
        return Err(SnpError::BadSection {
            index,
            gpa: s.gpa,
            size: s.size,
            kind: s.kind,
        });
    }
    Ok(())
}

/// Checks everything [`launch_digest`] could refuse, without hashing.
pub fn check_launch(fw: &SnpFirmware, launch: &SnpLaunch) -> Result<(), SnpError> {
    if launch.vcpus == 0 || launch.vcpus > MAX_VCPUS {
        return Err(SnpError::Vcpus(launch.vcpus));
    }
    for (i, s) in fw.sections.iter().enumerate() {
        check_section(i, s)?;
    }
    if fw.ap_reset_eip.is_none() {
        return Err(SnpError::NoResetBlock);
    }
    if launch.kernel.is_some() {
        let sections: Vec<_> = fw
            .sections
            .iter()
            .filter(|s| s.kind == MetadataSection::SNP_KERNEL_HASHES)
            .collect();
        if sections.is_empty() {
            return Err(SnpError::NoKernelHashesSection);
        }
        let area = fw.kernel_hash_area.ok_or(SnpError::NoKernelHashArea)?;
        let offset = area.base & (PAGE_LEN as u32 - 1);
        for s in sections {
            if offset as usize + PADDED_TABLE_LEN > s.size as usize {
                return Err(SnpError::KernelTableDoesNotFit {
                    offset,
                    size: s.size,
                });
            }
        }
    }
    Ok(())
}

/// Continues `gctx` (after the firmware) with the metadata sections and the VMSA pages.
pub fn measure_launch(
    gctx: &mut GuestContext,
    fw: &SnpFirmware,
    launch: &SnpLaunch,
) -> Result<(), SnpError> {
    measure_sections(gctx, fw, launch)?;
    let ap_eip = fw.ap_reset_eip.ok_or(SnpError::NoResetBlock)?;
    let bsp = vmsa::build_profile(&launch.vmm, &launch.vmsa, vmsa::BSP_RESET_EIP);
    gctx.update_vmsa_page(&bsp);
    if launch.vcpus > 1 {
        let ap = vmsa::build_profile(&launch.vmm, &launch.vmsa, ap_eip);
        let contents = sha384(&ap[..]);
        for _ in 1..launch.vcpus {
            gctx.update(PageType::Vmsa, VMSA_GPA, &contents);
        }
    }
    Ok(())
}

/// The CONTENTS of the boot vCPU's VMSA page and of every other vCPU's, as
/// [`measure_launch`] measures them (type VMSA at [`VMSA_GPA`]).
pub fn vmsa_contents(
    fw: &SnpFirmware,
    vmm: &VmmProfile,
    cfg: &VmsaConfig,
) -> Result<(Ld, Ld), SnpError> {
    let ap_eip = fw.ap_reset_eip.ok_or(SnpError::NoResetBlock)?;
    let bsp = vmsa::build_profile(vmm, cfg, vmsa::BSP_RESET_EIP);
    let ap = vmsa::build_profile(vmm, cfg, ap_eip);
    Ok((sha384(&bsp[..]), sha384(&ap[..])))
}

/// The SNP launch digest of a guest whose firmware measured to `ovmf_hash`
/// (see [`ovmf_hash`](super::ovmf_hash); a precomputed value works the same).
pub fn launch_digest(ovmf_hash: Ld, fw: &SnpFirmware, launch: &SnpLaunch) -> Result<Ld, SnpError> {
    let mut gctx = GuestContext::from_ld(ovmf_hash);
    measure_launch(&mut gctx, fw, launch)?;
    Ok(gctx.ld())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ovmf::GuestArea;
    use crate::core::snp::fixtures::{fw, launch};

    #[test]
    fn refusals() {
        let hashes = KernelHashes {
            kernel: [1; 32],
            initrd: [2; 32],
            cmdline: [3; 32],
        };
        let mut f = fw();
        assert!(launch_digest([0; 48], &f, &launch(1)).is_ok());
        assert!(matches!(
            launch_digest([0; 48], &f, &launch(0)),
            Err(SnpError::Vcpus(0))
        ));
        let with_kernel = SnpLaunch {
            kernel: Some(&hashes),
            ..launch(2)
        };
        assert!(launch_digest([0; 48], &f, &with_kernel).is_ok());
        f.kernel_hash_area = Some(GuestArea {
            base: 0x810F80,
            size: 0x400,
        });
        assert!(matches!(
            launch_digest([0; 48], &f, &with_kernel),
            Err(SnpError::KernelTableDoesNotFit { offset: 0xF80, .. })
        ));
        f.kernel_hash_area = None;
        assert!(matches!(
            launch_digest([0; 48], &f, &with_kernel),
            Err(SnpError::NoKernelHashArea)
        ));
        f.sections.pop();
        assert!(matches!(
            launch_digest([0; 48], &f, &with_kernel),
            Err(SnpError::NoKernelHashesSection)
        ));
        let mut f = fw();
        f.sections[1].size = 0x800;
        assert!(matches!(
            launch_digest([0; 48], &f, &launch(1)),
            Err(SnpError::BadSection { index: 1, .. })
        ));
        let mut f = fw();
        f.sections[0].gpa = 0xFFFF_F000;
        f.sections[0].size = 0x2000;
        assert!(matches!(
            launch_digest([0; 48], &f, &launch(1)),
            Err(SnpError::BadSection { index: 0, .. })
        ));
        let mut f = fw();
        f.ap_reset_eip = None;
        assert!(matches!(
            launch_digest([0; 48], &f, &launch(1)),
            Err(SnpError::NoResetBlock)
        ));
    }

    #[test]
    fn sections_then_vmsa_contents_is_the_launch_digest() {
        let hashes = KernelHashes {
            kernel: [1; 32],
            initrd: [2; 32],
            cmdline: [3; 32],
        };
        for kernel in [None, Some(&hashes)] {
            let l = SnpLaunch {
                kernel,
                ..launch(3)
            };
            let mut g = GuestContext::from_ld([7; 48]);
            measure_sections(&mut g, &fw(), &l).unwrap();
            let (bsp, ap) = vmsa_contents(&fw(), &l.vmm, &l.vmsa).unwrap();
            for c in [bsp, ap, ap] {
                g.update(PageType::Vmsa, VMSA_GPA, &c);
            }
            assert_eq!(g.ld(), launch_digest([7; 48], &fw(), &l).unwrap());
        }
    }
}
