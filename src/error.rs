//! Errors and the exit codes they map to.
//!
//! Codes 0-6 are the contract with libvirt's Python tool of the same name:
//! scripts branch on them, so every failure belongs to exactly one class.
//! Codes 7-9 name failures that tool lumps into 6 ("a bug"): an incomplete
//! installation, a host that fails a call, and a QMP peer that breaks the
//! protocol. Code 10 is a guest of another generation than the owner expects
//! (SEV, SEV-ES or SEV-SNP), which that tool, knowing only SEV, never meets. [`Error::exit_code`] is the one mapping from errors to codes;
//! the man page's EXIT STATUS documents the same table.

use std::path::Path;

use crate::core::secret::SecretError;

/// The classes of failure, each with its exit code.
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
    /// 6: unexpected error: a bug in this program, and nothing else.
    Unexpected = 6,
    /// 7: the installation is incomplete (a helper executable is missing) or
    /// this machine cannot provide what the tool needs (random numbers).
    Installation = 7,
    /// 8: the host failed a call (libvirt, or a QEMU command) for a reason
    /// that is neither configuration nor state.
    HostCall = 8,
    /// 9: the QMP peer broke the protocol: not QMP, garbage, a reply cut
    /// short, or no answer in time.
    QmpProtocol = 9,
    /// 10: the host reports a guest of another generation (SEV, SEV-ES,
    /// SEV-SNP) than the owner expects; nothing was computed or released.
    WrongGeneration = 10,
}

/// Every error the tool reports. The message says what is wrong and, where
/// there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The measurement or report did not validate (exit 1).
    #[error("{0}")]
    AttestationFailed(String),
    /// Bad or missing arguments, or unreadable or malformed input (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Refused as not secure without `--insecure` (exit 3).
    #[error("{0}")]
    Insecure(String),
    /// The domain configuration is incorrect for measuring (exit 4).
    #[error("{0}")]
    Config(String),
    /// The guest is in the wrong state, e.g. not paused before its first `cont` (exit 5).
    #[error("{0}")]
    State(String),
    /// A bug in this program (exit 6).
    #[error("{0}")]
    Unexpected(String),
    /// The installation is incomplete or the machine lacks what the tool needs (exit 7).
    #[error("{0}")]
    Installation(String),
    /// The host's guest is of another generation than the owner expects.
    #[error("{0}")]
    Generation(String),
    /// The host failed a libvirt or QEMU call, for a reason that is neither
    /// configuration nor state.
    #[error("{0}")]
    HostCall(String),
    /// The QMP peer broke the protocol.
    #[error("{0}")]
    Protocol(String),
    /// The secret table or packet cannot be built, or this machine gave no
    /// random numbers for its IV.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The domain XML failed a check; the inner error carries its class.
    #[error(transparent)]
    DomainXml(Box<Error>),
}

impl Error {
    /// The exit code of this error: the one mapping, for every module's errors.
    pub fn exit_code(&self) -> ExitCode {
        use ExitCode as C;
        match self {
            Error::AttestationFailed(_) => C::AttestationFailed,
            Error::Usage(_) => C::UnsupportedUsage,
            Error::Insecure(_) => C::InsecureUsage,
            Error::Config(_) => C::IncorrectConfig,
            Error::State(_) => C::InvalidState,
            Error::Unexpected(_) => C::Unexpected,
            Error::Installation(_) => C::Installation,
            Error::Generation(_) => C::WrongGeneration,
            Error::HostCall(_) => C::HostCall,
            Error::Protocol(_) => C::QmpProtocol,
            Error::Secret(SecretError::Random(_)) => C::Installation,
            Error::Secret(_) => C::UnsupportedUsage,
            Error::DomainXml(inner) => inner.exit_code(),
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

/// A result whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_errors_keep_their_class() {
        let e = Error::DomainXml(Box::new(Error::Insecure("i".into())));
        assert_eq!(e.exit_code(), ExitCode::InsecureUsage);
        let e = Error::DomainXml(Box::new(Error::Config("c".into())));
        assert_eq!(e.exit_code(), ExitCode::IncorrectConfig);
        assert_eq!(Error::Protocol("p".into()).exit_code() as i32, 9);
        assert_eq!(Error::HostCall("h".into()).exit_code() as i32, 8);
        assert_eq!(Error::Installation("x".into()).exit_code() as i32, 7);
        assert_eq!(Error::Generation("g".into()).exit_code() as i32, 10);
    }
}
