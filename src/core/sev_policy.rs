//! The SEV guest policy bits (SEV API, guest policy): a format shared by
//! the SEV stages and the sources that report it.

bitflags::bitflags! {
    /// The SEV guest policy (SEV API §3, Table 2). Bits 16-23 and 24-31 are
    /// the minimum API major and minor version, not flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SevPolicy: u32 {
        /// Debugging of the guest is disallowed.
        const NODBG = 1 << 0;
        /// Sharing keys with other guests is disallowed.
        const NOKS = 1 << 1;
        /// SEV-ES is required.
        const ES = 1 << 2;
        /// Sending the guest to another platform is disallowed.
        const NOSEND = 1 << 3;
        /// The guest may be sent only within its domain.
        const DOMAIN = 1 << 4;
        /// The guest may be sent only to SEV platforms.
        const SEV = 1 << 5;
    }
}

impl SevPolicy {
    /// The minimum firmware API (major, minor) the policy demands.
    pub fn min_api(raw: u32) -> (u8, u8) {
        ((raw >> 16) as u8, (raw >> 24) as u8)
    }

    /// Names of the flags set, in bit order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter_names().map(|(n, _)| n).collect()
    }
}
