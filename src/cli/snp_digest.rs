//! `snp-digest`: the expected SEV-SNP launch digest (the MEASUREMENT of the
//! attestation report) of a guest, and with `--measurement` which input the
//! host changed; its options are also what `snp-validate` takes after `--`.
//! The subcommands' dispatcher is [`super::snp_commands`].

use std::ffi::OsString;
use std::path::PathBuf;

use base64::Engine as _;
use clap::{Args, Parser, ValueEnum};

use super::num::{measurement, parse_u32, parse_u64};
use crate::core::snp::Ld;
use crate::core::vmsa::{VmmType, VmsaForm};
use crate::core::{cpu, hex};
use crate::error::{Error, Result};
use crate::snp::digest::{self, ComputedLaunch, DigestInput};
use crate::snp::igvm::{self, IgvmInput};
use crate::snp::svsm::{self, SvsmInput, VarsSize};

const FIRMWARE: &str = "Firmware";
const VCPUS: &str = "vCPUs";
const KERNEL: &str = "Measured direct boot";
const IGVM: &str = "IGVM launch";
const SVSM: &str = "OVMF + COCONUT-SVSM (sev-snp-measure --mode snp:svsm)";
const OUTPUT: &str = "Output";
const REPORT: &str = "Attestation report";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
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
pub(crate) struct DigestArgs {
    /// OVMF firmware image the guest boots (QEMU -bios / pflash unit 0); its footer table and SEV metadata are always read
    #[arg(long, value_name = "FILE", help_heading = FIRMWARE, required_unless_present = "igvm")]
    ovmf: Option<PathBuf>,

    /// IGVM file the guest launches from instead of OVMF (QEMU -object igvm-cfg,file=FILE, e.g. COCONUT-SVSM): its pages, parameter areas and VMSAs as QEMU (10.1 and later) and KVM measure them
    #[arg(long, value_name = "FILE", help_heading = IGVM, conflicts_with_all = ["ovmf", "ovmf_hash", "kernel", "initrd", "append", "vcpu_type", "vcpu_sig", "vcpu_family", "vcpu_model", "vcpu_stepping", "vmsa_form", "svsm", "vars_size", "vars_file"])]
    igvm: Option<PathBuf>,

    /// With --igvm: refuse the file (exit 1, or 2 when QEMU or the firmware would refuse the launch) if QEMU/KVM cannot launch it as written or would measure it otherwise than other IGVM tools do
    #[arg(long, help_heading = IGVM, requires = "igvm")]
    check: bool,

    /// With --igvm: the host's copy of the IGVM file; its launch is compared with --igvm's and each difference named (page contents, GPA or type by directive, VMSA fields, VMSA count, policy, ID block), and with --measurement it is checked against the reported value
    #[arg(long, value_name = "FILE", help_heading = IGVM, requires = "igvm")]
    host_igvm: Option<PathBuf>,

    /// With --igvm: the guest policy the owner expects the file to carry (exit 1 if it carries another)
    #[arg(long, value_name = "POLICY", value_parser = parse_u64, help_heading = IGVM, requires = "igvm")]
    policy: Option<u64>,

    /// Launch digest after the firmware image, from snp-ovmf-hash (96 hex digits or base64): the image's pages are then not hashed again
    #[arg(long, value_name = "HEX", help_heading = FIRMWARE)]
    ovmf_hash: Option<String>,

    /// Number of vCPUs (with --igvm: the file's VMSA count, which is also the default)
    #[arg(long, value_name = "N", value_parser = parse_u32, help_heading = VCPUS, required_unless_present = "igvm")]
    vcpus: Option<u32>,

    /// QEMU vCPU model: a known EPYC model, or a versioned one such as EPYC-Rome-v4
    #[arg(long, value_name = "NAME", value_parser = VcpuTypeParser, help_heading = VCPUS)]
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

    /// SEV_FEATURES of every VMSA (default 0x1): 0x1 (SNPActive) on upstream KVM; 0x21 (with DebugSwap) on out-of-tree AMD SNP host kernels
    #[arg(long, value_name = "VALUE", value_parser = parse_u64, help_heading = VCPUS)]
    guest_features: Option<u64>,

    /// VMSA FPU fields (QEMU only; default init2): init2 = KVM_SEV_INIT2 hosts (upstream); legacy = older out-of-tree AMD SNP hosts
    #[arg(long, value_enum, value_name = "FORM", help_heading = VCPUS)]
    vmsa_form: Option<FormArg>,

    /// Kernel booted with -kernel (QEMU sev-snp-guest,kernel-hashes=on)
    #[arg(long, value_name = "FILE", help_heading = KERNEL)]
    kernel: Option<PathBuf>,

    /// Initrd booted with -initrd (needs --kernel)
    #[arg(long, value_name = "FILE", help_heading = KERNEL)]
    initrd: Option<PathBuf>,

    /// Kernel command line given with -append (needs --kernel)
    #[arg(long, value_name = "CMDLINE", help_heading = KERNEL)]
    append: Option<String>,

    /// COCONUT-SVSM image mapped below OVMF and its OVMF_VARS: measures the OVMF + SVSM launch instead (needs --vars-size or --vars-file; an SVSM built as an IGVM file is --igvm)
    #[arg(long, value_name = "FILE", help_heading = SVSM)]
    svsm: Option<PathBuf>,

    /// Size in bytes of the OVMF_VARS flash (pflash unit 1) between OVMF and the SVSM image: a positive multiple of 4096 (with --svsm)
    #[arg(long, value_name = "BYTES", value_parser = parse_u64, conflicts_with = "vars_file", help_heading = SVSM)]
    vars_size: Option<u64>,

    /// OVMF_VARS file whose length is the vars size (with --svsm); its bytes are not read
    #[arg(long, value_name = "FILE", help_heading = SVSM)]
    vars_file: Option<PathBuf>,

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

/// `--vcpu-type`: any name (a versioned one, EPYC-Rome-v4, is checked when
/// used), with QEMU's known models as the values the shells complete.
#[derive(Clone)]
struct VcpuTypeParser;

impl clap::builder::TypedValueParser for VcpuTypeParser {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            cpu::NAMED_MODELS
                .iter()
                .map(|(name, _)| clap::builder::PossibleValue::new(*name)),
        ))
    }
}

pub(crate) fn format_ld(ld: &Ld, f: OutputFormat) -> String {
    match f {
        OutputFormat::Hex => hex(ld),
        OutputFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(ld),
    }
}

/// A launch digest: 96 hex digits or base64 of 48 bytes ([`super::num::decode_digest`]).
pub(crate) fn parse_ld(what: &str, s: &str) -> Result<Ld> {
    measurement(s).map_err(|e| Error::Usage(format!("{what}: {e}")))
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

/// The signature of a QEMU model name (versioned names keep their base
/// model's).
fn named_signature(name: &str) -> Result<u32> {
    if let Some(sig) = cpu::versioned_model_signature(name) {
        return Ok(sig);
    }
    let known: Vec<&str> = cpu::NAMED_MODELS.iter().map(|(n, _)| *n).collect();
    Err(Error::Usage(format!(
        "unknown vCPU model '{name}'; known models: {} (and their -vN versions); for another model give --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping",
        known.join(", ")
    )))
}

impl DigestArgs {
    /// The typed launch these options describe.
    fn input(&self) -> Result<DigestInput> {
        let vcpu_signature = vcpu_signature(self)?;
        let ovmf_hash = self
            .ovmf_hash
            .as_deref()
            .map(|s| parse_ld("--ovmf-hash", s))
            .transpose()?;
        let (Some(ovmf), Some(vcpus)) = (self.ovmf.clone(), self.vcpus) else {
            return Err(Error::Usage(
                "give the firmware with --ovmf FILE and the vCPU count with --vcpus N, or an IGVM file with --igvm FILE".into(),
            ));
        };
        Ok(DigestInput {
            ovmf,
            ovmf_hash,
            vcpus,
            vcpu_signature,
            vmm: VmmType::from(self.vmm_type),
            vmsa_form: match self.vmsa_form.unwrap_or(FormArg::Init2) {
                FormArg::Init2 => VmsaForm::Init2,
                FormArg::Legacy => VmsaForm::Legacy,
            },
            guest_features: self.guest_features.unwrap_or(0x1),
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
            append: self.append.clone(),
        })
    }
}

impl DigestArgs {
    /// The OVMF + SVSM launch these options describe, when `--svsm` is
    /// given. What sev-snp-measure's `snp:svsm` mode silently ignores, and
    /// what has a single value in that form, is refused rather than ignored:
    /// an owner who gives it expects it to count.
    fn svsm_input(&self) -> Result<Option<SvsmInput>> {
        let Some(svsm) = &self.svsm else {
            if let Some(o) = [
                ("--vars-size", self.vars_size.is_some()),
                ("--vars-file", self.vars_file.is_some()),
            ]
            .iter()
            .find_map(|(o, given)| given.then_some(*o))
            {
                return Err(Error::Usage(format!(
                    "{o} needs --svsm: the OVMF_VARS size only places the SVSM image of an OVMF + COCONUT-SVSM launch"
                )));
            }
            return Ok(None);
        };
        let refused = [
            (self.kernel.is_some(), "--kernel", "the OVMF + SVSM launch measures no kernel hashes table (sev-snp-measure's snp:svsm mode ignores --kernel, --initrd and --append)"),
            (self.initrd.is_some(), "--initrd", "the OVMF + SVSM launch measures no kernel hashes table (sev-snp-measure's snp:svsm mode ignores --kernel, --initrd and --append)"),
            (self.append.is_some(), "--append", "the OVMF + SVSM launch measures no kernel hashes table (sev-snp-measure's snp:svsm mode ignores --kernel, --initrd and --append)"),
            (self.ovmf_hash.is_some(), "--ovmf-hash", "the OVMF + SVSM digest is computed from both images' pages (sev-snp-measure's snp:svsm mode ignores --snp-ovmf-hash)"),
            (self.guest_features.is_some(), "--guest-features", "every VMSA of the OVMF + SVSM launch has SEV_FEATURES 0x1, as sev-snp-measure's snp:svsm mode builds it (it ignores --guest-features)"),
            (self.vmsa_form.is_some(), "--vmsa-form", "the OVMF + SVSM launch's VMSA has fixed FPU fields (MXCSR 0x1F80, x87 FCW 0), as sev-snp-measure 0.0.13's snp:svsm mode builds it"),
            (self.vmm_type != VmmArg::Qemu, "--vmm-type", "the OVMF + SVSM launch is modelled for QEMU only (sev-snp-measure's snp:svsm mode refuses other VMMs)"),
        ];
        if let Some((_, opt, why)) = refused.iter().find(|(given, _, _)| *given) {
            return Err(Error::Usage(format!(
                "{opt} cannot be used with --svsm: {why}"
            )));
        }
        let vars = match (self.vars_size, &self.vars_file) {
            (Some(n), _) => VarsSize::Bytes(n),
            (None, Some(f)) => VarsSize::File(f.clone()),
            (None, None) => {
                return Err(Error::Usage(
                    "--svsm needs --vars-size or --vars-file: the SVSM image ends where the OVMF_VARS flash begins, so its address depends on that size".into(),
                ))
            }
        };
        let Some(vcpu_signature) = vcpu_signature(self)? else {
            return Err(Error::Usage(
                "--svsm loads the vCPU signature into every VMSA: give --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping".into(),
            ));
        };
        let (Some(ovmf), Some(vcpus)) = (self.ovmf.clone(), self.vcpus) else {
            return Err(Error::Usage(
                "--svsm needs the OVMF image with --ovmf FILE and the vCPU count with --vcpus N"
                    .into(),
            ));
        };
        Ok(Some(SvsmInput {
            ovmf,
            svsm: svsm.clone(),
            vars,
            vcpus,
            vcpu_signature,
        }))
    }
}

/// The launch of `snp-digest`'s options, its warnings and (`--verbose`)
/// what went into it printed on stderr.
fn compute_launch(a: &DigestArgs) -> Result<ComputedLaunch> {
    if let Some(file) = &a.igvm {
        return compute_igvm(a, file);
    }
    let files = [
        ("--ovmf", a.ovmf.as_ref()),
        ("--kernel", a.kernel.as_ref()),
        ("--initrd", a.initrd.as_ref()),
        ("--svsm", a.svsm.as_ref()),
        ("--vars-file", a.vars_file.as_ref()),
    ];
    crate::input::at_most_one_stdin(
        files
            .into_iter()
            .filter_map(|(n, p)| Some((n, p?.as_path()))),
    )?;
    let launch = match a.svsm_input()? {
        Some(s) => svsm::compute(&s)?,
        None => digest::compute(&a.input()?)?,
    };
    for w in &launch.warnings {
        eprintln!("WARNING: {w}");
    }
    if a.verbose {
        eprint!("{}", launch.describe());
    }
    Ok(launch)
}

/// The launch of `--igvm FILE`.
fn compute_igvm(a: &DigestArgs, file: &std::path::Path) -> Result<ComputedLaunch> {
    if a.guest_features.unwrap_or(0x1) != 0x1 || a.vmm_type != VmmArg::Qemu {
        return Err(Error::Usage(
            "--guest-features and --vmm-type do not apply to --igvm: the file's VMSAs carry SEV_FEATURES, and only QEMU loads IGVM files".into(),
        ));
    }
    crate::input::at_most_one_stdin(
        [
            ("--igvm", Some(file)),
            ("--host-igvm", a.host_igvm.as_deref()),
        ]
        .into_iter()
        .filter_map(|(n, p)| Some((n, p?))),
    )?;
    let c = igvm::compute(&IgvmInput {
        file: file.to_path_buf(),
        vcpus: a.vcpus,
        policy: a.policy,
        check: a.check,
        host_file: a.host_igvm.clone(),
    })?;
    if let (None, Some(note)) = (&a.measurement, c.host_comparison()) {
        eprintln!("NOTE: {note}");
    }
    let launch = ComputedLaunch::from_igvm(c);
    for w in &launch.warnings {
        eprintln!("WARNING: {w}");
    }
    if a.verbose {
        eprint!("{}", launch.describe());
    }
    Ok(launch)
}

/// `snp-digest`'s options alone: what `snp-validate` takes after `--`.
#[derive(Debug, Parser)]
#[command(name = "snp-digest", disable_version_flag = true)]
struct DigestOptions {
    #[command(flatten)]
    args: DigestArgs,
}

/// The launch `snp-digest` computes from `options` (its command line after
/// the subcommand name): how `snp-validate ... -- OPTIONS` gets the expected
/// MEASUREMENT from the same inputs. Parsed once, here, into a
/// [`DigestInput`].
pub fn launch_from_options(options: &[OsString]) -> Result<ComputedLaunch> {
    let mut argv = vec![OsString::from("snp-digest")];
    argv.extend(options.iter().cloned());
    match DigestOptions::try_parse_from(&argv) {
        Ok(DigestOptions { args: a }) => {
            if a.measurement.is_some() {
                return Err(Error::Usage(
                    "the snp-digest options after '--' take no --measurement: snp-validate compares the report's own".into(),
                ));
            }
            compute_launch(&a)
        }
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

pub(crate) fn snp_digest(a: &DigestArgs) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parsing() {
        let h = "a14d638341e5674628fe1e02fbedebe5e5ab4faf1dd72d8966068e615bb99efd13d214b35c231715b38e263dc6059745";
        let ld = parse_ld("d", h).unwrap();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ld);
        assert_eq!(parse_ld("d", &b64).unwrap(), ld);
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
}
