//! One changed launch input ([`Change`]) and its words: the `snp-digest`
//! option, the main command's option, what the host did, and what an ID
//! block made for another launch means.

use std::fmt;

use serde::Serialize;

use super::igvm::IgvmChange;
use crate::core::cpu;
use crate::core::vmsa::{VmmType, VmsaForm};

/// How the host's command line differs from the owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdlineChange {
    /// A newline added at the end.
    TrailingNewline,
    /// A space added at the end.
    TrailingSpace,
    /// A space added at the start.
    LeadingSpace,
    /// Leading and trailing whitespace removed.
    Trimmed,
    /// Trailing newlines and carriage returns removed.
    NoTrailingNewline,
    /// Each run of whitespace made one space.
    CollapsedSpaces,
    /// An empty command line (no -append).
    Empty,
}

impl CmdlineChange {
    pub(super) const ALL: [CmdlineChange; 7] = [
        CmdlineChange::TrailingNewline,
        CmdlineChange::TrailingSpace,
        CmdlineChange::NoTrailingNewline,
        CmdlineChange::Trimmed,
        CmdlineChange::LeadingSpace,
        CmdlineChange::CollapsedSpaces,
        CmdlineChange::Empty,
    ];

    pub(super) fn apply(self, c: &str) -> String {
        match self {
            CmdlineChange::TrailingNewline => format!("{c}\n"),
            CmdlineChange::TrailingSpace => format!("{c} "),
            CmdlineChange::LeadingSpace => format!(" {c}"),
            CmdlineChange::Trimmed => c.trim().to_string(),
            CmdlineChange::NoTrailingNewline => c.trim_end_matches(['\n', '\r']).to_string(),
            CmdlineChange::CollapsedSpaces => c.split_whitespace().collect::<Vec<_>>().join(" "),
            CmdlineChange::Empty => String::new(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            CmdlineChange::TrailingNewline => "ends with a newline",
            CmdlineChange::TrailingSpace => "ends with a space",
            CmdlineChange::LeadingSpace => "starts with a space",
            CmdlineChange::Trimmed => "has no leading or trailing whitespace",
            CmdlineChange::NoTrailingNewline => "has no trailing newline",
            CmdlineChange::CollapsedSpaces => "has its whitespace collapsed to single spaces",
            CmdlineChange::Empty => "is empty (no -append)",
        }
    }
}

/// One input in which the host's launch differs from the owner's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The vCPU count (one VMSA each).
    Vcpus {
        /// The owner's count.
        expected: u32,
        /// The host's count.
        host: u32,
    },
    /// The vCPU signature in RDX of every VMSA.
    VcpuSignature {
        /// The owner's signature, if the owner gave one.
        expected: Option<u32>,
        /// The host's signature.
        host: u32,
    },
    /// The VMM that launched the guest.
    Vmm {
        /// The owner's VMM.
        expected: VmmType,
        /// The host's VMM.
        host: VmmType,
    },
    /// The guest features (SEV_FEATURES) of every VMSA.
    GuestFeatures {
        /// The owner's value.
        expected: u64,
        /// The host's value.
        host: u64,
    },
    /// The VMSA form (KVM_SEV_INIT2 or legacy).
    VmsaForm {
        /// The owner's form.
        expected: VmsaForm,
        /// The host's form.
        host: VmsaForm,
    },
    /// The host did not measure the kernel (kernel hashes off).
    NoKernelHashes,
    /// The host's kernel command line: `host` is the whole line.
    Cmdline {
        /// How it differs from the owner's.
        how: CmdlineChange,
        /// The host's whole command line.
        host: String,
    },
    /// The host booted the kernel without the initrd.
    NoInitrd,
    /// The OVMF_VARS flash's size, which places the SVSM image (the OVMF +
    /// SVSM form).
    VarsSize {
        /// The owner's size in bytes.
        expected: u64,
        /// The host's size in bytes.
        host: u64,
    },
    /// The host's IGVM launch differs from the owner's file.
    Igvm(IgvmChange),
}

/// The first QEMU model name with this signature.
fn model_name(sig: u32) -> Option<&'static str> {
    cpu::NAMED_MODELS
        .iter()
        .find(|(_, s)| *s == sig)
        .map(|(n, _)| *n)
}

fn signature_words(sig: u32) -> String {
    match model_name(sig) {
        Some(n) => n.to_string(),
        None => format!("signature {sig:#X}"),
    }
}

/// Names of the SEV_FEATURES bits (measurement.md §5).
pub(super) fn feature_name(bit: u32) -> String {
    let name = match bit {
        0 => "SNPActive",
        1 => "vTOM",
        2 => "ReflectVC",
        3 => "RestrictedInj",
        4 => "AlternateInj",
        5 => "DebugSwap",
        6 => "PreventHostIBS",
        7 => "BTBIsolation",
        8 => "VmplSSS",
        9 => "SecureTSC",
        10 => "VmgexitParam",
        12 => "IbsVirt",
        14 => "VmsaRegProt",
        15 => "SmtProt",
        _ => return format!("SEV_FEATURES bit {bit}"),
    };
    name.to_string()
}

/// The set SEV_FEATURES bits by name: "SNPActive and DebugSwap", or "none".
fn feature_list(f: u64) -> String {
    let names: Vec<String> = (0..64)
        .filter(|b| f & (1 << b) != 0)
        .map(feature_name)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(" and ")
    }
}

/// A size in bytes, and in KiB or MiB when whole.
fn size_words(n: u64) -> String {
    const MIB: u64 = 1 << 20;
    if n % MIB == 0 {
        format!("{n} bytes ({} MiB)", n / MIB)
    } else if n % 1024 == 0 {
        format!("{n} bytes ({} KiB)", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

fn vmm_words(v: VmmType) -> &'static str {
    match v {
        VmmType::Qemu => "QEMU/KVM",
        VmmType::Ec2 => "Amazon EC2's VMM",
        VmmType::Gce => "Google Compute Engine's VMM",
    }
}

/// A command line as a shell word: ANSI-C quoting when it holds a control character.
fn shell_word(s: &str) -> String {
    if s.chars().any(|c| c.is_control()) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Change {
    /// What to change on the `snp-digest` command line to compute the reported value.
    pub fn option(&self) -> String {
        match self {
            Change::Vcpus { host, .. } => format!("--vcpus {host}"),
            Change::VcpuSignature { host, .. } => match model_name(*host) {
                Some(n) => format!("--vcpu-type {n}"),
                None => format!("--vcpu-sig {host:#x}"),
            },
            Change::Vmm { host, .. } => format!("--vmm-type {}", host.name()),
            Change::GuestFeatures { host, .. } => format!("--guest-features {host:#x}"),
            Change::VmsaForm { host, .. } => format!(
                "--vmsa-form {}",
                match host {
                    VmsaForm::Init2 => "init2",
                    VmsaForm::Legacy => "legacy",
                }
            ),
            Change::NoKernelHashes => "no --kernel, --initrd or --append".into(),
            Change::Cmdline {
                how: CmdlineChange::Empty,
                ..
            } => "no --append".into(),
            Change::Cmdline { host, .. } => format!("--append {}", shell_word(host)),
            Change::NoInitrd => "no --initrd".into(),
            Change::VarsSize { host, .. } => format!("--vars-size {host}"),
            Change::Igvm(c) => c.option(),
        }
    }

    /// What to change on the main command's line (`--domain`/`--qmp` on an
    /// SNP guest) to compute the reported value; `None` where it has no such
    /// option (another VMM).
    pub fn main_option(&self) -> Option<String> {
        Some(match self {
            Change::Vcpus { host, .. } => format!("--num-cpus {host}"),
            Change::VcpuSignature { host, .. } => {
                let (f, m, s) = cpu::family_model_stepping(*host);
                format!("--cpu-family {f} --cpu-model {m} --cpu-stepping {s}")
            }
            Change::Vmm { .. } | Change::Igvm(_) => return None,
            Change::GuestFeatures { host, .. } => format!("--sev-features {host:#x}"),
            Change::VmsaForm { .. } => self.option(),
            Change::NoKernelHashes => "no --kernel, --initrd or --cmdline".into(),
            Change::Cmdline {
                how: CmdlineChange::Empty,
                ..
            } => "no --cmdline".into(),
            Change::Cmdline { host, .. } => format!("--cmdline {}", shell_word(host)),
            Change::NoInitrd => "no --initrd".into(),
            // The main command has no OVMF + SVSM form.
            Change::VarsSize { .. } => return None,
        })
    }

    /// What the host did, in the owner's terms.
    pub fn host_did(&self) -> String {
        match self {
            Change::Vcpus { expected, host } => format!(
                "the host started the guest with {host} vCPU{} instead of {expected}",
                if *host == 1 { "" } else { "s" }
            ),
            Change::VcpuSignature { expected, host } => match (model_name(*host), expected) {
                (Some(n), Some(e)) => format!(
                    "the host's vCPU model is {n}, not {}",
                    signature_words(*e)
                ),
                (Some(n), None) => format!("the host's vCPU model is {n}"),
                (None, Some(e)) => format!(
                    "the host's vCPU signature is {host:#X}, not {}",
                    signature_words(*e)
                ),
                (None, None) => format!("the host's vCPU signature is {host:#X}"),
            },
            Change::Vmm { expected, host } => format!(
                "the guest was launched by {}, not {}",
                vmm_words(*host),
                vmm_words(*expected)
            ),
            Change::GuestFeatures { expected, host } => {
                let diff = expected ^ host;
                let mut enabled = Vec::new();
                let mut disabled = Vec::new();
                for bit in 0..64 {
                    if diff & (1 << bit) != 0 {
                        if host & (1 << bit) != 0 {
                            enabled.push(feature_name(bit));
                        } else {
                            disabled.push(feature_name(bit));
                        }
                    }
                }
                let mut parts = Vec::new();
                if !enabled.is_empty() {
                    parts.push(format!("enabled {}", enabled.join(" and ")));
                }
                if !disabled.is_empty() {
                    parts.push(format!("did not enable {}", disabled.join(" or ")));
                }
                format!("the host {}", parts.join(" and "))
            }
            Change::VmsaForm {
                host: VmsaForm::Legacy,
                ..
            } => "the host created the VM without KVM_SEV_INIT2 (an older out-of-tree AMD SNP host kernel): its VMSAs hold no FPU control words".into(),
            Change::VmsaForm {
                host: VmsaForm::Init2,
                ..
            } => "the host created the VM with KVM_SEV_INIT2 (every upstream Linux SNP host): its VMSAs hold the FPU control words".into(),
            Change::NoKernelHashes => "the host did not measure the kernel (kernel hashes off: libvirt kernelHashes='yes' or QEMU kernel-hashes=on is missing)".into(),
            Change::Cmdline { how, .. } => {
                format!("the host's kernel command line {}", how.describe())
            }
            Change::NoInitrd => "the host booted the kernel without the initrd".into(),
            Change::VarsSize { expected, host } => format!(
                "the host's OVMF_VARS flash (pflash unit 1) is {}, not {}, so the SVSM image and its entry point sit {} bytes {}",
                size_words(*host),
                size_words(*expected),
                host.abs_diff(*expected),
                if host > expected { "lower" } else { "higher" }
            ),
            Change::Igvm(c) => c.host_did(),
        }
    }

    /// The change in the words of an ID block that does not match its
    /// domain: here `expected` is the domain's launch and `host` the launch
    /// the ID block was made for ("the ID block was made for 4 vCPUs; the
    /// domain has 2").
    pub fn id_block_words(&self) -> String {
        let made = "the ID block was made for";
        match self {
            Change::Vcpus { expected, host } => format!(
                "{made} {host} vCPU{}; the domain has {expected}",
                if *host == 1 { "" } else { "s" }
            ),
            Change::VcpuSignature { expected, host } => {
                let made_for = match model_name(*host) {
                    Some(n) => format!("{made} vCPU model {n}"),
                    None => format!("{made} vCPU signature {host:#X}"),
                };
                match expected {
                    Some(e) => match model_name(*e) {
                        Some(n) => format!("{made_for}; the domain's is {n}"),
                        None => format!("{made_for}; the domain's is signature {e:#X}"),
                    },
                    None => made_for,
                }
            }
            Change::Vmm { expected, host } => format!(
                "{made} a launch by {}; the domain is launched by {}",
                vmm_words(*host),
                vmm_words(*expected)
            ),
            Change::GuestFeatures { expected, host } => format!(
                "{made} guest features {host:#x} ({}); the domain is launched with {expected:#x} ({})",
                feature_list(*host),
                feature_list(*expected)
            ),
            Change::VmsaForm { expected, host } => format!(
                "{made} {}; the domain's launch is computed {}",
                match host {
                    VmsaForm::Legacy => "a host without KVM_SEV_INIT2 (VMSAs with no FPU control words)",
                    VmsaForm::Init2 => "a host with KVM_SEV_INIT2 (VMSAs with the FPU control words)",
                },
                match expected {
                    VmsaForm::Legacy => "for the legacy VMSA form (--vmsa-form legacy)",
                    VmsaForm::Init2 => "for KVM_SEV_INIT2 (--vmsa-form init2)",
                }
            ),
            Change::NoKernelHashes => format!(
                "{made} a launch without kernel hashes; the domain measures its kernel, initrd and \
                 command line (kernelHashes='yes')"
            ),
            Change::Cmdline { how, .. } => {
                format!("{made} a kernel command line that {}", how.describe())
            }
            Change::NoInitrd => format!("{made} a kernel booted without an initrd; the domain has one"),
            Change::VarsSize { expected, host } => format!(
                "{made} an OVMF_VARS flash of {}; the domain's is {}",
                size_words(*host),
                size_words(*expected)
            ),
            Change::Igvm(c) => format!(
                "{made} a launch that differs from the domain's IGVM file: {}",
                c.host_did()
            ),
        }
    }

    /// A stable name for the kind of change (`--json`).
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Vcpus { .. } => "vcpus",
            Change::VcpuSignature { .. } => "vcpu-signature",
            Change::Vmm { .. } => "vmm-type",
            Change::GuestFeatures { .. } => "guest-features",
            Change::VmsaForm { .. } => "vmsa-form",
            Change::NoKernelHashes => "no-kernel-hashes",
            Change::Cmdline { .. } => "cmdline",
            Change::NoInitrd => "no-initrd",
            Change::VarsSize { .. } => "vars-size",
            Change::Igvm(c) => c.kind(),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.host_did(), self.option())
    }
}

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            kind: &'a str,
            option: String,
            host: String,
            // Where an IGVM change is: absent for the other kinds.
            #[serde(skip_serializing_if = "Option::is_none")]
            directive: Option<usize>,
            #[serde(skip_serializing_if = "Option::is_none")]
            gpa: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            vp_index: Option<u16>,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            measured: Option<bool>,
        }
        let igvm = match self {
            Change::Igvm(c) => Some(c),
            _ => None,
        };
        Json {
            kind: self.kind(),
            option: self.option(),
            host: self.host_did(),
            directive: igvm.and_then(IgvmChange::directive),
            gpa: igvm.and_then(IgvmChange::gpa).map(|g| format!("{g:#x}")),
            vp_index: igvm.and_then(IgvmChange::vp_index),
            field: igvm.and_then(IgvmChange::field),
            measured: igvm.map(IgvmChange::measured),
        }
        .serialize(s)
    }
}
