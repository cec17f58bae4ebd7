//! How many SEV-SNP reports one core validates per second through the
//! library, as a verifier service would: signature, binding and policy for
//! every report, the chain verified once per VCEK and then taken from the
//! cache. Run by scripts/bench-snp-validate.sh:
//!
//! ```sh
//! cargo run --release --example snp_validate_throughput -- [SECONDS] [VECTORS_DIR]
//! ```
//!
//! The reports are the real sets of ../shared/snp-vectors, validated in
//! turn on the calling thread only; the program prints one line per set and
//! a total, and exits 1 if any validation does not pass (a benchmark of
//! failing validations would measure the wrong thing).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sev_validate::core::snp_cert::{Certificate, TrustAnchors};
use sev_validate::core::snp_report::{self, AttestationReport, Product};
use sev_validate::snp::validate::{ChainCache, Endorsement, Expectations, Validator};

/// CPU time this thread has run, from /proc/thread-self/schedstat (ns): the
/// machine may be shared, and one core's throughput is validations per CPU
/// second, whatever else runs.
fn thread_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

struct Case {
    name: String,
    report: AttestationReport,
    product: Product,
    endorsement: Endorsement,
    expect: Expectations,
    now: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let dir = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/snp-vectors"));
    let exp: serde_json::Value = match std::fs::read_to_string(dir.join("EXPECTED.json")) {
        Ok(s) => serde_json::from_str(&s).expect("EXPECTED.json"),
        Err(e) => {
            eprintln!("cannot read {}/EXPECTED.json: {e}", dir.display());
            std::process::exit(2);
        }
    };
    let mut cases = Vec::new();
    for (name, e) in exp.as_object().expect("an object") {
        let files = &e["files"];
        let bytes = std::fs::read(dir.join(files["report"].as_str().unwrap())).unwrap();
        let report = snp_report::parse_input(&bytes).unwrap().report;
        let vek = Certificate::from_der_or_pem(
            &std::fs::read(dir.join(files["vek"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        let (product, _) =
            snp_report::resolve_product(&report, vek.amd.product_name.as_deref(), None).unwrap();
        let expect = Expectations {
            report_data: Some(report.report_data),
            measurement: Some(report.measurement),
            allow_debug: e["checks"]["debug_policy_bit19"] == true,
            allow_provisional_firmware: e["checks"]["committed_equals_current"] == false,
            max_policy: Some(report.policy.0),
            vmpl: Some(report.vmpl),
            ..Default::default()
        };
        let now = if e["key_info"]["signing_key"] == "VLEK" {
            1_748_736_000 // 2025-06-01: the VLEK expired 2025-12-10
        } else {
            1_796_083_200 // 2026-12-01
        };
        cases.push(Case {
            name: name.clone(),
            report,
            product,
            endorsement: Endorsement {
                vek,
                ask: None,
                ark: None,
            },
            expect,
            now,
        });
    }
    let anchors = TrustAnchors::builtin();
    let cache = ChainCache::default();
    let run = |c: &Case| {
        Validator::new(anchors, c.now).with_cache(&cache).validate(
            &c.report,
            c.product,
            &c.endorsement,
            &c.expect,
        )
    };
    // Warm the cache: the first report of each VCEK verifies its chain.
    let t = Instant::now();
    for c in &cases {
        let o = run(c);
        if !o.passed() {
            eprintln!("{}: {:?}", c.name, o.failures().collect::<Vec<_>>());
            std::process::exit(1);
        }
    }
    println!(
        "first validation of {} reports (chain verified): {:.2} ms each",
        cases.len(),
        t.elapsed().as_secs_f64() * 1e3 / cases.len() as f64
    );
    let budget = Duration::from_secs_f64(seconds / cases.len() as f64);
    let mut total = 0u64;
    let mut spent = 0f64;
    let mut cpu_spent = 0f64;
    for c in &cases {
        let cpu0 = thread_cpu();
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed() < budget {
            for _ in 0..50 {
                std::hint::black_box(run(std::hint::black_box(c)));
            }
            n += 50;
        }
        let s = t.elapsed().as_secs_f64();
        let cpu = match (cpu0, thread_cpu()) {
            (Some(a), Some(b)) => b - a,
            _ => s,
        };
        println!(
            "{:<28} {:>8.0} validations per CPU second ({:.0} per wall second)",
            c.name,
            n as f64 / cpu,
            n as f64 / s
        );
        total += n;
        spent += s;
        cpu_spent += cpu;
    }
    // The floor: the ECDSA P-384 verification alone, on the same reports.
    let cpu0 = thread_cpu();
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs_f64(seconds / 3.0) {
        for c in &cases {
            let ok = sev_validate::core::snp_cert::verify_report_signature(
                std::hint::black_box(&c.report),
                &c.endorsement.vek,
            );
            assert!(ok.is_ok());
        }
        n += cases.len() as u64;
    }
    let cpu = match (cpu0, thread_cpu()) {
        (Some(a), Some(b)) => b - a,
        _ => t.elapsed().as_secs_f64(),
    };
    println!(
        "signature alone: {:.0} verifications per CPU second, {:.3} ms each",
        n as f64 / cpu,
        cpu * 1e3 / n as f64
    );
    println!(
        "total: {total} validations on one thread, {cpu_spent:.2} s CPU ({spent:.2} s wall): \
         {:.0} validations per CPU second, {:.3} ms each (chain cached: {} entries)",
        total as f64 / cpu_spent,
        cpu_spent * 1e3 / total as f64,
        cache.len()
    );
}
