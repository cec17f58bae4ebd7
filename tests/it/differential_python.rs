//! Randomised differential tests: our `virt-qemu-sev-validate` against libvirt's Python
//! `virt-qemu-sev-validate` (Debian `libvirt-clients-qemu`), on Debian's real OVMF images.
//!
//! The expected measurement always comes from the Python tool (an independent
//! implementation), never from ours: we run it with `--debug` and a placeholder measurement
//! (32 zero bytes ‖ nonce), read its `Measurement computed(hex): …` line and build the right
//! blob from that. Then both tools must accept the right blob (exit 0) and reject it with one
//! bit of MEASURE flipped (exit 1), and for some cases with one bit of the nonce flipped.
//!
//! Knobs (environment):
//! - `DIFF_SEED`    seed of the case generator (decimal or 0x-hex; printed on every run)
//! - `DIFF_CASES`   number of random cases (default 60)
//! - `DIFF_CASE`    run only this case index (to reproduce a failure)
//! - `DIFF_THREADS` worker threads (default: available cores, at most 4)
//! - `CI`           when set, missing prerequisites fail the tests instead of skipping them
//!
//! Prerequisites: `/usr/bin/python3`, `/usr/bin/virt-qemu-sev-validate` (with its Python
//! modules) and at least one of Debian's OVMF images (package `ovmf`).
//!
//! Kernel cases: our tool (like QEMU) refuses `--kernel` unless the firmware's footer table has
//! a usable kernel-hashes area (entry 7255371f-…, `{u32 base; u32 size}`, base != 0,
//! size >= 176). Debian's images have the entry but zeroed, so for kernel cases both tools get
//! a copy of the image with that entry patched in place to base 0x80FC00, size 0x400.
//! `unpatched_debian_firmware_refuses_kernel` checks the intended difference on the
//! unpatched images (ours exits 2; the Python tool does not check).

use crate::common::rng;
use crate::common::sevctl::{self, Sevctl};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine as _;

const PYTHON: &str = "/usr/bin/python3";
const PY_TOOL: &str = "/usr/bin/virt-qemu-sev-validate";
const OUR_TOOL: &str = env!("CARGO_BIN_EXE_virt-qemu-sev-validate");
const OVMF_IMAGES: &[&str] = &[
    "/usr/share/ovmf/OVMF.fd",
    "/usr/share/OVMF/OVMF_CODE.fd",
    "/usr/share/OVMF/OVMF_CODE_4M.fd",
    "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
];
const DEFAULT_SEED: u64 = 0x5EE5_D1FF_2024_0001;
const DEFAULT_CASES: usize = 60;

/// OVMF footer table GUID 96b582de-1fb2-45f7-baea-a366c55a082d, EFI (little-endian) byte order.
const FOOTER_GUID_LE: [u8; 16] = [
    0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d,
];
/// SEV hash-table area GUID 7255371f-3a3b-4b04-927b-1da6efa8d454, EFI byte order.
const HASH_AREA_GUID_LE: [u8; 16] = [
    0x1f, 0x37, 0x55, 0x72, 0x3b, 0x3a, 0x04, 0x4b, 0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54,
];
const PATCHED_HASH_BASE: u32 = 0x80FC00;
const PATCHED_HASH_SIZE: u32 = 0x400;

// ---------------------------------------------------------------------------------------------
// Prerequisites

use crate::common::skip;

/// Skips (a visible line) or, under CI, fails.
fn skip_or_fail(what: &str) {
    skip::skip_or_fail(
        "differential_python",
        &format!(
            "differential tests need {PYTHON}, {PY_TOOL} (with python3-libvirt, python3-lxml, \
             python3-cryptography) and a Debian OVMF image; {what} \
             (install libvirt-clients-qemu ovmf)"
        ),
    );
}

/// The Python tool is usable (file present and its imports load).
fn python_tool_problem() -> Option<String> {
    if !Path::new(PYTHON).is_file() {
        return Some(format!("{PYTHON} is missing"));
    }
    if !Path::new(PY_TOOL).is_file() {
        return Some(format!("{PY_TOOL} is missing"));
    }
    match Command::new(PYTHON).arg(PY_TOOL).arg("--help").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`{PYTHON} {PY_TOOL} --help` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run {PYTHON}: {e}")),
    }
}

fn ovmf_images() -> Vec<PathBuf> {
    OVMF_IMAGES
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect()
}

/// Python tool and at least one image, or `None` after skipping / panicking under CI.
fn prerequisites() -> Option<Vec<PathBuf>> {
    if let Some(problem) = python_tool_problem() {
        skip_or_fail(&problem);
        return None;
    }
    let images = ovmf_images();
    if images.is_empty() {
        skip_or_fail(&format!("none of {} exists", OVMF_IMAGES.join(", ")));
        return None;
    }
    Some(images)
}

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG (splitmix64)

use rng::{env_u64, Rng};

// ---------------------------------------------------------------------------------------------
// Running the tools

struct Run {
    cmdline: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self, who: &str) -> String {
        format!(
            "--- {who}: exit {}\n$ {}\n[stdout]\n{}\n[stderr]\n{}\n",
            self.code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "killed by a signal".into()),
            self.cmdline,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:+,@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn run(program: &str, prefix: &[&str], args: &[String]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(prefix).args(args);
    // Offline mode never connects, but keep the environment from steering either tool.
    cmd.env_remove("LIBVIRT_DEFAULT_URI");
    let cmdline = std::iter::once(program)
        .chain(prefix.iter().copied())
        .chain(args.iter().map(String::as_str))
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run {
        cmdline,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run_python(args: &[String]) -> Run {
    run(PYTHON, &[PY_TOOL], args)
}

fn run_ours(args: &[String]) -> Run {
    run(OUR_TOOL, &[], args)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `-m`/`--measurement` and the blob, in front of the other arguments.
fn with_measurement(short: bool, blob: &[u8], rest: &[String]) -> Vec<String> {
    let mut v = vec![
        if short { "-m" } else { "--measurement" }.to_string(),
        b64(blob),
    ];
    v.extend_from_slice(rest);
    v
}

/// The MEASURE the Python tool computes for these inputs (run with `--debug` and a placeholder
/// measurement of 32 zero bytes ‖ nonce), or an explanation with its full output.
fn python_expected_measure(
    args: &[String],
    short: bool,
    nonce: &[u8; 16],
) -> Result<[u8; 32], String> {
    let mut placeholder = vec![0u8; 32];
    placeholder.extend_from_slice(nonce);
    let mut a = vec!["--debug".to_string()];
    a.extend(with_measurement(short, &placeholder, args));
    let r = run_python(&a);
    const KEY: &str = "Measurement computed(hex): ";
    let parsed = r.stderr.lines().find_map(|l| {
        let i = l.find(KEY)?;
        let h = l[i + KEY.len()..].trim();
        let v = hex::decode(h).ok()?;
        <[u8; 32]>::try_from(v.as_slice()).ok()
    });
    match parsed {
        // Any placeholder-vs-computed mismatch exits 1; anything else means the inputs were
        // rejected or the tool broke, which the caller must see.
        Some(m) if r.code == Some(1) => Ok(m),
        _ => Err(format!(
            "could not get the expected measurement from the Python tool \
             (want exit 1 and a `{KEY}<64 hex>` line on stderr)\n{}",
            r.describe("python --debug, placeholder measurement")
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Firmware patching (measurement.md §4)

/// Sets the kernel-hashes area entry of an OVMF footer table to {base, size} in place.
fn patch_kernel_hash_area(fw: &mut [u8], base: u32, size: u32) -> Result<(), String> {
    let end = fw.len();
    if end < 50 {
        return Err(format!("firmware is only {end} bytes"));
    }
    if fw[end - 48..end - 32] != FOOTER_GUID_LE {
        return Err("no OVMF footer table GUID at end-48".into());
    }
    let table_len = u16::from_le_bytes([fw[end - 50], fw[end - 49]]) as usize;
    if table_len < 18 || table_len + 32 > end {
        return Err(format!("bad footer table length {table_len}"));
    }
    let start = end - 32 - table_len;
    let mut pos = end - 50;
    while pos > start {
        if pos - start < 18 {
            return Err(format!("truncated footer entry at offset {pos:#x}"));
        }
        let guid = &fw[pos - 16..pos];
        let len = u16::from_le_bytes([fw[pos - 18], fw[pos - 17]]) as usize;
        if len < 18 || len > pos - start {
            return Err(format!("bad footer entry length {len} at offset {pos:#x}"));
        }
        if guid == HASH_AREA_GUID_LE {
            if len - 18 != 8 {
                return Err(format!(
                    "kernel-hashes entry has {} data bytes, not 8",
                    len - 18
                ));
            }
            let data = pos - len;
            fw[data..data + 4].copy_from_slice(&base.to_le_bytes());
            fw[data + 4..data + 8].copy_from_slice(&size.to_le_bytes());
            return Ok(());
        }
        pos -= len;
    }
    Err(
        "the footer table has no kernel-hashes area entry 7255371f-3a3b-4b04-927b-1da6efa8d454"
            .into(),
    )
}

/// One image as given, and a copy with a usable kernel-hashes area (kernel cases).
struct Firmware {
    original: PathBuf,
    patched: PathBuf,
}

fn prepare_firmware(images: &[PathBuf], dir: &Path) -> Vec<Firmware> {
    images
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut bytes =
                std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            patch_kernel_hash_area(&mut bytes, PATCHED_HASH_BASE, PATCHED_HASH_SIZE)
                .unwrap_or_else(|e| panic!("cannot patch {}: {e}", p.display()));
            let name = p.file_name().unwrap().to_string_lossy();
            let patched = dir.join(format!("fw{i}-khash-{name}"));
            std::fs::write(&patched, bytes).unwrap();
            Firmware {
                original: p.clone(),
                patched,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Cases

struct Case {
    idx: usize,
    summary: String,
    /// Every argument except the measurement.
    args: Vec<String>,
    /// Given to the Python tool only, after `args` (see `PY_DUMMY_AP_VMSA`).
    py_extra: Vec<String>,
    short_opts: bool,
    nonce: [u8; 16],
    measure_bit: usize,
    /// Some(bit) to also check a flipped nonce bit.
    nonce_bit: Option<usize>,
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p.to_str().expect("temp paths are UTF-8").to_string()
}

fn random_cmdline(r: &mut Rng) -> String {
    if r.chance(15) {
        return String::new();
    }
    let len = r.range(1, 96) as usize;
    (0..len)
        .map(|_| {
            if r.chance(15) {
                ' '
            } else {
                r.range(0x20, 0x7e) as u8 as char
            }
        })
        .collect()
}

fn gen_case(idx: usize, seed: u64, firmware: &[Firmware], root: &Path) -> Case {
    // A per-case stream, so one case can be reproduced alone (DIFF_CASE).
    let mut r = Rng::new(seed ^ (idx as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let dir = root.join(format!("case-{idx:03}"));
    std::fs::create_dir_all(&dir).unwrap();

    // Stratified so every run covers each combination: SEV/SEV-ES × kernel or not, and for
    // SEV-ES, CPU SKU and VMSA files alternately.
    let es = idx % 4 >= 2;
    let with_kernel = idx % 2 == 1;
    let sku = (idx / 4) % 2 == 0;
    let short = r.chance(50);
    let opt = |s: &'static str, l: &'static str| if short { s } else { l }.to_string();

    let fw_i = r.below(firmware.len() as u64) as usize;
    let fw = &firmware[fw_i];
    let fw_path = if with_kernel {
        &fw.patched
    } else {
        &fw.original
    };

    let policy: u32 = if es {
        match r.below(4) {
            0 => 0x5,
            1 => 0x7,
            2 => 0x30005,
            _ => (r.next_u64() as u32) | 0x4,
        }
    } else {
        match r.below(7) {
            0 => 0x1,
            1 => 0x3,
            2 => 0x0,
            3 => 0x30001,
            _ => (r.next_u64() as u32) & !0x4,
        }
    };
    let api_major = r.below(256);
    let api_minor = r.below(256);
    let build = r.below(256);

    let mut py_extra = Vec::new();
    let mut args = vec![
        "--api-major".into(),
        api_major.to_string(),
        "--api-minor".into(),
        api_minor.to_string(),
        "--build-id".into(),
        build.to_string(),
        // The Python tool takes decimal only.
        "--policy".into(),
        policy.to_string(),
        opt("-f", "--firmware"),
        fw_path.to_str().unwrap().to_string(),
    ];
    let mut summary = format!(
        "{} policy={policy:#x} api={api_major}.{api_minor} build={build} fw={}{}",
        if es { "SEV-ES" } else { "SEV" },
        fw.original.display(),
        if with_kernel {
            " (kernel-hashes patched)"
        } else {
            ""
        },
    );

    // A length up to `max`, 0 one time in ten.
    let length = |r: &mut Rng, max: u64| {
        if r.chance(10) {
            0
        } else {
            r.range(1, max) as usize
        }
    };
    if with_kernel {
        let klen = length(&mut r, 8192);
        let kernel = r.bytes(klen);
        args.push(opt("-k", "--kernel"));
        args.push(write_file(&dir, "kernel", &kernel));
        let _ = write!(summary, " kernel={klen}B");
        if r.chance(50) {
            let ilen = length(&mut r, 16384);
            let initrd = r.bytes(ilen);
            args.push(opt("-r", "--initrd"));
            args.push(write_file(&dir, "initrd", &initrd));
            let _ = write!(summary, " initrd={ilen}B");
        }
        if r.chance(60) {
            let c = random_cmdline(&mut r);
            // `--cmdline=VALUE`: the value may start with '-' or be empty.
            args.push(format!("--cmdline={c}"));
            let _ = write!(summary, " cmdline={c:?}");
        }
    }

    if es {
        let n = if r.chance(25) { 1 } else { r.range(1, 64) };
        args.push(opt("-n", "--num-cpus"));
        args.push(n.to_string());
        let _ = write!(summary, " vcpus={n}");
        if sku {
            // Zen (EPYC Naples/Rome), Zen 3/4 (Milan/Genoa), Zen 5 (Turin), or anything the
            // signature can encode (extended family up to 0xFF).
            let family = if r.chance(25) {
                r.range(0, 270)
            } else {
                r.pick(&[23u64, 25, 26])
            };
            let model = r.range(0, 255);
            let stepping = r.range(0, 15);
            args.extend([
                "--cpu-family".into(),
                family.to_string(),
                "--cpu-model".into(),
                model.to_string(),
                "--cpu-stepping".into(),
                stepping.to_string(),
            ]);
            let _ = write!(summary, " sku={family}/{model}/{stepping}");
        } else {
            args.push(opt("-0", "--vmsa-cpu0"));
            args.push(write_file(&dir, "vmsa0", &r.bytes(4096)));
            if n > 1 || r.chance(50) {
                args.push(opt("-1", "--vmsa-cpu1"));
                args.push(write_file(&dir, "vmsa1", &r.bytes(4096)));
                summary.push_str(" vmsa=-0,-1");
            } else {
                summary.push_str(" vmsa=-0");
                // PY_DUMMY_AP_VMSA: the Python tool computes `vmsa_cpu1 * (num_cpus - 1)` even
                // for one vCPU and so crashes (exit 6, "unsupported operand type(s) for *:
                // 'NoneType' and 'int'") without -1. With one vCPU the AP page is not measured,
                // so the oracle gets an arbitrary -1 that cannot change its result; ours gets
                // only -0, which a drop-in must accept.
                py_extra.push("--vmsa-cpu1".into());
                py_extra.push(write_file(&dir, "vmsa1-python-only", &r.bytes(4096)));
            }
        }
    } else if r.chance(20) {
        // Ignored for SEV by both tools; scripts pass it anyway.
        let n = r.range(1, 64);
        args.push(opt("-n", "--num-cpus"));
        args.push(n.to_string());
        let _ = write!(summary, " vcpus={n}(ignored)");
    }

    if r.chance(50) {
        // --tk: TEK first, then TIK.
        args.push("--tk".into());
        args.push(write_file(&dir, "tk", &r.bytes(32)));
        summary.push_str(" keys=--tk");
    } else {
        args.push("--tik".into());
        args.push(write_file(&dir, "tik", &r.bytes(16)));
        args.push("--tek".into());
        args.push(write_file(&dir, "tek", &r.bytes(16)));
        summary.push_str(" keys=--tik/--tek");
    }

    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&r.bytes(16));
    let measure_bit = r.below(256) as usize;
    let nonce_bit = if r.chance(35) {
        Some(r.below(128) as usize)
    } else {
        None
    };
    Case {
        idx,
        summary,
        args,
        py_extra,
        short_opts: short,
        nonce,
        measure_bit,
        nonce_bit,
    }
}

fn flip(blob: &[u8; 48], byte_bit: usize) -> [u8; 48] {
    let mut b = *blob;
    b[byte_bit / 8] ^= 1 << (byte_bit % 8);
    b
}

/// Runs both tools on one blob and returns a failure report unless both exit `want`.
fn check_both(
    label: &str,
    short: bool,
    blob: &[u8; 48],
    args: &[String],
    py_extra: &[String],
    want: i32,
) -> Option<String> {
    let a = with_measurement(short, blob, args);
    let pa = [&a[..], py_extra].concat();
    let py = run_python(&pa);
    let ours = run_ours(&a);
    let ok_line = |r: &Run| want != 0 || r.stdout.contains("OK: Looks good to me");
    if py.code == Some(want) && ours.code == Some(want) && ok_line(&py) && ok_line(&ours) {
        return None;
    }
    let mut s = format!(
        "{label}: want exit {want}{} from both, python exit {:?}, ours exit {:?}\n",
        if want == 0 {
            " and `OK: Looks good to me`"
        } else {
            ""
        },
        py.code,
        ours.code
    );
    if want == 0 {
        let _ = writeln!(
            s,
            "`OK: Looks good to me` on stdout: python {}, ours {}",
            ok_line(&py),
            ok_line(&ours)
        );
    }
    s.push_str(&py.describe("python"));
    s.push_str(&ours.describe("ours"));
    // Debug traces of both, to see where they part.
    let debug = |v: &[String]| [&["--debug".to_string()][..], v].concat();
    s.push_str(&run_python(&debug(&pa)).describe("python --debug"));
    s.push_str(&run_ours(&debug(&a)).describe("ours --debug"));
    Some(s)
}

/// Checks one case; returns failure reports.
fn check_case(c: &Case) -> Vec<String> {
    let head = format!("case {} [{}]", c.idx, c.summary);
    let py_args = [&c.args[..], &c.py_extra[..]].concat();
    let measure = match python_expected_measure(&py_args, c.short_opts, &c.nonce) {
        Ok(m) => m,
        Err(e) => return vec![format!("{head}: {e}")],
    };
    let mut right = [0u8; 48];
    right[..32].copy_from_slice(&measure);
    right[32..].copy_from_slice(&c.nonce);

    let mut fails = Vec::new();
    let mut check = |label: String, blob: &[u8; 48], want: i32| {
        if let Some(f) = check_both(&label, c.short_opts, blob, &c.args, &c.py_extra, want) {
            fails.push(format!("{head}: {f}"));
        }
    };
    check("right measurement".into(), &right, 0);
    check(
        format!("MEASURE bit {} flipped", c.measure_bit),
        &flip(&right, c.measure_bit),
        1,
    );
    if let Some(bit) = c.nonce_bit {
        check(
            format!("nonce bit {bit} flipped"),
            &flip(&right, 256 + bit),
            1,
        );
    }
    fails
}

fn report_failures(fails: &[String], what: &str) {
    if fails.is_empty() {
        return;
    }
    for f in fails.iter().take(8) {
        eprintln!("\n==== DISAGREEMENT ====\n{f}");
    }
    if fails.len() > 8 {
        eprintln!("\n... and {} more", fails.len() - 8);
    }
    panic!(
        "{} failure(s) in {what} (see the reports above)",
        fails.len()
    );
}

#[test]
fn random_cases_agree_with_python() {
    let Some(images) = prerequisites() else {
        return;
    };
    let seed = env_u64("DIFF_SEED").unwrap_or(DEFAULT_SEED);
    let n_cases = env_u64("DIFF_CASES")
        .map(|n| n as usize)
        .unwrap_or(DEFAULT_CASES);
    let only = env_u64("DIFF_CASE").map(|n| n as usize);
    let threads = env_u64("DIFF_THREADS")
        .map(|n| n.max(1) as usize)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(1, 4)
        });
    eprintln!(
        "differential_python: seed {seed:#x} (DIFF_SEED), {n_cases} cases (DIFF_CASES){}, \
         {threads} threads, images: {}",
        only.map(|i| format!(", only case {i} (DIFF_CASE)"))
            .unwrap_or_default(),
        images
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let t0 = Instant::now();
    let tmp = tempfile::TempDir::new().unwrap();
    let firmware = prepare_firmware(&images, tmp.path());
    let cases: Vec<Case> = (0..n_cases)
        .filter(|i| only.is_none_or(|o| o == *i))
        .map(|i| gen_case(i, seed, &firmware, tmp.path()))
        .collect();
    assert!(!cases.is_empty(), "no cases selected");

    let fails = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.min(cases.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(c) = cases.get(i) else { break };
                let f = check_case(c);
                let status = if f.is_empty() { "ok" } else { "DISAGREE" };
                eprintln!("case {:3} {status:8} {}", c.idx, c.summary);
                fails.lock().unwrap().extend(f);
            });
        }
    });
    let mut fails = fails.into_inner().unwrap();
    fails.sort();

    let es = cases
        .iter()
        .filter(|c| c.summary.starts_with("SEV-ES"))
        .count();
    let kern = cases
        .iter()
        .filter(|c| c.summary.contains(" kernel="))
        .count();
    let nonce = cases.iter().filter(|c| c.nonce_bit.is_some()).count();
    eprintln!(
        "differential_python: {} cases ({es} SEV-ES, {} SEV; {kern} with a kernel; {nonce} with a \
         nonce flip) in {:.1}s, seed {seed:#x}",
        cases.len(),
        cases.len() - es,
        t0.elapsed().as_secs_f64()
    );
    report_failures(
        &fails,
        &format!("random differential cases (seed {seed:#x})"),
    );
}

/// Intended difference: with `--kernel` and a firmware whose kernel-hashes area is zero (as in
/// Debian's images), QEMU cannot do measured direct boot and our tool refuses (exit 2); the
/// Python tool does not check.
#[test]
fn unpatched_debian_firmware_refuses_kernel() {
    let Some(images) = prerequisites() else {
        return;
    };
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path();
    let kernel = write_file(dir, "kernel", b"not really a bzImage");
    let tik = write_file(dir, "tik", &[0x11; 16]);
    let tek = write_file(dir, "tek", &[0x22; 16]);
    let mut fails = Vec::new();
    for fw in &images {
        let args: Vec<String> = [
            "--api-major",
            "1",
            "--api-minor",
            "40",
            "--build-id",
            "40",
            "--policy",
            "1",
            "--firmware",
            fw.to_str().unwrap(),
            "--kernel",
            &kernel,
            "--cmdline=console=ttyS0",
            "--tik",
            &tik,
            "--tek",
            &tek,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let nonce = [0x5a; 16];
        // Use the Python tool's own value, so a refusal cannot be a plain mismatch.
        let measure = match python_expected_measure(&args, false, &nonce) {
            Ok(m) => m,
            Err(e) => {
                fails.push(format!("{}: {e}", fw.display()));
                continue;
            }
        };
        let mut blob = measure.to_vec();
        blob.extend_from_slice(&nonce);
        let a = with_measurement(false, &blob, &args);
        let ours = run_ours(&a);
        let err = ours.stderr.to_ascii_lowercase();
        let mentions = err.contains("kernel hash") || err.contains("7255371f");
        if ours.code != Some(2) || !mentions {
            fails.push(format!(
                "{}: want our tool to exit 2 mentioning the kernel hashes area\n{}",
                fw.display(),
                ours.describe("ours")
            ));
        }
        let py = run_python(&a);
        eprintln!(
            "{}: unpatched + --kernel: ours exit {:?} (refused), python exit {:?} (does not check)",
            fw.display(),
            ours.code,
            py.code
        );
    }
    report_failures(&fails, "unpatched-firmware kernel checks");
}

/// Fixed cases: the sevctl LAUNCH_MEASURE vectors (measurement.md §8.3), if the shared vectors
/// folder is there. Both tools must accept the published blob and reject flipped bits, and the
/// Python tool must compute the published MEASURE.
#[test]
fn sevctl_vectors_agree_with_python() {
    if let Some(problem) = python_tool_problem() {
        skip_or_fail(&problem);
        return;
    }
    let Some(vdir) = skip::vectors_dir("sevctl_vectors_agree_with_python") else {
        return;
    };
    let v = Sevctl::new(&vdir);
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "sevctl: firmware only",
            v.sev().opt("-f", v.firmware()).args(v.keys()).vec(),
            "oMDewIouJSpbpNRHj7Mk3p08H2dPZQdsZMU14qIymBnDE/q1EcIWsVBbGy6pkDxA",
        ),
        (
            "sevctl: firmware + kernel + initrd + cmdline",
            v.sev_kernel().vec(),
            sevctl::SEV_KERNEL_MEASUREMENT,
        ),
        (
            "sevctl: SEV-ES, 4 vCPUs, vmsa0 + 3 x vmsa1",
            v.sev_es()
                .opt("-n", 4)
                .opt("-0", v.file("vmsa0.bin"))
                .opt("-1", v.file("vmsa1.bin"))
                .vec(),
            sevctl::SEV_ES_MEASUREMENT,
        ),
    ];

    let mut fails = Vec::new();
    for (name, args, expected_b64) in &cases {
        let blob: [u8; 48] = base64::engine::general_purpose::STANDARD
            .decode(expected_b64)
            .unwrap()
            .try_into()
            .unwrap();
        let nonce: [u8; 16] = blob[32..].try_into().unwrap();
        match python_expected_measure(args, false, &nonce) {
            Ok(m) if m[..] == blob[..32] => {}
            Ok(m) => fails.push(format!(
                "{name}: the Python tool computes MEASURE {} but sevctl publishes {}",
                hex::encode(m),
                hex::encode(&blob[..32])
            )),
            Err(e) => fails.push(format!("{name}: {e}")),
        }
        for (label, b, want) in [
            ("published blob", blob, 0),
            ("MEASURE bit 0 flipped", flip(&blob, 0), 1),
            ("MEASURE bit 255 flipped", flip(&blob, 255), 1),
            ("nonce bit 64 flipped", flip(&blob, 256 + 64), 1),
        ] {
            if let Some(fl) = check_both(label, false, &b, args, &[], want) {
                fails.push(format!("{name}: {fl}"));
            }
        }
        eprintln!("{name}: checked");
    }
    report_failures(&fails, "sevctl fixed cases");
}

#[test]
fn footer_patch_walks_the_table() {
    // A synthetic footer: [hash-area entry][reset-block entry][footer], checked without
    // needing any installed image.
    let mut fw = vec![0xAAu8; 64];
    let entry = |data: &[u8], guid: [u8; 16], fw: &mut Vec<u8>| {
        fw.extend_from_slice(data);
        fw.extend_from_slice(&((data.len() + 18) as u16).to_le_bytes());
        fw.extend_from_slice(&guid);
    };
    entry(&[0u8; 8], HASH_AREA_GUID_LE, &mut fw);
    entry(&0x80B004u32.to_le_bytes(), [0x11; 16], &mut fw);
    let table_len = (8 + 18) + (4 + 18) + 18;
    fw.extend_from_slice(&(table_len as u16).to_le_bytes());
    fw.extend_from_slice(&FOOTER_GUID_LE);
    fw.extend_from_slice(&[0u8; 32]);
    patch_kernel_hash_area(&mut fw, PATCHED_HASH_BASE, PATCHED_HASH_SIZE).unwrap();
    assert_eq!(&fw[64..68], &PATCHED_HASH_BASE.to_le_bytes());
    assert_eq!(&fw[68..72], &PATCHED_HASH_SIZE.to_le_bytes());
    assert_eq!(&fw[..64], &[0xAA; 64][..]);

    let mut no_entry = fw.clone();
    no_entry[72 + 2..72 + 18].copy_from_slice(&[0x22; 16]);
    assert!(patch_kernel_hash_area(&mut no_entry, 1, 0x400).is_err());
}
