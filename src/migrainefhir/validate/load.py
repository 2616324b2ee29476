"""Reading what `migrainefhir validate` is given: Bundles, single resources, NDJSON files,
and folders (a Bulk Data export with manifest.json, or any folder of .json / .ndjson files).

A path that cannot be read at all raises errors.InputUnreadable; a line or file that is not
JSON becomes a `fhir.json-syntax` Problem and reading goes on. NDJSON (also gzip-compressed,
`.ndjson.gz`, as `export --gzip` writes it) is streamed line by line (constant memory: a line
over MAX_NDJSON_LINE_BYTES is skipped in pieces, never held); a .json file is parsed whole, up
to MAX_JSON_FILE_BYTES. JSON nested deeper than MAX_FHIR_DEPTH is not validated (the
validator's layers recurse), it is reported as `fhir.too-deep`.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import orjson

from migrainefhir.errors import InputUnreadable
from migrainefhir.problems import Problem, Severity, Source, register_code

JSON_SYNTAX = register_code(
    "fhir.json-syntax",
    Severity.ERROR,
    "A file or NDJSON line that is not valid JSON, or not a JSON object.",
    "structure",
)

TOO_LARGE = register_code(
    "fhir.too-large",
    Severity.ERROR,
    "An NDJSON line longer than 16 MiB or a .json file larger than 256 MiB (MAX_NDJSON_LINE_BYTES, "
    "MAX_JSON_FILE_BYTES in validate/load.py): not read, so no input can take all the memory.",
    "structure",
)
TOO_DEEP = register_code(
    "fhir.too-deep",
    Severity.ERROR,
    "A resource with arrays/objects nested deeper than 100 levels (MAX_FHIR_DEPTH): not "
    "validated, so no input can exhaust the stack.",
    "structure",
)

# An NDJSON line longer than this is skipped (read in pieces of this size, never held whole).
# A resource of 16 MiB is far past any server's limit (HAPI's default request limit is 10 MB).
MAX_NDJSON_LINE_BYTES = 16 * 1024 * 1024
# A .json file (a Bundle, a resource) is parsed whole: past this size it is not read.
MAX_JSON_FILE_BYTES = 256 * 1024 * 1024
# JSON nesting (arrays and objects) deeper than this is not validated. Real FHIR nests far
# less (a Bundle entry's resource with a nested extension is about 10 levels; a Questionnaire
# item tree a few more); the validator's layers recurse, and Python's stack must hold them.
MAX_FHIR_DEPTH = 100

MANIFEST = "manifest.json"
SUFFIXES = (".json", ".ndjson", ".ndjson.gz")


@dataclass(frozen=True, slots=True)
class Document:
    """One JSON object read from the input, with where it came from."""

    data: dict[str, Any]
    source: Source


def is_manifest(data: dict[str, Any]) -> bool:
    return "resourceType" not in data and "transactionTime" in data and "output" in data


def read_json(path: Path) -> Document | Problem:
    """A whole .json file: one Document, or a fhir.json-syntax / too-large / too-deep Problem."""
    source = Source(str(path))
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputUnreadable(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if size > MAX_JSON_FILE_BYTES:
        message = f"the file is larger than {MAX_JSON_FILE_BYTES} bytes and was not read"
        return Problem(TOO_LARGE, Severity.ERROR, message, "$", source)
    return _document(_read_bytes(path), source, "file")


def _document(text: bytes, source: Source, what: str) -> Document | Problem:
    """One JSON object, or the Problem saying why not."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc):  # orjson's own, past ours
            return _too_deep(source, what)
        return Problem(JSON_SYNTAX, Severity.ERROR, f"the {what} is not valid JSON", "$", source)
    if not isinstance(data, dict):
        message = f"the {what} holds no JSON object"
        return Problem(JSON_SYNTAX, Severity.ERROR, message, "$", source)
    if _brackets(text) > MAX_FHIR_DEPTH and nesting_depth(data) > MAX_FHIR_DEPTH:
        return _too_deep(source, what)
    return Document(data, source)


def _too_deep(source: Source, what: str) -> Problem:
    message = f"the {what} nests arrays/objects more than {MAX_FHIR_DEPTH} levels deep"
    return Problem(TOO_DEEP, Severity.ERROR, message, "$", source)


def _brackets(text: bytes) -> int:
    """An upper bound of the nesting depth: no text with fewer brackets can nest deeper."""
    return text.count(b"[") + text.count(b"{")


def nesting_depth(value: object) -> int:
    """The depth of arrays/objects in a decoded JSON value (a scalar 0, `{"a": 1}` 1), walked
    level by level without recursion; the walk stops past MAX_FHIR_DEPTH."""
    depth = 0
    level: list[object] = [value] if isinstance(value, dict | list) else []
    while level and depth <= MAX_FHIR_DEPTH:
        depth += 1
        deeper: list[object] = []
        for item in level:
            if isinstance(item, dict):
                deeper.extend(c for c in item.values() if isinstance(c, dict | list))
            elif isinstance(item, list):
                deeper.extend(c for c in item if isinstance(c, dict | list))
        level = deeper
    return depth


def read_ndjson(path: Path) -> Iterator[Document | Problem]:
    """Each non-blank line of an NDJSON file (gzip-compressed when its name ends in .gz), with
    its 1-based line number; a line over MAX_NDJSON_LINE_BYTES is a fhir.too-large Problem."""
    try:
        handle = cast(
            IO[bytes],
            gzip.open(path, "rb")  # noqa: SIM115 (closed by the with below)
            if path.name.endswith(".gz")
            else path.open("rb"),
        )
    except OSError as exc:
        raise InputUnreadable(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with handle:
        number = 0
        try:
            for line, too_long in _lines(handle):
                number += 1
                source = Source(str(path), line=number)
                if too_long:
                    message = f"the line is longer than {MAX_NDJSON_LINE_BYTES} bytes; not read"
                    yield Problem(TOO_LARGE, Severity.ERROR, message, "$", source)
                elif line.strip():
                    yield _document(line, source, "line")
        except (gzip.BadGzipFile, EOFError, zlib.error):
            source = Source(str(path), line=number + 1)
            message = "the file is not valid gzip (or ends early); the rest was not read"
            yield Problem(JSON_SYNTAX, Severity.ERROR, message, "$", source)
        except OSError as exc:
            raise InputUnreadable(f"{path}: read failed ({exc.strerror or exc})") from exc


def _lines(stream: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """(line, too_long) for every line; a line longer than MAX_NDJSON_LINE_BYTES comes back
    once, empty, with too_long True, its bytes skipped a piece at a time."""
    while line := stream.readline(MAX_NDJSON_LINE_BYTES + 1):
        if len(line) <= MAX_NDJSON_LINE_BYTES or line.endswith(b"\n"):
            yield line, False
            continue
        while line and not line.endswith(b"\n"):
            line = stream.readline(MAX_NDJSON_LINE_BYTES)
        yield b"", True


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
# Written by some exports only (the Bundle formats), beside the two above.
OPTIONAL_SIDECARS = ("bundle-index.json",)


def folder_files(folder: Path) -> list[Path]:
    """The .json and .ndjson files of a folder and its subfolders, in a stable order
    (without the sidecars of a migrainefhir export folder)."""
    try:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
    except OSError as exc:
        raise InputUnreadable(f"{folder}: cannot list ({exc.strerror or exc})") from exc
    sidecars = [folder / name for name in EXPORT_SIDECARS]
    if all(path.is_file() for path in sidecars):
        skipped = {*sidecars, *(folder / name for name in OPTIONAL_SIDECARS)}
        files = [path for path in files if path not in skipped]
    return files
