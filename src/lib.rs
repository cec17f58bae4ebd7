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
//!
//! One validation through QEMU's monitor, stage by stage:
//!
//! ```no_run
//! # fn main() -> Result<(), sev_validate::Error> {
//! use sev_validate::core::keys::{Tek, Tik};
//! use sev_validate::core::vmsa::VmsaForm;
//! use sev_validate::sev::policy::Requirements;
//! use sev_validate::sev::resolve::{self, Keys, Options, OwnerInputs, VmsaInput};
//! use sev_validate::source::{self, Given, QmpSpec, SourceSpec};
//! use sev_validate::sev::validate::{validate, Verdict};
//!
//! let spec = SourceSpec::Qmp(QmpSpec {
//!     endpoint: "host.example:4444".into(),
//!     timeout: std::time::Duration::from_secs(10),
//!     insecure: false,
//!     resume: true,
//!     secret_address: None,
//! });
//! let mut src = source::open(&spec)?;
//! let host = src.host_report(&Given::default())?;
//! let owner = OwnerInputs {
//!     firmware: Some("OVMF.amdsev.fd".into()),
//!     kernel: None,
//!     initrd: None,
//!     cmdline: None,
//!     num_cpus: None,
//!     vmsa: VmsaInput::None,
//!     vmsa_form: VmsaForm::Legacy,
//!     sev_features: 0,
//! };
//! let policy = host.launch.info.policy;
//! let resolved = resolve::resolve(&owner, &host.facts, policy, Options::default())?;
//! let keys = Keys {
//!     tik: Tik::from_slice(&std::fs::read("tik.bin").unwrap()).expect("16 bytes"),
//!     tek: Tek::from_slice(&std::fs::read("tek.bin").unwrap()).expect("16 bytes"),
//!     from_tk_file: false,
//! };
//! let expected = resolved.load(keys, policy)?;
//! let outcome = validate(&expected, &host.launch, &Requirements::default())?;
//! if outcome.verdict == Verdict::Validated {
//!     // Only now package secrets (sev_validate::sev::secrets) and inject them.
//! }
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]

#[doc(hidden)]
pub mod cli;
pub mod core;
pub mod error;
pub mod generation;
pub mod input;
pub mod provenance;
pub mod report;
pub mod sev;
pub mod snp;
pub mod source;

pub use error::{Error, ExitCode, Result};
