//! One run of the main command: the stages in order, each one's result kept
//! in the run's record, from which the report is built at the end.
//!
//! arguments → [`Config`] → source ([`crate::source`]) → resolve
//! ([`crate::sev::resolve`]) → load → validate ([`crate::sev::validate`]) → secrets
//! ([`crate::sev::secrets`]) → report ([`crate::report`]).

use zeroize::Zeroizing;

use super::args::{Args, Config};
use super::output::Output;
use crate::core::hex;
use crate::error::Result;
use crate::report::{Destination, InjectedSecret, Injection, Run};
use crate::sev::resolve::{self, ExpectedLaunch};
use crate::sev::secrets;
use crate::sev::validate::{self, Explain, Verdict};
use crate::source::{self, GuestKind, HostReport, LaunchSource, SourceKind};

/// Runs the tool, reports the outcome (ERROR/HINT lines, or the JSON
/// document) and returns the exit code.
pub fn execute(a: &Args) -> i32 {
    let out = Output {
        quiet: a.quiet,
        debug: a.debug,
        json: a.json,
    };
    let mut run = Run::new(a.source_spec().kind());
    if let Err(e) = stages(a, &out, &mut run) {
        run.error = Some(e);
    }
    out.finish(&run);
    run.exit_code()
}

/// Configuration, the source and the guest's kind; then, for an SEV guest,
/// the keys and the launch itself.
fn stages(a: &Args, out: &Output, run: &mut Run) -> Result<()> {
    let cfg = Config::from_args(a)?;
    run.generation = cfg.generation.clone();
    // Key files given (or needed: offline the guest is SEV) are read before
    // anything else, so a bad one is found first; with --domain or --qmp and
    // none given, the guest may be SEV-SNP, which needs none.
    let keys_given = a.tk.is_some() || a.tik.is_some() || a.tek.is_some();
    let offline = matches!(cfg.spec, source::SourceSpec::Offline { .. });
    let early_keys = if keys_given || offline {
        Some(a.keys()?)
    } else {
        None
    };
    out.spec(&cfg.spec);
    let mut source = source::open(&cfg.spec)?;
    let kind = source.guest_kind();
    run.guest = Some(kind);
    // The owner, never the host, decides how the guest is attested.
    crate::generation::check_host(cfg.generation.as_ref(), kind, run.source)?;
    if kind == GuestKind::SevSnp {
        return super::snp::stages(a, source.as_mut(), out, run);
    }
    let keys = match early_keys {
        Some(k) => k,
        None => a.keys()?,
    };
    if a.show_keys {
        // The hex copies are wiped once printed, like the keys themselves.
        out.debug(
            "TIK(hex)",
            Zeroizing::new(hex(keys.tik.as_bytes())).as_str(),
        );
        out.debug(
            "TEK(hex)",
            Zeroizing::new(hex(keys.tek.as_bytes())).as_str(),
        );
    }
    let host = source.host_report(&a.given())?;
    out.host(&host);
    if let Some(expected) = &cfg.generation {
        if let Err(e) = expected.check_sev_policy(host.launch.info.policy) {
            run.host = Some(host);
            return Err(e);
        }
    }
    let result = after_host(&cfg, keys, &host, source.as_mut(), out, run);
    run.host = Some(host);
    result
}

/// Resolve and load the expected launch, then validate it.
fn after_host(
    cfg: &Config,
    keys: resolve::Keys,
    host: &HostReport,
    source: &mut dyn LaunchSource,
    out: &Output,
    run: &mut Run,
) -> Result<()> {
    let policy = host.launch.info.policy;
    if let Some(w) = unused_es_options(es_options_given(cfg), policy) {
        out.warn(&w);
        run.warnings.push(w);
    }
    let resolved = resolve::resolve(&cfg.owner, &host.facts, policy, cfg.options)?;
    for w in &resolved.warnings {
        out.warn(w);
        run.warnings.push(w.clone());
    }
    out.resolved(&resolved);
    let expected = resolved.load(keys, policy);
    run.resolved = Some(resolved);
    let expected = expected?;
    out.expected(&expected);
    let result = after_expected(cfg, &expected, host, source, out, run);
    run.expected = Some(expected);
    result
}

/// Validate; after a match only, package and deliver the secrets.
fn after_expected(
    cfg: &Config,
    expected: &ExpectedLaunch,
    host: &HostReport,
    source: &mut dyn LaunchSource,
    out: &Output,
    run: &mut Run,
) -> Result<()> {
    let reported = &host.launch;
    // The explainer's search is only worth its time when someone reads it.
    let explain = if !out.quiet || out.json {
        Explain::Yes
    } else {
        Explain::No
    };
    let outcome = validate::validate_with(expected, reported, &cfg.requirements, explain)?;
    out.outcome(&outcome, &reported.measurement.measure);
    if outcome.verdict == Verdict::Mismatch && explain == Explain::Yes {
        run.host_files = source.compare_host_files(&owner_digests(expected));
        if let Some(r) = &run.host_files {
            out.host_files(r);
        }
    }
    let error = outcome.error();
    for w in &outcome.warnings {
        out.warn(w);
    }
    run.outcome = Some(outcome);
    if let Some(e) = error {
        return Err(e);
    }
    out.status("OK: Looks good to me");
    if cfg.secrets.is_empty() {
        return Ok(());
    }
    inject(cfg, expected, host, source, out, run)
}

/// The secrets stage.
fn inject(
    cfg: &Config,
    expected: &ExpectedLaunch,
    host: &HostReport,
    source: &mut dyn LaunchSource,
    out: &Output,
    run: &mut Run,
) -> Result<()> {
    let offline = run.source == SourceKind::Offline;
    if let Some(w) = secrets::area_warning(&expected.firmware, cfg.secret_address, offline) {
        out.warn(&w);
        run.warnings.push(w);
    }
    let measure = &host.launch.measurement.measure;
    let packaged = secrets::package(&cfg.secrets, &expected.firmware, &expected.keys, measure)?;
    out.packaged(&packaged);
    source.inject(&packaged.packet)?;
    let detail = source.describe_injection();
    out.debug("Injection", &detail);
    run.injection = Some(Injection {
        destination: match run.source {
            SourceKind::Offline => Destination::Files,
            SourceKind::Libvirt => Destination::Libvirt,
            SourceKind::Qmp => Destination::Qmp,
        },
        secrets: packaged
            .secrets
            .iter()
            .map(|(guid, bytes)| InjectedSecret {
                guid: guid.to_string(),
                bytes: *bytes,
            })
            .collect(),
        table_bytes: packaged.table_bytes,
        detail,
    });
    let n = cfg.secrets.len();
    match &cfg.spec {
        // Offline nothing is injected yet: the host injects the files.
        source::SourceSpec::Offline {
            secret_files: Some((header, payload)),
        } => out.status(&format!(
            "OK: Wrote {n} secrets to '{}' (header) and '{}' (payload) for the host to inject",
            header.display(),
            payload.display()
        )),
        _ => out.status(&format!("OK: Injected {n} secrets")),
    }
    Ok(())
}

/// The SEV-ES options the owner gave.
fn es_options_given(cfg: &Config) -> Vec<&'static str> {
    let mut given = Vec::new();
    if cfg.owner.num_cpus.is_some() {
        given.push("--num-cpus");
    }
    match cfg.owner.vmsa {
        resolve::VmsaInput::Files(..) => given.push("--vmsa-cpu0/--vmsa-cpu1"),
        resolve::VmsaInput::Signature(_) => given.push("--cpu-family/--cpu-model/--cpu-stepping"),
        resolve::VmsaInput::None => {}
    }
    given
}

/// SEV-ES options given for a launch whose policy has no ES bit are not
/// measured: say so, rather than ignore them silently.
fn unused_es_options(given: Vec<&'static str>, policy: u32) -> Option<String> {
    use crate::sev::policy::SevPolicy;
    if given.is_empty() || SevPolicy::from_bits_retain(policy).contains(SevPolicy::ES) {
        return None;
    }
    Some(format!(
        "{} given, but the policy {policy:#x} has no SEV-ES bit (0x4), so they are not used: an SEV \
         launch measures no vCPU state. If the guest runs SEV-ES, give its policy (e.g. {:#x})",
        given.join(", "),
        policy | SevPolicy::ES.bits()
    ))
}

/// The owner's digests of the files a host may hold copies of.
fn owner_digests(e: &ExpectedLaunch) -> Vec<(&'static str, [u8; 32])> {
    let mut owner = Vec::new();
    if let Some(d) = e.firmware.digest_after_firmware.firmware_digest() {
        owner.push(("firmware", d));
    }
    if let Some(k) = &e.kernel {
        owner.push(("kernel", k.hashes.kernel));
        if k.initrd.is_some() {
            owner.push(("initrd", k.hashes.initrd));
        }
    }
    owner
}
