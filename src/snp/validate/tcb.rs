//! The firmware's TCB: `firmware.provisional` (CURRENT_TCB against
//! COMMITTED_TCB) and the owner's minimum REPORTED_TCB and LAUNCH_TCB
//! (`expect.minimum_tcb`, `expect.minimum_launch_tcb`), compared component by
//! component in the product's TCB_VERSION layout.

use super::{Checks, Ctx};
use crate::core::snp_report::{Product, TcbVersion};

/// A minimum TCB: components, or a raw TCB_VERSION read in the product's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinTcb {
    /// The 8 bytes of a TCB_VERSION as a little-endian integer.
    Raw(u64),
    /// The security patch levels, encoded in the product's layout.
    Components {
        /// FMC SPL (Turin only; the other layouts have no place for it).
        fmc: u8,
        /// BOOT_LOADER SPL.
        bl: u8,
        /// TEE SPL.
        tee: u8,
        /// SNP firmware SPL.
        snp: u8,
        /// Microcode SPL.
        ucode: u8,
    },
}

impl MinTcb {
    fn in_layout(self, p: Product) -> TcbVersion {
        let l = p.tcb_layout();
        match self {
            MinTcb::Raw(r) => TcbVersion::decode(r, l),
            MinTcb::Components {
                fmc,
                bl,
                tee,
                snp,
                ucode,
            } => TcbVersion::decode(TcbVersion::encode(l, fmc, bl, tee, snp, ucode), l),
        }
    }
}

pub(super) fn tcb_text(t: &TcbVersion) -> String {
    t.to_string()
}

/// Provisional (uncommitted) firmware, refused unless allowed.
pub(super) fn provisional_firmware_check(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        report,
        expect,
        layout,
        current,
        ..
    } = *cx;
    let committed = TcbVersion::decode(report.committed_tcb, layout);
    let provisional =
        committed.raw != current.raw || report.committed_version != report.current_version;
    c.result(
        "firmware.provisional",
        if !provisional {
            Ok(format!(
                "firmware {} is committed (COMMITTED_TCB = CURRENT_TCB)",
                report.current_version
            ))
        } else if expect.allow_provisional_firmware {
            if committed.le_componentwise(&current)
                && report.committed_version <= report.current_version
            {
                Ok(format!(
                    "provisional firmware allowed: COMMITTED_TCB {} is not above CURRENT_TCB {}",
                    tcb_text(&committed),
                    tcb_text(&current)
                ))
            } else {
                Err(format!(
                    "COMMITTED_TCB {} (firmware {}) is above CURRENT_TCB {} (firmware {})",
                    tcb_text(&committed),
                    report.committed_version,
                    tcb_text(&current),
                    report.current_version
                ))
            }
        } else {
            Err(format!(
                "provisional firmware: CURRENT_TCB {} (firmware {}) is not the committed {} (firmware {}); the host updated firmware without committing it, which it can roll back; refused unless --allow-provisional-firmware",
                tcb_text(&current),
                report.current_version,
                tcb_text(&committed),
                report.committed_version
            ))
        },
    );
}

/// REPORTED_TCB and LAUNCH_TCB against the owner's minimums.
pub(super) fn minimum_tcb_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        report,
        product,
        expect,
        layout,
        reported,
        ..
    } = *cx;
    for (name, field, tcb, min) in [
        (
            "expect.minimum_tcb",
            "REPORTED_TCB",
            reported,
            expect.min_tcb,
        ),
        (
            "expect.minimum_launch_tcb",
            "LAUNCH_TCB",
            TcbVersion::decode(report.launch_tcb, layout),
            expect.min_launch_tcb,
        ),
    ] {
        match min {
            None => c.skip(name, "no minimum TCB given"),
            Some(m) => {
                let m = m.in_layout(product);
                c.result(
                    name,
                    if m.le_componentwise(&tcb) {
                        Ok(format!(
                            "{field} {} is at least {}",
                            tcb_text(&tcb),
                            tcb_text(&m)
                        ))
                    } else {
                        Err(format!(
                            "{field} {} is below {}",
                            tcb_text(&tcb),
                            tcb_text(&m)
                        ))
                    },
                );
            }
        }
    }
}
