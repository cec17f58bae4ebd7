//! The ID block before launch: whether SNP_LAUNCH_FINISH would accept it
//! for the launch the owner expects, and whether its keys are the owner's.

use super::SnpDomain;
use crate::core::hex;
use crate::core::id_block::{self, IdAuth, IdBlock, ALGO_ECDSA_P384_SHA384};
use crate::snp::validate::{Check, Status};

/// The owner's ID and author keys, as SHA-384 digests of the SNP public key structure.
#[derive(Debug, Clone, Default)]
pub struct IdKeys {
    /// `--trusted-id-key`.
    pub trusted_id_keys: Vec<[u8; 48]>,
    /// `--trusted-author-key`.
    pub trusted_author_keys: Vec<[u8; 48]>,
    /// `--require-author-key`.
    pub require_author_key: bool,
}

/// Whether SNP_LAUNCH_FINISH would accept the domain's ID block for the
/// launch whose digest is `expected_ld`, and whether its keys are the
/// owner's: the named checks `id-block-ld`, `id-block-policy`,
/// `id-block-signature`, `id-key-signature`, `id-key-trusted`,
/// `author-key-trusted` and `author-key-enabled`. `None` when the domain has
/// no ID block.
pub fn prelaunch(s: &SnpDomain, expected_ld: &[u8; 48], keys: &IdKeys) -> Option<Vec<Check>> {
    let block = s.id_block.as_ref()?;
    let auth = s.id_auth.as_deref();
    let id_sig = id_block_signature(block, auth);
    let author_sig = id_key_signature(auth);
    let author_ok = author_sig.status == Status::Pass;
    Some(vec![
        id_block_ld(block, expected_ld),
        id_block_policy(block, s.policy),
        id_sig,
        author_sig,
        id_key_trusted(auth, author_ok, keys),
        author_key_trusted(s, auth, author_ok, keys),
        author_key_enabled(s, auth),
    ])
}

fn id_block_ld(block: &IdBlock, expected_ld: &[u8; 48]) -> Check {
    if &block.ld == expected_ld {
        Check::pass(
            "id-block-ld",
            format!(
                "the ID block's LD {} is the launch digest of the domain",
                hex(&block.ld)
            ),
        )
    } else {
        Check::fail(
            "id-block-ld",
            format!(
                "the ID block's LD is {}, but the domain's launch measures {}: SNP_LAUNCH_FINISH \
                 would refuse the guest (Bad measurement, fw_error 11)",
                hex(&block.ld),
                hex(expected_ld)
            ),
        )
    }
}

fn id_block_policy(block: &IdBlock, policy: u64) -> Check {
    if block.policy == policy {
        Check::pass(
            "id-block-policy",
            format!("the ID block's POLICY {policy:#x} is the domain's <policy>"),
        )
    } else {
        Check::fail(
            "id-block-policy",
            format!(
                "the ID block's POLICY is {:#x}, but the domain's <policy> is {policy:#x}: \
                 SNP_LAUNCH_FINISH would refuse the guest; make the ID block for policy \
                 {policy:#x} or fix the domain's <policy>",
                block.policy
            ),
        )
    }
}

fn id_block_signature(block: &IdBlock, auth: Option<&IdAuth>) -> Check {
    const NAME: &str = "id-block-signature";
    let Some(auth) = auth else {
        return Check::fail(NAME, "there is no <idAuth> holding the ID key's signature");
    };
    if auth.id_key_algo != ALGO_ECDSA_P384_SHA384 {
        return Check::fail(
            NAME,
            format!(
                "ID_KEY_ALGO is {}, not 1 (ECDSA P-384 with SHA-384), the only algorithm the \
                 firmware knows",
                auth.id_key_algo
            ),
        );
    }
    match id_block::verify(&auth.id_key, &block.to_bytes(), &auth.id_block_sig) {
        Ok(()) => Check::pass(
            NAME,
            format!(
                "the ID key {} signs the ID block",
                hex(&id_block::key_digest(&auth.id_key))
            ),
        ),
        Err(e) => Check::fail(
            NAME,
            format!(
                "the ID block's signature in <idAuth> does not verify with the ID key {}: {e}; \
                 SNP_LAUNCH_FINISH would refuse the guest",
                hex(&id_block::key_digest(&auth.id_key))
            ),
        ),
    }
}

fn id_key_signature(auth: Option<&IdAuth>) -> Check {
    const NAME: &str = "id-key-signature";
    let Some(auth) = auth.filter(|a| a.has_author_key()) else {
        return Check::skip(NAME, "<idAuth> holds no author key");
    };
    if auth.auth_key_algo != ALGO_ECDSA_P384_SHA384 {
        return Check::fail(
            NAME,
            format!(
                "AUTH_KEY_ALGO is {}, not 1 (ECDSA P-384 with SHA-384), the only algorithm the \
                 firmware knows",
                auth.auth_key_algo
            ),
        );
    }
    let author = hex(&id_block::key_digest(&auth.author_key));
    match id_block::verify(&auth.author_key, &auth.id_key, &auth.id_key_sig) {
        Ok(()) => Check::pass(NAME, format!("the author key {author} signs the ID key")),
        Err(e) => Check::fail(
            NAME,
            format!("the ID key's signature in <idAuth> does not verify with the author key {author}: {e}"),
        ),
    }
}

/// The ID key is one the owner trusts, or is signed by a trusted author key
/// (the rule of snp-validate's `expect.id_key`).
fn id_key_trusted(auth: Option<&IdAuth>, author_ok: bool, keys: &IdKeys) -> Check {
    const NAME: &str = "id-key-trusted";
    if keys.trusted_id_keys.is_empty() && keys.trusted_author_keys.is_empty() {
        return Check::skip(NAME, "no trusted ID or author key given");
    }
    let Some(auth) = auth else {
        return Check::fail(NAME, "there is no <idAuth>, so no ID key");
    };
    let id = id_block::key_digest(&auth.id_key);
    let author = id_block::key_digest(&auth.author_key);
    if keys.trusted_id_keys.contains(&id) {
        Check::pass(NAME, format!("the ID key {} is a trusted ID key", hex(&id)))
    } else if author_ok && keys.trusted_author_keys.contains(&author) {
        Check::pass(
            NAME,
            format!(
                "the ID key {} is signed by the trusted author key {}",
                hex(&id),
                hex(&author)
            ),
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "the ID key {} is not a trusted ID key{}",
                hex(&id),
                if auth.has_author_key() {
                    " and is not signed by a trusted author key"
                } else {
                    ""
                }
            ),
        )
    }
}

fn author_key_trusted(
    s: &SnpDomain,
    auth: Option<&IdAuth>,
    author_ok: bool,
    keys: &IdKeys,
) -> Check {
    const NAME: &str = "author-key-trusted";
    if keys.trusted_author_keys.is_empty() && !keys.require_author_key {
        return Check::skip(NAME, "no trusted author key given");
    }
    let Some(auth) = auth.filter(|a| a.has_author_key()) else {
        return Check::fail(
            NAME,
            "<idAuth> holds no author key, and an author key is required",
        );
    };
    let author = id_block::key_digest(&auth.author_key);
    if !keys.trusted_author_keys.contains(&author) {
        return Check::fail(
            NAME,
            format!(
                "the author key {} is not a trusted author key",
                hex(&author)
            ),
        );
    }
    if !author_ok {
        return Check::fail(
            NAME,
            format!(
                "the author key {} is trusted but does not sign the ID key (see id-key-signature)",
                hex(&author)
            ),
        );
    }
    if keys.require_author_key && !s.author_key_enabled {
        return Check::fail(
            NAME,
            format!(
                "the author key {} is trusted, but without authorKey='yes' the report carries no \
                 AUTHOR_KEY_DIGEST, and an author key is required",
                hex(&author)
            ),
        );
    }
    Check::pass(NAME, format!("the author key {} is trusted", hex(&author)))
}

fn author_key_enabled(s: &SnpDomain, auth: Option<&IdAuth>) -> Check {
    const NAME: &str = "author-key-enabled";
    let has_author = auth.is_some_and(|a| a.has_author_key());
    match (s.author_key_enabled, has_author) {
        (true, true) => Check::pass(
            NAME,
            "authorKey='yes' and <idAuth> holds the author key: the report will carry its digest",
        ),
        (false, false) => Check::pass(NAME, "no authorKey and no author key in <idAuth>"),
        (true, false) => Check::fail(
            NAME,
            "authorKey='yes' but <idAuth> holds no author key: SNP_LAUNCH_FINISH would refuse the \
             guest; make the ID auth with an author key, or remove authorKey",
        ),
        (false, true) => Check::fail(
            NAME,
            "<idAuth> holds an author key but authorKey is not 'yes': the firmware ignores the key \
             and the report carries no AUTHOR_KEY_DIGEST; set authorKey='yes'",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snp_report::SigningKey;
    use crate::snp::domain::decode;
    use crate::source::xml::Domain;

    #[test]
    fn signing_key_and_digests_without_id_auth() {
        let d = Domain::parse(
            "<domain><launchSecurity type='sev-snp' vcek='no'><policy>0x30000</policy>\
             </launchSecurity></domain>",
        )
        .unwrap();
        let s = decode(&d).unwrap();
        assert_eq!(s.signing_key(), Some(SigningKey::Vlek));
        assert!(s.notes()[0].starts_with("vcek='no': the firmware signs"));
        assert_eq!((s.id_key_digest(), s.author_key_digest()), (None, None));
        assert!(prelaunch(&s, &[0; 48], &IdKeys::default()).is_none());
        // An ID block without its ID auth: a verdict that says so, not a panic.
        let mut with_block = s.clone();
        with_block.id_block = Some(IdBlock::new([0; 48]));
        let checks = prelaunch(&with_block, &[0; 48], &IdKeys::default()).unwrap();
        assert_eq!(checks[0].status, Status::Pass);
        assert_eq!(checks[2].status, Status::Fail);
        assert!(checks[2].message.contains("no <idAuth>"));
    }
}
