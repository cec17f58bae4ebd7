//! Finding one's way as a new user: the subcommands in `--help`, `help` and
//! `help SUBCOMMAND`, a suggestion for a mistyped subcommand, shell
//! completions that bash really loads and completes (options, commands and
//! fixed values). The subcommand list is read from the SEV-SNP section of
//! the man page, so code, README and man page must agree; the commands
//! `--help` lists are each answered by `help COMMAND`.

use std::path::Path;

use crate::common::Tool;

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
    let out = Tool::new().args(["--help"]).run();
    assert_eq!(out.code, 0);
    let help = out.stdout;
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for name in man_subcommands() {
        assert!(
            help.contains(&format!("  {name} ")),
            "--help lacks {name}:\n{help}"
        );
        assert!(readme.contains(&format!("`{name}")), "README lacks {name}");
    }
    // The short help too.
    let short = Tool::new().args(["-h"]).run().stdout;
    assert!(short.contains("snp-ovmf-hash"), "{short}");
}

#[test]
fn help_subcommand_works() {
    let out = Tool::new().args(["help"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let help = out.stdout;
    assert!(
        help.contains("--firmware") && help.contains("snp-digest"),
        "{help}"
    );

    let out = Tool::new().args(["help", "snp-ovmf-hash"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("--ovmf"), "{}", out.stdout);

    let out = Tool::new().args(["help", "snp-digset"]).run();
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("'snp-digest'"), "{}", out.stderr);
}

#[test]
fn mistyped_subcommand_gets_the_nearest() {
    for (typo, meant) in [
        ("snp-digset", "snp-digest"),
        ("snp-ovmfhash", "snp-ovmf-hash"),
        ("snp-id-blok", "snp-id-block"),
        ("digest", "snp-digest"),
    ] {
        let out = Tool::new().args([typo, "--ovmf", "x"]).run();
        assert_eq!(out.code, 2, "{typo}");
        let err = out.stderr;
        assert!(
            err.contains(&format!("similar subcommand exists: '{meant}'")),
            "{typo}: {err}"
        );
        assert!(err.contains("snp-id-block"), "{typo}: the list: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Far from every name: no suggestion, but still the list.
    let err = Tool::new().args(["frobnicate"]).run().stderr;
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
    let out = Tool::program("bash").arg("-c").arg(code).run();
    assert_eq!(out.code, 0, "bash: {}", out.stderr);
    out.stdout
}

#[test]
fn bash_completion_loads_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("virt-qemu-sev-validate.bash");
    let out = Tool::new().args(["completions", "bash"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
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
        let out = Tool::new().args(["completions", shell]).run();
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        let s = out.stdout;
        assert!(
            s.contains("firmware") && s.contains("snp-ovmf-hash"),
            "{shell}"
        );
    }
    let out = Tool::new().args(["completions", "tcsh"]).run();
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("bash, zsh or fish"));
}

/// The commands `--help` lists in its Commands section, read from the
/// binary's own output.
fn help_commands() -> Vec<String> {
    let help = Tool::new().args(["--help"]).run().expect_code(0).stdout;
    let section = help
        .split("\nCommands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("--help has no Commands section:\n{help}"));
    let names: Vec<String> = section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert!(names.len() >= 5, "{names:?}\n{help}");
    names
}

#[test]
fn help_lists_completions_and_help_and_every_command_has_help() {
    let names = help_commands();
    for name in ["completions", "help", "snp-digest", "snp-validate"] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    for name in &names {
        let out = Tool::new().args(["help", name.as_str()]).run();
        assert_eq!(out.code, 0, "help {name}: {}", out.stderr);
        assert!(
            out.stdout
                .contains(&format!("Usage: virt-qemu-sev-validate {name}")),
            "help {name}:\n{}",
            out.stdout
        );
    }
    let out = Tool::new().args(["help", "completions"]).run();
    assert!(out.stdout.contains("bash") && out.stdout.contains("fish"));
    let out = Tool::new().args(["completions", "--help"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("completions <SHELL>"), "{}", out.stdout);
}

/// Each command's summary in `--help` is one line that fits 80 columns:
/// a list that wraps on a common terminal reads badly.
#[test]
fn command_summaries_fit_one_line() {
    let help = Tool::new().args(["--help"]).run().expect_code(0).stdout;
    let section = help.split("\nCommands:\n").nth(1).expect("Commands:");
    let lines: Vec<&str> = section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), help_commands().len(), "{section}");
    for line in lines {
        assert!(
            line.chars().count() <= 80,
            "longer than 80 columns: {line:?}"
        );
    }
}

#[test]
fn usage_line_names_the_command() {
    let help = Tool::new().args(["--help"]).run().expect_code(0).stdout;
    let usage = help
        .lines()
        .find(|l| l.starts_with("Usage: "))
        .expect("a Usage line");
    assert!(usage.contains("[COMMAND]"), "{usage}");
}

#[test]
fn bare_run_points_to_help() {
    let out = Tool::new().run();
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--help"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn a_command_after_options_says_to_give_it_first() {
    let out = Tool::new()
        .args(["--debug", "snp-digest", "--ovmf", "x", "--vcpus", "1"])
        .run();
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("give it first"), "{}", out.stderr);
}

#[test]
fn bash_completes_fixed_values() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("virt-qemu-sev-validate.bash");
    let out = Tool::new().args(["completions", "bash"]).run();
    std::fs::write(&script, out.expect_code(0).stdout).unwrap();
    // The values completed (bash offers the options beside a positional's).
    let words = |got: String| {
        let mut w: Vec<String> = got
            .split_whitespace()
            .filter(|w| !w.starts_with('-'))
            .map(String::from)
            .collect();
        w.sort();
        w
    };
    // QEMU's AMD EPYC models that start with EPYC-M and EPYC-G.
    let got = bash_complete(
        &script,
        &[
            "virt-qemu-sev-validate",
            "snp-digest",
            "--vcpu-type",
            "EPYC-M",
        ],
    );
    assert_eq!(words(got), ["EPYC-Milan"]);
    let got = bash_complete(
        &script,
        &[
            "virt-qemu-sev-validate",
            "snp-digest",
            "--vcpu-type",
            "EPYC-G",
        ],
    );
    assert_eq!(words(got), ["EPYC-Genoa"]);
    let got = bash_complete(&script, &["virt-qemu-sev-validate", "--generation", "sev-"]);
    assert_eq!(words(got), ["sev-es", "sev-snp"]);
    let got = bash_complete(&script, &["virt-qemu-sev-validate", "completions", ""]);
    assert_eq!(words(got), ["bash", "fish", "zsh"]);
    let got = bash_complete(&script, &["virt-qemu-sev-validate", "help", "snp-re"]);
    assert_eq!(words(got), ["snp-report", "snp-request"]);
}

/// zsh completes a file option with files, a directory option with
/// directories, and --vcpu-type with QEMU's EPYC models.
#[test]
fn zsh_completes_files_directories_and_models() {
    let s = Tool::new()
        .args(["completions", "zsh"])
        .run()
        .expect_code(0)
        .stdout;
    let line = |opt: &str| {
        s.lines()
            .find(|l| l.starts_with(&format!("'{opt}=")))
            .unwrap_or_else(|| panic!("no {opt} in the zsh script"))
            .to_string()
    };
    assert!(
        line("--kds-cache").ends_with(":_files -/' \\"),
        "{}",
        line("--kds-cache")
    );
    assert!(
        line("--firmware").ends_with(":_files' \\"),
        "{}",
        line("--firmware")
    );
    assert!(
        line("--ovmf").ends_with(":_files' \\"),
        "{}",
        line("--ovmf")
    );
    let vcpu = line("--vcpu-type");
    for model in ["EPYC-Rome", "EPYC-Milan", "EPYC-Genoa", "EPYC-Turin"] {
        assert!(vcpu.contains(model), "{vcpu}");
    }
}
