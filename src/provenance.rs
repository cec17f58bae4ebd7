//! Who gave each value of an expected launch, and whether the host's
//! domain XML was checked: what both wings record, so that an owner (and
//! the JSON document) can tell their own values from the host's.

use serde::Serialize;

/// Who gave a value of the expected launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The guest owner (the command line).
    Owner,
    /// The host, accepted under `--insecure`.
    Host,
}

/// A value and who gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Who gave it.
    pub origin: Origin,
}

impl<T> Sourced<T> {
    /// A value the owner gave.
    pub fn owner(value: T) -> Sourced<T> {
        Sourced {
            value,
            origin: Origin::Owner,
        }
    }

    /// A value taken from the host (under `--insecure`).
    pub fn host(value: T) -> Sourced<T> {
        Sourced {
            value,
            origin: Origin::Host,
        }
    }
}

/// Whether the domain XML checks ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainCheck {
    /// There is no domain XML (offline, QMP).
    NotApplicable,
    /// The checks ran and the XML passed them.
    Passed,
    /// `--ignore-config`.
    Skipped,
}
