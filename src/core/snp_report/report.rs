//! The ATTESTATION_REPORT itself: its fields for report versions 2 to 5,
//! the policy, platform and signer words inside it, and its decoding.

use std::fmt;

use super::{arr, u32_at, u64_at, ReportError};
use crate::core::hex;

/// Size of an ATTESTATION_REPORT.
pub const REPORT_LEN: usize = 0x4A0;
/// The signature covers bytes 0x000..0x2A0.
pub const SIGNED_LEN: usize = 0x2A0;

/// SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384, the only value defined.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;

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
    /// The minimum ABI major version (bits 8-15).
    pub fn abi_major(self) -> u8 {
        (self.0 >> 8) as u8
    }
    /// The minimum ABI minor version (bits 0-7).
    pub fn abi_minor(self) -> u8 {
        self.0 as u8
    }
    /// The defined flags that are set; unknown bits are dropped.
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
        /// SMT is enabled on the platform.
        const SMT_EN = 1 << 0;
        /// Transparent SME is enabled.
        const TSME_EN = 1 << 1;
        /// The platform uses error-correcting memory.
        const ECC_EN = 1 << 2;
        /// Running Average Power Limit (RAPL) is disabled.
        const RAPL_DIS = 1 << 3;
        /// Ciphertext hiding is enabled for DRAM.
        const CIPHERTEXT_HIDING_DRAM_EN = 1 << 4;
        /// BadRAM alias check done (AMD-SB-3015).
        const ALIAS_CHECK_COMPLETE = 1 << 5;
        /// Set on every Turin report seen (AMD-SB-3016); reserved in older
        /// ABI documents, so it is named here and never an error.
        const IOMMU_WRITE_SAFE = 1 << 6;
        /// SEV-TIO (trusted I/O) is enabled.
        const TIO_EN = 1 << 7;
    }
}

/// SIGNING_KEY of the signer info: which key signed the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningKey {
    /// 0: the chip's VCEK, derived from the chip and REPORTED_TCB.
    Vcek,
    /// 1: a VLEK, which AMD issues to a cloud provider.
    Vlek,
    /// 7: the report is not signed.
    None,
    /// 2..6: reserved.
    Reserved(u8),
}

impl SigningKey {
    /// The name the ABI gives the key, as reports and messages show it.
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
    /// The word as read.
    pub raw: u32,
    /// Bit 0 AUTHOR_KEY_EN: AUTHOR_KEY_DIGEST holds the author key's digest.
    pub author_key_en: bool,
    /// Bit 1 MASK_CHIP_KEY: the host masks the chip's identity; CHIP_ID is not checked.
    pub mask_chip_key: bool,
    /// Bits 4:2 SIGNING_KEY.
    pub signing_key: SigningKey,
}

impl KeyInfo {
    /// Splits the signer info word into its bits.
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
    /// Major version (the third of the three bytes).
    pub major: u8,
    /// Minor version (the second byte).
    pub minor: u8,
    /// Build number (the first byte).
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
    /// The 1184 bytes as read.
    pub raw: Box<[u8; REPORT_LEN]>,
    /// VERSION (0x000): 2, 3, 4 or 5.
    pub version: u32,
    /// GUEST_SVN (0x004): from the ID block; 0 without one.
    pub guest_svn: u32,
    /// POLICY (0x008): the guest policy the launch ran under.
    pub policy: GuestPolicy,
    /// FAMILY_ID (0x010): from the ID block.
    pub family_id: [u8; 16],
    /// IMAGE_ID (0x020): from the ID block.
    pub image_id: [u8; 16],
    /// VMPL (0x030): the VMPL the guest requested the report at.
    pub vmpl: u32,
    /// SIGNATURE_ALGO (0x034): [`SIG_ALGO_ECDSA_P384_SHA384`] is the only one defined.
    pub signature_algo: u32,
    /// The 8 raw bytes of the TCB fields as integers; decode them with
    /// [`TcbVersion::decode`](super::TcbVersion::decode) once the product is
    /// known.
    /// CURRENT_TCB (0x038): the running firmware and microcode.
    pub current_tcb: u64,
    /// PLATFORM_INFO (0x040): [`PlatformInfo`] bits.
    pub platform_info: u64,
    /// Signer info (0x048).
    pub key_info: KeyInfo,
    /// REPORT_DATA (0x050): the 64 bytes the guest supplied with its request.
    pub report_data: [u8; 64],
    /// MEASUREMENT (0x090): the launch digest.
    pub measurement: [u8; 48],
    /// HOST_DATA (0x0C0): from SNP_LAUNCH_FINISH (QEMU `host-data`).
    pub host_data: [u8; 32],
    /// ID_KEY_DIGEST (0x0E0): SHA-384 of the ID key's public key structure; zero without an ID block.
    pub id_key_digest: [u8; 48],
    /// AUTHOR_KEY_DIGEST (0x110): SHA-384 of the author key's; zero unless AUTHOR_KEY_EN.
    pub author_key_digest: [u8; 48],
    /// REPORT_ID (0x140): the guest's ID, chosen by the firmware.
    pub report_id: [u8; 32],
    /// REPORT_ID_MA (0x160): the migration agent's report ID; all 0xFF without one.
    pub report_id_ma: [u8; 32],
    /// REPORTED_TCB (0x180): the TCB the host chose, the one the VCEK/VLEK is derived for.
    pub reported_tcb: u64,
    /// CPUID (family, model, stepping); v3 and later only.
    pub cpuid: Option<(u8, u8, u8)>,
    /// CHIP_ID (0x1A0): zero when masked; on Turin only bytes 0..8 are set.
    pub chip_id: [u8; 64],
    /// COMMITTED_TCB (0x1E0): the anti-rollback floor (SNP_COMMIT).
    pub committed_tcb: u64,
    /// CURRENT_BUILD/MINOR/MAJOR (0x1E8..0x1EB): the running firmware's version.
    pub current_version: FwVersion,
    /// COMMITTED_BUILD/MINOR/MAJOR (0x1EC..0x1EF): the committed firmware's version.
    pub committed_version: FwVersion,
    /// LAUNCH_TCB (0x1F0): CURRENT_TCB when the guest was launched or imported.
    pub launch_tcb: u64,
    /// LAUNCH_MIT_VECTOR (0x1F8): the mitigation vector at launch; v5 and later only.
    pub launch_mit_vector: Option<u64>,
    /// CURRENT_MIT_VECTOR (0x200): the current mitigation vector; v5 and later only.
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
