//! Errors and the exit codes they map to.
//!
//! The exit codes are the contract with libvirt's Python tool of the same
//! name: scripts branch on them, so every failure belongs to exactly one class.

use std::path::Path;

/// The classes of failure, each with the exit code the Python tool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: validated (and secrets injected if asked).
    Ok = 0,
    /// 1: the measurement did not validate.
    AttestationFailed = 1,
    /// 2: usage cannot be supported (bad or missing arguments, unreadable or malformed input).
    UnsupportedUsage = 2,
    /// 3: usage is not secure (refused without `--insecure`).
    InsecureUsage = 3,
    /// 4: the domain configuration is incorrect for measuring.
    IncorrectConfig = 4,
    /// 5: the domain is in the wrong state.
    InvalidState = 5,
    /// 6: unexpected error (a bug).
    Unexpected = 6,
}

/// Every error the tool reports. The message says what is wrong and, where
/// there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    AttestationFailed(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Insecure(String),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    State(String),
    #[error("{0}")]
    Unexpected(String),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::AttestationFailed(_) => ExitCode::AttestationFailed,
            Error::Usage(_) => ExitCode::UnsupportedUsage,
            Error::Insecure(_) => ExitCode::InsecureUsage,
            Error::Config(_) => ExitCode::IncorrectConfig,
            Error::State(_) => ExitCode::InvalidState,
            Error::Unexpected(_) => ExitCode::Unexpected,
        }
    }

    /// A file the user named could not be read: a usage error (exit 2) that
    /// names the file, the role it plays and the operating system's reason.
    pub fn io(what: &str, path: &Path, err: &std::io::Error) -> Error {
        let reason = match err.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ if err.raw_os_error() == Some(21) => "is a directory, not a file".to_string(),
            _ => err.to_string(),
        };
        Error::Usage(format!("cannot read {what} '{}': {reason}", path.display()))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
