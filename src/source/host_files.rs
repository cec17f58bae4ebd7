//! A diagnosis for remote libvirt connections over ssh: fingerprint the
//! host's copies of the firmware, kernel and initrd named in the domain XML
//! over SFTP and say whether they differ from the owner's files.
//!
//! Nothing read here enters the measurement: the host's files are never
//! trusted, only compared, to point the owner at the input that differs.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use ssh2::{CheckResult, KnownHostFileKind, Session};

/// How long each network step may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest host file fingerprinted: a hostile host must not keep the tool
/// busy after the verdict (real initrds are far smaller).
const MAX_HOST_FILE: u64 = 1 << 30;

/// What ssh needs from a `qemu+ssh://[user@]host[:port]/path?keyfile=..&known_hosts=..&no_verify=1` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The URI's user, else `$USER`, else `root`.
    pub user: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port, 22 unless the URI gives one.
    pub port: u16,
    /// `keyfile=`: the private key to authenticate with first.
    pub keyfile: Option<PathBuf>,
    /// `known_hosts=`: the file to check the host key against, else `~/.ssh/known_hosts`.
    pub known_hosts: Option<PathBuf>,
    /// `no_verify=1`: skip the host key check.
    pub no_verify: bool,
}

/// The ssh parameters of a libvirt URI, if it uses the ssh transport.
pub fn ssh_target(uri: &str) -> Option<SshTarget> {
    let (scheme, rest) = uri.split_once("://")?;
    if !scheme.ends_with("+ssh") && !scheme.ends_with("+libssh2") && !scheme.ends_with("+libssh") {
        return None;
    }
    let (authority, path_query) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (u.to_string(), h),
        None => (
            std::env::var("USER").unwrap_or_else(|_| "root".into()),
            authority,
        ),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, tail) = v6.split_once(']')?;
        (
            h.to_string(),
            tail.strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .unwrap_or(22),
        )
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (hostport.to_string(), 22),
        }
    };
    let mut t = SshTarget {
        user,
        host,
        port,
        keyfile: None,
        known_hosts: None,
        no_verify: false,
    };
    if let Some((_, query)) = path_query.split_once('?') {
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "keyfile" => t.keyfile = Some(PathBuf::from(v)),
                "known_hosts" => t.known_hosts = Some(PathBuf::from(v)),
                "no_verify" => t.no_verify = v == "1",
                _ => {}
            }
        }
    }
    (!t.host.is_empty()).then_some(t)
}

pub use super::Comparison;

fn home_ssh(name: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".ssh").join(name))
}

/// Opens an authenticated session: the host key checked against known_hosts
/// (unless the URI says no_verify=1, as libvirt allows), then the URI's
/// keyfile, the ssh agent, or the usual key files.
pub fn connect(t: &SshTarget) -> Result<Session, String> {
    let addr = (t.host.as_str(), t.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", t.host))?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", t.host))?;
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("cannot reach {addr}: {e}"))?;
    let mut s = Session::new().map_err(|e| e.to_string())?;
    s.set_timeout(TIMEOUT.as_millis() as u32);
    s.set_tcp_stream(tcp);
    s.handshake()
        .map_err(|e| format!("ssh handshake with {addr} failed: {e}"))?;
    if !t.no_verify {
        let (key, _) = s.host_key().ok_or("the host sent no host key")?;
        let mut kh = s.known_hosts().map_err(|e| e.to_string())?;
        let file = t
            .known_hosts
            .clone()
            .or_else(|| home_ssh("known_hosts"))
            .ok_or("no known_hosts file")?;
        kh.read_file(&file, KnownHostFileKind::OpenSSH)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        match kh.check_port(&t.host, t.port, key) {
            CheckResult::Match => {}
            other => {
                return Err(format!(
                    "the host key of {}:{} is not trusted ({other:?} in {})",
                    t.host,
                    t.port,
                    file.display()
                ))
            }
        }
    }
    let mut tried = Vec::new();
    if let Some(k) = &t.keyfile {
        match s.userauth_pubkey_file(&t.user, None, k, None) {
            Ok(()) => return Ok(s),
            Err(e) => tried.push(format!("{}: {e}", k.display())),
        }
    }
    if s.userauth_agent(&t.user).is_ok() && s.authenticated() {
        return Ok(s);
    }
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        if let Some(k) = home_ssh(name).filter(|p| p.exists()) {
            if s.userauth_pubkey_file(&t.user, None, &k, None).is_ok() {
                return Ok(s);
            }
            tried.push(k.display().to_string());
        }
    }
    Err(format!(
        "ssh authentication as {} failed (tried the agent and {})",
        t.user,
        tried.join(", ")
    ))
}

/// Streams a file on the host over SFTP to `chunk`, refusing one over
/// `limit` bytes as soon as that many have come.
fn sftp_stream(
    s: &Session,
    path: &str,
    limit: u64,
    mut chunk: impl FnMut(&[u8]),
) -> Result<(), String> {
    let sftp = s
        .sftp()
        .map_err(|e| format!("SFTP is not available: {e}"))?;
    let mut f = sftp
        .open(Path::new(path))
        .map_err(|e| format!("cannot open {path} on the host: {e}"))?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("reading {path} on the host failed: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        total += n as u64;
        if total > limit {
            return Err(format!(
                "{path} on the host is larger than {limit} bytes; not read further"
            ));
        }
        chunk(&buf[..n]);
    }
}

/// SHA-256 of a file on the host, streamed over SFTP.
pub fn sftp_sha256(s: &Session, path: &str) -> Result<[u8; 32], String> {
    let mut h = Sha256::new();
    sftp_stream(s, path, MAX_HOST_FILE, |b| h.update(b))?;
    Ok(h.finalize().into())
}

/// A whole file on the host, of at most `limit` bytes, over a new ssh connection.
pub fn read_file(t: &SshTarget, path: &str, limit: u64) -> Result<Vec<u8>, String> {
    let s = connect(t)?;
    let mut bytes = Vec::new();
    sftp_stream(&s, path, limit, |b| bytes.extend_from_slice(b))?;
    Ok(bytes)
}

/// Compares each (what, host path, owner's digest) over one session.
pub fn compare(
    t: &SshTarget,
    files: &[(String, String, [u8; 32])],
) -> Result<Vec<Comparison>, String> {
    let s = connect(t)?;
    Ok(files
        .iter()
        .map(|(what, path, owner)| Comparison {
            what: what.clone(),
            host_path: path.clone(),
            host_sha256: sftp_sha256(&s, path),
            owner_sha256: *owner,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_uris() {
        let t = ssh_target("qemu+ssh://root@host.example:2222/system?keyfile=/k/id&no_verify=1")
            .unwrap();
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port),
            ("root", "host.example", 2222)
        );
        assert_eq!(t.keyfile, Some(PathBuf::from("/k/id")));
        assert!(t.no_verify);
        let t = ssh_target("qemu+ssh://h/session?socket=/x&known_hosts=/kh").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("h", 22));
        assert_eq!(t.known_hosts, Some(PathBuf::from("/kh")));
        assert!(ssh_target("qemu:///system").is_none());
        assert!(ssh_target("qemu+tcp://h/system").is_none());
        assert_eq!(
            ssh_target("qemu+ssh://[fe80::1]:22/system").unwrap().host,
            "fe80::1"
        );
    }
}
