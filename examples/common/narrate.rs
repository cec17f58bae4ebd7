//! What the demos share: their narration (numbered steps, indented text) and
//! the owner's private files. Included by each demo with
//! `#[path = "common/narrate.rs"] mod narrate;`.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

pub fn step(n: u32, title: &str) {
    println!("\n== Step {n}: {title}");
}

pub fn say(text: &str) {
    for line in text.lines() {
        println!("   {line}");
    }
}

pub fn indent(text: &str, prefix: &str) {
    for line in text.trim_end().lines() {
        println!("   {prefix}{line}");
    }
}

/// Writes one of the owner's files, readable by the owner alone.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    fs::write(path, data).map_err(|e| format!("write {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

pub fn copy(from: &Path, to: &Path) -> Result<(), String> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))
}

/// Exits 2, saying how to build it, when the tool the demo runs is missing.
pub fn require_tool(tool: &Path) {
    if !tool.is_file() {
        eprintln!(
            "demo: {} not found: run `cargo build --release` or set SEV_VALIDATE_BIN",
            tool.display()
        );
        std::process::exit(2);
    }
}

/// What the simulated host started and still runs after its teardown
/// (everything it starts carries its work directory in its environment).
pub fn left_running(work: &Path) -> Vec<String> {
    crate::e2e::processes_started_in(work)
        .iter()
        .map(|(pid, name)| format!("{name} (pid {pid})"))
        .collect()
}

/// A teardown that left processes running is a failed demo.
pub fn none_left(left: &[String]) -> Result<(), String> {
    if left.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "still running after the teardown: {}",
            left.join(", ")
        ))
    }
}
