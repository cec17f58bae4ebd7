//! `--guest-agent` and its options: the SEV-SNP key release done from the
//! owner's machine through the domain's QEMU guest agent
//! ([`crate::snp::key_release::agent`]).

use std::time::Duration;

use clap::Args;

use super::num::parse_u32;
use crate::error::{Error, Result};
use crate::sev::secrets::SecretSpec;
use crate::snp::key_release::agent::AgentPlan;

const AGENT: &str = "SEV-SNP key release through the QEMU guest agent (with --domain)";

/// The options of the key release through the guest agent.
#[derive(Debug, Clone, Args)]
pub struct GuestAgentArgs {
    /// With --domain on an SEV-SNP guest: do the whole key release through the domain's QEMU guest agent: a fresh nonce, snp-request run in the guest, its evidence validated as --report, and the --inject-secret secrets sealed and written into the guest only when every check passes
    #[arg(long, requires = "domain", help_heading = AGENT,
          conflicts_with_all = ["report", "nonce", "sealed_out", "qmp", "report_data", "no_report_data_check"])]
    pub guest_agent: bool,

    /// Where the sealed file is written in the guest
    #[arg(long, value_name = "PATH", default_value = "/run/snp-key/sealed.bin", help_heading = AGENT)]
    pub guest_sealed_path: String,

    /// snp-request's --key-dir in the guest (it must exist there, mode 0700); the evidence is written there too, as snp-evidence.json
    #[arg(long, value_name = "DIR", default_value = "/run/snp-key", help_heading = AGENT)]
    pub guest_key_dir: String,

    /// The virt-qemu-sev-validate executable in the guest (a path, or a name looked up in the agent's PATH)
    #[arg(long, value_name = "PATH", default_value = "virt-qemu-sev-validate", help_heading = AGENT)]
    pub guest_request_command: String,

    /// One more argument for snp-request in the guest, e.g. --guest-request-arg=--tsm-root=DIR or --guest-request-arg=--vmpl=1 (repeatable)
    #[arg(long, value_name = "ARG", allow_hyphen_values = true, help_heading = AGENT)]
    pub guest_request_arg: Vec<String>,

    /// Seconds snp-request may take in the guest, and each guest agent command
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = parse_u32, help_heading = AGENT)]
    pub guest_timeout: u32,
}

/// A guest path: absolute, without NUL or newline.
fn guest_path(option: &str, p: &str) -> Result<()> {
    if !p.starts_with('/') || p.contains(['\0', '\n']) {
        return Err(Error::Usage(format!(
            "{option} '{}' is not an absolute path in the guest: give one starting with /",
            p.escape_debug()
        )));
    }
    Ok(())
}

impl GuestAgentArgs {
    /// The exchange these options ask for, checked; `None` without `--guest-agent`.
    pub fn plan(&self, inject_secret: &[String]) -> Result<Option<AgentPlan>> {
        if !self.guest_agent {
            return Ok(None);
        }
        if inject_secret.is_empty() {
            return Err(Error::Usage(
                "--guest-agent needs --inject-secret ALIAS-OR-GUID:PATH, the secrets to seal to the validated guest".into(),
            ));
        }
        guest_path("--guest-sealed-path", &self.guest_sealed_path)?;
        guest_path("--guest-key-dir", &self.guest_key_dir)?;
        let nul = |s: &String| s.contains('\0');
        if self.guest_request_command.is_empty() || nul(&self.guest_request_command) {
            return Err(Error::Usage(
                "--guest-request-command is empty or holds a NUL byte: give the path of virt-qemu-sev-validate in the guest".into(),
            ));
        }
        if self.guest_request_arg.iter().any(nul) {
            return Err(Error::Usage(
                "a --guest-request-arg holds a NUL byte, which no argument can carry".into(),
            ));
        }
        let secrets = inject_secret
            .iter()
            .map(|s| SecretSpec::parse(s))
            .collect::<Result<Vec<_>>>()?;
        crate::sev::secrets::check_files(&secrets)?;
        Ok(Some(AgentPlan {
            command: self.guest_request_command.clone(),
            key_dir: self.guest_key_dir.clone(),
            sealed_path: self.guest_sealed_path.clone(),
            timeout: Duration::from_secs(u64::from(self.guest_timeout.max(1))),
            extra_args: self.guest_request_arg.clone(),
            secrets,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExitCode;

    fn args() -> GuestAgentArgs {
        GuestAgentArgs {
            guest_agent: true,
            guest_sealed_path: "/run/snp-key/sealed.bin".into(),
            guest_key_dir: "/run/snp-key".into(),
            guest_request_command: "virt-qemu-sev-validate".into(),
            guest_request_arg: Vec::new(),
            guest_timeout: 60,
        }
    }

    fn usage(a: &GuestAgentArgs, secrets: &[String]) -> String {
        let e = a.plan(secrets).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::UnsupportedUsage, "{e}");
        e.to_string()
    }

    #[test]
    fn plan_checks_its_options() {
        let off = GuestAgentArgs {
            guest_agent: false,
            ..args()
        };
        assert!(off.plan(&[]).unwrap().is_none());
        assert!(usage(&args(), &[]).contains("needs --inject-secret"));
        let key = tempfile::NamedTempFile::new().unwrap();
        let secret = vec![format!("luks-key:{}", key.path().display())];
        let relative = GuestAgentArgs {
            guest_key_dir: "run/snp-key".into(),
            ..args()
        };
        assert!(usage(&relative, &secret)
            .contains("--guest-key-dir 'run/snp-key' is not an absolute path"));
        let nul = GuestAgentArgs {
            guest_request_arg: vec!["--vmpl=1\0".into()],
            ..args()
        };
        assert!(usage(&nul, &secret).contains("NUL"));
        let missing = vec!["luks-key:/nonexistent/disk.key".to_string()];
        usage(&args(), &missing);
        let plan = args().plan(&secret).unwrap().unwrap();
        assert_eq!(plan.timeout, Duration::from_secs(60));
        assert_eq!(plan.secrets.len(), 1);
        assert_eq!(plan.evidence_path(), "/run/snp-key/snp-evidence.json");
    }
}
