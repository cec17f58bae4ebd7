//! The named fields of an SEV-SNP VMSA page, so that two VMSAs' difference
//! is said as a register ("RIP", "CS base") rather than as a byte offset.
//! The offsets are the `igvm` crate's own layout of the save area
//! (`SevVmsa`, the AMD APM's VMCB save state area for SEV-ES), taken with
//! `offset_of!` so that they cannot drift from the parser's.

use std::mem::offset_of;

use igvm::snp_defs::{SevSelector, SevVmsa};

use crate::core::snp::PAGE_LEN;

/// One field of the VMSA: its name, offset and length in bytes (at most 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmsaField {
    /// The register's name, as the APM spells it ("RIP", "CS base").
    pub name: &'static str,
    /// Its offset in the page.
    pub offset: usize,
    /// Its length in bytes: 1, 2, 4 or 8.
    pub len: usize,
}

macro_rules! field {
    ($name:literal, $f:ident, $len:literal) => {
        VmsaField {
            name: $name,
            offset: offset_of!(SevVmsa, $f),
            len: $len,
        }
    };
}

macro_rules! segment {
    ($name:literal, $f:ident) => {
        [
            VmsaField {
                name: concat!($name, " selector"),
                offset: offset_of!(SevVmsa, $f) + offset_of!(SevSelector, selector),
                len: 2,
            },
            VmsaField {
                name: concat!($name, " attributes"),
                offset: offset_of!(SevVmsa, $f) + offset_of!(SevSelector, attrib),
                len: 2,
            },
            VmsaField {
                name: concat!($name, " limit"),
                offset: offset_of!(SevVmsa, $f) + offset_of!(SevSelector, limit),
                len: 4,
            },
            VmsaField {
                name: concat!($name, " base"),
                offset: offset_of!(SevVmsa, $f) + offset_of!(SevSelector, base),
                len: 8,
            },
        ]
    };
}

/// The registers an IGVM file's VMSA sets, in page order.
fn table() -> Vec<VmsaField> {
    let mut t = segments();
    t.extend(registers());
    t
}

/// The segment registers' four fields each.
fn segments() -> Vec<VmsaField> {
    let mut t = Vec::with_capacity(40);
    for s in [
        segment!("ES", es),
        segment!("CS", cs),
        segment!("SS", ss),
        segment!("DS", ds),
        segment!("FS", fs),
        segment!("GS", gs),
        segment!("GDTR", gdtr),
        segment!("LDTR", ldtr),
        segment!("IDTR", idtr),
        segment!("TR", tr),
    ] {
        t.extend(s);
    }
    t
}

/// The other registers.
fn registers() -> Vec<VmsaField> {
    vec![
        field!("PL0_SSP", pl0_ssp, 8),
        field!("PL1_SSP", pl1_ssp, 8),
        field!("PL2_SSP", pl2_ssp, 8),
        field!("PL3_SSP", pl3_ssp, 8),
        field!("U_CET", u_cet, 8),
        field!("VMPL", vmpl, 1),
        field!("CPL", cpl, 1),
        field!("EFER", efer, 8),
        field!("XSS", xss, 8),
        field!("CR4", cr4, 8),
        field!("CR3", cr3, 8),
        field!("CR0", cr0, 8),
        field!("DR7", dr7, 8),
        field!("DR6", dr6, 8),
        field!("RFLAGS", rflags, 8),
        field!("RIP", rip, 8),
        field!("DR0", dr0, 8),
        field!("DR1", dr1, 8),
        field!("DR2", dr2, 8),
        field!("DR3", dr3, 8),
        field!("RSP", rsp, 8),
        field!("S_CET", s_cet, 8),
        field!("SSP", ssp, 8),
        field!("ISST_ADDR", interrupt_ssp_table_addr, 8),
        field!("RAX", rax, 8),
        field!("STAR", star, 8),
        field!("LSTAR", lstar, 8),
        field!("CSTAR", cstar, 8),
        field!("SFMASK", sfmask, 8),
        field!("KernelGsBase", kernel_gs_base, 8),
        field!("SYSENTER_CS", sysenter_cs, 8),
        field!("SYSENTER_ESP", sysenter_esp, 8),
        field!("SYSENTER_EIP", sysenter_eip, 8),
        field!("CR2", cr2, 8),
        field!("G_PAT", pat, 8),
        field!("DBGCTL", dbgctl, 8),
        field!("SPEC_CTRL", spec_ctrl, 8),
        field!("RCX", rcx, 8),
        field!("RDX", rdx, 8),
        field!("RBX", rbx, 8),
        field!("RBP", rbp, 8),
        field!("RSI", rsi, 8),
        field!("RDI", rdi, 8),
        field!("R8", r8, 8),
        field!("R9", r9, 8),
        field!("R10", r10, 8),
        field!("R11", r11, 8),
        field!("R12", r12, 8),
        field!("R13", r13, 8),
        field!("R14", r14, 8),
        field!("R15", r15, 8),
        field!("SEV_FEATURES", sev_features, 8),
        field!("VINTR_CTRL", v_intr_cntrl, 8),
        field!("VIRTUAL_TOM", virtual_tom, 8),
        field!("EVENT_INJ", event_inject, 8),
        field!("XCR0", xcr0, 8),
        field!("X87_DP", x87dp, 8),
        field!("MXCSR", mxcsr, 4),
        field!("X87_FTW", x87_ftw, 2),
        field!("X87_FSW", x87_fsw, 2),
        field!("X87_FCW", x87_fcw, 2),
        field!("X87_OP", x87_op, 2),
        field!("X87_DS", x87_ds, 2),
        field!("X87_CS", x87_cs, 2),
        field!("X87_RIP", x87_rip, 8),
    ]
}

/// The RIP field: where the vCPU starts.
pub fn rip() -> VmsaField {
    field!("RIP", rip, 8)
}

/// The SEV_FEATURES field.
pub fn sev_features() -> VmsaField {
    field!("SEV_FEATURES", sev_features, 8)
}

impl VmsaField {
    /// The field's value in `page`, little-endian.
    pub fn value(&self, page: &[u8; PAGE_LEN]) -> u64 {
        let mut b = [0u8; 8];
        b[..self.len].copy_from_slice(&page[self.offset..self.offset + self.len]);
        u64::from_le_bytes(b)
    }

    /// `page` with the field set to `v` (truncated to the field's length).
    pub fn with(&self, page: &[u8; PAGE_LEN], v: u64) -> Box<[u8; PAGE_LEN]> {
        let mut p = Box::new(*page);
        p[self.offset..self.offset + self.len].copy_from_slice(&v.to_le_bytes()[..self.len]);
        p
    }
}

/// Every field in which two VMSA pages differ: the named registers, then
/// each other 8-byte word (named by its offset, "byte 0x400") that differs.
pub fn differences(a: &[u8; PAGE_LEN], b: &[u8; PAGE_LEN]) -> Vec<VmsaField> {
    let named = table();
    let mut covered = [false; PAGE_LEN];
    let mut out = Vec::new();
    for f in &named {
        covered[f.offset..f.offset + f.len].fill(true);
        if a[f.offset..f.offset + f.len] != b[f.offset..f.offset + f.len] {
            out.push(*f);
        }
    }
    for off in (0..PAGE_LEN).step_by(8) {
        let differs = (off..off + 8).any(|i| !covered[i] && a[i] != b[i]);
        if differs {
            out.push(VmsaField {
                name: "",
                offset: off,
                len: 8,
            });
        }
    }
    out.sort_by_key(|f| f.offset);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vmsa;

    #[test]
    fn offsets_agree_with_the_vmsa_builder() {
        // The builder's offsets come from the APM by hand; the crate's by layout.
        assert_eq!(rip().offset, vmsa::RIP);
        assert_eq!(sev_features().offset, vmsa::SEV_FEATURES);
        let t = table();
        let at = |n: &str| t.iter().find(|f| f.name == n).unwrap().offset;
        assert_eq!(at("CS base"), 0x18);
        assert_eq!(at("EFER"), 0xD0);
        assert_eq!(at("CR0"), 0x158);
        assert_eq!(at("RDX"), 0x310);
        assert_eq!(at("XCR0"), 0x3E8);
        assert_eq!(at("MXCSR"), 0x408);
        assert_eq!(at("X87_FCW"), 0x410);
        // No two fields overlap.
        let mut s = t.clone();
        s.sort_by_key(|f| f.offset);
        for w in s.windows(2) {
            assert!(w[0].offset + w[0].len <= w[1].offset, "{w:?}");
        }
    }

    #[test]
    fn differences_are_named() {
        let a = [0u8; PAGE_LEN];
        let b = rip().with(&a, 0x1234);
        let mut c = sev_features().with(&b, 0x21);
        c[0x800] = 1;
        let d = differences(&a, &c);
        let names: Vec<_> = d.iter().map(|f| (f.name, f.offset)).collect();
        assert_eq!(
            names,
            [("RIP", 0x178), ("SEV_FEATURES", 0x3B0), ("", 0x800)]
        );
        assert_eq!(rip().value(&c), 0x1234);
        assert!(differences(&a, &a).is_empty());
    }
}
