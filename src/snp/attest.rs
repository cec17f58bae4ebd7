//! An SEV-SNP attestation report validated against its endorsement and
//! the owner's expectations ([`validate_report`]), what to say beside a
//! failed check ([`hint`]), and the report's fields for reading
//! ([`report_document`]); the JSON documents of both, typed:
//! [`ValidationDocument`] and [`ErrorDocument`] (`snp-validate --json`),
//! [`ReportFields`] (`snp-report --json`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::core::hex;
use crate::core::snp_cert::{Certificate, TrustAnchors};
use crate::core::snp_report::{self, PlatformInfo, Product, ProductSource, ReportInput};
use crate::core::snp_secret::Evidence;
use crate::error::{Error, Result};
use crate::snp::digest::ComputedLaunch;
use crate::snp::endorsement::{self, EndorsementSource};
use crate::snp::explain::{ReportField, SnpExplanation};
use crate::snp::revocation;
use crate::snp::validate::{
    self, Endorsement, Expectations, KeyBinding, Outcome, Status, Validator,
};

mod document;

pub use document::{
    CertTableEntry, CheckEntry, ErrorDocument, KeyInfoFields, ReportFields, SealedDocument,
    SealedEntry, SourceEntry, TcbFields, TrustAnchorKind, ValidationDocument,
    VALIDATE_SCHEMA_VERSION,
};

/// What a report's validation found, ready to print.
pub struct Validation {
    /// The report file, as given.
    pub path: PathBuf,
    /// The report, and the container and certificate table it came in.
    pub input: ReportInput,
    /// Every check, in the order it ran, and the product it was held to.
    pub outcome: Outcome,
    /// Where the product came from (CPUID, the VEK's productName, --product).
    pub product_source: &'static str,
    /// Where the VEK and each certificate of its chain came from: (role, from).
    pub sources: Vec<(String, String)>,
    /// --trust-anchors replaced AMD's built-in roots.
    pub custom_anchors: bool,
    /// The owner gave the nonce (a REPORT_DATA failure is then a value to explain).
    pub report_data_given: bool,
    /// No MEASUREMENT was expected and the owner waived the check
    /// (`--no-measurement-check`).
    pub measurement_waived: bool,
    /// Validated by the main command (`--report`): hints name its options.
    pub main_command: bool,
    /// The certificates were judged at the owner's time (`--now`).
    pub now_given: bool,
    /// When MEASUREMENT differs from the digest of the launch options
    /// given: the explainer's answer and how long its search took.
    pub explanation: Option<(SnpExplanation, Duration)>,
    /// The key-release evidence the report came in, if it came in one.
    pub evidence: Option<Evidence>,
}

/// What an IGVM file says of the report beyond its digest: the guest
/// policy QEMU launches it with, and the FAMILY_ID and IMAGE_ID of its ID
/// block (unless the owner gave their own).
fn igvm_expectations(expect: &mut Expectations, c: &crate::snp::igvm::ComputedIgvm) {
    expect.launch_policy = c.launch.policy;
    if let Some(b) = &c.launch.id_block {
        expect.family_id.get_or_insert(b.family_id);
        expect.image_id.get_or_insert(b.image_id);
    }
}

/// Reads the report at `path`, finds its VEK and chain, and runs every check
/// against `expect` (whose MEASUREMENT is `launch`'s digest when given; on a
/// mismatch the explainer then searches from `launch`).
pub fn validate_report(
    path: &Path,
    e: &EndorsementSource,
    expect: Expectations,
    launch: Option<&ComputedLaunch>,
) -> Result<Validation> {
    validate_evidence(path, e, expect, launch, None)
}

/// [`validate_report`] for a report or a key-release evidence file; with
/// `nonce` (which needs evidence) REPORT_DATA must bind it and the
/// evidence's public key (`expect.key_binding`).
pub fn validate_evidence(
    path: &Path,
    e: &EndorsementSource,
    mut expect: Expectations,
    launch: Option<&ComputedLaunch>,
    nonce: Option<[u8; 32]>,
) -> Result<Validation> {
    let (input, evidence) = endorsement::read_report_or_evidence(path)?;
    let binding = key_binding(path, &input, evidence.as_ref(), nonce)?;
    let r = &input.report;
    let mut found = endorsement::gather(e, &input)?;
    // A VCEK from the KDS (or its cache) means AMD's KDS is this run's
    // source: its CRL is reachable the same way, and is looked up too
    // (a KDS mirror serving another ARK's chain serves that ARK's CRL).
    let kds_in_use = found.vek.is_none();
    let (vek, vek_from) = vek_of(e, r, found.vek.take())?;
    let (product, source) =
        snp_report::resolve_product(r, vek.amd.product_name.as_deref(), e.product)
            .map_err(|x| Error::Usage(x.to_string()))?;
    let anchors_owned = endorsement::custom_anchors(e)?;
    let custom = anchors_owned.is_some();
    let anchors: &TrustAnchors = match &anchors_owned {
        Some(t) => t,
        None => TrustAnchors::builtin(),
    };
    if let Some(l) = launch {
        expect.measurement = Some(l.ld);
        if let Some(c) = l.igvm() {
            igvm_expectations(&mut expect, c);
        }
    }
    let now = e.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    });
    let mut sources = endorsement::chain_sources(r, vek_from, &found.ask, &found.ark);
    let crl = revocation::find_crl(
        e,
        found.crl.as_ref(),
        (r, product),
        now,
        expect.require_revocation_check || kds_in_use,
    )?;
    sources.extend(crl.source());
    let endorsement = Endorsement {
        vek,
        ask: found.ask.map(|x| x.0),
        ark: found.ark.map(|x| x.0),
    };
    let mut validator = Validator::new(anchors, now).with_crl(&crl);
    if e.now.is_some() {
        validator = validator.at_given_time();
    }
    if let Some(b) = &binding {
        validator = validator.with_key_binding(b);
    }
    let mut outcome = validator.validate(r, product, &endorsement, &expect);
    runtime_data_check(&input, &mut outcome);
    let explanation = explain_mismatch(launch, &outcome, &r.measurement)?;
    Ok(Validation {
        path: path.to_path_buf(),
        input,
        outcome,
        product_source: source.describe(),
        sources,
        custom_anchors: custom,
        report_data_given: expect.report_data.is_some(),
        measurement_waived: expect.measurement.is_none() && expect.waive_measurement,
        main_command: false,
        now_given: e.now.is_some(),
        explanation,
        evidence,
    })
}

/// When MEASUREMENT failed and the launch is known: which input the host
/// changed, and how long the search took.
fn explain_mismatch(
    launch: Option<&ComputedLaunch>,
    outcome: &Outcome,
    reported: &[u8; 48],
) -> Result<Option<(SnpExplanation, Duration)>> {
    let failed = outcome
        .get("expect.measurement")
        .is_some_and(|c| c.status == Status::Fail);
    match launch {
        Some(l) if failed => {
            let started = std::time::Instant::now();
            let x = l.explain(reported)?;
            Ok(Some((x, started.elapsed())))
        }
        _ => Ok(None),
    }
}

/// The VEK the files or the certificate table gave, else the VCEK from the
/// KDS (or its cache), with where it came from.
fn vek_of(
    e: &EndorsementSource,
    r: &snp_report::AttestationReport,
    found: Option<(Certificate, String)>,
) -> Result<(Certificate, String)> {
    if let Some(v) = found {
        return Ok(v);
    }
    let url = endorsement::kds_url(e, r).map_err(|_| endorsement::no_endorsement(e, r, ""))?;
    let vcek = endorsement::fetch_vcek(e, &url)
        .map_err(|x| endorsement::no_endorsement(e, r, &format!(" ({x})")))?;
    Ok((vcek, format!("KDS {url}")))
}

/// Azure's HCL report: its runtime data bound to REPORT_DATA, checked
/// beside the report's signature (which covers REPORT_DATA).
fn runtime_data_check(input: &ReportInput, outcome: &mut Outcome) {
    let Some(h) = &input.hcl else {
        return;
    };
    let c = match h.binding(&input.report.report_data) {
        Ok(m) => validate::Check::pass("binding.runtime_data", m),
        Err(m) => validate::Check::fail("binding.runtime_data", m),
    };
    let at = outcome
        .checks
        .iter()
        .position(|c| c.name == "signature")
        .map_or(outcome.checks.len(), |i| i + 1);
    outcome.checks.insert(at, c);
}

/// What `snp-validate` does not check in an Azure HCL report.
pub const HCL_NOTE: &str = "NOTE: Azure HCL report: the runtime data after the report is bound to REPORT_DATA (binding.runtime_data), but what it says (the vTPM's keys, user-data) is not checked here, and the HCL header is not signed; your nonce is in the runtime data's user-data, so --report-data takes REPORT_DATA itself (or give --no-report-data-check and check user-data yourself)";

/// What REPORT_DATA must bind when the owner gave `nonce`: it needs evidence.
fn key_binding(
    path: &Path,
    input: &ReportInput,
    evidence: Option<&Evidence>,
    nonce: Option<[u8; 32]>,
) -> Result<Option<KeyBinding>> {
    match (nonce, evidence) {
        (None, _) => Ok(None),
        (Some(n), Some(ev)) => Ok(Some(KeyBinding {
            nonce: n,
            public_key: ev.public_key,
            evidence_nonce: ev.nonce,
        })),
        (Some(_), None) => Err(Error::Usage(format!(
            "--nonce needs a key-release evidence file (snp-request --evidence-out), but '{}' is a {}",
            path.display(),
            input.container.name()
        ))),
    }
}

/// The report field a failed check is about, for where its value comes
/// from; `None` for checks whose message already says all there is.
fn check_field(name: &str, expect_report_data: bool) -> Option<ReportField> {
    Some(match name {
        "policy.debug" | "policy.migrate_ma" | "policy.maximum" | "policy.launch" => {
            ReportField::Policy
        }
        "expect.host_data" | "domain.host_data" => ReportField::HostData,
        "expect.id_key" | "domain.id_key_digest" => ReportField::IdKeyDigest,
        "expect.author_key" | "domain.author_key" => ReportField::AuthorKeyDigest,
        "expect.family_id" | "domain.family_id" => ReportField::FamilyId,
        "expect.image_id" | "domain.image_id" => ReportField::ImageId,
        "expect.guest_svn" | "domain.guest_svn" => ReportField::GuestSvn,
        "domain.policy" => ReportField::Policy,
        "expect.vmpl" => ReportField::Vmpl,
        // Without --report-data the message asks for it; no value to explain.
        "expect.report_data" if expect_report_data => ReportField::ReportData,
        "binding.reported_tcb" => ReportField::ReportedTcb,
        "binding.chip_id" | "expect.chip_id" => ReportField::ChipId,
        "firmware.provisional" => ReportField::CommittedTcb,
        _ => return None,
    })
}

/// The explainer's answer in one line, for beside the failed check.
fn explanation_hint(x: &SnpExplanation, main_command: bool) -> String {
    // Each change with the option that computes the reported value: the
    // main command's own (--num-cpus ...) there, snp-digest's here.
    let words = |c: &crate::snp::explain::Change| match (main_command, c.main_option()) {
        (false, _) => c.to_string(),
        (true, Some(o)) => format!("{}: {o}", c.host_did()),
        (true, None) => c.host_did(),
    };
    let with_all = if main_command {
        "with all of these the expected digest is the reported value"
    } else {
        "with all of these snp-digest computes the reported value"
    };
    match &x.changes {
        Some(c) if x.host_gives_reported() => format!(
            "the host launched its own copy of the IGVM file, which gives the reported value: {}",
            c.iter().map(|c| c.host_did()).collect::<Vec<_>>().join("; ")
        ),
        Some(c) if c.len() == 1 => words(&c[0]),
        Some(c) => format!(
            "the host's launch differs in {} inputs: {} ({with_all})",
            c.len(),
            c.iter().map(words).collect::<Vec<_>>().join("; ")
        ),
        None => match x.igvm_advice() {
            Some(advice) => format!(
                "none of {} variants of the IGVM launch reproduces the reported value ({}): {advice}",
                x.variants_tried, x.searched
            ),
            None => format!(
            "none of {} variants of the launch options reproduces the reported value ({}): {}",
            x.variants_tried,
            x.searched,
            x.unsearched()
        ),
        },
    }
}

/// MEASUREMENT differs and no launch was given to search from.
fn measurement_hint(main_command: bool) -> String {
    let how = if main_command {
        "the explainer names it when the expected digest comes from the domain's own inputs"
    } else {
        "to find which, give snp-validate the launch's snp-digest options after '--' instead of --measurement (or run snp-digest with them and --measurement set to the reported value): the explainer then names the input"
    };
    format!("at least one input of the launch differs from the one the expected value was computed for (the firmware image, the vCPU count or model, the VMSA features, the kernel, initrd or command line); {how}")
}

/// A certificate outside its validity: a VLEK lasts a year, a VCEK seven;
/// a report made while it was valid is judged at its own time with --now.
fn validity_hint(v: &Validation) -> String {
    if v.now_given {
        return "the time given with --now is outside a certificate's validity (the dates above): give a time inside it, the time the report was made".into();
    }
    let vek = v.input.report.key_info.signing_key.name();
    format!(
        "a certificate is valid only between its dates (a VLEK for one year, a VCEK for seven, AMD's roots for 25): for a report made while the {vek} was valid, give --now with the time it was made (RFC 3339, e.g. 2025-06-01T00:00:00Z); for a new report, get the {vek} current for it (the guest's certificate table, or AMD's KDS for a VCEK)"
    )
}

const KEY_BINDING_HINT: &str = "the guest bound another nonce (give the --nonce you gave this request), the evidence carries another public key than the one the report binds (swapped on the way), or the report and evidence are replayed from an earlier request; ask the guest for new evidence with a fresh nonce";

/// What to print beside a failed check: the explainer's answer for
/// MEASUREMENT, where the value comes from for the other fields.
pub fn hint(v: &Validation, c: &validate::Check) -> Option<String> {
    if c.status != Status::Fail {
        return None;
    }
    if c.name == "chain.revocation" {
        return Some(validate::revocation_hint(&c.message).to_string());
    }
    // No MEASUREMENT expected: the message itself says what to give.
    if c.name == "expect.measurement" && c.message.starts_with("no MEASUREMENT expected") {
        return None;
    }
    if c.name == "expect.key_binding" {
        return Some(KEY_BINDING_HINT.into());
    }
    if c.name == "expect.report_data" && v.evidence.is_some() && !v.report_data_given {
        return Some(
            "the report came in key-release evidence: give --nonce with the nonce you gave the guest's snp-request"
                .into(),
        );
    }
    if c.name == "expect.measurement" {
        return Some(match &v.explanation {
            Some((x, _)) => explanation_hint(x, v.main_command),
            None => measurement_hint(v.main_command),
        });
    }
    if c.name == "chain.validity" {
        return Some(validity_hint(v));
    }
    if c.name == "expect.report_data" && v.report_data_given && v.input.hcl.is_some() {
        return Some("in an Azure HCL report REPORT_DATA is the digest of the runtime data after the report (binding.runtime_data), and the guest's nonce is in that runtime data's user-data: give --report-data with the report's REPORT_DATA, or --no-report-data-check, and check user-data yourself".into());
    }
    check_field(c.name, v.report_data_given).map(|f| f.comes_from().to_string())
}

/// `snp-validate --json`: the verdict, its sources and every check.
pub fn validation_document(v: &Validation, code: i32) -> ValidationDocument {
    let r = &v.input.report;
    ValidationDocument {
        checks: v.outcome.checks.iter().map(|c| check_entry(v, c)).collect(),
        container: v.input.container.name(),
        exit_code: code,
        failed: v.outcome.failures().map(|c| c.name).collect(),
        measurement: hex(&r.measurement),
        measurement_waived: v.measurement_waived,
        product: v.outcome.product,
        product_source: v.product_source,
        schema_version: VALIDATE_SCHEMA_VERSION,
        sealed: None,
        signer: r.key_info.signing_key.name(),
        sources: v
            .sources
            .iter()
            .map(|(role, from)| SourceEntry {
                from: from.clone(),
                role: role.clone(),
            })
            .collect(),
        trust_anchors: if v.custom_anchors {
            TrustAnchorKind::Custom
        } else {
            TrustAnchorKind::Builtin
        },
        valid: v.outcome.passed(),
        version: r.version,
    }
}

/// One check as the document gives it: with its hint, and on
/// `expect.measurement` the explainer's answer.
fn check_entry(v: &Validation, c: &validate::Check) -> CheckEntry {
    let explained = match (&v.explanation, c.name) {
        (Some(x), "expect.measurement") => Some(x),
        _ => None,
    };
    CheckEntry {
        explanation: explained.map(|(x, _)| x.clone()),
        explanation_seconds: explained.map(|(_, t)| t.as_secs_f64()),
        hint: hint(v, c),
        message: c.message.clone(),
        name: c.name,
        status: c.status,
    }
}

/// `snp-validate`'s text: where each input came from, then every check.
pub fn validation_text(v: &Validation) -> String {
    let r = &v.input.report;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Report:  {} ({})",
        v.path.display(),
        v.input.container.name()
    );
    let _ = writeln!(
        s,
        "Product: {} (from {}), version {} report signed by the {}",
        v.outcome.product,
        v.product_source,
        r.version,
        r.key_info.signing_key.name()
    );
    for (k, f) in &v.sources {
        let _ = writeln!(s, "{k}: {f}");
    }
    let _ = writeln!(
        s,
        "Trust anchors: {}",
        if v.custom_anchors {
            "given with --trust-anchors"
        } else {
            "AMD's, built in"
        }
    );
    if v.input.hcl.is_some() {
        let _ = writeln!(s, "{HCL_NOTE}");
    }
    let width = v
        .outcome
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for c in &v.outcome.checks {
        let tag = match c.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
            Status::Warn => "WARN",
        };
        let _ = writeln!(s, "  {tag}  {:width$}  {}", c.name, c.message);
        if let Some(h) = hint(v, c) {
            let _ = writeln!(s, "        {:width$}  HINT: {h}", "");
        }
        if let (Some((x, t)), "expect.measurement") = (&v.explanation, c.name) {
            let _ = writeln!(
                s,
                "        {:width$}  ({} variants of the launch options tried in {:.3} s)",
                "",
                x.variants_tried,
                t.as_secs_f64()
            );
        }
    }
    let failed: Vec<_> = v.outcome.failures().map(|c| c.name).collect();
    if failed.is_empty() {
        let _ = writeln!(s, "VALID: every check passed");
    } else {
        let _ = writeln!(s, "INVALID: {} failed: {}", failed.len(), failed.join(", "));
    }
    s
}

/// Every field of a report (`snp-report`), as JSON and as text: the VEK's
/// productName, else `product`, places a version 2 report's TCB fields.
pub struct ReportDocument {
    /// The fields, as `snp-report --json` prints them.
    pub json: ReportFields,
    /// The same, one line each in the report's order.
    pub text: String,
}

/// The report at `path` for reading, with its TCB fields decoded where the
/// product is known.
pub fn report_document(
    path: &Path,
    vek: Option<&Path>,
    product: Option<Product>,
) -> Result<ReportDocument> {
    let input = endorsement::read_report(path)?;
    let vek = match vek {
        Some(p) => Some(endorsement::read_cert("VEK", p)?),
        None => None,
    };
    let vek_product = vek
        .as_ref()
        .and_then(|v: &Certificate| v.amd.product_name.as_deref());
    let product = snp_report::resolve_product(&input.report, vek_product, product);
    let json = report_fields(&input, product.as_ref().ok().copied());
    let unknown = product.err().map(|e| e.to_string());
    let text = report_text(&json, unknown.as_deref());
    Ok(ReportDocument { json, text })
}

/// The fields of `input`'s report, its TCBs decoded in `product`'s layout.
fn report_fields(input: &ReportInput, product: Option<(Product, ProductSource)>) -> ReportFields {
    let r = &input.report;
    let layout = product.map(|p| p.0.tcb_layout());
    let tcb = |raw: u64| TcbFields::new(raw, layout);
    let mit = |v: Option<u64>| v.map(|v| format!("{v:#x}"));
    let entry = |e: &snp_report::CertEntry| CertTableEntry {
        guid: e.guid.to_string(),
        kind: e.kind.name(),
        length: e.data.len(),
        offset: e.offset,
    };
    ReportFields {
        author_key_digest: hex(&r.author_key_digest),
        cert_table: input
            .cert_table
            .as_ref()
            .map(|t| t.entries.iter().map(entry).collect()),
        chip_id: hex(&r.chip_id),
        committed_tcb: tcb(r.committed_tcb),
        committed_version: r.committed_version.to_string(),
        container: input.container.name(),
        cpuid_fam_mod_step: r.cpuid.map(|(f, m, s)| [f, m, s]),
        current_mit_vector: mit(r.current_mit_vector),
        current_tcb: tcb(r.current_tcb),
        current_version: r.current_version.to_string(),
        family_id: hex(&r.family_id),
        guest_svn: r.guest_svn,
        host_data: hex(&r.host_data),
        id_key_digest: hex(&r.id_key_digest),
        image_id: hex(&r.image_id),
        kds_vcek_url: product
            .and_then(|p| snp_report::kds_vcek_url(snp_report::KDS_BASE, p.0, r).ok()),
        key_info: KeyInfoFields {
            author_key_en: u8::from(r.key_info.author_key_en),
            mask_chip_key: u8::from(r.key_info.mask_chip_key),
            signing_key: r.key_info.signing_key.name(),
        },
        launch_mit_vector: mit(r.launch_mit_vector),
        launch_tcb: tcb(r.launch_tcb),
        measurement: hex(&r.measurement),
        platform_info: format!("{:#x}", r.platform_info),
        platform_info_flags: PlatformInfo::from_bits_truncate(r.platform_info)
            .iter_names()
            .map(|(n, _)| n)
            .collect(),
        policy: format!("{:#x}", r.policy.0),
        policy_abi: format!("{}.{}", r.policy.abi_major(), r.policy.abi_minor()),
        policy_flags: r.policy.flags().iter_names().map(|(n, _)| n).collect(),
        product: product.map(|p| p.0),
        product_source: product.map(|p| p.1.describe()),
        report_data: hex(&r.report_data),
        report_id: hex(&r.report_id),
        report_id_ma: hex(&r.report_id_ma),
        reported_tcb: tcb(r.reported_tcb),
        sig_algo: r.signature_algo,
        signature_r: hex(&r.raw[0x2A0..0x2E8]),
        signature_s: hex(&r.raw[0x2E8..0x330]),
        version: r.version,
        vmpl: r.vmpl,
    }
}

/// `snp-report`'s text: the container, why the product is not known when it
/// is not, then one line per field in the report's order: strings as they
/// are, null as "-", lists as JSON.
fn report_text(d: &ReportFields, unknown_product: Option<&str>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Container: {}", d.container);
    if let Some(e) = unknown_product {
        let _ = writeln!(s, "Product: unknown ({e}); TCB fields shown raw");
    }
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let list = |v: &[&str]| serde_json::to_string(v).unwrap_or_default();
    let lines = [
        ("VERSION", d.version.to_string()),
        ("PRODUCT", or_dash(d.product.map(|p| p.name().into()))),
        (
            "PRODUCT_SOURCE",
            or_dash(d.product_source.map(String::from)),
        ),
        ("GUEST_SVN", d.guest_svn.to_string()),
        ("POLICY", d.policy.clone()),
        ("POLICY_ABI", d.policy_abi.clone()),
        ("POLICY_FLAGS", list(&d.policy_flags)),
        ("FAMILY_ID", d.family_id.clone()),
        ("IMAGE_ID", d.image_id.clone()),
        ("VMPL", d.vmpl.to_string()),
        ("SIG_ALGO", d.sig_algo.to_string()),
        ("CURRENT_TCB", d.current_tcb.to_string()),
        ("PLATFORM_INFO", d.platform_info.clone()),
        ("PLATFORM_INFO_FLAGS", list(&d.platform_info_flags)),
        ("KEY_INFO", d.key_info.to_string()),
        ("REPORT_DATA", d.report_data.clone()),
        ("MEASUREMENT", d.measurement.clone()),
        ("HOST_DATA", d.host_data.clone()),
        ("ID_KEY_DIGEST", d.id_key_digest.clone()),
        ("AUTHOR_KEY_DIGEST", d.author_key_digest.clone()),
        ("REPORT_ID", d.report_id.clone()),
        ("REPORT_ID_MA", d.report_id_ma.clone()),
        ("REPORTED_TCB", d.reported_tcb.to_string()),
        (
            "CPUID_FAM_MOD_STEP",
            or_dash(
                d.cpuid_fam_mod_step
                    .map(|c| format!("[{},{},{}]", c[0], c[1], c[2])),
            ),
        ),
        ("CHIP_ID", d.chip_id.clone()),
        ("COMMITTED_TCB", d.committed_tcb.to_string()),
        ("CURRENT_VERSION", d.current_version.clone()),
        ("COMMITTED_VERSION", d.committed_version.clone()),
        ("LAUNCH_TCB", d.launch_tcb.to_string()),
        ("LAUNCH_MIT_VECTOR", or_dash(d.launch_mit_vector.clone())),
        ("CURRENT_MIT_VECTOR", or_dash(d.current_mit_vector.clone())),
        ("SIGNATURE_R", d.signature_r.clone()),
        ("SIGNATURE_S", d.signature_s.clone()),
        ("KDS_VCEK_URL", or_dash(d.kds_vcek_url.clone())),
        (
            "CERT_TABLE",
            or_dash(
                d.cert_table
                    .as_ref()
                    .map(|t| serde_json::to_string(t).unwrap_or_default()),
            ),
        ),
    ];
    for (name, v) in lines {
        let _ = writeln!(s, "{name:<20} {v}");
    }
    s
}
