//! The walk over an IGVM file's directives that QEMU's loader makes for
//! an SEV-SNP guest (`backends/igvm.c`), recording what each hands to
//! SNP_LAUNCH_UPDATE.

use std::collections::HashMap;

use igvm::IgvmDirectiveHeader;
use igvm_defs::{IgvmPageDataFlags, IgvmPageDataType};
use zerocopy::IntoBytes;

use super::{
    applies, data_type_number, FileVmsa, Finding, IgvmError, IgvmIdBlock, IgvmLaunch, Import, Jump,
    MeasuredPage, KVM_VMSA_GPA, MAX_MEASURED_PAGES, PAGE_2M,
};
use crate::core::snp::{sha384, sha384_parts, Ld, LD_LEN, PAGE_LEN};

const PAGE: u64 = PAGE_LEN as u64;

/// The state of the walk.
struct Loader {
    mask: u32,
    zero_page: Ld,
    launch: IgvmLaunch,
    /// Parameter areas by index: their size, and whether QEMU has inserted them.
    areas: HashMap<u32, (u64, bool)>,
    /// The region of page directives QEMU holds back: it hands a region to
    /// SNP_LAUNCH_UPDATE only when a later page directive ends it (or after
    /// the last directive), while a parameter insert goes at once, so an
    /// insert is measured before the region pending when it comes.
    region: Option<Region>,
}

/// QEMU's pending region (`qigvm_process_mem_page`): where its pages start
/// in the launch, and its last page directive.
struct Region {
    start: usize,
    last: RegionPage,
}

/// What `qigvm_page_attrs_equal` and the contiguity test compare.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RegionPage {
    directive: usize,
    gpa: u64,
    len: u64,
    flags: u32,
    data_type: u32,
    mask: u32,
    has_data: bool,
}

impl RegionPage {
    /// Whether QEMU adds `next` to the region this page ends.
    fn continued_by(&self, next: &RegionPage) -> bool {
        self.directive + 1 == next.directive
            && self.gpa.wrapping_add(self.len) == next.gpa
            && (self.flags, self.data_type, self.mask, self.has_data)
                == (next.flags, next.data_type, next.mask, next.has_data)
    }
}

/// Lays out the SEV-SNP launch of `directives` for the platform bit `mask`.
pub(super) fn load(directives: &[IgvmDirectiveHeader], mask: u32) -> Result<IgvmLaunch, IgvmError> {
    let mut l = Loader {
        mask,
        zero_page: sha384(&[0u8; PAGE_LEN]),
        launch: IgvmLaunch {
            compatibility_mask: mask,
            policy: None,
            pages: Vec::new(),
            vmsas: Vec::new(),
            id_block: None,
            jumps: Vec::new(),
            findings: Vec::new(),
            directive_count: directives.len(),
        },
        areas: HashMap::new(),
        region: None,
    };
    for (i, d) in directives.iter().enumerate() {
        l.directive(i, d)?;
    }
    l.launch.vmsas.sort_by_key(|v| v.vp_index);
    Ok(l.launch)
}

impl Loader {
    fn directive(&mut self, i: usize, d: &IgvmDirectiveHeader) -> Result<(), IgvmError> {
        // Parameter areas have no compatibility mask: QEMU records them all.
        if let IgvmDirectiveHeader::ParameterArea {
            number_of_bytes,
            parameter_area_index,
            ..
        } = d
        {
            self.areas
                .insert(*parameter_area_index, (*number_of_bytes, false));
            return Ok(());
        }
        if !applies(d, self.mask) {
            return Ok(());
        }
        match d {
            IgvmDirectiveHeader::PageData {
                gpa,
                compatibility_mask,
                flags,
                data_type,
                data,
            } => {
                self.region_for(RegionPage {
                    directive: i,
                    gpa: *gpa,
                    len: if flags.is_2mb_page() { PAGE_2M } else { PAGE },
                    flags: u32::from(*flags),
                    data_type: data_type_number(*data_type),
                    mask: *compatibility_mask,
                    has_data: !data.is_empty(),
                });
                self.page_data(i, *gpa, *flags, *data_type, data)
            }
            IgvmDirectiveHeader::ParameterInsert(p) => {
                self.parameter_insert(i, p.gpa, p.parameter_area_index)
            }
            IgvmDirectiveHeader::SnpVpContext {
                gpa,
                vp_index,
                vmsa,
                ..
            } => self.vmsa(i, *gpa, *vp_index, vmsa.as_bytes()),
            IgvmDirectiveHeader::SnpIdBlock { .. } => {
                self.id_block(i, d);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn page_data(
        &mut self,
        i: usize,
        gpa: u64,
        flags: IgvmPageDataFlags,
        data_type: IgvmPageDataType,
        data: &[u8],
    ) -> Result<(), IgvmError> {
        let import = match data_type {
            IgvmPageDataType::NORMAL if flags.unmeasured() => Import::Unmeasured,
            IgvmPageDataType::NORMAL if data.is_empty() => Import::Zero,
            IgvmPageDataType::NORMAL => Import::Data,
            IgvmPageDataType::SECRETS => Import::Secrets,
            IgvmPageDataType::CPUID_DATA | IgvmPageDataType::CPUID_XF => Import::Cpuid,
            other => {
                return Err(IgvmError::PageDataType {
                    directive: i,
                    gpa,
                    data_type: data_type_number(other),
                })
            }
        };
        if !self.launch.vmsas.is_empty() {
            self.launch
                .findings
                .push(Finding::PageAfterVmsa { directive: i });
        }
        if flags.shared() {
            self.launch
                .findings
                .push(Finding::SharedPage { directive: i, gpa });
        }
        let len = if flags.is_2mb_page() { PAGE_2M } else { PAGE };
        self.room_for(len / PAGE, i)?;
        if flags.is_2mb_page() && import != Import::Data && import != Import::Zero {
            self.launch.findings.push(Finding::LargeSpecialPage {
                directive: i,
                gpa,
                kind: import.name(),
            });
        }
        for off in (0..len).step_by(PAGE_LEN) {
            let contents = match import {
                Import::Data => self.data_page_hash(data, off as usize),
                Import::Zero => self.zero_page,
                _ => [0; LD_LEN],
            };
            self.push_page(gpa.wrapping_add(off), import, contents, i);
        }
        Ok(())
    }

    /// The page directive `p` extends QEMU's pending region, or starts the
    /// next one at the end of the launch so far.
    fn region_for(&mut self, p: RegionPage) {
        let start = match &self.region {
            Some(r) if r.last.continued_by(&p) => r.start,
            _ => self.launch.pages.len(),
        };
        self.region = Some(Region { start, last: p });
    }

    /// SHA-384 of the 4 KiB page at `off` of a directive's data, zero-padded
    /// as QEMU pads short data.
    fn data_page_hash(&self, data: &[u8], off: usize) -> Ld {
        let chunk = data.get(off..).unwrap_or(&[]);
        let chunk = &chunk[..chunk.len().min(PAGE_LEN)];
        if chunk.is_empty() {
            return self.zero_page;
        }
        sha384_parts(&[chunk, &[0u8; PAGE_LEN][..PAGE_LEN - chunk.len()]])
    }

    /// Whether `n` more pages stay within [`MAX_MEASURED_PAGES`].
    fn room_for(&self, n: u64, directive: usize) -> Result<(), IgvmError> {
        if (self.launch.pages.len() as u64).saturating_add(n) > MAX_MEASURED_PAGES {
            return Err(IgvmError::TooManyPages { directive });
        }
        Ok(())
    }

    fn push_page(&mut self, gpa: u64, import: Import, contents: Ld, directive: usize) {
        self.launch.pages.push(MeasuredPage {
            gpa,
            import,
            contents,
            directive,
        });
    }

    /// QEMU copies the parameter area to `gpa` and imports all of it as
    /// UNMEASURED; an insert of an unknown area is skipped with a warning.
    fn parameter_insert(&mut self, i: usize, gpa: u64, area: u32) -> Result<(), IgvmError> {
        if !self.launch.vmsas.is_empty() {
            self.launch
                .findings
                .push(Finding::PageAfterVmsa { directive: i });
        }
        let Some((size, inserted)) = self.areas.get_mut(&area) else {
            self.launch
                .findings
                .push(Finding::MissingParameterArea { directive: i, area });
            return Ok(());
        };
        let (size, reused) = (*size, std::mem::replace(inserted, true));
        self.room_for(size.div_ceil(PAGE), i)?;
        if reused {
            self.launch
                .findings
                .push(Finding::ParameterAreaReused { directive: i, area });
        }
        if size % PAGE != 0 || size == 0 {
            self.launch.findings.push(Finding::ParameterAreaSize {
                directive: i,
                area,
                size,
            });
        }
        let pages: Vec<MeasuredPage> = (0..size)
            .step_by(PAGE_LEN)
            .map(|off| MeasuredPage {
                gpa: gpa.wrapping_add(off),
                import: Import::Parameter(area),
                contents: [0; LD_LEN],
                directive: i,
            })
            .collect();
        // Measured at once, before the page region QEMU still holds.
        let at = self
            .region
            .as_ref()
            .map_or(self.launch.pages.len(), |r| r.start);
        let n = pages.len();
        self.launch.pages.splice(at..at, pages);
        if let Some(r) = &mut self.region {
            r.start += n;
            let end = self.launch.pages.len();
            match self.launch.jumps.last_mut() {
                // A second insert before the same region.
                Some(j) if j.region.start == at => {
                    j.inserts.end += n;
                    j.region = at + n..end;
                }
                _ if at + n < end => self.launch.jumps.push(Jump {
                    inserts: at..at + n,
                    region: at + n..end,
                }),
                _ => {}
            }
        }
        Ok(())
    }

    fn vmsa(&mut self, i: usize, gpa: u64, vp_index: u16, bytes: &[u8]) -> Result<(), IgvmError> {
        if self.launch.vmsas.iter().any(|v| v.vp_index == vp_index) {
            return Err(IgvmError::DuplicateVmsa(vp_index));
        }
        if gpa != KVM_VMSA_GPA {
            self.launch
                .findings
                .push(Finding::VmsaGpa { directive: i, gpa });
        }
        let mut page = Box::new([0u8; PAGE_LEN]);
        let n = bytes.len().min(PAGE_LEN);
        page[..n].copy_from_slice(&bytes[..n]);
        self.launch.vmsas.push(FileVmsa {
            vp_index,
            directive: i,
            file_gpa: gpa,
            page,
        });
        Ok(())
    }

    fn id_block(&mut self, i: usize, d: &IgvmDirectiveHeader) {
        let IgvmDirectiveHeader::SnpIdBlock {
            author_key_enabled,
            ld,
            family_id,
            image_id,
            guest_svn,
            ..
        } = d
        else {
            return;
        };
        if self.launch.id_block.is_some() {
            // QEMU: "Multiple ID blocks encountered in IGVM file."
            self.launch
                .findings
                .push(Finding::SecondIdBlock { directive: i });
            return;
        }
        self.launch.id_block = Some(IgvmIdBlock {
            directive: i,
            ld: *ld,
            family_id: *family_id,
            image_id: *image_id,
            guest_svn: *guest_svn,
            author_key_enabled: *author_key_enabled != 0,
        });
    }
}
