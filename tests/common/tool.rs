//! Running the tool (or another program) in a test, the one way every suite does:
//! `Tool::new().args([...]).json().run()` gives an [`Outcome`] (exit code, stdout, stderr as
//! text), and `.expect_code(n)` checks the code and that nothing panicked, with the command
//! line and both outputs in the message. [`Args`] writes the parts of a command line that
//! every suite repeats (platform and policy, keys, the EPYC-Milan signature).

use std::ffi::{OsStr, OsString};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `--cpu-family 25 --cpu-model 1 --cpu-stepping 1`: EPYC-Milan (signature 0xA00F11).
pub const MILAN: [&str; 6] = [
    "--cpu-family",
    "25",
    "--cpu-model",
    "1",
    "--cpu-stepping",
    "1",
];

/// Our main executable, as Cargo built it for the tests.
pub const OURS: &str = env!("CARGO_BIN_EXE_virt-qemu-sev-validate");

/// A command line to run: our tool unless [`Tool::program`] names another program.
#[derive(Clone, Debug)]
pub struct Tool {
    program: PathBuf,
    args: Vec<OsString>,
    env_remove: Vec<OsString>,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The exit code; -1 when a signal ended the program.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Default for Tool {
    fn default() -> Self {
        Tool::new()
    }
}

impl Tool {
    /// Our tool, virt-qemu-sev-validate.
    pub fn new() -> Tool {
        Tool::program(OURS)
    }

    /// Another program (sev-snp-measure, the Python tool, a copy of ours).
    pub fn program(program: impl AsRef<Path>) -> Tool {
        Tool {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            env_remove: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Tool {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Tool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// `--json`.
    pub fn json(self) -> Tool {
        self.arg("--json")
    }

    /// Runs without the variable `name` in the environment.
    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Tool {
        self.env_remove.push(name.as_ref().to_os_string());
        self
    }

    /// The program and its arguments, space-separated.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs it, stdin closed, and waits for it.
    #[track_caller]
    pub fn run(self) -> Outcome {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).stdin(Stdio::null());
        for name in &self.env_remove {
            cmd.env_remove(name);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program.display()));
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            command: self.command_line(),
        }
    }
}

impl Outcome {
    /// Checks that the program did not panic and exited with `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Outcome {
        assert!(
            !self.stderr.contains("panicked"),
            "panic for {}: {}",
            self.command,
            self.stderr
        );
        assert_eq!(
            self.code, code,
            "exit code for {}\nstdout: {}\nstderr: {}",
            self.command, self.stdout, self.stderr
        );
        self
    }

    /// stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not JSON ({e}): {}{}",
                self.command, self.stdout, self.stderr
            )
        })
    }

    /// (exit code, stdout, stderr).
    pub fn parts(self) -> (i32, String, String) {
        (self.code, self.stdout, self.stderr)
    }
}

/// An argument list, built in the order the options are given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args(Vec<String>);

impl Args {
    pub fn new() -> Args {
        Args::default()
    }

    /// The given arguments, in order.
    pub fn of(items: &[&str]) -> Args {
        Args(items.iter().map(|s| s.to_string()).collect())
    }

    pub fn arg(mut self, arg: impl Display) -> Args {
        self.0.push(arg.to_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Args
    where
        I: IntoIterator<Item = S>,
        S: Display,
    {
        self.0.extend(args.into_iter().map(|a| a.to_string()));
        self
    }

    /// `name value`.
    pub fn opt(self, name: &str, value: impl Display) -> Args {
        self.arg(name).arg(value)
    }

    /// `--api-major A --api-minor B --build-id C --policy P`: the firmware's version and build
    /// and the guest's policy, as the platform reports them (and sev_sp.py takes them).
    pub fn platform(self, major: u32, minor: u32, build: u32, policy: impl Display) -> Args {
        self.opt("--api-major", major)
            .opt("--api-minor", minor)
            .opt("--build-id", build)
            .opt("--policy", policy)
    }

    /// `--tik TIK --tek TEK`.
    pub fn keys(self, tik: impl Display, tek: impl Display) -> Args {
        self.opt("--tik", tik).opt("--tek", tek)
    }

    /// `--cpu-family 25 --cpu-model 1 --cpu-stepping 1`: EPYC-Milan (signature 0xA00F11).
    pub fn milan(self) -> Args {
        self.args(MILAN)
    }

    pub fn vec(self) -> Vec<String> {
        self.0
    }
}

impl IntoIterator for Args {
    type Item = String;
    type IntoIter = std::vec::IntoIter<String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl From<Args> for Vec<String> {
    fn from(a: Args) -> Vec<String> {
        a.0
    }
}
