//! The agent's replies as hostile input: oversized, malformed, lying about
//! their counts; and the exchange against a scripted agent.

use super::*;
use crate::error::ExitCode;

fn plan() -> AgentPlan {
    AgentPlan {
        command: "/usr/bin/virt-qemu-sev-validate".into(),
        key_dir: "/run/snp-key/".into(),
        sealed_path: "/run/snp-key/sealed.bin".into(),
        timeout: Duration::from_secs(2),
        extra_args: vec!["--vmpl=1".into()],
        secrets: Vec::new(),
    }
}

fn protocol(r: Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(e) => {
            assert_eq!(e.exit_code(), ExitCode::QmpProtocol, "{e}");
            e.to_string()
        }
        Ok(v) => panic!("accepted: {v:?}"),
    }
}

#[test]
fn well_formed_replies() {
    assert_eq!(parse_exec(r#"{"return": {"pid": 4242}}"#).unwrap(), 4242);
    assert_eq!(
        parse_exec_status(r#"{"return": {"exited": false}}"#).unwrap(),
        None
    );
    // "b29wcw==" is base64 of "oops".
    let e =
        parse_exec_status(r#"{"return": {"exited": true, "exitcode": 2, "err-data": "b29wcw=="}}"#)
            .unwrap()
            .unwrap();
    assert_eq!(
        (e.code, e.signal, e.stderr.as_slice()),
        (Some(2), None, &b"oops"[..])
    );
    assert_eq!(parse_handle(r#"{"return": 1000}"#).unwrap(), 1000);
    // "aGVsbG8=" is base64 of "hello".
    let (d, eof) = parse_read(
        r#"{"return": {"count": 5, "buf-b64": "aGVsbG8=", "eof": true}}"#,
        8,
    )
    .unwrap();
    assert_eq!((d.as_slice(), eof), (&b"hello"[..], true));
    parse_write(r#"{"return": {"count": 5}}"#, 5).unwrap();
    assert_eq!(plan().evidence_path(), "/run/snp-key/snp-evidence.json");
}

#[test]
fn malformed_replies_are_protocol_errors() {
    for bad in [
        "",
        "not json",
        "[1, 2]",
        r#"{"error": {"class": "GenericError", "desc": "x"}}"#,
        r#"{"return": {"pid": 1}, "extra": 1}"#,
        r#"{"return": {"pid": -1}}"#,
        r#"{"return": {"pid": "12"}}"#,
        r#"{"return": {"pid": 1e300}}"#,
        r#"{"return": {"pid": 99999999999}}"#,
        r#"{"return": {}}"#,
    ] {
        protocol(parse_exec(bad));
    }
    for bad in [
        r#"{"return": {"exited": "yes"}}"#,
        r#"{"return": {"exited": true}}"#,
        r#"{"return": {"exited": true, "exitcode": 256}}"#,
        r#"{"return": {"exited": true, "exitcode": 1, "err-data": "!!!"}}"#,
        r#"{"return": {"exited": true, "exitcode": 1, "err-data": 5}}"#,
    ] {
        protocol(parse_exec_status(bad));
    }
    for bad in [
        r#"{"return": -3}"#,
        r#"{"return": "1"}"#,
        r#"{"return": null}"#,
    ] {
        protocol(parse_handle(bad));
    }
    // A count that lies about the data, more than asked, or bad base64.
    for bad in [
        r#"{"return": {"count": 4, "buf-b64": "aGVsbG8=", "eof": true}}"#,
        r#"{"return": {"count": 5, "buf-b64": "aGVsbG8=", "eof": true}}"#,
        r#"{"return": {"count": 3, "buf-b64": "aGVs", "eof": 1}}"#,
        r#"{"return": {"count": 3, "buf-b64": "aGV$", "eof": true}}"#,
    ] {
        protocol(parse_read(bad, 4));
    }
    protocol(parse_write(r#"{"return": {"count": 6}}"#, 5));
}

#[test]
fn oversized_replies_are_refused_before_parsing() {
    let big = format!(
        r#"{{"return": {{"pid": 1, "pad": "{}"}}}}"#,
        "a".repeat(MAX_REPLY_LEN)
    );
    assert!(protocol(parse_exec(&big)).contains("more than 1048576"));
    // Data larger than asked for is refused before it is decoded.
    let chunk = B64.encode(vec![0u8; 300]);
    let r = format!(r#"{{"return": {{"count": 200, "buf-b64": "{chunk}", "eof": true}}}}"#);
    assert!(protocol(parse_read(&r, 200)).contains("more than 200 bytes"));
}

#[test]
fn stderr_is_shown_bounded_and_printable() {
    assert_eq!(shown(b"a\x1b[31mb\x00c\n"), "a?[31mb?c");
    let long = vec![b'x'; 5000];
    let s = shown(&long);
    assert!(s.ends_with(" [...]") && s.len() == 2048 + 6, "{}", s.len());
}

/// An agent that answers from a script and records the commands.
struct Scripted {
    replies: Vec<String>,
    sent: Vec<Value>,
}

impl AgentChannel for Scripted {
    fn agent_command(&mut self, cmd: &str, _t: Duration) -> Result<String> {
        self.sent.push(serde_json::from_str(cmd).unwrap());
        if self.replies.is_empty() {
            return Err(Error::HostCall("no more replies".into()));
        }
        Ok(self.replies.remove(0))
    }
}

fn scripted(replies: &[&str]) -> Scripted {
    Scripted {
        replies: replies.iter().map(|s| s.to_string()).collect(),
        sent: Vec::new(),
    }
}

#[test]
fn a_failed_snp_request_says_its_stderr_and_reads_nothing() {
    // "bm8ga2V5IGRpcgo=" is base64 of "no key dir\n".
    let mut a = scripted(&[
        r#"{"return": {"pid": 7}}"#,
        r#"{"return": {"exited": false}}"#,
        r#"{"return": {"exited": true, "exitcode": 2, "err-data": "bm8ga2V5IGRpcgo="}}"#,
    ]);
    let e = request_evidence(&mut a, &plan(), &[0xab; 32]).unwrap_err();
    assert_eq!(e.exit_code(), ExitCode::HostCall);
    assert!(e.to_string().contains("exited with 2: no key dir"), "{e}");
    let exec = &a.sent[0]["arguments"];
    assert_eq!(exec["path"], "/usr/bin/virt-qemu-sev-validate");
    assert_eq!(exec["capture-output"], true);
    assert_eq!(exec["arg"][2], "ab".repeat(32));
    assert_eq!(exec["arg"][6], "/run/snp-key/snp-evidence.json");
    assert_eq!(exec["arg"][7], "--vmpl=1");
    assert_eq!(a.sent.len(), 3, "no file read after a failure");
}

#[test]
fn evidence_is_read_in_chunks_and_bounded() {
    let ok = |s: &str| format!(r#"{{"return": {}}}"#, s);
    let mut a = scripted(&[
        &ok(r#"{"pid": 7}"#),
        &ok(r#"{"exited": true, "exitcode": 0}"#),
        &ok("5"),
        &ok(r#"{"count": 5, "buf-b64": "aGVsbG8=", "eof": false}"#),
        &ok(r#"{"count": 0, "buf-b64": "", "eof": true}"#),
        &ok("{}"),
    ]);
    assert_eq!(
        request_evidence(&mut a, &plan(), &[0; 32]).unwrap(),
        b"hello"
    );
    assert_eq!(a.sent.last().unwrap()["execute"], "guest-file-close");
    // A file that never ends is cut at the limit, and still closed.
    let chunk = B64.encode(vec![7u8; CHUNK]);
    let full = ok(&format!(
        r#"{{"count": {CHUNK}, "buf-b64": "{chunk}", "eof": false}}"#
    ));
    let mut replies = vec![ok("3")];
    replies.extend(std::iter::repeat_n(full, 3));
    replies.push(ok("{}"));
    let mut a = Scripted {
        replies,
        sent: Vec::new(),
    };
    let e = read_file(&mut a, &plan(), "/x", 2 * CHUNK).unwrap_err();
    assert!(e.to_string().contains("more than"), "{e}");
    assert_eq!(a.sent.last().unwrap()["execute"], "guest-file-close");
}

#[test]
fn the_sealed_file_is_written_in_chunks() {
    let data: Vec<u8> = (0..(CHUNK + 10)).map(|i| i as u8).collect();
    let count = |n: usize| format!(r#"{{"return": {{"count": {n}}}}}"#);
    let mut a = scripted(&[
        r#"{"return": 9}"#,
        &count(CHUNK),
        &count(10),
        r#"{"return": {}}"#,
        r#"{"return": {}}"#,
    ]);
    write_file(&mut a, &plan(), "/run/snp-key/sealed.bin", &data).unwrap();
    let names: Vec<&str> = a
        .sent
        .iter()
        .map(|c| c["execute"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "guest-file-open",
            "guest-file-write",
            "guest-file-write",
            "guest-file-flush",
            "guest-file-close"
        ]
    );
    assert_eq!(a.sent[0]["arguments"]["mode"], "w");
    let mut written = Vec::new();
    for c in &a.sent[1..3] {
        written.extend(
            B64.decode(c["arguments"]["buf-b64"].as_str().unwrap())
                .unwrap(),
        );
    }
    assert_eq!(written, data);
}

#[test]
fn the_sealed_file_is_put_in_place_whole_or_not_at_all() {
    let ok = r#"{"return": {}}"#;
    let exited = |code: i32| format!(r#"{{"return": {{"exited": true, "exitcode": {code}}}}}"#);
    // Written beside its path, then renamed by mv in the guest.
    let mut a = scripted(&[
        r#"{"return": 9}"#,
        r#"{"return": {"count": 3}}"#,
        ok,
        ok,
        r#"{"return": {"pid": 7}}"#,
        &exited(0),
    ]);
    place_file(&mut a, &plan(), "/run/snp-key/sealed.bin", b"abc").unwrap();
    assert_eq!(
        a.sent[0]["arguments"]["path"],
        "/run/snp-key/sealed.bin.partial"
    );
    assert_eq!(a.sent[4]["execute"], "guest-exec");
    assert_eq!(a.sent[4]["arguments"]["path"], "mv");
    assert_eq!(
        a.sent[4]["arguments"]["arg"],
        serde_json::json!([
            "-f",
            "--",
            "/run/snp-key/sealed.bin.partial",
            "/run/snp-key/sealed.bin"
        ])
    );
    // mv fails: the partial file is removed and the error says so.
    let mut a = scripted(&[
        r#"{"return": 9}"#,
        r#"{"return": {"count": 3}}"#,
        ok,
        ok,
        r#"{"return": {"pid": 7}}"#,
        &exited(1),
        r#"{"return": {"pid": 8}}"#,
        &exited(0),
    ]);
    let e = place_file(&mut a, &plan(), "/run/snp-key/sealed.bin", b"abc").unwrap_err();
    assert!(e.to_string().contains("not in place"), "{e}");
    assert_eq!(a.sent[6]["arguments"]["path"], "rm");
    assert_eq!(
        a.sent[6]["arguments"]["arg"],
        serde_json::json!(["-f", "--", "/run/snp-key/sealed.bin.partial"])
    );
}
