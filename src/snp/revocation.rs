//! Where AMD's CRL for `chain.revocation` comes from: `--crl FILE`, else
//! `crl.pem` or `crl.der` in `--certs DIR` (snpguest's `certificates`
//! writes it there), else the certificate table's CRL entry, else (with
//! `--require-revocation-check`, or when the run took the VCEK from the KDS
//! or its cache) the KDS cache or the KDS, fetched again once
//! its nextUpdate has passed.
//! A run that neither requires the check nor uses the KDS makes no network
//! request for a CRL: with the VCEK in a file, the owner may be offline on
//! purpose, and a CRL is then theirs to give.

use std::path::Path;

use crate::core::snp_cert::Crl;
use crate::core::snp_report::{AttestationReport, Product, SigningKey};
use crate::error::{Error, Result};
use crate::snp::endorsement::{read_limited, EndorsementSource};
use crate::snp::validate::{CrlInput, NO_CRL};

/// The CRL file given with `--crl`, DER or PEM.
pub fn read_crl(path: &Path) -> Result<Crl> {
    let b = read_limited("CRL", path)?;
    Crl::from_der_or_pem(&b).map_err(|e| {
        Error::Usage(format!(
            "CRL '{}': {e}; give AMD's CRL as the KDS serves it (DER) or in PEM",
            path.display()
        ))
    })
}

/// The CRL for `report` on `product`: from the file, the one `found` with
/// the certificates (`--certs` DIR's crl.pem or crl.der, else the certificate
/// table's), or the KDS when `from_kds` (the owner requires the check, or
/// the run already uses AMD's KDS); else why not.
pub(crate) fn find_crl(
    e: &EndorsementSource,
    found: Option<&(Vec<u8>, String)>,
    (report, product): (&AttestationReport, Product),
    now: u64,
    from_kds_too: bool,
) -> Result<CrlInput> {
    if let Some(p) = &e.crl {
        return Ok(CrlInput::Found {
            crl: Box::new(read_crl(p)?),
            from: format!("file {}", p.display()),
        });
    }
    if let Some((b, from)) = found {
        let crl =
            Crl::from_der_or_pem(b).map_err(|x| Error::Usage(format!("the CRL in {from}: {x}")))?;
        return Ok(CrlInput::Found {
            crl: Box::new(crl),
            from: from.clone(),
        });
    }
    if !from_kds_too {
        return Ok(CrlInput::Missing(NO_CRL.into()));
    }
    let kind = if report.key_info.signing_key == SigningKey::Vlek {
        "vlek"
    } else {
        "vcek"
    };
    let path = format!("/{kind}/v1/{}/crl", product.name());
    Ok(match from_kds(e, &path, now) {
        Ok(crl) => CrlInput::Found {
            crl: Box::new(crl),
            from: format!("KDS {}{path}", e.kds_url.trim_end_matches('/')),
        },
        Err(why) => CrlInput::Missing(format!("no CRL: {why}; give --crl FILE")),
    })
}

/// The CRL at `path` from the KDS cache while its nextUpdate has not passed,
/// else from the KDS (unless offline) into the cache.
#[cfg(feature = "kds")]
fn from_kds(e: &EndorsementSource, path: &str, now: u64) -> std::result::Result<Crl, String> {
    use crate::source::kds;
    let options = kds::Options {
        base_url: e.kds_url.clone(),
        offline: e.offline,
        ..kds::Options::default()
    };
    let parse = |b: Vec<u8>| {
        Crl::from_der(&b).map_err(|x| format!("the KDS answer for {path} is not a CRL: {x}"))
    };
    let said = |x: kds::KdsError| match x {
        kds::KdsError::NotFound { url } => format!("the KDS has no CRL at {url} (HTTP 404)"),
        other => other.to_string(),
    };
    let cache = e.kds_cache.as_deref();
    let crl = match parse(kds::fetch(path, cache, &options).map_err(said)?) {
        // A cached file that is not a CRL is replaced when the KDS can be asked.
        Err(_) if !e.offline => parse(kds::fetch_fresh(path, cache, &options).map_err(said)?)?,
        other => other?,
    };
    let stale = crl.next_update.is_none_or(|n| n < now);
    if !stale || e.offline {
        return Ok(crl);
    }
    // Past its nextUpdate: AMD has issued a newer one. Should the KDS not
    // answer, the old one still shows what was revoked (and is warned about).
    match kds::fetch_fresh(path, cache, &options) {
        Ok(b) => parse(b),
        Err(_) => Ok(crl),
    }
}

#[cfg(not(feature = "kds"))]
fn from_kds(_: &EndorsementSource, _: &str, _: u64) -> std::result::Result<Crl, String> {
    Err("this build has no KDS fetching (feature kds)".into())
}
