//! `--version` names the build: the version, and the git commit when built
//! from a checkout (compared with `git rev-parse` run here).

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_virt-qemu-sev-validate"))
        .args(args)
        .output()
        .expect("run the program")
}

#[test]
fn version_names_the_commit() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    let v = text(&out.stdout);
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
