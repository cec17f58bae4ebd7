//! The IGVM search and comparison on small synthetic launches. Every
//! reported value is the plain launch digest ([`IgvmLaunch::launch_digest`],
//! the whole chain hashed again) of a launch changed by hand: the search's
//! prefixes and suffixes must give the same value and name the change.

use sha2::{Digest, Sha384};

use super::{explain, IgvmChange, IgvmFile, VmsaCountHow, IGVM_SEARCH_BUDGET};
use crate::core::igvm::vmsa_fields;
use crate::core::igvm::{FileVmsa, IgvmIdBlock, IgvmLaunch, Import, MeasuredPage};
use crate::core::snp::{Ld, PAGE_LEN};
use crate::core::vmsa::{self, VmsaConfig, VmsaForm};
use crate::snp::explain::{Change, SnpExplanation};

fn sha(b: &[u8]) -> Ld {
    Sha384::digest(b).into()
}

fn page(directive: usize, gpa: u64, import: Import) -> MeasuredPage {
    let contents = match import {
        Import::Data => sha(&gpa.to_le_bytes()),
        Import::Zero => sha(&[0u8; PAGE_LEN]),
        _ => [0; 48],
    };
    MeasuredPage {
        gpa,
        import,
        contents,
        directive,
    }
}

fn vmsa_page(rip: u64, features: u64) -> Box<[u8; PAGE_LEN]> {
    let p = vmsa_fields::rip().with(&[0u8; PAGE_LEN], rip);
    vmsa_fields::sev_features().with(&p, features)
}

/// Twelve directives: data, zero, unmeasured, secrets and CPUID pages, a
/// two-page parameter insert and a 3-page data directive, then `vmsas` VMSAs.
fn launch(vmsas: usize) -> IgvmLaunch {
    use Import::*;
    let kinds = [
        Data, Zero, Unmeasured, Data, Secrets, Cpuid, Zero, Data, Unmeasured,
    ];
    let mut pages: Vec<MeasuredPage> = kinds
        .iter()
        .enumerate()
        .map(|(i, &k)| page(i + 2, 0x10_0000 + ((i as u64) << 12), k))
        .collect();
    pages.push(page(11, 0x20_0000, Parameter(0)));
    pages.push(page(11, 0x20_1000, Parameter(0)));
    for i in 0..3u64 {
        pages.push(page(12, 0x30_0000 + (i << 12), Data));
    }
    IgvmLaunch {
        compatibility_mask: 1,
        policy: Some(0x30000),
        pages,
        vmsas: (0..vmsas)
            .map(|k| FileVmsa {
                vp_index: k as u16,
                directive: 13 + k,
                file_gpa: crate::core::igvm::KVM_VMSA_GPA,
                page: vmsa_page(0x10_0000 + k as u64 * 0x10, 0x8001),
            })
            .collect(),
        id_block: None,
        jumps: vec![],
        findings: vec![],
        directive_count: 13 + vmsas,
    }
}

fn file(l: &IgvmLaunch) -> IgvmFile<'_> {
    IgvmFile {
        launch: l,
        sha384: [7; 48],
    }
}

/// The explainer's answer for a report of `host`'s launch.
fn answer(owner: &IgvmLaunch, host: &IgvmLaunch) -> SnpExplanation {
    explain(file(owner), &host.launch_digest(), None, IGVM_SEARCH_BUDGET).unwrap()
}

fn named(owner: &IgvmLaunch, host: &IgvmLaunch) -> IgvmChange {
    let x = answer(owner, host);
    assert!(!x.matches());
    match x.changes.as_deref() {
        Some([Change::Igvm(c)]) => c.clone(),
        other => panic!("not one IGVM change: {other:?}\n{x}"),
    }
}

fn with_import(l: &IgvmLaunch, i: usize, to: Import) -> IgvmLaunch {
    let mut h = l.clone();
    h.pages[i] = page(l.pages[i].directive, l.pages[i].gpa, to);
    h
}

#[test]
fn each_page_type_change_is_named() {
    let l = launch(1);
    for (i, from, to) in [
        (0, Import::Data, Import::Unmeasured),
        (1, Import::Zero, Import::Unmeasured),
        (2, Import::Unmeasured, Import::Zero),
        (4, Import::Secrets, Import::Cpuid),
        (5, Import::Cpuid, Import::Secrets),
        (3, Import::Data, Import::Zero),
        (6, Import::Zero, Import::Secrets),
        (8, Import::Unmeasured, Import::Cpuid),
    ] {
        assert_eq!(l.pages[i].import, from);
        let c = named(&l, &with_import(&l, i, to));
        assert_eq!(
            c,
            IgvmChange::PageType {
                directive: i + 2,
                gpa: l.pages[i].gpa,
                pages: 1,
                expected: from,
                host: to,
            }
        );
        assert_eq!(c.kind(), "page-type");
    }
    // A 3-page directive changes as a whole.
    let mut h = l.clone();
    for p in &mut h.pages[11..14] {
        *p = page(12, p.gpa, Import::Unmeasured);
    }
    assert!(matches!(
        named(&l, &h),
        IgvmChange::PageType {
            directive: 12,
            pages: 3,
            ..
        }
    ));
}

#[test]
fn gpa_and_parameter_area_changes_are_named() {
    let l = launch(1);
    let mut h = l.clone();
    h.pages[7].gpa ^= 1 << 29;
    assert_eq!(
        named(&l, &h),
        IgvmChange::PageGpa {
            directive: 9,
            pages: 1,
            expected: l.pages[7].gpa,
            host: l.pages[7].gpa ^ (1 << 29),
        }
    );
    for host_pages in [1, 3, 5] {
        let mut h = l.clone();
        let tail = h.pages.split_off(9);
        h.pages.extend(
            (0..host_pages as u64).map(|i| page(11, 0x20_0000 + (i << 12), Import::Parameter(0))),
        );
        h.pages.extend(tail.into_iter().skip(2));
        let c = named(&l, &h);
        assert_eq!(
            c,
            IgvmChange::ParameterArea {
                directive: 11,
                area: 0,
                gpa: 0x20_0000,
                expected: 2,
                host: host_pages,
            }
        );
    }
}

#[test]
fn vmsa_changes_are_named() {
    let l = launch(2);
    // SEV_FEATURES of every VMSA (the host's KVM sets it VM-wide).
    let mut h = l.clone();
    for v in &mut h.vmsas {
        v.page = vmsa_fields::sev_features().with(&v.page, 0x8021);
    }
    let c = named(&l, &h);
    assert_eq!(c.kind(), "vmsa-sev-features");
    assert!(
        c.host_did().contains("enabled DebugSwap in every VMSA"),
        "{c:?}"
    );
    // One VMSA's RIP, and one VMSA's SEV_FEATURES.
    let mut h = l.clone();
    h.vmsas[1].page = vmsa_fields::rip().with(&h.vmsas[1].page, 0x10_0010 ^ (1 << 40));
    let c = named(&l, &h);
    assert_eq!(c.kind(), "vmsa-rip");
    assert_eq!((c.vp_index(), c.directive()), (Some(1), Some(14)));
    let mut h = l.clone();
    h.vmsas[0].page = vmsa_fields::sev_features().with(&h.vmsas[0].page, 0x8001 ^ 0x200);
    let c = named(&l, &h);
    assert!(
        c.host_did()
            .contains("enabled SecureTSC in the VMSA of vCPU 0"),
        "{c:?}"
    );
    // Fewer VMSAs than the file has.
    let mut h = l.clone();
    h.vmsas.truncate(1);
    assert!(matches!(
        named(&l, &h),
        IgvmChange::VmsaCount {
            file: 2,
            host: 1,
            how: VmsaCountHow::FirstOnly
        }
    ));
}

#[test]
fn extra_vcpus_are_named_when_their_state_is_modelled() {
    let l = launch(1);
    // Three more vCPUs in QEMU's reset state, EPYC-Milan, KVM_SEV_INIT2.
    let cfg = VmsaConfig {
        form: VmsaForm::Init2,
        cpu_signature: 0xA00F11,
        sev_features: 0x8001,
    };
    let reset = vmsa::build(&cfg, vmsa::BSP_RESET_EIP);
    let mut h = l.clone();
    for k in 1..4 {
        h.vmsas.push(FileVmsa {
            vp_index: k,
            directive: 99,
            file_gpa: 0,
            page: reset.clone(),
        });
    }
    let c = named(&l, &h);
    assert_eq!(
        c,
        IgvmChange::VmsaCount {
            file: 1,
            host: 4,
            how: VmsaCountHow::ResetState {
                model: "EPYC-Milan",
                sev_features: 0x8001,
                form: VmsaForm::Init2
            }
        }
    );
    assert!(c.option().contains("-smp 1"));
    // Extra vCPUs in a state the file does not describe: nothing is named,
    // and the answer says that such state cannot be computed.
    let mut h = l.clone();
    h.vmsas.push(FileVmsa {
        vp_index: 1,
        directive: 99,
        file_gpa: 0,
        page: vmsa_page(0x1234, 1),
    });
    let x = answer(&l, &h);
    assert_eq!(x.changes, None);
    assert!(x.searched.contains("cannot be computed"), "{}", x.searched);
    assert!(x.to_string().contains("--host-igvm"), "{x}");
}

#[test]
fn the_budget_stops_the_search_and_says_so() {
    let l = launch(1);
    let h = with_import(&l, 0, Import::Unmeasured);
    let r = h.launch_digest();
    let full = explain(file(&l), &r, None, IGVM_SEARCH_BUDGET).unwrap();
    let spent = full.igvm.as_ref().unwrap().hashes;
    assert!(full.changes.is_some());
    assert!(!full.igvm.as_ref().unwrap().budget_exhausted);
    // One hash short of the answer: the first directive is not reached.
    let x = explain(file(&l), &r, None, spent - 1).unwrap();
    assert_eq!(x.changes, None);
    let i = x.igvm.as_ref().unwrap();
    assert!(i.budget_exhausted && i.hashes < spent);
    assert!(
        x.searched
            .contains("the budget stopped the search in the page types (normal"),
        "{}",
        x.searched
    );
    assert!(
        x.searched.contains("after 10 of 11 directives"),
        "{}",
        x.searched
    );
    // Too small for the VMSA variants.
    let x = explain(file(&l), &r, None, 100).unwrap();
    assert!(x
        .searched
        .contains("stopped the search in the VMSA variants"));
}

#[test]
fn a_match_searches_nothing() {
    let l = launch(1);
    let x = answer(&l, &l);
    assert!(x.matches());
    assert_eq!(x.changes, Some(vec![]));
    assert_eq!(x.variants_tried, 1);
}

fn host_answer(owner: &IgvmLaunch, host: &IgvmLaunch, reported: &Ld) -> SnpExplanation {
    let h = IgvmFile {
        launch: host,
        sha384: [9; 48],
    };
    explain(file(owner), reported, Some(h), IGVM_SEARCH_BUDGET).unwrap()
}

#[test]
fn the_hosts_file_is_compared_field_by_field() {
    let l = launch(1);
    let mut h = l.clone();
    h.pages[3].contents = sha(b"other");
    h.pages[7].gpa ^= 1 << 20;
    h.pages[2] = page(4, h.pages[2].gpa, Import::Zero);
    h.vmsas[0].page = vmsa_fields::rip().with(&h.vmsas[0].page, 0x4000);
    let mut cr0 = h.vmsas[0].page.clone();
    cr0[0x158] = 0x31;
    h.vmsas[0].page = cr0;
    h.policy = Some(0xb0000);
    h.id_block = Some(IgvmIdBlock {
        directive: 0,
        ld: h.launch_digest(),
        family_id: [0; 16],
        image_id: [0; 16],
        guest_svn: 0,
        author_key_enabled: false,
    });
    let x = host_answer(&l, &h, &h.launch_digest());
    assert!(x.host_gives_reported());
    let kinds: Vec<_> = x
        .changes
        .as_ref()
        .unwrap()
        .iter()
        .map(Change::kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "page-type",
            "page-contents",
            "page-gpa",
            "vmsa-field",
            "vmsa-rip"
        ]
    );
    let all = &x
        .igvm
        .as_ref()
        .unwrap()
        .host_file
        .as_ref()
        .unwrap()
        .differences;
    let kinds: Vec<_> = all.iter().map(Change::kind).collect();
    assert_eq!(kinds[5..], ["igvm-policy", "igvm-id-block"]);
    let text = x.to_string();
    assert!(text.contains("launched its own copy"), "{text}");
    assert!(text.contains("CR0 (offset 0x158) is 0x31"), "{text}");
    assert!(text.contains("(not measured)"), "{text}");
}

#[test]
fn a_hosts_file_that_does_not_give_the_report_either() {
    let l = launch(1);
    let mut h = l.clone();
    h.policy = Some(0x30001);
    // Only the policy differs: the same digest, which the report also has.
    let x = host_answer(&l, &h, &l.launch_digest());
    assert!(x.matches());
    assert!(
        x.to_string().contains("guest policy 0x30001, not 0x30000"),
        "{x}"
    );
    assert!(
        x.to_string().contains("the launch digest is unaffected"),
        "{x}"
    );
    // Neither file gives the report; one change of the owner's does.
    let r = with_import(&l, 1, Import::Unmeasured).launch_digest();
    let x = host_answer(&l, &h, &r);
    assert!(matches!(
        x.changes.as_deref(),
        Some([Change::Igvm(IgvmChange::PageType { .. })])
    ));
    assert!(
        x.to_string()
            .contains("does not give the reported value either"),
        "{x}"
    );
    // One change of the host's file: its differences and that change.
    let mut h = l.clone();
    h.pages[0].contents = sha(b"host");
    let r = with_import(&h, 1, Import::Unmeasured).launch_digest();
    let x = host_answer(&l, &h, &r);
    let kinds: Vec<_> = x
        .changes
        .as_ref()
        .unwrap()
        .iter()
        .map(Change::kind)
        .collect();
    assert_eq!(kinds, ["page-contents", "page-type"]);
    // Nothing reproduces it: the advice names both files.
    let x = host_answer(&l, &h, &[1; 48]);
    assert_eq!(x.changes, None);
    assert!(x.to_string().contains("nor the host's copy"), "{x}");
}

#[test]
fn json_carries_the_igvm_fields() {
    let l = launch(1);
    let x = answer(&l, &with_import(&l, 4, Import::Cpuid));
    let v = serde_json::to_value(&x).unwrap();
    let c = &v["changes"][0];
    assert_eq!(c["kind"], "page-type");
    assert_eq!(c["directive"], 6);
    assert_eq!(c["gpa"], "0x104000");
    assert_eq!(c["measured"], true);
    assert_eq!(v["igvm"]["file_sha384"], "07".repeat(48));
    assert_eq!(v["ovmf_hash"], "07".repeat(48));
    assert_eq!(v["igvm"]["budget"], IGVM_SEARCH_BUDGET);
    assert!(v["igvm"]["host_file"].is_null());
}
