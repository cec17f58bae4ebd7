//! JSON documents checked against the project's schema files by an
//! independent validator: Debian's python3-jsonschema (Draft 2020-12).

use std::io::Write;
use std::process::{Command, Stdio};

/// Whether python3-jsonschema can be imported (the caller skips, visibly,
/// or fails in CI when not).
pub fn have_jsonschema() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import jsonschema"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Validates `doc` against `schema/<schema_file>`, after checking the schema
/// itself; the validator's message on failure. Each schema is one file with
/// only local references (tests/it/schemas.rs), so nothing else is loaded.
pub fn validate_json(schema_file: &str, doc: &str) -> Result<(), String> {
    let path = format!("{}/schema/{schema_file}", env!("CARGO_MANIFEST_DIR"));
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        jsonschema.Draft202012Validator(schema).validate(json.load(sys.stdin))\n";
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .ok_or("no stdin for python3")?
        .write_all(doc.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
