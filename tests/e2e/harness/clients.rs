//! Running the validators against the daemon: libvirt's Python tool and ours, on the hypervisor
//! host or elsewhere.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run_timeout, split, Host, CMD_TIMEOUT, PYTHON, PY_VALIDATOR};

/// Where a client runs: on the hypervisor host (in the daemon's UTS namespace, so its hostname
/// is the daemon's and the Python tool's hostname check sees a local connection), or
/// elsewhere (the test's own namespace, another hostname: "remote").
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Side {
    OnHost,
    Elsewhere,
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
        && Command::new(PYTHON)
            .args(["-c", "import libvirt, lxml, cryptography"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}
