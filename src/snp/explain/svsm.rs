//! The explainer for the OVMF + COCONUT-SVSM form (`snp-digest --svsm`):
//! which of the inputs that form has the host changed. The OVMF image comes
//! first in the chain and is hashed once ([`SvsmOwner::ovmf_hash`]); the
//! SVSM image's page digests are kept ([`SvsmOwner::svsm_pages`]), so laying
//! the image at another address (another OVMF_VARS size) costs one
//! PAGE_INFO per page, and the vCPU count one per vCPU.
//!
//! What varies: the vCPU count (1 to [`MAX_VCPUS_TRIED`]), the vCPU
//! signature (every named QEMU model), and the OVMF_VARS size (the common
//! sizes [`COMMON_VARS_SIZES`] and every whole page within
//! [`VARS_PAGE_STEPS`] pages of the owner's). The guest features, the VMM
//! and the VMSA form have one value in this form; the firmware images
//! cannot be varied, and the answer says so when nothing matches.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Change, FirmwareForm, SnpExplainError, SnpExplanation, MAX_CHANGES, MAX_VCPUS_TRIED};
use crate::core::cpu;
use crate::core::snp::{self, GuestContext, Ld, PageType, SvsmImage, SvsmLaunch, SvsmLayout};

/// OVMF_VARS sizes found in builds: edk2's 128 KiB (the 2 MiB OVMF), 528
/// KiB (the 4 MiB OVMF, 540672 bytes), 768 KiB, and 1, 2 and 4 MiB.
pub const COMMON_VARS_SIZES: [u64; 6] =
    [128 << 10, 528 << 10, 768 << 10, 1 << 20, 2 << 20, 4 << 20];
/// Whole pages either side of the owner's OVMF_VARS size tried.
pub const VARS_PAGE_STEPS: u64 = 64;

const PAGE: u64 = snp::PAGE_LEN as u64;

/// The owner's expected OVMF + SVSM launch, with both images hashed.
#[derive(Debug, Clone, Copy)]
pub struct SvsmOwner<'a> {
    /// The launch digest after the OVMF image's pages.
    pub ovmf_hash: Ld,
    /// The SHA-384 of each page of the SVSM image, in order.
    pub svsm_pages: &'a [Ld],
    /// The SVSM image's SVSM info entry and SEV metadata.
    pub image: &'a SvsmImage,
    /// The images' sizes, the OVMF_VARS size among them.
    pub layout: SvsmLayout,
    /// vCPUs at launch.
    pub vcpus: u32,
    /// The vCPU signature (RDX of every VMSA).
    pub cpu_signature: u32,
}

impl SvsmOwner<'_> {
    fn launch(&self) -> SvsmLaunch<'_> {
        SvsmLaunch {
            image: self.image,
            layout: self.layout,
            vcpus: self.vcpus,
            cpu_signature: self.cpu_signature,
        }
    }
}

/// The OVMF_VARS sizes tried, the owner's first, each that lays the SVSM
/// image out whole once.
fn vars_variants(owner: &SvsmOwner) -> Vec<(u64, Option<Change>)> {
    let own = owner.layout.vars_len;
    let mut sizes = vec![own];
    sizes.extend(COMMON_VARS_SIZES);
    for k in 1..=VARS_PAGE_STEPS {
        sizes.extend(
            [own.checked_sub(k * PAGE), own.checked_add(k * PAGE)]
                .into_iter()
                .flatten(),
        );
    }
    let mut out: Vec<(u64, Option<Change>)> = Vec::with_capacity(sizes.len());
    for v in sizes {
        let fits = SvsmLayout {
            vars_len: v,
            ..owner.layout
        }
        .svsm_gpa()
        .is_ok();
        if fits && !out.iter().any(|(x, _)| *x == v) {
            let change = (v != own).then_some(Change::VarsSize {
                expected: own,
                host: v,
            });
            out.push((v, change));
        }
    }
    out
}

/// The vCPU signatures tried: the owner's, then each named model's.
fn signature_variants(owner: &SvsmOwner) -> Vec<(u32, Option<Change>)> {
    let mut sigs = vec![(owner.cpu_signature, None)];
    for (_, s) in cpu::NAMED_MODELS {
        if !sigs.iter().any(|(x, _)| x == s) {
            sigs.push((
                *s,
                Some(Change::VcpuSignature {
                    expected: Some(owner.cpu_signature),
                    host: *s,
                }),
            ));
        }
    }
    sigs
}

/// What one OVMF_VARS size found: the fewest changes that give the reported
/// value, and how many digests it compared.
type PartResult = (Option<Vec<Change>>, usize);

/// Every signature and vCPU count with the SVSM image laid out for one
/// OVMF_VARS size.
fn search_vars(
    owner: &SvsmOwner,
    reported: &Ld,
    vars: &(u64, Option<Change>),
    sigs: &[(u32, Option<Change>)],
    max_vcpus: u32,
) -> Result<PartResult, SnpExplainError> {
    let gpa = SvsmLayout {
        vars_len: vars.0,
        ..owner.layout
    }
    .svsm_gpa()?;
    let mut after_image = GuestContext::from_ld(owner.ovmf_hash);
    snp::measure_svsm_image(&mut after_image, owner.image, gpa, owner.svsm_pages);
    let mut best: Option<Vec<Change>> = None;
    let mut tried = 0usize;
    for (sig, sig_change) in sigs {
        let fixed: Vec<Change> = [&vars.1, sig_change]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if fixed.len() > MAX_CHANGES || best.as_ref().is_some_and(|b| b.len() <= fixed.len()) {
            continue;
        }
        let contents = snp::svsm_vmsa_contents(owner.image, gpa, *sig);
        let mut g = after_image;
        for n in 1..=max_vcpus {
            g.update(PageType::Vmsa, snp::VMSA_GPA, &contents);
            tried += 1;
            let total = fixed.len() + usize::from(n != owner.vcpus);
            if g.ld() != *reported || best.as_ref().is_some_and(|b| b.len() <= total) {
                continue;
            }
            let mut changes = fixed.clone();
            if n != owner.vcpus {
                changes.push(Change::Vcpus {
                    expected: owner.vcpus,
                    host: n,
                });
            }
            best = Some(changes);
        }
    }
    Ok((best, tried))
}

/// Searches the OVMF_VARS sizes on up to [`snp::MAX_HASH_THREADS`] threads;
/// a result for each size searched, with its index.
fn search_all(
    owner: &SvsmOwner,
    reported: &Ld,
    vars: &[(u64, Option<Change>)],
    sigs: &[(u32, Option<Change>)],
    max_vcpus: u32,
) -> Vec<(usize, Result<PartResult, SnpExplainError>)> {
    let threads = snp::default_hash_threads().min(vars.len()).max(1);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(v) = vars.get(i) else { break };
                        done.push((i, search_vars(owner, reported, v, sigs, max_vcpus)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

fn searched_words(max_vcpus: u32) -> String {
    format!(
        "vCPU counts 1 to {max_vcpus}, every named vCPU model, OVMF_VARS sizes of 128 KiB, 528 \
         KiB, 768 KiB, 1 MiB, 2 MiB and 4 MiB and every whole page within {VARS_PAGE_STEPS} \
         pages of the expected size; up to {MAX_CHANGES} of these at once with any vCPU count"
    )
}

/// Compares the owner's OVMF + SVSM launch with a report's MEASUREMENT and,
/// when they differ, searches for the smallest change of the inputs that
/// gives the reported value, in the same answer as the OVMF form's
/// [`explain`](super::explain). Errors only when the owner's own launch
/// cannot be measured.
pub fn explain_svsm(owner: &SvsmOwner, reported: &Ld) -> Result<SnpExplanation, SnpExplainError> {
    let computed = snp::svsm_launch_digest(owner.ovmf_hash, owner.svsm_pages, &owner.launch())?;
    let mut x = SnpExplanation::start(*reported, computed, owner.ovmf_hash, FirmwareForm::OvmfSvsm);
    if x.matches() {
        return Ok(x);
    }
    let max_vcpus = MAX_VCPUS_TRIED.max(owner.vcpus);
    let vars = vars_variants(owner);
    let sigs = signature_variants(owner);
    // The owner's OVMF_VARS size alone first: every other size is a change
    // of its own, so a match here with at most one change is the answer.
    let (first, tried) = search_vars(owner, reported, &vars[0], &sigs, max_vcpus)?;
    x.variants_tried += tried;
    x.searched = searched_words(max_vcpus);
    if first.as_ref().is_some_and(|c| c.len() <= 1) {
        x.changes = first;
        return Ok(x);
    }
    let rest = &vars[1..];
    let results = search_all(owner, reported, rest, &sigs, max_vcpus);
    if results.len() != rest.len() {
        return Err(SnpExplainError::Incomplete);
    }
    let mut found: Vec<(usize, Vec<Change>)> = first.map(|c| (0, c)).into_iter().collect();
    for (i, r) in results {
        let (best, n) = r?;
        x.variants_tried += n;
        if let Some(b) = best {
            found.push((i + 1, b));
        }
    }
    // Fewest changes first, then the size tried first.
    x.changes = found
        .into_iter()
        .min_by_key(|(i, b)| (b.len(), *i))
        .map(|(_, b)| b);
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ovmf::MetadataSection;

    fn image() -> SvsmImage {
        SvsmImage {
            sections: vec![
                MetadataSection {
                    gpa: 0x80_0000,
                    size: 0x1000,
                    kind: 2,
                },
                MetadataSection {
                    gpa: 0x80_1000,
                    size: 0x1000,
                    kind: 3,
                },
            ],
            entry_offset: 0x40,
        }
    }

    fn owner<'a>(image: &'a SvsmImage, pages: &'a [Ld]) -> SvsmOwner<'a> {
        SvsmOwner {
            ovmf_hash: [3; 48],
            svsm_pages: pages,
            image,
            layout: SvsmLayout {
                ovmf_len: 0x20_0000,
                vars_len: 528 << 10,
                svsm_len: 0x3000,
            },
            vcpus: 4,
            cpu_signature: 0xA00F11,
        }
    }

    fn digest(o: &SvsmOwner) -> Ld {
        snp::svsm_launch_digest(o.ovmf_hash, o.svsm_pages, &o.launch()).unwrap()
    }

    #[test]
    fn vars_sizes_are_bounded_whole_and_fit() {
        let img = image();
        let pages = [[1; 48], [2; 48], [3; 48]];
        let o = owner(&img, &pages);
        let v = vars_variants(&o);
        assert_eq!(v[0], (528 << 10, None));
        assert!(v.len() <= 1 + COMMON_VARS_SIZES.len() + 2 * VARS_PAGE_STEPS as usize);
        assert!(v.iter().all(|(s, _)| *s > 0 && s % PAGE == 0));
        // A size near the bottom of memory: nothing below zero or past GPA 0.
        let mut low = o;
        low.layout.vars_len = 0x1000;
        let v = vars_variants(&low);
        assert!(v.iter().all(|(s, _)| *s > 0));
        let mut high = o;
        high.layout.vars_len = 0xFFE0_0000 - 0x3000;
        assert!(vars_variants(&high).iter().all(|(s, _)| {
            SvsmLayout {
                vars_len: *s,
                ..high.layout
            }
            .svsm_gpa()
            .is_ok()
        }));
    }

    #[test]
    fn each_change_is_named() {
        let img = image();
        let pages = [[1; 48], [2; 48], [3; 48]];
        let o = owner(&img, &pages);
        let host = |f: &dyn Fn(&mut SvsmOwner)| {
            let mut h = o;
            f(&mut h);
            explain_svsm(&o, &digest(&h)).unwrap().changes.unwrap()
        };
        assert_eq!(host(&|_| {}), vec![]);
        assert_eq!(
            host(&|h| h.vcpus = 2),
            vec![Change::Vcpus {
                expected: 4,
                host: 2
            }]
        );
        assert_eq!(
            host(&|h| h.layout.vars_len = 128 << 10),
            vec![Change::VarsSize {
                expected: 528 << 10,
                host: 128 << 10
            }]
        );
        assert_eq!(
            host(&|h| {
                h.layout.vars_len += 3 * PAGE;
                h.cpu_signature = 0xA10F10;
                h.vcpus = 1;
            }),
            vec![
                Change::VarsSize {
                    expected: 528 << 10,
                    host: (528 << 10) + 3 * PAGE
                },
                Change::VcpuSignature {
                    expected: Some(0xA00F11),
                    host: 0xA10F10
                },
                Change::Vcpus {
                    expected: 4,
                    host: 1
                }
            ]
        );
        let x = explain_svsm(&o, &[0; 48]).unwrap();
        assert_eq!(x.changes, None);
        assert!(x.to_string().contains("another OVMF or SVSM build"), "{x}");
    }
}
