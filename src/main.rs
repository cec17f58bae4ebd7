//! Thin binary: parse, run, map the outcome to the Python tool's exit codes.

use clap::Parser;
use sev_validate::cli::{self, Args};
use sev_validate::ExitCode;

fn main() {
    let args = Args::parse();
    let outcome = std::panic::catch_unwind(|| cli::run(&args));
    let code = match outcome {
        Ok(Ok(())) => ExitCode::Ok,
        Ok(Err(e)) => {
            eprintln!("ERROR: {e}");
            e.exit_code()
        }
        Err(_) => {
            eprintln!("ERROR: internal error (a bug in virt-qemu-sev-validate); please report it with the command line used");
            ExitCode::Unexpected
        }
    };
    std::process::exit(code as i32);
}
