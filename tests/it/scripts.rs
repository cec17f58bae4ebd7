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

/// scripts/setup.sh keeps apt's and dpkg's progress out of the demo's and
/// the tests' output: one line says what it installs and where the log is.
/// Run with stand-ins for dpkg-query (every package missing), apt-get (as
/// chatty as the real one) and id (root), so nothing is installed.
#[test]
fn setup_sh_prints_one_line_for_package_installs() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let stub = |name: &str, body: &str| {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    stub("dpkg-query", "exit 1");
    stub("id", "echo 0");
    stub(
        "apt-get",
        r#"[ "$1" = update ] && exit 0
for p in "$@"; do echo "Selecting previously unselected package $p."; echo "Setting up $p ..."; done >&2"#,
    );
    let log = dir.path().join("setup.log");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/setup.sh"))
        .env("PATH", path)
        .env("SETUP_LOG", &log)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "setup.sh failed: {printed}");
    let install_lines: Vec<&str> = printed
        .lines()
        .filter(|l| !l.contains("sev-snp-measure"))
        .collect();
    assert_eq!(install_lines.len(), 1, "setup.sh printed:\n{printed}");
    assert!(
        install_lines[0].contains(&log.display().to_string()),
        "{printed}"
    );
    let logged = std::fs::read_to_string(&log).expect("the apt log was written");
    assert!(
        logged.contains("Selecting previously unselected package ovmf."),
        "{logged}"
    );
}
