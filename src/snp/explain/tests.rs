//! The words of each change and of the answer, and the variants tried.

use super::variants::feature_candidates;
use super::{Change, CmdlineChange, FirmwareForm, SnpExplanation};
use crate::core::vmsa::{VmmType, VmsaForm};

#[test]
fn feature_candidates_start_with_the_owner_and_hold_each_value_once() {
    let f = feature_candidates(0x1);
    assert_eq!(f[0], 0x1);
    assert!(f.contains(&0x21));
    assert!(f.contains(&0x201));
    assert!(f.contains(&0x0));
    let mut d = f.clone();
    d.sort();
    d.dedup();
    assert_eq!(d.len(), f.len());
    // A set bit above 15 is toggled too.
    assert!(feature_candidates(1 | 1 << 40).contains(&1));
}

#[test]
fn words() {
    let c = Change::GuestFeatures {
        expected: 0x1,
        host: 0x21,
    };
    assert_eq!(
        c.to_string(),
        "the host enabled DebugSwap: --guest-features 0x21"
    );
    let c = Change::GuestFeatures {
        expected: 0x21,
        host: 0x201,
    };
    assert_eq!(
        c.host_did(),
        "the host enabled SecureTSC and did not enable DebugSwap"
    );
    let c = Change::Vcpus {
        expected: 4,
        host: 2,
    };
    assert_eq!(
        c.to_string(),
        "the host started the guest with 2 vCPUs instead of 4: --vcpus 2"
    );
    let c = Change::VcpuSignature {
        expected: Some(0xA00F11),
        host: 0xA10F10,
    };
    assert_eq!(c.option(), "--vcpu-type EPYC-Genoa");
    assert!(c.host_did().contains("EPYC-Genoa, not EPYC-Milan"));
    let c = Change::Cmdline {
        how: CmdlineChange::TrailingNewline,
        host: "a 'b'\n".into(),
    };
    assert_eq!(c.option(), r"--append $'a \'b\'\n'");
    let c = Change::Cmdline {
        how: CmdlineChange::LeadingSpace,
        host: " it's".into(),
    };
    assert_eq!(c.option(), r"--append ' it'\''s'");
}

#[test]
fn main_command_options_for_each_kind() {
    let cases: Vec<(Change, Option<&str>)> = vec![
        (
            Change::Vcpus {
                expected: 2,
                host: 4,
            },
            Some("--num-cpus 4"),
        ),
        (
            Change::VcpuSignature {
                expected: Some(0xA00F11),
                host: 0xA10F10,
            },
            Some("--cpu-family 25 --cpu-model 17 --cpu-stepping 0"),
        ),
        (
            Change::Vmm {
                expected: VmmType::Qemu,
                host: VmmType::Ec2,
            },
            None,
        ),
        (
            Change::GuestFeatures {
                expected: 0x1,
                host: 0x21,
            },
            Some("--sev-features 0x21"),
        ),
        (
            Change::VmsaForm {
                expected: VmsaForm::Init2,
                host: VmsaForm::Legacy,
            },
            Some("--vmsa-form legacy"),
        ),
        (
            Change::NoKernelHashes,
            Some("no --kernel, --initrd or --cmdline"),
        ),
        (
            Change::Cmdline {
                how: CmdlineChange::Empty,
                host: String::new(),
            },
            Some("no --cmdline"),
        ),
        (
            Change::Cmdline {
                how: CmdlineChange::TrailingNewline,
                host: "console=ttyS0\n".into(),
            },
            Some("--cmdline $'console=ttyS0\\n'"),
        ),
        (Change::NoInitrd, Some("no --initrd")),
    ];
    for (c, want) in cases {
        assert_eq!(c.main_option().as_deref(), want, "{c:?}");
    }
}

#[test]
fn id_block_words_for_the_vcpus_and_guest_features() {
    let cases: Vec<(Change, &str)> = vec![
        (
            Change::Vcpus {
                expected: 2,
                host: 4,
            },
            "the ID block was made for 4 vCPUs; the domain has 2",
        ),
        (
            Change::Vcpus {
                expected: 2,
                host: 1,
            },
            "the ID block was made for 1 vCPU; the domain has 2",
        ),
        (
            Change::VcpuSignature {
                expected: Some(0x800F12),
                host: 0xA00F11,
            },
            "the ID block was made for vCPU model EPYC-Milan; the domain's is EPYC",
        ),
        (
            Change::VcpuSignature {
                expected: Some(0xA00F12),
                host: 0xA00F11,
            },
            "the ID block was made for vCPU model EPYC-Milan; the domain's is signature 0xA00F12",
        ),
        (
            Change::VcpuSignature {
                expected: None,
                host: 0xB10F00,
            },
            "the ID block was made for vCPU signature 0xB10F00",
        ),
        (
            Change::GuestFeatures {
                expected: 0x1,
                host: 0x21,
            },
            "the ID block was made for guest features 0x21 (SNPActive and DebugSwap); the domain is launched with 0x1 (SNPActive)",
        ),
        (
            Change::GuestFeatures {
                expected: 0x0,
                host: 0x201,
            },
            "the ID block was made for guest features 0x201 (SNPActive and SecureTSC); the domain is launched with 0x0 (none)",
        ),
    ];
    for (c, words) in cases {
        assert_eq!(c.id_block_words(), words, "{c:?}");
    }
}

#[test]
fn id_block_words_for_the_vmm_vmsa_form_and_kernel() {
    let cases: Vec<(Change, &str)> = vec![
        (
            Change::Vmm {
                expected: VmmType::Qemu,
                host: VmmType::Ec2,
            },
            "the ID block was made for a launch by Amazon EC2's VMM; the domain is launched by QEMU/KVM",
        ),
        (
            Change::VmsaForm {
                expected: VmsaForm::Init2,
                host: VmsaForm::Legacy,
            },
            "the ID block was made for a host without KVM_SEV_INIT2 (VMSAs with no FPU control words); the domain's launch is computed for KVM_SEV_INIT2 (--vmsa-form init2)",
        ),
        (
            Change::VmsaForm {
                expected: VmsaForm::Legacy,
                host: VmsaForm::Init2,
            },
            "the ID block was made for a host with KVM_SEV_INIT2 (VMSAs with the FPU control words); the domain's launch is computed for the legacy VMSA form (--vmsa-form legacy)",
        ),
        (
            Change::NoKernelHashes,
            "the ID block was made for a launch without kernel hashes; the domain measures its kernel, initrd and command line (kernelHashes='yes')",
        ),
        (
            Change::Cmdline {
                how: CmdlineChange::TrailingNewline,
                host: "console=ttyS0\n".into(),
            },
            "the ID block was made for a kernel command line that ends with a newline",
        ),
        (
            Change::Cmdline {
                how: CmdlineChange::Empty,
                host: String::new(),
            },
            "the ID block was made for a kernel command line that is empty (no -append)",
        ),
        (
            Change::NoInitrd,
            "the ID block was made for a kernel booted without an initrd; the domain has one",
        ),
    ];
    for (c, words) in cases {
        assert_eq!(c.id_block_words(), words, "{c:?}");
    }
}

#[test]
fn json_names_each_change_by_kind_option_and_host() {
    let x = SnpExplanation {
        reported: [0xAB; 48],
        computed: [0xCD; 48],
        ovmf_hash: [0; 48],
        changes: Some(vec![Change::NoInitrd]),
        variants_tried: 7,
        searched: "s".into(),
        igvm: None,
        firmware: FirmwareForm::Ovmf,
    };
    let v = serde_json::to_value(&x).unwrap();
    assert_eq!(v["reported"], "ab".repeat(48));
    assert_eq!(v["computed"], "cd".repeat(48));
    assert_eq!(v["variants_tried"], 7);
    assert_eq!(v["changes"][0]["kind"], "no-initrd");
    assert_eq!(v["changes"][0]["option"], "no --initrd");
    assert_eq!(
        v["changes"][0]["host"],
        "the host booted the kernel without the initrd"
    );
    assert!(!x.matches());
    // The OVMF answer has no igvm object, and its changes no IGVM fields.
    assert!(v.get("igvm").is_none());
    assert!(v["changes"][0].get("directive").is_none());
}

#[test]
fn cmdline_changes() {
    assert_eq!(CmdlineChange::Trimmed.apply(" a b\n"), "a b");
    assert_eq!(CmdlineChange::CollapsedSpaces.apply("a  b\tc"), "a b c");
    assert_eq!(CmdlineChange::NoTrailingNewline.apply("a\r\n"), "a");
}
