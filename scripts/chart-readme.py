#!/usr/bin/env python3
"""Writes charts/work4life/README.md from README.md.tmpl and the `# --` comments of values.yaml.

  scripts/chart-readme.py           write the README
  scripts/chart-readme.py --check   fail if the README is not what this script would write

A comment block whose first line starts with `# --` documents the key right below it; lines
that follow it in the block continue the text, and `# -- (type) text` overrides the type shown.
Every key must be documented, except the keys of a section (a map some of whose keys are
documented: then each of its keys must be). A documented map whose keys carry no `# --`
comments is documented as a whole, its default shown in full. The check fails on an
undocumented key, so a new value cannot land without its line in the README.

Needs: pyyaml.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "work4life"
VALUES = CHART / "values.yaml"
TEMPLATE = CHART / "README.md.tmpl"
README = CHART / "README.md"
PLACEHOLDER = "@@VALUES_TABLE@@"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_./-]+):(?:\s|$)")
TYPE = re.compile(r"^\((?P<type>[^)]+)\)\s*")


def comments_by_path(text: str, data: dict[str, Any]) -> dict[tuple[str, ...], str]:
    """Maps the path of every key that has a `# --` comment to its text."""
    docs: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []
    block: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.lstrip("#").strip())
            continue
        if not stripped:
            block = []
            continue
        m = KEY.match(line)
        if not m:  # a list item or a continuation: not a key of the values tree
            block = []
            continue
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = tuple(k for _, k in stack) + (m["key"],)
        if resolves(data, path):
            stack.append((indent, m["key"]))
            if block and block[0].startswith("--"):
                docs[path] = " ".join([block[0][2:].strip()] + block[1:]).strip()
        block = []
    return docs


def resolves(data: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
    return True


def rows(data: dict[str, Any], docs: dict[tuple[str, ...], str], prefix: tuple[str, ...], errors: list[str]) -> list[tuple[str, str, str, str]]:
    out = []
    for key, value in data.items():
        path = prefix + (key,)
        is_section = isinstance(value, dict) and any(path + (k,) in docs or is_section_below(value[k], docs, path + (k,)) for k in value)
        if is_section:
            out += rows(value, docs, path, errors)
            continue
        if path not in docs:
            errors.append(".".join(path))
            continue
        text = docs[path]
        shown_type = type_name(value)
        m = TYPE.match(text)
        if m:
            shown_type, text = m["type"], text[m.end():]
        out.append((".".join(path), shown_type, default(value), text))
    return out


def is_section_below(value: Any, docs: dict[tuple[str, ...], str], path: tuple[str, ...]) -> bool:
    return isinstance(value, dict) and any(path + (k,) in docs or is_section_below(v, docs, path + (k,)) for k, v in value.items())


def type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object", type(None): "null"}[type(value)]


def default(value: Any) -> str:
    if value == "" or value == {} or value == []:
        return f"`{json.dumps(value)}`"
    return "`" + json.dumps(value, separators=(", ", ": ")).replace("|", "\\|") + "`"


def build() -> tuple[str, list[str]]:
    text = VALUES.read_text()
    data = yaml.safe_load(text)
    docs = comments_by_path(text, data)
    errors: list[str] = []
    table = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, kind, value, description in rows(data, docs, (), errors):
        description = description.replace("|", "\\|")
        table.append(f"| `{key}` | {kind} | {value} | {description} |")
    template = TEMPLATE.read_text()
    if PLACEHOLDER not in template:
        errors.append(f"{TEMPLATE.relative_to(ROOT)} lacks {PLACEHOLDER}")
    readme = template.replace(PLACEHOLDER, "\n".join(table))
    return readme, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale or a value is undocumented")
    args = parser.parse_args()
    readme, errors = build()
    if errors:
        for e in errors:
            print(f"values.yaml: {e}: no `# --` comment", file=sys.stderr)
        return 1
    rel = README.relative_to(ROOT)
    if args.check:
        if not README.exists() or README.read_text() != readme:
            print(f"{rel} is stale: run scripts/chart-readme.py", file=sys.stderr)
            return 1
        print(f"{rel} matches values.yaml")
        return 0
    README.write_text(readme)
    print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
