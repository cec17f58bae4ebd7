//! The project's only unsafe code, kept in one module so that a reviewer
//! finds every `unsafe` block in one place (the crate denies unsafe code
//! everywhere else). Each block says why it is sound.
//!
//! - `launch_security` (feature `libvirt`): the two libvirt
//!   launch-security calls the `virt` crate has no safe wrapper for;
//! - `sev_guest`: the `/dev/sev-guest` ioctls an SEV-SNP guest asks its
//!   attestation report with, and their request and response layouts.
//!
//! Nothing outside `crate::source` sees these modules: the safe interfaces
//! are `source::libvirt` and `source::guest_report`.

#[cfg(feature = "libvirt")]
pub(crate) mod launch_security;
pub(crate) mod sev_guest;
