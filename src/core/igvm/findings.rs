//! What an IGVM file asks that QEMU 10 or KVM will not do as written, or
//! that other IGVM measurement tools measure otherwise than QEMU launches
//! it: `snp-digest --igvm FILE --check` (as `igvmmeasure --check-kvm`).

use std::fmt;

use crate::core::hex;
use crate::core::snp::Ld;

/// One finding about an IGVM file's SEV-SNP launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// No SEV-SNP guest policy initialization header.
    NoPolicy,
    /// A page or parameter directive after a VMSA.
    PageAfterVmsa {
        /// The page's directive.
        directive: usize,
    },
    /// A page marked shared.
    SharedPage {
        /// The page's directive.
        directive: usize,
        /// Its GPA.
        gpa: u64,
    },
    /// A 2 MiB SECRETS, CPUID or unmeasured page.
    LargeSpecialPage {
        /// The page's directive.
        directive: usize,
        /// Its GPA.
        gpa: u64,
        /// What kind of page.
        kind: &'static str,
    },
    /// A parameter insert whose area no directive declares.
    MissingParameterArea {
        /// The insert's directive.
        directive: usize,
        /// The parameter area index.
        area: u32,
    },
    /// A parameter area inserted twice.
    ParameterAreaReused {
        /// The second insert's directive.
        directive: usize,
        /// The parameter area index.
        area: u32,
    },
    /// A parameter area that is not whole pages.
    ParameterAreaSize {
        /// The insert's directive.
        directive: usize,
        /// The parameter area index.
        area: u32,
        /// Its size in bytes.
        size: u64,
    },
    /// A VMSA at a GPA other than KVM's.
    VmsaGpa {
        /// The VMSA's directive.
        directive: usize,
        /// The GPA the file gives.
        gpa: u64,
    },
    /// A VMSA whose SEV_FEATURES lacks SNPActive.
    VmsaNotSnp {
        /// The VMSA's directive.
        directive: usize,
        /// Its SEV_FEATURES.
        sev_features: u64,
    },
    /// More than one VMSA.
    SeveralVmsas(usize),
    /// No VMSA.
    NoVmsa,
    /// A second SNP ID block.
    SecondIdBlock {
        /// Its directive.
        directive: usize,
    },
    /// The ID block's digest is not the launch digest.
    IdBlockDigest {
        /// What the ID block says.
        id_block: Ld,
        /// The launch digest.
        computed: Ld,
    },
}

impl Finding {
    /// Whether QEMU or the SNP firmware refuses the launch (rather than
    /// launching it otherwise than other tools measure it).
    pub fn refused(&self) -> bool {
        matches!(
            self,
            Finding::NoPolicy
                | Finding::ParameterAreaReused { .. }
                | Finding::ParameterAreaSize { .. }
                | Finding::SecondIdBlock { .. }
                | Finding::IdBlockDigest { .. }
                | Finding::NoVmsa
        )
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::NoPolicy => write!(f, "no SEV-SNP guest policy: QEMU starts the guest with policy 0, which the SNP firmware refuses (bit 17 must be set); add a guest policy initialization header"),
            Finding::PageAfterVmsa { directive } => write!(f, "directive {directive} adds pages after a VMSA: KVM measures VMSAs after every page, so QEMU's launch digest has them last while igvmmeasure and the igvm crate measure in file order; put the VMSAs last"),
            Finding::SharedPage { directive, gpa } => write!(f, "directive {directive} marks the page at GPA {gpa:#x} shared: QEMU 10 ignores the flag and measures it as a private page (the igvm crate skips it); the digest here is QEMU's"),
            Finding::LargeSpecialPage { directive, gpa, kind } => write!(f, "directive {directive} is a 2 MiB {kind} at GPA {gpa:#x}: measured as 512 such 4 KiB pages, which the SNP firmware may refuse for SECRETS and CPUID pages"),
            Finding::MissingParameterArea { directive, area } => write!(f, "directive {directive} inserts parameter area {area}, which no directive declares: QEMU skips it with a warning, so nothing is measured for it"),
            Finding::ParameterAreaReused { directive, area } => write!(f, "directive {directive} inserts parameter area {area} a second time: QEMU has already freed its contents and cannot launch the file"),
            Finding::ParameterAreaSize { directive, area, size } => write!(f, "directive {directive} inserts parameter area {area} of {size:#x} bytes, not whole 4 KiB pages: KVM refuses the launch update"),
            Finding::VmsaGpa { directive, gpa } => write!(f, "directive {directive} places a VMSA at GPA {gpa:#x}: KVM always measures VMSAs at 0xfffffffff000, so the digest here uses that address (the igvm crate uses the file's)"),
            Finding::VmsaNotSnp { directive, sev_features } => write!(f, "the VMSA of directive {directive} has SEV_FEATURES {sev_features:#x} without SNPActive (bit 0): not an SEV-SNP vCPU"),
            Finding::SeveralVmsas(n) => write!(f, "{n} VMSAs: QEMU 10 gives each to the vCPU of its vp_index and KVM measures them all, so start the guest with exactly {n} vCPUs; igvmmeasure --check-kvm refuses such files (older QEMU set only the first vCPU's VMSA)"),
            Finding::NoVmsa => write!(f, "no SEV-SNP VMSA: every vCPU would start from QEMU's reset state, which is not in the file; this tool cannot compute that launch"),
            Finding::SecondIdBlock { directive } => write!(f, "directive {directive} is a second SNP ID block: QEMU refuses the file (\"Multiple ID blocks encountered\")"),
            Finding::IdBlockDigest { id_block, computed } => write!(f, "the file's ID block vouches for launch digest {} but the launch measures {}: SNP_LAUNCH_FINISH fails and the guest does not start", hex(id_block), hex(computed)),
        }
    }
}
