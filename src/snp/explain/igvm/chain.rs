//! An IGVM launch's hash chain, kept so that a variant costs only its
//! suffix: the launch digest before each page and before each VMSA is
//! computed once, and a variant that changes page `i` continues from the
//! digest before it ([`Chain::digest_of`]).

use super::plan::{Alter, Task};
use crate::core::cpu;
use crate::core::igvm::vmsa_fields::VmsaField;
use crate::core::igvm::{measure_pages, IgvmLaunch, Import, MeasuredPage};
use crate::core::snp::{sha384, GuestContext, Ld, PageType, LD_LEN, PAGE_LEN, VMSA_GPA};
use crate::core::vmsa::{self, VmmType, VmsaConfig, VmsaForm};

use super::change::VmsaCountHow;

/// The consecutive pages one directive imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    /// The directive's index in the file.
    pub directive: usize,
    /// Its first page in [`IgvmLaunch::pages`].
    pub start: usize,
    /// How many pages.
    pub len: usize,
}

impl Run {
    /// One past its last page.
    pub fn end(&self) -> usize {
        self.start + self.len
    }
}

/// The directives' runs of pages, in measurement order.
pub(super) fn runs(pages: &[MeasuredPage]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (i, p) in pages.iter().enumerate() {
        match out.last_mut() {
            Some(r) if r.directive == p.directive && r.end() == i => r.len += 1,
            _ => out.push(Run {
                directive: p.directive,
                start: i,
                len: 1,
            }),
        }
    }
    out
}

/// What the extra vCPUs of a host with more vCPUs than VMSAs may have
/// been measured with: a VMSA page's SHA-384 and where it comes from.
pub(super) struct ExtraVmsa {
    pub contents: Ld,
    pub how: VmsaCountHow,
}

/// The launch as hashed, with every intermediate digest.
pub(super) struct Chain<'a> {
    pub launch: &'a IgvmLaunch,
    /// `prefix[i]`: the launch digest before page `i`; the last after every page.
    prefix: Vec<Ld>,
    /// `vprefix[k]`: the launch digest before VMSA `k`; the last is the launch's.
    vprefix: Vec<Ld>,
    /// SHA-384 of each VMSA page.
    vmsa_contents: Vec<Ld>,
    pub runs: Vec<Run>,
    zero_page: Ld,
    pub extra: Vec<ExtraVmsa>,
}

impl<'a> Chain<'a> {
    /// Hashes the launch once, keeping every intermediate digest.
    pub fn new(launch: &'a IgvmLaunch) -> Chain<'a> {
        let mut g = GuestContext::new();
        let mut prefix = Vec::with_capacity(launch.pages.len() + 1);
        for p in &launch.pages {
            prefix.push(g.ld());
            measure_pages(&mut g, std::slice::from_ref(p));
        }
        prefix.push(g.ld());
        let vmsa_contents: Vec<Ld> = launch.vmsas.iter().map(|v| sha384(&v.page[..])).collect();
        let mut vprefix = Vec::with_capacity(vmsa_contents.len() + 1);
        for c in &vmsa_contents {
            vprefix.push(g.ld());
            g.update(PageType::Vmsa, VMSA_GPA, c);
        }
        vprefix.push(g.ld());
        Chain {
            launch,
            prefix,
            vprefix,
            runs: runs(&launch.pages),
            zero_page: sha384(&[0u8; PAGE_LEN]),
            extra: extra_vmsas(launch, &vmsa_contents),
            vmsa_contents,
        }
    }

    /// The launch digest.
    pub fn digest(&self) -> Ld {
        self.vprefix[self.vprefix.len() - 1]
    }

    /// The launch digest of the first `k` VMSAs only.
    fn with_vmsas(&self, k: usize) -> Ld {
        self.vprefix[k.min(self.vprefix.len() - 1)]
    }

    /// Continues `g` with the pages from `from` and every VMSA.
    fn finish(&self, mut g: GuestContext, from: usize) -> Ld {
        measure_pages(&mut g, &self.launch.pages[from..]);
        for c in &self.vmsa_contents {
            g.update(PageType::Vmsa, VMSA_GPA, c);
        }
        g.ld()
    }

    /// PAGE_INFO.CONTENTS of `p` imported as `to` (never Data: the search
    /// cannot know a page's data).
    pub fn contents_as(&self, p: &MeasuredPage, to: Import) -> Ld {
        match to {
            Import::Data => p.contents,
            Import::Zero => self.zero_page,
            Import::Unmeasured | Import::Secrets | Import::Cpuid | Import::Parameter(_) => {
                [0; LD_LEN]
            }
        }
    }

    /// The digest of a VMSA field changed by `mask` in VMSA `which`, or in
    /// every VMSA.
    fn vmsa_xor(&self, which: Option<usize>, field: VmsaField, mask: u64) -> Ld {
        let from = which.unwrap_or(0);
        let mut g = GuestContext::from_ld(self.vprefix[from]);
        for (k, v) in self.launch.vmsas.iter().enumerate().skip(from) {
            let contents = if which.is_none() || which == Some(k) {
                let page = field.with(&v.page, field.value(&v.page) ^ mask);
                sha384(&page[..])
            } else {
                self.vmsa_contents[k]
            };
            g.update(PageType::Vmsa, VMSA_GPA, &contents);
        }
        g.ld()
    }

    /// The number of extra vCPUs (1 to `max`) with VMSA `e` that gives `reported`.
    fn extra_vcpus(&self, e: &ExtraVmsa, max: usize, reported: &Ld) -> Option<usize> {
        let mut g = GuestContext::from_ld(self.digest());
        for m in 1..=max {
            g.update(PageType::Vmsa, VMSA_GPA, &e.contents);
            if g.ld() == *reported {
                return Some(m);
            }
        }
        None
    }

    /// Whether `task` gives `reported`: `Some(n)` with the extra vCPU count
    /// for an extra-vCPU task, `Some(0)` for any other.
    pub fn matches(&self, task: &Task, reported: &Ld) -> Option<usize> {
        let ld = match task.alter {
            Alter::FewerVmsas(k) => self.with_vmsas(k),
            Alter::VmsaXor { which, field, mask } => self.vmsa_xor(which, field, mask),
            Alter::Extra { candidate, max } => {
                return self
                    .extra
                    .get(candidate)
                    .and_then(|e| self.extra_vcpus(e, max, reported))
            }
            Alter::Import(to) => self.page_digest(task.run, |g, p| {
                g.update(to.page_type(), p.gpa, &self.contents_as(p, to));
            }),
            Alter::GpaBit(bit) => self.page_digest(task.run, |g, p| {
                g.update(p.import.page_type(), p.gpa ^ (1 << bit), &p.contents);
            }),
            Alter::ParameterPages(n) => {
                let r = self.runs[task.run];
                let mut g = GuestContext::from_ld(self.prefix[r.start]);
                let gpa = self.launch.pages[r.start].gpa;
                for i in 0..n as u64 {
                    g.update(
                        PageType::Unmeasured,
                        gpa.wrapping_add(i << 12),
                        &[0; LD_LEN],
                    );
                }
                self.finish(g, r.end())
            }
        };
        (ld == *reported).then_some(0)
    }

    /// The digest with run `run`'s pages measured by `page` instead.
    fn page_digest(&self, run: usize, page: impl Fn(&mut GuestContext, &MeasuredPage)) -> Ld {
        let r = self.runs[run];
        let pages = &self.launch.pages;
        let jump = self
            .launch
            .jumps
            .iter()
            .find(|j| j.region.start <= r.start && r.end() <= j.region.end);
        let Some(j) = jump else {
            let mut g = GuestContext::from_ld(self.prefix[r.start]);
            for p in &pages[r.start..r.end()] {
                page(&mut g, p);
            }
            return self.finish(g, r.end());
        };
        // The change splits the region QEMU held back when the inserts came:
        // its part before the change goes first, then the changed pages; the
        // inserts now jump only what follows them (or the changed pages, if
        // they end the region).
        let mut g = GuestContext::from_ld(self.prefix[j.inserts.start]);
        measure_pages(&mut g, &pages[j.region.start..r.start]);
        let inserts = &pages[j.inserts.clone()];
        if r.end() == j.region.end {
            measure_pages(&mut g, inserts);
        }
        for p in &pages[r.start..r.end()] {
            page(&mut g, p);
        }
        if r.end() < j.region.end {
            measure_pages(&mut g, inserts);
            measure_pages(&mut g, &pages[r.end()..j.region.end]);
        }
        self.finish(g, j.region.end)
    }
}

/// The VMSAs a host that starts more vCPUs than the file has VMSAs may
/// have measured for them: QEMU's reset state (what QEMU gives a vCPU
/// the file has no VMSA for, as KVM builds its VMSA) for each named vCPU
/// model, both VMSA forms, and SEV_FEATURES of the file's first VMSA or
/// 0x1; then a copy of the first VMSA (a VMM that gives every vCPU the
/// file's VMSA).
fn extra_vmsas(launch: &IgvmLaunch, contents: &[Ld]) -> Vec<ExtraVmsa> {
    let mut features = vec![];
    if let Some(v) = launch.vmsas.first() {
        features.push(v.sev_features());
    }
    if !features.contains(&1) {
        features.push(1);
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for form in [VmsaForm::Init2, VmsaForm::Legacy] {
        for &(model, sig) in cpu::NAMED_MODELS {
            if seen.contains(&(form, sig, 0)) {
                continue;
            }
            seen.push((form, sig, 0));
            for &f in &features {
                let cfg = VmsaConfig {
                    form,
                    cpu_signature: sig,
                    sev_features: f,
                };
                let page = vmsa::build_for(VmmType::Qemu, &cfg, vmsa::BSP_RESET_EIP);
                out.push(ExtraVmsa {
                    contents: sha384(&page[..]),
                    how: VmsaCountHow::ResetState {
                        model,
                        sev_features: f,
                        form,
                    },
                });
            }
        }
    }
    if let (Some(v), Some(c)) = (launch.vmsas.first(), contents.first()) {
        out.push(ExtraVmsa {
            contents: *c,
            how: VmsaCountHow::CopyOf(v.vp_index),
        });
    }
    out
}
