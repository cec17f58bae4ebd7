//! What a person sees: status lines on stdout, warnings, notes and debug
//! lines on stderr, each stage's values printed as the stage returns them.
//! With `--json` stdout carries only the document.

use std::io::Write as _;

use crate::core::hex;
use crate::report::{Report, Run};
use crate::sev::resolve::{ExpectedLaunch, Resolved};
use crate::sev::secrets::Packaged;
use crate::sev::validate::Outcome;
use crate::source::{Comparison, HostReport, SourceSpec};

/// How much to print.
pub struct Output {
    pub quiet: bool,
    pub debug: bool,
    /// --json: stdout carries only the JSON document.
    pub json: bool,
}

impl Output {
    pub fn status(&self, msg: &str) {
        if !self.quiet && !self.json {
            // A closed stdout (e.g. `| head`) must not turn into a panic.
            let _ = writeln!(std::io::stdout(), "{msg}");
        }
    }

    pub fn warn(&self, msg: &str) {
        if !self.quiet {
            eprintln!("WARNING: {msg}");
        }
    }

    /// A diagnosis line on stderr (not with --quiet).
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("NOTE: {msg}");
        }
    }

    pub fn debug(&self, label: &str, value: impl AsRef<str>) {
        if self.debug {
            eprintln!("[DEBUG]: {label}: {}", value.as_ref());
        }
    }

    /// The source as chosen.
    pub fn spec(&self, spec: &SourceSpec) {
        if let SourceSpec::Libvirt(l) = spec {
            self.debug("libvirt URI", &l.uri);
        }
    }

    /// What the host reported.
    pub fn host(&self, h: &HostReport) {
        if let Some(c) = &h.facts.connection {
            self.debug("Connection", if c.remote { "remote" } else { "local" });
        }
        if let Some(s) = &h.facts.sev_state {
            self.debug("QMP SEV state", s);
        }
        for o in &h.facts.overridden {
            self.debug(o.name, &o.message);
        }
        self.debug("Policy", crate::sev::policy::describe(h.launch.info.policy));
    }

    /// Values taken from the host (--insecure) are named, so the owner knows.
    pub fn resolved(&self, r: &Resolved) {
        let from_host = r.from_host();
        if !from_host.is_empty() {
            self.note(&format!(
                "taken from the host (--insecure), not from you: {}",
                from_host.join(", ")
            ));
        }
        let show = |what: &str, v: Option<String>| {
            if let Some(v) = v {
                let from = if what == "vCPU count" {
                    "the host"
                } else {
                    "the domain XML"
                };
                self.debug(&format!("{what} (from {from})"), v);
            }
        };
        let host = |o: crate::provenance::Origin| o == crate::provenance::Origin::Host;
        let path = |s: &Option<crate::provenance::Sourced<std::path::PathBuf>>| {
            s.as_ref()
                .filter(|s| host(s.origin))
                .map(|s| s.value.display().to_string())
        };
        show("firmware", path(&r.firmware));
        show("kernel", path(&r.kernel));
        show("initrd", path(&r.initrd));
        show(
            "cmdline",
            r.cmdline
                .as_ref()
                .filter(|s| host(s.origin))
                .map(|s| s.value.clone()),
        );
        show(
            "vCPU count",
            r.num_cpus
                .as_ref()
                .filter(|s| host(s.origin))
                .map(|s| s.value.to_string()),
        );
    }

    /// The owner's files as hashed.
    pub fn expected(&self, e: &ExpectedLaunch) {
        if !self.debug {
            return;
        }
        if let Some(d) = e.firmware.digest_after_firmware.firmware_digest() {
            self.debug("Firmware(sha256)", hex(&d));
        }
        if let Some(t) = &e.firmware.footer {
            for (g, d) in t.entries() {
                self.debug("Firmware footer entry", format!("{g} {}", hex(d)));
            }
        }
        if let Some(k) = &e.kernel {
            self.debug(
                "Kernel hashes area",
                format!("base {:#x} size {:#x}", k.area.base, k.area.size),
            );
            self.debug("Kernel(sha256)", hex(&k.hashes.kernel));
            self.debug("Initrd(sha256)", hex(&k.hashes.initrd));
            self.debug("Cmdline(sha256)", hex(&k.hashes.cmdline));
        }
        if let Some(crate::sev::launch::VmsaSource::Built {
            config,
            ap_reset_addr,
        }) = e.vmsa.as_ref().map(|v| &v.source)
        {
            self.debug("CPU signature", format!("{:#x}", config.cpu_signature));
            self.debug("AP reset address", format!("{ap_reset_addr:#x}"));
        }
    }

    /// The launch digest, MEASURE and the explainer's effort.
    pub fn outcome(&self, o: &Outcome, reported_measure: &[u8; 32]) {
        let t = &o.trace;
        if let Some(table) = &t.kernel_table {
            self.debug("Kernel hashes table(hex)", hex(table));
        }
        if let Some(d) = &t.vmsa_bsp_sha256 {
            self.debug("VMSA CPU 0(sha256)", hex(d));
        }
        if let Some(d) = &t.vmsa_ap_sha256 {
            self.debug("VMSA CPU 1(sha256)", hex(d));
        }
        self.debug("Launch digest GCTX.LD(sha256)", hex(&t.ld));
        self.debug("Measured-msg(hex)", hex(&o.measure_message));
        self.debug("Measurement reported(hex)", hex(reported_measure));
        self.debug("Measurement computed(hex)", hex(&o.computed));
        if let Some(x) = &o.explanation {
            self.debug(
                "Explainer",
                format!("{} variants in {:.3} s", x.tried, x.seconds),
            );
        }
    }

    /// The packaged secrets (ciphertext only).
    pub fn packaged(&self, p: &Packaged) {
        self.debug(
            "Secret table",
            format!("{} secrets, {} bytes padded", p.count, p.table_bytes),
        );
        self.debug("Secret header(hex)", hex(&p.packet.header));
        self.debug("Secret payload(ciphertext, hex)", hex(&p.packet.payload));
    }

    /// The host's copies of the owner's files, compared.
    pub fn host_files(&self, result: &Result<Vec<Comparison>, String>) {
        let list = match result {
            Err(e) => {
                return self.note(&format!(
                    "could not compare the host's files over SFTP: {e}"
                ))
            }
            Ok(list) => list,
        };
        for c in list {
            let msg = match (&c.host_sha256, c.differs()) {
                (Ok(h), Some(true)) => format!(
                    "the host's {} {} differs from yours (SHA-256 {} on the host, {} yours)",
                    c.what,
                    c.host_path,
                    hex(h),
                    hex(&c.owner_sha256)
                ),
                (Ok(_), _) => {
                    format!("the host's {} {} is the same as yours", c.what, c.host_path)
                }
                (Err(e), _) => format!("the host's {} could not be read: {e}", c.what),
            };
            self.note(&msg);
        }
    }

    /// The end of a run: ERROR and HINT lines, or the JSON document.
    pub fn finish(&self, run: &Run) {
        if let Some(e) = &run.error {
            eprintln!("ERROR: {e}");
            let hint = run.outcome.as_ref().and_then(|o| o.explanation.as_ref());
            if let (false, false, Some(x)) = (self.quiet, self.json, hint) {
                eprintln!("HINT: {}", x.hint);
            }
        }
        if self.json {
            print_json(&Report::from(run));
        }
    }
}

/// One JSON document on stdout.
pub fn print_json(report: &Report) {
    match serde_json::to_string_pretty(report) {
        Ok(j) => {
            let _ = writeln!(std::io::stdout(), "{j}");
        }
        Err(e) => eprintln!("ERROR: cannot encode the JSON report: {e}"),
    }
}
