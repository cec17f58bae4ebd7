//! The offline source: reported values given on the command line, secrets
//! written to files for the owner to hand to the host.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::Result;
use super::{merge_reported, Given, HostFacts, HostReport, HostValues, LaunchSource};
use crate::core::secret::SecretPacket;
use crate::error::Error;

/// The offline source: nothing to connect to.
pub struct Offline {
    /// Where to write the base64 header and payload.
    pub secret_files: Option<(PathBuf, PathBuf)>,
}

impl LaunchSource for Offline {
    /// Every value comes from the command line; there is no host to ask.
    fn host_report(&mut self, given: &Given) -> Result<HostReport> {
        let names = [
            "--measurement",
            "--api-major",
            "--api-minor",
            "--build-id",
            "--policy",
        ];
        let host = HostValues {
            names,
            ..HostValues::default()
        };
        let (launch, _) = merge_reported("the command line", &host, given)?;
        Ok(HostReport {
            launch,
            facts: HostFacts::default(),
        })
    }

    fn inject(&mut self, packet: &SecretPacket) -> Result<()> {
        let (header_path, payload_path) = self.secret_files.as_ref().ok_or_else(|| {
            Error::Usage(
                "--secret-header and --secret-payload are needed to write the secret offline"
                    .into(),
            )
        })?;
        let b64 = base64::engine::general_purpose::STANDARD;
        // Stage both files first so that a failure leaves neither half behind.
        let header = stage(header_path, b64.encode(packet.header).as_bytes())?;
        let payload = stage(payload_path, b64.encode(&packet.payload).as_bytes())?;
        commit(header, header_path)?;
        commit(payload, payload_path)?;
        Ok(())
    }

    fn describe_injection(&self) -> String {
        match &self.secret_files {
            Some((h, p)) => format!(
                "header written to '{}', payload to '{}'",
                h.display(),
                p.display()
            ),
            None => String::new(),
        }
    }
}

/// The directory an output file goes to.
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The system's reason alone: tempfile's errors name the temporary file,
/// which the user never gave and would look for in vain.
fn reason(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.kind().to_string(),
    }
}

fn cannot_write(path: &Path, e: &std::io::Error) -> Error {
    Error::Usage(format!(
        "cannot write '{}' (in the directory '{}'): {}",
        path.display(),
        dir_of(path).display(),
        reason(e)
    ))
}

/// Checks, before anything is validated, that `path` can be written the way
/// [`Offline::inject`] writes it: a temporary file created (and removed
/// again) in its directory. Otherwise a run would say "OK: Looks good to
/// me" and only then fail.
pub fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "cannot write '{}': it is a directory; give a file path",
            path.display()
        )));
    }
    tempfile::Builder::new()
        .prefix(".sev-secret-")
        .tempfile_in(dir_of(path))
        .map(drop)
        .map_err(|e| cannot_write(path, &e))
}

/// Writes `data` to a new temporary file (mode 0600) beside `path`.
fn stage(path: &Path, data: &[u8]) -> Result<tempfile::NamedTempFile> {
    check_writable(path)?;
    let fail = |e: std::io::Error| cannot_write(path, &e);
    // tempfile creates the file with mode 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".sev-secret-")
        .tempfile_in(dir_of(path))
        .map_err(fail)?;
    tmp.write_all(data).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    Ok(tmp)
}

/// Renames the staged file over `path` in one step.
fn commit(tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    tmp.persist(path)
        .map_err(|e| cannot_write(path, &e.error))?;
    Ok(())
}
