//! Finding one's way as a new user: the subcommands in `--help`, `help` and
//! `help SUBCOMMAND`, a suggestion for a mistyped subcommand, shell
//! completions that bash really loads and completes. The subcommand list is
//! read from the SEV-SNP section of the man page, so code, README and man
//! page must agree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_virt-qemu-sev-validate"))
}

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run the program")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The subcommands the man page documents as `.TP` items `.B snp\-...`.
fn man_subcommands() -> Vec<String> {
    let man = std::fs::read_to_string(root().join("man/virt-qemu-sev-validate.1")).unwrap();
    let lines: Vec<&str> = man.lines().collect();
    let mut names: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .filter_map(|w| w[1].strip_prefix(".B snp\\-"))
        .filter(|rest| !rest.contains(' '))
        .map(|rest| format!("snp-{}", rest.replace("\\-", "-")))
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 3, "man page subcommands: {names:?}");
    names
}

#[test]
fn help_lists_every_subcommand() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for name in man_subcommands() {
        assert!(
            help.contains(&format!("  {name} ")),
            "--help lacks {name}:\n{help}"
        );
        assert!(readme.contains(&format!("`{name}")), "README lacks {name}");
    }
    // The short help too.
    let short = text(&run(&["-h"]).stdout);
    assert!(short.contains("snp-ovmf-hash"), "{short}");
}

#[test]
fn help_subcommand_works() {
    let out = run(&["help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    assert!(
        help.contains("--firmware") && help.contains("snp-digest"),
        "{help}"
    );

    let out = run(&["help", "snp-ovmf-hash"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("--ovmf"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&["help", "snp-digset"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("'snp-digest'"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn mistyped_subcommand_gets_the_nearest() {
    for (typo, meant) in [
        ("snp-digset", "snp-digest"),
        ("snp-ovmfhash", "snp-ovmf-hash"),
        ("snp-id-blok", "snp-id-block"),
        ("digest", "snp-digest"),
    ] {
        let out = run(&[typo, "--ovmf", "x"]);
        assert_eq!(out.status.code(), Some(2), "{typo}");
        let err = text(&out.stderr);
        assert!(
            err.contains(&format!("similar subcommand exists: '{meant}'")),
            "{typo}: {err}"
        );
        assert!(err.contains("snp-id-block"), "{typo}: the list: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Far from every name: no suggestion, but still the list.
    let err = text(&run(&["frobnicate"]).stderr);
    assert!(
        !err.contains("similar") && err.contains("snp-digest"),
        "{err}"
    );
}

/// Sources the bash completion script and completes `words` (the last one
/// being completed), as bash does when TAB is pressed.
fn bash_complete(script: &Path, words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let code = format!(
        r#"source '{}'
complete -p virt-qemu-sev-validate >&2 || exit 3
f=$(complete -p virt-qemu-sev-validate | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$f" virt-qemu-sev-validate '{cur}' '{prev}'
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        script.display(),
        words = quoted.join(" "),
        cur = words[cword],
    );
    let out = Command::new("bash").arg("-c").arg(code).output().unwrap();
    assert!(out.status.success(), "bash: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn bash_completion_loads_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("virt-qemu-sev-validate.bash");
    let out = run(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::write(&script, &out.stdout).unwrap();

    let got = bash_complete(&script, &["virt-qemu-sev-validate", "--fir"]);
    assert_eq!(got.split_whitespace().collect::<Vec<_>>(), ["--firmware"]);
    let got = bash_complete(&script, &["virt-qemu-sev-validate", "snp-"]);
    for name in man_subcommands() {
        assert!(
            got.split_whitespace().any(|w| w == name),
            "{name} not in {got:?}"
        );
    }
    let got = bash_complete(
        &script,
        &["virt-qemu-sev-validate", "snp-digest", "--ovmf-h"],
    );
    assert_eq!(got.split_whitespace().collect::<Vec<_>>(), ["--ovmf-hash"]);
}

#[test]
fn zsh_and_fish_completions_name_options_and_subcommands() {
    for shell in ["zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let s = text(&out.stdout);
        assert!(
            s.contains("firmware") && s.contains("snp-ovmf-hash"),
            "{shell}"
        );
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bash, zsh or fish"));
}
