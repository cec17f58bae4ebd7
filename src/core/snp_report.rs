//! The SEV-SNP ATTESTATION_REPORT (SEV-SNP ABI, 1184 bytes): its layout for
//! report versions 2, 3 (and 4, read as 3) and 5, the containers it arrives
//! in, the GHCB certificate table that may follow it, which product made it,
//! and the AMD KDS URL of the VCEK that signs it.
//!
//! Pure: bytes in, values out. Every length and offset is checked, so no
//! input makes it panic.

use std::fmt;

use uuid::{uuid, Uuid};

use super::hex;

/// Size of an ATTESTATION_REPORT.
pub const REPORT_LEN: usize = 0x4A0;
/// The signature covers bytes 0x000..0x2A0.
pub const SIGNED_LEN: usize = 0x2A0;
/// The report's offset in the `/dev/sev-guest` SNP_GET_REPORT response.
pub const RESPONSE_REPORT_OFFSET: usize = 0x20;
/// Size of the SNP_GET_REPORT response buffer (`snp_report_resp.data`).
pub const RESPONSE_BUFFER_LEN: usize = 4000;
/// Largest input any container holds: a report and a cert table of a few
/// certificates fit in far less; anything bigger is not one of ours.
pub const MAX_INPUT_LEN: usize = 1 << 20;

/// SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384, the only value defined.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

/// What is wrong with the bytes given as a report or a cert table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("{len} bytes is too short for an attestation report ({REPORT_LEN} bytes): the file is truncated or not a report")]
    Truncated { len: usize },
    #[error("{len} bytes is too large for an attestation report ({REPORT_LEN} bytes){detail}")]
    Oversized { len: usize, detail: String },
    #[error("report version {0} is not one this tool reads (2, 3, 4 and 5 are defined); the file may not be an SNP attestation report")]
    UnknownVersion(u32),
    #[error("the SNP_GET_REPORT response has status {0:#x}: the firmware refused the request, so there is no report in it")]
    ResponseStatus(u32),
    #[error("certificate table: {0}")]
    CertTable(String),
    #[error("{0}")]
    Product(String),
    #[error("no KDS URL: {0}")]
    Kds(String),
}

/// An AMD EPYC generation with its own KDS product name and CA chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    Milan,
    Genoa,
    Turin,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The KDS product name (Siena and Bergamo are served as Genoa).
    pub fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// Reads a product name as given on a command line or in a VEK's
    /// productName (`Milan-B0`, `Genoa`, `Turin`; Siena and Bergamo are Genoa).
    pub fn from_name(s: &str) -> Option<Product> {
        let line = s.split('-').next().unwrap_or("").to_ascii_lowercase();
        match line.as_str() {
            "milan" => Some(Product::Milan),
            "genoa" | "siena" | "bergamo" => Some(Product::Genoa),
            "turin" => Some(Product::Turin),
            _ => None,
        }
    }

    /// The TCB_VERSION layout of the product's firmware.
    pub fn tcb_layout(self) -> TcbLayout {
        match self {
            Product::Milan | Product::Genoa => TcbLayout::Legacy,
            Product::Turin => TcbLayout::Turin,
        }
    }

    /// The product of a CPUID family and model, as virtee/sev's table has it.
    pub fn from_cpuid(family: u8, model: u8) -> Result<Product, ReportError> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Ok(Product::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Ok(Product::Genoa),
            (0x1A, 0x00..=0x11) => Ok(Product::Turin),
            (0x1A, 0x50..=0x57 | 0x90..=0xAF | 0xC0..=0xC7) => Err(ReportError::Product(format!(
                "CPUID family {family:#x} model {model:#x} is Venice, which has no AMD CA chain yet"
            ))),
            _ => Err(ReportError::Product(format!(
                "CPUID family {family:#x} model {model:#x} is not an SEV-SNP product this tool knows (Milan, Genoa, Turin)"
            ))),
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the product came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductSource {
    /// CPUID_FAM_ID / CPUID_MOD_ID of a v3+ report.
    Cpuid,
    /// The productName extension of the VCEK or VLEK.
    VekProductName,
    /// The owner's explicit option.
    Option,
}

impl ProductSource {
    pub fn describe(self) -> &'static str {
        match self {
            ProductSource::Cpuid => "the report's CPUID fields",
            ProductSource::VekProductName => "the VEK's productName",
            ProductSource::Option => "--product",
        }
    }
}

/// Which product made `report`: CPUID on v3+, else the VEK's productName,
/// else the explicit option. An explicit option that contradicts the CPUID
/// or the productName is refused, and so is a v2 report with none of them:
/// the error says which.
pub fn resolve_product(
    report: &AttestationReport,
    vek_product_name: Option<&str>,
    explicit: Option<Product>,
) -> Result<(Product, ProductSource), ReportError> {
    if let Some((fam, model, _)) = report.cpuid {
        let p = Product::from_cpuid(fam, model)?;
        if let Some(e) = explicit {
            if e != p {
                return Err(ReportError::Product(format!(
                    "--product {e} contradicts the report, whose CPUID (family {fam:#x} model {model:#x}) says {p}"
                )));
            }
        }
        return Ok((p, ProductSource::Cpuid));
    }
    if let Some(name) = vek_product_name {
        if let Some(p) = Product::from_name(name) {
            if let Some(e) = explicit {
                if e != p {
                    return Err(ReportError::Product(format!(
                        "--product {e} contradicts the VEK, whose productName '{name}' says {p}: \
                         the VEK is for another product, or --product is wrong"
                    )));
                }
            }
            return Ok((p, ProductSource::VekProductName));
        }
    }
    if let Some(e) = explicit {
        return Ok((e, ProductSource::Option));
    }
    Err(ReportError::Product(format!(
        "a version {} report carries no CPUID, so Milan and Genoa cannot be told apart: give --product, \
         or the VCEK (its productName names the product)",
        report.version
    )))
}

/// The two TCB_VERSION byte layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcbLayout {
    /// Milan and Genoa: BOOT_LOADER, TEE, 4 reserved, SNP, MICROCODE.
    Legacy,
    /// Turin: FMC, BOOT_LOADER, TEE, SNP, 3 reserved, MICROCODE.
    Turin,
}

/// A TCB_VERSION decoded in one product's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcbVersion {
    /// The 8 bytes as a little-endian integer.
    pub raw: u64,
    /// FMC SPL (Turin only).
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl TcbVersion {
    pub fn decode(raw: u64, layout: TcbLayout) -> TcbVersion {
        let b = raw.to_le_bytes();
        match layout {
            TcbLayout::Legacy => TcbVersion {
                raw,
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
            TcbLayout::Turin => TcbVersion {
                raw,
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
        }
    }

    /// Encodes components in a layout (the reserved bytes zero).
    pub fn encode(
        layout: TcbLayout,
        fmc: u8,
        bootloader: u8,
        tee: u8,
        snp: u8,
        microcode: u8,
    ) -> u64 {
        let mut b = [0u8; 8];
        match layout {
            TcbLayout::Legacy => {
                b[0] = bootloader;
                b[1] = tee;
                b[6] = snp;
                b[7] = microcode;
            }
            TcbLayout::Turin => {
                b[0] = fmc;
                b[1] = bootloader;
                b[2] = tee;
                b[3] = snp;
                b[7] = microcode;
            }
        }
        u64::from_le_bytes(b)
    }

    /// Named components in the order the layout lists them.
    pub fn components(&self) -> Vec<(&'static str, u8)> {
        let mut v = Vec::with_capacity(5);
        if let Some(f) = self.fmc {
            v.push(("fmc", f));
        }
        v.extend([
            ("bl", self.bootloader),
            ("tee", self.tee),
            ("snp", self.snp),
            ("ucode", self.microcode),
        ]);
        v
    }

    /// Every component of `self` is at most the same one of `other`.
    pub fn le_componentwise(&self, other: &TcbVersion) -> bool {
        self.fmc.unwrap_or(0) <= other.fmc.unwrap_or(0)
            && self.bootloader <= other.bootloader
            && self.tee <= other.tee
            && self.snp <= other.snp
            && self.microcode <= other.microcode
    }
}

impl fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, v) in self.components() {
            write!(f, "{name} {v} ")?;
        }
        write!(f, "({:#018x})", self.raw)
    }
}

bitflags::bitflags! {
    /// The flag bits of the SEV-SNP guest POLICY (SEV-SNP firmware ABI, guest
    /// policy). Bits 0-7 and 8-15 are the minimum ABI minor and major
    /// version, not flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PolicyFlags: u64 {
        /// Simultaneous multithreading is allowed.
        const SMT = 1 << 16;
        /// Reserved, must be one.
        const RESERVED_17 = 1 << 17;
        /// A migration agent may be associated with the guest.
        const MIGRATE_MA = 1 << 18;
        /// Debugging is allowed.
        const DEBUG = 1 << 19;
        /// The guest may run on one socket only.
        const SINGLE_SOCKET = 1 << 20;
        /// CXL may be populated with devices or memory.
        const CXL_ALLOW = 1 << 21;
        /// AES-256-XTS memory encryption is required.
        const MEM_AES_256_XTS = 1 << 22;
        /// Running Average Power Limit (RAPL) must be disabled.
        const RAPL_DIS = 1 << 23;
        /// Ciphertext hiding (DRAM) must be enabled.
        const CIPHERTEXT_HIDING = 1 << 24;
        /// Page swapping of the guest is disabled (defined with report version 5).
        const PAGE_SWAP_DISABLE = 1 << 25;
    }
}

impl PolicyFlags {
    /// What QEMU and the SNP tools default to: SMT allowed, bit 17 set.
    pub const DEFAULT: PolicyFlags = PolicyFlags::SMT.union(PolicyFlags::RESERVED_17);
}

/// Bits 26..63 of the policy must be zero.
pub const POLICY_MBZ: u64 = !((1u64 << 26) - 1);

/// The guest POLICY: minimum ABI version and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    pub fn abi_major(self) -> u8 {
        (self.0 >> 8) as u8
    }
    pub fn abi_minor(self) -> u8 {
        self.0 as u8
    }
    pub fn flags(self) -> PolicyFlags {
        PolicyFlags::from_bits_truncate(self.0)
    }
    /// Set bits that no defined flag names (26..63).
    pub fn unknown_bits(self) -> u64 {
        self.0 & POLICY_MBZ
    }
}

bitflags::bitflags! {
    /// PLATFORM_INFO bits.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PlatformInfo: u64 {
        const SMT_EN = 1 << 0;
        const TSME_EN = 1 << 1;
        const ECC_EN = 1 << 2;
        const RAPL_DIS = 1 << 3;
        const CIPHERTEXT_HIDING_DRAM_EN = 1 << 4;
        /// BadRAM alias check done (AMD-SB-3015).
        const ALIAS_CHECK_COMPLETE = 1 << 5;
        /// Set on every Turin report seen (AMD-SB-3016); reserved in older
        /// ABI documents, so it is named here and never an error.
        const IOMMU_WRITE_SAFE = 1 << 6;
        const TIO_EN = 1 << 7;
    }
}

/// SIGNING_KEY of the signer info: which key signed the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKey {
    Vcek,
    Vlek,
    /// 7: the report is not signed.
    None,
    /// 2..6: reserved.
    Reserved(u8),
}

impl SigningKey {
    pub fn name(self) -> String {
        match self {
            SigningKey::Vcek => "VCEK".into(),
            SigningKey::Vlek => "VLEK".into(),
            SigningKey::None => "NONE".into(),
            SigningKey::Reserved(v) => format!("reserved ({v})"),
        }
    }
}

/// The signer info word at 0x048.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    pub raw: u32,
    pub author_key_en: bool,
    pub mask_chip_key: bool,
    pub signing_key: SigningKey,
}

impl KeyInfo {
    pub fn decode(raw: u32) -> KeyInfo {
        let sk = ((raw >> 2) & 7) as u8;
        KeyInfo {
            raw,
            author_key_en: raw & 1 != 0,
            mask_chip_key: raw & 2 != 0,
            signing_key: match sk {
                0 => SigningKey::Vcek,
                1 => SigningKey::Vlek,
                7 => SigningKey::None,
                v => SigningKey::Reserved(v),
            },
        }
    }
}

/// A firmware version as the report orders it (build, minor, major).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FwVersion {
    pub major: u8,
    pub minor: u8,
    pub build: u8,
}

impl fmt::Display for FwVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// A decoded ATTESTATION_REPORT. The raw bytes are kept: the signature is
/// over them, and the decoded fields are views of them.
#[derive(Clone)]
pub struct AttestationReport {
    pub raw: Box<[u8; REPORT_LEN]>,
    pub version: u32,
    pub guest_svn: u32,
    pub policy: GuestPolicy,
    pub family_id: [u8; 16],
    pub image_id: [u8; 16],
    pub vmpl: u32,
    pub signature_algo: u32,
    /// The 8 raw bytes of the TCB fields as integers; decode them with
    /// [`TcbVersion::decode`] once the product is known.
    pub current_tcb: u64,
    pub platform_info: u64,
    pub key_info: KeyInfo,
    pub report_data: [u8; 64],
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub id_key_digest: [u8; 48],
    pub author_key_digest: [u8; 48],
    pub report_id: [u8; 32],
    pub report_id_ma: [u8; 32],
    pub reported_tcb: u64,
    /// CPUID (family, model, stepping); v3 and later only.
    pub cpuid: Option<(u8, u8, u8)>,
    pub chip_id: [u8; 64],
    pub committed_tcb: u64,
    pub current_version: FwVersion,
    pub committed_version: FwVersion,
    pub launch_tcb: u64,
    /// LAUNCH_MIT_VECTOR and CURRENT_MIT_VECTOR; v5 and later only.
    pub launch_mit_vector: Option<u64>,
    pub current_mit_vector: Option<u64>,
}

impl fmt::Debug for AttestationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestationReport")
            .field("version", &self.version)
            .field("measurement", &hex(&self.measurement))
            .finish_non_exhaustive()
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn arr<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}

impl AttestationReport {
    /// Decodes exactly [`REPORT_LEN`] bytes. Refuses other lengths and
    /// versions other than 2..5; every other oddity (reserved bytes, unknown
    /// bits) is left to the format checks, which name it.
    pub fn parse(b: &[u8]) -> Result<AttestationReport, ReportError> {
        if b.len() < REPORT_LEN {
            return Err(ReportError::Truncated { len: b.len() });
        }
        if b.len() > REPORT_LEN {
            return Err(ReportError::Oversized {
                len: b.len(),
                detail: String::new(),
            });
        }
        let version = u32_at(b, 0);
        if !(2..=5).contains(&version) {
            return Err(ReportError::UnknownVersion(version));
        }
        let v3 = version >= 3;
        let v5 = version >= 5;
        Ok(AttestationReport {
            raw: Box::new(arr(b, 0)),
            version,
            guest_svn: u32_at(b, 0x04),
            policy: GuestPolicy(u64_at(b, 0x08)),
            family_id: arr(b, 0x10),
            image_id: arr(b, 0x20),
            vmpl: u32_at(b, 0x30),
            signature_algo: u32_at(b, 0x34),
            current_tcb: u64_at(b, 0x38),
            platform_info: u64_at(b, 0x40),
            key_info: KeyInfo::decode(u32_at(b, 0x48)),
            report_data: arr(b, 0x50),
            measurement: arr(b, 0x90),
            host_data: arr(b, 0xC0),
            id_key_digest: arr(b, 0xE0),
            author_key_digest: arr(b, 0x110),
            report_id: arr(b, 0x140),
            report_id_ma: arr(b, 0x160),
            reported_tcb: u64_at(b, 0x180),
            cpuid: v3.then(|| (b[0x188], b[0x189], b[0x18A])),
            chip_id: arr(b, 0x1A0),
            committed_tcb: u64_at(b, 0x1E0),
            current_version: FwVersion {
                build: b[0x1E8],
                minor: b[0x1E9],
                major: b[0x1EA],
            },
            committed_version: FwVersion {
                build: b[0x1EC],
                minor: b[0x1ED],
                major: b[0x1EE],
            },
            launch_tcb: u64_at(b, 0x1F0),
            launch_mit_vector: v5.then(|| u64_at(b, 0x1F8)),
            current_mit_vector: v5.then(|| u64_at(b, 0x200)),
        })
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.raw[..SIGNED_LEN]
    }

    /// SIGNATURE.R and .S as 48-byte big-endian integers (r || s), the form
    /// the fixed-size (ECDSA_P384_SHA384_FIXED) verifier takes. `None` when bytes 48..72 of
    /// either are not zero (a P-384 scalar has 48).
    pub fn signature_rs(&self) -> Option<[u8; 96]> {
        let r = &self.raw[0x2A0..0x2E8];
        let s = &self.raw[0x2E8..0x330];
        if r[48..].iter().chain(&s[48..]).any(|&x| x != 0) {
            return None;
        }
        let mut out = [0u8; 96];
        for i in 0..48 {
            out[i] = r[47 - i];
            out[48 + i] = s[47 - i];
        }
        Some(out)
    }

    /// Reserved ranges (offset, length) that must be zero in this version.
    pub fn reserved_ranges(&self) -> Vec<(usize, usize)> {
        let mut v = vec![(0x04C, 4)];
        if self.version >= 3 {
            v.push((0x18B, 0x1A0 - 0x18B));
        } else {
            v.push((0x188, 0x1A0 - 0x188));
        }
        v.push((0x1EB, 1));
        v.push((0x1EF, 1));
        if self.version >= 5 {
            v.push((0x208, SIGNED_LEN - 0x208));
        } else {
            v.push((0x1F8, SIGNED_LEN - 0x1F8));
        }
        v.push((0x330, REPORT_LEN - 0x330));
        v
    }

    /// Offsets of the reserved ranges that hold non-zero bytes.
    pub fn nonzero_reserved(&self) -> Vec<(usize, usize)> {
        self.reserved_ranges()
            .into_iter()
            .filter(|&(off, len)| self.raw[off..off + len].iter().any(|&x| x != 0))
            .collect()
    }

    /// CHIP_ID is all zero: the host masked it (MASK_CHIP_ID) or a VLEK signed.
    pub fn chip_id_masked(&self) -> bool {
        self.chip_id.iter().all(|&x| x == 0)
    }
}

/// The KDS URL of the VCEK for `report` (§2.3 of the KDS interface): the
/// 64-byte CHIP_ID on Milan and Genoa, the 8-byte one with fmcSPL on Turin,
/// SPLs from REPORTED_TCB. `base` is `https://kdsintf.amd.com` or a mirror.
pub fn kds_vcek_url(
    base: &str,
    product: Product,
    report: &AttestationReport,
) -> Result<String, ReportError> {
    if report.key_info.signing_key == SigningKey::Vlek {
        return Err(ReportError::Kds(
            "a VLEK signed this report; AMD's KDS hands VLEKs only to cloud providers, so the VLEK must come from the host's certificate table or a file".into(),
        ));
    }
    if report.chip_id_masked() {
        return Err(ReportError::Kds(
            "the host masked CHIP_ID (MASK_CHIP_ID), so the VCEK cannot be looked up by chip; it must come from the host's certificate table or a file".into(),
        ));
    }
    let tcb = TcbVersion::decode(report.reported_tcb, product.tcb_layout());
    let base = base.trim_end_matches('/');
    let spl = format!(
        "blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
    );
    Ok(match product {
        Product::Milan | Product::Genoa => format!(
            "{base}/vcek/v1/{}/{}?{spl}",
            product.name(),
            hex(&report.chip_id)
        ),
        Product::Turin => format!(
            "{base}/vcek/v1/Turin/{}?fmcSPL={:02}&{spl}",
            hex(&report.chip_id[..8]),
            tcb.fmc.unwrap_or(0)
        ),
    })
}

/// The default KDS.
pub const KDS_BASE: &str = "https://kdsintf.amd.com";

/// GHCB certificate table GUIDs (RFC 4122 byte order).
pub const GUID_ARK: Uuid = uuid!("c0b406a4-a803-4952-9743-3fb6014cd0ae");
pub const GUID_ASK: Uuid = uuid!("4ab7b379-bbac-4fe4-a02f-05aef327c782");
pub const GUID_VCEK: Uuid = uuid!("63da758d-e664-4564-adc5-f4b93be8accd");
pub const GUID_VLEK: Uuid = uuid!("a8074bc2-a25a-483e-aae6-39c045a0b8a1");
pub const GUID_CRL: Uuid = uuid!("92f81bc3-5811-4d3d-97ff-d19f88dc67ea");
pub const GUID_EXTRA_PLATFORM_INFO: Uuid = uuid!("ecae0c0f-9502-43b1-afa2-0ae2e0d565b6");

/// What a cert table entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    Ark,
    /// The ASK, or the ASVK when a VLEK signs.
    Ask,
    Vcek,
    Vlek,
    Crl,
    ExtraPlatformInfo,
    Other,
}

impl CertKind {
    pub fn of(g: &Uuid) -> CertKind {
        match *g {
            GUID_ARK => CertKind::Ark,
            GUID_ASK => CertKind::Ask,
            GUID_VCEK => CertKind::Vcek,
            GUID_VLEK => CertKind::Vlek,
            GUID_CRL => CertKind::Crl,
            GUID_EXTRA_PLATFORM_INFO => CertKind::ExtraPlatformInfo,
            _ => CertKind::Other,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            CertKind::Ark => "ARK",
            CertKind::Ask => "ASK/ASVK",
            CertKind::Vcek => "VCEK",
            CertKind::Vlek => "VLEK",
            CertKind::Crl => "CRL",
            CertKind::ExtraPlatformInfo => "extra platform info",
            CertKind::Other => "other",
        }
    }
}

/// One entry of a cert table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEntry {
    pub guid: Uuid,
    pub kind: CertKind,
    pub offset: u32,
    pub data: Vec<u8>,
}

/// A GHCB certificate table (SNP_GET_EXT_REPORT pages, configfs-tsm
/// `auxblob`): 24-byte entries {GUID, offset, length} ending with an
/// all-zero entry, then the blobs, offsets from the start of the table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertTable {
    pub entries: Vec<CertEntry>,
}

const ENTRY_LEN: usize = 24;

impl CertTable {
    /// Parses a table, refusing entries whose blob starts inside the header,
    /// runs past the end, or overlaps another, and duplicate GUIDs.
    pub fn parse(b: &[u8]) -> Result<CertTable, ReportError> {
        let err = |m: String| ReportError::CertTable(m);
        let mut raw = Vec::new();
        let mut pos = 0usize;
        loop {
            let Some(e) = b.get(pos..pos + ENTRY_LEN) else {
                return Err(err(format!(
                    "no all-zero terminating entry within the {} bytes given",
                    b.len()
                )));
            };
            if e.iter().all(|&x| x == 0) {
                break;
            }
            let guid = Uuid::from_bytes(arr(e, 0));
            if guid.is_nil() {
                return Err(err(format!(
                    "entry {} has a zero GUID but a non-zero offset or length",
                    raw.len()
                )));
            }
            raw.push((guid, u32_at(e, 16), u32_at(e, 20)));
            pos += ENTRY_LEN;
        }
        let header_end = pos + ENTRY_LEN;
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        let mut entries = Vec::with_capacity(raw.len());
        for (i, &(guid, off, len)) in raw.iter().enumerate() {
            let (o, l) = (off as usize, len as usize);
            if o < header_end {
                return Err(err(format!(
                    "entry {i} ({guid}) points at offset {o:#x}, inside the table header (which ends at {header_end:#x})"
                )));
            }
            let end = o.checked_add(l).filter(|&e| e <= b.len()).ok_or_else(|| {
                err(format!(
                    "entry {i} ({guid}) runs from {o:#x} for {l} bytes, past the end of the {} bytes given",
                    b.len()
                ))
            })?;
            if raw[..i].iter().any(|&(g, _, _)| g == guid) {
                return Err(err(format!("GUID {guid} appears twice")));
            }
            if let Some(&(j, ..)) = spans.iter().find(|&&(_, so, se)| o < se && so < end) {
                return Err(err(format!("entry {i} ({guid}) overlaps entry {j}")));
            }
            if l > 0 {
                spans.push((i, o, end));
            }
            entries.push(CertEntry {
                guid,
                kind: CertKind::of(&guid),
                offset: off,
                data: b[o..end].to_vec(),
            });
        }
        Ok(CertTable { entries })
    }

    /// The first entry of a kind.
    pub fn get(&self, kind: CertKind) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.data.as_slice())
    }
}

/// The container a report arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// The bare 1184-byte report (snpguest, configfs-tsm `outblob`).
    Raw,
    /// The `/dev/sev-guest` SNP_GET_REPORT response, report at +0x20.
    GetReportResponse,
    /// A report followed by a GHCB cert table (go-sev-guest `-inform bin`).
    ReportWithCertTable,
}

impl Container {
    pub fn name(self) -> &'static str {
        match self {
            Container::Raw => "raw attestation report (1184 bytes)",
            Container::GetReportResponse => {
                "SNP_GET_REPORT response from /dev/sev-guest (report at +0x20)"
            }
            Container::ReportWithCertTable => "attestation report followed by a certificate table",
        }
    }
}

/// A report as read from a file, with what came around it.
#[derive(Debug, Clone)]
pub struct ReportInput {
    pub container: Container,
    pub report: AttestationReport,
    pub cert_table: Option<CertTable>,
}

/// Detects the container of `b`, names it, and decodes the report in it.
pub fn parse_input(b: &[u8]) -> Result<ReportInput, ReportError> {
    if b.len() < REPORT_LEN {
        return Err(ReportError::Truncated { len: b.len() });
    }
    if b.len() > MAX_INPUT_LEN {
        return Err(ReportError::Oversized {
            len: b.len(),
            detail: format!(" or any container of one (at most {MAX_INPUT_LEN} bytes)"),
        });
    }
    if b.len() == REPORT_LEN {
        return Ok(ReportInput {
            container: Container::Raw,
            report: AttestationReport::parse(b)?,
            cert_table: None,
        });
    }
    // SNP_GET_REPORT response: status, report_size = 0x4A0, 24 reserved bytes.
    let status = u32_at(b, 0);
    let size = u32_at(b, 4);
    let response_end = RESPONSE_REPORT_OFFSET + REPORT_LEN;
    if size as usize == REPORT_LEN
        && b.len() >= response_end
        && b.len() <= RESPONSE_BUFFER_LEN
        && b[8..RESPONSE_REPORT_OFFSET].iter().all(|&x| x == 0)
        && b[response_end..].iter().all(|&x| x == 0)
    {
        if status != 0 {
            return Err(ReportError::ResponseStatus(status));
        }
        return Ok(ReportInput {
            container: Container::GetReportResponse,
            report: AttestationReport::parse(&b[RESPONSE_REPORT_OFFSET..response_end])?,
            cert_table: None,
        });
    }
    let report = AttestationReport::parse(&b[..REPORT_LEN])?;
    match CertTable::parse(&b[REPORT_LEN..]) {
        Ok(t) => Ok(ReportInput {
            container: Container::ReportWithCertTable,
            report,
            cert_table: Some(t),
        }),
        Err(ReportError::CertTable(m)) => Err(ReportError::Oversized {
            len: b.len(),
            detail: format!(
                "; the {} bytes after it are not a certificate table either ({m})",
                b.len() - REPORT_LEN
            ),
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(version: u32) -> Vec<u8> {
        let mut b = vec![0u8; REPORT_LEN];
        b[0..4].copy_from_slice(&version.to_le_bytes());
        b
    }

    fn table(entries: &[(Uuid, u32, u32)], total: usize) -> Vec<u8> {
        let mut t = vec![0u8; total];
        for (i, (g, o, l)) in entries.iter().enumerate() {
            let p = i * ENTRY_LEN;
            t[p..p + 16].copy_from_slice(g.as_bytes());
            t[p + 16..p + 20].copy_from_slice(&o.to_le_bytes());
            t[p + 20..p + 24].copy_from_slice(&l.to_le_bytes());
        }
        t
    }

    #[test]
    fn tcb_layouts() {
        // The Turin value from the spec: fmc1 bl3 tee2 snp5 ucode97.
        let t = TcbVersion::decode(0x6100000005020301, TcbLayout::Turin);
        assert_eq!(
            (t.fmc, t.bootloader, t.tee, t.snp, t.microcode),
            (Some(1), 3, 2, 5, 97)
        );
        let m = TcbVersion::decode(0x7308000000000003, TcbLayout::Legacy);
        assert_eq!(
            (m.fmc, m.bootloader, m.tee, m.snp, m.microcode),
            (None, 3, 0, 8, 115)
        );
        assert_eq!(
            TcbVersion::encode(TcbLayout::Turin, 1, 3, 2, 5, 97),
            0x6100000005020301
        );
    }

    #[test]
    fn versions_and_sizes() {
        assert!(matches!(
            AttestationReport::parse(&report(1)),
            Err(ReportError::UnknownVersion(1))
        ));
        assert!(matches!(
            AttestationReport::parse(&report(6)),
            Err(ReportError::UnknownVersion(6))
        ));
        assert!(AttestationReport::parse(&report(4))
            .unwrap()
            .cpuid
            .is_some());
        assert!(AttestationReport::parse(&report(2))
            .unwrap()
            .cpuid
            .is_none());
        assert!(matches!(
            parse_input(&report(2)[..100]),
            Err(ReportError::Truncated { len: 100 })
        ));
        let mut big = report(2);
        big.extend_from_slice(&[0xAB; 7]);
        assert!(matches!(
            parse_input(&big),
            Err(ReportError::Oversized { .. })
        ));
    }

    #[test]
    fn get_report_response() {
        let mut b = vec![0u8; RESPONSE_BUFFER_LEN];
        b[4..8].copy_from_slice(&(REPORT_LEN as u32).to_le_bytes());
        b[0x20..0x24].copy_from_slice(&3u32.to_le_bytes());
        let r = parse_input(&b).unwrap();
        assert_eq!(r.container, Container::GetReportResponse);
        assert_eq!(r.report.version, 3);
        b[0] = 0x16;
        assert!(matches!(
            parse_input(&b),
            Err(ReportError::ResponseStatus(0x16))
        ));
    }

    #[test]
    fn cert_table_bounds() {
        let hdr = 3 * ENTRY_LEN;
        let ok = table(
            &[(GUID_ARK, hdr as u32, 4), (GUID_VCEK, hdr as u32 + 4, 4)],
            hdr + 8,
        );
        let t = CertTable::parse(&ok).unwrap();
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[1].kind, CertKind::Vcek);
        let overlap = table(
            &[(GUID_ARK, hdr as u32, 4), (GUID_VCEK, hdr as u32 + 2, 4)],
            hdr + 8,
        );
        assert!(CertTable::parse(&overlap)
            .unwrap_err()
            .to_string()
            .contains("overlaps"));
        let past = table(&[(GUID_ARK, hdr as u32, 100)], hdr + 8);
        assert!(CertTable::parse(&past)
            .unwrap_err()
            .to_string()
            .contains("past the end"));
        let inside = table(&[(GUID_ARK, 4, 4)], hdr + 8);
        assert!(CertTable::parse(&inside)
            .unwrap_err()
            .to_string()
            .contains("header"));
        let huge = table(&[(GUID_ARK, u32::MAX, u32::MAX)], hdr + 8);
        assert!(CertTable::parse(&huge).is_err());
        assert!(CertTable::parse(&[1u8; 30]).is_err());
        let dup = table(
            &[(GUID_ARK, hdr as u32, 4), (GUID_ARK, hdr as u32 + 4, 4)],
            hdr + 8,
        );
        assert!(CertTable::parse(&dup)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn cpuid_products() {
        assert_eq!(Product::from_cpuid(0x19, 0x01).unwrap(), Product::Milan);
        assert_eq!(Product::from_cpuid(0x19, 0x11).unwrap(), Product::Genoa);
        assert_eq!(Product::from_cpuid(0x19, 0xA0).unwrap(), Product::Genoa);
        assert_eq!(Product::from_cpuid(0x1A, 0x02).unwrap(), Product::Turin);
        assert!(Product::from_cpuid(0x1A, 0x50).is_err());
        assert!(Product::from_cpuid(0x17, 0x31).is_err());
        assert_eq!(Product::from_name("Milan-B0"), Some(Product::Milan));
        assert_eq!(Product::from_name("siena"), Some(Product::Genoa));
    }

    #[test]
    fn v2_needs_a_product() {
        let r = AttestationReport::parse(&report(2)).unwrap();
        assert!(resolve_product(&r, None, None).is_err());
        assert_eq!(
            resolve_product(&r, Some("Genoa"), None).unwrap(),
            (Product::Genoa, ProductSource::VekProductName)
        );
        assert_eq!(
            resolve_product(&r, None, Some(Product::Milan)).unwrap().1,
            ProductSource::Option
        );
        // The option agreeing with the productName is fine; contradicting it is not.
        assert_eq!(
            resolve_product(&r, Some("Milan-B0"), Some(Product::Milan)).unwrap(),
            (Product::Milan, ProductSource::VekProductName)
        );
        let e = resolve_product(&r, Some("Milan-B0"), Some(Product::Genoa))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--product Genoa") && e.contains("'Milan-B0' says Milan"),
            "{e}"
        );
    }
}
