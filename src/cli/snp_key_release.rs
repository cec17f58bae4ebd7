//! The attested key release on the command line (schema/snp-key-release.md):
//! `snp-request` and `snp-open` in the guest, and the options with which
//! `snp-validate` seals the owner's secrets to a validated guest
//! ([`SealArgs`]).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use zeroize::Zeroizing;

use crate::core::hex;
use crate::core::snp_secret::{KeyPair, NONCE_LEN};
use crate::error::{Error, Result};
use crate::sev::secrets::SecretSpec;
use crate::snp::key_release::{
    self, files, request, ExternalReport, KernelReport, SealPlan, SealedSummary,
};
use crate::source::guest_report::{self, GuestReportOptions};

const SEAL: &str = "Attested key release (seal secrets to the guest's key)";

/// The owner's nonce: 32 bytes, as 64 hex digits or base64, read the one
/// way every digest is ([`super::num::decode_digest`]).
pub fn parse_nonce(s: &str) -> std::result::Result<[u8; NONCE_LEN], String> {
    super::num::digest_n::<NONCE_LEN>("a nonce", s)
        .map_err(|e| format!("{e}; make one with: head -c 32 /dev/urandom | xxd -p -c 64"))
}

/// `snp-validate`'s sealing options.
#[derive(Debug, Clone, Args)]
pub struct SealArgs {
    /// The nonce given to the guest's snp-request (32 bytes: 64 hex digits or base64); REPORT_DATA must bind it and the evidence's public key (expect.key_binding)
    #[arg(long, value_name = "NONCE", value_parser = parse_nonce, help_heading = SEAL,
          conflicts_with_all = ["report_data", "no_report_data_check"])]
    pub nonce: Option<[u8; NONCE_LEN]>,

    /// Seal this secret to the guest's key when every check passes: ALIAS-OR-GUID:PATH, as --inject-secret (repeatable)
    #[arg(long, value_name = "ALIAS-OR-GUID:PATH", help_heading = SEAL)]
    pub seal_secret: Vec<String>,

    /// Where to write the sealed file (0600, atomically); only when every check passes
    #[arg(long, value_name = "FILE", help_heading = SEAL)]
    pub sealed_out: Option<PathBuf>,
}

/// `--seal-secret` parsed with the messages naming it.
fn parse_spec(option: &str, s: &str) -> Result<SecretSpec> {
    SecretSpec::parse(s).map_err(|e| match e {
        Error::Usage(m) => Error::Usage(m.replace("--inject-secret", option)),
        e => e,
    })
}

impl SealArgs {
    /// The plan these options give, checked: `None` without sealing options.
    pub fn plan(&self) -> Result<Option<SealPlan>> {
        let out = match (&self.sealed_out, self.seal_secret.is_empty()) {
            (None, true) => return Ok(None),
            (Some(_), true) => {
                return Err(Error::Usage(
                    "--sealed-out needs at least one --seal-secret ALIAS-OR-GUID:PATH".into(),
                ))
            }
            (None, false) => {
                return Err(Error::Usage(
                    "--seal-secret needs --sealed-out FILE, where the sealed file is written"
                        .into(),
                ))
            }
            (Some(o), false) => o.clone(),
        };
        let Some(nonce) = self.nonce else {
            return Err(Error::Usage(
                "--seal-secret needs --nonce: the nonce you gave the guest's snp-request, so that a replayed report or another key is refused".into(),
            ));
        };
        let secrets = self
            .seal_secret
            .iter()
            .map(|s| parse_spec("--seal-secret", s))
            .collect::<Result<Vec<_>>>()?;
        let plan = SealPlan {
            nonce,
            secrets,
            out,
        };
        plan.check()?;
        Ok(Some(plan))
    }
}

/// The main command's `--inject-secret` with `--sealed-out` on an SNP
/// guest: the secrets sealed to its key (with `--report EVIDENCE` and
/// `--nonce`); `None` without `--sealed-out`.
pub fn main_seal_plan(
    inject_secret: &[String],
    nonce: Option<[u8; NONCE_LEN]>,
    report: bool,
    sealed_out: Option<&PathBuf>,
) -> Result<Option<SealPlan>> {
    let Some(out) = sealed_out else {
        return Ok(None);
    };
    let need = |m: &str| Err(Error::Usage(m.into()));
    if inject_secret.is_empty() {
        return need("--sealed-out needs --inject-secret ALIAS-OR-GUID:PATH, the secrets to seal");
    }
    let (Some(nonce), true) = (nonce, report) else {
        return need("--sealed-out needs --report EVIDENCE (from the guest's snp-request) and --nonce, the nonce you gave it");
    };
    let secrets = inject_secret
        .iter()
        .map(|s| SecretSpec::parse(s))
        .collect::<Result<Vec<_>>>()?;
    let plan = SealPlan {
        nonce,
        secrets,
        out: out.clone(),
    };
    plan.check()?;
    Ok(Some(plan))
}

/// The sealed file's summary, for the text output.
pub fn sealed_text(s: &SealedSummary) -> String {
    let names: Vec<String> = s
        .entries
        .iter()
        .map(|(g, n)| format!("{} ({n} bytes)", key_release::guid_name(g)))
        .collect();
    format!(
        "SEALED: {} to the guest's key: {}; bound to MEASUREMENT {} and REPORT_ID {}\n",
        s.path.display(),
        names.join(", "),
        hex(&s.header.measurement),
        hex(&s.header.report_id)
    )
}

/// `snp-request`: in the guest, the evidence for the owner's nonce.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The owner's nonce (32 bytes: 64 hex digits or base64)
    #[arg(long, value_name = "NONCE", value_parser = parse_nonce)]
    nonce: [u8; NONCE_LEN],

    /// A directory only you can read (on tmpfs, e.g. /run/snp-key, mode 0700): the private key is kept there
    #[arg(long, value_name = "DIR")]
    key_dir: PathBuf,

    /// Make a new key pair, store it in --key-dir, print REPORT_DATA (hex) to request the report with, and exit (when the kernel's interfaces are not at hand)
    #[arg(long, conflicts_with_all = ["report", "evidence_out"])]
    print_report_data: bool,

    /// The report obtained for the printed REPORT_DATA (raw, SNP_GET_REPORT response, or report with certificate table); without it the guest kernel is asked
    #[arg(long, value_name = "FILE", requires = "evidence_out")]
    report: Option<PathBuf>,

    /// The kernel's configfs-tsm report directory, asked first
    #[arg(long, value_name = "DIR", default_value = guest_report::DEFAULT_TSM_ROOT,
          conflicts_with_all = ["report", "print_report_data"])]
    tsm_root: PathBuf,

    /// The sev-guest device, asked when configfs-tsm is not there
    #[arg(long, value_name = "DEVICE", default_value = guest_report::DEFAULT_SEV_GUEST,
          conflicts_with_all = ["report", "print_report_data"])]
    sev_guest: PathBuf,

    /// The VMPL to request the report for (0-3; the kernel refuses one below its own)
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=3),
          conflicts_with_all = ["report", "print_report_data"])]
    vmpl: u32,

    /// The certificate table obtained with the report (configfs-tsm auxblob)
    #[arg(long, value_name = "FILE", requires = "report")]
    cert_table: Option<PathBuf>,

    /// Where to write the evidence for the owner (JSON, schema/snp-evidence.schema.json)
    #[arg(long, value_name = "FILE")]
    evidence_out: Option<PathBuf>,
}

/// Runs `snp-request`; returns what it prints.
pub fn request_main(a: &RequestArgs) -> Result<String> {
    if a.print_report_data {
        files::check_key_dir(&a.key_dir)?;
        let kp = KeyPair::generate(&mut rand_core::OsRng);
        files::store_key(&a.key_dir, &kp)?;
        let rd = request::report_data_for(&a.nonce, &kp);
        return Ok(format!("{}\n", hex(&rd)));
    }
    let Some(out) = &a.evidence_out else {
        return Err(Error::Usage(
            "snp-request needs --evidence-out FILE (the report asked of the guest kernel), or --print-report-data (step 1) and then --report FILE --evidence-out FILE (step 2, with a report obtained another way for the printed REPORT_DATA)".into(),
        ));
    };
    files::check_output(out, "--evidence-out")?;
    let Some(report) = &a.report else {
        // One step: a new key pair, and the kernel asked for its report.
        let mut kernel = KernelReport::new(GuestReportOptions {
            tsm_root: a.tsm_root.clone(),
            sev_guest: a.sev_guest.clone(),
            vmpl: a.vmpl,
        });
        let evidence = request::request(&a.nonce, &a.key_dir, &mut kernel)?;
        files::write_atomic(out, evidence.to_json().as_bytes(), 0o644)?;
        return Ok(String::new());
    };
    if crate::input::same_file(out, report) {
        return Err(Error::Usage(format!(
            "--evidence-out '{}' is the --report file: give another path",
            out.display()
        )));
    }
    let kp = files::load_key_from_dir(&a.key_dir)?;
    let mut provider = ExternalReport {
        report: report.clone(),
        cert_table: a.cert_table.clone(),
    };
    let evidence = request::build_evidence(&a.nonce, &kp, &mut provider)?;
    files::write_atomic(out, evidence.to_json().as_bytes(), 0o644)?;
    Ok(String::new())
}

/// `snp-open`: in the guest, one secret of a sealed file.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The sealed file (snp-validate --sealed-out)
    #[arg(value_name = "SEALED")]
    sealed: PathBuf,

    /// The key directory given to snp-request
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "key",
        conflicts_with = "key"
    )]
    key_dir: Option<PathBuf>,

    /// The private key file (PKCS#8 PEM) instead of --key-dir
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,

    /// The secret to write: an alias (luks-key) or a GUID
    #[arg(long, value_name = "ALIAS-OR-GUID")]
    secret: String,

    /// Write the secret to this file (0600, atomically) instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `snp-open`: the secret goes to `--out` or stdout, never elsewhere.
pub fn open_main(a: &OpenArgs) -> Result<String> {
    // The alias or GUID, through the same parser as --inject-secret.
    let guid = parse_spec("--secret", &format!("{}:-", a.secret))?.guid;
    let kp = match (&a.key_dir, &a.key) {
        (_, Some(k)) => files::load_key(k)?,
        (Some(d), None) => files::load_key_from_dir(d)?,
        (None, None) => {
            return Err(Error::Usage(
                "snp-open needs --key-dir DIR or --key FILE".into(),
            ))
        }
    };
    if let Some(p) = &a.out {
        files::check_output(p, "--out")?;
    }
    let secret: Zeroizing<Vec<u8>> = key_release::open_secret(&a.sealed, &kp, guid)?;
    match &a.out {
        Some(p) => files::write_atomic(p, &secret, 0o600)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&secret)
                .and_then(|()| out.flush())
                .map_err(|e| Error::Usage(format!("cannot write the secret to stdout: {e}")))?;
        }
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    #[test]
    fn nonce_forms() {
        let h = "00".repeat(31) + "ff";
        assert_eq!(parse_nonce(&h).unwrap()[31], 0xff);
        let b = B64.encode([7u8; 32]);
        assert_eq!(parse_nonce(&b).unwrap(), [7u8; 32]);
        assert!(parse_nonce("00").is_err());
        assert!(parse_nonce(&B64.encode([7u8; 31])).is_err());
    }
}
