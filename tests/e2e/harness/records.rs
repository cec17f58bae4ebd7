//! What the simulated firmware recorded (tests/sim/qemu_sev_wrapper.py's record.json): launches,
//! SNP_LAUNCH_FINISH verdicts, `cont`s and injected secrets; and the logs of a domain.

use std::fs;

use super::Host;

/// One injected secret table, as the simulated firmware decrypted it.
#[derive(Clone, Debug)]
pub struct Injection {
    pub domain: String,
    pub accepted: bool,
    /// (GUID, data) entries of the decrypted secret table (lenient walk, as Linux does).
    pub entries: Vec<(String, Vec<u8>)>,
    /// Why tests/sim/sev_sp.py's strict table check rejects the table, if it does
    /// (e.g. the Python tool's extra 16 bytes of padding).
    pub strict_error: Option<String>,
    pub gpa: u64,
    pub gpa_given: bool,
    pub plaintext: Vec<u8>,
    pub raw: serde_json::Value,
}

impl Host {
    // ------------------------------------------------------------------- records

    fn read_record(&self) -> serde_json::Value {
        match fs::read_to_string(&self.record) {
            Ok(s) => serde_json::from_str(&s).unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// What the wrapper recorded for the domain's launches (firmware, kernel, policy, smp,
    /// cpu, signature, LD, measurement), oldest first.
    pub fn launches(&self, domain: &str) -> Vec<serde_json::Value> {
        let rec = self.read_record();
        rec["launches"]
            .as_array()
            .map(|a| a.iter().filter(|l| l["name"] == domain).cloned().collect())
            .unwrap_or_default()
    }

    /// The simulated SNP_LAUNCH_FINISH verdicts for the domain (at `cont`, or at start when
    /// not paused): `ok`, `fw_error`, `error`, `ld_hex`, `checks`, oldest first.
    pub fn launch_finishes(&self, domain: &str) -> Vec<serde_json::Value> {
        self.records("launch_finish", domain)
    }

    /// Every `cont` the domain's QEMU got, with the SEV state it found, oldest first.
    pub fn conts(&self, domain: &str) -> Vec<serde_json::Value> {
        self.records("conts", domain)
    }

    fn records(&self, kind: &str, domain: &str) -> Vec<serde_json::Value> {
        let rec = self.read_record();
        rec[kind]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|l| l["domain"] == domain)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The domain's QEMU log as libvirt keeps it (command lines, QEMU's stderr).
    pub fn domain_log(&self, name: &str) -> String {
        fs::read_to_string(
            self.dir
                .join("cache/libvirt/qemu/log")
                .join(format!("{name}.log")),
        )
        .unwrap_or_default()
    }

    /// The arguments libvirt gave the emulator for the domain's last start, as the wrapper
    /// logged them (one string, arguments separated by spaces).
    pub fn emulator_argv(&self, name: &str) -> Option<String> {
        let log = fs::read_to_string(self.dir.join("state/wrapper.log")).ok()?;
        let tag = format!("-name guest={name},");
        log.lines()
            .filter_map(|l| l.split_once("argv: ").map(|(_, a)| a))
            .rfind(|a| a.contains(&tag))
            .map(str::to_string)
    }

    /// Every `sev-inject-launch-secret` the domain received (accepted or refused by the
    /// simulated firmware), oldest first.
    pub fn injections(&self, domain: &str) -> Vec<Injection> {
        let rec = self.read_record();
        let Some(all) = rec["injections"].as_array() else {
            return Vec::new();
        };
        all.iter()
            .filter(|i| i["domain"] == domain)
            .map(|i| Injection {
                domain: domain.to_string(),
                accepted: i["accepted"].as_bool().unwrap_or(false),
                entries: i["entries"]
                    .as_array()
                    .map(|es| {
                        es.iter()
                            .map(|e| {
                                (
                                    e["guid"].as_str().unwrap_or("").to_string(),
                                    hex::decode(e["data_hex"].as_str().unwrap_or("")).unwrap(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                strict_error: i["strict_error"].as_str().map(str::to_string),
                gpa: i["gpa"].as_u64().unwrap_or(0),
                gpa_given: i["gpa_given"].as_bool().unwrap_or(false),
                plaintext: hex::decode(i["plaintext_hex"].as_str().unwrap_or(""))
                    .unwrap_or_default(),
                raw: i.clone(),
            })
            .collect()
    }

    /// The secrets of the accepted injections into the domain: (GUID, data).
    pub fn injected_secrets(&self, domain: &str) -> Vec<(String, Vec<u8>)> {
        self.injections(domain)
            .into_iter()
            .filter(|i| i.accepted)
            .flat_map(|i| i.entries)
            .collect()
    }
}
