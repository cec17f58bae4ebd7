//! The SFTP fingerprint of the host's files against a real sshd that the
//! test starts on loopback with a key it generates: a drifted firmware on
//! the "host" side is reported as different, an identical kernel as the
//! same, a missing initrd as unreadable; an unknown host key is refused. The
//! host's IGVM file is read whole over the same SFTP, within its limit.

use crate::common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sev_validate::error::Error;
use sev_validate::source::host_files::{compare, read_file, ssh_target};
use sev_validate::source::qmp_igvm::{read_host_igvm, HostAccess};

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn host_files_compared_over_sftp() {
    let sshd = Path::new("/usr/sbin/sshd");
    let is_root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
    if !sshd.exists() || !is_root {
        common::skip_or_fail(
            "host_files_compared_over_sftp",
            "needs openssh-server and root",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).display().to_string();
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f", &p("host_key")]));
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f", &p("client_key")]));
    std::fs::copy(p("client_key.pub"), p("authorized_keys")).unwrap();
    std::fs::create_dir_all("/run/sshd").unwrap();
    let port = free_port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPidFile {pid}\n\
         StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         PermitRootLogin prohibit-password\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
        hk = p("host_key"),
        ak = p("authorized_keys"),
        pid = p("sshd.pid"),
    );
    std::fs::write(p("sshd_config"), config).unwrap();
    let _sshd = Sshd(
        Command::new(sshd)
            .args(["-D", "-e", "-f", &p("sshd_config")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The "host" side: a firmware that drifted from the owner's copy, the same kernel.
    let owner_fw = common::amdsev_like_firmware();
    let mut host_fw = owner_fw.clone();
    host_fw[4096] ^= 0x80;
    std::fs::write(p("host-OVMF.fd"), &host_fw).unwrap();
    std::fs::write(p("host-vmlinuz"), b"kernel").unwrap();
    let files = vec![
        ("firmware".to_string(), p("host-OVMF.fd"), sha256(&owner_fw)),
        ("kernel".to_string(), p("host-vmlinuz"), sha256(b"kernel")),
        ("initrd".to_string(), p("no-such-initrd"), sha256(b"")),
    ];
    // The host key is known: the comparison runs.
    let host_pub = std::fs::read_to_string(p("host_key.pub")).unwrap();
    std::fs::write(p("known_hosts"), format!("[127.0.0.1]:{port} {host_pub}")).unwrap();
    let uri = format!(
        "qemu+ssh://root@127.0.0.1:{port}/system?keyfile={}&known_hosts={}",
        p("client_key"),
        p("known_hosts")
    );
    let target = ssh_target(&uri).unwrap();
    let got = compare(&target, &files).unwrap();
    assert_eq!(
        got[0].differs(),
        Some(true),
        "the drifted firmware is reported: {got:?}"
    );
    assert_eq!(got[0].host_sha256, Ok(sha256(&host_fw)));
    assert_eq!(got[1].differs(), Some(false));
    assert!(
        got[2]
            .host_sha256
            .as_ref()
            .is_err_and(|e| e.contains("cannot open")),
        "{got:?}"
    );
    // The host's IGVM file, read whole over SFTP (src/source/qmp_igvm.rs): byte for byte
    // across several reads, cut off past its limit, and a missing file named.
    let igvm: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(p("host guest.igvm"), &igvm).unwrap();
    let access = HostAccess::Sftp(target.clone());
    assert_eq!(
        read_host_igvm(&p("host guest.igvm"), &access).unwrap(),
        igvm
    );
    let err = read_file(&target, &p("host guest.igvm"), 199_999).unwrap_err();
    assert!(err.contains("larger than 199999 bytes"), "{err}");
    assert_eq!(
        read_file(&target, &p("host guest.igvm"), 200_000).unwrap(),
        igvm
    );
    let err = read_host_igvm(&p("no-such.igvm"), &access).unwrap_err();
    assert!(
        matches!(&err, Error::HostCall(m) if m.contains("over SFTP") && m.contains("cannot open")),
        "{err:?}"
    );
    // An unknown host key is refused before anything is read.
    std::fs::write(p("known_hosts"), "").unwrap();
    let err = compare(&target, &files).unwrap_err();
    assert!(err.contains("not trusted"), "{err}");
    // A wrong client key is refused.
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f", &p("other_key")]));
    let uri = format!(
        "qemu+ssh://root@127.0.0.1:{port}/system?keyfile={}&no_verify=1",
        p("other_key")
    );
    let err = compare(&ssh_target(&uri).unwrap(), &files).unwrap_err();
    assert!(err.contains("authentication"), "{err}");
}
