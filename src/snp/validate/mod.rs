//! The SEV-SNP validation stage: a parsed attestation report, its endorsement
//! (VCEK or VLEK and the CA chain), the owner's expectations and a time in;
//! an outcome out that lists every check by name, passed, failed or skipped,
//! with a message. Pure: no I/O, no clock (the time is an input).
//!
//! The checks are named by what they read, one file each: `format.*` (the
//! report's layout), `signature` and `binding.*` (the report to its VEK, TCB
//! and chip), `chain.*` (the VEK to the AMD root; `chain.revocation` AMD's
//! CRL), `policy.*` (the guest policy), `firmware.provisional` and the
//! minimum TCBs (the firmware's TCB), and `expect.*` (the owner's
//! expectations).
//!
//! ```
//! use sev_validate::core::snp_report::{self, Product};
//! use sev_validate::core::snp_cert::{Certificate, TrustAnchors};
//! use sev_validate::snp::validate::{ChainCache, Endorsement, Expectations, Validator};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A report and chain of the simulated SNP firmware, shipped with the crate.
//! let input = snp_report::parse_input(include_bytes!("../../../tests/fixtures/snp-sim/report.bin"))?;
//! let vek = Certificate::from_der_or_pem(include_bytes!("../../../tests/fixtures/snp-sim/vcek.der"))?;
//! let anchors = TrustAnchors::from_files(&[
//!     include_bytes!("../../../tests/fixtures/snp-sim/ark.pem").to_vec(),
//!     include_bytes!("../../../tests/fixtures/snp-sim/ask.pem").to_vec(),
//! ])?;
//! let (product, _) = snp_report::resolve_product(&input.report, vek.amd.product_name.as_deref(), None)?;
//! let endorsement = Endorsement { vek, ask: None, ark: None };
//! let mut expect = Expectations::default();
//! expect.report_data = Some(input.report.report_data); // the nonce the owner gave the guest
//! expect.measurement = Some(input.report.measurement); // the launch digest, from snp-digest
//! let cache = ChainCache::default(); // shared by every report a service checks
//! let now = 1_780_272_000; // 2026-06-01, seconds since the epoch
//! let validator = Validator::new(&anchors, now).with_cache(&cache);
//! let outcome = validator.validate(&input.report, product, &endorsement, &expect);
//! assert!(outcome.passed(), "{:?}", outcome.failures().collect::<Vec<_>>());
//! assert_eq!(product, Product::Milan);
//! # Ok(()) }
//! ```

mod binding;
mod chain;
mod expect;
mod format;
mod policy;
mod revocation;
mod tcb;

use crate::core::snp_cert::{CaRole, Certificate, TrustAnchors};
use crate::core::snp_report::{
    AttestationReport, GuestPolicy, KeyInfo, Product, SigningKey, TcbLayout, TcbVersion,
};

pub use chain::ChainCache;
pub use revocation::{revocation_hint, CrlInput, NO_CRL};
pub use tcb::MinTcb;

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

/// What the owner expects of the guest (go-sev-guest's validate options) and
/// the safe defaults: DEBUG, MIGRATE_MA and provisional firmware refused
/// unless allowed, MEASUREMENT and REPORT_DATA required unless waived.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// MEASUREMENT, the launch digest; required unless `waive_measurement`.
    pub measurement: Option<[u8; 48]>,
    /// Accept any MEASUREMENT: nothing about the guest's contents is then
    /// attested.
    pub waive_measurement: bool,
    /// The nonce the owner gave the guest; required unless `waive_report_data`.
    pub report_data: Option<[u8; 64]>,
    /// Accept any REPORT_DATA: a replayed report then passes.
    pub waive_report_data: bool,
    /// HOST_DATA, set by the host at launch.
    pub host_data: Option<[u8; 32]>,
    /// FAMILY_ID, from the ID block.
    pub family_id: Option<[u8; 16]>,
    /// IMAGE_ID, from the ID block.
    pub image_id: Option<[u8; 16]>,
    /// REPORT_ID, the guest's identity.
    pub report_id: Option<[u8; 32]>,
    /// REPORT_ID_MA, the migration agent's identity.
    pub report_id_ma: Option<[u8; 32]>,
    /// CHIP_ID, the machine's identity.
    pub chip_id: Option<[u8; 64]>,
    /// The most permissive policy accepted.
    pub max_policy: Option<u64>,
    /// The exact policy the launch was made with (an IGVM file's own guest
    /// policy, which QEMU hands to SNP_LAUNCH_START).
    pub launch_policy: Option<u64>,
    /// Accept POLICY.DEBUG.
    pub allow_debug: bool,
    /// Accept POLICY.MIGRATE_MA.
    pub allow_migrate_ma: bool,
    /// Accept firmware the host has not committed (CURRENT above COMMITTED).
    pub allow_provisional_firmware: bool,
    /// The lowest GUEST_SVN accepted.
    pub min_guest_svn: Option<u32>,
    /// The lowest CURRENT_BUILD accepted.
    pub min_build: Option<u8>,
    /// The lowest firmware version accepted, (major, minor).
    pub min_version: Option<(u8, u8)>,
    /// The lowest REPORTED_TCB accepted, component by component.
    pub min_tcb: Option<MinTcb>,
    /// The lowest LAUNCH_TCB accepted, component by component.
    pub min_launch_tcb: Option<MinTcb>,
    /// The most permissive PLATFORM_INFO accepted.
    pub max_platform_info: Option<u64>,
    /// The VMPL the report must have been requested at.
    pub vmpl: Option<u32>,
    /// SHA-384 digests of trusted ID keys (0x404-byte SNP public key form).
    pub trusted_id_keys: Vec<[u8; 48]>,
    /// SHA-384 digests of trusted author keys, in the same form.
    pub trusted_author_keys: Vec<[u8; 48]>,
    /// Require a trusted author key (AUTHOR_KEY_EN set).
    pub require_author_key: bool,
    /// The bits LAUNCH_MIT_VECTOR must have (version 5 reports onwards).
    pub min_launch_mit_vector: Option<u64>,
    /// The bits CURRENT_MIT_VECTOR must have (version 5 reports onwards).
    pub min_current_mit_vector: Option<u64>,
    /// Fail `chain.revocation` when no CRL is at hand or the CRL is out of
    /// date, rather than skipping it or warning.
    pub require_revocation_check: bool,
}

/// What REPORT_DATA must bind in an attested key release
/// (schema/snp-key-release.md): `expect.key_binding` replaces
/// `expect.report_data` when the validator has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBinding {
    /// The nonce the owner gave the guest.
    pub nonce: [u8; 32],
    /// The guest's public key, from the evidence.
    pub public_key: [u8; 97],
    /// The nonce the evidence names (a replayed evidence names an old one).
    pub evidence_nonce: [u8; 32],
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The check ran and found what it requires.
    Pass,
    /// The check ran and did not.
    Fail,
    /// The check did not run: nothing was expected of it, or it does not apply.
    Skip,
    /// The check ran and found nothing wrong, but what it read is not as
    /// sound as it should be (an out-of-date CRL); not a failure.
    Warn,
}

impl Status {
    /// The status as the JSON output names it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
            Status::Warn => "warn",
        }
    }
}

/// One named check and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The check's stable name, e.g. `chain.validity`.
    pub name: &'static str,
    /// Whether it passed, failed or was skipped.
    pub status: Status,
    /// What it found, or why it was skipped.
    pub message: String,
}

impl Check {
    /// A check that passed.
    pub fn pass(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            message: message.into(),
        }
    }
    /// A check that failed.
    pub fn fail(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            message: message.into(),
        }
    }
    /// A check that was skipped.
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
    /// The product the report was read for (its TCB layout and chain).
    pub product: Product,
    /// Every check, in the order they ran.
    pub checks: Vec<Check>,
}

impl Outcome {
    /// No check failed.
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// The checks that failed, in order.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    /// The check named `name`.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// The checks so far; each section adds its own.
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

/// Validates attestation reports against one set of trust anchors at one
/// time, sharing a cache of chain verdicts between reports if given one.
#[derive(Debug, Clone, Copy)]
pub struct Validator<'a> {
    anchors: &'a TrustAnchors,
    now: u64,
    now_given: bool,
    cache: Option<&'a ChainCache>,
    crl: Option<&'a CrlInput>,
    key_binding: Option<&'a KeyBinding>,
}

impl<'a> Validator<'a> {
    /// A validator for the chains under `anchors`, at time `now` (seconds
    /// since the epoch). The time is required: the stage reads no clock.
    pub fn new(anchors: &'a TrustAnchors, now: u64) -> Validator<'a> {
        Validator {
            anchors,
            now,
            now_given: false,
            cache: None,
            crl: None,
            key_binding: None,
        }
    }

    /// Checks REPORT_DATA as the binding of a nonce and a public key
    /// (`expect.key_binding`) instead of against an expected value.
    pub fn with_key_binding(self, binding: &'a KeyBinding) -> Validator<'a> {
        Validator {
            key_binding: Some(binding),
            ..self
        }
    }

    /// The time is the owner's (`--now`), not the clock's: messages say
    /// "valid at TIME" rather than "valid now".
    pub fn at_given_time(self) -> Validator<'a> {
        Validator {
            now_given: true,
            ..self
        }
    }

    /// Verifies each chain's signatures once and takes them from `cache` for
    /// every later report with the same VEK, AS(V)K and ARK.
    pub fn with_cache(self, cache: &'a ChainCache) -> Validator<'a> {
        Validator {
            cache: Some(cache),
            ..self
        }
    }

    /// Checks the chain against `crl` (`chain.revocation`), or says why
    /// there is no CRL; without this the check is skipped with [`NO_CRL`].
    pub fn with_crl(self, crl: &'a CrlInput) -> Validator<'a> {
        Validator {
            crl: Some(crl),
            ..self
        }
    }

    /// Validates `report` against its endorsement and the owner's
    /// expectations. Every check runs; none stops the others.
    pub fn validate(
        &self,
        report: &AttestationReport,
        product: Product,
        endorsement: &Endorsement,
        expect: &Expectations,
    ) -> Outcome {
        let cx = Ctx::new(self, report, product, endorsement, expect);
        let mut c = Checks(Vec::with_capacity(48));
        // The order is part of the output: keep it.
        format::format_checks(&mut c, &cx);
        format::reserved_checks(&mut c, &cx);
        binding::signature_check(&mut c, &cx);
        chain::chain_checks(&mut c, &cx);
        revocation::revocation_check(&mut c, &cx);
        binding::tcb_checks(&mut c, &cx);
        binding::chip_id_check(&mut c, &cx);
        policy::default_policy_checks(&mut c, &cx);
        policy::max_policy_check(&mut c, &cx);
        policy::launch_policy_check(&mut c, &cx);
        tcb::provisional_firmware_check(&mut c, &cx);
        expect::report_data_check(&mut c, &cx);
        expect::launch_value_checks(&mut c, &cx);
        expect::identity_checks(&mut c, &cx);
        expect::minimum_value_checks(&mut c, &cx);
        expect::version_check(&mut c, &cx);
        tcb::minimum_tcb_checks(&mut c, &cx);
        expect::platform_info_check(&mut c, &cx);
        expect::vmpl_check(&mut c, &cx);
        expect::id_key_checks(&mut c, &cx);
        expect::mitigation_vector_checks(&mut c, &cx);
        Outcome {
            product,
            checks: c.0,
        }
    }
}

/// What the checks read: the inputs of [`Validator::validate`] and the
/// fields every check decodes the same way.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    report: &'a AttestationReport,
    product: Product,
    endorsement: &'a Endorsement,
    anchors: &'a TrustAnchors,
    expect: &'a Expectations,
    now: u64,
    now_given: bool,
    cache: Option<&'a ChainCache>,
    crl: Option<&'a CrlInput>,
    key_binding: Option<&'a KeyBinding>,
    layout: TcbLayout,
    vek: &'a Certificate,
    is_vlek: bool,
    ca_role: CaRole,
    ki: KeyInfo,
    pol: GuestPolicy,
    reported: TcbVersion,
    current: TcbVersion,
}

impl<'a> Ctx<'a> {
    fn new(
        v: &Validator<'a>,
        report: &'a AttestationReport,
        product: Product,
        endorsement: &'a Endorsement,
        expect: &'a Expectations,
    ) -> Ctx<'a> {
        let layout = product.tcb_layout();
        let is_vlek = report.key_info.signing_key == SigningKey::Vlek;
        Ctx {
            report,
            product,
            endorsement,
            anchors: v.anchors,
            expect,
            now: v.now,
            now_given: v.now_given,
            cache: v.cache,
            crl: v.crl,
            key_binding: v.key_binding,
            layout,
            vek: &endorsement.vek,
            is_vlek,
            ca_role: if is_vlek { CaRole::Asvk } else { CaRole::Ask },
            ki: report.key_info,
            pol: report.policy,
            reported: TcbVersion::decode(report.reported_tcb, layout),
            current: TcbVersion::decode(report.current_tcb, layout),
        }
    }
}

impl Ctx<'_> {
    /// When the certificates are judged: "now", or "at TIME" given by the owner.
    fn when(&self) -> String {
        if self.now_given {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.now);
            format!("at {}", humantime::format_rfc3339_seconds(t))
        } else {
            "now".into()
        }
    }
}
