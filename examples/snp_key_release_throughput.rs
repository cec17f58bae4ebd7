//! What sealing and opening cost in the SEV-SNP key release, in process:
//! `core::snp_secret::seal` (the owner's side once validation passed: an
//! ephemeral P-384 key, one ECDH, HKDF-SHA384, AES-256-GCM) and
//! `core::snp_secret::open` (the guest's side: one ECDH, the same KDF and
//! AEAD), each over many iterations on one thread, and beside them the
//! guest's key pair generation (`snp-request`). Run by
//! scripts/bench-snp-key-release.sh:
//!
//! ```sh
//! cargo run --release --example snp_key_release_throughput -- [ITERATIONS]
//! ```
//!
//! The secret table holds one 32-byte disk key (luks-key); each opened
//! table is checked against it, so a benchmark of failing opens cannot pass
//! for one. Prints µs per operation, by CPU time of the thread (read from
//! /proc/thread-self/schedstat: the machine may be shared) and by wall time.

use std::time::Instant;

use sev_validate::core::guid;
use sev_validate::core::secret::SecretTable;
use sev_validate::core::snp_secret::{open, seal, KeyPair, SealedHeader};
use zeroize::Zeroizing;

/// CPU time this thread has run, in seconds, from /proc/thread-self/schedstat.
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

/// Runs `f` `n` times; prints and returns (CPU µs, wall µs) per call.
fn time(name: &str, n: u32, mut f: impl FnMut()) -> (f64, f64) {
    let (c0, t0) = (thread_cpu(), Instant::now());
    for _ in 0..n {
        f();
    }
    let wall = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    let cpu = (thread_cpu() - c0) * 1e6 / f64::from(n);
    println!("{name:<34} {cpu:>8.1} µs CPU {wall:>8.1} µs wall per operation ({n} runs)");
    (cpu, wall)
}

fn main() {
    let n: u32 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 2000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: snp_key_release_throughput [ITERATIONS]");
            std::process::exit(2);
        }
    };
    let disk_key = [0x5a_u8; 32];
    let mut table = SecretTable::new();
    table
        .add(guid::LUKS_KEY, Zeroizing::new(disk_key.to_vec()))
        .expect("one 32-byte secret fits");
    let header = SealedHeader {
        measurement: [0x11; 48],
        report_id: [0x22; 32],
    };
    let guest = KeyPair::generate(&mut rand_core::OsRng);
    let sealed = seal(&table, &guest.public, &header, &mut rand_core::OsRng).expect("seal");
    println!(
        "one 32-byte disk key; sealed file {} bytes; {n} iterations each, one thread",
        sealed.len()
    );

    time("seal (owner, after validation)", n, || {
        let s = seal(&table, &guest.public, &header, &mut rand_core::OsRng).expect("seal");
        std::hint::black_box(s);
    });
    time("open (guest)", n, || {
        let (h, secrets) = open(&sealed, &guest).expect("open");
        assert!(h == header && secrets.len() == 1 && secrets[0].1[..] == disk_key[..]);
    });
    time("key pair generation (snp-request)", n, || {
        std::hint::black_box(KeyPair::generate(&mut rand_core::OsRng));
    });
}
