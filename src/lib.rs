//! virt-qemu-sev-validate: validate the launch measurement of an AMD SEV or
//! SEV-ES guest from inputs the guest owner trusts, and only then package
//! secrets for it.

pub mod checks;
pub mod cli;
pub mod core;
pub mod error;
pub mod explain;
pub mod launch;
pub mod policy;
pub mod report;
pub mod snp_cli;
pub mod snp_explain;
pub mod source;
pub mod xml;

pub use error::{Error, ExitCode, Result};
