//! SEV-SNP domains: every check of `domain::decode` + `domain::check`
//! has a pair of fixtures in testdata-xml/ (snp-NAME.trips.xml and
//! snp-NAME.passes.xml), run here with the owner's context that makes the
//! difference, for the exit code and the message. Their idBlock/idAuth were
//! made by sev-snp-measure's snp-create-id-block (the fixtures say so).
//!
//! The pre-launch verdict (`domain::prelaunch`) is tested against ID
//! blocks and ID auth that PyPI sev-snp-measure's `snp-create-id-block` makes
//! at test time with keys from `openssl ecparam -genkey -name secp384r1`, for
//! launch digests that `sev-snp-measure --mode snp` computes: never from our
//! own output. Prerequisite: sev-snp-measure in /opt/sev-snp-measure (or
//! `$SEV_SNP_MEASURE`) and Debian's /usr/share/ovmf/OVMF.fd; missing: a
//! SKIPPED line, or a failure when `CI` is set.

use crate::common::skip;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sev_validate::core::snp_report::{AttestationReport, SigningKey};
use sev_validate::core::vmsa::{VmmType, VmsaForm};
use sev_validate::snp::digest::{self, DigestInput};
use sev_validate::snp::domain::{self, check, decode, prelaunch, IdKeys, SnpContext, SnpDomain};
use sev_validate::snp::pins::Pins;
use sev_validate::snp::validate::{Check, Status};
use sev_validate::source::xml::Domain;
use sev_validate::ExitCode;
use skip::skip_or_fail;

pub(crate) const MILAN: u32 = 0xA00F11;

pub(crate) fn fixture(name: &str) -> Domain {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata-xml")
        .join(name);
    Domain::parse(&std::fs::read_to_string(&p).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub(crate) fn run_checks(d: &Domain, ctx: &SnpContext) -> sev_validate::Result<SnpDomain> {
    let s = decode(d)?;
    check(d, &s, ctx)?;
    Ok(s)
}

pub(crate) fn base() -> SnpContext {
    SnpContext {
        secure: true,
        owner_firmware: true,
        ..SnpContext::default()
    }
}

struct Case {
    name: &'static str,
    /// The context of both fixtures: the one that makes the difference.
    ctx: fn() -> SnpContext,
    code: ExitCode,
    says: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "launch-security-twice",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &[
            "2 <launchSecurity> elements",
            "exactly one <launchSecurity type='sev-snp'>",
        ],
    },
    Case {
        name: "nvram",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["<os><nvram>", "remove <nvram>", "<loader type='rom'>"],
    },
    Case {
        name: "loader-pflash",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["<loader type='pflash'>", "-bios", "<loader type='rom'>"],
    },
    Case {
        name: "firmware-autoselect",
        ctx: || SnpContext {
            owner_firmware: false,
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &["<os firmware='...'>", "give --firmware"],
    },
    Case {
        name: "no-loader",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["0 <os><loader> elements", "exactly one <loader type='rom'>"],
    },
    Case {
        name: "kernel-hashes-without-kernel",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &[
            "kernelHashes='yes'",
            "no <os><kernel>",
            "remove kernelHashes",
        ],
    },
    Case {
        name: "kernel-not-measured",
        ctx: || SnpContext {
            owner_kernel: true,
            owner_cmdline: Some("console=ttyS0".into()),
            ..base()
        },
        code: ExitCode::UnsupportedUsage,
        says: &["kernel measurement not enabled", "set kernelHashes='yes'"],
    },
    Case {
        name: "cmdline-mismatch",
        ctx: || SnpContext {
            owner_kernel: true,
            owner_cmdline: Some("console=ttyS0".into()),
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &[
            "<cmdline>console=ttyS0 init=/bin/sh</cmdline>",
            "--cmdline is 'console=ttyS0'",
        ],
    },
    Case {
        name: "unmeasured-direct-boot",
        ctx: base,
        code: ExitCode::InsecureUsage,
        says: &[
            "direct kernel boot present without measurement",
            "--insecure",
        ],
    },
    Case {
        name: "policy-bit17",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["<policy> is 0x10000", "bit 17", "use e.g. 0x30000"],
    },
    Case {
        name: "policy-debug",
        ctx: base,
        code: ExitCode::InsecureUsage,
        says: &["<policy> is 0xb0000", "DEBUG (bit 19)", "--allow-debug"],
    },
    Case {
        name: "policy-migrate-ma",
        ctx: base,
        code: ExitCode::InsecureUsage,
        says: &[
            "<policy> is 0x70000",
            "MIGRATE_MA (bit 18)",
            "--allow-migrate-ma",
        ],
    },
    Case {
        name: "policy-mismatch",
        ctx: || SnpContext {
            owner_policy: Some(0x30000),
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &["<policy> is 0x130000", "--policy is 0x30000"],
    },
    Case {
        name: "policy-not-hex",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["<policy>default</policy> is not a 64-bit hex number"],
    },
    Case {
        name: "vcpu-count",
        ctx: || SnpContext {
            num_cpus: Some(4),
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &[
            "<vcpu current='2'>4</vcpu> starts 2 vCPUs",
            "--num-cpus is 4",
        ],
    },
    Case {
        name: "cpu-model-signature",
        ctx: || SnpContext {
            vcpu_signature: Some(MILAN),
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &[
            "<cpu><model>EPYC-Rome</model> has signature 0x830f10",
            "built for 0xa00f11",
        ],
    },
    Case {
        name: "host-signature",
        ctx: || SnpContext {
            vcpu_signature: Some(MILAN),
            host_signature: Some(0xA10F11),
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &[
            "<cpu mode='host-passthrough'> gives the guest the host CPU signature 0xa10f11",
            "built for 0xa00f11",
        ],
    },
    Case {
        name: "reported-policy",
        ctx: || SnpContext {
            reported_policy: Some(0x30000),
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &[
            "libvirt reports the guest runs with policy 0x30000",
            "<policy> is 0x30100",
        ],
    },
    Case {
        name: "id-block-length",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["<idBlock> decodes to 95 bytes", "exactly 96 bytes"],
    },
    Case {
        name: "id-block-not-base64",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["<idBlock> is not base64", "96 bytes in base64"],
    },
    Case {
        name: "id-block-version",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &[
            "<idBlock>",
            "VERSION (bytes 0x50..0x54) is 2",
            "only ID block version",
        ],
    },
    Case {
        name: "id-auth-length",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["<idAuth> decodes to 4097 bytes", "exactly 4096 bytes"],
    },
    Case {
        name: "host-data-length",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["<hostData> decodes to 31 bytes", "exactly 32 bytes"],
    },
    Case {
        name: "guest-visible-workarounds-length",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &[
            "<guestVisibleWorkarounds> decodes to 15 bytes",
            "exactly 16 bytes",
        ],
    },
    Case {
        name: "id-block-without-id-auth",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["has <idBlock> but no <idAuth>"],
    },
    Case {
        name: "author-key-without-id-auth",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["authorKey='yes'", "there is no <idAuth>"],
    },
    Case {
        name: "author-key-missing",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["authorKey='yes'", "<idAuth> holds no author key"],
    },
    Case {
        name: "author-key-not-enabled",
        ctx: base,
        code: ExitCode::IncorrectConfig,
        says: &["<idAuth> holds an author key", "lacks authorKey='yes'"],
    },
    Case {
        name: "host-data-pin",
        ctx: || SnpContext {
            pins: Pins {
                host_data: Some([0x22; 32]),
                ..Pins::default()
            },
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &[
            "<hostData> is 1111111111111111111111111111111111111111111111111111111111111111",
            "but --host-data is 2222222222222222222222222222222222222222222222222222222222222222",
        ],
    },
    Case {
        name: "family-id-pin",
        ctx: || SnpContext {
            pins: Pins {
                family_id: Some([0xF0; 16]),
                ..Pins::default()
            },
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &[
            "<idBlock>'s FAMILY_ID is f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1",
            "but --family-id is f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0",
        ],
    },
    Case {
        name: "image-id-pin",
        ctx: || SnpContext {
            pins: Pins {
                image_id: Some([0x1C; 16]),
                ..Pins::default()
            },
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &[
            "<idBlock>'s IMAGE_ID is 1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d",
            "but --image-id is 1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c",
        ],
    },
    Case {
        name: "guest-svn-pin",
        ctx: || SnpContext {
            pins: Pins {
                min_guest_svn: Some(2),
                ..Pins::default()
            },
            ..base()
        },
        code: ExitCode::IncorrectConfig,
        says: &["<idBlock>'s GUEST_SVN is 1, below --min-guest-svn 2"],
    },
];

#[test]
fn each_snp_check_trips_on_its_fixture_and_passes_on_the_fixed_one() {
    for c in CASES {
        let ctx = (c.ctx)();
        let err = run_checks(&fixture(&format!("snp-{}.trips.xml", c.name)), &ctx)
            .expect_err(&format!("snp-{}.trips.xml should trip the check", c.name));
        assert_eq!(err.exit_code(), c.code, "{}: {err}", c.name);
        for says in c.says {
            assert!(
                err.to_string().contains(says),
                "{}: message lacks '{says}': {err}",
                c.name
            );
        }
        run_checks(&fixture(&format!("snp-{}.passes.xml", c.name)), &ctx)
            .unwrap_or_else(|e| panic!("snp-{}.passes.xml should pass: {e}", c.name));
    }
}

#[test]
fn every_snp_fixture_pair_has_a_case() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata-xml");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(rest) = name.strip_prefix("snp-") else {
            continue;
        };
        let check = rest
            .strip_suffix(".trips.xml")
            .or_else(|| rest.strip_suffix(".passes.xml"))
            .unwrap_or_else(|| panic!("{name}: neither .trips.xml nor .passes.xml"));
        assert!(
            CASES.iter().any(|c| c.name == check),
            "{name} has no test case"
        );
        seen += 1;
    }
    assert_eq!(seen, 2 * CASES.len());
}

#[test]
fn the_owners_allowances_relax_only_their_own_check() {
    let relaxed = [
        (
            "unmeasured-direct-boot",
            SnpContext {
                secure: false,
                ..base()
            },
        ),
        (
            "policy-debug",
            SnpContext {
                allow_debug: true,
                ..base()
            },
        ),
        (
            "policy-migrate-ma",
            SnpContext {
                allow_migrate_ma: true,
                ..base()
            },
        ),
        (
            "firmware-autoselect",
            SnpContext {
                owner_firmware: true,
                ..base()
            },
        ),
    ];
    for (name, ctx) in relaxed {
        run_checks(&fixture(&format!("snp-{name}.trips.xml")), &ctx)
            .unwrap_or_else(|e| panic!("snp-{name} with its allowance: {e}"));
    }
    // --insecure does not allow DEBUG, nor --allow-debug MIGRATE_MA.
    let insecure = SnpContext {
        secure: false,
        ..base()
    };
    let e = run_checks(&fixture("snp-policy-debug.trips.xml"), &insecure).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::InsecureUsage, "{e}");
    let debug_only = SnpContext {
        allow_debug: true,
        ..base()
    };
    let e = run_checks(&fixture("snp-policy-migrate-ma.trips.xml"), &debug_only).unwrap_err();
    assert!(e.to_string().contains("MIGRATE_MA"), "{e}");
    // A configuration error stays one with --insecure.
    let e = run_checks(&fixture("snp-loader-pflash.trips.xml"), &insecure).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::IncorrectConfig, "{e}");
}

#[test]
fn ignore_config_skips_the_form_but_not_the_owners_requirements() {
    let ignore = SnpContext {
        ignore_config: true,
        ..base()
    };
    for name in [
        "nvram",
        "loader-pflash",
        "policy-bit17",
        "author-key-missing",
    ] {
        run_checks(&fixture(&format!("snp-{name}.trips.xml")), &ignore)
            .unwrap_or_else(|e| panic!("snp-{name} with --ignore-config: {e}"));
    }
    for (name, ctx) in [
        ("policy-debug", ignore.clone()),
        ("policy-migrate-ma", ignore.clone()),
        (
            "policy-mismatch",
            SnpContext {
                owner_policy: Some(0x30000),
                ..ignore.clone()
            },
        ),
        // What cannot be decoded cannot be ignored.
        ("id-block-length", ignore.clone()),
    ] {
        assert!(
            run_checks(&fixture(&format!("snp-{name}.trips.xml")), &ctx).is_err(),
            "snp-{name} with --ignore-config"
        );
    }
}

#[test]
fn decode_gives_what_sev_snp_measure_made() {
    let s = decode(&fixture("snp-author-key-not-enabled.passes.xml")).unwrap();
    // What snp-create-id-block printed for these fixtures (its LD from
    // `sev-snp-measure --mode snp --vcpus 2 --vcpu-type EPYC-Milan --ovmf OVMF.fd`).
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    let block = s.id_block.unwrap();
    assert_eq!(
        block.ld.to_vec(),
        b64("oXUpKkoJ/Pt2DFvYDJPtZn26r85iR9DyH8BmOGWLPr8oBNMBniq+0Fy2qe/gp0ZO")
    );
    assert_eq!((block.policy, block.guest_svn), (0x30000, 0));
    assert_eq!(
        s.id_key_digest().unwrap().to_vec(),
        b64("R7onwjMmLETGVTR5646P72Ol9+UB6IfARs9N04aQfYofVcp/dGsadZgJohBuHknD")
    );
    assert_eq!(
        s.author_key_digest().unwrap().to_vec(),
        b64("Mp6+Zat5KdEG4dimmgc5vQeMG1UjeLTDJQk+T/sg2y8y3f41vyS4HOa5dNU8XQtb")
    );
    assert!(s.author_key_enabled && !s.vcek_disabled && !s.kernel_hashes);
    assert_eq!(s.policy, 0x30000);
    assert_eq!(s.vcpus, Some((2, 2)));
    assert_eq!(s.model_signature, Some(MILAN));
    assert_eq!(s.cpu_model.as_deref(), Some("EPYC-Milan"));
    assert_eq!(s.loader.as_deref(), Some("/usr/share/ovmf/OVMF.fd"));
    assert_eq!(s.signing_key(), None);

    let s = decode(&fixture("snp-host-data-length.passes.xml")).unwrap();
    let want: Vec<u8> = (0x20..0x40).collect();
    assert_eq!(s.host_data.unwrap().to_vec(), want);
    let s = decode(&fixture("snp-guest-visible-workarounds-length.passes.xml")).unwrap();
    assert_eq!(s.guest_visible_workarounds, Some([0; 16]));

    // The ID auth without an author key.
    let s = decode(&fixture("snp-id-block-without-id-auth.passes.xml")).unwrap();
    assert!(s.id_key_digest().is_some());
    assert_eq!(s.author_key_digest(), None);
}

/// A report whose fields sit at the offsets of snp-attestation.md §1.1.
fn report(edit: impl FnOnce(&mut [u8])) -> AttestationReport {
    let mut b = vec![0u8; 0x4A0];
    b[0x00..0x04].copy_from_slice(&2u32.to_le_bytes()); // VERSION
    b[0x08..0x10].copy_from_slice(&0x30000u64.to_le_bytes()); // POLICY
    b[0x34..0x38].copy_from_slice(&1u32.to_le_bytes()); // SIGNATURE_ALGO
    b[0x48] = 1; // KEY_INFO: AUTHOR_KEY_EN, signed by the VCEK
                 // ID_KEY_DIGEST and AUTHOR_KEY_DIGEST as snp-create-id-block printed them
                 // for the fixtures' keys.
    b[0xE0..0x110].copy_from_slice(&d48(
        "R7onwjMmLETGVTR5646P72Ol9+UB6IfARs9N04aQfYofVcp/dGsadZgJohBuHknD",
    ));
    b[0x110..0x140].copy_from_slice(&d48(
        "Mp6+Zat5KdEG4dimmgc5vQeMG1UjeLTDJQk+T/sg2y8y3f41vyS4HOa5dNU8XQtb",
    ));
    edit(&mut b);
    AttestationReport::parse(&b).unwrap()
}

#[test]
fn report_fields_the_domain_decides() {
    let s = decode(&fixture("snp-author-key-not-enabled.passes.xml")).unwrap();
    let names = [
        "domain.policy",
        "domain.host_data",
        "domain.family_id",
        "domain.image_id",
        "domain.guest_svn",
        "domain.id_key_digest",
        "domain.author_key",
        "domain.signing_key",
    ];
    let verdict = |r: &AttestationReport, s: &SnpDomain| -> Vec<&'static str> {
        let checks = domain::report_checks(s, r);
        assert_eq!(checks.iter().map(|c| c.name).collect::<Vec<_>>(), names);
        checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name)
            .collect()
    };
    assert_eq!(verdict(&report(|_| {}), &s), Vec::<&str>::new());
    // (offset, new byte, the check that fails)
    let cases = [
        (0x0A, 0x13, "domain.policy"),
        (0xC0, 1, "domain.host_data"),
        (0x10, 1, "domain.family_id"),
        (0x2F, 1, "domain.image_id"),
        (0x04, 1, "domain.guest_svn"),
        (0xE0, 0, "domain.id_key_digest"),
        (0x48, 0, "domain.author_key"),
        (0x13F, 0, "domain.author_key"),
    ];
    for (at, byte, fails) in cases {
        let r = report(|b| {
            assert_ne!(b[at], byte, "{at:#x}");
            b[at] = byte;
        });
        assert_eq!(verdict(&r, &s), [fails], "byte {at:#x}");
    }
    let m = domain::report_checks(&s, &report(|b| b[0x0A] = 0x13))[0]
        .message
        .clone();
    assert!(
        m.contains("POLICY is 0x130000, but the domain gives 0x30000"),
        "{m}"
    );

    // vcek='no': a VLEK must sign; HOST_DATA from <hostData>; no ID block,
    // so ID_KEY_DIGEST, AUTHOR_KEY_DIGEST and the ID fields are zero.
    let host: Vec<u8> = (0x20..0x40).collect();
    let xml = snp_xml(
        " vcek='no'",
        "0x30000",
        &format!(
            "<hostData>{}</hostData>",
            base64::engine::general_purpose::STANDARD.encode(&host)
        ),
    );
    let s = decode(&Domain::parse(&xml).unwrap()).unwrap();
    let plain = |b: &mut [u8]| {
        b[0x48] = 1 << 2; // VLEK, no author key
        b[0xC0..0xE0].copy_from_slice(&(0x20..0x40).collect::<Vec<u8>>());
        b[0xE0..0x140].fill(0);
    };
    assert_eq!(verdict(&report(plain), &s), Vec::<&str>::new());
    assert_eq!(
        verdict(
            &report(|b| {
                plain(b);
                b[0x48] = 0;
            }),
            &s
        ),
        ["domain.signing_key"]
    );
    assert_eq!(
        verdict(
            &report(|b| {
                plain(b);
                b[0xE0] = 1;
            }),
            &s
        ),
        ["domain.id_key_digest"]
    );
    assert_eq!(
        verdict(
            &report(|b| {
                plain(b);
                b[0xC0] = 0;
            }),
            &s
        ),
        ["domain.host_data"]
    );
}

/// A minimal SNP domain with `attrs` on <launchSecurity> and `children` in it.
fn snp_xml(attrs: &str, policy: &str, children: &str) -> String {
    format!(
        "<domain type='kvm'><name>g</name><vcpu>2</vcpu>\
         <os><type arch='x86_64' machine='q35'>hvm</type>\
         <loader readonly='yes' type='rom'>/usr/share/ovmf/OVMF.fd</loader></os>\
         <cpu mode='custom' match='exact'><model fallback='forbid'>EPYC-Milan</model></cpu>\
         <launchSecurity type='sev-snp'{attrs}><cbitpos>51</cbitpos>\
         <reducedPhysBits>1</reducedPhysBits><policy>{policy}</policy>{children}\
         </launchSecurity></domain>"
    )
}

#[test]
fn vcek_no_means_a_vlek_signs_the_report() {
    let s = decode(&Domain::parse(&snp_xml(" vcek='no'", "0x30000", "")).unwrap()).unwrap();
    assert!(s.vcek_disabled);
    assert_eq!(s.signing_key(), Some(SigningKey::Vlek));
    check(
        &Domain::parse(&snp_xml(" vcek='no'", "0x30000", "")).unwrap(),
        &s,
        &base(),
    )
    .expect("vcek='no' is not an error");
    let s = decode(&Domain::parse(&snp_xml(" vcek='yes'", "0x30000", "")).unwrap()).unwrap();
    assert_eq!(s.signing_key(), None);
    let e = decode(&Domain::parse(&snp_xml(" vcek='maybe'", "0x30000", "")).unwrap()).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::IncorrectConfig);
    assert!(e.to_string().contains("vcek='maybe'"), "{e}");
}

#[test]
fn policy_is_hex_as_libvirt_writes_it_and_required() {
    for (text, want) in [
        ("0x00030000", 0x30000u64),
        ("30000", 0x30000),
        ("0X1B0000", 0x1B0000),
        (" 0x30000 ", 0x30000),
        ("0xffffffffffffffff", u64::MAX),
    ] {
        let s = decode(&Domain::parse(&snp_xml("", text, "")).unwrap()).unwrap();
        assert_eq!(s.policy, want, "{text}");
    }
    for bad in ["", "0x", "0x1_0000", "0x10000000000000000", "-1"] {
        let e = decode(&Domain::parse(&snp_xml("", bad, "")).unwrap()).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::IncorrectConfig, "{bad}");
    }
    // libvirt 11.3 refuses an SNP domain without <policy> ("failed to get
    // launch security policy"), so one without it is a finding, not a default.
    let no_policy = snp_xml("", "0x30000", "").replace("<policy>0x30000</policy>", "");
    assert_ne!(no_policy, snp_xml("", "0x30000", ""));
    let e = decode(&Domain::parse(&no_policy).unwrap()).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::IncorrectConfig);
    assert!(e.to_string().contains("has no <policy>"), "{e}");
}

#[test]
fn base64_with_line_breaks_decodes_and_garbage_never_panics() {
    let host: Vec<u8> = (0..32).collect();
    let text = base64::engine::general_purpose::STANDARD.encode(&host);
    let wrapped = format!("\n      {}\n      {}\n    ", &text[..20], &text[20..]);
    let s = decode(
        &Domain::parse(&snp_xml(
            "",
            "0x30000",
            &format!("<hostData>{wrapped}</hostData>"),
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(s.host_data.unwrap().to_vec(), host);
    // Every case is accounted for: not well-formed XML is refused by the
    // parser (a usage error, exit 2, never a panic); the rest is well-formed
    // (quick-xml lets a raw NUL through) and reaches decode, which refuses
    // it with the element named (exit 4).
    let not_xml = ["<", "&", "&bogus;", "</x>", "<![CDATA[AAA", "A&#0;A"];
    let not_base64 = [
        "",
        "=",
        "====",
        "AAA",
        "AAAAA",
        "\u{e9}\u{e9}",
        "A\u{0}A=",
        "&#x41;&#x41;&#x41;&#x41;",
    ];
    let (mut parse_refused, mut decode_refused) = (0, 0);
    for junk in not_xml.iter().chain(&not_base64) {
        for el in ["idBlock", "idAuth", "hostData", "guestVisibleWorkarounds"] {
            let xml = snp_xml("", "0x30000", &format!("<{el}>{junk}</{el}>"));
            match Domain::parse(&xml) {
                Err(e) => {
                    assert!(not_xml.contains(junk), "{el} {junk:?} does not parse: {e}");
                    assert_eq!(e.exit_code(), ExitCode::UnsupportedUsage, "{el} {junk:?}");
                    assert!(e.to_string().contains("cannot parse the domain XML"), "{e}");
                    parse_refused += 1;
                }
                Ok(d) => {
                    assert!(not_base64.contains(junk), "{el} {junk:?} parses as XML");
                    let e = decode(&d).unwrap_err();
                    assert_eq!(e.exit_code(), ExitCode::IncorrectConfig, "{el} {junk:?}");
                    assert!(e.to_string().contains(&format!("<{el}>")), "{e}");
                    decode_refused += 1;
                }
            }
        }
    }
    assert_eq!(parse_refused, not_xml.len() * 4);
    assert_eq!(decode_refused, not_base64.len() * 4);
    assert!(decode(&Domain::parse("<domain/>").unwrap()).is_err());
}

// ------------------------------------------------------------- pre-launch ----

const OVMF: &str = "/usr/share/ovmf/OVMF.fd";

struct Tools {
    measure: PathBuf,
    id_block: PathBuf,
    python: PathBuf,
}

fn tools(test: &str) -> Option<Tools> {
    let measure = std::env::var_os("SEV_SNP_MEASURE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/sev-snp-measure/bin/sev-snp-measure"));
    let bin = measure.parent().unwrap_or(Path::new("/")).to_path_buf();
    let t = Tools {
        id_block: bin.join("snp-create-id-block"),
        python: bin.join("python3"),
        measure,
    };
    let works = Command::new(&t.measure)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !works || !t.id_block.is_file() || !t.python.is_file() {
        skip_or_fail(
            test,
            &format!(
                "sev-snp-measure not found at {} (scripts/setup.sh installs it into /opt/sev-snp-measure; or set SEV_SNP_MEASURE)",
                t.measure.display()
            ),
        );
        return None;
    }
    if !Path::new(OVMF).is_file() {
        skip_or_fail(test, &format!("{OVMF} not found (Debian package ovmf)"));
        return None;
    }
    Some(t)
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn b64d(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn d48(s: &str) -> [u8; 48] {
    b64d(s).try_into().unwrap()
}

/// A P-384 key made by openssl (SEC1 PEM, as `ecparam -genkey` writes it).
fn openssl_key(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    output(Command::new("openssl").args([
        "ecparam",
        "-genkey",
        "-name",
        "secp384r1",
        "-noout",
        "-out",
        p.to_str().unwrap(),
    ]));
    p
}

/// sev-snp-measure's launch digest of OVMF.fd with `vcpus` EPYC-Milan vCPUs.
fn their_ld(t: &Tools, vcpus: u32) -> [u8; 48] {
    their_ld_with(
        t,
        &["--vcpus", &vcpus.to_string(), "--vcpu-type", "EPYC-Milan"],
    )
}

/// sev-snp-measure's launch digest of OVMF.fd with these vCPU options.
fn their_ld_with(t: &Tools, vcpu_args: &[&str]) -> [u8; 48] {
    let out = output(
        Command::new(&t.measure)
            .args(["--mode", "snp", "--ovmf", OVMF, "--output-format", "base64"])
            .args(vcpu_args),
    );
    d48(&out)
}

/// What snp-create-id-block printed: (idBlock b64, idAuth b64, ID key digest, author key digest).
struct Made {
    block: String,
    auth: String,
    id_digest: [u8; 48],
    author_digest: [u8; 48],
}

fn parse_made(out: &str) -> Made {
    let first = out.lines().next().unwrap();
    let part = |p: &str| {
        first
            .split(',')
            .find_map(|x| x.strip_prefix(p))
            .unwrap()
            .to_string()
    };
    let field = |p: &str| {
        d48(out
            .lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap_or_else(|| panic!("no {p} in {out}")))
    };
    Made {
        block: part("id-block="),
        auth: part("id-auth="),
        id_digest: field("id_key_hash:"),
        author_digest: field("author_key:"),
    }
}

fn their_id_block(t: &Tools, ld: &[u8; 48], id: &Path, author: &Path) -> Made {
    parse_made(&output(Command::new(&t.id_block).args([
        "--measurement",
        &base64::engine::general_purpose::STANDARD.encode(ld),
        "--idkey",
        id.to_str().unwrap(),
        "--authorkey",
        author.to_str().unwrap(),
    ])))
}

/// sev-snp-measure's own ID block code with its default POLICY replaced:
/// snp-create-id-block has no policy option.
fn their_id_block_with_policy(
    t: &Tools,
    ld: &[u8; 48],
    id: &Path,
    author: &Path,
    policy: u64,
) -> Made {
    let script = format!(
        "import sys, sevsnpmeasure.id_block as m\n\
         m.DefaultPolicy = {policy}\n\
         import base64\n\
         print(m.snp_calc_id_block(base64.b64decode(sys.argv[1]), sys.argv[2], sys.argv[3]))\n"
    );
    parse_made(&output(Command::new(&t.python).args([
        "-c",
        &script,
        &base64::engine::general_purpose::STANDARD.encode(ld),
        id.to_str().unwrap(),
        author.to_str().unwrap(),
    ])))
}

fn domain_with(m: &Made, attrs: &str, policy: &str, auth_b64: &str) -> SnpDomain {
    let xml = snp_xml(
        attrs,
        policy,
        &format!("<idBlock>{}</idBlock><idAuth>{auth_b64}</idAuth>", m.block),
    );
    decode(&Domain::parse(&xml).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

fn status<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:?}"))
}

const NAMES: [&str; 7] = [
    "id-block-ld",
    "id-block-policy",
    "id-block-signature",
    "id-key-signature",
    "id-key-trusted",
    "author-key-trusted",
    "author-key-enabled",
];

/// Every check passes but those named in `fail` (which fail) and `skip`.
fn assert_verdict(what: &str, checks: &[Check], fail: &[&str], skip: &[&str]) {
    assert_eq!(
        checks.iter().map(|c| c.name).collect::<Vec<_>>(),
        NAMES,
        "{what}"
    );
    for c in checks {
        let want = if fail.contains(&c.name) {
            Status::Fail
        } else if skip.contains(&c.name) {
            Status::Skip
        } else {
            Status::Pass
        };
        assert_eq!(c.status, want, "{what}: {}: {}", c.name, c.message);
        assert!(!c.message.is_empty(), "{what}: {} has no detail", c.name);
    }
}

#[test]
fn prelaunch_verdict_on_id_blocks_made_by_sev_snp_measure() {
    let Some(t) = tools("prelaunch_verdict_on_id_blocks_made_by_sev_snp_measure") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (id, author, other) = (
        openssl_key(dir.path(), "id.pem"),
        openssl_key(dir.path(), "author.pem"),
        openssl_key(dir.path(), "other.pem"),
    );
    let ld2 = their_ld(&t, 2);
    let ld4 = their_ld(&t, 4);
    assert_ne!(ld2, ld4);
    let right = their_id_block(&t, &ld2, &id, &author);
    let trusted = IdKeys {
        trusted_id_keys: vec![right.id_digest],
        trusted_author_keys: vec![right.author_digest],
        require_author_key: true,
    };
    let yes = " authorKey='yes'";

    // The right block: every check passes, nothing skipped.
    let s = domain_with(&right, yes, "0x30000", &right.auth);
    let checks = prelaunch(&s, &ld2, &trusted).unwrap();
    assert_verdict("right block", &checks, &[], &[]);
    assert!(status(&checks, "id-block-ld")
        .message
        .contains(&hex::encode(ld2)));

    // No trusted keys given: the two trust checks are skipped, visibly.
    let checks = prelaunch(&s, &ld2, &IdKeys::default()).unwrap();
    assert_verdict(
        "no trusted keys",
        &checks,
        &[],
        &["id-key-trusted", "author-key-trusted"],
    );
    assert!(status(&checks, "id-key-trusted")
        .message
        .contains("no trusted"));

    // A block made for the 4-vCPU launch, on the 2-vCPU domain.
    let for4 = their_id_block(&t, &ld4, &id, &author);
    let s4 = domain_with(&for4, yes, "0x30000", &for4.auth);
    let checks = prelaunch(&s4, &ld2, &trusted).unwrap();
    assert_verdict("block for another LD", &checks, &["id-block-ld"], &[]);
    let m = &status(&checks, "id-block-ld").message;
    assert!(
        m.contains(&hex::encode(ld4)) && m.contains(&hex::encode(ld2)) && m.contains("fw_error 11"),
        "{m}"
    );
    // ... and the explainer names the change in the ID block's words (our
    // digest of the domain's launch first checked against sev-snp-measure's).
    let launch = digest::compute(&DigestInput {
        ovmf: OVMF.into(),
        ovmf_hash: None,
        vcpus: 2,
        vcpu_signature: Some(MILAN),
        vmm: VmmType::Qemu,
        vmsa_form: VmsaForm::Init2,
        guest_features: 0x1,
        kernel: None,
        initrd: None,
        append: None,
    })
    .unwrap();
    assert_eq!(launch.ld, ld2);
    let x = launch.explain(&s4.id_block.unwrap().ld).unwrap();
    let words: Vec<String> = x
        .changes
        .unwrap()
        .iter()
        .map(|c| c.id_block_words())
        .collect();
    assert_eq!(
        words,
        ["the ID block was made for 4 vCPUs; the domain has 2"]
    );
    // Blocks for other guest features and another vCPU model, the same way.
    for (made_for, says) in [
        (
            &["--vcpus", "2", "--vcpu-type", "EPYC-Milan", "--guest-features", "0x21"][..],
            "the ID block was made for guest features 0x21 (SNPActive and DebugSwap); the domain is launched with 0x1 (SNPActive)",
        ),
        (
            &["--vcpus", "2", "--vcpu-type", "EPYC-Genoa"][..],
            "the ID block was made for vCPU model EPYC-Genoa; the domain's is EPYC-Milan",
        ),
    ] {
        let ld = their_ld_with(&t, made_for);
        let m = their_id_block(&t, &ld, &id, &author);
        let s = domain_with(&m, yes, "0x30000", &m.auth);
        let checks = prelaunch(&s, &ld2, &trusted).unwrap();
        assert_verdict(says, &checks, &["id-block-ld"], &[]);
        let x = launch.explain(&s.id_block.unwrap().ld).unwrap();
        let words: Vec<String> = x.changes.unwrap().iter().map(|c| c.id_block_words()).collect();
        assert_eq!(words, [says]);
    }

    // A block for another policy: the domain's <policy> differs from it ...
    let s = domain_with(&right, yes, "0x130000", &right.auth);
    let checks = prelaunch(&s, &ld2, &trusted).unwrap();
    assert_verdict(
        "domain with another policy",
        &checks,
        &["id-block-policy"],
        &[],
    );
    let m = &status(&checks, "id-block-policy").message;
    assert!(
        m.contains("POLICY is 0x30000") && m.contains("<policy> is 0x130000"),
        "{m}"
    );
    // ... and a block made for policy 0x130000 on a 0x30000 domain.
    let other_policy = their_id_block_with_policy(&t, &ld2, &id, &author, 0x130000);
    let s = domain_with(&other_policy, yes, "0x30000", &other_policy.auth);
    assert_eq!(s.id_block.unwrap().policy, 0x130000);
    let checks = prelaunch(&s, &ld2, &trusted).unwrap();
    assert_verdict(
        "block for another policy",
        &checks,
        &["id-block-policy"],
        &[],
    );

    // A corrupted ID block signature (a bit of S), then a corrupted ID key signature.
    let auth = b64d(&right.auth);
    for (at, fails) in [
        (0x40 + 72 + 5, &["id-block-signature"][..]),
        (
            0x680 + 3,
            &["id-key-signature", "id-key-trusted", "author-key-trusted"][..],
        ),
    ] {
        let mut bad = auth.clone();
        bad[at] ^= 0x01;
        let bad = base64::engine::general_purpose::STANDARD.encode(&bad);
        let s = domain_with(&right, yes, "0x30000", &bad);
        // id-key-trusted still passes on the trusted ID key itself, unless
        // only the author key is trusted.
        let only_author = IdKeys {
            trusted_id_keys: vec![],
            ..trusted.clone()
        };
        let checks = prelaunch(&s, &ld2, &only_author).unwrap();
        assert_verdict(&format!("byte {at:#x} flipped"), &checks, fails, &[]);
        let checks = prelaunch(&s, &ld2, &trusted).unwrap();
        assert_eq!(
            checks[2].status,
            if at < 0x240 {
                Status::Fail
            } else {
                Status::Pass
            }
        );
    }

    // Another ID key than the trusted one.
    let theirs = their_id_block(&t, &ld2, &other, &author);
    let not_trusted = IdKeys {
        trusted_id_keys: vec![theirs.id_digest],
        trusted_author_keys: vec![],
        require_author_key: false,
    };
    let s = domain_with(&right, yes, "0x30000", &right.auth);
    let checks = prelaunch(&s, &ld2, &not_trusted).unwrap();
    assert_verdict(
        "another ID key",
        &checks,
        &["id-key-trusted"],
        &["author-key-trusted"],
    );
    assert!(status(&checks, "id-key-trusted")
        .message
        .contains(&hex::encode(right.id_digest)));
    // Another author key than the trusted one.
    let wrong_author = IdKeys {
        trusted_id_keys: vec![right.id_digest],
        trusted_author_keys: vec![theirs.id_digest],
        require_author_key: true,
    };
    let checks = prelaunch(&s, &ld2, &wrong_author).unwrap();
    assert_verdict("another author key", &checks, &["author-key-trusted"], &[]);

    // authorKey mismatch: an author key in idAuth without authorKey='yes' ...
    let s = domain_with(&right, "", "0x30000", &right.auth);
    let checks = prelaunch(&s, &ld2, &IdKeys::default()).unwrap();
    assert_verdict(
        "author key not enabled",
        &checks,
        &["author-key-enabled"],
        &["id-key-trusted", "author-key-trusted"],
    );
    // With an author key required, a trusted one that is not enabled fails too.
    let checks = prelaunch(&s, &ld2, &trusted).unwrap();
    assert_verdict(
        "author key trusted, not enabled, required",
        &checks,
        &["author-key-trusted", "author-key-enabled"],
        &[],
    );
    assert!(status(&checks, "author-key-trusted")
        .message
        .contains("without authorKey='yes'"));
    // ... and authorKey='yes' with an idAuth whose author fields are zero.
    let mut no_author = auth.clone();
    no_author[4..8].fill(0);
    no_author[0x680..0xC84].fill(0);
    let no_author = base64::engine::general_purpose::STANDARD.encode(&no_author);
    let s = domain_with(&right, yes, "0x30000", &no_author);
    let checks = prelaunch(&s, &ld2, &IdKeys::default()).unwrap();
    assert_verdict(
        "authorKey without author key",
        &checks,
        &["author-key-enabled"],
        &["id-key-signature", "id-key-trusted", "author-key-trusted"],
    );
    // Without authorKey it is consistent; requiring an author key then fails.
    let s = domain_with(&right, "", "0x30000", &no_author);
    let require = IdKeys {
        trusted_id_keys: vec![right.id_digest],
        trusted_author_keys: vec![right.author_digest],
        require_author_key: true,
    };
    let checks = prelaunch(&s, &ld2, &require).unwrap();
    assert_verdict(
        "no author key, one required",
        &checks,
        &["author-key-trusted"],
        &["id-key-signature"],
    );

    // No idBlock: no pre-launch verdict.
    let d = Domain::parse(&snp_xml(yes, "0x30000", "")).unwrap();
    assert!(prelaunch(&decode(&d).unwrap(), &ld2, &trusted).is_none());
}
