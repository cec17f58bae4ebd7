//! SEV-SNP ID blocks from the owner's keys: the block for an expected launch
//! digest, signed with the ID key (and the ID key with the author key), as
//! QEMU's `sev-snp-guest` object and libvirt's `<launchSecurity
//! type='sev-snp'>` take them.

use std::path::Path;

use crate::core::id_block::{IdAuth, IdBlock, SnpKey};
use crate::core::snp::Ld;
use crate::core::snp_report::PolicyFlags;
use crate::error::{Error, Result};
use crate::input;
use crate::input::Size;

/// What the owner puts in an ID block besides the launch digest.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdBlockFields {
    /// The guest policy: the guest's SNP policy exactly.
    pub policy: u64,
    /// FAMILY_ID.
    pub family_id: [u8; 16],
    /// IMAGE_ID.
    pub image_id: [u8; 16],
    /// GUEST_SVN.
    pub guest_svn: u32,
}

/// The SNP firmware requires policy bit 17 set (reserved, must be one).
pub fn check_policy(policy: u64) -> Result<()> {
    if PolicyFlags::from_bits_retain(policy).contains(PolicyFlags::RESERVED_17) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "--policy {policy:#x} has bit 17 clear, but the SNP firmware requires it set (reserved, must be one); QEMU's default guest policy is 0x30000"
    )))
}

/// The ID block for `ld` and its ID auth, signed with `id_key` (and the ID
/// key signed with `author_key`); the signatures are verified before they
/// are returned.
pub fn sign(
    ld: Ld,
    fields: &IdBlockFields,
    id_key: &SnpKey,
    author_key: Option<&SnpKey>,
) -> Result<(IdBlock, IdAuth)> {
    check_policy(fields.policy)?;
    let mut block = IdBlock::new(ld);
    block.policy = fields.policy;
    block.guest_svn = fields.guest_svn;
    block.family_id = fields.family_id;
    block.image_id = fields.image_id;
    let auth = IdAuth::sign(&block, id_key, author_key);
    // Our own signatures must verify before anyone relies on them.
    auth.verify(&block)
        .map_err(|e| Error::Unexpected(format!("the ID auth just signed does not verify: {e}")))?;
    Ok((block, auth))
}

/// An ECDSA P-384 private key from a PEM file (PKCS#8 or SEC1), read into a
/// buffer that is wiped.
pub fn read_key(what: &str, path: &Path) -> Result<SnpKey> {
    const LIMIT: usize = 64 * 1024;
    let too_large = |size: Size| {
        Error::Usage(format!(
            "{what} '{}' is {size}, too large for a PEM private key",
            path.display()
        ))
    };
    // Read whole (a pipe from a password manager has no size) into a buffer
    // that is wiped: it holds the private key.
    let pem = input::read_within(what, path, LIMIT, too_large)?;
    let text = std::str::from_utf8(&pem).map_err(|_| {
        Error::Usage(format!(
            "{what} '{}' is not a PEM file (it is not text); convert a DER key with: openssl pkey -in KEY.der -inform DER -out KEY.pem",
            path.display()
        ))
    })?;
    SnpKey::from_pem(text).map_err(|e| Error::Usage(format!("{what} '{}': {e}", path.display())))
}
