//! A QEMU monitor on another host of the network, for tests of the QMP source
//! without `--insecure`: a network namespace of the test's own, joined to this
//! one by a veth pair, in which a relay listens on TCP and forwards each
//! connection to the monitor's unix socket. (A unix socket bound in the file
//! system is reachable from every network namespace.) The tool then talks to
//! an address that is not this machine's, as it would to a remote host's
//! monitor.
//!
//! Needs root, iproute2 and Debian's python3; without them `start` says why.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const IP: &str = "/usr/sbin/ip";
const PYTHON: &str = "/usr/bin/python3";
const PORT: u16 = 4444;

/// The relay: TCP on ADDR:PORT to the unix socket PATH, both ways, per connection.
const RELAY: &str = r#"
import socket, sys, threading
addr, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(8)
print("ready", flush=True)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    finally:
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass
while True:
    c, _ = s.accept()
    u = socket.socket(socket.AF_UNIX)
    u.connect(path)
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
"#;

/// A monitor reached over the network; the namespace goes with it.
pub struct RemoteMonitor {
    /// `HOST:PORT` for `--qmp`.
    pub endpoint: String,
    relay: Child,
    // Dropped after the relay: the namespace, and with it the veth pair.
    _ns: Namespace,
}

struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new(IP)
        .args(args)
        .output()
        .map_err(|e| format!("{IP}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl RemoteMonitor {
    /// Serves the monitor at `unix` on another host's address.
    pub fn start(unix: &Path) -> Result<RemoteMonitor, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        // Root: the Uid line of /proc/self/status.
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let root = status
            .lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"));
        if !root {
            return Err("needs root (a network namespace and a veth pair)".into());
        }
        for p in [IP, PYTHON] {
            if !Path::new(p).exists() {
                return Err(format!("missing {p} (iproute2, python3)"));
            }
        }
        let n = N.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() % 10_000) * 16 + n % 16;
        let ns = format!("svq{id}");
        let (veth, peer) = (format!("svq{id}a"), format!("svq{id}b"));
        // A /30 of 198.18.0.0/15 (benchmarking, never routed) per monitor.
        let net = 4 * (id % 64);
        let third = 200 + (id / 64) % 50;
        let here = format!("198.18.{third}.{}", net + 1);
        let there = format!("198.18.{third}.{}", net + 2);
        ip(&["netns", "add", &ns])?;
        let namespace = Namespace(ns.clone());
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", &peer, "netns", &ns,
        ])?;
        ip(&["addr", "add", &format!("{here}/30"), "dev", &veth])?;
        ip(&["link", "set", &veth, "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{there}/30"),
            "dev",
            &peer,
        ])?;
        ip(&["-n", &ns, "link", "set", &peer, "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        let mut relay = Command::new(IP)
            .args(["netns", "exec", &ns, PYTHON, "-c", RELAY, &there])
            .arg(PORT.to_string())
            .arg(unix)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("relay: {e}"))?;
        let mut line = String::new();
        let stdout = relay.stdout.take().ok_or("relay: no stdout")?;
        let read = BufReader::new(stdout).read_line(&mut line);
        let m = RemoteMonitor {
            endpoint: format!("{there}:{PORT}"),
            relay,
            _ns: namespace,
        };
        match read {
            Ok(_) if line.trim() == "ready" => Ok(m),
            _ => Err(format!("the relay did not start: {line:?} {read:?}")),
        }
    }
}

impl Drop for RemoteMonitor {
    fn drop(&mut self) {
        let _ = self.relay.kill();
        let _ = self.relay.wait();
    }
}
