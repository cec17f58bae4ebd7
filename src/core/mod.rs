//! The pure core: formats and cryptography, no I/O beyond the readers it is
//! handed.

pub mod cpu;
pub mod guid;
pub mod id_block;
pub mod igvm;
pub mod kernel_hashes;
pub mod keys;
pub mod measurement;
pub mod ovmf;
pub mod secret;
pub mod sev_policy;
pub mod snp;
pub mod snp_cert;
pub mod snp_report;
pub mod snp_secret;
pub mod vmsa;

/// Lower-case hex, built in one allocation of the exact size: it may hold
/// key bytes (--show-keys), and a growing string would leave copies that a
/// Zeroizing wrapper around the result cannot wipe.
pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * b.len());
    for &x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_and_exactly_sized() {
        let s = super::hex(&[0x00, 0x0f, 0xa5, 0xff]);
        assert_eq!(s, "000fa5ff");
        assert_eq!(s.capacity(), 8);
    }
}
