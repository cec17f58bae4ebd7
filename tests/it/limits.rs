//! The limits on inputs, through the binary: each oversized input is refused
//! with exit code 2 and a message that says which limit, before the tool
//! reads more of it than the limit. The boundary values themselves are
//! accepted.
//!
//! Not repeated here: 0 and 513 vCPUs (cli_usage.rs) and a secret
//! table over the AmdSev-like firmware's 3 KiB area with a measurement from
//! the simulator (secrets.rs).

use crate::common;

use common::{with, Args, Files, Tool};

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::{Duration, Instant};

use sev_validate::core::measurement::Measurement;
use sev_validate::source::xml::{Capabilities, Domain, MAX_XML_LEN};
use sev_validate::ExitCode;

const MIB: u64 = 1024 * 1024;
const TIK: [u8; 16] = [0x11; 16];

/// The owner's TIK and TEK in a folder of their own.
fn owner_files() -> Files {
    let f = Files::new();
    f.write("tik", TIK);
    f.write("tek", [0x22; 16]);
    f
}

/// A sparse file of `len` bytes: no disk space, and reading it would
/// take as long as its size says.
fn sparse(f: &Files, name: &str, len: u64) -> Option<String> {
    let file = File::create(f.p(name)).unwrap();
    match file.set_len(len) {
        Ok(()) => Some(f.p(name)),
        Err(e) => {
            eprintln!("SKIPPED: a sparse file of {len} bytes: {e}");
            None
        }
    }
}

/// An offline SEV (policy 1) command line for `firmware`, with the
/// measurement the SEV firmware would report for it when `right` (from
/// the simulated Secure Processor, tests/sim/sev_sp.py), else one that
/// does not match.
fn args(f: &Files, firmware: &str, right: bool) -> Vec<String> {
    args_for(f, firmware, 1, right.then_some(&[][..]))
}

/// An offline command line with `policy`; with `sim`, the measurement
/// the simulated Secure Processor reports for this launch given those
/// extra arguments (VMSAs, vCPU count), else an all-zero MEASURE.
fn args_for(f: &Files, firmware: &str, policy: u32, sim: Option<&[&str]>) -> Vec<String> {
    let nonce = [0x4e; 16];
    let launch = Args::new()
        .platform(1, 49, 6, policy)
        .opt("--firmware", firmware);
    let m = match sim {
        None => Measurement {
            measure: [0; 32],
            mnonce: nonce,
        }
        .to_base64(),
        Some(extra) => {
            let sim = launch.clone().opt("--tik", f.p("tik"));
            common::sev_measure(sim.opt("--nonce-hex", "4e".repeat(16)).args(extra))
                .expect("the simulated Secure Processor (python3-cryptography) is needed")
        }
    };
    let owner = launch.opt("--measurement", m);
    owner.keys(f.p("tik"), f.p("tek")).vec()
}

/// `args`, the secret packet written to `hdr` and `payload` in `f`.
fn to_files(f: &Files, args: Vec<String>) -> Vec<String> {
    let files = Args::new()
        .opt("--secret-header", f.p("hdr"))
        .opt("--secret-payload", f.p("payload"));
    [args, files.vec()].concat()
}

/// Runs the tool; checks the exit code, that stderr has `needle` and no
/// panic, and that it finished within `within`. Returns stderr.
#[track_caller]
fn expect(args: &[String], code: i32, needle: &str, within: Duration) -> String {
    let start = Instant::now();
    let run = Tool::new().args(args).run();
    let took = start.elapsed();
    let err = run.expect_code(code).stderr;
    assert!(
        err.contains(needle),
        "stderr should contain {needle:?}, got: {err}"
    );
    assert!(took < within, "took {took:?}, more than {within:?}");
    err
}

const QUICK: Duration = Duration::from_secs(10);

#[test]
fn firmware_over_64_mib_is_refused_before_it_is_read() {
    let f = owner_files();
    let Some(fw) = sparse(&f, "big.fd", 64 * MIB + 1) else {
        return;
    };
    let err = expect(
        &args(&f, &fw, false),
        2,
        "is 67108865 bytes; no OVMF image is larger than 67108864 bytes, so this is not a firmware image",
        QUICK,
    );
    assert!(err.contains("big.fd"), "{err}");
    // A terabyte: reading it would take hours, so a quick answer shows
    // that the size alone decided.
    if let Some(huge) = sparse(&f, "huge.fd", 1 << 40) {
        expect(
            &args(&f, &huge, false),
            2,
            "is 1099511627776 bytes; no OVMF image is larger",
            QUICK,
        );
    }
}

#[test]
fn firmware_of_exactly_64_mib_is_measured() {
    let f = owner_files();
    let Some(fw) = sparse(&f, "max.fd", 64 * MIB) else {
        return;
    };
    // Read and hashed in full: the wrong measurement is found, not a limit.
    expect(
        &args(&f, &fw, false),
        1,
        "does not match",
        Duration::from_secs(120),
    );
}

#[test]
fn vcpu_counts_up_to_512_are_measured_and_no_count_overflows() {
    let f = owner_files();
    let fw = common::amdsev_like_firmware();
    fs::write(f.p("fw.fd"), &fw).unwrap();
    fs::write(f.p("vmsa0"), [0xb0; 4096]).unwrap();
    fs::write(f.p("vmsa1"), [0xa1; 4096]).unwrap();
    let vmsas = ["-0", &f.p("vmsa0"), "-1", &f.p("vmsa1")];
    // 512 vCPUs, the most measured, as the simulated firmware measures them.
    let es = with(
        &args_for(
            &f,
            &f.p("fw.fd"),
            5,
            Some(&[
                "--num-cpus",
                "512",
                "--vmsa-bsp",
                &f.p("vmsa0"),
                "--vmsa-ap",
                &f.p("vmsa1"),
            ]),
        ),
        &vmsas,
    );
    let (code, out, err) = common::run(with(&es, &["-n", "512"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Looks good to me"), "{out}");
    // The largest u32 is refused as a count, without arithmetic on it.
    expect(
        &with(&es, &["-n", "4294967295"]),
        2,
        "between 1 and 512, not 4294967295",
        QUICK,
    );
    // Past u32: the option parser refuses them.
    for n in ["4294967296", "0x100000000", "18446744073709551616"] {
        expect(&with(&es, &["-n", n]), 2, "--num-cpus", QUICK);
    }
}

/// A firmware whose OVMF footer names a secret area of `size` bytes.
fn firmware_with_secret_area(size: u32) -> Vec<u8> {
    let area = [0x80F000u32.to_le_bytes(), size.to_le_bytes()].concat();
    common::firmware_with(&[(common::SECRET_AREA, area)], 8192)
}

#[test]
fn secrets_must_fit_the_secret_area_of_the_firmware_given() {
    let f = owner_files();
    let fw = f.p("fw64.fd");
    fs::write(&fw, firmware_with_secret_area(64)).unwrap();
    let args = to_files(&f, args(&f, &fw, true));
    // 20-byte table header + 20-byte entry header + 24 bytes = 64: fits exactly.
    fs::write(f.p("s24"), [b'x'; 24]).unwrap();
    let ok = with(&args, &["-s", &format!("luks-key:{}", f.p("s24"))]);
    let (code, _, err) = common::run(&ok);
    assert_eq!(code, 0, "{err}");
    assert!(Path::new(&f.p("payload")).exists());
    fs::remove_file(f.p("hdr")).unwrap();
    fs::remove_file(f.p("payload")).unwrap();
    // One byte more pads to 80 bytes: refused, and nothing is written.
    fs::write(f.p("s25"), [b'x'; 25]).unwrap();
    let big = with(&args, &["-s", &format!("luks-key:{}", f.p("s25"))]);
    expect(
        &big,
        2,
        "the secret table is 80 bytes, larger than the 64 bytes the firmware's secret area holds",
        QUICK,
    );
    // Two secrets that fit one by one but not together.
    let two = with(
        &ok,
        &[
            "-s",
            &format!("00000000-0000-0000-0000-000000000001:{}", f.p("s24")),
        ],
    );
    expect(
        &two,
        2,
        "the secret table is 112 bytes, larger than the 64",
        QUICK,
    );
    assert!(!Path::new(&f.p("hdr")).exists() && !Path::new(&f.p("payload")).exists());
}

#[test]
fn without_a_secret_area_the_table_is_limited_to_16_kib() {
    let f = owner_files();
    let fw = f.p("noarea.fd");
    fs::write(&fw, common::firmware_with(&[], 8192)).unwrap();
    let args = to_files(&f, args(&f, &fw, true));
    fs::write(f.p("fits"), vec![1u8; 16 * 1024 - 40]).unwrap();
    let (code, _, err) = common::run(with(&args, &["-s", &format!("luks-key:{}", f.p("fits"))]));
    assert_eq!(code, 0, "{err}");
    fs::write(f.p("over"), vec![1u8; 16 * 1024 - 39]).unwrap();
    expect(
        &with(&args, &["-s", &format!("luks-key:{}", f.p("over"))]),
        2,
        "larger than the 16384 bytes",
        QUICK,
    );
    // A secret file of a terabyte is refused from its size, before reading.
    if let Some(huge) = sparse(&f, "huge-secret", 1 << 40) {
        expect(
            &with(&args, &["-s", &format!("luks-key:{huge}")]),
            2,
            "is 1099511627776 bytes, more than the 16384 bytes",
            QUICK,
        );
    }
}

#[test]
fn xml_over_4_mib_is_refused_before_parsing() {
    let pad = |n: usize| format!("<domain>{}</domain>", " ".repeat(n - 17));
    let over = pad(MAX_XML_LEN + 1);
    assert_eq!(over.len(), MAX_XML_LEN + 1);
    let e = Domain::parse(&over).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::UnsupportedUsage);
    assert_eq!(e.exit_code() as i32, 2);
    assert_eq!(
        e.to_string(),
        "the domain XML is 4194305 bytes, more than the 4194304 bytes any real one has"
    );
    let e = Capabilities::parse(&over).unwrap_err();
    assert_eq!(e.exit_code() as i32, 2);
    assert!(
        e.to_string()
            .starts_with("the capabilities XML is 4194305 bytes"),
        "{e}"
    );
    // Exactly 4 MiB is parsed.
    let max = pad(MAX_XML_LEN);
    assert_eq!(max.len(), MAX_XML_LEN);
    assert!(Domain::parse(&max).is_ok());
    // Deep nesting within the limit is parsed without recursion.
    let depth = (MAX_XML_LEN - 100) / 7;
    let deep = format!(
        "<domain>{}{}</domain>",
        "<x>".repeat(depth),
        "</x>".repeat(depth)
    );
    assert!(Domain::parse(&deep).is_ok());
}

#[test]
fn qmp_line_over_1_mib_is_refused() {
    let f = owner_files();
    let fw = f.p("fw.fd");
    fs::write(&fw, common::amdsev_like_firmware()).unwrap();
    fs::write(f.p("tk"), [3u8; 32]).unwrap();
    let sock = f.p("babble.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let _ = s.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        // An answer that never ends: 4 MiB without a newline.
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..64 {
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let args: Vec<String> = [
        "--qmp",
        &sock,
        "--firmware",
        &fw,
        "--tk",
        &f.p("tk"),
        "--insecure",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A broken QMP peer: exit 9.
    expect(&args, 9, "sent a line over 1048576 bytes", QUICK);
}

/// A secret file larger than 16 KiB is read only up to 16 KiB + 1 bytes.
/// When the firmware's secret area is larger than that, the truncated secret
/// still fits and was injected with exit 0: a 20,000-byte secret went in as
/// 16,385 bytes. It must be refused instead (or read whole).
#[test]
fn a_secret_is_never_truncated() {
    let f = owner_files();
    let fw = f.p("fw64k.fd");
    fs::write(&fw, firmware_with_secret_area(0x10000)).unwrap();
    fs::write(f.p("s20000"), vec![b'A'; 20_000]).unwrap();
    let args = with(
        &to_files(&f, args(&f, &fw, true)),
        &["-s", &format!("luks-key:{}", f.p("s20000"))],
    );
    let (code, out, err) = common::run(&args);
    assert!(!err.contains("panicked"), "{err}");
    if code == 0 {
        // Injected: then all 20,000 bytes must be in the table (20 + 20 +
        // 20,000 bytes, padded to 20,048).
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(fs::read(f.p("payload")).unwrap())
            .unwrap();
        assert_eq!(payload.len(), 20_048, "the secret was truncated: {out}");
    } else {
        assert_eq!(code, 2, "{out}{err}");
        assert!(!Path::new(&f.p("payload")).exists());
    }
}
