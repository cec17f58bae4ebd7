//! The guest context's launch digest and the PAGE_INFO structure that
//! SNP_LAUNCH_UPDATE extends it with, one page at a time.

use super::{sha384, Ld, LD_LEN, PAGE_LEN, VMSA_GPA};
use crate::core::vmsa::VMSA_LEN;

const PAGE_INFO_LEN: usize = 0x70;

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
        // aws-lc's SHA-384 ([`sha384`]): the IGVM explainer hashes millions
        // of these.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
