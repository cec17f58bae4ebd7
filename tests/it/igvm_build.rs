//! IGVM files for the tests, made with the `igvm` crate's own builder
//! (`IgvmFile::new` + `serialize`), and the crate's SEV-SNP measurement
//! (`igvm::measurement::generate_snp_measurement`, feature `corim`): the
//! second implementation the tool's `snp-digest --igvm` is held to.
//!
//! Also what the builder refuses to write (an unknown page data type, an
//! insert of an undeclared parameter area): a valid file patched in place,
//! with the header checksum (CRC-32 of the fixed header and the variable
//! headers) computed again here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use igvm::snp_defs::{SevFeatures, SevVmsa};
use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmInitializationHeader, IgvmPlatformHeader};
use igvm::{IgvmRevision, IsolationType};
use igvm_defs::{
    IgvmNativeVpContextX64, IgvmPageDataFlags, IgvmPageDataType, IgvmPlatformType,
    IgvmVariableHeaderType, IGVM_VHS_PARAMETER, IGVM_VHS_PARAMETER_INSERT,
    IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY, IGVM_VHS_SNP_ID_BLOCK_SIGNATURE, IGVM_VHS_SUPPORTED_PLATFORM,
};
use sha2::{Digest, Sha384};
use zerocopy::FromZeros;

/// The SEV-SNP platform's compatibility mask bit in these files.
pub const SNP: u32 = 1;
/// The native platform's, in files with two platforms.
pub const NATIVE: u32 = 2;
/// The GPA KVM measures every VMSA at.
pub const KVM_VMSA_GPA: u64 = 0xFFFF_FFFF_F000;
pub const PAGE: u64 = 4096;
pub const PAGE_2M: u64 = 2 << 20;

/// An IGVM file before it is serialized.
#[derive(Clone, Debug)]
pub struct Spec {
    pub native: bool,
    pub policy: Option<u64>,
    pub directives: Vec<IgvmDirectiveHeader>,
}

impl Spec {
    pub fn new(policy: u64) -> Spec {
        Spec {
            native: false,
            policy: Some(policy),
            directives: Vec::new(),
        }
    }

    pub fn push(&mut self, d: IgvmDirectiveHeader) -> &mut Spec {
        self.directives.push(d);
        self
    }

    pub fn platforms(&self) -> Vec<IgvmPlatformHeader> {
        let mut p = vec![platform(SNP, IgvmPlatformType::SEV_SNP)];
        if self.native {
            p.push(platform(NATIVE, IgvmPlatformType::NATIVE));
        }
        p
    }

    pub fn inits(&self) -> Vec<IgvmInitializationHeader> {
        self.policy
            .map(|policy| IgvmInitializationHeader::GuestPolicy {
                policy,
                compatibility_mask: SNP,
            })
            .into_iter()
            .collect()
    }

    /// The file's bytes, as the crate's builder writes them.
    pub fn bytes(&self) -> Vec<u8> {
        let f = IgvmFile::new(
            IgvmRevision::V1,
            self.platforms(),
            self.inits(),
            self.directives.clone(),
        )
        .unwrap_or_else(|e| panic!("the igvm builder refuses the file: {e}"));
        let mut out = Vec::new();
        f.serialize(&mut out).expect("serialize");
        out
    }

    /// The file written into `dir` as `name`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, self.bytes()).unwrap();
        p
    }
}

pub fn platform(mask: u32, platform_type: IgvmPlatformType) -> IgvmPlatformHeader {
    IgvmPlatformHeader::SupportedPlatform(IGVM_VHS_SUPPORTED_PLATFORM {
        compatibility_mask: mask,
        highest_vtl: 0,
        platform_type,
        platform_version: 1,
        shared_gpa_boundary: 0,
    })
}

/// How a page is imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// NORMAL with data (up to 4 KiB).
    Data,
    /// NORMAL without data.
    Zero,
    /// NORMAL with the unmeasured flag.
    Unmeasured,
    Secrets,
    Cpuid,
    CpuidXf,
}

/// A page data directive.
pub fn page(gpa: u64, kind: Kind, data: Vec<u8>, mask: u32) -> IgvmDirectiveHeader {
    let (data_type, flags) = match kind {
        Kind::Data | Kind::Zero => (IgvmPageDataType::NORMAL, IgvmPageDataFlags::new()),
        Kind::Unmeasured => (
            IgvmPageDataType::NORMAL,
            IgvmPageDataFlags::new().with_unmeasured(true),
        ),
        Kind::Secrets => (IgvmPageDataType::SECRETS, IgvmPageDataFlags::new()),
        Kind::Cpuid => (IgvmPageDataType::CPUID_DATA, IgvmPageDataFlags::new()),
        Kind::CpuidXf => (IgvmPageDataType::CPUID_XF, IgvmPageDataFlags::new()),
    };
    let data = if kind == Kind::Data { data } else { Vec::new() };
    IgvmDirectiveHeader::PageData {
        gpa,
        compatibility_mask: mask,
        flags,
        data_type,
        data,
    }
}

/// `d` (a page data directive) with its flags changed by `f`.
pub fn with_flags(
    mut d: IgvmDirectiveHeader,
    f: impl FnOnce(IgvmPageDataFlags) -> IgvmPageDataFlags,
) -> IgvmDirectiveHeader {
    if let IgvmDirectiveHeader::PageData { flags, .. } = &mut d {
        *flags = f(*flags);
    }
    d
}

pub fn param_area(index: u32, bytes: u64) -> IgvmDirectiveHeader {
    IgvmDirectiveHeader::ParameterArea {
        number_of_bytes: bytes,
        parameter_area_index: index,
        initial_data: Vec::new(),
    }
}

pub fn vp_count(index: u32) -> IgvmDirectiveHeader {
    IgvmDirectiveHeader::VpCount(IGVM_VHS_PARAMETER {
        parameter_area_index: index,
        byte_offset: 0,
    })
}

pub fn insert(index: u32, gpa: u64, mask: u32) -> IgvmDirectiveHeader {
    IgvmDirectiveHeader::ParameterInsert(IGVM_VHS_PARAMETER_INSERT {
        gpa,
        compatibility_mask: mask,
        parameter_area_index: index,
    })
}

/// An SEV-SNP VMSA with the given RIP, CR0 and SEV_FEATURES.
pub fn vmsa(vp_index: u16, gpa: u64, rip: u64, cr0: u64, features: u64) -> IgvmDirectiveHeader {
    let mut v = SevVmsa::new_box_zeroed().unwrap();
    v.rip = rip;
    v.cr0 = cr0;
    v.sev_features = SevFeatures::from_bits(features);
    IgvmDirectiveHeader::SnpVpContext {
        gpa,
        compatibility_mask: SNP,
        vp_index,
        vmsa: v,
    }
}

/// A native platform's VP context (not an SEV-SNP VMSA).
pub fn native_context(vp_index: u16, rip: u64) -> IgvmDirectiveHeader {
    let mut c = IgvmNativeVpContextX64::new_box_zeroed().unwrap();
    c.rip = rip;
    IgvmDirectiveHeader::X64NativeVpContext {
        compatibility_mask: NATIVE,
        vp_index,
        context: c,
    }
}

/// An SNP ID block vouching for `ld`, signatures and keys zero.
pub fn id_block(ld: [u8; 48]) -> IgvmDirectiveHeader {
    IgvmDirectiveHeader::SnpIdBlock {
        compatibility_mask: SNP,
        author_key_enabled: 0,
        reserved: [0; 3],
        ld,
        family_id: [0x11; 16],
        image_id: [0x22; 16],
        version: 1,
        guest_svn: 3,
        id_key_algorithm: 1,
        author_key_algorithm: 0,
        id_key_signature: IGVM_VHS_SNP_ID_BLOCK_SIGNATURE::new_box_zeroed().unwrap(),
        id_public_key: IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY::new_box_zeroed().unwrap(),
        author_key_signature: IGVM_VHS_SNP_ID_BLOCK_SIGNATURE::new_box_zeroed().unwrap(),
        author_public_key: IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY::new_box_zeroed().unwrap(),
    }
}

/// The igvm crate's SEV-SNP launch digest of a serialized file: parsed by
/// the crate, measured by `generate_snp_measurement` with the SEV-SNP
/// platform's mask.
pub fn crate_digest(file: &[u8]) -> Result<[u8; 48], String> {
    let f = IgvmFile::new_from_binary(file, None).map_err(|e| format!("parse: {e}"))?;
    let mask = f
        .platforms()
        .iter()
        .find_map(|IgvmPlatformHeader::SupportedPlatform(p)| {
            (p.platform_type == IgvmPlatformType::SEV_SNP).then_some(p.compatibility_mask)
        })
        .ok_or("no SEV-SNP platform")?;
    igvm::measurement::generate_snp_measurement(f.initializations(), f.directives(), mask)
        .map_err(|e| format!("measure: {e}"))
}

/// The crate's digest of a file parsed with the SEV-SNP isolation filter.
pub fn crate_digest_filtered(file: &[u8]) -> Result<[u8; 48], String> {
    let f = IgvmFile::new_from_binary(file, Some(IsolationType::Snp))
        .map_err(|e| format!("parse: {e}"))?;
    igvm::measurement::generate_snp_measurement(f.initializations(), f.directives(), SNP)
        .map_err(|e| format!("measure: {e}"))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SNP page types (SEV-SNP firmware ABI, SNP_LAUNCH_UPDATE).
pub const PT_NORMAL: u8 = 1;
pub const PT_VMSA: u8 = 2;
pub const PT_UNMEASURED: u8 = 4;
pub const PT_SECRETS: u8 = 5;
pub const PT_CPUID: u8 = 6;

/// One step of the launch digest: SHA-384 of the 0x70-byte PAGE_INFO
/// (digest so far, contents, length 0x70, page type, IMI 0, VMPL
/// permissions 0, GPA), written here from the firmware ABI.
pub fn page_info(ld: &[u8; 48], contents: &[u8; 48], page_type: u8, gpa: u64) -> [u8; 48] {
    let mut info = Vec::with_capacity(0x70);
    info.extend_from_slice(ld);
    info.extend_from_slice(contents);
    info.extend_from_slice(&0x70u16.to_le_bytes());
    info.push(page_type);
    info.extend_from_slice(&[0u8; 5]);
    info.extend_from_slice(&gpa.to_le_bytes());
    assert_eq!(info.len(), 0x70);
    Sha384::digest(&info).into()
}

/// SHA-384 of a 4 KiB page holding `data` (zero-padded).
pub fn page_hash(data: &[u8]) -> [u8; 48] {
    let mut p = [0u8; 4096];
    p[..data.len()].copy_from_slice(data);
    Sha384::digest(p).into()
}

/// CRC-32 (IEEE 802.3, reflected, as zlib), bit by bit: headers are small.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Sets the fixed header's checksum for the file's variable headers as they
/// are now (after a patch).
/// A file whose headers do not fit in it is left as it is.
pub fn fix_checksum(file: &mut [u8]) {
    let (off, size) = (le32(file, 8) as usize, le32(file, 12) as usize);
    let Some(variable) = file.get(off..off.saturating_add(size)) else {
        return;
    };
    let mut fixed = file[..24].to_vec();
    fixed[20..24].fill(0);
    fixed.extend_from_slice(variable);
    let crc = crc32(&fixed);
    file[20..24].copy_from_slice(&crc.to_le_bytes());
}

/// Each variable header: (type, offset of its body, body length).
pub fn variable_headers(file: &[u8]) -> Vec<(u32, usize, usize)> {
    let (off, size) = (le32(file, 8) as usize, le32(file, 12) as usize);
    let mut v = Vec::new();
    let mut at = off;
    while at + 8 <= off + size {
        let (typ, len) = (le32(file, at), le32(file, at + 4) as usize);
        v.push((typ, at + 8, len));
        at += 8 + len.div_ceil(8) * 8;
    }
    v
}

/// The variable header type of page data directives.
pub const VHT_PAGE_DATA: u32 = IgvmVariableHeaderType::IGVM_VHT_PAGE_DATA.0;
/// The variable header type of parameter inserts.
pub const VHT_PARAMETER_INSERT: u32 = IgvmVariableHeaderType::IGVM_VHT_PARAMETER_INSERT.0;
/// Offset of `data_type` (u16) in IGVM_VHS_PAGE_DATA.
pub const PAGE_DATA_TYPE_AT: usize = 20;
/// Offset of `parameter_area_index` (u32) in IGVM_VHS_PARAMETER_INSERT.
pub const INSERT_AREA_AT: usize = 12;

/// The directives in the order QEMU's loader hands their pages to
/// SNP_LAUNCH_UPDATE (`backends/igvm.c`, QEMU 10.1 and later): contiguous
/// page directives (consecutive directives, adjacent GPAs, equal flags, data
/// type and compatibility mask, all with data or all without) form a region
/// that is handed over only when a later page directive does not continue
/// it, or after the last directive; a parameter insert is handed over at
/// once. So each insert moves before the region pending when it comes.
/// Written here from QEMU's source, for the crate's measurement to follow.
pub fn qemu_order(directives: &[IgvmDirectiveHeader], mask: u32) -> Vec<IgvmDirectiveHeader> {
    struct Last {
        index: usize,
        end: u64,
        key: (u32, u32, u32, bool),
    }
    let mut out: Vec<IgvmDirectiveHeader> = Vec::new();
    let mut region_start = 0usize;
    let mut last: Option<Last> = None;
    for (i, d) in directives.iter().enumerate() {
        match d {
            IgvmDirectiveHeader::PageData {
                gpa,
                compatibility_mask,
                flags,
                data_type,
                data,
            } if compatibility_mask & mask != 0 => {
                let len = if flags.is_2mb_page() { PAGE_2M } else { PAGE };
                let key = (
                    u32::from(*flags),
                    u32::from(data_type.0),
                    *compatibility_mask,
                    data.is_empty(),
                );
                let continues = last
                    .as_ref()
                    .is_some_and(|l| l.index + 1 == i && l.end == *gpa && l.key == key);
                if !continues {
                    region_start = out.len();
                }
                last = Some(Last {
                    index: i,
                    end: gpa + len,
                    key,
                });
                out.push(d.clone());
            }
            IgvmDirectiveHeader::ParameterInsert(p) if p.compatibility_mask & mask != 0 => {
                let at = if last.is_some() {
                    region_start
                } else {
                    out.len()
                };
                out.insert(at, d.clone());
                region_start += usize::from(last.is_some());
            }
            _ => out.push(d.clone()),
        }
    }
    out
}

/// The crate's SEV-SNP digest of `f` measured in QEMU's order
/// ([`qemu_order`]).
pub fn qemu_digest(f: &IgvmFile) -> [u8; 48] {
    let mask = f
        .platforms()
        .iter()
        .find_map(|IgvmPlatformHeader::SupportedPlatform(p)| {
            (p.platform_type == IgvmPlatformType::SEV_SNP).then_some(p.compatibility_mask)
        })
        .expect("an SEV-SNP platform");
    igvm::measurement::generate_snp_measurement(
        f.initializations(),
        &qemu_order(f.directives(), mask),
        mask,
    )
    .expect("the crate measures it")
}

/// [`qemu_digest`] of a serialized file, in hex.
pub fn qemu_digest_of(bytes: &[u8]) -> String {
    let f = IgvmFile::new_from_binary(bytes, None).expect("the crate parses it");
    qemu_digest(&f).iter().map(|b| format!("{b:02x}")).collect()
}
