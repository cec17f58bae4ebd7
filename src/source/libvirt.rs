//! The libvirt source: the launch state of a domain through a libvirt
//! connection (local, or remote such as `qemu+ssh://host/system`), and
//! secret injection through `virDomainSetLaunchSecurityState`.

use base64::Engine as _;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};

use super::ffi::launch_security::{self as ffi, ParamValue};
use super::locality::local_reason;
use super::SnpHostReport;
use super::{merge_reported, Comparison, Connection, Given, HostFacts, HostReport, HostValues};
use super::{GuestKind, LaunchSource, LibvirtSpec, Overridden, ReportedLaunch, Result};
use crate::core::cpu;
use crate::core::secret::SecretPacket;
use crate::core::sev_policy::SevPolicy;
use crate::error::Error;
use crate::source::xml;

fn libvirt_error(what: &str, e: &virt::error::Error) -> String {
    format!("{what}: {}", e.message())
}

/// An open libvirt domain: the launch source for `--domain`.
pub struct Libvirt {
    /// The connection URI it was opened with.
    pub uri: String,
    /// The libvirt connection.
    pub conn: Connect,
    /// The domain looked up by ID, name or UUID.
    pub dom: Domain,
    /// Whether the connection reaches another machine.
    pub remote: bool,
    /// The domain XML, read once at open.
    pub domain_xml: xml::Domain,
    /// Raw launch-security parameters as the host reported them.
    pub params: Vec<(String, ParamValue)>,
    /// From the domain XML's `<launchSecurity type=...>`.
    pub kind: GuestKind,
    /// Resume the domain after injecting.
    pub resume: bool,
    /// `sev-secret-set-address`, when the owner gives one.
    pub secret_address: Option<u64>,
}

impl Libvirt {
    /// Connects, refuses a local connection unless `insecure`, looks the
    /// domain up and checks its state.
    pub fn open(spec: &LibvirtSpec) -> Result<Libvirt> {
        let (uri, insecure) = (spec.uri.as_str(), spec.insecure);
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
        let dom = lookup(&conn, &spec.domain)?;
        // The XML first: an SNP domain is checked from it and the owner's
        // files alone, in any state; an SEV domain must be paused.
        let text = dom
            .xml_desc(0)
            .map_err(|e| Error::HostCall(libvirt_error("cannot get the domain XML", &e)))?;
        let parsed = xml::Domain::parse(&text);
        let kind = match &parsed {
            Ok(d) if is_snp(d) => GuestKind::SevSnp,
            _ => GuestKind::Sev,
        };
        if kind == GuestKind::Sev {
            check_sev_state(&dom, insecure)?;
        }
        let domain_xml = parsed?;
        Ok(Libvirt {
            uri: uri.to_string(),
            conn,
            dom,
            remote: local.is_none(),
            domain_xml,
            params: Vec::new(),
            kind,
            resume: spec.resume,
            secret_address: spec.secret_address,
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
    fn reported_with(&mut self, given: &Given) -> Result<(ReportedLaunch, Vec<Overridden>)> {
        let host = if given.complete() {
            // Values on the command line win; nothing to ask the host.
            HostValues::default()
        } else {
            self.params = ffi::get_launch_security_info(&self.dom).map_err(|e| {
                Error::HostCall(libvirt_error(
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
        merge_reported("the host", &host, given)
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
            .map_err(|e| Error::HostCall(libvirt_error("cannot get the domain info", &e)))
    }

    /// The host capabilities XML.
    pub fn capabilities(&self) -> Result<xml::Capabilities> {
        let text = self
            .conn
            .capabilities()
            .map_err(|e| Error::HostCall(libvirt_error("cannot get the host capabilities", &e)))?;
        xml::Capabilities::parse(&text)
    }

    /// The host CPU signature from the capabilities, if they report one.
    fn host_signature(&self) -> Result<Option<u32>> {
        let caps = self.capabilities()?;
        caps.signature()
            .map(|s| cpu::signature(s.family, s.model, s.stepping))
            .transpose()
            .map_err(|e| {
                Error::Usage(format!(
                    "the host capabilities report a CPU signature that is {e}"
                ))
            })
    }
}

/// `<launchSecurity type='sev-snp'>` in the domain XML.
fn is_snp(d: &xml::Domain) -> bool {
    d.launch_security
        .iter()
        .any(|l| l.sec_type.as_deref() == Some("sev-snp"))
}

/// An SEV domain must be running and, unless `insecure`, paused before its
/// first resume: only then can its launch be trusted with secrets.
fn check_sev_state(dom: &Domain, insecure: bool) -> Result<()> {
    if !dom
        .is_active()
        .map_err(|e| Error::HostCall(libvirt_error("cannot get the domain state", &e)))?
    {
        return Err(Error::State(
            "Domain must be running to validate measurement: start it paused (virsh start --paused)".into(),
        ));
    }
    let (state, _) = dom
        .state()
        .map_err(|e| Error::HostCall(libvirt_error("cannot get the domain state", &e)))?;
    if !state.is(DomainState::Paused) && !insecure {
        return Err(Error::State(
            "Domain must be paused to validate measurement: a running guest has already been \
             given control, so its launch can no longer be trusted for secrets; start it with \
             virsh start --paused, or pass --insecure"
                .into(),
        ));
    }
    Ok(())
}

/// The domain's state in `virsh domstate`'s words ("shut off" for a domain
/// defined but not running).
fn state_words(dom: &Domain) -> Result<String> {
    let (state, _) = dom
        .state()
        .map_err(|e| Error::HostCall(libvirt_error("cannot get the domain state", &e)))?;
    let words = if state.is(DomainState::Running) {
        "running"
    } else if state.is(DomainState::Paused) {
        "paused"
    } else if state.is(DomainState::Shutoff) {
        "shut off"
    } else if state.is(DomainState::Shutdown) {
        "shutting down"
    } else if state.is(DomainState::Crashed) {
        "crashed"
    } else if state.is(DomainState::PMSuspended) {
        "pmsuspended"
    } else if state.is(DomainState::Blocked) {
        "idle"
    } else {
        "no state"
    };
    Ok(words.to_string())
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
    fn guest_kind(&self) -> GuestKind {
        self.kind
    }

    fn snp_host_report(&mut self) -> Result<SnpHostReport> {
        let mut notes = Vec::new();
        let state = state_words(&self.dom)?;
        let mut reported_policy = None;
        if state == "shut off" {
            notes.push(
                "the domain is not running, so libvirt has no launch security info: the policy comes from the domain XML".to_string(),
            );
        } else {
            // libvirt asks QEMU for the SEV measurement first, which QEMU has
            // not for SNP guests: the call fails for every SNP domain (libvirt
            // 10.5 to 11.3 at least). Expected; the XML has the policy.
            match ffi::get_launch_security_info(&self.dom) {
                Ok(params) => {
                    self.params = params;
                    reported_policy = self
                        .uint_param("sev-snp-policy", u64::MAX)
                        .ok()
                        .flatten();
                }
                Err(e) => notes.push(format!(
                    "libvirt gives no launch security info for SEV-SNP domains ({}): the policy comes from the domain XML",
                    e.message()
                )),
            }
        }
        let host_signature = match self.host_signature() {
            Ok(s) => s,
            Err(e) => {
                notes.push(format!("no host CPU signature from the capabilities: {e}"));
                None
            }
        };
        Ok(SnpHostReport {
            connection: Some(Connection {
                uri: self.uri.clone(),
                remote: self.remote,
            }),
            domain: Some(self.domain_xml.clone()),
            state: Some(state),
            reported_policy,
            host_signature,
            notes,
            ..SnpHostReport::default()
        })
    }

    fn host_report(&mut self, given: &Given) -> Result<HostReport> {
        let (launch, overridden) = self.reported_with(given)?;
        // An SEV-ES guest is measured with one VMSA per vCPU of one signature:
        // say how many vCPUs run and what CPU the host has.
        let sev_es = SevPolicy::from_bits_retain(launch.info.policy).contains(SevPolicy::ES);
        let (host_signature, vcpu_count) = if sev_es {
            (self.host_signature()?, Some(self.vcpu_count()?))
        } else {
            (None, None)
        };
        let facts = HostFacts {
            connection: Some(Connection {
                uri: self.uri.clone(),
                remote: self.remote,
            }),
            domain: Some(self.domain_xml.clone()),
            host_signature,
            vcpu_count,
            knows_vcpu_signature: true,
            host_policy: self.host_policy(),
            overridden,
            sev_state: None,
        };
        Ok(HostReport { launch, facts })
    }

    fn inject(&mut self, packet: &SecretPacket) -> Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD;
        ffi::set_launch_secret(
            &self.dom,
            &b64.encode(packet.header),
            &b64.encode(&packet.payload),
            self.secret_address,
        )
        .map_err(|e| match e {
            ffi::SetSecretError::Nul(name) => Error::Usage(format!(
                "the {name} parameter holds a NUL byte, which libvirt cannot carry; nothing was injected"
            )),
            ffi::SetSecretError::Libvirt(e) => {
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
                    Error::HostCall(msg)
                }
            }
        })?;
        if self.resume {
            self.dom.resume().map_err(|e| {
                Error::HostCall(format!(
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
    ) -> Option<std::result::Result<Vec<Comparison>, String>> {
        self.compare_over_sftp(owner)
    }

    fn guest_agent(&mut self) -> Option<&mut dyn crate::snp::key_release::agent::AgentChannel> {
        Some(self)
    }

    fn describe_injection(&self) -> String {
        if self.resume {
            "injected through libvirt, domain resumed".into()
        } else {
            "injected through libvirt, domain left paused (--no-resume)".into()
        }
    }
}

impl crate::snp::key_release::agent::AgentChannel for Libvirt {
    fn agent_command(&mut self, cmd: &str, timeout: std::time::Duration) -> Result<String> {
        let secs = i32::try_from(timeout.as_secs().max(1)).unwrap_or(i32::MAX);
        let name = serde_json::from_str::<serde_json::Value>(cmd)
            .ok()
            .and_then(|v| v["execute"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.dom
            .qemu_agent_command(cmd, secs, 0)
            .map_err(|e| agent_error(&name, &e))
    }
}

/// A failed guest agent command, in the class its cause belongs to.
fn agent_error(name: &str, e: &virt::error::Error) -> Error {
    use virt::error::ErrorNumber as N;
    let what = libvirt_error(&format!("the guest agent command '{name}' failed"), e);
    let code = e.code();
    let is = |n: N| code.is(n);
    if is(N::OperationInvalid) || is(N::AgentUnresponsive) {
        return Error::State(format!(
            "{what}; the guest must be running with qemu-guest-agent started on its channel (virsh qemu-agent-command DOMAIN '{{\"execute\":\"guest-ping\"}}' tells)"
        ));
    }
    if is(N::AgentCommandFailed) && e.message().contains("disabled") {
        return Error::HostCall(format!(
            "{what}; allow guest-exec, guest-exec-status and guest-file-open/read/write/flush/close in the guest's qemu-guest-agent (its --allow-rpcs or --block-rpcs)"
        ));
    }
    if is(N::AgentCommandTimeout) {
        return Error::HostCall(format!(
            "{what}; the agent did not answer in time: check the guest, or give a longer --guest-timeout"
        ));
    }
    Error::HostCall(format!("{what}; check the guest and its qemu-guest-agent"))
}

impl Libvirt {
    /// Over qemu+ssh, the host's firmware, kernel and initrd compared over SFTP.
    #[cfg(feature = "ssh")]
    fn compare_over_sftp(
        &self,
        owner: &[(&str, [u8; 32])],
    ) -> Option<std::result::Result<Vec<Comparison>, String>> {
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

    #[cfg(not(feature = "ssh"))]
    fn compare_over_sftp(
        &self,
        _owner: &[(&str, [u8; 32])],
    ) -> Option<std::result::Result<Vec<Comparison>, String>> {
        None
    }
}
