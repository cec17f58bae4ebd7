//! `snp-validate REPORT -- --igvm FILE`: a report of an IGVM launch, signed
//! by the simulated SNP firmware (tests/sim/snp_sp.py), validates against
//! the file. The expected MEASUREMENT is the igvm crate's digest of the
//! vectors' file (../shared/igvm-vectors) in QEMU's order, the policy the one
//! the vectors' description gives, and the ID block's FAMILY_ID and
//! IMAGE_ID are read from the file by the igvm crate: nothing here comes
//! from the tool's own output.

use crate::common;
use crate::common::snp_sim;

use std::path::{Path, PathBuf};

use igvm::{IgvmDirectiveHeader, IgvmFile};
use serde_json::Value;

const NONCE: &str = "6e6f6e63652d66726f6d2d7468652d6f776e65720000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

/// QEMU's launch digest of `file`: the igvm crate's measurement of its
/// directives in the order QEMU's loader hands them over.
fn qemu_digest(dir: &Path, file: &str) -> String {
    crate::igvm_build::qemu_digest_of(&std::fs::read(dir.join(file)).unwrap())
}

/// The guest policy of `seedN` from its description (seedN.json).
fn described_policy(dir: &Path, seed: &str) -> String {
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{seed}.json"))).unwrap()).unwrap();
    v[0]["policy"].as_str().unwrap().to_string()
}

/// FAMILY_ID and IMAGE_ID of the file's ID block, read by the igvm crate.
fn id_block_ids(file: &Path) -> Option<([u8; 16], [u8; 16])> {
    let f = IgvmFile::new_from_binary(&std::fs::read(file).unwrap(), None).unwrap();
    f.directives().iter().find_map(|d| match d {
        IgvmDirectiveHeader::SnpIdBlock {
            family_id,
            image_id,
            ..
        } => Some((*family_id, *image_id)),
        _ => None,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Case {
    dir: PathBuf,
    chain: PathBuf,
}

impl Case {
    /// Signs a report of `seed`'s launch with `policy`; `extra` are more
    /// `report` options.
    fn sign(&self, seed: &str, policy: &str, extra: &[&str]) -> PathBuf {
        let out = self.chain.join(format!("{seed}-{policy}.bin"));
        let file = self.dir.join(format!("{seed}.igvm"));
        let ld = qemu_digest(&self.dir, &format!("{seed}.igvm"));
        let mut args = vec![
            "--report-data".to_string(),
            NONCE.into(),
            "--measurement".into(),
            ld,
            "--policy".into(),
            policy.into(),
        ];
        if let Some((family, image)) = id_block_ids(&file) {
            args.extend(["--family-id".into(), hex(&family)]);
            args.extend(["--image-id".into(), hex(&image)]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        snp_sim::report(&self.chain, &out, &args).unwrap();
        out
    }

    /// `snp-validate REPORT --json -- --igvm FILE`.
    fn validate(&self, report: &Path, file: &str) -> (i32, Value, String) {
        let mut args = vec!["snp-validate".to_string(), report.display().to_string()];
        for f in ["ark.pem", "ask.pem", "asvk.pem"] {
            args.extend([
                "--trust-anchors".to_string(),
                self.chain.join(f).display().to_string(),
            ]);
        }
        args.extend([
            "--vcek".into(),
            self.chain.join("vcek.der").display().to_string(),
            "--report-data".into(),
            NONCE.into(),
            "--json".into(),
        ]);
        args.extend([
            "--".into(),
            "--igvm".into(),
            self.dir.join(file).display().to_string(),
        ]);
        let (code, out, err) = common::run(&args);
        let doc = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{args:?}: {out}{err}"));
        (code, doc, err)
    }
}

fn failed(doc: &Value) -> Vec<String> {
    doc["failed"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The report of an IGVM launch passes against its file; with another
/// POLICY (the host overrode the file's) it fails `policy.launch`, and
/// against another file `expect.measurement`.
#[test]
fn reports_of_igvm_launches_validate_against_the_file() {
    let Some(dir) = common::igvm_vectors_dir("reports_of_igvm_launches_validate_against_the_file")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let chain = tmp.path().join("chain");
    std::fs::create_dir_all(&chain).unwrap();
    if snp_sim::chain("milan", &chain, &[]).is_none() {
        return;
    }
    let case = Case { dir, chain };
    // seed3 carries an ID block, seed4 none.
    for seed in ["seed3", "seed4"] {
        let policy = described_policy(&case.dir, seed);
        let good = case.sign(seed, &policy, &[]);
        let file = format!("{seed}.igvm");
        let (code, doc, err) = case.validate(&good, &file);
        assert_eq!(code, 0, "{seed}: {doc}{err}");
        assert!(failed(&doc).is_empty(), "{seed}: {doc}");

        // The same launch with DEBUG added to the file's policy.
        let p = u64::from_str_radix(policy.trim_start_matches("0x"), 16).unwrap();
        let other = format!("{:#x}", p ^ (1 << 19));
        let bad = case.sign(seed, &other, &[]);
        let (code, doc, _) = case.validate(&bad, &file);
        assert_eq!(code, 1, "{seed}: {doc}");
        assert!(failed(&doc).contains(&"policy.launch".to_string()), "{doc}");
    }
    let seed3 = case.sign("seed3", &described_policy(&case.dir, "seed3"), &[]);
    let (code, doc, _) = case.validate(&seed3, "seed4.igvm");
    assert_eq!(code, 1, "{doc}");
    assert!(
        failed(&doc).contains(&"expect.measurement".to_string()),
        "{doc}"
    );
}
