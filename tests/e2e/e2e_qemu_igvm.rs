//! The IGVM launch form on real QEMU: the QEMU 10.2.2 that scripts/setup-qemu-igvm.sh builds
//! with IGVM support starts, paused (-S), the NATIVE-platform IGVM file the script wrote with
//! the igvm crate, as `-machine q35,igvm-cfg=igvm0 -object igvm-cfg,id=igvm0,file=PATH`; the
//! tool's QOM lookup (src/source/qmp_igvm.rs) finds PATH over QMP, and the host copy it reads
//! is byte for byte the file. An igvm-cfg object the machine does not use is named as such;
//! the QEMU of the other tests (Debian's 7.2 on the host, or 10.0 in the libvirt 11 chroot with
//! `SEV_E2E_LIBVIRT=11`) has no IGVM support, and the lookup says so.
//!
//! The built QEMU is in `$SEV_QEMU_IGVM_ROOT` (default
//! /var/lib/virt-qemu-sev-validate/qemu-igvm). scripts/test.sh builds it in the background and
//! runs these tests in its second end-to-end pass; in the first (`SEV_E2E_LIBVIRT11_PASS_FOLLOWS`)
//! they say so and return. Without the build: a visible SKIPPED line, or a failure in CI.

use crate::harness as e2e;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use sev_validate::source::qmp::{Client, Endpoint};
use sev_validate::source::qmp_igvm::{qom_igvm_file, read_host_igvm, HostAccess, QomIgvm};

/// Debian's SeaBIOS, for the built QEMU's guests that load no IGVM file (its build installs
/// no firmware of its own).
const SEABIOS_DIR: &str = "/usr/share/seabios";

fn igvm_root() -> PathBuf {
    std::env::var_os("SEV_QEMU_IGVM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/virt-qemu-sev-validate/qemu-igvm"))
}

/// False, after a NOTE, in the first end-to-end pass of scripts/test.sh: these tests run once,
/// in the second, when the background build has had its time.
fn this_pass(test: &str) -> bool {
    if e2e::Libvirt::from_env() != e2e::Libvirt::V11
        && std::env::var_os("SEV_E2E_LIBVIRT11_PASS_FOLLOWS").is_some()
    {
        let _ = writeln!(
            std::io::stderr(),
            "NOTE: {test}: runs in the second end-to-end pass, after scripts/setup-qemu-igvm.sh's \
             background build"
        );
        return false;
    }
    true
}

/// The built QEMU and its NATIVE test file; None after a NOTE (first pass of scripts/test.sh)
/// or a SKIPPED line (a failure in CI).
fn built(test: &str) -> Option<(PathBuf, PathBuf)> {
    if !this_pass(test) {
        return None;
    }
    let root = igvm_root();
    let (qemu, igvm) = (
        root.join("bin/qemu-system-x86_64"),
        root.join("share/native-hlt.igvm"),
    );
    let mut missing: Vec<String> = [&qemu, &igvm, &root.join(".sev-e2e-ready")]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !Path::new(SEABIOS_DIR).join("bios-256k.bin").exists() {
        missing.push(format!("{SEABIOS_DIR}/bios-256k.bin (Debian's seabios)"));
    }
    if !missing.is_empty() {
        e2e::skip_or_fail(
            test,
            &format!(
                "missing {} (scripts/setup-qemu-igvm.sh builds QEMU with IGVM support)",
                missing.join(", ")
            ),
        );
        return None;
    }
    Some((qemu, igvm))
}

/// A paused QEMU, killed on drop; its output in `log`.
struct Guest {
    child: Child,
    sock: PathBuf,
    log: PathBuf,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Guest {
    /// Runs `cmd` (a QEMU) with `-S` and a QMP socket in `dir`, and waits for the socket.
    fn start(dir: &Path, name: &str, mut cmd: Command, args: &[OsString]) -> Guest {
        let sock = dir.join(format!("{name}.qmp"));
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .args(args)
            .args([
                "-S",
                "-accel",
                "tcg",
                "-m",
                "64",
                "-nodefaults",
                "-display",
                "none",
            ])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", sock.display()))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut g = Guest { child, sock, log };
        let start = Instant::now();
        while !g.sock.exists() {
            if let Ok(Some(status)) = g.child.try_wait() {
                panic!("{name}: QEMU exited ({status}): {}", g.output());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{name}: no QMP socket after 30 s: {}",
                g.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        g
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn client(&self) -> Client {
        Client::connect(
            &Endpoint::Unix(self.sock.display().to_string()),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", self.output()))
    }
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `-object igvm-cfg,id=igvm0,file=PATH`, with QEMU's option quoting: a comma doubled.
fn igvm_object(path: &Path) -> OsString {
    format!(
        "igvm-cfg,id=igvm0,file={}",
        path.display().to_string().replace(',', ",,")
    )
    .into()
}

/// The IGVM file QEMU loads is found through QOM, and the host copy the tool reads is the
/// file, byte for byte. The path has a space and a comma (doubled on QEMU's command line):
/// the lookup must give the path QEMU opened, not its quoted form.
#[test]
fn igvm_file_found_through_qom_and_read_from_the_host() {
    let test = "igvm_file_found_through_qom_and_read_from_the_host";
    let Some((qemu, made)) = built(test) else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("qemu-igvm-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("guest fw,v1.igvm");
    std::fs::copy(&made, &path).unwrap();
    let mut args = os(&["-machine", "q35,igvm-cfg=igvm0", "-object"]);
    args.push(igvm_object(&path));
    let g = Guest::start(dir.path(), "igvm", Command::new(&qemu), &args);
    let mut c = g.client();
    // Paused before its first instruction, as an owner's launch is when it is validated.
    let status = c.execute("query-status", None).unwrap().unwrap();
    assert_eq!(status["status"], Value::from("prelaunch"), "{status}");
    let got = qom_igvm_file(&mut c).unwrap();
    assert_eq!(
        got,
        QomIgvm::File {
            object: "/objects/igvm0".into(),
            path: path.display().to_string(),
        },
        "{}",
        g.output()
    );
    let QomIgvm::File {
        path: host_path, ..
    } = got
    else {
        unreachable!()
    };
    let host_copy = read_host_igvm(&host_path, &HostAccess::Local).unwrap();
    assert_eq!(host_copy, std::fs::read(&made).unwrap());
    assert_eq!(
        &host_copy[..4],
        b"IGVM",
        "the setup script wrote an IGVM file"
    );
}

/// `-object igvm-cfg` without `-machine ...,igvm-cfg=`: QEMU creates the object and loads
/// nothing from it; the lookup says the machine has no IGVM file and names the object.
#[test]
fn an_igvm_object_the_machine_does_not_load() {
    let test = "an_igvm_object_the_machine_does_not_load";
    let Some((qemu, made)) = built(test) else {
        return;
    };
    let dir = tempfile::Builder::new()
        .prefix("qemu-igvm-")
        .tempdir()
        .unwrap();
    let mut args = os(&["-machine", "q35", "-L", SEABIOS_DIR, "-object"]);
    args.push(igvm_object(&made));
    let g = Guest::start(dir.path(), "unused", Command::new(&qemu), &args);
    assert_eq!(
        qom_igvm_file(&mut g.client()).unwrap(),
        QomIgvm::NotConfigured {
            unused_objects: vec!["/objects/igvm0".into()]
        },
        "{}",
        g.output()
    );
}

/// The QEMU the other end-to-end tests run has no IGVM support: Debian's 7.2, or 10.0 in the
/// libvirt 11 chroot (IGVM came with QEMU 10.1, and Debian builds without it).
#[test]
fn qemu_without_igvm_support_says_so() {
    let test = "qemu_without_igvm_support_says_so";
    if !this_pass(test) {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("qemu-igvm-")
        .tempdir()
        .unwrap();
    let (cmd, args) = match e2e::Libvirt::from_env().root() {
        Some(root) => {
            let missing = e2e::libvirt11_missing();
            if !missing.is_empty() {
                e2e::skip_or_fail(test, &format!("missing {}", missing.join(", ")));
                return;
            }
            let cmd = e2e::chroot_command(&root, &[dir.path()], None, &os(&[e2e::REAL_QEMU]));
            (cmd, os(&["-machine", "q35"]))
        }
        None => (Command::new(e2e::REAL_QEMU), os(&["-machine", "q35"])),
    };
    let g = Guest::start(dir.path(), "plain", cmd, &args);
    let got = qom_igvm_file(&mut g.client()).unwrap();
    let QomIgvm::NotSupported {
        qemu_says,
        unused_objects,
    } = &got
    else {
        panic!("{got:?}: {}", g.output())
    };
    assert!(
        qemu_says.starts_with("Property 'pc-q35-") && qemu_says.ends_with(".igvm-cfg' not found"),
        "{qemu_says}"
    );
    assert!(unused_objects.is_empty(), "{got:?}");
}
