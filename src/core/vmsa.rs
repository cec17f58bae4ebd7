//! The initial VMSA (VM save area) page of an SEV-ES vCPU, as QEMU and KVM
//! set it up before LAUNCH_UPDATE_VMSA measures it.
//!
//! Layout: Linux `struct sev_es_save_area`, AMD APM Vol. 2 Table B-4.

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
const RIP: usize = 0x178;
const G_PAT: usize = 0x268;
const RDX: usize = 0x310;
const SEV_FEATURES: usize = 0x3B0;
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

/// Builds the VMSA of a vCPU that starts at `eip`: [`BSP_RESET_EIP`] for the
/// boot CPU, the OVMF SEV-ES reset block address for the others.
pub fn build(cfg: &VmsaConfig, eip: u32) -> Box<[u8; VMSA_LEN]> {
    let mut p = Box::new([0u8; VMSA_LEN]);
    // Real-mode reset state; QEMU's attributes (accessed data/code segments,
    // LDT, busy 32-bit TSS) override KVM's defaults.
    for seg in [ES, SS, DS, FS, GS] {
        segment(&mut p, seg, 0, 0x0093, 0xFFFF, 0);
    }
    segment(
        &mut p,
        CS,
        0xF000,
        0x009B,
        0xFFFF,
        u64::from(eip & 0xFFFF_0000),
    );
    segment(&mut p, GDTR, 0, 0, 0xFFFF, 0);
    segment(&mut p, LDTR, 0, 0x0082, 0xFFFF, 0);
    segment(&mut p, IDTR, 0, 0, 0xFFFF, 0);
    segment(&mut p, TR, 0, 0x008B, 0xFFFF, 0);
    put(&mut p, EFER, &0x1000u64.to_le_bytes()); // SVME
    put(&mut p, CR4, &0x40u64.to_le_bytes()); // MCE
    put(&mut p, CR0, &0x10u64.to_le_bytes()); // ET
    put(&mut p, DR7, &0x400u64.to_le_bytes());
    put(&mut p, DR6, &0xFFFF_0FF0u64.to_le_bytes());
    put(&mut p, RFLAGS, &0x2u64.to_le_bytes());
    put(&mut p, RIP, &u64::from(eip & 0xFFFF).to_le_bytes());
    put(&mut p, G_PAT, &0x0007_0406_0007_0406u64.to_le_bytes());
    put(&mut p, RDX, &u64::from(cfg.cpu_signature).to_le_bytes());
    put(&mut p, SEV_FEATURES, &cfg.sev_features.to_le_bytes());
    put(&mut p, XCR0, &0x1u64.to_le_bytes());
    if cfg.form == VmsaForm::Init2 {
        put(&mut p, MXCSR, &0x1F80u32.to_le_bytes());
        put(&mut p, X87_FCW, &0x037Fu16.to_le_bytes());
    }
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
}
