//! The command line: the options of libvirt's Python `virt-qemu-sev-validate`
//! with the same long and short forms, usage checks and exit codes.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Parser;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::checks;
use crate::core::keys::{self, Tek, Tik};
use crate::core::measurement::{self, LaunchInfo, Measurement};
use crate::core::secret::{self, SecretTable};
use crate::core::vmsa::{VmsaConfig, VmsaForm};
use crate::core::{cpu, guid, hex};
use crate::error::{Error, Result};
use crate::explain;
use crate::launch::{self, Firmware, VmsaSource, POLICY_ES};
use crate::report::Report;
use crate::source::libvirt::{self, Libvirt};
use crate::source::offline::Offline;
use crate::source::qmp::Qmp;
use crate::source::LaunchSource;

const LAUNCH_STATE: &str = "Virtual machine launch state";
const CONFIG: &str = "Virtual machine config";
const CONNECTION: &str = "Libvirt guest connection";
const INJECTION: &str = "Secret injection parameters";
const QMP: &str = "QEMU monitor (QMP) connection";
const REQUIREMENTS: &str = "Owner requirements (checked after the measurement matches)";

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

/// Validate guest AMD SEV launch measurement.
#[derive(Debug, Parser)]
#[command(
    name = "virt-qemu-sev-validate",
    version,
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

    /// Measurement for the running domain: base64 of 48 bytes (MEASURE and nonce)
    #[arg(short = 'm', long, help_heading = LAUNCH_STATE)]
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

    /// Path to the firmware binary
    #[arg(short = 'f', long, help_heading = CONFIG)]
    pub firmware: Option<PathBuf>,

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

    /// Form of the VMSAs built from a CPU SKU: legacy (KVM_SEV_ES_INIT, released QEMU's default) or init2 (KVM_SEV_INIT2: Linux 6.10+ with QEMU legacy-vm-type=off)
    #[arg(long, value_enum, default_value_t = VmsaFormArg::Legacy, help_heading = CONFIG)]
    pub vmsa_form: VmsaFormArg,

    /// SEV_FEATURES of the VMSAs built from a CPU SKU (e.g. 0x20 DebugSwap on Linux 6.5-6.7 hosts)
    #[arg(long, value_parser = parse_u64, default_value = "0", help_heading = CONFIG)]
    pub sev_features: u64,

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

    /// With --domain: leave the domain paused after injecting (to inject again)
    #[arg(long, help_heading = INJECTION)]
    pub no_resume: bool,

    /// Path to file to write secret data payload to (base64)
    #[arg(long, help_heading = INJECTION)]
    pub secret_payload: Option<PathBuf>,

    /// Path to file to write secret data header to (base64)
    #[arg(long, help_heading = INJECTION)]
    pub secret_header: Option<PathBuf>,
}

fn parse_int(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| format!("'{s}' is not a non-negative integer"))
}

fn parse_u8(s: &str) -> std::result::Result<u8, String> {
    let v = parse_int(s)?;
    u8::try_from(v).map_err(|_| {
        format!("{v} is out of range: the SEV firmware reports this as one byte (0 to 255)")
    })
}

fn parse_u64(s: &str) -> std::result::Result<u64, String> {
    parse_int(s)
}

fn parse_api(s: &str) -> std::result::Result<(u8, u8), String> {
    let (maj, min) = s
        .split_once('.')
        .ok_or_else(|| format!("'{s}' is not MAJOR.MINOR (for example 1.51)"))?;
    Ok((parse_u8(maj)?, parse_u8(min)?))
}

fn parse_u32(s: &str) -> std::result::Result<u32, String> {
    let v = parse_int(s)?;
    u32::try_from(v).map_err(|_| format!("{v} is out of range (0 to {})", u32::MAX))
}

/// Status lines on stdout, debug lines on stderr.
pub struct Log {
    pub quiet: bool,
    pub debug: bool,
    /// --json: stdout carries only the JSON document.
    pub json: bool,
    /// What --json prints, filled in as the run goes.
    pub report: std::cell::RefCell<Report>,
}

impl Log {
    pub fn status(&self, msg: &str) {
        if !self.quiet && !self.json {
            // A closed stdout (e.g. `| head`) must not turn into a panic.
            let _ = writeln!(std::io::stdout(), "{msg}");
        }
    }

    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            eprintln!("WARNING: {msg}");
        }
        self.report.borrow_mut().warnings.push(msg.to_string());
    }

    /// A diagnosis line on stderr (not with --quiet).
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("NOTE: {msg}");
        }
    }

    pub fn check(&self, name: &str, passed: Option<bool>, message: impl Into<String>) {
        self.report.borrow_mut().check(name, passed, message);
    }

    pub fn debug(&self, label: &str, value: impl AsRef<str>) {
        if self.debug {
            eprintln!("[DEBUG]: {label}: {}", value.as_ref());
        }
    }
}

/// A parsed `--inject-secret ALIAS-OR-GUID:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub guid: Uuid,
    pub path: PathBuf,
}

/// Known secret aliases.
pub const SECRET_ALIASES: &[(&str, Uuid)] = &[("luks-key", guid::LUKS_KEY)];

impl SecretSpec {
    /// Splits at the first ':' only, so paths may contain ':'.
    pub fn parse(spec: &str) -> Result<SecretSpec> {
        let (name, path) = spec.split_once(':').ok_or_else(|| {
            Error::Usage(format!(
                "--inject-secret '{spec}' is not ALIAS-OR-GUID:PATH (for example luks-key:/path/to/key)"
            ))
        })?;
        if path.is_empty() {
            return Err(Error::Usage(format!(
                "--inject-secret '{spec}' names no file after ':'"
            )));
        }
        let guid = match SECRET_ALIASES.iter().find(|(a, _)| *a == name) {
            Some((_, g)) => *g,
            None if is_guid_string(name) => Uuid::parse_str(name)
                .map_err(|e| Error::Usage(format!("secret GUID '{name}' is not valid: {e}")))?,
            None => {
                let known: Vec<&str> = SECRET_ALIASES.iter().map(|(a, _)| *a).collect();
                return Err(Error::Usage(format!(
                    "secret alias '{name}' is not known; use a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) or one of: {}",
                    known.join(", ")
                )));
            }
        };
        Ok(SecretSpec {
            guid,
            path: PathBuf::from(path),
        })
    }
}

fn is_guid_string(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The usage checks of the Python tool, in its order, before any work.
pub fn check_usage(a: &Args) -> Result<()> {
    let usage = |m: &str| Err(Error::Usage(m.to_string()));
    if a.tk.is_some() {
        if a.tik.is_some() || a.tek.is_some() {
            return usage("--tk is mutually exclusive with --tek/--tik");
        }
    } else if a.tik.is_none() || a.tek.is_none() {
        return usage("Either --tk or both of --tek/--tik are required");
    }
    if a.domain.is_none() && a.qmp.is_some() && a.firmware.is_none() {
        return usage("--qmp needs --firmware: QEMU does not say which firmware it loaded");
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

/// The TIK and TEK from --tik/--tek or --tk.
fn load_keys(a: &Args) -> Result<(Tik, Tek)> {
    if let Some(tk) = &a.tk {
        let b = launch::read_exact_file("TK file", tk, 2 * keys::KEY_LEN)?;
        let (tek, tik) = keys::split_tk(&b).ok_or_else(|| Error::Unexpected("TK split".into()))?;
        return Ok((tik, tek));
    }
    let (Some(tik_path), Some(tek_path)) = (&a.tik, &a.tek) else {
        return Err(Error::Usage(
            "Either --tk or both of --tek/--tik are required".into(),
        ));
    };
    let tik = launch::read_exact_file("TIK file", tik_path, keys::KEY_LEN)?;
    let tek = launch::read_exact_file("TEK file", tek_path, keys::KEY_LEN)?;
    Ok((
        Tik::from_slice(&tik).ok_or_else(|| Error::Unexpected("TIK length".into()))?,
        Tek::from_slice(&tek).ok_or_else(|| Error::Unexpected("TEK length".into()))?,
    ))
}

/// Where the owner's SEV-ES VMSAs come from.
#[derive(Debug, Clone)]
pub enum VmsaInput {
    None,
    Files(PathBuf, Option<PathBuf>),
    Signature(u32),
}

/// The inputs the measurement is recomputed from. The owner gives them; with
/// --domain and --insecure the host may fill in the rest.
#[derive(Debug, Clone)]
pub struct OwnerInputs {
    pub firmware: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
    pub num_cpus: Option<u32>,
    pub vmsa: VmsaInput,
    pub vmsa_form: VmsaForm,
    pub sev_features: u64,
    /// The host's CPU signature, when the host reported one (for the explainer).
    pub host_signature: Option<u32>,
    /// Policies the host reported that differ from the one used (for the explainer).
    pub other_policies: Vec<(u32, String)>,
    pub tk_file: bool,
    /// --secret-address, if given.
    pub secret_address: Option<u64>,
}

impl OwnerInputs {
    fn from_args(a: &Args) -> Result<OwnerInputs> {
        let vmsa = if let Some(p0) = &a.vmsa_cpu0 {
            VmsaInput::Files(p0.clone(), a.vmsa_cpu1.clone())
        } else if let (Some(f), Some(m), Some(s)) = (a.cpu_family, a.cpu_model, a.cpu_stepping) {
            VmsaInput::Signature(cpu::signature(f, m, s).map_err(Error::Usage)?)
        } else {
            VmsaInput::None
        };
        Ok(OwnerInputs {
            firmware: a.firmware.clone(),
            kernel: a.kernel.clone(),
            initrd: a.initrd.clone(),
            cmdline: a.cmdline.clone(),
            num_cpus: a.num_cpus,
            vmsa,
            vmsa_form: a.vmsa_form.into(),
            sev_features: a.sev_features,
            host_signature: None,
            other_policies: Vec::new(),
            tk_file: a.tk.is_some(),
            secret_address: a.secret_address,
        })
    }
}

/// Runs the tool, reports the outcome (ERROR/HINT lines, or the JSON
/// document) and returns the exit code.
pub fn execute(a: &Args) -> i32 {
    let log = Log {
        quiet: a.quiet,
        debug: a.debug,
        json: a.json,
        report: std::cell::RefCell::new(Report {
            schema_version: crate::report::SCHEMA_VERSION,
            source: if a.domain.is_some() {
                "libvirt"
            } else if a.qmp.is_some() {
                "qmp"
            } else {
                "offline"
            }
            .into(),
            ..Report::default()
        }),
    };
    let outcome = run(a, &log);
    let code = match &outcome {
        Ok(()) => crate::ExitCode::Ok,
        Err(e) => e.exit_code(),
    } as i32;
    let mut report = log.report.borrow_mut();
    report.exit_code = code;
    match &outcome {
        Ok(()) => report.verdict = "validated".into(),
        Err(e) => {
            if report.verdict.is_empty() {
                report.verdict = "error".into();
            }
            report.error = Some(e.to_string());
            eprintln!("ERROR: {e}");
            if !a.quiet && !a.json {
                if let Some(x) = &report.explanation {
                    eprintln!("HINT: {}", x.hint);
                }
            }
        }
    }
    if a.json {
        match serde_json::to_string_pretty(&*report) {
            Ok(j) => {
                let _ = writeln!(std::io::stdout(), "{j}");
            }
            Err(e) => eprintln!("ERROR: cannot encode the JSON report: {e}"),
        }
    }
    code
}

/// The whole program: parse, run, map the outcome to the Python tool's exit
/// codes. `register` adds optional sources (the libvirt executable passes
/// [`enable_libvirt`]). Panics become exit status 6.
pub fn main_entry(register: Option<fn()>) -> i32 {
    std::panic::catch_unwind(|| {
        if let Some(r) = register {
            r();
        }
        // The SEV-SNP subcommands have their own parser; the drop-in options stay as they are.
        if let Some(code) =
            crate::snp_cli::main_if_subcommand(&std::env::args_os().collect::<Vec<_>>())
        {
            return code;
        }
        let args = match Args::try_parse() {
            Ok(a) => a,
            Err(e) => {
                // Usage errors exit 2 as with argparse; with --json the document
                // still comes, so machines see the same shape for every failure.
                if e.use_stderr() && std::env::args().any(|a| a == "--json") {
                    print_usage_error_json(&e.to_string());
                }
                e.exit()
            }
        };
        if args.domain.is_some() && !libvirt_enabled() {
            // Only returns when the libvirt executable cannot be run.
            let e = exec_libvirt_executable();
            eprintln!("ERROR: {e}");
            return e.exit_code() as i32;
        }
        execute(&args)
    })
    .unwrap_or_else(|_| {
        eprintln!(
            "ERROR: internal error (a bug in virt-qemu-sev-validate); please report it with the command line used"
        );
        crate::ExitCode::Unexpected as i32
    })
}

/// The --json document for a command line that could not be parsed.
pub fn print_usage_error_json(message: &str) {
    let report = Report {
        schema_version: crate::report::SCHEMA_VERSION,
        verdict: "error".into(),
        exit_code: crate::ExitCode::UnsupportedUsage as i32,
        error: Some(message.trim().to_string()),
        source: "offline".into(),
        ..Report::default()
    };
    if let Ok(j) = serde_json::to_string_pretty(&report) {
        let _ = writeln!(std::io::stdout(), "{j}");
    }
}

/// Runs the tool; the error carries the exit code.
pub fn run(a: &Args, log: &Log) -> Result<()> {
    check_usage(a)?;
    // Parse secret specs and check their files now, so a typo is found before the work.
    let secrets: Vec<SecretSpec> = a
        .inject_secret
        .iter()
        .map(|s| SecretSpec::parse(s))
        .collect::<Result<_>>()?;
    for s in &secrets {
        launch::check_input("secret file", &s.path)?;
    }
    let mut inputs = OwnerInputs::from_args(a)?;
    let (tik, tek) = load_keys(a)?;
    if a.show_keys {
        // The hex copies are wiped once printed, like the keys themselves.
        log.debug(
            "TIK(hex)",
            zeroize::Zeroizing::new(hex(tik.as_bytes())).as_str(),
        );
        log.debug(
            "TEK(hex)",
            zeroize::Zeroizing::new(hex(tek.as_bytes())).as_str(),
        );
    }

    let requirements = crate::policy::Requirements {
        min_api: a.min_api,
        allowed_builds: a.allow_build.clone(),
        required_bits: a.require_policy.unwrap_or(0),
        forbidden_bits: a.forbid_policy.unwrap_or(0),
    };
    let owner = Owner {
        tik: &tik,
        tek: &tek,
        secrets: &secrets,
        requirements: &requirements,
    };
    if let Some(endpoint) = &a.qmp {
        let mut source = qmp_source(a, log, endpoint, &mut inputs)?;
        return validate_and_inject(log, &mut source, &inputs, &owner);
    }
    if let Some(domain) = &a.domain {
        let open = LIBVIRT.get().ok_or_else(|| {
            Error::Unexpected(
                "the libvirt source is not in this executable (a packaging bug)".into(),
            )
        })?;
        let mut source = open(a, log, domain, &mut inputs)?;
        return validate_and_inject(log, source.as_mut(), &inputs, &owner);
    }

    let measurement = Measurement::from_base64(a.measurement.as_deref().unwrap_or_default())
        .map_err(Error::Usage)?;
    let info = LaunchInfo {
        api_major: a.api_major.unwrap_or_default(),
        api_minor: a.api_minor.unwrap_or_default(),
        build_id: a.build_id.unwrap_or_default(),
        policy: a.policy.unwrap_or_default(),
    };
    let mut source = Offline {
        reported: crate::source::ReportedLaunch { measurement, info },
        secret_files: a.secret_header.clone().zip(a.secret_payload.clone()),
    };
    validate_and_inject(log, &mut source, &inputs, &owner)
}

/// What only the owner holds: keys, secrets and requirements.
struct Owner<'a> {
    tik: &'a Tik,
    tek: &'a Tek,
    secrets: &'a [SecretSpec],
    requirements: &'a crate::policy::Requirements,
}

/// The launch values the command line gives.
fn given(a: &Args) -> crate::source::Given<'_> {
    crate::source::Given {
        measurement: a.measurement.as_deref(),
        api_major: a.api_major,
        api_minor: a.api_minor,
        build_id: a.build_id,
        policy: a.policy,
    }
}

/// Connects to QEMU's monitor and reads the launch state; with --insecure the
/// vCPU count may come from QEMU.
fn qmp_source(a: &Args, log: &Log, endpoint: &str, inputs: &mut OwnerInputs) -> Result<Qmp> {
    let timeout = std::time::Duration::from_secs(u64::from(a.qmp_timeout.max(1)));
    let mut q = Qmp::open(endpoint, a.insecure, timeout)?;
    q.resume = !a.no_resume;
    q.secret_address = a.secret_address;
    log.debug("QMP SEV state", q.sev_state.clone());
    let debug = |label: &str, v: String| log.debug(label, v);
    let reported = q.reported_with(&given(a), &debug)?;
    if reported.info.policy & POLICY_ES != 0 {
        if inputs.num_cpus.is_none() {
            if !a.insecure {
                return Err(Error::Insecure(
                    "Using CPU count from guest is not secure: give --num-cpus, or pass --insecure"
                        .into(),
                ));
            }
            let n = q.vcpu_count()?;
            log.debug("vCPU count (from QEMU)", n.to_string());
            inputs.num_cpus = Some(n);
        }
        if matches!(inputs.vmsa, VmsaInput::None) {
            return Err(Error::Usage(
                "the policy has SEV-ES (bit 2): give --vmsa-cpu0/--vmsa-cpu1 or \
                 --cpu-family/--cpu-model/--cpu-stepping (QEMU's monitor does not report the vCPU signature)"
                    .into(),
            ));
        }
    }
    Ok(q)
}

/// Opens a libvirt domain as a source of launch state.
type OpenLibvirt = fn(&Args, &Log, &str, &mut OwnerInputs) -> Result<Box<dyn LaunchSource>>;

/// The libvirt source, when this executable carries it. Only the
/// `virt-qemu-sev-validate-libvirt` executable registers it: the main one
/// then never references libvirt, so it does not load libvirt's ~60 shared
/// libraries (14 MiB, 14 ms) for offline, QMP and SNP use, and hands
/// `--domain` runs to the libvirt executable instead.
static LIBVIRT: std::sync::OnceLock<OpenLibvirt> = std::sync::OnceLock::new();

/// Name of the executable that carries the libvirt source.
pub const LIBVIRT_EXECUTABLE: &str = "virt-qemu-sev-validate-libvirt";

/// Registers the libvirt source (called by the libvirt executable's main).
pub fn enable_libvirt() {
    let _ = LIBVIRT.set(|a, log, domain, inputs| {
        libvirt_source(a, log, domain, inputs).map(|l| Box::new(l) as Box<dyn LaunchSource>)
    });
}

/// Whether this executable carries the libvirt source.
pub fn libvirt_enabled() -> bool {
    LIBVIRT.get().is_some()
}

/// Runs the libvirt executable installed beside this one with the same
/// arguments, in place of this process. Returns only on failure.
pub fn exec_libvirt_executable() -> Error {
    use std::os::unix::process::CommandExt;
    let path = match std::env::current_exe() {
        Ok(p) => p.with_file_name(LIBVIRT_EXECUTABLE),
        Err(e) => return Error::Unexpected(format!("cannot find this executable's path: {e}")),
    };
    let err = std::process::Command::new(&path)
        .args(std::env::args_os().skip(1))
        .exec();
    Error::Unexpected(format!(
        "--domain is handled by {}, which cannot be run ({err}); install it beside this program",
        path.display()
    ))
}

/// Opens the domain, reads its launch state, checks its XML and, with
/// --insecure, fills inputs the owner did not give from the host.
fn libvirt_source(a: &Args, log: &Log, domain: &str, inputs: &mut OwnerInputs) -> Result<Libvirt> {
    let secure = !a.insecure;
    let uri = libvirt::effective_uri(a.connect.as_deref());
    log.debug("libvirt URI", &uri);
    let mut lv = Libvirt::open(&uri, domain, a.insecure)?;
    log.check(
        "connection",
        Some(true),
        if lv.remote {
            format!("{uri} is a remote connection")
        } else {
            format!("{uri} is a local connection, allowed by --insecure")
        },
    );
    lv.resume = !a.no_resume;
    lv.secret_address = a.secret_address;
    log.debug("Connection", if lv.remote { "remote" } else { "local" });
    let debug = |label: &str, v: String| log.debug(label, v);
    let reported = lv.reported_with(&given(a), &debug)?;
    let sev_es = reported.info.policy & POLICY_ES != 0;
    let caps = if sev_es {
        Some(lv.capabilities()?)
    } else {
        None
    };
    let host_signature = caps
        .as_ref()
        .and_then(|c| c.signature())
        .map(|s| cpu::signature(s.family, s.model, s.stepping))
        .transpose()
        .map_err(|e| {
            Error::Usage(format!(
                "the host capabilities report a CPU signature that is {e}"
            ))
        })?;

    if !a.ignore_config {
        let ctx = checks::Context {
            secure,
            owner_kernel: inputs.kernel.is_some(),
            owner_firmware: inputs.firmware.is_some(),
            policy: reported.info.policy,
            vmsa: match inputs.vmsa {
                VmsaInput::None => checks::VmsaKind::None,
                VmsaInput::Files(..) => checks::VmsaKind::Files,
                VmsaInput::Signature(s) => checks::VmsaKind::Signature(s),
            },
            num_cpus: inputs.num_cpus,
            host_signature,
        };
        match checks::check_domain(&lv.domain_xml, &ctx) {
            Ok(()) => log.check(
                "domain-xml",
                Some(true),
                "the domain XML passed every check",
            ),
            Err(e) => {
                log.check("domain-xml", Some(false), e.to_string());
                return Err(e);
            }
        }
    } else {
        log.check("domain-xml", None, "skipped: --ignore-config");
    }
    inputs.host_signature = host_signature;
    if let Some(hp) = lv.host_policy() {
        inputs
            .other_policies
            .push((hp, "the policy the host reported".into()));
    }

    let d = &lv.domain_xml;
    let host_path = |what: &str, path: Option<&str>| -> Result<Option<PathBuf>> {
        let Some(p) = path else { return Ok(None) };
        if lv.remote {
            return Err(Error::Usage(format!(
                "Cannot access {what} path remotely: give --{what} with your own copy"
            )));
        }
        if secure {
            return Err(Error::Insecure(format!(
                "Using {what} path from XML is not secure: give --{what} with your own copy, or pass --insecure"
            )));
        }
        log.debug(&format!("{what} (from the domain XML)"), p);
        Ok(Some(PathBuf::from(p)))
    };
    if inputs.firmware.is_none() {
        inputs.firmware = host_path("firmware", d.loader_path())?;
        if inputs.firmware.is_none() {
            return Err(Error::Usage(
                "--firmware not specified and no firmware path found in the domain XML".into(),
            ));
        }
    }
    // Kernel, initrd and cmdline are measured only with kernelHashes='yes', so
    // only then are they taken from the host (the Python tool's bug 5).
    if inputs.kernel.is_none() && d.kernel_hashes() {
        inputs.kernel = host_path("kernel", d.kernel())?;
        if inputs.kernel.is_some() {
            if inputs.initrd.is_none() {
                inputs.initrd = host_path("initrd", d.initrd())?;
            }
            if inputs.cmdline.is_none() {
                if let Some(c) = d.cmdline() {
                    if secure {
                        return Err(Error::Insecure(
                            "Using cmdline string from XML is not secure: give --cmdline, or pass --insecure".into(),
                        ));
                    }
                    log.debug("cmdline (from the domain XML)", c);
                    inputs.cmdline = Some(c.to_string());
                }
            }
        }
    }
    if sev_es && inputs.num_cpus.is_none() {
        if secure {
            return Err(Error::Insecure(
                "Using CPU count from guest is not secure: give --num-cpus, or pass --insecure"
                    .into(),
            ));
        }
        let n = lv.vcpu_count()?;
        log.debug("vCPU count (from the host)", n.to_string());
        inputs.num_cpus = Some(n);
    }
    if sev_es && matches!(inputs.vmsa, VmsaInput::None) {
        if secure {
            return Err(Error::Insecure(
                "Using CPU SKU from capabilities is not secure: give --vmsa-cpu0/--vmsa-cpu1 or --cpu-family/--cpu-model/--cpu-stepping, or pass --insecure"
                    .into(),
            ));
        }
        inputs.vmsa = VmsaInput::Signature(host_cpu_signature(d, host_signature)?);
    }
    Ok(lv)
}

/// The vCPU signature the guest really gets, from its `<cpu>` element (the
/// Python tool's bug 1, done right).
fn host_cpu_signature(d: &crate::xml::Domain, host_signature: Option<u32>) -> Result<u32> {
    match (d.cpu_mode(), d.cpu_model()) {
        (Some("host-passthrough") | Some("maximum"), _) => host_signature.ok_or_else(|| {
            Error::Usage(
                "Libvirt is too old to report host CPU signature (<capabilities><host><cpu><signature>); give --cpu-family/--cpu-model/--cpu-stepping"
                    .into(),
            )
        }),
        (Some("custom") | None, Some(model)) => cpu::named_model_signature(model).ok_or_else(|| {
            Error::Usage(format!(
                "the signature of CPU model '{model}' is not known; give --cpu-family/--cpu-model/--cpu-stepping or VMSA files"
            ))
        }),
        (mode, _) => Err(Error::Usage(format!(
            "cannot tell which CPU signature <cpu mode='{}'> gives the guest; give --cpu-family/--cpu-model/--cpu-stepping or VMSA files",
            mode.unwrap_or("(none)")
        ))),
    }
}

fn validate_and_inject(
    log: &Log,
    source: &mut dyn LaunchSource,
    inputs: &OwnerInputs,
    owner: &Owner,
) -> Result<()> {
    let (tik, tek, secrets) = (owner.tik, owner.tek, owner.secrets);
    let a = inputs;
    let firmware_path = a
        .firmware
        .as_deref()
        .ok_or_else(|| Error::Usage("Either --firmware or --domain is required".into()))?;
    let reported = source.reported()?;
    let info = reported.info;
    let sev_es = info.policy & POLICY_ES != 0;
    {
        let mut r = log.report.borrow_mut();
        r.reported = Some(crate::report::Reported {
            measurement: reported.measurement.to_base64(),
            measure: hex(&reported.measurement.measure),
            mnonce: hex(&reported.measurement.mnonce),
            api_major: info.api_major,
            api_minor: info.api_minor,
            build_id: info.build_id,
            policy: info.policy,
        });
        r.policy = Some(crate::policy::decode(info.policy));
    }
    log.debug("Policy", crate::policy::describe(info.policy));

    // The firmware and the direct-boot inputs are independent files: hash them concurrently.
    let (firmware, kernel) = std::thread::scope(|scope| {
        let kernel = scope.spawn(|| {
            a.kernel
                .as_deref()
                .map(|k| launch::kernel_hashes(k, a.initrd.as_deref(), a.cmdline.as_deref()))
                .transpose()
        });
        let firmware = Firmware::load(firmware_path);
        let kernel = kernel
            .join()
            .unwrap_or_else(|_| Err(Error::Unexpected("the kernel hashing thread failed".into())));
        (firmware, kernel)
    });
    let firmware = firmware?;
    if let Some(d) = firmware.digest_after_firmware.firmware_digest() {
        log.debug("Firmware(sha256)", hex(&d));
        log.report.borrow_mut().inputs.firmware = Some(crate::report::FileDigest {
            path: firmware_path.display().to_string(),
            sha256: hex(&d),
        });
    }
    if let Some(t) = &firmware.footer {
        for (g, d) in t.entries() {
            log.debug("Firmware footer entry", format!("{g} {}", hex(d)));
        }
    }
    let kernel = kernel?;
    if let Some(h) = &kernel {
        let area = firmware.require_kernel_hash_area()?;
        log.debug(
            "Kernel hashes area",
            format!("base {:#x} size {:#x}", area.base, area.size),
        );
        log.debug("Kernel(sha256)", hex(&h.kernel));
        log.debug("Initrd(sha256)", hex(&h.initrd));
        log.debug("Cmdline(sha256)", hex(&h.cmdline));
        let mut r = log.report.borrow_mut();
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        };
        r.inputs.kernel = Some(crate::report::FileDigest {
            path: path(&a.kernel),
            sha256: hex(&h.kernel),
        });
        r.inputs.initrd = a.initrd.as_ref().map(|_| crate::report::FileDigest {
            path: path(&a.initrd),
            sha256: hex(&h.initrd),
        });
        r.inputs.cmdline = Some(crate::report::Cmdline {
            value: a.cmdline.clone().unwrap_or_default(),
            sha256: hex(&h.cmdline),
        });
    }

    let vmsa = if sev_es {
        let num_cpus = a.num_cpus.ok_or_else(|| {
            Error::Usage(
                "Number of virtual CPUs must be specified for SEV-ES domain: give --num-cpus"
                    .into(),
            )
        })?;
        let source = match &a.vmsa {
            VmsaInput::Files(p0, p1) => {
                let bsp = launch::read_vmsa("VMSA file for the boot CPU", p0)?;
                let ap = match p1 {
                    Some(p1) => Some(launch::read_vmsa("VMSA file for the additional CPUs", p1)?),
                    None => None,
                };
                VmsaSource::Pages { bsp, ap }
            }
            VmsaInput::Signature(cpu_signature) => {
                let cpu_signature = *cpu_signature;
                log.debug("CPU signature", format!("{cpu_signature:#x}"));
                let ap_reset_addr = firmware.require_sev_es_reset_addr()?;
                log.debug("AP reset address", format!("{ap_reset_addr:#x}"));
                VmsaSource::Built {
                    config: VmsaConfig {
                        form: a.vmsa_form,
                        cpu_signature,
                        sev_features: a.sev_features,
                    },
                    ap_reset_addr,
                }
            }
            VmsaInput::None => {
                return Err(Error::Usage(
                    "VMSA for boot CPU required for SEV-ES domain: give --vmsa-cpu0 (and --vmsa-cpu1 \
                     with more than one vCPU), or --cpu-family, --cpu-model and --cpu-stepping of the host"
                        .into(),
                ));
            }
        };
        Some((source, num_cpus))
    } else {
        None
    };

    let trace = launch::compute_ld(
        &firmware,
        kernel.as_ref(),
        vmsa.as_ref().map(|(s, n)| (s, *n)),
    )?;
    if let Some(t) = &trace.kernel_table {
        log.debug("Kernel hashes table(hex)", hex(t));
        log.report.borrow_mut().inputs.kernel_hashes_table = Some(hex(t));
    }
    if let (Some((src, n)), Some(bsp)) = (&vmsa, &trace.vmsa_bsp_sha256) {
        let (kind, sig, form) = match src {
            VmsaSource::Pages { .. } => ("files", None, None),
            VmsaSource::Built { config, .. } => (
                "built",
                Some(format!("{:#x}", config.cpu_signature)),
                Some(match config.form {
                    VmsaForm::Legacy => "legacy".to_string(),
                    VmsaForm::Init2 => "init2".to_string(),
                }),
            ),
        };
        log.report.borrow_mut().inputs.vmsa = Some(crate::report::Vmsa {
            source: kind.into(),
            num_cpus: *n,
            cpu_signature: sig,
            form,
            bsp_sha256: hex(bsp),
            ap_sha256: trace.vmsa_ap_sha256.map(|d| hex(&d)),
        });
    }
    if let Some(d) = &trace.vmsa_bsp_sha256 {
        log.debug("VMSA CPU 0(sha256)", hex(d));
    }
    if let Some(d) = &trace.vmsa_ap_sha256 {
        log.debug("VMSA CPU 1(sha256)", hex(d));
    }
    log.debug("Launch digest GCTX.LD(sha256)", hex(&trace.ld));
    let nonce = reported.measurement.mnonce;
    log.debug(
        "Measured-msg(hex)",
        hex(&measurement::measure_message(&info, &trace.ld, &nonce)),
    );
    let computed = measurement::compute_measure(tik, &info, &trace.ld, &nonce);
    log.debug(
        "Measurement reported(hex)",
        hex(&reported.measurement.measure),
    );
    log.debug("Measurement computed(hex)", hex(&computed));
    log.report.borrow_mut().computed = Some(crate::report::Computed {
        launch_digest: hex(&trace.ld),
        measure: hex(&computed),
    });

    if !measurement::measures_equal(&computed, &reported.measurement.measure) {
        log.report.borrow_mut().verdict = "mismatch".into();
        if !log.quiet || log.json {
            let known = explain::Known {
                firmware: &firmware.digest_after_firmware,
                kernel: kernel
                    .as_ref()
                    .map(|h| (h, a.cmdline.as_deref(), a.initrd.is_some())),
                vmsa: vmsa.as_ref().map(|(s, n)| (s, *n)),
                ap_reset_addr: firmware
                    .footer
                    .as_ref()
                    .and_then(|t| t.sev_es_reset_addr().ok().flatten()),
                host_signature: a.host_signature,
                tik,
                tek,
                tk_file: a.tk_file,
                info,
                other_policies: a.other_policies.clone(),
                reported: reported.measurement,
            };
            let started = std::time::Instant::now();
            let x = explain::explain(&known);
            log.debug(
                "Explainer",
                format!(
                    "{} variants in {:.3} s",
                    x.tried,
                    started.elapsed().as_secs_f64()
                ),
            );
            let hint = match &x.matched {
                Some(changes) => format!("the reported measurement {}", join_changes(changes)),
                None => format!(
                    "none of {} variants of the inputs (TIK/TEK, kernel hashes, cmdline whitespace, initrd, \
                     vCPU counts, VMSA forms and CPU signatures) reproduces the reported measurement, so the \
                     firmware image or the TIK is most likely wrong, or the values come from another launch; \
                     compare the firmware SHA-256 {} and the launch digest {} with the host's",
                    x.tried,
                    firmware.digest_after_firmware.firmware_digest().map(|d| hex(&d)).unwrap_or_default(),
                    hex(&trace.ld)
                ),
            };
            diagnose_host_files(log, source, &firmware, kernel.as_ref(), a);
            log.report.borrow_mut().explanation = Some(crate::report::Explanation {
                matched: x.matched.clone(),
                variants_tried: x.tried,
                hint,
            });
        }
        return Err(Error::AttestationFailed(
            "Measurement does not match, VM is not trustworthy".into(),
        ));
    }
    log.check(
        "measurement",
        Some(true),
        "the reported measurement matches the expected launch",
    );
    // Only now are the reported API, build and policy bound by the TIK.
    let mut failed = Vec::new();
    for (name, ok, msg) in owner.requirements.check(&info) {
        log.check(name, Some(ok), msg.clone());
        if !ok {
            failed.push(msg);
        }
    }
    if !failed.is_empty() {
        log.report.borrow_mut().verdict = "requirement-failed".into();
        return Err(Error::AttestationFailed(format!(
            "the measurement matches, but the launch does not meet your requirements: {}",
            failed.join("; ")
        )));
    }
    for w in crate::policy::warnings(info.policy) {
        log.warn(&w);
    }
    log.status("OK: Looks good to me");

    if secrets.is_empty() {
        return Ok(());
    }
    let area = firmware.secret_area();
    if area.is_none() && inputs.secret_address.is_none() {
        // QEMU takes the address from this entry; without it the packet
        // lands at guest address 0, where OVMF never looks for secrets.
        log.warn(
            "the firmware has no SEV secret area (OVMF footer entry 4c2eb361-7d9b-4cc3-8081-127c90d3d294 \
             is missing or zero), so QEMU will put the secret at guest address 0 where the firmware does \
             not look for it; use a firmware with a secret area (edk2 AmdSevX64) or give --secret-address",
        );
    }
    let (limit, limit_is) = match area {
        Some(a) => (a.size as usize, "the firmware's secret area holds"),
        None => (
            secret::MAX_SECRET_TABLE_LEN,
            "the tool accepts when the firmware names no secret area",
        ),
    };
    let mut table = SecretTable::new();
    for s in secrets {
        let (file, size) = launch::open_input("secret file", &s.path)?;
        // Refuse before reading what cannot fit; never cut a secret short.
        if size > limit as u64 {
            return Err(Error::Usage(format!(
                "secret file '{}' is {size} bytes, more than the {limit} bytes {limit_is}",
                s.path.display()
            )));
        }
        // Capacity up front, so growing the buffer leaves no unwiped copies.
        let mut data = Zeroizing::new(Vec::with_capacity(limit + 1));
        std::io::Read::read_to_end(&mut std::io::Read::take(file, limit as u64 + 1), &mut data)
            .map_err(|e| Error::io("secret file", &s.path, &e))?;
        if data.len() > limit {
            return Err(Error::Usage(format!(
                "secret file '{}' is more than the {limit} bytes {limit_is}",
                s.path.display()
            )));
        }
        table.add(s.guid, data).map_err(Error::Usage)?;
    }
    if table.padded_len() > limit {
        return Err(Error::Usage(format!(
            "the secret table is {} bytes, larger than the {limit} bytes {limit_is}; inject fewer or smaller secrets",
            table.padded_len()
        )));
    }
    let plaintext = table.build().map_err(Error::Usage)?;
    let iv = secret::random_iv().map_err(Error::Unexpected)?;
    let packet = secret::package(tik, tek, &reported.measurement.measure, &plaintext, iv)
        .map_err(Error::Usage)?;
    log.debug(
        "Secret table",
        format!("{} secrets, {} bytes padded", table.len(), plaintext.len()),
    );
    log.debug("Secret header(hex)", hex(&packet.header));
    log.debug("Secret payload(ciphertext, hex)", hex(&packet.payload));
    source.inject(&packet)?;
    log.debug("Injection", source.describe_injection());
    let destination = log.report.borrow().source.replace("offline", "files");
    log.report.borrow_mut().injection = Some(crate::report::Injection {
        destination,
        secrets: secrets
            .iter()
            .map(|s| crate::report::InjectedSecret {
                guid: s.guid.to_string(),
                bytes: table.secret_len(&s.guid).unwrap_or(0),
            })
            .collect(),
        table_bytes: plaintext.len(),
        detail: source.describe_injection(),
    });
    log.status(&format!("OK: Injected {} secrets", secrets.len()));
    Ok(())
}

/// Over qemu+ssh, compares the host's firmware, kernel and initrd with the
/// owner's over SFTP and says which differ (a diagnosis; never trusted).
fn diagnose_host_files(
    log: &Log,
    source: &dyn LaunchSource,
    firmware: &Firmware,
    kernel: Option<&crate::core::kernel_hashes::KernelHashes>,
    inputs: &OwnerInputs,
) {
    let mut owner: Vec<(&str, [u8; 32])> = Vec::new();
    if let Some(d) = firmware.digest_after_firmware.firmware_digest() {
        owner.push(("firmware", d));
    }
    if let Some(k) = kernel {
        owner.push(("kernel", k.kernel));
        if inputs.initrd.is_some() {
            owner.push(("initrd", k.initrd));
        }
    }
    let Some(result) = source.compare_host_files(&owner) else {
        return;
    };
    match result {
        Err(e) => log.note(&format!(
            "could not compare the host's files over SFTP: {e}"
        )),
        Ok(list) => {
            for c in list {
                let msg = match (&c.host_sha256, c.differs()) {
                    (Ok(h), Some(true)) => format!(
                        "the host's {} {} differs from yours (SHA-256 {} on the host, {} yours)",
                        c.what,
                        c.host_path,
                        hex(h),
                        hex(&c.owner_sha256)
                    ),
                    (Ok(_), _) => {
                        format!("the host's {} {} is the same as yours", c.what, c.host_path)
                    }
                    (Err(e), _) => format!("the host's {} could not be read: {e}", c.what),
                };
                log.note(&msg);
                log.report
                    .borrow_mut()
                    .host_files
                    .push(crate::report::HostFile {
                        what: c.what.clone(),
                        host_path: c.host_path.clone(),
                        host_sha256: c.host_sha256.as_ref().ok().map(|h| hex(h)),
                        owner_sha256: hex(&c.owner_sha256),
                        same: c.differs().map(|d| !d),
                        error: c.host_sha256.as_ref().err().cloned(),
                    });
            }
        }
    }
}

/// "matches if X, with Y and with Z" from the explainer's changes.
fn join_changes(changes: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if i == 0 {
            parts.push(c.clone());
        } else {
            parts.push(c.strip_prefix("matches ").unwrap_or(c).to_string());
        }
    }
    match parts.len() {
        0 => "matches as given".into(),
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(cpu: &str) -> crate::xml::Domain {
        crate::xml::Domain::parse(&format!("<domain type='kvm'><name>g</name>{cpu}</domain>"))
            .unwrap()
    }

    #[test]
    fn vcpu_signature_errors_name_the_options_in_one_readable_line() {
        let cases = [
            (
                domain("<cpu mode='host-passthrough'/>"),
                "Libvirt is too old",
            ),
            (
                domain("<cpu mode='custom'><model>NoSuchCPU</model></cpu>"),
                "CPU model 'NoSuchCPU' is not known",
            ),
            (
                domain("<cpu mode='host-model'/>"),
                "<cpu mode='host-model'>",
            ),
        ];
        for (d, want) in cases {
            let msg = host_cpu_signature(&d, None).unwrap_err().to_string();
            assert!(msg.contains(want), "{msg}");
            assert!(
                msg.contains("give --cpu-family/--cpu-model/--cpu-stepping"),
                "{msg}"
            );
            assert!(!msg.contains("  ") && !msg.contains('\n'), "{msg:?}");
        }
        // With the host's signature, host-passthrough uses it.
        let d = domain("<cpu mode='host-passthrough'/>");
        assert_eq!(host_cpu_signature(&d, Some(0xa00f11)).unwrap(), 0xa00f11);
    }
}
