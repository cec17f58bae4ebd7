//! `snp-report` and `snp-validate`: read an SEV-SNP attestation report the
//! guest obtained, print its fields, and validate it against AMD's chain and
//! the owner's expectations. Exit codes: 0 valid, 1 a check failed,
//! 2 bad input or usage.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use sha2::{Digest, Sha384};

use crate::core::hex;
use crate::core::id_block::{self, SnpKey};
use crate::core::snp_cert::{CertError, Certificate, TrustAnchors};
use crate::core::snp_report::{
    self, AttestationReport, CertKind, CertTable, PlatformInfo, Product, ReportInput, SigningKey,
    TcbVersion, MAX_INPUT_LEN,
};
use crate::error::{Error, ExitCode, Result};
use crate::snp::explain::{ReportField, SnpExplanation};
use crate::snp::validate::{self, Endorsement, Expectations, MinTcb, Outcome, Status};

const ENDORSEMENT: &str = "Endorsement (VCEK or VLEK and its chain)";
const EXPECT: &str = "The owner's expectations";
const DEFAULTS: &str = "Safe defaults (refused unless allowed)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProductArg {
    Milan,
    Genoa,
    Turin,
}

impl From<ProductArg> for Product {
    fn from(p: ProductArg) -> Product {
        match p {
            ProductArg::Milan => Product::Milan,
            ProductArg::Genoa => Product::Genoa,
            ProductArg::Turin => Product::Turin,
        }
    }
}

/// `snp-report`: print every field of a report.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report: raw 1184 bytes, an SNP_GET_REPORT response, or a report followed by its certificate table
    #[arg(value_name = "REPORT")]
    report: PathBuf,

    /// Product for decoding the TCB fields of a v2 report (v3+ reports name it in CPUID)
    #[arg(long, value_enum)]
    product: Option<ProductArg>,

    /// The VCEK or VLEK (DER or PEM): its productName places a v2 report
    #[arg(long, value_name = "FILE")]
    vek: Option<PathBuf>,

    /// Print one JSON document
    #[arg(long)]
    json: bool,
}

/// `snp-validate`: every check, listed by name.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The report: raw 1184 bytes (snpguest, configfs-tsm outblob), the /dev/sev-guest SNP_GET_REPORT response, or a report followed by its certificate table
    #[arg(value_name = "REPORT")]
    report: PathBuf,

    #[command(flatten)]
    pub endorsement: EndorsementArgs,

    /// Expected MEASUREMENT (96 hex digits), e.g. from snp-digest
    #[arg(long, value_name = "HEX", value_parser = hex_n::<48>, help_heading = EXPECT)]
    measurement: Option<[u8; 48]>,

    /// After '--': snp-digest's options (--ovmf, --vcpus, --vcpu-type, --kernel...); the expected MEASUREMENT is the digest they give
    #[arg(
        last = true,
        value_name = "SNP-DIGEST OPTIONS",
        conflicts_with = "measurement"
    )]
    launch: Vec<std::ffi::OsString>,

    /// Expected HOST_DATA (64 hex digits; libvirt <hostData>, QEMU host-data)
    #[arg(long, value_name = "HEX", value_parser = hex_n::<32>, help_heading = EXPECT)]
    host_data: Option<[u8; 32]>,

    /// Expected FAMILY_ID (32 hex digits; from the ID block)
    #[arg(long, value_name = "HEX", value_parser = hex_n::<16>, help_heading = EXPECT)]
    family_id: Option<[u8; 16]>,

    /// Expected IMAGE_ID (32 hex digits; from the ID block)
    #[arg(long, value_name = "HEX", value_parser = hex_n::<16>, help_heading = EXPECT)]
    image_id: Option<[u8; 16]>,

    #[command(flatten)]
    pub requirements: RequirementArgs,

    /// Print one JSON document (schema/snp-validate.schema.json)
    #[arg(long)]
    json: bool,
}

/// Where the VCEK or VLEK and its chain come from: `snp-validate`'s options,
/// and the main command's with `--report` on an SNP guest.
#[derive(Debug, Clone, Args)]
pub struct EndorsementArgs {
    /// The VCEK that signed the report (DER or PEM)
    #[arg(long, value_name = "FILE", help_heading = ENDORSEMENT, conflicts_with = "vlek")]
    pub vcek: Option<PathBuf>,

    /// The VLEK that signed the report (DER or PEM)
    #[arg(long, value_name = "FILE", help_heading = ENDORSEMENT)]
    pub vlek: Option<PathBuf>,

    /// A directory in snpguest's layout: ark, ask or asvk, vcek or vlek, each .pem or .der
    #[arg(long, value_name = "DIR", help_heading = ENDORSEMENT)]
    pub certs: Option<PathBuf>,

    /// A GHCB certificate table (configfs-tsm auxblob, SNP_GET_EXT_REPORT pages)
    #[arg(long, value_name = "FILE", help_heading = ENDORSEMENT)]
    pub cert_table: Option<PathBuf>,

    /// Replace AMD's built-in ARK/ASK/ASVK with these certificates (PEM or DER; repeatable): for private deployments and tests only, warned on every run
    #[arg(long, value_name = "FILE", help_heading = ENDORSEMENT)]
    pub trust_anchors: Vec<PathBuf>,

    /// Product, when a v2 report and its VEK do not say (v3+ reports name it in CPUID)
    #[arg(long, value_enum, help_heading = ENDORSEMENT)]
    pub product: Option<ProductArg>,

    /// AMD KDS base URL, or a mirror's: where a VCEK not given is fetched from
    #[arg(long, value_name = "URL", default_value = snp_report::KDS_BASE, help_heading = ENDORSEMENT)]
    pub kds_url: String,

    /// Cache directory for VCEKs fetched from the KDS (default: $XDG_CACHE_HOME/virt-qemu-sev-validate/kds)
    #[arg(long, value_name = "DIR", help_heading = ENDORSEMENT)]
    pub kds_cache: Option<PathBuf>,

    /// Never touch the network: a VCEK not given must already be in the KDS cache
    #[arg(long, help_heading = ENDORSEMENT)]
    pub offline: bool,

    /// Check certificate validity at this time (RFC 3339, e.g. 2025-06-01T00:00:00Z) instead of now
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = ENDORSEMENT)]
    pub now: Option<u64>,
}

/// What the owner requires of a report beyond the launch itself (nonce,
/// keys, TCB, the safe defaults): shared like [`EndorsementArgs`].
#[derive(Debug, Clone, Args)]
pub struct RequirementArgs {
    /// The nonce given to the guest for REPORT_DATA: up to 64 bytes in hex, zero-padded to 64
    #[arg(long, value_name = "HEX", value_parser = hex_padded_64, help_heading = EXPECT)]
    pub report_data: Option<[u8; 64]>,

    /// Do not require --report-data (a replayed report then passes)
    #[arg(long, help_heading = DEFAULTS, conflicts_with = "report_data")]
    pub no_report_data_check: bool,

    /// Expected REPORT_ID (64 hex digits)
    #[arg(long, value_name = "HEX", value_parser = hex_n::<32>, help_heading = EXPECT)]
    pub report_id: Option<[u8; 32]>,

    /// Expected REPORT_ID_MA (64 hex digits)
    #[arg(long, value_name = "HEX", value_parser = hex_n::<32>, help_heading = EXPECT)]
    pub report_id_ma: Option<[u8; 32]>,

    /// Expected CHIP_ID (128 hex digits; Turin: 16, zero-padded)
    #[arg(long, value_name = "HEX", value_parser = hex_chip_id, help_heading = EXPECT)]
    pub chip_id: Option<[u8; 64]>,

    /// The most permissive guest POLICY accepted (go-sev-guest -guest_policy)
    #[arg(long, value_name = "POLICY", value_parser = parse_u64, help_heading = EXPECT)]
    pub max_policy: Option<u64>,

    /// Minimum GUEST_SVN
    #[arg(long, value_name = "N", value_parser = parse_u32, help_heading = EXPECT)]
    pub min_guest_svn: Option<u32>,

    /// Minimum CURRENT_BUILD
    #[arg(long, value_name = "N", value_parser = parse_u8, help_heading = EXPECT)]
    pub min_build: Option<u8>,

    /// Minimum firmware version MAJOR.MINOR
    #[arg(long, value_name = "MAJ.MIN", value_parser = parse_version, help_heading = EXPECT)]
    pub min_version: Option<(u8, u8)>,

    /// Minimum REPORTED_TCB: a raw TCB_VERSION (0x...) or bl=N,tee=N,snp=N,ucode=N[,fmc=N]
    #[arg(long, value_name = "TCB", value_parser = parse_tcb, help_heading = EXPECT)]
    pub min_tcb: Option<MinTcb>,

    /// Minimum LAUNCH_TCB, in the same forms as --min-tcb
    #[arg(long, value_name = "TCB", value_parser = parse_tcb, help_heading = EXPECT)]
    pub min_launch_tcb: Option<MinTcb>,

    /// The most permissive PLATFORM_INFO accepted (go-sev-guest -platform_info)
    #[arg(long, value_name = "BITS", value_parser = parse_u64, help_heading = EXPECT)]
    pub max_platform_info: Option<u64>,

    /// Expected VMPL (0-3) the guest asked the report for
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=3), help_heading = EXPECT)]
    pub vmpl: Option<u32>,

    /// A trusted ID public key (PEM public or private key; repeatable): ID_KEY_DIGEST must be one
    #[arg(long, value_name = "FILE", help_heading = EXPECT)]
    pub trusted_id_key: Vec<PathBuf>,

    /// A trusted ID key digest (96 hex digits, SHA-384 of the 0x404-byte SNP public key; repeatable)
    #[arg(long, value_name = "HEX", value_parser = hex_n::<48>, help_heading = EXPECT)]
    pub trusted_id_key_digest: Vec<[u8; 48]>,

    /// A trusted author public key (PEM; repeatable)
    #[arg(long, value_name = "FILE", help_heading = EXPECT)]
    pub trusted_author_key: Vec<PathBuf>,

    /// A trusted author key digest (96 hex digits; repeatable)
    #[arg(long, value_name = "HEX", value_parser = hex_n::<48>, help_heading = EXPECT)]
    pub trusted_author_key_digest: Vec<[u8; 48]>,

    /// Require AUTHOR_KEY_EN and a trusted AUTHOR_KEY_DIGEST
    #[arg(long, help_heading = EXPECT)]
    pub require_author_key: bool,

    /// Bits LAUNCH_MIT_VECTOR must have
    #[arg(long, value_name = "BITS", value_parser = parse_u64, help_heading = EXPECT)]
    pub min_launch_mit_vector: Option<u64>,

    /// Bits CURRENT_MIT_VECTOR must have
    #[arg(long, value_name = "BITS", value_parser = parse_u64, help_heading = EXPECT)]
    pub min_current_mit_vector: Option<u64>,

    /// Accept DEBUG in the guest policy (the host can read the guest's memory)
    #[arg(long, help_heading = DEFAULTS)]
    pub allow_debug: bool,

    /// Accept MIGRATE_MA in the guest policy
    #[arg(long, help_heading = DEFAULTS)]
    pub allow_migrate_ma: bool,

    /// Accept provisional firmware (COMMITTED_TCB below CURRENT_TCB)
    #[arg(long, help_heading = DEFAULTS)]
    pub allow_provisional_firmware: bool,
}

fn parse_int(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse::<u64>(),
    }
    .map_err(|_| format!("'{s}' is not a non-negative integer (decimal, or hex with 0x)"))
}

fn parse_u64(s: &str) -> std::result::Result<u64, String> {
    parse_int(s)
}

fn parse_u32(s: &str) -> std::result::Result<u32, String> {
    u32::try_from(parse_int(s)?).map_err(|_| format!("'{s}' is out of range"))
}

fn parse_u8(s: &str) -> std::result::Result<u8, String> {
    u8::try_from(parse_int(s)?).map_err(|_| format!("'{s}' is out of range (0 to 255)"))
}

fn parse_version(s: &str) -> std::result::Result<(u8, u8), String> {
    let (a, b) = s
        .split_once('.')
        .ok_or_else(|| format!("'{s}' is not MAJOR.MINOR, e.g. 1.55"))?;
    Ok((parse_u8(a)?, parse_u8(b)?))
}

fn parse_tcb(s: &str) -> std::result::Result<MinTcb, String> {
    if !s.contains('=') {
        return parse_int(s).map(MinTcb::Raw);
    }
    let (mut fmc, mut bl, mut tee, mut snp, mut ucode) = (0, 0, 0, 0, 0);
    for part in s.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' is not NAME=VALUE"))?;
        let v = parse_u8(v)?;
        match k.trim() {
            "fmc" => fmc = v,
            "bl" => bl = v,
            "tee" => tee = v,
            "snp" => snp = v,
            "ucode" => ucode = v,
            other => {
                return Err(format!(
                    "'{other}' is not a TCB component (fmc, bl, tee, snp, ucode)"
                ))
            }
        }
    }
    Ok(MinTcb::Components {
        fmc,
        bl,
        tee,
        snp,
        ucode,
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

pub(crate) fn hex_n<const N: usize>(s: &str) -> std::result::Result<[u8; N], String> {
    unhex(s)
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or_else(|| format!("'{s}' is not {N} bytes written as {} hex digits", 2 * N))
}

fn hex_padded<const N: usize>(s: &str) -> std::result::Result<[u8; N], String> {
    let v = unhex(s)
        .filter(|v| v.len() <= N)
        .ok_or_else(|| format!("'{s}' is not up to {N} bytes written in hex"))?;
    let mut a = [0u8; N];
    a[..v.len()].copy_from_slice(&v);
    Ok(a)
}

fn hex_padded_64(s: &str) -> std::result::Result<[u8; 64], String> {
    hex_padded::<64>(s)
}

fn hex_chip_id(s: &str) -> std::result::Result<[u8; 64], String> {
    match unhex(s).map(|v| v.len()) {
        Some(8) | Some(64) => hex_padded::<64>(s),
        _ => Err(format!(
            "'{s}' is not a chip ID: 64 bytes (128 hex digits), or 8 (16) on Turin"
        )),
    }
}

fn parse_time(s: &str) -> std::result::Result<u64, String> {
    let t = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    humantime::parse_rfc3339_weak(&t)
        .or_else(|_| humantime::parse_rfc3339(&t))
        .map_err(|e| format!("'{s}' is not an RFC 3339 time such as 2025-06-01T00:00:00Z ({e})"))?
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| format!("'{s}' is before 1970"))
}

fn read_limited(what: &str, path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(what, path, &e))?;
    if meta.is_dir() {
        return Err(Error::Usage(format!(
            "cannot read {what} '{}': is a directory, not a file",
            path.display()
        )));
    }
    if meta.len() > MAX_INPUT_LEN as u64 {
        return Err(Error::Usage(format!(
            "{what} '{}' is {} bytes; nothing this tool reads is larger than {MAX_INPUT_LEN}",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| Error::io(what, path, &e))
}

fn read_report(path: &Path) -> Result<ReportInput> {
    let b = read_limited("report", path)?;
    snp_report::parse_input(&b)
        .map_err(|e| Error::Usage(format!("report '{}': {e}", path.display())))
}

fn read_cert(what: &str, path: &Path) -> Result<Certificate> {
    let b = read_limited(what, path)?;
    Certificate::from_der_or_pem(&b)
        .map_err(|e| Error::Usage(format!("{what} '{}': {e}", path.display())))
}

fn cert_from_table(what: &str, b: &[u8]) -> Result<Certificate> {
    Certificate::from_der(b)
        .map_err(|e| Error::Usage(format!("{what} in the certificate table: {e}")))
}

/// Where the endorsement came from, for the output.
#[derive(Debug, Default)]
struct Found {
    vek: Option<(Certificate, String)>,
    ask: Option<(Certificate, String)>,
    ark: Option<(Certificate, String)>,
}

impl Found {
    fn take(&mut self, slot: CertSlot, c: Certificate, from: String) {
        let s = match slot {
            CertSlot::Vek => &mut self.vek,
            CertSlot::Ask => &mut self.ask,
            CertSlot::Ark => &mut self.ark,
        };
        if s.is_none() {
            *s = Some((c, from));
        }
    }
}

#[derive(Clone, Copy)]
enum CertSlot {
    Vek,
    Ask,
    Ark,
}

/// A file of the snpguest layout: `name.pem` or `name.der`.
fn dir_file(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|n| {
        ["pem", "der"]
            .iter()
            .map(|e| dir.join(format!("{n}.{e}")))
            .find(|p| p.is_file())
    })
}

fn gather(a: &EndorsementArgs, input: &ReportInput) -> Result<Found> {
    let mut f = Found::default();
    if let Some(p) = a.vcek.as_ref().or(a.vlek.as_ref()) {
        let what = if a.vcek.is_some() { "VCEK" } else { "VLEK" };
        f.take(
            CertSlot::Vek,
            read_cert(what, p)?,
            format!("{what} file {}", p.display()),
        );
    }
    if let Some(d) = &a.certs {
        if !d.is_dir() {
            return Err(Error::Usage(format!(
                "--certs '{}' is not a directory (it holds ark, ask or asvk, vcek or vlek, each .pem or .der)",
                d.display()
            )));
        }
        let vlek = input.report.key_info.signing_key == SigningKey::Vlek;
        let (vek_names, ask_names): (&[&str], &[&str]) = if vlek {
            (&["vlek", "vcek"], &["asvk", "ask"])
        } else {
            (&["vcek", "vlek"], &["ask", "asvk"])
        };
        for (slot, names, what) in [
            (CertSlot::Vek, vek_names, "VEK"),
            (CertSlot::Ask, ask_names, "AS(V)K"),
            (CertSlot::Ark, &["ark"][..], "ARK"),
        ] {
            if let Some(p) = dir_file(d, names) {
                f.take(slot, read_cert(what, &p)?, p.display().to_string());
            }
        }
    }
    let table_file = match &a.cert_table {
        Some(p) => Some(
            CertTable::parse(&read_limited("certificate table", p)?)
                .map_err(|e| Error::Usage(format!("'{}': {e}", p.display())))?,
        ),
        None => None,
    };
    for t in [input.cert_table.as_ref(), table_file.as_ref()]
        .into_iter()
        .flatten()
    {
        let vlek = input.report.key_info.signing_key == SigningKey::Vlek;
        let vek_kind = if vlek { CertKind::Vlek } else { CertKind::Vcek };
        if let Some(b) = t
            .get(vek_kind)
            .or_else(|| t.get(CertKind::Vcek))
            .or_else(|| t.get(CertKind::Vlek))
        {
            f.take(
                CertSlot::Vek,
                cert_from_table("VEK", b)?,
                "certificate table".into(),
            );
        }
        if let Some(b) = t.get(CertKind::Ask) {
            f.take(
                CertSlot::Ask,
                cert_from_table("ASK", b)?,
                "certificate table".into(),
            );
        }
        if let Some(b) = t.get(CertKind::Ark) {
            f.take(
                CertSlot::Ark,
                cert_from_table("ARK", b)?,
                "certificate table".into(),
            );
        }
    }
    Ok(f)
}

fn key_digest(what: &str, path: &Path) -> Result<[u8; 48]> {
    use p384::pkcs8::DecodePublicKey;
    let b = read_limited(what, path)?;
    let text = String::from_utf8_lossy(&b);
    if let Ok(vk) = p384::ecdsa::VerifyingKey::from_public_key_pem(&text) {
        return Ok(Sha384::digest(id_block::public_key_struct(&vk)).into());
    }
    if let Ok(k) = SnpKey::from_pem(&text) {
        return Ok(k.public_key_digest());
    }
    Err(Error::Usage(format!(
        "{what} '{}' is neither a P-384 PUBLIC KEY nor a P-384 private key in PEM",
        path.display()
    )))
}

impl RequirementArgs {
    /// The owner's expectations these options give (trusted key files read
    /// and digested); the launch's own values are added by the caller.
    pub fn expectations(&self) -> Result<Expectations> {
        let a = self;
        let mut ids = a.trusted_id_key_digest.clone();
        for p in &a.trusted_id_key {
            ids.push(key_digest("trusted ID key", p)?);
        }
        let mut authors = a.trusted_author_key_digest.clone();
        for p in &a.trusted_author_key {
            authors.push(key_digest("trusted author key", p)?);
        }
        Ok(Expectations {
            measurement: None,
            report_data: a.report_data,
            waive_report_data: a.no_report_data_check,
            host_data: None,
            family_id: None,
            image_id: None,
            report_id: a.report_id,
            report_id_ma: a.report_id_ma,
            chip_id: a.chip_id,
            max_policy: a.max_policy,
            allow_debug: a.allow_debug,
            allow_migrate_ma: a.allow_migrate_ma,
            allow_provisional_firmware: a.allow_provisional_firmware,
            min_guest_svn: a.min_guest_svn,
            min_build: a.min_build,
            min_version: a.min_version,
            min_tcb: a.min_tcb,
            min_launch_tcb: a.min_launch_tcb,
            max_platform_info: a.max_platform_info,
            vmpl: a.vmpl,
            trusted_id_keys: ids,
            trusted_author_keys: authors,
            require_author_key: a.require_author_key,
            min_launch_mit_vector: a.min_launch_mit_vector,
            min_current_mit_vector: a.min_current_mit_vector,
        })
    }
}

/// The KDS URL of this report's VCEK, or why there is none.
fn kds_url(a: &EndorsementArgs, r: &AttestationReport) -> std::result::Result<String, String> {
    let product = match a.product {
        Some(p) => Product::from(p),
        None => {
            snp_report::resolve_product(r, None, None)
                .map_err(|e| format!("The KDS URL needs the product: {e}"))?
                .0
        }
    };
    snp_report::kds_vcek_url(&a.kds_url, product, r).map_err(|e| e.to_string())
}

/// The one place a VCEK comes from AMD's KDS (or a mirror, or the cache):
/// when no file or certificate table gave a VEK.
#[cfg(feature = "kds")]
fn fetch_vcek(a: &EndorsementArgs, url: &str) -> std::result::Result<Certificate, String> {
    use crate::source::kds;
    let options = kds::Options {
        base_url: a.kds_url.clone(),
        offline: a.offline,
        ..kds::Options::default()
    };
    let der = kds::fetch(url, a.kds_cache.as_deref(), &options).map_err(|e| e.to_string())?;
    Certificate::from_der_or_pem(&der).map_err(|e| format!("the VCEK from {url}: {e}"))
}

#[cfg(not(feature = "kds"))]
fn fetch_vcek(_: &EndorsementArgs, _: &str) -> std::result::Result<Certificate, String> {
    Err("this build has no KDS fetching (feature kds)".into())
}

/// The message when no VEK is at hand: every way to give one, why the KDS
/// did not give it, and the KDS URL of this report's VCEK.
fn no_endorsement(a: &EndorsementArgs, r: &AttestationReport, why: &str) -> Error {
    let url = match kds_url(a, r) {
        Ok(u) => format!("\nThis report's VCEK is at AMD's KDS: {u}\n(fetch it, e.g. curl -o vcek.der '{u}', then give --vcek vcek.der)"),
        Err(e) => format!("\n{e}"),
    };
    Error::Usage(format!(
        "no {} to check the report's signature with{why}. Give one of: --{} FILE (DER or PEM); --certs DIR \
         (snpguest's layout: ark, ask or asvk, vcek or vlek, .pem or .der); --cert-table FILE (the \
         configfs-tsm auxblob or SNP_GET_EXT_REPORT certificate pages); the report followed by its \
         certificate table; or the VCEK in the KDS cache (--kds-cache, filled by a run without --offline).{url}",
        r.key_info.signing_key.name(),
        if r.key_info.signing_key == SigningKey::Vlek { "vlek" } else { "vcek" }
    ))
}

/// What a report's validation found, ready to print.
pub struct Validation {
    /// The report file, as given.
    pub path: PathBuf,
    pub input: ReportInput,
    pub outcome: Outcome,
    pub product_source: &'static str,
    pub sources: Vec<(String, String)>,
    pub custom_anchors: bool,
    /// The owner gave the nonce (a REPORT_DATA failure is then a value to explain).
    pub report_data_given: bool,
    /// Validated by the main command (`--report`): hints name its options.
    pub main_command: bool,
    /// When MEASUREMENT differs from the digest of the launch options
    /// given: the explainer's answer and how long its search took.
    pub explanation: Option<(SnpExplanation, Duration)>,
}

fn run_validate(a: &ValidateArgs) -> Result<Validation> {
    let mut expect = a.requirements.expectations()?;
    expect.measurement = a.measurement;
    expect.host_data = a.host_data;
    expect.family_id = a.family_id;
    expect.image_id = a.image_id;
    // Hashed once: the digest, and the state the explainer searches from.
    let launch = if a.launch.is_empty() {
        None
    } else {
        Some(crate::snp_cli::launch_from_options(&a.launch)?)
    };
    validate_report(&a.report, &a.endorsement, expect, launch.as_ref())
}

/// Reads the report at `path`, finds its VEK and chain, and runs every check
/// against `expect` (whose MEASUREMENT is `launch`'s digest when given; on a
/// mismatch the explainer then searches from `launch`).
pub fn validate_report(
    path: &Path,
    e: &EndorsementArgs,
    mut expect: Expectations,
    launch: Option<&crate::snp_cli::ComputedLaunch>,
) -> Result<Validation> {
    let input = read_report(path)?;
    let r = &input.report;
    let found = gather(e, &input)?;
    let (vek, vek_from) = match found.vek {
        Some(v) => v,
        // No file or table gave a VEK: the VCEK from the KDS, or its cache.
        None => {
            let url = kds_url(e, r).map_err(|_| no_endorsement(e, r, ""))?;
            let vcek = fetch_vcek(e, &url).map_err(|x| no_endorsement(e, r, &format!(" ({x})")))?;
            (vcek, format!("KDS {url}"))
        }
    };
    let (product, source) = snp_report::resolve_product(
        r,
        vek.amd.product_name.as_deref(),
        e.product.map(Product::from),
    )
    .map_err(|x| Error::Usage(x.to_string()))?;
    let anchors_owned = custom_anchors(e)?;
    let custom = anchors_owned.is_some();
    let anchors: &TrustAnchors = match &anchors_owned {
        Some(t) => t,
        None => TrustAnchors::builtin(),
    };
    if let Some(l) = launch {
        expect.measurement = Some(l.ld);
    }
    let now = e.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
    });
    let sources = chain_sources(r, vek_from, &found.ask, &found.ark);
    let endorsement = Endorsement {
        vek,
        ask: found.ask.map(|x| x.0),
        ark: found.ark.map(|x| x.0),
    };
    let outcome = validate::validate(r, product, &endorsement, anchors, &expect, now, None);
    let measurement_failed = outcome
        .get("expect.measurement")
        .is_some_and(|c| c.status == Status::Fail);
    let explanation = match launch {
        Some(l) if measurement_failed => {
            let started = std::time::Instant::now();
            let x = l.explain(&r.measurement)?;
            Some((x, started.elapsed()))
        }
        _ => None,
    };
    Ok(Validation {
        path: path.to_path_buf(),
        input,
        outcome,
        product_source: source.describe(),
        sources,
        custom_anchors: custom,
        report_data_given: expect.report_data.is_some(),
        main_command: false,
        explanation,
    })
}

/// The trust anchors given with `--trust-anchors`; `None` for AMD's.
fn custom_anchors(a: &EndorsementArgs) -> Result<Option<TrustAnchors>> {
    if a.trust_anchors.is_empty() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for p in &a.trust_anchors {
        files.push(read_limited("trust anchors", p)?);
    }
    TrustAnchors::from_files(&files)
        .map(Some)
        .map_err(|e: CertError| Error::Usage(format!("--trust-anchors: {e}")))
}

/// Where the VEK, ASK (or ASVK) and ARK came from, for the verdict.
fn chain_sources(
    r: &AttestationReport,
    vek_from: String,
    ask: &Option<(Certificate, String)>,
    ark: &Option<(Certificate, String)>,
) -> Vec<(String, String)> {
    let mut sources = vec![("VEK".to_string(), vek_from)];
    let ca = if r.key_info.signing_key == SigningKey::Vlek {
        "ASVK"
    } else {
        "ASK"
    };
    if let Some((_, f)) = ask {
        sources.push((ca.into(), f.clone()));
    }
    if let Some((_, f)) = ark {
        sources.push(("ARK".into(), f.clone()));
    }
    sources
}

/// The report field a failed check is about, for where its value comes
/// from; `None` for checks whose message already says all there is.
fn check_field(name: &str, expect_report_data: bool) -> Option<ReportField> {
    Some(match name {
        "policy.debug" | "policy.migrate_ma" | "policy.maximum" => ReportField::Policy,
        "expect.host_data" | "domain.host_data" => ReportField::HostData,
        "expect.id_key" | "domain.id_key_digest" => ReportField::IdKeyDigest,
        "expect.author_key" | "domain.author_key" => ReportField::AuthorKeyDigest,
        "expect.family_id" | "domain.family_id" => ReportField::FamilyId,
        "expect.image_id" | "domain.image_id" => ReportField::ImageId,
        "expect.guest_svn" | "domain.guest_svn" => ReportField::GuestSvn,
        "domain.policy" => ReportField::Policy,
        "expect.vmpl" => ReportField::Vmpl,
        // Without --report-data the message asks for it; no value to explain.
        "expect.report_data" if expect_report_data => ReportField::ReportData,
        "binding.reported_tcb" => ReportField::ReportedTcb,
        "binding.chip_id" | "expect.chip_id" => ReportField::ChipId,
        "firmware.provisional" => ReportField::CommittedTcb,
        _ => return None,
    })
}

/// The explainer's answer in one line, for beside the failed check.
fn explanation_hint(x: &SnpExplanation, main_command: bool) -> String {
    // Each change with the option that computes the reported value: the
    // main command's own (--num-cpus ...) there, snp-digest's here.
    let words = |c: &crate::snp::explain::Change| match (main_command, c.main_option()) {
        (false, _) => c.to_string(),
        (true, Some(o)) => format!("{}: {o}", c.host_did()),
        (true, None) => c.host_did(),
    };
    let with_all = if main_command {
        "with all of these the expected digest is the reported value"
    } else {
        "with all of these snp-digest computes the reported value"
    };
    match &x.changes {
        Some(c) if c.len() == 1 => words(&c[0]),
        Some(c) => format!(
            "the host's launch differs in {} inputs: {} ({with_all})",
            c.len(),
            c.iter().map(words).collect::<Vec<_>>().join("; ")
        ),
        None => format!(
            "none of {} variants of the launch options reproduces the reported value ({}): most likely another firmware build (the expected image's OVMF hash is {}; compare snp-ovmf-hash --ovmf of the host's image), another kernel or initrd, or the report comes from another guest",
            x.variants_tried,
            x.searched,
            hex(&x.ovmf_hash)
        ),
    }
}

/// What to print beside a failed check: the explainer's answer for
/// MEASUREMENT, where the value comes from for the other fields.
pub fn hint(v: &Validation, c: &validate::Check) -> Option<String> {
    if c.status != Status::Fail {
        return None;
    }
    if c.name == "expect.measurement" {
        return v
            .explanation
            .as_ref()
            .map(|(x, _)| explanation_hint(x, v.main_command));
    }
    check_field(c.name, v.report_data_given).map(|f| f.comes_from().to_string())
}

/// `snp-validate --json` on a command line clap refuses: the exit-2
/// document on stdout, as for every other bad input, so a caller that
/// parses stdout always gets JSON.
pub fn usage_error_json(args: &[std::ffi::OsString], e: &clap::Error) {
    let validate = args.get(1).is_some_and(|a| a == "snp-validate");
    // After a bare '--' the options are snp-digest's, not ours.
    let json = args
        .iter()
        .skip(2)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    if !(validate && json && e.use_stderr()) {
        return;
    }
    // clap's message without its "error: " prefix and usage footer.
    let text = e.render().to_string();
    let msg = text
        .split("\n\nUsage:")
        .next()
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ");
    let doc = json!({"schema_version": 1, "valid": false, "exit_code": ExitCode::UnsupportedUsage as i32, "error": msg});
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

const ANCHOR_WARNING: &str = "WARNING: --trust-anchors replaces AMD's built-in ARK/ASK/ASVK: this verdict rests on the certificates given, not on AMD's roots";

/// Runs `snp-validate`, prints its result, returns the exit code.
pub fn validate_main(a: &ValidateArgs) -> i32 {
    match run_validate(a) {
        Err(e) => {
            if a.json {
                let doc = json!({"schema_version": 1, "valid": false, "exit_code": e.exit_code() as i32, "error": e.to_string()});
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            eprintln!("ERROR: {e}");
            e.exit_code() as i32
        }
        Ok(v) => {
            if v.custom_anchors {
                eprintln!("{ANCHOR_WARNING}");
            }
            let code = if v.outcome.passed() {
                ExitCode::Ok
            } else {
                ExitCode::AttestationFailed
            } as i32;
            if a.json {
                let doc = validation_json(&v, code);
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            } else {
                let s = validation_text(&v);
                print!("{s}");
            }
            code
        }
    }
}

/// `snp-validate --json`: the verdict, its sources and every check.
pub fn validation_json(v: &Validation, code: i32) -> Value {
    let r = &v.input.report;
    let checks: Vec<Value> = v
        .outcome
        .checks
        .iter()
        .map(|c| {
            let mut o = json!({"name": c.name, "status": c.status.name(), "message": c.message});
            if let Some(h) = hint(v, c) {
                o["hint"] = h.into();
            }
            if let (Some((x, t)), "expect.measurement") = (&v.explanation, c.name) {
                o["explanation"] = serde_json::to_value(x).unwrap_or(Value::Null);
                o["explanation_seconds"] = t.as_secs_f64().into();
            }
            o
        })
        .collect();
    json!({
        "schema_version": 1,
        "valid": v.outcome.passed(),
        "exit_code": code,
        "container": v.input.container.name(),
        "version": r.version,
        "product": v.outcome.product.name(),
        "product_source": v.product_source,
        "signer": r.key_info.signing_key.name(),
        "trust_anchors": if v.custom_anchors { "custom" } else { "builtin" },
        "sources": v.sources.iter().map(|(k, f)| json!({"role": k, "from": f})).collect::<Vec<_>>(),
        "measurement": hex(&r.measurement),
        "checks": checks,
        "failed": v.outcome.failures().map(|c| c.name).collect::<Vec<_>>(),
    })
}

/// `snp-validate`'s text: where each input came from, then every check.
pub fn validation_text(v: &Validation) -> String {
    let r = &v.input.report;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Report:  {} ({})",
        v.path.display(),
        v.input.container.name()
    );
    let _ = writeln!(
        s,
        "Product: {} (from {}), version {} report signed by the {}",
        v.outcome.product,
        v.product_source,
        r.version,
        r.key_info.signing_key.name()
    );
    for (k, f) in &v.sources {
        let _ = writeln!(s, "{k}: {f}");
    }
    let _ = writeln!(
        s,
        "Trust anchors: {}",
        if v.custom_anchors {
            "given with --trust-anchors"
        } else {
            "AMD's, built in"
        }
    );
    let width = v
        .outcome
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for c in &v.outcome.checks {
        let tag = match c.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        let _ = writeln!(s, "  {tag}  {:width$}  {}", c.name, c.message);
        if let Some(h) = hint(v, c) {
            let _ = writeln!(s, "        {:width$}  HINT: {h}", "");
        }
        if let (Some((x, t)), "expect.measurement") = (&v.explanation, c.name) {
            let _ = writeln!(
                s,
                "        {:width$}  ({} variants of the launch options tried in {:.3} s)",
                "",
                x.variants_tried,
                t.as_secs_f64()
            );
        }
    }
    let failed: Vec<_> = v.outcome.failures().map(|c| c.name).collect();
    if failed.is_empty() {
        let _ = writeln!(s, "VALID: every check passed");
    } else {
        let _ = writeln!(s, "INVALID: {} failed: {}", failed.len(), failed.join(", "));
    }
    s
}

fn tcb_json(t: &TcbVersion) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in t.components() {
        m.insert(k.into(), v.into());
    }
    m.insert("raw".into(), format!("{:#018x}", t.raw).into());
    Value::Object(m)
}

/// `snp-report`: every field, human or JSON.
pub fn report_main(a: &ReportArgs) -> Result<String> {
    let input = read_report(&a.report)?;
    let r = &input.report;
    let vek = match &a.vek {
        Some(p) => Some(read_cert("VEK", p)?),
        None => None,
    };
    let product = snp_report::resolve_product(
        r,
        vek.as_ref().and_then(|v| v.amd.product_name.as_deref()),
        a.product.map(Product::from),
    );
    let layout = product.as_ref().ok().map(|p| p.0.tcb_layout());
    let tcb = |raw: u64| match layout {
        Some(l) => tcb_json(&TcbVersion::decode(raw, l)),
        None => json!({"raw": format!("{raw:#018x}")}),
    };
    let pi = PlatformInfo::from_bits_truncate(r.platform_info);
    let flag_names = |names: Vec<&str>| names.into_iter().map(Value::from).collect::<Vec<_>>();
    let doc = json!({
        "container": input.container.name(),
        "version": r.version,
        "product": product.as_ref().map(|p| Value::from(p.0.name())).unwrap_or(Value::Null),
        "product_source": product.as_ref().map(|p| Value::from(p.1.describe())).unwrap_or(Value::Null),
        "guest_svn": r.guest_svn,
        "policy": format!("{:#x}", r.policy.0),
        "policy_abi": format!("{}.{}", r.policy.abi_major(), r.policy.abi_minor()),
        "policy_flags": flag_names(r.policy.flags().iter_names().map(|(n, _)| n).collect()),
        "family_id": hex(&r.family_id),
        "image_id": hex(&r.image_id),
        "vmpl": r.vmpl,
        "sig_algo": r.signature_algo,
        "current_tcb": tcb(r.current_tcb),
        "platform_info": format!("{:#x}", r.platform_info),
        "platform_info_flags": flag_names(pi.iter_names().map(|(n, _)| n).collect()),
        "key_info": {
            "author_key_en": u8::from(r.key_info.author_key_en),
            "mask_chip_key": u8::from(r.key_info.mask_chip_key),
            "signing_key": r.key_info.signing_key.name(),
        },
        "report_data": hex(&r.report_data),
        "measurement": hex(&r.measurement),
        "host_data": hex(&r.host_data),
        "id_key_digest": hex(&r.id_key_digest),
        "author_key_digest": hex(&r.author_key_digest),
        "report_id": hex(&r.report_id),
        "report_id_ma": hex(&r.report_id_ma),
        "reported_tcb": tcb(r.reported_tcb),
        "cpuid_fam_mod_step": r.cpuid.map(|(f, m, s)| json!([f, m, s])).unwrap_or(Value::Null),
        "chip_id": hex(&r.chip_id),
        "committed_tcb": tcb(r.committed_tcb),
        "current_version": r.current_version.to_string(),
        "committed_version": r.committed_version.to_string(),
        "launch_tcb": tcb(r.launch_tcb),
        "launch_mit_vector": r.launch_mit_vector.map(|v| Value::from(format!("{v:#x}"))).unwrap_or(Value::Null),
        "current_mit_vector": r.current_mit_vector.map(|v| Value::from(format!("{v:#x}"))).unwrap_or(Value::Null),
        "signature_r": hex(&r.raw[0x2A0..0x2E8]),
        "signature_s": hex(&r.raw[0x2E8..0x330]),
        "kds_vcek_url": product.as_ref().ok().and_then(|p| snp_report::kds_vcek_url(snp_report::KDS_BASE, p.0, r).ok()),
        "cert_table": input.cert_table.as_ref().map(|t| t.entries.iter().map(|e| json!({
            "guid": e.guid.to_string(), "kind": e.kind.name(), "offset": e.offset, "length": e.data.len()
        })).collect::<Vec<_>>()),
    });
    if a.json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    }
    let mut s = String::new();
    let _ = writeln!(s, "Container: {}", input.container.name());
    if let Err(e) = &product {
        let _ = writeln!(s, "Product: unknown ({e}); TCB fields shown raw");
    }
    let Value::Object(m) = &doc else {
        return Ok(s);
    };
    // Report order, not the map's alphabetical one.
    const ORDER: &[&str] = &[
        "version",
        "product",
        "product_source",
        "guest_svn",
        "policy",
        "policy_abi",
        "policy_flags",
        "family_id",
        "image_id",
        "vmpl",
        "sig_algo",
        "current_tcb",
        "platform_info",
        "platform_info_flags",
        "key_info",
        "report_data",
        "measurement",
        "host_data",
        "id_key_digest",
        "author_key_digest",
        "report_id",
        "report_id_ma",
        "reported_tcb",
        "cpuid_fam_mod_step",
        "chip_id",
        "committed_tcb",
        "current_version",
        "committed_version",
        "launch_tcb",
        "launch_mit_vector",
        "current_mit_vector",
        "signature_r",
        "signature_s",
        "kds_vcek_url",
        "cert_table",
    ];
    for k in ORDER {
        let Some(v) = m.get(*k) else {
            continue;
        };
        let text = field_text(v);
        let _ = writeln!(s, "{:<20} {text}", k.to_ascii_uppercase());
    }
    Ok(s)
}

/// One field of `snp-report`'s text: a string as is, null as "-", an
/// object (a TCB, KEY_INFO) as key=value pairs with the TCB parts first,
/// anything else as JSON.
fn field_text(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Null => "-".into(),
        Value::Object(o) => ["fmc", "bl", "tee", "snp", "ucode", "raw"]
            .iter()
            .filter_map(|k| o.get(*k).map(|v| (k.to_string(), v)))
            .chain(
                o.iter()
                    .filter(|(k, _)| {
                        !["fmc", "bl", "tee", "snp", "ucode", "raw"].contains(&k.as_str())
                    })
                    .map(|(k, v)| (k.clone(), v)),
            )
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_parsers() {
        assert_eq!(parse_version("1.55").unwrap(), (1, 55));
        assert!(parse_version("1").is_err());
        assert_eq!(
            parse_tcb("bl=3,tee=0,snp=8,ucode=115").unwrap(),
            MinTcb::Components {
                fmc: 0,
                bl: 3,
                tee: 0,
                snp: 8,
                ucode: 115
            }
        );
        assert_eq!(
            parse_tcb("0x7308000000000003").unwrap(),
            MinTcb::Raw(0x7308000000000003)
        );
        assert!(parse_tcb("bl=300").is_err());
        assert!(parse_tcb("xx=1").is_err());
        assert_eq!(hex_padded_64("0102").unwrap()[..3], [1, 2, 0]);
        assert!(hex_padded_64(&"00".repeat(65)).is_err());
        assert!(hex_chip_id("0011223344556677").is_ok());
        assert!(hex_chip_id("0011").is_err());
        assert_eq!(parse_time("2025-06-01").unwrap(), 1_748_736_000);
        assert_eq!(parse_time("2025-06-01T00:00:00Z").unwrap(), 1_748_736_000);
        assert!(parse_time("June").is_err());
    }
}
