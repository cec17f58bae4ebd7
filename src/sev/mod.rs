//! SEV and SEV-ES guests, stage by stage: the owner's inputs and the host's
//! facts become the expected launch ([`resolve`], with the domain XML's
//! [`checks`]), its digest is recomputed from the owner's files ([`launch`])
//! and compared with the LAUNCH_MEASURE the host reports ([`validate`], the
//! owner's [`policy`] requirements after a match), a mismatch is explained
//! ([`explain`]), and only then are secrets packaged ([`secrets`]).

pub mod checks;
pub mod explain;
pub mod launch;
pub mod policy;
pub mod resolve;
pub mod secrets;
pub mod validate;
