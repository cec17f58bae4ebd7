//! IGVM files as QEMU launches them (IGVM support came in QEMU 10.1) in an SEV-SNP guest
//! (`-object igvm-cfg,file=...`): the pages SNP_LAUNCH_UPDATE measures, in
//! the order it measures them, and the VMSAs KVM measures at
//! SNP_LAUNCH_FINISH; from these, the launch digest.
//!
//! The file is parsed with the maintained `igvm` crate; what is measured
//! follows QEMU (`backends/igvm.c`, `target/i386/sev.c`) and KVM, not the
//! crate's own measurement code, which the tests use as a second
//! implementation. Where the two differ, QEMU is what the guest's report
//! will show:
//!
//! ```text
//! page data, NORMAL with data        NORMAL, SHA-384 of the page (short data zero-padded)
//! page data, NORMAL without data     NORMAL, SHA-384 of a zero page (QEMU imports a ZERO
//!                                    region with the NORMAL launch update)
//! page data with the unmeasured flag UNMEASURED
//! SECRETS / CPUID_DATA / CPUID_XF    SECRETS / CPUID (the unmeasured flag is ignored)
//! a 2 MiB page                       512 pages of 4 KiB of the same kind
//! the shared flag                    ignored: QEMU measures the page like any other
//! parameter insert                   UNMEASURED, every page of its parameter area,
//!                                    measured before the page region pending when
//!                                    it comes (QEMU hands a region over only when a
//!                                    later page directive ends it, or after the
//!                                    last directive; an insert at once)
//! SNP VP context (VMSA)              after every page, in vp_index order, at KVM's
//!                                    VMSA GPA 0xFFFFFFFFF000, whatever the file says
//! ```
//!
//! Only directives whose compatibility mask has the file's SEV-SNP platform
//! bit are loaded. Pure: it is handed the file's bytes.

use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmInitializationHeader, IgvmPlatformHeader};
use igvm_defs::{IgvmPageDataType, IgvmPlatformType};

use crate::core::snp::{GuestContext, Ld, PageType, PAGE_LEN, VMSA_GPA};
use crate::core::vmsa;

mod findings;
mod load;
pub mod vmsa_fields;

pub use findings::Finding;

/// The largest IGVM file read, the owner's or the host's copy: COCONUT-SVSM
/// and OVMF images are a few MiB (an SVSM with OVMF about 10 MiB); the
/// parser holds the file and a copy of its page data in memory, so the
/// bound keeps a hostile file from taking more than a few hundred MiB.
pub const MAX_IGVM_LEN: u64 = 128 << 20;

/// Bytes of one 2 MiB page.
const PAGE_2M: u64 = 2 << 20;

/// The most 4 KiB pages a file may have measured: 4 GiB of guest memory.
/// A page directive without data is 32 bytes of the file and a 2 MiB one
/// stands for 512 pages, so a small file could otherwise make the tool hold
/// and hash billions of pages; real images measure a few thousand, and QEMU
/// hands each to the SNP firmware one by one.
pub const MAX_MEASURED_PAGES: u64 = 1 << 20;

/// Why an IGVM file cannot be launched as an SEV-SNP guest by QEMU.
#[derive(Debug, thiserror::Error)]
pub enum IgvmError {
    /// The IGVM parser refused the file.
    #[error("not a valid IGVM file: {0}")]
    Parse(String),
    /// The IGVM parser gave up on the file without an error of its own (it
    /// panicked: a header or its data out of place).
    #[error("not a valid IGVM file: a header or the data it points to is out of place (the igvm parser stopped on it); the file is damaged or was not made by an IGVM builder")]
    ParserFailed,
    /// No supported-platform header is SEV-SNP.
    #[error("the IGVM file has no SEV-SNP platform (its platforms: {0}); QEMU cannot launch it as an SEV-SNP guest: build the file for SEV-SNP (e.g. COCONUT-SVSM's igvmbuilder --sev-snp)")]
    NoSnpPlatform(String),
    /// A page data directive of a type QEMU refuses.
    #[error("directive {directive} imports a page at GPA {gpa:#x} with data type {data_type:#x}, which QEMU refuses for SEV-SNP (it knows NORMAL, SECRETS, CPUID_DATA and CPUID_XF)")]
    PageDataType {
        /// Index of the directive in the file's directive section.
        directive: usize,
        /// The page's guest-physical address.
        gpa: u64,
        /// The IGVM page data type.
        data_type: u32,
    },
    /// More pages than [`MAX_MEASURED_PAGES`].
    #[error("directive {directive} takes the IGVM file's measured guest memory past {} GiB ({MAX_MEASURED_PAGES} pages of 4 KiB): no real image measures that much (each page is one SNP_LAUNCH_UPDATE), so this tool does not lay it out; check where the file comes from", MAX_MEASURED_PAGES >> 18)]
    TooManyPages {
        /// Index of the directive that goes past the bound.
        directive: usize,
    },
    /// Two VMSAs for the same vCPU.
    #[error("the IGVM file has two VMSAs for vCPU {0}; QEMU cannot launch it")]
    DuplicateVmsa(u16),
}

/// How QEMU imports one 4 KiB page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Import {
    /// Page data with contents: a NORMAL page.
    Data,
    /// Page data without contents: a NORMAL page of zeros.
    Zero,
    /// Page data with the unmeasured flag: an UNMEASURED page.
    Unmeasured,
    /// The SNP secrets page.
    Secrets,
    /// A CPUID page (CPUID_DATA or CPUID_XF).
    Cpuid,
    /// One page of parameter area `n`, inserted as UNMEASURED.
    Parameter(u32),
}

impl Import {
    /// The SNP page type the launch update gives the page.
    pub fn page_type(self) -> PageType {
        match self {
            Import::Data | Import::Zero => PageType::Normal,
            Import::Unmeasured | Import::Parameter(_) => PageType::Unmeasured,
            Import::Secrets => PageType::Secrets,
            Import::Cpuid => PageType::Cpuid,
        }
    }

    /// How the IGVM file says it: "normal page", "zero page", ...
    pub fn name(self) -> &'static str {
        match self {
            Import::Data => "normal page",
            Import::Zero => "zero page",
            Import::Unmeasured => "unmeasured page",
            Import::Secrets => "secrets page",
            Import::Cpuid => "CPUID page",
            Import::Parameter(_) => "parameter area page",
        }
    }
}

/// One 4 KiB page SNP_LAUNCH_UPDATE measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasuredPage {
    /// The page's guest-physical address.
    pub gpa: u64,
    /// How QEMU imports it.
    pub import: Import,
    /// PAGE_INFO.CONTENTS: SHA-384 of the page for NORMAL pages, else zero.
    pub contents: Ld,
    /// Index of the directive it comes from in the file's directive section.
    pub directive: usize,
}

/// Parameter inserts measured before the page region pending when they
/// came: QEMU hands a page region to SNP_LAUNCH_UPDATE only when a later
/// page directive ends it (or after the last directive), an insert at once.
/// A change to a page of `region` splits it, and moves the inserts after
/// the part before the change (the explainer's concern).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    /// The inserts' pages, in [`IgvmLaunch::pages`].
    pub inserts: std::ops::Range<usize>,
    /// The region's pages, right after them.
    pub region: std::ops::Range<usize>,
}

/// One VMSA of the file (an SNP VP context directive).
#[derive(Clone, PartialEq, Eq)]
pub struct FileVmsa {
    /// The vCPU it starts.
    pub vp_index: u16,
    /// Index of its directive.
    pub directive: usize,
    /// The GPA the file gives (KVM measures every VMSA at 0xFFFFFFFFF000).
    pub file_gpa: u64,
    /// The VMSA page as measured: the file's structure, zero-padded to 4 KiB.
    pub page: Box<[u8; PAGE_LEN]>,
}

impl FileVmsa {
    /// The VMSA's SEV_FEATURES.
    pub fn sev_features(&self) -> u64 {
        self.u64_at(vmsa::SEV_FEATURES)
    }

    /// The VMSA's RIP: where the vCPU starts.
    pub fn rip(&self) -> u64 {
        self.u64_at(vmsa::RIP)
    }

    fn u64_at(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.page[off..off + 8]);
        u64::from_le_bytes(b)
    }
}

impl std::fmt::Debug for FileVmsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileVmsa")
            .field("vp_index", &self.vp_index)
            .field("directive", &self.directive)
            .field("file_gpa", &self.file_gpa)
            .finish_non_exhaustive()
    }
}

/// The SNP ID block an IGVM file carries; QEMU hands it to
/// SNP_LAUNCH_FINISH with the file's guest policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgvmIdBlock {
    /// Index of its directive.
    pub directive: usize,
    /// The launch digest the ID block vouches for.
    pub ld: Ld,
    /// FAMILY_ID.
    pub family_id: [u8; 16],
    /// IMAGE_ID.
    pub image_id: [u8; 16],
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// Whether the file says an author key signs the ID key.
    pub author_key_enabled: bool,
}

/// An IGVM file's SEV-SNP launch, as QEMU and KVM perform it.
#[derive(Debug, Clone)]
pub struct IgvmLaunch {
    /// The SEV-SNP platform's compatibility mask bit.
    pub compatibility_mask: u32,
    /// The guest policy of the SEV-SNP initialization header, if any.
    pub policy: Option<u64>,
    /// Every page SNP_LAUNCH_UPDATE measures, in order.
    pub pages: Vec<MeasuredPage>,
    /// The VMSAs, in vp_index order (the order KVM measures them in).
    pub vmsas: Vec<FileVmsa>,
    /// The SNP ID block, if the file has one.
    pub id_block: Option<IgvmIdBlock>,
    /// Where QEMU measured parameter inserts before the page region that
    /// precedes them in the file ([`Jump`]).
    pub jumps: Vec<Jump>,
    /// What QEMU or KVM would refuse, or measure otherwise than the file
    /// describes ([`Finding`]).
    pub findings: Vec<Finding>,
    /// Directives in the file (all platforms).
    pub directive_count: usize,
}

impl IgvmLaunch {
    /// Parses an IGVM file and lays out its SEV-SNP launch.
    pub fn parse(file: &[u8]) -> Result<IgvmLaunch, IgvmError> {
        check_fixed_header(file)?;
        // The parser panics on some malformed files (igvm 0.5: a VBS VP
        // context whose data lies past the end indexes out of range; file
        // offsets before the data section overflow a 32-bit subtraction).
        let igvm = std::panic::catch_unwind(|| IgvmFile::new_from_binary(file, None))
            .map_err(|_| IgvmError::ParserFailed)?
            .map_err(|e| parse_error(&e))?;
        let mask = snp_mask(igvm.platforms())?;
        let policy = guest_policy(igvm.initializations(), mask);
        let mut launch = load::load(igvm.directives(), mask)?;
        launch.policy = policy;
        launch.vmsa_findings();
        if policy.is_none() {
            launch.findings.push(Finding::NoPolicy);
        }
        // Only an ID block needs the digest here: the chain is hashed once
        // more by whoever asks for it.
        if let Some(b) = &launch.id_block {
            let ld = launch.launch_digest();
            if b.ld != ld {
                launch.findings.push(Finding::IdBlockDigest {
                    id_block: b.ld,
                    computed: ld,
                });
            }
        }
        Ok(launch)
    }

    fn vmsa_findings(&mut self) {
        match self.vmsas.len() {
            0 => self.findings.push(Finding::NoVmsa),
            1 => {}
            n => self.findings.push(Finding::SeveralVmsas(n)),
        }
        for v in &self.vmsas {
            if v.sev_features() & 1 == 0 {
                self.findings.push(Finding::VmsaNotSnp {
                    directive: v.directive,
                    sev_features: v.sev_features(),
                });
            }
        }
    }

    /// The launch digest: every page, then every VMSA.
    pub fn launch_digest(&self) -> Ld {
        let mut g = GuestContext::new();
        measure_pages(&mut g, &self.pages);
        for v in &self.vmsas {
            g.update_vmsa_page(&v.page);
        }
        g.ld()
    }

    /// Whether the file's ID block (if any) vouches for `ld`.
    pub fn id_block_matches(&self, ld: &Ld) -> Option<bool> {
        self.id_block.as_ref().map(|b| &b.ld == ld)
    }
}

/// Extends `g` with `pages`, in order.
pub fn measure_pages(g: &mut GuestContext, pages: &[MeasuredPage]) {
    for p in pages {
        g.update(p.import.page_type(), p.gpa, &p.contents);
    }
}

/// The parser's error with its causes ("invalid binary directive header:
/// invalid page data type"), which its own message leaves out.
fn parse_error(e: &dyn std::error::Error) -> IgvmError {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    IgvmError::Parse(s)
}

/// The fixed header's variable header section lies inside the file. The
/// igvm crate (0.5) adds its offset and size in 32 bits and splits the file
/// there before any other check, so a 40-byte file whose section would end
/// past 4 GiB makes it panic (an arithmetic overflow, or a split past the
/// end); checked here first, in 64 bits.
fn check_fixed_header(file: &[u8]) -> Result<(), IgvmError> {
    let u32_at = |at: usize| {
        file.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    // magic, format_version, variable_header_offset, variable_header_size.
    let (Some(offset), Some(size)) = (u32_at(8), u32_at(12)) else {
        return Ok(()); // too short: the parser refuses it cleanly
    };
    if u64::from(offset) + u64::from(size) > file.len() as u64 {
        return Err(IgvmError::Parse(format!(
            "its fixed header puts the variable headers at bytes {offset:#x}..{:#x}, past the end of the file ({:#x} bytes): the file is cut short or not an IGVM file",
            u64::from(offset) + u64::from(size),
            file.len()
        )));
    }
    Ok(())
}

/// The KVM VMSA GPA every VMSA is measured at.
pub const KVM_VMSA_GPA: u64 = VMSA_GPA;

fn platform_name(t: IgvmPlatformType) -> String {
    match t {
        IgvmPlatformType::NATIVE => "native".into(),
        IgvmPlatformType::VSM_ISOLATION => "VBS".into(),
        IgvmPlatformType::SEV_SNP => "SEV-SNP".into(),
        IgvmPlatformType::TDX => "TDX".into(),
        IgvmPlatformType::SEV => "SEV".into(),
        IgvmPlatformType::SEV_ES => "SEV-ES".into(),
        other => format!("type {:#x}", other.0),
    }
}

/// The SEV-SNP platform's compatibility mask.
fn snp_mask(platforms: &[IgvmPlatformHeader]) -> Result<u32, IgvmError> {
    let mut names = Vec::new();
    for IgvmPlatformHeader::SupportedPlatform(p) in platforms {
        if p.platform_type == IgvmPlatformType::SEV_SNP {
            return Ok(p.compatibility_mask);
        }
        names.push(platform_name(p.platform_type));
    }
    if names.is_empty() {
        names.push("none".into());
    }
    Err(IgvmError::NoSnpPlatform(names.join(", ")))
}

/// The guest policy QEMU gives SNP_LAUNCH_START: the last SEV-SNP guest
/// policy header (QEMU keeps overwriting it).
fn guest_policy(init: &[IgvmInitializationHeader], mask: u32) -> Option<u64> {
    init.iter().rev().find_map(|h| match h {
        IgvmInitializationHeader::GuestPolicy {
            policy,
            compatibility_mask,
        } if compatibility_mask & mask != 0 => Some(*policy),
        _ => None,
    })
}

/// Whether a directive is loaded on the SEV-SNP platform.
fn applies(h: &IgvmDirectiveHeader, mask: u32) -> bool {
    h.compatibility_mask().is_none_or(|m| m & mask != 0)
}

/// The IGVM page data type as a number, for messages.
fn data_type_number(t: IgvmPageDataType) -> u32 {
    u32::from(t.0)
}
