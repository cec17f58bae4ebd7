//! The key release through the QEMU guest agent: `snp-request` run in the
//! guest (`guest-exec`, then `guest-exec-status` until it exits), the
//! evidence read back (`guest-file-open`/`-read`/`-close`), and, once every
//! check passed, the sealed file written into the guest (`guest-file-open`
//! mode "w", `guest-file-write` in chunks, `guest-file-close`).
//!
//! The agent is in the untrusted host's reach: everything it returns is
//! hostile input, bounded and parsed strictly here. The security does not
//! rest on it: the evidence is validated exactly as `--report EVIDENCE`,
//! and the sealed file opens only with the key the validated report binds.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// The longest agent reply read: a 1 MiB evidence file in base64 chunks
/// is far below it.
pub const MAX_REPLY_LEN: usize = 1 << 20;
/// The longest evidence file read back (schema/snp-key-release.md).
pub const MAX_EVIDENCE_LEN: usize = 1 << 20;
/// Bytes asked for or sent per `guest-file-read` / `guest-file-write`.
pub const CHUNK: usize = 48 * 1024;
/// The most of snp-request's stderr shown in a message.
const MAX_STDERR_SHOWN: usize = 2048;
/// The pause between two `guest-exec-status`.
const POLL: Duration = Duration::from_millis(100);

/// One command to the guest agent and its reply text, as libvirt's
/// `virDomainQemuAgentCommand` carries them.
pub trait AgentChannel {
    /// Sends `cmd` (a JSON object) and returns the reply (`{"return": ...}`)
    /// within `timeout`.
    fn agent_command(&mut self, cmd: &str, timeout: Duration) -> Result<String>;
}

/// The owner's choices for the exchange through the agent.
#[derive(Debug, Clone)]
pub struct AgentPlan {
    /// The `virt-qemu-sev-validate` executable in the guest.
    pub command: String,
    /// snp-request's `--key-dir` in the guest.
    pub key_dir: String,
    /// Where the sealed file goes in the guest.
    pub sealed_path: String,
    /// How long snp-request may run, and each agent command wait.
    pub timeout: Duration,
    /// More arguments for snp-request (e.g. `--tsm-root=DIR`, `--vmpl=1`).
    pub extra_args: Vec<String>,
    /// The secrets to seal, as for `--inject-secret`.
    pub secrets: Vec<crate::sev::secrets::SecretSpec>,
}

impl AgentPlan {
    /// Where snp-request writes the evidence in the guest: in its key directory.
    pub fn evidence_path(&self) -> String {
        format!("{}/snp-evidence.json", self.key_dir.trim_end_matches('/'))
    }
}

/// What `snp-request` left when it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exited {
    /// Its exit code (None when a signal ended it).
    pub code: Option<i64>,
    /// The signal that ended it, if one did.
    pub signal: Option<i64>,
    /// Its standard error, as captured (bounded).
    pub stderr: Vec<u8>,
}

fn broke(what: &str, detail: &str) -> Error {
    Error::Protocol(format!(
        "the guest agent's reply to {what} {detail}: the agent, or the host relaying it, broke the guest agent protocol; nothing was written into the guest"
    ))
}

/// The `return` value of a reply, refused when too long or not
/// `{"return": ...}`.
pub fn reply_value(what: &str, text: &str) -> Result<Value> {
    if text.len() > MAX_REPLY_LEN {
        return Err(broke(
            what,
            &format!("is {} bytes, more than {MAX_REPLY_LEN}", text.len()),
        ));
    }
    let v: Value =
        serde_json::from_str(text).map_err(|e| broke(what, &format!("is not JSON ({e})")))?;
    match v {
        Value::Object(mut m) if m.len() == 1 && m.contains_key("return") => {
            Ok(m.remove("return").unwrap_or(Value::Null))
        }
        _ => Err(broke(what, "is not an object with only \"return\"")),
    }
}

fn field<'a>(what: &str, v: &'a Value, name: &str) -> Result<&'a Value> {
    v.get(name)
        .ok_or_else(|| broke(what, &format!("has no \"{name}\"")))
}

fn int_field(what: &str, v: &Value, name: &str, max: i64) -> Result<i64> {
    field(what, v, name)?
        .as_i64()
        .filter(|n| (0..=max).contains(n))
        .ok_or_else(|| {
            broke(
                what,
                &format!("has a \"{name}\" that is not a number in 0..={max}"),
            )
        })
}

fn bool_field(what: &str, v: &Value, name: &str) -> Result<bool> {
    field(what, v, name)?
        .as_bool()
        .ok_or_else(|| broke(what, &format!("has a \"{name}\" that is not true or false")))
}

/// Base64 data of at most `max` bytes once decoded.
fn b64_field(what: &str, v: &Value, name: &str, max: usize) -> Result<Vec<u8>> {
    let s = field(what, v, name)?
        .as_str()
        .ok_or_else(|| broke(what, &format!("has a \"{name}\" that is not a string")))?;
    if s.len() > max.div_ceil(3) * 4 {
        return Err(broke(
            what,
            &format!("has more than {max} bytes in \"{name}\""),
        ));
    }
    B64.decode(s)
        .map_err(|e| broke(what, &format!("has a \"{name}\" that is not base64 ({e})")))
}

/// `guest-exec`'s pid.
pub fn parse_exec(text: &str) -> Result<i64> {
    let v = reply_value("guest-exec", text)?;
    int_field("guest-exec", &v, "pid", i64::from(i32::MAX))
}

/// `guest-exec-status`: `None` while running, else how it ended.
pub fn parse_exec_status(text: &str) -> Result<Option<Exited>> {
    let what = "guest-exec-status";
    let v = reply_value(what, text)?;
    if !bool_field(what, &v, "exited")? {
        return Ok(None);
    }
    let opt_int = |name: &str| match v.get(name) {
        None => Ok(None),
        Some(_) => int_field(what, &v, name, 255).map(Some),
    };
    let (code, signal) = (opt_int("exitcode")?, opt_int("signal")?);
    if code.is_none() && signal.is_none() {
        return Err(broke(
            what,
            "says it exited with neither an exit code nor a signal",
        ));
    }
    let stderr = match v.get("err-data") {
        None => Vec::new(),
        Some(_) => b64_field(what, &v, "err-data", MAX_REPLY_LEN)?,
    };
    Ok(Some(Exited {
        code,
        signal,
        stderr,
    }))
}

/// `guest-file-open`'s handle.
pub fn parse_handle(text: &str) -> Result<i64> {
    let v = reply_value("guest-file-open", text)?;
    v.as_i64()
        .filter(|h| *h >= 0)
        .ok_or_else(|| broke("guest-file-open", "is not a file handle (a number)"))
}

/// `guest-file-read`: the bytes read (at most `asked`) and whether the end
/// of the file was reached.
pub fn parse_read(text: &str, asked: usize) -> Result<(Vec<u8>, bool)> {
    let what = "guest-file-read";
    let v = reply_value(what, text)?;
    let count = int_field(what, &v, "count", asked as i64)?;
    let data = b64_field(what, &v, "buf-b64", asked)?;
    if data.len() as i64 != count {
        return Err(broke(
            what,
            &format!("says {count} bytes but carries {}", data.len()),
        ));
    }
    Ok((data, bool_field(what, &v, "eof")?))
}

/// `guest-file-write`: the count written, which must be all of `sent`.
pub fn parse_write(text: &str, sent: usize) -> Result<()> {
    let what = "guest-file-write";
    let v = reply_value(what, text)?;
    let count = int_field(what, &v, "count", sent as i64)?;
    if count as usize != sent {
        return Err(Error::HostCall(format!(
            "the guest agent wrote {count} of {sent} bytes: the guest's file system refused the rest; free space there and run again"
        )));
    }
    Ok(())
}

/// A reply that must be an empty object or null (`guest-file-close`, `-flush`).
fn expect_empty(what: &str, text: &str) -> Result<()> {
    match reply_value(what, text)? {
        Value::Null => Ok(()),
        Value::Object(m) if m.is_empty() => Ok(()),
        _ => Err(broke(what, "is not empty")),
    }
}

/// Printable text of untrusted bytes: at most `MAX_STDERR_SHOWN` bytes,
/// control characters but newlines and tabs replaced.
pub fn shown(b: &[u8]) -> String {
    let cut = &b[..b.len().min(MAX_STDERR_SHOWN)];
    let mut s: String = String::from_utf8_lossy(cut)
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    if b.len() > cut.len() {
        s.push_str(" [...]");
    }
    s.trim_end().to_string()
}

fn send(ch: &mut dyn AgentChannel, plan: &AgentPlan, cmd: &Value) -> Result<String> {
    ch.agent_command(&cmd.to_string(), plan.timeout)
}

/// Runs snp-request in the guest for `nonce` and returns the evidence it wrote.
pub fn request_evidence(
    ch: &mut dyn AgentChannel,
    plan: &AgentPlan,
    nonce: &[u8; 32],
) -> Result<Vec<u8>> {
    let evidence = plan.evidence_path();
    let nonce_hex = crate::core::hex(nonce);
    let mut args: Vec<&str> = vec![
        "snp-request",
        "--nonce",
        &nonce_hex,
        "--key-dir",
        &plan.key_dir,
        "--evidence-out",
        &evidence,
    ];
    args.extend(plan.extra_args.iter().map(String::as_str));
    let cmd = json!({"execute": "guest-exec", "arguments": {
        "path": plan.command, "arg": args, "capture-output": true}});
    let pid = parse_exec(&send(ch, plan, &cmd)?)?;
    let exited = wait(ch, plan, pid)?;
    if exited.code != Some(0) {
        let how = match (exited.code, exited.signal) {
            (_, Some(s)) => format!("was killed by signal {s}"),
            (Some(c), None) => format!("exited with {c}"),
            (None, None) => "failed".into(),
        };
        return Err(Error::HostCall(format!(
            "'{} snp-request' in the guest {how}: {}; fix that in the guest (its --key-dir '{}' must exist, mode 0700, and configfs-tsm or /dev/sev-guest be there), or give --guest-request-command",
            plan.command,
            shown(&exited.stderr),
            plan.key_dir
        )));
    }
    read_file(ch, plan, &evidence, MAX_EVIDENCE_LEN)
}

/// Polls `guest-exec-status` until `pid` exited, for at most the plan's timeout.
fn wait(ch: &mut dyn AgentChannel, plan: &AgentPlan, pid: i64) -> Result<Exited> {
    let deadline = Instant::now() + plan.timeout;
    let cmd = json!({"execute": "guest-exec-status", "arguments": {"pid": pid}});
    loop {
        if let Some(e) = parse_exec_status(&send(ch, plan, &cmd)?)? {
            return Ok(e);
        }
        if Instant::now() >= deadline {
            return Err(Error::HostCall(format!(
                "the command run in the guest (pid {pid}) did not finish within {} s; check the guest, or give a longer --guest-timeout",
                plan.timeout.as_secs()
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Reads the guest file `path`, refusing more than `limit` bytes.
pub fn read_file(
    ch: &mut dyn AgentChannel,
    plan: &AgentPlan,
    path: &str,
    limit: usize,
) -> Result<Vec<u8>> {
    let open = json!({"execute": "guest-file-open", "arguments": {"path": path, "mode": "r"}});
    let handle = parse_handle(&send(ch, plan, &open)?)?;
    let result = read_all(ch, plan, handle, path, limit);
    let close = json!({"execute": "guest-file-close", "arguments": {"handle": handle}});
    let closed = send(ch, plan, &close).and_then(|r| expect_empty("guest-file-close", &r));
    let data = result?;
    closed?;
    Ok(data)
}

fn read_all(
    ch: &mut dyn AgentChannel,
    plan: &AgentPlan,
    handle: i64,
    path: &str,
    limit: usize,
) -> Result<Vec<u8>> {
    let cmd =
        json!({"execute": "guest-file-read", "arguments": {"handle": handle, "count": CHUNK}});
    let mut data = Vec::new();
    loop {
        let (chunk, eof) = parse_read(&send(ch, plan, &cmd)?, CHUNK)?;
        data.extend_from_slice(&chunk);
        if data.len() > limit {
            return Err(Error::Usage(format!(
                "the guest's '{path}' is more than {limit} bytes: it is not evidence snp-request wrote"
            )));
        }
        if eof || chunk.is_empty() {
            return Ok(data);
        }
    }
}

/// Writes `data` to the guest file `path` (created or truncated).
pub fn write_file(
    ch: &mut dyn AgentChannel,
    plan: &AgentPlan,
    path: &str,
    data: &[u8],
) -> Result<()> {
    let open = json!({"execute": "guest-file-open", "arguments": {"path": path, "mode": "w"}});
    let handle = parse_handle(&send(ch, plan, &open)?)?;
    let mut result = Ok(());
    for chunk in data.chunks(CHUNK) {
        let cmd = json!({"execute": "guest-file-write", "arguments": {
            "handle": handle, "buf-b64": B64.encode(chunk)}});
        result = send(ch, plan, &cmd).and_then(|r| parse_write(&r, chunk.len()));
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        let flush = json!({"execute": "guest-file-flush", "arguments": {"handle": handle}});
        result = send(ch, plan, &flush).and_then(|r| expect_empty("guest-file-flush", &r));
    }
    let close = json!({"execute": "guest-file-close", "arguments": {"handle": handle}});
    let closed = send(ch, plan, &close).and_then(|r| expect_empty("guest-file-close", &r));
    result?;
    closed
}

/// Puts `data` at the guest path `path` whole or not at all: written to
/// `PATH.partial`, then renamed by `mv` in the guest (the agent has no
/// rename of its own); on any failure the partial file is removed, so the
/// guest never finds a sealed file cut short.
pub fn place_file(
    ch: &mut dyn AgentChannel,
    plan: &AgentPlan,
    path: &str,
    data: &[u8],
) -> Result<()> {
    let partial = format!("{path}.partial");
    let placed = write_file(ch, plan, &partial, data)
        .and_then(|()| run_in_guest(ch, plan, "mv", &["-f", "--", &partial, path]));
    if placed.is_err() {
        let _ = run_in_guest(ch, plan, "rm", &["-f", "--", &partial]);
    }
    placed
}

/// Runs `program ARGS` in the guest (found on its PATH) and waits for it;
/// anything but exit status 0 is an error naming it.
fn run_in_guest(
    ch: &mut dyn AgentChannel,
    plan: &AgentPlan,
    program: &str,
    args: &[&str],
) -> Result<()> {
    let cmd = json!({"execute": "guest-exec", "arguments": {
        "path": program, "arg": args, "capture-output": true}});
    let pid = parse_exec(&send(ch, plan, &cmd)?)?;
    let exited = wait(ch, plan, pid)?;
    if exited.code == Some(0) {
        return Ok(());
    }
    Err(Error::HostCall(format!(
        "'{program} {}' in the guest failed: {}; the sealed file is not in place (the guest \
         needs {program} on its PATH and guest-exec allowed)",
        args.join(" "),
        shown(&exited.stderr)
    )))
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
