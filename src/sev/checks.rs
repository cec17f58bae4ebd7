//! Checks of the domain XML for the mistakes that break measurement. Each
//! finding names the element and the fix. The XML comes from the host, so
//! these catch misconfiguration; they never make an untrusted value trusted.

use crate::core::cpu;
use crate::error::{Error, Result};
use crate::sev::policy::SevPolicy;
use crate::source::xml::Domain;

/// Where the owner's SEV-ES VMSAs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmsaKind {
    /// Not SEV-ES, or nothing given yet.
    None,
    /// --vmsa-cpu0/--vmsa-cpu1 files.
    Files,
    /// Built from this CPU signature.
    Signature(u32),
}

/// What the owner gave and what the host reported, for the checks.
#[derive(Debug, Clone)]
pub struct Context {
    /// Refuse insecure configurations (no --insecure).
    pub secure: bool,
    /// The owner gave --kernel (and maybe --initrd/--cmdline).
    pub owner_kernel: bool,
    /// The owner gave --firmware.
    pub owner_firmware: bool,
    /// The policy the measurement is checked with (command line, else reported).
    pub policy: u32,
    /// The owner's SEV-ES VMSA input: files, a CPU signature, or none.
    pub vmsa: VmsaKind,
    /// --num-cpus, if given.
    pub num_cpus: Option<u32>,
    /// The host CPU signature from the capabilities, if reported.
    pub host_signature: Option<u32>,
}

/// Runs every check; the first finding is returned as an error with its exit code.
pub fn check_domain(d: &Domain, ctx: &Context) -> Result<()> {
    check_launch_security(d)?;
    check_firmware(d, ctx)?;
    check_kernel_hashes(d, ctx)?;
    check_policy(d, ctx)?;
    if !SevPolicy::from_bits_retain(ctx.policy).contains(SevPolicy::ES) {
        return Ok(());
    }
    check_sev_es(d, ctx)
}

/// One `<launchSecurity type='sev'>` with the owner's certificate and session.
/// (SEV-SNP domains have their own checks: `crate::snp::domain::check`.)
fn check_launch_security(d: &Domain) -> Result<()> {
    let Some(sev) = d.sev() else {
        return Err(Error::Config(
            "Domain is not configured with SEV launch security: the XML needs exactly one \
             <launchSecurity type='sev'> element"
                .into(),
        ));
    };
    if sev.dh_cert.len() != 1 {
        return Err(Error::Config(
            "Domain must have SEV owner cert to validate measurement: add <dhCert> (the guest \
             owner's PDH certificate) to <launchSecurity>"
                .into(),
        ));
    }
    if sev.session.len() != 1 {
        return Err(Error::Config(
            "Domain must have SEV session data to validate measurement: add <session> (the launch \
             blob made for the owner's TIK/TEK) to <launchSecurity>"
                .into(),
        ));
    }
    Ok(())
}

/// One stateless, read-only firmware the owner names.
fn check_firmware(d: &Domain, ctx: &Context) -> Result<()> {
    let os = d.os.as_ref();
    if os.is_some_and(|o| !o.nvram.is_empty()) && ctx.secure {
        return Err(Error::Insecure(
            "Domain firmware with NVRAM cannot be securely measured: <os><nvram> holds variables the \
             measurement does not cover; use a stateless firmware (<loader stateless='yes'>, e.g. \
             OVMF.amdsev.fd) or pass --insecure"
                .into(),
        ));
    }
    if os.and_then(|o| o.firmware.as_deref()).is_some() && !ctx.owner_firmware {
        return Err(Error::Config(
            "<os firmware='...'> lets the host choose the firmware, so there is no firmware path to \
             trust: give --firmware with the exact image you expect the guest to run"
                .into(),
        ));
    }
    let loaders = os.map(|o| o.loader.as_slice()).unwrap_or_default();
    if loaders.len() != 1 {
        return Err(Error::Config(
            "Domain must have one firmware path: the XML needs exactly one <os><loader>".into(),
        ));
    }
    let loader = &loaders[0];
    if loader.loader_type.as_deref() == Some("pflash") && loader.readonly.as_deref() != Some("yes")
    {
        return Err(Error::Config(
            "<loader type='pflash'> is not readonly='yes': a writable firmware flash is not what was \
             measured; set readonly='yes' (and stateless='yes')"
                .into(),
        ));
    }
    Ok(())
}

/// kernelHashes='yes' exactly when there is direct kernel boot.
fn check_kernel_hashes(d: &Domain, ctx: &Context) -> Result<()> {
    let has_direct_boot = d.kernel().is_some() || d.initrd().is_some() || d.cmdline().is_some();
    if !d.kernel_hashes() {
        if ctx.owner_kernel {
            return Err(Error::Usage(
                "kernel/initrd/cmdline provided but kernel measurement not enabled: the domain's \
                 <launchSecurity> lacks kernelHashes='yes', so QEMU does not measure them; drop \
                 --kernel/--initrd/--cmdline or enable kernelHashes"
                    .into(),
            ));
        }
        if d.kernel().is_some() && ctx.secure {
            return Err(Error::Insecure(
                "direct kernel boot present without measurement: <os><kernel> is set but \
                 <launchSecurity> lacks kernelHashes='yes', so the host can boot any kernel; set \
                 kernelHashes='yes' or pass --insecure"
                    .into(),
            ));
        }
    } else if !has_direct_boot {
        return Err(Error::Config(
            "kernel/initrd/cmdline not provided but kernel measurement is enabled: \
             kernelHashes='yes' needs direct kernel boot (<os><kernel>); remove kernelHashes or add \
             the kernel"
                .into(),
        ));
    }
    Ok(())
}

/// A direct kernel boot that QEMU does not measure, let pass by `--insecure`
/// with no `--kernel` from the owner: the run passes, and must say that
/// nothing about the kernel was checked.
pub fn unmeasured_kernel_warning(d: &Domain, insecure: bool, owner_kernel: bool) -> Option<String> {
    if !insecure || owner_kernel || d.kernel().is_none() || d.kernel_hashes() {
        return None;
    }
    Some(
        "the domain boots a kernel directly (<os><kernel>) but its <launchSecurity> lacks \
         kernelHashes='yes', so QEMU measures neither the kernel, the initrd nor the command \
         line: the host can boot any kernel, and this measurement says nothing about it. \
         --insecure let it pass; set kernelHashes='yes' in the domain and give --kernel (with \
         --initrd/--cmdline) to check them"
            .into(),
    )
}

/// The XML's policy is the one the measurement is checked with.
fn check_policy(d: &Domain, ctx: &Context) -> Result<()> {
    if let Some(xml_policy) = d.policy()? {
        if xml_policy != ctx.policy {
            return Err(Error::Config(format!(
                "<launchSecurity><policy> is {xml_policy:#x}, but the measurement is checked with policy \
                 {:#x}: the guest was not launched with the policy its XML states; check --policy or \
                 the domain",
                ctx.policy
            )));
        }
    }
    Ok(())
}

/// SEV-ES: a VMSA source, the vCPU count and the vCPU signature agree with the XML.
fn check_sev_es(d: &Domain, ctx: &Context) -> Result<()> {
    if ctx.vmsa == VmsaKind::None && ctx.secure {
        return Err(Error::Insecure(
            "the policy has SEV-ES (bit 2) but no VMSA source was given: give --vmsa-cpu0/--vmsa-cpu1, \
             or --cpu-family/--cpu-model/--cpu-stepping; taking the CPU signature from the host needs \
             --insecure"
                .into(),
        ));
    }
    if let (Some(n), Some((current, max))) = (ctx.num_cpus, d.vcpus()?) {
        if n != current {
            let vcpu = if current == max {
                format!("<vcpu>{max}</vcpu>")
            } else {
                format!("<vcpu current='{current}'>{max}</vcpu>")
            };
            return Err(Error::Config(format!(
                "{vcpu} starts {current} vCPUs, each measured as one VMSA, but --num-cpus is {n}; \
                 give --num-cpus {current} or fix the domain"
            )));
        }
    }
    if let VmsaKind::Signature(sig) = ctx.vmsa {
        match d.cpu_mode() {
            Some("host-passthrough") | Some("maximum") => {
                if let Some(host) = ctx.host_signature {
                    if host != sig {
                        return Err(Error::Config(format!(
                            "<cpu mode='{}'> gives the guest the host CPU signature {host:#x} (from the \
                             capabilities), but the VMSAs are built for {sig:#x}; check \
                             --cpu-family/--cpu-model/--cpu-stepping",
                            d.cpu_mode().unwrap_or_default()
                        )));
                    }
                }
            }
            Some("custom") | None => {
                if let Some(model) = d.cpu_model() {
                    if let Some(msig) = cpu::named_model_signature(model) {
                        if msig != sig {
                            return Err(Error::Config(format!(
                                "<cpu><model>{model}</model> has signature {msig:#x}, but the VMSAs are \
                                 built for {sig:#x}; give the family/model/stepping of {model}"
                            )));
                        }
                    }
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}
