//! The Debian package (debian/, scripts/package.sh): built, checked by lintian, installed over
//! libvirt's Python tool in a clean Debian 12 chroot and purged again, by
//! scripts/test-package.sh; and what the README and the man page say about it matches what the
//! packaging does.
//!
//! The chroot test needs root and a release build, so it runs only with `SEV_TEST_PACKAGE=1`
//! (scripts/test.sh gives it a pass of its own, after the other tests, and sets
//! `SEV_TEST_PACKAGE=0` for the main run, where it says SKIPPED).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

use crate::common::skip_or_fail;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// The man page's text with the escapes that break up words (`\-`, `\%`, `\&`) taken out.
fn man_text() -> String {
    read("man/virt-qemu-sev-validate.1")
        .replace("\\-", "-")
        .replace("\\%", "")
        .replace("\\&", "")
}

/// The name libvirt's Python tool gets, from the diversion in the maintainer scripts.
const PYTHON_NAME: &str = "/usr/bin/virt-qemu-sev-validate-python";
const PYTHON_PAGE: &str = "/usr/share/man/man1/virt-qemu-sev-validate-python.1.gz";

#[test]
fn preinst_adds_and_postrm_removes_the_same_diversions() {
    let preinst = read("debian/virt-qemu-sev-validate.preinst");
    let postrm = read("debian/virt-qemu-sev-validate.postrm");
    for (divert, path) in [
        (PYTHON_NAME, "/usr/bin/virt-qemu-sev-validate"),
        (
            PYTHON_PAGE,
            "/usr/share/man/man1/virt-qemu-sev-validate.1.gz",
        ),
    ] {
        for (script, text, action) in [
            ("preinst", &preinst, "--add"),
            ("postrm", &postrm, "--remove"),
        ] {
            let joined = text.replace("\\\n", " ");
            let line = joined
                .lines()
                .find(|l| l.contains("dpkg-divert") && l.contains(&format!("{action} {path}")))
                .unwrap_or_else(|| panic!("{script} has no dpkg-divert {action} {path}"));
            assert!(
                line.contains("--package virt-qemu-sev-validate")
                    && line.contains("--rename")
                    && line.contains(&format!("--divert {divert} ")),
                "{script}: {line}"
            );
        }
    }
}

/// README and the man page give the Python tool's new name, and the man page's FILES section
/// names where the package installs the completions and the schemas (debian/rules).
#[test]
fn readme_and_man_page_name_the_installed_paths() {
    let rules = read("debian/rules").replace("$(PKG)", "virt-qemu-sev-validate");
    let man = man_text();
    let files = man
        .split(".SH FILES")
        .nth(1)
        .and_then(|s| s.split(".SH ").next())
        .expect("the man page has a FILES section");
    for dir in [
        "/usr/share/bash-completion/completions/",
        "/usr/share/zsh/vendor-completions/",
        "/usr/share/fish/vendor_completions.d/",
        "/usr/share/virt-qemu-sev-validate/schema/",
    ] {
        assert!(
            rules.contains(&format!("$(DEST){}", dir.trim_end_matches('/'))),
            "debian/rules no longer installs into {dir}"
        );
        assert!(
            files.contains(dir),
            "the man page's FILES does not name {dir}"
        );
    }
    for (what, text) in [("README.md", read("README.md")), ("the man page", man)] {
        assert!(
            text.contains("virt-qemu-sev-validate-python"),
            "{what} does not say the Python tool becomes virt-qemu-sev-validate-python"
        );
    }
    assert!(read("README.md").contains("scripts/package.sh"));
}

/// debian/changelog's version is the crate's (scripts/package.sh refuses to build otherwise).
#[test]
fn debian_changelog_is_at_the_crate_version() {
    let changelog = read("debian/changelog");
    let first = changelog.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "virt-qemu-sev-validate ({}) ",
            env!("CARGO_PKG_VERSION")
        )),
        "debian/changelog starts '{first}', the crate is at {}",
        env!("CARGO_PKG_VERSION")
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// scripts/test-package.sh, every check of which prints one `ok:` line.
#[test]
fn package_installs_over_the_python_tool_and_purges_cleanly() {
    const TEST: &str = "package::package_installs_over_the_python_tool_and_purges_cleanly";
    match std::env::var("SEV_TEST_PACKAGE").as_deref() {
        Ok("1") => {}
        Ok("0") => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {TEST}: SEV_TEST_PACKAGE=0 (scripts/test.sh runs it in a pass of its own)"
            );
            return;
        }
        _ => {
            skip_or_fail(
                TEST,
                "set SEV_TEST_PACKAGE=1 to build the .deb and try it in a Debian 12 chroot (root, a release build)",
            );
            return;
        }
    }
    if !is_root() {
        skip_or_fail(TEST, "needs root (a chroot, mounts)");
        return;
    }
    let out = Command::new("bash")
        .arg(root().join("scripts/test-package.sh"))
        .current_dir(root())
        .output()
        .expect("run scripts/test-package.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // What was checked, shown even though libtest captures a passing test's output.
    let _ = writeln!(std::io::stderr(), "{stdout}");
    assert!(
        out.status.success(),
        "scripts/test-package.sh failed:\n{stderr}"
    );
    for must in [
        "ok: lintian: no tag left",
        "ok: dpkg-divert: /usr/bin/virt-qemu-sev-validate -> /usr/bin/virt-qemu-sev-validate-python",
        "ok: virt-qemu-sev-validate --version: virt-qemu-sev-validate ",
        "ok: man -w virt-qemu-sev-validate: /usr/share/man/man1/virt-qemu-sev-validate.1.gz, ours",
        "ok: bash: 'virt-qemu-sev-validate --gen<TAB>' completes to --generation",
        "ok: a good launch validates with both tools; a tampered firmware exits 1 with both",
        "are libvirt-clients-qemu's again",
        "ok: no diversion by virt-qemu-sev-validate left",
        "ok: man -w virt-qemu-sev-validate: /usr/local/share/man/man1/virt-qemu-sev-validate.1",
        "all checks passed",
    ] {
        assert!(stdout.contains(must), "no '{must}' in:\n{stdout}");
    }
}
