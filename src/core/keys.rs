//! The transport keys the guest owner shares with the SEV firmware: the TIK
//! (integrity, HMAC key) and the TEK (encryption, AES-128 key). Both are
//! wiped from memory when dropped and never printed by `Debug`.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of the TIK and of the TEK in bytes (128-bit keys).
pub const KEY_LEN: usize = 16;

macro_rules! transport_key {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The ", $what, ".")]
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; KEY_LEN]);

        impl $name {
            /// The key from exactly 16 bytes.
            pub fn from_slice(b: &[u8]) -> Option<$name> {
                <[u8; KEY_LEN]>::try_from(b).ok().map($name)
            }

            /// The raw key bytes.
            pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

transport_key!(Tik, "transport integrity key (TIK)");
transport_key!(Tek, "transport encryption key (TEK)");

/// Splits a 32-byte TK file as sevctl and libvirt write it: TEK first, then TIK.
pub fn split_tk(tk: &[u8]) -> Option<(Tek, Tik)> {
    if tk.len() != 2 * KEY_LEN {
        return None;
    }
    Some((
        Tek::from_slice(&tk[..KEY_LEN])?,
        Tik::from_slice(&tk[KEY_LEN..])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = Tik::from_slice(&[0xAB; 16]).unwrap();
        let s = format!("{k:?}");
        assert!(!s.to_lowercase().contains("ab"), "{s}");
    }

    #[test]
    fn tk_is_tek_then_tik() {
        let mut tk = [1u8; 32];
        tk[16..].fill(2);
        let (tek, tik) = split_tk(&tk).unwrap();
        assert_eq!(tek.as_bytes(), &[1; 16]);
        assert_eq!(tik.as_bytes(), &[2; 16]);
        assert!(split_tk(&tk[..31]).is_none());
    }
}
