//! The domain checks: the owner's requirements on the policy, the values
//! the domain declares, and the mistakes that make a launch fail or leave
//! it unattestable, the first finding an error.

use super::decode::shown;
use super::SnpDomain;
use crate::core::snp_report::PolicyFlags;
use crate::error::{Error, Result};
use crate::source::xml::Domain;

/// What the owner gave, for the checks.
#[derive(Debug, Clone, Default)]
pub struct SnpContext {
    /// Refuse insecure configurations (no --insecure).
    pub secure: bool,
    /// `--ignore-config`: only the owner's requirements on the policy are
    /// checked (DEBUG, MIGRATE_MA, --policy), not the form of the domain.
    pub ignore_config: bool,
    /// The owner gave --firmware.
    pub owner_firmware: bool,
    /// The owner gave --kernel (and maybe --initrd/--cmdline).
    pub owner_kernel: bool,
    /// `--cmdline` (with --kernel; none means QEMU gets no -append).
    pub owner_cmdline: Option<String>,
    /// `--policy`: the SNP policy the owner expects.
    pub owner_policy: Option<u64>,
    /// `--num-cpus`.
    pub num_cpus: Option<u32>,
    /// The vCPU signature the owner gave (--cpu-family/--cpu-model/--cpu-stepping).
    pub vcpu_signature: Option<u32>,
    /// `--allow-debug`.
    pub allow_debug: bool,
    /// `--allow-migrate-ma`.
    pub allow_migrate_ma: bool,
    /// The host CPU signature from libvirt's capabilities: what
    /// `<cpu mode='host-passthrough'|'maximum'>` gives the guest.
    pub host_signature: Option<u32>,
    /// The policy libvirt reports for the running guest (`sev-snp-policy`),
    /// should its launch security info answer.
    pub reported_policy: Option<u64>,
    /// The owner's values for what the domain declares (`--host-data`, ...).
    pub pins: crate::snp::pins::Pins,
}

/// Runs every check of an SNP domain; the first finding is returned as an
/// error with its exit code (4 configuration, 3 insecure, 2 usage).
pub fn check(d: &Domain, s: &SnpDomain, ctx: &SnpContext) -> Result<()> {
    check_policy_requirements(s, ctx)?;
    check_reported_policy(s, ctx)?;
    crate::snp::pins::check(s.host_data, s.id_block.as_ref(), &ctx.pins)?;
    if ctx.ignore_config {
        return Ok(());
    }
    check_firmware(d, ctx)?;
    check_kernel_hashes(d, s, ctx)?;
    check_policy_form(s)?;
    check_vcpus(s, ctx)?;
    check_cpu_model(s, ctx)?;
    check_host_signature(s, ctx)?;
    check_id_block_pair(s)?;
    check_author_key(s)
}

/// The owner's requirements on the policy: DEBUG and MIGRATE_MA only when
/// allowed, and the policy the owner expects.
fn check_policy_requirements(s: &SnpDomain, ctx: &SnpContext) -> Result<()> {
    let flags = s.policy_flags();
    if flags.contains(PolicyFlags::DEBUG) && !ctx.allow_debug {
        return Err(Error::Insecure(format!(
            "<launchSecurity type='sev-snp'><policy> is {:#x}, with DEBUG (bit 19) set: the host \
             can read and change the guest's memory with the firmware's debug commands; clear bit \
             19 in the domain, or pass --allow-debug if a debuggable guest is what you want",
            s.policy
        )));
    }
    if flags.contains(PolicyFlags::MIGRATE_MA) && !ctx.allow_migrate_ma {
        return Err(Error::Insecure(format!(
            "<launchSecurity type='sev-snp'><policy> is {:#x}, with MIGRATE_MA (bit 18) set: a \
             migration agent may be bound to the guest and export its memory; clear bit 18 in the \
             domain, or pass --allow-migrate-ma if you run a migration agent you trust",
            s.policy
        )));
    }
    if let Some(p) = ctx.owner_policy {
        if p != s.policy {
            return Err(Error::Config(format!(
                "<launchSecurity type='sev-snp'><policy> is {:#x}, but --policy is {p:#x}: the \
                 guest is not launched with the policy you expect; fix the domain's <policy> or \
                 --policy",
                s.policy
            )));
        }
    }
    Ok(())
}

/// ROM firmware the owner names: QEMU's SNP guests boot `-bios`, with no
/// flash and no variable store.
fn check_firmware(d: &Domain, ctx: &SnpContext) -> Result<()> {
    let os = d.os.as_ref();
    if os.is_some_and(|o| !o.nvram.is_empty()) {
        return Err(Error::Config(
            "<os><nvram> on an SEV-SNP domain: QEMU boots SNP guests from ROM firmware (-bios) \
             with no firmware variable store, so libvirt cannot start it; remove <nvram> and use \
             <loader type='rom'> with an SNP-capable OVMF"
                .into(),
        ));
    }
    let autoselect = os.and_then(|o| o.firmware.as_deref());
    if autoselect.is_some() && !ctx.owner_firmware {
        return Err(Error::Config(
            "<os firmware='...'> lets the host choose the firmware, so there is no firmware path to \
             trust: give --firmware with the exact image you expect the guest to run"
                .into(),
        ));
    }
    let loaders = os.map(|o| o.loader.as_slice()).unwrap_or_default();
    if loaders.is_empty() && autoselect.is_some() {
        // The owner's --firmware is what is measured; libvirt fills the loader at start.
        return Ok(());
    }
    if loaders.len() != 1 {
        return Err(Error::Config(format!(
            "Domain must have one firmware path: the XML has {} <os><loader> elements; give \
             exactly one <loader type='rom'>",
            loaders.len()
        )));
    }
    if loaders[0].loader_type.as_deref() == Some("pflash") {
        return Err(Error::Config(
            "<loader type='pflash'> on an SEV-SNP domain: QEMU's SNP guests need the firmware as \
             ROM (-bios); set <loader type='rom'> with an SNP-capable OVMF (e.g. OVMF.fd)"
                .into(),
        ));
    }
    Ok(())
}

/// kernelHashes='yes' exactly when there is direct kernel boot.
fn check_kernel_hashes(d: &Domain, s: &SnpDomain, ctx: &SnpContext) -> Result<()> {
    let direct_boot = d.kernel().is_some();
    if s.kernel_hashes {
        if !direct_boot {
            return Err(Error::Config(
                "kernelHashes='yes' on <launchSecurity type='sev-snp'> but no direct kernel boot: \
                 there is no <os><kernel> to measure; remove kernelHashes or add the kernel"
                    .into(),
            ));
        }
        return check_cmdline(d, ctx);
    }
    if ctx.owner_kernel {
        return Err(Error::Usage(
            "kernel/initrd/cmdline provided but kernel measurement not enabled: the domain's \
             <launchSecurity type='sev-snp'> lacks kernelHashes='yes', so QEMU does not measure \
             them; drop --kernel/--initrd/--cmdline or set kernelHashes='yes'"
                .into(),
        ));
    }
    if direct_boot && ctx.secure {
        return Err(Error::Insecure(
            "direct kernel boot present without measurement: <os><kernel> is set but \
             <launchSecurity type='sev-snp'> lacks kernelHashes='yes', so the host can boot any \
             kernel; set kernelHashes='yes' or pass --insecure"
                .into(),
        ));
    }
    Ok(())
}

/// A direct kernel boot that QEMU does not measure, let pass by `--insecure`
/// with no `--kernel` from the owner: the run passes, and must say that
/// nothing about the kernel was checked.
pub fn unmeasured_kernel_warning(d: &Domain, s: &SnpDomain, ctx: &SnpContext) -> Option<String> {
    if ctx.secure || ctx.owner_kernel || d.kernel().is_none() || s.kernel_hashes {
        return None;
    }
    Some(
        "the domain boots a kernel directly (<os><kernel>) but its <launchSecurity \
         type='sev-snp'> lacks kernelHashes='yes', so QEMU measures neither the kernel, the \
         initrd nor the command line: the host can boot any kernel, and the launch digest says \
         nothing about it. --insecure let it pass; set kernelHashes='yes' in the domain and give \
         --kernel (with --initrd/--cmdline) to check them"
            .into(),
    )
}

/// The command line QEMU measures is the domain's `<cmdline>`: it must be the
/// owner's, or the launch digest the owner expects is not the guest's.
fn check_cmdline(d: &Domain, ctx: &SnpContext) -> Result<()> {
    if !ctx.owner_kernel {
        return Ok(());
    }
    let domain = d.cmdline().unwrap_or("");
    let owner = ctx.owner_cmdline.as_deref().unwrap_or("");
    if domain == owner {
        return Ok(());
    }
    Err(Error::Config(format!(
        "the domain boots with <cmdline>{}</cmdline>, but --cmdline is '{}': QEMU measures the \
         domain's command line, so the guest's launch digest would not be the one you expect; \
         fix the domain's <cmdline> or --cmdline",
        shown(domain),
        shown(owner)
    )))
}

/// Bit 17 of the SNP policy must be one: the firmware refuses the launch otherwise.
fn check_policy_form(s: &SnpDomain) -> Result<()> {
    if !s.policy_flags().contains(PolicyFlags::RESERVED_17) {
        return Err(Error::Config(format!(
            "<launchSecurity type='sev-snp'><policy> is {:#x}, with bit 17 clear: the SNP \
             firmware refuses a policy whose bit 17 is not 1 (SNP_LAUNCH_START fails); use e.g. \
             {:#x}",
            s.policy,
            s.policy | PolicyFlags::RESERVED_17.bits()
        )));
    }
    Ok(())
}

/// The vCPUs the guest starts with, each measured as one VMSA, against --num-cpus.
fn check_vcpus(s: &SnpDomain, ctx: &SnpContext) -> Result<()> {
    if let (Some(n), Some((current, max))) = (ctx.num_cpus, s.vcpus) {
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
    Ok(())
}

/// The named CPU model's signature, loaded into every VMSA, against the owner's.
fn check_cpu_model(s: &SnpDomain, ctx: &SnpContext) -> Result<()> {
    if let (Some(sig), Some(msig), Some(model)) = (
        ctx.vcpu_signature,
        s.model_signature,
        s.cpu_model.as_deref(),
    ) {
        if msig != sig {
            return Err(Error::Config(format!(
                "<cpu><model>{model}</model> has signature {msig:#x}, but the VMSAs are built for \
                 {sig:#x}; give the family/model/stepping of {model} or fix the domain"
            )));
        }
    }
    Ok(())
}

/// `<cpu mode='host-passthrough'>` (or `'maximum'`) gives the guest the
/// host's CPU signature: it must be the one the owner's VMSAs hold.
fn check_host_signature(s: &SnpDomain, ctx: &SnpContext) -> Result<()> {
    let mode = s.cpu_mode.as_deref().unwrap_or_default();
    if !matches!(mode, "host-passthrough" | "maximum") {
        return Ok(());
    }
    match (ctx.vcpu_signature, ctx.host_signature) {
        (Some(mine), Some(host)) if mine != host => Err(Error::Config(format!(
            "<cpu mode='{mode}'> gives the guest the host CPU signature {host:#x} (from the \
             capabilities), but every VMSA is built for {mine:#x}: check --cpu-family, --cpu-model \
             and --cpu-stepping, or the domain's CPU"
        ))),
        _ => Ok(()),
    }
}

/// The policy libvirt reports for the running guest, if it does, is the XML's.
fn check_reported_policy(s: &SnpDomain, ctx: &SnpContext) -> Result<()> {
    match ctx.reported_policy {
        Some(p) if p != s.policy => Err(Error::Config(format!(
            "libvirt reports the guest runs with policy {p:#x}, but its <launchSecurity><policy> \
             is {:#x}: the domain XML does not describe the running guest",
            s.policy
        ))),
        _ => Ok(()),
    }
}

/// An ID block is checked with its ID auth: one without the other is refused.
fn check_id_block_pair(s: &SnpDomain) -> Result<()> {
    match (s.id_block.is_some(), s.id_auth.is_some()) {
        (true, false) => Err(Error::Config(
            "<launchSecurity type='sev-snp'> has <idBlock> but no <idAuth>: the firmware needs \
             the ID key's signature of the ID block; add the <idAuth> made with the block"
                .into(),
        )),
        (false, true) => Err(Error::Config(
            "<launchSecurity type='sev-snp'> has <idAuth> but no <idBlock>: the signatures sign \
             nothing; add the <idBlock> made with it, or remove <idAuth>"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// `authorKey='yes'` exactly when `<idAuth>` holds an author key.
fn check_author_key(s: &SnpDomain) -> Result<()> {
    let has_author = s.id_auth.as_ref().is_some_and(|a| a.has_author_key());
    match (s.author_key_enabled, has_author) {
        (true, false) if s.id_auth.is_none() => Err(Error::Config(
            "authorKey='yes' on <launchSecurity type='sev-snp'> but there is no <idAuth>: the \
             author key is in the ID auth; add <idBlock> and <idAuth>, or remove authorKey"
                .into(),
        )),
        (true, false) => Err(Error::Config(
            "authorKey='yes' on <launchSecurity type='sev-snp'> but <idAuth> holds no author key \
             (AUTHOR_KEY is zero): SNP_LAUNCH_FINISH would fail; make the ID auth with an author \
             key, or remove authorKey"
                .into(),
        )),
        (false, true) => Err(Error::Config(
            "<idAuth> holds an author key but <launchSecurity type='sev-snp'> lacks \
             authorKey='yes': the firmware ignores the key and the report carries no \
             AUTHOR_KEY_DIGEST; set authorKey='yes', or make the ID auth without an author key"
                .into(),
        )),
        _ => Ok(()),
    }
}
