//! virt-qemu-sev-validate: validate the launch measurement of an AMD SEV or
//! SEV-ES guest from inputs the guest owner trusts, and only then package
//! secrets for it.
//!
//! The library is the measurement core and the stages of one validation:
//!
//! - [`source`]: where the reported launch comes from ([`source::SourceSpec`],
//!   [`source::open`], [`source::LaunchSource::host_report`]);
//! - [`resolve`]: the owner's inputs plus, under `--insecure`, the host's
//!   facts become the expected launch, with where each value came from;
//! - [`validate`]: the expected launch against the reported one, pure;
//! - [`explain`]: why a measurement does not match;
//! - [`secrets`]: packaging secrets after a match;
//! - [`report`]: the `--json` document, built once from the run;
//! - [`core`]: formats and cryptography (launch digests, VMSAs, OVMF
//!   tables, secrets, SEV-SNP).
//!
//! Cargo features: `libvirt` (the libvirt source) and `ssh` (comparing the
//! host's files over SFTP), both on by default.
#![deny(unsafe_code)]

pub mod checks;
#[doc(hidden)]
pub mod cli;
pub mod core;
pub mod error;
pub mod explain;
pub mod launch;
pub mod num;
pub mod policy;
pub mod report;
pub mod resolve;
pub mod secrets;
#[doc(hidden)]
pub mod snp_cli;
pub mod source;
pub mod validate;
pub mod xml;

pub use error::{Error, ExitCode, Result};
