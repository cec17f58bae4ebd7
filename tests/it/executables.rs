//! The main executable carries no libvirt code, so offline, QMP and SNP runs
//! never load libvirt's shared libraries; `--domain` runs go to
//! virt-qemu-sev-validate-libvirt, installed beside it.

use crate::common;

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
    let (code, _, err) = common::run([
        "--connect",
        "test:///default",
        "--domain",
        "test",
        "--tk",
        "/dev/null",
    ]);
    assert_eq!(code, 2, "{err}"); // the TK file is checked first
    let dir = tempfile::tempdir().unwrap();
    let tk = dir.path().join("tk");
    std::fs::write(&tk, [1u8; 32]).unwrap();
    let tk = tk.display().to_string();
    let (code, _, err) = common::run([
        "--connect",
        "test:///default",
        "--domain",
        "test",
        "--tk",
        &tk,
    ]);
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
    let dir = tempfile::tempdir().unwrap();
    let tk = dir.path().join("tk");
    std::fs::write(&tk, [1u8; 32]).unwrap();
    let tk = tk.display().to_string();
    let lonely = dir.path().join("virt-qemu-sev-validate");
    std::fs::copy(env!("CARGO_BIN_EXE_virt-qemu-sev-validate"), &lonely).unwrap();
    let out = Command::new(&lonely)
        .args([
            "--connect",
            "test:///default",
            "--domain",
            "test",
            "--tk",
            &tk,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(
        err.contains("virt-qemu-sev-validate-libvirt")
            && err.contains("cannot be run")
            && err.contains("install it beside"),
        "{err}"
    );
    assert!(!err.contains("bug"), "{err}");
    // Offline runs do not need it.
    let out = Command::new(&lonely).arg("--version").output().unwrap();
    assert!(out.status.success());
}
