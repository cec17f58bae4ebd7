//! The `qemu+ssh://` transport: an sshd playing the hypervisor host's, in the daemon's UTS
//! namespace and a network namespace of its own reached over a veth pair.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{random_bytes, skip_or_fail, write_file, Host, IP, SSH, SSHD, SSH_KEYGEN, USER};

pub(super) struct Sshd {
    pub(super) child: Child,
    /// Address of the "hypervisor host" (sshd's network namespace) seen from the test.
    pub(super) addr: String,
    pub(super) port: u16,
    /// Test-side end of the veth pair (removed at teardown).
    pub(super) veth: String,
    pub(super) uri_params: String,
}

impl Host {
    // ------------------------------------------------------------------- ssh

    /// Starts (once) an sshd playing the hypervisor host's, and returns a `qemu+ssh://` URI
    /// reaching this daemon through it as the daemon's user (`netcat` proxy to its socket).
    ///
    /// So that the connection is really remote, sshd runs in the daemon's UTS namespace (its
    /// hostname) and in a network namespace of its own, reached over a veth pair at
    /// 198.18.N.2 (RFC 2544 benchmarking range) from the test's 198.18.N.1: an address the
    /// client machine does not have. Own host key, generated client key, random high port.
    /// None (after a SKIPPED line) when not root or ssh/sshd/ip are missing.
    pub fn ssh_uri(&self) -> Option<String> {
        let mut guard = self.sshd.lock().unwrap();
        if guard.is_none() {
            match self.start_sshd() {
                Ok(s) => *guard = Some(s),
                Err(why) => {
                    skip_or_fail("qemu+ssh transport", &why);
                    return None;
                }
            }
        }
        let s = guard.as_ref().unwrap();
        Some(format!(
            "qemu+ssh://{USER}@{}:{}/session?{}",
            s.addr, s.port, s.uri_params
        ))
    }

    /// The address of the simulated remote hypervisor host (after [`Host::ssh_uri`]).
    pub fn remote_addr(&self) -> Option<String> {
        self.sshd.lock().unwrap().as_ref().map(|s| s.addr.clone())
    }

    fn start_sshd(&self) -> Result<Sshd, String> {
        if !self.as_root {
            return Err("needs root (sshd, network and UTS namespaces)".into());
        }
        if self.hostname.is_none() {
            return Err("the daemon has no hostname of its own (unshare missing)".into());
        }
        for p in [
            SSHD,
            SSH,
            SSH_KEYGEN,
            IP,
            "/usr/bin/nsenter",
            "/usr/bin/unshare",
        ] {
            if !Path::new(p).exists() {
                return Err(format!(
                    "missing {p} (openssh-server, openssh-client, iproute2, util-linux)"
                ));
            }
        }
        // sshd refuses users whose shell is nologin or whose password is locked ('!').
        let out = Command::new("usermod")
            .args(["--shell", "/bin/sh", "--password", "*", USER])
            .output()
            .map_err(|e| format!("usermod: {e}"))?;
        if !out.status.success() {
            return Err(format!("usermod: {}", String::from_utf8_lossy(&out.stderr)));
        }
        // Privilege separation directory (normally made by the service unit).
        let _ = fs::create_dir_all("/run/sshd");
        let _ = fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755));

        let d = self.dir.join("ssh");
        fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        for key in ["hostkey", "clientkey"] {
            let out = Command::new(SSH_KEYGEN)
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "sev-e2e", "-f"])
                .arg(d.join(key))
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "ssh-keygen: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        fs::copy(d.join("clientkey.pub"), d.join("authorized_keys")).map_err(|e| e.to_string())?;
        fs::set_permissions(d.join("authorized_keys"), fs::Permissions::from_mode(0o644)).unwrap();
        // The external ssh client libvirt runs (URI param `command`): root's ~/.ssh (config,
        // known_hosts) is neither read nor written.
        let ssh_cmd = d.join("ssh");
        write_file(
            &ssh_cmd,
            format!(
                "#!/bin/sh\nexec {SSH} -F /dev/null -o UserKnownHostsFile=/dev/null \
                 -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 \"$@\"\n"
            )
            .as_bytes(),
            0o755,
        );

        let rnd = random_bytes(4);
        let port = 20000 + (u16::from_le_bytes([rnd[0], rnd[1]]) % 30000);
        let conf = format!(
            "ListenAddress 0.0.0.0\nPort {port}\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             PidFile {pid}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowUsers {USER}\n\
             PermitRootLogin no\nX11Forwarding no\nAllowTcpForwarding no\nPrintMotd no\n\
             PrintLastLog no\nUseDNS no\nLogLevel VERBOSE\n",
            hk = d.join("hostkey").display(),
            ak = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
        );
        write_file(&d.join("sshd_config"), conf.as_bytes(), 0o644);
        let log = fs::File::create(d.join("sshd.log")).unwrap();
        // nsenter (daemon's hostname) and unshare (new network namespace) exec in place: the
        // child's pid is sshd's, and its network namespace is the "hypervisor host's".
        let mut child = Command::new("/usr/bin/nsenter")
            .arg("--uts")
            .arg(format!("--target={}", self.daemon_pid))
            .args([
                "--",
                "/usr/bin/unshare",
                "--net",
                "--",
                SSHD,
                "-D",
                "-e",
                "-f",
            ])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn sshd: {e}"))?;
        self.note_pid(child.id());
        let fail = |child: &mut Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "{why}\n{}",
                fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            ))
        };

        // The child execs nsenter, then unshare, which makes the new network
        // namespace, then sshd. Wait for the namespace: a veth peer moved to
        // the child's pid before then lands in this namespace, and the steps
        // below fail with "Cannot find device" (seen under load).
        let own_ns = fs::read_link("/proc/self/ns/net").ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ns = fs::read_link(format!("/proc/{}/ns/net", child.id())).ok();
            if ns.is_some() && ns != own_ns {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                return fail(
                    &mut child,
                    format!("sshd exited ({st}) before it had a network namespace"),
                );
            }
            if Instant::now() > deadline {
                return fail(
                    &mut child,
                    "sshd got no network namespace of its own in 10 s".into(),
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }

        // veth pair: test side 198.18.N.1/30, sshd side 198.18.N.2/30.
        let tag: String = rnd.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let (veth, peer) = (format!("sve{}a", &tag[..6]), format!("sve{}b", &tag[..6]));
        let net = 4 * (rnd[2] as u32 % 64);
        let third = 100 + (rnd[3] as u32 % 100);
        let (here, there) = (
            format!("198.18.{third}.{}", net + 1),
            format!("198.18.{third}.{}", net + 2),
        );
        let pid = child.id().to_string();
        let (here_cidr, there_cidr) = (format!("{here}/30"), format!("{there}/30"));
        let target = format!("--target={pid}");
        // `ip ARGS` here, and in sshd's network namespace.
        let ip = |args: &[&str]| -> Vec<String> {
            std::iter::once(IP)
                .chain(args.iter().copied())
                .map(String::from)
                .collect()
        };
        let ip_there = |args: &[&str]| {
            [
                vec!["/usr/bin/nsenter".into(), "--net".into(), target.clone()],
                ip(args),
            ]
            .concat()
        };
        let steps = [
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", &peer, "netns", &pid,
            ]),
            ip(&["addr", "add", &here_cidr, "dev", &veth]),
            ip(&["link", "set", &veth, "up"]),
            ip_there(&["addr", "add", &there_cidr, "dev", &peer]),
            ip_there(&["link", "set", &peer, "up"]),
            ip_there(&["link", "set", "lo", "up"]),
        ];
        for step in &steps {
            let out = Command::new(&step[0])
                .args(&step[1..])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                let _ = Command::new(IP).args(["link", "del", &veth]).output();
                return fail(
                    &mut child,
                    format!(
                        "{}: {}",
                        step.join(" "),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                );
            }
        }

        // Ready when the port accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                let _ = Command::new(IP).args(["link", "del", &veth]).output();
                return fail(&mut child, format!("sshd exited: {st}"));
            }
            let addr: std::net::SocketAddr = format!("{there}:{port}").parse().unwrap();
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                let params = format!(
                    "socket={}&keyfile={}&no_verify=1&command={}",
                    self.socket.display(),
                    d.join("clientkey").display(),
                    ssh_cmd.display()
                );
                return Ok(Sshd {
                    child,
                    addr: there,
                    port,
                    veth,
                    uri_params: params,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new(IP).args(["link", "del", &veth]).output();
        fail(&mut child, format!("sshd not reachable at {there}:{port}"))
    }
}
