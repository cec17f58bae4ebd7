//! The machine-readable result (`--json`): one document on stdout with the
//! verdict, the exit code, the reported and computed values, the digests of
//! every input, the checks that ran, the explainer's result and what was
//! injected. Never the TIK, the TEK or secret data. Field names are stable;
//! schema/result.schema.json describes them.

use serde::Serialize;

use crate::policy;

/// Schema version of the document; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// "validated", "mismatch", "requirement-failed" or "error".
    pub verdict: String,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// "offline", "libvirt" or "qmp".
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reported: Option<Reported>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub computed: Option<Computed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<policy::Decoded>,
    pub warnings: Vec<String>,
    pub inputs: Inputs,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injection: Option<Injection>,
    /// On a mismatch over qemu+ssh: the host's copies compared over SFTP.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_files: Vec<HostFile>,
}

#[derive(Debug, Default, Serialize)]
pub struct HostFile {
    pub what: String,
    pub host_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_sha256: Option<String>,
    pub owner_sha256: String,
    /// Whether the host's copy equals the owner's; null when it could not be read.
    pub same: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Reported {
    pub measurement: String,
    pub measure: String,
    pub mnonce: String,
    pub api_major: u8,
    pub api_minor: u8,
    pub build_id: u8,
    pub policy: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct Computed {
    pub launch_digest: String,
    pub measure: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Inputs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FileDigest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<FileDigest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initrd: Option<FileDigest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Cmdline>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_hashes_table: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmsa: Option<Vmsa>,
}

#[derive(Debug, Default, Serialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Cmdline {
    pub value: String,
    pub sha256: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Vmsa {
    /// "files" or "built".
    pub source: String,
    pub num_cpus: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub form: Option<String>,
    pub bsp_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ap_sha256: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Check {
    pub name: String,
    /// "passed", "failed" or "skipped".
    pub result: String,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Explanation {
    pub matched: Option<Vec<String>>,
    pub variants_tried: usize,
    pub hint: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Injection {
    /// Where the packet went: "files", "libvirt" or "qmp".
    pub destination: String,
    pub secrets: Vec<InjectedSecret>,
    pub table_bytes: usize,
    pub detail: String,
}

#[derive(Debug, Default, Serialize)]
pub struct InjectedSecret {
    pub guid: String,
    pub bytes: usize,
}

impl Report {
    pub fn check(&mut self, name: &str, passed: Option<bool>, message: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_string(),
            result: match passed {
                Some(true) => "passed",
                Some(false) => "failed",
                None => "skipped",
            }
            .to_string(),
            message: message.into(),
        });
    }
}
