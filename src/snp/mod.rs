//! SEV-SNP guests, stage by stage: a domain's launch security element is
//! decoded and checked ([`domain`], with the owner's [`pins`] on what the host
//! declares), the expected launch digest is computed ([`digest`]; [`svsm`]
//! for OVMF behind a COCONUT-SVSM) and the ID block judged
//! before launch, and the guest's attestation report is validated against
//! AMD's chain and the owner's expectations ([`validate`]); a digest that
//! differs is explained ([`explain`]); AMD's revocation list is found
//! ([`revocation`]); [`run`] holds the stages in order.

pub mod attest;
pub mod digest;
pub mod domain;
pub mod endorsement;
pub mod explain;
mod guest_agent;
pub mod id_block;
pub mod igvm;
mod igvm_run;
pub mod key_release;
pub mod pins;
pub mod revocation;
pub mod run;
pub mod svsm;
pub mod validate;
