//! Helpers shared by the two integration-test binaries (`tests/it`, `tests/e2e`), each of which
//! includes this folder with `#[path = "../common/mod.rs"] mod common;`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub mod endless;
pub mod files;
pub mod netns;
pub mod rng;
pub mod schema;
pub mod sevctl;
pub mod skip;
pub mod snp_sim;
pub mod tool;
#[allow(unused_imports)]
pub use files::Files;
#[allow(unused_imports)]
pub use skip::{igvm_vectors_dir, in_ci, skip_or_fail, snp_vectors_dir, vectors_dir};
#[allow(unused_imports)]
pub use tool::{Args, Outcome, Tool, MILAN};

pub fn bin() -> Command {
    Command::new(tool::OURS)
}

/// Runs our tool with `args`; returns (exit code, stdout, stderr).
pub fn run<I, S>(args: I) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Tool::new().args(args).run().parts()
}

pub fn split(out: Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Python simulated Secure Processor of tests/sim, run with Debian's python3.
pub fn sev_sp() -> Option<Command> {
    let py = PathBuf::from("/usr/bin/python3");
    let ok = py.is_file()
        && Command::new(&py)
            .args(["-c", "import cryptography"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if !ok {
        skip_or_fail(
            "sev_sp",
            "/usr/bin/python3 with python3-cryptography is needed",
        );
        return None;
    }
    let mut c = Command::new(py);
    c.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sim/sev_sp.py"));
    Some(c)
}

/// `sev_sp.py measure ARGS`: the measurement the simulated Secure Processor reports, checked
/// to be given. None (after a SKIPPED line) without python3-cryptography.
#[track_caller]
pub fn sev_measure<I, S>(args: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = sev_sp()?.arg("measure").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "simulator: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

/// A small synthetic firmware image whose OVMF footer table has the given
/// entries (GUID string, data), laid out as edk2 does: each entry is data,
/// u16 length, GUID; the footer (u16 table length, footer GUID) ends 32
/// bytes before the end of the image.
pub fn firmware_with(entries: &[(&str, Vec<u8>)], size: usize) -> Vec<u8> {
    let entries: Vec<(uuid::Uuid, Vec<u8>)> = entries
        .iter()
        .map(|(g, d)| (uuid::Uuid::parse_str(g).unwrap(), d.clone()))
        .collect();
    let tail = sev_validate::core::ovmf::lay_out_footer(&entries);
    let mut fw: Vec<u8> = (0..size - tail.len())
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    fw.extend_from_slice(&tail);
    fw
}

/// `body` made an SEV-SNP firmware image: SEV metadata with `sections` (GPA, size, type)
/// `metadata_offset` bytes before its end, and an OVMF footer table ending 32 bytes before its
/// end with the SEV metadata entry, then `entries` (GUID, data). Laid out here as edk2 does,
/// not by the library's code, so that the tests check the library against it.
pub fn snp_firmware_with(
    mut body: Vec<u8>,
    sections: &[(u32, u32, u32)],
    metadata_offset: u32,
    entries: &[(&str, Vec<u8>)],
) -> Vec<u8> {
    let size = body.len();
    // "ASEV", u32 length, u32 version 1, u32 count, then the sections.
    let mut meta = b"ASEV".to_vec();
    for v in [16 + 12 * sections.len() as u32, 1, sections.len() as u32] {
        meta.extend_from_slice(&v.to_le_bytes());
    }
    for (gpa, len, kind) in sections {
        for v in [gpa, len, kind] {
            meta.extend_from_slice(&v.to_le_bytes());
        }
    }
    let at = size - metadata_offset as usize;
    body[at..at + meta.len()].copy_from_slice(&meta);
    // Each entry is its data, u16 length, GUID; then u16 table length and the footer GUID.
    let guid_le = |g: &str| uuid::Uuid::parse_str(g).unwrap().to_bytes_le();
    let mut table = Vec::new();
    let metadata_entry = (SEV_METADATA, metadata_offset.to_le_bytes().to_vec());
    for (g, d) in std::iter::once(&metadata_entry).chain(entries) {
        table.extend_from_slice(d);
        table.extend_from_slice(&((d.len() + 18) as u16).to_le_bytes());
        table.extend_from_slice(&guid_le(g));
    }
    table.extend_from_slice(&((table.len() + 18) as u16).to_le_bytes());
    table.extend_from_slice(&guid_le(FOOTER));
    let end = size - 32;
    assert!(
        at + meta.len() < end - table.len(),
        "metadata overlaps the footer"
    );
    body[end - table.len()..end].copy_from_slice(&table);
    body[end..].fill(0);
    body
}

pub const FOOTER: &str = "96b582de-1fb2-45f7-baea-a366c55a082d";
pub const SEV_METADATA: &str = "dc886566-984a-4798-a75e-5585a7bf67cc";
pub const RESET_BLOCK: &str = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
pub const SECRET_AREA: &str = "4c2eb361-7d9b-4cc3-8081-127c90d3d294";
pub const HASH_AREA: &str = "7255371f-3a3b-4b04-927b-1da6efa8d454";

/// An AmdSev-like firmware: SEV-ES reset block, secret area, kernel hashes area.
pub fn amdsev_like_firmware() -> Vec<u8> {
    let area = |base: u32, size: u32| [base.to_le_bytes(), size.to_le_bytes()].concat();
    firmware_with(
        &[
            (RESET_BLOCK, 0x0080_B004u32.to_le_bytes().to_vec()),
            (SECRET_AREA, area(0x80F000, 0xC00)),
            (HASH_AREA, area(0x80FC00, 0x400)),
        ],
        64 * 1024,
    )
}

/// A `--domain` run on libvirt's test driver (its default node's domain `test`).
pub const TEST_DRIVER_DOMAIN: [&str; 4] = ["--connect", "test:///default", "--domain", "test"];

/// Owned arguments from string slices.
pub fn argv(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `args` followed by `extra`.
pub fn with(args: &[String], extra: &[&str]) -> Vec<String> {
    let mut v = args.to_vec();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// `args` without `opt` and its value.
pub fn without(args: &[String], opt: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a == opt {
            skip = true;
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// Sets the value that follows `opt`.
pub fn set(args: &mut [String], opt: &str, value: &str) {
    let at = args.iter().position(|a| a == opt).expect("option present") + 1;
    args[at] = value.to_string();
}

/// Runs our tool; checks that it did not panic, its exit code, and that
/// stderr (or stdout) contains `needle`. Returns stderr.
#[track_caller]
pub fn expect(args: &[String], code: i32, needle: &str) -> String {
    let o = Tool::new().args(args).run().expect_code(code);
    assert!(
        o.stderr.contains(needle) || o.stdout.contains(needle),
        "{args:?}: wanted {needle:?} in stdout {:?} or stderr {:?}",
        o.stdout,
        o.stderr
    );
    o.stderr
}

/// A 128 KiB firmware image with SEV metadata (SNP_SEC_MEM, SECRETS, CPUID
/// and SNP_KERNEL_HASHES pages) and the footer entries QEMU reads.
pub fn snp_test_firmware() -> Vec<u8> {
    let sections = [
        (0x80_0000, 0x1000, 1),
        (0x80_1000, 0x1000, 2),
        (0x80_2000, 0x1000, 3),
        (0x80_F000, 0x1000, 0x10),
    ];
    let area = |b: u32, s: u32| [b.to_le_bytes(), s.to_le_bytes()].concat();
    snp_firmware_with(
        (0..32 * 4096).map(|i| (i * 13 % 251) as u8).collect(),
        &sections,
        0x2000,
        &[
            (RESET_BLOCK, 0x0080_B004u32.to_le_bytes().to_vec()),
            (SECRET_AREA, area(0x80_1000, 0x1000)),
            (HASH_AREA, area(0x80_FC00, 0x400)),
        ],
    )
}
