//! Running programs: a command with a timeout, its output as text, and the processes a host
//! started (found by the work directory in their environment).

use std::fs;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::getpid;

/// How long one virsh / validator command may take before the harness kills it.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(60);

/// Processes still running that a host with work directory `dir` started:
/// libvirtd, the virtlogd it spawns, QEMU and whatever they run all inherit
/// HOME and XDG_RUNTIME_DIR under `dir`, a fresh temporary directory, so
/// their environment names it. As (pid, command name).
pub fn processes_started_in(dir: &Path) -> Vec<(i32, String)> {
    let needle = dir.to_string_lossy().into_owned().into_bytes();
    let me = unsafe { getpid() };
    let mut found = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return found;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = fs::read(e.path().join("environ")) else {
            continue;
        };
        let ours = env.split(|&b| b == 0).any(|var| {
            let value = var.splitn(2, |&b| b == b'=').nth(1).unwrap_or(&[]);
            value.starts_with(&needle)
        });
        if ours {
            let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            found.push((pid, comm.trim().to_string()));
        }
    }
    found
}

/// Whether `program ARGS` runs and exits 0 (a prerequisite check).
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Output of a command as (exit code, stdout, stderr); -1 when killed.
pub fn split(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `cmd` with stdin closed, killing it after `timeout`.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The target dir may be shared with a concurrent `cargo build` replacing the binary:
    // retry briefly on "not found" / "text file busy" (ETXTBSY = 26).
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            Err(e)
                if tries < 50
                    && (e.kind() == std::io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(26)) =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot run {what}: {e}"),
        }
    };
    // Drain both pipes in threads so a chatty child cannot block.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let st = child.wait().expect("wait");
            eprintln!("harness: killed after {timeout:?}: {what}");
            break st;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    }
}
