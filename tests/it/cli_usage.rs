//! Every usage check and exit code of the offline command line, and every
//! kind of bad input: each gets its exit code and a message that names the
//! problem, and nothing panics.

use crate::common;

use common::{with, without, Args, Files, MILAN};

/// The owner's files ([`Files`]) and a complete command line for them.
struct Fixture(Files);

impl std::ops::Deref for Fixture {
    type Target = Files;
    fn deref(&self) -> &Files {
        &self.0
    }
}

impl Fixture {
    fn new() -> Fixture {
        let f = Files::new();
        f.write("fw.fd", common::amdsev_like_firmware());
        f.write("tik.bin", [0x11; 16]);
        f.write("tek.bin", [0x22; 16]);
        f.write("tk.bin", [0x33; 32]);
        f.write("kernel", b"kernel image");
        f.write("vmsa0", [0; 4096]);
        f.write("vmsa1", [1; 4096]);
        f.write("secret", b"disk passphrase");
        Fixture(f)
    }

    /// A complete offline SEV command line (48-byte measurement, not the right one).
    fn base(&self) -> Vec<String> {
        Args::new()
            .opt("--measurement", "A".repeat(64))
            .platform(1, 49, 6, 1)
            .opt("--firmware", self.p("fw.fd"))
            .keys(self.p("tik.bin"), self.p("tek.bin"))
            .vec()
    }
}

#[test]
fn wrong_measurement_is_exit_1() {
    let f = Fixture::new();
    common::expect(
        &f.base(),
        1,
        "ERROR: Measurement does not match, VM is not trustworthy",
    );
}

#[test]
fn key_option_checks() {
    let f = Fixture::new();
    let b = f.base();
    common::expect(
        &with(&b, &["--tk", &f.p("tk.bin")]),
        2,
        "--tk is mutually exclusive with --tek/--tik",
    );
    common::expect(
        &without(&b, "--tik"),
        2,
        "Either --tk or both of --tek/--tik are required",
    );
    common::expect(
        &without(&b, "--tek"),
        2,
        "Either --tk or both of --tek/--tik are required",
    );
    // --tk alone is fine (reaches the measurement comparison).
    let tk = with(
        &without(&without(&b, "--tik"), "--tek"),
        &["--tk", &f.p("tk.bin")],
    );
    common::expect(&tk, 1, "does not match");
}

#[test]
fn launch_state_and_firmware_are_required_offline() {
    let f = Fixture::new();
    let b = f.base();
    for opt in [
        "--measurement",
        "--api-major",
        "--api-minor",
        "--build-id",
        "--policy",
        "--firmware",
    ] {
        common::expect(
            &without(&b, opt),
            2,
            &format!("Either {opt} or --domain is required"),
        );
    }
    let s = with(
        &b,
        &["--inject-secret", &format!("luks-key:{}", f.p("secret"))],
    );
    common::expect(&s, 2, "Either --secret-header or --domain is required");
    common::expect(
        &with(&s, &["--secret-header", &f.p("h")]),
        2,
        "Either --secret-payload or --domain is required",
    );
}

#[test]
fn option_combinations() {
    let f = Fixture::new();
    let b = f.base();
    common::expect(
        &with(&b, &["--initrd", &f.p("kernel")]),
        2,
        "--initrd/--cmdline require --kernel",
    );
    common::expect(
        &with(&b, &["--cmdline", "x"]),
        2,
        "--initrd/--cmdline require --kernel",
    );
    common::expect(
        &with(&b, &["--vmsa-cpu1", &f.p("vmsa1")]),
        2,
        "VMSA for additional CPU also requires VMSA for boot CPU",
    );
    common::expect(
        &with(&b, &[&["--vmsa-cpu0", &f.p("vmsa0")][..], &MILAN].concat()),
        2,
        "VMSA files are mutually exclusive with CPU SKU",
    );
    common::expect(
        &with(&b, &["--cpu-family", "25", "--cpu-model", "1"]),
        2,
        "CPU SKU needs family, model and stepping",
    );
    common::expect(
        &with(&b, &["--secret-header", &f.p("h")]),
        2,
        "Both --secret-payload and --secret-header are required",
    );
    common::expect(
        &with(&b, &["--secret-payload", &f.p("p")]),
        2,
        "Both --secret-payload and --secret-header are required",
    );
    common::expect(
        &with(&b, &["--show-keys"]),
        2,
        "--show-keys only makes sense with --debug",
    );
}

#[test]
fn measurement_must_be_48_bytes_of_base64() {
    let f = Fixture::new();
    let b = without(&f.base(), "--measurement");
    common::expect(
        &with(&b, &["--measurement", "not*base64"]),
        2,
        "is not valid base64",
    );
    common::expect(
        &with(&b, &["--measurement", "AAAA"]),
        2,
        "decodes to 3 bytes",
    );
    common::expect(
        &with(&b, &["--measurement", &"A".repeat(68)]),
        2,
        "decodes to 51 bytes",
    );
}

#[test]
fn integers_out_of_range_are_usage_errors() {
    let f = Fixture::new();
    let b = f.base();
    for (opt, bad) in [
        ("--api-major", "256"),
        ("--build-id", "1000"),
        ("--policy", "4294967296"),
        ("--policy", "0x1ffffffff"),
        ("--policy", "one"),
    ] {
        common::expect(&with(&without(&b, opt), &[opt, bad]), 2, "invalid value");
    }
    // A negative value (given with '=' so it is not read as the -1 option).
    common::expect(
        &with(&without(&b, "--api-minor"), &["--api-minor=-1"]),
        2,
        "is not a non-negative integer",
    );
    // Hex is accepted for the policy.
    common::expect(
        &with(&without(&b, "--policy"), &["--policy", "0x1"]),
        1,
        "does not match",
    );
}

#[test]
fn unreadable_and_malformed_files() {
    let f = Fixture::new();
    let b = f.base();
    let swap = |opt: &str, v: &str| with(&without(&b, opt), &[opt, v]);
    common::expect(
        &swap("--firmware", &f.p("missing.fd")),
        2,
        "cannot read firmware",
    );
    common::expect(&swap("--firmware", &f.p("missing.fd")), 2, "no such file");
    common::expect(
        &swap("--firmware", f.path().to_str().unwrap()),
        2,
        "is a directory",
    );
    common::expect(&swap("--tik", &f.p("missing")), 2, "cannot read TIK file");
    common::expect(
        &swap("--tik", f.path().to_str().unwrap()),
        2,
        "is a directory",
    );
    common::expect(
        &swap("--tik", &f.write("empty", b"")),
        2,
        "must be exactly 16 bytes, but it is 0 bytes",
    );
    common::expect(&swap("--tek", &f.write("tek17", [0; 17])), 2, "TEK file");
    let tk = with(
        &without(&without(&b, "--tik"), "--tek"),
        &["--tk", &f.write("tk31", [0; 31])],
    );
    common::expect(&tk, 2, "must be exactly 32 bytes");
    common::expect(
        &swap("--firmware", &f.write("empty.fd", b"")),
        2,
        "is empty",
    );
    common::expect(
        &with(&b, &["--kernel", &f.p("nokernel")]),
        2,
        "cannot read kernel",
    );
    common::expect(
        &with(
            &b,
            &["--kernel", &f.p("kernel"), "--initrd", &f.p("noinitrd")],
        ),
        2,
        "cannot read initrd",
    );
}

#[test]
fn corrupt_footer_table() {
    let f = Fixture::new();
    let mut fw = common::amdsev_like_firmware();
    let n = fw.len();
    // Claim a table longer than the image.
    fw[n - 50..n - 48].copy_from_slice(&0xFFF0u16.to_le_bytes());
    let bad = f.write("bad-len.fd", &fw);
    common::expect(
        &with(&without(&f.base(), "--firmware"), &["--firmware", &bad]),
        2,
        "OVMF footer table length",
    );
    // An entry whose length is zero.
    let mut fw = common::amdsev_like_firmware();
    fw[n - 50 - 18..n - 50 - 16].copy_from_slice(&0u16.to_le_bytes());
    let bad = f.write("bad-entry.fd", &fw);
    common::expect(
        &with(&without(&f.base(), "--firmware"), &["--firmware", &bad]),
        2,
        "OVMF footer table is corrupt",
    );
}

#[test]
fn sev_es_needs_cpus_vmsas_and_a_reset_block() {
    let f = Fixture::new();
    let es = with(&without(&f.base(), "--policy"), &["--policy", "5"]);
    common::expect(
        &es,
        2,
        "Number of virtual CPUs must be specified for SEV-ES domain",
    );
    common::expect(
        &with(&es, &["--num-cpus", "2"]),
        2,
        "VMSA for boot CPU required for SEV-ES domain",
    );
    common::expect(
        &with(&es, &["--num-cpus", "2", "-0", &f.p("vmsa0")]),
        2,
        "give --vmsa-cpu1",
    );
    common::expect(
        &with(&es, &["--num-cpus", "0", "-0", &f.p("vmsa0")]),
        2,
        "between 1 and 512",
    );
    common::expect(
        &with(&es, &["--num-cpus", "513", "-0", &f.p("vmsa0")]),
        2,
        "between 1 and 512",
    );
    common::expect(
        &with(
            &es,
            &["--num-cpus", "1", "-0", &f.write("short", [0; 4095])],
        ),
        2,
        "exactly 4096 bytes",
    );
    common::expect(
        &with(&es, &["-n", "2", "-0", &f.p("vmsa0"), "-1", &f.p("vmsa1")]),
        1,
        "does not match",
    );
    let sku = [&["-n", "2"][..], &MILAN].concat();
    common::expect(&with(&es, &sku), 1, "does not match");
    common::expect(
        &with(
            &es,
            &[
                "-n",
                "2",
                "--cpu-family",
                "25",
                "--cpu-model",
                "1",
                "--cpu-stepping",
                "16",
            ],
        ),
        2,
        "stepping 16 is out of range",
    );
    // A firmware without the SEV-ES reset block cannot start SEV-ES APs.
    let no_reset = f.write("no-reset.fd", common::firmware_with(&[], 8192));
    let es_no_reset = with(&without(&es, "--firmware"), &["--firmware", &no_reset]);
    common::expect(&with(&es_no_reset, &sku), 2, "no SEV-ES reset block");
}

#[test]
fn kernel_needs_a_kernel_hashes_area() {
    let f = Fixture::new();
    let area0 = [0u32.to_le_bytes(), 0u32.to_le_bytes()].concat();
    let fw = f.write(
        "ovmfx64.fd",
        common::firmware_with(&[(common::HASH_AREA, area0)], 8192),
    );
    let args = with(
        &without(&f.base(), "--firmware"),
        &["--firmware", &fw, "--kernel", &f.p("kernel")],
    );
    common::expect(&args, 2, "no area for the kernel hashes table");
    let none = f.write("nofooter.fd", [0u8; 8192]);
    let args = with(
        &without(&f.base(), "--firmware"),
        &["--firmware", &none, "--kernel", &f.p("kernel")],
    );
    common::expect(&args, 2, "no area for the kernel hashes table");
}

#[test]
fn secret_specs() {
    let f = Fixture::new();
    let b = with(
        &f.base(),
        &["--secret-header", &f.p("h"), "--secret-payload", &f.p("p")],
    );
    common::expect(
        &with(&b, &["-s", "no-colon"]),
        2,
        "is not ALIAS-OR-GUID:PATH",
    );
    common::expect(
        &with(&b, &["-s", "bogus-alias:/x"]),
        2,
        "secret alias 'bogus-alias' is not known",
    );
    common::expect(&with(&b, &["-s", "luks-key:"]), 2, "names no file");
    common::expect(
        &with(&b, &["-s", &format!("luks-key:{}", f.p("missing"))]),
        2,
        "cannot read secret file",
    );
    // Checked before the measurement, so nothing is computed for a typo.
    let dup = format!("luks-key:{}", f.p("secret"));
    let dup_guid = format!("736869e5-84f0-4973-92ec-06879ce3da0b:{}", f.p("secret"));
    // A duplicate GUID is only found when the table is built, after validation; here
    // the measurement is wrong, so the mismatch comes first.
    common::expect(
        &with(&b, &["-s", &dup, "-s", &dup_guid]),
        1,
        "does not match",
    );
}

#[test]
fn help_and_version() {
    let (code, out, _) = common::run(["--help"]);
    assert_eq!(code, 0);
    for opt in ["--measurement", "--vmsa-cpu0", "--inject-secret", "--tk"] {
        assert!(out.contains(opt), "{opt} missing from --help");
    }
    let (code, out, _) = common::run(["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("virt-qemu-sev-validate "));
    // argparse-style unambiguous prefixes work, as scripts may use them.
    let f = Fixture::new();
    let mut b = without(&f.base(), "--measurement");
    b.extend(["--meas".to_string(), "A".repeat(64)]);
    common::expect(&b, 1, "does not match");
    // Unknown options are usage errors (exit 2), as with argparse.
    common::expect(
        &with(&f.base(), &["--no-such-option"]),
        2,
        "unexpected argument",
    );
}
