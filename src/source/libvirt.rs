//! The libvirt source: the launch state of a domain through a libvirt
//! connection (local, or remote such as `qemu+ssh://host/system`), and
//! secret injection through `virDomainSetLaunchSecurityState`.

use std::net::{ToSocketAddrs, UdpSocket};

use base64::Engine as _;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};

use super::launch_security_ffi::{self as ffi, ParamValue};
use super::{merge_reported, Given, HostValues, LaunchSource, ReportedLaunch};
use crate::core::secret::SecretPacket;
use crate::error::{Error, Result};
use crate::xml;

/// The URI to use: `--connect`, else `LIBVIRT_DEFAULT_URI` (as virsh does),
/// else `qemu:///system`.
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

/// The host part of a libvirt URI (`driver[+transport]://[user@]host[:port]/path`),
/// or `None` when it names no host.
pub fn uri_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// Whether `host` is this machine: it resolves to a loopback address or to
/// one this machine can bind (one of its own interfaces).
pub fn host_is_this_machine(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let Ok(addrs) = (host, 0u16).to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| a.ip().is_loopback() || UdpSocket::bind((a.ip(), 0)).is_ok())
}

/// This machine's host name.
pub fn our_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Two host names name the same machine: equal, or equal in their first
/// label (one side may be fully qualified).
pub fn same_hostname(a: &str, b: &str) -> bool {
    let first = |s: &str| s.split('.').next().unwrap_or("").to_ascii_lowercase();
    !a.is_empty() && (a.eq_ignore_ascii_case(b) || first(a) == first(b))
}

/// Why a connection counts as local, if it does.
pub fn local_reason(uri: &str, daemon_hostname: Option<&str>) -> Option<String> {
    match uri_host(uri) {
        None => return Some(format!("the URI '{uri}' names no host")),
        Some(h) if host_is_this_machine(&h) => {
            return Some(format!("'{h}' is an address of this machine"))
        }
        Some(_) => {}
    }
    let ours = our_hostname();
    match daemon_hostname {
        Some(theirs) if same_hostname(&ours, theirs) => Some(format!(
            "the daemon's host name '{theirs}' is this machine's ('{ours}')"
        )),
        _ => None,
    }
}

fn libvirt_error(what: &str, e: &virt::error::Error) -> String {
    format!("{what}: {}", e.message())
}

pub struct Libvirt {
    pub uri: String,
    pub conn: Connect,
    pub dom: Domain,
    pub remote: bool,
    pub domain_xml: xml::Domain,
    /// Raw launch-security parameters as the host reported them.
    pub params: Vec<(String, ParamValue)>,
    /// Resume the domain after injecting.
    pub resume: bool,
    /// `sev-secret-set-address`, when the owner gives one.
    pub secret_address: Option<u64>,
    reported: Option<ReportedLaunch>,
}

impl Libvirt {
    /// Connects, refuses a local connection unless `insecure`, looks the
    /// domain up and checks its state.
    pub fn open(uri: &str, id_name_uuid: &str, insecure: bool) -> Result<Libvirt> {
        // Errors are reported through our messages; keep libvirt's default
        // handler from printing them a second time.
        virt::error::clear_error_callback();
        let conn = Connect::open(Some(uri)).map_err(|e| {
            Error::Usage(format!(
                "{}; check the URI, that libvirtd runs there and that you may use it",
                libvirt_error(&format!("cannot connect to libvirt at '{uri}'"), &e)
            ))
        })?;
        let daemon_hostname = conn.hostname().ok();
        let local = local_reason(uri, daemon_hostname.as_deref());
        if let Some(why) = &local {
            if !insecure {
                return Err(Error::Insecure(format!(
                    "running locally on the hypervisor host is not secure ({why}): the host could \
                     alter what the tool reads; run it on the guest owner's machine with a remote \
                     URI such as qemu+ssh://HOST/system, or pass --insecure"
                )));
            }
        }
        let dom = lookup(&conn, id_name_uuid)?;
        if !dom
            .is_active()
            .map_err(|e| Error::Unexpected(libvirt_error("cannot get the domain state", &e)))?
        {
            return Err(Error::State(
                "Domain must be running to validate measurement: start it paused (virsh start --paused)".into(),
            ));
        }
        let (state, _) = dom
            .state()
            .map_err(|e| Error::Unexpected(libvirt_error("cannot get the domain state", &e)))?;
        if !state.is(DomainState::Paused) && !insecure {
            return Err(Error::State(
                "Domain must be paused to validate measurement: a running guest has already been \
                 given control, so its launch can no longer be trusted for secrets; start it with \
                 virsh start --paused, or pass --insecure"
                    .into(),
            ));
        }
        let text = dom
            .xml_desc(0)
            .map_err(|e| Error::Unexpected(libvirt_error("cannot get the domain XML", &e)))?;
        let domain_xml = xml::Domain::parse(&text)?;
        Ok(Libvirt {
            uri: uri.to_string(),
            conn,
            dom,
            remote: local.is_none(),
            domain_xml,
            params: Vec::new(),
            resume: true,
            secret_address: None,
            reported: None,
        })
    }

    fn param(&self, name: &str) -> Option<&ParamValue> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    fn uint_param(&self, name: &str, max: u64) -> Result<Option<u64>> {
        match self.param(name) {
            None => Ok(None),
            Some(ParamValue::UInt(v)) if *v <= max => Ok(Some(*v)),
            Some(ParamValue::Int(v)) if *v >= 0 && (*v as u64) <= max => Ok(Some(*v as u64)),
            Some(v) => Err(Error::Usage(format!(
                "the host reported {name} = {v:?}, which is not a value the SEV firmware reports"
            ))),
        }
    }

    /// The host's values, with any given on the command line winning.
    pub fn reported_with(
        &mut self,
        given: &Given,
        debug: &dyn Fn(&str, String),
    ) -> Result<ReportedLaunch> {
        let host = if given.complete() {
            // Values on the command line win; nothing to ask the host.
            HostValues::default()
        } else {
            self.params = ffi::get_launch_security_info(&self.dom).map_err(|e| {
                Error::Unexpected(libvirt_error(
                    "cannot get the domain's launch security info",
                    &e,
                ))
            })?;
            if self.params.is_empty() {
                return Err(Error::Config(
                    "the domain reports no launch security info: it was not started with \
                     <launchSecurity type='sev'>"
                        .into(),
                ));
            }
            if self.param("sev-api-major").is_none() {
                return Err(Error::Usage(
                    "'api-major' not reported in domain launch security info: libvirt on the host is \
                     older than 8.0; give --api-major, --api-minor, --build-id and --policy"
                        .into(),
                ));
            }
            HostValues {
                measurement: match self.param("sev-measurement") {
                    Some(ParamValue::String(s)) => Some(s.clone()),
                    _ => None,
                },
                api_major: self.uint_param("sev-api-major", 255)?.map(|v| v as u8),
                api_minor: self.uint_param("sev-api-minor", 255)?.map(|v| v as u8),
                build_id: self.uint_param("sev-build-id", 255)?.map(|v| v as u8),
                policy: self
                    .uint_param("sev-policy", u64::from(u32::MAX))?
                    .map(|v| v as u32),
                ..HostValues::default()
            }
        };
        let host = HostValues {
            names: [
                "sev-measurement",
                "sev-api-major",
                "sev-api-minor",
                "sev-build-id",
                "sev-policy",
            ],
            ..host
        };
        let reported = merge_reported("the host", &host, given, debug)?;
        self.reported = Some(reported);
        Ok(reported)
    }

    /// The policy the host reported, if it was asked.
    pub fn host_policy(&self) -> Option<u32> {
        self.uint_param("sev-policy", u64::from(u32::MAX))
            .ok()
            .flatten()
            .map(|p| p as u32)
    }

    /// The vCPU count the host reports (`nrVirtCpu`: the vCPUs online now).
    pub fn vcpu_count(&self) -> Result<u32> {
        self.dom
            .info()
            .map(|i| i.nr_virt_cpu)
            .map_err(|e| Error::Unexpected(libvirt_error("cannot get the domain info", &e)))
    }

    /// The host capabilities XML.
    pub fn capabilities(&self) -> Result<xml::Capabilities> {
        let text = self.conn.capabilities().map_err(|e| {
            Error::Unexpected(libvirt_error("cannot get the host capabilities", &e))
        })?;
        xml::Capabilities::parse(&text)
    }
}

/// Looks a domain up as the Python tool does: digits are an ID, a UUID is a
/// UUID, anything else a name; an ID or UUID that finds nothing is tried as a name.
fn lookup(conn: &Connect, id: &str) -> Result<Domain> {
    let by_name = || conn.lookup_domain_by_name(id);
    let found = if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        id.parse::<u32>()
            .ok()
            .and_then(|n| conn.lookup_domain_by_id(n).ok())
            .map_or_else(by_name, Ok)
    } else if uuid::Uuid::parse_str(id).is_ok() {
        conn.lookup_domain_by_uuid_string(id).or_else(|_| by_name())
    } else {
        by_name()
    };
    found.map_err(|e| {
        Error::Usage(format!(
            "{}; list domains with 'virsh list --all'",
            libvirt_error(&format!("no domain '{id}'"), &e)
        ))
    })
}

impl LaunchSource for Libvirt {
    fn reported(&mut self) -> Result<ReportedLaunch> {
        self.reported
            .ok_or_else(|| Error::Unexpected("launch state read before it was fetched".into()))
    }

    fn inject(&mut self, packet: &SecretPacket) -> Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD;
        ffi::set_launch_secret(
            &self.dom,
            &b64.encode(packet.header),
            &b64.encode(&packet.payload),
            self.secret_address,
        )
        .map_err(|e| {
            let msg = format!(
                "{}; the domain was not resumed",
                libvirt_error(
                    "libvirt refused the secret (virDomainSetLaunchSecurityState)",
                    &e
                )
            );
            if e.code().is(virt::error::ErrorNumber::OperationInvalid) {
                Error::State(msg)
            } else {
                Error::Unexpected(msg)
            }
        })?;
        if self.resume {
            self.dom.resume().map_err(|e| {
                Error::Unexpected(format!(
                    "{}; resume it with 'virsh resume'",
                    libvirt_error(
                        "the secret was injected but the domain could not be resumed",
                        &e
                    )
                ))
            })?;
        }
        Ok(())
    }

    fn compare_host_files(
        &self,
        owner: &[(&str, [u8; 32])],
    ) -> Option<std::result::Result<Vec<super::host_files::Comparison>, String>> {
        let target = super::host_files::ssh_target(&self.uri)?;
        let d = &self.domain_xml;
        let files: Vec<(String, String, [u8; 32])> = owner
            .iter()
            .filter_map(|(what, digest)| {
                let path = match *what {
                    "firmware" => d.loader_path(),
                    "kernel" => d.kernel(),
                    "initrd" => d.initrd(),
                    _ => None,
                }?;
                Some((what.to_string(), path.to_string(), *digest))
            })
            .collect();
        if files.is_empty() {
            return None;
        }
        Some(super::host_files::compare(&target, &files))
    }

    fn describe_injection(&self) -> String {
        if self.resume {
            "injected through libvirt, domain resumed".into()
        } else {
            "injected through libvirt, domain left paused (--no-resume)".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_hosts() {
        assert_eq!(uri_host("qemu:///system"), None);
        assert_eq!(
            uri_host("qemu+ssh://root@host.example/system"),
            Some("host.example".into())
        );
        assert_eq!(
            uri_host("qemu+ssh://host:2222/system?keyfile=/k"),
            Some("host".into())
        );
        assert_eq!(
            uri_host("qemu+tcp://[fe80::1]:16509/system"),
            Some("fe80::1".into())
        );
        assert_eq!(uri_host("qemu:///session?socket=/run/x"), None);
        assert_eq!(uri_host("test:///default"), None);
        assert_eq!(uri_host("nonsense"), None);
    }

    #[test]
    fn locality() {
        assert!(local_reason("qemu:///system", Some("elsewhere")).is_some());
        assert!(local_reason("qemu+ssh://127.0.0.1/system", Some("elsewhere")).is_some());
        assert!(local_reason("qemu+ssh://localhost/system", Some("elsewhere")).is_some());
        // 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
        assert!(local_reason("qemu+ssh://192.0.2.7/system", Some("elsewhere.example")).is_none());
        let ours = our_hostname();
        assert!(local_reason("qemu+ssh://192.0.2.7/system", Some(&ours)).is_some());
        assert!(same_hostname("host", "host.example.com"));
        assert!(!same_hostname("host", "other.example.com"));
        assert!(!same_hostname("", ""));
    }
}
