//! The variants the IGVM search tries, in order, each with its cost in
//! PAGE_INFO hashes: the VMSA variants (cheap: only the VMSAs are hashed
//! again), then the page variants from the file's last directive back to
//! its first, so that the budget covers as many variants as it can. The
//! plan is cut where the budget runs out, so which variants are tried does
//! not depend on how many threads try them.

use super::chain::{Chain, Run};
use super::change::IgvmChange;
use crate::core::igvm::vmsa_fields::{self, VmsaField};
use crate::core::igvm::Import;

/// The cost of hashing one VMSA page (4 KiB) in PAGE_INFO hashes (112 bytes).
const VMSA_PAGE_COST: u64 = 16;
/// Extra vCPUs tried beyond the file's VMSAs.
pub const MAX_EXTRA_VCPUS: usize = 64;
/// Pages a parameter area is tried larger by.
pub const MAX_PARAMETER_GROWTH: usize = 16;
/// SEV_FEATURES bits toggled: those the APM and the SNP ABI name (0 to 15),
/// and any other the file's VMSA sets.
const NAMED_FEATURE_BITS: u32 = 16;
/// GPA bits toggled: a page's frame number up to 52-bit physical addresses.
pub const GPA_BITS: std::ops::Range<u32> = 12..52;

/// How one variant differs from the file's launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Alter {
    /// Only the first `k` VMSAs measured.
    FewerVmsas(usize),
    /// A VMSA field XORed with `mask`, in VMSA `which` (an index into
    /// [`crate::core::igvm::IgvmLaunch::vmsas`]) or in every VMSA.
    VmsaXor {
        which: Option<usize>,
        field: VmsaField,
        mask: u64,
    },
    /// 1 to `max` extra vCPUs measured with extra VMSA `candidate`.
    Extra { candidate: usize, max: usize },
    /// The run's pages imported as another type.
    Import(Import),
    /// The run's pages at their GPA with this bit toggled.
    GpaBit(u32),
    /// The parameter insert of the run with this many pages.
    ParameterPages(usize),
}

/// One variant: an alteration of run `run` (for the page variants).
#[derive(Debug, Clone, Copy)]
pub(super) struct Task {
    pub run: usize,
    pub alter: Alter,
}

/// The phases of the plan, in order, for the words of `searched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Vmsas,
    ParameterAreas,
    LikelyTypes,
    OtherTypes,
    Gpas,
}

impl Phase {
    fn words(self) -> &'static str {
        match self {
            Phase::Vmsas => "the VMSA variants",
            Phase::ParameterAreas => "the parameter area sizes",
            Phase::LikelyTypes => {
                "the page types (normal or zero as unmeasured, unmeasured as zero, secrets and CPUID swapped)"
            }
            Phase::OtherTypes => "the other page types",
            Phase::Gpas => "the page GPAs",
        }
    }
}

/// The alterations one phase tries on a run.
type Alters<'a> = dyn Fn(&Run) -> Vec<Alter> + 'a;

/// The planned variants, within the budget.
pub(super) struct Plan {
    pub tasks: Vec<Task>,
    /// The cost of each task, in PAGE_INFO hashes.
    pub costs: Vec<u64>,
    /// Digests each task compares.
    pub digests: Vec<usize>,
    budget: u64,
    used: u64,
    /// Where the budget stopped the plan: the phase, and how many of its
    /// directives (from the file's end) it covered.
    pub stopped: Option<(Phase, usize, usize)>,
}

impl Plan {
    /// Adds a task unless it would exceed the budget.
    fn push(&mut self, task: Task, cost: u64, digests: usize) -> bool {
        if self.stopped.is_some() || self.used.saturating_add(cost) > self.budget {
            return false;
        }
        self.used += cost;
        self.tasks.push(task);
        self.costs.push(cost);
        self.digests.push(digests);
        true
    }

    /// The budget, in PAGE_INFO hashes.
    pub fn budget(&self) -> u64 {
        self.budget
    }
}

/// Every variant worth trying, in order, cut at `budget` PAGE_INFO hashes.
pub(super) fn plan(chain: &Chain, budget: u64) -> Plan {
    let mut p = Plan {
        tasks: Vec::new(),
        costs: Vec::new(),
        digests: Vec::new(),
        budget,
        used: 0,
        stopped: None,
    };
    if !vmsa_tasks(chain, &mut p) {
        p.stopped = Some((Phase::Vmsas, 0, 0));
        return p;
    }
    let phases: [(Phase, &Alters); 4] = [
        (Phase::ParameterAreas, &|r| parameter_sizes(chain, r)),
        (Phase::LikelyTypes, &|r| types(chain, r, true)),
        (Phase::OtherTypes, &|r| types(chain, r, false)),
        (Phase::Gpas, &|_| GPA_BITS.map(Alter::GpaBit).collect()),
    ];
    for (phase, alters) in phases {
        if !run_tasks(chain, &mut p, phase, alters) {
            break;
        }
    }
    p
}

/// The page variants of one phase, from the last run back; false when the
/// budget stopped them.
fn run_tasks(
    chain: &Chain,
    p: &mut Plan,
    phase: Phase,
    alters: &dyn Fn(&Run) -> Vec<Alter>,
) -> bool {
    let n = chain.launch.pages.len();
    let vmsas = chain.launch.vmsas.len() as u64;
    let total = chain.runs.len();
    for (covered, (i, r)) in chain.runs.iter().enumerate().rev().enumerate() {
        for alter in alters(r) {
            let pages = match alter {
                Alter::ParameterPages(k) => k,
                _ => r.len,
            };
            let cost = (pages + n - r.end()) as u64 + vmsas;
            if !p.push(Task { run: i, alter }, cost, 1) {
                p.stopped = Some((phase, covered, total));
                return false;
            }
        }
    }
    true
}

/// The VMSA variants: fewer VMSAs, each SEV_FEATURES bit and each RIP bit
/// toggled, and extra vCPUs; false when the budget stopped them.
fn vmsa_tasks(chain: &Chain, p: &mut Plan) -> bool {
    let vmsas = &chain.launch.vmsas;
    let n = vmsas.len();
    let mut ok = true;
    let mut push = |alter: Alter, cost: u64, digests: usize| {
        ok = ok && p.push(Task { run: 0, alter }, cost, digests);
    };
    for k in (1..n).rev() {
        push(Alter::FewerVmsas(k), 0, 1);
    }
    let features = vmsa_fields::sev_features();
    let mut bits: Vec<u32> = (0..NAMED_FEATURE_BITS).collect();
    let set = vmsas.iter().fold(0u64, |a, v| a | v.sev_features());
    bits.extend((NAMED_FEATURE_BITS..64).filter(|b| set & (1 << b) != 0));
    let each = (VMSA_PAGE_COST + 1) * n as u64;
    for &bit in &bits {
        let mask = 1u64 << bit;
        push(
            Alter::VmsaXor {
                which: None,
                field: features,
                mask,
            },
            each,
            1,
        );
    }
    for k in 0..n {
        let cost = VMSA_PAGE_COST + (n - k) as u64;
        if n > 1 {
            for &bit in &bits {
                let mask = 1u64 << bit;
                push(
                    Alter::VmsaXor {
                        which: Some(k),
                        field: features,
                        mask,
                    },
                    cost,
                    1,
                );
            }
        }
        for bit in 0..64 {
            let mask = 1u64 << bit;
            push(
                Alter::VmsaXor {
                    which: Some(k),
                    field: vmsa_fields::rip(),
                    mask,
                },
                cost,
                1,
            );
        }
    }
    for c in 0..chain.extra.len() {
        let max = MAX_EXTRA_VCPUS;
        push(
            Alter::Extra { candidate: c, max },
            VMSA_PAGE_COST + max as u64,
            max,
        );
    }
    ok
}

/// Sizes tried for a parameter insert: one page fewer or more first.
fn parameter_sizes(chain: &Chain, r: &Run) -> Vec<Alter> {
    if !matches!(chain.launch.pages[r.start].import, Import::Parameter(_)) {
        return vec![];
    }
    let mut v = Vec::new();
    for d in 1..=MAX_PARAMETER_GROWTH.max(r.len) {
        if d <= MAX_PARAMETER_GROWTH {
            v.push(Alter::ParameterPages(r.len + d));
        }
        if d < r.len {
            v.push(Alter::ParameterPages(r.len - d));
        }
    }
    v
}

/// The imports tried for a run: the likely ones (`likely`), or the others.
/// None gives a page data: its contents are not known.
fn types(chain: &Chain, r: &Run, likely: bool) -> Vec<Alter> {
    use Import::{Cpuid, Data, Secrets, Unmeasured, Zero};
    let first = &chain.launch.pages[r.start];
    let to: &[Import] = match (first.import, likely) {
        (Data | Zero, true) => &[Unmeasured],
        (Unmeasured, true) => &[Zero],
        (Secrets, true) => &[Cpuid],
        (Cpuid, true) => &[Secrets],
        (Data, false) => &[Zero, Secrets, Cpuid],
        (Zero | Unmeasured, false) => &[Secrets, Cpuid],
        (Secrets | Cpuid, false) => &[Unmeasured, Zero],
        (Import::Parameter(_), _) => &[],
    };
    to.iter()
        .filter(|&&t| {
            // A variant that measures what the file does is no variant.
            let pages = &chain.launch.pages[r.start..r.end()];
            pages.iter().any(|p| {
                p.import.page_type() != t.page_type() || p.contents != chain.contents_as(p, t)
            })
        })
        .map(|&t| Alter::Import(t))
        .collect()
}

/// The change a matching task names.
pub(super) fn change(chain: &Chain, task: &Task, extra: usize) -> IgvmChange {
    use super::change::VmsaCountHow;
    let l = chain.launch;
    let n = l.vmsas.len();
    match task.alter {
        Alter::FewerVmsas(k) => IgvmChange::VmsaCount {
            file: n,
            host: k,
            how: VmsaCountHow::FirstOnly,
        },
        Alter::VmsaXor { which, field, mask } => {
            let k = which.unwrap_or(0);
            let expected = l.vmsas.get(k).map_or(0, |v| field.value(&v.page));
            let one = which.or((n == 1).then_some(0));
            IgvmChange::VmsaField {
                vmsa: one
                    .and_then(|k| l.vmsas.get(k))
                    .map(|v| (v.vp_index, v.directive)),
                field,
                expected,
                host: expected ^ mask,
            }
        }
        Alter::Extra { candidate, .. } => IgvmChange::VmsaCount {
            file: n,
            host: n + extra,
            how: chain
                .extra
                .get(candidate)
                .map_or(VmsaCountHow::HostFile, |e| e.how.clone()),
        },
        Alter::Import(_) | Alter::GpaBit(_) | Alter::ParameterPages(_) => page_change(chain, task),
    }
}

fn page_change(chain: &Chain, task: &Task) -> IgvmChange {
    let r = chain.runs[task.run];
    let first = &chain.launch.pages[r.start];
    match task.alter {
        Alter::GpaBit(bit) => IgvmChange::PageGpa {
            directive: r.directive,
            pages: r.len,
            expected: first.gpa,
            host: first.gpa ^ (1 << bit),
        },
        Alter::ParameterPages(k) => IgvmChange::ParameterArea {
            directive: r.directive,
            area: match first.import {
                Import::Parameter(a) => a,
                _ => 0,
            },
            gpa: first.gpa,
            expected: r.len,
            host: k,
        },
        Alter::Import(to) => IgvmChange::PageType {
            directive: r.directive,
            gpa: first.gpa,
            pages: r.len,
            expected: first.import,
            host: to,
        },
        // Not a page variant: named by `change`.
        _ => IgvmChange::Layout {
            expected: chain.launch.pages.len(),
            host: chain.launch.pages.len(),
            directive: Some(r.directive),
        },
    }
}

/// What the search varied and whether the budget stopped it, in words.
pub(super) fn words(chain: &Chain, p: &Plan, used: u64) -> String {
    let l = chain.launch;
    let n = l.vmsas.len();
    let mut s = String::from("the VMSA count (");
    if n > 1 {
        s.push_str(&format!("fewer: 1 to {}; ", n - 1));
    }
    s.push_str(&format!(
        "more: up to {MAX_EXTRA_VCPUS} extra vCPUs in QEMU's reset state for each named vCPU model, both VMSA forms and SEV_FEATURES of the file or 0x1, or as copies of the first VMSA; other extra vCPU state is not in the file and cannot be computed), \
         SEV_FEATURES bits 0 to 15 of every VMSA, each bit of each VMSA's RIP, each parameter area's size (up to {MAX_PARAMETER_GROWTH} pages more or any fewer), \
         each directive's pages imported as another type, and each directive's GPA with one of bits {} to {} toggled; ",
        GPA_BITS.start,
        GPA_BITS.end - 1
    ));
    s.push_str(&format!(
        "budget {} PAGE_INFO hashes, {used} used: ",
        p.budget()
    ));
    match p.stopped {
        None => s.push_str("every variant was tried"),
        Some((Phase::Vmsas, _, _)) => {
            s.push_str("the budget stopped the search in the VMSA variants; no page variant was tried")
        }
        Some((phase, covered, total)) => s.push_str(&format!(
            "the budget stopped the search in {} after {covered} of {total} directives (from the file's end); the later phases were not tried",
            phase.words()
        )),
    }
    s
}
