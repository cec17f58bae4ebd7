//! Sources of launch state: where the values the SEV firmware reported come
//! from, what the host says about the guest, and where packaged secrets go.
//!
//! A [`SourceSpec`] is chosen once from the arguments; [`open`] turns it into
//! a [`LaunchSource`], whose [`LaunchSource::host_report`] is the one call
//! that asks the host: it returns the reported launch and the host's facts.
//!
//! ```
//! use sev_validate::source::{self, Given, SourceSpec};
//!
//! // Offline: the values `virsh domlaunchsecinfo` printed on the host.
//! let spec = SourceSpec::Offline { secret_files: None };
//! let mut src = source::open(&spec).unwrap();
//! let given = Given {
//!     measurement: Some("lswbxWxI9gckya16JQvdFtpYmNO4b+3inAPpqsgoBI7DE/q1EcIWsVBbGy6pkDxA"),
//!     api_major: Some(1),
//!     api_minor: Some(40),
//!     build_id: Some(40),
//!     policy: Some(3),
//! };
//! let host = src.host_report(&given).unwrap();
//! assert_eq!(host.launch.info.build_id, 40);
//! assert!(host.facts.domain.is_none());
//! ```

#[cfg(feature = "ssh")]
pub mod host_files;
#[cfg(feature = "kds")]
pub mod kds;
// The project's only unsafe code, in one module: two libvirt calls the `virt`
// crate does not wrap, and the /dev/sev-guest ioctls.
#[allow(unsafe_code)]
mod ffi;
pub mod guest_report;
#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod locality;
pub mod offline;
pub mod qmp;
pub mod qmp_igvm;
pub mod xml;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::core::measurement::{LaunchInfo, Measurement};
use crate::core::secret::SecretPacket;

pub use crate::error::Result;

/// Which kind of source a run uses; the JSON `source` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Values given on the command line (`virsh domlaunchsecinfo` output).
    Offline,
    /// A libvirt domain.
    Libvirt,
    /// QEMU's QMP monitor.
    Qmp,
}

/// Where the launch state comes from, decided once from the arguments.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// Values on the command line; secrets written to (header, payload) files.
    Offline {
        /// Where to write the packet header and the encrypted payload, if secrets are packaged.
        secret_files: Option<(PathBuf, PathBuf)>,
    },
    /// A libvirt domain.
    Libvirt(LibvirtSpec),
    /// QEMU's QMP monitor.
    Qmp(QmpSpec),
}

/// How to reach a libvirt domain.
#[derive(Debug, Clone)]
pub struct LibvirtSpec {
    /// The connection URI (already defaulted, see [`effective_uri`]).
    pub uri: String,
    /// Domain ID, name or UUID.
    pub domain: String,
    /// `--insecure`: allow a local connection and a domain no longer paused.
    pub insecure: bool,
    /// Resume the domain after injecting.
    pub resume: bool,
    /// `sev-secret-set-address`, when the owner gives one.
    pub secret_address: Option<u64>,
}

/// How to reach QEMU's QMP monitor.
#[derive(Debug, Clone)]
pub struct QmpSpec {
    /// A unix socket path or HOST:PORT.
    pub endpoint: String,
    /// The wait for each answer.
    pub timeout: Duration,
    /// `--insecure`: allow a local monitor and an SEV state other than `launch-secret`.
    pub insecure: bool,
    /// `cont` after injecting.
    pub resume: bool,
    /// Guest physical address of the secret, when the owner gives one.
    pub secret_address: Option<u64>,
}

impl SourceSpec {
    /// The one place a source's kind is decided.
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceSpec::Offline { .. } => SourceKind::Offline,
            SourceSpec::Libvirt(_) => SourceKind::Libvirt,
            SourceSpec::Qmp(_) => SourceKind::Qmp,
        }
    }
}

/// The libvirt URI to use: `--connect`, else `LIBVIRT_DEFAULT_URI` (as virsh
/// does), else `qemu:///system`.
pub fn effective_uri(connect: Option<&str>) -> String {
    connect
        .map(str::to_string)
        .or_else(|| {
            std::env::var("LIBVIRT_DEFAULT_URI")
                .ok()
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "qemu:///system".to_string())
}

/// Opens a source: connects, and checks what must hold before anything is
/// read (a remote connection unless `--insecure`, a paused guest).
pub fn open(spec: &SourceSpec) -> Result<Box<dyn LaunchSource>> {
    match spec {
        SourceSpec::Offline { secret_files } => {
            if let Some((header, payload)) = secret_files {
                offline::check_writable(header)?;
                offline::check_writable(payload)?;
            }
            Ok(Box::new(offline::Offline {
                secret_files: secret_files.clone(),
            }))
        }
        SourceSpec::Qmp(q) => Ok(Box::new(qmp::Qmp::open(q)?)),
        SourceSpec::Libvirt(l) => {
            let open = LIBVIRT.get().ok_or_else(|| {
                crate::Error::Installation(format!(
                    "--domain is handled by {LIBVIRT_EXECUTABLE}; this program was built without \
                     the libvirt source, so run that executable (or build with the 'libvirt' feature)"
                ))
            })?;
            open(l)
        }
    }
}

/// Opens a libvirt domain as a source.
type OpenLibvirt = fn(&LibvirtSpec) -> Result<Box<dyn LaunchSource>>;

/// The libvirt source, once registered. Only the
/// `virt-qemu-sev-validate-libvirt` executable (and programs that call
/// [`enable_libvirt`]) reference libvirt: the main executable then does not
/// load libvirt's ~60 shared libraries (14 MiB, 14 ms) for offline, QMP and
/// SNP use, and hands `--domain` runs to the libvirt executable instead.
static LIBVIRT: std::sync::OnceLock<OpenLibvirt> = std::sync::OnceLock::new();

/// Name of the executable that carries the libvirt source.
pub const LIBVIRT_EXECUTABLE: &str = "virt-qemu-sev-validate-libvirt";

/// Makes [`open`] accept [`SourceSpec::Libvirt`] (links libvirt in).
#[cfg(feature = "libvirt")]
pub fn enable_libvirt() {
    let _ = LIBVIRT.set(|spec| Ok(Box::new(libvirt::Libvirt::open(spec)?)));
}

/// Whether [`open`] accepts [`SourceSpec::Libvirt`] in this program.
pub fn libvirt_enabled() -> bool {
    LIBVIRT.get().is_some()
}

/// What the SEV firmware reported for the launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedLaunch {
    /// The LAUNCH_MEASURE blob (MEASURE ‖ MNONCE).
    pub measurement: Measurement,
    /// API version, build and policy the firmware mixed into MEASURE.
    pub info: LaunchInfo,
}

/// What the host reported, and what it said about the guest.
#[derive(Debug, Clone)]
pub struct HostReport {
    /// The values validation checks, command-line values applied.
    pub launch: ReportedLaunch,
    /// The rest of what the host said, untrusted.
    pub facts: HostFacts,
}

/// What a host says about the guest. Untrusted: the checks use it to find
/// misconfiguration, and `--insecure` may take values from it.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// The libvirt connection, when there is one.
    pub connection: Option<Connection>,
    /// The domain XML (libvirt).
    pub domain: Option<xml::Domain>,
    /// The host CPU signature from the capabilities (libvirt, SEV-ES only).
    pub host_signature: Option<u32>,
    /// The vCPUs the guest runs (SEV-ES only).
    pub vcpu_count: Option<u32>,
    /// Whether the host can say which vCPU signature the guest has (libvirt
    /// through the XML; QEMU's monitor cannot).
    pub knows_vcpu_signature: bool,
    /// The policy the host reported, even where the command line overrode it.
    pub host_policy: Option<u32>,
    /// Values the command line gave that differ from the host's.
    pub overridden: Vec<Overridden>,
    /// QEMU's SEV state (QMP).
    pub sev_state: Option<String>,
}

/// A libvirt connection and whether it reaches another machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The connection URI, as given or defaulted ([`effective_uri`]).
    pub uri: String,
    /// Whether it reaches another machine ([`locality::local_reason`] found no sign of this one).
    pub remote: bool,
}

/// A launch value the command line gave that differs from the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overridden {
    /// The host's name for the value.
    pub name: &'static str,
    /// "the host reported X, command line gives Y (used)".
    pub message: String,
}

/// One file compared on the host: its path there, its digest (or why it
/// could not be read) and the owner's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Which input: "firmware", "kernel" or "initrd".
    pub what: String,
    /// The path the domain XML names on the host.
    pub host_path: String,
    /// SHA-256 of the host's file, or why it could not be read.
    pub host_sha256: std::result::Result<[u8; 32], String>,
    /// SHA-256 of the owner's file.
    pub owner_sha256: [u8; 32],
}

impl Comparison {
    /// Whether the host's file differs from the owner's; `None` when it could not be read.
    pub fn differs(&self) -> Option<bool> {
        self.host_sha256
            .as_ref()
            .ok()
            .map(|h| *h != self.owner_sha256)
    }
}

/// The kind of guest a source reports on, known before anything else is
/// asked: SEV and SEV-ES guests are measured by LAUNCH_MEASURE; SEV-SNP
/// guests by their launch digest, ID block and attestation report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuestKind {
    /// An SEV or SEV-ES guest.
    Sev,
    /// An SEV-SNP guest.
    SevSnp,
}

/// What QEMU's `query-sev` says of an SNP guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySevSnp {
    /// `snp-policy`: the SNP guest policy QEMU launched with.
    pub policy: u64,
    /// `api-major` of the firmware.
    pub api_major: u8,
    /// `api-minor` of the firmware.
    pub api_minor: u8,
    /// `build-id` of the firmware.
    pub build_id: u8,
    /// `launch-update` while paused before its first `cont`, then `running`.
    pub state: String,
}

/// What a host says about an SEV-SNP guest. Untrusted like [`HostFacts`]:
/// the checks use it to find misconfiguration, the owner's files decide.
#[derive(Debug, Clone, Default)]
pub struct SnpHostReport {
    /// The libvirt connection, when there is one.
    pub connection: Option<Connection>,
    /// The domain XML (libvirt).
    pub domain: Option<xml::Domain>,
    /// The domain's state: "defined" (never started), "paused", "running", ...
    pub state: Option<String>,
    /// QEMU's `query-sev` (QMP; libvirt gives none for SNP).
    pub query_sev: Option<QuerySevSnp>,
    /// libvirt's `sev-snp-policy`, should its launch security info answer.
    pub reported_policy: Option<u64>,
    /// The host CPU signature from the capabilities (libvirt).
    pub host_signature: Option<u32>,
    /// The vCPUs QEMU runs (QMP `query-cpus-fast`).
    pub vcpu_count: Option<u32>,
    /// The IGVM file QEMU loads, from QOM (QMP); `None` where the source
    /// cannot say (libvirt).
    pub igvm: Option<qmp_igvm::QomIgvm>,
    /// The host's copy of that file when it could be read (a local QEMU),
    /// or why not.
    pub igvm_copy: Option<std::result::Result<Vec<u8>, String>>,
    /// What the host could not say and why, once each (for `--debug`).
    pub notes: Vec<String>,
}

/// One place launch state comes from and secrets go to.
pub trait LaunchSource {
    /// The guest's kind; sources that know only SEV say [`GuestKind::Sev`].
    fn guest_kind(&self) -> GuestKind {
        GuestKind::Sev
    }
    /// What the host says about an SEV-SNP guest (after [`LaunchSource::guest_kind`]
    /// said [`GuestKind::SevSnp`]).
    fn snp_host_report(&mut self) -> Result<SnpHostReport> {
        Err(crate::Error::Usage(
            "this source has no SEV-SNP guest (offline values are SEV's; check an SNP report with snp-validate)"
                .into(),
        ))
    }
    /// The reported measurement, API version, build and policy (each value
    /// given on the command line wins over the host's), with the host's facts.
    fn host_report(&mut self, given: &Given) -> Result<HostReport>;
    /// Delivers a packaged secret (and resumes the guest where that applies).
    /// Called only after a successful validation.
    fn inject(&mut self, packet: &SecretPacket) -> Result<()>;
    /// Describes where the secret went.
    fn describe_injection(&self) -> String;
    /// The guest's QEMU guest agent, where the source reaches it (libvirt).
    fn guest_agent(&mut self) -> Option<&mut dyn crate::snp::key_release::agent::AgentChannel> {
        None
    }
    /// On a mismatch: the host's copies of the owner's files (what, owner's
    /// SHA-256) compared where the source can reach them; a diagnosis only.
    fn compare_host_files(
        &self,
        _owner: &[(&str, [u8; 32])],
    ) -> Option<std::result::Result<Vec<Comparison>, String>> {
        None
    }
}

/// Launch values given on the command line; each one wins over the host's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given<'a> {
    /// `--measurement`: the base64 LAUNCH_MEASURE blob, alone or as the `sev-measurement:` line.
    pub measurement: Option<&'a str>,
    /// `--api-major`: PLATFORM_STATUS API_MAJOR.
    pub api_major: Option<u8>,
    /// `--api-minor`: PLATFORM_STATUS API_MINOR.
    pub api_minor: Option<u8>,
    /// `--build-id`: PLATFORM_STATUS BUILD.
    pub build_id: Option<u8>,
    /// `--policy`: the SEV guest policy.
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
    /// The host's names for the five values, in the order of the fields below.
    pub names: [&'static str; 5],
    /// The base64 LAUNCH_MEASURE blob.
    pub measurement: Option<String>,
    /// PLATFORM_STATUS API_MAJOR.
    pub api_major: Option<u8>,
    /// PLATFORM_STATUS API_MINOR.
    pub api_minor: Option<u8>,
    /// PLATFORM_STATUS BUILD.
    pub build_id: Option<u8>,
    /// The SEV guest policy.
    pub policy: Option<u32>,
}

/// The launch values used: the command line's where given, else the host's,
/// with every value where the two differ. `who` names the host side in
/// messages ("the host", "QEMU").
pub fn merge_reported(
    who: &str,
    host: &HostValues,
    given: &Given,
) -> Result<(ReportedLaunch, Vec<Overridden>)> {
    fn pick<T: PartialEq + std::fmt::Display + Clone>(
        who: &str,
        name: &'static str,
        host: Option<&T>,
        given: Option<&T>,
        overridden: &mut Vec<Overridden>,
    ) -> Result<T> {
        if let (Some(h), Some(g)) = (host, given) {
            if h != g {
                overridden.push(Overridden {
                    name,
                    message: format!("{who} reported {h}, command line gives {g} (used)"),
                });
            }
        }
        given.or(host).cloned().ok_or_else(|| {
            crate::Error::Usage(format!(
                "{who} did not report {name}; give it on the command line"
            ))
        })
    }
    let mut o = Vec::new();
    let [n_m, n_maj, n_min, n_build, n_policy] = host.names;
    let given_m = given.measurement.map(str::to_string);
    let m: String = pick(
        who,
        n_m,
        host.measurement.as_ref(),
        given_m.as_ref(),
        &mut o,
    )?;
    let measurement =
        Measurement::from_base64(&m).map_err(|e| crate::Error::Usage(e.to_string()))?;
    let info = LaunchInfo {
        api_major: pick(
            who,
            n_maj,
            host.api_major.as_ref(),
            given.api_major.as_ref(),
            &mut o,
        )?,
        api_minor: pick(
            who,
            n_min,
            host.api_minor.as_ref(),
            given.api_minor.as_ref(),
            &mut o,
        )?,
        build_id: pick(
            who,
            n_build,
            host.build_id.as_ref(),
            given.build_id.as_ref(),
            &mut o,
        )?,
        policy: pick(
            who,
            n_policy,
            host.policy.as_ref(),
            given.policy.as_ref(),
            &mut o,
        )?,
    };
    Ok((ReportedLaunch { measurement, info }, o))
}
