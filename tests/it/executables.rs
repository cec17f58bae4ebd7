//! The main executable carries no libvirt code, so offline, QMP and SNP runs
//! never load libvirt's shared libraries; `--domain` runs go to
//! virt-qemu-sev-validate-libvirt, installed beside it.

use crate::common;
use common::{Files, Tool};

use std::process::Command;

fn needed(exe: &str) -> Option<String> {
    let out = Command::new("readelf").args(["-d", exe]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn only_the_libvirt_executable_links_libvirt() {
    let main = env!("CARGO_BIN_EXE_virt-qemu-sev-validate");
    let lv = env!("CARGO_BIN_EXE_virt-qemu-sev-validate-libvirt");
    let (Some(m), Some(l)) = (needed(main), needed(lv)) else {
        common::skip_or_fail(
            "only_the_libvirt_executable_links_libvirt",
            "readelf (binutils) is needed",
        );
        return;
    };
    assert!(
        !m.contains("libvirt.so"),
        "the main executable links libvirt:\n{m}"
    );
    assert!(
        !m.contains("libssl.so"),
        "the main executable links OpenSSL:\n{m}"
    );
    assert!(
        l.contains("libvirt.so"),
        "the libvirt executable does not link libvirt:\n{l}"
    );
}

#[test]
fn domain_runs_are_handed_to_the_libvirt_executable() {
    // Through the main executable, a --domain run reaches libvirt (its test
    // driver here): the local connection is refused the way the libvirt
    // source refuses it.
    let run = |tk: &str| {
        let domain = Tool::new().args(common::TEST_DRIVER_DOMAIN);
        domain.args(["--tk", tk]).run().parts()
    };
    let (code, _, err) = run("/dev/null");
    assert_eq!(code, 2, "{err}"); // the TK file is checked first
    let f = Files::new();
    let (code, _, err) = run(&f.write("tk", [1u8; 32]));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("running locally on the hypervisor host is not secure"),
        "{err}"
    );
}

/// The main executable copied alone (without virt-qemu-sev-validate-libvirt
/// beside it) is an installation problem, not a bug: exit 7 and a message
/// that says what to install (man page, EXIT STATUS).
#[test]
fn a_missing_libvirt_executable_is_an_installation_problem() {
    let f = Files::new();
    let tk = f.write("tk", [1u8; 32]);
    let lonely = f.p("virt-qemu-sev-validate");
    std::fs::copy(common::tool::OURS, &lonely).unwrap();
    let domain = Tool::program(&lonely).args(common::TEST_DRIVER_DOMAIN);
    let (code, _, err) = domain.args(["--tk", &tk]).run().parts();
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("virt-qemu-sev-validate-libvirt")
            && err.contains("cannot be run")
            && err.contains("install it beside"),
        "{err}"
    );
    assert!(!err.contains("bug"), "{err}");
    // Offline runs do not need it.
    assert_eq!(Tool::program(&lonely).arg("--version").run().code, 0);
}
