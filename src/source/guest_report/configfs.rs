//! A report through configfs-tsm: an entry of our own under the report
//! directory, its attributes written and read as the kernel's ABI document
//! (Documentation/ABI/testing/configfs-tsm) describes, removed afterwards.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{kernel_error, read_bounded, GuestReport, GuestReportOptions, ReportVia};
use super::{MAX_BLOB_LEN, MAX_VMPL};
use crate::error::{Error, Result};

/// The `provider` of SEV-SNP reports.
const PROVIDER: &str = "sev_guest";
/// The most bytes read from a text attribute (`provider`, `generation`,
/// `privlevel_floor`), each a word and a newline.
const TEXT_LIMIT: usize = 64;

/// An entry of our own in the report directory, removed when dropped, so
/// that it goes on every path, errors included.
struct Entry {
    path: PathBuf,
}

impl Drop for Entry {
    fn drop(&mut self) {
        // Nothing to do about a failure here: the entry then stays until
        // the guest reboots, holding a few KiB of kernel memory.
        let _ = fs::remove_dir(&self.path);
    }
}

/// A report through configfs-tsm; `None` when `opts.tsm_root` does not
/// exist (the caller then tries `/dev/sev-guest`).
pub(super) fn request(
    report_data: &[u8; 64],
    opts: &GuestReportOptions,
) -> Result<Option<GuestReport>> {
    let root = &opts.tsm_root;
    match fs::metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(kernel_error(
                "open",
                "the configfs-tsm report directory",
                root,
                &e,
            ))
        }
        Ok(m) if !m.is_dir() => {
            return Err(Error::Usage(format!(
                "'{}' is not a directory, so not configfs-tsm's report directory \
                 (normally {})",
                root.display(),
                super::DEFAULT_TSM_ROOT
            )))
        }
        Ok(_) => {}
    }
    let entry = Entry::create(root)?;
    // `entry` is dropped, and the directory removed, whatever this returns.
    entry.run(report_data, opts.vmpl).map(Some)
}

/// A name no other process uses: our process ID and 64 random bits.
fn unique_name() -> String {
    let mut r = [0u8; 8];
    if getrandom::getrandom(&mut r).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        r = (t as u64).to_le_bytes();
    }
    format!("sev-validate-{}-{}", std::process::id(), hex::encode(r))
}

impl Entry {
    /// `mkdir` of a fresh entry under `root`.
    fn create(root: &Path) -> Result<Entry> {
        for _ in 0..8 {
            let path = root.join(unique_name());
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Entry { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                    return Err(Error::Installation(format!(
                        "configfs-tsm ('{}') has no report provider: the sev-guest module is \
                         not loaded ('modprobe sev-guest'), or this is not an SEV-SNP guest \
                         ('dmesg | grep -i sev')",
                        root.display()
                    )))
                }
                Err(e) => return Err(kernel_error("create", "a configfs-tsm entry", &path, &e)),
            }
        }
        Err(Error::HostCall(format!(
            "could not create a configfs-tsm entry under '{}': every name tried exists already",
            root.display()
        )))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A text attribute, trimmed.
    fn read_text(&self, name: &str) -> Result<String> {
        let what = format!("configfs-tsm's '{name}'");
        let b = read_bounded(&self.file(name), TEXT_LIMIT, &what)?;
        Ok(String::from_utf8_lossy(&b).trim().to_string())
    }

    /// A numeric text attribute (`generation`, `privlevel_floor`).
    fn read_number(&self, name: &str) -> Result<u64> {
        let text = self.read_text(name)?;
        text.parse().map_err(|_| {
            Error::HostCall(format!(
                "configfs-tsm's '{}' reads '{text}', not a number; is '{}' configfs-tsm?",
                self.file(name).display(),
                self.path.display()
            ))
        })
    }

    /// Writes an attribute in one write; configfs applies binary attributes
    /// (`inblob`) when the file is closed, which `generation` then shows.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.file(name);
        let what = format!("configfs-tsm's '{name}'");
        let mut f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| kernel_error("open", &what, &path, &e))?;
        f.write_all(bytes)
            .map_err(|e| kernel_error("write", &what, &path, &e))
    }

    /// The report: every step of the module documentation, in order.
    fn run(&self, report_data: &[u8; 64], vmpl: u32) -> Result<GuestReport> {
        let provider = self.read_text("provider")?;
        if provider != PROVIDER {
            return Err(Error::Installation(format!(
                "configfs-tsm's provider is '{provider}', not '{PROVIDER}': this guest's \
                 reports are not SEV-SNP reports (is this an SEV-SNP guest?)"
            )));
        }
        let has_privlevel = self.file("privlevel").exists();
        if has_privlevel {
            self.check_floor(vmpl)?;
        } else if vmpl != 0 {
            return Err(Error::Usage(format!(
                "this kernel's configfs-tsm has no 'privlevel', so it cannot ask for a report \
                 at VMPL {vmpl}; ask for VMPL 0"
            )));
        }
        let before = self.read_number("generation")?;
        let mut writes = 0u64;
        if has_privlevel {
            self.write("privlevel", format!("{vmpl}\n").as_bytes())?;
            writes += 1;
        }
        self.write("inblob", report_data)?;
        writes += 1;
        let expected = before.saturating_add(writes);
        self.check_generation(expected, writes)?;
        let report = read_bounded(
            &self.file("outblob"),
            MAX_BLOB_LEN,
            "configfs-tsm's report ('outblob')",
        )?;
        let aux = self.file("auxblob");
        let certs = if aux.exists() {
            read_bounded(
                &aux,
                MAX_BLOB_LEN,
                "configfs-tsm's certificates ('auxblob')",
            )?
        } else {
            Vec::new()
        };
        self.check_generation(expected, writes)?;
        Ok(GuestReport {
            report,
            cert_table: (!certs.is_empty()).then_some(certs),
            via: ReportVia::ConfigfsTsm,
        })
    }

    /// The kernel refuses a `privlevel` below `privlevel_floor` (the VMPL it
    /// runs at); say so before writing.
    fn check_floor(&self, vmpl: u32) -> Result<()> {
        if !self.file("privlevel_floor").exists() {
            return Ok(());
        }
        let floor = self.read_number("privlevel_floor")?;
        if u64::from(vmpl) < floor {
            return Err(Error::Usage(format!(
                "this guest's kernel runs at VMPL {floor} and can ask only for reports at VMPL \
                 {floor} to {MAX_VMPL} (configfs-tsm's privlevel_floor), not VMPL {vmpl}"
            )));
        }
        Ok(())
    }

    /// `generation` must count exactly our writes since we first read it.
    fn check_generation(&self, expected: u64, writes: u64) -> Result<()> {
        let now = self.read_number("generation")?;
        if now == expected {
            return Ok(());
        }
        Err(Error::HostCall(format!(
            "another process wrote to the configfs-tsm entry '{}' while the report was made \
             (its generation is {now}; our {writes} writes make it {expected}), so the report \
             may carry that process's values and is refused; run again, and make sure no \
             other program writes to this entry",
            self.path.display()
        )))
    }
}
