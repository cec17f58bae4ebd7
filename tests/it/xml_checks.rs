//! Every SEV domain XML check has a pair of fixtures in testdata-xml/: one
//! that trips it and one that passes it (the SEV-SNP pairs, snp-*, are
//! snp_xml_checks.rs's). Each is checked here with the owner's
//! context that makes the difference, for the exit code and the message.

use std::path::PathBuf;

use sev_validate::sev::checks::{check_domain, Context, VmsaKind};
use sev_validate::source::xml::Domain;
use sev_validate::ExitCode;

fn fixture(name: &str) -> Domain {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata-xml")
        .join(name);
    Domain::parse(&std::fs::read_to_string(&p).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn base() -> Context {
    Context {
        secure: true,
        owner_kernel: false,
        owner_firmware: true,
        policy: 0x1,
        vmsa: VmsaKind::None,
        num_cpus: None,
        host_signature: None,
    }
}

struct Case {
    name: &'static str,
    ctx: fn() -> Context,
    code: ExitCode,
    says: &'static str,
}

const MILAN: u32 = 0xA00F11;
const ROME: u32 = 0x830F10;

fn es() -> Context {
    Context {
        policy: 0x5,
        vmsa: VmsaKind::Files,
        ..base()
    }
}

const CASES: &[Case] = &[
    Case {
        name: "no-launch-security",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: "exactly one <launchSecurity type='sev'>",
    },
    Case {
        name: "no-dhcert",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: "add <dhCert>",
    },
    Case {
        name: "no-session",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: "add <session>",
    },
    Case {
        name: "nvram",
        ctx: base,
        code: ExitCode::InsecureUsage,
        says: "<os><nvram>",
    },
    Case {
        name: "firmware-autoselect",
        ctx: || Context {
            owner_firmware: false,
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: "<os firmware='...'> lets the host choose the firmware",
    },
    Case {
        name: "no-loader",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: "exactly one <os><loader>",
    },
    Case {
        name: "loader-writable",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: "readonly='yes'",
    },
    Case {
        name: "kernel-hashes-without-kernel",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: "kernelHashes='yes' needs direct kernel boot",
    },
    Case {
        name: "kernel-not-measured",
        ctx: || Context {
            owner_kernel: true,
            ..base()
        },
        code: ExitCode::UnsupportedUsage,
        says: "kernel measurement not enabled",
    },
    Case {
        name: "unmeasured-direct-boot",
        ctx: base,
        code: ExitCode::InsecureUsage,
        says: "direct kernel boot present without measurement",
    },
    Case {
        name: "policy-not-hex",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: "<launchSecurity><policy>three</policy> is not a hex number",
    },
    Case {
        name: "vcpu-not-number",
        ctx: || Context {
            num_cpus: Some(4),
            ..es()
        },
        code: ExitCode::IncorrectConfig,
        says: "<vcpu> current 'two' is not a number",
    },
    Case {
        name: "policy-mismatch",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: "<launchSecurity><policy> is 0x3",
    },
    Case {
        name: "sev-es-no-vmsa-source",
        ctx: || Context {
            policy: 0x5,
            ..base()
        },
        code: ExitCode::InsecureUsage,
        says: "no VMSA source was given",
    },
    Case {
        name: "vcpu-count",
        ctx: || Context {
            num_cpus: Some(4),
            ..es()
        },
        code: ExitCode::IncorrectConfig,
        says: "<vcpu current='2'>4</vcpu> starts 2 vCPUs",
    },
    Case {
        name: "cpu-model-signature",
        ctx: || Context {
            vmsa: VmsaKind::Signature(ROME),
            ..es()
        },
        code: ExitCode::IncorrectConfig,
        says: "<cpu><model>EPYC-Milan</model> has signature 0xa00f11",
    },
    Case {
        name: "host-signature",
        ctx: || Context {
            vmsa: VmsaKind::Signature(MILAN),
            host_signature: Some(ROME),
            ..es()
        },
        code: ExitCode::IncorrectConfig,
        says: "host CPU signature 0x830f10",
    },
];

#[test]
fn each_check_trips_on_its_fixture_and_passes_on_the_fixed_one() {
    for c in CASES {
        let mut ctx = (c.ctx)();
        let err = check_domain(&fixture(&format!("{}.trips.xml", c.name)), &ctx)
            .expect_err(&format!("{}.trips.xml should trip the check", c.name));
        assert_eq!(err.exit_code(), c.code, "{}: {err}", c.name);
        assert!(
            err.to_string().contains(c.says),
            "{}: message was: {err}",
            c.name
        );
        // The passing fixture, with the context that makes it pass.
        match c.name {
            "kernel-hashes-without-kernel" | "kernel-not-measured" => ctx.owner_kernel = true,
            "firmware-autoselect" => ctx.owner_firmware = true,
            "sev-es-no-vmsa-source" => ctx.vmsa = VmsaKind::Files,
            _ => {}
        }
        check_domain(&fixture(&format!("{}.passes.xml", c.name)), &ctx)
            .unwrap_or_else(|e| panic!("{}.passes.xml should pass: {e}", c.name));
    }
}

#[test]
fn every_fixture_pair_has_a_case() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata-xml");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("snp-") {
            continue;
        }
        if let Some(check) = name
            .strip_suffix(".trips.xml")
            .or_else(|| name.strip_suffix(".passes.xml"))
        {
            assert!(
                CASES.iter().any(|c| c.name == check),
                "{name} has no test case"
            );
        }
    }
}

#[test]
fn insecure_mode_relaxes_only_the_security_checks() {
    for name in ["nvram", "unmeasured-direct-boot", "sev-es-no-vmsa-source"] {
        let ctx = Context {
            secure: false,
            policy: if name.starts_with("sev-es") { 5 } else { 1 },
            ..base()
        };
        check_domain(&fixture(&format!("{name}.trips.xml")), &ctx)
            .unwrap_or_else(|e| panic!("{name} with --insecure: {e}"));
    }
    // A configuration error stays an error with --insecure.
    let ctx = Context {
        secure: false,
        ..base()
    };
    assert!(check_domain(&fixture("no-dhcert.trips.xml"), &ctx).is_err());
}

#[test]
fn malformed_xml_is_a_clear_error() {
    for bad in [
        "",
        "<domain>",
        "<domain><vcpu>four</vcpu></domain>",
        "not xml at all",
    ] {
        match Domain::parse(bad) {
            Err(e) => assert_eq!(e.exit_code(), ExitCode::UnsupportedUsage, "{bad}: {e}"),
            Ok(d) => {
                // Parsed (quick-xml is lenient); the checks must still refuse it.
                assert!(check_domain(&d, &base()).is_err(), "{bad}");
            }
        }
    }
    let huge =
        "<domain>".to_string() + &" ".repeat(sev_validate::source::xml::MAX_XML_LEN) + "</domain>";
    assert!(Domain::parse(&huge).is_err());
}

/// `--insecure` lets a direct kernel boot without kernelHashes='yes' pass;
/// with no --kernel from the owner, the run warns, naming the fix. Never in
/// secure mode (it is refused there), nor when kernelHashes='yes'.
#[test]
fn insecure_unmeasured_kernel_is_warned_about() {
    use sev_validate::sev::checks::unmeasured_kernel_warning;
    let d = fixture("unmeasured-direct-boot.trips.xml");
    let w = unmeasured_kernel_warning(&d, true, false).expect("a warning");
    assert!(
        w.contains("kernelHashes='yes'") && w.contains("--kernel"),
        "{w}"
    );
    assert_eq!(unmeasured_kernel_warning(&d, false, false), None);
    assert_eq!(unmeasured_kernel_warning(&d, true, true), None);
    let measured = fixture("unmeasured-direct-boot.passes.xml");
    assert!(
        measured.kernel_hashes(),
        "the passing fixture measures the kernel"
    );
    assert_eq!(unmeasured_kernel_warning(&measured, true, false), None);
    let no_kernel = fixture("no-session.passes.xml");
    assert!(no_kernel.kernel().is_none());
    assert_eq!(unmeasured_kernel_warning(&no_kernel, true, false), None);
}
