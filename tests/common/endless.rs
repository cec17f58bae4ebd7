//! Inputs without end, fed to the tool, and the tool's peak memory: /dev/zero,
//! a FIFO whose writer writes until the reader closes it, and a 2 GB pipe on
//! standard input. The peak resident set size is what `/usr/bin/time -f %M`
//! reports, which takes it from wait4() for the tool's process alone.
#![allow(dead_code)]

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::tool::OURS;

/// GNU time, which measures the peak RSS of the command it runs.
pub const TIME: &str = "/usr/bin/time";

/// How long one run may take before it is killed: the largest limits
/// (512 MiB of initrd) hash in a second or two.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The size of the pipe fed on standard input: 2 GB, as a new user tried.
pub const PIPE_BYTES: u64 = 2_000_000_000;

/// How an endless input reaches the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endless {
    /// The path /dev/zero.
    DevZero,
    /// A FIFO made with mkfifo; a thread writes zeros into it until the
    /// tool closes it.
    Fifo,
    /// `-`: 2 GB of zeros written by a thread into the tool's standard input.
    Pipe,
    /// `/dev/stdin`, fed like [`Endless::Pipe`].
    DevStdin,
}

pub const ALL: [Endless; 3] = [Endless::DevZero, Endless::Fifo, Endless::Pipe];

/// How a run fed an endless input ended.
#[derive(Debug)]
pub struct Fed {
    /// The exit code; -1 when killed or ended by a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The tool's peak resident set size in KiB, when /usr/bin/time is there.
    pub peak_kib: Option<u64>,
    /// How long the run took.
    pub took: Duration,
    /// The command line, for messages.
    pub what: String,
}

/// Whether GNU time is there to measure the peak RSS.
pub fn have_time() -> bool {
    Path::new(TIME).is_file()
}

/// Writes zeros to `w` until writing fails (the reader closed) or `limit`
/// bytes are written.
fn zeros_into(mut w: impl std::io::Write, limit: u64) {
    let chunk = vec![0u8; 1 << 16];
    let mut left = limit;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if w.write_all(&chunk[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
}

static FIFOS: AtomicU64 = AtomicU64::new(0);

/// Runs the tool with `args`, where `args[at]` becomes `prefix` followed by
/// the endless input's path, under /usr/bin/time when it is there. FIFOs go
/// in `scratch`. Killed (with its process group) after a minute.
pub fn run_endless(args: &[String], at: usize, prefix: &str, feed: Endless, scratch: &Path) -> Fed {
    let mut args = args.to_vec();
    let n = FIFOS.fetch_add(1, Ordering::Relaxed);
    let fifo = scratch.join(format!("endless-{n}"));
    let rss = scratch.join(format!("rss-{n}"));
    args[at] = match feed {
        Endless::DevZero => format!("{prefix}/dev/zero"),
        Endless::Fifo => format!("{prefix}{}", fifo.display()),
        Endless::Pipe => format!("{prefix}-"),
        Endless::DevStdin => format!("{prefix}/dev/stdin"),
    };
    let mut cmd = if have_time() {
        let mut c = Command::new(TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&rss).arg(OURS);
        c
    } else {
        Command::new(OURS)
    };
    cmd.args(&args).env_remove("LIBVIRT_DEFAULT_URI");
    let what = format!("{feed:?} as {:?}: {}", args[at], args.join(" "));
    let piped = matches!(feed, Endless::Pipe | Endless::DevStdin);
    cmd.stdin(if piped { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut writer = None;
    if feed == Endless::Fifo {
        let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(ok.success(), "mkfifo failed");
        let p = fifo.clone();
        // Opening a FIFO for writing waits for its reader.
        writer = Some(std::thread::spawn(move || {
            if let Ok(f) = fs::OpenOptions::new().write(true).open(&p) {
                zeros_into(f, u64::MAX);
            }
        }));
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    if piped {
        let stdin = child.stdin.take().unwrap();
        writer = Some(std::thread::spawn(move || zeros_into(stdin, PIPE_BYTES)));
    }
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > TIMEOUT {
            // The tool runs under time: end the whole group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = start.elapsed();
    if let Some(w) = writer {
        // A FIFO writer still waiting for a reader (the tool never opened
        // it): open the read end without blocking so its open returns, and
        // close it so its writes fail.
        while !w.is_finished() {
            drop(
                fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(0o4000) // O_NONBLOCK
                    .open(&fifo),
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        w.join().unwrap();
    }
    let _ = fs::remove_file(&fifo);
    let peak_kib = fs::read_to_string(&rss)
        .ok()
        .and_then(|s| s.lines().last()?.trim().parse().ok());
    let _ = fs::remove_file(&rss);
    let mut stderr = err.join().unwrap();
    let code = match status {
        Some(s) => s.code().unwrap_or(-1),
        None => {
            stderr.push_str(&format!("\n(killed after {TIMEOUT:?})"));
            -1
        }
    };
    // With -o, GNU time writes its "Command exited with non-zero status N"
    // line to that file too, never to the tool's stderr: %M is the last line.
    Fed {
        code,
        stdout: out.join().unwrap(),
        stderr,
        peak_kib,
        took,
        what,
    }
}

/// Writes `data` to `path` and gives the path as a string.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    let mut f = fs::File::create(&p).unwrap();
    f.write_all(data).unwrap();
    p.display().to_string()
}
