//! Finding one's way: the commands listed in `--help` (the SEV-SNP
//! subcommands, `completions` and `help`), `help` and `help COMMAND`, the
//! nearest command for a mistyped one, a bare run's pointer to `--help`, and
//! the shell completions (`completions bash|zsh|fish`). Every list comes
//! from [`super::snp_commands::SUBCOMMANDS`], so a new subcommand shows up
//! everywhere at once.

use std::ffi::OsString;

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Args;
use super::snp_commands as snp_cli;
use crate::error::ExitCode;

/// The program's name, as installed.
pub const PROGRAM: &str = "virt-qemu-sev-validate";

/// The command that prints a shell's completion script.
pub const COMPLETIONS: &str = "completions";

/// The text after `--help`'s options.
const AFTER_HELP: &str = "Without a command, virt-qemu-sev-validate validates an SEV or SEV-ES \
launch with the options above. 'help COMMAND' shows a command's options; the manual page \
virt-qemu-sev-validate(1) has the details.";

/// `completions SHELL`, for `--help`, `help completions` and the shells'
/// completion of its argument (the shell is checked by [`completions`]).
fn completions_command() -> clap::Command {
    clap::Command::new(COMPLETIONS)
        .about("Print the shell completion script for bash, zsh or fish")
        .long_about(
            "Print the shell completion script for bash, zsh or fish on stdout, e.g. \
             virt-qemu-sev-validate completions bash > \
             ~/.local/share/bash-completion/completions/virt-qemu-sev-validate",
        )
        .arg(
            clap::Arg::new("shell")
                .value_name("SHELL")
                .required(true)
                .value_parser(["bash", "zsh", "fish"]),
        )
}

/// `help [COMMAND]`, listed in `--help` in place of clap's own.
fn help_command() -> clap::Command {
    clap::Command::new("help")
        .about("Show this help, or a command's: help COMMAND")
        .arg(
            clap::Arg::new("command")
                .value_name("COMMAND")
                .value_parser(clap::builder::PossibleValuesParser::new(command_names())),
        )
}

/// Every command name `help COMMAND` answers.
pub fn command_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = snp_cli::SUBCOMMANDS.to_vec();
    names.extend([COMPLETIONS, "help"]);
    names
}

/// Everything the program answers: the drop-in options, and the commands
/// (the SEV-SNP subcommands with their options, `completions`, `help`),
/// which `--help` lists and the shell completions know.
pub fn drop_in_command() -> clap::Command {
    let snp = snp_cli::command();
    let mut cmd = Args::command()
        .disable_help_subcommand(true)
        .after_help(AFTER_HELP);
    for name in snp_cli::SUBCOMMANDS {
        if let Some(sub) = snp.find_subcommand(name) {
            cmd = cmd.subcommand(sub.clone());
        }
    }
    with_file_hints(
        cmd.subcommand(completions_command())
            .subcommand(help_command()),
    )
}

/// The shell completions for a command and its subcommands: a path option
/// completes file names (clap infers any path), a directory option keeps
/// its own hint. Positional arguments keep theirs: changing one would
/// change its place.
fn with_file_hints(cmd: clap::Command) -> clap::Command {
    use clap::ValueHint;
    let paths: Vec<clap::Id> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && a.get_value_hint() == ValueHint::AnyPath)
        .map(|a| a.get_id().clone())
        .collect();
    let mut cmd = paths.into_iter().fold(cmd, |c, id| {
        c.mut_arg(id, |a| a.value_hint(ValueHint::FilePath))
    });
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        cmd = cmd.mut_subcommand(name, with_file_hints);
    }
    cmd
}

/// Answers a bare run, `help`, `help COMMAND`, `completions SHELL` and a
/// mistyped subcommand; `None` leaves the command line to the parsers.
pub fn main_if_help(args: &[OsString]) -> Option<i32> {
    let Some(first) = args.get(1) else {
        return Some(usage_error(&format!(
            "nothing to validate: give an SEV or SEV-ES launch's options (--firmware, --tk, \
             --measurement... or --domain), or a command such as snp-validate; see \
             '{PROGRAM} --help'"
        )));
    };
    let first = first.to_string_lossy().into_owned();
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

/// A command comes first, before its options: after the drop-in options,
/// a command word is a usage error that says so.
pub fn no_command_after_options(m: &clap::ArgMatches) -> Result<(), clap::Error> {
    match m.subcommand_name() {
        None => Ok(()),
        Some(name) => Err(drop_in_command().error(
            clap::error::ErrorKind::ArgumentConflict,
            format!(
                "'{name}' is a command: give it first, before its options \
                 ({PROGRAM} {name} --help lists them)"
            ),
        )),
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
        [sub] if sub == "help" || sub == COMPLETIONS => print_help_of(sub),
        [sub] => unknown(sub),
        _ => usage_error("help takes at most one command: help COMMAND"),
    }
}

/// The long help of `help` or `completions`, named as run.
fn print_help_of(name: &str) -> i32 {
    let mut cmd = drop_in_command();
    cmd.build();
    match cmd.find_subcommand_mut(name) {
        Some(sub) => {
            let _ = sub.print_long_help();
            ExitCode::Ok as i32
        }
        None => unknown(name),
    }
}

fn completions(rest: &[String]) -> i32 {
    if rest.iter().any(|a| a == "-h" || a == "--help") {
        return print_help_of(COMPLETIONS);
    }
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
    let mut cmd = drop_in_command();
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
    let names = command_names();
    let tip = nearest(word, &names)
        .map(|n| format!("\n\n  tip: a similar subcommand exists: '{n}'"))
        .unwrap_or_default();
    usage_error(&format!(
        "unrecognized subcommand '{word}'{tip}\n\nCommands: {}\nOptions: see '{PROGRAM} --help'",
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
