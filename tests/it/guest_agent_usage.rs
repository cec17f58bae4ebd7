//! `--guest-agent`'s usage checks: each refused before any connection (exit 2), its message
//! naming the option and what to give; the guest side is tested end to end in
//! tests/e2e/e2e_snp_agent.rs.

use crate::common::tool::Tool;

/// Runs the main command with `args` (a domain that does not exist, on a connection that is
/// never opened: every case here is refused before), expects exit 2 and returns stderr.
#[track_caller]
fn refused(args: &[&str]) -> String {
    Tool::new()
        .args(["--connect", "test:///nonexistent", "--domain", "guest"])
        .args(args)
        .run()
        .expect_code(2)
        .stderr
}

#[test]
fn guest_agent_options_are_checked_before_connecting() {
    let key = tempfile::NamedTempFile::new().unwrap();
    let secret = format!("luks-key:{}", key.path().display());
    let err = refused(&["--guest-agent"]);
    assert!(err.contains("--guest-agent needs --inject-secret"), "{err}");
    let err = refused(&[
        "--guest-agent",
        "-s",
        &secret,
        "--guest-sealed-path",
        "sealed.bin",
    ]);
    assert!(
        err.contains("--guest-sealed-path 'sealed.bin' is not an absolute path in the guest"),
        "{err}"
    );
    let err = refused(&["--guest-agent", "-s", "luks-key:/nonexistent/disk.key"]);
    assert!(err.contains("/nonexistent/disk.key"), "{err}");
    for other in [
        &["--report", "evidence.json"][..],
        &["--nonce", &"00".repeat(32)],
        &["--sealed-out", "sealed.bin"],
        &["--report-data", &"00".repeat(64)],
    ] {
        let mut args = vec!["--guest-agent", "-s", &secret];
        args.extend_from_slice(other);
        let err = refused(&args);
        assert!(err.contains("cannot be used with"), "{other:?}: {err}");
    }
    // --guest-agent needs --domain: it is clap's error, before anything else.
    let o = Tool::new()
        .args(["--guest-agent", "-s", &secret])
        .run()
        .expect_code(2);
    assert!(o.stderr.contains("--domain"), "{}", o.stderr);
}
