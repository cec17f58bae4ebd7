//! The mismatch explainer. The guest owner holds the TIK, so when a
//! measurement does not match, the tool can test hypotheses itself: it
//! recomputes MEASURE for plausible variants of the inputs and names the
//! smallest change that reproduces the reported value.
//!
//! Every file was hashed once already; variants reuse the SHA-256 state
//! after the firmware (and after each kernel-table variant) and extend it
//! page by page, so thousands of variants cost milliseconds.

use crate::core::cpu;
use crate::core::kernel_hashes::{self, KernelHashes, PADDED_TABLE_LEN};
use crate::core::keys::{Tek, Tik};
use crate::core::measurement::{
    compute_measure, measures_equal, LaunchDigest, LaunchInfo, Measurement,
};
use crate::core::vmsa::{self, VmsaConfig, VmsaForm, VMSA_LEN};
use crate::sev::launch::VmsaSource;
use crate::sev::policy::SevPolicy;

/// Most vCPU counts tried.
pub const MAX_VCPUS_TRIED: u32 = 64;
/// SEV_FEATURES values seen on real hosts for SEV-ES (0; DebugSwap on Linux 6.5-6.7).
const SEV_FEATURES_TRIED: &[u64] = &[0, 0x20, 0x1, 0x21];

/// What the explainer knows: the owner's inputs as hashed, and what was reported.
pub struct Known<'a> {
    /// GCTX.LD's SHA-256 state after the owner's firmware image, which every
    /// variant extends.
    pub firmware: &'a LaunchDigest,
    /// The owner's kernel hashes, the cmdline they came from, and whether an
    /// initrd was given.
    pub kernel: Option<(&'a KernelHashes, Option<&'a str>, bool)>,
    /// The owner's SEV-ES VMSA source and vCPU count.
    pub vmsa: Option<(&'a VmsaSource, u32)>,
    /// AP reset address of the firmware, for building VMSA variants.
    pub ap_reset_addr: Option<u32>,
    /// The host's CPU signature, if the host reported one.
    pub host_signature: Option<u32>,
    /// The owner's TIK, the HMAC key of MEASURE.
    pub tik: &'a Tik,
    /// The owner's TEK, tried in the TIK's place in case the two were swapped.
    pub tek: &'a Tek,
    /// The keys came from one --tk file.
    pub tk_file: bool,
    /// The API version, build ID and policy the host reported, which MEASURE
    /// covers.
    pub info: LaunchInfo,
    /// Other policies worth trying, with a description (e.g. the host's).
    pub other_policies: Vec<(u32, String)>,
    /// The MEASURE and MNONCE the host reported (LAUNCH_MEASURE).
    pub reported: Measurement,
}

/// The explainer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The smallest set of changes that reproduces the reported measurement.
    pub matched: Option<Vec<String>>,
    /// How many variants were evaluated.
    pub tried: usize,
}

struct TableVariant {
    changes: Vec<String>,
    table: Option<[u8; PADDED_TABLE_LEN]>,
}

fn table_variants(k: &Known) -> Vec<TableVariant> {
    let Some((hashes, cmdline, initrd_given)) = k.kernel else {
        return vec![TableVariant {
            changes: vec![],
            table: None,
        }];
    };
    let mut v = vec![
        TableVariant { changes: vec![], table: Some(hashes.padded_table()) },
        TableVariant {
            changes: vec!["matches with kernel hashes disabled (the host did not measure the kernel: kernelHashes is not 'yes')".into()],
            table: None,
        },
    ];
    let c = cmdline.unwrap_or("");
    let cmdlines: Vec<(String, String)> = vec![
        (
            format!("{c}\n"),
            "if the kernel command line ends with a newline".into(),
        ),
        (
            format!("{c} "),
            "if the kernel command line ends with a space".into(),
        ),
        (
            format!(" {c}"),
            "if the kernel command line starts with a space".into(),
        ),
        (
            c.trim().to_string(),
            "if the kernel command line has no leading or trailing whitespace".into(),
        ),
        (
            c.trim_end_matches('\n').to_string(),
            "if the kernel command line has no trailing newline".into(),
        ),
        (
            String::new(),
            "with an empty kernel command line (no -append)".into(),
        ),
    ];
    // Each distinct command line once, never the owner's own.
    let mut seen = vec![c.to_string()];
    for (alt, why) in cmdlines {
        if seen.contains(&alt) {
            continue;
        }
        seen.push(alt.clone());
        let h = KernelHashes {
            cmdline: kernel_hashes::cmdline_digest(alt.as_bytes()),
            ..*hashes
        };
        v.push(TableVariant {
            changes: vec![format!("matches {why}")],
            table: Some(h.padded_table()),
        });
    }
    if initrd_given {
        let h = KernelHashes {
            initrd: kernel_hashes::empty_digest(),
            ..*hashes
        };
        v.push(TableVariant {
            changes: vec!["matches if the guest was booted without the initrd".into()],
            table: Some(h.padded_table()),
        });
    }
    v
}

/// A VMSA configuration to try: its changes, the BSP page and the AP page.
type VmsaVariant = (
    Vec<String>,
    Box<[u8; VMSA_LEN]>,
    Option<Box<[u8; VMSA_LEN]>>,
);

/// The VMSA configurations to try.
fn vmsa_configs(k: &Known) -> Vec<VmsaVariant> {
    let Some((source, _)) = k.vmsa else {
        return vec![];
    };
    let (bsp, ap) = source.pages();
    let mut out = vec![(vec![], bsp, ap)];
    let (owner_cfg, reset) = match source {
        VmsaSource::Built {
            config,
            ap_reset_addr,
        } => (Some(*config), Some(*ap_reset_addr)),
        VmsaSource::Pages { .. } => (None, k.ap_reset_addr),
    };
    let Some(reset) = reset else { return out };
    let mut signatures: Vec<(u32, String)> = Vec::new();
    let mut add_sig = |sig: u32, name: String| {
        if !signatures.iter().any(|(s, _)| *s == sig) {
            signatures.push((sig, name));
        }
    };
    if let Some(c) = owner_cfg {
        add_sig(c.cpu_signature, String::new());
    }
    if let Some(h) = k.host_signature {
        add_sig(h, format!("the host's CPU signature ({h:#X})"));
    }
    for (name, sig) in cpu::NAMED_MODELS {
        add_sig(*sig, format!("CPU signature {name} ({sig:#X})"));
    }
    let base = owner_cfg.unwrap_or(VmsaConfig {
        form: VmsaForm::Legacy,
        cpu_signature: 0,
        sev_features: 0,
    });
    for form in [VmsaForm::Legacy, VmsaForm::Init2] {
        for &features in SEV_FEATURES_TRIED {
            for (sig, sig_name) in &signatures {
                let cfg = VmsaConfig {
                    form,
                    cpu_signature: *sig,
                    sev_features: features,
                };
                if Some(cfg) == owner_cfg {
                    continue;
                }
                let changes = vmsa_changes(&cfg, owner_cfg, &base, sig_name);
                out.push((
                    changes
                        .into_iter()
                        .map(|c| format!("matches {c}"))
                        .collect(),
                    vmsa::build(&cfg, vmsa::BSP_RESET_EIP),
                    Some(vmsa::build(&cfg, reset)),
                ));
            }
        }
    }
    out
}

/// What differs in `cfg` from the owner's VMSA configuration, in words.
fn vmsa_changes(
    cfg: &VmsaConfig,
    owner_cfg: Option<VmsaConfig>,
    base: &VmsaConfig,
    sig_name: &str,
) -> Vec<String> {
    let mut changes = Vec::new();
    if owner_cfg.is_none() {
        changes.push("with VMSAs built here instead of the VMSA files given".to_string());
    }
    if cfg.form != base.form {
        changes.push(match cfg.form {
            VmsaForm::Init2 => {
                "the KVM_SEV_INIT2 VMSA form (Linux 6.10+ with QEMU legacy-vm-type=off)".into()
            }
            VmsaForm::Legacy => "the legacy KVM_SEV_ES_INIT VMSA form".into(),
        });
    }
    let features = cfg.sev_features;
    if features != base.sev_features {
        changes.push(format!(
            "SEV_FEATURES {features:#x}{}",
            if features & 0x20 != 0 {
                " (DebugSwap)"
            } else {
                ""
            }
        ));
    }
    let sig = cfg.cpu_signature;
    if owner_cfg.map(|c| c.cpu_signature) != Some(sig) {
        changes.push(if sig_name.is_empty() {
            format!("CPU signature {sig:#X}")
        } else {
            sig_name.to_string()
        });
    }
    changes
}

/// Evaluates the variants; the first with the fewest changes wins.
pub fn explain(k: &Known) -> Explanation {
    let reported = &k.reported;
    let keys = key_variants(k);
    let policies = policy_variants(k);
    let es = SevPolicy::ES.bits();
    let mut best: Option<Vec<String>> = None;
    let mut tried = 0usize;
    // `with_vmsa`: whether the LD holds VMSA pages, as it does exactly for a
    // policy with the ES bit.
    let mut consider = |ld: &[u8; 32], changes: &[String], with_vmsa: bool| {
        for (kc, tik) in &keys {
            for (pc, info) in &policies {
                if (info.policy & es != 0) != with_vmsa {
                    continue;
                }
                tried += 1;
                let n = changes.len() + kc.len() + pc.len();
                if best.as_ref().is_some_and(|b| b.len() <= n) {
                    continue;
                }
                let m = compute_measure(tik, info, ld, &reported.mnonce);
                if measures_equal(&m, &reported.measure) {
                    best = Some(changes.iter().chain(kc).chain(pc).cloned().collect());
                }
            }
        }
    };
    let owner_n = k.vmsa.map(|(_, n)| n);
    let configs = vmsa_configs(k);
    for t in table_variants(k) {
        let mut after_table = k.firmware.clone();
        if let Some(table) = &t.table {
            after_table.update_kernel_hashes(table);
        }
        consider(&after_table.clone().finalize(), &t.changes, false);
        for (vc, bsp, ap) in &configs {
            let mut state = after_table.clone();
            state.update_vmsa(bsp);
            let max = MAX_VCPUS_TRIED.max(owner_n.unwrap_or(1));
            for n in 1..=max {
                if n > 1 {
                    match ap {
                        Some(ap) => state.update_vmsa(ap),
                        None => break,
                    }
                }
                let mut changes = t.changes.clone();
                changes.extend(vc.iter().cloned());
                if Some(n) != owner_n {
                    changes.push(format!(
                        "matches with {n} vCPUs instead of {}",
                        owner_n.unwrap_or(0)
                    ));
                }
                consider(&state.clone().finalize(), &changes, true);
            }
        }
    }
    Explanation {
        matched: best,
        tried,
    }
}

/// The owner's TIK, and the TEK in its place when the two were swapped.
fn key_variants(k: &Known) -> Vec<(Vec<String>, Tik)> {
    let mut keys: Vec<(Vec<String>, Tik)> = vec![(vec![], k.tik.clone())];
    if let Some(t) = Tik::from_slice(k.tek.as_bytes()) {
        keys.push((
            vec![if k.tk_file {
                "matches with the TK file's halves the other way round (TIK first, then TEK)".into()
            } else {
                "matches if TIK and TEK are swapped (the TEK file holds the TIK)".into()
            }],
            t,
        ));
    }
    keys
}

/// The owner's policy, then each other policy the host may have launched with.
fn policy_variants(k: &Known) -> Vec<(Vec<String>, LaunchInfo)> {
    let mut policies: Vec<(Vec<String>, LaunchInfo)> = vec![(vec![], k.info)];
    let es = SevPolicy::ES.bits();
    let nodbg = SevPolicy::NODBG.bits();
    let p = k.info.policy;
    let es_word = |p: u32| if p & es != 0 { "set" } else { "clear" };
    let nodbg_word = |p: u32| if p & nodbg != 0 { "set" } else { "clear" };
    // A policy given for another launch: the SEV-ES bit (and NODBG) toggled.
    let toggled = [
        (p ^ es, format!("the SEV-ES bit {}", es_word(p ^ es))),
        (p ^ nodbg, format!("NODBG {}", nodbg_word(p ^ nodbg))),
        (
            p ^ es ^ nodbg,
            format!(
                "the SEV-ES bit {} and NODBG {}",
                es_word(p ^ es),
                nodbg_word(p ^ nodbg)
            ),
        ),
    ];
    let others = k.other_policies.iter().cloned().chain(toggled);
    for (p, why) in others {
        if !policies.iter().any(|(_, i)| i.policy == p) {
            let p = &p;
            policies.push((
                vec![format!("matches with policy {p:#x} ({why})")],
                LaunchInfo {
                    policy: *p,
                    ..k.info
                },
            ));
        }
    }
    policies
}

/// "matches if X, with Y and with Z" from the explainer's changes.
pub fn join_changes(changes: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if i == 0 {
            parts.push(c.clone());
        } else {
            parts.push(c.strip_prefix("matches ").unwrap_or(c).to_string());
        }
    }
    match parts.len() {
        0 => "matches as given".into(),
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    }
}
