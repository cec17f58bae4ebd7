//! The JSON schemas in schema/ are each one self-contained file: a plain
//! validator given one file needs nothing else. Every `$ref` is local
//! (`#/...`) and points at something in the same file; a schema that embeds
//! another (the explanation in snp-validate's, both in the result's) holds a
//! copy under `$defs`, and the copy must stay equal to the file it copies.

use std::path::PathBuf;

use serde_json::{Map, Value};

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema")
}

fn load(name: &str) -> Value {
    let path = schema_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every schema file's name.
fn schema_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(schema_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// Every `$ref` value in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_ref_is_local_and_resolves() {
    let files = schema_files();
    for expected in ["result.schema.json", "snp-validate.schema.json"] {
        assert!(files.iter().any(|f| f == expected), "{files:?}");
    }
    let mut checked = 0;
    for file in &files {
        let doc = load(file);
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for r in found {
            let pointer = r
                .strip_prefix('#')
                .filter(|p| p.starts_with('/'))
                .unwrap_or_else(|| panic!("{file}: $ref {r:?} is not a local '#/...' reference"));
            assert!(
                doc.pointer(pointer).is_some(),
                "{file}: $ref {r:?} points at nothing in the file"
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} references found");
}

/// `$ref`s to `#/$defs/x` become `#/$defs/{prefix}_x`.
fn prefixed(v: &Value, prefix: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| match (k.as_str(), x) {
                    ("$ref", Value::String(r)) if r.starts_with("#/$defs/") => (
                        k.clone(),
                        Value::String(format!("#/$defs/{prefix}_{}", &r["#/$defs/".len()..])),
                    ),
                    _ => (k.clone(), prefixed(x, prefix)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| prefixed(x, prefix)).collect()),
        other => other.clone(),
    }
}

/// The `$defs` entries that embed `file` as `prefix`: its body (without
/// `$schema`, `$id` and `$defs`) as `prefix`, each of its `$defs` as
/// `prefix_name`, references renamed to match.
fn embedded(file: &str, prefix: &str) -> Map<String, Value> {
    let doc = load(file);
    let mut body: Map<String, Value> = doc.as_object().unwrap().clone();
    let defs = body.remove("$defs");
    body.remove("$schema");
    body.remove("$id");
    let mut out = Map::new();
    out.insert(prefix.to_string(), prefixed(&Value::Object(body), prefix));
    if let Some(Value::Object(defs)) = defs {
        for (name, def) in defs {
            out.insert(format!("{prefix}_{name}"), prefixed(&def, prefix));
        }
    }
    out
}

#[test]
fn embedded_copies_equal_their_files() {
    let mut copies = 0;
    for file in schema_files() {
        let doc = load(&file);
        let Some(defs) = doc.get("$defs").and_then(Value::as_object) else {
            continue;
        };
        for (name, def) in defs {
            let Some(comment) = def.get("$comment").and_then(Value::as_str) else {
                continue;
            };
            // "A copy of schema/F, its $defs as NAME_*: ..." on the copy itself.
            let Some(rest) = comment.strip_prefix("A copy of schema/") else {
                continue;
            };
            let (source, rest) = rest.split_once(", its $defs as ").unwrap();
            if !rest.starts_with(&format!("{name}_*")) {
                continue; // a copy inside a copy, checked with the outer one
            }
            for (key, want) in embedded(source, name) {
                let mut got = defs
                    .get(&key)
                    .unwrap_or_else(|| panic!("{file}: no $defs.{key} (from {source})"))
                    .clone();
                if key == *name {
                    got.as_object_mut().unwrap().remove("$comment");
                }
                assert_eq!(
                    got, want,
                    "{file}: $defs.{key} differs from schema/{source}"
                );
            }
            copies += 1;
        }
    }
    // The explanation in snp-validate's and the result's, snp-validate's in
    // the result's.
    assert_eq!(copies, 3);
}
