//! Finding one's way: the subcommands listed in `--help`, `help` and
//! `help SUBCOMMAND`, the nearest subcommand for a mistyped one, and the
//! shell completions (`completions bash|zsh|fish`, not shown in `--help`).
//! Every list comes from [`super::snp_commands::SUBCOMMANDS`], so a new subcommand shows
//! up everywhere at once.

use std::ffi::OsString;

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Args;
use super::snp_commands as snp_cli;
use crate::error::ExitCode;

/// The program's name, as installed.
pub const PROGRAM: &str = "virt-qemu-sev-validate";

/// The hidden subcommand that prints a shell's completion script.
pub const COMPLETIONS: &str = "completions";

/// Each subcommand with its one-line description.
pub fn subcommands() -> Vec<(&'static str, String)> {
    let snp = snp_cli::command();
    snp_cli::SUBCOMMANDS
        .iter()
        .map(|&name| {
            let about = snp
                .find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default();
            (name, about)
        })
        .collect()
}

/// The "Subcommands:" section of `--help`.
pub fn subcommand_listing() -> String {
    let list = subcommands();
    let width = list.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut s = String::from("Subcommands (SEV-SNP):\n");
    for (name, about) in &list {
        s.push_str(&format!("  {name:width$}  {about}\n"));
    }
    s.push_str(&format!(
        "  {:width$}  Show this help, or a subcommand's (help SUBCOMMAND)\n",
        "help"
    ));
    s.push_str(&format!(
        "\nWithout a subcommand, {PROGRAM} validates an SEV or SEV-ES launch with the options above."
    ));
    s
}

/// The drop-in options' parser, its help listing the subcommands.
pub fn drop_in_command() -> clap::Command {
    Args::command().after_help(subcommand_listing())
}

/// Everything the program answers, for the shell completions: the drop-in
/// options and the subcommands with their options (clap adds `help`).
pub fn full_command() -> clap::Command {
    let snp = snp_cli::command();
    let mut cmd = drop_in_command();
    for name in snp_cli::SUBCOMMANDS {
        if let Some(sub) = snp.find_subcommand(name) {
            cmd = cmd.subcommand(sub.clone());
        }
    }
    cmd
}

/// Answers `help`, `help SUBCOMMAND`, `completions SHELL` and a mistyped
/// subcommand; `None` leaves the command line to the parsers.
pub fn main_if_help(args: &[OsString]) -> Option<i32> {
    let first = args.get(1)?.to_string_lossy().into_owned();
    if first.starts_with('-') || snp_cli::SUBCOMMANDS.contains(&first.as_str()) {
        return None;
    }
    let rest: Vec<String> = args[2..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match first.as_str() {
        "help" => Some(help(&rest)),
        COMPLETIONS => Some(completions(&rest)),
        _ => Some(unknown(&first)),
    }
}

fn help(rest: &[String]) -> i32 {
    match rest {
        [] => {
            let _ = drop_in_command().print_long_help();
            ExitCode::Ok as i32
        }
        [sub] if snp_cli::SUBCOMMANDS.contains(&sub.as_str()) => {
            let argv: Vec<OsString> = [PROGRAM, sub, "--help"]
                .iter()
                .map(OsString::from)
                .collect();
            snp_cli::main_if_subcommand(&argv).unwrap_or(ExitCode::Unexpected as i32)
        }
        [sub] => unknown(sub),
        _ => usage_error("help takes at most one subcommand: help SUBCOMMAND"),
    }
}

fn completions(rest: &[String]) -> i32 {
    let [shell] = rest else {
        return usage_error("completions takes one shell: completions bash|zsh|fish");
    };
    let shell = match shell.as_str() {
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => {
            return usage_error(&format!(
                "no completions for the shell '{other}'; give bash, zsh or fish"
            ))
        }
    };
    let mut cmd = full_command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, PROGRAM, &mut script);
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if shell == Shell::Bash {
        // clap_complete 4.6 spells a dashed program name two ways in its bash
        // script (the subcommands' `case` labels escape its dashes like a
        // subcommand's), so no subcommand option would complete: one spelling.
        script = script.replace(
            "virt__subcmd__qemu__subcmd__sev__subcmd__validate",
            "virt__qemu__sev__validate",
        );
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(script.as_bytes());
    let _ = out.flush();
    ExitCode::Ok as i32
}

/// A word that is neither an option nor a subcommand: name the nearest
/// subcommand if one is close, and list them all.
fn unknown(word: &str) -> i32 {
    let mut names: Vec<&str> = snp_cli::SUBCOMMANDS.to_vec();
    names.push("help");
    let tip = nearest(word, &names)
        .map(|n| format!("\n\n  tip: a similar subcommand exists: '{n}'"))
        .unwrap_or_default();
    usage_error(&format!(
        "unrecognized subcommand '{word}'{tip}\n\nSubcommands: {}\nOptions: see '{PROGRAM} --help'",
        names.join(", ")
    ))
}

fn usage_error(msg: &str) -> i32 {
    eprintln!("error: {msg}");
    if std::env::args().any(|a| a == "--json") {
        super::output::print_json(&crate::report::Report::usage_error(msg));
    }
    ExitCode::UnsupportedUsage as i32
}

/// The candidate closest to `word` by edit distance, if close enough to be
/// a typo (or if `word` is a part of it, as "digest" of "snp-digest").
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|&c| {
            let d = if word.len() >= 3 && c.contains(word.as_str()) {
                0
            } else {
                levenshtein(&word, c)
            };
            (d, c)
        })
        .filter(|&(d, c)| d <= 2.max(c.len() / 4))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_subcommand() {
        let names = ["snp-digest", "snp-ovmf-hash", "snp-id-block", "help"];
        assert_eq!(nearest("snp-digset", &names), Some("snp-digest"));
        assert_eq!(nearest("snp-idblock", &names), Some("snp-id-block"));
        assert_eq!(nearest("ovmf-hash", &names), Some("snp-ovmf-hash"));
        assert_eq!(nearest("hlep", &names), Some("help"));
        assert_eq!(nearest("frobnicate", &names), None);
    }
}
