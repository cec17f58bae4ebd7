//! The logs for failure messages, and teardown: domains, sshd, QEMU, virtlogd and the daemon
//! stopped by pid, the work directory removed.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;

impl Host {
    // ------------------------------------------------------------------- logs, teardown

    /// libvirtd's and the wrapper's logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for (what, p) in [
            ("libvirtd.log", self.dir.join("libvirtd.log")),
            ("wrapper.log", self.dir.join("state/wrapper.log")),
            ("sshd.log", self.dir.join("ssh/sshd.log")),
        ] {
            if let Ok(t) = fs::read_to_string(&p) {
                let _ = writeln!(s, "----- {what}\n{t}");
            }
        }
        s
    }

    /// The last lines of the logs and of the per-domain QEMU logs.
    pub fn tail_logs(&self) -> String {
        let mut s = String::new();
        let mut files = vec![
            self.dir.join("libvirtd.log"),
            self.dir.join("state/wrapper.log"),
        ];
        if let Ok(rd) = fs::read_dir(self.dir.join("cache/libvirt/qemu/log")) {
            files.extend(rd.flatten().map(|e| e.path()));
        }
        for p in files {
            if let Ok(t) = fs::read_to_string(&p) {
                let lines: Vec<&str> = t.lines().collect();
                let from = lines.len().saturating_sub(15);
                let _ = writeln!(
                    s,
                    "----- {} (tail)\n{}",
                    p.display(),
                    lines[from..].join("\n")
                );
            }
        }
        s
    }

    /// Destroys the domains, stops sshd and libvirtd (by pid), removes the temp dir.
    /// Idempotent; also run by Drop and, for [`Host::shared`], at process exit.
    pub fn teardown(&self) {
        {
            let mut done = self.torn_down.lock().unwrap();
            if *done {
                return;
            }
            *done = true;
        }
        let keep = std::env::var_os("SEV_E2E_KEEP").is_some();
        let domains: Vec<String> = self.domains.lock().unwrap().clone();
        for d in &domains {
            let _ = run_timeout(
                Command::new(VIRSH)
                    .arg("-q")
                    .arg("-c")
                    .arg(self.uri())
                    .args(["destroy", d]),
                Duration::from_secs(15),
            );
            let _ = run_timeout(
                Command::new(VIRSH)
                    .arg("-q")
                    .arg("-c")
                    .arg(self.uri())
                    .args(["undefine", "--nvram", d]),
                Duration::from_secs(15),
            );
        }
        if let Some(mut s) = self.sshd.lock().unwrap().take() {
            let _ = s.child.kill();
            let _ = s.child.wait();
            // Normally gone with sshd's network namespace already.
            let _ = Command::new(IP).args(["link", "del", &s.veth]).output();
        }
        // QEMU processes libvirt may still track (pidfiles), then the daemon.
        if let Ok(rd) = fs::read_dir(self.dir.join("run/libvirt/qemu/run")) {
            for e in rd.flatten() {
                if e.path().extension() == Some(OsStr::new("pid")) {
                    if let Ok(Ok(p)) = fs::read_to_string(e.path()).map(|s| s.trim().parse::<i32>())
                    {
                        unsafe {
                            kill(p, SIGKILL);
                        }
                    }
                }
            }
        }
        // The session virtlogd libvirtd spawned outlives libvirtd: stop it (and
        // anything else left but the daemon) first, while the reaper above the
        // daemon is still there to reap it, so no zombie is left behind.
        let daemon_pid = self.daemon_pid;
        let others = || -> Vec<i32> {
            processes_started_in(&self.dir)
                .into_iter()
                .filter(|(p, name)| *p != daemon_pid && name != "libvirtd")
                .map(|(p, _)| p)
                .collect()
        };
        let stopping = others();
        for p in &stopping {
            unsafe {
                kill(*p, SIGTERM);
            }
        }
        // Gone from /proc, not only exited: reaped, not a zombie.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline
            && stopping
                .iter()
                .any(|p| Path::new(&format!("/proc/{p}")).exists())
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let child = self.daemon.lock().unwrap().take();
        unsafe {
            kill(self.daemon_pid, SIGTERM);
        }
        if let Some(mut c) = child {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        // Anything still running with this host's directory in its
        // environment (only processes this host started carry it).
        let mut left = processes_started_in(&self.dir);
        let deadline = Instant::now() + Duration::from_secs(5);
        for sig in [SIGTERM, SIGKILL] {
            for (pid, _) in &left {
                unsafe {
                    kill(*pid, sig);
                }
            }
            while !left.is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                left = processes_started_in(&self.dir);
            }
            if left.is_empty() {
                break;
            }
        }
        if keep {
            eprintln!("e2e: SEV_E2E_KEEP set: leaving {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.teardown();
    }
}
