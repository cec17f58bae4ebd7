//! `snp-digest --igvm` on the public IGVM vectors (`../shared/igvm-vectors`,
//! README.md there): 24 SEV-SNP IGVM files made with the igvm crate's builder,
//! with the launch digests of three implementations in `digests.tsv`
//! (COCONUT-SVSM's igvmmeasure, the igvm crate's `generate_snp_measurement`,
//! and a model of what QEMU hands SNP_LAUNCH_UPDATE that keeps file order,
//! `qemu_model`; QEMU's own order is computed here with the crate, see
//! `every_seed_file_gives_the_qemu_digest`) and each
//! file's directives in `seedN.json`. Expected values come from those files,
//! never from the tool: the digest (hex and base64), the policy, the ID
//! block, the two-VMSA files' rules, and why igvmmeasure differs on the three
//! files with a 3-page parameter area.
//!
//! `$SEV_IGVM_VECTORS_DIR` points elsewhere; a missing folder is a SKIPPED
//! line (a failure under CI).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use igvm::{IgvmDirectiveHeader, IgvmFile};
use igvm_defs::IgvmPageDataType;
use sha2::{Digest, Sha384};
use zerocopy::IntoBytes;

use crate::common::{self, Tool};
use crate::igvm_build::{self as b, hex, page_hash, page_info};

/// One row of digests.tsv.
#[derive(Debug, Clone)]
struct Row {
    file: String,
    extra: String,
    igvmmeasure_check_kvm: String,
    igvmmeasure: String,
    /// The vectors' model: the pages in file order.
    qemu_model: String,
    /// What QEMU measures: the crate's digest of the directives in QEMU's
    /// order (`igvm_build::qemu_order`), filled for the files present.
    qemu: String,
}

fn rows(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("digests.tsv")).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("digests.tsv has no column {name}"))
    };
    let (file, extra, kvm, im, qm) = (
        col("file"),
        col("extra_opts"),
        col("igvmmeasure_check_kvm"),
        col("igvmmeasure"),
        col("qemu_model"),
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Row {
                file: f[file].to_string(),
                extra: f[extra].to_string(),
                igvmmeasure_check_kvm: f[kvm].to_string(),
                igvmmeasure: f[im].to_ascii_lowercase(),
                qemu_model: f[qm].to_ascii_lowercase(),
                qemu: String::new(),
            }
        })
        .collect()
}

/// The rows whose file is in the folder (the seed1.* variants are only
/// described there), with their paths; at least the 24 seedN.igvm files.
fn present(test: &str) -> Option<Vec<(Row, PathBuf)>> {
    let dir = common::igvm_vectors_dir(test)?;
    let all = rows(&dir);
    let v: Vec<(Row, PathBuf)> = all
        .iter()
        .filter_map(|r| {
            let p = dir.join(&r.file);
            p.is_file().then(|| {
                let mut r = r.clone();
                r.qemu = b::qemu_digest_of(&std::fs::read(&p).unwrap());
                (r, p)
            })
        })
        .collect();
    let seeds = v.iter().filter(|(r, _)| is_seed(&r.file)).count();
    assert!(
        seeds >= 24,
        "only {seeds} seedN.igvm files in {}",
        dir.display()
    );
    if v.len() < all.len() {
        eprintln!(
            "{test}: {} of {} files of digests.tsv are not in {} (described only)",
            all.len() - v.len(),
            all.len(),
            dir.display()
        );
    }
    Some(v)
}

/// seedN.igvm (not a seed1.* variant).
fn is_seed(name: &str) -> bool {
    name.strip_prefix("seed")
        .and_then(|r| r.strip_suffix(".igvm"))
        .is_some_and(|n| n.parse::<u32>().is_ok())
}

fn seed(n: u32) -> Option<(Row, PathBuf)> {
    let name = format!("seed{n}.igvm");
    present("igvm_vectors")?
        .into_iter()
        .find(|(r, _)| r.file == name)
        .or_else(|| panic!("{name} is not in digests.tsv"))
}

/// seedN.json's first record (the file as built).
fn json(path: &Path) -> serde_json::Value {
    let j = path.with_extension("json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&j).unwrap()).unwrap();
    v.as_array().expect("a list of records")[0].clone()
}

fn digest(path: &Path, extra: &[&str]) -> common::Outcome {
    Tool::new()
        .args(["snp-digest", "--igvm"])
        .arg(path)
        .args(extra)
        .run()
}

/// Every seedN.igvm gives QEMU's digest, hex on stdout: the crate's
/// measurement of the directives in the order QEMU's loader hands them over.
/// That is not digests.tsv's `qemu_model`, which measures the pages in file
/// order (and equals the crate's digest of the file as written): in every
/// seed the parameter inserts follow the last pages, and QEMU hands an
/// insert to SNP_LAUNCH_UPDATE at once but a page region only when a later
/// page directive ends it, or after the last directive
/// (`qigvm_process_file`'s final `qigvm_process_mem_page(&ctx, NULL)`), so
/// the inserts are measured before the last region.
#[test]
fn every_seed_file_gives_the_qemu_digest() {
    let Some(files) = present("igvm_vectors") else {
        return;
    };
    for (r, p) in &files {
        let o = digest(p, &[]).expect_code(0);
        assert_eq!(o.stdout.trim(), r.qemu, "{}", r.file);
        let bytes = std::fs::read(p).unwrap();
        let as_written = hex(&b::crate_digest(&bytes).unwrap());
        assert_eq!(as_written, r.qemu_model, "{}: the vectors' model", r.file);
        assert_ne!(r.qemu, r.qemu_model, "{}: an insert follows pages", r.file);
    }
}

/// `--output-format base64` prints the same 48 bytes.
#[test]
fn base64_output_is_the_same_digest() {
    let Some(files) = present("igvm_vectors") else {
        return;
    };
    for (r, p) in files.iter().filter(|(r, _)| is_seed(&r.file)) {
        let o = digest(p, &["--output-format", "base64"]).expect_code(0);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(o.stdout.trim())
            .unwrap_or_else(|e| panic!("{}: not base64 ({e}): {}", r.file, o.stdout));
        assert_eq!(hex(&raw), r.qemu, "{}", r.file);
    }
}

/// The launch digest of a file's SEV-SNP directives in file order, written
/// here from the firmware ABI: `insert_pages(area bytes)` says how many
/// UNMEASURED pages a parameter insert adds.
fn file_order_digest(file: &[u8], insert_pages: impl Fn(u64) -> u64) -> [u8; 48] {
    let f = IgvmFile::new_from_binary(file, None).unwrap();
    let mut areas = BTreeMap::new();
    let mut ld = [0u8; 48];
    let zero = [0u8; 48];
    for d in f.directives() {
        match d {
            IgvmDirectiveHeader::ParameterArea {
                number_of_bytes,
                parameter_area_index,
                ..
            } => {
                areas.insert(*parameter_area_index, *number_of_bytes);
            }
            IgvmDirectiveHeader::PageData {
                gpa,
                compatibility_mask,
                flags,
                data_type,
                data,
            } if compatibility_mask & b::SNP != 0 => {
                ld = match *data_type {
                    IgvmPageDataType::SECRETS => page_info(&ld, &zero, b::PT_SECRETS, *gpa),
                    IgvmPageDataType::CPUID_DATA | IgvmPageDataType::CPUID_XF => {
                        page_info(&ld, &zero, b::PT_CPUID, *gpa)
                    }
                    _ if flags.unmeasured() => page_info(&ld, &zero, b::PT_UNMEASURED, *gpa),
                    _ => page_info(&ld, &page_hash(data), b::PT_NORMAL, *gpa),
                };
            }
            IgvmDirectiveHeader::ParameterInsert(p) if p.compatibility_mask & b::SNP != 0 => {
                for i in 0..insert_pages(areas[&p.parameter_area_index]) {
                    ld = page_info(&ld, &zero, b::PT_UNMEASURED, p.gpa + i * b::PAGE);
                }
            }
            IgvmDirectiveHeader::SnpVpContext { gpa, vmsa, .. } => {
                ld = page_info(&ld, &page_hash(vmsa.as_bytes()), b::PT_VMSA, *gpa);
            }
            _ => {}
        }
    }
    ld
}

/// Why igvmmeasure's digest differs on seed6, seed14 and seed22, the files
/// with a 3-page parameter area: igvmmeasure measures ONE unmeasured page per
/// parameter insert, at the insert's GPA. QEMU measures the whole area:
/// `qigvm_directive_parameter_insert` calls
/// `set_guest_state(param->gpa, region, param_entry->size, CGS_PAGE_TYPE_UNMEASURED)`,
/// one launch update of `number_of_bytes` (all 3 pages) as UNMEASURED, and
/// the IGVM specification says the area is "imported as a set of
/// unmeasured pages". With a 1-page area the two agree.
///
/// Checked with a digest written here from the crate-parsed directives: with
/// one page per insert it gives digests.tsv's `igvmmeasure` on every seed
/// (so it is igvmmeasure's rule), with every page of the area it gives
/// `qemu_model` (the file-order model) on every seed, and the tool prints
/// QEMU's digest, which also covers the whole area; on the three
/// files the two rules differ.
#[test]
fn three_page_parameter_area_is_measured_whole_not_one_page_per_insert() {
    let Some(files) = present("igvm_vectors") else {
        return;
    };
    let mut differ = Vec::new();
    for (r, p) in files.iter().filter(|(r, _)| is_seed(&r.file)) {
        let bytes = std::fs::read(p).unwrap();
        let one_page = hex(&file_order_digest(&bytes, |_| 1));
        let whole = hex(&file_order_digest(&bytes, |n| n.div_ceil(b::PAGE)));
        assert_eq!(one_page, r.igvmmeasure, "{}: igvmmeasure's rule", r.file);
        assert_eq!(whole, r.qemu_model, "{}: the whole area", r.file);
        if one_page != whole {
            differ.push(r.file.clone());
            assert!(r.extra.contains("--param-pages 3"), "{}", r.file);
        }
    }
    assert_eq!(differ, ["seed6.igvm", "seed14.igvm", "seed22.igvm"]);
    for (r, p) in files.iter().filter(|(r, _)| differ.contains(&r.file)) {
        let o = digest(p, &["-v"]).expect_code(0);
        assert_eq!(o.stdout.trim(), r.qemu, "{}", r.file);
        assert_ne!(o.stdout.trim(), r.igvmmeasure, "{}", r.file);
        // One 1-page area and one 3-page area, each inserted once.
        assert!(
            o.stderr.contains("parameter area pages: 4"),
            "{}: {}",
            r.file,
            o.stderr
        );
    }
}

/// seed7, seed15 and seed23 have two VMSAs: the digest is QEMU's
/// (KVM measures both), with a warning that says so; `--vcpus 2` agrees,
/// `--vcpus 1` and `--vcpus 4` are refused with the reason (exit 2), and
/// `--check` refuses the file (exit 1): igvmmeasure --check-kvm refuses it
/// too (digests.tsv).
#[test]
fn two_vmsa_files_need_two_vcpus() {
    for n in [7, 15, 23] {
        let Some((r, p)) = seed(n) else {
            return;
        };
        assert!(r.extra.contains("--vcpus 2"), "{}", r.file);
        assert!(
            r.igvmmeasure_check_kvm.contains("More than one VMSA"),
            "{}",
            r.file
        );
        let o = digest(&p, &[]).expect_code(0);
        assert_eq!(o.stdout.trim(), r.qemu);
        assert!(o.stderr.contains("WARNING") && o.stderr.contains("2 VMSAs"));
        let o = digest(&p, &["--vcpus", "2"]).expect_code(0);
        assert_eq!(o.stdout.trim(), r.qemu);
        let o = digest(&p, &["--vcpus", "1"]).expect_code(2);
        assert!(
            o.stderr
                .contains("--vcpus 1, but the IGVM file has 2 VMSAs")
                && o.stderr.contains("give --vcpus 2"),
            "{}",
            o.stderr
        );
        let o = digest(&p, &["--vcpus", "4"]).expect_code(2);
        assert!(
            o.stderr
                .contains("--vcpus 4, but the IGVM file has 2 VMSA(s)")
                && o.stderr.contains("reset state"),
            "{}",
            o.stderr
        );
        assert!(o.stdout.is_empty());
        // Exit 1 for the two VMSAs alone; 2 where the file's ID block, made
        // for the file-order digest, also makes the firmware refuse it.
        let refused = o_has_id_block(&p);
        let o = digest(&p, &["--check"]).expect_code(if refused { 2 } else { 1 });
        assert!(o.stderr.contains("2 VMSAs"), "{}", o.stderr);
        assert!(o.stdout.is_empty());
    }
}

/// The one-VMSA files take `--vcpus 1` and refuse `--vcpus 2`.
#[test]
fn one_vmsa_files_take_only_one_vcpu() {
    let Some((r, p)) = seed(2) else {
        return;
    };
    assert_eq!(
        digest(&p, &["--vcpus", "1"]).expect_code(0).stdout.trim(),
        r.qemu
    );
    let o = digest(&p, &["--vcpus", "2"]).expect_code(2);
    assert!(o.stderr.contains("has 1 VMSA(s)"), "{}", o.stderr);
}

/// `-v` names the guest policy seedN.json gives; `--policy` with that
/// policy passes, any other exits 1 naming both, and the digest never
/// depends on it.
#[test]
fn policy_is_named_and_checked() {
    let Some(files) = present("igvm_vectors") else {
        return;
    };
    for (r, p) in files.iter().filter(|(r, _)| is_seed(&r.file)) {
        let policy = json(p)["policy"].as_str().unwrap().to_string();
        let o = digest(p, &["-v"]).expect_code(0);
        assert!(
            o.stderr.contains(&format!("guest policy: {policy}\n")),
            "{}: {}",
            r.file,
            o.stderr
        );
        let o = digest(p, &["--policy", &policy]).expect_code(0);
        assert_eq!(o.stdout.trim(), r.qemu);
        let want = u64::from_str_radix(policy.trim_start_matches("0x"), 16).unwrap();
        let other = format!("{:#x}", want ^ (1 << 19));
        let o = digest(p, &["--policy", &other]).expect_code(1);
        assert!(
            o.stderr.contains(&policy) && o.stderr.contains(&other),
            "{}: {}",
            r.file,
            o.stderr
        );
        assert!(o.stdout.is_empty());
    }
}

/// seed3, seed11 and seed19 were built with `--id-block` (an ID block whose
/// LD is the generator's digest, the pages in file order), and seedN.json
/// lists the ID block of every other file that has one: `-v` shows that LD
/// and says it differs from QEMU's launch digest, and `--check` refuses the
/// file (exit 2): the SNP firmware would refuse the launch.
#[test]
fn id_blocks_made_for_the_file_order_do_not_fit_qemus_launch() {
    let Some(files) = present("igvm_vectors") else {
        return;
    };
    let mut with = Vec::new();
    for (r, p) in files.iter().filter(|(r, _)| is_seed(&r.file)) {
        let j = json(p);
        let lds: Vec<String> = j["directives"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == "snp_id_block")
            .map(|d| d["ld"].as_str().unwrap().to_ascii_lowercase())
            .collect();
        let o = digest(p, &["-v"]).expect_code(0);
        match lds.as_slice() {
            [] => assert!(!o.stderr.contains("ID block"), "{}", r.file),
            [ld] => {
                // The generator made each ID block for the file-order
                // digest, which QEMU's launch does not give: the SNP
                // firmware would refuse SNP_LAUNCH_FINISH.
                assert_eq!(ld, &r.qemu_model, "{}: seedN.json", r.file);
                let line = format!("ID block: LD {ld} (DIFFERS from the launch digest)");
                assert!(o.stderr.contains(&line), "{}: {}", r.file, o.stderr);
                assert!(o.stderr.contains("SNP_LAUNCH_FINISH fails"), "{}", r.file);
                with.push(r.file.clone());
            }
            _ => panic!("{}: several ID blocks", r.file),
        }
        if r.extra.contains("--id-block") {
            assert_eq!(lds.len(), 1, "{}", r.file);
        }
    }
    for f in ["seed3.igvm", "seed11.igvm", "seed19.igvm"] {
        assert!(with.contains(&f.to_string()), "{f} has no ID block");
    }
    for n in [3, 11, 19] {
        let (_, p) = seed(n).unwrap();
        let o = digest(&p, &["--check"]).expect_code(2);
        assert!(o.stderr.contains("ID block vouches for"), "{}", o.stderr);
    }
}

/// A file whose ID block vouches for another digest: a warning naming both,
/// `-v` says it DIFFERS, and `--check` refuses it (exit 2: SNP_LAUNCH_FINISH
/// would fail, the guest would not start). The file is built here; its
/// digest is the igvm crate's.
#[test]
fn an_id_block_for_another_digest_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = b::Spec::new(0x30000);
    s.push(b::page(0x10000, b::Kind::Data, vec![0x5a; 4096], b::SNP))
        .push(b::page(0x11000, b::Kind::Zero, vec![], b::SNP))
        .push(b::vmsa(0, b::KVM_VMSA_GPA, 0xfff0, 0x31, 1));
    let expected = hex(&b::crate_digest(&s.bytes()).unwrap());
    let wrong: [u8; 48] = Sha384::digest(b"another launch").into();
    s.directives.insert(0, b::id_block(wrong));
    let p = s.write(dir.path(), "other-ld.igvm");
    let o = digest(&p, &["-v"]).expect_code(0);
    assert_eq!(o.stdout.trim(), expected);
    assert!(
        o.stderr.contains(&format!(
            "vouches for launch digest {} but the launch measures {expected}",
            hex(&wrong)
        )),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("DIFFERS from the launch digest"));
    let o = digest(&p, &["--check"]).expect_code(2);
    assert!(o.stderr.contains("SNP_LAUNCH_FINISH fails"), "{}", o.stderr);
    assert!(o.stdout.is_empty());
}

/// Whether the file has an SNP ID block (seedN.json).
fn o_has_id_block(p: &Path) -> bool {
    json(p)["directives"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["kind"] == "snp_id_block")
}
