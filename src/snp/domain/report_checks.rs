//! A guest's attestation report held to its domain: the fields the domain
//! gave the firmware, each a named check.

use super::SnpDomain;
use crate::core::hex;
use crate::core::id_block::IdBlock;
use crate::core::snp_report::{AttestationReport, SigningKey};
use crate::snp::validate::Check;

/// The report fields the domain decides (snp-attestation.md §6), each as a
/// named check: `domain.policy` (POLICY is `<policy>`), `domain.host_data`
/// (HOST_DATA is `<hostData>`, zero without), `domain.family_id`,
/// `domain.image_id`, `domain.guest_svn` (from the ID block, zero without),
/// `domain.id_key_digest` (the ID key of `<idAuth>`, zero without an ID
/// block), `domain.author_key` (AUTHOR_KEY_EN and AUTHOR_KEY_DIGEST as
/// `authorKey` says) and `domain.signing_key` (a VLEK with `vcek='no'`).
/// They add to snp-validate's checks, whose expectations cannot say "exactly
/// this policy" or "exactly this ID key".
pub fn report_checks(s: &SnpDomain, report: &AttestationReport) -> Vec<Check> {
    let block = s.id_block.as_ref();
    let mut c = vec![
        exact_field(
            "domain.policy",
            "POLICY",
            &report.policy.0.to_le_bytes(),
            &s.policy.to_le_bytes(),
            "<policy>",
        ),
        exact_field(
            "domain.host_data",
            "HOST_DATA",
            &report.host_data,
            &s.host_data.unwrap_or([0; 32]),
            if s.host_data.is_some() {
                "<hostData>"
            } else {
                "zero: the domain has no <hostData>"
            },
        ),
        exact_field(
            "domain.family_id",
            "FAMILY_ID",
            &report.family_id,
            &block.map_or([0; 16], |b| b.family_id),
            id_block_origin(block),
        ),
        exact_field(
            "domain.image_id",
            "IMAGE_ID",
            &report.image_id,
            &block.map_or([0; 16], |b| b.image_id),
            id_block_origin(block),
        ),
        exact_field(
            "domain.guest_svn",
            "GUEST_SVN",
            &report.guest_svn.to_le_bytes(),
            &block.map_or(0, |b| b.guest_svn).to_le_bytes(),
            id_block_origin(block),
        ),
    ];
    let id_key = if block.is_some() {
        s.id_key_digest().unwrap_or([0; 48])
    } else {
        [0; 48]
    };
    c.push(exact_field(
        "domain.id_key_digest",
        "ID_KEY_DIGEST",
        &report.id_key_digest,
        &id_key,
        if block.is_some() {
            "the ID key in <idAuth>"
        } else {
            "zero: the domain has no <idBlock>"
        },
    ));
    c.push(author_key_report_check(s, report));
    c.push(signing_key_report_check(s, report));
    c
}

fn id_block_origin(block: Option<&IdBlock>) -> &'static str {
    if block.is_some() {
        "the domain's <idBlock>"
    } else {
        "zero: the domain has no <idBlock>"
    }
}

/// One field that must equal what the domain gave the firmware. Integers
/// are compared and shown as their little-endian bytes' value.
fn exact_field(name: &'static str, field: &str, got: &[u8], want: &[u8], origin: &str) -> Check {
    let show = |b: &[u8]| match b.len() {
        4 => format!("{:#x}", u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            format!("{:#x}", u64::from_le_bytes(a))
        }
        _ => hex(b),
    };
    if got == want {
        Check::pass(name, format!("{field} is {} ({origin})", show(got)))
    } else {
        Check::fail(
            name,
            format!(
                "{field} is {}, but the domain gives {} ({origin}): the guest was not launched as \
                 its domain says",
                show(got),
                show(want)
            ),
        )
    }
}

/// AUTHOR_KEY_EN is `authorKey`, and AUTHOR_KEY_DIGEST the author key's digest.
fn author_key_report_check(s: &SnpDomain, report: &AttestationReport) -> Check {
    const NAME: &str = "domain.author_key";
    let en = report.key_info.author_key_en;
    let want = if s.author_key_enabled && s.id_block.is_some() {
        s.author_key_digest()
    } else {
        None
    };
    match (want, en) {
        (None, false) if report.author_key_digest == [0; 48] => Check::pass(
            NAME,
            "AUTHOR_KEY_EN is 0 and AUTHOR_KEY_DIGEST zero: the domain enables no author key",
        ),
        (None, _) => Check::fail(
            NAME,
            format!(
                "AUTHOR_KEY_EN is {} with AUTHOR_KEY_DIGEST {}, but the domain enables no author \
                 key (no authorKey='yes' with an author key in <idAuth>)",
                u8::from(en),
                hex(&report.author_key_digest)
            ),
        ),
        (Some(d), true) if d == report.author_key_digest => Check::pass(
            NAME,
            format!(
                "AUTHOR_KEY_DIGEST is {}, the author key in <idAuth>",
                hex(&d)
            ),
        ),
        (Some(d), _) => Check::fail(
            NAME,
            format!(
                "AUTHOR_KEY_EN is {} with AUTHOR_KEY_DIGEST {}, but the domain's authorKey='yes' \
                 gives {} (the author key in <idAuth>)",
                u8::from(en),
                hex(&report.author_key_digest),
                hex(&d)
            ),
        ),
    }
}

/// `vcek='no'`: the report must be signed by a VLEK.
fn signing_key_report_check(s: &SnpDomain, report: &AttestationReport) -> Check {
    const NAME: &str = "domain.signing_key";
    let got = report.key_info.signing_key;
    match s.signing_key() {
        Some(SigningKey::Vlek) if got == SigningKey::Vlek => {
            Check::pass(NAME, "signed by a VLEK, as vcek='no' makes it")
        }
        Some(want) => Check::fail(
            NAME,
            format!(
                "the report is signed by the {}, but the domain's vcek='no' makes the firmware \
                 sign with the {}: this report is not from that launch",
                got.name(),
                want.name()
            ),
        ),
        None => Check::pass(
            NAME,
            format!(
                "signed by the {} (the domain allows the VCEK or a VLEK the host loaded)",
                got.name()
            ),
        ),
    }
}
