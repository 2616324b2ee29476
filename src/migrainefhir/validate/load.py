"""Reading what `migrainefhir validate` is given: Bundles, single resources, NDJSON files,
and folders (a Bulk Data export with manifest.json, or any folder of .json / .ndjson files).

A path that cannot be read at all raises errors.InputUnreadable; a line or file that is not
JSON becomes a `fhir.json-syntax` Problem and reading goes on. NDJSON is streamed line by line
(constant memory); a .json file is parsed whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from migrainefhir.errors import InputUnreadable
from migrainefhir.problems import Problem, Severity, Source, register_code

JSON_SYNTAX = register_code(
    "fhir.json-syntax",
    Severity.ERROR,
    "A file or NDJSON line that is not valid JSON, or not a JSON object.",
    "structure",
)

MANIFEST = "manifest.json"
SUFFIXES = (".json", ".ndjson")


@dataclass(frozen=True, slots=True)
class Document:
    """One JSON object read from the input, with where it came from."""

    data: dict[str, Any]
    source: Source


def is_manifest(data: dict[str, Any]) -> bool:
    return "resourceType" not in data and "transactionTime" in data and "output" in data


def read_json(path: Path) -> Document | Problem:
    """A whole .json file: one Document, or a fhir.json-syntax Problem."""
    source = Source(str(path))
    try:
        data = orjson.loads(_read_bytes(path))
    except orjson.JSONDecodeError:
        return Problem(JSON_SYNTAX, Severity.ERROR, "the file is not valid JSON", "$", source)
    if not isinstance(data, dict):
        return Problem(JSON_SYNTAX, Severity.ERROR, "the file holds no JSON object", "$", source)
    return Document(data, source)


def read_ndjson(path: Path) -> Iterator[Document | Problem]:
    """Each non-blank line of an NDJSON file, with its 1-based line number."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputUnreadable(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                source = Source(str(path), line=number)
                try:
                    data = orjson.loads(line)
                except orjson.JSONDecodeError:
                    yield Problem(
                        JSON_SYNTAX, Severity.ERROR, "the line is not valid JSON", "$", source
                    )
                    continue
                if isinstance(data, dict):
                    yield Document(data, source)
                else:
                    yield Problem(
                        JSON_SYNTAX, Severity.ERROR, "the line holds no JSON object", "$", source
                    )
        except OSError as exc:
            raise InputUnreadable(f"{path}: read failed ({exc.strerror or exc})") from exc


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputUnreadable(f"{path}: cannot read ({exc.strerror or exc})") from exc


def expand(paths: list[str]) -> list[Path]:
    """Check every path exists before any work starts (so a typo fails fast, exit code 3)."""
    out = []
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise InputUnreadable(f"{name}: no such file or folder")
        if path.is_file() and not name.endswith(SUFFIXES):
            raise InputUnreadable(f"{name}: not a .json or .ndjson file")
        out.append(path)
    return out


# What `migrainefhir export` writes beside the FHIR files: the run's summary and the rejected
# input records. Neither is FHIR, so in an export folder (both present at its top) they are
# not validated as resources.
EXPORT_SIDECARS = ("summary.json", "rejects.ndjson")


def folder_files(folder: Path) -> list[Path]:
    """The .json and .ndjson files of a folder and its subfolders, in a stable order
    (without the sidecars of a migrainefhir export folder)."""
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
    except OSError as exc:
        raise InputUnreadable(f"{folder}: cannot list ({exc.strerror or exc})") from exc
    sidecars = [folder / name for name in EXPORT_SIDECARS]
    if all(path.is_file() for path in sidecars):
        files = [path for path in files if path not in sidecars]
    return files
