"""Property-based tests (hypothesis), with bounded example counts so they run in CI.

- Any record the input contract accepts converts into resources the FHIR validator passes with
  zero errors. The strategies build records from the input schemas' structure: every field,
  with enumerations read from the shipped schemas and the contract's rules kept.
- Any mutation of a valid record is either accepted (and then converts validly) or rejected
  with Problems carrying registered codes: never an exception.
- An export of a random mix of good, mutated and broken lines reconciles:
  read = exported + rejected, and every rejected record is in rejects.ndjson.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migrainefhir.convert import ConvertContext, convert_record, patient_stub
from migrainefhir.input.intake import InputOptions
from migrainefhir.input.model import ParseOptions, parse_record
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.records import PatientRecord
from migrainefhir.pipeline import ExportOptions, export
from migrainefhir.problems import PROBLEM_CODES, Source
from migrainefhir.schema import ID_PATTERN, load_schema
from migrainefhir.validate import ResourceValidator, validate_record_resources

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CTX = ConvertContext("https://example.org/source", datetime(2026, 7, 1, tzinfo=UTC), "test")
VALIDATOR = ResourceValidator("full")

DIARY = load_schema("diary-entry.schema.json")
SESSION = load_schema("ketamine-session.schema.json")
PATIENT = load_schema("patient.schema.json")


def enum(schema: dict[str, Any], *path: str) -> list[str]:
    """The allowed values at a path of a schema (`items` for list fields, `$defs` followed)."""
    node: Any = schema
    for part in path:
        node = node[part]
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return list(node["enum"])


# --- scalars -----------------------------------------------------------------------------------

ids = st.from_regex(ID_PATTERN, fullmatch=True)
# Free text: any Unicode a FHIR string can hold (no C0 control but tab/CR/LF, no surrogate
# halves), with the characters Markdown and HTML care about made likely; never blank.
text_characters = st.characters(
    blacklist_categories=["Cs"],
    blacklist_characters=[chr(c) for c in range(32) if chr(c) not in "\t\r\n"],
)
texts = st.text(
    st.one_of(text_characters, st.sampled_from("<>&*_[]`#-=+|~\\!()1. \n")), max_size=80
).filter(lambda s: s.strip() != "")
offsets = st.integers(-12 * 4, 14 * 4).map(
    lambda quarter: timezone(timedelta(minutes=15 * quarter))
)
moments = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.datetimes(datetime(1990, 1, 1), datetime(2100, 12, 31)),
    offsets,
)
dates = st.dates(datetime(1920, 1, 1).date(), datetime(2100, 12, 31).date())


def stamp(moment: datetime) -> str:
    """RFC 3339 with seconds (and microseconds when there are any)."""
    return moment.isoformat()


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def subset(values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(values), unique=True, max_size=len(values))


def without_none(record: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if value is not None and value != []}


# --- records -----------------------------------------------------------------------------------


@st.composite
def medications(draw: st.DrawFn) -> dict[str, Any]:
    drug = draw(st.sampled_from(enum(DIARY, "$defs", "medicationIntake", "properties", "drug")))
    relief = enum(DIARY, "$defs", "medicationIntake", "properties", "relief")
    return without_none(
        {
            "drug": drug,
            "drug_text": draw(texts) if drug == "other" else draw(optional(texts)),
            "dose_mg": draw(optional(st.floats(0.01, 5000, allow_nan=False))),
            "taken_at": draw(optional(moments.map(stamp))),
            "relief": draw(optional(st.sampled_from(relief))),
        }
    )


@st.composite
def diary_entries(draw: st.DrawFn) -> dict[str, Any]:
    headache = draw(st.booleans())
    record: dict[str, Any] = {
        "record_type": "diary-entry",
        "entry_id": draw(ids),
        "patient_id": draw(ids),
        "date": draw(dates).isoformat(),
        "headache": headache,
        "sleep_hours": draw(optional(st.floats(0, 24, allow_nan=False))),
        "stress_level": draw(optional(st.integers(0, 10))),
        "exercise_minutes": draw(optional(st.integers(0, 1440))),
        "notes": draw(optional(texts)),
        "recorded_at": draw(optional(moments.map(stamp))),
        "prodrome": draw(optional(st.booleans())),
        "postdrome": draw(optional(st.booleans())),
        "symptoms": draw(subset(enum(DIARY, "properties", "symptoms", "items"))),
        "triggers": draw(subset(enum(DIARY, "properties", "triggers", "items"))),
        "trigger_text": draw(optional(texts)),
    }
    aura = draw(optional(st.booleans()))
    record["aura"] = aura
    if aura:
        record["aura_symptoms"] = draw(subset(enum(DIARY, "properties", "aura_symptoms", "items")))
    if headache:
        onset = draw(moments.filter(lambda m: m.year < 2100))
        minutes = draw(st.integers(1, 4320))
        record["onset"] = stamp(onset)
        shape = draw(st.sampled_from(["none", "end", "duration", "both"]))
        if shape in ("end", "both"):
            record["end"] = stamp(onset + timedelta(minutes=minutes))
        if shape in ("duration", "both"):
            record["duration_minutes"] = minutes
        severity = draw(st.sampled_from(["number", "category", "both"]))
        if severity != "category":
            record["severity"] = draw(st.integers(0, 10))
        if severity != "number":
            record["severity_category"] = draw(
                st.sampled_from(enum(DIARY, "properties", "severity_category"))
            )
        record["laterality"] = draw(
            optional(st.sampled_from(enum(DIARY, "properties", "laterality")))
        )
        record["disability"] = draw(
            optional(st.sampled_from(enum(DIARY, "properties", "disability")))
        )
        record["medications"] = draw(
            st.lists(medications(), max_size=3, unique_by=lambda m: json.dumps(m, sort_keys=True))
        )
    return without_none(record)


VITALS = SESSION["$defs"]["vitalsReading"]["properties"]


@st.composite
def vitals(draw: st.DrawFn, earliest: datetime, latest: datetime) -> dict[str, Any]:
    seconds = int((latest - earliest).total_seconds())
    time = earliest + timedelta(seconds=draw(st.integers(0, seconds)))
    reading: dict[str, Any] = {
        "time": stamp(time),
        "phase": draw(
            optional(
                st.sampled_from(enum(SESSION, "$defs", "vitalsReading", "properties", "phase"))
            )
        ),
        "heart_rate": draw(optional(st.integers(1, 300))),
        "spo2": draw(optional(st.integers(1, 100))),
        "respiratory_rate": draw(optional(st.integers(1, 100))),
    }
    if draw(st.booleans()) or all(
        reading[k] is None for k in ("heart_rate", "spo2", "respiratory_rate")
    ):
        systolic = draw(st.integers(2, 370))
        reading["systolic"] = systolic
        reading["diastolic"] = draw(st.integers(1, min(systolic, 360)))
    return without_none(reading)


@st.composite
def ketamine_sessions(draw: st.DrawFn) -> dict[str, Any]:
    start = draw(moments.filter(lambda m: 1991 <= m.year < 2100))
    end = draw(
        optional(st.integers(0, 600).map(lambda minutes: start + timedelta(minutes=minutes)))
    )
    status = draw(optional(st.sampled_from(enum(SESSION, "properties", "status"))))
    route = draw(st.sampled_from(enum(SESSION, "properties", "route")))
    record: dict[str, Any] = {
        "record_type": "ketamine-session",
        "session_id": draw(ids),
        "patient_id": draw(ids),
        "start": stamp(start),
        "end": None if end is None else stamp(end),
        "status": status,
        "status_reason": draw(texts)
        if status in ("stopped", "not-done")
        else draw(optional(texts)),
        "route": route,
        "product": draw(optional(st.sampled_from(enum(SESSION, "properties", "product")))),
        "course_id": draw(optional(ids)),
        "session_number": draw(optional(st.integers(1, 1000))),
        "indication": draw(optional(st.sampled_from(enum(SESSION, "properties", "indication")))),
        "performer_id": draw(optional(ids)),
        "performer_name": draw(optional(texts)),
        "performer_role": draw(
            optional(st.sampled_from(enum(SESSION, "properties", "performer_role")))
        ),
        "location_id": draw(optional(ids)),
        "post_care": draw(optional(texts)),
        "notes": draw(optional(texts)),
        "recorded_at": draw(optional(moments.map(stamp))),
    }
    if status != "not-done" or draw(st.booleans()):
        weight = draw(st.integers(20, 250))
        per_kg = draw(st.sampled_from([0.1, 0.25, 0.5, 0.75, 1.0]))
        record["dose_mg"] = round(weight * per_kg, 2)
        if draw(st.booleans()):
            record["weight_kg"] = weight
            record["dose_mg_per_kg"] = per_kg
    if route == "intravenous":
        record["rate_mg_per_kg_per_h"] = draw(optional(st.floats(0.01, 5, allow_nan=False)))
    window = (start - timedelta(hours=2), (end or start) + timedelta(hours=2))
    record["vitals"] = draw(
        st.lists(vitals(*window), max_size=4, unique_by=lambda v: json.dumps(v, sort_keys=True))
    )
    effects = SESSION["$defs"]["adverseEffect"]["properties"]
    record["adverse_effects"] = draw(
        st.lists(
            st.fixed_dictionaries(
                {"effect": st.sampled_from(effects["effect"]["enum"])},
                optional={"severity": st.sampled_from(effects["severity"]["enum"]), "text": texts},
            ),
            max_size=3,
            unique_by=lambda a: json.dumps(a, sort_keys=True),
        )
    )
    return without_none(record)


uris = st.from_regex(r"(https|urn):[A-Za-z0-9._~/:-]{1,40}", fullmatch=True)


@st.composite
def patients(draw: st.DrawFn) -> dict[str, Any]:
    given = draw(st.one_of(st.none(), texts, st.lists(texts, min_size=1, max_size=3, unique=True)))
    return without_none(
        {
            "record_type": "patient",
            "patient_id": draw(ids),
            "identifiers": draw(
                st.lists(
                    st.fixed_dictionaries({"system": uris, "value": texts}),
                    max_size=3,
                    unique_by=lambda i: (i["system"], i["value"]),
                )
            ),
            "family": draw(optional(texts)),
            "given": given,
            "birth_date": draw(optional(dates.map(lambda d: d.isoformat()))),
            "gender": draw(optional(st.sampled_from(enum(PATIENT, "properties", "gender")))),
            "recorded_at": draw(optional(moments.map(stamp))),
        }
    )


records = st.one_of(diary_entries(), ketamine_sessions(), patients())


# --- the properties ----------------------------------------------------------------------------


def parsed(data: object) -> tuple[Any, list[Any]]:
    raw = RawRecord(Source("property.ndjson", line=1), data, data)
    return parse_record(raw, ParseOptions())


def fhir_errors(record: Any) -> list[Any]:
    resources = convert_record(record, CTX)
    patient = None if isinstance(record, PatientRecord) else patient_stub(record.patient_id, CTX)
    problems = validate_record_resources(resources, patient, validator=VALIDATOR)
    return [p for p in problems if p.is_error]


@EXAMPLES
@given(records)
def test_every_record_the_contract_accepts_converts_into_valid_fhir(data: dict[str, Any]) -> None:
    record, problems = parsed(data)
    assert record is not None, [str(p) for p in problems]
    assert [p for p in problems if p.is_error] == []
    assert fhir_errors(record) == []


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(["", " ", "2026-02-30", "2026-03-29T02:30:00", "../x", "\u0000", "1e400"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a record (dict keys and list indexes)."""
    found = [here] if here else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*here, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    record = json.loads(json.dumps(draw(records)))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(record)))
        parent: Any = record
        for part in where[:-1]:
            parent = parent[part]
        kind = draw(st.sampled_from(["delete", "replace", "add", "text"]))
        if kind == "delete":
            del parent[where[-1]]
        elif kind == "replace":
            parent[where[-1]] = draw(json_values)
        elif kind == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(json_values)
        elif kind == "text":
            parent[where[-1]] = draw(st.text(max_size=30))
        if not paths(record):
            break
    return record


@EXAMPLES
@given(mutated())
def test_a_mutated_record_is_accepted_validly_or_rejected_with_registered_codes(
    data: dict[str, Any],
) -> None:
    record, problems = parsed(data)
    for problem in problems:
        assert problem.code in PROBLEM_CODES
        assert problem.path.startswith("$")
    if record is None:
        assert [p for p in problems if p.is_error]
    else:
        assert fhir_errors(record) == []


garbage_lines = st.sampled_from(
    # (No byte-order mark: a file starting with one is read, and rejected, as UTF-16 whole.)
    [b"{", b"[]", b"null", b'{"a": NaN}', b"\xc3\x28", b'{"record_type": "diary-entry"}']
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            records.map(lambda r: json.dumps(r).encode()),
            mutated().map(lambda r: json.dumps(r).encode()),
            garbage_lines,
        ),
        min_size=1,
        max_size=12,
    )
)
def test_an_export_of_a_random_mix_reconciles(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "mix.ndjson"
        source.write_bytes(b"\n".join(lines) + b"\n")
        options = ExportOptions(out=Path(folder) / "out", export_time=CTX.export_time)
        result = export([str(source)], InputOptions(), options)
        counts = result.report.counts
        assert counts.total_read == len(lines)
        assert counts.total_read == counts.total_accepted + counts.total_rejected
        out = Path(folder) / "out"
        summary = json.loads((out / "summary.json").read_text("utf-8"))
        assert summary["records_read"] == len(lines)
        # NDJSON lines end at \n only (str.splitlines also splits at U+0085 or U+2028, which
        # free text may hold and JSON writes unescaped).
        rejects = (out / "rejects.ndjson").read_text("utf-8").split("\n")[:-1]
        assert len(rejects) == summary["records_rejected"]
        provenance = out / "Provenance.ndjson"
        exported = len(provenance.read_text("utf-8").split("\n")[:-1]) if provenance.exists() else 0
        assert exported == summary["records_exported"]
