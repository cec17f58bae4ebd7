//! Running the validators against the daemon: libvirt's Python tool and ours, on the hypervisor
//! host or elsewhere.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{run_timeout, split, succeeds, Host, CMD_TIMEOUT, PYTHON, PY_VALIDATOR};

/// Where a client runs: on the hypervisor host (in the daemon's UTS namespace, so its hostname
/// is the daemon's and the Python tool's hostname check sees a local connection), or
/// elsewhere (the test's own namespace, another hostname: "remote").
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Side {
    OnHost,
    Elsewhere,
}

/// Which validator a test runs against the daemon.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Validator {
    /// libvirt's Python tool (Debian's /usr/bin/virt-qemu-sev-validate).
    Python,
    Ours,
}

impl Host {
    /// A command for `program` run on `side`.
    pub fn command(&self, side: Side, program: impl AsRef<OsStr>) -> Command {
        if side == Side::OnHost && self.hostname.is_some() {
            let mut c = Command::new("/usr/bin/nsenter");
            c.arg("--uts")
                .arg(format!("--target={}", self.daemon_pid))
                .arg("--")
                .arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// Runs libvirt's Python validator (Debian's, with Debian's python3) on `side`.
    pub fn python_validator(&self, side: Side, args: &[&OsStr]) -> (i32, String, String) {
        let mut c = self.command(side, PYTHON);
        c.arg(PY_VALIDATOR).args(args);
        split(&run_timeout(&mut c, CMD_TIMEOUT))
    }

    /// Runs our validator binary ([`our_validator_path`]) on `side`.
    pub fn our_validator(&self, side: Side, args: &[&OsStr]) -> (i32, String, String) {
        let mut c = self.command(side, our_validator_path());
        c.args(args);
        split(&run_timeout(&mut c, CMD_TIMEOUT))
    }

    /// Runs `validator` with `argv` where its connection says: elsewhere for `qemu+ssh://`, on
    /// the hypervisor host otherwise. The run is logged (on stderr, which the test harness
    /// shows for a failing test); ours must not panic, and must have the libvirt source.
    /// Returns (exit code, stdout, stderr).
    pub fn validate(&self, validator: Validator, argv: &[OsString]) -> (i32, String, String) {
        let remote = argv
            .iter()
            .any(|a| a.to_string_lossy().starts_with("qemu+ssh://"));
        let side = if remote {
            Side::Elsewhere
        } else {
            Side::OnHost
        };
        let refs: Vec<&OsStr> = argv.iter().map(OsString::as_os_str).collect();
        let t0 = Instant::now();
        let r = match validator {
            Validator::Python => self.python_validator(side, &refs),
            Validator::Ours => self.our_validator(side, &refs),
        };
        eprintln!(
            "{validator:?} ({side:?}, {:.2?}) {argv:?}\n  -> exit {}\n  stdout: {}\n  stderr: {}",
            t0.elapsed(),
            r.0,
            r.1.trim(),
            r.2.trim()
        );
        if validator == Validator::Ours {
            assert!(!r.2.contains("panicked"), "{}", r.2);
            if r.0 == 2 && r.2.contains("--domain needs the libvirt source") {
                panic!("our tool has no --domain support yet: {}", r.2.trim());
            }
        }
        r
    }

    /// [`Host::validate`], checked to exit with `code` (the logs' last lines in the message
    /// when not). Returns (stdout, stderr).
    #[track_caller]
    pub fn expect_validate(
        &self,
        validator: Validator,
        argv: &[OsString],
        code: i32,
    ) -> (String, String) {
        let (rc, out, err) = self.validate(validator, argv);
        assert_eq!(
            rc,
            code,
            "{validator:?} exit {rc}, expected {code}\nstdout: {out}\nstderr: {err}\n{}",
            self.tail_logs()
        );
        (out, err)
    }
}

/// Our validator binary: Cargo's for integration tests; elsewhere (a cargo example, where
/// `CARGO_BIN_EXE_*` does not exist) `$SEV_VALIDATE_BIN`, else the release build.
pub fn our_validator_path() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_virt-qemu-sev-validate") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("SEV_VALIDATE_BIN") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/virt-qemu-sev-validate")
}

/// Whether Debian's Python validator is installed (with its modules).
pub fn python_validator_available() -> bool {
    Path::new(PY_VALIDATOR).exists()
        && succeeds(PYTHON, &["-c", "import libvirt, lxml, cryptography"])
}
