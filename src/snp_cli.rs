//! SEV-SNP subcommands of the same binary, beside the drop-in options:
//!
//! - `virt-qemu-sev-validate snp-digest`: the expected SNP launch digest
//!   (the MEASUREMENT of the attestation report) of a guest;
//! - `virt-qemu-sev-validate snp-ovmf-hash`: the launch digest after the
//!   firmware alone, to seed `snp-digest --ovmf-hash` later;
//! - `virt-qemu-sev-validate snp-id-block`: a signed ID block and ID auth for
//!   QEMU's `sev-snp-guest` object or libvirt's `<launchSecurity type='sev-snp'>`.
//!
//! [`main_if_subcommand`] is the entry point: it leaves every other command
//! line to the drop-in parser.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::core::id_block::{IdAuth, IdBlock, SnpKey};
use crate::core::kernel_hashes::KernelHashes;
use crate::core::ovmf::FOOTER_TAIL_LEN;
use crate::core::snp::{self, GuestContext, Ld, SnpError, SnpFirmware, SnpLaunch};
use crate::core::vmsa::{Rdx, VmmType, VmsaConfig, VmsaForm};
use crate::core::{cpu, hex};
use crate::error::{Error, ExitCode, Result};
use crate::num::{decode_hex, decode_hex_array, parse_u32, parse_u64};
use crate::sev::launch::{self, SeekableInput, Size, MAX_FIRMWARE_LEN};
use crate::sev::policy::PolicyFlags;
use crate::snp::explain;

/// The subcommands this module answers.
pub const SUBCOMMANDS: &[&str] = &[
    "snp-digest",
    "snp-ovmf-hash",
    "snp-id-block",
    "snp-report",
    "snp-validate",
];

const FIRMWARE: &str = "Firmware";
const VCPUS: &str = "vCPUs";
const KERNEL: &str = "Measured direct boot";
const OUTPUT: &str = "Output";
const REPORT: &str = "Attestation report";

#[derive(Debug, Parser)]
#[command(
    name = "virt-qemu-sev-validate",
    about = "AMD SEV-SNP launch digests and ID blocks",
    disable_version_flag = true
)]
struct SnpCli {
    #[command(subcommand)]
    command: SnpCommand,
}

#[derive(Debug, Subcommand)]
enum SnpCommand {
    /// Compute the expected SEV-SNP launch digest (the attestation report's MEASUREMENT) of a guest
    #[command(
        long_about = "Compute the expected SEV-SNP launch digest of a guest: the value the \
attestation report's MEASUREMENT field must hold, and what an ID block signs. The firmware is \
measured page by page as QEMU and KVM add it, then the pages its SEV metadata lists, then one \
VMSA page per vCPU."
    )]
    #[command(name = "snp-digest")]
    Digest(DigestArgs),
    /// Compute the SEV-SNP launch digest after the firmware image alone (for snp-digest --ovmf-hash)
    #[command(name = "snp-ovmf-hash")]
    OvmfHash(OvmfHashArgs),
    /// Build and sign an SEV-SNP ID block and ID auth for an expected launch digest
    #[command(
        long_about = "Build the 96-byte SEV-SNP ID block for an expected launch digest, sign it \
with the ID key, sign the ID key with the author key, and print them in the forms QEMU's \
sev-snp-guest object and libvirt's <launchSecurity type='sev-snp'> take, with the key digests \
the attestation report will carry."
    )]
    #[command(name = "snp-id-block")]
    IdBlock(IdBlockArgs),
    /// Print every field of an SEV-SNP attestation report
    #[command(name = "snp-report")]
    Report(crate::snp_attest_cli::ReportArgs),
    /// Validate an SEV-SNP attestation report: signature, AMD chain, TCB and chip binding, the owner's expectations
    #[command(name = "snp-validate")]
    Validate(Box<crate::snp_attest_cli::ValidateArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Hex,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum VmmArg {
    #[value(alias = "QEMU")]
    Qemu,
    #[value(alias = "EC2")]
    Ec2,
    #[value(alias = "GCE")]
    Gce,
}

impl From<VmmArg> for VmmType {
    fn from(v: VmmArg) -> VmmType {
        match v {
            VmmArg::Qemu => VmmType::Qemu,
            VmmArg::Ec2 => VmmType::Ec2,
            VmmArg::Gce => VmmType::Gce,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormArg {
    /// KVM_SEV_INIT2 (every upstream SNP host): MXCSR and FCW set in the VMSA
    Init2,
    /// No FPU fields: out-of-tree AMD SNP host kernels before KVM_SEV_INIT2
    Legacy,
}

#[derive(Debug, Args)]
struct DigestArgs {
    /// OVMF firmware image the guest boots (QEMU -bios / pflash unit 0); its footer table and SEV metadata are always read
    #[arg(long, value_name = "FILE", help_heading = FIRMWARE)]
    ovmf: PathBuf,

    /// Launch digest after the firmware image, from snp-ovmf-hash (96 hex digits): the image's pages are then not hashed again
    #[arg(long, value_name = "HEX", help_heading = FIRMWARE)]
    ovmf_hash: Option<String>,

    /// Number of vCPUs
    #[arg(long, value_name = "N", value_parser = parse_u32, help_heading = VCPUS)]
    vcpus: u32,

    /// QEMU vCPU model (EPYC, EPYC-v4, EPYC-Rome, EPYC-Milan, EPYC-Genoa, EPYC-Turin, ...)
    #[arg(long, value_name = "NAME", help_heading = VCPUS)]
    vcpu_type: Option<String>,

    /// vCPU signature, CPUID(1).EAX (e.g. 0xA00F11)
    #[arg(long, value_name = "VALUE", value_parser = parse_u32, help_heading = VCPUS)]
    vcpu_sig: Option<u32>,

    /// vCPU family (with --vcpu-model and --vcpu-stepping)
    #[arg(long, value_name = "N", value_parser = parse_u32, help_heading = VCPUS)]
    vcpu_family: Option<u32>,

    /// vCPU model number
    #[arg(long, value_name = "N", value_parser = parse_u32, help_heading = VCPUS)]
    vcpu_model: Option<u32>,

    /// vCPU stepping
    #[arg(long, value_name = "N", value_parser = parse_u32, help_heading = VCPUS)]
    vcpu_stepping: Option<u32>,

    /// The VMM that starts the guest: qemu (libvirt), or the ec2 and gce models of sev-snp-measure
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = VmmArg::Qemu, help_heading = VCPUS)]
    vmm_type: VmmArg,

    /// SEV_FEATURES of every VMSA: 0x1 (SNPActive) on upstream KVM; 0x21 (with DebugSwap) on out-of-tree AMD SNP host kernels
    #[arg(long, value_name = "VALUE", value_parser = parse_u64, default_value = "0x1", help_heading = VCPUS)]
    guest_features: u64,

    /// VMSA FPU fields (QEMU only): init2 = KVM_SEV_INIT2 hosts (upstream); legacy = older out-of-tree AMD SNP hosts
    #[arg(long, value_enum, value_name = "FORM", default_value_t = FormArg::Init2, help_heading = VCPUS)]
    vmsa_form: FormArg,

    /// Kernel booted with -kernel (QEMU sev-snp-guest,kernel-hashes=on)
    #[arg(long, value_name = "FILE", help_heading = KERNEL)]
    kernel: Option<PathBuf>,

    /// Initrd booted with -initrd (needs --kernel)
    #[arg(long, value_name = "FILE", help_heading = KERNEL)]
    initrd: Option<PathBuf>,

    /// Kernel command line given with -append (needs --kernel)
    #[arg(long, value_name = "CMDLINE", help_heading = KERNEL)]
    append: Option<String>,

    /// How to print the digest
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Hex, help_heading = OUTPUT)]
    output_format: OutputFormat,

    /// Also print what was measured (firmware size, OVMF hash, sections, VMSA) on stderr
    #[arg(short, long, help_heading = OUTPUT)]
    verbose: bool,

    /// MEASUREMENT of the guest's attestation report (96 hex digits or base64): exit 0 if the computed digest equals it; if not, say which input the host changed and exit 1
    #[arg(long, value_name = "HEX|BASE64", help_heading = REPORT)]
    measurement: Option<String>,
}

#[derive(Debug, Args)]
struct OvmfHashArgs {
    /// OVMF firmware image
    #[arg(long, value_name = "FILE")]
    ovmf: PathBuf,

    /// How to print the hash
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Hex)]
    output_format: OutputFormat,
}

#[derive(Debug, Args)]
struct IdBlockArgs {
    /// Expected launch digest: 96 hex digits or base64 of 48 bytes (snp-digest prints either)
    #[arg(long, value_name = "HEX|BASE64")]
    digest: String,

    /// ID key: ECDSA P-384 private key, PEM (PKCS#8 or SEC1 "EC PRIVATE KEY")
    #[arg(long, value_name = "PEM")]
    id_key: PathBuf,

    /// Author key: ECDSA P-384 private key, PEM; signs the ID key (QEMU author-key-enabled=on)
    #[arg(long, value_name = "PEM")]
    author_key: Option<PathBuf>,

    /// Guest policy; must equal the guest's SNP policy (QEMU sev-snp-guest,policy=)
    #[arg(long, value_name = "VALUE", value_parser = parse_u64, default_value = "0x30000")]
    policy: u64,

    /// Family ID: 16 bytes as 32 hex digits (default zero)
    #[arg(long, value_name = "HEX", value_parser = parse_id16)]
    family_id: Option<[u8; 16]>,

    /// Image ID: 16 bytes as 32 hex digits (default zero)
    #[arg(long, value_name = "HEX", value_parser = parse_id16)]
    image_id: Option<[u8; 16]>,

    /// Guest security version number
    #[arg(long, value_name = "N", value_parser = parse_u32, default_value = "0")]
    svn: u32,
}

fn parse_id16(s: &str) -> std::result::Result<[u8; 16], String> {
    decode_hex_array::<16>(s)
        .ok_or_else(|| format!("'{s}' is not 16 bytes written as 32 hex digits"))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn format_ld(ld: &Ld, f: OutputFormat) -> String {
    match f {
        OutputFormat::Hex => hex(ld),
        OutputFormat::Base64 => b64(ld),
    }
}

/// A launch digest from 96 hex digits or base64 of 48 bytes.
fn parse_ld(what: &str, s: &str) -> Result<Ld> {
    let t = s.trim();
    let bytes = match decode_hex(t) {
        Some(b) if t.len() >= 96 => b,
        _ => base64::engine::general_purpose::STANDARD
            .decode(t)
            .map_err(|_| {
                Error::Usage(format!(
                    "{what} '{s}' is neither 96 hex digits nor base64 of 48 bytes"
                ))
            })?,
    };
    <[u8; 48]>::try_from(bytes.as_slice()).map_err(|_| {
        Error::Usage(format!(
            "{what} '{s}' is {} bytes, but an SEV-SNP launch digest is 48 bytes (SHA-384)",
            bytes.len()
        ))
    })
}

/// The launch `snp-digest` computes from `options` (its command line after
/// the subcommand name): how `snp-validate ... -- OPTIONS` gets the expected
/// MEASUREMENT from the same inputs, and the explainer its hashed state.
pub fn launch_from_options(options: &[OsString]) -> Result<ComputedLaunch> {
    let mut argv = vec![
        OsString::from("virt-qemu-sev-validate"),
        "snp-digest".into(),
    ];
    argv.extend(options.iter().cloned());
    match SnpCli::try_parse_from(&argv) {
        Ok(SnpCli {
            command: SnpCommand::Digest(a),
        }) => {
            if a.measurement.is_some() {
                return Err(Error::Usage(
                    "the snp-digest options after '--' take no --measurement: snp-validate compares the report's own".into(),
                ));
            }
            compute_launch(&a)
        }
        Ok(_) => Err(Error::Unexpected(
            "snp-digest options parsed as another command".into(),
        )),
        Err(e) => {
            // clap's message without its "error: " prefix and usage footer.
            let text = e.render().to_string();
            let body = text.split("\n\nUsage:").next().unwrap_or("");
            Err(Error::Usage(format!(
                "the snp-digest options after '--': {}",
                body.trim().trim_start_matches("error: ")
            )))
        }
    }
}

/// The subcommands' parser, for listing them in `--help` and for the shell
/// completions.
pub fn command() -> clap::Command {
    <SnpCli as clap::CommandFactory>::command()
}

/// Runs the SNP subcommand in `args` (argv, program name first) when argv[1]
/// names one; `None` leaves the command line to the drop-in parser.
pub fn main_if_subcommand(args: &[OsString]) -> Option<i32> {
    let first = args.get(1)?.to_str()?;
    if !SUBCOMMANDS.contains(&first) {
        return None;
    }
    Some(run_from_args(args))
}

fn run_from_args(args: &[OsString]) -> i32 {
    let cli = match SnpCli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            crate::snp_attest_cli::usage_error_json(args, &e);
            return if e.use_stderr() {
                ExitCode::UnsupportedUsage as i32
            } else {
                ExitCode::Ok as i32
            };
        }
    };
    if let SnpCommand::Validate(a) = &cli.command {
        // Its own exit codes: 1 when a check fails, with the result printed.
        return std::panic::catch_unwind(|| crate::snp_attest_cli::validate_main(a))
            .unwrap_or(ExitCode::Unexpected as i32);
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&cli.command)));
    match outcome {
        Ok(Ok(out)) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (| head) is not an error of ours.
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
            ExitCode::Ok as i32
        }
        Ok(Err(e)) => {
            eprintln!("ERROR: {e}");
            e.exit_code() as i32
        }
        Err(_) => {
            eprintln!("ERROR: internal error (a bug in virt-qemu-sev-validate); please report it with the command line used");
            ExitCode::Unexpected as i32
        }
    }
}

/// Runs one subcommand; returns what it prints on stdout.
fn run(cmd: &SnpCommand) -> Result<String> {
    match cmd {
        SnpCommand::Digest(a) => snp_digest(a),
        SnpCommand::OvmfHash(a) => {
            let mut fw = FirmwareFile::open(&a.ovmf)?;
            let ld = fw.ovmf_hash(snp::default_hash_threads())?;
            Ok(format!("{}\n", format_ld(&ld, a.output_format)))
        }
        SnpCommand::IdBlock(a) => snp_id_block(a),
        SnpCommand::Report(a) => crate::snp_attest_cli::report_main(a),
        SnpCommand::Validate(_) => Err(Error::Unexpected(
            "snp-validate runs through snp_attest_cli::validate_main".into(),
        )),
    }
}

fn firmware_error(path: &Path, e: SnpError) -> Error {
    Error::Usage(format!("firmware '{}': {e}", path.display()))
}

/// An opened firmware image: its length and its tail.
struct FirmwareFile {
    path: PathBuf,
    file: SeekableInput,
    len: u64,
}

impl FirmwareFile {
    /// A pipe, FIFO or /proc file is read into memory (its length must be
    /// known before its pages are hashed, and its tail read first), bounded by
    /// the firmware size limit; a regular file is streamed.
    fn open(path: &Path) -> Result<FirmwareFile> {
        let (file, size) = launch::open_seekable("firmware", path, MAX_FIRMWARE_LEN)?;
        let len = match size {
            Size::Exactly(n) if n <= MAX_FIRMWARE_LEN => n,
            size => {
                return Err(Error::Usage(format!(
                    "firmware '{}' is {size}; no OVMF image is larger than {MAX_FIRMWARE_LEN} bytes, so this is not a firmware image",
                    path.display()
                )))
            }
        };
        snp::firmware_gpa(len).map_err(|e| firmware_error(path, e))?;
        Ok(FirmwareFile {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    fn io_error(&self, e: &std::io::Error) -> Error {
        Error::io("firmware", &self.path, e)
    }

    fn read_tail(&mut self, n: u64) -> Result<Vec<u8>> {
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
                "firmware '{}' changed while it was read",
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
    fn ovmf_hash(&mut self, threads: usize) -> Result<Ld> {
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
}

/// The vCPU signature from --vcpu-type, --vcpu-sig or --vcpu-family/model/stepping.
fn vcpu_signature(a: &DigestArgs) -> Result<Option<u32>> {
    let fms = a.vcpu_family.is_some() || a.vcpu_model.is_some() || a.vcpu_stepping.is_some();
    let given = [a.vcpu_type.is_some(), a.vcpu_sig.is_some(), fms]
        .iter()
        .filter(|&&b| b)
        .count();
    if given > 1 {
        return Err(Error::Usage(
            "give only one of --vcpu-type, --vcpu-sig and --vcpu-family/--vcpu-model/--vcpu-stepping"
                .into(),
        ));
    }
    if let Some(name) = &a.vcpu_type {
        return named_signature(name).map(Some);
    }
    if let Some(sig) = a.vcpu_sig {
        return Ok(Some(sig));
    }
    if fms {
        let (Some(f), Some(m), Some(s)) = (a.vcpu_family, a.vcpu_model, a.vcpu_stepping) else {
            return Err(Error::Usage(
                "--vcpu-family, --vcpu-model and --vcpu-stepping go together: give all three"
                    .into(),
            ));
        };
        return cpu::signature(f, m, s)
            .map(Some)
            .map_err(|e| Error::Usage(e.to_string()));
    }
    Ok(None)
}

/// The signature of a QEMU model name. Versioned names (EPYC-Rome-v4) keep
/// their base model's family, model and stepping.
fn named_signature(name: &str) -> Result<u32> {
    if let Some(sig) = cpu::named_model_signature(name) {
        return Ok(sig);
    }
    if let Some((base, version)) = name.rsplit_once("-v") {
        if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) {
            if let Some(sig) = cpu::named_model_signature(base) {
                return Ok(sig);
            }
        }
    }
    let known: Vec<&str> = cpu::NAMED_MODELS.iter().map(|(n, _)| *n).collect();
    Err(Error::Usage(format!(
        "unknown vCPU model '{name}'; known models: {} (and their -vN versions); for another model give --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping",
        known.join(", ")
    )))
}

/// The launch digest of `snp-digest`'s inputs, with the inputs as hashed:
/// what the explainer searches from when a report's MEASUREMENT differs,
/// so no file is read or hashed twice.
pub struct ComputedLaunch {
    /// The launch digest (the expected MEASUREMENT).
    pub ld: Ld,
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

impl ComputedLaunch {
    /// The owner's launch in the explainer's terms.
    pub fn owner(&self) -> explain::OwnerLaunch<'_> {
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

    /// Which input the host changed to launch with `reported`: the
    /// explainer's search from the hashed state.
    pub fn explain(&self, reported: &Ld) -> Result<explain::SnpExplanation> {
        let x = explain::explain(&self.owner(), reported)
            .map_err(|e| firmware_error_text(&self.ovmf, e))?;
        if x.computed != self.ld {
            return Err(Error::Unexpected(
                "the explainer's launch digest differs from snp-digest's (a bug in virt-qemu-sev-validate; please report it)".into(),
            ));
        }
        Ok(x)
    }
}

fn compute_launch(a: &DigestArgs) -> Result<ComputedLaunch> {
    let vmm = VmmType::from(a.vmm_type);
    let profile = vmm.profile();
    let sig = vcpu_signature(a)?;
    let cpu_signature = check_digest_args(a, vmm, sig)?;
    let seed = a
        .ovmf_hash
        .as_deref()
        .map(|s| parse_ld("--ovmf-hash", s))
        .transpose()?;

    let mut fw = FirmwareFile::open(&a.ovmf)?;
    let info = fw.snp_info()?;
    let vmsa = VmsaConfig {
        form: match a.vmsa_form {
            FormArg::Init2 => VmsaForm::Init2,
            FormArg::Legacy => VmsaForm::Legacy,
        },
        cpu_signature,
        sev_features: a.guest_features,
    };
    // Refuse what QEMU refuses before hashing anything.
    let placeholder = KernelHashes {
        kernel: [0; 32],
        initrd: [0; 32],
        cmdline: [0; 32],
    };
    let probe = SnpLaunch {
        vcpus: a.vcpus,
        vmm: profile,
        vmsa,
        kernel: a.kernel.as_ref().map(|_| &placeholder),
    };
    snp::check_launch(&info, &probe).map_err(|e| match e {
        SnpError::Vcpus(_) => Error::Usage(e.to_string()),
        e => firmware_error(&a.ovmf, e),
    })?;

    let (ovmf_ld, kernel) = hash_inputs(a, &mut fw, seed)?;
    let launch = SnpLaunch {
        kernel: kernel.as_ref(),
        ..probe
    };
    let ld = snp::launch_digest(ovmf_ld, &info, &launch).map_err(|e| firmware_error(&a.ovmf, e))?;

    if a.verbose {
        print_launch(a, fw.len, seed.is_some(), ovmf_ld, &info, vmm, &launch);
    }
    Ok(ComputedLaunch {
        ld,
        ovmf: a.ovmf.clone(),
        ovmf_hash: ovmf_ld,
        firmware: info,
        vcpus: a.vcpus,
        vmm,
        vmsa,
        signature_given: sig.is_some(),
        kernel,
        append: a.append.clone(),
        initrd: a.initrd.is_some(),
    })
}

/// The vCPU signature the VMSA gets, after refusing the option
/// combinations the VMM would refuse and warning of those it ignores.
fn check_digest_args(a: &DigestArgs, vmm: VmmType, sig: Option<u32>) -> Result<u32> {
    let profile = vmm.profile();
    let cpu_signature = match (profile.rdx, sig) {
        (Rdx::CpuSignature, Some(s)) => s,
        (Rdx::CpuSignature, None) => {
            return Err(Error::Usage(format!(
                "--vmm-type {} loads the vCPU signature into every VMSA: give --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping",
                vmm.name()
            )))
        }
        (Rdx::Fixed(v), given) => {
            if given.is_some() {
                eprintln!(
                    "WARNING: --vmm-type {} starts every vCPU with RDX {v:#x}; the vCPU signature given does not change the digest",
                    vmm.name()
                );
            }
            given.unwrap_or(0)
        }
    };
    if a.vmsa_form == FormArg::Legacy && !profile.fpu_from_form {
        eprintln!(
            "WARNING: --vmm-type {} never sets the VMSA FPU fields; --vmsa-form does not change the digest",
            vmm.name()
        );
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
    Ok(cpu_signature)
}

/// The OVMF hash (or the `--ovmf-hash` seed) and the kernel hashes table.
fn hash_inputs(
    a: &DigestArgs,
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
            scope.spawn(move || launch::kernel_hashes(k, a.initrd.as_deref(), a.append.as_deref()))
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

/// `--verbose`: what went into the digest, on stderr.
fn print_launch(
    a: &DigestArgs,
    fw_len: u64,
    seed_given: bool,
    ovmf_ld: Ld,
    info: &SnpFirmware,
    vmm: VmmType,
    launch: &SnpLaunch,
) {
    let (profile, vmsa, cpu_signature) = (launch.vmm, launch.vmsa, launch.vmsa.cpu_signature);
    eprintln!(
        "firmware: {} ({} bytes, GPA {:#x})",
        a.ovmf.display(),
        fw_len,
        snp::firmware_gpa(fw_len).unwrap_or(0)
    );
    eprintln!(
        "OVMF hash{}: {}",
        if seed_given { " (given)" } else { "" },
        hex(&ovmf_ld)
    );
    for s in &info.sections {
        eprintln!(
            "metadata section: gpa {:#010x} size {:#x} type {:#x}",
            s.gpa, s.size, s.kind
        );
    }
    if let Some(area) = info.kernel_hash_area {
        eprintln!(
            "kernel hashes area: base {:#x} size {:#x}",
            area.base, area.size
        );
    }
    if let Some(k) = launch.kernel {
        eprintln!("kernel hashes table: {}", hex(&k.padded_table()));
    }
    eprintln!(
        "VMSA: vmm {}, {} vCPU(s), RDX {:#x}, SEV_FEATURES {:#x}, FPU fields {}, AP reset EIP {:#x}",
        vmm.name(),
        a.vcpus,
        match profile.rdx {
            Rdx::CpuSignature => cpu_signature,
            Rdx::Fixed(v) => v,
        },
        a.guest_features,
        if profile.fpu_from_form && vmsa.form == VmsaForm::Init2 {
            "MXCSR 0x1f80 FCW 0x37f (KVM_SEV_INIT2)"
        } else {
            "zero"
        },
        info.ap_reset_eip.unwrap_or(0)
    );
}

fn snp_digest(a: &DigestArgs) -> Result<String> {
    // A bad --measurement is refused before anything is hashed.
    let reported = a
        .measurement
        .as_deref()
        .map(|s| parse_ld("--measurement", s))
        .transpose()?;
    let launch = compute_launch(a)?;
    let printed = format!("{}\n", format_ld(&launch.ld, a.output_format));
    let Some(reported) = reported else {
        return Ok(printed);
    };
    compare_with_report(&launch, &reported, printed)
}

/// `snp-digest --measurement`: the verdict, and on a mismatch the explainer's answer.
fn compare_with_report(launch: &ComputedLaunch, reported: &Ld, printed: String) -> Result<String> {
    let started = std::time::Instant::now();
    let x = launch.explain(reported)?;
    if x.matches() {
        return Ok(format!("{printed}OK: {x}\n"));
    }
    Err(Error::AttestationFailed(format!(
        "{x}\n({} variants tried in {:.3} s)",
        x.variants_tried,
        started.elapsed().as_secs_f64()
    )))
}

fn firmware_error_text(path: &Path, e: explain::SnpExplainError) -> Error {
    match e {
        explain::SnpExplainError::Incomplete => Error::Unexpected(e.to_string()),
        e => Error::Usage(format!("firmware '{}': {e}", path.display())),
    }
}

fn read_key(what: &str, path: &Path) -> Result<SnpKey> {
    const LIMIT: usize = 64 * 1024;
    let too_large = |size: Size| {
        Error::Usage(format!(
            "{what} '{}' is {size}, too large for a PEM private key",
            path.display()
        ))
    };
    let (file, hint) = launch::open_input(what, path)?;
    if hint > LIMIT as u64 {
        return Err(too_large(Size::Exactly(hint)));
    }
    // Read whole (a pipe from a password manager has no size) into a buffer
    // that is wiped: it holds the private key.
    let pem = launch::read_limited(file, LIMIT).map_err(|e| Error::io(what, path, &e))?;
    if pem.len() > LIMIT {
        return Err(too_large(Size::MoreThan(LIMIT as u64)));
    }
    let text = std::str::from_utf8(&pem).map_err(|_| {
        Error::Usage(format!(
            "{what} '{}' is not a PEM file (it is not text); convert a DER key with: openssl pkey -in KEY.der -inform DER -out KEY.pem",
            path.display()
        ))
    })?;
    SnpKey::from_pem(text).map_err(|e| Error::Usage(format!("{what} '{}': {e}", path.display())))
}

fn snp_id_block(a: &IdBlockArgs) -> Result<String> {
    let ld = parse_ld("--digest", &a.digest)?;
    if !PolicyFlags::from_bits_retain(a.policy).contains(PolicyFlags::RESERVED_17) {
        return Err(Error::Usage(format!(
            "--policy {:#x} has bit 17 clear, but the SNP firmware requires it set (reserved, must be one); QEMU's default guest policy is 0x30000",
            a.policy
        )));
    }
    let id_key = read_key("ID key", &a.id_key)?;
    let author_key = a
        .author_key
        .as_deref()
        .map(|p| read_key("author key", p))
        .transpose()?;
    let mut block = IdBlock::new(ld);
    block.policy = a.policy;
    block.guest_svn = a.svn;
    if let Some(f) = a.family_id {
        block.family_id = f;
    }
    if let Some(i) = a.image_id {
        block.image_id = i;
    }
    let auth = IdAuth::sign(&block, &id_key, author_key.as_ref());
    // Our own signatures must verify before anyone relies on them.
    auth.verify(&block)
        .map_err(|e| Error::Unexpected(format!("the ID auth just signed does not verify: {e}")))?;
    let block_b64 = b64(&block.to_bytes());
    let auth_b64 = b64(&auth.to_bytes()[..]);
    let mut out = String::new();
    out.push_str(&format!(
        "# QEMU: -object sev-snp-guest,id=sev0,policy={:#x},...,<the next line>\n",
        a.policy
    ));
    out.push_str(&format!("id-block={block_b64},id-auth={auth_b64}"));
    if author_key.is_some() {
        out.push_str(",author-key-enabled=on");
    }
    out.push('\n');
    out.push_str("# libvirt domain XML:\n");
    out.push_str(&format!(
        "<launchSecurity type='sev-snp'{}>\n",
        if author_key.is_some() {
            " authorKey='yes'"
        } else {
            ""
        }
    ));
    out.push_str(&format!("  <policy>{:#010x}</policy>\n", a.policy));
    out.push_str(&format!("  <idBlock>{block_b64}</idBlock>\n"));
    out.push_str(&format!("  <idAuth>{auth_b64}</idAuth>\n"));
    out.push_str("</launchSecurity>\n");
    out.push_str(&format!(
        "id_key_digest: {}\n",
        b64(&id_key.public_key_digest())
    ));
    if let Some(k) = &author_key {
        out.push_str(&format!(
            "author_key_digest: {}\n",
            b64(&k.public_key_digest())
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_subcommands_are_taken() {
        let argv = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(main_if_subcommand(&argv(&["prog"])), None);
        assert_eq!(
            main_if_subcommand(&argv(&["prog", "--firmware", "x"])),
            None
        );
        assert_eq!(main_if_subcommand(&argv(&["prog", "snp"])), None);
    }

    #[test]
    fn digest_parsing() {
        let h = "a14d638341e5674628fe1e02fbedebe5e5ab4faf1dd72d8966068e615bb99efd13d214b35c231715b38e263dc6059745";
        let ld = parse_ld("d", h).unwrap();
        assert_eq!(parse_ld("d", &b64(&ld)).unwrap(), ld);
        assert!(parse_ld("d", "abcd").is_err());
        assert!(parse_ld("d", "not base64!").is_err());
        assert!(parse_ld("d", &h[..94]).is_err());
    }

    #[test]
    fn versioned_model_names() {
        assert_eq!(named_signature("EPYC-Rome-v4").unwrap(), 0x830F10);
        assert_eq!(named_signature("epyc-milan-v2").unwrap(), 0xA00F11);
        assert!(named_signature("Skylake-Server").is_err());
        assert!(named_signature("EPYC-Rome-v").is_err());
    }

    #[test]
    fn id16() {
        assert_eq!(parse_id16(&"01".repeat(16)).unwrap(), [1; 16]);
        assert!(parse_id16("0102").is_err());
        assert!(parse_id16(&"zz".repeat(16)).is_err());
    }
}
