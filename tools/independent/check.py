#!/usr/bin/env python3
"""Check FHIR R4 output with independent validators (see README.md in this folder).

    python3 tools/independent/check.py PATH... [--json] [--warnings] [--show-values]

PATH is a file or a folder (walked recursively, files in name order): `.json` files hold one
resource or a Bundle, `.ndjson` files one resource per line. JSON that is not a FHIR resource
(no resourceType: a Bulk Data manifest, our summary.json, rejects.ndjson lines) is skipped and
counted. A Bundle is checked as its shell (entries without their resources) plus each entry's
resource on its own, so every finding names the entry it is in.

Exit codes: 0 no errors, 1 errors found, 2 bad arguments or unreadable input, 3 the validators
are not installed (run tools/independent/install.sh).

Only the standard library: this runs under any Python 3.11+; the validators themselves run
in Node (node_modules/) and in this folder's own virtual environment (.venv/).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
VENV_PYTHON = HERE / ".venv" / "bin" / "python"
VALIDATORS = ("fhir.js", "r4-schema", "google-fhir-r4")


@dataclass(frozen=True)
class Item:
    """One resource to check, and where it came from."""

    file: str
    line: int | None  # NDJSON line, 1-based
    entry: int | None  # Bundle entry index, 0-based
    resource: Any

    def where(self) -> str:
        place = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.entry is not None:
            place += f" entry[{self.entry}]"
        return place

    def name(self) -> str:
        if not isinstance(self.resource, dict):
            return "(not an object)"
        kind = self.resource.get("resourceType", "?")
        if self.entry is None and kind == "Bundle":
            kind = "Bundle (shell)"
        rid = self.resource.get("id")
        return f"{kind}/{rid}" if isinstance(rid, str) else str(kind)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int | None
    entry: int | None
    resource: str
    validator: str
    severity: str
    path: str
    message: str


class Unreadable(Exception):
    pass


def collect(paths: list[str]) -> tuple[list[Item], int]:
    """Every resource in the paths, and how many JSON values were skipped as non-resources."""
    items: list[Item] = []
    skipped = 0
    for file in _files(paths):
        for line, value in _values(file):
            if not isinstance(value, dict) or "resourceType" not in value:
                skipped += 1
                continue
            items.extend(_split(str(file), line, value))
    return items, skipped


def _files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix in (".json", ".ndjson"))
            files.extend(sorted(p for p in found if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise Unreadable(f"{raw}: no such file or folder")
    return files


def _values(file: Path) -> list[tuple[int | None, Any]]:
    try:
        text = file.read_text(encoding="utf-8")
        if file.suffix == ".ndjson":
            return [
                (number, json.loads(line))
                for number, line in enumerate(text.splitlines(), start=1)
                if line.strip()
            ]
        return [(None, json.loads(text))]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unreadable(f"{file}: {exc}") from exc


def _split(file: str, line: int | None, resource: dict[str, Any]) -> list[Item]:
    """A resource, or a Bundle's shell followed by each entry's resource."""
    entries = resource.get("entry")
    if resource.get("resourceType") != "Bundle" or not isinstance(entries, list):
        return [Item(file, line, None, resource)]
    shell = dict(resource)
    shell["entry"] = [
        {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
        for e in entries
    ]
    items = [Item(file, line, None, shell)]
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and "resource" in entry:
            items.append(Item(file, line, index, entry["resource"]))
    return items


def missing_tools() -> list[str]:
    missing = []
    if not (NODE_MODULES / "fhir").is_dir():
        missing.append(str(NODE_MODULES))
    if not VENV_PYTHON.exists():
        missing.append(str(VENV_PYTHON))
    return missing


def run_validators(items: list[Item], google_per_shape: int | None) -> list[dict[str, Any]]:
    """Raw findings ({n, validator, severity, path, message}; n indexes items).

    Each distinct resource is validated once (Bundle formats repeat the same resources, and
    every validator gives the same answer for the same JSON) and its findings are given to
    every item that holds it. Google's parser is pure Python and about 100 times slower than
    the others (some 12 ms a resource), so it runs in one process per core; with
    google_per_shape it checks only the first that many distinct resources of each shape.
    """
    distinct: dict[str, int] = {}
    holders: list[list[int]] = []
    lines: list[str] = []
    for n, item in enumerate(items):
        text = json.dumps(item.resource, sort_keys=True, ensure_ascii=False)
        if text not in distinct:
            distinct[text] = len(lines)
            lines.append(json.dumps({"n": len(lines), "resource": item.resource}) + "\n")
            holders.append([])
        holders[distinct[text]].append(n)
    for_google = lines
    if google_per_shape is not None:
        per_shape: Counter[tuple[str, frozenset[str]]] = Counter()
        for_google = []
        for line, text in zip(lines, distinct, strict=True):
            key = shape(json.loads(text))
            per_shape[key] += 1
            if per_shape[key] <= google_per_shape:
                for_google.append(line)
    # One process per core, but each pays ~4 s to import the protos: not for a few resources.
    shares = max(1, min(os.cpu_count() or 1, 4, len(for_google) // 1000))
    jobs = [(["node", str(HERE / "node-validators.js")], "".join(lines))]
    jobs += [
        ([str(VENV_PYTHON), str(HERE / "google_parser.py")], "".join(for_google[k::shares]))
        for k in range(shares)
    ]
    with ThreadPoolExecutor(len(jobs)) as pool:
        outputs = list(pool.map(lambda job: _run(*job), jobs))
    found = [json.loads(line) for out in outputs for line in out.splitlines() if line.strip()]
    return [{**f, "n": n} for f in found for n in holders[f["n"]]]


def shape(resource: Any) -> tuple[str, frozenset[str]]:
    """A resource's type and the set of element paths it has (array positions ignored)."""
    paths: set[str] = set()
    stack: list[tuple[str, Any]] = [("", resource)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}", child) for key, child in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[]", child) for child in value)
        else:
            paths.add(path)
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    return str(kind), frozenset(paths)


def _run(command: list[str], stdin: str) -> str:
    done = subprocess.run(command, input=stdin.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}"
        )
    return done.stdout.decode()


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")


def redact(message: str) -> str:
    """Validators quote values; never print them by default (the output may be real records)."""
    return _QUOTED.sub(lambda m: m.group(0)[0] + "…" + m.group(0)[0], message)


def findings_for(items: list[Item], raw: list[dict[str, Any]], show_values: bool) -> list[Finding]:
    out = []
    for f in raw:
        item = items[f["n"]]
        message = f["message"] if show_values else redact(f["message"])
        out.append(
            Finding(
                item.file,
                item.line,
                item.entry,
                item.name(),
                f["validator"],
                f["severity"],
                f["path"],
                message,
            )
        )
    out.sort(key=lambda f: (f.file, f.line or 0, -1 if f.entry is None else f.entry, f.validator))
    return out


def print_text(items: list[Item], skipped: int, findings: list[Finding], warnings: bool) -> None:
    shown = [f for f in findings if warnings or f.severity == "error"]
    for f in shown:
        item = Item(f.file, f.line, f.entry, None)
        print(f"{item.where()}  {f.resource}  [{f.validator}] {f.severity}: {f.path}: {f.message}")
    errors = Counter(f.validator for f in findings if f.severity == "error")
    rejected = {(f.file, f.line, f.entry) for f in findings if f.severity == "error"}
    files = len({i.file for i in items})
    print(
        f"checked {len(items)} resources (Bundle shells and entries counted apart) in {files} "
        f"files, {skipped} non-resource JSON values skipped; {len(rejected)} rejected"
    )
    for name in VALIDATORS:
        print(f"  {name}: {errors.get(name, 0)} errors")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="files or folders of FHIR JSON / NDJSON")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--warnings", action="store_true", help="also print warnings")
    parser.add_argument(
        "--show-values", action="store_true", help="keep the values validators quote"
    )
    parser.add_argument(
        "--google-per-shape",
        type=int,
        metavar="N",
        help="Google's parser checks only the first N distinct resources of each shape "
        "(resource type + set of element paths); the other validators still check all",
    )
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        print(
            "independent validators not installed (missing "
            + ", ".join(missing)
            + "): run bash tools/independent/install.sh",
            file=sys.stderr,
        )
        return 3
    try:
        items, skipped = collect(args.paths)
    except Unreadable as exc:
        print(f"cannot read {exc}", file=sys.stderr)
        return 2
    findings = findings_for(items, run_validators(items, args.google_per_shape), args.show_values)
    if not args.warnings:
        findings = [f for f in findings if f.severity == "error"]
    if args.json:
        report = {
            "resources": len(items),
            "files": sorted({i.file for i in items}),
            "skipped": skipped,
            "findings": [asdict(f) for f in findings],
        }
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        print_text(items, skipped, findings, args.warnings)
    return 1 if any(f.severity == "error" for f in findings) else 0


if __name__ == "__main__":
    sys.exit(main())
