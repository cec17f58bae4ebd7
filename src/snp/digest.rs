//! The expected SEV-SNP launch digest (the attestation report's
//! MEASUREMENT) of a launch, from typed inputs: the firmware is measured
//! page by page as QEMU and KVM add it, then the pages its SEV metadata
//! lists, the kernel hashes, and one VMSA page per vCPU. `snp-digest`, the
//! `-- OPTIONS` of `snp-validate` and the main command's SNP runs all call
//! [`compute`]; the hashed state it keeps ([`ComputedLaunch`]) is what the
//! explainer searches from.

use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::core::hex;
use crate::core::kernel_hashes::KernelHashes;
use crate::core::ovmf::FOOTER_TAIL_LEN;
use crate::core::snp::{self, GuestContext, Ld, SnpError, SnpFirmware, SnpLaunch};
use crate::core::vmsa::{Rdx, VmmType, VmsaConfig, VmsaForm};
use crate::error::{Error, Result};
use crate::input;
use crate::input::{SeekableInput, Size, MAX_FIRMWARE_LEN};
use crate::snp::explain;
use crate::snp::igvm;
use crate::snp::svsm::SvsmComputed;

/// What a launch digest is computed from.
#[derive(Debug, Clone)]
pub struct DigestInput {
    /// The OVMF image the guest boots; its footer table and SEV metadata are always read.
    pub ovmf: PathBuf,
    /// The launch digest after the image's pages (`snp-ovmf-hash`): the pages are then not hashed again.
    pub ovmf_hash: Option<Ld>,
    /// The number of vCPUs: one VMSA each.
    pub vcpus: u32,
    /// CPUID(1).EAX of every vCPU, if the owner gave it.
    pub vcpu_signature: Option<u32>,
    /// The VMM that starts the guest (QEMU, or sev-snp-measure's EC2 and GCE models).
    pub vmm: VmmType,
    /// The VMSA's FPU fields (KVM_SEV_INIT2 or legacy).
    pub vmsa_form: VmsaForm,
    /// SEV_FEATURES of every VMSA.
    pub guest_features: u64,
    /// A kernel booted with `-kernel` (kernel-hashes=on).
    pub kernel: Option<PathBuf>,
    /// Its initrd.
    pub initrd: Option<PathBuf>,
    /// Its command line (`-append`).
    pub append: Option<String>,
}

fn firmware_error(path: &Path, e: SnpError) -> Error {
    Error::Usage(format!("firmware '{}': {e}", path.display()))
}

/// An opened firmware image: its length and its tail.
pub(super) struct FirmwareFile {
    what: &'static str,
    path: PathBuf,
    file: SeekableInput,
    pub(super) len: u64,
}

impl FirmwareFile {
    /// A pipe, FIFO or /proc file is read into memory (its length must be
    /// known before its pages are hashed, and its tail read first), bounded by
    /// the firmware size limit; a regular file is streamed.
    pub(super) fn open(path: &Path) -> Result<FirmwareFile> {
        let too_large = |size: Size| {
            Error::Usage(format!(
                "firmware '{}' is {size}; no OVMF image is larger than {MAX_FIRMWARE_LEN} bytes, so this is not a firmware image",
                path.display()
            ))
        };
        let fw = FirmwareFile::open_as("firmware", path, too_large)?;
        snp::firmware_gpa(fw.len).map_err(|e| firmware_error(path, e))?;
        Ok(fw)
    }

    /// Opens an image named `what` in errors, as [`FirmwareFile::open`]
    /// does, with the size limit of a firmware image, without checking its
    /// size further.
    pub(super) fn open_as(
        what: &'static str,
        path: &Path,
        too_large: impl Fn(Size) -> Error,
    ) -> Result<FirmwareFile> {
        let (file, len) = input::open_seekable(what, path, MAX_FIRMWARE_LEN, too_large)?;
        Ok(FirmwareFile {
            what,
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    fn io_error(&self, e: &std::io::Error) -> Error {
        Error::io(self.what, &self.path, e)
    }

    /// The last `n` bytes of the image (all of it if shorter).
    pub(super) fn read_tail(&mut self, n: u64) -> Result<Vec<u8>> {
        let n = n.min(self.len);
        let mut tail = Vec::with_capacity(n as usize);
        self.file
            .seek(SeekFrom::Start(self.len - n))
            .map_err(|e| self.io_error(&e))?;
        (&mut self.file)
            .take(n)
            .read_to_end(&mut tail)
            .map_err(|e| self.io_error(&e))?;
        if tail.len() as u64 != n {
            return Err(Error::Usage(format!(
                "{} '{}' changed while it was read",
                self.what,
                self.path.display()
            )));
        }
        Ok(tail)
    }

    /// The footer table and SEV metadata.
    fn snp_info(&mut self) -> Result<SnpFirmware> {
        let tail = self.read_tail(FOOTER_TAIL_LEN as u64)?;
        match SnpFirmware::parse(&tail) {
            Err(SnpError::MetadataBeyondTail { offset, .. }) if u64::from(offset) <= self.len => {
                let tail = self.read_tail(u64::from(offset))?;
                SnpFirmware::parse(&tail).map_err(|e| firmware_error(&self.path, e))
            }
            Err(SnpError::MetadataBeyondTail { offset, .. }) => Err(Error::Usage(format!(
                "firmware '{}': the SEV metadata offset {offset:#x} lies before the start of the {}-byte image: the footer table is corrupt",
                self.path.display(),
                self.len
            ))),
            other => other.map_err(|e| firmware_error(&self.path, e)),
        }
    }

    /// The launch digest after the image's pages, streamed from the file and
    /// hashed on `threads` threads.
    pub(super) fn ovmf_hash(&mut self, threads: usize) -> Result<Ld> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.io_error(&e))?;
        let len = self.len;
        let mut gctx = GuestContext::new();
        snp::measure_firmware_on(&mut gctx, (&mut self.file).take(len), len, threads).map_err(
            |e| match e {
                SnpError::Io(io) => self.io_error(&io),
                e => firmware_error(&self.path, e),
            },
        )?;
        Ok(gctx.ld())
    }

    /// The SHA-384 of each page of the image, streamed from the file and
    /// hashed on `threads` threads.
    pub(super) fn page_digests(&mut self, threads: usize) -> Result<Vec<Ld>> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.io_error(&e))?;
        let len = self.len;
        snp::page_digests((&mut self.file).take(len), len, threads).map_err(|e| match e {
            SnpError::Io(io) => self.io_error(&io),
            e => Error::Usage(format!("{} '{}': {e}", self.what, self.path.display())),
        })
    }
}

/// The launch digest of `snp-digest`'s inputs, with the inputs as hashed:
/// what the explainer searches from when a report's MEASUREMENT differs,
/// so no file is read or hashed twice.
pub struct ComputedLaunch {
    /// The launch digest (the expected MEASUREMENT).
    pub ld: Ld,
    /// What the VMM ignores of the inputs given: said once per run.
    pub warnings: Vec<String>,
    form: LaunchForm,
}

/// The launch forms, each with its inputs as hashed.
enum LaunchForm {
    /// OVMF (with its SEV metadata), measured direct boot, VMSAs built here.
    Ovmf(Box<OvmfLaunch>),
    /// An IGVM file (QEMU `-object igvm-cfg`).
    Igvm(Box<igvm::ComputedIgvm>),
    /// OVMF behind a COCONUT-SVSM (`--svsm`, sev-snp-measure's `snp:svsm`).
    Svsm(Box<SvsmComputed>),
}

/// An OVMF launch as hashed.
struct OvmfLaunch {
    firmware_len: u64,
    ovmf_hash_given: bool,
    ovmf: PathBuf,
    ovmf_hash: Ld,
    firmware: SnpFirmware,
    vcpus: u32,
    vmm: VmmType,
    vmsa: VmsaConfig,
    signature_given: bool,
    kernel: Option<KernelHashes>,
    append: Option<String>,
    initrd: bool,
}

impl OvmfLaunch {
    /// The owner's launch in the explainer's terms.
    fn owner(&self) -> explain::OwnerLaunch<'_> {
        explain::OwnerLaunch {
            ovmf_hash: self.ovmf_hash,
            firmware: &self.firmware,
            vcpus: self.vcpus,
            vmm: self.vmm,
            vmsa: self.vmsa,
            signature_given: self.signature_given,
            kernel: self.kernel.map(|hashes| explain::DirectBoot {
                hashes,
                cmdline: self.append.as_deref(),
                initrd: self.initrd,
            }),
        }
    }
}

impl ComputedLaunch {
    /// The launch of an IGVM file.
    pub fn from_igvm(c: igvm::ComputedIgvm) -> ComputedLaunch {
        ComputedLaunch {
            ld: c.ld,
            warnings: c.warnings.clone(),
            form: LaunchForm::Igvm(Box::new(c)),
        }
    }

    /// An OVMF + SVSM launch ([`crate::snp::svsm`]).
    pub(super) fn svsm(ld: Ld, computed: SvsmComputed) -> ComputedLaunch {
        ComputedLaunch {
            ld,
            warnings: Vec::new(),
            form: LaunchForm::Svsm(Box::new(computed)),
        }
    }

    /// The IGVM launch, when it is one.
    pub fn igvm(&self) -> Option<&igvm::ComputedIgvm> {
        match &self.form {
            LaunchForm::Igvm(c) => Some(c),
            LaunchForm::Ovmf(_) | LaunchForm::Svsm(_) => None,
        }
    }

    /// As [`ComputedLaunch::explain`] for an IGVM launch, with the host's
    /// copy of the file as read from the host (`host_file` names it in
    /// messages): the two launches are compared and each difference named.
    pub fn explain_with_host_igvm(
        &self,
        reported: &Ld,
        host_file: &str,
        bytes: &[u8],
    ) -> Result<explain::SnpExplanation> {
        let LaunchForm::Igvm(c) = &self.form else {
            return Err(Error::Usage(
                "the host's IGVM file can only be compared with an IGVM launch (--igvm)".into(),
            ));
        };
        let host = igvm::HostIgvm::from_bytes(host_file, bytes)?;
        c.explain_with_host(reported, Some(&host))
    }

    /// Which input the host changed to launch with `reported`: the
    /// explainer's search from the hashed state.
    pub fn explain(&self, reported: &Ld) -> Result<explain::SnpExplanation> {
        let x = match &self.form {
            LaunchForm::Ovmf(o) => explain::explain(&o.owner(), reported)
                .map_err(|e| firmware_error_text(&o.ovmf, e))?,
            LaunchForm::Igvm(c) => c.explain(reported)?,
            LaunchForm::Svsm(s) => s.explain(reported)?,
        };
        if x.computed != self.ld {
            return Err(Error::Unexpected(
                "the explainer's launch digest differs from snp-digest's (a bug in virt-qemu-sev-validate; please report it)".into(),
            ));
        }
        Ok(x)
    }
}

/// The launch digest of `input`, with the inputs as hashed.
pub fn compute(input: &DigestInput) -> Result<ComputedLaunch> {
    let (cpu_signature, warnings) = check_input(input)?;
    let mut fw = FirmwareFile::open(&input.ovmf)?;
    let info = fw.snp_info()?;
    let vmsa = VmsaConfig {
        form: input.vmsa_form,
        cpu_signature,
        sev_features: input.guest_features,
    };
    // Refuse what QEMU refuses before hashing anything.
    let placeholder = KernelHashes {
        kernel: [0; 32],
        initrd: [0; 32],
        cmdline: [0; 32],
    };
    let probe = SnpLaunch {
        vcpus: input.vcpus,
        vmm: input.vmm.profile(),
        vmsa,
        kernel: input.kernel.as_ref().map(|_| &placeholder),
    };
    snp::check_launch(&info, &probe).map_err(|e| match e {
        SnpError::Vcpus(_) => Error::Usage(e.to_string()),
        e => firmware_error(&input.ovmf, e),
    })?;
    let (ovmf_ld, kernel) = hash_inputs(input, &mut fw, input.ovmf_hash)?;
    let launch = SnpLaunch {
        kernel: kernel.as_ref(),
        ..probe
    };
    let ld =
        snp::launch_digest(ovmf_ld, &info, &launch).map_err(|e| firmware_error(&input.ovmf, e))?;
    Ok(ComputedLaunch {
        ld,
        warnings,
        form: LaunchForm::Ovmf(Box::new(OvmfLaunch {
            firmware_len: fw.len,
            ovmf_hash_given: input.ovmf_hash.is_some(),
            ovmf: input.ovmf.clone(),
            ovmf_hash: ovmf_ld,
            firmware: info,
            vcpus: input.vcpus,
            vmm: input.vmm,
            vmsa,
            signature_given: input.vcpu_signature.is_some(),
            kernel,
            append: input.append.clone(),
            initrd: input.initrd.is_some(),
        })),
    })
}

/// The vCPU signature the VMSA gets, after refusing the inputs the VMM
/// would refuse; with a warning for each input it ignores.
fn check_input(a: &DigestInput) -> Result<(u32, Vec<String>)> {
    let profile = a.vmm.profile();
    let mut warnings = Vec::new();
    let cpu_signature = match (profile.rdx, a.vcpu_signature) {
        (Rdx::CpuSignature, Some(s)) => s,
        (Rdx::CpuSignature, None) => {
            return Err(Error::Usage(format!(
                "--vmm-type {} loads the vCPU signature into every VMSA: give --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping",
                a.vmm.name()
            )))
        }
        (Rdx::Fixed(v), given) => {
            if given.is_some() {
                warnings.push(format!(
                    "--vmm-type {} starts every vCPU with RDX {v:#x}; the vCPU signature given does not change the digest",
                    a.vmm.name()
                ));
            }
            given.unwrap_or(0)
        }
    };
    if a.vmsa_form == VmsaForm::Legacy && !profile.fpu_from_form {
        warnings.push(format!(
            "--vmm-type {} never sets the VMSA FPU fields; --vmsa-form does not change the digest",
            a.vmm.name()
        ));
    }
    if a.kernel.is_none() && (a.initrd.is_some() || a.append.is_some()) {
        return Err(Error::Usage(
            "--initrd and --append need --kernel: QEMU measures them only with a kernel given by -kernel"
                .into(),
        ));
    }
    if a.vcpus == 0 || a.vcpus > snp::MAX_VCPUS {
        return Err(Error::Usage(format!(
            "--vcpus must be between 1 and {}, not {}",
            snp::MAX_VCPUS,
            a.vcpus
        )));
    }
    Ok((cpu_signature, warnings))
}

/// The OVMF hash (or the `--ovmf-hash` seed) and the kernel hashes table.
fn hash_inputs(
    a: &DigestInput,
    fw: &mut FirmwareFile,
    seed: Option<Ld>,
) -> Result<(Ld, Option<KernelHashes>)> {
    // The kernel and initrd hash on their own threads while the firmware's
    // pages are hashed here, on the cores they leave free: the kernel's
    // SHA-256 is one sequential stream, the longest job, and a page hashing
    // thread sharing its core would only make it later.
    let busy = usize::from(a.kernel.is_some()) + usize::from(a.initrd.is_some());
    let threads = snp::default_hash_threads().saturating_sub(busy).max(1);
    let (ovmf_ld, kernel) = std::thread::scope(|scope| {
        let kernel = a.kernel.as_ref().map(|k| {
            scope.spawn(move || input::kernel_hashes(k, a.initrd.as_deref(), a.append.as_deref()))
        });
        let ovmf_ld = match seed {
            Some(s) => Ok(s),
            None => fw.ovmf_hash(threads),
        };
        let kernel = kernel.map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(Error::Unexpected("the kernel hashing thread failed".into()))
            })
        });
        (ovmf_ld, kernel.transpose())
    });
    Ok((ovmf_ld?, kernel?))
}

impl ComputedLaunch {
    /// What went into the digest (`snp-digest --verbose`): firmware size
    /// and GPA, the OVMF hash, the metadata sections, the kernel hashes
    /// table and the VMSA, one line each.
    pub fn describe(&self) -> String {
        match &self.form {
            LaunchForm::Ovmf(o) => o.describe(),
            LaunchForm::Igvm(c) => c.describe(),
            LaunchForm::Svsm(s) => s.describe(),
        }
    }
}

impl OvmfLaunch {
    fn describe(&self) -> String {
        let info = &self.firmware;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "firmware: {} ({} bytes, GPA {:#x})",
            self.ovmf.display(),
            self.firmware_len,
            snp::firmware_gpa(self.firmware_len).unwrap_or(0)
        );
        let given = if self.ovmf_hash_given { " (given)" } else { "" };
        let _ = writeln!(s, "OVMF hash{given}: {}", hex(&self.ovmf_hash));
        for m in &info.sections {
            let _ = writeln!(
                s,
                "metadata section: gpa {:#010x} size {:#x} type {:#x}",
                m.gpa, m.size, m.kind
            );
        }
        if let Some(area) = info.kernel_hash_area {
            let _ = writeln!(
                s,
                "kernel hashes area: base {:#x} size {:#x}",
                area.base, area.size
            );
        }
        if let Some(k) = &self.kernel {
            let _ = writeln!(s, "kernel hashes table: {}", hex(&k.padded_table()));
        }
        let profile = self.vmm.profile();
        let _ = writeln!(
            s,
            "VMSA: vmm {}, {} vCPU(s), RDX {:#x}, SEV_FEATURES {:#x}, FPU fields {}, AP reset EIP {:#x}",
            self.vmm.name(),
            self.vcpus,
            match profile.rdx {
                Rdx::CpuSignature => self.vmsa.cpu_signature,
                Rdx::Fixed(v) => v,
            },
            self.vmsa.sev_features,
            if profile.fpu_from_form && self.vmsa.form == VmsaForm::Init2 {
                "MXCSR 0x1f80 FCW 0x37f (KVM_SEV_INIT2)"
            } else {
                "zero"
            },
            info.ap_reset_eip.unwrap_or(0)
        );
        s
    }
}

/// The launch digest after the firmware image alone (`snp-ovmf-hash`).
pub fn ovmf_hash(ovmf: &Path) -> Result<Ld> {
    let mut fw = FirmwareFile::open(ovmf)?;
    fw.ovmf_hash(snp::default_hash_threads())
}

fn firmware_error_text(path: &Path, e: explain::SnpExplainError) -> Error {
    match e {
        explain::SnpExplainError::Incomplete => Error::Unexpected(e.to_string()),
        e => Error::Usage(format!("firmware '{}': {e}", path.display())),
    }
}
