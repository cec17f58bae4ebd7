//! The SEV-SNP subcommands beside the drop-in options: one parser for
//! `snp-digest`, `snp-ovmf-hash`, `snp-id-block` ([`super::snp_digest`]),
//! `snp-report` ([`super::snp_report`]) and `snp-validate` ([`super::snp_validate`]), and the one
//! place that runs them. [`main_if_subcommand`] is the entry point: it
//! leaves every other command line to the drop-in parser.

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

use super::snp_digest::{self, DigestArgs};
use super::snp_id_block::{self, IdBlockArgs};
use super::snp_key_release::{self, OpenArgs, RequestArgs};
use super::snp_ovmf_hash::{self, OvmfHashArgs};
use super::snp_report::{self, ReportArgs};
use super::snp_validate::{self, ValidateArgs};
use crate::error::{Error, ExitCode, Result};

/// The subcommands this module answers.
pub const SUBCOMMANDS: &[&str] = &[
    "snp-digest",
    "snp-ovmf-hash",
    "snp-id-block",
    "snp-report",
    "snp-validate",
    "snp-request",
    "snp-open",
];

#[derive(Debug, Parser)]
#[command(
    name = "virt-qemu-sev-validate",
    about = "AMD SEV-SNP launch digests and ID blocks",
    disable_version_flag = true
)]
struct SnpCli {
    #[command(subcommand)]
    command: SnpCommand,
}

#[derive(Debug, Subcommand)]
enum SnpCommand {
    /// The expected SEV-SNP launch digest (a report's MEASUREMENT)
    #[command(
        long_about = "Compute the expected SEV-SNP launch digest of a guest: the value the \
attestation report's MEASUREMENT field must hold, and what an ID block signs. The firmware is \
measured page by page as QEMU and KVM add it, then the pages its SEV metadata lists, then one \
VMSA page per vCPU."
    )]
    #[command(name = "snp-digest")]
    Digest(DigestArgs),
    /// The SEV-SNP launch digest of the firmware image alone
    #[command(
        long_about = "Compute the SEV-SNP launch digest after the firmware image alone, to give \
later to snp-digest --ovmf-hash so that a large image is hashed once for many digests."
    )]
    #[command(name = "snp-ovmf-hash")]
    OvmfHash(OvmfHashArgs),
    /// Build and sign an SEV-SNP ID block for a launch digest
    #[command(
        long_about = "Build the 96-byte SEV-SNP ID block for an expected launch digest, sign it \
with the ID key, sign the ID key with the author key, and print them in the forms QEMU's \
sev-snp-guest object and libvirt's <launchSecurity type='sev-snp'> take, with the key digests \
the attestation report will carry."
    )]
    #[command(name = "snp-id-block")]
    IdBlock(IdBlockArgs),
    /// Print every field of an SEV-SNP attestation report
    #[command(name = "snp-report")]
    Report(ReportArgs),
    /// Validate an SEV-SNP attestation report
    #[command(
        long_about = "Validate an SEV-SNP attestation report: its signature, AMD's certificate \
chain, the TCB and chip binding against the VCEK, and the owner's expectations."
    )]
    #[command(name = "snp-validate")]
    Validate(Box<ValidateArgs>),
    /// In the guest: bind a key to the owner's nonce in a report
    #[command(
        name = "snp-request",
        long_about = "In an SEV-SNP guest: make an ephemeral HPKE key pair (P-384), keep its \
private key in --key-dir, and bind its public key and the owner's nonce into REPORT_DATA \
(SHA-512 of the label, the nonce and the key; schema/snp-key-release.md). With \
--evidence-out alone it asks the guest kernel for the report (configfs-tsm, else \
/dev/sev-guest) and writes the evidence (report, certificate table, nonce, public key) for \
the owner's snp-validate --nonce --seal-secret. Without the kernel's interfaces, in two \
steps: --print-report-data prints the REPORT_DATA to request the report with another tool, \
then --report FILE --evidence-out FILE writes the evidence."
    )]
    Request(RequestArgs),
    /// In the guest: open a sealed file and write one secret
    #[command(name = "snp-open")]
    Open(OpenArgs),
}

/// The subcommands' parser, for listing them in `--help` and for the shell
/// completions.
pub fn command() -> clap::Command {
    <SnpCli as clap::CommandFactory>::command()
}

/// Runs the SNP subcommand in `args` (argv, program name first) when `argv[1]`
/// names one; `None` leaves the command line to the drop-in parser.
pub fn main_if_subcommand(args: &[OsString]) -> Option<i32> {
    let first = args.get(1)?.to_str()?;
    if !SUBCOMMANDS.contains(&first) {
        return None;
    }
    Some(run_from_args(args))
}

fn run_from_args(args: &[OsString]) -> i32 {
    let cli = match SnpCli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            snp_validate::usage_error_json(args, &e);
            return if e.use_stderr() {
                ExitCode::UnsupportedUsage as i32
            } else {
                ExitCode::Ok as i32
            };
        }
    };
    if let SnpCommand::Validate(a) = &cli.command {
        // Its own exit codes: 1 when a check fails, with the result printed.
        return std::panic::catch_unwind(|| snp_validate::validate_main(a))
            .unwrap_or(ExitCode::Unexpected as i32);
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&cli.command)));
    match outcome {
        Ok(Ok(out)) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (| head) is not an error of ours.
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
            ExitCode::Ok as i32
        }
        Ok(Err(e)) => {
            eprintln!("ERROR: {e}");
            e.exit_code() as i32
        }
        Err(_) => {
            eprintln!("ERROR: internal error (a bug in virt-qemu-sev-validate); please report it with the command line used");
            ExitCode::Unexpected as i32
        }
    }
}

/// Runs one subcommand; returns what it prints on stdout.
fn run(cmd: &SnpCommand) -> Result<String> {
    match cmd {
        SnpCommand::Digest(a) => snp_digest::snp_digest(a),
        SnpCommand::OvmfHash(a) => snp_ovmf_hash::snp_ovmf_hash(a),
        SnpCommand::IdBlock(a) => snp_id_block::snp_id_block(a),
        SnpCommand::Report(a) => snp_report::report_main(a),
        SnpCommand::Request(a) => snp_key_release::request_main(a),
        SnpCommand::Open(a) => snp_key_release::open_main(a),
        SnpCommand::Validate(_) => Err(Error::Unexpected(
            "snp-validate runs through snp_validate::validate_main".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_subcommands_are_taken() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(main_if_subcommand(&argv(&["prog"])), None);
        assert_eq!(
            main_if_subcommand(&argv(&["prog", "--firmware", "x"])),
            None
        );
        assert_eq!(main_if_subcommand(&argv(&["prog", "snp"])), None);
    }
}
