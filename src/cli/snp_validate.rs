//! `snp-validate`: an SEV-SNP attestation report validated against AMD's
//! chain and the owner's expectations, every check listed by name. Exit
//! codes: 0 valid, 1 a check failed, 2 bad input or usage.

use std::path::PathBuf;

use clap::Args;

use super::num::{family_id, host_data, image_id, measurement};
use super::snp_key_release::{sealed_text, SealArgs};
use super::snp_options::{EndorsementArgs, RequirementArgs, DEFAULTS, EXPECT};
use crate::error::{ExitCode, Result};
use crate::snp::attest::{self, ErrorDocument, Validation};
use crate::snp::key_release::{self, SealedSummary};

/// `snp-validate`: every check, listed by name.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The report: raw 1184 bytes (snpguest, configfs-tsm outblob), the /dev/sev-guest SNP_GET_REPORT response, a report followed by its certificate table, or Azure's vTPM HCL report
    #[arg(value_name = "REPORT")]
    report: PathBuf,

    #[command(flatten)]
    pub endorsement: EndorsementArgs,

    /// Expected MEASUREMENT (48 bytes: 96 hex digits or base64), e.g. from snp-digest
    #[arg(long, value_name = "HEX", value_parser = measurement, help_heading = EXPECT)]
    measurement: Option<[u8; 48]>,

    /// After '--': snp-digest's options (--ovmf, --vcpus, --vcpu-type, --kernel...); the expected MEASUREMENT is the digest they give
    #[arg(
        last = true,
        value_name = "SNP-DIGEST OPTIONS",
        conflicts_with = "measurement"
    )]
    launch: Vec<std::ffi::OsString>,

    /// Do not require --measurement or snp-digest's options after '--' (any firmware, kernel and initrd then pass)
    #[arg(long, help_heading = DEFAULTS, conflicts_with_all = ["measurement", "launch"])]
    no_measurement_check: bool,

    /// Expected HOST_DATA (32 bytes: 64 hex digits or base64; libvirt <hostData>, QEMU host-data)
    #[arg(long, value_name = "HEX", value_parser = host_data, help_heading = EXPECT)]
    host_data: Option<[u8; 32]>,

    /// Expected FAMILY_ID (16 bytes: 32 hex digits or base64; from the ID block)
    #[arg(long, value_name = "HEX", value_parser = family_id, help_heading = EXPECT)]
    family_id: Option<[u8; 16]>,

    /// Expected IMAGE_ID (16 bytes: 32 hex digits or base64; from the ID block)
    #[arg(long, value_name = "HEX", value_parser = image_id, help_heading = EXPECT)]
    image_id: Option<[u8; 16]>,

    #[command(flatten)]
    pub requirements: RequirementArgs,

    #[command(flatten)]
    pub seal: SealArgs,

    /// Print one JSON document (schema/snp-validate.schema.json)
    #[arg(long)]
    json: bool,
}

fn run_validate(a: &ValidateArgs) -> Result<Validation> {
    let report = [("REPORT", a.report.as_path())];
    let files: Vec<_> = report
        .into_iter()
        .chain(a.endorsement.inputs())
        .chain(a.requirements.inputs())
        .collect();
    crate::input::at_most_one_stdin(files)?;
    // The sealing options are checked before any work, the secrets only read after it.
    let _ = a.seal.plan()?;
    let mut expect = a.requirements.expectations()?;
    expect.measurement = a.measurement;
    expect.waive_measurement = a.no_measurement_check;
    expect.host_data = a.host_data;
    expect.family_id = a.family_id;
    expect.image_id = a.image_id;
    // Hashed once: the digest, and the state the explainer searches from.
    let launch = if a.launch.is_empty() {
        None
    } else {
        Some(super::snp_digest::launch_from_options(&a.launch)?)
    };
    attest::validate_evidence(
        &a.report,
        &a.endorsement.source(),
        expect,
        launch.as_ref(),
        a.seal.nonce,
    )
}

/// `snp-validate --json` on a command line clap refuses: the exit-2
/// document on stdout, as for every other bad input, so a caller that
/// parses stdout always gets JSON.
pub fn usage_error_json(args: &[std::ffi::OsString], e: &clap::Error) {
    let validate = args.get(1).is_some_and(|a| a == "snp-validate");
    // After a bare '--' the options are snp-digest's, not ours.
    let json = args
        .iter()
        .skip(2)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    if !(validate && json && e.use_stderr()) {
        return;
    }
    // clap's message without its "error: " prefix and usage footer.
    let text = e.render().to_string();
    let msg = text
        .split("\n\nUsage:")
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ");
    let doc = ErrorDocument::new(ExitCode::UnsupportedUsage as i32, msg);
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

/// Printed on every run with `--no-measurement-check`.
const NO_MEASUREMENT_NOTE: &str = "NOTE: --no-measurement-check: MEASUREMENT is not checked, so nothing about the guest's firmware, kernel or initrd is attested";

const ANCHOR_WARNING: &str = "WARNING: --trust-anchors replaces AMD's built-in ARK/ASK/ASVK: this verdict rests on the certificates given, not on AMD's roots";

fn report_error(a: &ValidateArgs, e: &crate::error::Error) -> i32 {
    if a.json {
        let doc = ErrorDocument::new(e.exit_code() as i32, e.to_string());
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    eprintln!("ERROR: {e}");
    e.exit_code() as i32
}

/// Seals the secrets when asked and every check passed; when a check
/// failed, nothing is read or written (the verdict says why, exit 1).
fn seal_if_asked(a: &ValidateArgs, v: &Validation) -> Result<Option<SealedSummary>> {
    let Some(plan) = a.seal.plan()? else {
        return Ok(None);
    };
    if !v.outcome.passed() {
        eprintln!(
            "NOT SEALED: a check failed; nothing was written to '{}'",
            plan.out.display()
        );
        return Ok(None);
    }
    let Some(evidence) = &v.evidence else {
        return Err(crate::error::Error::Usage(
            "--seal-secret needs a key-release evidence file (snp-request --evidence-out)".into(),
        ));
    };
    key_release::seal_validated(v, evidence, &plan).map(Some)
}

/// Runs `snp-validate`, prints its result, returns the exit code.
pub fn validate_main(a: &ValidateArgs) -> i32 {
    if a.no_measurement_check {
        eprintln!("{NO_MEASUREMENT_NOTE}");
    }
    match run_validate(a) {
        Err(e) => report_error(a, &e),
        Ok(v) => {
            if v.custom_anchors {
                eprintln!("{ANCHOR_WARNING}");
            }
            let code = if v.outcome.passed() {
                ExitCode::Ok
            } else {
                ExitCode::AttestationFailed
            } as i32;
            let sealed = match seal_if_asked(a, &v) {
                Ok(s) => s,
                Err(e) => return report_error(a, &e),
            };
            if a.json {
                let mut doc = attest::validation_document(&v, code);
                doc.sealed = sealed.as_ref().map(|s| s.document());
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                let s = attest::validation_text(&v);
                print!("{s}");
                if let Some(s) = &sealed {
                    print!("{}", sealed_text(s));
                }
            }
            code
        }
    }
}
