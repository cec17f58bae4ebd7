//! `snp-digest --igvm` on files that are not IGVM files, or are hostile
//! ones: every prefix of a small file, random byte flips (with the header
//! checksum made right again, so the flips reach the directives), a 300 MiB
//! sparse file, /dev/zero, a FIFO that never ends, a file without an SEV-SNP
//! platform, with an unknown page data type, with an insert of an undeclared
//! parameter area, with more measured memory than the tool lays out, and the
//! inputs that make the igvm crate's parser (0.5) panic. Each is refused with
//! exit 2 and a message that says what is wrong, never a panic, and the
//! tool's peak memory stays bounded (`/usr/bin/time -f %M`, as
//! tests/it/bounded_reads.rs measures it).

use std::path::Path;
use std::process::Command;

use sev_validate::core::igvm::IgvmLaunch;

use crate::common::endless::{self, run_endless, Endless};
use crate::common::rng::Rng;
use crate::common::{self, tool::OURS, Outcome, Tool};
use crate::igvm_build::{self as b, Kind, Spec};

const MIB: u64 = 1 << 20;
/// The largest IGVM file read (the man page's FILES).
const MAX_IGVM: u64 = 128 * MIB;

/// A small launch: a parameter area and its insert, data, zero, secrets and
/// CPUID pages, an ID block and a VMSA (about 9 KiB).
fn small() -> Spec {
    let mut s = Spec::new(0x30000);
    s.push(b::id_block([7; 48]))
        .push(b::param_area(0, b::PAGE))
        .push(b::vp_count(0))
        .push(b::insert(0, 0x8000, b::SNP))
        .push(b::page(0x10000, Kind::Data, vec![0x42; 100], b::SNP))
        .push(b::page(0x11000, Kind::Zero, vec![], b::SNP))
        .push(b::page(0x12000, Kind::Secrets, vec![], b::SNP))
        .push(b::page(0x13000, Kind::Cpuid, vec![], b::SNP))
        .push(b::vmsa(0, b::KVM_VMSA_GPA, 0x10000, 0x31, 1));
    s
}

fn digest(path: &Path) -> Outcome {
    Tool::new().args(["snp-digest", "--igvm"]).arg(path).run()
}

/// Refused with exit 2, a message naming the file and saying `needle`,
/// nothing on stdout, no panic.
#[track_caller]
fn refused(path: &Path, needle: &str) -> String {
    let o = digest(path).expect_code(2);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    let named = format!("IGVM file '{}'", path.display());
    assert!(
        o.stderr.contains(&named) && o.stderr.contains(needle),
        "wanted {named:?} and {needle:?} in: {}",
        o.stderr
    );
    o.stderr
}

/// The tool's peak RSS in KiB on `args`, with its outcome.
fn peak(args: &[String]) -> Option<(Outcome, u64)> {
    if !endless::have_time() {
        common::skip_or_fail("igvm_hostile", "/usr/bin/time (package time) is needed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let rss = dir.path().join("rss");
    let out = Command::new(endless::TIME)
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .arg(OURS)
        .args(args)
        .output()
        .unwrap();
    let kib = std::fs::read_to_string(&rss).unwrap();
    let kib = kib.lines().last().unwrap().trim().parse().unwrap();
    let o = Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        command: args.join(" "),
    };
    Some((o, kib))
}

/// The library on `data`: never a panic (the igvm crate's own panics are
/// the tool's to stop); a cut or changed file may parse or not.
fn parses(data: &[u8]) -> bool {
    let d = data.to_vec();
    match std::panic::catch_unwind(move || IgvmLaunch::parse(&d).map(|l| l.launch_digest())) {
        Ok(r) => r.is_ok(),
        Err(_) => panic!(
            "IgvmLaunch::parse panics on {} bytes: {:02x?}",
            data.len(),
            &data[..data.len().min(64)]
        ),
    }
}

/// Every proper prefix of a small file is refused: by the library for each
/// length, and by the tool (exit 2, "not a valid IGVM file") for one length
/// in 37 and the first 64.
#[test]
fn every_prefix_is_refused() {
    let file = small().bytes();
    for n in 0..file.len() {
        assert!(!parses(&file[..n]), "a prefix of {n} bytes parses");
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.igvm");
    for n in (0..file.len()).filter(|n| *n < 64 || n % 37 == 0) {
        std::fs::write(&p, &file[..n]).unwrap();
        refused(&p, "not a valid IGVM file");
    }
}

/// 400 copies of a small file with 1 to 8 random bytes changed, half of
/// them with the header checksum made right for the changed headers: the
/// library never panics, and the tool (on 80 of them) exits 0, 1 or 2
/// without a panic.
#[test]
fn random_byte_flips_never_panic() {
    let file = small().bytes();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("flipped.igvm");
    let mut rng = Rng::new(0x1C7A_F11B);
    let mut parsed = 0;
    for i in 0..400 {
        let mut f = file.clone();
        for _ in 0..rng.range(1, 8) {
            // Mostly the headers, where the parser looks.
            let at = if rng.chance(75) {
                rng.below(f.len().min(600) as u64)
            } else {
                rng.below(f.len() as u64)
            } as usize;
            f[at] ^= 1 << rng.below(8);
        }
        if i % 2 == 0 {
            b::fix_checksum(&mut f);
        }
        parsed += usize::from(parses(&f));
        if i % 5 == 0 {
            std::fs::write(&p, &f).unwrap();
            let o = digest(&p);
            assert!(
                [0, 1, 2].contains(&o.code) && !o.stderr.contains("panicked"),
                "flip {i}: exit {}: {}",
                o.code,
                o.stderr
            );
        }
    }
    eprintln!("igvm_hostile: {parsed} of 400 changed files still parse");
}

/// A 300 MiB sparse file is refused from its size, before it is read.
#[test]
fn a_300_mib_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.igvm");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(300 * MIB).unwrap();
    let Some((o, kib)) = peak(&common::argv(&[
        "snp-digest",
        "--igvm",
        &p.display().to_string(),
    ])) else {
        return;
    };
    let o = o.expect_code(2);
    assert!(
        o.stderr.contains(&format!(
            "is {} bytes; this tool reads IGVM files of at most {MAX_IGVM} bytes",
            300 * MIB
        )),
        "{}",
        o.stderr
    );
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
}

/// /dev/zero and a FIFO that never ends: refused after 128 MiB + 1 byte,
/// holding no more than that.
#[test]
fn endless_inputs_are_refused_within_the_bound() {
    if !endless::have_time() {
        common::skip_or_fail("igvm_hostile", "/usr/bin/time (package time) is needed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let args = common::argv(&["snp-digest", "--igvm", "X"]);
    for feed in [Endless::DevZero, Endless::Fifo] {
        let r = run_endless(&args, 2, "", feed, dir.path());
        assert_eq!(r.code, 2, "{}: {}", r.what, r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(
            r.stderr.contains(&format!("more than {MAX_IGVM} bytes")),
            "{}: {}",
            r.what,
            r.stderr
        );
        let kib = r.peak_kib.expect("peak RSS");
        assert!(
            kib < (64 * MIB + MAX_IGVM) / 1024,
            "{}: peak RSS {kib} KiB",
            r.what
        );
    }
}

/// A file for the native platform only: QEMU cannot launch it as an
/// SEV-SNP guest.
#[test]
fn a_file_without_an_snp_platform_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = igvm::IgvmFile::new(
        igvm::IgvmRevision::V1,
        vec![b::platform(b::NATIVE, igvm_defs::IgvmPlatformType::NATIVE)],
        vec![],
        vec![
            b::page(0x10000, Kind::Data, vec![1; 4096], b::NATIVE),
            b::native_context(0, 0x10000),
        ],
    )
    .unwrap();
    let mut bytes = Vec::new();
    f.serialize(&mut bytes).unwrap();
    let p = dir.path().join("native.igvm");
    std::fs::write(&p, &bytes).unwrap();
    refused(&p, "has no SEV-SNP platform (its platforms: native)");
}

/// A page data type QEMU does not know (7): the parser refuses it, and the
/// message says why.
#[test]
fn an_unknown_page_data_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = small().bytes();
    let (_, body, _) = b::variable_headers(&bytes)
        .into_iter()
        .find(|(t, _, _)| *t == b::VHT_PAGE_DATA)
        .unwrap();
    bytes[body + b::PAGE_DATA_TYPE_AT] = 7;
    b::fix_checksum(&mut bytes);
    let p = dir.path().join("type7.igvm");
    std::fs::write(&p, &bytes).unwrap();
    refused(
        &p,
        "invalid binary directive header: invalid page data type",
    );
}

/// A parameter insert of an area no directive declares.
#[test]
fn an_insert_of_an_undeclared_area_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = small().bytes();
    let (_, body, _) = b::variable_headers(&bytes)
        .into_iter()
        .find(|(t, _, _)| *t == b::VHT_PARAMETER_INSERT)
        .unwrap();
    bytes[body + b::INSERT_AREA_AT] = 9;
    b::fix_checksum(&mut bytes);
    let p = dir.path().join("area9.igvm");
    std::fs::write(&p, &bytes).unwrap();
    refused(&p, "invalid parameter area index");
}

/// A variable header as the format lays it out: type, length, body padded
/// to 8 bytes.
fn header(typ: u32, body: &[u8]) -> Vec<u8> {
    let mut h = [typ.to_le_bytes(), (body.len() as u32).to_le_bytes()].concat();
    h.extend_from_slice(body);
    h.resize(8 + body.len().div_ceil(8) * 8, 0);
    h
}

fn platform(mask: u32, platform_type: u8) -> Vec<u8> {
    let mut b = mask.to_le_bytes().to_vec();
    b.extend_from_slice(&[0, platform_type, 1, 0]);
    b.extend_from_slice(&0u64.to_le_bytes());
    header(0x1, &b)
}

/// A version 1 IGVM file of `headers` and 8 bytes of file data, with its
/// checksum right: the parser reads every header.
fn raw(headers: &[Vec<u8>]) -> Vec<u8> {
    let var: Vec<u8> = headers.concat();
    let total = 24 + var.len() + 8;
    let mut f = Vec::new();
    for v in [*b"IGVM", 1u32.to_le_bytes(), 24u32.to_le_bytes()] {
        f.extend_from_slice(&v);
    }
    f.extend_from_slice(&(var.len() as u32).to_le_bytes());
    f.extend_from_slice(&(total as u32).to_le_bytes());
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(&var);
    f.extend_from_slice(&[0; 8]);
    b::fix_checksum(&mut f);
    f
}

/// Inputs on which the igvm crate's parser (0.5) panics, each found by
/// reading its code and by the `igvm_file` fuzz target: variable headers
/// whose offset and size add up past 4 GiB (its 32-bit addition
/// overflows, or it splits the file past its end); page data whose file
/// offset lies before the file data (a 32-bit subtraction that overflows in
/// a build with overflow checks); a VBS VP context whose data lies past
/// the end (a slice index out of range, in every build). The tool says the
/// file is not a valid IGVM file (exit 2) and does not panic.
#[test]
fn inputs_that_panic_the_igvm_parser_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut overflow = vec![0u8; 64];
    for (at, v) in [
        (0, u32::from_le_bytes(*b"IGVM")),
        (4, 1),
        (8, 24),
        (12, 0xFFFF_FFF0),
        (16, 64),
    ] {
        overflow[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    let policy = header(0x101, &[0x00, 0, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    let mut page = 0x1000u64.to_le_bytes().to_vec();
    page.extend_from_slice(&1u32.to_le_bytes()); // compatibility mask
    page.extend_from_slice(&4u32.to_le_bytes()); // file offset, inside the fixed header
    page.extend_from_slice(&[0; 8]); // flags, data type, reserved
    let underflow = raw(&[platform(1, 2), policy.clone(), header(0x302, &page)]);
    let mut vp = 0u64.to_le_bytes().to_vec();
    vp.extend_from_slice(&2u32.to_le_bytes()); // the VBS platform's mask
    vp.extend_from_slice(&0x7FFF_FFFFu32.to_le_bytes()); // file offset, far past the end
    vp.extend_from_slice(&[0; 4]); // vp_index, reserved
    let vbs = raw(&[platform(1, 2), platform(2, 1), policy, header(0x304, &vp)]);
    for (name, bytes, needle) in [
        ("overflow", overflow, "past the end of the file"),
        ("underflow", underflow, "not a valid IGVM file"),
        ("vbs", vbs, "not a valid IGVM file"),
    ] {
        assert!(!parses(&bytes), "{name}");
        let p = dir.path().join(format!("{name}.igvm"));
        std::fs::write(&p, &bytes).unwrap();
        refused(&p, needle);
    }
}

/// More measured guest memory than the tool lays out (4 GiB): 2049 empty
/// 2 MiB pages, 64 KiB of file, would be 1,049,088 pages; and a parameter
/// area of 1 TiB. Refused before they are hashed, within bounded memory.
#[test]
fn more_than_4_gib_of_measured_memory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = Spec::new(0x30000);
    for i in 0..2049u64 {
        let d = b::page(i * b::PAGE_2M, Kind::Zero, vec![], b::SNP);
        big.push(b::with_flags(d, |f| f.with_is_2mb_page(true)));
    }
    // The parser wants some file data: a VMSA.
    big.push(b::vmsa(0, b::KVM_VMSA_GPA, 0, 0x31, 1));
    let mut area = Spec::new(0x30000);
    area.push(b::param_area(0, 1 << 40))
        .push(b::insert(0, 0x10_0000, b::SNP))
        .push(b::vmsa(0, b::KVM_VMSA_GPA, 0, 0x31, 1));
    for (name, s, directive) in [("2mib", big, 2048), ("area", area, 1)] {
        let p = s.write(dir.path(), &format!("{name}.igvm"));
        let Some((o, kib)) = peak(&common::argv(&[
            "snp-digest",
            "--igvm",
            &p.display().to_string(),
        ])) else {
            return;
        };
        let o = o.expect_code(2);
        assert!(
            o.stderr.contains(&format!(
                "directive {directive} takes the IGVM file's measured guest memory past 4 GiB"
            )),
            "{name}: {}",
            o.stderr
        );
        // 1 Mi pages of 72 bytes at most, and the file.
        assert!(
            kib < 64 * 1024 + 2 * 72 * 1024,
            "{name}: peak RSS {kib} KiB"
        );
    }
}
