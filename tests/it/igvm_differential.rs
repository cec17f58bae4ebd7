//! `snp-digest --igvm` against the igvm crate's own SEV-SNP measurement
//! (`igvm::measurement::generate_snp_measurement`, igvm 0.5, feature
//! `corim`), on IGVM files the crate's builder writes.
//!
//! Randomised (seeded, `IGVM_DIFF_SEED`, `IGVM_DIFF_CASES` default 200,
//! `IGVM_DIFF_CASE` one case): normal pages with random data (some short),
//! zero and unmeasured pages, SECRETS, CPUID_DATA and CPUID_XF pages,
//! parameter areas of 1 to 4 pages with their inserts, 1 to 3 VMSAs at
//! 0xFFFFFFFFF000 placed last (random RIP, CR0 and SEV_FEATURES with
//! SNPActive), a random guest policy, sometimes an ID block (for the digest
//! or another), sometimes a second platform (native, with its own pages and
//! VP context under the other mask bit, and pages for both), sometimes 2 MiB
//! pages and shared pages; the order of the directives before the VMSAs is
//! random. Each case: the tool's digest (through the CLI, with the file's
//! --vcpus and --policy now and then) must equal the crate's digest of the
//! same launch, and the tool must warn exactly for what it finds.
//!
//! Where QEMU and the crate measure differently, the crate is given the
//! equivalent file QEMU measures (each case says which; the targeted tests
//! below show each divergence alone, and that the crate's digest of the file
//! as written differs):
//! - a 2 MiB page: QEMU imports 512 pages of 4 KiB (the page's data, at most
//!   4 KiB as the crate stores it, then zeros); the crate measures one
//!   4 KiB page for it. The crate gets the 512 pages.
//! - a shared page: QEMU 10 ignores the flag and measures the page; the
//!   crate skips it. The crate gets the page without the flag.
//! - VMSAs: KVM measures them after every page, in vCPU order, at
//!   0xFFFFFFFFF000; the crate measures them in file order at the file's
//!   GPA. The crate gets them last, in vp_index order, at 0xFFFFFFFFF000.
//!
//! - parameter inserts: QEMU measures an insert at once but a page region
//!   only when a later page directive ends it, so an insert that follows
//!   pages is measured before them; the crate measures in file order. The
//!   crate gets the directives in QEMU's order (`igvm_build::qemu_order`;
//!   `parameter_insert_after_pages_jumps_the_pending_region` shows it alone).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use igvm::IgvmDirectiveHeader;
use igvm_defs::IgvmPageDataType;
use sha2::{Digest, Sha384};

use crate::common::rng::{env_u64, Rng};
use crate::common::Tool;
use crate::igvm_build::{self as b, hex, Kind, Spec};

const DEFAULT_SEED: u64 = 0x1C7A_D1FF_2026_0001;
const DEFAULT_CASES: usize = 200;

/// One random file and what the tool must say about it.
struct Case {
    idx: usize,
    /// The file as written.
    file: Spec,
    /// The same launch as the crate measures it (see the module docs).
    for_crate: Spec,
    /// WARNING lines the tool must print, by a substring each.
    warnings: Vec<String>,
    vmsas: usize,
    args: Vec<String>,
    summary: String,
}

/// GPAs handed out upwards with random gaps; 2 MiB pages 2 MiB-aligned.
struct Gpas(u64);

impl Gpas {
    fn next(&mut self, rng: &mut Rng, len: u64) -> u64 {
        if rng.chance(30) {
            self.0 += rng.range(1, 16) * b::PAGE;
        }
        self.0 = self.0.next_multiple_of(len);
        let at = self.0;
        self.0 += len;
        at
    }
}

/// A 2 MiB page directive: the flag set on a 4 KiB page directive.
fn large(d: IgvmDirectiveHeader) -> IgvmDirectiveHeader {
    b::with_flags(d, |f| f.with_is_2mb_page(true))
}

/// What QEMU imports for a 2 MiB page: 512 pages of 4 KiB of the same kind,
/// the first with the page's data, the others zeros.
fn expand_2m(d: &IgvmDirectiveHeader) -> Vec<IgvmDirectiveHeader> {
    let IgvmDirectiveHeader::PageData {
        gpa,
        compatibility_mask,
        flags,
        data_type,
        data,
    } = d
    else {
        return vec![d.clone()];
    };
    if !flags.is_2mb_page() {
        return vec![d.clone()];
    }
    (0..512)
        .map(|i| IgvmDirectiveHeader::PageData {
            gpa: gpa + i * b::PAGE,
            compatibility_mask: *compatibility_mask,
            flags: flags.with_is_2mb_page(false),
            data_type: *data_type,
            data: if i == 0 { data.clone() } else { Vec::new() },
        })
        .collect()
}

/// The warning a 2 MiB page other than NORMAL gets (the SNP firmware may
/// refuse such pages; QEMU hands them over all the same).
fn large_special(d: &IgvmDirectiveHeader) -> Option<String> {
    let IgvmDirectiveHeader::PageData {
        gpa,
        flags,
        data_type,
        ..
    } = d
    else {
        return None;
    };
    let kind = match *data_type {
        IgvmPageDataType::SECRETS => "secrets page",
        IgvmPageDataType::CPUID_DATA | IgvmPageDataType::CPUID_XF => "CPUID page",
        _ if flags.unmeasured() => "unmeasured page",
        _ => return None,
    };
    Some(format!("is a 2 MiB {kind} at GPA {gpa:#x}"))
}

fn clear_shared(d: &IgvmDirectiveHeader) -> IgvmDirectiveHeader {
    b::with_flags(d.clone(), |f| f.with_shared(false))
}

fn random_page(rng: &mut Rng, gpas: &mut Gpas, mask: u32, two_mb: bool) -> IgvmDirectiveHeader {
    let kinds: &[Kind] = if two_mb {
        &[
            Kind::Data,
            Kind::Data,
            Kind::Zero,
            Kind::Zero,
            Kind::Unmeasured,
            Kind::Secrets,
            Kind::Cpuid,
        ]
    } else {
        &[
            Kind::Data,
            Kind::Data,
            Kind::Data,
            Kind::Zero,
            Kind::Zero,
            Kind::Unmeasured,
        ]
    };
    let kind = rng.pick(kinds);
    let len = if rng.chance(30) {
        rng.range(1, 4095) as usize
    } else {
        4096
    };
    let gpa = gpas.next(rng, if two_mb { b::PAGE_2M } else { b::PAGE });
    let d = b::page(gpa, kind, rng.bytes(len), mask);
    if two_mb {
        large(d)
    } else {
        d
    }
}

/// The pages and parameter inserts of a case, in random order, and the
/// parameter areas they use (declared first).
fn body(rng: &mut Rng, c: &mut Case, gpas: &mut Gpas) {
    let mut body = Vec::new();
    for _ in 0..rng.below(24) {
        body.push(random_page(rng, gpas, b::SNP, false));
    }
    for kind in [Kind::Secrets, Kind::Cpuid, Kind::CpuidXf] {
        for _ in 0..rng.below(2) {
            body.push(b::page(gpas.next(rng, b::PAGE), kind, vec![], b::SNP));
        }
    }
    if rng.chance(15) {
        for _ in 0..rng.range(1, 2) {
            let d = random_page(rng, gpas, b::SNP, true);
            if let Some(w) = large_special(&d) {
                c.warnings.push(w);
            }
            body.push(d);
        }
        c.summary.push_str(" 2MiB");
    }
    if rng.chance(12) && !body.is_empty() {
        let i = rng.below(body.len() as u64) as usize;
        if let IgvmDirectiveHeader::PageData { gpa, .. } = &body[i] {
            c.warnings
                .push(format!("marks the page at GPA {gpa:#x} shared"));
        }
        body[i] = b::with_flags(body[i].clone(), |f| f.with_shared(true));
        c.summary.push_str(" shared");
    }
    let areas = rng.below(3) as u32;
    for index in 0..areas {
        let pages = rng.range(1, 4);
        c.file.push(b::param_area(index, pages * b::PAGE));
        if index == 0 {
            c.file.push(b::vp_count(0));
        }
        let gpa = gpas.next(rng, pages * b::PAGE);
        body.push(b::insert(index, gpa, b::SNP));
        c.summary.push_str(&format!(" area{index}={pages}p"));
    }
    if c.file.native {
        for _ in 0..rng.range(1, 6) {
            let mask = rng.pick(&[b::NATIVE, b::NATIVE | b::SNP]);
            body.push(random_page(rng, gpas, mask, false));
        }
        if rng.chance(50) {
            body.push(b::native_context(0, rng.next_u64() & 0xffff_f000));
        }
        c.summary.push_str(" +native");
    }
    // Fisher-Yates: the directives before the VMSAs in random order.
    for i in (1..body.len()).rev() {
        body.swap(i, rng.below(i as u64 + 1) as usize);
    }
    c.summary
        .push_str(&format!(" {} directives before the VMSAs", body.len()));
    c.file.directives.extend(body);
}

fn gen_case(idx: usize, seed: u64) -> Case {
    let mut rng = Rng::new(seed ^ (idx as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let policy = 0x30000 | (rng.below(16) << 16) & !0x4_0000 | rng.below(256);
    let mut file = Spec::new(policy | 0x2_0000);
    file.native = rng.chance(25);
    let mut c = Case {
        idx,
        file,
        for_crate: Spec::new(0),
        warnings: Vec::new(),
        vmsas: rng.range(1, 3) as usize,
        args: Vec::new(),
        summary: String::new(),
    };
    let mut gpas = Gpas(rng.range(0x10, 0x4000) * b::PAGE);
    body(&mut rng, &mut c, &mut gpas);
    for vp in 0..c.vmsas {
        let cr0 = rng.pick(&[0x30, 0x31, 0x8000_0031, 0x10]);
        // SNPActive plus a random subset of the other features.
        let features = 1 | (rng.next_u64() & 0xfffe & !0x2);
        let rip = rng.next_u64() & 0xffff_ffff;
        c.file
            .push(b::vmsa(vp as u16, b::KVM_VMSA_GPA, rip, cr0, features));
    }
    if c.vmsas > 1 {
        c.warnings.push(format!("{} VMSAs", c.vmsas));
    }
    // QEMU's order first (on the file as written: a 2 MiB page is one
    // directive of its own region), then what QEMU measures otherwise.
    c.for_crate = Spec {
        directives: b::qemu_order(&c.file.directives, b::SNP)
            .iter()
            .flat_map(expand_2m)
            .map(|d| clear_shared(&d))
            .collect(),
        ..c.file.clone()
    };
    if rng.chance(30) {
        let right = b::crate_digest(&c.for_crate.bytes()).unwrap();
        let ld = if rng.chance(50) {
            right
        } else {
            c.warnings
                .push("the file's ID block vouches for launch digest".into());
            Sha384::digest(rng.bytes(8)).into()
        };
        c.file.directives.insert(0, b::id_block(ld));
        c.summary.push_str(" id-block");
    }
    if rng.chance(30) {
        c.args.extend(["--vcpus".into(), c.vmsas.to_string()]);
    }
    if rng.chance(30) {
        c.args
            .extend(["--policy".into(), format!("{:#x}", policy | 0x2_0000)]);
    }
    c.summary = format!("{} VMSA(s){}", c.vmsas, c.summary);
    c
}

/// The failures of one case (empty: agreed).
fn check_case(c: &Case, dir: &Path) -> Vec<String> {
    // `for_crate` has the directives in QEMU's order already.
    let want = match b::crate_digest(&c.for_crate.bytes()) {
        Ok(d) => hex(&d),
        Err(e) => return vec![format!("case {}: the crate cannot measure it: {e}", c.idx)],
    };
    let path = c.file.write(dir, &format!("case-{}.igvm", c.idx));
    let o = Tool::new()
        .args(["snp-digest", "--igvm"])
        .arg(&path)
        .args(&c.args)
        .run();
    let mut f = Vec::new();
    let tag = format!("case {} ({})", c.idx, c.summary);
    if o.code != 0 || o.stderr.contains("panicked") {
        return vec![format!("{tag}: exit {}: {}", o.code, o.stderr)];
    }
    if o.stdout.trim() != want {
        f.push(format!("{tag}: ours {} crate {want}", o.stdout.trim()));
    }
    let lines = o.stderr.matches("WARNING:").count();
    if lines != c.warnings.len() || !c.warnings.iter().all(|w| o.stderr.contains(w.as_str())) {
        f.push(format!(
            "{tag}: wanted warnings {:?}, got: {}",
            c.warnings, o.stderr
        ));
    }
    let _ = std::fs::remove_file(path);
    f
}

#[test]
fn random_files_agree_with_the_igvm_crate() {
    let seed = env_u64("IGVM_DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let n = env_u64("IGVM_DIFF_CASES").map_or(DEFAULT_CASES, |v| v as usize);
    let only = env_u64("IGVM_DIFF_CASE").map(|v| v as usize);
    eprintln!(
        "igvm_differential: IGVM_DIFF_SEED={seed:#x} IGVM_DIFF_CASES={n} (one case: IGVM_DIFF_CASE=i)"
    );
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Case> = (0..n)
        .filter(|i| only.is_none_or(|o| o == *i))
        .map(|i| gen_case(i, seed))
        .collect();
    assert!(!cases.is_empty(), "no case selected");
    let fails = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while let Some(c) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                    fails.lock().unwrap().extend(check_case(c, dir.path()));
                }
            });
        }
    });
    let count = |s: &str| cases.iter().filter(|c| c.summary.contains(s)).count();
    eprintln!(
        "igvm_differential: {} cases in {:.1} s: {} with 2 MiB pages, {} with a shared page, \
         {} with a native platform, {} with an ID block, {} with several VMSAs",
        cases.len(),
        t0.elapsed().as_secs_f64(),
        count("2MiB"),
        count("shared"),
        count("+native"),
        count("id-block"),
        cases.iter().filter(|c| c.vmsas > 1).count()
    );
    let fails = fails.into_inner().unwrap();
    assert!(
        fails.is_empty(),
        "IGVM_DIFF_SEED={seed:#x}: {} disagreement(s):\n{}",
        fails.len(),
        fails.join("\n")
    );
}

/// Our digest of `s`, and the stderr.
fn ours(s: &Spec, dir: &Path, name: &str) -> (String, String) {
    let p = s.write(dir, name);
    let o = Tool::new()
        .args(["snp-digest", "--igvm"])
        .arg(&p)
        .run()
        .expect_code(0);
    (o.stdout.trim().to_string(), o.stderr)
}

fn crate_hex(s: &Spec) -> String {
    hex(&b::crate_digest(&s.bytes()).unwrap())
}

/// A small launch: data, zero and unmeasured pages, a 1-page parameter area
/// inserted, then `vmsa`.
fn small(vmsa: IgvmDirectiveHeader) -> Spec {
    let mut s = Spec::new(0x30000);
    s.push(b::param_area(0, b::PAGE))
        .push(b::vp_count(0))
        .push(b::insert(0, 0x9000, b::SNP))
        .push(b::page(0x10000, Kind::Data, vec![0xa5; 4096], b::SNP))
        .push(b::page(0x11000, Kind::Data, b"short".to_vec(), b::SNP))
        .push(b::page(0x12000, Kind::Zero, vec![], b::SNP))
        .push(b::page(0x13000, Kind::Unmeasured, vec![], b::SNP))
        .push(b::page(0x14000, Kind::Secrets, vec![], b::SNP))
        .push(b::page(0x15000, Kind::Cpuid, vec![], b::SNP))
        .push(vmsa);
    s
}

fn vmsa0() -> IgvmDirectiveHeader {
    b::vmsa(0, b::KVM_VMSA_GPA, 0xfffff0, 0x31, 0x1)
}

/// Shared pages: QEMU 10 ignores the flag (`qigvm_process_mem_region` never
/// reads it) and measures the page like any other; the crate skips it. Ours
/// is the crate's digest of the file with the flag cleared, and warns.
#[test]
fn a_shared_page_is_measured_as_qemu_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = small(vmsa0());
    let at = 4;
    s.directives[at] = b::with_flags(s.directives[at].clone(), |f| f.with_shared(true));
    let (ld, err) = ours(&s, dir.path(), "shared.igvm");
    let cleared = Spec {
        directives: s.directives.iter().map(clear_shared).collect(),
        ..s.clone()
    };
    assert_eq!(ld, crate_hex(&cleared));
    assert_ne!(ld, crate_hex(&s), "the crate skips shared pages");
    assert!(
        err.contains("WARNING") && err.contains("marks the page at GPA 0x11000 shared"),
        "{err}"
    );
}

/// A VMSA before some pages: KVM measures VMSAs at SNP_LAUNCH_FINISH, after
/// every page; the crate measures in file order. Ours is the crate's digest
/// of the file with the VMSA moved last, and warns.
#[test]
fn a_vmsa_before_pages_is_measured_last() {
    let dir = tempfile::tempdir().unwrap();
    let last = small(vmsa0());
    let mut early = last.clone();
    let v = early.directives.pop().unwrap();
    early.directives.insert(4, v);
    let (ld, err) = ours(&early, dir.path(), "early.igvm");
    assert_eq!(ld, crate_hex(&last));
    assert_ne!(ld, crate_hex(&early));
    assert!(err.contains("adds pages after a VMSA"), "{err}");
}

/// A VMSA at another GPA: KVM measures every VMSA at 0xFFFFFFFFF000; the
/// crate uses the file's GPA. Ours is the crate's digest of the file with
/// that GPA, and warns naming the file's.
#[test]
fn a_vmsa_elsewhere_is_measured_at_kvms_gpa() {
    let dir = tempfile::tempdir().unwrap();
    let there = small(b::vmsa(0, 0x8000_0000, 0xfffff0, 0x31, 0x1));
    let (ld, err) = ours(&there, dir.path(), "elsewhere.igvm");
    assert_eq!(ld, crate_hex(&small(vmsa0())));
    assert_ne!(ld, crate_hex(&there));
    assert!(err.contains("places a VMSA at GPA 0x80000000"), "{err}");
}

/// VMSAs last but not in vCPU order: KVM measures them in vCPU order
/// (vp_index); the crate in file order. No warning: QEMU gives each VMSA to
/// the vCPU of its vp_index whatever the order.
#[test]
fn vmsas_are_measured_in_vcpu_order() {
    let dir = tempfile::tempdir().unwrap();
    let in_order = {
        let mut s = small(b::vmsa(0, b::KVM_VMSA_GPA, 0x1000, 0x31, 0x1));
        s.push(b::vmsa(1, b::KVM_VMSA_GPA, 0x2000, 0x31, 0x1));
        s
    };
    let mut swapped = in_order.clone();
    let n = swapped.directives.len();
    swapped.directives.swap(n - 1, n - 2);
    let (ld, err) = ours(&swapped, dir.path(), "swapped.igvm");
    assert_eq!(ld, crate_hex(&in_order));
    assert_ne!(ld, crate_hex(&swapped));
    assert_eq!(err.matches("WARNING").count(), 1, "{err}");
    assert!(err.contains("2 VMSAs"));
}

/// 2 MiB pages: QEMU imports 512 pages of 4 KiB of the same kind (the data
/// the crate stores, at most 4 KiB, then zeros); the crate measures one
/// 4 KiB page for the directive. Ours is the crate's digest of the 512
/// pages, with no warning for NORMAL 2 MiB pages and one for the others.
#[test]
fn a_2mib_page_is_512_pages() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Data, Kind::Zero, Kind::Unmeasured, Kind::Secrets] {
        let mut s = Spec::new(0x30000);
        s.push(b::page(0x10000, Kind::Data, vec![1; 4096], b::SNP))
            .push(large(b::page(0x20_0000, kind, vec![7; 100], b::SNP)))
            .push(vmsa0());
        let (ld, err) = ours(&s, dir.path(), "big.igvm");
        let expanded = Spec {
            directives: s.directives.iter().flat_map(expand_2m).collect(),
            ..s.clone()
        };
        assert_eq!(expanded.directives.len(), 514);
        assert_eq!(ld, crate_hex(&expanded), "{kind:?}");
        assert_ne!(ld, crate_hex(&s), "{kind:?}: the crate measures one page");
        match large_special(&s.directives[1]) {
            None => assert!(!err.contains("WARNING"), "{kind:?}: {err}"),
            Some(w) => assert!(err.contains(&w), "{kind:?}: {err}"),
        }
    }
}

/// A second platform: only the SEV-SNP platform's directives are measured,
/// so the native pages and VP context change nothing, and pages for both
/// platforms count once.
#[test]
fn another_platforms_directives_are_not_measured() {
    let dir = tempfile::tempdir().unwrap();
    let snp_only = small(vmsa0());
    let mut both = snp_only.clone();
    both.native = true;
    both.directives
        .insert(3, b::page(0x50000, Kind::Data, vec![9; 4096], b::NATIVE));
    both.directives.insert(5, b::native_context(0, 0x1000));
    let (ld, _) = ours(&both, dir.path(), "both.igvm");
    assert_eq!(ld, crate_hex(&snp_only));
    assert_eq!(ld, crate_hex(&both));
    both.directives.insert(
        6,
        b::page(0x60000, Kind::Data, vec![3; 4096], b::NATIVE | b::SNP),
    );
    let (ld2, _) = ours(&both, dir.path(), "both2.igvm");
    assert_ne!(ld2, ld);
    assert_eq!(ld2, crate_hex(&both));
}

/// QEMU's loader (`backends/igvm.c`, QEMU 10.0 and later) imports
/// contiguous page directives as one region and hands a region to
/// `set_guest_state` only when a later page directive ends it (or after the
/// last directive), while a parameter insert calls `set_guest_state` at
/// once; QEMU queues SNP_LAUNCH_UPDATEs in call order
/// (`snp_launch_update_data`). So an insert that follows pages is measured
/// BEFORE the region of pages just before it: here the area is measured
/// before the two data pages, where the file, the crate, igvmmeasure and this
/// tool put it after them. COCONUT-SVSM's igvmbuilder writes every insert
/// before the first page, where the orders agree. The tool measures in
/// QEMU's order.
#[test]
fn parameter_insert_after_pages_jumps_the_pending_region() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spec::new(0x30000);
    s.push(b::param_area(0, b::PAGE))
        .push(b::page(0x10000, Kind::Data, vec![1; 4096], b::SNP))
        .push(b::page(0x11000, Kind::Data, vec![2; 4096], b::SNP))
        .push(b::insert(0, 0x9000, b::SNP))
        .push(vmsa0());
    let mut qemu_order = s.clone();
    let ins = qemu_order.directives.remove(3);
    qemu_order.directives.insert(1, ins);
    let (ld, _) = ours(&s, dir.path(), "insert-after-pages.igvm");
    assert_ne!(crate_hex(&s), crate_hex(&qemu_order));
    assert_eq!(ld, crate_hex(&qemu_order));
}
