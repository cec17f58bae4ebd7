//! The report's format (`format.*`): the fields the ABI fixes before any key
//! is involved (VERSION, SIGNATURE_ALGO, the signer info, POLICY's reserved
//! bits and the reserved bytes).

use super::{Checks, Ctx, Status};
use crate::core::snp_report::{PolicyFlags, SigningKey, SIG_ALGO_ECDSA_P384_SHA384};

/// VERSION, SIGNATURE_ALGO and the signer info.
pub(super) fn format_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, ki, .. } = *cx;
    c.push(
        "format.version",
        Status::Pass,
        if report.version == 4 {
            "version 4, read as version 3 (same layout)".to_string()
        } else {
            format!("version {}", report.version)
        },
    );
    c.result(
        "format.signature_algo",
        if report.signature_algo == SIG_ALGO_ECDSA_P384_SHA384 {
            Ok("1 (ECDSA P-384 with SHA-384)".into())
        } else {
            Err(format!(
                "SIGNATURE_ALGO is {}; only 1 (ECDSA P-384 with SHA-384) is defined",
                report.signature_algo
            ))
        },
    );
    c.result(
        "format.signer_info",
        if ki.raw >> 5 != 0 {
            Err(format!(
                "signer info {:#x} has reserved bits 5..31 set",
                ki.raw
            ))
        } else {
            match ki.signing_key {
                SigningKey::Vcek | SigningKey::Vlek => Ok(format!(
                    "signed by the {}{}{}",
                    ki.signing_key.name(),
                    if ki.mask_chip_key {
                        ", CHIP_ID masked"
                    } else {
                        ""
                    },
                    if ki.author_key_en {
                        ", author key enabled"
                    } else {
                        ""
                    }
                )),
                SigningKey::None => Err("SIGNING_KEY is 7: the report is not signed".into()),
                SigningKey::Reserved(v) => Err(format!("SIGNING_KEY {v} is reserved")),
            }
        },
    );
}

/// The bits and bytes the ABI reserves: POLICY bit 17 set, the rest zero.
pub(super) fn reserved_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, pol, .. } = *cx;
    c.result(
        "format.policy",
        if !pol.flags().contains(PolicyFlags::RESERVED_17) {
            Err(format!(
                "POLICY {:#x} has bit 17 clear; it must be 1",
                pol.0
            ))
        } else if pol.unknown_bits() != 0 {
            Err(format!(
                "POLICY {:#x} sets reserved bits {:#x} (26..63 must be zero)",
                pol.0,
                pol.unknown_bits()
            ))
        } else {
            Ok(format!("POLICY {:#x}", pol.0))
        },
    );
    let nz = report.nonzero_reserved();
    c.result(
        "format.reserved_zero",
        if nz.is_empty() {
            Ok("reserved bytes are zero".into())
        } else {
            Err(format!(
                "reserved bytes are not zero at {}",
                nz.iter()
                    .map(|(o, l)| format!("{o:#05x}..{:#05x}", o + l))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        },
    );
}
