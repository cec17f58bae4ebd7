//! The fuzz targets of fuzz/ under a plain `cargo test`, without libFuzzer:
//! every committed seed in fuzz/corpus/TARGET/ and every crash input kept in
//! fuzz/regressions/TARGET/ is replayed through the same target body the
//! fuzzer runs (fuzz/src/targets.rs), which asserts its properties and must
//! not panic.
//!
//! When scripts/fuzz.sh finds a crash, copy its input from
//! fuzz/artifacts/TARGET/ to fuzz/regressions/TARGET/ under a name that says
//! what it broke, and add a test below that runs it by name, so that the
//! failure has a name of its own in `cargo test`. An input whose bug is not
//! fixed yet has an `open-` name prefix: its named test is `#[ignore]`d and
//! the replay of all kept inputs skips it; drop the prefix and the `#[ignore]`
//! with the fix.

#[allow(dead_code)]
#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file in `dir`, sorted by name; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn target(name: &str) -> targets::Target {
    targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
        .1
}

/// Runs `name` on one input, naming the input if it panics.
fn replay(name: &str, path: &Path) {
    let data = std::fs::read(path).unwrap();
    let f = target(name);
    if std::panic::catch_unwind(|| f(&data)).is_err() {
        panic!("fuzz target {name} panics on {}", path.display());
    }
}

#[test]
fn every_target_has_a_fuzz_target_file_and_seeds() {
    for (name, _) in targets::TARGETS {
        let src = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(src.is_file(), "{} missing", src.display());
        let seeds = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(
            (2..=40).contains(&seeds.len()),
            "fuzz/corpus/{name} should hold a few seeds, has {}",
            seeds.len()
        );
        for s in &seeds {
            let len = std::fs::metadata(s).unwrap().len();
            assert!(len <= 8192, "seed {} is {len} bytes", s.display());
        }
    }
    assert_eq!(targets::TARGETS.len(), 14);
}

#[test]
fn committed_corpus_replays_cleanly() {
    for (name, _) in targets::TARGETS {
        for p in inputs(&fuzz_dir().join("corpus").join(name)) {
            replay(name, &p);
        }
    }
}

#[test]
fn kept_crash_inputs_replay_cleanly() {
    for (name, _) in targets::TARGETS {
        for p in inputs(&fuzz_dir().join("regressions").join(name)) {
            let file = p.file_name().unwrap().to_string_lossy();
            if !file.starts_with("open-") {
                replay(name, &p);
            }
        }
    }
}

/// Crash 1, domain_xml, found by `scripts/fuzz.sh` after 5,003,554
/// executions: quick-xml 0.37.5 panics ("internal error: entered unreachable
/// code", `src/de/mod.rs:2787`, `Deserializer::read_text`) when a DOCTYPE
/// declaration splits the text of an element read as a string, such as
/// `<domain><name>a<!DOCTYPE x>b</name></domain>` (upstream
/// tafia/quick-xml#964, fixed in quick-xml 0.42). The host writes the domain
/// XML, so a host can make the tool stop with an internal error (exit 6)
/// instead of a usage error (exit 2). `.min` is the minimized input, `.orig`
/// the one the fuzzer found.
#[test]
fn domain_xml_doctype_splitting_element_text_does_not_panic() {
    let dir = fuzz_dir().join("regressions/domain_xml");
    for file in [
        "open-doctype-splits-element-text.min",
        "open-doctype-splits-element-text.orig",
    ] {
        replay("domain_xml", &dir.join(file));
    }
    let readable = "<domain><name>a<!DOCTYPE x>b</name></domain>";
    if let Err(e) = sev_validate::source::xml::Domain::parse(readable) {
        assert_eq!(e.exit_code(), sev_validate::ExitCode::UnsupportedUsage);
    }
}

/// Crashes 2 to 4, igvm_file, found by its first two-minute run (389,970
/// executions, 165 crashes, all at three places in the igvm crate 0.5's
/// parser, `src/lib.rs`): a page data, SNP VP context or native VP context
/// directive whose file offset lies before the file data section makes the
/// parser subtract in 32 bits below zero (lines 2060, 2199 and 2223; a panic
/// with overflow checks, as in the tests and cargo fuzz; a release build
/// wraps and then refuses the file). `snp::igvm::parse` turns the parser's
/// panics into "not a valid IGVM file" (exit 2) without the panic message;
/// `tests/it/igvm_hostile.rs` has the same inputs and two more through the
/// command line.
#[test]
fn igvm_file_offsets_before_the_file_data_do_not_panic() {
    let dir = fuzz_dir().join("regressions/igvm_file");
    for file in [
        "page-data-offset-before-file-data",
        "snp-vp-context-offset-before-file-data",
        "native-vp-context-offset-before-file-data",
    ] {
        replay("igvm_file", &dir.join(file));
    }
}

/// The targets' own properties on hand-made edge inputs, so that a target
/// that asserts something false fails here first, not in a fuzz campaign.
#[test]
fn targets_accept_edge_inputs() {
    let edges: [&[u8]; 7] = [b"", b"\0", b":", b"<", b"{}", &[0xff; 64], &[0; 200]];
    for (name, f) in targets::TARGETS {
        for input in edges {
            if std::panic::catch_unwind(|| f(input)).is_err() {
                panic!("fuzz target {name} panics on {input:?}");
            }
        }
    }
}

#[test]
fn secret_table_decoder_refuses_what_is_not_a_table() {
    use targets::decode_secret_table as decode;
    assert!(decode(&[]).is_err());
    assert!(decode(&[0; 32]).is_err());
    let mut t = vec![0u8; 32];
    t[..16].copy_from_slice(&sev_validate::core::guid::SECRET_TABLE_HEADER.to_bytes_le());
    t[16..20].copy_from_slice(&20u32.to_le_bytes());
    assert_eq!(decode(&t), Ok(vec![]));
    // Padding that is not zeros, a total past the end, an entry cut short.
    t[31] = 1;
    assert!(decode(&t).is_err());
    t[31] = 0;
    t[16..20].copy_from_slice(&33u32.to_le_bytes());
    assert!(decode(&t).is_err());
    t[16..20].copy_from_slice(&30u32.to_le_bytes());
    assert!(decode(&t).is_err());
}
