//! REPORT_DATA as the binding of the owner's nonce and the guest's public
//! key: SHA-512(label ‖ nonce ‖ public key).

use sha2::{Digest, Sha512};

use super::{LABEL, NONCE_LEN};

/// The 64 bytes the guest puts in REPORT_DATA for `nonce` and `public_key`.
pub fn report_data(nonce: &[u8; NONCE_LEN], public_key: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(LABEL);
    h.update(nonce);
    h.update(public_key);
    h.finalize().into()
}
