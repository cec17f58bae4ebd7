//! The launch digest of an IGVM file as QEMU (10.1 and later) launches it in an SEV-SNP
//! guest (`snp-digest --igvm FILE`): the file read within its bound, laid
//! out by [`crate::core::igvm`], checked against the owner's vCPU count and
//! guest policy, and its findings said once. On a mismatch the explainer
//! ([`explain::igvm`]) searches from the launch as hashed, and compares it
//! with the host's copy of the file when one is given (`--host-igvm`, or
//! bytes read from the host: [`HostIgvm::from_bytes`]).

use std::fmt::Write as _;
use std::panic;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::core::hex;
use crate::core::igvm::{Finding, IgvmError, IgvmLaunch, Import, MAX_IGVM_LEN};
use crate::core::snp::Ld;
use crate::error::{Error, Result};
use crate::input;
use crate::snp::explain;

/// What an IGVM launch digest is computed from.
#[derive(Debug, Clone)]
pub struct IgvmInput {
    /// The IGVM file QEMU loads (`-object igvm-cfg,file=`).
    pub file: PathBuf,
    /// The vCPU count the guest starts with, if the owner gave it: it must
    /// be the file's VMSA count.
    pub vcpus: Option<u32>,
    /// The guest policy the owner expects the file to carry.
    pub policy: Option<u64>,
    /// Refuse the file when QEMU or KVM would not launch it as written, or
    /// would launch it otherwise than other IGVM tools measure it.
    pub check: bool,
    /// The host's copy of the file (`--host-igvm`): compared with `file`,
    /// and on a mismatch checked against the reported MEASUREMENT.
    pub host_file: Option<PathBuf>,
}

/// The host's copy of an IGVM file, laid out as QEMU launches it.
#[derive(Debug, Clone)]
pub struct HostIgvm {
    /// Its SEV-SNP launch.
    pub launch: IgvmLaunch,
    /// SHA-384 of its bytes.
    pub sha384: Ld,
    /// Where it was read from, for messages.
    pub name: String,
}

impl HostIgvm {
    /// The host's copy from its bytes (read from the host, e.g. over QMP's
    /// host or SFTP): refused beyond [`MAX_IGVM_LEN`] or when not a valid
    /// SEV-SNP IGVM file.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<HostIgvm> {
        if bytes.len() as u64 > MAX_IGVM_LEN {
            return Err(Error::Usage(format!(
                "the host's IGVM file {name} is {} bytes; this tool reads IGVM files of at most {MAX_IGVM_LEN} bytes",
                bytes.len()
            )));
        }
        let launch =
            parse(bytes).map_err(|e| Error::Usage(format!("the host's IGVM file {name}: {e}")))?;
        Ok(HostIgvm {
            launch,
            sha384: crate::core::snp::sha384(bytes),
            name: name.to_string(),
        })
    }

    /// The host's copy from a file (`--host-igvm FILE`), read within its bound.
    pub fn read(path: &Path) -> Result<HostIgvm> {
        let (launch, _, sha384) = read_as("the host's IGVM file", path)?;
        Ok(HostIgvm {
            launch,
            sha384,
            name: format!("'{}'", path.display()),
        })
    }
}

/// An IGVM launch as hashed: the digest, the file's layout, and what the
/// run says about it.
#[derive(Debug, Clone)]
pub struct ComputedIgvm {
    /// The launch digest.
    pub ld: Ld,
    /// Findings, said once per run.
    pub warnings: Vec<String>,
    /// The file's SEV-SNP launch.
    pub launch: IgvmLaunch,
    /// The file as given.
    pub path: PathBuf,
    /// Its length in bytes.
    pub file_len: u64,
    /// SHA-384 of the whole file: names the build, for the "another file" advice.
    pub file_sha384: Ld,
    /// The host's copy of the file, if given.
    pub host: Option<HostIgvm>,
}

/// Reads and parses an IGVM file, within [`MAX_IGVM_LEN`].
pub fn read(path: &Path) -> Result<(IgvmLaunch, u64, Ld)> {
    read_as("IGVM file", path)
}

fn read_as(what: &str, path: &Path) -> Result<(IgvmLaunch, u64, Ld)> {
    let bytes = input::read_within(what, path, MAX_IGVM_LEN as usize, |size| {
        Error::Usage(format!(
            "{what} '{}' is {size}; this tool reads IGVM files of at most {MAX_IGVM_LEN} bytes (COCONUT-SVSM and OpenHCL images are far smaller), so this is not one",
            path.display()
        ))
    })?;
    // The whole file's SHA-384 (which names the build) on a second core
    // while the file is parsed and its pages hashed.
    let (launch, file_sha384) = std::thread::scope(|scope| {
        let whole = scope.spawn(|| crate::core::snp::sha384(&bytes[..]));
        let launch = parse(&bytes);
        (launch, whole.join())
    });
    let launch = launch.map_err(|e| Error::Usage(format!("{what} '{}': {e}", path.display())))?;
    let file_sha384 = file_sha384
        .map_err(|_| Error::Unexpected("the thread hashing the IGVM file failed".into()))?;
    Ok((launch, bytes.len() as u64, file_sha384))
}

/// [`IgvmLaunch::parse`] without the igvm crate's panic messages: the
/// parser panics on some malformed files, which `parse` turns into
/// [`IgvmError::ParserFailed`], but the panic hook would print "panicked at"
/// first. While it runs, panics raised in the igvm crate's own source are
/// not shown; any other still reaches the hook that was there.
pub fn parse(bytes: &[u8]) -> std::result::Result<IgvmLaunch, IgvmError> {
    let shown = Arc::new(panic::take_hook());
    let previous = Arc::clone(&shown);
    panic::set_hook(Box::new(move |info| {
        if !info.location().is_some_and(|l| in_igvm_crate(l.file())) {
            shown(info);
        }
    }));
    let parsed = IgvmLaunch::parse(bytes);
    // Back to the hook that was there, wrapped once. (A panic of this
    // tool's own code unwinds past here and leaves the filter in place,
    // which still shows it: hooks cannot be set while unwinding.)
    let _ = panic::take_hook();
    panic::set_hook(Box::new(move |info| previous(info)));
    parsed
}

/// Whether a source file is the igvm crate's (`.../igvm-0.5.0/src/lib.rs`),
/// not igvm_defs' nor ours.
fn in_igvm_crate(file: &str) -> bool {
    file.split(['/', '\\']).any(|part| {
        part.strip_prefix("igvm-")
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// The launch digest of `input`.
pub fn compute(input: &IgvmInput) -> Result<ComputedIgvm> {
    let (launch, file_len, file_sha384) = read(&input.file)?;
    let vmsas = launch.vmsas.len();
    if let Some(n) = input.vcpus {
        check_vcpus(n, vmsas)?;
    }
    if let (Some(want), Some(have)) = (input.policy, launch.policy) {
        if want != have {
            return Err(Error::AttestationFailed(format!(
                "the IGVM file's guest policy is {have:#x}, not the {want:#x} given with --policy: QEMU launches the guest with the file's policy"
            )));
        }
    }
    if input.check {
        check(&launch, &input.file)?;
    }
    let host = input.host_file.as_deref().map(HostIgvm::read).transpose()?;
    let warnings = launch
        .findings
        .iter()
        .map(|f| format!("IGVM file '{}': {f}", input.file.display()))
        .collect();
    Ok(ComputedIgvm {
        ld: launch.launch_digest(),
        warnings,
        launch,
        path: input.file.clone(),
        file_len,
        file_sha384,
        host,
    })
}

/// QEMU gives each of the file's VMSAs to the vCPU of its vp_index, and KVM
/// measures a VMSA for every vCPU: the vCPUs the file has no VMSA for get
/// QEMU's reset state, which no IGVM file describes.
fn check_vcpus(n: u32, vmsas: usize) -> Result<()> {
    if n as usize == vmsas {
        return Ok(());
    }
    if (n as usize) > vmsas {
        return Err(Error::Usage(format!(
            "--vcpus {n}, but the IGVM file has {vmsas} VMSA(s): KVM measures a VMSA for every vCPU, and QEMU starts the vCPUs the file has no VMSA for from its own reset state, which is not in the file, so the launch digest of {n} vCPUs cannot be computed from it (an SVSM starts further vCPUs itself after launch, unmeasured: start the guest with -smp {vmsas} and let the guest bring up the rest, or build the file with one VMSA per vCPU)"
        )));
    }
    Err(Error::Usage(format!(
        "--vcpus {n}, but the IGVM file has {vmsas} VMSAs: QEMU cannot give a VMSA to a vCPU the guest does not have, and refuses the launch; give --vcpus {vmsas}"
    )))
}

/// `--check`: what QEMU or KVM refuses, or measures otherwise than the file
/// describes, is an error.
fn check(launch: &IgvmLaunch, path: &Path) -> Result<()> {
    if launch.findings.is_empty() {
        return Ok(());
    }
    let mut s = format!(
        "IGVM file '{}' fails the QEMU/KVM launch checks:",
        path.display()
    );
    for f in &launch.findings {
        let _ = write!(s, "\n  - {f}");
    }
    if launch.findings.iter().any(Finding::refused) {
        Err(Error::Usage(s))
    } else {
        Err(Error::AttestationFailed(s))
    }
}

impl ComputedIgvm {
    /// What went into the digest (`--verbose`): the file, its platform and
    /// policy, the pages by kind, the VMSAs and the ID block.
    pub fn describe(&self) -> String {
        let l = &self.launch;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "IGVM file: {} ({} bytes, SHA-384 {}), {} directives, SEV-SNP compatibility mask {:#x}",
            self.path.display(),
            self.file_len,
            hex(&self.file_sha384),
            l.directive_count,
            l.compatibility_mask
        );
        match l.policy {
            Some(p) => _ = writeln!(s, "guest policy: {p:#x}"),
            None => _ = writeln!(s, "guest policy: none"),
        }
        for import in [
            Import::Data,
            Import::Zero,
            Import::Unmeasured,
            Import::Secrets,
            Import::Cpuid,
        ] {
            let n = l.pages.iter().filter(|p| p.import == import).count();
            let _ = writeln!(s, "{}s: {n}", import.name());
        }
        let params = l
            .pages
            .iter()
            .filter(|p| matches!(p.import, Import::Parameter(_)))
            .count();
        let _ = writeln!(s, "parameter area pages: {params}");
        for v in &l.vmsas {
            let _ = writeln!(
                s,
                "VMSA: vCPU {} (directive {}), RIP {:#x}, SEV_FEATURES {:#x}",
                v.vp_index,
                v.directive,
                v.rip(),
                v.sev_features()
            );
        }
        if let Some(b) = &l.id_block {
            let verdict = if b.ld == self.ld {
                "equals the launch digest"
            } else {
                "DIFFERS from the launch digest"
            };
            let _ = writeln!(s, "ID block: LD {} ({verdict})", hex(&b.ld));
        }
        s
    }

    /// Which change of the file's launch gives `reported`, comparing it
    /// with the host's copy of the file when one was given.
    pub fn explain(&self, reported: &Ld) -> Result<explain::SnpExplanation> {
        self.explain_with_host(reported, self.host.as_ref())
    }

    /// As [`ComputedIgvm::explain`], with the host's copy of the file
    /// given here (the QMP path reads it from the host).
    pub fn explain_with_host(
        &self,
        reported: &Ld,
        host: Option<&HostIgvm>,
    ) -> Result<explain::SnpExplanation> {
        let owner = explain::igvm::IgvmFile {
            launch: &self.launch,
            sha384: self.file_sha384,
        };
        let host = host.map(|h| explain::igvm::IgvmFile {
            launch: &h.launch,
            sha384: h.sha384,
        });
        explain::igvm::explain(owner, reported, host, explain::igvm::IGVM_SEARCH_BUDGET)
            .map_err(|e| Error::Unexpected(e.to_string()))
    }

    /// The host's copy of the file compared with the owner's, in words
    /// (`--host-igvm` without `--measurement`); `None` without one.
    pub fn host_comparison(&self) -> Option<String> {
        let h = self.host.as_ref()?;
        let host_ld = h.launch.launch_digest();
        let diffs = explain::igvm::differences(&self.launch, &h.launch);
        let mut s = format!(
            "the host's IGVM file {} (SHA-384 {}) has launch digest {}, {} that of '{}'",
            h.name,
            hex(&h.sha384),
            hex(&host_ld),
            if host_ld == self.ld {
                "the same as"
            } else {
                "not"
            },
            self.path.display()
        );
        if diffs.is_empty() {
            s.push_str("; the two launches are the same");
        }
        for d in &diffs {
            let _ = write!(s, "\n  - {}", d.host_did());
        }
        Some(s)
    }
}
