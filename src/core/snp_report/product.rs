//! Which AMD product made a report (from its CPUID, the VEK's productName
//! or the owner's option) and the AMD KDS URL of the VCEK that signs it.

use std::fmt;

use super::{AttestationReport, ReportError, SigningKey, TcbLayout, TcbVersion};
use crate::core::hex;

/// An AMD EPYC generation with its own KDS product name and CA chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    /// EPYC 7003 (Zen 3): CPUID family 0x19, models 0x00-0x0F.
    Milan,
    /// EPYC 9004/8004 (Zen 4, Bergamo and Siena too): family 0x19, models 0x10-0x1F and 0xA0-0xAF.
    Genoa,
    /// EPYC 9005 (Zen 5): family 0x1A, models 0x00-0x11.
    Turin,
}

impl Product {
    /// Every product, oldest first.
    pub const ALL: [Product; 3] = [Product::Milan, Product::Genoa, Product::Turin];

    /// The KDS product name (Siena and Bergamo are served as Genoa).
    pub fn name(self) -> &'static str {
        match self {
            Product::Milan => "Milan",
            Product::Genoa => "Genoa",
            Product::Turin => "Turin",
        }
    }

    /// Reads a product name as given on a command line or in a VEK's
    /// productName (`Milan-B0`, `Genoa`, `Turin`; Siena and Bergamo are Genoa).
    pub fn from_name(s: &str) -> Option<Product> {
        let line = s.split('-').next().unwrap_or("").to_ascii_lowercase();
        match line.as_str() {
            "milan" => Some(Product::Milan),
            "genoa" | "siena" | "bergamo" => Some(Product::Genoa),
            "turin" => Some(Product::Turin),
            _ => None,
        }
    }

    /// The TCB_VERSION layout of the product's firmware.
    pub fn tcb_layout(self) -> TcbLayout {
        match self {
            Product::Milan | Product::Genoa => TcbLayout::Legacy,
            Product::Turin => TcbLayout::Turin,
        }
    }

    /// The product of a CPUID family and model, as virtee/sev's table has it.
    pub fn from_cpuid(family: u8, model: u8) -> Result<Product, ReportError> {
        match (family, model) {
            (0x19, 0x00..=0x0F) => Ok(Product::Milan),
            (0x19, 0x10..=0x1F) | (0x19, 0xA0..=0xAF) => Ok(Product::Genoa),
            (0x1A, 0x00..=0x11) => Ok(Product::Turin),
            (0x1A, 0x50..=0x57 | 0x90..=0xAF | 0xC0..=0xC7) => Err(ReportError::Product(format!(
                "CPUID family {family:#x} model {model:#x} is Venice, which has no AMD CA chain yet"
            ))),
            _ => Err(ReportError::Product(format!(
                "CPUID family {family:#x} model {model:#x} is not an SEV-SNP product this tool knows (Milan, Genoa, Turin)"
            ))),
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the product came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductSource {
    /// CPUID_FAM_ID / CPUID_MOD_ID of a v3+ report.
    Cpuid,
    /// The productName extension of the VCEK or VLEK.
    VekProductName,
    /// The owner's explicit option.
    Option,
}

impl ProductSource {
    /// The source named for messages.
    pub fn describe(self) -> &'static str {
        match self {
            ProductSource::Cpuid => "the report's CPUID fields",
            ProductSource::VekProductName => "the VEK's productName",
            ProductSource::Option => "--product",
        }
    }
}

/// Which product made `report`: CPUID on v3+, else the VEK's productName,
/// else the explicit option. An explicit option that contradicts the CPUID
/// or the productName is refused, and so is a v2 report with none of them:
/// the error says which.
pub fn resolve_product(
    report: &AttestationReport,
    vek_product_name: Option<&str>,
    explicit: Option<Product>,
) -> Result<(Product, ProductSource), ReportError> {
    if let Some((fam, model, _)) = report.cpuid {
        let p = Product::from_cpuid(fam, model)?;
        if let Some(e) = explicit {
            if e != p {
                return Err(ReportError::Product(format!(
                    "--product {e} contradicts the report, whose CPUID (family {fam:#x} model {model:#x}) says {p}"
                )));
            }
        }
        return Ok((p, ProductSource::Cpuid));
    }
    if let Some(name) = vek_product_name {
        if let Some(p) = Product::from_name(name) {
            if let Some(e) = explicit {
                if e != p {
                    return Err(ReportError::Product(format!(
                        "--product {e} contradicts the VEK, whose productName '{name}' says {p}: \
                         the VEK is for another product, or --product is wrong"
                    )));
                }
            }
            return Ok((p, ProductSource::VekProductName));
        }
    }
    if let Some(e) = explicit {
        return Ok((e, ProductSource::Option));
    }
    Err(ReportError::Product(format!(
        "a version {} report carries no CPUID, so Milan and Genoa cannot be told apart: give --product, \
         or the VCEK (its productName names the product)",
        report.version
    )))
}

/// The KDS URL of the VCEK for `report` (§2.3 of the KDS interface): the
/// 64-byte CHIP_ID on Milan and Genoa, the 8-byte one with fmcSPL on Turin,
/// SPLs from REPORTED_TCB. `base` is `https://kdsintf.amd.com` or a mirror.
pub fn kds_vcek_url(
    base: &str,
    product: Product,
    report: &AttestationReport,
) -> Result<String, ReportError> {
    if report.key_info.signing_key == SigningKey::Vlek {
        return Err(ReportError::Kds(
            "a VLEK signed this report; AMD's KDS hands VLEKs only to cloud providers, so the VLEK must come from the host's certificate table or a file".into(),
        ));
    }
    if report.chip_id_masked() {
        return Err(ReportError::Kds(
            "the host masked CHIP_ID (MASK_CHIP_ID), so the VCEK cannot be looked up by chip; it must come from the host's certificate table or a file".into(),
        ));
    }
    let tcb = TcbVersion::decode(report.reported_tcb, product.tcb_layout());
    let base = base.trim_end_matches('/');
    let spl = format!(
        "blSPL={:02}&teeSPL={:02}&snpSPL={:02}&ucodeSPL={:02}",
        tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
    );
    Ok(match product {
        Product::Milan | Product::Genoa => format!(
            "{base}/vcek/v1/{}/{}?{spl}",
            product.name(),
            hex(&report.chip_id)
        ),
        Product::Turin => format!(
            "{base}/vcek/v1/Turin/{}?fmcSPL={:02}&{spl}",
            hex(&report.chip_id[..8]),
            tcb.fmc.unwrap_or(0)
        ),
    })
}

/// The default KDS.
pub const KDS_BASE: &str = "https://kdsintf.amd.com";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::snp_report::zero_report;

    #[test]
    fn cpuid_products() {
        assert_eq!(Product::from_cpuid(0x19, 0x01).unwrap(), Product::Milan);
        assert_eq!(Product::from_cpuid(0x19, 0x11).unwrap(), Product::Genoa);
        assert_eq!(Product::from_cpuid(0x19, 0xA0).unwrap(), Product::Genoa);
        assert_eq!(Product::from_cpuid(0x1A, 0x02).unwrap(), Product::Turin);
        assert!(Product::from_cpuid(0x1A, 0x50).is_err());
        assert!(Product::from_cpuid(0x17, 0x31).is_err());
        assert_eq!(Product::from_name("Milan-B0"), Some(Product::Milan));
        assert_eq!(Product::from_name("siena"), Some(Product::Genoa));
    }

    #[test]
    fn v2_needs_a_product() {
        let r = AttestationReport::parse(&zero_report(2)).unwrap();
        assert!(resolve_product(&r, None, None).is_err());
        assert_eq!(
            resolve_product(&r, Some("Genoa"), None).unwrap(),
            (Product::Genoa, ProductSource::VekProductName)
        );
        assert_eq!(
            resolve_product(&r, None, Some(Product::Milan)).unwrap().1,
            ProductSource::Option
        );
        // The option agreeing with the productName is fine; contradicting it is not.
        assert_eq!(
            resolve_product(&r, Some("Milan-B0"), Some(Product::Milan)).unwrap(),
            (Product::Milan, ProductSource::VekProductName)
        );
        let e = resolve_product(&r, Some("Milan-B0"), Some(Product::Genoa))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--product Genoa") && e.contains("'Milan-B0' says Milan"),
            "{e}"
        );
    }
}
