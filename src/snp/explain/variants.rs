//! The variants of each launch input the search tries: the kernel hashes
//! page, the guest features, the VMSA configurations and the VMM.

use std::collections::HashSet;

use super::{Change, CmdlineChange, OwnerLaunch, SnpExplainError};
use crate::core::cpu;
use crate::core::kernel_hashes::{self, KernelHashes};
use crate::core::snp::{self, Ld};
use crate::core::vmsa::{Rdx, VmmType, VmsaConfig, VmsaForm};

/// SEV_FEATURES bits named in the SNP ABI and APM (measurement.md §5); each is
/// toggled in turn.
const NAMED_FEATURE_BITS: u32 = 16;
const SNP_ACTIVE: u64 = 1 << 0;
const DEBUG_SWAP: u64 = 1 << 5;
const SECURE_TSC: u64 = 1 << 9;

/// One way the host may have filled the kernel hashes page.
pub(super) struct TableVariant {
    pub(super) changes: Vec<Change>,
    pub(super) hashes: Option<KernelHashes>,
}

/// The kernel hashes pages worth trying, the owner's first.
pub(super) fn table_variants(owner: &OwnerLaunch) -> Vec<TableVariant> {
    let Some(boot) = owner.kernel else {
        return vec![TableVariant {
            changes: vec![],
            hashes: None,
        }];
    };
    let mut v = vec![
        TableVariant {
            changes: vec![],
            hashes: Some(boot.hashes),
        },
        TableVariant {
            changes: vec![Change::NoKernelHashes],
            hashes: None,
        },
    ];
    let no_initrd = KernelHashes {
        initrd: kernel_hashes::empty_digest(),
        ..boot.hashes
    };
    if boot.initrd {
        v.push(TableVariant {
            changes: vec![Change::NoInitrd],
            hashes: Some(no_initrd),
        });
    }
    let owner_line = boot.cmdline.unwrap_or("");
    let mut seen = vec![owner_line.to_string()];
    for how in CmdlineChange::ALL {
        let line = how.apply(owner_line);
        if seen.contains(&line) {
            continue;
        }
        let cmdline = kernel_hashes::cmdline_digest(line.as_bytes());
        seen.push(line.clone());
        let change = Change::Cmdline { how, host: line };
        v.push(TableVariant {
            changes: vec![change.clone()],
            hashes: Some(KernelHashes {
                cmdline,
                ..boot.hashes
            }),
        });
        if boot.initrd {
            v.push(TableVariant {
                changes: vec![change, Change::NoInitrd],
                hashes: Some(KernelHashes {
                    cmdline,
                    ..no_initrd
                }),
            });
        }
    }
    v
}

/// The guest features tried: the owner's first, then the values hosts set.
pub(super) fn feature_candidates(owner: u64) -> Vec<u64> {
    let mut v = vec![
        owner,
        SNP_ACTIVE,
        SNP_ACTIVE | DEBUG_SWAP,
        owner | SECURE_TSC,
        owner | DEBUG_SWAP,
    ];
    for bit in 0..64 {
        if bit < NAMED_FEATURE_BITS || owner & (1 << bit) != 0 {
            v.push(owner ^ (1 << bit));
        }
    }
    let mut seen = HashSet::new();
    v.retain(|f| seen.insert(*f));
    v
}

/// A VMSA configuration to try under one VMM, with its page contents.
pub(super) struct VmsaVariant {
    pub(super) changes: Vec<Change>,
    pub(super) bsp: Ld,
    pub(super) ap: Ld,
}

/// The vCPU signatures worth trying under a VMM whose RDX is `rdx`: the
/// owner's (if any), then each named model's.
fn signature_variants(
    owner: &OwnerLaunch,
    vmm: VmmType,
    rdx: Rdx,
) -> Result<Vec<(u32, Option<Change>)>, SnpExplainError> {
    let owner_sig = owner.signature_given.then_some(owner.vmsa.cpu_signature);
    let mut sigs: Vec<(u32, Option<Change>)> = Vec::new();
    if let Some(s) = owner_sig {
        sigs.push((s, None));
    }
    for (_, s) in cpu::NAMED_MODELS {
        if !sigs.iter().any(|(x, _)| x == s) {
            sigs.push((
                *s,
                Some(Change::VcpuSignature {
                    expected: owner_sig,
                    host: *s,
                }),
            ));
        }
    }
    if matches!(rdx, Rdx::Fixed(_)) {
        // The signature is not in the VMSA: one entry, no change.
        sigs = vec![(owner.vmsa.cpu_signature, None)];
    } else if owner_sig.is_none() && vmm == owner.vmm {
        return Err(SnpExplainError::NoSignature(vmm));
    }
    Ok(sigs)
}

/// The VMSA forms worth trying: the owner's, and the other where the VMM's
/// FPU words follow the form.
fn form_variants(owner: &OwnerLaunch, fpu_from_form: bool) -> Vec<(VmsaForm, Option<Change>)> {
    let other = match owner.vmsa.form {
        VmsaForm::Init2 => VmsaForm::Legacy,
        VmsaForm::Legacy => VmsaForm::Init2,
    };
    let mut f = vec![(owner.vmsa.form, None)];
    if fpu_from_form {
        f.push((
            other,
            Some(Change::VmsaForm {
                expected: owner.vmsa.form,
                host: other,
            }),
        ));
    }
    f
}

/// The guest features worth trying, each with its change from the owner's.
fn feature_variants(owner: &OwnerLaunch) -> Vec<(u64, Option<Change>)> {
    feature_candidates(owner.vmsa.sev_features)
        .into_iter()
        .map(|f| {
            let change = (f != owner.vmsa.sev_features).then_some(Change::GuestFeatures {
                expected: owner.vmsa.sev_features,
                host: f,
            });
            (f, change)
        })
        .collect()
}

/// The VMSA configurations worth trying under `vmm` with at most `budget`
/// changes, fewest changes first, each distinct pair of pages once (ec2 and
/// gce ignore the signature and the form, so those variants collapse).
pub(super) fn vmsa_variants(
    owner: &OwnerLaunch,
    vmm: VmmType,
    budget: usize,
) -> Result<Vec<VmsaVariant>, SnpExplainError> {
    let profile = vmm.profile();
    let owner_sig = owner.signature_given.then_some(owner.vmsa.cpu_signature);
    let sigs = signature_variants(owner, vmm, profile.rdx)?;
    let forms = form_variants(owner, profile.fpu_from_form);
    let features = feature_variants(owner);

    let mut configs: Vec<(Vec<Change>, VmsaConfig)> = Vec::new();
    for (sig, sc) in &sigs {
        for (form, fc) in &forms {
            for (feat, xc) in &features {
                let changes: Vec<Change> = [sc, xc, fc].into_iter().flatten().cloned().collect();
                // A signature is needed where RDX holds it: a launch whose
                // owner gave none (ec2 with no --vcpu-type) moved to QEMU
                // must name one, which is a change of its own.
                let needs_sig = matches!(profile.rdx, Rdx::CpuSignature) && owner_sig.is_none();
                if changes.len() > budget || (needs_sig && sc.is_none()) {
                    continue;
                }
                configs.push((
                    changes,
                    VmsaConfig {
                        form: *form,
                        cpu_signature: *sig,
                        sev_features: *feat,
                    },
                ));
            }
        }
    }
    configs.sort_by_key(|(c, _)| c.len());
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(configs.len());
    for (changes, cfg) in configs {
        let (bsp, ap) = snp::vmsa_contents(owner.firmware, &profile, &cfg)?;
        if seen.insert((bsp, ap)) {
            out.push(VmsaVariant { changes, bsp, ap });
        }
    }
    Ok(out)
}

/// The VMMs tried: the owner's first, then each other, as a change.
pub(super) fn vmm_variants(owner: &OwnerLaunch) -> Vec<(VmmType, Option<Change>)> {
    let mut vmms = vec![(owner.vmm, None)];
    for v in [VmmType::Qemu, VmmType::Ec2, VmmType::Gce] {
        if v != owner.vmm {
            vmms.push((
                v,
                Some(Change::Vmm {
                    expected: owner.vmm,
                    host: v,
                }),
            ));
        }
    }
    vmms
}
