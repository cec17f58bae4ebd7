//! The mismatch explainer: for each class of mistake, the reported
//! measurement comes from the simulated Secure Processor (tests/sim/sev_sp.py,
//! an independent implementation) with exactly that one input changed, and
//! the explainer must name exactly that change.

use crate::common;

use common::{set, Args};

use std::fs;

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("fw.fd"), common::amdsev_like_firmware()).unwrap();
        fs::write(d.join("other.fd"), {
            let mut f = common::amdsev_like_firmware();
            f[100] ^= 1;
            f
        })
        .unwrap();
        fs::write(d.join("tik"), [0x11u8; 16]).unwrap();
        fs::write(d.join("tek"), [0x22u8; 16]).unwrap();
        let mut tk = vec![0x22u8; 16];
        tk.extend([0x11u8; 16]);
        fs::write(d.join("tk"), tk).unwrap();
        fs::write(d.join("kernel"), b"vmlinuz bytes").unwrap();
        fs::write(d.join("initrd"), vec![5u8; 5000]).unwrap();
        Setup { dir }
    }

    fn p(&self, n: &str) -> String {
        self.dir.path().join(n).display().to_string()
    }

    /// The launch: its files and what the platform reports, as the simulated Secure
    /// Processor and the tool both take them.
    fn launch(&self) -> Args {
        Args::new()
            .opt("--firmware", self.p("fw.fd"))
            .opt("--kernel", self.p("kernel"))
            .opt("--initrd", self.p("initrd"))
            .opt("--cmdline", "root=/dev/vda")
            .platform(1, 55, 21, 5)
    }

    /// The simulated SEV firmware's measurement of an SEV-ES launch; `change`
    /// edits its arguments (the one input that differs from the owner's).
    fn measure(&self, change: impl FnOnce(&mut Vec<String>)) -> Option<String> {
        let mut args = self
            .launch()
            .arg("--kernel-hashes")
            .opt("--tik", self.p("tik"))
            .opt("--num-cpus", 4)
            .opt("--cpu-signature", "0xA00F11")
            .vec();
        change(&mut args);
        common::sev_measure(args)
    }

    /// The owner's command line for the same launch.
    fn owner(&self, m: &str) -> Vec<String> {
        self.launch()
            .opt("-m", m)
            .keys(self.p("tik"), self.p("tek"))
            .opt("-n", 4)
            .milan()
            .vec()
    }
}

/// Replaces `from` with `to` in the value of `opt`.
fn edit(args: &mut [String], opt: &str, from: &str, to: &str) {
    let at = args.iter().position(|a| a == opt).unwrap() + 1;
    args[at] = args[at].replace(from, to);
}

fn remove(args: &mut Vec<String>, opt: &str, with_value: bool) {
    let at = args.iter().position(|a| a == opt).unwrap();
    args.drain(at..at + if with_value { 2 } else { 1 });
}

#[track_caller]
fn hint(args: &[String]) -> String {
    let (code, _, err) = common::run(args);
    assert_eq!(code, 1, "{err}");
    err.lines()
        .find_map(|l| l.strip_prefix("HINT: "))
        .unwrap_or_else(|| panic!("no HINT: {err}"))
        .to_string()
}

#[test]
fn the_owners_inputs_validate() {
    let s = Setup::new();
    let Some(m) = s.measure(|_| {}) else { return };
    assert_eq!(common::run(s.owner(&m)).0, 0);
}

#[test]
fn names_each_single_change() {
    let s = Setup::new();
    type Change = fn(&mut Vec<String>);
    let cases: &[(&str, Change, &str)] = &[
        (
            "tik/tek swapped",
            |a| edit(a, "--tik", "tik", "tek"),
            "matches if TIK and TEK are swapped",
        ),
        (
            "kernel hashes off",
            |a| remove(a, "--kernel-hashes", false),
            "matches with kernel hashes disabled",
        ),
        (
            "trailing newline",
            |a| set(a, "--cmdline", "root=/dev/vda\n"),
            "matches if the kernel command line ends with a newline",
        ),
        (
            "trailing space",
            |a| set(a, "--cmdline", "root=/dev/vda "),
            "matches if the kernel command line ends with a space",
        ),
        (
            "leading space",
            |a| set(a, "--cmdline", " root=/dev/vda"),
            "matches if the kernel command line starts with a space",
        ),
        (
            "initrd omitted",
            |a| remove(a, "--initrd", true),
            "matches if the guest was booted without the initrd",
        ),
        (
            "vcpu count",
            |a| set(a, "--num-cpus", "2"),
            "matches with 2 vCPUs instead of 4",
        ),
        (
            "vcpu count 64",
            |a| set(a, "--num-cpus", "64"),
            "matches with 64 vCPUs instead of 4",
        ),
        (
            "init2 form",
            |a| a.push("--init2".into()),
            "matches the KVM_SEV_INIT2 VMSA form",
        ),
        (
            "debugswap",
            |a| a.extend(["--sev-features".to_string(), "0x20".to_string()]),
            "matches SEV_FEATURES 0x20 (DebugSwap)",
        ),
        (
            "cpu signature",
            |a| set(a, "--cpu-signature", "0x830F10"),
            "matches CPU signature EPYC-Rome (0x830F10)",
        ),
    ];
    for (name, change, expect) in cases {
        let Some(m) = s.measure(change) else { return };
        let h = hint(&s.owner(&m));
        // Exactly that change: the hint is it (and at most its explanation in parentheses).
        let rest = h.strip_prefix(&format!("the reported measurement {expect}"));
        assert!(
            rest.is_some_and(|r| r.is_empty() || (r.starts_with(" (") && r.ends_with(')'))),
            "{name}: {h}"
        );
    }
}

#[test]
fn names_tk_halves_and_combined_changes() {
    let s = Setup::new();
    // The host's firmware got the TK file's first half as TIK.
    let Some(m) = s.measure(|a| edit(a, "--tik", "tik", "tek")) else {
        return;
    };
    let mut owner = s.owner(&m);
    remove(&mut owner, "--tik", true);
    remove(&mut owner, "--tek", true);
    owner.extend(["--tk".to_string(), s.p("tk")]);
    assert_eq!(hint(&owner), "the reported measurement matches with the TK file's halves the other way round (TIK first, then TEK)");
    // Two changes at once are named together.
    let Some(m) = s.measure(|a| {
        set(a, "--cmdline", "root=/dev/vda\n");
        set(a, "--num-cpus", "3");
    }) else {
        return;
    };
    assert_eq!(
        hint(&s.owner(&m)),
        "the reported measurement matches if the kernel command line ends with a newline and with 3 vCPUs instead of 4"
    );
}

#[test]
fn wrong_firmware_matches_nothing_and_points_at_the_firmware() {
    let s = Setup::new();
    let Some(m) = s.measure(|a| edit(a, "--firmware", "fw.fd", "other.fd")) else {
        return;
    };
    let h = hint(&s.owner(&m));
    assert!(h.starts_with("none of "), "{h}");
    assert!(
        h.contains("firmware image or the TIK is most likely wrong"),
        "{h}"
    );
    assert!(h.contains("firmware SHA-256 "), "{h}");
}

#[test]
fn quiet_skips_the_explainer() {
    let s = Setup::new();
    let Some(m) = s.measure(|a| set(a, "--num-cpus", "2")) else {
        return;
    };
    let mut a = s.owner(&m);
    a.push("--quiet".into());
    let (code, out, err) = common::run(&a);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(!err.contains("HINT"), "{err}");
}

/// `--policy 1` for a launch the Secure Processor measured with policy 5
/// (SEV-ES), `-n 4` given: the SEV-ES options are not silently ignored, and
/// the explainer names the policy with the ES bit set instead of blaming the
/// firmware or the TIK. The same for NODBG.
#[test]
fn names_a_policy_with_the_es_bit_or_nodbg_toggled() {
    let s = Setup::new();
    let Some(m) = s.measure(|_| {}) else { return };
    let mut a = s.owner(&m);
    set(&mut a, "--policy", "1");
    let (code, _, err) = common::run(&a);
    assert_eq!(code, 1, "{err}");
    let warning = err
        .lines()
        .find(|l| l.starts_with("WARNING: ") && l.contains("no SEV-ES bit"))
        .unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(
        warning.contains("--num-cpus") && warning.contains("--cpu-family"),
        "{warning}"
    );
    let h = hint(&a);
    assert!(
        h.contains("policy 0x5") && h.contains("SEV-ES bit set"),
        "{h}"
    );
    assert!(!h.contains("firmware image or the TIK"), "{h}");

    // Measured with NODBG clear (policy 4), given as 5.
    let Some(m) = s.measure(|a| set(a, "--policy", "4")) else {
        return;
    };
    let h = hint(&s.owner(&m));
    assert!(h.contains("policy 0x4") && h.contains("NODBG clear"), "{h}");

    // Measured as plain SEV (policy 1), given as SEV-ES 5: the ES bit clear.
    let Some(m) = s.measure(|a| set(a, "--policy", "1")) else {
        return;
    };
    let h = hint(&s.owner(&m));
    assert!(
        h.contains("policy 0x1") && h.contains("SEV-ES bit clear"),
        "{h}"
    );
}
