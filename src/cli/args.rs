//! The command line's arguments: the options of libvirt's Python
//! `virt-qemu-sev-validate` with the same long and short forms, its usage
//! checks, and the one conversion into the run's configuration.

use std::path::PathBuf;

use clap::Parser;

use super::guest_agent_args::GuestAgentArgs;
use super::num::{
    family_id, host_data, image_id, parse_api, parse_u32, parse_u64, parse_u8, sev_measurement,
};
use super::snp_options::{EndorsementArgs, RequirementArgs};
use crate::core::cpu;
use crate::core::keys::{self, Tek, Tik};
use crate::core::vmsa::VmsaForm;
use crate::error::{Error, Result};
use crate::generation::{Expected, Generation};
use crate::input;
use crate::sev::policy::Requirements;
use crate::sev::resolve::{Keys, Options, OwnerInputs, VmsaInput};
use crate::sev::secrets::SecretSpec;
use crate::snp::run::SnpOwner;
use crate::snp::validate::Expectations;
use crate::source::{self, Given, LibvirtSpec, QmpSpec, SourceSpec};

const LAUNCH_STATE: &str = "Virtual machine launch state";
const CONFIG: &str = "Virtual machine config";
const CONNECTION: &str = "Libvirt guest connection";
const INJECTION: &str = "Secret injection parameters";
const QMP: &str = "QEMU monitor (QMP) connection";
const REQUIREMENTS: &str = "Owner requirements (checked after the measurement matches)";
const SNP: &str = "SEV-SNP guests (with --domain or --qmp)";

/// `--vmsa-form`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VmsaFormArg {
    Legacy,
    Init2,
}

impl From<VmsaFormArg> for VmsaForm {
    fn from(f: VmsaFormArg) -> VmsaForm {
        match f {
            VmsaFormArg::Legacy => VmsaForm::Legacy,
            VmsaFormArg::Init2 => VmsaForm::Init2,
        }
    }
}

/// `--generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerationArg {
    Sev,
    SevEs,
    SevSnp,
}

impl From<GenerationArg> for Generation {
    fn from(g: GenerationArg) -> Generation {
        match g {
            GenerationArg::Sev => Generation::Sev,
            GenerationArg::SevEs => Generation::SevEs,
            GenerationArg::SevSnp => Generation::SevSnp,
        }
    }
}

/// Validate guest AMD SEV launch measurement.
#[derive(Debug, Parser)]
#[command(
    name = "virt-qemu-sev-validate",
    // The version and, built from a checkout, the git commit (build.rs).
    version = env!("SEV_VALIDATE_VERSION"),
    about = "Validate guest AMD SEV launch measurement",
    long_about = "Validate the launch measurement of an AMD SEV or SEV-ES guest from inputs the guest \
owner trusts (firmware, kernel, initrd, command line, vCPU state, TIK) and only then release secrets into it.",
    // argparse accepts unambiguous prefixes of long options; scripts may rely on it.
    infer_long_args = true
)]
pub struct Args {
    /// Show debug information: every intermediate digest (never the TIK/TEK unless --show-keys)
    #[arg(short = 'd', long)]
    pub debug: bool,

    /// Do not display status lines
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Print one JSON document on stdout with the verdict, values, digests, checks and findings (never secrets)
    #[arg(long)]
    pub json: bool,

    /// With --debug, also print the TIK and TEK in hex (they are secret: use only on a trusted terminal)
    #[arg(long)]
    pub show_keys: bool,

    /// Measurement for the running domain: 48 bytes (MEASURE and nonce) in base64 or 96 hex digits, alone or as virsh domlaunchsecinfo's 'sev-measurement: ...' line
    #[arg(short = 'm', long, value_parser = sev_measurement, help_heading = LAUNCH_STATE)]
    pub measurement: Option<String>,

    /// SEV API major version for the running domain (0-255)
    #[arg(long, value_parser = parse_u8, help_heading = LAUNCH_STATE)]
    pub api_major: Option<u8>,

    /// SEV API minor version for the running domain (0-255)
    #[arg(long, value_parser = parse_u8, help_heading = LAUNCH_STATE)]
    pub api_minor: Option<u8>,

    /// SEV build ID for the running domain (0-255)
    #[arg(long, value_parser = parse_u8, help_heading = LAUNCH_STATE)]
    pub build_id: Option<u8>,

    /// SEV policy for the running domain (decimal, or hex with 0x)
    #[arg(long, value_parser = parse_u32, help_heading = LAUNCH_STATE)]
    pub policy: Option<u32>,

    /// The guest's generation: sev, sev-es or sev-snp. The host's guest must be of it (exit 10 if not); without it, the options given decide (--tk: SEV or SEV-ES; --report: SEV-SNP), and an SEV-SNP guest needs --generation sev-snp or an SEV-SNP option
    #[arg(long, value_enum, value_name = "GENERATION", help_heading = CONFIG)]
    pub generation: Option<GenerationArg>,

    /// Path to the firmware binary
    #[arg(short = 'f', long, help_heading = CONFIG)]
    pub firmware: Option<PathBuf>,

    /// SEV-SNP guest launched from an IGVM file (QEMU 10.1+ -object igvm-cfg, e.g. COCONUT-SVSM): the owner's copy, measured in place of --firmware and compared with the file QEMU loaded
    #[arg(long, value_name = "FILE", help_heading = CONFIG, conflicts_with_all = ["firmware", "kernel", "initrd", "cmdline"])]
    pub igvm: Option<PathBuf>,

    /// Path to the kernel binary
    #[arg(short = 'k', long, help_heading = CONFIG)]
    pub kernel: Option<PathBuf>,

    /// Path to the initrd binary
    #[arg(short = 'r', long, help_heading = CONFIG)]
    pub initrd: Option<PathBuf>,

    /// Cmdline string booted with
    #[arg(short = 'e', long, help_heading = CONFIG)]
    pub cmdline: Option<String>,

    /// Number of virtual CPUs (SEV-ES)
    #[arg(short = 'n', long, value_parser = parse_u32, help_heading = CONFIG)]
    pub num_cpus: Option<u32>,

    /// VMSA state for the boot CPU (4096-byte file)
    #[arg(short = '0', long, help_heading = CONFIG)]
    pub vmsa_cpu0: Option<PathBuf>,

    /// VMSA state for the additional CPUs (4096-byte file)
    #[arg(short = '1', long, help_heading = CONFIG)]
    pub vmsa_cpu1: Option<PathBuf>,

    /// Hypervisor host CPU family number
    #[arg(long, value_parser = parse_u32, help_heading = CONFIG)]
    pub cpu_family: Option<u32>,

    /// Hypervisor host CPU model number
    #[arg(long, value_parser = parse_u32, help_heading = CONFIG)]
    pub cpu_model: Option<u32>,

    /// Hypervisor host CPU stepping number
    #[arg(long, value_parser = parse_u32, help_heading = CONFIG)]
    pub cpu_stepping: Option<u32>,

    /// Form of the VMSAs built from a CPU SKU: legacy (KVM_SEV_ES_INIT, released QEMU's default) or init2 (KVM_SEV_INIT2: Linux 6.10+ with QEMU legacy-vm-type=off) [default: legacy for SEV-ES, init2 for SEV-SNP]
    #[arg(long, value_enum, help_heading = CONFIG)]
    pub vmsa_form: Option<VmsaFormArg>,

    /// SEV_FEATURES of the VMSAs built from a CPU SKU (e.g. 0x20 DebugSwap on Linux 6.5-6.7 hosts) [default: 0 for SEV-ES, 0x1 (SNPActive) for SEV-SNP]
    #[arg(long, value_parser = parse_u64, help_heading = CONFIG)]
    pub sev_features: Option<u64>,

    /// TIK file for domain (16 bytes)
    #[arg(long, help_heading = CONFIG)]
    pub tik: Option<PathBuf>,

    /// TEK file for domain (16 bytes)
    #[arg(long, help_heading = CONFIG)]
    pub tek: Option<PathBuf>,

    /// TEK/TIK combined file for domain (32 bytes: TEK, then TIK)
    #[arg(long, help_heading = CONFIG)]
    pub tk: Option<PathBuf>,

    /// libvirt connection URI (default: $LIBVIRT_DEFAULT_URI, else qemu:///system)
    #[arg(short = 'c', long, help_heading = CONNECTION)]
    pub connect: Option<String>,

    /// domain ID / Name / UUID
    #[arg(short = 'o', long, help_heading = CONNECTION)]
    pub domain: Option<String>,

    /// QEMU's QMP monitor of the guest, instead of libvirt: a unix socket path or HOST:PORT
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "domain", help_heading = QMP)]
    pub qmp: Option<String>,

    /// Seconds to wait for each QMP answer before giving up
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = parse_u32, help_heading = QMP)]
    pub qmp_timeout: u32,

    /// Proceed even if usage scenario is insecure
    #[arg(short = 'i', long, help_heading = CONNECTION)]
    pub insecure: bool,

    /// Do not attempt to sanity check the guest config
    #[arg(short = 'g', long, help_heading = CONNECTION)]
    pub ignore_config: bool,

    /// Require at least this SEV firmware API version (MAJOR.MINOR)
    #[arg(long, value_name = "MAJOR.MINOR", value_parser = parse_api, help_heading = REQUIREMENTS)]
    pub min_api: Option<(u8, u8)>,

    /// Allow only these SEV firmware build IDs (repeatable)
    #[arg(long, value_name = "BUILD", value_parser = parse_u8, help_heading = REQUIREMENTS)]
    pub allow_build: Vec<u8>,

    /// Require these policy bits to be set (mask, e.g. 0x1 for NODBG)
    #[arg(long, value_name = "MASK", value_parser = parse_u32, help_heading = REQUIREMENTS)]
    pub require_policy: Option<u32>,

    /// Require these policy bits to be clear (mask)
    #[arg(long, value_name = "MASK", value_parser = parse_u32, help_heading = REQUIREMENTS)]
    pub forbid_policy: Option<u32>,

    /// ALIAS-OR-GUID:PATH file containing secret to inject (repeatable; alias luks-key)
    #[arg(short = 's', long, help_heading = INJECTION)]
    pub inject_secret: Vec<String>,

    /// With --domain or --qmp: guest physical address to inject the secret at (default: the firmware's secret area)
    #[arg(long, value_parser = parse_u64, help_heading = INJECTION)]
    pub secret_address: Option<u64>,

    /// With --domain or --qmp: leave the guest paused after injecting (to inject again; resume it with 'virsh resume' or QMP 'cont')
    #[arg(long, help_heading = INJECTION)]
    pub no_resume: bool,

    /// Path to file to write secret data payload to (base64)
    #[arg(long, help_heading = INJECTION)]
    pub secret_payload: Option<PathBuf>,

    /// Path to file to write secret data header to (base64)
    #[arg(long, help_heading = INJECTION)]
    pub secret_header: Option<PathBuf>,

    /// With --domain or --qmp on an SEV-SNP guest: the attestation report the guest obtained (raw, an SNP_GET_REPORT response, or followed by its certificate table), validated against the domain and the owner's files
    #[arg(long, value_name = "REPORT", help_heading = SNP)]
    pub report: Option<PathBuf>,

    /// With --report on an SEV-SNP guest: the nonce given to its snp-request (64 hex digits or base64); REPORT_DATA must bind it and the evidence's public key
    #[arg(long, value_name = "NONCE", value_parser = super::snp_key_release::parse_nonce, help_heading = SNP,
          conflicts_with_all = ["report_data", "no_report_data_check"])]
    pub nonce: Option<[u8; 32]>,

    /// With --report and --nonce on an SEV-SNP guest: seal the --inject-secret secrets to the guest's key into this file (0600) once everything validated
    #[arg(long, value_name = "FILE", help_heading = SNP)]
    pub sealed_out: Option<PathBuf>,

    /// With --domain or --qmp on an SEV-SNP guest: the HOST_DATA you expect (32 bytes: 64 hex digits or base64), held against the domain's <hostData> and the report; without it, HOST_DATA is only the host's declaration
    #[arg(long, value_name = "HEX", value_parser = host_data, help_heading = SNP)]
    pub host_data: Option<[u8; 32]>,

    /// With --domain or --qmp on an SEV-SNP guest: the FAMILY_ID you expect (16 bytes: 32 hex digits or base64), held against the domain's <idBlock> and the report
    #[arg(long, value_name = "HEX", value_parser = family_id, help_heading = SNP)]
    pub family_id: Option<[u8; 16]>,

    /// With --domain or --qmp on an SEV-SNP guest: the IMAGE_ID you expect (16 bytes: 32 hex digits or base64), held against the domain's <idBlock> and the report
    #[arg(long, value_name = "HEX", value_parser = image_id, help_heading = SNP)]
    pub image_id: Option<[u8; 16]>,

    #[command(flatten)]
    pub endorsement: EndorsementArgs,

    #[command(flatten)]
    pub snp_requirements: RequirementArgs,

    #[command(flatten)]
    pub guest: GuestAgentArgs,
}

/// The usage checks of the Python tool, in its order, before any work.
pub fn check_usage(a: &Args) -> Result<()> {
    let usage = |m: &str| Err(Error::Usage(m.to_string()));
    if a.tk.is_some() && (a.tik.is_some() || a.tek.is_some()) {
        return usage("--tk is mutually exclusive with --tek/--tik");
    }
    // With --domain or --qmp the guest may be SEV-SNP, which has no TIK:
    // the keys are required once the source says the guest is SEV.
    if a.domain.is_none() && a.qmp.is_none() {
        check_keys_given(a)?;
    }
    if a.domain.is_none() && a.qmp.is_some() && a.firmware.is_none() && a.igvm.is_none() {
        return usage("--qmp needs --firmware (or --igvm for a guest launched from an IGVM file): QEMU does not say which firmware it loaded");
    }
    if a.domain.is_none() && a.qmp.is_none() {
        let required = [
            (a.measurement.is_none(), "--measurement"),
            (a.api_major.is_none(), "--api-major"),
            (a.api_minor.is_none(), "--api-minor"),
            (a.build_id.is_none(), "--build-id"),
            (a.policy.is_none(), "--policy"),
            (a.firmware.is_none(), "--firmware"),
        ];
        if let Some((_, name)) = required.iter().find(|(missing, _)| *missing) {
            return usage(&format!("Either {name} or --domain is required"));
        }
        if !a.inject_secret.is_empty() {
            if a.secret_header.is_none() {
                return usage("Either --secret-header or --domain is required");
            }
            if a.secret_payload.is_none() {
                return usage("Either --secret-payload or --domain is required");
            }
        }
    }
    if a.kernel.is_none() && (a.initrd.is_some() || a.cmdline.is_some()) {
        return usage("--initrd/--cmdline require --kernel");
    }
    let sku = [a.cpu_family, a.cpu_model, a.cpu_stepping];
    let given = sku.iter().filter(|v| v.is_some()).count();
    if given == 0 {
        if a.vmsa_cpu1.is_some() && a.vmsa_cpu0.is_none() {
            return usage("VMSA for additional CPU also requires VMSA for boot CPU");
        }
    } else {
        if a.vmsa_cpu0.is_some() || a.vmsa_cpu1.is_some() {
            return usage("VMSA files are mutually exclusive with CPU SKU");
        }
        if given != 3 {
            return usage("CPU SKU needs family, model and stepping for SEV-ES domain");
        }
    }
    if a.secret_header.is_some() != a.secret_payload.is_some() {
        return usage("Both --secret-payload and --secret-header are required");
    }
    if a.domain.is_none() && a.qmp.is_none() && (a.secret_address.is_some() || a.no_resume) {
        return usage(
            "--secret-address and --no-resume need --domain or --qmp (offline, the host injects the files)",
        );
    }
    if a.show_keys && !a.debug {
        return usage("--show-keys only makes sense with --debug");
    }
    Ok(())
}

/// An SEV guest is validated with its TIK: --tk, or --tik and --tek.
pub fn check_keys_given(a: &Args) -> Result<()> {
    if a.tk.is_none() && (a.tik.is_none() || a.tek.is_none()) {
        return Err(Error::Usage(
            "Either --tk or both of --tek/--tik are required".into(),
        ));
    }
    Ok(())
}

/// The TIK and TEK from --tik/--tek or --tk.
fn load_keys(a: &Args) -> Result<(Tik, Tek)> {
    if let Some(tk) = &a.tk {
        let b = input::read_exact_file("TK file", tk, 2 * keys::KEY_LEN)?;
        let (tek, tik) = keys::split_tk(&b).ok_or_else(|| Error::Unexpected("TK split".into()))?;
        return Ok((tik, tek));
    }
    let (Some(tik_path), Some(tek_path)) = (&a.tik, &a.tek) else {
        return Err(Error::Usage(
            "Either --tk or both of --tek/--tik are required".into(),
        ));
    };
    let tik = input::read_exact_file("TIK file", tik_path, keys::KEY_LEN)?;
    let tek = input::read_exact_file("TEK file", tek_path, keys::KEY_LEN)?;
    Ok((
        Tik::from_slice(&tik).ok_or_else(|| Error::Unexpected("TIK length".into()))?,
        Tek::from_slice(&tek).ok_or_else(|| Error::Unexpected("TEK length".into()))?,
    ))
}

/// What a run needs, decided once from the arguments.
pub struct Config {
    pub spec: SourceSpec,
    pub owner: OwnerInputs,
    pub options: Options,
    pub requirements: Requirements,
    pub secrets: Vec<SecretSpec>,
    pub secret_address: Option<u64>,
    /// The generation the owner expects, if the options say.
    pub generation: Option<Expected>,
}

impl Config {
    /// The usage checks, then every argument turned into the stages' types
    /// (secret files are checked to exist). The key files are read
    /// separately ([`Args::keys`]).
    pub fn from_args(a: &Args) -> Result<Config> {
        check_usage(a)?;
        let generation = a.expected_generation()?;
        super::args_outputs::check_outputs(a)?;
        // --guest-agent's guest paths and secrets, before connecting.
        a.guest.plan(&a.inject_secret)?;
        let secrets = a
            .inject_secret
            .iter()
            .map(|s| SecretSpec::parse(s))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // A typo in a secret's path is found before any work.
        crate::sev::secrets::check_files(&secrets)?;
        Ok(Config {
            spec: a.source_spec(),
            owner: a.owner_inputs()?,
            options: Options {
                insecure: a.insecure,
                ignore_config: a.ignore_config,
            },
            requirements: Requirements {
                min_api: a.min_api,
                allowed_builds: a.allow_build.clone(),
                required_bits: a.require_policy.unwrap_or(0),
                forbidden_bits: a.forbid_policy.unwrap_or(0),
            },
            secrets,
            secret_address: a.secret_address,
            generation,
        })
    }
}

impl Args {
    /// The source: `--qmp`, `--domain`, else offline.
    pub fn source_spec(&self) -> SourceSpec {
        if let Some(endpoint) = &self.qmp {
            return SourceSpec::Qmp(QmpSpec {
                endpoint: endpoint.clone(),
                timeout: std::time::Duration::from_secs(u64::from(self.qmp_timeout.max(1))),
                insecure: self.insecure,
                resume: !self.no_resume,
                secret_address: self.secret_address,
            });
        }
        if let Some(domain) = &self.domain {
            return SourceSpec::Libvirt(LibvirtSpec {
                uri: source::effective_uri(self.connect.as_deref()),
                domain: domain.clone(),
                insecure: self.insecure,
                resume: !self.no_resume,
                secret_address: self.secret_address,
            });
        }
        SourceSpec::Offline {
            secret_files: self.secret_header.clone().zip(self.secret_payload.clone()),
        }
    }

    /// The launch values the command line gives.
    pub fn given(&self) -> Given<'_> {
        Given {
            measurement: self.measurement.as_deref(),
            api_major: self.api_major,
            api_minor: self.api_minor,
            build_id: self.build_id,
            policy: self.policy,
        }
    }

    fn owner_inputs(&self) -> Result<OwnerInputs> {
        let vmsa = if let Some(p0) = &self.vmsa_cpu0 {
            VmsaInput::Files(p0.clone(), self.vmsa_cpu1.clone())
        } else if let (Some(f), Some(m), Some(s)) =
            (self.cpu_family, self.cpu_model, self.cpu_stepping)
        {
            VmsaInput::Signature(cpu::signature(f, m, s).map_err(|e| Error::Usage(e.to_string()))?)
        } else {
            VmsaInput::None
        };
        Ok(OwnerInputs {
            firmware: self.firmware.clone(),
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
            cmdline: self.cmdline.clone(),
            num_cpus: self.num_cpus,
            vmsa,
            vmsa_form: self.vmsa_form.unwrap_or(VmsaFormArg::Legacy).into(),
            sev_features: self.sev_features.unwrap_or(0),
        })
    }

    /// The TIK and TEK from --tik/--tek or --tk.
    pub fn keys(&self) -> Result<Keys> {
        let (tik, tek) = load_keys(self)?;
        Ok(Keys {
            tik,
            tek,
            from_tk_file: self.tk.is_some(),
        })
    }
}

impl Args {
    /// The options of an SEV-SNP guest's owner (those only SEV has were
    /// refused with the generation, [`Args::expected_generation`]).
    pub fn snp_owner(&self) -> Result<SnpOwner> {
        let vcpu_signature = match (self.cpu_family, self.cpu_model, self.cpu_stepping) {
            (Some(f), Some(m), Some(s)) => {
                Some(cpu::signature(f, m, s).map_err(|e| Error::Usage(e.to_string()))?)
            }
            _ => None,
        };
        Ok(SnpOwner {
            firmware: self.firmware.clone(),
            igvm: self.igvm.clone(),
            kernel: self.kernel.clone(),
            initrd: self.initrd.clone(),
            cmdline: self.cmdline.clone(),
            num_cpus: self.num_cpus,
            vcpu_signature,
            sev_features: self.sev_features,
            vmsa_form: self.vmsa_form.map(VmsaForm::from),
            policy: self.policy.map(u64::from),
            insecure: self.insecure,
            ignore_config: self.ignore_config,
            expectations: Expectations {
                host_data: self.host_data,
                family_id: self.family_id,
                image_id: self.image_id,
                ..self.snp_requirements.expectations()?
            },
            report: self.report.clone(),
            endorsement: self.endorsement.source(),
            nonce: self.nonce,
            seal: super::snp_key_release::main_seal_plan(
                &self.inject_secret,
                self.nonce,
                self.report.is_some(),
                self.sealed_out.as_ref(),
            )?,
            agent: self.guest.plan(&self.inject_secret)?,
        })
    }

    /// The generation the owner expects: `--generation`, else what the
    /// options given imply. Offline, the launch values are SEV's.
    pub fn expected_generation(&self) -> Result<Option<Expected>> {
        let expected = Expected::from_options(
            self.generation.map(Generation::from),
            &self.sev_options(),
            &self.snp_options(),
        )?;
        let offline = self.domain.is_none() && self.qmp.is_none();
        if offline
            && expected
                .as_ref()
                .is_some_and(|e| e.allows(Generation::SevSnp))
        {
            return Err(Error::Usage(
                "offline, the launch values given are an SEV or SEV-ES launch's; an SEV-SNP guest \
                 is checked from its attestation report: snp-validate REPORT --report-data NONCE \
                 -- --ovmf FILE ..., or --domain/--qmp with --report"
                    .into(),
            ));
        }
        Ok(expected)
    }

    /// The options given that only SEV and SEV-ES guests have.
    fn sev_options(&self) -> Vec<&'static str> {
        let given = [
            (self.tk.is_some(), "--tk"),
            (self.tik.is_some(), "--tik"),
            (self.tek.is_some(), "--tek"),
            (self.measurement.is_some(), "--measurement"),
            (self.api_major.is_some(), "--api-major"),
            (self.api_minor.is_some(), "--api-minor"),
            (self.build_id.is_some(), "--build-id"),
            (self.vmsa_cpu0.is_some(), "--vmsa-cpu0"),
            (self.vmsa_cpu1.is_some(), "--vmsa-cpu1"),
            (self.min_api.is_some(), "--min-api"),
            (!self.allow_build.is_empty(), "--allow-build"),
            (self.require_policy.is_some(), "--require-policy"),
            (self.forbid_policy.is_some(), "--forbid-policy"),
            (
                !self.inject_secret.is_empty()
                    && self.sealed_out.is_none()
                    && !self.guest.guest_agent,
                "--inject-secret",
            ),
            (self.secret_header.is_some(), "--secret-header"),
            (self.secret_payload.is_some(), "--secret-payload"),
            (self.secret_address.is_some(), "--secret-address"),
        ];
        given.iter().filter(|(g, _)| *g).map(|(_, n)| *n).collect()
    }

    /// The options given that only SEV-SNP guests have.
    fn snp_options(&self) -> Vec<&'static str> {
        let (r, e) = (&self.snp_requirements, &self.endorsement);
        let given = [
            (self.report.is_some(), "--report"),
            (self.igvm.is_some(), "--igvm"),
            (self.nonce.is_some(), "--nonce"),
            (self.sealed_out.is_some(), "--sealed-out"),
            (self.host_data.is_some(), "--host-data"),
            (self.family_id.is_some(), "--family-id"),
            (self.image_id.is_some(), "--image-id"),
            (r.report_data.is_some(), "--report-data"),
            (r.no_report_data_check, "--no-report-data-check"),
            (r.report_id.is_some(), "--report-id"),
            (r.report_id_ma.is_some(), "--report-id-ma"),
            (r.chip_id.is_some(), "--chip-id"),
            (r.max_policy.is_some(), "--max-policy"),
            (r.min_guest_svn.is_some(), "--min-guest-svn"),
            (r.min_build.is_some(), "--min-build"),
            (r.min_version.is_some(), "--min-version"),
            (r.min_tcb.is_some(), "--min-tcb"),
            (r.min_launch_tcb.is_some(), "--min-launch-tcb"),
            (r.max_platform_info.is_some(), "--max-platform-info"),
            (r.vmpl.is_some(), "--vmpl"),
            (
                !r.trusted_id_key.is_empty() || !r.trusted_id_key_digest.is_empty(),
                "--trusted-id-key",
            ),
            (
                !r.trusted_author_key.is_empty() || !r.trusted_author_key_digest.is_empty(),
                "--trusted-author-key",
            ),
            (r.require_author_key, "--require-author-key"),
            (r.min_launch_mit_vector.is_some(), "--min-launch-mit-vector"),
            (
                r.min_current_mit_vector.is_some(),
                "--min-current-mit-vector",
            ),
            (r.allow_debug, "--allow-debug"),
            (r.allow_migrate_ma, "--allow-migrate-ma"),
            (r.allow_provisional_firmware, "--allow-provisional-firmware"),
            (e.vcek.is_some(), "--vcek"),
            (e.vlek.is_some(), "--vlek"),
            (e.certs.is_some(), "--certs"),
            (e.cert_table.is_some(), "--cert-table"),
            (!e.trust_anchors.is_empty(), "--trust-anchors"),
            (e.product.is_some(), "--product"),
            (e.kds_url != crate::core::snp_report::KDS_BASE, "--kds-url"),
            (e.kds_cache.is_some(), "--kds-cache"),
            (e.offline, "--offline"),
            (e.now.is_some(), "--now"),
            (self.guest.guest_agent, "--guest-agent"),
        ];
        given.iter().filter(|(g, _)| *g).map(|(_, n)| *n).collect()
    }
}
