//! The `<launchSecurity type='sev-snp'>` element decoded ([`SnpDomain`]),
//! each base64 child to its exact length.

use base64::Engine as _;

use crate::core::cpu;
use crate::core::id_block::{self, IdAuth, IdBlock, ID_AUTH_LEN, ID_BLOCK_LEN};
use crate::core::snp_report::{PolicyFlags, SigningKey};
use crate::error::{Error, Result};
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
pub(super) fn shown(s: &str) -> String {
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
}
