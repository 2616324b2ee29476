"""CSV cell forms: how one CSV row becomes a record in the JSON shape of the input contract.

The contract (shared spec records.md, "Files and formats" and the "CSV forms" paragraphs):

- an empty cell means the field is absent (the key is left out);
- booleans are `true` / `false`; integers and numbers are written as in JSON;
- list fields are `;`-separated within the cell;
- nested lists are `;`-separated items whose parts are separated by `:` (medications
  `drug:dose_mg:relief`, adverse effects `effect:severity`) or by `|` where a part can itself
  contain `:` (vitals `time|phase|heart_rate|systolic|diastolic|spo2|respiratory_rate`, whose
  time has `:`; patient identifiers `system|value`, whose system is a URI).

The conversion is literal but for what spreadsheets do to cells, each undone with a warning
that names it (CellNote): spaces around a value that is not free text (` 7 `, a space after
`;` in a list), an Excel boolean (`TRUE`, `False`), a code in another case (`Left`, `SEVERE`).
Free text is never changed. Anything else that does not parse as its column's scalar type
stays a string, so the schema layer reports input.type on exactly that field. Only a list item
with the wrong number of parts cannot be put into the JSON shape at all: that is a CellError
(the reader reports it as read.csv-cell). Columns no record type defines are refused with the
header (readers.py); a column of another record type passes through as a string field (the
schema layer reports input.unknown-field).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache

from migrainefhir.input.records import DIARY_ENTRY, KETAMINE_SESSION, PATIENT
from migrainefhir.problems import Severity, json_path, register_code
from migrainefhir.schema import load_schema

CSV_TRIMMED = register_code(
    "read.csv-trimmed",
    Severity.WARNING,
    "spaces around a CSV cell or list item that is not free text (` 7 `, `nausea; vomiting`), "
    "or around a header's column names, were removed; free text is never changed",
    "read",
)
CSV_BOOLEAN = register_code(
    "read.csv-boolean",
    Severity.WARNING,
    "a CSV boolean written as spreadsheets do (TRUE, True, FALSE, False) was read as true / false",
    "read",
)
CSV_CASE = register_code(
    "read.csv-case",
    Severity.WARNING,
    "a code in a CSV cell (Left, SEVERE) or a column name of the header (Entry_ID) written in "
    "another case was read as the contract's lower-case spelling",
    "read",
)


class Kind(Enum):
    """The scalar and list kinds a CSV cell can hold."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING_LIST = "string list"  # `a;b;c`


@dataclass(frozen=True, slots=True)
class NestedForm:
    """A list of objects written as `;`-separated items of `separator`-separated parts."""

    separator: str
    parts: tuple[tuple[str, Kind], ...]

    @property
    def pattern(self) -> str:
        """The form as the contract writes it, e.g. `drug:dose_mg:relief` (for messages)."""
        return self.separator.join(name for name, _ in self.parts)


Column = Kind | NestedForm

STRING, INTEGER, NUMBER = Kind.STRING, Kind.INTEGER, Kind.NUMBER
BOOLEAN, STRING_LIST = Kind.BOOLEAN, Kind.STRING_LIST

MEDICATION_FORM = NestedForm(":", (("drug", STRING), ("dose_mg", NUMBER), ("relief", STRING)))
VITALS_FORM = NestedForm(
    "|",
    (
        ("time", STRING),
        ("phase", STRING),
        ("heart_rate", NUMBER),
        ("systolic", NUMBER),
        ("diastolic", NUMBER),
        ("spo2", NUMBER),
        ("respiratory_rate", NUMBER),
    ),
)
ADVERSE_EFFECT_FORM = NestedForm(":", (("effect", STRING), ("severity", STRING)))
IDENTIFIER_FORM = NestedForm("|", (("system", STRING), ("value", STRING)))

# One explicit table per record type: every field of the contract and the form its CSV cell
# takes. tests/test_csvform.py checks these tables against the shipped JSON Schemas.
DIARY_ENTRY_COLUMNS: Mapping[str, Column] = {
    "record_type": STRING,
    "entry_id": STRING,
    "patient_id": STRING,
    "date": STRING,
    "headache": BOOLEAN,
    "onset": STRING,
    "end": STRING,
    "duration_minutes": INTEGER,
    "severity": INTEGER,
    "severity_category": STRING,
    "laterality": STRING,
    "aura": BOOLEAN,
    "aura_symptoms": STRING_LIST,
    "symptoms": STRING_LIST,
    "prodrome": BOOLEAN,
    "postdrome": BOOLEAN,
    "triggers": STRING_LIST,
    "trigger_text": STRING,
    "medications": MEDICATION_FORM,
    "disability": STRING,
    "sleep_hours": NUMBER,
    "stress_level": INTEGER,
    "exercise_minutes": INTEGER,
    "notes": STRING,
    "recorded_at": STRING,
}

KETAMINE_SESSION_COLUMNS: Mapping[str, Column] = {
    "record_type": STRING,
    "session_id": STRING,
    "patient_id": STRING,
    "start": STRING,
    "end": STRING,
    "status": STRING,
    "status_reason": STRING,
    "route": STRING,
    "product": STRING,
    "dose_mg": NUMBER,
    "weight_kg": NUMBER,
    "dose_mg_per_kg": NUMBER,
    "rate_mg_per_kg_per_h": NUMBER,
    "course_id": STRING,
    "session_number": INTEGER,
    "indication": STRING,
    "performer_id": STRING,
    "performer_name": STRING,
    "performer_role": STRING,
    "location_id": STRING,
    "vitals": VITALS_FORM,
    "adverse_effects": ADVERSE_EFFECT_FORM,
    "pain_before": INTEGER,
    "pain_after": INTEGER,
    "post_care": STRING,
    "notes": STRING,
    "recorded_at": STRING,
}

PATIENT_COLUMNS: Mapping[str, Column] = {
    "record_type": STRING,
    "patient_id": STRING,
    "identifiers": IDENTIFIER_FORM,
    "family": STRING,
    "given": STRING_LIST,
    "birth_date": STRING,
    "gender": STRING,
    "recorded_at": STRING,
}

COLUMNS: Mapping[str, Mapping[str, Column]] = {
    DIARY_ENTRY: DIARY_ENTRY_COLUMNS,
    KETAMINE_SESSION: KETAMINE_SESSION_COLUMNS,
    PATIENT: PATIENT_COLUMNS,
}

LIST_SEPARATOR = ";"
RECORD_TYPE_COLUMN = "record_type"

# Every column any record type defines: a header naming another is refused (readers.py).
KNOWN_COLUMNS = frozenset(name for table in COLUMNS.values() for name in table)

# Free text (the schemas' text fields): kept exactly as written, spaces and all.
FREE_TEXT = frozenset(
    {"notes", "trigger_text", "status_reason", "post_care", "performer_name", "family", "given"}
)


@cache
def allowed_codes(record_type: str) -> dict[str, frozenset[str]]:
    """The allowed codes of each coded field of a record type, from its schema: keyed by
    column (`laterality`, a list column `symptoms`) or by column and part (`medications.drug`)."""
    schema = load_schema(f"{record_type}.schema.json")
    found: dict[str, frozenset[str]] = {}
    for name, sub in schema["properties"].items():
        if "enum" in sub:
            found[name] = frozenset(sub["enum"])
        items = sub.get("items", {})
        if "enum" in items:
            found[name] = frozenset(items["enum"])
        ref = items.get("$ref", "")
        if ref.startswith("#/$defs/"):
            for part, part_schema in schema["$defs"][ref[8:]].get("properties", {}).items():
                if "enum" in part_schema:
                    found[f"{name}.{part}"] = frozenset(part_schema["enum"])
    return found


@dataclass(frozen=True, slots=True)
class CellError:
    """A cell that does not fit its column's list/item form (the reader makes it a Problem)."""

    path: str
    message: str


@dataclass(frozen=True, slots=True)
class CellNote:
    """A spreadsheet habit undone in a cell (a warning: code CSV_TRIMMED, CSV_BOOLEAN or
    CSV_CASE); the reader makes it a Problem."""

    code: str
    path: str
    message: str


class _Cleaner:
    """Undoes the spreadsheet habits in one column's cells (or list items, or item parts)."""

    def __init__(self, label: str, codes: frozenset[str] | None, free_text: bool) -> None:
        self.label = label
        self.codes = codes
        self.free_text = free_text

    def __call__(self, value: str, where: tuple[str | int, ...], notes: list[CellNote]) -> str:
        """`value` with the habits undone; `where` is its path (rendered only for a note)."""
        if self.free_text or not value:
            return value
        codes = self.codes
        if not value[0].isspace() and not value[-1].isspace():
            if codes is None or value in codes:
                return value  # the usual cell: nothing to undo
        else:
            value = value.strip()
            message = f"{self.label}: spaces around the value removed"
            notes.append(CellNote(CSV_TRIMMED, json_path(where), message))
        if codes is not None and value not in codes and value.lower() in codes:
            lower = value.lower()
            message = f"{self.label}: {value!r} read as {lower!r} (codes are lower case)"
            notes.append(CellNote(CSV_CASE, json_path(where), message))
            value = lower
        return value


def _boolean_note(label: str, value: str, path: str, notes: list[CellNote]) -> str:
    lower = value.lower()
    if value not in ("true", "false") and lower in ("true", "false"):
        message = f"{label}: {value!r} read as {lower} (booleans are true / false)"
        notes.append(CellNote(CSV_BOOLEAN, path, message))
        return lower
    return value


# JSON's number grammar, except that leading zeros are accepted (spreadsheets write them).
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?", re.ASCII)
_MAX_INT_DIGITS = 4300  # int() refuses longer digit strings (CVE-2020-10735 limit)


def parse_number(cell: str) -> int | float | str:
    """`12` -> 12, `-0.5` -> -0.5, `1e3` -> 1000.0; anything else stays the string it was.

    Python's own int()/float() are too lenient for a contract (they accept spaces, `1_000`,
    `nan`, `inf` and non-ASCII digits), hence the explicit grammar.
    """
    if cell.isdigit() and cell.isascii() and len(cell) <= _MAX_INT_DIGITS:
        return int(cell)  # the common case, without the regex
    if _NUMBER.fullmatch(cell) is None:
        return cell
    if "." in cell or "e" in cell or "E" in cell:
        number = float(cell)
        return number if math.isfinite(number) else cell
    return int(cell) if len(cell) <= _MAX_INT_DIGITS else cell


def parse_boolean(cell: str) -> bool | str:
    if cell == "true":
        return True
    if cell == "false":
        return False
    return cell


def split_list(cell: str) -> list[str]:
    return cell.split(LIST_SEPARATOR)


ScalarConverter = Callable[[str], object]

# How a scalar cell (or item part) becomes its JSON value; None: it stays the string it is.
# INTEGER and NUMBER convert alike: the schema tells 2.5 from an integer, with the right code.
SCALAR_CONVERTERS: Mapping[Kind, ScalarConverter | None] = {
    Kind.STRING: None,
    Kind.INTEGER: parse_number,
    Kind.NUMBER: parse_number,
    Kind.BOOLEAN: parse_boolean,
    Kind.STRING_LIST: split_list,
}

CellConverter = Callable[[str, list[CellError], list[CellNote]], object]


class _NestedConverter:
    """Turns a nested-list cell (`a:1:x;b::y`) into a list of objects."""

    def __init__(self, column: str, form: NestedForm, codes: Mapping[str, frozenset[str]]) -> None:
        self.column = column
        self.form = form
        self.parts = tuple(
            (
                name,
                SCALAR_CONVERTERS[kind],
                _Cleaner(f"{column} {name}", codes.get(f"{column}.{name}"), free_text=False),
            )
            for name, kind in form.parts
        )

    def __call__(
        self, cell: str, errors: list[CellError], notes: list[CellNote]
    ) -> list[dict[str, object]] | str:
        """The list of items; the cell as it was when an item has the wrong number of parts."""
        items: list[dict[str, object]] = []
        separator, width, fits = self.form.separator, len(self.parts), True
        for index, item in enumerate(cell.split(LIST_SEPARATOR)):
            parts = item.split(separator)
            if len(parts) != width:
                errors.append(self.wrong_parts(index, len(parts)))
                fits = False
                continue
            obj: dict[str, object] = {}
            for (name, convert, clean), part in zip(self.parts, parts, strict=True):
                part = clean(part, (self.column, index, name), notes)
                if part:  # an empty part: that field is absent
                    obj[name] = part if convert is None else convert(part)
            items.append(obj)
        return items if fits else cell

    def wrong_parts(self, index: int, found: int) -> CellError:
        form = self.form
        return CellError(
            json_path((self.column, index)),
            f"{self.column} item {index + 1} has {found} part(s) separated by "
            f"'{form.separator}'; the CSV form is {form.pattern} "
            f"({len(form.parts)} parts, empty parts allowed), items separated by ';'",
        )


def _converter(
    column: str, form: Column, codes: Mapping[str, frozenset[str]]
) -> CellConverter | _Cleaner | None:
    """The function turning one non-empty cell of `column` into its JSON value (None: as is;
    a _Cleaner: text kept as is but for spaces around it, checked inline by to_record)."""
    if isinstance(form, NestedForm):
        return _NestedConverter(column, form, codes)
    free_text = column in FREE_TEXT
    if free_text and form is Kind.STRING:
        return None
    codes_of_column = codes.get(column)
    clean = _Cleaner(column, codes_of_column, free_text)
    where = (column,)
    if form is Kind.STRING_LIST:

        def convert_list(cell: str, errors: list[CellError], notes: list[CellNote]) -> object:
            items = split_list(cell)
            if codes_of_column is not None and all(item in codes_of_column for item in items):
                return items  # the usual cell: codes as the contract writes them
            return [clean(item, (column, index), notes) for index, item in enumerate(items)]

        return convert_list
    convert = SCALAR_CONVERTERS[form]
    if form is Kind.BOOLEAN:

        def convert_boolean(cell: str, errors: list[CellError], notes: list[CellNote]) -> object:
            if cell == "true" or cell == "false":
                return cell == "true"
            path = json_path(where)
            return parse_boolean(_boolean_note(column, clean(cell, where, notes), path, notes))

        return convert_boolean
    if convert is None and codes_of_column is None:
        return clean  # an id, a date or a time: only spaces around it are undone
    if convert is None:
        known: frozenset[str] = codes_of_column or frozenset()

        def convert_code(cell: str, errors: list[CellError], notes: list[CellNote]) -> object:
            return cell if cell in known else clean(cell, where, notes)

        return convert_code

    def convert_scalar(cell: str, errors: list[CellError], notes: list[CellNote]) -> object:
        if not cell[0].isspace() and not cell[-1].isspace():
            return convert(cell)  # a number as written: nothing to undo
        return convert(clean(cell, where, notes))

    return convert_scalar


class RowShaper:
    """Turns the rows of one CSV file (one header) into records in the contract's JSON shape.

    The conversion plan (which cell index gets which converter) is built once per record type
    seen in the file, so a row costs one pass over its cells.
    """

    def __init__(self, header: Sequence[str], default_record_type: str | None = None) -> None:
        self.header = tuple(header)
        self.default_record_type = default_record_type
        self._type_index = (
            self.header.index(RECORD_TYPE_COLUMN) if RECORD_TYPE_COLUMN in self.header else None
        )
        self._plans: dict[str | None, tuple[CellConverter | _Cleaner | None, ...]] = {}

    def _plan(self, record_type: str | None) -> tuple[CellConverter | _Cleaner | None, ...]:
        # An unknown record type gets no conversion (plan key None): its record is rejected
        # for its type, and guessing field types would only add noise to that report.
        key = record_type if record_type in COLUMNS else None
        plan = self._plans.get(key)
        if plan is None:
            table = COLUMNS[key] if key is not None else {}
            codes = allowed_codes(key) if key is not None else {}
            plan = tuple(
                _converter(name, table[name], codes) if name in table else None
                for name in self.header
            )
            self._plans[key] = plan
        return plan

    def to_record(
        self, cells: Sequence[str], notes: list[CellNote] | None = None
    ) -> tuple[dict[str, object], list[CellError]]:
        """One row (as many cells as the header) -> (record dict, cell errors); the spreadsheet
        habits undone go to `notes` when given."""
        declared = cells[self._type_index] if self._type_index is not None else ""
        record_type = declared or self.default_record_type
        errors: list[CellError] = []
        found: list[CellNote] = [] if notes is None else notes
        data: dict[str, object] = {}
        for name, convert, cell in zip(self.header, self._plan(record_type), cells, strict=True):
            if not cell:
                continue
            if convert is None:
                data[name] = cell
                continue
            if type(convert) is _Cleaner:
                if not cell[0].isspace() and not cell[-1].isspace():
                    data[name] = cell  # the usual id or date: no call
                    continue
                value: object = convert(cell, (name,), found)
            else:
                value = convert(cell, errors, found)  # type: ignore[arg-type]
            if value != "":  # a cell of spaces only: absent, as an empty cell is
                data[name] = value
        if not declared and record_type is not None:
            data[RECORD_TYPE_COLUMN] = record_type
        return data, errors
