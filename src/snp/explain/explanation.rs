//! The explainer's answer ([`SnpExplanation`]) and, for the report fields
//! besides MEASUREMENT, where each comes from ([`ReportField`]).

use std::fmt;

use serde::Serialize;

use super::igvm::{HostFileComparison, IgvmExplanation};
use super::Change;
use crate::core::hex;
use crate::core::snp::Ld;

/// The explainer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnpExplanation {
    /// The MEASUREMENT the report holds.
    #[serde(serialize_with = "ser_hex")]
    pub reported: Ld,
    /// The launch digest of the owner's inputs.
    #[serde(serialize_with = "ser_hex")]
    pub computed: Ld,
    /// What names the owner's build, for the "no match" advice: the OVMF
    /// hash (LD after the firmware image), or for an IGVM launch the
    /// file's SHA-384 (also in [`IgvmExplanation::file_sha384`]).
    #[serde(serialize_with = "ser_hex")]
    pub ovmf_hash: Ld,
    /// The smallest set of changes that reproduces `reported`: empty when
    /// the owner's inputs do; `None` when no variant does.
    pub changes: Option<Vec<Change>>,
    /// How many launch digests were compared.
    pub variants_tried: usize,
    /// What the search varied, in words (empty when nothing was searched).
    pub searched: String,
    /// For an IGVM launch: the file, the search's budget and the host's
    /// copy of the file compared (absent for the other launches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub igvm: Option<IgvmExplanation>,
    /// Whether the expected launch boots OVMF alone or behind an SVSM: it
    /// decides what the search could not vary. Not in the JSON document.
    #[serde(skip)]
    pub firmware: FirmwareForm,
}

/// The firmware of an OVMF launch the explainer searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirmwareForm {
    /// OVMF alone (`snp-digest --ovmf`; an IGVM launch too).
    #[default]
    Ovmf,
    /// OVMF with a COCONUT-SVSM image below it (`snp-digest --svsm`).
    OvmfSvsm,
}

pub(super) fn ser_hex<S: serde::Serializer>(v: &Ld, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(v))
}

impl SnpExplanation {
    /// The answer before any search: `changes` is empty (nothing changed)
    /// when `computed` is the reported value, else `None` until a search
    /// finds the change.
    pub fn start(reported: Ld, computed: Ld, ovmf_hash: Ld, firmware: FirmwareForm) -> Self {
        SnpExplanation {
            reported,
            computed,
            ovmf_hash,
            changes: (reported == computed).then(Vec::new),
            variants_tried: 1,
            searched: String::new(),
            igvm: None,
            firmware,
        }
    }

    /// Whether the owner's inputs give the reported MEASUREMENT.
    pub fn matches(&self) -> bool {
        self.reported == self.computed
    }

    fn host_file(&self) -> Option<&HostFileComparison> {
        self.igvm.as_ref().and_then(|i| i.host_file.as_ref())
    }

    /// Whether the host's copy of the IGVM file gives the reported value.
    pub fn host_gives_reported(&self) -> bool {
        self.host_file().is_some_and(|h| h.gives_reported)
    }

    /// The differences of the host's IGVM file that the digest covers.
    pub fn host_measured_differences(&self) -> Vec<Change> {
        let Some(h) = self.host_file() else {
            return vec![];
        };
        h.differences
            .iter()
            .filter(|c| !matches!(c, Change::Igvm(i) if !i.measured()))
            .cloned()
            .collect()
    }

    /// When no variant of an OVMF launch reproduces the reported value: the
    /// inputs the search cannot vary that most likely differ, in words.
    pub fn unsearched(&self) -> String {
        match self.firmware {
            FirmwareForm::Ovmf => format!(
                "most likely another firmware build (the expected image's OVMF hash is {}; compare \
                 `snp-ovmf-hash --ovmf` of the host's image), another kernel or initrd, or the \
                 report comes from another guest",
                hex(&self.ovmf_hash)
            ),
            FirmwareForm::OvmfSvsm => format!(
                "most likely another OVMF or SVSM build (the expected OVMF image's OVMF hash is \
                 {}; compare `snp-ovmf-hash --ovmf` of the host's OVMF image, and the SVSM image \
                 byte for byte with the host's), an OVMF_VARS size outside those tried, or the \
                 report comes from another guest",
                hex(&self.ovmf_hash)
            ),
        }
    }

    /// For an IGVM launch that no variant reproduces, what to do next (the
    /// OVMF advice names `snp-ovmf-hash`; an IGVM file has no such hash).
    pub fn igvm_advice(&self) -> Option<String> {
        let i = self.igvm.as_ref()?;
        Some(match &i.host_file {
            None => format!(
                "most likely another IGVM file or other page contents (the expected file's SHA-384 is {}): give the host's copy of the file with --host-igvm, which names every difference, or the report comes from another guest",
                hex(&i.file_sha384)
            ),
            Some(h) => format!(
                "neither the expected IGVM file (SHA-384 {}) nor the host's copy (SHA-384 {}, launch digest {}) gives it: the host launched yet another file or changed what the search cannot vary, or the report comes from another guest",
                hex(&i.file_sha384),
                hex(&h.sha384),
                hex(&h.launch_digest)
            ),
        })
    }

    /// The host's copy of the IGVM file, in words: what differs, and
    /// whether it gives the reported value. Empty without one.
    fn host_file_words(&self) -> String {
        let Some(h) = self.host_file() else {
            return String::new();
        };
        let mut s = String::new();
        if h.differences.is_empty() {
            s.push_str("\nThe host's IGVM file is the same launch as yours.");
        } else if self.matches() || !h.gives_reported {
            s.push_str(&format!(
                "\nThe host's IGVM file (SHA-384 {}) differs from yours:",
                hex(&h.sha384)
            ));
            for c in &h.differences {
                s.push_str(&format!("\n  - {}", c.host_did()));
            }
        }
        if !self.matches() && !h.gives_reported {
            s.push_str(&format!(
                "\nThe host's IGVM file does not give the reported value either (its launch digest is {}).",
                hex(&h.launch_digest)
            ));
        }
        s
    }
}

impl fmt::Display for SnpExplanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matches() {
            return write!(
                f,
                "the reported MEASUREMENT equals the launch digest of the expected inputs{}",
                self.host_file_words()
            );
        }
        writeln!(
            f,
            "the reported MEASUREMENT differs from the launch digest of the expected inputs"
        )?;
        writeln!(f, "  reported: {}", hex(&self.reported))?;
        writeln!(f, "  computed: {}", hex(&self.computed))?;
        match &self.changes {
            Some(changes) if self.host_gives_reported() => {
                let h = self.host_file().map(|h| hex(&h.sha384)).unwrap_or_default();
                write!(
                    f,
                    "The host launched its own copy of the IGVM file (SHA-384 {h}), which gives the reported value; it differs from yours in what the digest covers:"
                )?;
                for c in changes {
                    write!(f, "\n  - {}", c.host_did())?;
                }
                for c in self.host_file().map_or(&[][..], |h| &h.differences[..]) {
                    if !changes.contains(c) {
                        write!(f, "\n  - {} (not measured)", c.host_did())?;
                    }
                }
                Ok(())
            }
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
            None => match self.igvm_advice() {
                Some(advice) => write!(
                    f,
                    "None of {} variants of the IGVM launch reproduces the reported value ({}). \
                     What differs is then something the search cannot vary: {advice}.",
                    self.variants_tried, self.searched
                ),
                None => write!(
                    f,
                    "None of {} variants of the inputs reproduces the reported value ({}). What \
                     differs is then an input the search cannot vary: {}.",
                    self.variants_tried,
                    self.searched,
                    self.unsearched()
                ),
            },
        }?;
        if !self.host_gives_reported() {
            write!(f, "{}", self.host_file_words())?;
        }
        Ok(())
    }
}

/// The attestation report fields besides MEASUREMENT that an owner's
/// expectation can fail on, for [`ReportField::comes_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportField {
    /// POLICY.
    Policy,
    /// HOST_DATA.
    HostData,
    /// ID_KEY_DIGEST.
    IdKeyDigest,
    /// AUTHOR_KEY_DIGEST.
    AuthorKeyDigest,
    /// FAMILY_ID.
    FamilyId,
    /// IMAGE_ID.
    ImageId,
    /// GUEST_SVN.
    GuestSvn,
    /// VMPL.
    Vmpl,
    /// REPORT_DATA.
    ReportData,
    /// REPORTED_TCB.
    ReportedTcb,
    /// CHIP_ID.
    ChipId,
    /// SIGNING_KEY (VCEK or VLEK).
    SigningKey,
    /// COMMITTED_TCB.
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
