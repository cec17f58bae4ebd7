//! The IGVM explainer on the public IGVM vectors (../shared/igvm-vectors).
//! seed1.json describes eight one-change variants of seed1.igvm (one byte of
//! one page, one page's GPA, the policy, DebugSwap, a normal or zero page
//! imported as unmeasured, the secrets page imported as CPUID, the VMSA's
//! RIP); the files are not shipped, so each is built here with the igvm
//! crate: seed1.igvm parsed, one directive changed, the ID block's LD set to
//! the variant's digest as the generator did, serialized. Each is first
//! checked to be the variant described: the directive as seed1.json lists
//! it, and its digest from the crate's own measurement
//! (`igvm::measurement::generate_snp_measurement`) equal to digests.tsv's
//! `qemu_model` for the file. Expected digests come only from digests.tsv
//! or the crate, never from this tool.
//!
//! Then: `snp-digest --igvm seed1.igvm --measurement DIGEST` names the
//! change (exit 1; the policy variant's digest is seed1's: exit 0); the
//! library's explanation and `snp-validate --json` on a report signed by the
//! simulated SNP firmware carry it as JSON with its kind, directive, GPA or
//! field; with `--host-igvm VARIANT` the comparison names exactly the change
//! for every variant, page contents and RIP included. Last, the search's
//! worst case on a 10 MiB file: a page imported as unmeasured near the start.

use std::path::Path;
use std::process::Command;

use igvm::{IgvmDirectiveHeader, IgvmFile, IgvmRevision};
use igvm_defs::IgvmPageDataType;
use serde_json::Value;
use sha2::{Digest, Sha384};

use crate::common;
use crate::common::schema;
use crate::common::snp_sim;
use crate::igvm_variants::{
    crate_digest, hex, snp_mask, unhex, variant, vectors, Vectors, VARIANTS,
};

const TEST: &str = "igvm_explainer";

/// How the explainer must name a variant's change.
struct Expect {
    kind: &'static str,
    directive: u64,
    gpa: Option<&'static str>,
    field: Option<&'static str>,
    /// Words the answer must hold.
    words: &'static [&'static str],
}

fn expect(name: &str) -> Expect {
    let (kind, directive, gpa, field, words): (_, _, _, _, &'static [&'static str]) = match name {
        "page-content" => (
            "page-contents",
            7,
            Some("0x44c1000"),
            None,
            &["directive 7"],
        ),
        "page-gpa" => (
            "page-gpa",
            7,
            Some("0x44c1000"),
            None,
            &["directive 7", "at GPA 0x244c1000"],
        ),
        "policy" => (
            "igvm-policy",
            0,
            None,
            None,
            &["guest policy 0xb0000, not 0x30000"],
        ),
        "sev-features" => (
            "vmsa-sev-features",
            47,
            None,
            Some("SEV_FEATURES"),
            &["enabled DebugSwap", "0x8021"],
        ),
        "type-normal-to-unmeasured" => (
            "page-type",
            6,
            Some("0x44c0000"),
            None,
            &["normal page of directive 6", "as an unmeasured page"],
        ),
        "type-zero-to-unmeasured" => (
            "page-type",
            40,
            Some("0x450a000"),
            None,
            &["zero page of directive 40", "as an unmeasured page"],
        ),
        "type-secrets-to-cpuid" => (
            "page-type",
            35,
            Some("0x44fc000"),
            None,
            &["secrets page of directive 35", "as a CPUID page"],
        ),
        "vmsa-rip" => (
            "vmsa-rip",
            47,
            None,
            Some("RIP"),
            &["RIP 0x44c0454 instead of the file's 0x44c0444"],
        ),
        _ => unreachable!("{name}"),
    };
    Expect {
        kind,
        directive,
        gpa,
        field,
        words,
    }
}

fn ours() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_virt-qemu-sev-validate"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(ours()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_variants_built_are_the_ones_described() {
    let Some(v) = vectors(TEST) else { return };
    let seed = v.qemu["seed1.igvm"].clone();
    // The vectors' digest is the pages in file order; QEMU's is not.
    assert_eq!(crate_digest(&v.seed), v.qemu_model["seed1.igvm"]);
    assert_ne!(crate_digest(&v.seed), seed);
    for name in VARIANTS {
        let digest = &v.qemu[&format!("seed1.{name}.igvm")];
        // The policy is not measured: its variant has seed1's digest.
        assert_eq!(*digest == seed, name == "policy", "{name}");
    }
    // The tool's own digest of seed1 is QEMU's.
    let (code, out, err) = run(&["snp-digest", "--igvm", path(&v.dir.join("seed1.igvm"))]);
    assert_eq!((code, out.trim()), (0, seed.as_str()), "{err}");
}

#[test]
fn snp_digest_names_each_change() {
    let Some(v) = vectors(TEST) else { return };
    let seed1 = v.dir.join("seed1.igvm");
    for name in VARIANTS {
        let m = &v.qemu[&format!("seed1.{name}.igvm")];
        let (code, out, err) = run(&["snp-digest", "--igvm", path(&seed1), "--measurement", m]);
        let x = expect(name);
        match name {
            "policy" => assert!(
                code == 0 && out.contains("OK: "),
                "{name}: {code} {out}{err}"
            ),
            // One byte of a page cannot be searched for: the advice asks for the host's file.
            "page-content" => {
                assert_eq!(code, 1, "{name}: {err}");
                assert!(
                    err.contains("another IGVM file or other page contents"),
                    "{err}"
                );
                assert!(err.contains("--host-igvm"), "{err}");
                assert!(err.contains("every variant was tried"), "{err}");
            }
            _ => {
                assert_eq!(code, 1, "{name}: {out}{err}");
                assert!(err.contains("differs in one input"), "{name}: {err}");
                for w in x.words {
                    assert!(err.contains(w), "{name}: no {w:?} in {err}");
                }
            }
        }
    }
}

/// The library's answer for `seed1.igvm`, with the host's copy if given.
fn library_answer(v: &Vectors, reported: &str, host: Option<&Path>) -> Value {
    use sev_validate::snp::igvm::{compute, IgvmInput};
    let c = compute(&IgvmInput {
        file: v.dir.join("seed1.igvm"),
        vcpus: None,
        policy: None,
        check: false,
        host_file: host.map(Path::to_path_buf),
    })
    .unwrap();
    let x = c.explain(&unhex(reported)).unwrap();
    let json = serde_json::to_string(&x).unwrap();
    if schema::have_jsonschema() {
        if let Err(e) = schema::validate_json("snp-explanation.schema.json", &json) {
            panic!("schema violation: {e}\n{json}");
        }
    } else {
        common::skip_or_fail(TEST, "python3-jsonschema is needed to validate the schema");
    }
    serde_json::from_str(&json).unwrap()
}

fn check_change(name: &str, c: &Value, x: &Expect) {
    assert_eq!(c["kind"], x.kind, "{name}: {c}");
    if x.kind != "igvm-policy" {
        assert_eq!(c["directive"], x.directive, "{name}: {c}");
    }
    if let Some(g) = x.gpa {
        assert_eq!(c["gpa"], g, "{name}: {c}");
    }
    if let Some(f) = x.field {
        assert_eq!(c["field"], f, "{name}: {c}");
        assert_eq!(c["vp_index"], 0, "{name}: {c}");
    }
    for w in x.words {
        assert!(
            c["host"].as_str().unwrap().contains(w),
            "{name}: no {w:?} in {c}"
        );
    }
}

#[test]
fn the_library_answer_is_json_with_the_change() {
    let Some(v) = vectors(TEST) else { return };
    let seed_sha = hex(&Sha384::digest(
        std::fs::read(v.dir.join("seed1.igvm")).unwrap(),
    ));
    for name in VARIANTS {
        if matches!(name, "policy" | "page-content") {
            continue;
        }
        let x = library_answer(&v, &v.qemu[&format!("seed1.{name}.igvm")], None);
        let changes = x["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{name}: {x}");
        check_change(name, &changes[0], &expect(name));
        assert_eq!(changes[0]["measured"], true);
        assert_eq!(x["igvm"]["file_sha384"], seed_sha.as_str());
        assert_eq!(x["ovmf_hash"], seed_sha.as_str());
        assert_eq!(x["igvm"]["budget_exhausted"], false);
    }
    let x = library_answer(&v, &v.qemu["seed1.page-content.igvm"], None);
    assert!(x["changes"].is_null());
}

#[test]
fn the_hosts_file_names_each_change_exactly() {
    let Some(v) = vectors(TEST) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let seed1 = v.dir.join("seed1.igvm");
    for name in VARIANTS {
        // The variant's ID block vouches for its file-order digest.
        let (bytes, id_block_ld) = variant(&v, name);
        let digest = v.qemu[&format!("seed1.{name}.igvm")].clone();
        let host = tmp.path().join(format!("seed1.{name}.igvm"));
        std::fs::write(&host, bytes).unwrap();
        let x = expect(name);
        let (code, out, err) = run(&[
            "snp-digest",
            "--igvm",
            path(&seed1),
            "--host-igvm",
            path(&host),
            "--measurement",
            &digest,
        ]);
        let text = format!("{out}{err}");
        assert_eq!(code, i32::from(name != "policy"), "{name}: {text}");
        for w in x.words {
            assert!(text.contains(w), "{name}: no {w:?} in {text}");
        }
        let j = library_answer(&v, &digest, Some(&host));
        let h = &j["igvm"]["host_file"];
        assert_eq!(h["launch_digest"], digest.as_str());
        assert_eq!(h["gives_reported"], true);
        let diffs = h["differences"].as_array().unwrap();
        let kinds: Vec<&str> = diffs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        if name == "policy" {
            // Nothing measured differs, and the ID block is the same.
            assert_eq!(kinds, ["igvm-policy"], "{j}");
            assert_eq!(diffs[0]["measured"], false);
            assert_eq!(j["changes"], serde_json::json!([]));
            assert!(out.contains("the launch digest is unaffected"), "{out}");
            continue;
        }
        // The change, then the ID block whose LD follows the digest.
        assert_eq!(kinds, [x.kind, "igvm-id-block"], "{name}: {j}");
        check_change(name, &diffs[0], &x);
        assert!(diffs[1]["host"].as_str().unwrap().contains(&id_block_ld));
        let changes = j["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{name}: {j}");
        check_change(name, &changes[0], &x);
        assert!(
            err.contains("launched its own copy of the IGVM file"),
            "{err}"
        );
    }
}

#[test]
fn a_hosts_file_that_gives_another_value_says_so() {
    let Some(v) = vectors(TEST) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (bytes, _) = variant(&v, "vmsa-rip");
    let host = tmp.path().join("host.igvm");
    std::fs::write(&host, bytes).unwrap();
    // The report is of the DebugSwap variant; the host's file is the RIP one.
    let m = &v.qemu["seed1.sev-features.igvm"];
    let seed1 = v.dir.join("seed1.igvm");
    let (code, _, err) = run(&[
        "snp-digest",
        "--igvm",
        path(&seed1),
        "--host-igvm",
        path(&host),
        "--measurement",
        m,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("does not give the reported value either"),
        "{err}"
    );
    assert!(err.contains("enabled DebugSwap"), "{err}");
    // Without --measurement the comparison is a note.
    let (code, out, err) = run(&[
        "snp-digest",
        "--igvm",
        path(&seed1),
        "--host-igvm",
        path(&host),
    ]);
    assert_eq!(
        (code, out.trim()),
        (0, v.qemu["seed1.igvm"].as_str()),
        "{err}"
    );
    assert!(err.contains("NOTE: the host's IGVM file"), "{err}");
    assert!(
        err.contains("RIP 0x44c0454 instead of the file's 0x44c0444"),
        "{err}"
    );
    // Both files from standard input cannot be.
    let (code, _, err) = run(&["snp-digest", "--igvm", "-", "--host-igvm", "-"]);
    assert_eq!(code, 2, "{err}");
    // A host file that is no IGVM file is a usage error naming it.
    let bad = tmp.path().join("bad.igvm");
    std::fs::write(&bad, b"not igvm").unwrap();
    let (code, _, err) = run(&[
        "snp-digest",
        "--igvm",
        path(&seed1),
        "--host-igvm",
        path(&bad),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the host's IGVM file") && err.contains("bad.igvm"),
        "{err}"
    );
}

/// The nonce the owner gave the guest (REPORT_DATA), 64 bytes in hex.
const NONCE: &str = "6967766d2d6578706c61696e65722d6e6f6e63650000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";

/// `snp-validate REPORT --json ... -- --igvm seed1.igvm EXTRA` on a report
/// the simulated SNP firmware signed with MEASUREMENT `m`.
fn snp_validate(v: &Vectors, dir: &Path, chain: &[String], m: &str, extra: &[&str]) -> Value {
    let report = dir.join(format!("report-{}.bin", &m[..16]));
    // FAMILY_ID and IMAGE_ID as the file's ID block gives them, which
    // snp-validate expects of an IGVM launch.
    let (family, image) = v
        .seed
        .directives()
        .iter()
        .find_map(|d| match d {
            igvm::IgvmDirectiveHeader::SnpIdBlock {
                family_id,
                image_id,
                ..
            } => Some((hex(family_id), hex(image_id))),
            _ => None,
        })
        .expect("seed1 has an ID block");
    let signed = snp_sim::report(
        dir,
        &report,
        &[
            "--measurement",
            m,
            "--report-data",
            NONCE,
            "--family-id",
            &family,
            "--image-id",
            &image,
        ],
    )
    .expect("the simulator ran before");
    assert_eq!(signed, m);
    let mut a = vec![
        "snp-validate",
        path(&report),
        "--report-data",
        NONCE,
        "--json",
    ];
    a.extend(chain.iter().map(String::as_str));
    let seed1 = v.dir.join("seed1.igvm");
    a.extend(["--", "--igvm", path(&seed1)]);
    a.extend_from_slice(extra);
    let (code, out, err) = run(&a);
    assert_eq!(code, 1, "{out}{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!(
        doc["failed"],
        serde_json::json!(["expect.measurement"]),
        "{doc:#}"
    );
    doc
}

fn measurement_check(doc: &Value) -> &Value {
    doc["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "expect.measurement"))
        .unwrap_or_else(|| panic!("no expect.measurement in {doc:#}"))
}

#[test]
fn snp_validate_json_carries_the_igvm_explanation() {
    let Some(v) = vectors(TEST) else { return };
    let tmp = tempfile::tempdir().unwrap();
    if snp_sim::chain("milan", tmp.path(), &[]).is_none() {
        return;
    }
    let p = |n: &str| tmp.path().join(n).display().to_string();
    let chain = [
        "--trust-anchors".into(),
        p("ark.pem"),
        "--trust-anchors".into(),
        p("ask.pem"),
        "--vcek".into(),
        p("vcek.der"),
    ];
    for (i, name) in VARIANTS.iter().filter(|n| **n != "policy").enumerate() {
        let m = &v.qemu[&format!("seed1.{name}.igvm")];
        let doc = snp_validate(&v, tmp.path(), &chain, m, &[]);
        if i == 0 && schema::have_jsonschema() {
            let out = serde_json::to_string(&doc).unwrap();
            if let Err(e) = schema::validate_json("snp-validate.schema.json", &out) {
                panic!("schema/snp-validate.schema.json: {e}\n{out}");
            }
        }
        let c = measurement_check(&doc);
        let x = &c["explanation"];
        assert_eq!(x["reported"], m.as_str());
        let hint = c["hint"].as_str().unwrap();
        if *name == "page-content" {
            assert!(x["changes"].is_null(), "{x:#}");
            assert!(hint.contains("--host-igvm"), "{hint}");
            continue;
        }
        check_change(name, &x["changes"][0], &expect(name));
        for w in expect(name).words {
            assert!(hint.contains(w), "{name}: hint lacks {w:?}: {hint}");
        }
    }
    // With the host's copy of the file, the one-byte change is named too.
    let (bytes, _) = variant(&v, "page-content");
    let m = v.qemu["seed1.page-content.igvm"].clone();
    let host = tmp.path().join("host.igvm");
    std::fs::write(&host, bytes).unwrap();
    let doc = snp_validate(&v, tmp.path(), &chain, &m, &["--host-igvm", path(&host)]);
    let c = measurement_check(&doc);
    check_change(
        "page-content",
        &c["explanation"]["changes"][0],
        &expect("page-content"),
    );
    assert_eq!(
        c["explanation"]["igvm"]["host_file"]["gives_reported"],
        true
    );
    assert!(
        c["hint"]
            .as_str()
            .unwrap()
            .contains("launched its own copy"),
        "{c:#}"
    );
}

/// The search's worst case: a 10 MiB file (2,560 pages of data and a VMSA)
/// whose first page the host imported as unmeasured, so every variant
/// before it in the search (each directive's likely other type, from the
/// last) is tried first. The reported digest is the igvm crate's. The time
/// is printed (a debug build of the tool).
#[test]
fn a_10_mib_file_with_its_first_page_unmeasured() {
    let Some(v) = vectors(TEST) else { return };
    let mask = snp_mask(&v.seed);
    let vmsa = v.seed.directives()[47].clone();
    assert!(matches!(vmsa, IgvmDirectiveHeader::SnpVpContext { .. }));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut d: Vec<IgvmDirectiveHeader> = (0..2560u64)
        .map(|i| IgvmDirectiveHeader::PageData {
            gpa: 0x100_0000 + (i << 12),
            compatibility_mask: mask,
            flags: Default::default(),
            data_type: IgvmPageDataType::NORMAL,
            data: (0..4096)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect(),
        })
        .collect();
    d.push(vmsa);
    let inits = v.seed.initializations().to_vec();
    let owner = IgvmFile::new(
        IgvmRevision::V1,
        v.seed.platforms().to_vec(),
        inits.clone(),
        d.clone(),
    )
    .unwrap();
    if let IgvmDirectiveHeader::PageData { flags, data, .. } = &mut d[0] {
        flags.set_unmeasured(true);
        data.clear();
    }
    let host = IgvmFile::new(IgvmRevision::V1, v.seed.platforms().to_vec(), inits, d).unwrap();
    let m = crate_digest(&host);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("big.igvm");
    let mut bytes = Vec::new();
    owner.serialize(&mut bytes).unwrap();
    assert!(bytes.len() > 10 << 20, "{} bytes", bytes.len());
    std::fs::write(&file, &bytes).unwrap();
    let started = std::time::Instant::now();
    let (code, _, err) = run(&["snp-digest", "--igvm", path(&file), "--measurement", &m]);
    let took = started.elapsed();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the host imported the normal page of directive 0 (GPA 0x1000000) as an unmeasured page"),
        "{err}"
    );
    eprintln!(
        "igvm_explainer: 10 MiB file, first page unmeasured, named in {:.2} s: {}",
        took.as_secs_f64(),
        err.lines().last().unwrap_or_default()
    );
}
