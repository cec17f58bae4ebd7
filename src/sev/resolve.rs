//! Resolution: the owner's inputs plus, under `--insecure`, the host's
//! facts become the launch the owner expects, with where each value came
//! from. The domain XML checks run here, before any value is taken from it.
//!
//! [`resolve`] decides and does no I/O; [`Resolved::load`] then reads and
//! hashes the files into an [`ExpectedLaunch`].

use std::path::{Path, PathBuf};

use crate::core::cpu;
use crate::core::kernel_hashes::KernelHashes;
use crate::core::keys::{Tek, Tik};
use crate::core::ovmf::GuestArea;
use crate::core::vmsa::{VmsaConfig, VmsaForm};
use crate::error::{Error, Result};
use crate::input;
pub use crate::provenance::{DomainCheck, Origin, Sourced};
use crate::sev::checks;
use crate::sev::launch::{self, Firmware, VmsaSource};
use crate::sev::policy::SevPolicy;
use crate::source::xml::Domain;
use crate::source::HostFacts;

/// Where the owner's SEV-ES VMSAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmsaInput {
    /// No VMSA input: not SEV-ES, or nothing given yet.
    None,
    /// `--vmsa-cpu0` and maybe `--vmsa-cpu1`: the 4096-byte VMSA pages of the
    /// boot CPU and of every other vCPU.
    Files(PathBuf, Option<PathBuf>),
    /// A vCPU signature (CPUID(1).EAX) to build the VMSAs from:
    /// `--cpu-family/--cpu-model/--cpu-stepping`, or the host's.
    Signature(u32),
}

/// What the owner gave for the measurement.
#[derive(Debug, Clone)]
pub struct OwnerInputs {
    /// `--firmware`: the OVMF image.
    pub firmware: Option<PathBuf>,
    /// `--kernel`: the kernel of a measured direct boot.
    pub kernel: Option<PathBuf>,
    /// `--initrd`: the initrd of a measured direct boot.
    pub initrd: Option<PathBuf>,
    /// `--cmdline`: the kernel command line of a measured direct boot.
    pub cmdline: Option<String>,
    /// `--num-cpus`: the vCPU count; each vCPU's VMSA is measured (SEV-ES).
    pub num_cpus: Option<u32>,
    /// The SEV-ES VMSA pages or the signature to build them from.
    pub vmsa: VmsaInput,
    /// `--vmsa-form`: how KVM created the VM, for VMSAs built from a signature.
    pub vmsa_form: VmsaForm,
    /// `--sev-features`: the SEV_FEATURES of VMSAs built from a signature (0
    /// unless given).
    pub sev_features: u64,
}

/// How strict resolution is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `--insecure`: values may come from the host.
    pub insecure: bool,
    /// `--ignore-config`: the domain XML is not checked.
    pub ignore_config: bool,
}

/// The expected launch decided, before its files are read.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The OVMF image: the owner's, or under `--insecure` the domain's
    /// `<loader>`.
    pub firmware: Option<Sourced<PathBuf>>,
    /// The direct-boot kernel: the owner's, or under `--insecure` the domain's
    /// (only with `kernelHashes='yes'`).
    pub kernel: Option<Sourced<PathBuf>>,
    /// The direct-boot initrd: the owner's, or under `--insecure` the domain's.
    pub initrd: Option<Sourced<PathBuf>>,
    /// The kernel command line: the owner's, or under `--insecure` the domain's.
    pub cmdline: Option<Sourced<String>>,
    /// The vCPU count: the owner's, or under `--insecure` the host's (SEV-ES).
    pub num_cpus: Option<Sourced<u32>>,
    /// The VMSA input: the owner's, or under `--insecure` a signature from the
    /// host's `<cpu>` and capabilities (SEV-ES).
    pub vmsa: Sourced<VmsaInput>,
    /// The owner's VMSA form, for VMSAs built from a signature.
    pub vmsa_form: VmsaForm,
    /// The owner's SEV_FEATURES, for VMSAs built from a signature.
    pub sev_features: u64,
    /// The host's CPU signature, when it reported one (for the explainer).
    pub host_signature: Option<u32>,
    /// Policies the host reported beside the one used (for the explainer).
    pub other_policies: Vec<(u32, String)>,
    /// Whether the domain XML checks passed, were skipped or do not apply.
    pub domain_check: DomainCheck,
    /// What `--insecure` let pass that the owner must know.
    pub warnings: Vec<String>,
}

impl Resolved {
    /// Every value taken from the host, by name.
    pub fn from_host(&self) -> Vec<&'static str> {
        let host = |o: Option<Origin>| o == Some(Origin::Host);
        [
            ("firmware", host(self.firmware.as_ref().map(|s| s.origin))),
            ("kernel", host(self.kernel.as_ref().map(|s| s.origin))),
            ("initrd", host(self.initrd.as_ref().map(|s| s.origin))),
            ("cmdline", host(self.cmdline.as_ref().map(|s| s.origin))),
            ("vCPU count", host(self.num_cpus.as_ref().map(|s| s.origin))),
            ("vCPU signature", self.vmsa.origin == Origin::Host),
        ]
        .into_iter()
        .filter_map(|(n, h)| h.then_some(n))
        .collect()
    }
}

/// Decides the expected launch for a launch with `policy`: the owner's
/// inputs, the domain XML checked, and what the owner left out taken from
/// the host where `--insecure` allows it.
pub fn resolve(
    owner: &OwnerInputs,
    facts: &HostFacts,
    policy: u32,
    opts: Options,
) -> Result<Resolved> {
    let mut r = Resolved {
        firmware: owner.firmware.clone().map(Sourced::owner),
        kernel: owner.kernel.clone().map(Sourced::owner),
        initrd: owner.initrd.clone().map(Sourced::owner),
        cmdline: owner.cmdline.clone().map(Sourced::owner),
        num_cpus: owner.num_cpus.map(Sourced::owner),
        vmsa: Sourced::owner(owner.vmsa.clone()),
        vmsa_form: owner.vmsa_form,
        sev_features: owner.sev_features,
        host_signature: facts.host_signature,
        other_policies: Vec::new(),
        domain_check: DomainCheck::NotApplicable,
        warnings: Vec::new(),
    };
    if let Some(hp) = facts.host_policy {
        r.other_policies
            .push((hp, "the policy the host reported".into()));
    }
    if let Some(d) = &facts.domain {
        r.domain_check = check_domain(d, owner, facts, policy, opts)?;
        r.warnings.extend(checks::unmeasured_kernel_warning(
            d,
            opts.insecure,
            owner.kernel.is_some(),
        ));
        let remote = facts.connection.as_ref().is_some_and(|c| c.remote);
        paths_from_domain(&mut r, d, remote, opts.insecure)?;
    }
    let sev_es = SevPolicy::from_bits_retain(policy).contains(SevPolicy::ES);
    if sev_es {
        vcpus_from_host(&mut r, facts, opts.insecure)?;
    }
    Ok(r)
}

/// The domain XML checks, unless `--ignore-config`.
fn check_domain(
    d: &Domain,
    owner: &OwnerInputs,
    facts: &HostFacts,
    policy: u32,
    opts: Options,
) -> Result<DomainCheck> {
    if opts.ignore_config {
        return Ok(DomainCheck::Skipped);
    }
    let ctx = checks::Context {
        secure: !opts.insecure,
        owner_kernel: owner.kernel.is_some(),
        owner_firmware: owner.firmware.is_some(),
        policy,
        vmsa: match owner.vmsa {
            VmsaInput::None => checks::VmsaKind::None,
            VmsaInput::Files(..) => checks::VmsaKind::Files,
            VmsaInput::Signature(s) => checks::VmsaKind::Signature(s),
        },
        num_cpus: owner.num_cpus,
        host_signature: facts.host_signature,
    };
    checks::check_domain(d, &ctx).map_err(|e| Error::DomainXml(Box::new(e)))?;
    Ok(DomainCheck::Passed)
}

/// A path from the domain XML: only from a local host, and only with `--insecure`.
fn host_path(
    what: &str,
    path: Option<&str>,
    remote: bool,
    insecure: bool,
) -> Result<Option<Sourced<PathBuf>>> {
    let Some(p) = path else { return Ok(None) };
    if remote {
        return Err(Error::Usage(format!(
            "Cannot access {what} path remotely: give --{what} with your own copy"
        )));
    }
    if !insecure {
        return Err(Error::Insecure(format!(
            "Using {what} path from XML is not secure: give --{what} with your own copy, or pass --insecure"
        )));
    }
    Ok(Some(Sourced::host(PathBuf::from(p))))
}

/// Firmware, kernel, initrd and cmdline the owner did not give, from the XML.
fn paths_from_domain(r: &mut Resolved, d: &Domain, remote: bool, insecure: bool) -> Result<()> {
    if r.firmware.is_none() {
        r.firmware = host_path("firmware", d.loader_path(), remote, insecure)?;
        if r.firmware.is_none() {
            return Err(Error::Usage(
                "--firmware not specified and no firmware path found in the domain XML".into(),
            ));
        }
    }
    // Kernel, initrd and cmdline are measured only with kernelHashes='yes', so
    // only then are they taken from the host (the Python tool's bug 5).
    if r.kernel.is_some() || !d.kernel_hashes() {
        return Ok(());
    }
    r.kernel = host_path("kernel", d.kernel(), remote, insecure)?;
    if r.kernel.is_none() {
        return Ok(());
    }
    if r.initrd.is_none() {
        r.initrd = host_path("initrd", d.initrd(), remote, insecure)?;
    }
    if r.cmdline.is_none() {
        if let Some(c) = d.cmdline() {
            if !insecure {
                return Err(Error::Insecure(
                    "Using cmdline string from XML is not secure: give --cmdline, or pass --insecure"
                        .into(),
                ));
            }
            r.cmdline = Some(Sourced::host(c.to_string()));
        }
    }
    Ok(())
}

/// The vCPU count and signature of an SEV-ES guest, from the host if the
/// owner gave none: the one place `--insecure` lets them come from there.
fn vcpus_from_host(r: &mut Resolved, facts: &HostFacts, insecure: bool) -> Result<()> {
    if let (None, Some(n)) = (&r.num_cpus, facts.vcpu_count) {
        if !insecure {
            return Err(Error::Insecure(
                "Using CPU count from guest is not secure: give --num-cpus, or pass --insecure"
                    .into(),
            ));
        }
        r.num_cpus = Some(Sourced::host(n));
    }
    if r.vmsa.value != VmsaInput::None {
        return Ok(());
    }
    match &facts.domain {
        Some(d) if facts.knows_vcpu_signature => {
            if !insecure {
                return Err(Error::Insecure(
                    "Using CPU SKU from capabilities is not secure: give --vmsa-cpu0/--vmsa-cpu1 or \
                     --cpu-family/--cpu-model/--cpu-stepping, or pass --insecure"
                        .into(),
                ));
            }
            let sig = host_cpu_signature(d, facts.host_signature)?;
            r.vmsa = Sourced::host(VmsaInput::Signature(sig));
        }
        _ if facts.vcpu_count.is_some() => {
            return Err(Error::Usage(
                "the policy has SEV-ES (bit 2): give --vmsa-cpu0/--vmsa-cpu1 or \
                 --cpu-family/--cpu-model/--cpu-stepping (QEMU's monitor does not report the vCPU signature)"
                    .into(),
            ));
        }
        // Offline: the owner gave everything there is; loading says what is missing.
        _ => {}
    }
    Ok(())
}

/// The vCPU signature the guest really gets, from its `<cpu>` element (the
/// Python tool's bug 1, done right).
pub fn host_cpu_signature(d: &Domain, host_signature: Option<u32>) -> Result<u32> {
    match (d.cpu_mode(), d.cpu_model()) {
        (Some("host-passthrough") | Some("maximum"), _) => host_signature.ok_or_else(|| {
            Error::Usage(
                "Libvirt is too old to report host CPU signature (<capabilities><host><cpu><signature>); give --cpu-family/--cpu-model/--cpu-stepping"
                    .into(),
            )
        }),
        (Some("custom") | None, Some(model)) => cpu::named_model_signature(model).ok_or_else(|| {
            Error::Usage(format!(
                "the signature of CPU model '{model}' is not known; give --cpu-family/--cpu-model/--cpu-stepping or VMSA files"
            ))
        }),
        (mode, _) => Err(Error::Usage(format!(
            "cannot tell which CPU signature <cpu mode='{}'> gives the guest; give --cpu-family/--cpu-model/--cpu-stepping or VMSA files",
            mode.unwrap_or("(none)")
        ))),
    }
}

/// The TIK and TEK, and whether they came from one `--tk` file.
#[derive(Clone)]
pub struct Keys {
    /// The transport integrity key (16 bytes): the HMAC key of MEASURE and of
    /// the LAUNCH_SECRET header.
    pub tik: Tik,
    /// The transport encryption key (16 bytes): encrypts the LAUNCH_SECRET
    /// payload.
    pub tek: Tek,
    /// Both came from one 32-byte `--tk` file (TEK first, then TIK), not from
    /// `--tik` and `--tek`.
    pub from_tk_file: bool,
}

/// The direct-boot inputs as hashed, and where QEMU puts their table.
#[derive(Clone)]
pub struct ExpectedKernel {
    /// The SHA-256 of the kernel, initrd and command line that fill QEMU's
    /// kernel hashes table.
    pub hashes: KernelHashes,
    /// The kernel, and who gave it.
    pub kernel: Sourced<PathBuf>,
    /// The initrd, and who gave it.
    pub initrd: Option<Sourced<PathBuf>>,
    /// The kernel command line, and who gave it.
    pub cmdline: Option<Sourced<String>>,
    /// The guest-physical area QEMU writes the table to, from the firmware's
    /// OVMF footer table.
    pub area: GuestArea,
}

/// The VMSAs of an SEV-ES guest.
#[derive(Clone)]
pub struct ExpectedVmsa {
    /// The pages, read from the owner's files or built from a signature.
    pub source: VmsaSource,
    /// The vCPU count, and who gave it: one VMSA per vCPU is measured.
    pub num_cpus: Sourced<u32>,
    /// Who gave the VMSA files or signature.
    pub origin: Origin,
}

/// The launch the owner expects, hashed: everything the validation stage
/// needs, with no file left to read.
#[derive(Clone)]
pub struct ExpectedLaunch {
    /// The firmware image, hashed.
    pub firmware: Firmware,
    /// The firmware image's path, and who gave it.
    pub firmware_path: Sourced<PathBuf>,
    /// The direct-boot inputs, when a kernel is measured.
    pub kernel: Option<ExpectedKernel>,
    /// The VMSAs, when the policy has the ES bit.
    pub vmsa: Option<ExpectedVmsa>,
    /// The owner's TIK and TEK.
    pub keys: Keys,
    /// The host's CPU signature, when it reported one (for the explainer).
    pub host_signature: Option<u32>,
    /// Policies the host reported beside the one used (for the explainer).
    pub other_policies: Vec<(u32, String)>,
    /// The VMSAs the owner's SEV-ES options describe, when the policy has no
    /// ES bit: not part of the expected measurement, only for the explainer
    /// to try the policy with ES set.
    pub unused_vmsa: Option<ExpectedVmsa>,
}

impl Resolved {
    /// Reads and hashes the files of the expected launch for a guest with
    /// `policy`; the firmware and the direct-boot inputs are hashed concurrently.
    pub fn load(&self, keys: Keys, policy: u32) -> Result<ExpectedLaunch> {
        let firmware_path = self
            .firmware
            .clone()
            .ok_or_else(|| Error::Usage("Either --firmware or --domain is required".into()))?;
        let path = |s: &Option<Sourced<PathBuf>>| s.as_ref().map(|s| s.value.clone());
        let (kernel_path, initrd_path) = (path(&self.kernel), path(&self.initrd));
        let cmdline = self.cmdline.as_ref().map(|c| c.value.as_str());
        let (firmware, hashes) = std::thread::scope(|scope| {
            let hashes = scope.spawn(|| {
                kernel_path
                    .as_deref()
                    .map(|k| input::kernel_hashes(k, initrd_path.as_deref(), cmdline))
                    .transpose()
            });
            let firmware = Firmware::load(&firmware_path.value);
            let hashes = hashes.join().unwrap_or_else(|_| {
                Err(Error::Unexpected("the kernel hashing thread failed".into()))
            });
            (firmware, hashes)
        });
        let firmware = firmware?;
        let kernel = match (hashes?, &self.kernel) {
            (Some(hashes), Some(k)) => Some(ExpectedKernel {
                hashes,
                kernel: k.clone(),
                initrd: self.initrd.clone(),
                cmdline: self.cmdline.clone(),
                area: firmware.require_kernel_hash_area()?,
            }),
            _ => None,
        };
        let (vmsa, unused_vmsa) = if SevPolicy::from_bits_retain(policy).contains(SevPolicy::ES) {
            (Some(self.load_vmsa(&firmware)?), None)
        } else if self.num_cpus.is_some() || self.vmsa.value != VmsaInput::None {
            // Best effort: these inputs only feed the explainer.
            (None, self.load_vmsa(&firmware).ok())
        } else {
            (None, None)
        };
        Ok(ExpectedLaunch {
            firmware,
            firmware_path,
            kernel,
            vmsa,
            keys,
            host_signature: self.host_signature,
            other_policies: self.other_policies.clone(),
            unused_vmsa,
        })
    }

    fn load_vmsa(&self, firmware: &Firmware) -> Result<ExpectedVmsa> {
        let num_cpus = self.num_cpus.clone().ok_or_else(|| {
            Error::Usage(
                "Number of virtual CPUs must be specified for SEV-ES domain: give --num-cpus"
                    .into(),
            )
        })?;
        let source = match &self.vmsa.value {
            VmsaInput::Files(p0, p1) => VmsaSource::Pages {
                bsp: launch::read_vmsa("VMSA file for the boot CPU", p0)?,
                ap: p1
                    .as_deref()
                    .map(|p1: &Path| launch::read_vmsa("VMSA file for the additional CPUs", p1))
                    .transpose()?,
            },
            VmsaInput::Signature(cpu_signature) => VmsaSource::Built {
                config: VmsaConfig {
                    form: self.vmsa_form,
                    cpu_signature: *cpu_signature,
                    sev_features: self.sev_features,
                },
                ap_reset_addr: firmware.require_sev_es_reset_addr()?,
            },
            VmsaInput::None => {
                return Err(Error::Usage(
                    "VMSA for boot CPU required for SEV-ES domain: give --vmsa-cpu0 (and --vmsa-cpu1 \
                     with more than one vCPU), or --cpu-family, --cpu-model and --cpu-stepping of the host"
                        .into(),
                ));
            }
        };
        Ok(ExpectedVmsa {
            source,
            num_cpus,
            origin: self.vmsa.origin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Connection;

    fn owner() -> OwnerInputs {
        OwnerInputs {
            firmware: None,
            kernel: None,
            initrd: None,
            cmdline: None,
            num_cpus: None,
            vmsa: VmsaInput::None,
            vmsa_form: VmsaForm::Legacy,
            sev_features: 0,
        }
    }

    fn local_domain(xml: &str) -> HostFacts {
        HostFacts {
            connection: Some(Connection {
                uri: "qemu:///system".into(),
                remote: false,
            }),
            domain: Some(Domain::parse(xml).unwrap()),
            vcpu_count: Some(3),
            host_signature: Some(0xa00f11),
            knows_vcpu_signature: true,
            ..HostFacts::default()
        }
    }

    const XML: &str = "<domain type='kvm'><name>g</name><vcpu>3</vcpu>\
        <os><loader readonly='yes' type='pflash'>/fw.fd</loader></os>\
        <cpu mode='host-passthrough'/>\
        <launchSecurity type='sev'><policy>0x0005</policy><dhCert>x</dhCert><session>y</session></launchSecurity></domain>";

    fn domain(cpu: &str) -> Domain {
        Domain::parse(&format!("<domain type='kvm'><name>g</name>{cpu}</domain>")).unwrap()
    }

    #[test]
    fn vcpu_signature_errors_name_the_options_in_one_readable_line() {
        let cases = [
            (
                domain("<cpu mode='host-passthrough'/>"),
                "Libvirt is too old",
            ),
            (
                domain("<cpu mode='custom'><model>NoSuchCPU</model></cpu>"),
                "CPU model 'NoSuchCPU' is not known",
            ),
            (
                domain("<cpu mode='host-model'/>"),
                "<cpu mode='host-model'>",
            ),
        ];
        for (d, want) in cases {
            let msg = host_cpu_signature(&d, None).unwrap_err().to_string();
            assert!(msg.contains(want), "{msg}");
            assert!(
                msg.contains("give --cpu-family/--cpu-model/--cpu-stepping"),
                "{msg}"
            );
            assert!(!msg.contains("  ") && !msg.contains('\n'), "{msg:?}");
        }
        // With the host's signature, host-passthrough uses it.
        let d = domain("<cpu mode='host-passthrough'/>");
        assert_eq!(host_cpu_signature(&d, Some(0xa00f11)).unwrap(), 0xa00f11);
    }

    #[test]
    fn insecure_takes_values_from_the_host_and_says_so() {
        let facts = local_domain(XML);
        let opts = Options {
            insecure: true,
            ignore_config: false,
        };
        let r = resolve(&owner(), &facts, 5, opts).unwrap();
        assert_eq!(r.firmware, Some(Sourced::host(PathBuf::from("/fw.fd"))));
        assert_eq!(r.num_cpus, Some(Sourced::host(3)));
        assert_eq!(r.vmsa, Sourced::host(VmsaInput::Signature(0xa00f11)));
        assert_eq!(r.domain_check, DomainCheck::Passed);
        assert_eq!(
            r.from_host(),
            vec!["firmware", "vCPU count", "vCPU signature"]
        );
    }

    #[test]
    fn without_insecure_the_host_gives_nothing() {
        let facts = local_domain(XML);
        let mut o = owner();
        o.firmware = Some("/mine.fd".into());
        o.vmsa = VmsaInput::Signature(0xa00f11);
        let e = resolve(&o, &facts, 5, Options::default()).unwrap_err();
        assert!(e.to_string().contains("CPU count from guest"), "{e}");
        o.num_cpus = Some(3);
        let r = resolve(&o, &facts, 5, Options::default()).unwrap();
        assert!(r.from_host().is_empty());
    }
}
