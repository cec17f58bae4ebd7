//! Whether a connection reaches another machine. The guest owner must not
//! validate on the host it is checking: that host could alter what the tool
//! reads. Used by the libvirt and QMP sources.

use std::net::{ToSocketAddrs, UdpSocket};

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
    // A host name is at most 64 bytes (HOST_NAME_MAX); /etc/hostname may
    // be anything, so at most a page of it is read.
    let read = |p: &str| {
        crate::input::read_bounded("host name file", std::path::Path::new(p), 4096)
            .ok()
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
    };
    read("/proc/sys/kernel/hostname")
        .or_else(|| read("/etc/hostname"))
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
