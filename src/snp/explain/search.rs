//! The search: every combination of the variants, within [`MAX_CHANGES`]
//! and with every vCPU count, for the one that gives the reported value.

use super::variants::{table_variants, vmm_variants, vmsa_variants, TableVariant, VmsaVariant};
use super::{
    Change, FirmwareForm, OwnerLaunch, SnpExplainError, SnpExplanation, MAX_CHANGES,
    MAX_VCPUS_TRIED,
};
use crate::core::snp::{self, GuestContext, Ld, PageType, SnpLaunch};
use crate::core::vmsa::{Rdx, VmmType};

/// The launch digest of the owner's inputs.
fn owner_digest(owner: &OwnerLaunch) -> Result<Ld, SnpExplainError> {
    if matches!(owner.vmm.profile().rdx, Rdx::CpuSignature) && !owner.signature_given {
        return Err(SnpExplainError::NoSignature(owner.vmm));
    }
    let hashes = owner.kernel.map(|k| k.hashes);
    let launch = SnpLaunch {
        vcpus: owner.vcpus,
        vmm: owner.vmm.profile(),
        vmsa: owner.vmsa,
        kernel: hashes.as_ref(),
    };
    Ok(snp::launch_digest(
        owner.ovmf_hash,
        owner.firmware,
        &launch,
    )?)
}

/// One part of the search: a VMM and a kernel hashes page, with every VMSA
/// configuration that keeps within [`MAX_CHANGES`] and every vCPU count.
struct Part<'a> {
    vmm: VmmType,
    vmm_change: Option<&'a Change>,
    table: &'a TableVariant,
    configs: &'a [VmsaVariant],
}

/// What one part found: the fewest changes that give the reported value,
/// and how many digests it compared.
type PartResult = (Option<Vec<Change>>, usize);

fn search_part(
    owner: &OwnerLaunch,
    reported: &Ld,
    part: &Part,
    max_vcpus: u32,
) -> Result<PartResult, SnpExplainError> {
    let fixed = usize::from(part.vmm_change.is_some()) + part.table.changes.len();
    let launch = SnpLaunch {
        vcpus: 1,
        vmm: part.vmm.profile(),
        vmsa: owner.vmsa,
        kernel: part.table.hashes.as_ref(),
    };
    let mut after_sections = GuestContext::from_ld(owner.ovmf_hash);
    snp::measure_sections(&mut after_sections, owner.firmware, &launch)?;
    let mut best: Option<Vec<Change>> = None;
    let mut tried = 0usize;
    for c in part
        .configs
        .iter()
        .filter(|c| fixed + c.changes.len() <= MAX_CHANGES)
    {
        let n_changes = fixed + c.changes.len();
        // Nothing here can beat a match already found with as few changes.
        if best.as_ref().is_some_and(|b| b.len() <= n_changes) {
            continue;
        }
        let mut g = after_sections;
        g.update(PageType::Vmsa, snp::VMSA_GPA, &c.bsp);
        for n in 1..=max_vcpus {
            if n > 1 {
                g.update(PageType::Vmsa, snp::VMSA_GPA, &c.ap);
            }
            tried += 1;
            if g.ld() != *reported {
                continue;
            }
            let total = n_changes + usize::from(n != owner.vcpus);
            if best.as_ref().is_some_and(|b| b.len() <= total) {
                continue;
            }
            let mut changes: Vec<Change> = part
                .vmm_change
                .into_iter()
                .chain(&part.table.changes)
                .chain(&c.changes)
                .cloned()
                .collect();
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

/// The parts in the order a single thread would search them: the owner's
/// VMM first, the owner's kernel hashes page first.
fn parts_in_order<'a>(
    vmms: &'a [(VmmType, Option<Change>)],
    tables: &'a [TableVariant],
    configs: &'a [Vec<VmsaVariant>],
) -> Vec<Part<'a>> {
    let mut parts = Vec::new();
    for ((vmm, vmm_change), configs) in vmms.iter().zip(configs) {
        for table in tables {
            if usize::from(vmm_change.is_some()) + table.changes.len() <= MAX_CHANGES {
                parts.push(Part {
                    vmm: *vmm,
                    vmm_change: vmm_change.as_ref(),
                    table,
                    configs,
                });
            }
        }
    }
    parts
}

/// Searches the parts on up to [`snp::MAX_HASH_THREADS`] threads, each
/// taking the next part left; a result for each part searched, with its
/// index.
fn search_parts(
    owner: &OwnerLaunch,
    reported: &Ld,
    parts: &[Part],
    max_vcpus: u32,
) -> Vec<(usize, Result<PartResult, SnpExplainError>)> {
    let threads = snp::default_hash_threads().min(parts.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(part) = parts.get(i) else { break };
                        done.push((i, search_part(owner, reported, part, max_vcpus)));
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

/// What the search varied, in words.
fn searched_words(owner: &OwnerLaunch, max_vcpus: u32) -> String {
    format!(
        "vCPU counts 1 to {max_vcpus}, every named vCPU model, the VMM types qemu, ec2 and gce, \
         guest features 0x1, 0x21, with Secure TSC or DebugSwap added and with each of bits 0 to \
         15 toggled, both VMSA forms{}; up to {MAX_CHANGES} of these at once with any vCPU count",
        match owner.kernel {
            Some(k) if k.initrd => ", kernel hashes off, command line whitespace, no initrd",
            Some(_) => ", kernel hashes off, command line whitespace",
            None => "",
        }
    )
}

/// Compares the owner's launch with a report's MEASUREMENT and, when they
/// differ, searches for the smallest change of the inputs that gives the
/// reported value. Errors only when the owner's own launch cannot be
/// measured. The search runs on up to [`snp::MAX_HASH_THREADS`] threads;
/// its answer does not depend on how many.
pub fn explain(owner: &OwnerLaunch, reported: &Ld) -> Result<SnpExplanation, SnpExplainError> {
    let computed = owner_digest(owner)?;
    let mut x = SnpExplanation::start(*reported, computed, owner.ovmf_hash, FirmwareForm::Ovmf);
    if x.matches() {
        return Ok(x);
    }
    let tables = table_variants(owner);
    let max_vcpus = MAX_VCPUS_TRIED.max(owner.vcpus);
    let vmms = vmm_variants(owner);
    let configs = vmms
        .iter()
        .map(|(v, change)| vmsa_variants(owner, *v, MAX_CHANGES - usize::from(change.is_some())))
        .collect::<Result<Vec<_>, _>>()?;
    let parts = parts_in_order(&vmms, &tables, &configs);
    let results = search_parts(owner, reported, &parts, max_vcpus);
    if results.len() != parts.len() {
        return Err(SnpExplainError::Incomplete);
    }
    let mut found: Vec<(usize, Vec<Change>)> = Vec::new();
    let mut tried = 1usize;
    for (i, r) in results {
        let (best, n) = r?;
        tried += n;
        if let Some(b) = best {
            found.push((i, b));
        }
    }
    // Fewest changes first, then the part a single thread would reach first.
    x.changes = found
        .into_iter()
        .min_by_key(|(i, b)| (b.len(), *i))
        .map(|(_, b)| b);
    x.variants_tried = tried;
    x.searched = searched_words(owner, max_vcpus);
    Ok(x)
}
