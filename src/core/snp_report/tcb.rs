//! TCB_VERSION: the security patch levels of the firmware components, in
//! the two byte layouts AMD has used (Milan and Genoa, then Turin).

use std::fmt;

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
    /// BOOT_LOADER SPL (KDS `blSPL`).
    pub bootloader: u8,
    /// TEE SPL (KDS `teeSPL`).
    pub tee: u8,
    /// SNP firmware SPL (KDS `snpSPL`).
    pub snp: u8,
    /// MICROCODE SPL (KDS `ucodeSPL`).
    pub microcode: u8,
}

impl TcbVersion {
    /// Decodes the 8 bytes (as a little-endian integer) in a layout.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
