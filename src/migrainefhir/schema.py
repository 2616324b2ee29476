"""The shipped JSON Schemas, and schema errors turned into Problems.

This is the only module that imports jsonschema / jsonschema_rs. A `SchemaChecker` compiles a
schema once for both engines: jsonschema_rs answers "valid?" fast for every record; only an
invalid record pays for Python jsonschema, which lists every error. Errors are reduced to the
useful leaves (no if/then/anyOf wrappers, one Problem per missing or unknown field) and given a
permanent code from a `ProblemCodes` table, a JSONPath, and a message for people that never
quotes the offending value (it may be health data).

The formats `date`, `date-time` and `uri` are defined here once and installed in both engines,
so they agree: `date-time` is RFC 3339 with seconds and a UTC offset (at most 14:00, as FHIR
allows), on a real calendar day; dates and date-times lie in the years MIN_YEAR-MAX_YEAR.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError, best_match

from migrainefhir.problems import (
    Problem,
    Severity,
    json_path,
    register_code,
    shown_name,
    shown_value,
    shows_as_name,
)

# -- the input-contract codes that come out of the schemas (codes-input.md) ------------------

_LAYER = "input"
REQUIRED = register_code(
    "input.required",
    Severity.ERROR,
    "a required field is missing (also conditionally required: "
    '"onset is required when headache is true")',
    _LAYER,
)
NOT_ALLOWED = register_code(
    "input.not-allowed",
    Severity.ERROR,
    "a field present where the contract forbids it (aura_symptoms without aura true; "
    "rate_mg_per_kg_per_h when route is not intravenous)",
    _LAYER,
)
UNKNOWN_FIELD = register_code(
    "input.unknown-field", Severity.ERROR, "a field the contract does not define", _LAYER
)
TYPE = register_code(
    "input.type",
    Severity.ERROR,
    "wrong JSON type (string where a number belongs, etc.)",
    _LAYER,
)
ENUM = register_code(
    "input.enum", Severity.ERROR, "a value outside the field's list of allowed values", _LAYER
)
FORMAT = register_code(
    "input.format",
    Severity.ERROR,
    "a malformed or impossible date / date-time (2026-02-30, month 13)",
    _LAYER,
)
RANGE = register_code(
    "input.range",
    Severity.ERROR,
    "a number outside its range (severity 11, dose_mg 0, sleep_hours 25)",
    _LAYER,
)
ID = register_code(
    "input.id",
    Severity.ERROR,
    "an id that breaks the id rule (1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit)",
    _LAYER,
)
TEXT_TOO_LONG = register_code(
    "input.text-too-long", Severity.ERROR, "free text over 4000 characters", _LAYER
)
DUPLICATE_ITEM = register_code(
    "input.duplicate-item",
    Severity.ERROR,
    "the same value twice in a list field (symptoms, triggers, ...)",
    _LAYER,
)

# -- formats ---------------------------------------------------------------------------------

_DATE = r"(\d{4})-(\d{2})-(\d{2})"
_TIME = r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
_OFFSET = r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
_DATE_RE = re.compile(_DATE, re.ASCII)
_DATE_TIME_RE = re.compile(_DATE + r"[Tt]" + _TIME + _OFFSET, re.ASCII)
_LOCAL_DATE_TIME_RE = re.compile(_DATE + r"[Tt]" + _TIME, re.ASCII)
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")


# The years a date or date-time may name. Anything outside is a typing error in a migraine
# diary or a session record (0026, 20260, 1026), and instants near year 1 or 9999 cannot be
# moved by an offset or a 2-hour window without leaving the calendar Python can compute with.
MIN_YEAR = 1900
MAX_YEAR = 2199
# The largest UTC offset FHIR R4 allows (dateTime regex: -14:00 to +14:00); real zones span
# -12:00 to +14:00.
MAX_OFFSET = timedelta(hours=14)


@lru_cache(maxsize=4096)
def parse_date(text: str) -> date | None:
    """A `YYYY-MM-DD` date that exists in the calendar, in MIN_YEAR-MAX_YEAR, or None."""
    if _DATE_RE.fullmatch(text) is None or not MIN_YEAR <= int(text[:4]) <= MAX_YEAR:
        return None
    # The regex admits exactly YYYY-MM-DD, which fromisoformat (C, several times faster than
    # building the date from the groups) reads as written; it raises for Feb 30 or month 13.
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _naive(groups: Sequence[str | None]) -> datetime | None:
    year, month, day, hour, minute, second, fraction = groups[:7]
    assert year and month and day and hour and minute and second  # the regex matched
    if not MIN_YEAR <= int(year) <= MAX_YEAR:
        return None
    # A fraction finer than microseconds cannot be held (Python's datetime, and so the FHIR
    # output, stops there): it is refused rather than cut (has_excess_precision says why);
    # zeros past the sixth digit change nothing and are accepted.
    if fraction and len(fraction) > 6 and fraction[6:].strip("0"):
        return None
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)
    except ValueError:  # Feb 30, hour 24, second 60 (leap seconds cannot be represented)
        return None


@lru_cache(maxsize=64)
def _fixed_offset(sign: str, hours: int, minutes: int) -> timezone:
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if sign == "-" else offset)


# The form nearly every date-time is written in: no fraction, upper-case T and Z, an offset
# with minutes 00-59. For it, datetime.fromisoformat (C) gives exactly what the general path
# builds, in a tenth of the time: it rejects the same impossible days, hours, minutes and
# seconds (all of which datetime() itself refuses), and returns the same fixed offsets
# (timezone.utc for Z, +00:00 and -00:00). The year range and the largest offset are checked
# after it, as the general path does.
_PLAIN_DATE_TIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:[0-5]\d)", re.ASCII
)


# Each date-time is parsed up to three times per record (offset check, schema format, build),
# and timestamps repeat across records: a small cache makes the repeats nearly free.
@lru_cache(maxsize=4096)
def parse_date_time(text: str) -> datetime | None:
    """An RFC 3339 date-time with seconds and UTC offset, as an aware datetime; else None."""
    if _PLAIN_DATE_TIME_RE.fullmatch(text) is None:
        return _parse_any_date_time(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:  # Feb 30, hour 24, second 60, an offset of 24 hours or more
        return None
    offset = parsed.utcoffset()
    assert offset is not None  # the regex requires an offset
    if not MIN_YEAR <= parsed.year <= MAX_YEAR or abs(offset) > MAX_OFFSET:
        return None
    return parsed


def _parse_any_date_time(text: str) -> datetime | None:
    """parse_date_time for every form RFC 3339 allows (fractions, lower-case t and z)."""
    match = _DATE_TIME_RE.fullmatch(text)
    if match is None:
        return None
    naive = _naive(match.groups())
    if naive is None:
        return None
    zulu, sign, hours, minutes = match.groups()[7:]
    if zulu:
        return naive.replace(tzinfo=UTC)
    assert sign and hours and minutes
    if int(minutes) > 59 or timedelta(hours=int(hours), minutes=int(minutes)) > MAX_OFFSET:
        return None
    return naive.replace(tzinfo=_fixed_offset(sign, int(hours), int(minutes)))


_EXCESS_PRECISION_RE = re.compile(r"T[0-9:]{8}\.[0-9]{6}[0-9]*[1-9]", re.ASCII | re.IGNORECASE)


def has_excess_precision(text: str) -> bool:
    """A date-time whose fraction of a second has a non-zero digit past microseconds."""
    return _EXCESS_PRECISION_RE.search(text) is not None


def parse_local_date_time(text: str) -> datetime | None:
    """A date-time written like RFC 3339 but without offset, as a naive datetime; else None."""
    match = _LOCAL_DATE_TIME_RE.fullmatch(text)
    return None if match is None else _naive(match.groups())


def _is_date(instance: object) -> bool:
    return not isinstance(instance, str) or parse_date(instance) is not None


def _is_date_time(instance: object) -> bool:
    return not isinstance(instance, str) or parse_date_time(instance) is not None


def _is_uri(instance: object) -> bool:
    """An absolute URI: a scheme, a colon, and no whitespace (what FHIR's `uri` needs)."""
    return not isinstance(instance, str) or _URI_RE.fullmatch(instance) is not None


_FORMATS: dict[str, Callable[[object], bool]] = {
    "date": _is_date,
    "date-time": _is_date_time,
    "uri": _is_uri,
}

_FORMAT_HINTS = {
    "date": f"a date written YYYY-MM-DD that exists in the calendar, in {MIN_YEAR}-{MAX_YEAR}",
    "date-time": (
        "an RFC 3339 date-time with seconds and a UTC offset (at most 14:00) on a real calendar "
        f"day in {MIN_YEAR}-{MAX_YEAR}, e.g. 2026-03-01T14:30:00+01:00"
    ),
    "uri": "an absolute URI (a scheme such as https: or urn:, and no spaces)",
}


# Every character str.isspace() accepts (what str.strip() removes and what `\s` means to
# Python's re; tests/test_intake_speed_equivalence.py checks the list against all of Unicode).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# The formats again, as regular expressions a compiled schema checks natively: each accepts
# exactly the strings its Python check accepts (tests/test_intake_speed_equivalence.py
# compares them on every edge day, time and offset), so a schema can use them instead of
# calling back into Python for every value. Digits are spelled [0-9] (a bare \d would admit
# other scripts' digits). The years are MIN_YEAR-MAX_YEAR, 1900-2199: the leap years among
# them are those divisible by 4 but 1900 and 2100.
_YEAR = "(?:19|2[01])[0-9]{2}"
_LEAP_YEAR = "(?:(?:19|20|21)(?:0[48]|[2468][048]|[13579][26])|2000)"
_CALENDAR_DAY = (
    f"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    f"|{_LEAP_YEAR}-02-29)"
)
_CLOCK_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,6}0*)?"
_UTC_OFFSET = "(?:[Zz]|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
FORMAT_PATTERNS = {
    "date": f"^{_CALENDAR_DAY}$",
    "date-time": f"^{_CALENDAR_DAY}[Tt]{_CLOCK_TIME}{_UTC_OFFSET}$",
    "uri": f"^[A-Za-z][A-Za-z0-9+.-]*:[^{WHITESPACE}]+$",
}


def with_native_formats(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `schema` in which each `format` is its FORMAT_PATTERNS pattern: it accepts
    the same instances without a call into Python per value."""

    def rewrite(node: object) -> object:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        rewritten = {key: rewrite(value) for key, value in node.items() if key != "format"}
        if "format" in node:
            if "pattern" in node:  # none of ours has both; allOf would be needed
                raise ValueError("a subschema with both format and pattern")
            rewritten["pattern"] = FORMAT_PATTERNS[node["format"]]
        return rewritten

    rewritten = rewrite(schema)
    assert isinstance(rewritten, dict)
    return rewritten


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker()
    for name, check in _FORMATS.items():
        checker.checks(name)(check)
    return checker


# -- loading ---------------------------------------------------------------------------------


def load_schema(name: str) -> dict[str, Any]:
    """A schema shipped in migrainefhir/schemas: "diary-entry.schema.json", "profiles/x.json"."""
    resource = resources.files("migrainefhir").joinpath("schemas", *name.split("/"))
    loaded = json.loads(resource.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise ValueError(f"schema {name} is not a JSON object")
    return loaded


# -- codes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProblemCodes:
    """Which problem code each kind of schema error gets, for one family of schemas.

    `by_keyword` maps a JSON Schema keyword ("required", "enum", ...) to a code; "not-allowed"
    stands for a field forbidden by a `not: {required: [...]}` clause. `default` covers any
    keyword not listed. `pattern_hints` say in words what a pattern means (keyed by pattern).
    """

    by_keyword: Mapping[str, str]
    default: str
    severity: Severity = Severity.ERROR
    pattern_hints: Mapping[str, str] = field(default_factory=dict)

    def code_for(self, keyword: str) -> str:
        return self.by_keyword.get(keyword, self.default)


ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

INPUT_CODES = ProblemCodes(
    by_keyword={
        "required": REQUIRED,
        "dependentRequired": REQUIRED,
        "anyOf-required": REQUIRED,
        "not-allowed": NOT_ALLOWED,
        "additionalProperties": UNKNOWN_FIELD,
        "unevaluatedProperties": UNKNOWN_FIELD,
        "type": TYPE,
        "enum": ENUM,
        "const": ENUM,
        "format": FORMAT,
        "minimum": RANGE,
        "maximum": RANGE,
        "exclusiveMinimum": RANGE,
        "exclusiveMaximum": RANGE,
        "pattern": ID,  # the input schemas use patterns only for ids
        "maxLength": TEXT_TOO_LONG,
        "uniqueItems": DUPLICATE_ITEM,
    },
    default=TYPE,
    pattern_hints={
        ID_PATTERN: "1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"
    },
)

# -- the checker -----------------------------------------------------------------------------

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}
_MAX_LISTED_VALUES = 20

Path = tuple[str | int, ...]


def compiled_predicate(schema: Mapping[str, Any]) -> Callable[[object], bool]:
    """A compiled yes/no check of `schema`, for the hot path: jsonschema_rs with this module's
    formats and the linear-time `regex` engine (no backtracking; our patterns need none, and it
    is about a quarter faster on them). The answer carries no details: callers that need them
    ask SchemaChecker.problems, which runs Python jsonschema only when this says no."""
    validator = jsonschema_rs.validator_for(
        dict(schema),
        validate_formats=True,
        formats=_FORMATS,
        pattern_options=jsonschema_rs.RegexOptions(),
    )
    return validator.is_valid


class SchemaChecker:
    """One compiled schema: a fast validity check and, for invalid instances, every Problem."""

    def __init__(self, schema: dict[str, Any], codes: ProblemCodes) -> None:
        self.schema = schema
        self.codes = codes
        self._fast = compiled_predicate(schema)
        self._detailed = jsonschema.Draft202012Validator(schema, format_checker=_format_checker())

    def is_valid(self, instance: object) -> bool:
        return bool(self._fast(instance))

    def problems(self, instance: object) -> list[Problem]:
        """Every problem of `instance`, without duplicates, in document order of the errors."""
        if self.is_valid(instance):
            return []
        found: dict[tuple[str, str], Problem] = {}
        for error in self._detailed.iter_errors(instance):
            for problem in self._leaf_problems(error):
                found.setdefault((problem.code, problem.path), problem)
        problems = _drop_noise(list(found.values()))
        if not problems:
            # The engines disagree (a format only one of them knows): still never accept silently.
            problems = [self._problem("", (), "does not match the schema")]
        return problems

    # The error tree -> leaf problems.

    def _leaf_problems(self, error: ValidationError) -> Iterator[Problem]:
        keyword = str(error.validator)
        path: Path = tuple(error.absolute_path)
        if keyword in ("anyOf", "oneOf"):
            yield from self._alternatives(error, path)
        elif keyword == "required":
            yield from self._required(error, path, error.validator_value)
        elif keyword == "dependentRequired":
            yield from self._dependent_required(error, path)
        elif keyword == "not" and _is_required_only(error.validator_value):
            for name in error.validator_value["required"]:
                condition = self._condition(error)
                rule = f"is allowed only when {condition}" if condition else "is not allowed here"
                yield self._problem("not-allowed", (*path, name), rule)
        elif keyword in ("additionalProperties", "unevaluatedProperties"):
            yield from self._unknown_fields(error, path)
        elif keyword == "uniqueItems":
            yield from self._duplicates(error, path)
        else:
            yield self._problem(keyword, path, self._rule_text(error))

    def _required(
        self, error: ValidationError, path: Path, names: Iterable[str]
    ) -> Iterator[Problem]:
        instance = error.instance
        condition = self._condition(error)
        for name in names:
            if isinstance(instance, dict) and name not in instance:
                rule = f"is required when {condition}" if condition else "is required"
                yield self._problem("required", (*path, name), rule)

    def _dependent_required(self, error: ValidationError, path: Path) -> Iterator[Problem]:
        instance = error.instance
        if not isinstance(instance, dict):
            return
        for given, needed in error.validator_value.items():
            if given in instance:
                for name in needed:
                    if name not in instance:
                        rule = f"is required when {given} is given"
                        yield self._problem("required", (*path, name), rule)

    def _alternatives(self, error: ValidationError, path: Path) -> Iterator[Problem]:
        branches = error.validator_value
        if all(_is_required_only(branch) for branch in branches):
            # "one of these fields is required": reported at the first alternative's path.
            names = [name for branch in branches for name in branch["required"]]
            condition = self._condition(error)
            listed = _or_list(names)
            rule = f"{listed} is required" if len(names) <= 2 else f"one of {listed} is required"
            if condition:
                rule += f" when {condition}"
            yield self._problem("anyOf-required", (*path, names[0]), rule, whole_message=True)
            return
        # Otherwise report the errors of the branch that came closest.
        closest = best_match(error.context or [])
        if closest is None:
            yield self._problem(str(error.validator), path, "does not match any allowed form")
            return
        branch = closest.relative_schema_path[0]
        for sub in error.context or []:
            if sub.relative_schema_path[0] == branch:
                yield from self._leaf_problems(sub)

    def _unknown_fields(self, error: ValidationError, path: Path) -> Iterator[Problem]:
        instance = error.instance
        parent = error.schema if isinstance(error.schema, dict) else {}
        known = parent.get("properties", {})
        patterns = [re.compile(p) for p in parent.get("patternProperties", {})]
        if not isinstance(instance, dict):
            return
        for name in instance:
            if name in known or any(p.search(name) for p in patterns):
                continue
            message = f"unknown field {shown_name(name)}: the contract does not define it"
            # A name that may be data is not put in the path either: the object's path.
            where = (*path, name) if shows_as_name(name) else path
            yield self._problem("additionalProperties", where, message, whole_message=True)

    def _duplicates(self, error: ValidationError, path: Path) -> Iterator[Problem]:
        items = error.instance if isinstance(error.instance, list) else []
        seen: list[object] = []
        for index, item in enumerate(items):
            first = next((i for i, other in enumerate(seen) if _json_equal(item, other)), None)
            seen.append(item)
            if first is not None:
                rule = f"repeats item {first} of {_label(path)}: each value may appear only once"
                yield self._problem("uniqueItems", (*path, index), rule)

    # Words.

    def _rule_text(self, error: ValidationError) -> str:
        keyword, value = error.validator, error.validator_value
        if keyword == "type":
            types = [value] if isinstance(value, str) else list(value)
            found = shown_value(error.instance)
            return "must be " + _or_list([_TYPE_WORDS.get(t, t) for t in types]) + _found(found)
        if keyword == "enum":
            found = _found(shown_value(error.instance, value))
            if len(value) > _MAX_LISTED_VALUES:
                return f"must be one of the {len(value)} allowed values{found}"
            return "must be one of: " + ", ".join(_show(v) for v in value) + found
        if keyword == "const":
            return f"must be {_show(value)}{_found(shown_value(error.instance, [value]))}"
        if keyword == "format":
            return "must be " + _FORMAT_HINTS.get(value, f"a valid {value}")
        if keyword == "minimum":
            return f"must be at least {_show(value)}"
        if keyword == "maximum":
            return f"must be at most {_show(value)}"
        if keyword == "exclusiveMinimum":
            return f"must be greater than {_show(value)}"
        if keyword == "exclusiveMaximum":
            return f"must be less than {_show(value)}"
        if keyword == "maxLength":
            return f"must be at most {value} characters long"
        if keyword == "minLength":
            return f"must be at least {value} characters long"
        if keyword == "pattern":
            return "must be " + self.codes.pattern_hints.get(value, "in the required pattern")
        if keyword in ("minItems", "maxItems"):
            bound = "at least" if keyword == "minItems" else "at most"
            return f"must have {bound} {value} items"
        if keyword == "None" or value is False:
            return "is not allowed here"
        return f"does not satisfy the schema keyword {keyword}"

    def _condition(self, error: ValidationError) -> str | None:
        """For an error inside `then`/`else`: the `if` condition in words, else None."""
        schema_path = list(error.absolute_schema_path)
        branch_at = max(
            (i for i, part in enumerate(schema_path) if part in ("then", "else")), default=None
        )
        if branch_at is None:
            return None
        parent = _navigate(self.schema, schema_path[:branch_at])
        while isinstance(parent, dict) and "if" not in parent and "$ref" in parent:
            parent = _resolve_local(self.schema, parent["$ref"])
        if_schema = parent.get("if") if isinstance(parent, dict) else None
        if not isinstance(if_schema, dict):
            return None
        description = if_schema.get("description")
        return description if isinstance(description, str) else _describe_if(if_schema)

    def _problem(
        self, keyword: str, path: Path, rule: str, *, whole_message: bool = False
    ) -> Problem:
        message = rule if whole_message else f"{_label(path)} {rule}"
        return Problem(self.codes.code_for(keyword), self.codes.severity, message, json_path(path))


def _found(shown: str) -> str:
    """`; found "yes"`, or `; found (a text of 5 characters, not shown)`."""
    return f"; found {shown}"


def _label(path: Path) -> str:
    """How a message names a field: its JSONPath without the `$.`, or "the record"."""
    rendered = json_path(path)
    return "the record" if rendered == "$" else rendered.removeprefix("$.")


def _show(value: object) -> str:
    """A schema value (never instance data) for a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _or_list(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _is_required_only(schema: object) -> bool:
    return isinstance(schema, dict) and set(schema) == {"required"}


def _describe_if(if_schema: Mapping[str, Any]) -> str | None:
    """`{"properties": {"drug": {"const": "other"}}}` -> "drug is other"."""
    parts = []
    for name, test in if_schema.get("properties", {}).items():
        if isinstance(test, dict) and "const" in test:
            parts.append(f"{name} is {_show(test['const'])}")
        elif isinstance(test, dict) and "enum" in test:
            parts.append(f"{name} is {_or_list([_show(v) for v in test['enum']])}")
    return " and ".join(parts) or None


def _navigate(schema: object, schema_path: Sequence[str | int]) -> object:
    """Follow an absolute schema path, through local `$ref`s (jsonschema leaves them out)."""
    node = schema
    for part in schema_path:
        while isinstance(node, dict) and part not in node and "$ref" in node:
            node = _resolve_local(schema, node["$ref"])
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _resolve_local(root: object, ref: str) -> object:
    if not ref.startswith("#/"):
        return None
    node = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _json_equal(a: object, b: object) -> bool:
    """Equality as JSON Schema means it: 1 == 1.0, but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=0, abs_tol=0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _drop_noise(problems: list[Problem]) -> list[Problem]:
    """A wrong type makes every other finding at the same path noise: keep only the type."""
    typed = {p.path for p in problems if p.code == TYPE}
    return [p for p in problems if p.code == TYPE or p.path not in typed]


# -- walking a schema ------------------------------------------------------------------------

Location = tuple[str, ...]  # property names, "*" for every item of a list


def locations(schema: dict[str, Any], wanted: Callable[[dict[str, Any]], bool]) -> list[Location]:
    """Where in an instance the subschemas satisfying `wanted` apply (via properties/items).

    Local `$ref`s are followed; a subschema that is itself a `$ref` is tested as written too,
    so `wanted` can recognise `{"$ref": "#/$defs/text"}`.
    """
    found: list[Location] = []

    def walk(node: object, where: Location, depth: int) -> None:
        if not isinstance(node, dict) or depth > 32:
            return
        if wanted(node):
            found.append(where)
        if "$ref" in node:
            walk(_resolve_local(schema, node["$ref"]), where, depth + 1)
        for name, sub in node.get("properties", {}).items():
            walk(sub, (*where, name), depth + 1)
        if "items" in node:
            walk(node["items"], (*where, "*"), depth + 1)

    walk(schema, (), 0)
    return sorted(set(found))
