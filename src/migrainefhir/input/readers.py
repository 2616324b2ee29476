"""Readers: input paths -> a stream of RawRecords (JSON, NDJSON/JSONL, CSV, stdin, folders).

Everything the reader can say about bad data is a RawRecord with Problems (read.* codes), so
a batch always goes on: a malformed NDJSON line, a CSV row with too many cells, an invalid
UTF-8 line, a whole file in UTF-16, an empty JSON file or a CSV header that cannot name its
columns each become one rejected record with its place in the input. A file with no records,
or that holds FHIR or export output rather than records, gives one note about the file instead
(a RawRecord with `notice` set: a warning, counted as no record). Only an input that cannot be
opened or read (missing, unreadable, unsupported type) raises errors.InputUnreadable.

Streaming: NDJSON and CSV are read line by line from bytes (each line decoded on its own, so
one bad line costs only that line); a JSON file is read whole and its array walked element by
element, so the elements before a syntax error are still read.

For a well-formed JSON/NDJSON record, `data` and `original` are the same dict (no copy per
record): later stages read it and must not change it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import orjson

from migrainefhir.errors import InputUnreadable, UsageError
from migrainefhir.input.csvform import (
    CSV_CASE,
    CSV_TRIMMED,
    KNOWN_COLUMNS,
    CellNote,
    RowShaper,
)
from migrainefhir.input.raw import FILE_NOTE, FILE_SKIPPED, RawRecord
from migrainefhir.input.records import RECORD_TYPES
from migrainefhir.problems import (
    Problem,
    Severity,
    Source,
    json_path,
    register_code,
    shown_name,
)

JSON_SYNTAX = register_code(
    "read.json-syntax",
    Severity.ERROR,
    "a JSON file, JSON array element or NDJSON line is not valid JSON",
    "read",
)
ENCODING = register_code(
    "read.encoding",
    Severity.ERROR,
    "the bytes are not UTF-8 (names the detected encoding if a BOM says UTF-16/32)",
    "read",
)
NOT_AN_OBJECT = register_code(
    "read.not-an-object",
    Severity.ERROR,
    "a record (NDJSON line, array element, JSON file) that is not a JSON object",
    "read",
)
CSV_ROW_SHAPE = register_code(
    "read.csv-row-shape",
    Severity.ERROR,
    "a CSV row with more or fewer cells than the header",
    "read",
)
CSV_CELL = register_code(
    "read.csv-cell",
    Severity.ERROR,
    "a CSV cell that does not fit its column's list/item form",
    "read",
)
TOO_LARGE = register_code(
    "read.too-large",
    Severity.ERROR,
    "a line or record over 1 MiB, or a JSON file over 64 MiB: it is not read (the limits are "
    "MAX_LINE_BYTES, MAX_RECORD_BYTES and MAX_JSON_FILE_BYTES)",
    "read",
)
TOO_DEEP = register_code(
    "read.too-deep",
    Severity.ERROR,
    "a record with arrays/objects nested deeper than 32 levels (MAX_DEPTH; the contract needs 3)",
    "read",
)
DUPLICATE_KEY = register_code(
    "read.duplicate-key",
    Severity.ERROR,
    "a JSON object with the same key twice: JSON parsers keep only one of the values, so the "
    "record is rejected rather than silently changed",
    "read",
)

CSV_HEADER = register_code(
    "read.csv-header",
    Severity.ERROR,
    "a CSV file without a usable header row (empty, a column without a name before the last, a "
    "name twice, a column no record type defines, not UTF-8): the file is rejected as one "
    "record and none of its rows is read; the other input files are read as usual",
    "read",
)
CSV_DELIMITER = register_code(
    "read.csv-delimiter",
    Severity.WARNING,
    "a CSV file whose header is separated by ';' (as spreadsheets in many European locales "
    "save it): the file is read with ';' between cells (once per file)",
    "read",
)
NO_RECORDS = register_code(
    "read.no-records",
    Severity.WARNING,
    "an input file with no records: an empty NDJSON file, a CSV file with only its header, a "
    "JSON file holding []",
    "read",
)
NOT_RECORDS = register_code(
    "read.not-records",
    Severity.WARNING,
    "an input file that holds no input records but FHIR or export output (a FHIR resource or "
    "Bundle, NDJSON of FHIR resources, a Bulk Data manifest, a migrainefhir summary.json or "
    "rejects.ndjson): skipped whole, one warning, counted as a skipped file; a file with a "
    "record in it is never skipped",
    "read",
)

INPUT_FORMATS = ("json", "ndjson", "csv")
FORMAT_BY_EXTENSION = {".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson", ".csv": "csv"}
STDIN = "-"
STDIN_NAME = "<stdin>"

# Limits, so that no input can take all the memory or the stack. Each is far above any record
# the contract allows: free text is capped at 4000 characters per field, the deepest record
# (session -> vitals -> reading) nests 3 levels, and a realistic session is under 20 KB.
# A line (NDJSON, CSV) longer than this is not read: its bytes are skipped, not held.
MAX_LINE_BYTES = 1024 * 1024
# A record (NDJSON line, JSON array element, CSV row over several lines) larger than this.
MAX_RECORD_BYTES = 1024 * 1024
# A JSON file is read whole (to walk its array): past this size, use NDJSON, which streams.
MAX_JSON_FILE_BYTES = 64 * 1024 * 1024
# Arrays/objects nested deeper than this (and far below orjson's 255 and Python's recursion
# limit, so rejects can always be written back out).
MAX_DEPTH = 32

UTF8_BOM = b"\xef\xbb\xbf"
# UTF-32 LE starts like UTF-16 LE, so it is tested first. No BOM contains a newline byte, so a
# BOM is always whole within a file's first line.
WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read inputs: --input-format (required for `-`, overrides file extensions) and
    --record-type (for CSV rows without a record_type cell)."""

    input_format: str | None = None
    record_type: str | None = None

    def __post_init__(self) -> None:
        if self.input_format is not None and self.input_format not in INPUT_FORMATS:
            raise UsageError(
                f"unknown input format {self.input_format!r}: use one of {', '.join(INPUT_FORMATS)}"
            )
        if self.record_type is not None and self.record_type not in RECORD_TYPES:
            raise UsageError(
                f"unknown record type {self.record_type!r}: use one of {', '.join(RECORD_TYPES)}"
            )


# ---------------------------------------------------------------------------------------------
# Paths


def _extension_format(path: str) -> str | None:
    return FORMAT_BY_EXTENSION.get(os.path.splitext(path)[1].lower())


def _folder_files(folder: str) -> list[str]:
    """The supported files directly in `folder`, by name; hidden files (editor locks, macOS
    `._` resource forks) are skipped. Subfolders are not read."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(
                entry.name
                for entry in entries
                if not entry.name.startswith(".")
                and _extension_format(entry.name) is not None
                and entry.is_file()
            )
    except OSError as exc:
        raise InputUnreadable(f"{folder}: the folder cannot be read ({exc.strerror})") from exc
    if not names:
        raise InputUnreadable(
            f"{folder}: the folder has no .json, .ndjson, .jsonl or .csv files "
            "(subfolders are not read)"
        )
    return [os.path.join(folder, name) for name in names]


def _expand_one(path: str, input_format: str | None) -> list[str]:
    if path == STDIN:
        return [path]
    if os.path.isdir(path):
        return _folder_files(path)
    if not os.path.exists(path):
        raise InputUnreadable(f"{path}: no such file or folder")
    if input_format is None and _extension_format(path) is None:
        raise InputUnreadable(
            f"{path}: unsupported file type (expected .json, .ndjson, .jsonl or .csv, "
            "or give --input-format)"
        )
    return [path]


def expand_inputs(paths: Sequence[str], input_format: str | None = None) -> list[str]:
    """The files to read, in order: files as given, each folder's supported files by name,
    `-` (stdin) kept; a file named twice (or also found in a named folder) is read once.

    With `input_format`, an explicitly named file of any extension is accepted (it is read in
    that format). Raises InputUnreadable for a missing path, a folder without supported files
    or an unsupported file type.
    """
    files: list[str] = []
    seen: set[str] = set()
    for path in paths:
        for file in _expand_one(path, input_format):
            key = file if file == STDIN else os.path.realpath(file)
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files


def read_records(
    paths: Sequence[str], options: ReadOptions, *, stdin: BinaryIO | None = None
) -> Iterator[RawRecord]:
    """Every record of every input, in order, as RawRecords (a lazy stream).

    Path errors (InputUnreadable) and `-` without an input format (UsageError) are raised
    here, before the first record; a file that fails while being read raises InputUnreadable
    from the stream. `stdin` replaces sys.stdin.buffer (for tests).
    """
    files = expand_inputs(paths, options.input_format)
    if STDIN in files and options.input_format is None:
        raise UsageError("reading standard input ('-') needs --input-format (json, ndjson or csv)")
    return _read_files(files, options, stdin)


def _read_files(
    files: Sequence[str], options: ReadOptions, stdin: BinaryIO | None
) -> Iterator[RawRecord]:
    for file in files:
        if file == STDIN:
            stream = stdin if stdin is not None else sys.stdin.buffer
            yield from _read_stream(stream, STDIN_NAME, file, options)
            continue
        try:
            handle = open(file, "rb")  # noqa: SIM115 (closed below, also when the consumer stops)
        except OSError as exc:
            raise InputUnreadable(f"{file}: cannot be opened ({exc.strerror})") from exc
        with handle:
            yield from _read_stream(handle, file, file, options)


def _read_stream(
    stream: BinaryIO, name: str, path: str, options: ReadOptions
) -> Iterator[RawRecord]:
    input_format = options.input_format or _extension_format(path)
    try:
        if input_format == "json":
            yield from read_json(stream, name)
        elif input_format == "ndjson":
            if stream.seekable():
                what = _export_ndjson(stream)
                stream.seek(0)
                if what is not None:
                    yield _skipped(Source(name, line=1), what)
                    return
            yield from read_ndjson(stream, name)
        elif input_format == "csv":
            yield from read_csv(stream, name, options.record_type)
        else:  # expand_inputs admits only known formats; a direct caller may not have used it
            raise InputUnreadable(f"{path}: unsupported file type")
    except OSError as exc:
        raise InputUnreadable(f"{name}: reading failed ({exc.strerror})") from exc


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _problem(code: str, message: str, source: Source, path: str = "$") -> Problem:
    return Problem(code, Severity.ERROR, message, path, source)


def _notice(code: str, message: str, source: Source, kind: str = FILE_NOTE) -> RawRecord:
    """A warning about a whole file, given instead of (or besides) its records."""
    warning = Problem(code, Severity.WARNING, message, "$", source)
    return RawRecord(source, None, None, (warning,), notice=kind)


def _no_records(source: Source, what: str) -> RawRecord:
    return _notice(NO_RECORDS, f"no records in {source.file}: {what}", source)


# The keys that name a file as FHIR or export output, not input records (read.not-records).
_RECORD_TYPE_KEY = b'"record_type"'
_BULK_MANIFEST_KEYS = frozenset({"transactionTime", "output"})
_SUMMARY_KEYS = frozenset({"records_read", "records_exported", "records_rejected"})
_BUNDLE_INDEX_KEYS = frozenset({"format", "bundles"})  # bundle-index.json (export/sinks.py)


def _is_fhir_resource(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("resourceType"), str)


def _not_records_json(content: bytes) -> str | None:
    """What a JSON file holds, when it clearly holds no input records: a FHIR resource or
    Bundle, an array of them, a Bulk Data manifest or a migrainefhir summary; else None.

    Conservative: a file in which `"record_type"` appears anywhere is records (and a record
    with a typo is rejected on its own), and so is anything that is not valid JSON."""
    if _RECORD_TYPE_KEY in content:
        return None
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if _is_fhir_resource(value):
        return "a FHIR resource"
    if isinstance(value, list) and value and all(_is_fhir_resource(item) for item in value):
        return "FHIR resources"
    if isinstance(value, dict) and value.keys() >= _BULK_MANIFEST_KEYS:
        return "a Bulk Data manifest"
    if isinstance(value, dict) and value.keys() >= _SUMMARY_KEYS:
        return "a migrainefhir export summary"
    if isinstance(value, dict) and value.keys() >= _BUNDLE_INDEX_KEYS:
        return "a migrainefhir export's Bundle index"
    return None


_REJECT_KEYS = frozenset({"source", "record", "problems"})
_FHIR_LINES = "FHIR resources, one per line"
_REJECT_LINES = "the rejected records of a migrainefhir export (rejects.ndjson)"


def _export_ndjson(stream: BinaryIO) -> str | None:
    """What an NDJSON stream holds when every line (at least one) is export output, not an
    input record: FHIR resources (an export's Type.ndjson) or migrainefhir's rejects lines;
    else None. A line that is a record (has record_type), or anything else, makes the file
    records, so a file of records is decided at its first line."""
    kind = None
    for line, too_long in _lines(stream):
        if too_long:
            return None
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(value, dict) or "record_type" in value:
            return None
        if _is_fhir_resource(value):
            this = _FHIR_LINES
        elif value.keys() == _REJECT_KEYS:
            this = _REJECT_LINES
        else:
            return None
        if kind not in (None, this):
            return None
        kind = this
    return kind


def _skipped(source: Source, what: str) -> RawRecord:
    message = (
        f"{source.file} holds {what}, not input records: the file is skipped "
        "(migrainefhir validate checks FHIR files)"
    )
    return _notice(NOT_RECORDS, message, source, FILE_SKIPPED)


def skipped_ndjson_notice(file: str, name: str) -> RawRecord | None:
    """The read.not-records notice of an NDJSON file of export output (FHIR resources, rejects),
    else None (for readers of a part of the file, which must decide as a reader of the whole
    file does)."""
    try:
        with open(file, "rb") as handle:
            what = _export_ndjson(handle)
    except OSError:
        return None  # the reader reports it
    return None if what is None else _skipped(Source(name, line=1), what)


def _wide_bom(start: bytes) -> str | None:
    for bom, encoding in WIDE_BOMS:
        if start.startswith(bom):
            return encoding
    return None


def _wide_encoding_record(source: Source, encoding: str) -> RawRecord:
    """The whole file, rejected once: it is in an encoding this tool does not read."""
    message = (
        f"the file is encoded as {encoding} (byte order mark); save it as UTF-8 and read it "
        "again; none of its records were read"
    )
    return RawRecord(source, None, None, (_problem(ENCODING, message, source),))


def _lines(stream: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """(line, too_long) for every line of the stream, line endings kept; a line longer than
    MAX_LINE_BYTES comes back once, empty, with too_long True (its bytes are skipped)."""
    readline = stream.readline
    while True:
        line = readline(MAX_LINE_BYTES)
        if not line:
            return
        if len(line) < MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line, False
            continue
        while line and not line.endswith(b"\n"):
            line = readline(MAX_LINE_BYTES)
        yield b"", True


def _without_line_end(text: str) -> str:
    return text.rstrip("\r\n")


def _as_utf8_text(text: str) -> str:
    """Text decoded with surrogateescape, made safe to write: each bad byte becomes U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return f"the literal {json.dumps(value)}"
    return "a number"


def _value_record(value: object, source: Source) -> RawRecord:
    """A decoded JSON value as a record: an object is one; anything else is read.not-an-object."""
    if isinstance(value, dict):
        return RawRecord(source, value, value)
    message = f"a record must be a JSON object; this is {_json_kind(value)}"
    return RawRecord(source, value, value, (_problem(NOT_AN_OBJECT, message, source),))


class _NotJsonNumber(ValueError):
    """NaN, Infinity or a number too large for a double: JSON (and orjson) have no such value."""


def _reject_constant(name: str) -> object:
    raise _NotJsonNumber(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotJsonNumber("a number too large for a double")
    return number


# The stdlib decoder, made as strict as orjson about numbers, and keeping exact big integers.
_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)

# \uD800-\uDFFF escapes: a lone one decodes to a string that cannot be written as UTF-8.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: object) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return True
    return False


_LONE_SURROGATE_MESSAGE = (
    "the record has a \\u escape of half a UTF-16 surrogate pair, which is not a character"
)

_KEY_TOKEN = re.compile(r'"[ \t\r\n]*:')
_KEY_TOKEN_BYTES = re.compile(rb'"[ \t\r\n]*:')


def _nesting(value: object) -> tuple[int, int]:
    """(depth, number of object keys) of a decoded JSON value; the walk stops past MAX_DEPTH.

    A scalar has depth 0, `{"a": 1}` depth 1, a session with vitals depth 3.
    """
    depth, keys = 0, 0
    level: list[object] = [value]
    while depth <= MAX_DEPTH:
        deeper: list[object] = []
        found = False
        for item in level:
            if isinstance(item, dict):
                found = True
                keys += len(item)
                deeper.extend(item.values())
            elif isinstance(item, list):
                found = True
                deeper.extend(item)
        if not found:
            break
        depth += 1
        level = deeper
    return depth, keys


def _first_duplicate(pairs: list[tuple[str, object]]) -> str | None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


def _duplicate_key(text: bytes | str) -> str | None:
    """The first key that appears twice in one object of `text` (valid JSON), else None."""
    found: list[str] = []

    def pairs_hook(pairs: list[tuple[str, object]]) -> dict[str, object]:
        duplicate = _first_duplicate(pairs)
        if duplicate is not None and not found:
            found.append(duplicate)
        return dict(pairs)

    try:
        json.loads(text, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):
        return None  # orjson read it; only the stdlib's own limits can get here
    return found[0] if found else None


def _duplicate_key_problem(key: str, source: Source) -> Problem:
    message = (
        f"the key {shown_name(key)} appears twice in one object: JSON keeps only one of the "
        "values, so the record is rejected rather than read with one of them"
    )
    return _problem(DUPLICATE_KEY, message, source)


def _too_deep_problem(source: Source) -> Problem:
    message = f"the record nests arrays/objects more than {MAX_DEPTH} levels deep"
    return _problem(TOO_DEEP, message, source)


# ---------------------------------------------------------------------------------------------
# NDJSON / JSONL


def read_ndjson(
    stream: BinaryIO, name: str, first_line: int = 1, *, whole_file: bool = True
) -> Iterator[RawRecord]:
    """One record per line; blank lines skipped; CRLF and a UTF-8 BOM accepted. A whole file
    without records gives the notice read.no-records.

    `first_line` is the file's line number of the stream's first line: a shard of a file that
    starts mid-file (export/shards.py) still reports the file's own line numbers; such a part
    of a file (`whole_file` False) gives no notice.
    """
    records = 0
    for record in _ndjson_records(stream, name, first_line):
        records += 1
        yield record
    if records == 0 and whole_file:
        yield _no_records(Source(name, line=1), "the NDJSON file has no lines but blank ones")


def _ndjson_records(stream: BinaryIO, name: str, first_line: int) -> Iterator[RawRecord]:
    line_number = first_line - 1
    for line, too_long in _lines(stream):
        line_number += 1
        if line_number == 1:
            encoding = _wide_bom(line)
            if encoding is not None:
                yield _wide_encoding_record(Source(name, line=1), encoding)
                return
            if line.startswith(UTF8_BOM):
                line = line[len(UTF8_BOM) :]
        source = Source(name, line=line_number)
        if too_long:
            message = f"the line is longer than {MAX_LINE_BYTES} bytes and was not read"
            yield RawRecord(source, None, None, (_problem(TOO_LARGE, message, source),))
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = _ndjson_slow_path(line, source)
            if record is not None:
                yield record
            continue
        yield _checked_line_record(value, line, source)


def _ndjson_slow_path(line: bytes, source: Source) -> RawRecord | None:
    """A line orjson rejected: blank (None), not UTF-8, not JSON, or JSON that orjson does not
    take but the stdlib does (an integer beyond 64 bits), decoded exactly."""
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"the line is not valid UTF-8 (first bad byte at byte {exc.start + 1})"
        original = _without_line_end(line.decode("utf-8", "replace"))
        return RawRecord(source, None, original, (_problem(ENCODING, message, source),))
    original = _without_line_end(text)
    try:
        value = _STRICT_JSON.decode(text)
    except json.JSONDecodeError as exc:
        message = f"the line is not valid JSON: {exc.msg} at column {exc.colno}"
        return RawRecord(source, None, original, (_problem(JSON_SYNTAX, message, source),))
    except RecursionError:
        return RawRecord(source, None, original, (_too_deep_problem(source),))
    except ValueError as exc:
        message = f"the line is not valid JSON: {_decode_failure(exc)}"
        return RawRecord(source, None, original, (_problem(JSON_SYNTAX, message, source),))
    if _has_lone_surrogate(value):
        return RawRecord(
            source, None, original, (_problem(ENCODING, _LONE_SURROGATE_MESSAGE, source),)
        )
    return _checked_line_record(value, text, source)


def _checked_line_record(value: object, line: bytes | str, source: Source) -> RawRecord:
    """A decoded NDJSON line as a record, unless it nests too deeply or repeats a key: then
    rejected, with the line's text as the original (the decoded value lost a repeated key's
    value, and a deep one could not be written back out)."""
    problem = None
    if _may_nest_too_deep(line) and _nesting(value)[0] > MAX_DEPTH:
        problem = _too_deep_problem(source)
    elif _may_repeat_a_key(value, line):
        duplicate = _duplicate_key(line)
        if duplicate is not None:
            problem = _duplicate_key_problem(duplicate, source)
    if problem is None:
        return _value_record(value, source)
    text = line if isinstance(line, str) else line.decode("utf-8")
    return RawRecord(source, None, _without_line_end(text), (problem,))


def _may_nest_too_deep(line: bytes | str) -> bool:
    """False when the line has too few brackets to nest past MAX_DEPTH (each level of nesting
    opens one; brackets inside strings only make the count larger), so no walk is needed."""
    if isinstance(line, str):
        return line.count("[") + line.count("{") > MAX_DEPTH
    return line.count(b"[") + line.count(b"{") > MAX_DEPTH


def _may_repeat_a_key(value: object, line: bytes | str) -> bool:
    """False when no object of the line can have a key twice; True when it may (then the line
    is decoded again, exactly, to find it).

    A line that orjson writes back byte for byte, as compact exports write it, has lost no
    key: a repeated key would be missing from what is written back. Otherwise every key is
    followed by `":`, so a line with no more such tokens than the value has keys repeats none
    (more tokens can also come from the token inside a string). Called only for values
    within MAX_DEPTH, which orjson can always write back.
    """
    if isinstance(line, bytes) and orjson.dumps(value) == line.rstrip(b"\r\n"):
        return False
    tokens = _KEY_TOKEN.findall(line) if isinstance(line, str) else _KEY_TOKEN_BYTES.findall(line)
    return len(tokens) > _nesting(value)[1]


def _decode_failure(exc: Exception) -> str:
    """A message for a decode failure that has no position (it never quotes the input)."""
    if isinstance(exc, _NotJsonNumber):
        return str(exc)
    return "a number with too many digits"


# ---------------------------------------------------------------------------------------------
# JSON


def read_json(stream: BinaryIO, name: str) -> Iterator[RawRecord]:
    """One record object, or an array of them; an empty file or `[]` has no records."""
    head = stream.read(4)
    encoding = _wide_bom(head)
    if encoding is not None:
        yield _wide_encoding_record(Source(name, line=1), encoding)
        return
    content = head + stream.read(MAX_JSON_FILE_BYTES + 1 - len(head))
    if len(content) > MAX_JSON_FILE_BYTES:
        source = Source(name, line=1)
        message = (
            f"the JSON file is larger than {MAX_JSON_FILE_BYTES} bytes and was not read: "
            "write large inputs as NDJSON (one record per line), which is read as a stream"
        )
        yield RawRecord(source, None, None, (_problem(TOO_LARGE, message, source),))
        return
    if content.startswith(UTF8_BOM):
        content = content[len(UTF8_BOM) :]
    if not content.strip():
        source = Source(name, line=1)
        message = (
            f"{name} is empty: a JSON input file holds one record object or an array of records"
        )
        yield RawRecord(source, None, None, (_problem(JSON_SYNTAX, message, source),))
        return
    what = _not_records_json(content)
    if what is not None:
        yield _skipped(Source(name, line=1), what)
        return
    try:
        text, clean = content.decode("utf-8"), True
    except UnicodeDecodeError:
        # Each bad byte becomes one lone surrogate: elements without one are still read.
        text, clean = content.decode("utf-8", "surrogateescape"), False
    yield from _JsonDocument(text, name, clean).records()


_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")


class _JsonDocument:
    """Walks a JSON text: one value, or an array whose elements are decoded one at a time."""

    def __init__(self, text: str, name: str, clean: bool) -> None:
        self.text = text
        self.name = name
        self.clean = clean  # False: the text has bad bytes, decoded as lone surrogates
        self._counted_to = 0
        self._line = 1
        # NaN, Infinity and overflowing numbers are flagged rather than raised, so only the
        # element that has one is rejected (raising would lose where the element ends).
        self._not_json_number = False
        self._duplicate_key: str | None = None  # the first repeated key of the current element
        self._decoder = json.JSONDecoder(
            parse_constant=self._flag_constant,
            parse_float=self._checked_float,
            object_pairs_hook=self._object,
        )

    def _object(self, pairs: list[tuple[str, object]]) -> dict[str, object]:
        obj = dict(pairs)
        if len(obj) != len(pairs) and self._duplicate_key is None:
            self._duplicate_key = _first_duplicate(pairs)
        return obj

    def _flag_constant(self, name: str) -> None:
        self._not_json_number = True

    def _checked_float(self, text: str) -> float:
        number = float(text)
        if not math.isfinite(number):
            self._not_json_number = True
        return number

    def line_at(self, pos: int) -> int:
        """1-based line of a position; positions mostly only grow, so counting is linear."""
        if pos >= self._counted_to:
            self._line += self.text.count("\n", self._counted_to, pos)
            self._counted_to = pos
            return self._line
        return 1 + self.text.count("\n", 0, pos)

    def skip_whitespace(self, pos: int) -> int:
        match = _JSON_WHITESPACE.match(self.text, pos)
        return match.end() if match else pos

    def records(self) -> Iterator[RawRecord]:
        text = self.text
        pos = self.skip_whitespace(0)
        if pos == len(text):
            return
        if text[pos] != "[":
            record, end = self.element(pos)
            yield record
            if end is not None:
                yield from self.expect_end(end)
            return
        pos = self.skip_whitespace(pos + 1)
        if text.startswith("]", pos):
            yield from self.expect_end(pos + 1)
            yield _no_records(Source(self.name, line=1), "the JSON array is empty")
            return
        while True:
            record, end = self.element(pos)
            yield record
            if end is None:
                return
            pos = self.skip_whitespace(end)
            if text.startswith(",", pos):
                pos = self.skip_whitespace(pos + 1)
            elif text.startswith("]", pos):
                yield from self.expect_end(pos + 1)
                return
            else:
                yield self.rest_unreadable(pos, pos, "expected ',' or ']' after an array element")
                return

    def expect_end(self, pos: int) -> Iterator[RawRecord]:
        pos = self.skip_whitespace(pos)
        if pos < len(self.text):
            yield self.rest_unreadable(pos, pos, "unexpected text after the end of the JSON value")

    def element(self, start: int) -> tuple[RawRecord, int | None]:
        """Decode the value at `start`: (record, end), or (the unreadable rest, None)."""
        source = Source(self.name, line=self.line_at(start))
        self._not_json_number = False
        self._duplicate_key = None
        try:
            value, end = self._decoder.raw_decode(self.text, start)
        except json.JSONDecodeError as exc:
            return self.rest_unreadable(start, exc.pos, exc.msg), None
        except RecursionError:
            return self.rest_unreadable(start, start, "", code=TOO_DEEP), None
        except ValueError as exc:
            return self.rest_unreadable(start, start, _decode_failure(exc)), None
        problem = None
        if self._not_json_number:
            message = "not valid JSON: NaN, Infinity or a number too large for a double"
            problem = _problem(JSON_SYNTAX, message, source)
        elif not self.clean or self.text.find("\\u", start, end) >= 0:
            problem = self.encoding_problem(start, end, value, source)
        if problem is None:
            problem = self.limits_problem(start, end, value, source)
        if problem is not None:
            original = self.text[start:end]
            if not self.clean:
                original = _as_utf8_text(original)
            return RawRecord(source, None, original, (problem,)), end
        return _value_record(value, source), end

    def encoding_problem(
        self, start: int, end: int, value: object, source: Source
    ) -> Problem | None:
        if not self.clean:
            try:
                self.text[start:end].encode("utf-8")
            except UnicodeEncodeError as exc:
                bad_line = source.line or 1
                bad_line += self.text.count("\n", start, start + exc.start)
                message = f"the record is not valid UTF-8 (a bad byte at line {bad_line})"
                return _problem(ENCODING, message, source)
        if _SURROGATE_ESCAPE.search(self.text, start, end) and _has_lone_surrogate(value):
            return _problem(ENCODING, _LONE_SURROGATE_MESSAGE, source)
        return None

    def limits_problem(self, start: int, end: int, value: object, source: Source) -> Problem | None:
        """An element over MAX_RECORD_BYTES, nested past MAX_DEPTH, or with a repeated key."""
        if end - start > MAX_RECORD_BYTES and len(self.text[start:end].encode()) > MAX_RECORD_BYTES:
            message = f"the record is larger than {MAX_RECORD_BYTES} bytes"
            return _problem(TOO_LARGE, message, source)
        brackets = self.text.count("[", start, end) + self.text.count("{", start, end)
        if brackets > MAX_DEPTH and _nesting(value)[0] > MAX_DEPTH:
            return _too_deep_problem(source)
        if self._duplicate_key is not None:
            return _duplicate_key_problem(self._duplicate_key, source)
        return None

    def line_at_offset(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def rest_unreadable(
        self, start: int, error_at: int, reason: str, code: str = JSON_SYNTAX
    ) -> RawRecord:
        """Everything from `start` on, as one rejected record; the problem points at the error."""
        record_source = Source(self.name, line=self.line_at(start))
        error_line = self.line_at_offset(error_at)
        column = error_at - self.text.rfind("\n", 0, error_at)
        error_source = Source(self.name, line=error_line)
        bad_byte = error_at < len(self.text) and "\udc80" <= self.text[error_at] <= "\udcff"
        if code == TOO_DEEP:
            message = (
                f"the value at line {error_line} column {column} nests arrays/objects too "
                "deeply to be read"
            )
        elif bad_byte and not self.clean:
            code = ENCODING
            message = f"a byte that is not UTF-8 at line {error_line} column {column}"
        else:
            code = JSON_SYNTAX
            message = f"not valid JSON: {reason} at line {error_line} column {column}"
        message += "; the rest of the file from here was not read"
        original = self.text[start:]
        if not self.clean:
            original = _as_utf8_text(original)
        return RawRecord(record_source, None, original, (_problem(code, message, error_source),))


# ---------------------------------------------------------------------------------------------
# CSV


# Where a CSV row is, in the terms of Python's csv module (strict, `"` quoting, doubled quotes
# inside a quoted cell): at the start of a cell, inside an unquoted cell, or inside a quoted one.
_CELL_START, _IN_CELL, _IN_QUOTES = range(3)


class _RowScanner:
    """Follows the csv module's quoting over bytes it does not keep, so that a row too large to
    read is skipped up to exactly where csv would end it: a newline inside a quoted cell does
    not end a row, so nothing inside a quoted cell is ever read as a row of its own.

    Fed a line (in pieces when it is long) at a time; `line_end()` says whether the row ends
    with that line. One byte may be held back between pieces (a `"` or the delimiter whose
    meaning depends on the next byte)."""

    def __init__(self, state: int, delimiter: bytes) -> None:
        self.state = state
        self.delimiter = delimiter
        self.held = b""
        self._quote_opens = re.compile(re.escape(delimiter) + b'"')

    def feed(self, data: bytes) -> None:
        data = self.held + data
        self.held = b""
        position, end = 0, len(data)
        while position < end:
            if self.state == _IN_QUOTES:
                found = data.find(b'"', position)
                if found < 0:
                    return
                if found + 1 == end:  # a doubled quote or the closing one: the next byte says
                    self.held = b'"'
                    return
                if data[found + 1 : found + 2] == b'"':
                    position = found + 2
                    continue
                self.state, position = _IN_CELL, found + 1
                continue
            if self.state == _CELL_START and data[position : position + 1] == b'"':
                self.state, position = _IN_QUOTES, position + 1
                continue
            opening = self._quote_opens.search(data, position)
            if opening is None:
                if data.endswith(self.delimiter):  # the next cell may open with a quote
                    self.held = self.delimiter
                self.state = _IN_CELL
                return
            self.state, position = _IN_QUOTES, opening.end()

    def line_end(self) -> bool:
        """The line fed so far has ended: True when the row ends with it."""
        if self.held == b'"':  # a quote just before the line end closes the cell
            self.state = _IN_CELL
        self.held = b""
        if self.state == _IN_QUOTES:
            return False
        self.state = _CELL_START
        return True


class _CsvLines:
    """Decodes a CSV byte stream line by line for csv.reader and remembers, per row, the raw
    lines it took and whether one of them was not UTF-8 or too long to read.

    A row that grows past MAX_RECORD_BYTES (or has a line past MAX_LINE_BYTES) is not fed to
    csv.reader: its bytes are followed with _RowScanner, without keeping them, to where the row
    ends, and csv.reader is given just enough to end the row there (the row is then rejected
    as read.too-large)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.wide_encoding: str | None = None
        self.delimiter = b","
        self.row_lines: list[str] = []
        self.row_bad_encoding = False
        self.row_too_long = False
        self.row_bytes = 0
        self.row_started = False  # a line of the current row has been given to csv.reader
        # After csv.reader gave up on a row inside a quoted cell: the rest of that row is skipped.
        self.skip_rest_of_row = False

    def __iter__(self) -> Iterator[str]:
        readline = self.stream.readline
        first = True
        while True:
            line = readline(MAX_LINE_BYTES)
            if not line:
                return
            if first:
                first = False
                self.wide_encoding = _wide_bom(line)
                if self.wide_encoding is not None:
                    return
                if line.startswith(UTF8_BOM):
                    line = line[len(UTF8_BOM) :]
            if self.skip_rest_of_row:
                self.skip_rest_of_row = False
                self._skip_row(line, _IN_QUOTES)
                continue
            too_long = len(line) >= MAX_LINE_BYTES and not line.endswith(b"\n")
            if too_long or self.row_bytes + len(line) > MAX_RECORD_BYTES:
                self.row_too_long = True
                continued = self.row_started
                self._skip_row(line, _IN_QUOTES if continued else _CELL_START)
                # csv.reader, inside a quoted cell of a row it has begun, gets the cell's end
                # and the row's; a row not begun gets a blank line: either way the row ends.
                yield '"\n' if continued else "\n"
                continue
            self.row_bytes += len(line)
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                text = line.decode("utf-8", "surrogateescape")
                self.row_bad_encoding = True
            self.row_lines.append(text)
            self.row_started = True
            yield text

    def _skip_row(self, line: bytes, state: int) -> None:
        """Read on, keeping nothing, to the end of the row `line` is part of."""
        scanner = _RowScanner(state, self.delimiter)
        readline = self.stream.readline
        while line:
            scanner.feed(line)
            if line.endswith(b"\n") and scanner.line_end():
                return
            line = readline(MAX_LINE_BYTES)

    def give_up_row(self, delimiter: str) -> None:
        """csv.reader stopped reading the current row in the middle (a cell over its field
        limit): when its lines so far end inside a quoted cell, the rest of the row is skipped
        too, rather than read as rows."""
        scanner = _RowScanner(_CELL_START, delimiter.encode())
        for text in self.row_lines:
            scanner.feed(text.encode("utf-8", "surrogateescape"))
            if text.endswith("\n"):
                scanner.line_end()
        self.skip_rest_of_row = scanner.state == _IN_QUOTES

    def start_row(self) -> None:
        self.row_lines.clear()
        self.row_bad_encoding = False
        self.row_too_long = False
        self.row_bytes = 0
        self.row_started = False

    def row_text(self) -> str:
        text = _without_line_end("".join(self.row_lines))
        return _as_utf8_text(text) if self.row_bad_encoding else text


def read_csv(stream: BinaryIO, name: str, record_type: str | None = None) -> Iterator[RawRecord]:
    """One record per row after the header; rows are numbered as a spreadsheet does (the
    header is row 1, blank rows count but give no record). `record_type` is used for rows
    without a record_type cell.

    A file whose header cannot name its columns (read.csv-header) is one rejected record: its
    rows are not read. A header separated by `;` switches the file to `;` between cells
    (read.csv-delimiter, a notice); a file with a header and no rows gives read.no-records.
    """
    lines = _CsvLines(stream)
    feed = iter(lines)  # one line iterator, whichever csv.reader reads it
    # strict: a quote opened and never closed, or text after a closing quote, is an error for
    # that row; lenient parsing would swallow the rest of the file into one cell, silently.
    rows = csv.reader(feed, strict=True)
    row_number = 0
    cells: list[str] | None = None
    while cells is None:
        lines.start_row()
        try:
            found = next(rows)
        except StopIteration:
            if lines.wide_encoding is not None:
                yield _wide_encoding_record(Source(name, row=1), lines.wide_encoding)
            else:
                yield _header_reject(
                    Source(name, row=max(row_number, 1)),
                    "the file is empty: a CSV input file starts with a header row naming its "
                    "columns",
                )
            return
        except csv.Error as exc:
            semicolon = _semicolon_cells(lines.row_text())
            if semicolon is None:
                reason = f"the header row cannot be split into cells ({exc})"
                yield _header_reject(Source(name, row=row_number + 1), reason, lines.row_text())
                return
            found = semicolon
        row_number += 1
        if any(found) or lines.row_too_long or lines.row_bad_encoding:
            cells = found
    source = Source(name, row=row_number)
    delimiter = ","
    if not isinstance(cells, _SemicolonCells) and len(cells) == 1:
        semicolon = _semicolon_cells(lines.row_text())
        if semicolon is not None:
            cells = semicolon
    if isinstance(cells, _SemicolonCells):
        delimiter = ";"
        lines.delimiter = b";"
        rows = csv.reader(feed, delimiter=";", strict=True)
        message = (
            f"{name}: the header is separated by ';', as spreadsheets save CSV in many "
            "locales: the file is read with ';' between cells (lists inside a cell then need "
            "quotes)"
        )
        yield _notice(CSV_DELIMITER, message, source)
    header, width, trouble = _checked_header(list(cells), lines)
    if trouble is not None:
        yield _header_reject(source, trouble, lines.row_text() or "")
        return
    header, renamed = _header_spelling(header)
    for code, what in renamed:
        yield _notice(code, f"{name}: {what}", source)
    shaper = RowShaper(header, record_type)
    records = 0
    while True:
        lines.start_row()
        try:
            cells = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            row_number += 1
            records += 1
            row_source = Source(name, row=row_number)
            if str(exc).startswith("field larger than field limit"):
                lines.give_up_row(delimiter)
                yield _row_too_large(
                    row_source, f"a cell longer than {csv.field_size_limit()} characters"
                )
            else:
                yield _row_unreadable(row_source, lines, str(exc))
            continue
        row_number += 1
        record = _csv_record(cells, width, Source(name, row=row_number), shaper, lines)
        if record is not None:
            records += 1
            yield record
    if records == 0:
        yield _no_records(source, "the CSV file has a header row and no rows")


class _SemicolonCells(list[str]):
    """Header cells found by splitting at `;` (the file is read with `;` between cells)."""


def _semicolon_cells(text: str) -> _SemicolonCells | None:
    """The header's cells when it is separated by `;` and names at least two of the
    contract's columns that way; else None."""
    if ";" not in text:
        return None
    try:
        cells = next(csv.reader([text], delimiter=";", strict=True))
    except (csv.Error, StopIteration):
        return None
    known = sum(1 for cell in cells if cell.strip() in KNOWN_COLUMNS)
    return _SemicolonCells(cells) if len(cells) >= 2 and known >= 2 else None


def _header_reject(source: Source, reason: str, original: str | None = None) -> RawRecord:
    message = reason if original is None else f"{reason}; none of the file's rows was read"
    return RawRecord(source, None, original, (_problem(CSV_HEADER, message, source),))


_MAX_COLUMNS_NAMED = 5


def _checked_header(cells: list[str], lines: _CsvLines) -> tuple[list[str], int, str | None]:
    """(columns, cells a row may have, what is wrong with the header or None).

    Empty columns at the end (Excel writes `...,headache,`) are dropped: a row may then have
    their cells, empty. Every other column needs a name that some record type defines, once.
    """
    if lines.row_bad_encoding:
        return cells, len(cells), "the header row is not valid UTF-8 text"
    if lines.row_too_long:
        return cells, len(cells), f"the header row is longer than {MAX_LINE_BYTES} bytes"
    width = len(cells)
    header = list(cells)
    while header and not header[-1].strip():
        header.pop()
    if not header:
        return header, width, "the header row names no columns"
    seen: set[str] = set()
    unknown: list[str] = []
    spelled, _ = _header_spelling(header)
    for position, column in enumerate(spelled, start=1):
        if not column.strip():
            return header, width, f"column {position} of the header row has no name"
        if column in seen:
            return header, width, f"column {shown_name(column)} appears twice in the header row"
        seen.add(column)
        if column not in KNOWN_COLUMNS:
            unknown.append(column)
    if unknown:
        named = ", ".join(shown_name(column) for column in unknown[:_MAX_COLUMNS_NAMED])
        more = len(unknown) - _MAX_COLUMNS_NAMED
        if more > 0:
            named += f" and {more} more"
        return (
            header,
            width,
            (
                f"the header names columns that no record type has: {named} (rename or remove "
                "them; a file without a header row needs one)"
            ),
        )
    return header, width, None


def _header_spelling(header: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The header with the spreadsheet habits undone in its names (spaces around a name, a
    name in capitals: ` Entry_ID`), and a note for each kind undone."""
    fixed, notes = [], []
    trimmed = cased = 0
    for column in header:
        if column in KNOWN_COLUMNS:
            fixed.append(column)
            continue
        plain = column.strip()
        trimmed += plain != column
        if plain.lower() in KNOWN_COLUMNS and plain not in KNOWN_COLUMNS:
            plain = plain.lower()
            cased += 1
        fixed.append(plain)
    if trimmed:
        notes.append((CSV_TRIMMED, f"spaces around {trimmed} column name(s) of the header removed"))
    if cased:
        notes.append((CSV_CASE, f"{cased} column name(s) of the header read in lower case"))
    return fixed, notes


def _is_utf8(text: str) -> bool:
    """False when text decoded with surrogateescape had bytes that are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _csv_encoding_record(cells: list[str], source: Source, header: Sequence[str]) -> RawRecord:
    """A row with bytes that are not UTF-8: one read.encoding problem per such cell."""
    problems = tuple(
        _problem(ENCODING, "the cell is not valid UTF-8", source, json_path((column,)))
        for column, cell in zip(header, cells, strict=True)
        if not _is_utf8(cell)
    )
    original = {column: _as_utf8_text(cell) for column, cell in zip(header, cells, strict=True)}
    if not problems:  # the bad byte was in a line ending or quoting, not in a cell
        problems = (_problem(ENCODING, "the row is not valid UTF-8", source),)
    return RawRecord(source, None, original, problems)


def _row_unreadable(source: Source, lines: _CsvLines, reason: str) -> RawRecord:
    message = f"the row cannot be split into cells ({reason})"
    return RawRecord(source, None, lines.row_text(), (_problem(CSV_ROW_SHAPE, message, source),))


def _row_too_large(source: Source, reason: str) -> RawRecord:
    message = f"the row was not read: it has {reason}"
    return RawRecord(source, None, None, (_problem(TOO_LARGE, message, source),))


def _csv_record(
    cells: list[str], width: int, source: Source, shaper: RowShaper, lines: _CsvLines
) -> RawRecord | None:
    if lines.row_too_long:
        return _row_too_large(
            source,
            f"a line longer than {MAX_LINE_BYTES} or a row larger than {MAX_RECORD_BYTES} bytes",
        )
    if not any(cells):
        return None  # a blank row (also `,,,` as spreadsheets export them): no data, no record
    header = shaper.header
    if len(header) < len(cells) <= width and not any(cells[len(header) :]):
        cells = cells[: len(header)]  # the empty cells of the header's unnamed last columns
    if len(cells) != len(header):
        message = f"the row has {len(cells)} cells but the header has {len(header)} columns"
        if len(header) < len(cells) <= width:
            message = "the row has a value in a column the header gives no name"
        if lines.row_bad_encoding:
            cells = [_as_utf8_text(cell) for cell in cells]
        return RawRecord(source, None, cells, (_problem(CSV_ROW_SHAPE, message, source),))
    if lines.row_bad_encoding:
        return _csv_encoding_record(cells, source, header)
    original = dict(zip(header, cells, strict=True))
    notes: list[CellNote] = []
    data, errors = shaper.to_record(cells, notes)
    if not errors and not notes:
        return RawRecord(source, data, original)
    problems = tuple(_problem(CSV_CELL, error.message, source, error.path) for error in errors)
    warnings = tuple(
        Problem(note.code, Severity.WARNING, note.message, note.path, source) for note in notes
    )
    return RawRecord(source, data, original, problems + warnings)
