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
/// itself; the validator's message on failure.
pub fn validate_json(schema_file: &str, doc: &str) -> Result<(), String> {
    validate_json_with(schema_file, &[], doc)
}

/// As [`validate_json`], for a schema that refers to the `embedded` schema
/// files by their `$id`.
pub fn validate_json_with(schema_file: &str, embedded: &[&str], doc: &str) -> Result<(), String> {
    let path = |f: &str| format!("{}/schema/{f}", env!("CARGO_MANIFEST_DIR"));
    // Debian's jsonschema 4.10 resolves an embedded schema's own '#/$defs'
    // against the root (a urn: $id is not a base URI it can join), so the
    // embedded schemas' $defs are also given to the root.
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1]))\n\
        store={}\n\
        for f in sys.argv[2:]:\n\
        \x20   ex=json.load(open(f))\n\
        \x20   schema.setdefault('$defs', {}).update(ex.get('$defs', {}))\n\
        \x20   store[ex['$id']]=ex\n\
        res=jsonschema.RefResolver.from_schema(schema, store=store)\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        jsonschema.Draft202012Validator(schema, resolver=res).validate(json.load(sys.stdin))\n";
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(path(schema_file))
        .args(embedded.iter().map(|f| path(f)))
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
