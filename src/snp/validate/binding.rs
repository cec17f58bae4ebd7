//! The report's binding to its VEK (`signature`, `binding.*`): the VEK's
//! signature over the report, its TCB against REPORTED_TCB and CURRENT_TCB,
//! and a VCEK's hwid against CHIP_ID.

use super::tcb::tcb_text;
use super::{Checks, Ctx, Status};
use crate::core::hex;
use crate::core::snp_cert;
use crate::core::snp_report::Product;

/// The report's ECDSA signature by the VEK.
pub(super) fn signature_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, vek, .. } = *cx;
    c.result(
        "signature",
        snp_cert::verify_report_signature(report, vek).map(|()| {
            format!(
                "ECDSA P-384 signature verifies with the {}",
                vek.subject.cn()
            )
        }),
    );
}

/// The report's TCB against the VEK's.
pub(super) fn tcb_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        product,
        layout,
        vek,
        reported,
        current,
        ..
    } = *cx;
    let vek_tcb = vek.amd.tcb(layout);
    match vek_tcb {
        None => {
            let m = format!(
                "the VEK lacks an SPL extension the {product} TCB layout needs{}",
                if product == Product::Turin {
                    " (fmcSPL)"
                } else {
                    ""
                }
            );
            c.push("binding.reported_tcb", Status::Fail, m.clone());
            c.push("binding.vek_tcb_not_above_current", Status::Fail, m);
        }
        Some(vt) => {
            c.result(
                "binding.reported_tcb",
                if vt.raw == reported.raw {
                    Ok(format!("REPORTED_TCB {} equals the VEK's", tcb_text(&reported)))
                } else {
                    Err(format!(
                        "REPORTED_TCB is {} but the VEK is for {}: a VEK for another TCB (a stale VCEK); fetch the one for REPORTED_TCB",
                        tcb_text(&reported),
                        tcb_text(&vt)
                    ))
                },
            );
            c.result(
                "binding.vek_tcb_not_above_current",
                if vt.le_componentwise(&current) {
                    Ok(format!(
                        "VEK TCB is not above CURRENT_TCB {}",
                        tcb_text(&current)
                    ))
                } else {
                    Err(format!(
                        "the VEK's TCB {} is above CURRENT_TCB {}",
                        tcb_text(&vt),
                        tcb_text(&current)
                    ))
                },
            );
        }
    }
}

/// CHIP_ID against the VCEK's hwid.
pub(super) fn chip_id_check(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        report,
        vek,
        is_vlek,
        ki,
        ..
    } = *cx;
    if is_vlek {
        c.skip(
            "binding.chip_id",
            "a VLEK signed the report; a VLEK names no chip",
        );
    } else if report.chip_id_masked() || ki.mask_chip_key {
        c.skip("binding.chip_id", "the host masked CHIP_ID");
    } else {
        c.result(
            "binding.chip_id",
            match &vek.amd.hwid {
                None => Err("the VCEK has no hwid extension".into()),
                Some(h) => {
                    let n = h.len().min(64);
                    let rest_zero = report.chip_id[n..].iter().all(|&x| x == 0);
                    if report.chip_id[..n] == h[..] && rest_zero {
                        Ok(format!("CHIP_ID equals the VCEK's {n}-byte hwid"))
                    } else if rest_zero {
                        Err(format!(
                            "CHIP_ID {} is not the VCEK's hwid {}: the VCEK belongs to another chip",
                            hex(&report.chip_id[..n]),
                            hex(h)
                        ))
                    } else {
                        // An 8-byte (Turin) hwid: bytes 8..64 must be zero, and
                        // the first 8 alone would not show what differs.
                        Err(format!(
                            "CHIP_ID {} is not the VCEK's {n}-byte hwid {} followed by zeros: bytes {n}..63 are {}",
                            hex(&report.chip_id),
                            hex(h),
                            hex(&report.chip_id[n..])
                        ))
                    }
                }
            },
        );
    }
}
