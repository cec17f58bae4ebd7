//! The main command on an SEV-SNP guest: its stages ([`crate::snp::run`])
//! and what a person sees of them.

use super::args::Args;
use super::output::Output;
use crate::core::hex;
use crate::error::Result;
use crate::report::Run;
use crate::snp::run::{self, SnpRun};
use crate::snp::validate::Status;
use crate::source::LaunchSource;

/// Runs the SNP stages and prints what each found, whether or not the run
/// failed: the owner sees how far it got.
pub fn stages(a: &Args, source: &mut dyn LaunchSource, out: &Output, run: &mut Run) -> Result<()> {
    let owner = a.snp_owner()?;
    let host = source.snp_host_report()?;
    let snp = run.snp.insert(SnpRun {
        warnings: run.warnings.clone(),
        ..SnpRun::default()
    });
    let before = snp.warnings.len();
    let result = run::run(&owner, host, snp, source.guest_agent());
    for w in &snp.warnings[before..] {
        out.warn(w);
    }
    print(out, snp, owner.report.is_some() || owner.agent.is_some());
    result?;
    Ok(())
}

/// The record of an SNP run, stage by stage.
fn print(out: &Output, snp: &SnpRun, report_given: bool) {
    if let Some(h) = &snp.host {
        if let Some(c) = &h.connection {
            out.debug("Connection", if c.remote { "remote" } else { "local" });
        }
        if let Some(s) = &h.state {
            out.debug("Guest", format!("SEV-SNP, {s}"));
        }
        if let Some(q) = &h.query_sev {
            out.debug(
                "query-sev",
                format!(
                    "SNP firmware {}.{} build {}, policy {:#x}",
                    q.api_major, q.api_minor, q.build_id, q.policy
                ),
            );
        }
        for n in &h.notes {
            out.debug("Host", n);
        }
    }
    if let Some(d) = &snp.domain {
        out.debug("SNP policy", format!("{:#x}", d.policy));
        for n in d.notes() {
            out.note(&n);
        }
    }
    if let Some(l) = &snp.launch {
        let from_host = l.from_host();
        if !from_host.is_empty() {
            out.note(&format!(
                "taken from the host (--insecure), not from you: {}",
                from_host.join(", ")
            ));
        }
        let options: Vec<String> = l
            .digest_options()
            .iter()
            .map(|o| o.to_string_lossy().into_owned())
            .collect();
        out.debug("Same as", format!("snp-digest {}", options.join(" ")));
    }
    if let Some(c) = &snp.computed {
        out.status(&format!("Expected launch digest: {}", hex(&c.ld)));
    }
    print_prelaunch(out, snp, report_given);
    if let Some(v) = &snp.validation {
        if v.custom_anchors {
            out.warn("--trust-anchors replaces AMD's built-in ARK/ASK/ASVK: this verdict rests on the certificates given, not on AMD's roots");
        }
        for line in crate::snp::attest::validation_text(v).lines() {
            out.status(line);
        }
        if v.outcome.passed() {
            out.status("OK: the guest's attestation report matches the domain");
        }
        if let Some(s) = &snp.sealed {
            out.status(super::snp_key_release::sealed_text(s).trim_end());
        }
        if let Some(p) = &snp.guest_sealed {
            out.status(&format!(
                "OK: the sealed file was written into the guest at '{p}' through its QEMU guest agent"
            ));
        }
    }
}

/// The ID block's checks, and what its absence means.
fn print_prelaunch(out: &Output, snp: &SnpRun, report_given: bool) {
    let has_xml = snp.host.as_ref().is_some_and(|h| h.domain.is_some());
    match &snp.prelaunch {
        Some(checks) => {
            for c in checks {
                let tag = match c.status {
                    Status::Pass => "PASS",
                    Status::Fail => "FAIL",
                    Status::Skip => "skip",
                    Status::Warn => "WARN",
                };
                out.status(&format!("  {tag}  {}  {}", c.name, c.message));
            }
            if let Some(x) = &snp.id_block_explanation {
                out.status(&format!("  HINT: {}", run::id_block_answer(x)));
            }
            if checks.iter().all(|c| c.status != Status::Fail) {
                out.status("OK: the ID block matches the launch: SNP_LAUNCH_FINISH will accept it");
            }
        }
        None if snp.computed.is_some() && has_xml => out.note(
            "the domain has no ID block, so the firmware starts whatever launch the host makes; only the guest's attestation report proves what it runs",
        ),
        None => {}
    }
    if snp.computed.is_none() || report_given {
        return;
    }
    let failed = |c: &crate::snp::validate::Check| c.status == Status::Fail;
    if snp.prelaunch.iter().flatten().any(failed) {
        return;
    }
    if snp.prelaunch.is_none() && !has_xml {
        out.note("QEMU's monitor has no domain XML to check: only its policy was checked");
    }
    out.status(&format!(
        "{NOT_ATTESTED}: {}",
        not_attested_words(snp.prelaunch.is_some())
    ));
}

/// The verdict word of an SNP run that checked the launch configuration
/// but no attestation report.
pub const NOT_ATTESTED: &str = "NOT ATTESTED";

/// What a run without a report established, and what it did not.
fn not_attested_words(id_block: bool) -> String {
    let what = if id_block {
        "the domain and its ID block match the launch you expect"
    } else {
        "the launch you expect is computed and the host's configuration of it passed its checks"
    };
    format!(
        "launch configuration accepted ({what}); nothing about the running guest is attested \
         until its report is checked: give --report with the report the guest obtains"
    )
}
