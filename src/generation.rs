//! The guest's generation (SEV, SEV-ES or SEV-SNP) is the owner's to say,
//! never the host's.
//!
//! Each generation is attested its own way: an SEV or SEV-ES guest by its
//! LAUNCH_MEASURE under the owner's TIK, an SEV-SNP guest by an attestation
//! report signed by the AMD Secure Processor. A host that could choose the
//! generation could turn a check the owner set up for one into a run of the
//! other that attests nothing (an SEV-ES check answered "this guest is SNP"
//! would compare no measurement at all). So the owner's options, or
//! `--generation`, say which generation is expected, and the host's answer
//! (the domain XML's `<launchSecurity type>`, QEMU's `query-sev`, and for
//! SEV-ES the policy's ES bit) must agree with it before anything is
//! computed.
//!
//! ```
//! use sev_validate::generation::{Expected, Generation};
//! use sev_validate::source::{GuestKind, SourceKind};
//!
//! // An owner who gave --tk expects an SEV or SEV-ES guest...
//! let expected = Expected::from_options(None, &["--tk"], &[]).unwrap().unwrap();
//! assert!(expected.allows(Generation::SevEs));
//! // ...so a host that calls the guest SEV-SNP is refused (exit 10).
//! let e = expected.check_kind(GuestKind::SevSnp, SourceKind::Qmp).unwrap_err();
//! assert_eq!(e.exit_code() as i32, 10);
//! ```

use serde::Serialize;

use crate::error::{Error, Result};
use crate::source::{GuestKind, SourceKind};

/// An AMD SEV generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Generation {
    /// SEV: memory encryption; LAUNCH_MEASURE covers the firmware (and kernel hashes).
    Sev,
    /// SEV-ES: SEV with encrypted register state; LAUNCH_MEASURE also covers the VMSAs.
    SevEs,
    /// SEV-SNP: integrity protection; attested by a report the AMD Secure Processor signs.
    SevSnp,
}

/// The SEV policy's ES bit (SEV API, guest policy bit 2).
const SEV_POLICY_ES: u32 = 0x4;

impl Generation {
    /// The name the AMD documents use.
    pub fn name(self) -> &'static str {
        match self {
            Generation::Sev => "SEV",
            Generation::SevEs => "SEV-ES",
            Generation::SevSnp => "SEV-SNP",
        }
    }

    /// The value of `--generation` that names it.
    pub fn option_value(self) -> &'static str {
        match self {
            Generation::Sev => "sev",
            Generation::SevEs => "sev-es",
            Generation::SevSnp => "sev-snp",
        }
    }

    /// The generation of an SEV or SEV-ES launch with this policy.
    pub fn of_sev_policy(policy: u32) -> Generation {
        if policy & SEV_POLICY_ES != 0 {
            Generation::SevEs
        } else {
            Generation::Sev
        }
    }
}

/// The generations the owner accepts, and what said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// One generation, or SEV and SEV-ES when only SEV options were given.
    #[serde(rename = "expected")]
    pub generations: Vec<Generation>,
    /// What said so: `--generation sev-es`, or the options given (`--tk`).
    pub because: String,
}

impl Expected {
    /// What the owner's options say: `--generation` if given, else the
    /// generation their other options imply (`sev_options` are options only
    /// SEV and SEV-ES guests have, `snp_options` options only SEV-SNP guests
    /// have). `None` when nothing says. Options of both, or ones that
    /// contradict `--generation`, are a usage error.
    pub fn from_options(
        explicit: Option<Generation>,
        sev_options: &[&str],
        snp_options: &[&str],
    ) -> Result<Option<Expected>> {
        let list = |o: &[&str]| o.join(", ");
        match explicit {
            Some(Generation::SevSnp) if !sev_options.is_empty() => Err(Error::Usage(format!(
                "--generation sev-snp, but {} only SEV and SEV-ES guests have: an SEV-SNP guest has \
                 no TIK, LAUNCH_MEASURE or LAUNCH_SECRET (its report proves its launch){}; drop \
                 them, or give the guest's real generation",
                list(sev_options),
                snp_equivalents(sev_options)
            ))),
            Some(g @ (Generation::Sev | Generation::SevEs)) if !snp_options.is_empty() => {
                Err(Error::Usage(format!(
                    "--generation {}, but {} only SEV-SNP guests have: drop them, or give \
                     --generation sev-snp",
                    g.option_value(),
                    list(snp_options)
                )))
            }
            Some(g) => Ok(Some(Expected {
                generations: vec![g],
                because: format!("--generation {}", g.option_value()),
            })),
            None if !sev_options.is_empty() && !snp_options.is_empty() => {
                Err(Error::Usage(format!(
                    "{} only SEV and SEV-ES guests have, and {} only SEV-SNP guests have: a guest is \
                     one or the other{}; give the options of its generation (and --generation to \
                     say which)",
                    list(sev_options),
                    list(snp_options),
                    snp_equivalents(sev_options)
                )))
            }
            None if !sev_options.is_empty() => Ok(Some(Expected {
                generations: vec![Generation::Sev, Generation::SevEs],
                because: list(sev_options),
            })),
            None if !snp_options.is_empty() => Ok(Some(Expected {
                generations: vec![Generation::SevSnp],
                because: list(snp_options),
            })),
            None => Ok(None),
        }
    }

    /// Whether the owner accepts a guest of this generation.
    pub fn allows(&self, g: Generation) -> bool {
        self.generations.contains(&g)
    }

    /// The owner's expectation in words: "an SEV-SNP guest (--report)".
    pub fn describe(&self) -> String {
        let names: Vec<&str> = self.generations.iter().map(|g| g.name()).collect();
        // "SEV" is said "ess-ee-vee": always "an".
        format!("an {} guest ({})", names.join(" or "), self.because)
    }

    /// The guest's kind as the host reports it, against the owner's
    /// expectation: checked before anything is computed.
    pub fn check_kind(&self, kind: GuestKind, source: SourceKind) -> Result<()> {
        let snp_expected = self.allows(Generation::SevSnp);
        match kind {
            GuestKind::SevSnp if !snp_expected => Err(Error::Generation(format!(
                "{}, but you expect {}: refused before anything is computed, because the host must \
                 not choose how its guest is attested (an SEV-SNP run compares no LAUNCH_MEASURE \
                 with your TIK). If the guest should be SEV-SNP, check it as one: drop the SEV \
                 options and give --generation sev-snp (with --report to attest it); if not, the \
                 host did not launch the guest you asked for{}",
                host_says(kind, source),
                self.describe(),
                snp_equivalents(&[self.because.as_str()])
            ))),
            GuestKind::Sev if snp_expected => Err(Error::Generation(format!(
                "{}, but you expect {}: refused before anything is computed. An SEV or SEV-ES \
                 guest is validated from its LAUNCH_MEASURE with the TIK (--tk); if the guest \
                 should be SEV-SNP, the host did not launch the guest you asked for",
                host_says(kind, source),
                self.describe()
            ))),
            _ => Ok(()),
        }
    }

    /// The policy of an SEV or SEV-ES launch against an owner who named
    /// one of the two: an SEV-ES owner refuses a guest whose register state
    /// the host can read, and an SEV owner a launch other than the one
    /// measured as planned.
    pub fn check_sev_policy(&self, policy: u32) -> Result<()> {
        let g = Generation::of_sev_policy(policy);
        if self.allows(g) {
            return Ok(());
        }
        let has = if g == Generation::SevEs {
            "has"
        } else {
            "lacks"
        };
        Err(Error::Generation(format!(
            "the launch's policy {policy:#x} {has} the SEV-ES bit (0x4), so the guest is {}, but you \
             expect {}: refused before anything is computed; give the guest's real generation, or \
             have the host launch it with the policy you expect",
            g.name(),
            self.describe()
        )))
    }
}

/// What an SEV-SNP guest's owner gives instead of SEV options (`options`
/// may hold one comma-separated list): empty when none of them has one.
fn snp_equivalents(options: &[&str]) -> String {
    const INSTEAD: &[(&str, &str)] = &[
        (
            "--measurement",
            "its report's MEASUREMENT is checked with --report",
        ),
        ("--api-major", "use --min-version"),
        ("--api-minor", "use --min-version"),
        ("--build-id", "use --min-build"),
        ("--min-api", "use --min-version"),
        ("--allow-build", "use --min-build"),
        ("--require-policy", "use --policy"),
        ("--forbid-policy", "use --max-policy"),
        (
            "--vmsa-cpu0",
            "its VMSAs are built from --cpu-family, --cpu-model and --cpu-stepping",
        ),
        (
            "--vmsa-cpu1",
            "its VMSAs are built from --cpu-family, --cpu-model and --cpu-stepping",
        ),
    ];
    let given = |name: &str| options.iter().any(|o| o.split(", ").any(|x| x == name));
    let mut said: Vec<String> = INSTEAD
        .iter()
        .filter(|(o, _)| given(o))
        .map(|(o, i)| format!("for {o}, {i}"))
        .collect();
    let secrets = [
        "--inject-secret",
        "--secret-header",
        "--secret-payload",
        "--secret-address",
    ];
    if secrets.iter().any(|o| given(o)) {
        said.push(
            "SEV-SNP has no LAUNCH_SECRET: libvirt and QEMU refuse to inject secrets into it; its \
             secrets are released after its attestation report is validated: give --report \
             EVIDENCE (from the guest's snp-request), --nonce and --sealed-out to seal them to the \
             guest's key, or use a key broker; they are never injected by the host"
                .into(),
        );
    }
    if said.is_empty() {
        String::new()
    } else {
        format!(" (on an SEV-SNP guest: {})", said.join("; "))
    }
}

/// The host's answer against what the owner's options said: with no
/// expectation, only an SEV guest goes on (its TIK is then asked for); an
/// SEV-SNP one would have had its generation chosen by the host.
pub fn check_host(expected: Option<&Expected>, kind: GuestKind, source: SourceKind) -> Result<()> {
    match expected {
        Some(e) => e.check_kind(kind, source),
        None if kind == GuestKind::SevSnp => Err(Error::Usage(format!(
            "{}, and none of your options says which generation you expect: the tool does not \
             let the host choose how its guest is attested. Give --generation sev-snp to check it \
             as an SEV-SNP guest (and --report to attest it), or --tk and the SEV options if you \
             expect an SEV or SEV-ES guest",
            host_says(kind, source)
        ))),
        None => Ok(()),
    }
}

/// What the host said of its guest's kind, in the source's own words.
fn host_says(kind: GuestKind, source: SourceKind) -> String {
    match (source, kind) {
        (SourceKind::Libvirt, GuestKind::SevSnp) => {
            "the host says the guest is SEV-SNP (its domain XML has <launchSecurity type='sev-snp'>)"
                .into()
        }
        (SourceKind::Libvirt, GuestKind::Sev) => {
            "the host says the guest is SEV or SEV-ES (its domain XML has no <launchSecurity type='sev-snp'>)".into()
        }
        (SourceKind::Qmp, GuestKind::SevSnp) => {
            "the host says the guest is SEV-SNP (QEMU's query-sev answers sev-type 'sev-snp')".into()
        }
        (SourceKind::Qmp, GuestKind::Sev) => {
            "the host says the guest is SEV or SEV-ES (QEMU's query-sev gives no sev-type 'sev-snp')"
                .into()
        }
        (SourceKind::Offline, _) => {
            "the launch values given on the command line are an SEV or SEV-ES launch's".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_generation_wins_and_contradictions_are_usage_errors() {
        let e = Expected::from_options(Some(Generation::SevSnp), &[], &["--report"])
            .unwrap()
            .unwrap();
        assert_eq!(e.generations, vec![Generation::SevSnp]);
        assert_eq!(e.because, "--generation sev-snp");
        let err = Expected::from_options(Some(Generation::SevSnp), &["--tk"], &[]).unwrap_err();
        assert_eq!(err.exit_code() as i32, 2);
        assert!(err.to_string().contains("--tk"), "{err}");
        let err = Expected::from_options(Some(Generation::SevEs), &[], &["--report"]).unwrap_err();
        assert_eq!(err.exit_code() as i32, 2);
        let err = Expected::from_options(None, &["--tk"], &["--report"]).unwrap_err();
        assert!(err.to_string().contains("--tk only SEV"), "{err}");
        assert_eq!(Expected::from_options(None, &[], &[]).unwrap(), None);
    }

    #[test]
    fn sev_options_accept_sev_and_sev_es_but_not_snp() {
        let e = Expected::from_options(None, &["--tk", "--measurement"], &[])
            .unwrap()
            .unwrap();
        assert!(e.allows(Generation::Sev) && e.allows(Generation::SevEs));
        assert!(!e.allows(Generation::SevSnp));
        e.check_kind(GuestKind::Sev, SourceKind::Libvirt).unwrap();
        let err = e
            .check_kind(GuestKind::SevSnp, SourceKind::Libvirt)
            .unwrap_err();
        assert_eq!(err.exit_code() as i32, 10);
        let m = err.to_string();
        assert!(m.contains("<launchSecurity type='sev-snp'>"), "{m}");
        assert!(
            m.contains("an SEV or SEV-ES guest (--tk, --measurement)"),
            "{m}"
        );
        e.check_sev_policy(0x1).unwrap();
        e.check_sev_policy(0x5).unwrap();
    }

    #[test]
    fn a_named_sev_generation_is_held_to_the_policy_es_bit() {
        let es = Expected::from_options(Some(Generation::SevEs), &["--tk"], &[])
            .unwrap()
            .unwrap();
        es.check_sev_policy(0x5).unwrap();
        let err = es.check_sev_policy(0x1).unwrap_err();
        assert_eq!(err.exit_code() as i32, 10);
        assert!(
            err.to_string()
                .contains("policy 0x1 lacks the SEV-ES bit (0x4), so the guest is SEV"),
            "{err}"
        );
        let sev = Expected::from_options(Some(Generation::Sev), &[], &[])
            .unwrap()
            .unwrap();
        assert!(sev.check_sev_policy(0x5).is_err());
        let snp = Expected::from_options(None, &[], &["--trusted-id-key"])
            .unwrap()
            .unwrap();
        let err = snp.check_kind(GuestKind::Sev, SourceKind::Qmp).unwrap_err();
        assert_eq!(err.exit_code() as i32, 10);
        assert!(err
            .to_string()
            .contains("an SEV-SNP guest (--trusted-id-key)"));
        snp.check_kind(GuestKind::SevSnp, SourceKind::Qmp).unwrap();
    }

    #[test]
    fn without_an_expectation_only_an_sev_guest_goes_on() {
        check_host(None, GuestKind::Sev, SourceKind::Libvirt).unwrap();
        let err = check_host(None, GuestKind::SevSnp, SourceKind::Libvirt).unwrap_err();
        assert_eq!(err.exit_code() as i32, 2);
        assert!(
            err.to_string().contains("<launchSecurity type='sev-snp'>"),
            "{err}"
        );
        assert!(
            err.to_string().contains("Give --generation sev-snp"),
            "{err}"
        );
    }
}
