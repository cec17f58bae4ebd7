//! The AMD certificate chain (`chain.*`): the AS(V)K and ARK supplied against
//! the trust anchors, the ARK's, AS(V)K's and VEK's signatures, their key
//! types, their validity at the time of validation and their names.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Checks, Ctx, Status};
use crate::core::hex;
use crate::core::snp_cert::{CaRole, Certificate, KeyKind};
use crate::core::snp_report::{AttestationReport, Product};

/// The three chain signatures, verified once per (VEK, AS[V]K, ARK).
#[derive(Debug, Clone)]
struct ChainVerdict {
    ark_self: Result<(), String>,
    ask_by_ark: Result<(), String>,
    vek_by_ask: Result<(), String>,
}

/// Chain verdicts keyed by the SHA-256 of the VEK, AS(V)K and ARK DER, so a
/// verifier service checks the RSA signatures once per VCEK.
#[derive(Debug, Default)]
pub struct ChainCache {
    map: Mutex<HashMap<[[u8; 32]; 3], ChainVerdict>>,
}

impl ChainCache {
    /// The number of chains verified so far.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// No chain verified yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The chain's signatures, from `cache` when this chain was seen before.
fn chain_verdict(
    vek: &Certificate,
    ask: &Certificate,
    ark: &Certificate,
    cache: Option<&ChainCache>,
) -> ChainVerdict {
    let key = [vek.sha256, ask.sha256, ark.sha256];
    if let Some(c) = cache {
        if let Some(v) = c.map.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return v;
        }
    }
    let v = ChainVerdict {
        ark_self: ark.signed_by(ark),
        ask_by_ark: ask.signed_by(ark),
        vek_by_ask: vek.signed_by(ask),
    };
    if let Some(c) = cache {
        if let Ok(mut m) = c.map.lock() {
            m.insert(key, v.clone());
        }
    }
    v
}

/// The ARK, AS(V)K and VEK chain, from the trust anchors.
pub(super) fn chain_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        product,
        endorsement,
        anchors,
        ca_role,
        ..
    } = *cx;
    let ark = anchors.get(product, CaRole::Ark);
    let ask = anchors.get(product, ca_role);
    let whose = if anchors.custom {
        "the trust anchors given"
    } else {
        "AMD's (built in)"
    };
    let mut roots = Vec::new();
    let mut roots_ok = true;
    for (supplied, anchor, role) in [
        (&endorsement.ark, ark, CaRole::Ark),
        (&endorsement.ask, ask, ca_role),
    ] {
        if let Some(s) = supplied {
            if anchor.is_some_and(|a| a.der == s.der) {
                roots.push(format!("the {} supplied equals {whose}", role.name()));
            } else {
                roots_ok = false;
                roots.push(format!(
                    "the {} supplied (subject '{}', SHA-256 {}) is not {whose} {} {}",
                    role.name(),
                    s.subject.cn(),
                    hex(&s.sha256),
                    role.name(),
                    product
                ));
            }
        }
    }
    if roots.is_empty() {
        c.skip(
            "chain.supplied_roots",
            "no ARK or ASK supplied; the anchors are used",
        );
    } else {
        c.result(
            "chain.supplied_roots",
            if roots_ok {
                Ok(roots.join("; "))
            } else {
                Err(roots.join("; "))
            },
        );
    }
    chain_signature_checks(c, cx, ark, ask, whose);
    chain_certificate_checks(c, cx, ark, ask, whose);
}

/// The three chain signatures, each verified once per chain with `cache`.
fn chain_signature_checks(
    c: &mut Checks,
    cx: &Ctx,
    ark: Option<&Certificate>,
    ask: Option<&Certificate>,
    whose: &str,
) {
    let Ctx {
        product,
        cache,
        vek,
        ca_role,
        ..
    } = *cx;
    match (ark, ask) {
        (Some(ark), Some(ask)) => {
            let v = chain_verdict(vek, ask, ark, cache);
            c.result(
                "chain.ark_self_signed",
                v.ark_self
                    .map(|()| format!("{} is self-signed", ark.subject.cn()))
                    .map_err(|e| format!("{}: {e}", ark.subject.cn())),
            );
            c.result(
                "chain.ask_signed_by_ark",
                v.ask_by_ark
                    .map(|()| format!("{} is signed by {}", ask.subject.cn(), ark.subject.cn()))
                    .map_err(|e| format!("{} by {}: {e}", ask.subject.cn(), ark.subject.cn())),
            );
            c.result(
                "chain.vek_signed_by_ask",
                v.vek_by_ask
                    .map(|()| format!("{} is signed by {}", vek.subject.cn(), ask.subject.cn()))
                    .map_err(|e| {
                        format!(
                            "{} (issuer '{}') by {} {}: {e}; the VEK is from another product or chain",
                            vek.subject.cn(),
                            vek.issuer.cn(),
                            whose,
                            ask.subject.cn()
                        )
                    }),
            );
        }
        _ => {
            let m = format!("{whose} hold no ARK and {} for {product}", ca_role.name());
            for n in [
                "chain.ark_self_signed",
                "chain.ask_signed_by_ark",
                "chain.vek_signed_by_ask",
            ] {
                c.push(n, Status::Fail, m.clone());
            }
        }
    }
}

/// Key types, validity at `now` and names of the chain's certificates.
fn chain_certificate_checks(
    c: &mut Checks,
    cx: &Ctx,
    ark: Option<&Certificate>,
    ask: Option<&Certificate>,
    whose: &str,
) {
    let Ctx {
        report,
        product,
        now,
        vek,
        is_vlek,
        ca_role,
        ..
    } = *cx;
    match (ark, ask) {
        (Some(ark), Some(ask)) => {
            let mut bad = Vec::new();
            for (what, cert, want) in [
                ("ARK", ark, KeyKind::Rsa(4096)),
                (ca_role.name(), ask, KeyKind::Rsa(4096)),
                ("VEK", vek, KeyKind::EcP384),
            ] {
                if cert.key != want {
                    bad.push(format!("the {what} key is {}, expected {want}", cert.key));
                }
            }
            c.result(
                "chain.key_types",
                if bad.is_empty() {
                    Ok("ARK and AS(V)K RSA-4096, VEK ECDSA P-384".into())
                } else {
                    Err(bad.join("; "))
                },
            );
            let mut expired = Vec::new();
            for (what, cert) in [("ARK", ark), (ca_role.name(), ask), ("VEK", vek)] {
                if !cert.valid_at(now) {
                    expired.push(format!(
                        "the {what} '{}' is valid from {} to {}, not at the time of validation ({})",
                        cert.subject.cn(),
                        cert.not_before_text,
                        cert.not_after_text,
                        humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH + std::time::Duration::from_secs(now)
                        )
                    ));
                }
            }
            c.result(
                "chain.validity",
                if expired.is_empty() {
                    Ok(format!(
                        "valid {}; the VEK until {}",
                        cx.when(),
                        vek.not_after_text
                    ))
                } else {
                    Err(expired.join("; "))
                },
            );
            c.result(
                "chain.names",
                names(product, report, vek, ask, ark, is_vlek),
            );
        }
        _ => {
            let m = format!("{whose} hold no ARK and {} for {product}", ca_role.name());
            for n in ["chain.key_types", "chain.validity", "chain.names"] {
                c.push(n, Status::Fail, m.clone());
            }
        }
    }
}

/// The chain's names and the VEK's AMD extensions, as the report's signer
/// info and the product require.
fn names(
    product: Product,
    report: &AttestationReport,
    vek: &Certificate,
    ask: &Certificate,
    ark: &Certificate,
    is_vlek: bool,
) -> Result<String, String> {
    let mut bad = name_problems(report, vek, ask, ark, is_vlek);
    bad.extend(extension_problems(product, vek, is_vlek));
    if bad.is_empty() {
        Ok(format!(
            "{} issued by {} under {}{}",
            vek.subject.cn(),
            ask.subject.cn(),
            ark.subject.cn(),
            vek.amd
                .csp_id
                .as_deref()
                .map(|c| format!(", for {c}"))
                .unwrap_or_default()
        ))
    } else {
        Err(bad.join("; "))
    }
}

/// The VEK's subject CN for its kind, its issuer the AS(V)K, and AMD's names.
fn name_problems(
    report: &AttestationReport,
    vek: &Certificate,
    ask: &Certificate,
    ark: &Certificate,
    is_vlek: bool,
) -> Vec<String> {
    let mut bad = Vec::new();
    let want_cn = if is_vlek { "SEV-VLEK" } else { "SEV-VCEK" };
    if vek.subject.cn() != want_cn {
        bad.push(format!(
            "the VEK's subject CN is '{}' but the report's signer info says {} ('{want_cn}')",
            vek.subject.cn(),
            report.key_info.signing_key.name()
        ));
    }
    if vek.issuer.cn() != ask.subject.cn() {
        bad.push(format!(
            "the VEK's issuer is '{}', not '{}'",
            vek.issuer.cn(),
            ask.subject.cn()
        ));
    }
    for (what, n) in [
        ("VEK subject", &vek.subject),
        ("VEK issuer", &vek.issuer),
        ("AS(V)K", &ask.subject),
        ("ARK", &ark.subject),
    ] {
        if !n.is_amd() {
            bad.push(format!("the {what} name is not AMD's (OU, O, L, ST, C)"));
        }
    }
    bad
}

/// The VEK's AMD extensions: productName, structVersion, and a csp_id for a
/// VLEK or a hwid of the product's length for a VCEK, nothing unknown.
fn extension_problems(product: Product, vek: &Certificate, is_vlek: bool) -> Vec<String> {
    let mut bad = Vec::new();
    let a = &vek.amd;
    if let Some(pn) = &a.product_name {
        if Product::from_name(pn) != Some(product) {
            bad.push(format!("the VEK's productName '{pn}' is not {product}"));
        }
    }
    let want_sv = if product == Product::Turin && !is_vlek {
        1
    } else {
        0
    };
    if a.struct_version.is_some_and(|v| v != want_sv) {
        bad.push(format!(
            "structVersion {} (expected {want_sv} for a {product} {})",
            a.struct_version.unwrap_or(0),
            if is_vlek { "VLEK" } else { "VCEK" }
        ));
    }
    if is_vlek {
        if a.csp_id.is_none() {
            bad.push("the VLEK has no csp_id".into());
        }
        if a.hwid.is_some() {
            bad.push("the VLEK has a hwid".into());
        }
    } else {
        if a.csp_id.is_some() {
            bad.push("the VCEK has a csp_id".into());
        }
        let want = if product == Product::Turin { 8 } else { 64 };
        match &a.hwid {
            Some(h) if h.len() == want => {}
            Some(h) => bad.push(format!(
                "the hwid has {} bytes; a {product} VCEK has {want}",
                h.len()
            )),
            None => bad.push("the VCEK has no hwid".into()),
        }
    }
    if !a.unknown.is_empty() {
        bad.push(format!("unknown AMD extensions {}", a.unknown.join(", ")));
    }
    bad
}
