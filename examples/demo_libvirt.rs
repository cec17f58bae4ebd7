//! The main job, locally, on a simulated SEV host: run by `scripts/demo.sh`.
//!
//! It starts the end-to-end harness of the tests (tests/e2e/harness/): a REAL unprivileged
//! libvirtd driving REAL QEMU (TCG) whose emulator is tests/sim/qemu_sev_wrapper.py, which
//! plays the AMD SEV firmware on QEMU's QMP monitor. Then, narrating each step, it launches a
//! paused SEV-ES guest of Debian's OVMF (with its secret area declared, as AmdSev builds
//! do), validates it with our tool through libvirt, injects a generated disk passphrase,
//! shows that the simulated firmware decrypted exactly that passphrase in the secret area
//! and that the guest now runs, shows a tampered launch refused, and tears
//! everything down.
//!
//! The tool is `$SEV_VALIDATE_BIN`, else target/release/virt-qemu-sev-validate. Needs root
//! (or a user that can run libvirtd) and what scripts/setup.sh installs.

#[path = "../tests/e2e/harness/mod.rs"]
mod e2e;
#[path = "common/narrate.rs"]
mod narrate;

use narrate::{copy, indent, say, step, write_private};

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use e2e::{Cpu, Host, Side};

/// The GUID under which `--inject-secret luks-key:FILE` stores the disk passphrase.
const LUKS_GUID: &str = "736869e5-84f0-4973-92ec-06879ce3da0b";
/// SEV-ES policy: NODBG (0x1) | ES (0x4).
const POLICY: u32 = 0x5;
const VCPUS: u32 = 2;
const CPU_MODEL: &str = "EPYC-Milan";
/// The SEV secret area declared in the demo's firmware (OVMF footer entry
/// 4c2eb361-...): where QEMU injects the secret and the firmware looks for it.
const SECRET_AREA_BASE: u32 = 0x80F000;
const SECRET_AREA_SIZE: u32 = 0xC00;
/// EPYC-Milan's family / model / stepping (CPUID signature 0xA00F11), what the owner knows of
/// the vCPUs the host promised.
const MILAN_FMS: [&str; 3] = ["25", "1", "1"];

/// A printable random passphrase (24 characters from a 62-letter alphabet).
fn passphrase() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::new();
    let mut buf = [0u8; 1];
    while out.len() < 24 {
        getrandom::getrandom(&mut buf).expect("getrandom");
        // Rejection sampling: 248 = 4 * 62, so every letter is equally likely.
        if buf[0] < 248 {
            out.push(ALPHABET[(buf[0] % 62) as usize] as char);
        }
    }
    out
}

/// The owner's inputs, in a private directory of their own.
struct Owner {
    firmware: PathBuf,
    tik: PathBuf,
    tek: PathBuf,
    passphrase: String,
    passphrase_file: PathBuf,
}

/// Runs our tool on the hypervisor host against `domain` and prints what it said.
fn run_tool(host: &Host, domain: &str, owner: &Owner, extra: &[&str]) -> i32 {
    let mut argv: Vec<OsString> = vec![
        "--connect".into(),
        host.uri().into(),
        "--domain".into(),
        domain.into(),
        "--insecure".into(),
        "--firmware".into(),
        owner.firmware.clone().into(),
        "--tik".into(),
        owner.tik.clone().into(),
        "--tek".into(),
        owner.tek.clone().into(),
        "--num-cpus".into(),
        VCPUS.to_string().into(),
        "--cpu-family".into(),
        MILAN_FMS[0].into(),
        "--cpu-model".into(),
        MILAN_FMS[1].into(),
        "--cpu-stepping".into(),
        MILAN_FMS[2].into(),
    ];
    argv.extend(extra.iter().map(OsString::from));
    println!("   $ virt-qemu-sev-validate \\");
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
        line.push_str(&a);
        if i + 1 == argv.len() {
            println!("         {line}");
        }
    }
    let t0 = Instant::now();
    let args: Vec<&OsStr> = argv.iter().map(|s| s.as_os_str()).collect();
    let (rc, out, err) = host.our_validator(Side::OnHost, &args);
    println!(
        "   Our tool's output (exit status {rc}, {:.1} s):",
        t0.elapsed().as_secs_f64()
    );
    indent(&out, "| ");
    indent(&err, "| ");
    rc
}

fn demo(host: &Host, owner_dir: &Path) -> Result<(), String> {
    let h = host;
    // ------------------------------------------------------------------ 2. the owner's inputs
    step(2, "the guest owner prepares their inputs");
    let owner = Owner {
        firmware: owner_dir.join("OVMF.fd"),
        tik: owner_dir.join("tik.bin"),
        tek: owner_dir.join("tek.bin"),
        passphrase: passphrase(),
        passphrase_file: owner_dir.join("disk-passphrase"),
    };
    // Debian's OVMF.fd declares its secret area with base and size zero, so
    // QEMU would put the secret at guest address 0. The demo's image declares
    // one, as edk2's AmdSevX64 build does, by patching that footer entry the
    // way the tests patch the kernel hashes area. Host and owner use the same
    // image.
    let debian =
        fs::read(e2e::DEBIAN_OVMF).map_err(|e| format!("read {}: {e}", e2e::DEBIAN_OVMF))?;
    let image = e2e::patch_area(
        &debian,
        e2e::SECRET_AREA_GUID,
        SECRET_AREA_BASE,
        SECRET_AREA_SIZE,
    );
    let host_firmware = h.file("OVMF-secret-area.fd", &image);
    write_private(&owner.firmware, &image)?;
    copy(h.tik(), &owner.tik)?;
    copy(h.tek(), &owner.tek)?;
    write_private(&owner.passphrase_file, owner.passphrase.as_bytes())?;
    say(&format!(
        "In {dir} (private to the owner):\n\
         - OVMF.fd: the owner's own copy of the firmware they expect the guest to boot:\n\
         \x20 Debian's {fw} with its SEV secret area declared in its footer\n\
         \x20 table at guest address {SECRET_AREA_BASE:#x} ({SECRET_AREA_SIZE:#x} bytes). Debian ships that entry zeroed,\n\
         \x20 so QEMU would inject the secret at address 0, where no firmware looks; the demo\n\
         \x20 fills it in as edk2's AmdSevX64 build (OVMF.amdsev.fd) declares it. A real guest\n\
         \x20 needs that build, whose code reserves the area and hands the secrets to Linux;\n\
         - tik.bin, tek.bin: the transport integrity and encryption keys (TIK, TEK). On real\n\
         \x20 hardware the owner generates them and wraps them for the SEV firmware in the\n\
         \x20 launch session blob; the simulated firmware was simply given the same two keys;\n\
         - disk-passphrase: a freshly generated disk passphrase: {pass}\n\
         The owner also knows what the host promised: SEV-ES policy 0x{POLICY:x}, {VCPUS} vCPUs of\n\
         model {CPU_MODEL} (CPU family {}, model {}, stepping {}).",
        MILAN_FMS[0],
        MILAN_FMS[1],
        MILAN_FMS[2],
        dir = owner_dir.display(),
        fw = e2e::DEBIAN_OVMF,
        pass = owner.passphrase,
    ));

    // ------------------------------------------------------------------ 3. launch paused
    step(3, "the host launches the SEV-ES guest, paused");
    let mut spec = h.spec_sev_es("demo-guest", VCPUS, Cpu::Custom(CPU_MODEL.into()));
    spec.max_vcpus = None;
    spec.firmware = host_firmware.clone();
    say(&format!(
        "libvirt defines the domain '{}' (launchSecurity type 'sev', policy 0x{:04x},\n\
         {} vCPUs of {CPU_MODEL}, {} MiB, firmware only: the loader is the host's copy of\n\
         the same firmware, {}),\n\
         and starts it with `virsh start --paused`.\n\
         QEMU loads the firmware and the vCPU state, the SEV firmware measures them, and the\n\
         guest waits, paused, for its secrets.",
        spec.name,
        spec.policy,
        spec.vcpus,
        spec.memory_mib,
        spec.firmware.display(),
    ));
    let t0 = Instant::now();
    let name = h.define_and_start_paused(&spec.xml())?;
    say(&format!(
        "Started in {:.1} s; `virsh domstate {name}`: {}",
        t0.elapsed().as_secs_f64(),
        h.state(&name)
    ));
    let info = h.launch_sec_info(&name)?;
    say("What the host reports (`virsh domlaunchsecinfo`, from the SEV firmware):");
    for (k, v) in &info {
        println!("   | {k}: {v}");
    }

    // ------------------------------------------------------------------ 4. validate + inject
    step(
        4,
        "the owner validates the launch and injects the disk passphrase",
    );
    say(
        "Our tool connects to libvirt, reads the launch measurement, checks the domain XML,\n\
         recomputes the measurement from the owner's firmware, TIK and vCPU data, and only if\n\
         they match does it encrypt the passphrase under the TEK (MAC under the TIK), inject it\n\
         with virDomainSetLaunchSecurityState and resume the guest.\n\
         --insecure: the connection is local (qemu:///session on this machine), so the tool\n\
         runs on the host it is validating; it refuses that without --insecure. A real owner\n\
         runs it from their own machine over qemu+ssh://.",
    );
    let secret_arg = format!("luks-key:{}", owner.passphrase_file.display());
    let rc = run_tool(h, &name, &owner, &["--inject-secret", &secret_arg]);
    if rc != 0 {
        return Err(format!(
            "our tool exited {rc}, expected 0 (validated and injected)"
        ));
    }

    // ------------------------------------------------------------------ 5. what happened
    step(
        5,
        "what the simulated SEV firmware received, and the guest's state",
    );
    let injections = h.injections(&name);
    say(&format!(
        "The simulator recorded {} secret injection(s) for '{name}':",
        injections.len()
    ));
    for inj in &injections {
        say(&format!(
            "- {} at guest address {:#x}{}:\n\
             \x20 the header MAC checked out under the TIK and the table decrypted under the TEK\n\
             \x20 ({} bytes of secret table){}",
            if inj.accepted { "accepted" } else { "REFUSED" },
            inj.gpa,
            if inj.gpa == u64::from(SECRET_AREA_BASE) {
                ", the firmware's secret area"
            } else {
                ", NOT the firmware's secret area"
            },
            inj.plaintext.len(),
            match &inj.strict_error {
                None => ", well-formed".to_string(),
                Some(e) => format!(", malformed: {e}"),
            }
        ));
        for (guid, data) in &inj.entries {
            say(&format!(
                "  entry {guid}{}: \"{}\"",
                if guid == LUKS_GUID { " (luks-key)" } else { "" },
                String::from_utf8_lossy(data)
            ));
        }
    }
    let got = h.injected_secrets(&name);
    let want = vec![(LUKS_GUID.to_string(), owner.passphrase.as_bytes().to_vec())];
    if got != want {
        return Err(format!(
            "the simulated firmware decrypted {got:?}, expected the passphrase {want:?}"
        ));
    }
    if injections
        .iter()
        .any(|i| i.gpa != u64::from(SECRET_AREA_BASE))
    {
        return Err(format!(
            "the secret was not injected into the firmware's secret area at {SECRET_AREA_BASE:#x}"
        ));
    }
    say(&format!(
        "The decrypted secret equals the owner's passphrase \"{}\": yes.",
        owner.passphrase
    ));
    let state = h.state(&name);
    say(&format!(
        "`virsh domstate {name}`: {state} (the tool resumed it after the injection)."
    ));
    if state != "running" {
        return Err(format!("domain state {state:?}, expected \"running\""));
    }

    // ------------------------------------------------------------------ 6. a tampered launch
    step(6, "a host that launches something else gets nothing");
    let bad = "demo-tampered";
    h.tamper(bad, serde_json::json!({"smp": VCPUS + 1}));
    say(&format!(
        "The host now starts '{bad}' from the same XML but makes QEMU run {} vCPUs\n\
         instead of {VCPUS} (libvirt and the domain XML still say {VCPUS}): only the measurement\n\
         shows it. The owner runs the same command against it.",
        VCPUS + 1
    ));
    let mut spec = h.spec_sev_es(bad, VCPUS, Cpu::Custom(CPU_MODEL.into()));
    spec.max_vcpus = None;
    spec.firmware = host_firmware;
    let bad = h.define_and_start_paused(&spec.xml())?;
    let rc = run_tool(h, &bad, &owner, &["--inject-secret", &secret_arg]);
    let injected = h.injections(&bad).len();
    let state = h.state(&bad);
    say(&format!(
        "Exit status {rc} (1 = measurement mismatch): no secret was sent.\n\
         Secrets the simulator received for '{bad}': {injected}; `virsh domstate {bad}`: {state}."
    ));
    if rc != 1 || injected != 0 || state != "paused" {
        return Err("the tampered launch was not refused as expected".into());
    }

    // ------------------------------------------------------------------ 7. teardown
    step(7, "tear down");
    for d in [&name, &bad] {
        h.destroy(d);
        say(&format!("virsh destroy + undefine {d}"));
    }
    Ok(())
}

fn main() {
    let t0 = Instant::now();
    narrate::require_tool(&e2e::our_validator_path());

    step(1, "start the simulated SEV host");
    say(
        "A real libvirtd (session mode, as an unprivileged user when run as root) drives real\n\
         QEMU (TCG, no SEV hardware needed). Its emulator is tests/sim/qemu_sev_wrapper.py,\n\
         which runs QEMU and plays the AMD SEV firmware on QEMU's QMP monitor: it measures\n\
         the launch and decrypts injected secrets exactly as the firmware would.",
    );
    let Some(host) = Host::start() else {
        eprintln!("demo: the simulated host cannot start: run scripts/setup.sh as root first");
        std::process::exit(2);
    };
    say(&format!(
        "libvirtd is up: {}\nemulator {}\nSEV firmware API {}.{}, build {}; work directory {}",
        host.uri(),
        host.emulator().display(),
        e2e::API_MAJOR,
        e2e::API_MINOR,
        e2e::BUILD_ID,
        host.dir().display()
    ));
    if let Some(name) = host.daemon_hostname() {
        say(&format!(
            "The daemon runs with hostname '{name}' (its own UTS namespace); our tool runs\n\
             beside it, on the \"host\"."
        ));
    }

    let owner_dir = match tempfile::Builder::new().prefix("sev-owner.").tempdir() {
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

    let daemon_pid = fs::read_to_string(host.dir().join("libvirtd.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let work = host.dir().to_path_buf();
    let started: Vec<String> = e2e::processes_started_in(&work)
        .iter()
        .map(|(pid, name)| format!("{name} (pid {pid})"))
        .collect();
    host.teardown();
    drop(host);
    drop(owner_dir);
    // Everything the simulated host started must be gone: the daemon, the
    // virtlogd it spawned, QEMU. They all carry the work directory in their
    // environment.
    let left = narrate::left_running(&work);
    let mut result = result;
    if result.is_ok() {
        let gone = daemon_pid.is_none_or(|p| !Path::new(&format!("/proc/{p}")).exists());
        say(&format!(
            "Stopped everything the simulated host ran ({}): {}.\n\
             libvirtd{} stopped: {}; its work directory removed: {}; owner's files removed.",
            started.join(", "),
            if left.is_empty() { "yes" } else { "NO" },
            daemon_pid
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default(),
            if gone { "yes" } else { "no" },
            if work.exists() { "no" } else { "yes" },
        ));
        result = narrate::none_left(&left);
    }

    match result {
        Ok(()) => {
            println!(
                "\n== Done in {:.1} s: the genuine SEV-ES launch was validated through libvirt,\n\
                 \x20  received its disk passphrase in the firmware's secret area (decrypted intact\n\
                 \x20  by the simulated SEV firmware) and is running; the tampered launch got nothing.",
                t0.elapsed().as_secs_f64()
            );
        }
        Err(e) => {
            eprintln!("\ndemo FAILED: {e}");
            std::process::exit(1);
        }
    }
}
