//! The AMD extensions (1.3.6.1.4.1.3704.1.*) of a VCEK or VLEK: its product,
//! the TCB it was derived for, the chip's hardware ID, the cloud provider.

use x509_cert::der::asn1::{Ia5StringRef, OctetStringRef};
use x509_cert::der::Decode;

use super::CertError;
use crate::core::snp_report::{TcbLayout, TcbVersion};

const AMD_PREFIX: &str = "1.3.6.1.4.1.3704.1.";

/// The AMD extensions of a VCEK or VLEK (1.3.6.1.4.1.3704.1.*).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmdExtensions {
    /// structVersion (.1): 0 on Milan and Genoa VCEKs and on VLEKs, 1 on Turin VCEKs.
    pub struct_version: Option<u32>,
    /// productName (.2), e.g. `Milan-B0`, `Genoa`, `Turin`.
    pub product_name: Option<String>,
    /// blSPL (.3.1): the BOOT_LOADER SPL.
    pub bl_spl: Option<u8>,
    /// teeSPL (.3.2): the TEE SPL.
    pub tee_spl: Option<u8>,
    /// snpSPL (.3.3): the SNP firmware SPL.
    pub snp_spl: Option<u8>,
    /// ucodeSPL (.3.8): the MICROCODE SPL.
    pub ucode_spl: Option<u8>,
    /// fmcSPL (.3.9): the FMC SPL, Turin only.
    pub fmc_spl: Option<u8>,
    /// spl_4 .. spl_7 (reserved), where present.
    pub reserved_spl: Vec<(u8, u8)>,
    /// The chip's hardware ID: 64 bytes, or 8 on Turin.
    pub hwid: Option<Vec<u8>>,
    /// The cloud provider a VLEK belongs to.
    pub csp_id: Option<String>,
    /// AMD OIDs this tool does not know.
    pub unknown: Vec<String>,
}

impl AmdExtensions {
    /// The TCB the certificate is derived for, in a product layout; `None`
    /// when a component that layout needs is missing.
    pub fn tcb(&self, layout: TcbLayout) -> Option<TcbVersion> {
        let (bl, tee, snp, ucode) = (self.bl_spl?, self.tee_spl?, self.snp_spl?, self.ucode_spl?);
        let fmc = match layout {
            TcbLayout::Turin => self.fmc_spl?,
            TcbLayout::Legacy => 0,
        };
        Some(TcbVersion::decode(
            TcbVersion::encode(layout, fmc, bl, tee, snp, ucode),
            layout,
        ))
    }
}

/// An AMD SPL: a DER INTEGER that must fit a byte.
fn spl(oid: &str, v: &[u8]) -> Result<u8, CertError> {
    let n = u32::from_der(v).map_err(|e| CertError::Extension {
        oid: oid.into(),
        what: format!("not an INTEGER ({e})"),
    })?;
    u8::try_from(n).map_err(|_| CertError::Extension {
        oid: oid.into(),
        what: format!("SPL {n} does not fit the byte a TCB_VERSION holds"),
    })
}

fn ia5(oid: &str, v: &[u8]) -> Result<String, CertError> {
    Ia5StringRef::from_der(v)
        .map(|s| s.as_str().to_string())
        .map_err(|e| CertError::Extension {
            oid: oid.into(),
            what: format!("not an IA5String ({e})"),
        })
}

/// The hwid: raw 64 or 8 bytes in every real certificate, or the same
/// wrapped in a DER OCTET STRING.
fn hwid(oid: &str, v: &[u8]) -> Result<Vec<u8>, CertError> {
    if v.len() == 64 || v.len() == 8 {
        return Ok(v.to_vec());
    }
    if let Ok(o) = OctetStringRef::from_der(v) {
        if o.as_bytes().len() == 64 || o.as_bytes().len() == 8 {
            return Ok(o.as_bytes().to_vec());
        }
    }
    Err(CertError::Extension {
        oid: oid.into(),
        what: format!(
            "hwid of {} bytes; a chip ID is 64 bytes (8 on Turin), raw or in an OCTET STRING",
            v.len()
        ),
    })
}

pub(super) fn amd_extensions(
    exts: &[x509_cert::ext::Extension],
) -> Result<AmdExtensions, CertError> {
    let mut a = AmdExtensions::default();
    for e in exts {
        let oid = e.extn_id.to_string();
        let Some(suffix) = oid.strip_prefix(AMD_PREFIX) else {
            continue;
        };
        let v = e.extn_value.as_bytes();
        match suffix {
            "1" => {
                a.struct_version = Some(u32::from_der(v).map_err(|e| CertError::Extension {
                    oid: oid.clone(),
                    what: format!("structVersion is not an INTEGER ({e})"),
                })?)
            }
            "2" => a.product_name = Some(ia5(&oid, v)?),
            "3.1" => a.bl_spl = Some(spl(&oid, v)?),
            "3.2" => a.tee_spl = Some(spl(&oid, v)?),
            "3.3" => a.snp_spl = Some(spl(&oid, v)?),
            "3.4" | "3.5" | "3.6" | "3.7" => {
                let n = suffix.as_bytes()[2] - b'0';
                a.reserved_spl.push((n, spl(&oid, v)?));
            }
            "3.8" => a.ucode_spl = Some(spl(&oid, v)?),
            "3.9" => a.fmc_spl = Some(spl(&oid, v)?),
            "4" => a.hwid = Some(hwid(&oid, v)?),
            "5" => a.csp_id = Some(ia5(&oid, v)?),
            _ => a.unknown.push(oid),
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwid_raw_or_der_wrapped() {
        let chip: Vec<u8> = (0..64u8).collect();
        assert_eq!(hwid("x", &chip).unwrap(), chip);
        assert_eq!(hwid("x", &chip[..8]).unwrap(), &chip[..8]);
        // trustee's "new" format: an OCTET STRING around the 64 bytes.
        let mut wrapped = vec![0x04, 0x40];
        wrapped.extend(&chip);
        assert_eq!(hwid("x", &wrapped).unwrap(), chip);
        let mut short = vec![0x04, 0x08];
        short.extend(&chip[..8]);
        assert_eq!(hwid("x", &short).unwrap(), &chip[..8]);
        // A raw ID that starts like a DER tag is still raw (snpguest#38).
        let mut tagged = chip.clone();
        tagged[0] = 0x04;
        tagged[1] = 0x40;
        assert_eq!(hwid("x", &tagged).unwrap(), tagged);
        assert!(hwid("x", &chip[..10]).is_err());
        assert!(hwid("x", &[0x04, 0x03, 1, 2, 3]).is_err());
        assert!(hwid("x", &[]).is_err());
    }
}
