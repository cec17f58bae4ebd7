//! Domain XML templates ([`DomainSpec`]) and the domains' life through virsh: define, start
//! paused, resume, destroy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run_timeout, split, write_file, Host, CMDLINE, CMD_TIMEOUT, VIRSH};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
}

/// The vCPU model of a domain template.
#[derive(Clone, Debug, PartialEq)]
pub enum Cpu {
    /// No `<cpu>` element (QEMU gets libvirt's default, qemu64 under TCG).
    Default,
    /// `<cpu mode='custom' match='exact'><model fallback='forbid'>NAME</model></cpu>`.
    Custom(String),
    /// `<cpu mode='maximum'/>`: `-cpu max`; the wrapper then uses the host's CPUID signature,
    /// like `-cpu host` would give on SEV hardware (host-passthrough needs KVM).
    Maximum,
    /// `<cpu mode='host-passthrough'/>` (libvirt refuses it for TCG domains).
    HostPassthrough,
}

/// `<launchSecurity type='sev-snp'>` of a domain template (libvirt >= 10.5); the base64
/// values go into the XML as they are.
#[derive(Clone, Debug, Default)]
pub struct SnpSpec {
    pub policy: u64,
    /// `authorKey` and `vcek` attributes: None = absent.
    pub author_key: Option<bool>,
    pub vcek: Option<bool>,
    pub id_block: Option<String>,
    pub id_auth: Option<String>,
    pub host_data: Option<String>,
    pub guest_visible_workarounds: Option<String>,
}

/// A domain XML template; [`DomainSpec::xml`] renders it.
#[derive(Clone, Debug)]
pub struct DomainSpec {
    pub name: String,
    pub emulator: PathBuf,
    pub firmware: PathBuf,
    /// `<loader type='...'>`: "rom" (QEMU -bios) or "pflash".
    pub loader_type: String,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
    /// `kernelHashes` attribute: None = absent.
    pub kernel_hashes: Option<bool>,
    pub policy: u32,
    /// Online vCPUs (`current`), and the maximum if different.
    pub vcpus: u32,
    pub max_vcpus: Option<u32>,
    pub cpu: Cpu,
    /// Whether `<launchSecurity type='sev'>` is present at all.
    pub launch_security: bool,
    /// Whether `<dhCert>` and `<session>` are present (the validators require them).
    pub dh_session: bool,
    pub memory_mib: u32,
    /// An SNP domain: `<launchSecurity type='sev-snp'>` instead of `type='sev'` (the
    /// `policy` and `dh_session` fields are then unused).
    pub snp: Option<SnpSpec>,
}

impl DomainSpec {
    pub fn xml(&self) -> String {
        let mut x = String::new();
        let e = |p: &Path| xml_escape(&p.to_string_lossy());
        let _ = writeln!(x, "<domain type='qemu'>");
        let _ = writeln!(x, "  <name>{}</name>", xml_escape(&self.name));
        let _ = writeln!(x, "  <memory unit='MiB'>{}</memory>", self.memory_mib);
        match self.max_vcpus {
            Some(max) => {
                let _ = writeln!(
                    x,
                    "  <vcpu placement='static' current='{}'>{max}</vcpu>",
                    self.vcpus
                );
            }
            None => {
                let _ = writeln!(x, "  <vcpu placement='static'>{}</vcpu>", self.vcpus);
            }
        }
        let _ = writeln!(x, "  <os>");
        let _ = writeln!(x, "    <type arch='x86_64' machine='q35'>hvm</type>");
        // A pflash loader without NVRAM must be stateless (libvirt >= 8.6); NVRAM is not
        // measured, so attestation wants none.
        let stateless = if self.loader_type == "pflash" {
            " stateless='yes'"
        } else {
            ""
        };
        let _ = writeln!(
            x,
            "    <loader readonly='yes' type='{}'{stateless}>{}</loader>",
            self.loader_type,
            e(&self.firmware)
        );
        if let Some(k) = &self.kernel {
            let _ = writeln!(x, "    <kernel>{}</kernel>", e(k));
        }
        if let Some(i) = &self.initrd {
            let _ = writeln!(x, "    <initrd>{}</initrd>", e(i));
        }
        if let Some(c) = &self.cmdline {
            let _ = writeln!(x, "    <cmdline>{}</cmdline>", xml_escape(c));
        }
        let _ = writeln!(x, "  </os>");
        let _ = writeln!(x, "  <features><acpi/></features>");
        match &self.cpu {
            Cpu::Default => {}
            Cpu::Custom(m) => {
                let _ = writeln!(
                    x,
                    "  <cpu mode='custom' match='exact'><model fallback='forbid'>{}</model></cpu>",
                    xml_escape(m)
                );
            }
            Cpu::Maximum => {
                let _ = writeln!(x, "  <cpu mode='maximum'/>");
            }
            Cpu::HostPassthrough => {
                let _ = writeln!(x, "  <cpu mode='host-passthrough'/>");
            }
        }
        let _ = writeln!(
            x,
            "  <devices><emulator>{}</emulator></devices>",
            e(&self.emulator)
        );
        if let Some(snp) = &self.snp {
            let yes_no = |name: &str, v: Option<bool>| match v {
                Some(true) => format!(" {name}='yes'"),
                Some(false) => format!(" {name}='no'"),
                None => String::new(),
            };
            let _ = writeln!(
                x,
                "  <launchSecurity type='sev-snp'{}{}{}>",
                yes_no("kernelHashes", self.kernel_hashes),
                yes_no("authorKey", snp.author_key),
                yes_no("vcek", snp.vcek)
            );
            let _ = writeln!(
                x,
                "    <cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits>"
            );
            let _ = writeln!(x, "    <policy>0x{:08x}</policy>", snp.policy);
            for (tag, v) in [
                ("guestVisibleWorkarounds", &snp.guest_visible_workarounds),
                ("idBlock", &snp.id_block),
                ("idAuth", &snp.id_auth),
                ("hostData", &snp.host_data),
            ] {
                if let Some(v) = v {
                    let _ = writeln!(x, "    <{tag}>{v}</{tag}>");
                }
            }
            let _ = writeln!(x, "  </launchSecurity>");
        } else if self.launch_security {
            let kh = match self.kernel_hashes {
                Some(true) => " kernelHashes='yes'",
                Some(false) => " kernelHashes='no'",
                None => "",
            };
            let _ = writeln!(x, "  <launchSecurity type='sev'{kh}>");
            let _ = writeln!(
                x,
                "    <cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits>"
            );
            let _ = writeln!(x, "    <policy>0x{:04x}</policy>", self.policy);
            if self.dh_session {
                // Base64 of placeholder owner data: QEMU would hand them to the firmware,
                // the simulation takes TIK/TEK from its configuration instead.
                let _ = writeln!(x, "    <dhCert>ZGgtY2VydC1wbGFjZWhvbGRlcg==</dhCert>");
                let _ = writeln!(x, "    <session>c2Vzc2lvbi1wbGFjZWhvbGRlcg==</session>");
            }
            let _ = writeln!(x, "  </launchSecurity>");
        }
        let _ = writeln!(x, "</domain>");
        x
    }
}

impl Host {
    // ------------------------------------------------------------------- templates

    fn base_spec(&self, name: &str) -> DomainSpec {
        DomainSpec {
            name: name.to_string(),
            emulator: self.emulator.clone(),
            firmware: self.fw_plain.clone(),
            loader_type: "rom".into(),
            kernel: None,
            initrd: None,
            cmdline: None,
            kernel_hashes: None,
            policy: 0x3,
            vcpus: 1,
            max_vcpus: None,
            cpu: Cpu::Default,
            launch_security: true,
            dh_session: true,
            memory_mib: 128,
            snp: None,
        }
    }

    /// SEV (policy 0x3), firmware only: loader = the copy of Debian's OVMF.fd.
    pub fn spec_sev_firmware(&self, name: &str) -> DomainSpec {
        self.base_spec(name)
    }

    /// SEV (policy 0x1) direct kernel boot with kernelHashes='yes', on the patched firmware,
    /// with the harness's kernel, initrd and [`CMDLINE`].
    pub fn spec_sev_kernel_hashes(&self, name: &str) -> DomainSpec {
        DomainSpec {
            policy: 0x1,
            ..self.direct_boot(name, &self.fw_hashes)
        }
    }

    /// Direct kernel boot with kernelHashes='yes' on `firmware`, with the harness's kernel,
    /// initrd and [`CMDLINE`].
    fn direct_boot(&self, name: &str, firmware: &Path) -> DomainSpec {
        DomainSpec {
            firmware: firmware.to_path_buf(),
            kernel: Some(self.kernel.clone()),
            initrd: Some(self.initrd.clone()),
            cmdline: Some(CMDLINE.to_string()),
            kernel_hashes: Some(true),
            ..self.base_spec(name)
        }
    }

    /// SEV-ES (policy 0x5) with `vcpus` online vCPUs (of `vcpus + 2` maximum) and `cpu`.
    pub fn spec_sev_es(&self, name: &str, vcpus: u32, cpu: Cpu) -> DomainSpec {
        DomainSpec {
            policy: 0x5,
            vcpus,
            max_vcpus: Some(vcpus + 2),
            cpu,
            ..self.base_spec(name)
        }
    }

    /// SEV-SNP (policy 0x30000) direct kernel boot with kernelHashes='yes' on the ROM
    /// [`Host::firmware_snp`], the harness's kernel, initrd and [`CMDLINE`], `vcpus` vCPUs of
    /// model EPYC-Milan; no ID block, no hostData.
    pub fn spec_snp(&self, name: &str, vcpus: u32) -> DomainSpec {
        DomainSpec {
            vcpus,
            cpu: Cpu::Custom("EPYC-Milan".into()),
            launch_security: false,
            dh_session: false,
            snp: Some(SnpSpec {
                policy: 0x30000,
                ..SnpSpec::default()
            }),
            ..self.direct_boot(name, &self.fw_snp)
        }
    }

    pub fn domain_xml_sev_firmware(&self, name: &str) -> String {
        self.spec_sev_firmware(name).xml()
    }
    pub fn domain_xml_sev_kernel_hashes(&self, name: &str) -> String {
        self.spec_sev_kernel_hashes(name).xml()
    }
    pub fn domain_xml_sev_es(&self, name: &str, vcpus: u32, cpu: Cpu) -> String {
        self.spec_sev_es(name, vcpus, cpu).xml()
    }

    // ------------------------------------------------------------------- virsh

    /// `virsh -c URI ARGS` (as root, through the daemon's socket).
    pub fn virsh(&self, args: &[&str]) -> (i32, String, String) {
        let out = run_timeout(
            Command::new(VIRSH)
                .arg("-q")
                .arg("-c")
                .arg(self.uri())
                .args(args),
            CMD_TIMEOUT,
        );
        split(&out)
    }

    fn virsh_ok(&self, args: &[&str]) -> Result<String, String> {
        let (rc, out, err) = self.virsh(args);
        if rc == 0 {
            Ok(out)
        } else {
            Err(format!(
                "virsh {}: exit {rc}: {}{}",
                args.join(" "),
                err.trim(),
                out.trim()
            ))
        }
    }

    /// Defines the domain (registered for teardown).
    pub fn define(&self, xml: &str) -> Result<String, String> {
        let name = xml
            .split("<name>")
            .nth(1)
            .and_then(|s| s.split("</name>").next())
            .ok_or("domain XML has no <name>")?
            .to_string();
        let path = self.dir.join("xml").join(format!("{name}.xml"));
        write_file(&path, xml.as_bytes(), 0o644);
        self.virsh_ok(&["define", &path.to_string_lossy()])?;
        self.domains.lock().unwrap().push(name.clone());
        Ok(name)
    }

    /// Defines the domain and starts it paused (`virsh start --paused`); returns its name.
    pub fn define_and_start_paused(&self, xml: &str) -> Result<String, String> {
        let name = self.define(xml)?;
        if let Err(e) = self.virsh_ok(&["start", "--paused", &name]) {
            return Err(format!("{e}\n{}", self.tail_logs()));
        }
        Ok(name)
    }

    /// Makes the "host" measure something other than what the domain XML and libvirt ask for
    /// when `name` next starts (a compromised host): `overrides` may set "firmware",
    /// "kernel", "initrd", "cmdline" (strings), "smp" (number) and "cpu" (QEMU -cpu value).
    pub fn tamper(&self, name: &str, overrides: serde_json::Value) {
        let p = self.dir.join("state").join(format!("tamper-{name}.json"));
        write_file(&p, overrides.to_string().as_bytes(), 0o644);
    }

    /// `virsh domstate NAME` (e.g. "paused", "running", "shut off").
    pub fn state(&self, name: &str) -> String {
        self.virsh(&["domstate", name]).1.trim().to_string()
    }

    pub fn resume(&self, name: &str) -> Result<String, String> {
        self.virsh_ok(&["resume", name])
    }

    /// `virsh domlaunchsecinfo NAME` as key → value.
    pub fn launch_sec_info(&self, name: &str) -> Result<Vec<(String, String)>, String> {
        let out = self.virsh_ok(&["domlaunchsecinfo", name])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect())
    }

    /// Destroys (if running) and undefines the domain.
    pub fn destroy(&self, name: &str) {
        let _ = self.virsh(&["destroy", name]);
        let _ = self.virsh(&["undefine", "--nvram", name]);
        self.domains.lock().unwrap().retain(|d| d != name);
    }
}
