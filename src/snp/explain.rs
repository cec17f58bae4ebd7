//! The SEV-SNP mismatch explainer. When the MEASUREMENT of a guest's
//! attestation report differs from the launch digest of the owner's inputs,
//! the owner's question is which input the host changed. The launch digest is
//! a public function of the launch inputs, so the explainer recomputes it for
//! plausible variants of them and names the smallest change that reproduces
//! the reported value, in the words of the `snp-digest` option to change and
//! of what the host did.
//!
//! Pure and cheap: the firmware image is hashed once by the caller (the LD
//! after its pages, [`OwnerLaunch::ovmf_hash`]) and the kernel, initrd and
//! command line once too ([`DirectBoot::hashes`]); every variant continues a
//! clone of that state. The vCPU count costs one PAGE_INFO per extra vCPU, so
//! every count from 1 to [`MAX_VCPUS_TRIED`] is tried for every other variant.
//!
//! What varies (measurement.md §5 and §6, snp-attestation.md §6):
//! - the vCPU count;
//! - the vCPU signature: every named QEMU model, and the owner's own;
//! - the VMM (QEMU, ec2, gce);
//! - the guest features (SEV_FEATURES): 0x1, 0x21 (DebugSwap), Secure TSC,
//!   and each of bits 0 to 15 of the owner's value toggled;
//! - the VMSA form (KVM_SEV_INIT2 or legacy);
//! - with a direct kernel boot: kernel hashes off, whitespace changes of the
//!   command line, no initrd (and a command line change with no initrd).
//!
//! Up to [`MAX_CHANGES`] of these at once, each with any vCPU count.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use crate::core::cpu;
use crate::core::hex;
use crate::core::kernel_hashes::{self, KernelHashes};
use crate::core::snp::{self, GuestContext, Ld, PageType, SnpError, SnpFirmware, SnpLaunch};
use crate::core::vmsa::{Rdx, VmmType, VmsaConfig, VmsaForm};

/// vCPU counts tried: 1 to this (or to the owner's count, if larger).
pub const MAX_VCPUS_TRIED: u32 = 64;
/// Changes combined at most, besides the vCPU count.
pub const MAX_CHANGES: usize = 2;
/// SEV_FEATURES bits named in the SNP ABI and APM (measurement.md §5); each is
/// toggled in turn.
const NAMED_FEATURE_BITS: u32 = 16;
const SNP_ACTIVE: u64 = 1 << 0;
const DEBUG_SWAP: u64 = 1 << 5;
const SECURE_TSC: u64 = 1 << 9;

/// The owner's direct kernel boot (`--kernel`, `--initrd`, `--append`), hashed once.
#[derive(Debug, Clone, Copy)]
pub struct DirectBoot<'a> {
    /// The kernel, initrd and command line digests QEMU puts in the table.
    pub hashes: KernelHashes,
    /// The command line as given (`--append`); `None` measures as empty.
    pub cmdline: Option<&'a str>,
    /// Whether an initrd was given (`--initrd`).
    pub initrd: bool,
}

/// The owner's expected SNP launch: what `snp-digest` takes, with the files
/// already hashed.
#[derive(Debug, Clone, Copy)]
pub struct OwnerLaunch<'a> {
    /// The launch digest after the firmware image's pages (`snp-ovmf-hash`).
    pub ovmf_hash: Ld,
    /// The firmware's footer table and SEV metadata.
    pub firmware: &'a SnpFirmware,
    pub vcpus: u32,
    pub vmm: VmmType,
    /// VMSA form, vCPU signature and guest features.
    pub vmsa: VmsaConfig,
    /// Whether the owner gave a vCPU signature (`--vcpu-type`, `--vcpu-sig` or
    /// family/model/stepping); without one `vmsa.cpu_signature` is unused
    /// (ec2 and gce load a fixed RDX).
    pub signature_given: bool,
    /// Measured direct kernel boot, if the owner expects one.
    pub kernel: Option<DirectBoot<'a>>,
}

/// Why the explainer cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SnpExplainError {
    /// The owner's own launch cannot be measured (the same refusal `snp-digest` gives).
    #[error("the expected launch cannot be measured: {0}")]
    Launch(#[from] SnpError),
    /// A search thread stopped (a bug): an incomplete search names nothing.
    #[error("the search for the changed input stopped before its end (a bug in virt-qemu-sev-validate; please report it)")]
    Incomplete,
    #[error("--vmm-type {} loads the vCPU signature into every VMSA, but no vCPU signature was given", .0.name())]
    NoSignature(VmmType),
}

/// How the host's command line differs from the owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdlineChange {
    TrailingNewline,
    TrailingSpace,
    LeadingSpace,
    Trimmed,
    NoTrailingNewline,
    CollapsedSpaces,
    Empty,
}

impl CmdlineChange {
    const ALL: [CmdlineChange; 7] = [
        CmdlineChange::TrailingNewline,
        CmdlineChange::TrailingSpace,
        CmdlineChange::NoTrailingNewline,
        CmdlineChange::Trimmed,
        CmdlineChange::LeadingSpace,
        CmdlineChange::CollapsedSpaces,
        CmdlineChange::Empty,
    ];

    fn apply(self, c: &str) -> String {
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
    Vcpus {
        expected: u32,
        host: u32,
    },
    VcpuSignature {
        expected: Option<u32>,
        host: u32,
    },
    Vmm {
        expected: VmmType,
        host: VmmType,
    },
    GuestFeatures {
        expected: u64,
        host: u64,
    },
    VmsaForm {
        expected: VmsaForm,
        host: VmsaForm,
    },
    /// The host did not measure the kernel (kernel hashes off).
    NoKernelHashes,
    /// The host's kernel command line: `host` is the whole line.
    Cmdline {
        how: CmdlineChange,
        host: String,
    },
    /// The host booted the kernel without the initrd.
    NoInitrd,
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
fn feature_name(bit: u32) -> String {
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
            Change::Vmm { .. } => return None,
            Change::GuestFeatures { host, .. } => format!("--sev-features {host:#x}"),
            Change::VmsaForm { .. } => self.option(),
            Change::NoKernelHashes => "no --kernel, --initrd or --cmdline".into(),
            Change::Cmdline {
                how: CmdlineChange::Empty,
                ..
            } => "no --cmdline".into(),
            Change::Cmdline { host, .. } => format!("--cmdline {}", shell_word(host)),
            Change::NoInitrd => "no --initrd".into(),
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
        }
        Json {
            kind: self.kind(),
            option: self.option(),
            host: self.host_did(),
        }
        .serialize(s)
    }
}

/// The explainer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnpExplanation {
    /// The MEASUREMENT the report holds.
    #[serde(serialize_with = "ser_hex")]
    pub reported: Ld,
    /// The launch digest of the owner's inputs.
    #[serde(serialize_with = "ser_hex")]
    pub computed: Ld,
    /// The owner's OVMF hash (LD after the firmware image), for the "no
    /// match" advice.
    #[serde(serialize_with = "ser_hex")]
    pub ovmf_hash: Ld,
    /// The smallest set of changes that reproduces `reported`: empty when
    /// the owner's inputs do; `None` when no variant does.
    pub changes: Option<Vec<Change>>,
    /// How many launch digests were compared.
    pub variants_tried: usize,
    /// What the search varied, in words (empty when nothing was searched).
    pub searched: String,
}

fn ser_hex<S: serde::Serializer>(v: &Ld, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(v))
}

impl SnpExplanation {
    /// Whether the owner's inputs give the reported MEASUREMENT.
    pub fn matches(&self) -> bool {
        self.reported == self.computed
    }
}

impl fmt::Display for SnpExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matches() {
            return write!(
                f,
                "the reported MEASUREMENT equals the launch digest of the expected inputs"
            );
        }
        writeln!(
            f,
            "the reported MEASUREMENT differs from the launch digest of the expected inputs"
        )?;
        writeln!(f, "  reported: {}", hex(&self.reported))?;
        writeln!(f, "  computed: {}", hex(&self.computed))?;
        match &self.changes {
            Some(changes) if changes.len() == 1 => {
                write!(f, "The host's launch differs in one input: {}", changes[0])
            }
            Some(changes) => {
                writeln!(f, "The host's launch differs in {} inputs:", changes.len())?;
                for c in changes {
                    writeln!(f, "  - {c}")?;
                }
                let options: Vec<String> = changes.iter().map(Change::option).collect();
                write!(
                    f,
                    "With all of these ({}) snp-digest computes the reported value.",
                    options.join(", ")
                )
            }
            None => write!(
                f,
                "None of {} variants of the inputs reproduces the reported value ({}). What \
                 differs is then an input the search cannot vary: most likely another firmware \
                 build (the expected image's OVMF hash is {}; compare `snp-ovmf-hash --ovmf` of \
                 the host's image), another kernel or initrd, or the report comes from another \
                 guest.",
                self.variants_tried,
                self.searched,
                hex(&self.ovmf_hash)
            ),
        }
    }
}

/// The attestation report fields besides MEASUREMENT that an owner's
/// expectation can fail on, for [`ReportField::comes_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportField {
    Policy,
    HostData,
    IdKeyDigest,
    AuthorKeyDigest,
    FamilyId,
    ImageId,
    GuestSvn,
    Vmpl,
    ReportData,
    ReportedTcb,
    ChipId,
    SigningKey,
    CommittedTcb,
}

impl ReportField {
    /// Where the host or the guest sets this field, and the usual reason it
    /// differs from what the owner expects (snp-attestation.md §6).
    pub fn comes_from(self) -> &'static str {
        match self {
            ReportField::Policy => "POLICY is the guest policy the host launched with (libvirt <policy>, QEMU sev-snp-guest policy=); the firmware forces bit 17 to 1",
            ReportField::HostData => "HOST_DATA is whatever the host gave at launch (libvirt <hostData>, QEMU host-data=, 32 bytes base64); without it, all zero",
            ReportField::IdKeyDigest => "ID_KEY_DIGEST is the SHA-384 of the 0x404-byte SNP public key of the ID key in the host's ID auth (libvirt <idAuth>, QEMU id-auth=), not of a DER key; all zero without an ID block",
            ReportField::AuthorKeyDigest => "AUTHOR_KEY_DIGEST is the SHA-384 of the author key's 0x404-byte SNP public key in the ID auth, present only with libvirt authorKey='yes' (QEMU author-key-enabled=on)",
            ReportField::FamilyId | ReportField::ImageId | ReportField::GuestSvn => "FAMILY_ID, IMAGE_ID and GUEST_SVN come from the host's ID block (libvirt <idBlock>, QEMU id-block=); without one, zero",
            ReportField::Vmpl => "VMPL is the level the guest asked for the report from (snpguest asks at VMPL 1 by default; a guest without an SVSM runs at VMPL 0)",
            ReportField::ReportData => "REPORT_DATA is the 64 bytes the guest put in its request: the owner's nonce, so a different value is a replayed or foreign report",
            ReportField::ReportedTcb => "REPORTED_TCB is the TCB the host's firmware reports; a VCEK for another TCB is stale: fetch the VCEK for this REPORTED_TCB",
            ReportField::ChipId => "CHIP_ID is the processor's; all zero when the host masks it (MASK_CHIP_ID), and then the VCEK cannot be fetched by hwid",
            ReportField::SigningKey => "SIGNING_KEY says whether a VCEK or a VLEK signed: a VLEK (libvirt vcek='no', QEMU vcek-disabled=on, or a host with a VLEK loaded) needs the ASVK chain and the VLEK from the certificate table",
            ReportField::CommittedTcb => "COMMITTED_TCB below CURRENT_TCB means the host updated its SNP firmware without committing it: provisional firmware",
        }
    }
}

/// One way the host may have filled the kernel hashes page.
struct TableVariant {
    changes: Vec<Change>,
    hashes: Option<KernelHashes>,
}

fn table_variants(owner: &OwnerLaunch) -> Vec<TableVariant> {
    let Some(boot) = owner.kernel else {
        return vec![TableVariant {
            changes: vec![],
            hashes: None,
        }];
    };
    let mut v = vec![
        TableVariant {
            changes: vec![],
            hashes: Some(boot.hashes),
        },
        TableVariant {
            changes: vec![Change::NoKernelHashes],
            hashes: None,
        },
    ];
    let no_initrd = KernelHashes {
        initrd: kernel_hashes::empty_digest(),
        ..boot.hashes
    };
    if boot.initrd {
        v.push(TableVariant {
            changes: vec![Change::NoInitrd],
            hashes: Some(no_initrd),
        });
    }
    let owner_line = boot.cmdline.unwrap_or("");
    let mut seen = vec![owner_line.to_string()];
    for how in CmdlineChange::ALL {
        let line = how.apply(owner_line);
        if seen.contains(&line) {
            continue;
        }
        let cmdline = kernel_hashes::cmdline_digest(line.as_bytes());
        seen.push(line.clone());
        let change = Change::Cmdline { how, host: line };
        v.push(TableVariant {
            changes: vec![change.clone()],
            hashes: Some(KernelHashes {
                cmdline,
                ..boot.hashes
            }),
        });
        if boot.initrd {
            v.push(TableVariant {
                changes: vec![change, Change::NoInitrd],
                hashes: Some(KernelHashes {
                    cmdline,
                    ..no_initrd
                }),
            });
        }
    }
    v
}

/// The guest features tried: the owner's first, then the values hosts set.
fn feature_candidates(owner: u64) -> Vec<u64> {
    let mut v = vec![
        owner,
        SNP_ACTIVE,
        SNP_ACTIVE | DEBUG_SWAP,
        owner | SECURE_TSC,
        owner | DEBUG_SWAP,
    ];
    for bit in 0..64 {
        if bit < NAMED_FEATURE_BITS || owner & (1 << bit) != 0 {
            v.push(owner ^ (1 << bit));
        }
    }
    let mut seen = HashSet::new();
    v.retain(|f| seen.insert(*f));
    v
}

/// A VMSA configuration to try under one VMM, with its page contents.
struct VmsaVariant {
    changes: Vec<Change>,
    bsp: Ld,
    ap: Ld,
}

/// The VMSA configurations worth trying under `vmm` with at most `budget`
/// changes, fewest changes first, each distinct pair of pages once (ec2 and
/// gce ignore the signature and the form, so those variants collapse).
fn vmsa_variants(
    owner: &OwnerLaunch,
    vmm: VmmType,
    budget: usize,
) -> Result<Vec<VmsaVariant>, SnpExplainError> {
    let profile = vmm.profile();
    let owner_sig = owner.signature_given.then_some(owner.vmsa.cpu_signature);
    // Signatures: the owner's (if any), then each named model's.
    let mut sigs: Vec<(u32, Option<Change>)> = Vec::new();
    if let Some(s) = owner_sig {
        sigs.push((s, None));
    }
    for (_, s) in cpu::NAMED_MODELS {
        if !sigs.iter().any(|(x, _)| x == s) {
            sigs.push((
                *s,
                Some(Change::VcpuSignature {
                    expected: owner_sig,
                    host: *s,
                }),
            ));
        }
    }
    if matches!(profile.rdx, Rdx::Fixed(_)) {
        // The signature is not in the VMSA: one entry, no change.
        sigs = vec![(owner.vmsa.cpu_signature, None)];
    } else if owner_sig.is_none() && vmm == owner.vmm {
        return Err(SnpExplainError::NoSignature(vmm));
    }
    let forms: Vec<(VmsaForm, Option<Change>)> = {
        let other = match owner.vmsa.form {
            VmsaForm::Init2 => VmsaForm::Legacy,
            VmsaForm::Legacy => VmsaForm::Init2,
        };
        let mut f = vec![(owner.vmsa.form, None)];
        if profile.fpu_from_form {
            f.push((
                other,
                Some(Change::VmsaForm {
                    expected: owner.vmsa.form,
                    host: other,
                }),
            ));
        }
        f
    };
    let features: Vec<(u64, Option<Change>)> = feature_candidates(owner.vmsa.sev_features)
        .into_iter()
        .map(|f| {
            let change = (f != owner.vmsa.sev_features).then_some(Change::GuestFeatures {
                expected: owner.vmsa.sev_features,
                host: f,
            });
            (f, change)
        })
        .collect();

    let mut configs: Vec<(Vec<Change>, VmsaConfig)> = Vec::new();
    for (sig, sc) in &sigs {
        for (form, fc) in &forms {
            for (feat, xc) in &features {
                let changes: Vec<Change> = [sc, xc, fc].into_iter().flatten().cloned().collect();
                // A signature is needed where RDX holds it: a launch whose
                // owner gave none (ec2 with no --vcpu-type) moved to QEMU
                // must name one, which is a change of its own.
                let needs_sig = matches!(profile.rdx, Rdx::CpuSignature) && owner_sig.is_none();
                if changes.len() > budget || (needs_sig && sc.is_none()) {
                    continue;
                }
                configs.push((
                    changes,
                    VmsaConfig {
                        form: *form,
                        cpu_signature: *sig,
                        sev_features: *feat,
                    },
                ));
            }
        }
    }
    configs.sort_by_key(|(c, _)| c.len());
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(configs.len());
    for (changes, cfg) in configs {
        let (bsp, ap) = snp::vmsa_contents(owner.firmware, &profile, &cfg)?;
        if seen.insert((bsp, ap)) {
            out.push(VmsaVariant { changes, bsp, ap });
        }
    }
    Ok(out)
}

/// The launch digest of the owner's inputs.
fn owner_digest(owner: &OwnerLaunch) -> Result<Ld, SnpExplainError> {
    if matches!(owner.vmm.profile().rdx, Rdx::CpuSignature) && !owner.signature_given {
        return Err(SnpExplainError::NoSignature(owner.vmm));
    }
    let hashes = owner.kernel.map(|k| k.hashes);
    let launch = SnpLaunch {
        vcpus: owner.vcpus,
        vmm: owner.vmm.profile(),
        vmsa: owner.vmsa,
        kernel: hashes.as_ref(),
    };
    Ok(snp::launch_digest(
        owner.ovmf_hash,
        owner.firmware,
        &launch,
    )?)
}

/// One part of the search: a VMM and a kernel hashes page, with every VMSA
/// configuration that keeps within [`MAX_CHANGES`] and every vCPU count.
struct Part<'a> {
    vmm: VmmType,
    vmm_change: Option<&'a Change>,
    table: &'a TableVariant,
    configs: &'a [VmsaVariant],
}

/// What one part found: the fewest changes that give the reported value,
/// and how many digests it compared.
type PartResult = (Option<Vec<Change>>, usize);

fn search_part(
    owner: &OwnerLaunch,
    reported: &Ld,
    part: &Part,
    max_vcpus: u32,
) -> Result<PartResult, SnpExplainError> {
    let fixed = usize::from(part.vmm_change.is_some()) + part.table.changes.len();
    let launch = SnpLaunch {
        vcpus: 1,
        vmm: part.vmm.profile(),
        vmsa: owner.vmsa,
        kernel: part.table.hashes.as_ref(),
    };
    let mut after_sections = GuestContext::from_ld(owner.ovmf_hash);
    snp::measure_sections(&mut after_sections, owner.firmware, &launch)?;
    let mut best: Option<Vec<Change>> = None;
    let mut tried = 0usize;
    for c in part
        .configs
        .iter()
        .filter(|c| fixed + c.changes.len() <= MAX_CHANGES)
    {
        let n_changes = fixed + c.changes.len();
        // Nothing here can beat a match already found with as few changes.
        if best.as_ref().is_some_and(|b| b.len() <= n_changes) {
            continue;
        }
        let mut g = after_sections;
        g.update(PageType::Vmsa, snp::VMSA_GPA, &c.bsp);
        for n in 1..=max_vcpus {
            if n > 1 {
                g.update(PageType::Vmsa, snp::VMSA_GPA, &c.ap);
            }
            tried += 1;
            if g.ld() != *reported {
                continue;
            }
            let total = n_changes + usize::from(n != owner.vcpus);
            if best.as_ref().is_some_and(|b| b.len() <= total) {
                continue;
            }
            let mut changes: Vec<Change> = part
                .vmm_change
                .into_iter()
                .chain(&part.table.changes)
                .chain(&c.changes)
                .cloned()
                .collect();
            if n != owner.vcpus {
                changes.push(Change::Vcpus {
                    expected: owner.vcpus,
                    host: n,
                });
            }
            best = Some(changes);
        }
    }
    Ok((best, tried))
}

/// Compares the owner's launch with a report's MEASUREMENT and, when they
/// differ, searches for the smallest change of the inputs that gives the
/// reported value. Errors only when the owner's own launch cannot be
/// measured. The search runs on up to [`snp::MAX_HASH_THREADS`] threads;
/// its answer does not depend on how many.
pub fn explain(owner: &OwnerLaunch, reported: &Ld) -> Result<SnpExplanation, SnpExplainError> {
    let computed = owner_digest(owner)?;
    let mut x = SnpExplanation {
        reported: *reported,
        computed,
        ovmf_hash: owner.ovmf_hash,
        changes: None,
        variants_tried: 1,
        searched: String::new(),
    };
    if computed == *reported {
        x.changes = Some(vec![]);
        return Ok(x);
    }
    let tables = table_variants(owner);
    let max_vcpus = MAX_VCPUS_TRIED.max(owner.vcpus);
    let mut vmms = vec![(owner.vmm, None)];
    for v in [VmmType::Qemu, VmmType::Ec2, VmmType::Gce] {
        if v != owner.vmm {
            vmms.push((
                v,
                Some(Change::Vmm {
                    expected: owner.vmm,
                    host: v,
                }),
            ));
        }
    }
    let configs = vmms
        .iter()
        .map(|(v, change)| vmsa_variants(owner, *v, MAX_CHANGES - usize::from(change.is_some())))
        .collect::<Result<Vec<_>, _>>()?;
    // The parts in the order a single thread would search them: the owner's
    // VMM first, the owner's kernel hashes page first.
    let mut parts = Vec::new();
    for ((vmm, vmm_change), configs) in vmms.iter().zip(&configs) {
        for table in &tables {
            if usize::from(vmm_change.is_some()) + table.changes.len() <= MAX_CHANGES {
                parts.push(Part {
                    vmm: *vmm,
                    vmm_change: vmm_change.as_ref(),
                    table,
                    configs,
                });
            }
        }
    }
    let threads = snp::default_hash_threads().min(parts.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<(usize, Result<PartResult, SnpExplainError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(part) = parts.get(i) else { break };
                        done.push((i, search_part(owner, reported, part, max_vcpus)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    if results.len() != parts.len() {
        return Err(SnpExplainError::Incomplete);
    }
    let mut found: Vec<(usize, Vec<Change>)> = Vec::new();
    let mut tried = 1usize;
    for (i, r) in results {
        let (best, n) = r?;
        tried += n;
        if let Some(b) = best {
            found.push((i, b));
        }
    }
    // Fewest changes first, then the part a single thread would reach first.
    x.changes = found
        .into_iter()
        .min_by_key(|(i, b)| (b.len(), *i))
        .map(|(_, b)| b);
    x.variants_tried = tried;
    x.searched = format!(
        "vCPU counts 1 to {max_vcpus}, every named vCPU model, the VMM types qemu, ec2 and gce, \
         guest features 0x1, 0x21, with Secure TSC or DebugSwap added and with each of bits 0 to \
         15 toggled, both VMSA forms{}; up to {MAX_CHANGES} of these at once with any vCPU count",
        match owner.kernel {
            Some(k) if k.initrd => ", kernel hashes off, command line whitespace, no initrd",
            Some(_) => ", kernel hashes off, command line whitespace",
            None => "",
        }
    );
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_candidates_start_with_the_owner_and_hold_each_value_once() {
        let f = feature_candidates(0x1);
        assert_eq!(f[0], 0x1);
        assert!(f.contains(&0x21));
        assert!(f.contains(&0x201));
        assert!(f.contains(&0x0));
        let mut d = f.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), f.len());
        // A set bit above 15 is toggled too.
        assert!(feature_candidates(1 | 1 << 40).contains(&1));
    }

    #[test]
    fn words() {
        let c = Change::GuestFeatures {
            expected: 0x1,
            host: 0x21,
        };
        assert_eq!(
            c.to_string(),
            "the host enabled DebugSwap: --guest-features 0x21"
        );
        let c = Change::GuestFeatures {
            expected: 0x21,
            host: 0x201,
        };
        assert_eq!(
            c.host_did(),
            "the host enabled SecureTSC and did not enable DebugSwap"
        );
        let c = Change::Vcpus {
            expected: 4,
            host: 2,
        };
        assert_eq!(
            c.to_string(),
            "the host started the guest with 2 vCPUs instead of 4: --vcpus 2"
        );
        let c = Change::VcpuSignature {
            expected: Some(0xA00F11),
            host: 0xA10F10,
        };
        assert_eq!(c.option(), "--vcpu-type EPYC-Genoa");
        assert!(c.host_did().contains("EPYC-Genoa, not EPYC-Milan"));
        let c = Change::Cmdline {
            how: CmdlineChange::TrailingNewline,
            host: "a 'b'\n".into(),
        };
        assert_eq!(c.option(), r"--append $'a \'b\'\n'");
        let c = Change::Cmdline {
            how: CmdlineChange::LeadingSpace,
            host: " it's".into(),
        };
        assert_eq!(c.option(), r"--append ' it'\''s'");
    }

    #[test]
    fn main_command_options_for_each_kind() {
        let cases: Vec<(Change, Option<&str>)> = vec![
            (
                Change::Vcpus {
                    expected: 2,
                    host: 4,
                },
                Some("--num-cpus 4"),
            ),
            (
                Change::VcpuSignature {
                    expected: Some(0xA00F11),
                    host: 0xA10F10,
                },
                Some("--cpu-family 25 --cpu-model 17 --cpu-stepping 0"),
            ),
            (
                Change::Vmm {
                    expected: VmmType::Qemu,
                    host: VmmType::Ec2,
                },
                None,
            ),
            (
                Change::GuestFeatures {
                    expected: 0x1,
                    host: 0x21,
                },
                Some("--sev-features 0x21"),
            ),
            (
                Change::VmsaForm {
                    expected: VmsaForm::Init2,
                    host: VmsaForm::Legacy,
                },
                Some("--vmsa-form legacy"),
            ),
            (
                Change::NoKernelHashes,
                Some("no --kernel, --initrd or --cmdline"),
            ),
            (
                Change::Cmdline {
                    how: CmdlineChange::Empty,
                    host: String::new(),
                },
                Some("no --cmdline"),
            ),
            (
                Change::Cmdline {
                    how: CmdlineChange::TrailingNewline,
                    host: "console=ttyS0\n".into(),
                },
                Some("--cmdline $'console=ttyS0\\n'"),
            ),
            (Change::NoInitrd, Some("no --initrd")),
        ];
        for (c, want) in cases {
            assert_eq!(c.main_option().as_deref(), want, "{c:?}");
        }
    }

    #[test]
    fn id_block_words_for_each_kind() {
        let cases: Vec<(Change, &str)> = vec![
            (
                Change::Vcpus {
                    expected: 2,
                    host: 4,
                },
                "the ID block was made for 4 vCPUs; the domain has 2",
            ),
            (
                Change::Vcpus {
                    expected: 2,
                    host: 1,
                },
                "the ID block was made for 1 vCPU; the domain has 2",
            ),
            (
                Change::VcpuSignature {
                    expected: Some(0x800F12),
                    host: 0xA00F11,
                },
                "the ID block was made for vCPU model EPYC-Milan; the domain's is EPYC",
            ),
            (
                Change::VcpuSignature {
                    expected: Some(0xA00F12),
                    host: 0xA00F11,
                },
                "the ID block was made for vCPU model EPYC-Milan; the domain's is signature 0xA00F12",
            ),
            (
                Change::VcpuSignature {
                    expected: None,
                    host: 0xB10F00,
                },
                "the ID block was made for vCPU signature 0xB10F00",
            ),
            (
                Change::GuestFeatures {
                    expected: 0x1,
                    host: 0x21,
                },
                "the ID block was made for guest features 0x21 (SNPActive and DebugSwap); the domain is launched with 0x1 (SNPActive)",
            ),
            (
                Change::GuestFeatures {
                    expected: 0x0,
                    host: 0x201,
                },
                "the ID block was made for guest features 0x201 (SNPActive and SecureTSC); the domain is launched with 0x0 (none)",
            ),
            (
                Change::Vmm {
                    expected: VmmType::Qemu,
                    host: VmmType::Ec2,
                },
                "the ID block was made for a launch by Amazon EC2's VMM; the domain is launched by QEMU/KVM",
            ),
            (
                Change::VmsaForm {
                    expected: VmsaForm::Init2,
                    host: VmsaForm::Legacy,
                },
                "the ID block was made for a host without KVM_SEV_INIT2 (VMSAs with no FPU control words); the domain's launch is computed for KVM_SEV_INIT2 (--vmsa-form init2)",
            ),
            (
                Change::VmsaForm {
                    expected: VmsaForm::Legacy,
                    host: VmsaForm::Init2,
                },
                "the ID block was made for a host with KVM_SEV_INIT2 (VMSAs with the FPU control words); the domain's launch is computed for the legacy VMSA form (--vmsa-form legacy)",
            ),
            (
                Change::NoKernelHashes,
                "the ID block was made for a launch without kernel hashes; the domain measures its kernel, initrd and command line (kernelHashes='yes')",
            ),
            (
                Change::Cmdline {
                    how: CmdlineChange::TrailingNewline,
                    host: "console=ttyS0\n".into(),
                },
                "the ID block was made for a kernel command line that ends with a newline",
            ),
            (
                Change::Cmdline {
                    how: CmdlineChange::Empty,
                    host: String::new(),
                },
                "the ID block was made for a kernel command line that is empty (no -append)",
            ),
            (
                Change::NoInitrd,
                "the ID block was made for a kernel booted without an initrd; the domain has one",
            ),
        ];
        for (c, words) in cases {
            assert_eq!(c.id_block_words(), words, "{c:?}");
        }
    }

    #[test]
    fn json_names_each_change_by_kind_option_and_host() {
        let x = SnpExplanation {
            reported: [0xAB; 48],
            computed: [0xCD; 48],
            ovmf_hash: [0; 48],
            changes: Some(vec![Change::NoInitrd]),
            variants_tried: 7,
            searched: "s".into(),
        };
        let v = serde_json::to_value(&x).unwrap();
        assert_eq!(v["reported"], "ab".repeat(48));
        assert_eq!(v["computed"], "cd".repeat(48));
        assert_eq!(v["variants_tried"], 7);
        assert_eq!(v["changes"][0]["kind"], "no-initrd");
        assert_eq!(v["changes"][0]["option"], "no --initrd");
        assert_eq!(
            v["changes"][0]["host"],
            "the host booted the kernel without the initrd"
        );
        assert!(!x.matches());
    }

    #[test]
    fn cmdline_changes() {
        assert_eq!(CmdlineChange::Trimmed.apply(" a b\n"), "a b");
        assert_eq!(CmdlineChange::CollapsedSpaces.apply("a  b\tc"), "a b c");
        assert_eq!(CmdlineChange::NoTrailingNewline.apply("a\r\n"), "a");
    }
}
