"""Problems: the one value type for everything the tool reports about data.

A Problem is data, not an exception: a bad record becomes Problems and the batch goes on.
Every Problem carries a permanent code (see docs/problem-codes.md), a severity, a message
that never quotes free text or personal data, a JSONPath into the record or resource, and
the place in the input it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """FHIR OperationOutcome.issue.severity values we use (fatal is reserved for errors.py)."""

    ERROR = "error"
    WARNING = "warning"
    INFORMATION = "information"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record or resource came from.

    `line` is the 1-based line of a JSON/NDJSON file where the record starts; `row` is the
    1-based row of a CSV file as a spreadsheet numbers it (the header is row 1, so the first
    record is row 2). `entry` is the index of a resource inside a Bundle, when there is one.
    """

    file: str
    line: int | None = None
    row: int | None = None
    entry: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.row is not None:
            where += f" row {self.row}"
        if self.entry is not None:
            where += f" entry[{self.entry}]"
        return where

    def to_json(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {"file": self.file}
        if self.line is not None:
            out["line"] = self.line
        if self.row is not None:
            out["row"] = self.row
        if self.entry is not None:
            out["entry"] = self.entry
        return out


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth knowing) about one record or resource."""

    code: str
    severity: Severity
    message: str
    path: str = "$"
    source: Source | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def at(self, source: Source) -> Problem:
        """The same problem, placed at `source` (readers and validators know where; rules don't)."""
        return Problem(self.code, self.severity, self.message, self.path, source)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "path": self.path,
        }
        if self.source is not None:
            out["source"] = self.source.to_json()
        return out

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.severity.value} [{self.code}] {self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """The registry row of one permanent problem code (rendered into docs/problem-codes.md)."""

    code: str
    severity: Severity
    summary: str
    layer: str


# Every problem code the tool can report. A code is never reused for another meaning.
PROBLEM_CODES: dict[str, CodeInfo] = {}


def register_code(code: str, severity: Severity, summary: str, layer: str) -> str:
    """Register a permanent problem code at import time; returns the code for use as a constant.

    `layer` groups the docs table (read, input, structure, profile, rule, bundle, export).
    """
    known = PROBLEM_CODES.get(code)
    if known is not None and known != CodeInfo(code, severity, summary, layer):
        raise ValueError(f"problem code {code} registered twice with different meanings")
    PROBLEM_CODES[code] = CodeInfo(code, severity, summary, layer)
    return code


def error(code: str, message: str, path: str = "$") -> Problem:
    return Problem(code, Severity.ERROR, message, path)


def warning(code: str, message: str, path: str = "$") -> Problem:
    return Problem(code, Severity.WARNING, message, path)


def first_of_each(problems: Iterable[Problem], key: Callable[[Problem], Hashable]) -> list[Problem]:
    """The problems in order, each kept only the first time its `key` is seen."""
    seen: set[Hashable] = set()
    out = []
    for problem in problems:
        found = key(problem)
        if found not in seen:
            seen.add(found)
            out.append(problem)
    return out


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.is_error for p in problems)


_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(parts: Sequence[str | int]) -> str:
    """Render path parts as JSONPath: ("vitals", 0, "time") -> "$.vitals[0].time"."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_NAME.match(part):
            out += f".{part}"
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out += f"['{escaped}']"
    return out


# A field or column name as programs name fields: shown in messages; anything else may be data.
_SHOWN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


def shows_as_name(name: str) -> bool:
    """Whether a field or column name can be shown: ASCII letters, digits and `_`, at most 32
    characters, not starting with a digit (`sevrity`, `Family`, `valueStrin`), as the contract's
    and FHIR's own names are; a name with a space, a dash or a dot may be a value."""
    return _SHOWN_NAME.fullmatch(name) is not None


def shown_name(name: str) -> str:
    """A field, key or column name for a message: quoted when shows_as_name, else only its
    length. A malformed file (a row without a header, a JSON object written inside out) puts
    values where names belong, and messages must never quote data."""
    if shows_as_name(name):
        return f'"{name}"'
    return f"(a name of {len(name)} character{'' if len(name) == 1 else 's'}, not shown)"


# Words that are never data, shown when they stand where a code or a boolean belongs.
_PLACEHOLDERS = frozenset(
    {"yes", "no", "y", "n", "true", "false", "1", "0", "x", "-", "?", "n/a", "na", "none", "null"}
)


def shown_value(value: object, allowed: Iterable[object] = ()) -> str:
    """A value found where a code or a boolean belongs, for a message: quoted only when it is
    clearly not data (a spelling of an allowed code in another case or with spaces, a
    placeholder word such as yes or n/a, a JSON boolean or null); else only what kind of value
    it is and its length (`VMARK9Doe` may be a name that slipped into the wrong column)."""
    if value is None or isinstance(value, bool):
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, str):
        plain = value.strip().lower()
        codes = {str(code).lower() for code in allowed}
        if (plain in codes or plain in _PLACEHOLDERS) and len(value) <= 32 and value.isprintable():
            return f'"{value}"'
        return f"(a text of {len(value)} character{'' if len(value) == 1 else 's'}, not shown)"
    if isinstance(value, int | float):
        return "(a number, not shown)"
    if isinstance(value, list):
        return "(a list)"
    return "(an object)"


def child_path(path: str, *parts: str | int) -> str:
    """Extend an already rendered JSONPath with more parts."""
    return path + json_path(parts)[1:]


@dataclass(slots=True)
class Counts:
    """Records read, accepted (or exported) and rejected, per record type."""

    read: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    # Valid records left out on purpose (export --since: unchanged since the last run).
    skipped: dict[str, int] = field(default_factory=dict)
    # Input files that hold no records (a Bulk Data manifest, FHIR NDJSON): skipped whole.
    files_skipped: int = 0

    def count(self, record_type: str, accepted: bool) -> None:
        self.read[record_type] = self.read.get(record_type, 0) + 1
        bucket = self.accepted if accepted else self.rejected
        bucket[record_type] = bucket.get(record_type, 0) + 1

    def count_notice(self, notice: str) -> None:
        """A note about a whole file (RawRecord.notice): no record; a skipped file is counted."""
        if notice == "skipped-file":
            self.files_skipped += 1

    def count_skipped(self, record_type: str) -> None:
        self.read[record_type] = self.read.get(record_type, 0) + 1
        self.skipped[record_type] = self.skipped.get(record_type, 0) + 1

    @property
    def total_read(self) -> int:
        return sum(self.read.values())

    @property
    def total_accepted(self) -> int:
        return sum(self.accepted.values())

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def reconciles(self) -> bool:
        return self.total_read == self.total_accepted + self.total_rejected + self.total_skipped


@dataclass(slots=True)
class Report:
    """What a run found: every Problem, and the record counts that must reconcile."""

    problems: list[Problem] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)

    @property
    def error_count(self) -> int:
        return sum(1 for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warning_count(self) -> int:
        return sum(1 for p in self.problems if p.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        return self.error_count == 0


# How many problems of each severity a TalliedReport keeps in full (for the terminal and
# summary.json); `check` shows every problem, `export` these first ones and where the rest are.
FIRST_PROBLEMS = 20


@dataclass(slots=True)
class TalliedReport(Report):
    """A Report for runs too large to keep every Problem (export): every problem counted per
    code and severity, and only the first `keep` of each severity kept in full, in the order
    added. Memory stays flat in the number of problems; the full list is in the output files
    (rejects.ndjson). Add problems with `add`, never through `problems` directly."""

    keep: int = FIRST_PROBLEMS
    by_code: dict[str, int] = field(default_factory=dict)
    by_severity: dict[Severity, int] = field(default_factory=dict)

    def add(self, problems: Iterable[Problem]) -> None:
        for problem in problems:
            self.by_code[problem.code] = self.by_code.get(problem.code, 0) + 1
            seen = self.by_severity.get(problem.severity, 0)
            self.by_severity[problem.severity] = seen + 1
            if seen < self.keep:
                self.problems.append(problem)

    @property
    def error_count(self) -> int:
        return self.by_severity.get(Severity.ERROR, 0)

    @property
    def warning_count(self) -> int:
        return self.by_severity.get(Severity.WARNING, 0)

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())

    @property
    def left_out(self) -> int:
        """Problems counted but not kept in full."""
        return self.total - len(self.problems)
