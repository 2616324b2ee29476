"""RawRecord -> typed record (records.py) or Problems: the input contract applied to one record.

The steps, in order: the reader's own findings (a record with a reader error is rejected as
is); the record type; date-times without UTC offset (read in `--timezone`, daylight saving
included, or reported); the JSON Schema of the record type; building the frozen dataclass
(aware datetimes, dates, tuples, the contract's defaults); the record rules of contract.py.
A record comes back iff no error was found; warnings come back with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from migrainefhir.input import contract
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.records import (
    DIARY_ENTRY,
    KETAMINE_SESSION,
    PATIENT,
    RECORD_TYPES,
    AdverseEffect,
    DiaryEntry,
    KetamineSession,
    MedicationIntake,
    PatientIdentifier,
    PatientRecord,
    Record,
    VitalsReading,
)
from migrainefhir.problems import (
    Problem,
    Severity,
    Source,
    error,
    has_errors,
    json_path,
    register_code,
)
from migrainefhir.schema import (
    INPUT_CODES,
    TYPE,
    WHITESPACE,
    Location,
    SchemaChecker,
    compiled_predicate,
    has_excess_precision,
    load_schema,
    locations,
    parse_date,
    parse_date_time,
    parse_local_date_time,
    with_native_formats,
)

_LAYER = "input"
RECORD_TYPE = register_code(
    "input.record-type",
    Severity.ERROR,
    "record_type missing, or not one of diary-entry, ketamine-session, patient",
    _LAYER,
)
NO_OFFSET = register_code(
    "input.no-offset",
    Severity.ERROR,
    "a date-time without UTC offset and no --timezone given (message names the field)",
    _LAYER,
)
LOCAL_TIME_INVALID = register_code(
    "input.local-time-invalid",
    Severity.ERROR,
    "with --timezone: a local time that does not exist (DST gap) or is ambiguous (DST overlap)",
    _LAYER,
)
TIME_PRECISION = register_code(
    "input.time-precision",
    Severity.ERROR,
    "a date-time with a fraction of a second finer than microseconds (.123456789): the output "
    "cannot keep it, and it is not cut silently",
    _LAYER,
)
FUTURE = register_code(
    "input.future",
    Severity.WARNING,
    "a date or date-time more than a day after the export time (a typing error such as 2062 "
    "for 2026, or a clock set wrong): the record is still accepted",
    _LAYER,
)
CONTROL_CHARACTER = register_code(
    "input.control-character",
    Severity.ERROR,
    "a string with a control character (U+0000-U+001F other than tab, line feed and carriage "
    "return), which a FHIR string cannot hold",
    _LAYER,
)


# How far after the export time a date may lie before input.future warns: dates are local
# calendar days (up to 14 hours ahead of UTC), and clocks differ.
FUTURE_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class ParseOptions:
    """How to read records: `timezone` is the IANA zone for date-times written without offset;
    `now` the export time, past which dates are reported as in the future (None: not checked)."""

    timezone: ZoneInfo | None = None
    now: datetime | None = None


def parse_record(raw: RawRecord, options: ParseOptions) -> tuple[Record | None, list[Problem]]:
    """One raw record -> (typed record, warnings) or (None, problems with at least one error)."""
    if has_errors(raw.problems):
        return None, list(raw.problems)
    problems = list(raw.problems)
    instance, found = _check(raw.data, options)
    if instance is None or has_errors(found):
        return None, problems + [p.at(raw.source) for p in found]
    record = _build(instance, raw.source)
    for rule in contract.rules_for(record):
        found.extend(rule(record))
    if options.now is not None:
        found.extend(_future_problems(record, options.now))
    if not found:  # the usual record: nothing to place
        return record, problems
    problems += [p.at(raw.source) for p in found]
    return (None if has_errors(found) else record), problems


# -- checking --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """What model.py needs to know about one record type's schema."""

    checker: SchemaChecker
    date_times: tuple[Location, ...]
    texts: tuple[Location, ...]
    # The fields of the record type, and of the objects in each of its list fields: a null
    # (or an empty list) in one of them means the field is absent.
    fields: frozenset[str]
    list_fields: frozenset[str]
    item_fields: Mapping[str, frozenset[str]]
    # Yes only for a record that _normalise leaves as it is and the schema accepts (see
    # _ready_schema): the usual record, which then needs no further look.
    is_ready: Callable[[object], bool]


# -- the input schemas -----------------------------------------------------------------------


def input_schema_name(record_type: str) -> str:
    return f"{record_type}.schema.json"


@cache
def input_checker(record_type: str) -> SchemaChecker:
    """The compiled input-contract checker of one record type (compiled once per process)."""
    if record_type not in RECORD_TYPES:
        raise ValueError(f"unknown record type {record_type!r}")
    return SchemaChecker(load_schema(input_schema_name(record_type)), INPUT_CODES)


@cache
def _shape(record_type: str) -> _Shape:
    checker = input_checker(record_type)
    schema = checker.schema
    return _Shape(
        checker,
        date_times=tuple(locations(schema, lambda s: s.get("format") == "date-time")),
        texts=tuple(locations(schema, lambda s: s.get("$ref") == "#/$defs/text")),
        fields=frozenset(schema["properties"]),
        list_fields=frozenset(
            name
            for name, sub in schema["properties"].items()
            if sub.get("type") == "array" or "array" in sub.get("type", ())
        ),
        item_fields=_item_fields(schema),
        is_ready=compiled_predicate(_ready_schema(schema)),
    )


def _item_fields(schema: dict[str, Any]) -> dict[str, frozenset[str]]:
    """For each list field whose items are objects: the field names of those objects."""
    found = {}
    for name, sub in schema["properties"].items():
        ref = sub.get("items", {}).get("$ref", "") if sub.get("type") == "array" else ""
        if ref.startswith("#/$defs/"):
            item = schema["$defs"][ref.removeprefix("#/$defs/")]
            found[name] = frozenset(item.get("properties", {}))
    return found


def _ready_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The input schema, made to also refuse blank free text, with its formats as patterns.

    A record this accepts needs nothing from _normalise: no free text is blank (text holds a
    character that is not whitespace), and every date-time already has a valid UTC offset
    (the schema's own format). So jsonschema_rs settles the usual record in one native call
    (the formats as patterns: no call back into Python per date); anything else (blank text, a
    time without offset, any schema error) takes the full path, which finds exactly what it
    always did.
    """
    ready = with_native_formats(schema)
    ready["$defs"]["text"]["pattern"] = f"[^{WHITESPACE}]"
    return ready


def _check(data: object, options: ParseOptions) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The record as checked (times localised, blank text dropped) and its problems."""
    if not isinstance(data, dict):
        return None, [error(TYPE, "the record must be a JSON object", "$")]
    record_type = data.get("record_type")
    if record_type not in RECORD_TYPES:
        allowed = ", ".join(RECORD_TYPES)
        rule = "is required" if "record_type" not in data else "must be one of"
        return None, [error(RECORD_TYPE, f"record_type {rule}: {allowed}", "$.record_type")]
    shape = _shape(str(record_type))
    if shape.is_ready(data):
        # As _normalise would leave it, and valid: only the control characters are left to find.
        return data, _control_character_problems(data)
    instance, problems = _normalise(data, shape, options.timezone)
    problems += _control_character_problems(data)
    reported = {p.path for p in problems}
    problems += [p for p in shape.checker.problems(instance) if p.path not in reported]
    return instance, problems


def _normalise(
    data: dict[str, Any], shape: _Shape, zone: ZoneInfo | None
) -> tuple[dict[str, Any], list[Problem]]:
    """The record as the schema should see it, and the problems of times without offset.

    Blank free text counts as absent (so it cannot satisfy a requirement), and so does a JSON
    null in a field of the contract (also in the objects of a list) or an empty list (apps
    that always write every key; a null in an unknown field is still reported). A date-time
    without
    offset is replaced by its reading in `zone`; without a zone, or when the local time does
    not exist or is ambiguous there, it is reported here (and the schema's format error at the
    same path is then dropped as a duplicate by the caller).
    """
    problems: list[Problem] = []
    edits: dict[tuple[str | int, ...], str | None] = {}
    _absent_values(data, shape, edits)
    for location in shape.texts:
        for path, value in _values_at(data, location):
            if isinstance(value, str) and not value.strip():
                edits[path] = None
    for location in shape.date_times:
        for path, value in _values_at(data, location):
            if not isinstance(value, str) or parse_date_time(value) is not None:
                continue
            field = json_path(path)
            if has_excess_precision(value):
                message = (
                    f"{_label(field)} has a fraction of a second finer than microseconds, "
                    "which migrainefhir cannot carry into FHIR exactly: write at most 6 digits "
                    "after the point"
                )
                problems.append(error(TIME_PRECISION, message, field))
                continue
            local = parse_local_date_time(value)
            if local is None:
                continue  # malformed: the schema reports input.format
            if zone is None:
                problems.append(error(NO_OFFSET, _no_offset_message(field), field))
                continue
            localised, trouble = _localise(local, zone)
            if localised is None:
                problems.append(error(LOCAL_TIME_INVALID, f"{_label(field)} {trouble}", field))
            else:
                edits[path] = localised.isoformat()
    return (_edited(data, edits) if edits else data), problems


def _absent_values(
    data: dict[str, Any], shape: _Shape, edits: dict[tuple[str | int, ...], str | None]
) -> None:
    """Mark for removal every null or empty list in a field of the contract."""
    for name, value in data.items():
        if name not in shape.fields:
            continue
        if value is None or (value == [] and name in shape.list_fields):
            edits[(name,)] = None
        elif isinstance(value, list) and name in shape.item_fields:
            known = shape.item_fields[name]
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    for key, part in item.items():
                        if part is None and key in known:
                            edits[(name, index, key)] = None


# FHIR R4 strings "SHALL NOT contain Unicode character points below 32", except tab, carriage
# return and line feed (R4 datatypes.html#string).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _control_character_problems(data: dict[str, Any]) -> list[Problem]:
    """input.control-character for every string holding one (its code point is named, never
    the text). orjson writes such characters as escapes, so most records are never walked."""
    try:
        written = orjson.dumps(data)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: walk to be sure
        written = b"\\u00"
    if b"\\u00" not in written and b"\\b" not in written and b"\\f" not in written:
        return []
    problems = []
    for path, text in _strings(data):
        found = _CONTROL.search(text)
        if found is not None:
            field = json_path(path)
            message = (
                f"{_label(field)} has a control character (U+{ord(found.group()):04X}) that a "
                "FHIR string cannot hold"
            )
            problems.append(error(CONTROL_CHARACTER, message, field))
    return problems


def _future_problems(record: Record, now: datetime) -> list[Problem]:
    """input.future for every date and date-time more than FUTURE_SLACK after `now`."""
    latest = now + FUTURE_SLACK
    problems = []
    for field, value in _dates_of(record):
        if value is None:
            continue
        late = value > latest if isinstance(value, datetime) else value > latest.date()
        if late:
            message = (
                f"{_label(field)} is in the future: more than a day after the export time "
                f"({now.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}); please check it"
            )
            problems.append(Problem(FUTURE, Severity.WARNING, message, field))
    return problems


def _dates_of(record: Record) -> Iterator[tuple[str, date | datetime | None]]:
    yield "$.recorded_at", record.recorded_at
    if isinstance(record, DiaryEntry):
        yield "$.date", record.date
        yield "$.onset", record.onset
        yield "$.end", record.end
        for index, intake in enumerate(record.medications):
            yield f"$.medications[{index}].taken_at", intake.taken_at
    elif isinstance(record, KetamineSession):
        yield "$.start", record.start
        yield "$.end", record.end
        for index, reading in enumerate(record.vitals):
            yield f"$.vitals[{index}].time", reading.time
    elif isinstance(record, PatientRecord):
        yield "$.birth_date", record.birth_date


def _strings(
    value: object, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string value in a record, with its path (records nest 3 levels: readers.MAX_DEPTH
    bounds the recursion)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _no_offset_message(field: str) -> str:
    return (
        f"{_label(field)} has no UTC offset: write it like 2026-03-01T14:30:00+01:00, "
        "or run with --timezone ZONE to read such times in that zone"
    )


def _localise(local: datetime, zone: ZoneInfo) -> tuple[datetime | None, str]:
    """`local` read in `zone`, or None and why (a DST gap or overlap makes it invalid)."""
    earlier = local.replace(tzinfo=zone, fold=0)
    later = local.replace(tzinfo=zone, fold=1)
    if earlier.utcoffset() == later.utcoffset():
        return earlier, ""
    round_trip = earlier.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if round_trip != local:
        return None, (
            f"is a local time that does not exist in {zone.key} (the clocks skip it at the "
            "daylight-saving change): write it with a UTC offset"
        )
    return None, (
        f"is an ambiguous local time in {zone.key} (it occurs twice when the clocks go back): "
        "write it with a UTC offset"
    )


def _label(field: str) -> str:
    return field.removeprefix("$.")


def _values_at(data: object, location: Location) -> list[tuple[tuple[str | int, ...], object]]:
    """Every (path, value) an instance has at a schema location ("*" = each list item)."""
    found: list[tuple[tuple[str | int, ...], object]] = [((), data)]
    for head in location:
        deeper: list[tuple[tuple[str | int, ...], object]] = []
        for path, value in found:
            if head == "*":
                if isinstance(value, list):
                    deeper.extend(((*path, index), item) for index, item in enumerate(value))
            elif isinstance(value, dict) and head in value:
                deeper.append(((*path, head), value[head]))
        if not deeper:
            return deeper
        found = deeper
    return found


def _edited(
    data: dict[str, Any], edits: Mapping[tuple[str | int, ...], str | None]
) -> dict[str, Any]:
    """A copy of `data` with each path set to its new value (None: removed); data is untouched."""
    copy: dict[str, Any] = _copy_containers(data)
    for path, value in edits.items():
        parent: Any = copy
        for part in path[:-1]:
            parent = parent[part]
        if value is None:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return copy


def _copy_containers(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy_containers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_containers(item) for item in value]
    return value


# -- building --------------------------------------------------------------------------------
# The record has passed its schema here, so every field has its contract type.


def _build(data: dict[str, Any], source: Source) -> Record:
    record_type = data["record_type"]
    if record_type == DIARY_ENTRY:
        return _diary_entry(data, source)
    if record_type == KETAMINE_SESSION:
        return _ketamine_session(data, source)
    assert record_type == PATIENT
    return _patient(data, source)


def _diary_entry(d: dict[str, Any], source: Source) -> DiaryEntry:
    return DiaryEntry(
        entry_id=d["entry_id"],
        patient_id=d["patient_id"],
        date=_date(d["date"]),
        headache=d["headache"],
        source=source,
        onset=_optional_date_time(d.get("onset")),
        end=_optional_date_time(d.get("end")),
        duration_minutes=_optional_int(d.get("duration_minutes")),
        severity=_optional_int(d.get("severity")),
        severity_category=d.get("severity_category"),
        laterality=d.get("laterality"),
        aura=d.get("aura"),
        aura_symptoms=tuple(d.get("aura_symptoms", ())),
        symptoms=tuple(d.get("symptoms", ())),
        prodrome=d.get("prodrome"),
        postdrome=d.get("postdrome"),
        triggers=tuple(d.get("triggers", ())),
        trigger_text=d.get("trigger_text"),
        medications=tuple(_medication(m) for m in d.get("medications", ())),
        disability=d.get("disability"),
        sleep_hours=_optional_float(d.get("sleep_hours")),
        stress_level=_optional_int(d.get("stress_level")),
        exercise_minutes=_optional_int(d.get("exercise_minutes")),
        notes=d.get("notes"),
        recorded_at=_optional_date_time(d.get("recorded_at")),
    )


def _medication(m: dict[str, Any]) -> MedicationIntake:
    return MedicationIntake(
        drug=m["drug"],
        drug_text=m.get("drug_text"),
        dose_mg=_optional_float(m.get("dose_mg")),
        taken_at=_optional_date_time(m.get("taken_at")),
        relief=m.get("relief"),
        route=m.get("route"),
    )


def _ketamine_session(d: dict[str, Any], source: Source) -> KetamineSession:
    return KetamineSession(
        session_id=d["session_id"],
        patient_id=d["patient_id"],
        start=_date_time(d["start"]),
        route=d["route"],
        source=source,
        end=_optional_date_time(d.get("end")),
        status=d.get("status", "completed"),
        status_reason=d.get("status_reason"),
        product=d.get("product", "ketamine"),
        dose_mg=_optional_float(d.get("dose_mg")),
        weight_kg=_optional_float(d.get("weight_kg")),
        dose_mg_per_kg=_optional_float(d.get("dose_mg_per_kg")),
        rate_mg_per_kg_per_h=_optional_float(d.get("rate_mg_per_kg_per_h")),
        course_id=d.get("course_id"),
        session_number=_optional_int(d.get("session_number")),
        indication=d.get("indication", "migraine"),
        performer_id=d.get("performer_id"),
        performer_name=d.get("performer_name"),
        performer_role=d.get("performer_role"),
        location_id=d.get("location_id"),
        vitals=tuple(_vitals(v) for v in d.get("vitals", ())),
        adverse_effects=tuple(_adverse_effect(a) for a in d.get("adverse_effects", ())),
        pain_before=_optional_int(d.get("pain_before")),
        pain_after=_optional_int(d.get("pain_after")),
        post_care=d.get("post_care"),
        notes=d.get("notes"),
        recorded_at=_optional_date_time(d.get("recorded_at")),
    )


def _vitals(v: dict[str, Any]) -> VitalsReading:
    return VitalsReading(
        time=_date_time(v["time"]),
        phase=v.get("phase"),
        heart_rate=_optional_float(v.get("heart_rate")),
        systolic=_optional_float(v.get("systolic")),
        diastolic=_optional_float(v.get("diastolic")),
        spo2=_optional_float(v.get("spo2")),
        respiratory_rate=_optional_float(v.get("respiratory_rate")),
    )


def _adverse_effect(a: dict[str, Any]) -> AdverseEffect:
    return AdverseEffect(
        effect=a["effect"],
        severity=a.get("severity"),
        text=a.get("text"),
        serious=a.get("serious"),
        outcome=a.get("outcome"),
    )


def _patient(d: dict[str, Any], source: Source) -> PatientRecord:
    given = d.get("given", ())
    names = (given,) if isinstance(given, str) else tuple(given)
    return PatientRecord(
        patient_id=d["patient_id"],
        source=source,
        identifiers=tuple(
            PatientIdentifier(
                system=i["system"],
                value=i["value"],
                type=i.get("type"),
                assigner=i.get("assigner"),
            )
            for i in d.get("identifiers", ())
        ),
        family=d.get("family"),
        given=tuple(name for name in names if name.strip()),
        birth_date=None if d.get("birth_date") is None else _date(d["birth_date"]),
        gender=d.get("gender"),
        recorded_at=_optional_date_time(d.get("recorded_at")),
    )


def _date(text: str) -> date:
    parsed = parse_date(text)
    assert parsed is not None, "checked by the schema"
    return parsed


def _date_time(text: str) -> datetime:
    parsed = parse_date_time(text)
    assert parsed is not None, "checked by the schema (offsets added by _normalise)"
    return parsed


def _optional_date_time(value: str | None) -> datetime | None:
    return None if value is None else _date_time(value)


def _optional_int(value: float | None) -> int | None:
    # JSON Schema counts 5.0 as an integer; the record holds it as 5.
    return None if value is None else int(value)


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)
