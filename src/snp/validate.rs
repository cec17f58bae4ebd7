//! The SEV-SNP validation stage: a parsed attestation report, its endorsement
//! (VCEK or VLEK and the CA chain), the owner's expectations and a time in;
//! an outcome out that lists every check by name, passed, failed or skipped,
//! with a message. Pure: no I/O, no clock (the time is an input).
//!
//! ```
//! use sev_validate::core::snp_report::{self, Product};
//! use sev_validate::core::snp_cert::{Certificate, TrustAnchors};
//! use sev_validate::snp::validate::{validate, ChainCache, Endorsement, Expectations};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/snp-vectors/milan-v2-virtee");
//! # if !std::path::Path::new(dir).exists() { return Ok(()); }
//! let input = snp_report::parse_input(&std::fs::read(format!("{dir}/report.bin"))?)?;
//! let vek = Certificate::from_der_or_pem(&std::fs::read(format!("{dir}/vcek.der"))?)?;
//! let (product, _) = snp_report::resolve_product(&input.report, vek.amd.product_name.as_deref(), None)?;
//! let endorsement = Endorsement { vek, ask: None, ark: None };
//! let mut expect = Expectations::default();
//! expect.report_data = Some(input.report.report_data); // the nonce the owner gave the guest
//! let cache = ChainCache::default(); // shared by every report a service checks
//! let now = 1_767_225_600; // 2026-01-01, seconds since the epoch
//! let outcome = validate(&input.report, product, &endorsement, TrustAnchors::builtin(), &expect, now, Some(&cache));
//! assert!(outcome.passed(), "{:?}", outcome.failures().collect::<Vec<_>>());
//! assert_eq!(product, Product::Milan);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use crate::core::hex;
use crate::core::snp_cert::{self, CaRole, Certificate, KeyKind, TrustAnchors};
use crate::core::snp_report::{
    AttestationReport, GuestPolicy, KeyInfo, PlatformInfo, PolicyFlags, Product, SigningKey,
    TcbLayout, TcbVersion, SIG_ALGO_ECDSA_P384_SHA384,
};

/// The VEK that signed the report and the CA certificates that came with it.
#[derive(Debug, Clone)]
pub struct Endorsement {
    /// The VCEK or VLEK.
    pub vek: Certificate,
    /// The ASK (ASVK for a VLEK) supplied with it; must equal the anchor's.
    pub ask: Option<Certificate>,
    /// The ARK supplied with it; must equal the anchor's.
    pub ark: Option<Certificate>,
}

/// A minimum TCB: components, or a raw TCB_VERSION read in the product's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinTcb {
    Raw(u64),
    Components {
        fmc: u8,
        bl: u8,
        tee: u8,
        snp: u8,
        ucode: u8,
    },
}

impl MinTcb {
    fn in_layout(self, p: Product) -> TcbVersion {
        let l = p.tcb_layout();
        match self {
            MinTcb::Raw(r) => TcbVersion::decode(r, l),
            MinTcb::Components {
                fmc,
                bl,
                tee,
                snp,
                ucode,
            } => TcbVersion::decode(TcbVersion::encode(l, fmc, bl, tee, snp, ucode), l),
        }
    }
}

/// What the owner expects of the guest (go-sev-guest's validate options) and
/// the safe defaults: DEBUG, MIGRATE_MA and provisional firmware refused
/// unless allowed, REPORT_DATA required unless waived.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub measurement: Option<[u8; 48]>,
    /// The nonce the owner gave the guest; required unless `waive_report_data`.
    pub report_data: Option<[u8; 64]>,
    pub waive_report_data: bool,
    pub host_data: Option<[u8; 32]>,
    pub family_id: Option<[u8; 16]>,
    pub image_id: Option<[u8; 16]>,
    pub report_id: Option<[u8; 32]>,
    pub report_id_ma: Option<[u8; 32]>,
    pub chip_id: Option<[u8; 64]>,
    /// The most permissive policy accepted.
    pub max_policy: Option<u64>,
    pub allow_debug: bool,
    pub allow_migrate_ma: bool,
    pub allow_provisional_firmware: bool,
    pub min_guest_svn: Option<u32>,
    pub min_build: Option<u8>,
    /// (major, minor)
    pub min_version: Option<(u8, u8)>,
    pub min_tcb: Option<MinTcb>,
    pub min_launch_tcb: Option<MinTcb>,
    /// The most permissive PLATFORM_INFO accepted.
    pub max_platform_info: Option<u64>,
    pub vmpl: Option<u32>,
    /// SHA-384 digests of trusted ID keys (0x404-byte SNP public key form).
    pub trusted_id_keys: Vec<[u8; 48]>,
    pub trusted_author_keys: Vec<[u8; 48]>,
    pub require_author_key: bool,
    pub min_launch_mit_vector: Option<u64>,
    pub min_current_mit_vector: Option<u64>,
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// One named check and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub message: String,
}

impl Check {
    pub fn pass(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            message: message.into(),
        }
    }
    pub fn fail(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            message: message.into(),
        }
    }
    pub fn skip(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skip,
            message: message.into(),
        }
    }
}

/// Every check, in order.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub product: Product,
    pub checks: Vec<Check>,
}

impl Outcome {
    /// No check failed.
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

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
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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

struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, name: &'static str, status: Status, message: impl Into<String>) {
        self.0.push(Check {
            name,
            status,
            message: message.into(),
        });
    }
    fn result(&mut self, name: &'static str, r: Result<String, String>) {
        match r {
            Ok(m) => self.push(name, Status::Pass, m),
            Err(m) => self.push(name, Status::Fail, m),
        }
    }
    fn skip(&mut self, name: &'static str, why: &str) {
        self.push(name, Status::Skip, why);
    }
}

fn exact<const N: usize>(
    c: &mut Checks,
    name: &'static str,
    field: &str,
    got: &[u8; N],
    want: Option<&[u8; N]>,
    origin: &str,
) {
    match want {
        None => c.skip(name, "no expected value given"),
        Some(w) if w == got => c.push(name, Status::Pass, format!("{field} is {}", hex(got))),
        Some(w) => c.push(
            name,
            Status::Fail,
            format!("{field} is {}, expected {}{origin}", hex(got), hex(w)),
        ),
    }
}

fn tcb_text(t: &TcbVersion) -> String {
    t.to_string()
}

/// What the sections of [`validate`] read: its inputs and the fields every
/// section decodes the same way.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    report: &'a AttestationReport,
    product: Product,
    endorsement: &'a Endorsement,
    anchors: &'a TrustAnchors,
    expect: &'a Expectations,
    now: u64,
    cache: Option<&'a ChainCache>,
    layout: TcbLayout,
    vek: &'a Certificate,
    is_vlek: bool,
    ca_role: CaRole,
    ki: KeyInfo,
    pol: GuestPolicy,
    reported: TcbVersion,
    current: TcbVersion,
}

/// Validates `report` against its endorsement, the trust anchors and the
/// owner's expectations at time `now` (seconds since the epoch). Every check
/// runs; none stops the others.
pub fn validate(
    report: &AttestationReport,
    product: Product,
    endorsement: &Endorsement,
    anchors: &TrustAnchors,
    expect: &Expectations,
    now: u64,
    cache: Option<&ChainCache>,
) -> Outcome {
    let mut c = Checks(Vec::with_capacity(48));
    let layout = product.tcb_layout();
    let vek = &endorsement.vek;
    let is_vlek = report.key_info.signing_key == SigningKey::Vlek;
    let ca_role = if is_vlek { CaRole::Asvk } else { CaRole::Ask };
    let cx = Ctx {
        report,
        product,
        endorsement,
        anchors,
        expect,
        now,
        cache,
        layout,
        vek,
        is_vlek,
        ca_role,
        ki: report.key_info,
        pol: report.policy,
        reported: TcbVersion::decode(report.reported_tcb, layout),
        current: TcbVersion::decode(report.current_tcb, layout),
    };
    format_checks(&mut c, &cx);
    format_reserved_checks(&mut c, &cx);
    signature_check(&mut c, &cx);
    chain_checks(&mut c, &cx);
    binding_checks(&mut c, &cx);
    chip_id_check(&mut c, &cx);
    default_policy_checks(&mut c, &cx);
    max_policy_check(&mut c, &cx);
    provisional_firmware_check(&mut c, &cx);
    report_data_check(&mut c, &cx);
    exact_value_checks(&mut c, &cx);
    minimum_version_checks(&mut c, &cx);
    platform_info_check(&mut c, &cx);
    vmpl_check(&mut c, &cx);
    id_key_checks(&mut c, &cx);
    mitigation_vector_checks(&mut c, &cx);
    Outcome {
        product,
        checks: c.0,
    }
}

/// VERSION, SIGNATURE_ALGO and the signer info.
fn format_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, ki, .. } = *cx;
    // 1. Format.
    c.push(
        "format.version",
        Status::Pass,
        if report.version == 4 {
            "version 4, read as version 3 (same layout)".to_string()
        } else {
            format!("version {}", report.version)
        },
    );
    c.result(
        "format.signature_algo",
        if report.signature_algo == SIG_ALGO_ECDSA_P384_SHA384 {
            Ok("1 (ECDSA P-384 with SHA-384)".into())
        } else {
            Err(format!(
                "SIGNATURE_ALGO is {}; only 1 (ECDSA P-384 with SHA-384) is defined",
                report.signature_algo
            ))
        },
    );
    c.result(
        "format.signer_info",
        if ki.raw >> 5 != 0 {
            Err(format!(
                "signer info {:#x} has reserved bits 5..31 set",
                ki.raw
            ))
        } else {
            match ki.signing_key {
                SigningKey::Vcek | SigningKey::Vlek => Ok(format!(
                    "signed by the {}{}{}",
                    ki.signing_key.name(),
                    if ki.mask_chip_key {
                        ", CHIP_ID masked"
                    } else {
                        ""
                    },
                    if ki.author_key_en {
                        ", author key enabled"
                    } else {
                        ""
                    }
                )),
                SigningKey::None => Err("SIGNING_KEY is 7: the report is not signed".into()),
                SigningKey::Reserved(v) => Err(format!("SIGNING_KEY {v} is reserved")),
            }
        },
    );
}

/// The bits and bytes the ABI reserves: POLICY bit 17 set, the rest zero.
fn format_reserved_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, pol, .. } = *cx;
    c.result(
        "format.policy",
        if !pol.flags().contains(PolicyFlags::RESERVED_17) {
            Err(format!(
                "POLICY {:#x} has bit 17 clear; it must be 1",
                pol.0
            ))
        } else if pol.unknown_bits() != 0 {
            Err(format!(
                "POLICY {:#x} sets reserved bits {:#x} (26..63 must be zero)",
                pol.0,
                pol.unknown_bits()
            ))
        } else {
            Ok(format!("POLICY {:#x}", pol.0))
        },
    );
    let nz = report.nonzero_reserved();
    c.result(
        "format.reserved_zero",
        if nz.is_empty() {
            Ok("reserved bytes are zero".into())
        } else {
            Err(format!(
                "reserved bytes are not zero at {}",
                nz.iter()
                    .map(|(o, l)| format!("{o:#05x}..{:#05x}", o + l))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        },
    );
}

/// The report's ECDSA signature by the VEK.
fn signature_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, vek, .. } = *cx;
    // 2. Signature.
    c.result(
        "signature",
        snp_cert::verify_report_signature(report, vek).map(|()| {
            format!(
                "ECDSA P-384 signature verifies with the {}",
                vek.subject.cn()
            )
        }),
    );
}

/// The ARK, AS(V)K and VEK chain, from the trust anchors.
fn chain_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        product,
        endorsement,
        anchors,
        ca_role,
        ..
    } = *cx;
    // 3. Chain.
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
                    Ok(format!("valid now; the VEK until {}", vek.not_after_text))
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

/// The report's TCB against the VEK's.
fn binding_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        product,
        layout,
        vek,
        reported,
        current,
        ..
    } = *cx;
    // 4. Binding of the report to the VEK.
    let vek_tcb = vek.amd.tcb(layout);
    match vek_tcb {
        None => {
            let m = format!(
                "the VEK lacks an SPL extension the {product} TCB layout needs{}",
                if product == Product::Turin {
                    " (fmcSPL)"
                } else {
                    ""
                }
            );
            c.push("binding.reported_tcb", Status::Fail, m.clone());
            c.push("binding.vek_tcb_not_above_current", Status::Fail, m);
        }
        Some(vt) => {
            c.result(
                "binding.reported_tcb",
                if vt.raw == reported.raw {
                    Ok(format!("REPORTED_TCB {} equals the VEK's", tcb_text(&reported)))
                } else {
                    Err(format!(
                        "REPORTED_TCB is {} but the VEK is for {}: a VEK for another TCB (a stale VCEK); fetch the one for REPORTED_TCB",
                        tcb_text(&reported),
                        tcb_text(&vt)
                    ))
                },
            );
            c.result(
                "binding.vek_tcb_not_above_current",
                if vt.le_componentwise(&current) {
                    Ok(format!(
                        "VEK TCB is not above CURRENT_TCB {}",
                        tcb_text(&current)
                    ))
                } else {
                    Err(format!(
                        "the VEK's TCB {} is above CURRENT_TCB {}",
                        tcb_text(&vt),
                        tcb_text(&current)
                    ))
                },
            );
        }
    }
}

/// CHIP_ID against the VCEK's hwid.
fn chip_id_check(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        report,
        vek,
        is_vlek,
        ki,
        ..
    } = *cx;
    if is_vlek {
        c.skip(
            "binding.chip_id",
            "a VLEK signed the report; a VLEK names no chip",
        );
    } else if report.chip_id_masked() || ki.mask_chip_key {
        c.skip("binding.chip_id", "the host masked CHIP_ID");
    } else {
        c.result(
            "binding.chip_id",
            match &vek.amd.hwid {
                None => Err("the VCEK has no hwid extension".into()),
                Some(h) => {
                    let n = h.len().min(64);
                    let rest_zero = report.chip_id[n..].iter().all(|&x| x == 0);
                    if report.chip_id[..n] == h[..] && rest_zero {
                        Ok(format!("CHIP_ID equals the VCEK's {n}-byte hwid"))
                    } else if rest_zero {
                        Err(format!(
                            "CHIP_ID {} is not the VCEK's hwid {}: the VCEK belongs to another chip",
                            hex(&report.chip_id[..n]),
                            hex(h)
                        ))
                    } else {
                        // An 8-byte (Turin) hwid: bytes 8..64 must be zero, and
                        // the first 8 alone would not show what differs.
                        Err(format!(
                            "CHIP_ID {} is not the VCEK's {n}-byte hwid {} followed by zeros: bytes {n}..63 are {}",
                            hex(&report.chip_id),
                            hex(h),
                            hex(&report.chip_id[n..])
                        ))
                    }
                }
            },
        );
    }
}

/// DEBUG and MIGRATE_MA, refused unless allowed.
fn default_policy_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { expect, pol, .. } = *cx;
    // 5/6. The owner's expectations and the safe defaults.
    let flags = pol.flags();
    let max_flags = expect.max_policy.map(PolicyFlags::from_bits_truncate);
    for (name, flag, allowed, opt) in [
        (
            "policy.debug",
            PolicyFlags::DEBUG,
            expect.allow_debug,
            "--allow-debug",
        ),
        (
            "policy.migrate_ma",
            PolicyFlags::MIGRATE_MA,
            expect.allow_migrate_ma,
            "--allow-migrate-ma",
        ),
    ] {
        let label = if flag == PolicyFlags::DEBUG {
            "DEBUG"
        } else {
            "MIGRATE_MA"
        };
        if !flags.contains(flag) {
            c.push(name, Status::Pass, format!("{label} is off"));
        } else if allowed || max_flags.is_some_and(|m| m.contains(flag)) {
            c.push(name, Status::Pass, format!("{label} is on, and allowed"));
        } else {
            c.push(
                name,
                Status::Fail,
                format!(
                    "POLICY {:#x} has {label} on{}: refused unless {opt}",
                    pol.0,
                    if flag == PolicyFlags::DEBUG {
                        " (the host can read and change the guest's memory)"
                    } else {
                        " (a migration agent can move the guest)"
                    }
                ),
            );
        }
    }
}

/// POLICY within the most permissive one accepted.
fn max_policy_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { expect, pol, .. } = *cx;
    let flags = pol.flags();
    match expect.max_policy {
        None => c.skip("policy.maximum", "no --max-policy given"),
        Some(maxp) => {
            let mp = crate::core::snp_report::GuestPolicy(maxp);
            let mut bad = Vec::new();
            if (pol.abi_major(), pol.abi_minor()) < (mp.abi_major(), mp.abi_minor()) {
                bad.push(format!(
                    "ABI {}.{} is below {}.{}",
                    pol.abi_major(),
                    pol.abi_minor(),
                    mp.abi_major(),
                    mp.abi_minor()
                ));
            }
            let mf = mp.flags();
            for (f, n) in [
                (PolicyFlags::MIGRATE_MA, "MIGRATE_MA"),
                (PolicyFlags::DEBUG, "DEBUG"),
                (PolicyFlags::SMT, "SMT"),
                (PolicyFlags::CXL_ALLOW, "CXL_ALLOW"),
            ] {
                if flags.contains(f) && !mf.contains(f) {
                    bad.push(format!(
                        "{n} is on but the maximum policy does not allow it"
                    ));
                }
            }
            for (f, n) in [
                (PolicyFlags::SINGLE_SOCKET, "SINGLE_SOCKET"),
                (PolicyFlags::MEM_AES_256_XTS, "MEM_AES_256_XTS"),
                (PolicyFlags::RAPL_DIS, "RAPL_DIS"),
                (PolicyFlags::CIPHERTEXT_HIDING, "CIPHERTEXT_HIDING"),
                (PolicyFlags::PAGE_SWAP_DISABLE, "PAGE_SWAP_DISABLE"),
            ] {
                if mf.contains(f) && !flags.contains(f) {
                    bad.push(format!("{n} is required but off"));
                }
            }
            c.result(
                "policy.maximum",
                if bad.is_empty() {
                    Ok(format!("POLICY {:#x} is within {maxp:#x}", pol.0))
                } else {
                    Err(format!(
                        "POLICY {:#x} (from <policy>): {}",
                        pol.0,
                        bad.join("; ")
                    ))
                },
            );
        }
    }
}

/// Provisional (uncommitted) firmware, refused unless allowed.
fn provisional_firmware_check(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        report,
        expect,
        layout,
        current,
        ..
    } = *cx;
    let committed = TcbVersion::decode(report.committed_tcb, layout);
    let provisional =
        committed.raw != current.raw || report.committed_version != report.current_version;
    c.result(
        "firmware.provisional",
        if !provisional {
            Ok(format!(
                "firmware {} is committed (COMMITTED_TCB = CURRENT_TCB)",
                report.current_version
            ))
        } else if expect.allow_provisional_firmware {
            if committed.le_componentwise(&current)
                && report.committed_version <= report.current_version
            {
                Ok(format!(
                    "provisional firmware allowed: COMMITTED_TCB {} is not above CURRENT_TCB {}",
                    tcb_text(&committed),
                    tcb_text(&current)
                ))
            } else {
                Err(format!(
                    "COMMITTED_TCB {} (firmware {}) is above CURRENT_TCB {} (firmware {})",
                    tcb_text(&committed),
                    report.committed_version,
                    tcb_text(&current),
                    report.current_version
                ))
            }
        } else {
            Err(format!(
                "provisional firmware: CURRENT_TCB {} (firmware {}) is not the committed {} (firmware {}); the host updated firmware without committing it, which it can roll back; refused unless --allow-provisional-firmware",
                tcb_text(&current),
                report.current_version,
                tcb_text(&committed),
                report.committed_version
            ))
        },
    );
}

/// REPORT_DATA, the owner's nonce: required unless waived.
fn report_data_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    match (&expect.report_data, expect.waive_report_data) {
        (None, true) => c.skip(
            "expect.report_data",
            "waived: a replayed report would pass (--no-report-data-check)",
        ),
        (None, false) => c.push(
            "expect.report_data",
            Status::Fail,
            "no REPORT_DATA expected: give --report-data with the nonce you gave the guest (so a replayed report fails), or waive the check with --no-report-data-check",
        ),
        (Some(w), _) => exact(
            c,
            "expect.report_data",
            "REPORT_DATA",
            &report.report_data,
            Some(w),
            " (the guest's request: not the nonce given, or a replayed report)",
        ),
    }
}

/// The fields the owner gives exact values or minimums for.
fn exact_value_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    exact(
        c,
        "expect.measurement",
        "MEASUREMENT",
        &report.measurement,
        expect.measurement.as_ref(),
        " (the launch digest: firmware, vCPUs, VMSA features, kernel hashes differ)",
    );
    exact(
        c,
        "expect.host_data",
        "HOST_DATA",
        &report.host_data,
        expect.host_data.as_ref(),
        " (set by the host from <hostData> / host-data; all zero when absent)",
    );
    exact(
        c,
        "expect.family_id",
        "FAMILY_ID",
        &report.family_id,
        expect.family_id.as_ref(),
        " (from the ID block, <idBlock>; zero without one)",
    );
    exact(
        c,
        "expect.image_id",
        "IMAGE_ID",
        &report.image_id,
        expect.image_id.as_ref(),
        " (from the ID block, <idBlock>; zero without one)",
    );
    exact(
        c,
        "expect.report_id",
        "REPORT_ID",
        &report.report_id,
        expect.report_id.as_ref(),
        "",
    );
    exact(
        c,
        "expect.report_id_ma",
        "REPORT_ID_MA",
        &report.report_id_ma,
        expect.report_id_ma.as_ref(),
        "",
    );
    exact(
        c,
        "expect.chip_id",
        "CHIP_ID",
        &report.chip_id,
        expect.chip_id.as_ref(),
        " (another machine, or the host masked it)",
    );
    ge(
        c,
        "expect.guest_svn",
        "GUEST_SVN",
        report.guest_svn,
        expect.min_guest_svn,
        " (from the ID block)",
    );
    ge(
        c,
        "expect.build",
        "CURRENT_BUILD",
        report.current_version.build.into(),
        expect.min_build.map(u32::from),
        "",
    );
}

/// The firmware version and the TCBs against minimums.
fn minimum_version_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        report,
        product,
        expect,
        layout,
        reported,
        ..
    } = *cx;
    match expect.min_version {
        None => c.skip("expect.version", "no minimum firmware version given"),
        Some((maj, min)) => c.result(
            "expect.version",
            if (report.current_version.major, report.current_version.minor) >= (maj, min) {
                Ok(format!(
                    "firmware {} is at least {maj}.{min}",
                    report.current_version
                ))
            } else {
                Err(format!(
                    "firmware {} is below {maj}.{min}",
                    report.current_version
                ))
            },
        ),
    }
    for (name, field, tcb, min) in [
        (
            "expect.minimum_tcb",
            "REPORTED_TCB",
            reported,
            expect.min_tcb,
        ),
        (
            "expect.minimum_launch_tcb",
            "LAUNCH_TCB",
            TcbVersion::decode(report.launch_tcb, layout),
            expect.min_launch_tcb,
        ),
    ] {
        match min {
            None => c.skip(name, "no minimum TCB given"),
            Some(m) => {
                let m = m.in_layout(product);
                c.result(
                    name,
                    if m.le_componentwise(&tcb) {
                        Ok(format!(
                            "{field} {} is at least {}",
                            tcb_text(&tcb),
                            tcb_text(&m)
                        ))
                    } else {
                        Err(format!(
                            "{field} {} is below {}",
                            tcb_text(&tcb),
                            tcb_text(&m)
                        ))
                    },
                );
            }
        }
    }
}

/// PLATFORM_INFO within the most permissive one accepted.
fn platform_info_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    let pi = report.platform_info;
    let unknown_pi = pi & !PlatformInfo::all().bits();
    match expect.max_platform_info {
        None => c.skip("expect.platform_info", "no --max-platform-info given"),
        Some(maxpi) => {
            let (got, allow) = (
                PlatformInfo::from_bits_truncate(pi),
                PlatformInfo::from_bits_truncate(maxpi),
            );
            let mut bad = Vec::new();
            if unknown_pi != 0 {
                bad.push(format!("unknown bits {unknown_pi:#x} are set"));
            }
            for (f, n) in [
                (PlatformInfo::SMT_EN, "SMT_EN"),
                (PlatformInfo::TSME_EN, "TSME_EN"),
                (PlatformInfo::TIO_EN, "TIO_EN"),
            ] {
                if got.contains(f) && !allow.contains(f) {
                    bad.push(format!("{n} is on but not allowed"));
                }
            }
            for (f, n) in [
                (PlatformInfo::ECC_EN, "ECC_EN"),
                (PlatformInfo::RAPL_DIS, "RAPL_DIS"),
                (
                    PlatformInfo::CIPHERTEXT_HIDING_DRAM_EN,
                    "CIPHERTEXT_HIDING_DRAM_EN",
                ),
                (PlatformInfo::ALIAS_CHECK_COMPLETE, "ALIAS_CHECK_COMPLETE"),
                (PlatformInfo::IOMMU_WRITE_SAFE, "IOMMU_WRITE_SAFE"),
            ] {
                if allow.contains(f) && !got.contains(f) {
                    bad.push(format!("{n} is required but off"));
                }
            }
            c.result(
                "expect.platform_info",
                if bad.is_empty() {
                    Ok(format!(
                        "PLATFORM_INFO {pi:#x} ({:?}) is within {maxpi:#x}",
                        got
                    ))
                } else {
                    Err(format!("PLATFORM_INFO {pi:#x}: {}", bad.join("; ")))
                },
            );
        }
    }
}

/// The VMPL the report was asked for.
fn vmpl_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    match expect.vmpl {
        None => c.skip("expect.vmpl", "no --vmpl given"),
        Some(v) => c.result(
            "expect.vmpl",
            if report.vmpl == v {
                Ok(format!("VMPL {v}"))
            } else {
                Err(format!(
                    "VMPL is {}, expected {v} (the VMPL the guest asked the report for; snpguest asks for 1 by default)",
                    report.vmpl
                ))
            },
        ),
    }
}

/// The ID key or author key that signed the ID block.
fn id_key_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        report, expect, ki, ..
    } = *cx;
    let author_trusted = ki.author_key_en
        && expect
            .trusted_author_keys
            .iter()
            .any(|d| d == &report.author_key_digest);
    if expect.trusted_id_keys.is_empty() && expect.trusted_author_keys.is_empty() {
        c.skip("expect.id_key", "no trusted ID or author key given");
    } else {
        c.result(
            "expect.id_key",
            if expect.trusted_id_keys.iter().any(|d| d == &report.id_key_digest) {
                Ok(format!("ID_KEY_DIGEST {} is a trusted ID key", hex(&report.id_key_digest)))
            } else if author_trusted {
                Ok(format!(
                    "AUTHOR_KEY_DIGEST {} is a trusted author key",
                    hex(&report.author_key_digest)
                ))
            } else {
                Err(format!(
                    "ID_KEY_DIGEST {} is not a trusted ID key{} (set by the host from <idAuth> / id-auth; the digest is SHA-384 of the 0x404-byte SNP public key)",
                    hex(&report.id_key_digest),
                    if ki.author_key_en { " and the author key is not trusted" } else { "" }
                ))
            },
        );
    }
    if !expect.require_author_key {
        c.skip("expect.author_key", "no --require-author-key");
    } else {
        c.result(
            "expect.author_key",
            if author_trusted {
                Ok(format!("AUTHOR_KEY_DIGEST {} is trusted", hex(&report.author_key_digest)))
            } else if !ki.author_key_en {
                Err("AUTHOR_KEY_EN is 0: the launch had no author key (<launchSecurity authorKey='yes'>)".into())
            } else {
                Err(format!(
                    "AUTHOR_KEY_DIGEST {} is not a trusted author key",
                    hex(&report.author_key_digest)
                ))
            },
        );
    }
}

/// The mitigation vectors against minimums.
fn mitigation_vector_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    for (name, field, got, min) in [
        (
            "expect.launch_mit_vector",
            "LAUNCH_MIT_VECTOR",
            report.launch_mit_vector,
            expect.min_launch_mit_vector,
        ),
        (
            "expect.current_mit_vector",
            "CURRENT_MIT_VECTOR",
            report.current_mit_vector,
            expect.min_current_mit_vector,
        ),
    ] {
        match min {
            None => c.skip(name, "no minimum mitigation vector given"),
            Some(m) => {
                let g = got.unwrap_or(0);
                c.result(
                    name,
                    if g & m == m {
                        Ok(format!("{field} {g:#x} has every bit of {m:#x}"))
                    } else {
                        Err(format!(
                            "{field} {g:#x} lacks bits {:#x} of {m:#x}{}",
                            m & !g,
                            if got.is_none() {
                                format!(" (a version {} report carries none)", report.version)
                            } else {
                                String::new()
                            }
                        ))
                    },
                );
            }
        }
    }
}

fn ge(c: &mut Checks, name: &'static str, field: &str, got: u32, min: Option<u32>, origin: &str) {
    match min {
        None => c.skip(name, "no minimum given"),
        Some(m) => c.result(
            name,
            if got >= m {
                Ok(format!("{field} {got} is at least {m}"))
            } else {
                Err(format!("{field} {got} is below {m}{origin}"))
            },
        ),
    }
}

fn names(
    product: Product,
    report: &AttestationReport,
    vek: &Certificate,
    ask: &Certificate,
    ark: &Certificate,
    is_vlek: bool,
) -> Result<String, String> {
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
    if bad.is_empty() {
        Ok(format!(
            "{} issued by {} under {}{}",
            vek.subject.cn(),
            ask.subject.cn(),
            ark.subject.cn(),
            a.csp_id
                .as_deref()
                .map(|c| format!(", for {c}"))
                .unwrap_or_default()
        ))
    } else {
        Err(bad.join("; "))
    }
}
