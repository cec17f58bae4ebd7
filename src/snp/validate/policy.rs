//! The guest policy (`policy.*`): DEBUG and MIGRATE_MA refused unless
//! allowed, and POLICY within the most permissive one the owner accepts.

use super::{Checks, Ctx, Status};
use crate::core::snp_report::{GuestPolicy, PolicyFlags};

/// DEBUG and MIGRATE_MA, refused unless allowed.
pub(super) fn default_policy_checks(c: &mut Checks, cx: &Ctx) {
    let Ctx { expect, pol, .. } = *cx;
    let flags = pol.flags();
    let max_flags = expect.max_policy.map(PolicyFlags::from_bits_truncate);
    for (name, flag, allowed, opt) in [
        (
            "policy.debug",
            PolicyFlags::DEBUG,
            expect.allow_debug,
            "--allow-debug",
        ),
        (
            "policy.migrate_ma",
            PolicyFlags::MIGRATE_MA,
            expect.allow_migrate_ma,
            "--allow-migrate-ma",
        ),
    ] {
        let label = if flag == PolicyFlags::DEBUG {
            "DEBUG"
        } else {
            "MIGRATE_MA"
        };
        if !flags.contains(flag) {
            c.push(name, Status::Pass, format!("{label} is off"));
        } else if allowed || max_flags.is_some_and(|m| m.contains(flag)) {
            c.push(name, Status::Pass, format!("{label} is on, and allowed"));
        } else {
            c.push(
                name,
                Status::Fail,
                format!(
                    "POLICY {:#x} has {label} on{}: refused unless {opt}",
                    pol.0,
                    if flag == PolicyFlags::DEBUG {
                        " (the host can read and change the guest's memory)"
                    } else {
                        " (a migration agent can move the guest)"
                    }
                ),
            );
        }
    }
}

/// POLICY equal to the policy of the launch, when the launch carries one
/// (an IGVM file): QEMU starts the guest with the file's policy, so any
/// other POLICY is another launch.
pub(super) fn launch_policy_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { expect, pol, .. } = *cx;
    match expect.launch_policy {
        None => c.skip("policy.launch", "the launch carries no guest policy of its own"),
        Some(p) if p == pol.0 => c.push(
            "policy.launch",
            Status::Pass,
            format!("POLICY {p:#x} is the IGVM file's guest policy"),
        ),
        Some(p) => c.push(
            "policy.launch",
            Status::Fail,
            format!(
                "POLICY {:#x} is not the IGVM file's guest policy {p:#x}: QEMU launches an IGVM guest with the file's policy, so the host launched another file or overrode it",
                pol.0
            ),
        ),
    }
}

/// POLICY within the most permissive one accepted.
pub(super) fn max_policy_check(c: &mut Checks, cx: &Ctx) {
    let Ctx { expect, pol, .. } = *cx;
    let flags = pol.flags();
    match expect.max_policy {
        None => c.skip("policy.maximum", "no --max-policy given"),
        Some(maxp) => {
            let mp = GuestPolicy(maxp);
            let mut bad = Vec::new();
            if (pol.abi_major(), pol.abi_minor()) < (mp.abi_major(), mp.abi_minor()) {
                bad.push(format!(
                    "ABI {}.{} is below {}.{}",
                    pol.abi_major(),
                    pol.abi_minor(),
                    mp.abi_major(),
                    mp.abi_minor()
                ));
            }
            let mf = mp.flags();
            for (f, n) in [
                (PolicyFlags::MIGRATE_MA, "MIGRATE_MA"),
                (PolicyFlags::DEBUG, "DEBUG"),
                (PolicyFlags::SMT, "SMT"),
                (PolicyFlags::CXL_ALLOW, "CXL_ALLOW"),
            ] {
                if flags.contains(f) && !mf.contains(f) {
                    bad.push(format!(
                        "{n} is on but the maximum policy does not allow it"
                    ));
                }
            }
            for (f, n) in [
                (PolicyFlags::SINGLE_SOCKET, "SINGLE_SOCKET"),
                (PolicyFlags::MEM_AES_256_XTS, "MEM_AES_256_XTS"),
                (PolicyFlags::RAPL_DIS, "RAPL_DIS"),
                (PolicyFlags::CIPHERTEXT_HIDING, "CIPHERTEXT_HIDING"),
                (PolicyFlags::PAGE_SWAP_DISABLE, "PAGE_SWAP_DISABLE"),
            ] {
                if mf.contains(f) && !flags.contains(f) {
                    bad.push(format!("{n} is required but off"));
                }
            }
            c.result(
                "policy.maximum",
                if bad.is_empty() {
                    Ok(format!("POLICY {:#x} is within {maxp:#x}", pol.0))
                } else {
                    Err(format!(
                        "POLICY {:#x} (from <policy>): {}",
                        pol.0,
                        bad.join("; ")
                    ))
                },
            );
        }
    }
}
