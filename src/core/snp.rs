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

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::mpsc;

use sha2::{Digest, Sha384};

use super::kernel_hashes::{KernelHashes, PADDED_TABLE_LEN};
use super::ovmf::{self, FooterTable, GuestArea, MetadataSection, OvmfError};
use super::vmsa::{self, VmmProfile, VmsaConfig, VMSA_LEN};

/// Length of the launch digest (SHA-384).
pub const LD_LEN: usize = 48;
/// The page size SNP_LAUNCH_UPDATE measures in.
pub const PAGE_LEN: usize = 4096;
/// The GPA recorded for VMSA pages: (u64)-1, page-aligned, bits above 51 cleared.
pub const VMSA_GPA: u64 = 0x0000_FFFF_FFFF_F000;
/// More vCPUs than any SNP launch has.
pub const MAX_VCPUS: u32 = 512;

const FOUR_GIB: u64 = 1 << 32;
const PAGE_INFO_LEN: usize = 0x70;

/// A launch digest value.
pub type Ld = [u8; LD_LEN];

/// The PAGE_TYPE of a PAGE_INFO (SNP ABI, SNP_LAUNCH_UPDATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PageType {
    /// Contents measured: CONTENTS = SHA-384 of the page.
    Normal = 1,
    /// A vCPU save area: CONTENTS = SHA-384 of the page.
    Vmsa = 2,
    /// Zero-filled by the firmware; CONTENTS = 0.
    Zero = 3,
    /// Not measured; CONTENTS = 0.
    Unmeasured = 4,
    /// The SNP secrets page; CONTENTS = 0.
    Secrets = 5,
    /// The CPUID page; CONTENTS = 0.
    Cpuid = 6,
}

/// Why an SNP launch digest cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum SnpError {
    #[error("the firmware image is {0} bytes; SNP measures whole 4096-byte pages, so its size must be a non-zero multiple of 4096 no larger than 4 GiB")]
    FirmwareSize(u64),
    #[error("reading the firmware image failed: {0}")]
    Io(#[from] io::Error),
    #[error("the firmware image ended after {read} of its {len} bytes")]
    FirmwareTruncated { read: u64, len: u64 },
    #[error(transparent)]
    Ovmf(#[from] OvmfError),
    #[error("the firmware has no OVMF footer table, so it has no SEV metadata: QEMU cannot launch an SEV-SNP guest with it; use an OVMF build with SEV-SNP support (edk2 OvmfPkgX64 or AmdSevX64 since 2022)")]
    NoFooter,
    #[error("the firmware has no SEV metadata (OVMF footer entry dc886566-984a-4798-a75e-5585a7bf67cc), which lists the pages QEMU must add for SNP: QEMU cannot launch an SEV-SNP guest with it; use an OVMF build with SEV-SNP support (edk2 OvmfPkgX64 or AmdSevX64 since 2022)")]
    NoMetadata,
    #[error("the SEV metadata is {offset:#x} bytes from the end of the image, beyond the {tail:#x} bytes read")]
    MetadataBeyondTail { offset: u32, tail: usize },
    #[error("the firmware has no SEV-ES reset block (OVMF footer entry 00f771de-1a7e-4fcb-890e-68c77e2fb44e) or it is zero, so QEMU cannot start the vCPUs of an SEV-SNP guest with it")]
    NoResetBlock,
    #[error("SEV-SNP metadata section {index} (gpa {gpa:#x}, size {size:#x}, type {kind:#x}) is not made of whole pages: its address and size must be non-zero multiples of 4096 below 4 GiB")]
    BadSection {
        index: usize,
        gpa: u32,
        size: u32,
        kind: u32,
    },
    #[error("a kernel was given, but the firmware's SEV metadata has no SNP_KERNEL_HASHES section (type 0x10) to hold the kernel hashes table, so QEMU cannot boot a kernel with measured direct boot in an SEV-SNP guest with it; use a firmware built for it (edk2 AmdSevX64, e.g. OVMF.amdsev.fd) or drop --kernel/--initrd/--append")]
    NoKernelHashesSection,
    #[error("a kernel was given, but the firmware has no usable area for the kernel hashes table (OVMF footer entry 7255371f-3a3b-4b04-927b-1da6efa8d454 is missing, zero or smaller than 176 bytes), so QEMU refuses measured direct boot with it; use a firmware built for it (edk2 AmdSevX64) or drop --kernel/--initrd/--append")]
    NoKernelHashArea,
    #[error("the kernel hashes table (176 bytes at offset {offset:#x} of its page) does not fit in the SNP_KERNEL_HASHES section of {size:#x} bytes")]
    KernelTableDoesNotFit { offset: u32, size: u32 },
    #[error("the number of vCPUs must be between 1 and {MAX_VCPUS}, not {0}")]
    Vcpus(u32),
}

/// The guest context's launch digest as SNP_LAUNCH_UPDATE extends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestContext {
    ld: Ld,
}

impl Default for GuestContext {
    fn default() -> Self {
        GuestContext::new()
    }
}

fn sha384(data: &[u8]) -> Ld {
    Sha384::digest(data).into()
}

impl GuestContext {
    /// A new guest: LD is 48 zero bytes.
    pub fn new() -> GuestContext {
        GuestContext { ld: [0; LD_LEN] }
    }

    /// Continues from a digest computed earlier (e.g. a precomputed OVMF hash).
    pub fn from_ld(ld: Ld) -> GuestContext {
        GuestContext { ld }
    }

    /// The current launch digest.
    pub fn ld(&self) -> Ld {
        self.ld
    }

    /// LD = SHA-384(PAGE_INFO) with PAGE_INFO = LD ‖ CONTENTS ‖ u16 0x70 ‖
    /// u8 type ‖ u8 IMI = 0 ‖ 4 × 0 (VMPL permissions) ‖ u64 GPA.
    pub fn update(&mut self, page_type: PageType, gpa: u64, contents: &Ld) {
        let mut info = [0u8; PAGE_INFO_LEN];
        info[0..48].copy_from_slice(&self.ld);
        info[48..96].copy_from_slice(contents);
        info[0x60..0x62].copy_from_slice(&(PAGE_INFO_LEN as u16).to_le_bytes());
        info[0x62] = page_type as u8;
        info[0x68..0x70].copy_from_slice(&gpa.to_le_bytes());
        self.ld = sha384(&info);
    }

    /// Measures one NORMAL page with its contents.
    pub fn update_normal_page(&mut self, gpa: u64, page: &[u8; PAGE_LEN]) {
        self.update(PageType::Normal, gpa, &sha384(page));
    }

    /// Measures one VMSA page.
    pub fn update_vmsa_page(&mut self, page: &[u8; VMSA_LEN]) {
        self.update(PageType::Vmsa, VMSA_GPA, &sha384(page));
    }

    /// Measures `len / 4096` pages of a type whose CONTENTS is zero (ZERO,
    /// UNMEASURED, SECRETS, CPUID), starting at `gpa`.
    pub fn update_contentless_pages(&mut self, page_type: PageType, gpa: u64, len: u64) {
        debug_assert!(!matches!(page_type, PageType::Normal | PageType::Vmsa));
        let mut off = 0;
        while off < len {
            self.update(page_type, gpa + off, &[0; LD_LEN]);
            off += PAGE_LEN as u64;
        }
    }
}

/// The GPA at which a firmware image of `len` bytes is mapped: it ends at 4 GiB.
pub fn firmware_gpa(len: u64) -> Result<u64, SnpError> {
    if len == 0 || len % PAGE_LEN as u64 != 0 || len > FOUR_GIB {
        return Err(SnpError::FirmwareSize(len));
    }
    Ok(FOUR_GIB - len)
}

/// The "OVMF hash": the launch digest after the firmware image (`len` bytes
/// read from `reader`) is measured as NORMAL pages ending at 4 GiB. The image
/// is read a batch of pages at a time, never held whole.
pub fn ovmf_hash<R: Read>(reader: R, len: u64) -> Result<Ld, SnpError> {
    let mut gctx = GuestContext::new();
    measure_firmware(&mut gctx, reader, len)?;
    Ok(gctx.ld())
}

/// Pages in one batch: what one hashing thread takes at a time (256 KiB).
const BATCH_PAGES: usize = 64;
/// Below this many pages the image is hashed on the calling thread alone:
/// starting threads would cost more than they save.
const PARALLEL_MIN_PAGES: usize = 2 * BATCH_PAGES;
/// The most hashing threads worth starting: SHA-384 of 4 MiB is a few ms.
pub const MAX_HASH_THREADS: usize = 4;

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the next `pages` pages into `buf` (resized to fit), or says where the
/// image ended.
fn read_batch<R: Read>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    pages: usize,
    off: u64,
    len: u64,
) -> Result<(), SnpError> {
    buf.resize(pages * PAGE_LEN, 0);
    let got = read_full(reader, buf)?;
    if got < buf.len() {
        return Err(SnpError::FirmwareTruncated {
            read: off + got as u64,
            len,
        });
    }
    Ok(())
}

/// Hashing threads for the firmware's pages when the caller has no other
/// work running: the machine's cores, at most [`MAX_HASH_THREADS`].
pub fn default_hash_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_HASH_THREADS)
}

/// Measures the firmware image (`len` bytes from `reader`) into `gctx`, on
/// [`default_hash_threads`] threads.
pub fn measure_firmware<R: Read>(
    gctx: &mut GuestContext,
    reader: R,
    len: u64,
) -> Result<(), SnpError> {
    measure_firmware_on(gctx, reader, len, default_hash_threads())
}

/// Measures the firmware image (`len` bytes from `reader`) into `gctx`, with
/// `threads` threads hashing pages. The image is read a batch at a time and
/// never held whole. Each page's own SHA-384 is independent of the others, so
/// batches go to the hashing threads while this thread reads the next ones;
/// only the PAGE_INFO chain runs in order, here. A caller hashing something
/// else at the same time (a kernel) passes fewer threads so the two do not
/// compete for the same cores.
pub fn measure_firmware_on<R: Read>(
    gctx: &mut GuestContext,
    mut reader: R,
    len: u64,
    threads: usize,
) -> Result<(), SnpError> {
    let start = firmware_gpa(len)?;
    let total_pages = (len / PAGE_LEN as u64) as usize;
    let threads = threads.clamp(1, MAX_HASH_THREADS);
    if threads == 1 || total_pages < PARALLEL_MIN_PAGES {
        let mut buf = Vec::with_capacity(BATCH_PAGES * PAGE_LEN);
        let mut off = 0u64;
        while off < len {
            let pages = ((len - off) as usize / PAGE_LEN).min(BATCH_PAGES);
            read_batch(&mut reader, &mut buf, pages, off, len)?;
            for (i, page) in buf.chunks_exact(PAGE_LEN).enumerate() {
                gctx.update(
                    PageType::Normal,
                    start + off + (i * PAGE_LEN) as u64,
                    &sha384(page),
                );
            }
            off += buf.len() as u64;
        }
        return Ok(());
    }

    type Done = (Vec<u8>, Vec<Ld>);
    std::thread::scope(|scope| -> Result<(), SnpError> {
        // One job queue and one result queue per thread: batches go out
        // round-robin and come back in the order they were sent, so the
        // chain needs no reordering.
        let mut jobs = Vec::with_capacity(threads);
        let mut results = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (job_tx, job_rx) = mpsc::channel::<Done>();
            let (done_tx, done_rx) = mpsc::channel::<Done>();
            scope.spawn(move || {
                for (buf, mut digests) in job_rx {
                    digests.clear();
                    digests.extend(buf.chunks_exact(PAGE_LEN).map(sha384));
                    if done_tx.send((buf, digests)).is_err() {
                        break;
                    }
                }
            });
            jobs.push(job_tx);
            results.push(done_rx);
        }
        let stopped = || io::Error::other("a page hashing thread stopped");
        // Two batches in flight per thread: one being hashed, one waiting,
        // so no thread idles while this one reads. That bounds memory to
        // 2 * threads * BATCH_PAGES pages.
        let mut in_flight: VecDeque<usize> = VecDeque::with_capacity(2 * threads);
        // Buffers come back with their digests and are reused: the hashing
        // threads never allocate.
        let mut spare: Vec<Done> = Vec::new();
        let mut chained = start;
        let mut chain_oldest =
            |in_flight: &mut VecDeque<usize>, spare: &mut Vec<Done>| -> Result<(), SnpError> {
                if let Some(t) = in_flight.pop_front() {
                    let (buf, digests) = results[t].recv().map_err(|_| stopped())?;
                    for d in &digests {
                        gctx.update(PageType::Normal, chained, d);
                        chained += PAGE_LEN as u64;
                    }
                    spare.push((buf, digests));
                }
                Ok(())
            };
        let mut off = 0u64;
        let mut next = 0usize;
        while off < len {
            if in_flight.len() == 2 * threads {
                chain_oldest(&mut in_flight, &mut spare)?;
            }
            let pages = ((len - off) as usize / PAGE_LEN).min(BATCH_PAGES);
            let (mut buf, digests) = spare.pop().unwrap_or_else(|| {
                (
                    Vec::with_capacity(BATCH_PAGES * PAGE_LEN),
                    Vec::with_capacity(BATCH_PAGES),
                )
            });
            read_batch(&mut reader, &mut buf, pages, off, len)?;
            off += buf.len() as u64;
            jobs[next].send((buf, digests)).map_err(|_| stopped())?;
            in_flight.push_back(next);
            next = (next + 1) % threads;
        }
        while !in_flight.is_empty() {
            chain_oldest(&mut in_flight, &mut spare)?;
        }
        Ok(())
        // Returning drops the job queues, which ends the hashing threads.
    })
}

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

/// The launch of one SNP guest, beyond its firmware.
#[derive(Debug, Clone, Copy)]
pub struct SnpLaunch<'a> {
    pub vcpus: u32,
    /// The VMM's register values and page order ([`vmsa::VmmType::profile`]).
    pub vmm: VmmProfile,
    /// The VMSA form, vCPU signature and SEV_FEATURES (the guest features).
    pub vmsa: VmsaConfig,
    /// With measured direct boot (`-kernel`), the kernel, initrd and cmdline hashes.
    pub kernel: Option<&'a KernelHashes>,
}

fn check_section(index: usize, s: &MetadataSection) -> Result<(), SnpError> {
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

/// Measures one metadata section the way QEMU adds it.
fn measure_section(
    gctx: &mut GuestContext,
    s: &MetadataSection,
    launch: &SnpLaunch,
    kernel_page: Option<&[u8; PAGE_LEN]>,
) {
    let (gpa, size) = (u64::from(s.gpa), u64::from(s.size));
    match s.kind {
        MetadataSection::SNP_SEC_MEM if launch.vmm.sec_mem_unmeasured => {
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

/// Continues `gctx` (after the firmware) with the metadata sections alone
/// (steps 2 and 3, no VMSA): a caller trying many vCPU states continues
/// clones of the result with [`vmsa_contents`] and [`GuestContext::update`].
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
        measure_section(gctx, s, launch, kernel_page.as_ref());
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
/// (see [`ovmf_hash`]; a precomputed value works the same).
pub fn launch_digest(ovmf_hash: Ld, fw: &SnpFirmware, launch: &SnpLaunch) -> Result<Ld, SnpError> {
    let mut gctx = GuestContext::from_ld(ovmf_hash);
    measure_launch(&mut gctx, fw, launch)?;
    Ok(gctx.ld())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vmsa::{VmmType, VmsaForm};

    fn section(gpa: u32, size: u32, kind: u32) -> MetadataSection {
        MetadataSection { gpa, size, kind }
    }

    fn fw() -> SnpFirmware {
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

    fn launch(vcpus: u32) -> SnpLaunch<'static> {
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

    #[test]
    fn page_info_layout() {
        // One ZERO page from LD 0 at GPA 0x1000, computed by hand.
        let mut info = [0u8; 0x70];
        info[0x60] = 0x70;
        info[0x62] = 3;
        info[0x69] = 0x10;
        let mut g = GuestContext::new();
        g.update(PageType::Zero, 0x1000, &[0; 48]);
        assert_eq!(g.ld(), sha384(&info));
    }

    #[test]
    fn firmware_is_streamed_as_pages_ending_at_4gib() {
        let image: Vec<u8> = (0..3 * PAGE_LEN).map(|i| (i * 7) as u8).collect();
        let mut want = GuestContext::new();
        for (i, p) in image.chunks(PAGE_LEN).enumerate() {
            want.update_normal_page(0xFFFF_D000 + (i * PAGE_LEN) as u64, p.try_into().unwrap());
        }
        assert_eq!(ovmf_hash(&image[..], 3 * 4096).unwrap(), want.ld());
        assert!(matches!(
            ovmf_hash(&image[..], 4 * 4096),
            Err(SnpError::FirmwareTruncated { read: 12288, .. })
        ));
        assert!(matches!(
            ovmf_hash(&image[..100], 100),
            Err(SnpError::FirmwareSize(100))
        ));
        assert!(matches!(
            ovmf_hash(&[][..], 0),
            Err(SnpError::FirmwareSize(0))
        ));
    }

    #[test]
    fn chunked_parallel_hashing_is_the_page_by_page_chain() {
        // 300 pages: several chunks, the last one partial, hashed on several threads.
        let image: Vec<u8> = (0..300 * PAGE_LEN)
            .map(|i| ((i / 7) ^ (i / PAGE_LEN)) as u8)
            .collect();
        let len = image.len() as u64;
        let mut want = GuestContext::new();
        for (i, p) in image.chunks(PAGE_LEN).enumerate() {
            want.update_normal_page(
                (1u64 << 32) - len + (i * PAGE_LEN) as u64,
                p.try_into().unwrap(),
            );
        }
        assert_eq!(ovmf_hash(&image[..], len).unwrap(), want.ld());
        // A reader that yields a few bytes at a time gives the same.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        assert_eq!(ovmf_hash(Dribble(&image), len).unwrap(), want.ld());
        // Every thread count, read size and short image: tests/it/proptest_core.rs,
        // against a chain written there from the spec.
        let mut gctx = GuestContext::new();
        measure_firmware_on(&mut gctx, &image[..], len, 1).unwrap();
        assert_eq!(gctx.ld(), want.ld(), "the single-thread path");
    }

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
