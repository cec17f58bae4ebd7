//! The files of the key release: read bounded, written whole or not at
//! all, and the guest's key directory, which only its user may read.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::core::snp_secret::KeyPair;
use crate::error::{Error, Result};
use crate::input;

/// The private key's file name in the key directory.
pub const KEY_FILE: &str = "snp-key-release.key";

/// Reads at most `limit` bytes of `path`, refusing a longer file.
pub fn read_bounded(what: &str, path: &Path, limit: usize) -> Result<Zeroizing<Vec<u8>>> {
    input::read_within(what, path, limit, |size| {
        Error::Usage(format!(
            "{what} '{}' is {size}, more than {limit} bytes; it is not one this tool wrote",
            path.display()
        ))
    })
}

fn cannot_write(path: &Path, e: &std::io::Error) -> Error {
    Error::Usage(format!(
        "cannot write '{}': {e}; give a path in a directory you can write",
        path.display()
    ))
}

/// Checks, before any work, that `path` can be written as `option` asks:
/// not a directory, in a directory that exists.
pub fn check_output(path: &Path, option: &str) -> Result<()> {
    let shown = path.display();
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "{option} '{shown}' is a directory; give a file path"
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{option} '{shown}': the directory '{}' does not exist; create it or give another path",
            dir.display()
        )));
    }
    Ok(())
}

/// Writes `data` to `path` atomically: a temporary file in the same
/// directory (created 0600), synced, given `mode`, renamed over `path`.
/// On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "cannot write '{}': it is a directory; give a file path",
            path.display()
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fail = |e: std::io::Error| cannot_write(path, &e);
    let mut tmp = tempfile::Builder::new()
        .prefix(".snp-key-release-")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(data).map_err(fail)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Checks that `dir` is a directory of this user that no other user can
/// read or write (mode without group write and without any bit for others).
pub fn check_key_dir(dir: &Path) -> Result<()> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Usage(format!(
            "--key-dir '{shown}' does not exist; make it on tmpfs, only yours: install -d -m 0700 '{shown}'"
        )),
        _ => Error::io("key directory", dir, &e),
    })?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!(
            "--key-dir '{shown}' is not a directory; give a directory on tmpfs, e.g. one made with: install -d -m 0700 /run/snp-key"
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(Error::Insecure(format!(
            "--key-dir '{shown}' belongs to user {}, not to you (user {me}): another user could read or replace the private key; use a directory of your own with mode 0700",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o027 != 0 {
        return Err(Error::Insecure(format!(
            "--key-dir '{shown}' has mode {mode:04o}: others can read or write it (or its group can write it); chmod 0700 '{shown}'"
        )));
    }
    Ok(())
}

/// The private key file in `dir`.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// Stores `kp` in `dir` as PKCS#8 PEM, mode 0600, replacing any older key.
pub fn store_key(dir: &Path, kp: &KeyPair) -> Result<PathBuf> {
    check_key_dir(dir)?;
    let pem = kp
        .to_pkcs8_pem()
        .map_err(|e| Error::Unexpected(e.to_string()))?;
    let path = key_path(dir);
    write_atomic(&path, pem.as_bytes(), 0o600)?;
    Ok(path)
}

/// Reads the private key of a key file (PKCS#8 PEM).
pub fn load_key(path: &Path) -> Result<KeyPair> {
    let b = read_bounded("private key", path, 16 * 1024)?;
    let pem = std::str::from_utf8(&b).map_err(|_| {
        Error::Usage(format!(
            "private key '{}' is not PEM text; give the key snp-request stored",
            path.display()
        ))
    })?;
    KeyPair::from_pkcs8_pem(pem)
        .map_err(|e| Error::Usage(format!("private key '{}': {e}", path.display())))
}

/// Reads the key stored in `dir` by an earlier `snp-request`.
pub fn load_key_from_dir(dir: &Path) -> Result<KeyPair> {
    check_key_dir(dir)?;
    let path = key_path(dir);
    if !path.exists() {
        return Err(Error::Usage(format!(
            "no key in '{}': run snp-request --print-report-data --key-dir '{}' first (it makes the key pair the report must bind)",
            dir.display(),
            dir.display()
        )));
    }
    load_key(&path)
}
