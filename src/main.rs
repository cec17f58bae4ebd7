//! Thin binary: parse, run, map the outcome to the Python tool's exit codes.

use clap::Parser;
use sev_validate::cli::{self, Args};
use sev_validate::ExitCode;

fn main() {
    let code = std::panic::catch_unwind(run).unwrap_or_else(|_| {
        eprintln!(
            "ERROR: internal error (a bug in virt-qemu-sev-validate); please report it with the command line used"
        );
        ExitCode::Unexpected as i32
    });
    std::process::exit(code);
}

fn run() -> i32 {
    // The SEV-SNP subcommands have their own parser; the drop-in options stay as they are.
    if let Some(code) =
        sev_validate::snp_cli::main_if_subcommand(&std::env::args_os().collect::<Vec<_>>())
    {
        return code;
    }
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // Usage errors exit 2 as with argparse; with --json the document
            // still comes, so machines see the same shape for every failure.
            if e.use_stderr() && std::env::args().any(|a| a == "--json") {
                cli::print_usage_error_json(&e.to_string());
            }
            e.exit()
        }
    };
    cli::execute(&args)
}
