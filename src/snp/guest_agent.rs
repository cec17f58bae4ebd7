//! `--guest-agent` on an SEV-SNP domain: the whole key release from the
//! owner's machine through the domain's QEMU guest agent
//! ([`crate::snp::key_release::agent`]), between the run's stages
//! ([`super::run`]): the evidence is validated exactly as `--report
//! EVIDENCE --nonce`, and the sealed file written into the guest only
//! once every check passed.

use std::path::PathBuf;

use super::domain::SnpDomain;
use super::run::{attest, SnpOwner, SnpRun};
use crate::core::snp_secret::sealed::MAX_SEALED_LEN;
use crate::core::snp_secret::NONCE_LEN;
use crate::error::{Error, Result};
use crate::snp::key_release::agent::{self as key_agent, AgentChannel, AgentPlan};
use crate::snp::key_release::{files, SealPlan};
use crate::source::xml::GUEST_AGENT_CHANNEL;

/// `--guest-agent`: a fresh nonce, snp-request run in the guest through its
/// QEMU guest agent, the evidence validated exactly as `--report EVIDENCE
/// --nonce`, and only once every check passed the sealed file written into
/// the guest. The agent is the host's to tamper with: the report's binding
/// of the nonce and the guest's key, not the agent, makes this safe.
pub(crate) fn through_agent(
    owner: &SnpOwner,
    plan: &AgentPlan,
    agent: Option<&mut dyn AgentChannel>,
    domain: &SnpDomain,
    run: &mut SnpRun,
) -> Result<()> {
    let ch = agent_channel(run, agent)?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|e| {
        Error::Installation(format!(
            "this machine gave no random numbers for the nonce ({e}); check its random source"
        ))
    })?;
    let evidence = key_agent::request_evidence(ch, plan, &nonce)?;
    // The evidence and the sealed file pass through a private directory,
    // removed when this returns.
    let dir = tempfile::Builder::new()
        .prefix("virt-qemu-sev-validate-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .map_err(|e| {
            Error::Usage(format!(
                "cannot make a temporary directory ({e}): set TMPDIR to a directory you can write"
            ))
        })?;
    let evidence_path = dir.path().join("evidence.json");
    files::write_atomic(&evidence_path, &evidence, 0o600)?;
    let seal = SealPlan {
        nonce,
        secrets: plan.secrets.clone(),
        out: dir.path().join("sealed.bin"),
    };
    attest(owner, &evidence_path, Some(nonce), Some(&seal), domain, run)?;
    let sealed = files::read_bounded("sealed file", &seal.out, MAX_SEALED_LEN)?;
    if let Err(e) = key_agent::place_file(ch, plan, &plan.sealed_path, &sealed) {
        run.sealed = None;
        return Err(e);
    }
    if let Some(s) = &mut run.sealed {
        s.path = PathBuf::from(&plan.sealed_path);
    }
    run.guest_sealed = Some(plan.sealed_path.clone());
    Ok(())
}

/// The guest agent's channel, when the domain declares one.
fn agent_channel<'a>(
    run: &SnpRun,
    agent: Option<&'a mut dyn AgentChannel>,
) -> Result<&'a mut dyn AgentChannel> {
    let other_way = "or move the files by any other channel (ssh, virtio-serial): \
                     snp-request in the guest, then --report EVIDENCE --nonce NONCE \
                     --inject-secret ... --sealed-out FILE here";
    let declared = run
        .host
        .as_ref()
        .and_then(|h| h.domain.as_ref())
        .map(|d| d.guest_agent_channel);
    match (declared, agent) {
        (Some(true), Some(ch)) => Ok(ch),
        (Some(false), _) => Err(Error::Config(format!(
            "--guest-agent: the domain has no QEMU guest agent channel \
             (<channel type='unix'><target type='virtio' name='{GUEST_AGENT_CHANNEL}'/></channel>): \
             add one and run qemu-guest-agent in the guest, {other_way}"
        ))),
        _ => Err(Error::Usage(format!(
            "--guest-agent needs --domain: only libvirt reaches the guest agent; {other_way}"
        ))),
    }
}
