//! AMD's revocation list (`chain.revocation`): the CRL signed by the ARK,
//! issued by it, current at the time of validation, and not listing the
//! AS(V)K. The VEK is not looked up: a CRL speaks only of certificates its
//! issuer issued (RFC 5280, 5.3.3: an entry names another issuer only in an
//! indirect CRL, which AMD's is not), the ARK issues the AS(V)K and the
//! AS(V)K the VEK, and every VCEK's serial is 0, so a VEK serial on the
//! ARK's list would name some other certificate, or every VCEK at once. AMD
//! does not revoke VCEKs; a TCB update supersedes them (`tcb.*`).

use super::{Checks, Ctx, Status};
use crate::core::hex;
use crate::core::snp_cert::{CaRole, Certificate, Crl};

/// The check's name.
const NAME: &str = "chain.revocation";

/// What the owner can do when no CRL is at hand.
pub const NO_CRL: &str =
    "no CRL: give --crl FILE, or --require-revocation-check to take AMD's from the KDS (or its cache)";

/// The CRL the revocation check reads, or why there is none.
#[derive(Debug, Clone)]
pub enum CrlInput {
    /// A CRL and where it came from (a file, the certificate table, the KDS or its cache).
    Found {
        /// The CRL, parsed.
        crl: Box<Crl>,
        /// Where it came from, for the messages.
        from: String,
    },
    /// No CRL at hand, and why (what the owner can give).
    Missing(String),
}

impl CrlInput {
    /// `("CRL", where from)` for the list of sources, when there is a CRL.
    pub fn source(&self) -> Option<(String, String)> {
        match self {
            CrlInput::Found { from, .. } => Some(("CRL".into(), from.clone())),
            CrlInput::Missing(_) => None,
        }
    }
}

fn time_text(t: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
        .to_string()
}

fn serial_text(c: &Certificate) -> String {
    match c.serial_u64() {
        Some(v) => format!("{v:#x}"),
        None => hex(&c.serial),
    }
}

/// `chain.revocation`: skipped without a CRL (failed under
/// `--require-revocation-check`), else the CRL's verdict.
pub(super) fn revocation_check(c: &mut Checks, cx: &Ctx) {
    let require = cx.expect.require_revocation_check;
    let (crl, from) = match cx.crl {
        Some(CrlInput::Found { crl, from }) => (crl, from.as_str()),
        Some(CrlInput::Missing(why)) => return missing(c, why, require),
        None => return missing(c, NO_CRL, require),
    };
    let ark = cx.anchors.get(cx.product, CaRole::Ark);
    let ask = cx.anchors.get(cx.product, cx.ca_role);
    let (Some(ark), Some(ask)) = (ark, ask) else {
        let m = format!(
            "the trust anchors hold no ARK and {} for {} to check the CRL with",
            cx.ca_role.name(),
            cx.product
        );
        return c.push(NAME, Status::Fail, m);
    };
    let (status, m) = verdict(cx, crl, from, ark, ask, require);
    c.push(NAME, status, m);
}

fn missing(c: &mut Checks, why: &str, require: bool) {
    if require {
        c.push(
            NAME,
            Status::Fail,
            format!("{why}; --require-revocation-check needs a CRL"),
        );
    } else {
        c.skip(NAME, why);
    }
}

/// What makes the CRL itself unusable: not signed by the ARK, another
/// issuer, or issued after the time of validation.
fn crl_problem(cx: &Ctx, crl: &Crl, from: &str, ark: &Certificate) -> Option<String> {
    let ark_cn = ark.subject.cn();
    if let Err(e) = crl.signed_by(ark) {
        return Some(format!(
            "the CRL from {from} is not signed by {ark_cn}: {e}; it is not AMD's CRL for {}",
            cx.product
        ));
    }
    if crl.issuer_der != ark.subject_der {
        return Some(format!(
            "the CRL from {from} names its issuer '{}', not {ark_cn}'s subject",
            crl.issuer_cn
        ));
    }
    if crl.this_update > cx.now {
        return Some(format!(
            "the CRL from {from} was issued at {}, after the time of validation ({}); check the \
             clock or --now",
            crl.this_update_text,
            time_text(cx.now)
        ));
    }
    None
}

/// The CRL's own soundness, the serials on it, how current it is.
fn verdict(
    cx: &Ctx,
    crl: &Crl,
    from: &str,
    ark: &Certificate,
    ask: &Certificate,
    require: bool,
) -> (Status, String) {
    let now = cx.now;
    let ark_cn = ark.subject.cn();
    if let Some(m) = crl_problem(cx, crl, from, ark) {
        return (Status::Fail, m);
    }
    if let Some(date) = crl.revocation_of(&ask.serial) {
        return (
            Status::Fail,
            format!(
                "the {} '{}' (serial {}) is revoked since {date} by the CRL from {from}",
                cx.ca_role.name(),
                ask.subject.cn(),
                serial_text(ask)
            ),
        );
    }
    let clean = format!(
        "the {} '{}' (serial {}) is not on the CRL from {from} ({} entries, signed by {ark_cn}, \
         issued {}",
        cx.ca_role.name(),
        ask.subject.cn(),
        serial_text(ask),
        crl.revoked.len(),
        crl.this_update_text
    );
    let stale = match (crl.next_update, &crl.next_update_text) {
        (Some(n), Some(t)) if n >= now => return (Status::Pass, format!("{clean}, next {t})")),
        (Some(_), Some(t)) => format!(
            "the CRL is out of date: its nextUpdate {t} is before the time of validation ({}); \
             fetch a current one",
            time_text(now)
        ),
        _ => "the CRL gives no nextUpdate, so how current it is cannot be told".to_string(),
    };
    if require {
        (
            Status::Fail,
            format!("{stale} (--require-revocation-check); {clean})"),
        )
    } else {
        (Status::Warn, format!("{stale}; {clean})"))
    }
}

/// What to do about a failed `chain.revocation`, from its message.
pub fn revocation_hint(message: &str) -> &'static str {
    if message.contains("is revoked since") {
        "AMD has revoked a key this report's endorsement rests on, so the report proves nothing: \
         do not trust this guest; the host's operator must move it to a platform whose keys are \
         current (updated SEV firmware, a new VCEK) and the guest must attest again"
    } else if message.contains("not signed by") || message.contains("names its issuer") {
        "the CRL is not AMD's for this product: give the one the KDS serves \
         (https://kdsintf.amd.com/vcek/v1/{Milan,Genoa,Turin}/crl, or /vlek/... for a VLEK) \
         with --crl, or with --trust-anchors a CRL signed by that ARK"
    } else if message.contains("--require-revocation-check") {
        "give a current CRL with --crl FILE (the KDS serves it at /vcek/v1/{product}/crl), or run \
         without --offline so it is fetched into the KDS cache"
    } else {
        "give a current CRL with --crl FILE"
    }
}
