//! The initial VMSA (VM save area) page of an SEV-ES or SEV-SNP vCPU, as the
//! VMM and KVM set it up before LAUNCH_UPDATE_VMSA (SEV-ES) or
//! SNP_LAUNCH_FINISH (SNP) measures it.
//!
//! Layout: Linux `struct sev_es_save_area`, AMD APM Vol. 2 Table B-4.
//!
//! [`build`] is QEMU's initial state. Other VMMs start their vCPUs with a few
//! different register values ([`VmmType`], [`VmmProfile`], measurement.md §5
//! "VMM variants"); [`build_for`] builds those.

/// Size of a VMSA page.
pub const VMSA_LEN: usize = 4096;

/// The reset EIP of the boot CPU.
pub const BSP_RESET_EIP: u32 = 0xFFFF_FFF0;

/// How the host's KVM created the VM, which decides the FPU fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmsaForm {
    /// KVM_SEV_ES_INIT (released QEMU's default): the FPU area stays zero.
    #[default]
    Legacy,
    /// KVM_SEV_INIT2 (Linux 6.10+ with QEMU `legacy-vm-type=off`): KVM copies
    /// MXCSR and the x87 control word into the VMSA.
    Init2,
}

/// What the host determines about every vCPU's initial state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmsaConfig {
    /// How KVM created the VM: decides MXCSR and the x87 FCW.
    pub form: VmsaForm,
    /// CPUID(1).EAX of the vCPU model, loaded into RDX at reset.
    pub cpu_signature: u32,
    /// The SEV_FEATURES field (0 for SEV-ES on current hosts).
    pub sev_features: u64,
}

// Field offsets in the save area.
const ES: usize = 0x00;
const CS: usize = 0x10;
const SS: usize = 0x20;
const DS: usize = 0x30;
const FS: usize = 0x40;
const GS: usize = 0x50;
const GDTR: usize = 0x60;
const LDTR: usize = 0x70;
const IDTR: usize = 0x80;
const TR: usize = 0x90;
const EFER: usize = 0xD0;
const CR4: usize = 0x148;
const CR0: usize = 0x158;
const DR7: usize = 0x160;
const DR6: usize = 0x168;
const RFLAGS: usize = 0x170;
pub(crate) const RIP: usize = 0x178;
const G_PAT: usize = 0x268;
const RDX: usize = 0x310;
pub(crate) const SEV_FEATURES: usize = 0x3B0;
const XCR0: usize = 0x3E8;
const MXCSR: usize = 0x408;
const X87_FCW: usize = 0x410;

fn put(page: &mut [u8; VMSA_LEN], at: usize, bytes: &[u8]) {
    page[at..at + bytes.len()].copy_from_slice(bytes);
}

fn segment(
    page: &mut [u8; VMSA_LEN],
    at: usize,
    selector: u16,
    attrib: u16,
    limit: u32,
    base: u64,
) {
    put(page, at, &selector.to_le_bytes());
    put(page, at + 2, &attrib.to_le_bytes());
    put(page, at + 4, &limit.to_le_bytes());
    put(page, at + 8, &base.to_le_bytes());
}

/// The hypervisor (VMM) that sets up the vCPUs' initial register state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VmmType {
    /// QEMU with KVM (libvirt's guests).
    #[default]
    Qemu,
    /// Amazon EC2's SNP instances, as sev-snp-measure models them.
    Ec2,
    /// Google Compute Engine's SNP instances, as sev-snp-measure models them.
    Gce,
}

impl VmmType {
    /// The register differences of this VMM (measurement.md §5 "VMM variants").
    pub fn profile(self) -> VmmProfile {
        match self {
            VmmType::Qemu => VmmProfile {
                cs_attrib_bsp: 0x009B,
                cs_attrib_ap: 0x009B,
                ss_attrib: 0x0093,
                tr_attrib: 0x008B,
                g_pat: QEMU_G_PAT,
                rdx: Rdx::CpuSignature,
                fpu_from_form: true,
                sec_mem_unmeasured: false,
                cpuid_last: false,
            },
            VmmType::Ec2 => VmmProfile {
                cs_attrib_bsp: 0x009A,
                cs_attrib_ap: 0x009B,
                ss_attrib: 0x0092,
                tr_attrib: 0x0083,
                g_pat: QEMU_G_PAT,
                rdx: Rdx::Fixed(0x600),
                fpu_from_form: false,
                sec_mem_unmeasured: false,
                cpuid_last: true,
            },
            VmmType::Gce => VmmProfile {
                cs_attrib_bsp: 0x009B,
                cs_attrib_ap: 0x009B,
                ss_attrib: 0x0093,
                tr_attrib: 0x008B,
                g_pat: 0x0007_0106,
                rdx: Rdx::Fixed(0x600),
                fpu_from_form: false,
                sec_mem_unmeasured: true,
                cpuid_last: false,
            },
        }
    }

    /// The name on the command line (sev-snp-measure's `--vmm-type`).
    pub fn name(self) -> &'static str {
        match self {
            VmmType::Qemu => "qemu",
            VmmType::Ec2 => "ec2",
            VmmType::Gce => "gce",
        }
    }
}

/// What RDX holds at reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rdx {
    /// CPUID(1).EAX of the vCPU model ([`VmsaConfig::cpu_signature`]), as KVM loads it.
    CpuSignature,
    /// A fixed value the VMM loads whatever the vCPU model.
    Fixed(u32),
}

/// Everything in which one VMM's initial vCPU state and SNP launch sequence
/// differ from another's. [`VmmType::profile`] gives the known ones; a field
/// can be changed to model a variant (virtee/sev's EC2 model has RDX 0, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmmProfile {
    /// CS attributes of the boot CPU.
    pub cs_attrib_bsp: u16,
    /// CS attributes of the application processors.
    pub cs_attrib_ap: u16,
    /// SS attributes (VMSA offset 0x22).
    pub ss_attrib: u16,
    /// TR attributes (VMSA offset 0x92).
    pub tr_attrib: u16,
    /// The guest PAT MSR (VMSA offset 0x268).
    pub g_pat: u64,
    /// What RDX (VMSA offset 0x310) holds at reset.
    pub rdx: Rdx,
    /// Whether [`VmsaConfig::form`] decides the FPU fields; when false they
    /// stay zero (MXCSR = FCW = 0) whatever the form.
    pub fpu_from_form: bool,
    /// SNP: SNP_SEC_MEM sections are measured as UNMEASURED pages, not ZERO.
    pub sec_mem_unmeasured: bool,
    /// SNP: CPUID pages are measured after every other metadata section.
    pub cpuid_last: bool,
}

const QEMU_G_PAT: u64 = 0x0007_0406_0007_0406;

/// Builds the VMSA of a vCPU that starts at `eip`: [`BSP_RESET_EIP`] for the
/// boot CPU, the OVMF SEV-ES reset block address for the others. QEMU's
/// initial state; see [`build_for`] for other VMMs.
pub fn build(cfg: &VmsaConfig, eip: u32) -> Box<[u8; VMSA_LEN]> {
    build_profile(&VmmType::Qemu.profile(), cfg, eip)
}

/// Builds the VMSA of a vCPU that starts at `eip`, as the VMM `vmm` sets it up.
pub fn build_for(vmm: VmmType, cfg: &VmsaConfig, eip: u32) -> Box<[u8; VMSA_LEN]> {
    build_profile(&vmm.profile(), cfg, eip)
}

/// Builds the VMSA of a vCPU that starts at `eip` with the register values of `profile`.
pub fn build_profile(profile: &VmmProfile, cfg: &VmsaConfig, eip: u32) -> Box<[u8; VMSA_LEN]> {
    let mut p = Box::new([0u8; VMSA_LEN]);
    // Real-mode reset state; QEMU's attributes (accessed data/code segments,
    // LDT, busy 32-bit TSS) override KVM's defaults.
    for seg in [ES, DS, FS, GS] {
        segment(&mut p, seg, 0, 0x0093, 0xFFFF, 0);
    }
    segment(&mut p, SS, 0, profile.ss_attrib, 0xFFFF, 0);
    let cs_attrib = if eip == BSP_RESET_EIP {
        profile.cs_attrib_bsp
    } else {
        profile.cs_attrib_ap
    };
    segment(
        &mut p,
        CS,
        0xF000,
        cs_attrib,
        0xFFFF,
        u64::from(eip & 0xFFFF_0000),
    );
    segment(&mut p, GDTR, 0, 0, 0xFFFF, 0);
    segment(&mut p, LDTR, 0, 0x0082, 0xFFFF, 0);
    segment(&mut p, IDTR, 0, 0, 0xFFFF, 0);
    segment(&mut p, TR, 0, profile.tr_attrib, 0xFFFF, 0);
    put(&mut p, EFER, &0x1000u64.to_le_bytes()); // SVME
    put(&mut p, CR4, &0x40u64.to_le_bytes()); // MCE
    put(&mut p, CR0, &0x10u64.to_le_bytes()); // ET
    put(&mut p, DR7, &0x400u64.to_le_bytes());
    put(&mut p, DR6, &0xFFFF_0FF0u64.to_le_bytes());
    put(&mut p, RFLAGS, &0x2u64.to_le_bytes());
    put(&mut p, RIP, &u64::from(eip & 0xFFFF).to_le_bytes());
    put(&mut p, G_PAT, &profile.g_pat.to_le_bytes());
    let rdx = match profile.rdx {
        Rdx::CpuSignature => cfg.cpu_signature,
        Rdx::Fixed(v) => v,
    };
    put(&mut p, RDX, &u64::from(rdx).to_le_bytes());
    put(&mut p, SEV_FEATURES, &cfg.sev_features.to_le_bytes());
    put(&mut p, XCR0, &0x1u64.to_le_bytes());
    if profile.fpu_from_form && cfg.form == VmsaForm::Init2 {
        put(&mut p, MXCSR, &0x1F80u32.to_le_bytes());
        put(&mut p, X87_FCW, &0x037Fu16.to_le_bytes());
    }
    p
}

/// The VMSA of every vCPU (the boot vCPU's too) of an OVMF + COCONUT-SVSM
/// launch, as sev-snp-measure 0.0.13 builds it (`--mode snp:svsm`,
/// `VMSA_SVSM`, measurement.md §5): flat 32-bit protected mode (CS selector
/// 8, data selectors 16, 4 GiB limits, CR0 PE|ET) starting at `rip`, the
/// SVSM's entry point; RDX the vCPU signature; SEV_FEATURES 0x1; MXCSR
/// 0x1F80.
pub fn build_svsm(cpu_signature: u32, rip: u64) -> Box<[u8; VMSA_LEN]> {
    let mut p = Box::new([0u8; VMSA_LEN]);
    for seg in [ES, SS, DS, FS] {
        segment(&mut p, seg, 16, 0x0C93, 0xFFFF_FFFF, 0);
    }
    segment(&mut p, CS, 8, 0x0C9B, 0xFFFF_FFFF, 0);
    segment(&mut p, GS, 0, 0x0093, 0xFFFF, 0);
    segment(&mut p, GDTR, 0, 0, 0xFFFF, 0);
    segment(&mut p, LDTR, 0, 0x0082, 0xFFFF, 0);
    segment(&mut p, IDTR, 0, 0, 0xFFFF, 0);
    segment(&mut p, TR, 0, 0x008B, 0xFFFF, 0);
    put(&mut p, EFER, &0x1000u64.to_le_bytes()); // SVME
    put(&mut p, CR4, &0x40u64.to_le_bytes()); // MCE
    put(&mut p, CR0, &0x11u64.to_le_bytes()); // PE | ET
    put(&mut p, DR7, &0x400u64.to_le_bytes());
    put(&mut p, DR6, &0xFFFF_0FF0u64.to_le_bytes());
    put(&mut p, RFLAGS, &0x2u64.to_le_bytes());
    put(&mut p, RIP, &rip.to_le_bytes());
    put(&mut p, G_PAT, &QEMU_G_PAT.to_le_bytes());
    put(&mut p, RDX, &u64::from(cpu_signature).to_le_bytes());
    put(&mut p, SEV_FEATURES, &0x1u64.to_le_bytes()); // SNPActive, whatever is asked
    put(&mut p, XCR0, &0x1u64.to_le_bytes());
    put(&mut p, MXCSR, &0x1F80u32.to_le_bytes());
    // x87 FCW stays 0: sev-snp-measure 0.0.13 passes `fcw=0x37f` to its
    // ctypes structure, whose field is `x87_fcw`, so the keyword sets a
    // plain attribute and the field keeps 0 (measurement.md §5). Its tests
    // match hardware values that way; the digest must be byte-exact with it.
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn sha(p: &[u8]) -> String {
        hex::encode(Sha256::digest(p))
    }

    /// measurement.md §5 "Reproduced page digests", EPYC-v4, AP eip 0x80B004.
    #[test]
    fn page_digests() {
        let legacy = VmsaConfig {
            form: VmsaForm::Legacy,
            cpu_signature: 0x800F12,
            sev_features: 0,
        };
        assert_eq!(
            sha(&build(&legacy, BSP_RESET_EIP)[..]),
            "30a76bd1aa5adf81f02832d38c21e31b073cf0663dd2337455db2a3c210666af"
        );
        assert_eq!(
            sha(&build(&legacy, 0x80B004)[..]),
            "3d1cd8f98c320cb09405dae226a8bd6e18d8bfc0b4babda508c10963a6f3df19"
        );
        let init2 = VmsaConfig {
            form: VmsaForm::Init2,
            ..legacy
        };
        assert_eq!(
            sha(&build(&init2, BSP_RESET_EIP)[..]),
            "8295cef559b57130391d59605890ef93297720b48bef9a8c3c985b9c3fb0788c"
        );
        assert_eq!(
            sha(&build(&init2, 0x80B004)[..]),
            "7ff723da33f39dedbe8336bb697e0a2f76471690074d5902e1a8177cd5312c95"
        );
    }

    fn u16_at(p: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([p[at], p[at + 1]])
    }

    fn u64_at(p: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(p[at..at + 8].try_into().unwrap())
    }

    /// measurement.md §5 "VMM variants".
    #[test]
    fn vmm_variants() {
        let cfg = VmsaConfig {
            form: VmsaForm::Init2,
            cpu_signature: 0xA00F11,
            sev_features: 1,
        };
        // QEMU through build_for is build.
        assert_eq!(
            build_for(VmmType::Qemu, &cfg, 0x80B004),
            build(&cfg, 0x80B004)
        );
        let ec2_bsp = build_for(VmmType::Ec2, &cfg, BSP_RESET_EIP);
        let ec2_ap = build_for(VmmType::Ec2, &cfg, 0x80B004);
        assert_eq!(u16_at(&ec2_bsp[..], CS + 2), 0x9A);
        assert_eq!(u16_at(&ec2_ap[..], CS + 2), 0x9B);
        for p in [&ec2_bsp, &ec2_ap] {
            assert_eq!(u16_at(&p[..], SS + 2), 0x92);
            assert_eq!(u16_at(&p[..], TR + 2), 0x83);
            assert_eq!(u16_at(&p[..], DS + 2), 0x93);
            assert_eq!(u64_at(&p[..], RDX), 0x600);
            assert_eq!(u64_at(&p[..], G_PAT), QEMU_G_PAT);
            assert_eq!(&p[MXCSR..MXCSR + 4], &[0; 4], "ec2 never sets MXCSR");
            assert_eq!(&p[X87_FCW..X87_FCW + 2], &[0; 2]);
            assert_eq!(u64_at(&p[..], SEV_FEATURES), 1);
        }
        let gce = build_for(VmmType::Gce, &cfg, 0x80B004);
        assert_eq!(u16_at(&gce[..], CS + 2), 0x9B);
        assert_eq!(u16_at(&gce[..], SS + 2), 0x93);
        assert_eq!(u16_at(&gce[..], TR + 2), 0x8B);
        assert_eq!(u64_at(&gce[..], G_PAT), 0x0007_0106);
        assert_eq!(u64_at(&gce[..], RDX), 0x600);
        assert_eq!(&gce[MXCSR..MXCSR + 4], &[0; 4]);
        // Only the listed fields differ from QEMU's page.
        let qemu = build(&cfg, 0x80B004);
        let differing: Vec<usize> = (0..VMSA_LEN).filter(|&i| qemu[i] != gce[i]).collect();
        assert!(differing.iter().all(|&i| (G_PAT..G_PAT + 8).contains(&i)
            || (RDX..RDX + 8).contains(&i)
            || (MXCSR..MXCSR + 4).contains(&i)
            || (X87_FCW..X87_FCW + 2).contains(&i)));
        // A profile field can be changed to model a variant (virtee/sev's ec2: RDX 0).
        let mut p = VmmType::Ec2.profile();
        p.rdx = Rdx::Fixed(0);
        assert_eq!(u64_at(&build_profile(&p, &cfg, BSP_RESET_EIP)[..], RDX), 0);
    }

    /// The SVSM form: every field sev-snp-measure 0.0.13's `VMSA_SVSM` sets,
    /// at its offset, and nothing else.
    #[test]
    fn svsm_form() {
        let p = build_svsm(0xA00F11, 0x1_2345_6789);
        let mut want = vec![0u8; VMSA_LEN];
        let mut set = |at: usize, v: &[u8]| want[at..at + v.len()].copy_from_slice(v);
        for seg in [ES, SS, DS, FS] {
            set(seg, &[16, 0, 0x93, 0x0C, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        set(CS, &[8, 0, 0x9B, 0x0C, 0xFF, 0xFF, 0xFF, 0xFF]);
        set(GS, &[0, 0, 0x93, 0, 0xFF, 0xFF]);
        set(GDTR + 4, &[0xFF, 0xFF]);
        set(IDTR + 4, &[0xFF, 0xFF]);
        set(LDTR, &[0, 0, 0x82, 0, 0xFF, 0xFF]);
        set(TR, &[0, 0, 0x8B, 0, 0xFF, 0xFF]);
        set(EFER, &[0, 0x10]);
        set(CR4, &[0x40]);
        set(CR0, &[0x11]);
        set(DR7, &[0, 4]);
        set(DR6, &[0xF0, 0x0F, 0xFF, 0xFF]);
        set(RFLAGS, &[2]);
        set(RIP, &[0x89, 0x67, 0x45, 0x23, 1]);
        set(G_PAT, &[6, 4, 7, 0, 6, 4, 7, 0]);
        set(RDX, &[0x11, 0x0F, 0xA0]);
        set(SEV_FEATURES, &[1]);
        set(XCR0, &[1]);
        set(MXCSR, &[0x80, 0x1F]);
        assert_eq!(&p[..], &want[..]);
    }
}
