//! The man page must keep up with the command line: every option that
//! `--help` prints, in its long and short form, has to be documented in
//! man/virt-qemu-sev-validate.1, and EXIT STATUS must describe every exit
//! code the tool uses (0 to 6).

use std::path::PathBuf;

use crate::common::Tool;

fn man_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man/virt-qemu-sev-validate.1")
}

fn man_source() -> String {
    let path = man_path();
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the man page {}: {e}", path.display()))
}

/// Removes the roff escapes that may sit inside or around an option name,
/// so that `\fB\-\-api\-major\fR` reads as `--api-major`.
fn normalise(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    let mut chars = roff.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            // \- is the minus/hyphen that option names are written with.
            Some('-') => out.push('-'),
            // \fB, \fI, \fR, \fP, \f(CW, \f[CR]: font changes.
            Some('f') => match chars.next() {
                Some('(') => {
                    chars.next();
                    chars.next();
                }
                Some('[') => {
                    for c in chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            // \% (no hyphenation), \& (zero-width), \: (break point), \c: no output.
            Some('%') | Some('&') | Some(':') | Some('c') => {}
            // \e is a printed backslash.
            Some('e') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn is_option_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// Whether `option` occurs in `text` as a whole option name, not as part of a
/// longer one (`-s` inside `--show-keys`, `--tk` inside `--tks`).
fn mentions(text: &str, option: &str) -> bool {
    text.match_indices(option).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + option.len()..].chars().next();
        !before.is_some_and(is_option_char) && !after.is_some_and(is_option_char)
    })
}

/// `virt-qemu-sev-validate [SUBCOMMAND] --help`, checked to succeed and to be UTF-8.
fn help(subcommand: &[&str]) -> String {
    let help = Tool::new().args(subcommand).arg("--help").run();
    let help = help.expect_code(0).stdout;
    assert!(!help.contains('\u{FFFD}'), "--help prints UTF-8");
    help
}

/// The options of `long` and `short` that the man page `man` does not mention.
fn undocumented<'a>(man: &str, long: &'a [String], short: &'a [String]) -> Vec<&'a String> {
    (long.iter().chain(short))
        .filter(|o| !mentions(man, o))
        .collect()
}

/// The long and short options that `--help` defines. Only the lines that
/// define options are read (those that start with `-` after the indent), so
/// a description that mentions another option adds nothing.
fn help_options() -> (Vec<String>, Vec<String>) {
    help_options_of(&[])
}

/// The same for a subcommand's `--help`.
fn help_options_of(subcommand: &[&str]) -> (Vec<String>, Vec<String>) {
    let help = help(subcommand);
    let (mut long, mut short) = (Vec::new(), Vec::new());
    for line in help.lines() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('-') {
            continue;
        }
        for token in trimmed.split(|c: char| c.is_whitespace() || c == ',' || c == '=') {
            if let Some(name) = token.strip_prefix("--") {
                let name: String = name.chars().take_while(|c| is_option_char(*c)).collect();
                if !name.is_empty() {
                    long.push(format!("--{name}"));
                }
            } else if let Some(name) = token.strip_prefix('-') {
                let mut cs = name.chars();
                if let (Some(c), None) = (cs.next(), cs.next()) {
                    if c.is_ascii_alphanumeric() {
                        short.push(format!("-{c}"));
                    }
                }
            }
        }
    }
    long.sort();
    long.dedup();
    short.sort();
    short.dedup();
    (long, short)
}

#[test]
fn every_help_option_is_documented() {
    let (long, short) = help_options();
    // Guard against a parser that silently finds nothing.
    for expected in ["--measurement", "--firmware", "--tk", "--inject-secret"] {
        assert!(
            long.iter().any(|o| o == expected),
            "did not find {expected} in --help; found {long:?}"
        );
    }
    for expected in ["-m", "-f", "-s", "-0", "-1"] {
        assert!(
            short.iter().any(|o| o == expected),
            "did not find {expected} in --help; found {short:?}"
        );
    }

    let man = normalise(&man_source());
    let missing = undocumented(&man, &long, &short);
    assert!(
        missing.is_empty(),
        "options printed by --help but not documented in {}: {missing:?}",
        man_path().display()
    );
}

#[test]
fn every_snp_subcommand_option_is_documented() {
    let man = normalise(&man_source());
    for sub in [
        "snp-digest",
        "snp-ovmf-hash",
        "snp-id-block",
        "snp-report",
        "snp-validate",
        "snp-request",
        "snp-open",
    ] {
        assert!(
            mentions(&man, sub) || man.contains(sub),
            "{sub} is not in the man page"
        );
        let (long, short) = help_options_of(&[sub]);
        assert!(
            long.iter().any(|o| o == "--help"),
            "{sub}: no options parsed"
        );
        let missing = undocumented(&man, &long, &short);
        assert!(
            missing.is_empty(),
            "{sub} --help options not in the man page: {missing:?}"
        );
    }
}

/// The body of one `.SH` section, up to the next `.SH`.
fn section<'a>(roff: &'a str, title: &str) -> &'a str {
    let mut start = None;
    let mut offset = 0;
    for line in roff.split_inclusive('\n') {
        let l = line.trim_end();
        if let Some(rest) = l.strip_prefix(".SH") {
            let name = rest.trim().trim_matches('"');
            if let Some(s) = start {
                return &roff[s..offset];
            }
            if name == title {
                start = Some(offset + line.len());
            }
        }
        offset += line.len();
    }
    match start {
        Some(s) => &roff[s..],
        None => panic!("the man page has no .SH {title} section"),
    }
}

/// The tags of the `.TP` / `.IP` items in a section, normalised: the first
/// word of the line after `.TP`, or the argument of `.IP`.
fn item_tags(body: &str) -> Vec<String> {
    let lines: Vec<&str> = body.lines().collect();
    let mut tags = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let tag_line = if line.starts_with(".TP") {
            lines.get(i + 1).copied()
        } else {
            line.strip_prefix(".IP ")
        };
        let Some(tag_line) = tag_line else { continue };
        let tag = normalise(tag_line);
        let tag = tag
            .strip_prefix(".BR ")
            .or_else(|| tag.strip_prefix(".B "))
            .or_else(|| tag.strip_prefix(".IR "))
            .or_else(|| tag.strip_prefix(".I "))
            .unwrap_or(&tag);
        if let Some(word) = tag.trim().trim_matches('"').split_whitespace().next() {
            tags.push(word.to_string());
        }
    }
    tags
}

#[test]
fn exit_status_lists_every_code() {
    let roff = man_source();
    let body = section(&roff, "EXIT STATUS");
    let tags = item_tags(body);
    // 0-6 as the Python tool; 7 installation, 8 host call, 9 QMP protocol,
    // 10 another generation than the owner's.
    let missing: Vec<u8> = (0..=10u8)
        .filter(|code| !tags.iter().any(|t| t == &code.to_string()))
        .collect();
    assert!(
        missing.is_empty(),
        "EXIT STATUS in {} has no item for exit code(s) {missing:?} (items found: {tags:?})",
        man_path().display()
    );
}

/// FILES says every file the program writes, including the temporary file
/// each output is staged in, under the prefix the code uses.
#[test]
fn files_names_the_temporary_files_written() {
    let roff = man_source();
    let body = normalise(section(&roff, "FILES"));
    let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let code = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/source/offline.rs"),
    )
    .unwrap();
    assert!(
        code.contains(".prefix(\".sev-secret-\")"),
        "src/source/offline.rs no longer stages outputs as .sev-secret-*: update this test and FILES"
    );
    for needle in [
        "temporary file created beside it",
        ".sev-secret-",
        "renamed over the path given",
        "a pipe, a FIFO",
    ] {
        assert!(
            body.contains(needle),
            "FILES in {} does not say {needle:?}:\n{body}",
            man_path().display()
        );
    }
}

#[test]
fn normalise_reads_roff_option_names() {
    assert_eq!(normalise(r"\fB\-\-api\-major\fR"), "--api-major");
    assert_eq!(
        normalise(r#".BR \%\-s ", " \%\-\-inject\-secret"#),
        r#".BR -s ", " --inject-secret"#
    );
    assert!(mentions("use -s, --show-keys", "-s"));
    assert!(!mentions("use --show-keys", "-s"));
    assert!(!mentions("use --tks", "--tk"));
}

/// The options an option's description says it needs ("With --domain or
/// --qmp: ..."): the options named before the first ':' or ','.
fn scope(desc: &str) -> Option<Vec<String>> {
    let d = desc.trim_start();
    let rest = d
        .strip_prefix("With ")
        .or_else(|| d.strip_prefix("Together with "))?;
    let head = &rest[..rest.find([':', ',']).unwrap_or(rest.len())];
    let mut opts: Vec<String> = head
        .split(|c: char| !is_option_char(c))
        .filter(|w| w.starts_with("--"))
        .map(str::to_string)
        .collect();
    opts.sort();
    Some(opts)
}

/// Each long option's description in `--help`, joined into one line.
fn help_descriptions() -> Vec<(String, String)> {
    let help = help(&[]);
    let mut found: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if t.starts_with('-') && indent <= 6 {
            let long = t
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches(',').to_string());
            if let Some(long) = long {
                let long: String = long.chars().take_while(|c| is_option_char(*c)).collect();
                found.push((long, String::new()));
            }
        } else if indent > 6 {
            if let Some((_, d)) = found.last_mut() {
                d.push_str(t);
                d.push(' ');
            }
        }
    }
    found
}

/// The text of the man page's `.TP` entry for `option`, roff removed.
fn man_entry(man: &[String], option: &str) -> Option<String> {
    let i = man.windows(2).position(|w| {
        w[0] == ".TP"
            && w[1]
                .split_whitespace()
                .nth(1)
                .is_some_and(|o| o.trim_matches('"') == option)
    })?;
    let body: Vec<&str> = man[i + 2..]
        .iter()
        .take_while(|l| !l.starts_with(".TP") && !l.starts_with(".SH"))
        .map(|l| {
            l.split_once(' ')
                .filter(|_| l.starts_with('.'))
                .map_or(l.as_str(), |(_, r)| r)
        })
        .collect();
    Some(body.join(" ").replace('"', ""))
}

/// "With --domain: ..." in --help and "With --domain or --qmp: ..." in the
/// man page told a new user two things: the options an option works with
/// must be the same in both.
#[test]
fn option_scopes_agree_with_the_man_page() {
    let man: Vec<String> = normalise(&man_source()).lines().map(String::from).collect();
    let mut checked = 0;
    for (option, desc) in help_descriptions() {
        let Some(entry) = man_entry(&man, &option) else {
            continue;
        };
        let (h, m) = (scope(&desc), scope(&entry));
        if h.is_none() && m.is_none() {
            continue;
        }
        assert_eq!(
            h, m,
            "{option}: --help says {desc:?}, the man page says {entry:?}"
        );
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} scoped options found");
}

/// The commands the binary's own `--help` lists in its Commands section.
fn help_commands() -> Vec<String> {
    let help = help(&[]);
    let section = help
        .split("\nCommands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("--help has no Commands section:\n{help}"));
    section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// SYNOPSIS shows every command the binary knows, as `program COMMAND`.
#[test]
fn synopsis_shows_every_command() {
    let commands = help_commands();
    assert!(
        commands.len() >= 5 && commands.iter().any(|c| c == "snp-validate"),
        "commands read from --help: {commands:?}"
    );
    let roff = man_source();
    let synopsis = normalise(section(&roff, "SYNOPSIS"));
    let missing: Vec<&String> = commands
        .iter()
        .filter(|c| !synopsis.contains(&format!("virt-qemu-sev-validate {c}")))
        .collect();
    assert!(
        missing.is_empty(),
        "SYNOPSIS in {} lacks {missing:?}",
        man_path().display()
    );
}

/// The environment variables the source reads: the string literal given to
/// `env::var` or `env::var_os`, in every file under src/.
fn env_vars_read() -> Vec<String> {
    fn walk(dir: &std::path::Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut names = Vec::new();
    for file in files {
        let code: String = std::fs::read_to_string(&file)
            .unwrap()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        // A name not written as a literal would escape this list.
        for call in ["env::var(", "env::var_os("] {
            let all = code.matches(call).count();
            let literal = code.matches(&format!("{call}\"")).count();
            assert_eq!(
                all,
                literal,
                "{}: {call} without a literal name",
                file.display()
            );
        }
        for call in ["env::var(\"", "env::var_os(\""] {
            for (i, _) in code.match_indices(call) {
                let rest = &code[i + call.len()..];
                let name: String = rest.chars().take_while(|c| *c != '"').collect();
                names.push(name);
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// ENVIRONMENT has an item for every variable the program reads.
#[test]
fn environment_names_every_variable_read() {
    let vars = env_vars_read();
    // Guard against a search that finds nothing: the libvirt default URI
    // (as virsh reads it) and the XDG cache directory are read.
    for v in ["LIBVIRT_DEFAULT_URI", "XDG_CACHE_HOME"] {
        assert!(
            vars.iter().any(|n| n == v),
            "{v} not found in src/: {vars:?}"
        );
    }
    let roff = man_source();
    let tags = item_tags(section(&roff, "ENVIRONMENT"));
    let missing: Vec<&String> = vars.iter().filter(|v| !tags.contains(v)).collect();
    assert!(
        missing.is_empty(),
        "ENVIRONMENT in {} has no item for {missing:?} (items: {tags:?})",
        man_path().display()
    );
}

/// FILES says where the KDS cache lives, as the code places it.
#[test]
fn files_names_the_kds_cache() {
    let code = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/source/kds.rs"),
    )
    .unwrap();
    assert!(
        code.contains(".join(\"virt-qemu-sev-validate\").join(\"kds\")"),
        "src/source/kds.rs no longer keeps the cache in .../virt-qemu-sev-validate/kds: \
         update this test and FILES"
    );
    let roff = man_source();
    let tags = item_tags(section(&roff, "FILES"));
    assert!(
        tags.iter()
            .any(|t| t == "$XDG_CACHE_HOME/virt-qemu-sev-validate/kds/"),
        "FILES has no item for the KDS cache: {tags:?}"
    );
    let body = normalise(section(&roff, "FILES"));
    assert!(body.contains("~/.cache/virt-qemu-sev-validate/kds/"));
}
