//! SEV-SNP domains: the `<launchSecurity type='sev-snp'>` of a libvirt domain
//! decoded ([`decode`]), checked for the mistakes that make a launch fail or
//! leave it unattestable ([`check`]), its ID block judged before launch
//! ([`prelaunch`]: would SNP_LAUNCH_FINISH accept it for the launch the
//! owner expects?), and a guest's report held to what the domain gave the
//! firmware ([`report_checks`]). Without the pre-launch verdict the owner
//! learns of a wrong ID block only when the guest fails to start ("Bad
//! measurement", fw_error 11), with no word on which input was wrong.
//!
//! Pure: no I/O, no printing. The XML comes from the host, so the checks catch
//! misconfiguration; they never make a host value trusted.

use base64::Engine as _;

use crate::core::cpu;
use crate::core::hex;
use crate::core::id_block::{
    self, IdAuth, IdBlock, ALGO_ECDSA_P384_SHA384, ID_AUTH_LEN, ID_BLOCK_LEN,
};
use crate::core::snp_report::{AttestationReport, PolicyFlags, SigningKey};
use crate::error::{Error, Result};
use crate::snp::validate::{Check, Status};
use crate::source::xml::{Domain, LaunchSecurity};

/// What an SNP domain's XML says about its launch, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpDomain {
    /// `<policy>` (libvirt writes it in hex, and requires it).
    pub policy: u64,
    /// `<guestVisibleWorkarounds>`, 16 bytes.
    pub guest_visible_workarounds: Option<[u8; 16]>,
    /// `<idBlock>`, 96 bytes, VERSION 1.
    pub id_block: Option<IdBlock>,
    /// `<idAuth>`, 4096 bytes.
    pub id_auth: Option<Box<IdAuth>>,
    /// `<hostData>`, 32 bytes (HOST_DATA in the report; zero when absent).
    pub host_data: Option<[u8; 32]>,
    /// `authorKey='yes'`.
    pub author_key_enabled: bool,
    /// `vcek='no'`: the firmware signs the report with a VLEK.
    pub vcek_disabled: bool,
    /// `kernelHashes='yes'`.
    pub kernel_hashes: bool,
    /// `<os><loader>` path.
    pub loader: Option<String>,
    /// vCPUs online at boot and the maximum (`<vcpu current=..>max</vcpu>`).
    pub vcpus: Option<(u32, u32)>,
    /// `<cpu mode=...>`.
    pub cpu_mode: Option<String>,
    /// `<cpu><model>`.
    pub cpu_model: Option<String>,
    /// The signature of `<cpu><model>` when the guest gets that named model
    /// (mode 'custom' or none) and the model is known.
    pub model_signature: Option<u32>,
}

impl SnpDomain {
    /// The key the report must be signed with, when the XML decides it:
    /// `vcek='no'` means a VLEK. `None`: the firmware signs with the VCEK,
    /// or with a VLEK if the host loaded one; either is acceptable.
    pub fn signing_key(&self) -> Option<SigningKey> {
        self.vcek_disabled.then_some(SigningKey::Vlek)
    }

    /// What the owner should know about this domain that is no error, one
    /// sentence each (the caller prints them as NOTE lines).
    pub fn notes(&self) -> Vec<String> {
        let mut n = Vec::new();
        if self.vcek_disabled {
            n.push(
                "vcek='no': the firmware signs this guest's reports with a VLEK (the key AMD \
                 issues to a cloud provider), not the chip's VCEK; a VCEK-signed report will \
                 fail, so give the VLEK (--vlek) or the certificate table that holds it \
                 (--cert-table)"
                    .to_string(),
            );
        }
        n
    }

    /// The policy as flags (DEBUG, MIGRATE_MA, ...).
    pub fn policy_flags(&self) -> PolicyFlags {
        PolicyFlags::from_bits_truncate(self.policy)
    }

    /// The digest of the ID key in `<idAuth>` (ID_KEY_DIGEST in the report).
    pub fn id_key_digest(&self) -> Option<[u8; 48]> {
        self.id_auth
            .as_ref()
            .map(|a| id_block::key_digest(&a.id_key))
    }

    /// The digest of the author key in `<idAuth>`, if it holds one
    /// (AUTHOR_KEY_DIGEST in the report when `authorKey='yes'`).
    pub fn author_key_digest(&self) -> Option<[u8; 48]> {
        self.id_auth
            .as_ref()
            .filter(|a| a.has_author_key())
            .map(|a| id_block::key_digest(&a.author_key))
    }
}

// ----------------------------------------------------------------- decode ----

/// The one `<launchSecurity type='sev-snp'>`, or why there is none.
fn snp_element(d: &Domain) -> Result<&LaunchSecurity> {
    if d.launch_security.len() > 1 {
        return Err(Error::Config(format!(
            "the domain has {} <launchSecurity> elements; libvirt allows one: keep exactly one \
             <launchSecurity type='sev-snp'>",
            d.launch_security.len()
        )));
    }
    d.snp().ok_or_else(|| {
        Error::Config(
            "Domain is not configured with SEV-SNP launch security: the XML needs exactly one \
             <launchSecurity type='sev-snp'> element"
                .into(),
        )
    })
}

/// The base64 text of `<launchSecurity><NAME>`, decoded to exactly `N` bytes.
fn base64_exact<const N: usize>(
    name: &str,
    what: &str,
    text: Option<&crate::source::xml::Text>,
) -> Result<Option<[u8; N]>> {
    let Some(t) = text else { return Ok(None) };
    // libvirt keeps the text as written; line breaks inside it are not data.
    let compact: String = t
        .text
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            Error::Config(format!(
                "<launchSecurity><{name}> is not base64 ({e}): it must hold {what}, {N} bytes in \
                 base64; make it again (e.g. with snp-id-block) and paste its base64 unchanged"
            ))
        })?;
    let len = bytes.len();
    bytes.try_into().map(Some).map_err(|_| {
        Error::Config(format!(
            "<launchSecurity><{name}> decodes to {len} bytes, but {what} is exactly {N} bytes \
             (libvirt and QEMU refuse any other length); give the {N}-byte value in base64"
        ))
    })
}

/// Host text in a message: control characters escaped, at most 64 characters,
/// so a host cannot garble the owner's terminal or flood the message.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(64).flat_map(char::escape_debug).collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// `<policy>` as libvirt writes it: hex, with or without 0x.
fn decode_policy(ls: &LaunchSecurity) -> Result<u64> {
    // libvirt 11.3 refuses an SNP domain without one ("failed to get launch
    // security policy"): an XML without it did not come from libvirt.
    let Some(text) = ls.policy.as_ref().map(|p| p.text.as_deref().unwrap_or("")) else {
        return Err(Error::Config(
            "<launchSecurity type='sev-snp'> has no <policy>: libvirt requires one (and refuses \
             the domain without it); add e.g. <policy>0x00030000</policy>"
                .into(),
        ));
    };
    let t = text.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u64::from_str_radix(hex, 16).map_err(|_| {
        Error::Config(format!(
            "<launchSecurity type='sev-snp'><policy>{}</policy> is not a 64-bit hex number \
             (libvirt writes e.g. 0x00030000); fix the domain's policy",
            shown(text)
        ))
    })
}

/// `'yes'` / `'no'` / absent attribute, anything else refused.
fn yes_no(attr: &str, v: Option<&str>, default: bool) -> Result<bool> {
    match v.map(str::trim) {
        None => Ok(default),
        Some("yes") => Ok(true),
        Some("no") => Ok(false),
        Some(other) => Err(Error::Config(format!(
            "<launchSecurity type='sev-snp' {attr}='{}'>: libvirt takes only 'yes' or 'no'",
            shown(other)
        ))),
    }
}

/// Decodes the SNP parts of a domain: the launch security element's
/// attributes and base64 children with their exact lengths, and the vCPU,
/// CPU model and loader. Every error is exit 4 and names the element.
pub fn decode(d: &Domain) -> Result<SnpDomain> {
    let ls = snp_element(d)?;
    let policy = decode_policy(ls)?;
    let id_block = base64_exact::<ID_BLOCK_LEN>("idBlock", "an ID block", ls.id_block.as_ref())?
        .map(|b| {
            IdBlock::from_bytes(&b).map_err(|e| {
                Error::Config(format!(
                    "<launchSecurity><idBlock> is not an ID block the SNP firmware accepts: {e}; \
                     make it again (e.g. with snp-id-block)"
                ))
            })
        })
        .transpose()?;
    let id_auth = base64_exact::<ID_AUTH_LEN>(
        "idAuth",
        "an ID authentication information structure",
        ls.id_auth.as_ref(),
    )?
    .map(|b| Box::new(IdAuth::from_bytes(&b)));
    let model_signature = match d.cpu_mode() {
        Some("custom") | None => d.cpu_model().and_then(cpu::named_model_signature),
        Some(_) => None,
    };
    Ok(SnpDomain {
        policy,
        guest_visible_workarounds: base64_exact(
            "guestVisibleWorkarounds",
            "the guest-visible workarounds field",
            ls.guest_visible_workarounds.as_ref(),
        )?,
        id_block,
        id_auth,
        host_data: base64_exact("hostData", "HOST_DATA", ls.host_data.as_ref())?,
        author_key_enabled: yes_no("authorKey", ls.author_key.as_deref(), false)?,
        vcek_disabled: !yes_no("vcek", ls.vcek.as_deref(), true)?,
        kernel_hashes: yes_no("kernelHashes", ls.kernel_hashes.as_deref(), false)?,
        loader: d.loader_path().map(str::to_string),
        vcpus: d.vcpus()?,
        cpu_mode: d.cpu_mode().map(str::to_string),
        cpu_model: d.cpu_model().map(str::to_string),
        model_signature,
    })
}

// ------------------------------------------------------------------ check ----

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

// -------------------------------------------------------------- prelaunch ----

/// The owner's ID and author keys, as SHA-384 digests of the SNP public key structure.
#[derive(Debug, Clone, Default)]
pub struct IdKeys {
    pub trusted_id_keys: Vec<[u8; 48]>,
    pub trusted_author_keys: Vec<[u8; 48]>,
    /// `--require-author-key`.
    pub require_author_key: bool,
}

/// Whether SNP_LAUNCH_FINISH would accept the domain's ID block for the
/// launch whose digest is `expected_ld`, and whether its keys are the
/// owner's: the named checks `id-block-ld`, `id-block-policy`,
/// `id-block-signature`, `id-key-signature`, `id-key-trusted`,
/// `author-key-trusted` and `author-key-enabled`. `None` when the domain has
/// no ID block.
pub fn prelaunch(s: &SnpDomain, expected_ld: &[u8; 48], keys: &IdKeys) -> Option<Vec<Check>> {
    let block = s.id_block.as_ref()?;
    let auth = s.id_auth.as_deref();
    let id_sig = id_block_signature(block, auth);
    let author_sig = id_key_signature(auth);
    let author_ok = author_sig.status == Status::Pass;
    Some(vec![
        id_block_ld(block, expected_ld),
        id_block_policy(block, s.policy),
        id_sig,
        author_sig,
        id_key_trusted(auth, author_ok, keys),
        author_key_trusted(s, auth, author_ok, keys),
        author_key_enabled(s, auth),
    ])
}

fn id_block_ld(block: &IdBlock, expected_ld: &[u8; 48]) -> Check {
    if &block.ld == expected_ld {
        Check::pass(
            "id-block-ld",
            format!(
                "the ID block's LD {} is the launch digest of the domain",
                hex(&block.ld)
            ),
        )
    } else {
        Check::fail(
            "id-block-ld",
            format!(
                "the ID block's LD is {}, but the domain's launch measures {}: SNP_LAUNCH_FINISH \
                 would refuse the guest (Bad measurement, fw_error 11)",
                hex(&block.ld),
                hex(expected_ld)
            ),
        )
    }
}

fn id_block_policy(block: &IdBlock, policy: u64) -> Check {
    if block.policy == policy {
        Check::pass(
            "id-block-policy",
            format!("the ID block's POLICY {policy:#x} is the domain's <policy>"),
        )
    } else {
        Check::fail(
            "id-block-policy",
            format!(
                "the ID block's POLICY is {:#x}, but the domain's <policy> is {policy:#x}: \
                 SNP_LAUNCH_FINISH would refuse the guest; make the ID block for policy \
                 {policy:#x} or fix the domain's <policy>",
                block.policy
            ),
        )
    }
}

fn id_block_signature(block: &IdBlock, auth: Option<&IdAuth>) -> Check {
    const NAME: &str = "id-block-signature";
    let Some(auth) = auth else {
        return Check::fail(NAME, "there is no <idAuth> holding the ID key's signature");
    };
    if auth.id_key_algo != ALGO_ECDSA_P384_SHA384 {
        return Check::fail(
            NAME,
            format!(
                "ID_KEY_ALGO is {}, not 1 (ECDSA P-384 with SHA-384), the only algorithm the \
                 firmware knows",
                auth.id_key_algo
            ),
        );
    }
    match id_block::verify(&auth.id_key, &block.to_bytes(), &auth.id_block_sig) {
        Ok(()) => Check::pass(
            NAME,
            format!(
                "the ID key {} signs the ID block",
                hex(&id_block::key_digest(&auth.id_key))
            ),
        ),
        Err(e) => Check::fail(
            NAME,
            format!(
                "the ID block's signature in <idAuth> does not verify with the ID key {}: {e}; \
                 SNP_LAUNCH_FINISH would refuse the guest",
                hex(&id_block::key_digest(&auth.id_key))
            ),
        ),
    }
}

fn id_key_signature(auth: Option<&IdAuth>) -> Check {
    const NAME: &str = "id-key-signature";
    let Some(auth) = auth.filter(|a| a.has_author_key()) else {
        return Check::skip(NAME, "<idAuth> holds no author key");
    };
    if auth.auth_key_algo != ALGO_ECDSA_P384_SHA384 {
        return Check::fail(
            NAME,
            format!(
                "AUTH_KEY_ALGO is {}, not 1 (ECDSA P-384 with SHA-384), the only algorithm the \
                 firmware knows",
                auth.auth_key_algo
            ),
        );
    }
    let author = hex(&id_block::key_digest(&auth.author_key));
    match id_block::verify(&auth.author_key, &auth.id_key, &auth.id_key_sig) {
        Ok(()) => Check::pass(NAME, format!("the author key {author} signs the ID key")),
        Err(e) => Check::fail(
            NAME,
            format!("the ID key's signature in <idAuth> does not verify with the author key {author}: {e}"),
        ),
    }
}

/// The ID key is one the owner trusts, or is signed by a trusted author key
/// (the rule of snp-validate's `expect.id_key`).
fn id_key_trusted(auth: Option<&IdAuth>, author_ok: bool, keys: &IdKeys) -> Check {
    const NAME: &str = "id-key-trusted";
    if keys.trusted_id_keys.is_empty() && keys.trusted_author_keys.is_empty() {
        return Check::skip(NAME, "no trusted ID or author key given");
    }
    let Some(auth) = auth else {
        return Check::fail(NAME, "there is no <idAuth>, so no ID key");
    };
    let id = id_block::key_digest(&auth.id_key);
    let author = id_block::key_digest(&auth.author_key);
    if keys.trusted_id_keys.contains(&id) {
        Check::pass(NAME, format!("the ID key {} is a trusted ID key", hex(&id)))
    } else if author_ok && keys.trusted_author_keys.contains(&author) {
        Check::pass(
            NAME,
            format!(
                "the ID key {} is signed by the trusted author key {}",
                hex(&id),
                hex(&author)
            ),
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "the ID key {} is not a trusted ID key{}",
                hex(&id),
                if auth.has_author_key() {
                    " and is not signed by a trusted author key"
                } else {
                    ""
                }
            ),
        )
    }
}

fn author_key_trusted(
    s: &SnpDomain,
    auth: Option<&IdAuth>,
    author_ok: bool,
    keys: &IdKeys,
) -> Check {
    const NAME: &str = "author-key-trusted";
    if keys.trusted_author_keys.is_empty() && !keys.require_author_key {
        return Check::skip(NAME, "no trusted author key given");
    }
    let Some(auth) = auth.filter(|a| a.has_author_key()) else {
        return Check::fail(
            NAME,
            "<idAuth> holds no author key, and an author key is required",
        );
    };
    let author = id_block::key_digest(&auth.author_key);
    if !keys.trusted_author_keys.contains(&author) {
        return Check::fail(
            NAME,
            format!(
                "the author key {} is not a trusted author key",
                hex(&author)
            ),
        );
    }
    if !author_ok {
        return Check::fail(
            NAME,
            format!(
                "the author key {} is trusted but does not sign the ID key (see id-key-signature)",
                hex(&author)
            ),
        );
    }
    if keys.require_author_key && !s.author_key_enabled {
        return Check::fail(
            NAME,
            format!(
                "the author key {} is trusted, but without authorKey='yes' the report carries no \
                 AUTHOR_KEY_DIGEST, and an author key is required",
                hex(&author)
            ),
        );
    }
    Check::pass(NAME, format!("the author key {} is trusted", hex(&author)))
}

fn author_key_enabled(s: &SnpDomain, auth: Option<&IdAuth>) -> Check {
    const NAME: &str = "author-key-enabled";
    let has_author = auth.is_some_and(|a| a.has_author_key());
    match (s.author_key_enabled, has_author) {
        (true, true) => Check::pass(
            NAME,
            "authorKey='yes' and <idAuth> holds the author key: the report will carry its digest",
        ),
        (false, false) => Check::pass(NAME, "no authorKey and no author key in <idAuth>"),
        (true, false) => Check::fail(
            NAME,
            "authorKey='yes' but <idAuth> holds no author key: SNP_LAUNCH_FINISH would refuse the \
             guest; make the ID auth with an author key, or remove authorKey",
        ),
        (false, true) => Check::fail(
            NAME,
            "<idAuth> holds an author key but authorKey is not 'yes': the firmware ignores the key \
             and the report carries no AUTHOR_KEY_DIGEST; set authorKey='yes'",
        ),
    }
}

// ------------------------------------------------------------ the report ----

/// The report fields the domain decides (snp-attestation.md §6), each as a
/// named check: `domain.policy` (POLICY is `<policy>`), `domain.host_data`
/// (HOST_DATA is `<hostData>`, zero without), `domain.family_id`,
/// `domain.image_id`, `domain.guest_svn` (from the ID block, zero without),
/// `domain.id_key_digest` (the ID key of `<idAuth>`, zero without an ID
/// block), `domain.author_key` (AUTHOR_KEY_EN and AUTHOR_KEY_DIGEST as
/// `authorKey` says) and `domain.signing_key` (a VLEK with `vcek='no'`).
/// They add to snp-validate's checks, whose expectations cannot say "exactly
/// this policy" or "exactly this ID key".
pub fn report_checks(s: &SnpDomain, report: &AttestationReport) -> Vec<Check> {
    let block = s.id_block.as_ref();
    let mut c = vec![
        exact_field(
            "domain.policy",
            "POLICY",
            &report.policy.0.to_le_bytes(),
            &s.policy.to_le_bytes(),
            "<policy>",
        ),
        exact_field(
            "domain.host_data",
            "HOST_DATA",
            &report.host_data,
            &s.host_data.unwrap_or([0; 32]),
            if s.host_data.is_some() {
                "<hostData>"
            } else {
                "zero: the domain has no <hostData>"
            },
        ),
        exact_field(
            "domain.family_id",
            "FAMILY_ID",
            &report.family_id,
            &block.map_or([0; 16], |b| b.family_id),
            id_block_origin(block),
        ),
        exact_field(
            "domain.image_id",
            "IMAGE_ID",
            &report.image_id,
            &block.map_or([0; 16], |b| b.image_id),
            id_block_origin(block),
        ),
        exact_field(
            "domain.guest_svn",
            "GUEST_SVN",
            &report.guest_svn.to_le_bytes(),
            &block.map_or(0, |b| b.guest_svn).to_le_bytes(),
            id_block_origin(block),
        ),
    ];
    let id_key = if block.is_some() {
        s.id_key_digest().unwrap_or([0; 48])
    } else {
        [0; 48]
    };
    c.push(exact_field(
        "domain.id_key_digest",
        "ID_KEY_DIGEST",
        &report.id_key_digest,
        &id_key,
        if block.is_some() {
            "the ID key in <idAuth>"
        } else {
            "zero: the domain has no <idBlock>"
        },
    ));
    c.push(author_key_report_check(s, report));
    c.push(signing_key_report_check(s, report));
    c
}

fn id_block_origin(block: Option<&IdBlock>) -> &'static str {
    if block.is_some() {
        "the domain's <idBlock>"
    } else {
        "zero: the domain has no <idBlock>"
    }
}

/// One field that must equal what the domain gave the firmware. Integers
/// are compared and shown as their little-endian bytes' value.
fn exact_field(name: &'static str, field: &str, got: &[u8], want: &[u8], origin: &str) -> Check {
    let show = |b: &[u8]| match b.len() {
        4 => format!("{:#x}", u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            format!("{:#x}", u64::from_le_bytes(a))
        }
        _ => hex(b),
    };
    if got == want {
        Check::pass(name, format!("{field} is {} ({origin})", show(got)))
    } else {
        Check::fail(
            name,
            format!(
                "{field} is {}, but the domain gives {} ({origin}): the guest was not launched as \
                 its domain says",
                show(got),
                show(want)
            ),
        )
    }
}

/// AUTHOR_KEY_EN is `authorKey`, and AUTHOR_KEY_DIGEST the author key's digest.
fn author_key_report_check(s: &SnpDomain, report: &AttestationReport) -> Check {
    const NAME: &str = "domain.author_key";
    let en = report.key_info.author_key_en;
    let want = if s.author_key_enabled && s.id_block.is_some() {
        s.author_key_digest()
    } else {
        None
    };
    match (want, en) {
        (None, false) if report.author_key_digest == [0; 48] => Check::pass(
            NAME,
            "AUTHOR_KEY_EN is 0 and AUTHOR_KEY_DIGEST zero: the domain enables no author key",
        ),
        (None, _) => Check::fail(
            NAME,
            format!(
                "AUTHOR_KEY_EN is {} with AUTHOR_KEY_DIGEST {}, but the domain enables no author \
                 key (no authorKey='yes' with an author key in <idAuth>)",
                u8::from(en),
                hex(&report.author_key_digest)
            ),
        ),
        (Some(d), true) if d == report.author_key_digest => Check::pass(
            NAME,
            format!(
                "AUTHOR_KEY_DIGEST is {}, the author key in <idAuth>",
                hex(&d)
            ),
        ),
        (Some(d), _) => Check::fail(
            NAME,
            format!(
                "AUTHOR_KEY_EN is {} with AUTHOR_KEY_DIGEST {}, but the domain's authorKey='yes' \
                 gives {} (the author key in <idAuth>)",
                u8::from(en),
                hex(&report.author_key_digest),
                hex(&d)
            ),
        ),
    }
}

/// `vcek='no'`: the report must be signed by a VLEK.
fn signing_key_report_check(s: &SnpDomain, report: &AttestationReport) -> Check {
    const NAME: &str = "domain.signing_key";
    let got = report.key_info.signing_key;
    match s.signing_key() {
        Some(SigningKey::Vlek) if got == SigningKey::Vlek => {
            Check::pass(NAME, "signed by a VLEK, as vcek='no' makes it")
        }
        Some(want) => Check::fail(
            NAME,
            format!(
                "the report is signed by the {}, but the domain's vcek='no' makes the firmware \
                 sign with the {}: this report is not from that launch",
                got.name(),
                want.name()
            ),
        ),
        None => Check::pass(
            NAME,
            format!(
                "signed by the {} (the domain allows the VCEK or a VLEK the host loaded)",
                got.name()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::xml::Text;

    fn text(s: &str) -> Option<Text> {
        Some(Text {
            text: Some(s.into()),
        })
    }

    #[test]
    fn base64_lengths_are_exact_and_named() {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        assert_eq!(
            base64_exact::<32>("hostData", "HOST_DATA", text(&b64(32)).as_ref()).unwrap(),
            Some([7; 32])
        );
        assert_eq!(
            base64_exact::<32>("hostData", "HOST_DATA", None).unwrap(),
            None
        );
        for n in [0, 1, 31, 33, 96] {
            let e =
                base64_exact::<32>("hostData", "HOST_DATA", text(&b64(n)).as_ref()).unwrap_err();
            assert_eq!(e.exit_code(), crate::ExitCode::IncorrectConfig);
            assert!(
                e.to_string()
                    .starts_with(&format!("<launchSecurity><hostData> decodes to {n} bytes, but HOST_DATA is exactly 32 bytes")),
                "{e}"
            );
        }
        let e =
            base64_exact::<16>("guestVisibleWorkarounds", "x", text("%%%").as_ref()).unwrap_err();
        assert!(
            e.to_string()
                .contains("<guestVisibleWorkarounds> is not base64"),
            "{e}"
        );
    }

    #[test]
    fn yes_no_attributes() {
        assert!(yes_no("vcek", None, true).unwrap());
        assert!(!yes_no("vcek", Some("no"), true).unwrap());
        assert!(yes_no("authorKey", Some("yes"), false).unwrap());
        let e = yes_no("authorKey", Some("on"), false).unwrap_err();
        assert!(e.to_string().contains("authorKey='on'"), "{e}");
        // Host text is shown escaped and bounded.
        let e = yes_no("vcek", Some("\u{1b}[2J"), true).unwrap_err();
        assert!(e.to_string().contains("vcek='\\u{1b}[2J'"), "{e}");
        assert_eq!(shown(&"x".repeat(100)).len(), 67);
    }

    #[test]
    fn signing_key_and_digests_without_id_auth() {
        let d = Domain::parse(
            "<domain><launchSecurity type='sev-snp' vcek='no'><policy>0x30000</policy>\
             </launchSecurity></domain>",
        )
        .unwrap();
        let s = decode(&d).unwrap();
        assert_eq!(s.signing_key(), Some(SigningKey::Vlek));
        assert!(s.notes()[0].starts_with("vcek='no': the firmware signs"));
        assert_eq!((s.id_key_digest(), s.author_key_digest()), (None, None));
        assert!(prelaunch(&s, &[0; 48], &IdKeys::default()).is_none());
        // An ID block without its ID auth: a verdict that says so, not a panic.
        let mut with_block = s.clone();
        with_block.id_block = Some(IdBlock::new([0; 48]));
        let checks = prelaunch(&with_block, &[0; 48], &IdKeys::default()).unwrap();
        assert_eq!(checks[0].status, Status::Pass);
        assert_eq!(checks[2].status, Status::Fail);
        assert!(checks[2].message.contains("no <idAuth>"));
    }
}
