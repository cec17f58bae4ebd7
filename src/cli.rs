//! The command line: parses the arguments and dispatches. The drop-in
//! options of libvirt's Python tool are in [`args`]; one run of the stages
//! is in [`run`]; what a person sees is in [`output`]; the SEV-SNP
//! subcommands are dispatched by [`snp_commands`], one file each
//! ([`snp_digest`], [`snp_ovmf_hash`], [`snp_id_block`], [`snp_report`],
//! [`snp_validate`]), with the options `snp-validate` shares with the main
//! command in [`snp_options`].
//! It is the only module that knows clap: it parses the arguments once into
//! the library's typed values.
//!
//! Not part of the library's API: programs use the stages directly.

// clap turns the options' doc comments into --help text, where `<hostData>`
// names a domain XML element, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

pub mod args;
mod args_outputs;
pub mod guest_agent_args;
pub mod help;
pub mod num;
pub mod output;
pub mod run;
pub mod snp;
pub mod snp_commands;
pub mod snp_digest;
pub mod snp_id_block;
pub mod snp_key_release;
pub mod snp_options;
pub mod snp_ovmf_hash;
pub mod snp_report;
pub mod snp_validate;

use clap::FromArgMatches;

pub use args::Args;
pub use run::execute;

use crate::error::Error;
use crate::report::Report;
use crate::source::{self, LIBVIRT_EXECUTABLE};

/// The whole program: parse, run, map the outcome to exit codes.
/// `register` adds optional sources (the libvirt executable passes
/// `source::enable_libvirt`, present with the `libvirt` feature). Panics
/// become exit status 6.
pub fn main_entry(register: Option<fn()>) -> i32 {
    std::panic::catch_unwind(|| {
        if let Some(r) = register {
            r();
        }
        let argv: Vec<_> = std::env::args_os().collect();
        // The SEV-SNP subcommands have their own parser; the drop-in options stay as they are.
        if let Some(code) = snp_commands::main_if_subcommand(&argv) {
            return code;
        }
        if let Some(code) = help::main_if_help(&argv) {
            return code;
        }
        let parsed = help::drop_in_command()
            .try_get_matches_from(&argv)
            .and_then(|m| {
                help::no_command_after_options(&m)?;
                Args::from_arg_matches(&m)
            });
        let args = match parsed {
            Ok(a) => a,
            Err(e) => {
                // Usage errors exit 2 as with argparse; with --json the document
                // still comes, so machines see the same shape for every failure.
                if e.use_stderr() && std::env::args().any(|a| a == "--json") {
                    output::print_json(&Report::usage_error(&e.to_string()));
                }
                e.exit()
            }
        };
        if args.domain.is_some() && !source::libvirt_enabled() {
            // Only returns when the libvirt executable cannot be run.
            let e = exec_libvirt_executable();
            eprintln!("ERROR: {e}");
            return e.exit_code() as i32;
        }
        execute(&args)
    })
    .unwrap_or_else(|_| {
        eprintln!(
            "ERROR: internal error (a bug in virt-qemu-sev-validate); please report it with the command line used"
        );
        crate::ExitCode::Unexpected as i32
    })
}

/// Runs the libvirt executable installed beside this one with the same
/// arguments, in place of this process. Returns only on failure: an
/// installation problem (exit 7), not a bug.
pub fn exec_libvirt_executable() -> Error {
    use std::os::unix::process::CommandExt;
    let path = match std::env::current_exe() {
        Ok(p) => p.with_file_name(LIBVIRT_EXECUTABLE),
        Err(e) => {
            return Error::Installation(format!(
                "--domain is handled by {LIBVIRT_EXECUTABLE}, but this program cannot find its own \
                 path to look for it beside itself ({e})"
            ))
        }
    };
    let err = std::process::Command::new(&path)
        .args(std::env::args_os().skip(1))
        .exec();
    Error::Installation(format!(
        "--domain is handled by {}, which cannot be run ({err}); install it beside this program \
         (the Debian package, scripts/package.sh, and cargo install --path . install both)",
        path.display()
    ))
}
