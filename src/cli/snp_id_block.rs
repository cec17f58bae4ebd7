//! `snp-id-block`: a signed SEV-SNP ID block and ID auth for an expected
//! launch digest, in the forms QEMU's `sev-snp-guest` object and libvirt's
//! `<launchSecurity type='sev-snp'>` take.

use std::path::PathBuf;

use base64::Engine as _;
use clap::Args;

use super::num::{family_id, image_id, parse_u32, parse_u64};
use super::snp_digest::parse_ld;
use crate::core::hex;
use crate::error::Result;
use crate::snp::id_block::{self, IdBlockFields};

#[derive(Debug, Args)]
pub(crate) struct IdBlockArgs {
    /// Expected launch digest: 96 hex digits or base64 of 48 bytes (snp-digest prints either)
    #[arg(long, value_name = "HEX|BASE64")]
    digest: String,

    /// ID key: ECDSA P-384 private key, PEM (PKCS#8 or SEC1 "EC PRIVATE KEY")
    #[arg(long, value_name = "PEM")]
    id_key: PathBuf,

    /// Author key: ECDSA P-384 private key, PEM; signs the ID key (QEMU author-key-enabled=on)
    #[arg(long, value_name = "PEM")]
    author_key: Option<PathBuf>,

    /// Guest policy; must equal the guest's SNP policy (QEMU sev-snp-guest,policy=)
    #[arg(long, value_name = "VALUE", value_parser = parse_u64, default_value = "0x30000")]
    policy: u64,

    /// Family ID: 16 bytes as 32 hex digits or base64 (default zero)
    #[arg(long, value_name = "HEX", value_parser = family_id)]
    family_id: Option<[u8; 16]>,

    /// Image ID: 16 bytes as 32 hex digits or base64 (default zero)
    #[arg(long, value_name = "HEX", value_parser = image_id)]
    image_id: Option<[u8; 16]>,

    /// Guest security version number
    #[arg(long, value_name = "N", value_parser = parse_u32, default_value = "0")]
    svn: u32,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub(crate) fn snp_id_block(a: &IdBlockArgs) -> Result<String> {
    let ld = parse_ld("--digest", &a.digest)?;
    id_block::check_policy(a.policy)?;
    let author = a.author_key.iter().map(|p| ("--author-key", p.as_path()));
    let keys = [("--id-key", a.id_key.as_path())].into_iter().chain(author);
    crate::input::at_most_one_stdin(keys)?;
    let id_key = id_block::read_key("ID key", &a.id_key)?;
    let author_key = a
        .author_key
        .as_deref()
        .map(|p| id_block::read_key("author key", p))
        .transpose()?;
    let fields = IdBlockFields {
        policy: a.policy,
        family_id: a.family_id.unwrap_or_default(),
        image_id: a.image_id.unwrap_or_default(),
        guest_svn: a.svn,
    };
    let (block, auth) = id_block::sign(ld, &fields, &id_key, author_key.as_ref())?;
    let block_b64 = b64(&block.to_bytes());
    let auth_b64 = b64(&auth.to_bytes()[..]);
    let mut out = String::new();
    out.push_str(&format!(
        "# QEMU: -object sev-snp-guest,id=sev0,policy={:#x},...,<the next line>\n",
        a.policy
    ));
    out.push_str(&format!("id-block={block_b64},id-auth={auth_b64}"));
    if author_key.is_some() {
        out.push_str(",author-key-enabled=on");
    }
    out.push('\n');
    out.push_str("# libvirt domain XML:\n");
    out.push_str(&format!(
        "<launchSecurity type='sev-snp'{}>\n",
        if author_key.is_some() {
            " authorKey='yes'"
        } else {
            ""
        }
    ));
    out.push_str(&format!("  <policy>{:#010x}</policy>\n", a.policy));
    out.push_str(&format!("  <idBlock>{block_b64}</idBlock>\n"));
    out.push_str(&format!("  <idAuth>{auth_b64}</idAuth>\n"));
    out.push_str("</launchSecurity>\n");
    // Digests in hex, as every other output prints them and as
    // --trusted-id-key-digest takes them back.
    out.push_str(&format!(
        "id_key_digest: {}\n",
        hex(&id_key.public_key_digest())
    ));
    if let Some(k) = &author_key {
        out.push_str(&format!(
            "author_key_digest: {}\n",
            hex(&k.public_key_digest())
        ));
    }
    Ok(out)
}
