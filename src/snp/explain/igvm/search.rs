//! The planned variants tried on up to [`snp::MAX_HASH_THREADS`] threads;
//! the answer is the first matching variant in plan order, whatever the
//! number of threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::chain::Chain;
use super::change::IgvmChange;
use super::plan::{self, Plan};
use crate::core::snp::{self, Ld};

/// Tasks a thread takes at a time.
const CHUNK: usize = 8;

/// What one search found, and what it cost.
#[derive(Debug, Clone)]
pub(super) struct Found {
    /// The change that gives the reported value, if one does.
    pub change: Option<IgvmChange>,
    /// Digests compared, in plan order up to the answer (or all planned).
    pub tried: usize,
    /// PAGE_INFO hashes, counted the same way.
    pub hashes: u64,
    /// Whether the budget left variants untried (and none matched).
    pub exhausted: bool,
    /// What was varied, in words.
    pub words: String,
}

/// The first task of `p` (in order) that gives `reported`, with its extra
/// vCPU count; `Err` when a thread stopped (a bug).
fn first_match(chain: &Chain, p: &Plan, reported: &Ld) -> Result<Option<(usize, usize)>, ()> {
    let tasks = &p.tasks;
    let threads = snp::default_hash_threads()
        .min(tasks.len().div_ceil(CHUNK))
        .max(1);
    let next = AtomicUsize::new(0);
    let best = AtomicUsize::new(usize::MAX);
    let results: Vec<std::thread::Result<Option<(usize, usize)>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine: Option<(usize, usize)> = None;
                    loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        // Tasks after a match already found need no trying;
                        // every task before it is tried, so the first wins.
                        if start >= tasks.len() || start > best.load(Ordering::Relaxed) {
                            break;
                        }
                        let end = (start + CHUNK).min(tasks.len());
                        for (i, task) in tasks[start..end].iter().enumerate() {
                            let i = start + i;
                            if i > best.load(Ordering::Relaxed) {
                                break;
                            }
                            if let Some(extra) = chain.matches(task, reported) {
                                best.fetch_min(i, Ordering::Relaxed);
                                mine = Some((i, extra));
                                break;
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join()).collect()
    });
    let mut found: Option<(usize, usize)> = None;
    for r in results {
        if let Some(m) = r.map_err(|_| ())? {
            if found.is_none_or(|f| m.0 < f.0) {
                found = Some(m);
            }
        }
    }
    Ok(found)
}

/// Searches the variants of `chain`'s launch for one that gives `reported`,
/// within `budget` PAGE_INFO hashes.
pub(super) fn search(chain: &Chain, reported: &Ld, budget: u64) -> Result<Found, ()> {
    let p = plan::plan(chain, budget);
    let hit = first_match(chain, &p, reported)?;
    let upto = hit.map_or(p.tasks.len(), |(i, _)| i + 1);
    let hashes: u64 = p.costs[..upto].iter().sum();
    let tried: usize = match hit {
        // The extra-vCPU task compared `extra` digests before it matched.
        Some((i, extra)) if extra > 0 => p.digests[..i].iter().sum::<usize>() + extra,
        _ => p.digests[..upto].iter().sum(),
    };
    Ok(Found {
        change: hit.map(|(i, extra)| plan::change(chain, &p.tasks[i], extra)),
        tried,
        hashes,
        exhausted: hit.is_none() && p.stopped.is_some(),
        words: plan::words(chain, &p, hashes),
    })
}
