//! The options `snp-validate` shares with the main command's SEV-SNP runs:
//! where the VCEK or VLEK and its chain come from ([`EndorsementArgs`]) and
//! what the owner requires of a report ([`RequirementArgs`]), each turned
//! into the library's types.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::num::{
    hex_chip_id, hex_padded_64, key_digest as digest48, parse_api, parse_tcb, parse_time,
    parse_u32, parse_u64, parse_u8, report_id,
};
use crate::core::snp_report::{self, Product};
use crate::error::Result;
use crate::snp::endorsement::{key_digest, EndorsementSource};
use crate::snp::validate::{Expectations, MinTcb};

const ENDORSEMENT: &str = "Endorsement (VCEK or VLEK and its chain)";
pub(crate) const EXPECT: &str = "The owner's expectations";
pub(crate) const DEFAULTS: &str = "Safe defaults (refused unless allowed)";

/// `--product`.
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

/// Where the VCEK or VLEK and its chain come from: `snp-validate`'s options,
/// and the main command's with `--report` on an SNP guest.
#[derive(Debug, Clone, Args)]
pub struct EndorsementArgs {
    /// The VCEK that signed the report (DER or PEM; a PEM bundle with its ASK and ARK, as Azure serves it, too)
    #[arg(long, value_name = "FILE", help_heading = ENDORSEMENT, conflicts_with = "vlek")]
    pub vcek: Option<PathBuf>,

    /// The VLEK that signed the report (DER or PEM; a PEM bundle with its ASVK and ARK too)
    #[arg(long, value_name = "FILE", help_heading = ENDORSEMENT)]
    pub vlek: Option<PathBuf>,

    /// A directory in snpguest's layout: ark, ask or asvk, vcek or vlek (and crl), each .pem or .der
    #[arg(long, value_name = "DIR", help_heading = ENDORSEMENT)]
    pub certs: Option<PathBuf>,

    /// A GHCB certificate table (configfs-tsm auxblob, SNP_GET_EXT_REPORT pages)
    #[arg(long, value_name = "FILE", help_heading = ENDORSEMENT)]
    pub cert_table: Option<PathBuf>,

    /// AMD's revocation list for the product (DER or PEM), checked as chain.revocation; the KDS serves it at /vcek/v1/{Milan,Genoa,Turin}/crl
    #[arg(long, value_name = "FILE", help_heading = ENDORSEMENT)]
    pub crl: Option<PathBuf>,

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
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath, help_heading = ENDORSEMENT)]
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
    /// The nonce given to the guest for REPORT_DATA: up to 64 bytes in hex (or base64), zero-padded to 64
    #[arg(long, value_name = "HEX", value_parser = hex_padded_64, help_heading = EXPECT)]
    pub report_data: Option<[u8; 64]>,

    /// Do not require --report-data (a replayed report then passes)
    #[arg(long, help_heading = DEFAULTS, conflicts_with = "report_data")]
    pub no_report_data_check: bool,

    /// Expected REPORT_ID (32 bytes: 64 hex digits or base64)
    #[arg(long, value_name = "HEX", value_parser = report_id, help_heading = EXPECT)]
    pub report_id: Option<[u8; 32]>,

    /// Expected REPORT_ID_MA (32 bytes: 64 hex digits or base64)
    #[arg(long, value_name = "HEX", value_parser = report_id, help_heading = EXPECT)]
    pub report_id_ma: Option<[u8; 32]>,

    /// Expected CHIP_ID (128 hex digits or base64; Turin: 16 hex digits, zero-padded)
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
    #[arg(long, value_name = "MAJ.MIN", value_parser = parse_api, help_heading = EXPECT)]
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

    /// A trusted ID key digest (48 bytes: 96 hex digits or base64, as snp-id-block prints it; SHA-384 of the 0x404-byte SNP public key; repeatable)
    #[arg(long, value_name = "HEX", value_parser = digest48, help_heading = EXPECT)]
    pub trusted_id_key_digest: Vec<[u8; 48]>,

    /// A trusted author public key (PEM; repeatable)
    #[arg(long, value_name = "FILE", help_heading = EXPECT)]
    pub trusted_author_key: Vec<PathBuf>,

    /// A trusted author key digest (48 bytes: 96 hex digits or base64; repeatable)
    #[arg(long, value_name = "HEX", value_parser = digest48, help_heading = EXPECT)]
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

    /// Fail unless a current CRL shows the chain unrevoked; without --crl, AMD's CRL comes from the KDS cache or the KDS
    #[arg(long, help_heading = EXPECT)]
    pub require_revocation_check: bool,
}

/// `(option, path)` for each path given.
fn named<'a>(
    name: &'static str,
    paths: impl IntoIterator<Item = &'a PathBuf>,
) -> impl Iterator<Item = (&'static str, &'a Path)> {
    paths.into_iter().map(move |p| (name, p.as_path()))
}

impl EndorsementArgs {
    /// The files these options read, each with its option's name.
    pub fn inputs(&self) -> Vec<(&'static str, &Path)> {
        named("--vcek", &self.vcek)
            .chain(named("--vlek", &self.vlek))
            .chain(named("--cert-table", &self.cert_table))
            .chain(named("--trust-anchors", &self.trust_anchors))
            .collect()
    }

    /// Where the VEK and its chain come from, as the library takes it.
    pub fn source(&self) -> EndorsementSource {
        EndorsementSource {
            vcek: self.vcek.clone(),
            vlek: self.vlek.clone(),
            certs: self.certs.clone(),
            cert_table: self.cert_table.clone(),
            crl: self.crl.clone(),
            trust_anchors: self.trust_anchors.clone(),
            product: self.product.map(Product::from),
            kds_url: self.kds_url.clone(),
            kds_cache: self.kds_cache.clone(),
            offline: self.offline,
            now: self.now,
        }
    }
}

impl RequirementArgs {
    /// The files these options read, each with its option's name.
    pub fn inputs(&self) -> Vec<(&'static str, &Path)> {
        named("--trusted-id-key", &self.trusted_id_key)
            .chain(named("--trusted-author-key", &self.trusted_author_key))
            .collect()
    }

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
            // snp-validate's own option; the main command computes it.
            waive_measurement: false,
            host_data: None,
            family_id: None,
            image_id: None,
            report_id: a.report_id,
            report_id_ma: a.report_id_ma,
            chip_id: a.chip_id,
            max_policy: a.max_policy,
            launch_policy: None,
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
            require_revocation_check: a.require_revocation_check,
        })
    }
}
