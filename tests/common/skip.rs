//! The one skip helper of the tests, and the one place the public vectors
//! are found.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::PathBuf;

/// CI is set (and not "0", "false" or "no"): every prerequisite must be there.
pub fn in_ci() -> bool {
    match std::env::var("CI") {
        Ok(v) => {
            let v = v.trim().to_ascii_lowercase();
            !(v.is_empty() || v == "0" || v == "false" || v == "no")
        }
        Err(_) => false,
    }
}

/// Prints a visible SKIPPED line, or panics under CI, where a skip is a
/// failure. Written straight to the stderr handle: libtest captures
/// `eprintln!` of passing tests, and a skip must show without --nocapture.
pub fn skip_or_fail(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why} (CI must provide it)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

/// The public vectors folder: $SEV_VECTORS_DIR, else ../shared/vectors beside
/// the checkout. `None` (after a visible SKIPPED line) when absent outside CI.
pub fn vectors_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("SEV_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"));
    if dir.join("VECTORS.json").is_file() {
        return Some(dir);
    }
    skip_or_fail(
        test,
        &format!("public vectors not found at {}", dir.display()),
    );
    None
}

/// The SNP vectors folder: `$var` (each suite names its own variable), else
/// ../shared/snp-vectors beside the checkout. `None` (after a visible SKIPPED line) when
/// absent outside CI.
pub fn snp_vectors_dir(test: &str, var: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/snp-vectors"));
    if dir.join("EXPECTED.json").is_file() {
        return Some(dir);
    }
    skip_or_fail(test, &format!("SNP vectors not found at {}", dir.display()));
    None
}

/// The IGVM vectors folder: $SEV_IGVM_VECTORS_DIR, else ../shared/igvm-vectors
/// beside the checkout. `None` (after a visible SKIPPED line) when absent
/// outside CI.
pub fn igvm_vectors_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("SEV_IGVM_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/igvm-vectors")
        });
    if dir.join("digests.tsv").is_file() {
        return Some(dir);
    }
    skip_or_fail(
        test,
        &format!("IGVM vectors not found at {}", dir.display()),
    );
    None
}
