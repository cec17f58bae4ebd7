//! The IGVM file a QEMU machine loads, asked of QEMU's object model (QOM)
//! over QMP, and the host's copy of that file.
//!
//! QEMU 10.1 and later start IGVM files with
//! `-object igvm-cfg,id=igvm0,file=PATH -machine ...,igvm-cfg=igvm0`. The x86
//! PC machines have a link property `igvm-cfg` (`hw/i386/pc.c`): `qom-get`
//! on it answers the linked object's canonical path, e.g. `/objects/igvm0`,
//! or `""` when the machine was started without one. The object's `file`
//! property (`backends/igvm-cfg.c`) is the path QEMU read. A QEMU without
//! IGVM support (Debian's packages, or any QEMU before 10.1) has no such
//! machine property and answers `qom-get` with an error.
//!
//! The host's copy is read only to be measured by the owner's side: what the
//! file holds is judged there, never trusted here.

use std::path::Path;

use serde_json::{json, Value};

use super::qmp::{Client, Reply};
use super::Result;
use crate::error::Error;

/// Largest IGVM file read from the host: 64 MiB. IGVM files carry firmware
/// (OVMF is 2 to 4 MiB, COCONUT-SVSM with OVMF about 10 MiB) and at most a
/// kernel and initrd; the whole file is held in memory to compute its launch
/// digest, and a hostile host must not make the tool read or hash without
/// end. A file over the limit is refused with its size and the limit.
pub const MAX_IGVM_FILE: u64 = crate::core::igvm::MAX_IGVM_LEN;

/// What QOM says about the IGVM file of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QomIgvm {
    /// QEMU knows IGVM files, but the machine was started without one
    /// (its `igvm-cfg` link is empty).
    NotConfigured {
        /// `igvm-cfg` objects that exist all the same (`qom-list /objects`):
        /// `-object igvm-cfg` given without `-machine ...,igvm-cfg=ID`, so
        /// the machine does not load them.
        unused_objects: Vec<String>,
    },
    /// The machine has no `igvm-cfg` property: this QEMU was built without
    /// IGVM support, predates it (QEMU 10.1), or the machine type has none.
    NotSupported {
        /// QEMU's answer to `qom-get /machine igvm-cfg`.
        qemu_says: String,
        /// `igvm-cfg` objects that exist all the same (`qom-list /objects`):
        /// created with `-object`, but never loaded by this machine.
        unused_objects: Vec<String>,
    },
    /// The machine loads this IGVM file.
    File {
        /// The `igvm-cfg` object's QOM path, e.g. `/objects/igvm0`.
        object: String,
        /// The object's `file` property: the path QEMU read on its host.
        path: String,
    },
}

/// Asks a connected QMP monitor for the machine's IGVM file.
pub fn qom_igvm_file(client: &mut Client) -> Result<QomIgvm> {
    igvm_from_qom(|command, arguments| client.execute(command, Some(arguments)))
}

/// [`qom_igvm_file`] over any QMP exchange: `execute(command, arguments)`
/// returns QEMU's answer or its error.
pub fn igvm_from_qom(mut execute: impl FnMut(&str, Value) -> Result<Reply>) -> Result<QomIgvm> {
    let link = execute(
        "qom-get",
        json!({"path": "/machine", "property": "igvm-cfg"}),
    )?;
    let object = match link {
        Ok(Value::String(s)) if s.is_empty() => {
            return Ok(QomIgvm::NotConfigured {
                unused_objects: igvm_objects(&mut execute)?,
            })
        }
        Ok(Value::String(s)) if s.starts_with('/') => s,
        Ok(other) => {
            return Err(Error::Protocol(format!(
                "QEMU answered qom-get /machine igvm-cfg with {}, not a QOM path",
                shown(&other)
            )))
        }
        Err(e) if is_missing_property(&e.desc) => {
            return Ok(QomIgvm::NotSupported {
                unused_objects: igvm_objects(&mut execute)?,
                qemu_says: e.desc,
            })
        }
        Err(e) => {
            return Err(Error::HostCall(format!(
                "QEMU refused qom-get /machine igvm-cfg: {} ({})",
                e.desc, e.class
            )))
        }
    };
    let file = execute("qom-get", json!({"path": object, "property": "file"}))?.map_err(|e| {
        Error::HostCall(format!(
            "QEMU refused qom-get {object} file: {} ({})",
            e.desc, e.class
        ))
    })?;
    match file {
        Value::String(path) if !path.is_empty() => Ok(QomIgvm::File { object, path }),
        other => Err(Error::Protocol(format!(
            "QEMU answered qom-get {object} file with {}, not the path of an IGVM file",
            shown(&other)
        ))),
    }
}

/// An unexpected answer, cut short: a monitor line may be a megabyte.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// QEMU's error for a property an object lacks:
/// `Property 'pc-q35-10.0-machine.igvm-cfg' not found` (`qom/object.c`).
fn is_missing_property(desc: &str) -> bool {
    desc.starts_with("Property '") && desc.ends_with(".igvm-cfg' not found")
}

/// The `igvm-cfg` objects under `/objects`, as QOM paths.
fn igvm_objects(execute: &mut impl FnMut(&str, Value) -> Result<Reply>) -> Result<Vec<String>> {
    let list = execute("qom-list", json!({"path": "/objects"}))?.map_err(|e| {
        Error::HostCall(format!(
            "QEMU refused qom-list /objects: {} ({})",
            e.desc, e.class
        ))
    })?;
    let entries = list
        .as_array()
        .ok_or_else(|| Error::Protocol("qom-list /objects did not return a list".into()))?;
    Ok(entries
        .iter()
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("child<igvm-cfg>"))
        .filter_map(|e| e.get("name").and_then(Value::as_str))
        .map(|name| format!("/objects/{name}"))
        .collect())
}

/// Where the host's files are read: on this machine, or over SFTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAccess {
    /// QEMU runs on this machine (a local monitor, `--insecure`).
    Local,
    /// QEMU's host, reached over ssh.
    #[cfg(feature = "ssh")]
    Sftp(super::host_files::SshTarget),
}

/// The host's copy of the IGVM file QOM named, read whole (at most
/// [`MAX_IGVM_FILE`] bytes).
pub fn read_host_igvm(path: &str, access: &HostAccess) -> Result<Vec<u8>> {
    match access {
        HostAccess::Local => read_local_igvm(path),
        #[cfg(feature = "ssh")]
        HostAccess::Sftp(target) => super::host_files::read_file(target, path, MAX_IGVM_FILE)
            .map_err(|e| {
                Error::HostCall(format!("cannot read the host's IGVM file over SFTP: {e}"))
            }),
    }
}

/// [`read_host_igvm`] on this machine: QEMU's monitor runs here. Its own
/// function so that the executable without libvirt does not link the SFTP
/// code (and OpenSSL with it).
pub fn read_local_igvm(path: &str) -> Result<Vec<u8>> {
    // QEMU opens a relative path from its own working directory, which QMP
    // does not tell: reading it from ours would read another file.
    if !path.starts_with('/') {
        return Err(Error::Config(format!(
            "QEMU was given the IGVM file as the relative path '{path}', so where it is on the host is not known: start QEMU with an absolute path (-object igvm-cfg,file=/...)"
        )));
    }
    let what = "the host's IGVM file";
    let p = Path::new(path);
    let mut bytes = crate::input::read_within(what, p, MAX_IGVM_FILE as usize, |size| {
        Error::Config(format!(
            "{what} '{path}' is {size}; IGVM files are read up to {MAX_IGVM_FILE} bytes, the owner's and the host's alike, so this one is not measured"
        ))
    })?;
    Ok(std::mem::take(&mut *bytes))
}
