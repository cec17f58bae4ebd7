//! The QMP source against real QEMU (Debian's qemu-system-x86_64, which runs
//! here without SEV hardware) and against bad peers: a socket that closes
//! mid-reply, sends garbage, or never answers. Each gives a clear error
//! within a bounded time, and exit 9: the peer broke the QMP protocol.

use crate::common;
use common::Args;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Owner {
    dir: tempfile::TempDir,
}

impl Owner {
    fn new() -> Owner {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fw.fd"), common::amdsev_like_firmware()).unwrap();
        std::fs::write(dir.path().join("tk"), [3u8; 32]).unwrap();
        Owner { dir }
    }
    fn p(&self, n: &str) -> String {
        self.dir.path().join(n).display().to_string()
    }
    fn args(&self, endpoint: &str, extra: &[&str]) -> Vec<String> {
        let tk = self.p("tk");
        Args::of(&[
            "--qmp",
            endpoint,
            "--firmware",
            &self.p("fw.fd"),
            "--tk",
            &tk,
        ])
        .args(extra)
        .vec()
    }
}

struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn real_qemu_without_sev() {
    let qemu = "/usr/bin/qemu-system-x86_64";
    if !Path::new(qemu).exists() {
        common::skip_or_fail("real_qemu_without_sev", "qemu-system-x86 is not installed");
        return;
    }
    let o = Owner::new();
    let sock = o.p("qmp.sock");
    let _q = Qemu(
        Command::new(qemu)
            .args([
                "-S",
                "-machine",
                "q35,accel=tcg",
                "-m",
                "64",
                "-display",
                "none",
                "-nodefaults",
            ])
            .args(["-qmp", &format!("unix:{sock},server=on,wait=off")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(Path::new(&sock));
    // A unix socket is on this machine: refused without --insecure.
    let (code, _, err) = common::run(o.args(&sock, &[]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("unix socket on this machine"), "{err}");
    // The handshake works; QEMU says the guest has no SEV: a configuration error.
    let (code, _, err) = common::run(o.args(&sock, &["--insecure"]));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("SEV is not enabled for this guest") || err.contains("SEV is not available"),
        "{err}"
    );
}

/// A fake monitor on a unix socket that plays `script` for each connection.
fn fake_monitor(sock: &str, script: fn(&mut std::os::unix::net::UnixStream)) {
    let listener = UnixListener::bind(sock).unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            script(&mut s);
        }
    });
}

fn greet(s: &mut std::os::unix::net::UnixStream) -> BufReader<std::os::unix::net::UnixStream> {
    s.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, \"capabilities\": []}}\r\n")
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    s.write_all(b"{\"return\": {}}\r\n").unwrap();
    r
}

#[track_caller]
fn bounded(args: Vec<String>, code: i32, needle: &str) {
    let start = Instant::now();
    let (got, out, err) = common::run(&args);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(got, code, "{out}{err}");
    assert!(err.contains(needle), "wanted {needle:?}: {err}");
}

#[test]
fn peer_that_is_not_qmp() {
    let o = Owner::new();
    let sock = o.p("garbage.sock");
    fake_monitor(&sock, |s| {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
    });
    bounded(o.args(&sock, &["--insecure"]), 9, "is not QMP");
}

#[test]
fn peer_sends_garbage_after_the_handshake() {
    let o = Owner::new();
    let sock = o.p("garbage2.sock");
    fake_monitor(&sock, |s| {
        let mut r = greet(s);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = s.write_all(b"{\"event\": \"RESUME\", \"timestamp\": {}}\r\n\x00\xff garbage\r\n");
        std::thread::sleep(Duration::from_secs(1));
    });
    bounded(o.args(&sock, &["--insecure"]), 9, "not QMP");
}

#[test]
fn peer_closes_mid_reply() {
    let o = Owner::new();
    let sock = o.p("close.sock");
    fake_monitor(&sock, |s| {
        let mut r = greet(s);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = s.write_all(b"{\"return\": {\"enabled\": tr");
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    bounded(
        o.args(&sock, &["--insecure"]),
        9,
        "closed the connection in the middle of a reply",
    );
}

#[test]
fn peer_never_answers() {
    let o = Owner::new();
    let sock = o.p("silent.sock");
    fake_monitor(&sock, |s| {
        let _r = greet(s);
        std::thread::sleep(Duration::from_secs(30));
    });
    bounded(
        o.args(&sock, &["--insecure", "--qmp-timeout", "2"]),
        9,
        "did not answer within 2 s",
    );
    // Not even a greeting.
    let sock2 = o.p("mute.sock");
    fake_monitor(&sock2, |_| std::thread::sleep(Duration::from_secs(30)));
    bounded(
        o.args(&sock2, &["--insecure", "--qmp-timeout", "1"]),
        9,
        "did not answer within 1 s",
    );
}

#[test]
fn nothing_listening() {
    let o = Owner::new();
    bounded(
        o.args(&o.p("nobody.sock"), &["--insecure"]),
        2,
        "cannot connect to the QMP socket",
    );
    bounded(
        o.args("127.0.0.1:1", &["--insecure"]),
        2,
        "cannot connect to the QMP endpoint",
    );
    bounded(o.args("127.0.0.1:1", &[]), 3, "address of this machine");
}

#[test]
fn qmp_and_domain_exclude_each_other() {
    let o = Owner::new();
    bounded(
        o.args("/x.sock", &["--domain", "g"]),
        2,
        "cannot be used with",
    );
    let args = vec![
        "--qmp".to_string(),
        "/x.sock".into(),
        "--tk".into(),
        o.p("tk"),
    ];
    bounded(args, 2, "--qmp needs --firmware");
}
