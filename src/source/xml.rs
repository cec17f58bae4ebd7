//! The parts of libvirt's domain and capabilities XML that decide whether a
//! launch can be measured, as typed structures (unknown elements ignored).

use serde::Deserialize;

use crate::error::{Error, Result};

/// Larger XML than any real domain description is refused before parsing.
pub const MAX_XML_LEN: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Domain {
    #[serde(rename = "@type", default)]
    pub virt_type: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub vcpu: Option<Vcpu>,
    #[serde(default)]
    pub os: Option<Os>,
    #[serde(default)]
    pub cpu: Option<Cpu>,
    #[serde(rename = "launchSecurity", default)]
    pub launch_security: Vec<LaunchSecurity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Vcpu {
    #[serde(rename = "@current", default)]
    pub current: Option<String>,
    #[serde(rename = "$text", default)]
    pub max: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Os {
    #[serde(rename = "@firmware", default)]
    pub firmware: Option<String>,
    #[serde(default)]
    pub loader: Vec<Loader>,
    #[serde(default)]
    pub nvram: Vec<Text>,
    #[serde(default)]
    pub kernel: Vec<Text>,
    #[serde(default)]
    pub initrd: Vec<Text>,
    #[serde(default)]
    pub cmdline: Vec<Text>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Loader {
    #[serde(rename = "@readonly", default)]
    pub readonly: Option<String>,
    #[serde(rename = "@type", default)]
    pub loader_type: Option<String>,
    #[serde(rename = "@stateless", default)]
    pub stateless: Option<String>,
    #[serde(rename = "$text", default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Text {
    #[serde(rename = "$text", default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Cpu {
    #[serde(rename = "@mode", default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub model: Option<Text>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LaunchSecurity {
    #[serde(rename = "@type", default)]
    pub sec_type: Option<String>,
    #[serde(rename = "@kernelHashes", default)]
    pub kernel_hashes: Option<String>,
    /// SEV-SNP: `authorKey='yes'` (QEMU `author-key-enabled`).
    #[serde(rename = "@authorKey", default)]
    pub author_key: Option<String>,
    /// SEV-SNP: `vcek='no'` (QEMU `vcek-disabled`): the report is signed by a VLEK.
    #[serde(rename = "@vcek", default)]
    pub vcek: Option<String>,
    #[serde(default)]
    pub policy: Option<Text>,
    /// SEV-SNP, base64 of 16 bytes.
    #[serde(rename = "guestVisibleWorkarounds", default)]
    pub guest_visible_workarounds: Option<Text>,
    /// SEV-SNP, base64 of the 96-byte ID block.
    #[serde(rename = "idBlock", default)]
    pub id_block: Option<Text>,
    /// SEV-SNP, base64 of the 4096-byte ID authentication information structure.
    #[serde(rename = "idAuth", default)]
    pub id_auth: Option<Text>,
    /// SEV-SNP, base64 of 32 bytes (HOST_DATA in the report).
    #[serde(rename = "hostData", default)]
    pub host_data: Option<Text>,
    #[serde(rename = "dhCert", default)]
    pub dh_cert: Vec<Text>,
    #[serde(default)]
    pub session: Vec<Text>,
}

fn parse<'de, T: Deserialize<'de>>(what: &str, xml: &'de str) -> Result<T> {
    if xml.len() > MAX_XML_LEN {
        return Err(Error::Usage(format!(
            "the {what} XML is {} bytes, more than the {MAX_XML_LEN} bytes any real one has",
            xml.len()
        )));
    }
    // libvirt never writes a DOCTYPE, and quick-xml 0.37 panics on one that
    // splits an element's text (found by fuzzing): refuse it before parsing.
    if xml
        .as_bytes()
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"<!doctype"))
    {
        return Err(Error::Usage(format!(
            "the {what} XML has a <!DOCTYPE>, which libvirt never writes; refusing it"
        )));
    }
    quick_xml::de::from_str(xml)
        .map_err(|e| Error::Usage(format!("cannot parse the {what} XML: {e}")))
}

impl Domain {
    pub fn parse(xml: &str) -> Result<Domain> {
        parse("domain", xml)
    }

    fn os(&self) -> &Os {
        static EMPTY: Os = Os {
            firmware: None,
            loader: Vec::new(),
            nvram: Vec::new(),
            kernel: Vec::new(),
            initrd: Vec::new(),
            cmdline: Vec::new(),
        };
        self.os.as_ref().unwrap_or(&EMPTY)
    }

    /// The one `<launchSecurity type='sev'>`, if exactly one.
    pub fn sev(&self) -> Option<&LaunchSecurity> {
        let sev: Vec<_> = self
            .launch_security
            .iter()
            .filter(|l| l.sec_type.as_deref() == Some("sev"))
            .collect();
        (sev.len() == 1).then(|| sev[0])
    }

    /// The one `<launchSecurity type='sev-snp'>`, if exactly one.
    pub fn snp(&self) -> Option<&LaunchSecurity> {
        let snp: Vec<_> = self
            .launch_security
            .iter()
            .filter(|l| l.sec_type.as_deref() == Some("sev-snp"))
            .collect();
        (snp.len() == 1).then(|| snp[0])
    }

    /// Any `<launchSecurity type='sev-snp'>`: the domain is meant to be an
    /// SEV-SNP guest (whether its XML is usable is for the SNP checks to say).
    pub fn is_snp(&self) -> bool {
        self.launch_security
            .iter()
            .any(|l| l.sec_type.as_deref() == Some("sev-snp"))
    }

    /// `kernelHashes='yes'` on the SEV (or else SEV-SNP) launch security element.
    pub fn kernel_hashes(&self) -> bool {
        self.sev()
            .or_else(|| self.snp())
            .and_then(|l| l.kernel_hashes.as_deref())
            == Some("yes")
    }

    pub fn loader_path(&self) -> Option<&str> {
        self.os()
            .loader
            .first()
            .and_then(|l| l.path.as_deref())
            .map(str::trim)
    }

    pub fn kernel(&self) -> Option<&str> {
        first_text(&self.os().kernel)
    }

    pub fn initrd(&self) -> Option<&str> {
        first_text(&self.os().initrd)
    }

    /// The cmdline as written (not trimmed: whitespace is measured).
    pub fn cmdline(&self) -> Option<&str> {
        self.os()
            .cmdline
            .first()
            .map(|t| t.text.as_deref().unwrap_or(""))
    }

    /// The policy in `<launchSecurity><policy>`, which libvirt writes in hex.
    pub fn policy(&self) -> Result<Option<u32>> {
        let Some(text) = self
            .sev()
            .and_then(|l| l.policy.as_ref())
            .and_then(|p| p.text.as_deref())
        else {
            return Ok(None);
        };
        let t = text.trim();
        let hex = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        u32::from_str_radix(hex, 16).map(Some).map_err(|_| {
            Error::Config(format!(
                "<launchSecurity><policy>{text}</policy> is not a hex number"
            ))
        })
    }

    /// vCPUs online at boot (`current`, else the maximum), and the maximum.
    pub fn vcpus(&self) -> Result<Option<(u32, u32)>> {
        let Some(v) = &self.vcpu else { return Ok(None) };
        let num = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| Error::Config(format!("<vcpu> {what} '{s}' is not a number")))
        };
        let max = match v.max.as_deref() {
            Some(m) => num(m, "count")?,
            None => return Ok(None),
        };
        let current = match v.current.as_deref() {
            Some(c) => num(c, "current")?,
            None => max,
        };
        Ok(Some((current, max)))
    }

    pub fn cpu_mode(&self) -> Option<&str> {
        self.cpu.as_ref().and_then(|c| c.mode.as_deref())
    }

    pub fn cpu_model(&self) -> Option<&str> {
        self.cpu
            .as_ref()
            .and_then(|c| c.model.as_ref())
            .and_then(|m| m.text.as_deref())
            .map(str::trim)
    }
}

fn first_text(v: &[Text]) -> Option<&str> {
    v.first().and_then(|t| t.text.as_deref()).map(str::trim)
}

/// `/capabilities/host/cpu/signature`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub host: Option<CapsHost>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CapsHost {
    #[serde(default)]
    pub cpu: Option<CapsCpu>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CapsCpu {
    #[serde(default)]
    pub signature: Option<Signature>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Signature {
    #[serde(rename = "@family")]
    pub family: u32,
    #[serde(rename = "@model")]
    pub model: u32,
    #[serde(rename = "@stepping")]
    pub stepping: u32,
}

impl Capabilities {
    pub fn parse(xml: &str) -> Result<Capabilities> {
        parse("capabilities", xml)
    }

    pub fn signature(&self) -> Option<&Signature> {
        self.host.as_ref()?.cpu.as_ref()?.signature.as_ref()
    }
}
