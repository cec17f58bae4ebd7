//! SEV-SNP guests through libvirt, locally, on a simulated SNP host: run by `scripts/demo.sh`.
//!
//! It starts the end-to-end harness of the tests (tests/e2e/harness/) on libvirt 11.3 and
//! QEMU 10.0 from bookworm-backports (the chroot `scripts/setup-libvirt11.sh` builds): a REAL
//! libvirtd driving REAL QEMU (TCG) whose emulator, tests/sim/qemu_sev_wrapper.py, answers
//! QMP as QEMU 10.0 does for an SNP guest and plays SNP_LAUNCH_FINISH when the vCPUs first
//! start: it measures what QEMU really got with sev-snp-measure and checks the domain's ID
//! block against it. Then, narrating each step:
//!
//! 1. the owner's ID block, made for 4 vCPUs, sits in a domain of 2: our tool, over
//!    qemu+ssh:// when the harness can run sshd, catches it before the domain ever starts
//!    (exit 1, the change named), and the simulated firmware refuses that launch
//!    ("Bad measurement") when the host starts it anyway;
//! 2. the ID block made for the right launch passes, and the domain starts and runs;
//! 3. a report from the guest, signed by the simulated SNP firmware's test chain
//!    (tests/sim/snp_sp.py) with the values the simulated firmware launched, validates
//!    against the domain with `--report`.
//!
//! With `SNP_DEMO_LAUNCH_OUT=FILE` it writes that launch (the owner's expected digest, the
//! MEASUREMENT and HOST_DATA launched) for scripts/demo-snp-key-release.sh, which follows it.
//!
//! The tool is `$SEV_VALIDATE_BIN`, else target/release/virt-qemu-sev-validate. Needs root,
//! the chroot, and what scripts/setup.sh installs (sev-snp-measure, python3-cryptography).

#[path = "../tests/e2e/harness/mod.rs"]
mod e2e;
#[path = "common/narrate.rs"]
mod narrate;

use narrate::{copy, indent, say, step, write_private};

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use e2e::{Host, Libvirt, Side};

/// The vCPUs the domain has, and the count the wrong ID block was made for.
const VCPUS: u32 = 2;
const WRONG_VCPUS: u32 = 4;
/// EPYC-Milan's family / model / stepping (CPUID signature 0xA00F11): the vCPUs the host
/// promised.
const MILAN_FMS: [&str; 3] = ["25", "1", "1"];
const POLICY: &str = "0x30000";
/// The owner's nonce for REPORT_DATA: "snp-demo-nonce", zero-padded to 64 bytes.
fn nonce() -> String {
    format!("{:0<128}", hex::encode(b"snp-demo-nonce"))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn unb64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("base64 {s:?}: {e}"))
}

/// Runs `cmd` (bounded by the harness's timeout); stdout, or an error with its stderr.
fn output(cmd: &mut Command, what: &str) -> Result<String, String> {
    let (rc, out, err) = e2e::split(&e2e::run_timeout(cmd, e2e::CMD_TIMEOUT));
    if rc != 0 {
        return Err(format!("{what}: exit {rc}: {}", err.trim()));
    }
    Ok(out)
}

/// `tests/sim/snp_sp.py ARGS` with Debian's python3 (python3-cryptography).
fn snp_sp(args: &[&OsStr]) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sim/snp_sp.py");
    output(
        Command::new(e2e::PYTHON).arg(script).args(args),
        "snp_sp.py",
    )
}

/// The guest owner's files, in a private directory of their own.
struct Owner {
    dir: PathBuf,
    firmware: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    id_key: PathBuf,
    author_key: PathBuf,
    host_data: [u8; 32],
}

/// An ID block and ID auth in the base64 forms libvirt takes, and their key digests.
struct IdBlock {
    block: String,
    auth: String,
    id_key_digest: String,
    author_key_digest: String,
}

/// How the owner reaches the host: qemu+ssh:// from another network namespace when the
/// harness can run sshd, else the daemon's own socket on the host (with --insecure).
struct Reach {
    uri: String,
    side: Side,
    remote: bool,
}

/// The owner's `snp-digest` of the launch with `vcpus` vCPUs: the expected launch digest.
fn snp_digest(owner: &Owner, vcpus: u32) -> Result<String, String> {
    let out = output(
        Command::new(e2e::our_validator_path())
            .arg("snp-digest")
            .arg("--ovmf")
            .arg(&owner.firmware)
            .args(["--vcpus", &vcpus.to_string(), "--vcpu-type", "EPYC-Milan"])
            .arg("--kernel")
            .arg(&owner.kernel)
            .arg("--initrd")
            .arg(&owner.initrd)
            .args(["--append", e2e::CMDLINE]),
        "snp-digest",
    )?;
    Ok(out.trim().to_string())
}

/// The owner's `snp-id-block` for `digest`, signed with their ID and author keys.
fn snp_id_block(owner: &Owner, digest: &str) -> Result<IdBlock, String> {
    let out = output(
        Command::new(e2e::our_validator_path())
            .args(["snp-id-block", "--digest", digest, "--policy", POLICY])
            .arg("--id-key")
            .arg(&owner.id_key)
            .arg("--author-key")
            .arg(&owner.author_key),
        "snp-id-block",
    )?;
    let between = |open: &str, close: &str| -> Result<String, String> {
        out.split(open)
            .nth(1)
            .and_then(|r| r.split(close).next())
            .map(|s| s.trim().to_string())
            .ok_or_else(|| format!("snp-id-block printed no {open}: {out}"))
    };
    // snp-id-block prints the key digests in hex.
    let digest_hex = |k: &str| between(k, "\n");
    Ok(IdBlock {
        block: between("<idBlock>", "</idBlock>")?,
        auth: between("<idAuth>", "</idAuth>")?,
        id_key_digest: digest_hex("id_key_digest: ")?,
        author_key_digest: digest_hex("author_key_digest: ")?,
    })
}

/// Defines (does not start) an SNP domain of 2 EPYC-Milan vCPUs with direct kernel boot,
/// kernelHashes='yes', the owner's hostData and the ID block `idb` with authorKey='yes'.
fn define_snp(h: &Host, owner: &Owner, name: &str, idb: &IdBlock) -> Result<String, String> {
    let mut spec = h.spec_snp(name, VCPUS);
    let snp = spec.snp.as_mut().ok_or("spec_snp gave no SNP part")?;
    snp.host_data = Some(b64(&owner.host_data));
    snp.id_block = Some(idb.block.clone());
    snp.id_auth = Some(idb.auth.clone());
    snp.author_key = Some(true);
    h.define(&spec.xml())
}

/// Prints a command line the way a person would type it, one option per line.
fn show_command(program: &str, argv: &[OsString]) {
    println!("   $ {program} \\");
    let mut line = String::new();
    for (i, a) in argv.iter().enumerate() {
        let a = a.to_string_lossy();
        if a.starts_with("--") && !line.is_empty() {
            println!("         {line} \\");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        if a.contains([' ', '&', '?', ';']) {
            line.push_str(&format!("'{a}'"));
        } else {
            line.push_str(&a);
        }
        if i + 1 == argv.len() {
            println!("         {line}");
        }
    }
}

/// Runs our tool as the owner against `domain` and prints what it said.
fn run_tool(h: &Host, reach: &Reach, owner: &Owner, domain: &str, extra: &[OsString]) -> i32 {
    let mut argv: Vec<OsString> = vec![
        "--connect".into(),
        reach.uri.clone().into(),
        "--domain".into(),
        domain.into(),
        "--generation".into(),
        "sev-snp".into(),
    ];
    if !reach.remote {
        argv.push("--insecure".into());
    }
    argv.extend([
        "--firmware".into(),
        owner.firmware.clone().into(),
        "--kernel".into(),
        owner.kernel.clone().into(),
        "--initrd".into(),
        owner.initrd.clone().into(),
        "--cmdline".into(),
        e2e::CMDLINE.into(),
        "--num-cpus".into(),
        VCPUS.to_string().into(),
        "--cpu-family".into(),
        MILAN_FMS[0].into(),
        "--cpu-model".into(),
        MILAN_FMS[1].into(),
        "--cpu-stepping".into(),
        MILAN_FMS[2].into(),
        "--policy".into(),
        POLICY.into(),
        "--trusted-author-key".into(),
        owner.dir.join("author-key.pub.pem").into(),
    ]);
    argv.extend(extra.iter().cloned());
    show_command("virt-qemu-sev-validate", &argv);
    let t0 = Instant::now();
    let args: Vec<&OsStr> = argv.iter().map(|s| s.as_os_str()).collect();
    let (rc, out, err) = h.our_validator(reach.side, &args);
    println!(
        "   Our tool's output (exit status {rc}, {:.1} s):",
        t0.elapsed().as_secs_f64()
    );
    indent(&out, "| ");
    indent(&err, "| ");
    rc
}

/// `virsh start --paused NAME`.
fn start_paused(h: &Host, name: &str) -> Result<(), String> {
    let (rc, out, err) = h.virsh(&["start", "--paused", name]);
    if rc != 0 {
        return Err(format!(
            "virsh start --paused {name}: exit {rc}: {}{}\n{}",
            err.trim(),
            out.trim(),
            h.tail_logs()
        ));
    }
    Ok(())
}

/// Waits until libvirt has seen the domain's QEMU go (after a refused launch).
fn wait_shut_off(h: &Host, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = h.state(name);
        if s == "shut off" || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn demo(h: &Host, owner_dir: &Path) -> Result<(), String> {
    // ------------------------------------------------------------------ 2. the owner's files
    step(2, "the guest owner prepares their files and keys");
    let owner = Owner {
        dir: owner_dir.to_path_buf(),
        firmware: owner_dir.join("OVMF-snp.fd"),
        kernel: owner_dir.join("vmlinuz"),
        initrd: owner_dir.join("initrd.img"),
        id_key: owner_dir.join("id-key.pem"),
        author_key: owner_dir.join("author-key.pem"),
        host_data: *b"demo: this guest's disk is 0042\0",
    };
    copy(h.firmware_snp(), &owner.firmware)?;
    copy(h.kernel(), &owner.kernel)?;
    copy(h.initrd(), &owner.initrd)?;
    for key in [&owner.id_key, &owner.author_key] {
        let pem = output(
            Command::new("openssl").args(["ecparam", "-name", "secp384r1", "-genkey", "-noout"]),
            "openssl ecparam",
        )?;
        write_private(key, pem.as_bytes())?;
    }
    // The public half of the author key: what the owner trusts, given to the tool.
    let author_pub = output(
        Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(&owner.author_key),
        "openssl ec -pubout",
    )?;
    write_private(&owner_dir.join("author-key.pub.pem"), author_pub.as_bytes())?;
    say(&format!(
        "In {dir} (private to the owner):\n\
         - OVMF-snp.fd, vmlinuz, initrd.img: the owner's own copies of the ROM firmware,\n\
         \x20 kernel and initrd the guest must boot (the firmware is Debian's OVMF.fd with an\n\
         \x20 SNP kernel hashes page declared, as edk2's AmdSev build has), and the kernel\n\
         \x20 command line '{cmdline}';\n\
         - id-key.pem, author-key.pem: two new ECDSA P-384 keys (openssl ecparam): the ID key\n\
         \x20 signs the ID block, the author key signs the ID key; author-key.pub.pem is what\n\
         \x20 the owner trusts.\n\
         The guest is to run with policy {POLICY}, {VCPUS} vCPUs of model EPYC-Milan (family {},\n\
         model {}, stepping {}), kernelHashes='yes', and hostData \"{}\".",
        MILAN_FMS[0],
        MILAN_FMS[1],
        MILAN_FMS[2],
        String::from_utf8_lossy(&owner.host_data).trim_end_matches('\0'),
        dir = owner_dir.display(),
        cmdline = e2e::CMDLINE,
    ));
    let right_ld = snp_digest(&owner, VCPUS)?;
    let wrong_ld = snp_digest(&owner, WRONG_VCPUS)?;
    say(&format!(
        "The expected launch digests (`virt-qemu-sev-validate snp-digest --ovmf OVMF-snp.fd\n\
         --vcpus N --vcpu-type EPYC-Milan --kernel vmlinuz --initrd initrd.img --append ...`):\n\
         \x20 {VCPUS} vCPUs: {right_ld}\n\
         \x20 {WRONG_VCPUS} vCPUs: {wrong_ld}\n\
         The owner's ID block from an earlier plan was made (`snp-id-block --digest ...\n\
         --id-key id-key.pem --author-key author-key.pem`) for the {WRONG_VCPUS}-vCPU digest."
    ));
    let wrong = snp_id_block(&owner, &wrong_ld)?;

    // The owner reaches the host over qemu+ssh:// when the harness can run sshd.
    let reach = match h.ssh_uri() {
        Some(uri) => Reach {
            uri,
            side: Side::Elsewhere,
            remote: true,
        },
        None => Reach {
            uri: h.uri(),
            side: Side::OnHost,
            remote: false,
        },
    };
    say(&if reach.remote {
        format!(
            "The owner reaches the host over {}: another hostname and network namespace,\n\
             as from the owner's own machine; no --insecure needed.",
            reach.uri
        )
    } else {
        "The owner runs the tool on the host itself (no sshd here), so it needs --insecure."
            .to_string()
    });

    // ------------------------------------------------------------------ 3. the wrong ID block
    step(
        3,
        &format!(
            "a domain whose ID block was made for {WRONG_VCPUS} vCPUs is caught before it starts"
        ),
    );
    let bad = define_snp(h, &owner, "demo-snp-wrong-id-block", &wrong)?;
    say(&format!(
        "The host defines '{bad}' (launchSecurity type 'sev-snp', policy {POLICY},\n\
         {VCPUS} vCPUs, the owner's hostData and that ID block with authorKey='yes'); it is not\n\
         started: `virsh domstate {bad}`: {}.\n\
         The owner checks it first:",
        h.state(&bad)
    ));
    let rc = run_tool(h, &reach, &owner, &bad, &[]);
    if rc != 1 {
        return Err(format!(
            "our tool exited {rc} for the wrong ID block, expected 1"
        ));
    }
    say(
        "Exit status 1: the ID block would be refused at launch, and the tool says which input\n\
         it was made for. The host starts the domain anyway (`virsh start --paused`, then\n\
         `virsh resume`): the simulated SNP firmware checks the ID block at SNP_LAUNCH_FINISH.",
    );
    let t0 = Instant::now();
    start_paused(h, &bad)?;
    let resumed = h.resume(&bad);
    let fin = h.launch_finishes(&bad);
    let state = wait_shut_off(h, &bad);
    let log_line = h
        .domain_log(&bad)
        .lines()
        .find(|l| l.contains("SNP_LAUNCH_FINISH"))
        .map(str::to_string)
        .unwrap_or_default();
    say(&format!(
        "`virsh resume` {} ({:.1} s); the QEMU log says:\n\
         \x20 {}\n\
         `virsh domstate {bad}`: {state}.",
        if resumed.is_err() {
            "failed"
        } else {
            "SUCCEEDED"
        },
        t0.elapsed().as_secs_f64(),
        log_line.trim(),
    ));
    let refused = fin.len() == 1 && fin[0]["ok"] == false && fin[0]["fw_error"] == 11;
    if resumed.is_ok() || !refused || !log_line.contains("Bad measurement") {
        return Err(format!(
            "the simulated firmware did not refuse the wrong ID block: {fin:?}"
        ));
    }

    // ------------------------------------------------------------------ 4. the right one
    step(
        4,
        "the ID block made for the right launch passes, and the guest starts",
    );
    let right = snp_id_block(&owner, &right_ld)?;
    let name = define_snp(h, &owner, "demo-snp", &right)?;
    say(&format!(
        "The owner makes the ID block for the {VCPUS}-vCPU digest; the host defines '{name}' with it.\n\
         The owner checks it before it starts:"
    ));
    let rc = run_tool(h, &reach, &owner, &name, &[]);
    if rc != 0 {
        return Err(format!(
            "our tool exited {rc} for the right ID block, expected 0"
        ));
    }
    let t0 = Instant::now();
    start_paused(h, &name)?;
    h.resume(&name)
        .map_err(|e| format!("resume {name}: {e}\n{}", h.tail_logs()))?;
    let fin = h.launch_finishes(&name);
    let accepted = fin.last().is_some_and(|f| f["ok"] == true);
    say(&format!(
        "The host starts it: `virsh start --paused`, `virsh resume` ({:.1} s). The simulated\n\
         SNP_LAUNCH_FINISH {} the ID block; `virsh domstate {name}`: {}.",
        t0.elapsed().as_secs_f64(),
        if accepted { "accepted" } else { "REFUSED" },
        h.state(&name)
    ));
    if !accepted || h.state(&name) != "running" {
        return Err(format!("the right launch did not run: {fin:?}"));
    }

    // ------------------------------------------------------------------ 5. the guest's report
    step(
        5,
        "the guest's attestation report validates against the domain",
    );
    let launch = h
        .launches(&name)
        .pop()
        .ok_or("the simulated host recorded no launch")?;
    let finish = fin.last().cloned().unwrap_or_default();
    let field = |v: &serde_json::Value, k: &str| -> Result<String, String> {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no {k} in {v}"))
    };
    let measurement = field(&launch, "ld_hex")?;
    let host_data = hex::encode(unb64(&field(&launch, "host_data")?)?);
    let id_key_digest = field(&finish["checks"], "id_key_digest_hex")?;
    let author_key_digest = field(&finish["checks"], "author_key_digest_hex")?;
    if id_key_digest != right.id_key_digest || author_key_digest != right.author_key_digest {
        return Err("the launch's key digests are not the owner's".into());
    }
    let chain = owner_dir.join("chain");
    fs::create_dir_all(&chain).map_err(|e| format!("{}: {e}", chain.display()))?;
    // RSA-4096 test keys are slow to make: kept where the tests keep theirs.
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/snp-sim-keys");
    fs::create_dir_all(&keys).map_err(|e| format!("{}: {e}", keys.display()))?;
    snp_sp(&[
        "chain".as_ref(),
        "--product".as_ref(),
        "milan".as_ref(),
        "--out".as_ref(),
        chain.as_os_str(),
        "--keys".as_ref(),
        keys.as_os_str(),
    ])?;
    let report = owner_dir.join("report.bin");
    let nonce = nonce();
    snp_sp(&[
        "report".as_ref(),
        "--chain".as_ref(),
        chain.as_os_str(),
        "--out".as_ref(),
        report.as_os_str(),
        "--measurement".as_ref(),
        measurement.as_ref(),
        "--host-data".as_ref(),
        host_data.as_ref(),
        "--id-key-digest".as_ref(),
        id_key_digest.as_ref(),
        "--author-key-digest".as_ref(),
        author_key_digest.as_ref(),
        "--author-key-en".as_ref(),
        "--policy".as_ref(),
        POLICY.as_ref(),
        "--report-data".as_ref(),
        nonce.as_ref(),
        "--vmpl".as_ref(),
        "0".as_ref(),
    ])?;
    say(&format!(
        "The owner sends the guest a fresh nonce; the guest asks its SNP firmware for a report\n\
         carrying it (snpguest report, or configfs-tsm). Here the simulated SNP firmware\n\
         (tests/sim/snp_sp.py) signs it with the VCEK of a test AMD chain (ARK, ASK, VCEK), with\n\
         what the simulated launch measured: MEASUREMENT {measurement},\n\
         HOST_DATA from the launch, the ID and author key digests SNP_LAUNCH_FINISH accepted,\n\
         REPORT_DATA the nonce, VMPL 0. The report ({} bytes) comes back to the owner, who\n\
         validates it against the domain. --trust-anchors replaces AMD's real roots by the\n\
         test chain's (a real report needs none of it: its VCEK chains to AMD's built-in roots).",
        fs::metadata(&report).map(|m| m.len()).unwrap_or(0)
    ));
    let extra: Vec<OsString> = vec![
        "--report".into(),
        report.clone().into(),
        "--vcek".into(),
        chain.join("vcek.der").into(),
        "--trust-anchors".into(),
        chain.join("ark.pem").into(),
        "--trust-anchors".into(),
        chain.join("ask.pem").into(),
        "--report-data".into(),
        nonce.clone().into(),
        "--vmpl".into(),
        "0".into(),
    ];
    let rc = run_tool(h, &reach, &owner, &name, &extra);
    if rc != 0 {
        return Err(format!(
            "our tool exited {rc} for the guest's report, expected 0"
        ));
    }
    save_launch(&right_ld, &measurement, &host_data)?;

    // ------------------------------------------------------------------ 6. teardown
    step(6, "tear down");
    for d in [&name, &bad] {
        h.destroy(d);
        say(&format!("virsh destroy + undefine {d}"));
    }
    Ok(())
}

/// With `SNP_DEMO_LAUNCH_OUT=FILE` (scripts/demo.sh sets it), the launch that ran, for the key
/// release that follows the demo: the owner's expected digest (`snp-digest`), and the
/// MEASUREMENT and HOST_DATA the simulated firmware launched with, as JSON.
fn save_launch(expected: &str, measurement: &str, host_data: &str) -> Result<(), String> {
    let Some(path) = std::env::var_os("SNP_DEMO_LAUNCH_OUT") else {
        return Ok(());
    };
    let doc = serde_json::json!({
        "expected_digest": expected,
        "measurement": measurement,
        "host_data": host_data,
    });
    write_private(Path::new(&path), format!("{doc}\n").as_bytes())
}

fn main() {
    let t0 = Instant::now();
    narrate::require_tool(&e2e::our_validator_path());

    step(
        1,
        "start the simulated SEV-SNP host (libvirt 11.3, QEMU 10.0)",
    );
    say(
        "A real libvirtd from bookworm-backports (in the chroot scripts/setup-libvirt11.sh\n\
         builds) drives real QEMU 10.0 under TCG. Its emulator, tests/sim/qemu_sev_wrapper.py,\n\
         strips the sev-snp-guest object QEMU cannot run without KVM, answers query-sev as\n\
         QEMU 10.0 does for an SNP guest, and plays the SNP firmware's SNP_LAUNCH_FINISH when\n\
         the vCPUs first start: it measures what QEMU really got with sev-snp-measure and\n\
         checks the domain's ID block (LD, policy, both signatures) against it.",
    );
    let missing = e2e::libvirt11_missing();
    if !missing.is_empty() {
        eprintln!(
            "demo: the SNP host cannot start: missing {} (run scripts/setup-libvirt11.sh as root)",
            missing.join(", ")
        );
        std::process::exit(2);
    }
    let Some(host) = Host::start_with(Libvirt::V11) else {
        eprintln!("demo: the simulated host cannot start: run scripts/setup.sh as root first");
        std::process::exit(2);
    };
    if let Some(why) = host.snp_missing() {
        eprintln!("demo: the simulated host cannot run SNP domains: {why}");
        host.teardown();
        std::process::exit(2);
    }
    say(&format!(
        "libvirtd {} with {} is up: {}\nwork directory {}",
        host.daemon_version(),
        host.hypervisor_version(),
        host.uri(),
        host.dir().display()
    ));

    let owner_dir = match tempfile::Builder::new().prefix("snp-owner.").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("demo: temporary directory: {e}");
            host.teardown();
            std::process::exit(2);
        }
    };
    let result = demo(&host, owner_dir.path());
    if result.is_err() {
        eprintln!("\nThe simulated host's logs:\n{}", host.tail_logs());
    }

    let work = host.dir().to_path_buf();
    host.teardown();
    drop(host);
    drop(owner_dir);
    // Everything the simulated host started must be gone: the daemon, virtlogd, QEMU, sshd.
    let left = narrate::left_running(&work);
    let mut result = result;
    if result.is_ok() {
        say(&format!(
            "Stopped everything the simulated host ran: {}; its work directory removed: {}; \
             owner's files removed.",
            if left.is_empty() { "yes" } else { "NO" },
            if work.exists() { "no" } else { "yes" },
        ));
        result = narrate::none_left(&left);
    }

    match result {
        Ok(()) => {
            println!(
                "\n== Done in {:.1} s: the ID block made for {WRONG_VCPUS} vCPUs was caught before the\n\
                 \x20  domain started (and the simulated firmware refused it, as the tool said it\n\
                 \x20  would); the right one passed, the guest started, and its attestation report\n\
                 \x20  validated against the domain.",
                t0.elapsed().as_secs_f64()
            );
        }
        Err(e) => {
            eprintln!("\ndemo FAILED: {e}");
            std::process::exit(1);
        }
    }
}
