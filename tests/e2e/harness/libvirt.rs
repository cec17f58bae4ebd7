//! The two libvirt + QEMU versions the harness runs (the host's, or libvirt 11.3 from the
//! chroot of scripts/setup-libvirt11.sh) and commands run in that chroot.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{getuid, skip_or_fail};

/// Which libvirt daemon and QEMU the harness runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libvirt {
    /// The host's own: Debian 12's libvirt 9.0 and QEMU 7.2.
    V9,
    /// bookworm-backports' libvirt 11.3 and QEMU 10.0 in the chroot of
    /// `scripts/setup-libvirt11.sh` ([`libvirt11_root`]).
    V11,
}

/// Whether a test that needs SEV-SNP (libvirt 10.5+, QEMU 9.1+) runs in this pass: only with
/// `SEV_E2E_LIBVIRT=11`. scripts/test.sh runs the end-to-end tests once per libvirt version
/// and sets `SEV_E2E_LIBVIRT11_PASS_FOLLOWS` for the libvirt 9.0 pass: such a test then says
/// where it runs. Otherwise a SKIPPED line, or a failure in CI.
pub fn snp_pass(test: &str) -> bool {
    if Libvirt::from_env() == Libvirt::V11 {
        return true;
    }
    if std::env::var_os("SEV_E2E_LIBVIRT11_PASS_FOLLOWS").is_some() {
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!("NOTE: {test}: runs in the libvirt 11.3 + QEMU 10.0 pass that follows (libvirt 9.0 \
             and QEMU 7.2 have no SEV-SNP)\n"),
        );
        return false;
    }
    skip_or_fail(
        test,
        "libvirt 9.0 and QEMU 7.2 have no SEV-SNP: run with SEV_E2E_LIBVIRT=11 (scripts/test.sh does)",
    );
    false
}

impl Libvirt {
    /// `SEV_E2E_LIBVIRT`: unset, empty or `9` for the host's, `11` for the chroot's.
    pub fn from_env() -> Libvirt {
        match std::env::var("SEV_E2E_LIBVIRT").as_deref() {
            Err(_) | Ok("") | Ok("9") => Libvirt::V9,
            Ok("11") => Libvirt::V11,
            Ok(other) => {
                panic!("SEV_E2E_LIBVIRT={other:?}: use 9 (the host's) or 11 (the chroot's)")
            }
        }
    }

    /// The root the daemon, python3 and QEMU come from (None: the host's `/`).
    pub fn root(self) -> Option<PathBuf> {
        match self {
            Libvirt::V9 => None,
            Libvirt::V11 => Some(libvirt11_root()),
        }
    }

    /// The major version `virsh version --daemon` must report.
    pub fn daemon_major(self) -> &'static str {
        match self {
            Libvirt::V9 => "9",
            Libvirt::V11 => "11",
        }
    }

    /// The major version of the QEMU that comes with it.
    pub fn qemu_major(self) -> u64 {
        match self {
            Libvirt::V9 => 7,
            Libvirt::V11 => 10,
        }
    }
}

/// Where `scripts/setup-libvirt11.sh` builds its chroot (same variable, same default).
pub fn libvirt11_root() -> PathBuf {
    std::env::var_os("SEV_LIBVIRT11_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/virt-qemu-sev-validate/libvirt11-root"))
}

/// What is missing to run programs from the libvirt 11 chroot (empty: nothing).
pub fn libvirt11_missing() -> Vec<String> {
    let root = libvirt11_root();
    let mut missing = Vec::new();
    if unsafe { getuid() } != 0 {
        missing.push("root (chroot and mount namespaces)".to_string());
        return missing;
    }
    if !root.join(".sev-e2e-ready").exists() {
        missing.push(format!(
            "the libvirt 11 chroot {} (run scripts/setup-libvirt11.sh)",
            root.display()
        ));
        return missing;
    }
    if !super::succeeds("/usr/bin/unshare", &["--mount", "--uts", "--", "/bin/true"]) {
        missing.push("mount and UTS namespaces (unshare --mount --uts)".to_string());
    }
    missing
}

/// A command that runs `argv` (paths inside the chroot) chrooted into `root`, in a private
/// mount namespace (and a UTS namespace with `hostname`, if given) where /proc, /sys, /dev and
/// a fresh /tmp are mounted and each of `binds` is bind-mounted at its own path. Every program
/// in the chain execs the next, so the child's pid is the last program's. The mounts vanish
/// with the namespace's last process: nothing to clean up on the host.
pub fn chroot_command(
    root: &Path,
    binds: &[&Path],
    hostname: Option<&str>,
    argv: &[OsString],
) -> Command {
    let script = r#"set -e
host=$1 root=$2 n=$3; shift 3
[ -z "$host" ] || hostname "$host"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
while [ "$n" -gt 0 ]; do
  mkdir -p "$root$1"
  mount --bind "$1" "$root$1"
  n=$((n - 1)); shift
done
exec /usr/sbin/chroot "$root" "$@""#;
    let mut c = Command::new("/usr/bin/unshare");
    c.arg("--mount").arg("--propagation").arg("private");
    if hostname.is_some() {
        c.arg("--uts");
    }
    c.args(["--", "/bin/sh", "-c", script, "chroot_command"])
        .arg(hostname.unwrap_or(""))
        .arg(root)
        .arg(binds.len().to_string())
        .args(binds)
        .args(argv);
    c
}
