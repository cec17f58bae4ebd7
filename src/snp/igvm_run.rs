//! The main command on an SEV-SNP guest that QEMU launches from an IGVM
//! file (`--qmp ... --igvm FILE`): QOM names the file QEMU loaded; the
//! owner's copy is measured, the host's copy compared with it when it can be
//! read, and the vCPU count, the policy and the file's ID block judged, all
//! before the guest's first `cont`.

use crate::core::hex;
use crate::core::igvm::Finding;
use crate::error::{Error, Result};
use crate::snp::digest::ComputedLaunch;
use crate::snp::igvm::{self, ComputedIgvm, HostIgvm, IgvmInput};
use crate::snp::run::SnpOwner;
use crate::source::qmp_igvm::QomIgvm;
use crate::source::SnpHostReport;

/// The expected launch of an IGVM guest; `None` when neither the owner nor
/// QEMU speaks of an IGVM file (an OVMF launch).
pub(crate) fn igvm_launch(
    owner: &SnpOwner,
    host: &SnpHostReport,
    warnings: &mut Vec<String>,
) -> Result<Option<ComputedLaunch>> {
    let loaded = match (&owner.igvm, &host.igvm) {
        (None, Some(QomIgvm::File { path, .. })) => {
            return Err(Error::Config(format!(
                "QEMU launches this guest from the IGVM file '{path}', not from firmware: give your own copy of that file with --igvm FILE"
            )))
        }
        (None, _) => return Ok(None),
        (Some(_), loaded) => loaded,
    };
    let path = match loaded {
        Some(QomIgvm::File { path, .. }) => path,
        Some(QomIgvm::NotConfigured { unused_objects }) => {
            let unused = if unused_objects.is_empty() {
                String::new()
            } else {
                format!(
                    " (the igvm-cfg object {} exists but the machine does not use it: QEMU needs -machine ...,igvm-cfg=ID)",
                    unused_objects.join(", ")
                )
            };
            return Err(Error::Config(format!(
                "--igvm was given, but QEMU loads no IGVM file{unused}: the guest launches from firmware, so give --firmware, or start QEMU with -object igvm-cfg"
            )));
        }
        Some(QomIgvm::NotSupported { qemu_says, .. }) => {
            return Err(Error::Config(format!(
                "--igvm was given, but this QEMU has no IGVM support ({qemu_says}): QEMU 10.1 or later built with IGVM loads IGVM files"
            )))
        }
        None => {
            return Err(Error::Config(
                "--igvm was given, but the host did not say which IGVM file QEMU loads (QOM did not answer, or the guest is a libvirt domain, whose XML does not describe IGVM launches): validate it through QEMU's monitor with --qmp".into(),
            ))
        }
    };
    let c = computed(owner, host, path, warnings)?;
    Ok(Some(ComputedLaunch::from_igvm(c)))
}

/// The owner's file measured for the vCPUs QEMU runs, with the host's copy
/// compared when it was read.
fn computed(
    owner: &SnpOwner,
    host: &SnpHostReport,
    path: &str,
    warnings: &mut Vec<String>,
) -> Result<ComputedIgvm> {
    let file = owner.igvm.clone().unwrap_or_default();
    let mut c = igvm::compute(&IgvmInput {
        file,
        vcpus: None,
        policy: owner.policy,
        check: false,
        host_file: None,
    })?;
    warnings.append(&mut c.warnings.clone());
    let vmsas = c.launch.vmsas.len() as u32;
    if let Some(n) = host.vcpu_count.filter(|n| *n != vmsas) {
        return Err(Error::Config(format!(
            "QEMU runs {n} vCPUs, but the IGVM file has {vmsas} VMSA(s): KVM measures a VMSA for every vCPU, and the vCPUs the file has none for start from QEMU's reset state, which is not in the file; start the guest with -smp {vmsas}"
        )));
    }
    if let (Some(q), Some(p)) = (&host.query_sev, c.launch.policy) {
        if q.policy != p {
            return Err(Error::Config(format!(
                "QEMU reports guest policy {:#x}, but the IGVM file carries {p:#x}, which QEMU launches an IGVM guest with: the host loaded another file or overrode its policy",
                q.policy
            )));
        }
    }
    compare_host_copy(&mut c, host, path, warnings)?;
    if let Some(f @ Finding::IdBlockDigest { .. }) = c
        .launch
        .findings
        .iter()
        .find(|f| matches!(f, Finding::IdBlockDigest { .. }))
    {
        return Err(Error::AttestationFailed(format!(
            "the IGVM file's ID block does not fit its launch: {f}"
        )));
    }
    Ok(c)
}

/// The host's copy against the owner's: the same launch passes; another
/// launch is refused before the guest runs, naming what differs.
fn compare_host_copy(
    c: &mut ComputedIgvm,
    host: &SnpHostReport,
    path: &str,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let bytes = match &host.igvm_copy {
        Some(Ok(b)) => b,
        Some(Err(why)) => {
            warnings.push(format!(
                "the host's IGVM file '{path}' was not compared with yours ({why}); the launch digest and the report decide"
            ));
            return Ok(());
        }
        None => return Ok(()),
    };
    let h = HostIgvm::from_bytes(&format!("'{path}'"), bytes)?;
    let same_bytes = h.sha384 == c.file_sha384;
    let host_ld = h.launch.launch_digest();
    c.host = Some(h);
    if same_bytes {
        return Ok(());
    }
    let words = c.host_comparison().unwrap_or_default();
    if host_ld != c.ld {
        return Err(Error::AttestationFailed(format!(
            "QEMU loaded another IGVM file than yours, with launch digest {} instead of {}: {words}",
            hex(&host_ld),
            hex(&c.ld)
        )));
    }
    warnings.push(format!(
        "the host's IGVM file differs from yours but measures the same: {words}"
    ));
    Ok(())
}
