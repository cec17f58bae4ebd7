//! An SEV-SNP attestation report validated against its endorsement and
//! the owner's expectations ([`validate_report`]), what to say beside a
//! failed check ([`hint`]), and the report's fields for reading
//! ([`report_document`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::core::hex;
use crate::core::snp_cert::{Certificate, TrustAnchors};
use crate::core::snp_report::{self, PlatformInfo, Product, ReportInput, TcbVersion};
use crate::error::{Error, Result};
use crate::snp::digest::ComputedLaunch;
use crate::snp::endorsement::{self, EndorsementSource};
use crate::snp::explain::{ReportField, SnpExplanation};
use crate::snp::validate::{self, Endorsement, Expectations, Outcome, Status, Validator};

/// What a report's validation found, ready to print.
pub struct Validation {
    /// The report file, as given.
    pub path: PathBuf,
    pub input: ReportInput,
    pub outcome: Outcome,
    pub product_source: &'static str,
    pub sources: Vec<(String, String)>,
    pub custom_anchors: bool,
    /// The owner gave the nonce (a REPORT_DATA failure is then a value to explain).
    pub report_data_given: bool,
    /// Validated by the main command (`--report`): hints name its options.
    pub main_command: bool,
    /// When MEASUREMENT differs from the digest of the launch options
    /// given: the explainer's answer and how long its search took.
    pub explanation: Option<(SnpExplanation, Duration)>,
}

/// Reads the report at `path`, finds its VEK and chain, and runs every check
/// against `expect` (whose MEASUREMENT is `launch`'s digest when given; on a
/// mismatch the explainer then searches from `launch`).
pub fn validate_report(
    path: &Path,
    e: &EndorsementSource,
    mut expect: Expectations,
    launch: Option<&ComputedLaunch>,
) -> Result<Validation> {
    let input = endorsement::read_report(path)?;
    let r = &input.report;
    let found = endorsement::gather(e, &input)?;
    let (vek, vek_from) = match found.vek {
        Some(v) => v,
        // No file or table gave a VEK: the VCEK from the KDS, or its cache.
        None => {
            let url =
                endorsement::kds_url(e, r).map_err(|_| endorsement::no_endorsement(e, r, ""))?;
            let vcek = endorsement::fetch_vcek(e, &url)
                .map_err(|x| endorsement::no_endorsement(e, r, &format!(" ({x})")))?;
            (vcek, format!("KDS {url}"))
        }
    };
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
    }
    let now = e.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    });
    let sources = endorsement::chain_sources(r, vek_from, &found.ask, &found.ark);
    let endorsement = Endorsement {
        vek,
        ask: found.ask.map(|x| x.0),
        ark: found.ark.map(|x| x.0),
    };
    let outcome = Validator::new(anchors, now).validate(r, product, &endorsement, &expect);
    let measurement_failed = outcome
        .get("expect.measurement")
        .is_some_and(|c| c.status == Status::Fail);
    let explanation = match launch {
        Some(l) if measurement_failed => {
            let started = std::time::Instant::now();
            let x = l.explain(&r.measurement)?;
            Some((x, started.elapsed()))
        }
        _ => None,
    };
    Ok(Validation {
        path: path.to_path_buf(),
        input,
        outcome,
        product_source: source.describe(),
        sources,
        custom_anchors: custom,
        report_data_given: expect.report_data.is_some(),
        main_command: false,
        explanation,
    })
}

/// The report field a failed check is about, for where its value comes
/// from; `None` for checks whose message already says all there is.
fn check_field(name: &str, expect_report_data: bool) -> Option<ReportField> {
    Some(match name {
        "policy.debug" | "policy.migrate_ma" | "policy.maximum" => ReportField::Policy,
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
        Some(c) if c.len() == 1 => words(&c[0]),
        Some(c) => format!(
            "the host's launch differs in {} inputs: {} ({with_all})",
            c.len(),
            c.iter().map(words).collect::<Vec<_>>().join("; ")
        ),
        None => format!(
            "none of {} variants of the launch options reproduces the reported value ({}): most likely another firmware build (the expected image's OVMF hash is {}; compare snp-ovmf-hash --ovmf of the host's image), another kernel or initrd, or the report comes from another guest",
            x.variants_tried,
            x.searched,
            hex(&x.ovmf_hash)
        ),
    }
}

/// What to print beside a failed check: the explainer's answer for
/// MEASUREMENT, where the value comes from for the other fields.
pub fn hint(v: &Validation, c: &validate::Check) -> Option<String> {
    if c.status != Status::Fail {
        return None;
    }
    if c.name == "expect.measurement" {
        return v
            .explanation
            .as_ref()
            .map(|(x, _)| explanation_hint(x, v.main_command));
    }
    check_field(c.name, v.report_data_given).map(|f| f.comes_from().to_string())
}

/// `snp-validate --json`: the verdict, its sources and every check.
pub fn validation_json(v: &Validation, code: i32) -> Value {
    let r = &v.input.report;
    let checks: Vec<Value> = v
        .outcome
        .checks
        .iter()
        .map(|c| {
            let mut o = json!({"name": c.name, "status": c.status.name(), "message": c.message});
            if let Some(h) = hint(v, c) {
                o["hint"] = h.into();
            }
            if let (Some((x, t)), "expect.measurement") = (&v.explanation, c.name) {
                o["explanation"] = serde_json::to_value(x).unwrap_or(Value::Null);
                o["explanation_seconds"] = t.as_secs_f64().into();
            }
            o
        })
        .collect();
    json!({
        "schema_version": 1,
        "valid": v.outcome.passed(),
        "exit_code": code,
        "container": v.input.container.name(),
        "version": r.version,
        "product": v.outcome.product.name(),
        "product_source": v.product_source,
        "signer": r.key_info.signing_key.name(),
        "trust_anchors": if v.custom_anchors { "custom" } else { "builtin" },
        "sources": v.sources.iter().map(|(k, f)| json!({"role": k, "from": f})).collect::<Vec<_>>(),
        "measurement": hex(&r.measurement),
        "checks": checks,
        "failed": v.outcome.failures().map(|c| c.name).collect::<Vec<_>>(),
    })
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

fn tcb_json(t: &TcbVersion) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in t.components() {
        m.insert(k.into(), v.into());
    }
    m.insert("raw".into(), format!("{:#018x}", t.raw).into());
    Value::Object(m)
}

/// Every field of a report (`snp-report`), as JSON and as text: the VEK's
/// productName, else `product`, places a version 2 report's TCB fields.
pub struct ReportDocument {
    /// The fields, as `snp-report --json` prints them.
    pub json: Value,
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
    let r = &input.report;
    let vek = match vek {
        Some(p) => Some(endorsement::read_cert("VEK", p)?),
        None => None,
    };
    let product = snp_report::resolve_product(
        r,
        vek.as_ref()
            .and_then(|v: &Certificate| v.amd.product_name.as_deref()),
        product,
    );
    let layout = product.as_ref().ok().map(|p| p.0.tcb_layout());
    let tcb = |raw: u64| match layout {
        Some(l) => tcb_json(&TcbVersion::decode(raw, l)),
        None => json!({"raw": format!("{raw:#018x}")}),
    };
    let pi = PlatformInfo::from_bits_truncate(r.platform_info);
    let flag_names = |names: Vec<&str>| names.into_iter().map(Value::from).collect::<Vec<_>>();
    let doc = json!({
        "container": input.container.name(),
        "version": r.version,
        "product": product.as_ref().map(|p| Value::from(p.0.name())).unwrap_or(Value::Null),
        "product_source": product.as_ref().map(|p| Value::from(p.1.describe())).unwrap_or(Value::Null),
        "guest_svn": r.guest_svn,
        "policy": format!("{:#x}", r.policy.0),
        "policy_abi": format!("{}.{}", r.policy.abi_major(), r.policy.abi_minor()),
        "policy_flags": flag_names(r.policy.flags().iter_names().map(|(n, _)| n).collect()),
        "family_id": hex(&r.family_id),
        "image_id": hex(&r.image_id),
        "vmpl": r.vmpl,
        "sig_algo": r.signature_algo,
        "current_tcb": tcb(r.current_tcb),
        "platform_info": format!("{:#x}", r.platform_info),
        "platform_info_flags": flag_names(pi.iter_names().map(|(n, _)| n).collect()),
        "key_info": {
            "author_key_en": u8::from(r.key_info.author_key_en),
            "mask_chip_key": u8::from(r.key_info.mask_chip_key),
            "signing_key": r.key_info.signing_key.name(),
        },
        "report_data": hex(&r.report_data),
        "measurement": hex(&r.measurement),
        "host_data": hex(&r.host_data),
        "id_key_digest": hex(&r.id_key_digest),
        "author_key_digest": hex(&r.author_key_digest),
        "report_id": hex(&r.report_id),
        "report_id_ma": hex(&r.report_id_ma),
        "reported_tcb": tcb(r.reported_tcb),
        "cpuid_fam_mod_step": r.cpuid.map(|(f, m, s)| json!([f, m, s])).unwrap_or(Value::Null),
        "chip_id": hex(&r.chip_id),
        "committed_tcb": tcb(r.committed_tcb),
        "current_version": r.current_version.to_string(),
        "committed_version": r.committed_version.to_string(),
        "launch_tcb": tcb(r.launch_tcb),
        "launch_mit_vector": r.launch_mit_vector.map(|v| Value::from(format!("{v:#x}"))).unwrap_or(Value::Null),
        "current_mit_vector": r.current_mit_vector.map(|v| Value::from(format!("{v:#x}"))).unwrap_or(Value::Null),
        "signature_r": hex(&r.raw[0x2A0..0x2E8]),
        "signature_s": hex(&r.raw[0x2E8..0x330]),
        "kds_vcek_url": product.as_ref().ok().and_then(|p| snp_report::kds_vcek_url(snp_report::KDS_BASE, p.0, r).ok()),
        "cert_table": input.cert_table.as_ref().map(|t| t.entries.iter().map(|e| json!({
            "guid": e.guid.to_string(), "kind": e.kind.name(), "offset": e.offset, "length": e.data.len()
        })).collect::<Vec<_>>()),
    });
    let mut s = String::new();
    let _ = writeln!(s, "Container: {}", input.container.name());
    if let Err(e) = &product {
        let _ = writeln!(s, "Product: unknown ({e}); TCB fields shown raw");
    }
    let Value::Object(m) = &doc else {
        return Ok(ReportDocument { json: doc, text: s });
    };
    // Report order, not the map's alphabetical one.
    const ORDER: &[&str] = &[
        "version",
        "product",
        "product_source",
        "guest_svn",
        "policy",
        "policy_abi",
        "policy_flags",
        "family_id",
        "image_id",
        "vmpl",
        "sig_algo",
        "current_tcb",
        "platform_info",
        "platform_info_flags",
        "key_info",
        "report_data",
        "measurement",
        "host_data",
        "id_key_digest",
        "author_key_digest",
        "report_id",
        "report_id_ma",
        "reported_tcb",
        "cpuid_fam_mod_step",
        "chip_id",
        "committed_tcb",
        "current_version",
        "committed_version",
        "launch_tcb",
        "launch_mit_vector",
        "current_mit_vector",
        "signature_r",
        "signature_s",
        "kds_vcek_url",
        "cert_table",
    ];
    for k in ORDER {
        let Some(v) = m.get(*k) else {
            continue;
        };
        let text = field_text(v);
        let _ = writeln!(s, "{:<20} {text}", k.to_ascii_uppercase());
    }
    Ok(ReportDocument { json: doc, text: s })
}

/// One field of `snp-report`'s text: a string as is, null as "-", an
/// object (a TCB, KEY_INFO) as key=value pairs with the TCB parts first,
/// anything else as JSON.
fn field_text(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Null => "-".into(),
        Value::Object(o) => ["fmc", "bl", "tee", "snp", "ucode", "raw"]
            .iter()
            .filter_map(|k| o.get(*k).map(|v| (k.to_string(), v)))
            .chain(
                o.iter()
                    .filter(|(k, _)| {
                        !["fmc", "bl", "tee", "snp", "ucode", "raw"].contains(&k.as_str())
                    })
                    .map(|(k, v)| (k.clone(), v)),
            )
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}
