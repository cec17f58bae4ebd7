//! The SEV guest policy: its bits decoded, warnings about what it allows the
//! host, and the owner's allow-lists (minimum API, build IDs, required and
//! forbidden bits). The reported values are trustworthy only once the
//! measurement matched, because only then are they bound by the TIK.

use serde::Serialize;

use crate::core::measurement::LaunchInfo;

pub use crate::core::sev_policy::SevPolicy;

/// The SEV-SNP guest policy flags live in the pure core, with the report.
pub use crate::core::snp_report::PolicyFlags;

/// A decoded policy.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decoded {
    /// The raw 32-bit policy (GCTX.POLICY).
    pub value: u32,
    /// Names of the bits that are set.
    pub flags: Vec<&'static str>,
    /// The lowest firmware API_MAJOR the guest may run under (bits 16-23).
    pub min_api_major: u8,
    /// The lowest firmware API_MINOR the guest may run under (bits 24-31).
    pub min_api_minor: u8,
}

/// Splits a policy into its flag names and its minimum firmware API.
pub fn decode(policy: u32) -> Decoded {
    let (min_api_major, min_api_minor) = SevPolicy::min_api(policy);
    Decoded {
        value: policy,
        flags: SevPolicy::from_bits_truncate(policy).names(),
        min_api_major,
        min_api_minor,
    }
}

/// One line for humans: `0x5 (NODBG ES; minimum API 0.0)`.
pub fn describe(policy: u32) -> String {
    let d = decode(policy);
    format!(
        "{policy:#x} ({}; minimum API {}.{})",
        if d.flags.is_empty() {
            "no flags".to_string()
        } else {
            d.flags.join(" ")
        },
        d.min_api_major,
        d.min_api_minor
    )
}

/// What the policy lets the host do that an owner should know about.
pub fn warnings(policy: u32) -> Vec<String> {
    let mut w = Vec::new();
    if !SevPolicy::from_bits_retain(policy).contains(SevPolicy::NODBG) {
        w.push(format!(
            "the policy {policy:#x} lets the host debug the guest (NODBG, bit 0, is clear): the host can \
             read and write guest memory with the SEV debug commands; launch with NODBG set"
        ));
    }
    w
}

/// The owner's requirements on the reported values.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// `--min-api`: the lowest SEV firmware API (major, minor) accepted.
    pub min_api: Option<(u8, u8)>,
    /// `--allow-build`: the SEV firmware build IDs accepted; empty accepts any.
    pub allowed_builds: Vec<u8>,
    /// `--require-policy`: the policy bits that must be set (a mask; 0 for none).
    pub required_bits: u32,
    /// `--forbid-policy`: the policy bits that must be clear (a mask; 0 for none).
    pub forbidden_bits: u32,
}

fn names(bits: u32) -> String {
    let known = SevPolicy::from_bits_truncate(bits).names();
    if known.is_empty() {
        format!("{bits:#x}")
    } else {
        format!("{bits:#x} ({})", known.join(" "))
    }
}

impl Requirements {
    /// Whether the owner gave no requirement at all.
    pub fn is_empty(&self) -> bool {
        self.min_api.is_none()
            && self.allowed_builds.is_empty()
            && self.required_bits == 0
            && self.forbidden_bits == 0
    }

    /// Each requirement checked, with its result: (name, passed, message).
    pub fn check(&self, info: &LaunchInfo) -> Vec<(&'static str, bool, String)> {
        let mut out = Vec::new();
        if let Some((maj, min)) = self.min_api {
            let ok = (info.api_major, info.api_minor) >= (maj, min);
            out.push((
                "min-api",
                ok,
                format!(
                    "the SEV firmware API is {}.{}, {} the required {maj}.{min}",
                    info.api_major,
                    info.api_minor,
                    if ok { "at least" } else { "older than" }
                ),
            ));
        }
        if !self.allowed_builds.is_empty() {
            let ok = self.allowed_builds.contains(&info.build_id);
            let list: Vec<String> = self.allowed_builds.iter().map(u8::to_string).collect();
            out.push((
                "allowed-build",
                ok,
                format!(
                    "the SEV firmware build ID {} is {} the allowed builds ({})",
                    info.build_id,
                    if ok { "among" } else { "not among" },
                    list.join(", ")
                ),
            ));
        }
        if self.required_bits != 0 {
            let missing = self.required_bits & !info.policy;
            out.push((
                "require-policy",
                missing == 0,
                if missing == 0 {
                    format!(
                        "the policy {:#x} has every required bit {}",
                        info.policy,
                        names(self.required_bits)
                    )
                } else {
                    format!(
                        "the policy {:#x} lacks required bits {}",
                        info.policy,
                        names(missing)
                    )
                },
            ));
        }
        if self.forbidden_bits != 0 {
            let present = self.forbidden_bits & info.policy;
            out.push((
                "forbid-policy",
                present == 0,
                if present == 0 {
                    format!(
                        "the policy {:#x} has none of the forbidden bits {}",
                        info.policy,
                        names(self.forbidden_bits)
                    )
                } else {
                    format!(
                        "the policy {:#x} has forbidden bits {}",
                        info.policy,
                        names(present)
                    )
                },
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(policy: u32, build: u8, maj: u8, min: u8) -> LaunchInfo {
        LaunchInfo {
            api_major: maj,
            api_minor: min,
            build_id: build,
            policy,
        }
    }

    #[test]
    fn snp_default_is_the_id_block_default() {
        assert_eq!(
            PolicyFlags::DEFAULT.bits(),
            crate::core::id_block::DEFAULT_POLICY
        );
        assert_eq!(SevPolicy::ES.bits(), 4);
    }

    #[test]
    fn decoding() {
        let d = decode(0x0201_0005);
        assert_eq!(d.flags, vec!["NODBG", "ES"]);
        assert_eq!((d.min_api_major, d.min_api_minor), (1, 2));
        assert_eq!(describe(0x3), "0x3 (NODBG NOKS; minimum API 0.0)");
        assert!(warnings(0x2)[0].contains("debug"));
        assert!(warnings(0x1).is_empty());
    }

    #[test]
    fn each_requirement_passes_and_fails() {
        let r = Requirements {
            min_api: Some((1, 50)),
            ..Default::default()
        };
        assert!(r.check(&info(1, 0, 1, 55))[0].1);
        assert!(!r.check(&info(1, 0, 1, 49))[0].1);
        let r = Requirements {
            allowed_builds: vec![21, 22],
            ..Default::default()
        };
        assert!(r.check(&info(1, 21, 1, 0))[0].1);
        assert!(!r.check(&info(1, 20, 1, 0))[0].1);
        let r = Requirements {
            required_bits: 0x5,
            ..Default::default()
        };
        assert!(r.check(&info(0x7, 0, 1, 0))[0].1);
        assert!(!r.check(&info(0x1, 0, 1, 0))[0].1);
        let r = Requirements {
            forbidden_bits: 0x8,
            ..Default::default()
        };
        assert!(r.check(&info(0x7, 0, 1, 0))[0].1);
        assert!(!r.check(&info(0xF, 0, 1, 0))[0].1);
    }
}
