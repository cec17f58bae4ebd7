//! The parts of libvirt's domain and capabilities XML that decide whether a
//! launch can be measured, as typed structures (unknown elements ignored).

use serde::Deserialize;

use crate::error::{Error, Result};

/// Larger XML than any real domain description is refused before parsing.
pub const MAX_XML_LEN: usize = 4 * 1024 * 1024;

/// `<domain>`: a libvirt domain description.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Domain {
    /// `<domain type=...>`, the hypervisor driver (`kvm` for SEV guests).
    #[serde(rename = "@type", default)]
    pub virt_type: Option<String>,
    /// `<name>`.
    #[serde(default)]
    pub name: Option<String>,
    /// `<vcpu>`.
    #[serde(default)]
    pub vcpu: Option<Vcpu>,
    /// `<os>`: firmware, kernel, initrd and command line.
    #[serde(default)]
    pub os: Option<Os>,
    /// `<cpu>`: the vCPU model.
    #[serde(default)]
    pub cpu: Option<Cpu>,
    /// Every `<launchSecurity>` element (one in a valid domain).
    #[serde(rename = "launchSecurity", default)]
    pub launch_security: Vec<LaunchSecurity>,
    /// Whether `<devices>` has a `<channel>` whose `<target>` is named
    /// `org.qemu.guest_agent.0`: the QEMU guest agent's channel.
    #[serde(skip)]
    pub guest_agent_channel: bool,
}

/// `<vcpu placement='static' current='N'>MAX</vcpu>`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Vcpu {
    /// `current=`: vCPUs online at boot, as written.
    #[serde(rename = "@current", default)]
    pub current: Option<String>,
    /// The element text: the maximum vCPU count, as written.
    #[serde(rename = "$text", default)]
    pub max: Option<String>,
}

/// `<os>`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Os {
    /// `firmware='bios|efi'`: libvirt picks the firmware from its JSON descriptors.
    #[serde(rename = "@firmware", default)]
    pub firmware: Option<String>,
    /// `<loader>` elements: the firmware image.
    #[serde(default)]
    pub loader: Vec<Loader>,
    /// `<nvram>` elements: a per-domain UEFI variable store.
    #[serde(default)]
    pub nvram: Vec<Text>,
    /// `<kernel>` elements: the direct-boot kernel path.
    #[serde(default)]
    pub kernel: Vec<Text>,
    /// `<initrd>` elements: the direct-boot initrd path.
    #[serde(default)]
    pub initrd: Vec<Text>,
    /// `<cmdline>` elements: the kernel command line.
    #[serde(default)]
    pub cmdline: Vec<Text>,
}

/// `<loader readonly= type= stateless=>PATH</loader>`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Loader {
    /// `readonly='yes|no'`.
    #[serde(rename = "@readonly", default)]
    pub readonly: Option<String>,
    /// `type='rom|pflash'`.
    #[serde(rename = "@type", default)]
    pub loader_type: Option<String>,
    /// `stateless='yes|no'`: `yes` means no NVRAM.
    #[serde(rename = "@stateless", default)]
    pub stateless: Option<String>,
    /// The firmware image's path on the host.
    #[serde(rename = "$text", default)]
    pub path: Option<String>,
}

/// An element read for its text alone.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Text {
    /// The text, untrimmed; `None` for an empty element.
    #[serde(rename = "$text", default)]
    pub text: Option<String>,
}

/// `<cpu mode=...><model>NAME</model></cpu>`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Cpu {
    /// `mode='custom|host-model|host-passthrough|maximum'`.
    #[serde(rename = "@mode", default)]
    pub mode: Option<String>,
    /// `<model>`: the named CPU model (e.g. `EPYC-Milan`).
    #[serde(default)]
    pub model: Option<Text>,
}

/// `<launchSecurity type='sev|sev-snp'>`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LaunchSecurity {
    /// `type=`: `sev` (SEV and SEV-ES) or `sev-snp`.
    #[serde(rename = "@type", default)]
    pub sec_type: Option<String>,
    /// `kernelHashes='yes|no'` (QEMU `kernel-hashes=on`): measured direct boot.
    #[serde(rename = "@kernelHashes", default)]
    pub kernel_hashes: Option<String>,
    /// SEV-SNP: `authorKey='yes'` (QEMU `author-key-enabled`).
    #[serde(rename = "@authorKey", default)]
    pub author_key: Option<String>,
    /// SEV-SNP: `vcek='no'` (QEMU `vcek-disabled`): the report is signed by a VLEK.
    #[serde(rename = "@vcek", default)]
    pub vcek: Option<String>,
    /// `<policy>`: the guest policy in hex (32-bit SEV, 64-bit SEV-SNP).
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
    /// SEV: `<dhCert>`, base64 of the guest owner's Diffie-Hellman certificate.
    #[serde(rename = "dhCert", default)]
    pub dh_cert: Vec<Text>,
    /// SEV: `<session>`, base64 of the LAUNCH_START session blob.
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

/// The QEMU guest agent's virtio-serial port name.
pub const GUEST_AGENT_CHANNEL: &str = "org.qemu.guest_agent.0";

/// Whether `xml` (already accepted by [`Domain::parse`]) declares the guest
/// agent's channel: `<domain><devices><channel><target name=...>`. A scan
/// of the events, as channels may be anywhere among the devices.
fn has_guest_agent_channel(xml: &str) -> bool {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    loop {
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(_)) => {
                path.pop();
                continue;
            }
            Ok(Event::Eof) | Err(_) => return false,
            Ok(_) => continue,
        };
        let name = e.name().as_ref().to_vec();
        // Only a <target> three levels down is looked at: the XML may nest
        // hundreds of thousands of elements within its 4 MiB.
        let at_channel = || {
            path.len() == 3
                && path[0] == b"domain"
                && path[1] == b"devices"
                && path[2] == b"channel"
        };
        if name == b"target" && at_channel() {
            let named = e.attributes().flatten().any(|a| {
                a.key.as_ref() == b"name" && a.value.as_ref() == GUEST_AGENT_CHANNEL.as_bytes()
            });
            if named {
                return true;
            }
        }
        if !empty {
            path.push(name);
        }
    }
}

impl Domain {
    /// Parses domain XML, refusing more than [`MAX_XML_LEN`] bytes and any DOCTYPE.
    pub fn parse(xml: &str) -> Result<Domain> {
        let mut d: Domain = parse("domain", xml)?;
        d.guest_agent_channel = has_guest_agent_channel(xml);
        Ok(d)
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

    /// The first `<loader>`'s path, trimmed.
    pub fn loader_path(&self) -> Option<&str> {
        self.os()
            .loader
            .first()
            .and_then(|l| l.path.as_deref())
            .map(str::trim)
    }

    /// The first `<kernel>` path, trimmed.
    pub fn kernel(&self) -> Option<&str> {
        first_text(&self.os().kernel)
    }

    /// The first `<initrd>` path, trimmed.
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

    /// `<cpu mode=...>`.
    pub fn cpu_mode(&self) -> Option<&str> {
        self.cpu.as_ref().and_then(|c| c.mode.as_deref())
    }

    /// `<cpu><model>`, trimmed.
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
    /// `<host>`.
    #[serde(default)]
    pub host: Option<CapsHost>,
}

/// `/capabilities/host`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CapsHost {
    /// `<cpu>`: the host CPU.
    #[serde(default)]
    pub cpu: Option<CapsCpu>,
}

/// `/capabilities/host/cpu`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CapsCpu {
    /// `<signature>`; absent from older libvirt.
    #[serde(default)]
    pub signature: Option<Signature>,
}

/// `<signature family= model= stepping=/>`: the host CPU's CPUID(1).EAX, decoded.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Signature {
    /// Family, base and extended combined (decimal, e.g. 25).
    #[serde(rename = "@family")]
    pub family: u32,
    /// Model, base and extended combined (decimal).
    #[serde(rename = "@model")]
    pub model: u32,
    /// Stepping.
    #[serde(rename = "@stepping")]
    pub stepping: u32,
}

impl Capabilities {
    /// Parses capabilities XML, refusing more than [`MAX_XML_LEN`] bytes and any DOCTYPE.
    pub fn parse(xml: &str) -> Result<Capabilities> {
        parse("capabilities", xml)
    }

    /// `/capabilities/host/cpu/signature`, if present.
    pub fn signature(&self) -> Option<&Signature> {
        self.host.as_ref()?.cpu.as_ref()?.signature.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(devices: &str) -> bool {
        let xml = format!("<domain type='kvm'><name>g</name><devices>{devices}</devices></domain>");
        Domain::parse(&xml).unwrap().guest_agent_channel
    }

    #[test]
    fn the_guest_agent_channel_is_found_among_the_devices() {
        let ga = "<channel type='unix'><source mode='bind'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>";
        let other =
            "<channel type='pty'><target type='virtio' name='org.example.other'/></channel>";
        assert!(agent(ga));
        assert!(agent(&format!(
            "{other}<disk type='file'/>{ga}<serial type='pty'/>"
        )));
        assert!(!agent(other));
        assert!(!agent(""));
        // A target of another device, or one outside <devices>, is not the channel.
        assert!(!agent(
            "<console><target type='virtio' name='org.qemu.guest_agent.0'/></console>"
        ));
        let outside = "<domain><channel><target name='org.qemu.guest_agent.0'/></channel></domain>";
        assert!(!Domain::parse(outside).unwrap().guest_agent_channel);
    }
}
