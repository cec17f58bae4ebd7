//! Where the VCEK or VLEK that signed a report, and AMD's chain above it,
//! come from: files the owner gives, a directory in snpguest's layout, the
//! certificate table the guest obtained with its report, or AMD's Key
//! Distribution Service (and its cache); and the trust anchors the chain
//! ends in.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha384};

use crate::core::id_block::{self, SnpKey};
use crate::core::snp_cert::{Bundle, CertError, CertRole, Certificate, TrustAnchors};
use crate::core::snp_report::{
    self, AttestationReport, CertKind, CertTable, Product, ReportInput, SigningKey, MAX_INPUT_LEN,
};
use crate::core::snp_secret::Evidence;
use crate::error::{Error, Result};
use crate::input;

/// Where the VEK and its chain come from (`snp-validate`'s endorsement
/// options, and the main command's with `--report`).
#[derive(Debug, Clone, Default)]
pub struct EndorsementSource {
    /// The VCEK that signed the report (DER or PEM).
    pub vcek: Option<PathBuf>,
    /// The VLEK that signed the report (DER or PEM).
    pub vlek: Option<PathBuf>,
    /// A directory in snpguest's layout: ark, ask or asvk, vcek or vlek, each .pem or .der.
    pub certs: Option<PathBuf>,
    /// A GHCB certificate table (configfs-tsm auxblob, SNP_GET_EXT_REPORT pages).
    pub cert_table: Option<PathBuf>,
    /// AMD's CRL for the product (DER or PEM): `chain.revocation`.
    pub crl: Option<PathBuf>,
    /// Certificates that replace AMD's built-in ARK, ASK and ASVK.
    pub trust_anchors: Vec<PathBuf>,
    /// The product, when a version 2 report and its VEK do not say.
    pub product: Option<Product>,
    /// AMD KDS base URL, or a mirror's.
    pub kds_url: String,
    /// Cache directory for VCEKs fetched from the KDS.
    pub kds_cache: Option<PathBuf>,
    /// Never touch the network.
    pub offline: bool,
    /// Check certificate validity at this time (seconds since 1970) instead of now.
    pub now: Option<u64>,
}

/// A report, certificate, table or key file, through the one bounded
/// reader: its size limit holds while reading (a pipe or a device reports
/// no size, so the metadata cannot say).
pub(crate) fn read_limited(what: &str, path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    input::read_within(what, path, MAX_INPUT_LEN, |size| {
        Error::Usage(format!(
            "{what} '{}' is {size}; nothing this tool reads is larger than {MAX_INPUT_LEN} bytes: check the path",
            path.display()
        ))
    })
}

/// The report at `path`, in any container the tool reads.
pub fn read_report(path: &Path) -> Result<ReportInput> {
    read_report_or_evidence(path).map(|(input, _)| input)
}

/// The report at `path`, in any container the tool reads or in a
/// key-release evidence file (JSON: its first non-space byte is `{`), with
/// the evidence.
pub fn read_report_or_evidence(path: &Path) -> Result<(ReportInput, Option<Evidence>)> {
    let b = read_limited("report", path)?;
    let bad = |e: &dyn std::fmt::Display| Error::Usage(format!("report '{}': {e}", path.display()));
    if b.iter().find(|c| !c.is_ascii_whitespace()) != Some(&b'{') {
        return Ok((snp_report::parse_input(&b).map_err(|e| bad(&e))?, None));
    }
    let e = Evidence::parse(&b)
        .map_err(|x| Error::Usage(format!("evidence '{}': {x}", path.display())))?;
    let report = AttestationReport::parse(&e.report).map_err(|x| bad(&x))?;
    let cert_table = match &e.cert_table {
        Some(t) => Some(CertTable::parse(t).map_err(|x| bad(&x))?),
        None => None,
    };
    let input = ReportInput {
        container: snp_report::Container::Evidence,
        report,
        cert_table,
        hcl: None,
    };
    Ok((input, Some(e)))
}

/// A certificate file, DER or PEM: one certificate, or a bundle from which
/// the VCEK or VLEK is taken (its ASK and ARK placed by `gather`).
pub fn read_cert(what: &str, path: &Path) -> Result<Certificate> {
    let b = read_bundle(what, path)?;
    match b.vek() {
        Some((_, c)) if b.certs.len() > 1 => Ok(c.clone()),
        _ if b.certs.len() == 1 => Ok(b.certs[0].1.clone()),
        _ => Err(Error::Usage(format!(
            "{what} '{}' holds {} but no VCEK or VLEK; give the certificate that signed the report",
            path.display(),
            b.describe()
        ))),
    }
}

/// A certificate file that may hold several certificates (a PEM bundle),
/// each with its role.
pub fn read_bundle(what: &str, path: &Path) -> Result<Bundle> {
    let b = read_limited(what, path)?;
    Bundle::parse(&b).map_err(|e| Error::Usage(format!("{what} '{}': {e}", path.display())))
}

fn cert_from_table(what: &str, b: &[u8]) -> Result<Certificate> {
    Certificate::from_der(b)
        .map_err(|e| Error::Usage(format!("{what} in the certificate table: {e}")))
}

/// Where the endorsement came from, for the output.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) vek: Option<(Certificate, String)>,
    pub(crate) ask: Option<(Certificate, String)>,
    pub(crate) ark: Option<(Certificate, String)>,
    /// The CRL of `--certs` (crl.pem or crl.der, as snpguest writes it) or
    /// of the certificate table, and where from: for `chain.revocation`.
    pub(crate) crl: Option<(Vec<u8>, String)>,
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum CertSlot {
    Vek,
    Ask,
    Ark,
}

impl CertSlot {
    fn of(r: CertRole) -> CertSlot {
        match r {
            CertRole::Vcek | CertRole::Vlek => CertSlot::Vek,
            CertRole::Ask | CertRole::Asvk => CertSlot::Ask,
            CertRole::Ark => CertSlot::Ark,
        }
    }
}

/// A file given for one role (`--vcek`, `--vlek`, or a file of `--certs`):
/// its certificates placed by their roles, refused when none has `want`'s
/// role, so a certificate given as another says what it is.
fn take_file(f: &mut Found, what: &str, want: &[CertRole], p: &Path, from: String) -> Result<()> {
    let b = read_bundle(what, p)?;
    let found = b.certs.iter().any(|(r, _)| want.contains(r));
    if !found {
        let other_vek = match b.vek() {
            Some((r, _)) if want.iter().any(|w| w.is_vek()) => {
                format!("; give it with --{}", r.name().to_ascii_lowercase())
            }
            _ => String::new(),
        };
        let want = want
            .iter()
            .map(|r| r.with_article())
            .collect::<Vec<_>>()
            .join(" or ");
        let holds = match b.certs.len() {
            1 => format!("{}, not {want}", b.describe()),
            n => format!("{n} certificates ({}) but no {want}", b.describe()),
        };
        let about = if other_vek.is_empty() && want.contains("VCEK") {
            ": the VCEK or VLEK is the ECDSA P-384 certificate (CN SEV-VCEK or SEV-VLEK) that signed the report, from AMD's KDS, the guest's certificate table or the cloud's instance metadata; AMD's ARK, ASK and ASVK are built in"
        } else {
            ""
        };
        return Err(Error::Usage(format!(
            "{what} '{}' holds {holds}{other_vek}{about}",
            p.display()
        )));
    }
    let several = b.certs.len() > 1;
    for (r, c) in b.certs {
        let from = if several {
            format!("{} in {from}", r.name())
        } else {
            from.clone()
        };
        f.take(CertSlot::of(r), c, from);
    }
    Ok(())
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

pub(crate) fn gather(a: &EndorsementSource, input: &ReportInput) -> Result<Found> {
    let mut f = Found::default();
    if let Some(p) = &a.vcek {
        let from = format!("VCEK file {}", p.display());
        take_file(&mut f, "VCEK", &[CertRole::Vcek], p, from)?;
    } else if let Some(p) = &a.vlek {
        let from = format!("VLEK file {}", p.display());
        take_file(&mut f, "VLEK", &[CertRole::Vlek], p, from)?;
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
        let (vek, ca) = (
            &[CertRole::Vcek, CertRole::Vlek][..],
            &[CertRole::Ask, CertRole::Asvk][..],
        );
        for (names, what, want) in [
            (vek_names, "VEK", vek),
            (ask_names, "AS(V)K", ca),
            (&["ark"][..], "ARK", &[CertRole::Ark][..]),
        ] {
            if let Some(p) = dir_file(d, names) {
                take_file(&mut f, what, want, &p, p.display().to_string())?;
            }
        }
        if let Some(p) = dir_file(d, &["crl"]) {
            f.crl = Some((read_limited("CRL", &p)?.to_vec(), p.display().to_string()));
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
        take_table(
            &mut f,
            t,
            input.report.key_info.signing_key == SigningKey::Vlek,
        )?;
    }
    Ok(f)
}

/// The VEK, ASK, ARK and CRL a certificate table holds, where no file gave
/// them.
fn take_table(f: &mut Found, t: &CertTable, vlek: bool) -> Result<()> {
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
    if let (None, Some(b)) = (&f.crl, t.get(CertKind::Crl)) {
        f.crl = Some((b.to_vec(), "the certificate table".into()));
    }
    if let Some(b) = t.get(CertKind::Ark) {
        f.take(
            CertSlot::Ark,
            cert_from_table("ARK", b)?,
            "certificate table".into(),
        );
    }
    Ok(())
}

/// The SHA-384 digest of a P-384 public key (PEM public or private key) in
/// the SNP public key form: what ID_KEY_DIGEST and AUTHOR_KEY_DIGEST hold.
pub fn key_digest(what: &str, path: &Path) -> Result<[u8; 48]> {
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

/// The KDS URL of this report's VCEK, or why there is none.
pub(crate) fn kds_url(
    a: &EndorsementSource,
    r: &AttestationReport,
) -> std::result::Result<String, String> {
    let product = match a.product {
        Some(p) => p,
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
pub(crate) fn fetch_vcek(
    a: &EndorsementSource,
    url: &str,
) -> std::result::Result<Certificate, String> {
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
pub(crate) fn fetch_vcek(
    _: &EndorsementSource,
    _: &str,
) -> std::result::Result<Certificate, String> {
    Err("this build has no KDS fetching (feature kds)".into())
}

/// The message when no VEK is at hand: every way to give one, why the KDS
/// did not give it, and the KDS URL of this report's VCEK.
/// The URL, some 150 characters, is said once, on a line of its own.
pub(crate) fn no_endorsement(a: &EndorsementSource, r: &AttestationReport, why: &str) -> Error {
    let (url, why) = match kds_url(a, r) {
        Ok(u) => (
            format!(
                "\nThis report's VCEK is at AMD's KDS:\n  {u}\n(save it, e.g. with curl -o vcek.der \
                 and that URL in quotes, then give --vcek vcek.der)"
            ),
            why.replace(&u, "the URL below"),
        ),
        Err(e) => (format!("\n{e}"), why.to_string()),
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

/// The trust anchors given with `--trust-anchors`; `None` for AMD's.
pub(crate) fn custom_anchors(a: &EndorsementSource) -> Result<Option<TrustAnchors>> {
    if a.trust_anchors.is_empty() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for p in &a.trust_anchors {
        files.push(read_limited("trust anchors", p)?.to_vec());
    }
    TrustAnchors::from_files(&files)
        .map(Some)
        .map_err(|e: CertError| Error::Usage(format!("--trust-anchors: {e}")))
}

/// Where the VEK, ASK (or ASVK) and ARK came from, for the verdict.
pub(crate) fn chain_sources(
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
