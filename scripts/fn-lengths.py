#!/usr/bin/env python3
"""The longest functions under src/ (rustfmt layout): lines from `fn` to its
closing brace. Usage: scripts/fn-lengths.py [N] [DIR] (default 15, src)."""
import pathlib
import re
import sys

FN = re.compile(r'^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)')


def functions(path):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        indent = m.group(1)
        # A declaration without a body ends with ';' before any '{'.
        j = i
        while j < len(lines) and '{' not in lines[j] and not lines[j].rstrip().endswith(';'):
            j += 1
        if j >= len(lines) or '{' not in lines[j]:
            continue
        if lines[j].rstrip().endswith('}') and j == i:
            yield (1, f"{path}:{i + 1}", m.group(6))
            continue
        for k in range(j, len(lines)):
            if lines[k] == indent + '}':
                yield (k - i + 1, f"{path}:{i + 1}", m.group(6))
                break


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    root = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else 'src')
    found = sorted((f for p in root.rglob('*.rs') for f in functions(p)), reverse=True)
    for length, where, name in found[:n]:
        print(f"{length:5}  {name:32} {where}")


if __name__ == '__main__':
    main()
