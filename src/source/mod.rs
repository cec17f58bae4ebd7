//! Sources of launch state: where the values the SEV firmware reported come
//! from, and where packaged secrets go. Offline (the command line) and
//! libvirt implement the same trait.

pub mod host_files;
mod launch_security_ffi;
pub mod libvirt;
pub mod offline;
pub mod qmp;

use crate::core::measurement::{LaunchInfo, Measurement};
use crate::core::secret::SecretPacket;
use crate::error::Result;

/// What the SEV firmware reported for the launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedLaunch {
    pub measurement: Measurement,
    pub info: LaunchInfo,
}

/// One place launch state comes from and secrets go to.
pub trait LaunchSource {
    /// The reported measurement, API version, build and policy.
    fn reported(&mut self) -> Result<ReportedLaunch>;
    /// Delivers a packaged secret (and resumes the guest where that applies).
    /// Called only after a successful validation.
    fn inject(&mut self, packet: &SecretPacket) -> Result<()>;
    /// Describes where the secret went, for --debug.
    fn describe_injection(&self) -> String;
    /// On a mismatch: the host's copies of the owner's files (what, owner's
    /// SHA-256) compared where the source can reach them; a diagnosis only.
    fn compare_host_files(
        &self,
        _owner: &[(&str, [u8; 32])],
    ) -> Option<std::result::Result<Vec<host_files::Comparison>, String>> {
        None
    }
}
