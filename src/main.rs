//! Thin binary: parse, run, map the outcome to the Python tool's exit codes.

use clap::Parser;
use sev_validate::cli::{self, Args};
use sev_validate::ExitCode;

fn main() {
    let args = Args::parse();
    let code = std::panic::catch_unwind(|| cli::execute(&args)).unwrap_or_else(|_| {
        eprintln!(
            "ERROR: internal error (a bug in virt-qemu-sev-validate); please report it with the command line used"
        );
        ExitCode::Unexpected as i32
    });
    std::process::exit(code);
}
