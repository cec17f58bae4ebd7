#!/usr/bin/env python3
"""Rewrites the copies one schema embeds of another, after the other changed.

Each schema file is self-contained (a plain validator resolves no URN), so
schema/snp-validate.schema.json holds a copy of snp-explanation's, and
schema/result.schema.json one of snp-validate's. A copy is the `$defs` entry
whose `$comment` starts "A copy of schema/F, its $defs as NAME_*": F's body
(without $schema, $id and $defs) as NAME, each of F's $defs as NAME_x, local
references renamed to match. tests/it/schemas.rs checks the copies; this
script writes them, one line per entry as the files keep them.

    scripts/sync-schema-copies.py          rewrite schema/*.json in place
"""
import json
import pathlib
import re

SCHEMA = pathlib.Path(__file__).resolve().parent.parent / "schema"
COPY = re.compile(r"^A copy of schema/([^,]+), its \$defs as ([a-z_]+)_\*")


def prefixed(v, prefix):
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if k == "$ref" and isinstance(x, str) and x.startswith("#/$defs/"):
                out[k] = f"#/$defs/{prefix}_{x[len('#/$defs/'):]}"
            else:
                out[k] = prefixed(x, prefix)
        return out
    if isinstance(v, list):
        return [prefixed(x, prefix) for x in v]
    return v


def embedded(source, prefix):
    doc = json.loads((SCHEMA / source).read_text())
    defs = doc.pop("$defs", {})
    doc.pop("$schema", None)
    doc.pop("$id", None)
    out = {prefix: prefixed(doc, prefix)}
    for name, d in defs.items():
        out[f"{prefix}_{name}"] = prefixed(d, prefix)
    return out


def sync(path):
    text = path.read_text()
    doc = json.loads(text)
    lines = text.split("\n")
    changed = False
    # The entries of the top-level "$defs", each on one line indented by 4.
    start = lines.index('  "$defs": {') + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("  }"))
    # Inner copies first: a copy inside a copy is rewritten with its outer one.
    for name, d in doc.get("$defs", {}).items():
        m = COPY.match(d.get("$comment", "")) if isinstance(d, dict) else None
        if not m or m.group(2) != name:
            continue
        for key, value in embedded(m.group(1), name).items():
            if key == name:
                value = {"$comment": d["$comment"], **value}
            head = f'    "{key}": '
            idx = [i for i in range(start, end) if lines[i].startswith(head)]
            if len(idx) != 1:
                raise SystemExit(f"{path.name}: $defs.{key} is not one line of its own")
            i = idx[0]
            comma = "," if lines[i].rstrip().endswith(",") else ""
            new = head + json.dumps(value, ensure_ascii=False) + comma
            if new != lines[i]:
                lines[i] = new
                changed = True
    if changed:
        path.write_text("\n".join(lines))
        json.loads(path.read_text())
        print(f"rewrote the copies in {path.name}")
    return changed


# A copy of a copy (result.schema.json's of snp-validate's explanation) is
# only right once the inner one is: repeat until a pass changes nothing.
for _ in range(5):
    if not any([sync(p) for p in sorted(SCHEMA.glob("*.json"))]):
        break
