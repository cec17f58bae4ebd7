//! Names the build in `--version`: the git commit when built from a
//! checkout, nothing otherwise (a crate tarball has no .git).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    // `.git` is a directory in a clone and a file in a worktree.
    let commit = Path::new(".git")
        .exists()
        .then(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .flatten();
    let Some(commit) = commit else {
        println!("cargo:rustc-env=SEV_VALIDATE_VERSION={version}");
        return;
    };
    println!("cargo:rustc-env=SEV_VALIDATE_VERSION={version} (git {commit})");
    // Rerun only when HEAD moves: HEAD itself, the branch it names, and
    // packed-refs. Only existing files, since a missing one would rerun
    // this script (and rebuild the crate) on every build.
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(r);
    }
    for w in watch {
        if let Some(p) = git(&["rev-parse", "--git-path", &w]) {
            if Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
}
