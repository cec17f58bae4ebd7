//! What differs between the owner's IGVM file and the host's copy, as
//! QEMU launches each: the pages directive by directive, the VMSAs field
//! by field, and the unmeasured guest policy and ID block.

use super::chain::{runs, Run};
use super::change::{IgvmChange, VmsaCountHow};
use crate::core::igvm::vmsa_fields;
use crate::core::igvm::{IgvmIdBlock, IgvmLaunch, Import, MeasuredPage};

/// Differences listed at most; the rest are counted ([`IgvmChange::More`]).
pub const MAX_DIFFERENCES: usize = 32;

/// Every difference between the owner's launch and the host's, the
/// measured ones first.
pub fn differences(owner: &IgvmLaunch, host: &IgvmLaunch) -> Vec<IgvmChange> {
    let mut out = pages(owner, host);
    out.extend(vmsas(owner, host));
    if out.len() > MAX_DIFFERENCES {
        let more = out.len() - MAX_DIFFERENCES;
        out.truncate(MAX_DIFFERENCES);
        out.push(IgvmChange::More(more));
    }
    if owner.policy != host.policy {
        out.push(IgvmChange::Policy {
            expected: owner.policy,
            host: host.policy,
        });
    }
    if let Some(c) = id_block(owner.id_block.as_ref(), host.id_block.as_ref()) {
        out.push(c);
    }
    out
}

/// The pages, directive run by directive run; when the files have other
/// runs, one [`IgvmChange::Layout`] at the first that differs.
fn pages(owner: &IgvmLaunch, host: &IgvmLaunch) -> Vec<IgvmChange> {
    // In file order: QEMU measures parameter inserts before the page region
    // they follow, and a change to that region moves them.
    let (mut a, mut b) = (runs(&owner.pages), runs(&host.pages));
    a.sort_by_key(|r| r.directive);
    b.sort_by_key(|r| r.directive);
    if a.len() != b.len() {
        let first = a
            .iter()
            .zip(&b)
            .position(|(x, y)| !same_run(owner, host, x, y))
            .unwrap_or(a.len().min(b.len()));
        return vec![IgvmChange::Layout {
            expected: owner.pages.len(),
            host: host.pages.len(),
            directive: a.get(first).map(|r| r.directive),
        }];
    }
    let mut out = Vec::new();
    for (x, y) in a.iter().zip(&b) {
        out.extend(run_differences(
            x.directive,
            &owner.pages[x.start..x.end()],
            &host.pages[y.start..y.end()],
        ));
    }
    out
}

fn same_run(owner: &IgvmLaunch, host: &IgvmLaunch, x: &Run, y: &Run) -> bool {
    owner.pages[x.start..x.end()] == host.pages[y.start..y.end()]
}

/// How one directive's pages differ: its size (a parameter area), its
/// import, its GPA, its contents.
fn run_differences(directive: usize, a: &[MeasuredPage], b: &[MeasuredPage]) -> Vec<IgvmChange> {
    let (Some(fa), Some(fb)) = (a.first(), b.first()) else {
        return vec![];
    };
    if a.len() != b.len() {
        return vec![match (fa.import, fb.import) {
            (Import::Parameter(area), Import::Parameter(_)) => IgvmChange::ParameterArea {
                directive,
                area,
                gpa: fa.gpa,
                expected: a.len(),
                host: b.len(),
            },
            _ => IgvmChange::Layout {
                expected: a.len(),
                host: b.len(),
                directive: Some(directive),
            },
        }];
    }
    let mut out = Vec::new();
    if fa.import != fb.import {
        out.push(IgvmChange::PageType {
            directive,
            gpa: fa.gpa,
            pages: a.len(),
            expected: fa.import,
            host: fb.import,
        });
    }
    if let Some(i) = a.iter().zip(b).position(|(x, y)| x.gpa != y.gpa) {
        out.push(IgvmChange::PageGpa {
            directive,
            pages: a.len(),
            expected: a[i].gpa,
            host: b[i].gpa,
        });
    }
    // Another import changes the contents too: said once, as the import.
    if fa.import == fb.import {
        let differing: Vec<&MeasuredPage> = a
            .iter()
            .zip(b)
            .filter(|(x, y)| x.contents != y.contents)
            .map(|(x, _)| x)
            .collect();
        if let Some(first) = differing.first() {
            out.push(IgvmChange::PageContents {
                directive,
                gpa: first.gpa,
                pages: differing.len(),
            });
        }
    }
    out
}

/// The VMSAs: their count, then each field of each vCPU both files start.
fn vmsas(owner: &IgvmLaunch, host: &IgvmLaunch) -> Vec<IgvmChange> {
    let mut out = Vec::new();
    if owner.vmsas.len() != host.vmsas.len() {
        out.push(IgvmChange::VmsaCount {
            file: owner.vmsas.len(),
            host: host.vmsas.len(),
            how: VmsaCountHow::HostFile,
        });
    }
    for (a, b) in owner.vmsas.iter().zip(&host.vmsas) {
        for field in vmsa_fields::differences(&a.page, &b.page) {
            out.push(IgvmChange::VmsaField {
                vmsa: Some((a.vp_index, a.directive)),
                field,
                expected: field.value(&a.page),
                host: field.value(&b.page),
            });
        }
    }
    out
}

fn id_block(a: Option<&IgvmIdBlock>, b: Option<&IgvmIdBlock>) -> Option<IgvmChange> {
    let fields = match (a, b) {
        (None, None) => return None,
        (Some(_), None) => vec!["absent in the host's file"],
        (None, Some(_)) => vec!["present only in the host's file"],
        (Some(a), Some(b)) => {
            let mut f = Vec::new();
            for (differs, name) in [
                (a.ld != b.ld, "LD"),
                (a.family_id != b.family_id, "FAMILY_ID"),
                (a.image_id != b.image_id, "IMAGE_ID"),
                (a.guest_svn != b.guest_svn, "GUEST_SVN"),
                (
                    a.author_key_enabled != b.author_key_enabled,
                    "AUTHOR_KEY_EN",
                ),
            ] {
                if differs {
                    f.push(name);
                }
            }
            if f.is_empty() {
                return None;
            }
            f
        }
    };
    Some(IgvmChange::IdBlock {
        fields,
        host_ld: b.map(|b| b.ld),
    })
}
