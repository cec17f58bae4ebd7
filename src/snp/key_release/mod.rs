//! Attested key release for SEV-SNP guests, with its files
//! (schema/snp-key-release.md): the guest's request ([`request`]: a key
//! pair, REPORT_DATA, a report from a [`ReportProvider`], the evidence),
//! the owner's sealing after every check passed ([`seal_validated`]), and
//! the guest's opening ([`open_secret`]). The formats are in
//! [`crate::core::snp_secret`].

pub mod agent;
pub mod files;
pub mod request;

use std::path::{Path, PathBuf};

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::core::secret::{SecretTable, MAX_SECRET_TABLE_LEN};
use crate::core::snp_secret::{
    self, sealed, Evidence, KeyPair, KeyReleaseError, SealedHeader, NONCE_LEN,
};
use crate::error::{Error, Result};
use crate::sev::secrets::{self, SecretSpec, SECRET_ALIASES};
use crate::snp::attest::{SealedDocument, SealedEntry, Validation};

pub use request::{ExternalReport, KernelReport, ObtainedReport, ReportProvider};

/// What the owner asked to seal, and where.
#[derive(Debug, Clone)]
pub struct SealPlan {
    /// The nonce the owner gave the guest.
    pub nonce: [u8; NONCE_LEN],
    /// The secrets: GUID and file, as for `--inject-secret`.
    pub secrets: Vec<SecretSpec>,
    /// The sealed file to write.
    pub out: PathBuf,
}

/// What was sealed: never the secrets, only their GUIDs and lengths.
#[derive(Debug, Clone)]
pub struct SealedSummary {
    /// The sealed file written.
    pub path: PathBuf,
    /// Each secret's GUID and length, in the table's order.
    pub entries: Vec<(Uuid, usize)>,
    /// MEASUREMENT and REPORT_ID the file is bound to.
    pub header: SealedHeader,
}

impl SealedSummary {
    /// The `sealed` object of `snp-validate --json`.
    pub fn document(&self) -> SealedDocument {
        SealedDocument {
            entries: self
                .entries
                .iter()
                .map(|(g, n)| SealedEntry {
                    guid: g.to_string(),
                    length: *n,
                })
                .collect(),
            measurement: crate::core::hex(&self.header.measurement),
            path: self.path.display().to_string(),
            report_id: crate::core::hex(&self.header.report_id),
        }
    }
}

impl SealPlan {
    /// Checks, before any other work, that the secret files exist and that
    /// the sealed file is not one of them.
    pub fn check(&self) -> Result<()> {
        secrets::check_files(&self.secrets)?;
        if let Some(s) = self
            .secrets
            .iter()
            .find(|s| crate::input::same_file(&s.path, &self.out))
        {
            return Err(Error::Usage(format!(
                "--sealed-out '{}' is the secret file '{}': give another path",
                self.out.display(),
                s.path.display()
            )));
        }
        files::check_output(&self.out, "--sealed-out")
    }
}

/// Seals the plan's secrets to the key of `evidence`, for the launch of the
/// report `v` validated, and writes the file (0600, atomically). Refused
/// unless every check passed: nothing is read or written then.
pub fn seal_validated(
    v: &Validation,
    evidence: &Evidence,
    plan: &SealPlan,
) -> Result<SealedSummary> {
    if !v.outcome.passed() {
        let failed: Vec<_> = v.outcome.failures().map(|c| c.name).collect();
        return Err(Error::AttestationFailed(format!(
            "nothing sealed: {} failed",
            failed.join(", ")
        )));
    }
    let r = &v.input.report;
    let header = SealedHeader {
        measurement: r.measurement,
        report_id: r.report_id,
    };
    let mut table = SecretTable::new();
    let mut entries = Vec::new();
    let limit_is = "a sealed secret table holds";
    for s in &plan.secrets {
        let data = secrets::read_secret(s, MAX_SECRET_TABLE_LEN, limit_is)?;
        entries.push((s.guid, data.len()));
        table.add(s.guid, data)?;
    }
    if table.padded_len() > MAX_SECRET_TABLE_LEN {
        return Err(Error::Usage(format!(
            "the secret table is {} bytes, larger than the {MAX_SECRET_TABLE_LEN} bytes {limit_is}; seal fewer or smaller secrets",
            table.padded_len()
        )));
    }
    let bytes = snp_secret::seal(&table, &evidence.public_key, &header, &mut rand_core::OsRng)
        .map_err(|e| Error::Unexpected(format!("sealing failed: {e}")))?;
    files::write_atomic(&plan.out, &bytes, 0o600)?;
    Ok(SealedSummary {
        path: plan.out.clone(),
        entries,
        header,
    })
}

/// A GUID with its alias, for messages.
pub fn guid_name(g: &Uuid) -> String {
    match SECRET_ALIASES.iter().find(|(_, x)| x == g) {
        Some((a, _)) => format!("{g} ({a})"),
        None => g.to_string(),
    }
}

/// Opens the sealed file at `path` with `key` and returns the secret `guid`.
pub fn open_secret(path: &Path, key: &KeyPair, guid: Uuid) -> Result<Zeroizing<Vec<u8>>> {
    let b = files::read_bounded("sealed file", path, sealed::MAX_SEALED_LEN)?;
    let (_, entries) = snp_secret::open(&b, key).map_err(|e| match e {
        KeyReleaseError::NotForThisKey => Error::AttestationFailed(format!(
            "sealed file '{}' was not sealed to this key, or tampered with: use the key directory of the snp-request that made the evidence it was sealed for",
            path.display()
        )),
        e => Error::Usage(format!("sealed file '{}': {e}", path.display())),
    })?;
    let present: Vec<String> = entries.iter().map(|(g, _)| guid_name(g)).collect();
    entries
        .into_iter()
        .find(|(g, _)| *g == guid)
        .map(|(_, d)| d)
        .ok_or_else(|| {
            Error::Usage(format!(
                "sealed file '{}' has no secret {}; it holds: {}",
                path.display(),
                guid_name(&guid),
                present.join(", ")
            ))
        })
}
