//! The owner's expectations (`expect.*`): REPORT_DATA (the nonce), the exact
//! values and minimums given for the report's fields, PLATFORM_INFO, VMPL,
//! the trusted ID and author keys and the mitigation vectors.

use super::{Checks, Ctx, Status};
use crate::core::hex;
use crate::core::snp_report::PlatformInfo;

/// A field the owner gives an exact value for; skipped without one.
fn exact<const N: usize>(
    c: &mut Checks,
    name: &'static str,
    field: &str,
    got: &[u8; N],
    want: Option<&[u8; N]>,
    origin: &str,
) {
    match want {
        None => c.skip(name, "no expected value given"),
        Some(w) if w == got => c.push(name, Status::Pass, format!("{field} is {}", hex(got))),
        Some(w) => c.push(
            name,
            Status::Fail,
            format!("{field} is {}, expected {}{origin}", hex(got), hex(w)),
        ),
    }
}

/// REPORT_DATA, the owner's nonce: required unless waived; with a key
/// binding, `expect.key_binding` checks it instead.
pub(super) fn report_data_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    if let Some(kb) = cx.key_binding {
        c.skip(
            "expect.report_data",
            "replaced by expect.key_binding (--nonce)",
        );
        return key_binding_check(c, kb, &report.report_data);
    }
    match (&expect.report_data, expect.waive_report_data) {
        (None, true) => c.skip(
            "expect.report_data",
            "waived: a replayed report would pass (--no-report-data-check)",
        ),
        (None, false) => c.push(
            "expect.report_data",
            Status::Fail,
            "no REPORT_DATA expected: give --report-data with the nonce you gave the guest (so a replayed report fails), or waive the check with --no-report-data-check",
        ),
        (Some(w), _) => exact(
            c,
            "expect.report_data",
            "REPORT_DATA",
            &report.report_data,
            Some(w),
            " (the guest's request: not the nonce given, or a replayed report)",
        ),
    }
}

/// MEASUREMENT, the launch digest: required unless waived, like the nonce,
/// since without it nothing about the guest's contents is attested.
fn measurement_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    match (&expect.measurement, expect.waive_measurement) {
        (None, true) => c.skip(
            "expect.measurement",
            "waived: any firmware, kernel or initrd would pass (--no-measurement-check)",
        ),
        (None, false) => c.push(
            "expect.measurement",
            Status::Fail,
            "no MEASUREMENT expected: give --measurement with the launch digest (snp-digest prints it), or snp-digest's options after '--' to compute it, or waive the check with --no-measurement-check",
        ),
        (Some(w), _) => exact(
            c,
            "expect.measurement",
            "MEASUREMENT",
            &report.measurement,
            Some(w),
            " (the launch digest: one of its inputs differs, the firmware, the vCPUs, the VMSA features or the kernel hashes)",
        ),
    }
}

/// REPORT_DATA = SHA-512(label ‖ nonce ‖ public key) for the owner's nonce
/// and the evidence's public key.
fn key_binding_check(c: &mut Checks, kb: &super::KeyBinding, got: &[u8; 64]) {
    let want = crate::core::snp_secret::report_data(&kb.nonce, &kb.public_key);
    if *got == want {
        return c.push(
            "expect.key_binding",
            Status::Pass,
            format!(
                "REPORT_DATA {} binds the nonce given and the evidence's public key",
                hex(got)
            ),
        );
    }
    let why = if kb.evidence_nonce != kb.nonce {
        format!(
            "; the evidence names the nonce {}, not the one given",
            hex(&kb.evidence_nonce)
        )
    } else {
        String::new()
    };
    c.push(
        "expect.key_binding",
        Status::Fail,
        format!(
            "REPORT_DATA is {}, not {}, the binding of the nonce given and the evidence's public key{why}",
            hex(got),
            hex(&want)
        ),
    );
}

/// The fields the launch fixed: MEASUREMENT, HOST_DATA and the ID block's
/// FAMILY_ID and IMAGE_ID.
pub(super) fn launch_value_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    measurement_check(c, cx);
    exact(
        c,
        "expect.host_data",
        "HOST_DATA",
        &report.host_data,
        expect.host_data.as_ref(),
        " (set by the host from <hostData> / host-data; all zero when absent)",
    );
    exact(
        c,
        "expect.family_id",
        "FAMILY_ID",
        &report.family_id,
        expect.family_id.as_ref(),
        " (from the ID block, <idBlock>; zero without one)",
    );
    exact(
        c,
        "expect.image_id",
        "IMAGE_ID",
        &report.image_id,
        expect.image_id.as_ref(),
        " (from the ID block, <idBlock>; zero without one)",
    );
}

/// Which guest, which migration agent and which machine: REPORT_ID,
/// REPORT_ID_MA and CHIP_ID.
pub(super) fn identity_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    exact(
        c,
        "expect.report_id",
        "REPORT_ID",
        &report.report_id,
        expect.report_id.as_ref(),
        "",
    );
    exact(
        c,
        "expect.report_id_ma",
        "REPORT_ID_MA",
        &report.report_id_ma,
        expect.report_id_ma.as_ref(),
        "",
    );
    exact(
        c,
        "expect.chip_id",
        "CHIP_ID",
        &report.chip_id,
        expect.chip_id.as_ref(),
        " (another machine, or the host masked it)",
    );
}

/// GUEST_SVN and the firmware's build against the owner's minimums.
pub(super) fn minimum_value_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    ge(
        c,
        "expect.guest_svn",
        "GUEST_SVN",
        report.guest_svn,
        expect.min_guest_svn,
        " (from the ID block)",
    );
    ge(
        c,
        "expect.build",
        "CURRENT_BUILD",
        report.current_version.build.into(),
        expect.min_build.map(u32::from),
        "",
    );
}

/// The firmware version against the owner's minimum.
pub(super) fn version_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    match expect.min_version {
        None => c.skip("expect.version", "no minimum firmware version given"),
        Some((maj, min)) => c.result(
            "expect.version",
            if (report.current_version.major, report.current_version.minor) >= (maj, min) {
                Ok(format!(
                    "firmware {} is at least {maj}.{min}",
                    report.current_version
                ))
            } else {
                Err(format!(
                    "firmware {} is below {maj}.{min}",
                    report.current_version
                ))
            },
        ),
    }
}

/// PLATFORM_INFO within the most permissive one accepted.
pub(super) fn platform_info_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    let pi = report.platform_info;
    let unknown_pi = pi & !PlatformInfo::all().bits();
    match expect.max_platform_info {
        None => c.skip("expect.platform_info", "no --max-platform-info given"),
        Some(maxpi) => {
            let (got, allow) = (
                PlatformInfo::from_bits_truncate(pi),
                PlatformInfo::from_bits_truncate(maxpi),
            );
            let mut bad = Vec::new();
            if unknown_pi != 0 {
                bad.push(format!("unknown bits {unknown_pi:#x} are set"));
            }
            for (f, n) in [
                (PlatformInfo::SMT_EN, "SMT_EN"),
                (PlatformInfo::TSME_EN, "TSME_EN"),
                (PlatformInfo::TIO_EN, "TIO_EN"),
            ] {
                if got.contains(f) && !allow.contains(f) {
                    bad.push(format!("{n} is on but not allowed"));
                }
            }
            for (f, n) in [
                (PlatformInfo::ECC_EN, "ECC_EN"),
                (PlatformInfo::RAPL_DIS, "RAPL_DIS"),
                (
                    PlatformInfo::CIPHERTEXT_HIDING_DRAM_EN,
                    "CIPHERTEXT_HIDING_DRAM_EN",
                ),
                (PlatformInfo::ALIAS_CHECK_COMPLETE, "ALIAS_CHECK_COMPLETE"),
                (PlatformInfo::IOMMU_WRITE_SAFE, "IOMMU_WRITE_SAFE"),
            ] {
                if allow.contains(f) && !got.contains(f) {
                    bad.push(format!("{n} is required but off"));
                }
            }
            c.result(
                "expect.platform_info",
                if bad.is_empty() {
                    Ok(format!(
                        "PLATFORM_INFO {pi:#x} ({:?}) is within {maxpi:#x}",
                        got
                    ))
                } else {
                    Err(format!("PLATFORM_INFO {pi:#x}: {}", bad.join("; ")))
                },
            );
        }
    }
}

/// The VMPL the report was asked for.
pub(super) fn vmpl_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    match expect.vmpl {
        None => c.skip("expect.vmpl", "no --vmpl given"),
        Some(v) => c.result(
            "expect.vmpl",
            if report.vmpl == v {
                Ok(format!("VMPL {v}"))
            } else {
                Err(format!(
                    "VMPL is {}, expected {v} (the VMPL the guest asked the report for; snpguest asks for 1 by default)",
                    report.vmpl
                ))
            },
        ),
    }
}

/// The ID key or author key that signed the ID block.
pub(super) fn id_key_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx {
        report, expect, ki, ..
    } = *cx;
    let author_trusted = ki.author_key_en
        && expect
            .trusted_author_keys
            .iter()
            .any(|d| d == &report.author_key_digest);
    if expect.trusted_id_keys.is_empty() && expect.trusted_author_keys.is_empty() {
        c.skip("expect.id_key", "no trusted ID or author key given");
    } else {
        c.result(
            "expect.id_key",
            if expect.trusted_id_keys.iter().any(|d| d == &report.id_key_digest) {
                Ok(format!("ID_KEY_DIGEST {} is a trusted ID key", hex(&report.id_key_digest)))
            } else if author_trusted {
                Ok(format!(
                    "AUTHOR_KEY_DIGEST {} is a trusted author key",
                    hex(&report.author_key_digest)
                ))
            } else {
                Err(format!(
                    "ID_KEY_DIGEST {} is not a trusted ID key{} (set by the host from <idAuth> / id-auth; the digest is SHA-384 of the 0x404-byte SNP public key)",
                    hex(&report.id_key_digest),
                    if ki.author_key_en { " and the author key is not trusted" } else { "" }
                ))
            },
        );
    }
    if !expect.require_author_key {
        c.skip("expect.author_key", "no --require-author-key");
    } else {
        c.result(
            "expect.author_key",
            if author_trusted {
                Ok(format!("AUTHOR_KEY_DIGEST {} is trusted", hex(&report.author_key_digest)))
            } else if !ki.author_key_en {
                Err("AUTHOR_KEY_EN is 0: the launch had no author key (<launchSecurity authorKey='yes'>)".into())
            } else {
                Err(format!(
                    "AUTHOR_KEY_DIGEST {} is not a trusted author key",
                    hex(&report.author_key_digest)
                ))
            },
        );
    }
}

/// The mitigation vectors against minimums.
pub(super) fn mitigation_vector_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { report, expect, .. } = *cx;
    for (name, field, got, min) in [
        (
            "expect.launch_mit_vector",
            "LAUNCH_MIT_VECTOR",
            report.launch_mit_vector,
            expect.min_launch_mit_vector,
        ),
        (
            "expect.current_mit_vector",
            "CURRENT_MIT_VECTOR",
            report.current_mit_vector,
            expect.min_current_mit_vector,
        ),
    ] {
        match min {
            None => c.skip(name, "no minimum mitigation vector given"),
            Some(m) => {
                let g = got.unwrap_or(0);
                c.result(
                    name,
                    if g & m == m {
                        Ok(format!("{field} {g:#x} has every bit of {m:#x}"))
                    } else {
                        Err(format!(
                            "{field} {g:#x} lacks bits {:#x} of {m:#x}{}",
                            m & !g,
                            if got.is_none() {
                                format!(" (a version {} report carries none)", report.version)
                            } else {
                                String::new()
                            }
                        ))
                    },
                );
            }
        }
    }
}

/// A field the owner gives a minimum for; skipped without one.
fn ge(c: &mut Checks, name: &'static str, field: &str, got: u32, min: Option<u32>, origin: &str) {
    match min {
        None => c.skip(name, "no minimum given"),
        Some(m) => c.result(
            name,
            if got >= m {
                Ok(format!("{field} {got} is at least {m}"))
            } else {
                Err(format!("{field} {got} is below {m}{origin}"))
            },
        ),
    }
}
