//! One way the host's IGVM launch differs from the owner's file
//! ([`IgvmChange`]), and its words: what the host did, and what the
//! `--igvm` file would need to hold for `snp-digest` to compute the
//! reported value.

use crate::core::hex;
use crate::core::igvm::vmsa_fields::VmsaField;
use crate::core::igvm::Import;
use crate::core::snp::Ld;
use crate::core::vmsa::VmsaForm;

use super::super::change::feature_name;

/// Where the VMSAs beyond the file's came from, or which were left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmsaCountHow {
    /// The host's copy of the file has this many VMSAs.
    HostFile,
    /// Only the first VMSAs of the file (in vp_index order) were measured.
    FirstOnly,
    /// Each extra vCPU started from QEMU's reset state, as KVM builds its
    /// VMSA: real mode at 0xFFFFFFF0, RDX the vCPU signature.
    ResetState {
        /// The QEMU vCPU model (the first name with the signature).
        model: &'static str,
        /// SEV_FEATURES of the extra VMSAs.
        sev_features: u64,
        /// How KVM created the VM (the FPU words).
        form: VmsaForm,
    },
    /// Each extra vCPU measured with a copy of the file's VMSA of this vCPU.
    CopyOf(u16),
}

/// One difference between the owner's IGVM launch and the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgvmChange {
    /// Another number of VMSAs (vCPUs) measured.
    VmsaCount {
        /// The file's VMSA count.
        file: usize,
        /// The host's.
        host: usize,
        /// Where the difference comes from.
        how: VmsaCountHow,
    },
    /// One field of a VMSA.
    VmsaField {
        /// The vCPU (vp_index) and directive of the VMSA; `None`: every VMSA.
        vmsa: Option<(u16, usize)>,
        /// The field.
        field: VmsaField,
        /// The file's value.
        expected: u64,
        /// The host's.
        host: u64,
    },
    /// A directive's pages imported as another type.
    PageType {
        /// The directive.
        directive: usize,
        /// Its first page's GPA.
        gpa: u64,
        /// How many pages it imports.
        pages: usize,
        /// The file's import.
        expected: Import,
        /// The host's.
        host: Import,
    },
    /// A directive's pages at another GPA.
    PageGpa {
        /// The directive.
        directive: usize,
        /// How many pages it imports.
        pages: usize,
        /// The file's GPA of its first page.
        expected: u64,
        /// The host's.
        host: u64,
    },
    /// Other contents in a directive's pages (the host's copy of the file).
    PageContents {
        /// The directive.
        directive: usize,
        /// The first differing page's GPA.
        gpa: u64,
        /// How many of its pages differ.
        pages: usize,
    },
    /// A parameter area inserted with another size.
    ParameterArea {
        /// The parameter insert directive.
        directive: usize,
        /// The area's index.
        area: u32,
        /// Where it is inserted.
        gpa: u64,
        /// The file's size in pages.
        expected: usize,
        /// The host's.
        host: usize,
    },
    /// The two files measure other directives or another number of pages:
    /// they first differ at the owner's directive `directive`.
    Layout {
        /// Pages the owner's file measures.
        expected: usize,
        /// Pages the host's file measures.
        host: usize,
        /// The owner's first directive that has no counterpart.
        directive: Option<usize>,
    },
    /// The guest policy (not measured).
    Policy {
        /// The file's.
        expected: Option<u64>,
        /// The host's.
        host: Option<u64>,
    },
    /// The SNP ID block (not measured): the fields that differ, and the
    /// launch digest the host's ID block vouches for.
    IdBlock {
        /// The differing fields ("LD", "FAMILY_ID", ...), or "present"/"absent".
        fields: Vec<&'static str>,
        /// The host's ID block's LD, if it has one.
        host_ld: Option<Ld>,
    },
    /// Further differences not listed.
    More(usize),
}

fn vcpus(n: usize) -> String {
    format!("{n} vCPU{}", if n == 1 { "" } else { "s" })
}

fn form_words(f: VmsaForm) -> &'static str {
    match f {
        VmsaForm::Init2 => "KVM_SEV_INIT2",
        VmsaForm::Legacy => "legacy VMSA form",
    }
}

/// "the VMSA of vCPU 0 (directive 47)" or "every VMSA".
fn vmsa_words(vmsa: Option<(u16, usize)>) -> String {
    match vmsa {
        Some((vp, d)) => format!("the VMSA of vCPU {vp} (directive {d})"),
        None => "every VMSA".into(),
    }
}

fn field_words(f: &VmsaField) -> String {
    if f.name.is_empty() {
        format!("the 8 bytes at offset {:#x}", f.offset)
    } else {
        format!("{} (offset {:#x})", f.name, f.offset)
    }
}

/// "enabled DebugSwap and did not enable SecureTSC".
fn feature_words(expected: u64, host: u64) -> String {
    let mut on = Vec::new();
    let mut off = Vec::new();
    for bit in 0..64 {
        if (expected ^ host) & (1 << bit) != 0 {
            if host & (1 << bit) != 0 {
                on.push(feature_name(bit));
            } else {
                off.push(feature_name(bit));
            }
        }
    }
    let mut parts = Vec::new();
    if !on.is_empty() {
        parts.push(format!("enabled {}", on.join(" and ")));
    }
    if !off.is_empty() {
        parts.push(format!("did not enable {}", off.join(" or ")));
    }
    parts.join(" and ")
}

fn opt_hex(v: Option<u64>) -> String {
    v.map_or_else(|| "none".into(), |v| format!("{v:#x}"))
}

fn pages_of(pages: usize, what: &str, directive: usize, gpa: u64) -> String {
    if pages == 1 {
        format!("the {what} of directive {directive} (GPA {gpa:#x})")
    } else {
        format!("the {pages} {what}s of directive {directive} (from GPA {gpa:#x})")
    }
}

impl IgvmChange {
    /// What the host did, in the owner's terms.
    pub fn host_did(&self) -> String {
        match self {
            IgvmChange::VmsaCount { file, host, how } => count_words(*file, *host, how),
            IgvmChange::VmsaField {
                vmsa,
                field,
                expected,
                host,
            } => field_change_words(*vmsa, field, *expected, *host),
            IgvmChange::PageType {
                directive,
                gpa,
                pages,
                expected,
                host,
            } => type_words(*directive, *gpa, *pages, *expected, *host),
            IgvmChange::PageGpa {
                directive,
                pages,
                expected,
                host,
            } => format!(
                "the host loaded {} at GPA {host:#x} (bits {:#x} changed)",
                pages_of(*pages, "page", *directive, *expected),
                expected ^ host
            ),
            IgvmChange::PageContents {
                directive,
                gpa,
                pages,
            } => format!(
                "the host's file has other contents in {} of directive {directive} (the first at GPA {gpa:#x})",
                if *pages == 1 { "one page".to_string() } else { format!("{pages} pages") }
            ),
            IgvmChange::ParameterArea {
                directive,
                area,
                gpa,
                expected,
                host,
            } => format!(
                "the host inserted parameter area {area} (directive {directive}, GPA {gpa:#x}) as {host} page{}, not {expected}",
                if *host == 1 { "" } else { "s" }
            ),
            IgvmChange::Layout {
                expected,
                host,
                directive,
            } => format!(
                "the host's file measures {host} pages where yours measures {expected}{}",
                directive.map_or_else(String::new, |d| format!(
                    "; they first differ at your directive {d}"
                ))
            ),
            IgvmChange::Policy { expected, host } => format!(
                "the host's file carries guest policy {}, not {} (the policy is not measured: the launch digest is unaffected, and the report's POLICY field shows the policy the guest ran with)",
                opt_hex(*host),
                opt_hex(*expected)
            ),
            IgvmChange::IdBlock { fields, host_ld } => format!(
                "the host's file has another SNP ID block ({} differ{}; not measured: the launch digest is unaffected, but SNP_LAUNCH_FINISH checks the ID block against the launch)",
                fields.join(", "),
                host_ld.map_or_else(String::new, |ld| format!(", its LD is {}", hex(&ld)))
            ),
            IgvmChange::More(n) => format!("and {n} more differences"),
        }
    }

    /// What the `--igvm` file would need to hold for `snp-digest` to
    /// compute the reported value.
    pub fn option(&self) -> String {
        match self {
            IgvmChange::VmsaCount {
                host,
                how: VmsaCountHow::HostFile | VmsaCountHow::FirstOnly,
                ..
            } => format!("--igvm with {host} VMSA(s)"),
            IgvmChange::VmsaCount { file, .. } => format!(
                "none: the extra vCPUs' VMSAs are not in the file; start the guest with -smp {file}"
            ),
            IgvmChange::VmsaField {
                vmsa, field, host, ..
            } => format!(
                "--igvm with {} {host:#x} in {}",
                if field.name.is_empty() {
                    field_words(field)
                } else {
                    field.name.to_string()
                },
                vmsa_words(*vmsa)
            ),
            IgvmChange::PageType {
                directive, host, ..
            } => format!(
                "--igvm with directive {directive} imported as {}",
                an(host.name())
            ),
            IgvmChange::PageGpa {
                directive, host, ..
            } => format!("--igvm with directive {directive} at GPA {host:#x}"),
            IgvmChange::PageContents { directive, .. } => {
                format!("--igvm with the host's contents for directive {directive}")
            }
            IgvmChange::ParameterArea { area, host, .. } => {
                format!("--igvm with parameter area {area} of {host} page(s)")
            }
            IgvmChange::Layout { .. } | IgvmChange::More(_) => "--igvm with the host's file".into(),
            IgvmChange::Policy { .. } | IgvmChange::IdBlock { .. } => "none: not measured".into(),
        }
    }

    /// A stable name for the kind of change (`--json`).
    pub fn kind(&self) -> &'static str {
        match self {
            IgvmChange::VmsaCount { .. } => "vmsa-count",
            IgvmChange::VmsaField { field, .. } => match field.name {
                "RIP" => "vmsa-rip",
                "SEV_FEATURES" => "vmsa-sev-features",
                _ => "vmsa-field",
            },
            IgvmChange::PageType { .. } => "page-type",
            IgvmChange::PageGpa { .. } => "page-gpa",
            IgvmChange::PageContents { .. } => "page-contents",
            IgvmChange::ParameterArea { .. } => "parameter-area",
            IgvmChange::Layout { .. } => "page-layout",
            IgvmChange::Policy { .. } => "igvm-policy",
            IgvmChange::IdBlock { .. } => "igvm-id-block",
            IgvmChange::More(_) => "more-differences",
        }
    }

    /// Whether the launch digest covers it (the guest policy and the ID
    /// block are given to SNP_LAUNCH_START and SNP_LAUNCH_FINISH, unmeasured).
    pub fn measured(&self) -> bool {
        !matches!(self, IgvmChange::Policy { .. } | IgvmChange::IdBlock { .. })
    }

    /// The directive it names, if any.
    pub fn directive(&self) -> Option<usize> {
        match self {
            IgvmChange::VmsaField { vmsa, .. } => vmsa.map(|(_, d)| d),
            IgvmChange::PageType { directive, .. }
            | IgvmChange::PageGpa { directive, .. }
            | IgvmChange::PageContents { directive, .. }
            | IgvmChange::ParameterArea { directive, .. } => Some(*directive),
            IgvmChange::Layout { directive, .. } => *directive,
            _ => None,
        }
    }

    /// The GPA it names (the file's), if any.
    pub fn gpa(&self) -> Option<u64> {
        match self {
            IgvmChange::PageType { gpa, .. }
            | IgvmChange::PageContents { gpa, .. }
            | IgvmChange::ParameterArea { gpa, .. } => Some(*gpa),
            IgvmChange::PageGpa { expected, .. } => Some(*expected),
            _ => None,
        }
    }

    /// The VMSA's vCPU, if it names one.
    pub fn vp_index(&self) -> Option<u16> {
        match self {
            IgvmChange::VmsaField { vmsa, .. } => vmsa.map(|(v, _)| v),
            _ => None,
        }
    }

    /// The VMSA field it names ("RIP", or "offset 0x800"), if any.
    pub fn field(&self) -> Option<String> {
        match self {
            IgvmChange::VmsaField { field, .. } if field.name.is_empty() => {
                Some(format!("offset {:#x}", field.offset))
            }
            IgvmChange::VmsaField { field, .. } => Some(field.name.to_string()),
            _ => None,
        }
    }
}

fn field_change_words(
    vmsa: Option<(u16, usize)>,
    field: &VmsaField,
    expected: u64,
    host: u64,
) -> String {
    let whose = vmsa_words(vmsa);
    match field.name {
        "SEV_FEATURES" => format!(
            "the host {} in {whose}: SEV_FEATURES {host:#x} instead of the file's {expected:#x}",
            feature_words(expected, host)
        ),
        "RIP" => format!(
            "the host changed the entry point of {whose}: RIP {host:#x} instead of the file's {expected:#x}"
        ),
        _ => format!(
            "the host changed {whose}: {} is {host:#x} instead of the file's {expected:#x}",
            field_words(field)
        ),
    }
}

fn type_words(directive: usize, gpa: u64, pages: usize, expected: Import, host: Import) -> String {
    let what = pages_of(pages, expected.name(), directive, gpa);
    let why = match (expected, host) {
        (Import::Data, Import::Unmeasured) => " (its data was not measured)",
        (Import::Data, Import::Zero) => " (measured as zeros, not its data)",
        _ => "",
    };
    format!("the host imported {what} as {}{why}", an(host.name()))
}

fn count_words(file: usize, host: usize, how: &VmsaCountHow) -> String {
    match how {
        VmsaCountHow::HostFile => format!("the host's file has {host} VMSA(s), not {file}"),
        VmsaCountHow::FirstOnly => format!(
            "the launch measured only the first {host} of the file's {file} VMSAs: the guest ran with {}, which QEMU 10 refuses for this file, so another VMM or QEMU version launched it",
            vcpus(host)
        ),
        VmsaCountHow::ResetState {
            model,
            sev_features,
            form,
        } => format!(
            "the host started the guest with {} instead of the file's {file}: KVM measured a VMSA for each of the {} extra vCPU(s), in QEMU's reset state ({model}, SEV_FEATURES {sev_features:#x}, {})",
            vcpus(host),
            host.saturating_sub(file),
            form_words(*form)
        ),
        VmsaCountHow::CopyOf(vp) => format!(
            "the host started the guest with {} instead of the file's {file}: each of the {} extra vCPU(s) was measured with a copy of the VMSA of vCPU {vp}",
            vcpus(host),
            host.saturating_sub(file)
        ),
    }
}

/// "an unmeasured page", "a zero page".
fn an(what: &str) -> String {
    let vowel = what
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    format!("{} {what}", if vowel { "an" } else { "a" })
}
