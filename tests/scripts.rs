//! The scripts README.md sends a new user to say what they install, and
//! install exactly that.

use std::path::PathBuf;

fn read(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// The value of `NAME=value` at the start of a line of a shell script.
fn shell_var(script: &str, name: &str) -> Option<String> {
    script.lines().find_map(|l| {
        l.strip_prefix(&format!("{name}="))
            .map(|v| v.trim().trim_matches('"').to_string())
    })
}

/// scripts/fuzz.sh installs one pinned cargo-fuzz release, from its lock
/// file, and README.md names that release.
#[test]
fn fuzz_sh_pins_the_cargo_fuzz_readme_names() {
    let fuzz = read("scripts/fuzz.sh");
    let version = shell_var(&fuzz, "CARGO_FUZZ_VERSION")
        .expect("scripts/fuzz.sh sets CARGO_FUZZ_VERSION=<the cargo-fuzz release it installs>");
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "CARGO_FUZZ_VERSION={version} is not an exact release"
    );
    let installs: Vec<&str> = fuzz
        .lines()
        .filter(|l| l.contains("cargo install"))
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert!(!installs.is_empty(), "scripts/fuzz.sh installs nothing?");
    for l in installs {
        if l.contains("die ") || l.contains("note ") {
            continue;
        }
        assert!(
            l.contains("--locked") && l.contains("--version \"$CARGO_FUZZ_VERSION\""),
            "unpinned install in scripts/fuzz.sh: {l}"
        );
    }
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("cargo-fuzz` {version}")),
        "README.md does not say test.sh installs cargo-fuzz {version}"
    );
}

/// README.md names the sev-snp-measure release scripts/setup.sh installs.
#[test]
fn readme_names_the_sev_snp_measure_setup_installs() {
    let setup = read("scripts/setup.sh");
    let version = setup
        .split("sev-snp-measure==")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("scripts/setup.sh installs sev-snp-measure==<version>")
        .to_string();
    let readme = read("README.md");
    assert!(
        readme.contains(&format!("`sev-snp-measure` {version}")),
        "README.md does not say test.sh installs sev-snp-measure {version}"
    );
    assert!(readme.contains("/opt/sev-snp-measure"));
}
