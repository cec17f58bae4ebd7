//! Sources of launch state: where the values the SEV firmware reported come
//! from, and where packaged secrets go. Offline (the command line) and
//! libvirt implement the same trait.

pub mod host_files;
#[cfg(feature = "kds")]
pub mod kds;
mod launch_security_ffi;
pub mod libvirt;
pub mod offline;
pub mod qmp;

use crate::core::measurement::{LaunchInfo, Measurement};
use crate::core::secret::SecretPacket;
use crate::error::{Error, Result};

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

/// Launch values given on the command line; each one wins over the host's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given<'a> {
    pub measurement: Option<&'a str>,
    pub api_major: Option<u8>,
    pub api_minor: Option<u8>,
    pub build_id: Option<u8>,
    pub policy: Option<u32>,
}

impl Given<'_> {
    /// Every value is given, so the host need not be asked.
    pub fn complete(&self) -> bool {
        self.measurement.is_some()
            && self.api_major.is_some()
            && self.api_minor.is_some()
            && self.build_id.is_some()
            && self.policy.is_some()
    }
}

/// Launch values as a host reported them (already range-checked), with the
/// names the host uses for them: measurement, API major, API minor, build, policy.
#[derive(Debug, Clone, Default)]
pub struct HostValues {
    pub names: [&'static str; 5],
    pub measurement: Option<String>,
    pub api_major: Option<u8>,
    pub api_minor: Option<u8>,
    pub build_id: Option<u8>,
    pub policy: Option<u32>,
}

/// The launch values used: the command line's where given, else the host's;
/// `debug` is told of every value where the two differ. `who` names the host
/// side in messages ("the host", "QEMU").
pub fn merge_reported(
    who: &str,
    host: &HostValues,
    given: &Given,
    debug: &dyn Fn(&str, String),
) -> Result<ReportedLaunch> {
    fn pick<T: PartialEq + std::fmt::Display + Clone>(
        who: &str,
        name: &str,
        host: Option<&T>,
        given: Option<&T>,
        debug: &dyn Fn(&str, String),
    ) -> Result<T> {
        if let (Some(h), Some(g)) = (host, given) {
            if h != g {
                debug(
                    name,
                    format!("{who} reported {h}, command line gives {g} (used)"),
                );
            }
        }
        given.or(host).cloned().ok_or_else(|| {
            Error::Usage(format!(
                "{who} did not report {name}; give it on the command line"
            ))
        })
    }
    let [n_m, n_maj, n_min, n_build, n_policy] = host.names;
    let m: String = pick(
        who,
        n_m,
        host.measurement.as_ref(),
        given.measurement.map(str::to_string).as_ref(),
        debug,
    )?;
    Ok(ReportedLaunch {
        measurement: Measurement::from_base64(&m).map_err(Error::Usage)?,
        info: LaunchInfo {
            api_major: pick(
                who,
                n_maj,
                host.api_major.as_ref(),
                given.api_major.as_ref(),
                debug,
            )?,
            api_minor: pick(
                who,
                n_min,
                host.api_minor.as_ref(),
                given.api_minor.as_ref(),
                debug,
            )?,
            build_id: pick(
                who,
                n_build,
                host.build_id.as_ref(),
                given.build_id.as_ref(),
                debug,
            )?,
            policy: pick(
                who,
                n_policy,
                host.policy.as_ref(),
                given.policy.as_ref(),
                debug,
            )?,
        },
    })
}
