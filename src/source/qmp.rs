//! The QMP source: launch state straight from QEMU's monitor, without
//! libvirt (`query-sev`, `query-sev-launch-measure`), and injection with
//! `sev-inject-launch-secret` then `cont`.
//!
//! One small blocking client with a deadline on every exchange: a monitor
//! that hangs, closes or talks nonsense gives a clear error, never a hang.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{merge_reported, Given, HostFacts, HostReport, HostValues, LaunchSource, QmpSpec};
use super::{GuestKind, QuerySevSnp, Result, SnpHostReport};
use crate::core::secret::SecretPacket;
use crate::core::sev_policy::SevPolicy;
use crate::error::Error;

/// Longest line accepted from the monitor; QMP replies here are small.
const MAX_LINE: usize = 1024 * 1024;

/// Where the monitor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(String),
    /// `HOST:PORT`.
    Tcp(String),
}

impl Endpoint {
    /// `unix:PATH`, `tcp:HOST:PORT`, a path (contains '/'), or `HOST:PORT`.
    pub fn parse(s: &str) -> Result<Endpoint> {
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(Endpoint::Unix(p.to_string()));
        }
        if let Some(t) = s.strip_prefix("tcp:") {
            return Ok(Endpoint::Tcp(t.to_string()));
        }
        if s.contains('/') || std::path::Path::new(s).exists() {
            return Ok(Endpoint::Unix(s.to_string()));
        }
        if s.rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        {
            return Ok(Endpoint::Tcp(s.to_string()));
        }
        Err(Error::Usage(format!(
            "--qmp '{s}' is neither a unix socket path nor HOST:PORT; use e.g. /run/qemu/guest.qmp or unix:PATH or tcp:HOST:PORT"
        )))
    }

    /// Why this endpoint is on this machine, if it is.
    pub fn local_reason(&self) -> Option<String> {
        match self {
            Endpoint::Unix(p) => Some(format!("'{p}' is a unix socket on this machine")),
            Endpoint::Tcp(hp) => {
                let host = hp.rsplit_once(':').map_or(hp.as_str(), |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                super::locality::host_is_this_machine(host)
                    .then(|| format!("'{host}' is an address of this machine"))
            }
        }
    }
}

trait Stream: Read + Write {
    fn set_timeouts(&self, t: Duration) -> std::io::Result<()>;
}

impl Stream for UnixStream {
    fn set_timeouts(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl Stream for TcpStream {
    fn set_timeouts(&self, t: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

#[derive(Serialize)]
struct Command<'a> {
    execute: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<Value>,
    id: u64,
}

/// Every message the monitor sends is one of these.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Message {
    Greeting {
        #[serde(rename = "QMP")]
        _qmp: Value,
    },
    Return {
        #[serde(rename = "return")]
        ret: Value,
        #[serde(default)]
        id: Option<Value>,
    },
    Error {
        error: QmpError,
        #[serde(default)]
        id: Option<Value>,
    },
    Event {
        #[serde(rename = "event")]
        _event: String,
    },
}

/// Parses one line from the monitor as a QMP message, exactly as the client
/// does, without a socket: for the fuzz targets and tests.
pub fn parse_message(line: &[u8]) -> std::result::Result<(), String> {
    serde_json::from_slice::<Message>(line)
        .map(|m| drop(format!("{m:?}")))
        .map_err(|e| e.to_string())
}

/// A QMP error reply: `{"error": {"class": ..., "desc": ...}}`.
#[derive(Deserialize, Debug, Clone)]
pub struct QmpError {
    /// The error class, e.g. `GenericError`.
    pub class: String,
    /// The human-readable description; empty when QEMU gives none.
    #[serde(default)]
    pub desc: String,
}

/// The outcome of one command: QEMU's answer or its error.
pub type Reply = std::result::Result<Value, QmpError>;

/// A QMP connection after the capabilities handshake.
pub struct Client {
    reader: BufReader<Box<dyn Stream>>,
    timeout: Duration,
    next_id: u64,
    what: String,
}

impl Client {
    /// Connects, reads the QMP greeting and runs `qmp_capabilities`, each
    /// step bounded by `timeout`.
    pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Client> {
        let what = match endpoint {
            Endpoint::Unix(p) => format!("QMP socket '{p}'"),
            Endpoint::Tcp(a) => format!("QMP endpoint '{a}'"),
        };
        let fail = |e: std::io::Error| Error::Usage(format!("cannot connect to the {what}: {e}"));
        let stream: Box<dyn Stream> = match endpoint {
            Endpoint::Unix(p) => Box::new(UnixStream::connect(p).map_err(fail)?),
            Endpoint::Tcp(a) => {
                let addrs: Vec<SocketAddr> = a.to_socket_addrs().map_err(fail)?.collect();
                let mut last = None;
                let mut s = None;
                for addr in addrs {
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(t) => {
                            s = Some(t);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Box::new(s.ok_or_else(|| {
                    fail(last.unwrap_or_else(|| {
                        std::io::Error::other("the name resolves to no address")
                    }))
                })?)
            }
        };
        stream.set_timeouts(timeout).map_err(fail)?;
        let mut c = Client {
            reader: BufReader::new(stream),
            timeout,
            next_id: 1,
            what,
        };
        let deadline = Instant::now() + timeout;
        match c.read_message(deadline)? {
            Message::Greeting { .. } => {}
            other => {
                return Err(Error::Protocol(format!(
                "the {} is not a QMP monitor: it did not start with a QMP greeting (got {other:?})",
                c.what
            )))
            }
        }
        c.execute("qmp_capabilities", None)?.map_err(|e| {
            Error::Protocol(format!(
                "the {} refused qmp_capabilities: {}",
                c.what, e.desc
            ))
        })?;
        Ok(c)
    }

    fn read_message(&mut self, deadline: Instant) -> Result<Message> {
        loop {
            if Instant::now() >= deadline {
                return Err(self.timed_out());
            }
            let mut line = Vec::new();
            let n = (&mut self.reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                        self.timed_out()
                    }
                    _ => Error::Protocol(format!("reading from the {} failed: {e}", self.what)),
                })?;
            if n == 0 {
                return Err(Error::Protocol(format!(
                    "the {} closed the connection before answering; is QEMU still running?",
                    self.what
                )));
            }
            if line.last() != Some(&b'\n') && line.len() <= MAX_LINE {
                return Err(Error::Protocol(format!(
                    "the {} closed the connection in the middle of a reply; is QEMU still running?",
                    self.what
                )));
            }
            if line.len() > MAX_LINE {
                return Err(Error::Protocol(format!(
                    "the {} sent a line over {MAX_LINE} bytes",
                    self.what
                )));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return serde_json::from_slice::<Message>(&line).map_err(|_| {
                Error::Protocol(format!(
                    "the {} sent something that is not QMP: {:?}",
                    self.what,
                    String::from_utf8_lossy(&line[..line.len().min(200)])
                ))
            });
        }
    }

    fn timed_out(&self) -> Error {
        Error::Protocol(format!(
            "the {} did not answer within {} s; check that it is QEMU's monitor and not in use by another client (--qmp-timeout sets the wait)",
            self.what,
            self.timeout.as_secs_f32()
        ))
    }

    /// Runs one command; events in between are skipped.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Reply> {
        let id = self.next_id;
        self.next_id += 1;
        let mut text = serde_json::to_vec(&Command {
            execute: command,
            arguments,
            id,
        })
        .map_err(|e| Error::Protocol(format!("cannot encode a QMP command: {e}")))?;
        text.extend_from_slice(b"\r\n");
        self.reader
            .get_mut()
            .write_all(&text)
            .map_err(|e| Error::Protocol(format!("writing to the {} failed: {e}", self.what)))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_message(deadline)? {
                Message::Return { ret, id: rid } if id_matches(&rid, id) => return Ok(Ok(ret)),
                Message::Error { error, id: rid } if id_matches(&rid, id) => return Ok(Err(error)),
                Message::Greeting { .. } => {
                    return Err(Error::Protocol(format!(
                        "the {} sent a second greeting",
                        self.what
                    )))
                }
                _ => continue, // events, and answers to nobody's id
            }
        }
    }
}

fn id_matches(rid: &Option<Value>, id: u64) -> bool {
    // QEMU echoes the id; a reply without one belongs to the only command in flight.
    rid.as_ref().is_none_or(|v| v.as_u64() == Some(id))
}

/// Turns QEMU's SEV errors into messages and exit codes that say what to do.
fn sev_error(command: &str, e: &QmpError) -> Error {
    let d = e.desc.as_str();
    if e.class == "CommandNotFound"
        || d.contains("not available in this QEMU")
        || d.contains("SEV feature is not available")
    {
        Error::Config(format!(
            "SEV is not available in this QEMU ({command}: {d}); the guest must run on an SEV-capable QEMU and host"
        ))
    } else if d.contains("launch measurement is not available") {
        Error::State(format!(
            "the SEV launch measurement is not available ({d}): start QEMU with -S and query it before 'cont'"
        ))
    } else if d.contains("Not in correct state") {
        Error::State(format!(
            "the guest is not in the launch-secret state ({command}: {d}): secrets can only be injected while it is paused before its first 'cont'"
        ))
    } else {
        Error::HostCall(format!("QEMU refused {command}: {d} ({})", e.class))
    }
}

/// An open QMP monitor: the launch source for `--qmp`.
pub struct Qmp {
    client: Client,
    /// Where the monitor is.
    pub endpoint: Endpoint,
    /// `cont` after injecting.
    pub resume: bool,
    /// The `gpa` for `sev-inject-launch-secret`, when the owner gives one.
    pub secret_address: Option<u64>,
    /// The state query-sev reported.
    pub sev_state: String,
    /// What query-sev said of an SEV-SNP guest.
    pub snp: Option<QuerySevSnp>,
}

/// `query-sev` of an SNP guest, as QEMU 9.1+ answers it:
/// `{"enabled":true,"api-major":1,"api-minor":55,"build-id":24,"state":"launch-update","sev-type":"sev-snp","snp-policy":196608}`.
fn query_sev_snp(sev: &Value, state: &str) -> Result<QuerySevSnp> {
    let field = |name: &str, max: u64| -> Result<u64> {
        let v = sev.get(name).ok_or_else(|| {
            Error::Protocol(format!("query-sev of an SEV-SNP guest has no '{name}'"))
        })?;
        v.as_u64().filter(|x| *x <= max).ok_or_else(|| {
            Error::Protocol(format!(
                "query-sev reported {name} = {v}, not a value the SEV-SNP firmware reports"
            ))
        })
    };
    Ok(QuerySevSnp {
        policy: field("snp-policy", u64::MAX)?,
        api_major: field("api-major", 255)? as u8,
        api_minor: field("api-minor", 255)? as u8,
        build_id: field("build-id", 255)? as u8,
        state: state.to_string(),
    })
}

impl Qmp {
    /// Connects, refuses a local monitor unless `insecure`, and checks that
    /// the guest is an SEV guest paused in the launch-secret state.
    pub fn open(spec: &QmpSpec) -> Result<Qmp> {
        let insecure = spec.insecure;
        let endpoint = Endpoint::parse(&spec.endpoint)?;
        if let Some(why) = endpoint.local_reason() {
            if !insecure {
                return Err(Error::Insecure(format!(
                    "running locally on the hypervisor host is not secure ({why}): run the tool on the \
                     guest owner's machine, or pass --insecure"
                )));
            }
        }
        let mut client = Client::connect(&endpoint, spec.timeout)?;
        let sev = client
            .execute("query-sev", None)?
            .map_err(|e| sev_error("query-sev", &e))?;
        if sev.get("enabled").and_then(Value::as_bool) != Some(true) {
            return Err(Error::Config(
                "SEV is not enabled for this guest: start QEMU with -object sev-guest,... and \
                 -machine confidential-guest-support=..."
                    .into(),
            ));
        }
        let state = sev
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // QEMU 9.1+ names the type; an SNP guest is checked in any state.
        let snp = if sev.get("sev-type").and_then(Value::as_str) == Some("sev-snp") {
            Some(query_sev_snp(&sev, &state)?)
        } else {
            None
        };
        if snp.is_none() && state != "launch-secret" && !insecure {
            return Err(Error::State(format!(
                "the guest's SEV state is '{state}', not 'launch-secret': it must be paused before its \
                 first 'cont' (start QEMU with -S), or pass --insecure"
            )));
        }
        Ok(Qmp {
            client,
            endpoint,
            resume: spec.resume,
            secret_address: spec.secret_address,
            sev_state: state,
            snp,
        })
    }

    /// The guest's values, with any given on the command line winning.
    fn reported_with(
        &mut self,
        given: &Given,
    ) -> Result<(super::ReportedLaunch, Vec<super::Overridden>)> {
        let sev = self
            .client
            .execute("query-sev", None)?
            .map_err(|e| sev_error("query-sev", &e))?;
        let measurement = match given.measurement {
            Some(_) => None,
            None => {
                let m = self
                    .client
                    .execute("query-sev-launch-measure", None)?
                    .map_err(|e| sev_error("query-sev-launch-measure", &e))?;
                Some(
                    m.get("data")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            Error::Protocol("query-sev-launch-measure returned no 'data'".into())
                        })?,
                )
            }
        };
        let field = |name: &str, max: u64| -> Result<Option<u64>> {
            match sev.get(name) {
                None => Ok(None),
                Some(v) => v.as_u64().filter(|x| *x <= max).map(Some).ok_or_else(|| {
                    Error::Usage(format!(
                        "query-sev reported {name} = {v}, not a value the SEV firmware reports"
                    ))
                }),
            }
        };
        let host = HostValues {
            names: [
                "the launch measurement",
                "api-major",
                "api-minor",
                "build-id",
                "policy",
            ],
            measurement,
            api_major: field("api-major", 255)?.map(|v| v as u8),
            api_minor: field("api-minor", 255)?.map(|v| v as u8),
            build_id: field("build-id", 255)?.map(|v| v as u8),
            policy: field("policy", u64::from(u32::MAX))?.map(|v| v as u32),
        };
        merge_reported("QEMU", &host, given)
    }

    /// The IGVM file the machine loads, as QOM names it
    /// ([`super::qmp_igvm::qom_igvm_file`]).
    pub fn igvm_file(&mut self) -> Result<super::qmp_igvm::QomIgvm> {
        super::qmp_igvm::qom_igvm_file(&mut self.client)
    }

    /// The number of vCPUs QEMU runs (`query-cpus-fast`).
    pub fn vcpu_count(&mut self) -> Result<u32> {
        let cpus = self
            .client
            .execute("query-cpus-fast", None)?
            .map_err(|e| Error::HostCall(format!("QEMU refused query-cpus-fast: {}", e.desc)))?;
        cpus.as_array()
            .map(|a| a.len() as u32)
            .ok_or_else(|| Error::Protocol("query-cpus-fast did not return a list".into()))
    }
}

impl LaunchSource for Qmp {
    fn guest_kind(&self) -> GuestKind {
        if self.snp.is_some() {
            GuestKind::SevSnp
        } else {
            GuestKind::Sev
        }
    }

    fn snp_host_report(&mut self) -> Result<SnpHostReport> {
        let vcpu_count = Some(self.vcpu_count()?);
        // A monitor that does not answer QOM says nothing of an IGVM file;
        // an owner who expects one is then refused (snp::igvm_run).
        let mut notes = vec![
            "QEMU's monitor has no domain XML: the ID block, host data and vCPU model are not known to the checks".to_string(),
        ];
        let igvm = match self.igvm_file() {
            Ok(i) => Some(i),
            Err(e) => {
                notes.push(format!("QOM did not say which IGVM file QEMU loads: {e}"));
                None
            }
        };
        // The host's copy can be read only when QEMU runs on this machine;
        // a remote monitor's host is compared through the report alone.
        let igvm_copy = match (&igvm, self.endpoint.local_reason()) {
            (Some(super::qmp_igvm::QomIgvm::File { path, .. }), Some(_)) => {
                Some(super::qmp_igvm::read_local_igvm(path).map_err(|e| e.to_string()))
            }
            (Some(super::qmp_igvm::QomIgvm::File { .. }), None) => Some(Err(
                "QEMU runs on another machine, whose files QMP cannot read".into(),
            )),
            _ => None,
        };
        Ok(SnpHostReport {
            state: Some(self.sev_state.clone()),
            query_sev: self.snp.clone(),
            vcpu_count,
            igvm,
            igvm_copy,
            notes,
            ..SnpHostReport::default()
        })
    }

    fn host_report(&mut self, given: &Given) -> Result<HostReport> {
        let (launch, overridden) = self.reported_with(given)?;
        // An SEV-ES guest is measured with one VMSA per vCPU: say how many run.
        let vcpu_count = if SevPolicy::from_bits_retain(launch.info.policy).contains(SevPolicy::ES)
        {
            Some(self.vcpu_count()?)
        } else {
            None
        };
        let facts = HostFacts {
            vcpu_count,
            overridden,
            sev_state: Some(self.sev_state.clone()),
            ..HostFacts::default()
        };
        Ok(HostReport { launch, facts })
    }

    fn inject(&mut self, packet: &SecretPacket) -> Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut args = serde_json::json!({
            "packet-header": b64.encode(packet.header),
            "secret": b64.encode(&packet.payload),
        });
        if let Some(gpa) = self.secret_address {
            args["gpa"] = Value::from(gpa);
        }
        self.client
            .execute("sev-inject-launch-secret", Some(args))?
            .map_err(|e| {
                let err = sev_error("sev-inject-launch-secret", &e);
                let msg = format!("{err}; the guest was not continued");
                match err {
                    Error::State(_) => Error::State(msg),
                    Error::Config(_) => Error::Config(msg),
                    _ => Error::HostCall(msg),
                }
            })?;
        if self.resume {
            self.client.execute("cont", None)?.map_err(|e| {
                Error::HostCall(format!(
                    "the secret was injected but QEMU refused 'cont': {}; continue the guest yourself",
                    e.desc
                ))
            })?;
        }
        Ok(())
    }

    fn describe_injection(&self) -> String {
        if self.resume {
            "injected through QMP, guest continued".into()
        } else {
            "injected through QMP, guest left paused (--no-resume)".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("/run/q.sock").unwrap(),
            Endpoint::Unix("/run/q.sock".into())
        );
        assert_eq!(
            Endpoint::parse("unix:q.sock").unwrap(),
            Endpoint::Unix("q.sock".into())
        );
        assert_eq!(
            Endpoint::parse("host:4444").unwrap(),
            Endpoint::Tcp("host:4444".into())
        );
        assert_eq!(
            Endpoint::parse("tcp:[::1]:4444").unwrap(),
            Endpoint::Tcp("[::1]:4444".into())
        );
        assert!(Endpoint::parse("nonsense").is_err());
        assert!(Endpoint::Tcp("127.0.0.1:4444".into())
            .local_reason()
            .is_some());
        assert!(Endpoint::Tcp("192.0.2.1:4444".into())
            .local_reason()
            .is_none());
        assert!(Endpoint::Unix("x".into()).local_reason().is_some());
    }
}
