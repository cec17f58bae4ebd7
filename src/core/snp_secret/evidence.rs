//! The evidence file the guest hands the owner: JSON with the report, its
//! certificate table, the owner's nonce and the guest's public key
//! (schema/snp-evidence.schema.json). Every field is checked; unknown
//! fields are refused.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{
    check_public_key, KeyReleaseError, AEAD_ID, KDF_ID, KEM_ID, NONCE_LEN, PUBLIC_KEY_LEN,
};
use crate::core::snp_report::{CertTable, REPORT_LEN};

/// The `format` of every evidence file of this version.
pub const FORMAT: &str = "virt-qemu-sev-validate/snp-evidence/v1";
/// The largest evidence file read.
pub const MAX_EVIDENCE_LEN: usize = 1 << 20;

/// How the guest obtained its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportSource {
    /// The kernel's configfs-tsm interface (/sys/kernel/config/tsm/report).
    #[serde(rename = "configfs-tsm")]
    ConfigfsTsm,
    /// The /dev/sev-guest ioctl.
    #[serde(rename = "sev-guest")]
    SevGuest,
    /// Obtained by the user for the printed REPORT_DATA (`--report FILE`).
    #[serde(rename = "external")]
    External,
}

impl ReportSource {
    /// The name the evidence file gives it.
    pub fn name(self) -> &'static str {
        match self {
            ReportSource::ConfigfsTsm => "configfs-tsm",
            ReportSource::SevGuest => "sev-guest",
            ReportSource::External => "external",
        }
    }
}

/// The evidence, its fields checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The owner's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The guest's HPKE public key, SEC1 uncompressed.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// The attestation report, exactly 1184 bytes.
    pub report: Vec<u8>,
    /// The GHCB certificate table the guest obtained with it, if any.
    pub cert_table: Option<Vec<u8>>,
    /// How the guest obtained the report.
    pub report_source: ReportSource,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    kem: u16,
    kdf: u16,
    aead: u16,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Json {
    format: String,
    suite: Suite,
    nonce: String,
    public_key: String,
    report: String,
    cert_table: Option<String>,
    report_source: ReportSource,
}

fn bad(m: impl Into<String>) -> KeyReleaseError {
    KeyReleaseError::Malformed(m.into())
}

fn hex_field<const N: usize>(name: &str, s: &str) -> Result<[u8; N], KeyReleaseError> {
    let v = hex::decode(s).map_err(|e| bad(format!("evidence field '{name}' is not hex: {e}")))?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| {
        bad(format!(
            "evidence field '{name}' must be {N} bytes ({} hex digits), not {} bytes",
            2 * N,
            v.len()
        ))
    })
}

fn b64_field(name: &str, s: &str) -> Result<Vec<u8>, KeyReleaseError> {
    B64.decode(s).map_err(|e| {
        bad(format!(
            "evidence field '{name}' is not base64 (RFC 4648, padded): {e}"
        ))
    })
}

impl Evidence {
    /// Parses and checks an evidence file's bytes.
    pub fn parse(b: &[u8]) -> Result<Evidence, KeyReleaseError> {
        if b.len() > MAX_EVIDENCE_LEN {
            return Err(bad(format!(
                "an evidence file is at most {MAX_EVIDENCE_LEN} bytes"
            )));
        }
        let j: Json = serde_json::from_slice(b).map_err(|e| {
            bad(format!(
                "not an evidence file (schema/snp-evidence.schema.json): {e}"
            ))
        })?;
        if j.format != FORMAT {
            return Err(bad(format!(
                "evidence format '{}' is not known; this tool reads '{FORMAT}'",
                j.format
            )));
        }
        let s = &j.suite;
        if (s.kem, s.kdf, s.aead) != (KEM_ID, KDF_ID, AEAD_ID) {
            return Err(bad(format!(
                "evidence suite kem {}, kdf {}, aead {} is not supported; only kem {KEM_ID} (DHKEM(P-384, HKDF-SHA384)), kdf {KDF_ID} (HKDF-SHA384), aead {AEAD_ID} (AES-256-GCM)",
                s.kem, s.kdf, s.aead
            )));
        }
        let nonce = hex_field::<NONCE_LEN>("nonce", &j.nonce)?;
        let public_key = hex_field::<PUBLIC_KEY_LEN>("public_key", &j.public_key)?;
        check_public_key(&public_key)?;
        let report = b64_field("report", &j.report)?;
        if report.len() != REPORT_LEN {
            return Err(bad(format!(
                "evidence field 'report' must be the {REPORT_LEN}-byte attestation report, not {} bytes",
                report.len()
            )));
        }
        let cert_table = match &j.cert_table {
            None => None,
            Some(t) => {
                let t = b64_field("cert_table", t)?;
                CertTable::parse(&t)
                    .map_err(|e| bad(format!("evidence field 'cert_table': {e}")))?;
                Some(t)
            }
        };
        Ok(Evidence {
            nonce,
            public_key,
            report,
            cert_table,
            report_source: j.report_source,
        })
    }

    /// The evidence as JSON, fields in the schema's order, with a final newline.
    pub fn to_json(&self) -> String {
        let j = Json {
            format: FORMAT.into(),
            suite: Suite {
                kem: KEM_ID,
                kdf: KDF_ID,
                aead: AEAD_ID,
            },
            nonce: hex::encode(self.nonce),
            public_key: hex::encode(self.public_key),
            report: B64.encode(&self.report),
            cert_table: self.cert_table.as_ref().map(|t| B64.encode(t)),
            report_source: self.report_source,
        };
        let mut s = serde_json::to_string_pretty(&j).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Evidence {
        let kp = super::super::KeyPair::generate(&mut rand_core::OsRng);
        Evidence {
            nonce: [7; 32],
            public_key: kp.public,
            report: vec![0; REPORT_LEN],
            cert_table: None,
            report_source: ReportSource::External,
        }
    }

    #[test]
    fn round_trip_and_unknown_fields() {
        let e = sample();
        let s = e.to_json();
        assert_eq!(Evidence::parse(s.as_bytes()).unwrap(), e);
        let extra = s.replacen('{', "{\"extra\": 1,", 1);
        assert!(Evidence::parse(extra.as_bytes()).is_err());
        let v2 = s.replace("snp-evidence/v1", "snp-evidence/v2");
        let err = Evidence::parse(v2.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("not known"), "{err}");
        let suite = s.replace("\"kem\": 17", "\"kem\": 16");
        assert!(Evidence::parse(suite.as_bytes()).is_err());
    }
}
