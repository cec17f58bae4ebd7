//! Sources of launch state: where the values the SEV firmware reported come
//! from, and where packaged secrets go. Offline (the command line) is here;
//! libvirt and QMP sources implement the same trait.

pub mod offline;

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
    /// Delivers a packaged secret. Called only after a successful validation.
    fn inject(&mut self, packet: &SecretPacket) -> Result<()>;
    /// Describes where the secret went, for the success message.
    fn describe_injection(&self) -> String;
}
