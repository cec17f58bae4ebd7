//! `--version` names the build: the version, and the git commit when built
//! from a checkout (compared with `git rev-parse` run here).

use std::path::Path;
use std::process::Command;

use crate::common::Tool;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_names_the_commit() {
    let out = Tool::new().args(["--version"]).run();
    assert_eq!(out.code, 0);
    let v = out.stdout.clone();
    assert!(
        v.starts_with(&format!(
            "virt-qemu-sev-validate {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{v}"
    );
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output();
    match git {
        Ok(g) if g.status.success() && root().join(".git").exists() => {
            let commit = text(&g.stdout).trim().to_string();
            assert!(v.contains(&format!("(git {commit})")), "{v} lacks {commit}");
        }
        _ => assert!(!v.contains("git"), "{v}"),
    }
}
