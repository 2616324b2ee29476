"""The shipped input schemas: valid JSON Schema 2020-12, strict, and formats really checked."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from migrainefhir.input.model import input_checker
from migrainefhir.input.records import RECORD_TYPES
from migrainefhir.problems import Problem
from migrainefhir.schema import (
    INPUT_CODES,
    SchemaChecker,
    load_schema,
    parse_date_time,
)

SCHEMA_NAMES = [f"{record_type}.schema.json" for record_type in RECORD_TYPES]


def _objects(node: object) -> list[dict[str, Any]]:
    """Every subschema that describes an object with properties."""
    found = []
    if isinstance(node, dict):
        if "properties" in node and node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found.extend(_objects(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_objects(value))
    return found


def _arrays(node: object) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "array" or node.get("type") == ["string", "array"]:
            found.append(node)
        for value in node.values():
            found.extend(_arrays(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_arrays(value))
    return found


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_has_id_title_and_description(name: str) -> None:
    schema = load_schema(name)
    assert schema["$id"] == f"https://migrainefhir.org/schemas/{name}"
    assert schema["title"]
    assert schema["description"]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_object_forbids_unknown_fields(name: str) -> None:
    objects = _objects(load_schema(name))
    assert objects
    assert all(o.get("additionalProperties") is False for o in objects)


# Lists whose items are sequences, not sets: a repeated item is data (a second identical dose,
# a given name that repeats). Every other list is a set of codes or readings, where a repeat
# says nothing and is refused (input.duplicate-item); docs/input-contract.md says which is which.
REPEATABLE_LISTS = {
    "diary-entry.schema.json": {"medications"},
    "ketamine-session.schema.json": set(),
    "patient.schema.json": {"given"},
}


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_every_list_field_has_unique_items_unless_repeats_are_data(name: str) -> None:
    schema = load_schema(name)
    assert _arrays(schema)
    repeatable = {
        field
        for field, sub in schema["properties"].items()
        if sub in _arrays(schema) and "uniqueItems" not in sub
    }
    assert repeatable == REPEATABLE_LISTS[name]
    others = [
        a for a in _arrays(schema) if all(a is not schema["properties"][f] for f in repeatable)
    ]
    assert all(a.get("uniqueItems") is True for a in others)


def test_load_schema_of_unknown_name_fails() -> None:
    with pytest.raises(FileNotFoundError):
        load_schema("no-such.schema.json")


def _diary(**fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "record_type": "diary-entry",
        "entry_id": "e-1",
        "patient_id": "p-1",
        "date": "2026-03-01",
        "headache": False,
    }
    record.update(fields)
    return record


def _codes(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in problems]


@pytest.mark.parametrize(
    "value", ["2026-02-30", "2026-13-01", "2025-02-29", "2026-3-1", "20260301", "2026-03-01 "]
)
def test_bad_or_impossible_date_is_rejected(value: str) -> None:
    checker = input_checker("diary-entry")
    record = _diary(date=value)
    assert not checker.is_valid(record)
    assert _codes(checker.problems(record)) == [("input.format", "$.date")]


@pytest.mark.parametrize("value", ["2024-02-29", "2026-12-31"])
def test_real_date_is_accepted(value: str) -> None:
    assert input_checker("diary-entry").is_valid(_diary(date=value))


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30T10:00:00Z",  # impossible day
        "2026-03-01T24:00:00Z",  # hour 24
        "2026-03-01T10:60:00Z",
        "2026-12-31T23:59:60Z",  # leap seconds cannot be represented
        "2026-03-01T10:00+01:00",  # no seconds
        "2026-03-01 10:00:00+01:00",  # space instead of T
        "2026-03-01T10:00:00+0100",  # offset without colon
        "2026-03-01T10:00:00+24:00",
        "yesterday",
    ],
)
def test_bad_or_impossible_date_time_is_rejected(value: str) -> None:
    checker = input_checker("diary-entry")
    record = _diary(recorded_at=value)
    assert not checker.is_valid(record)
    assert _codes(checker.problems(record)) == [("input.format", "$.recorded_at")]


@pytest.mark.parametrize(
    "value",
    [
        "2026-03-01T10:00:00Z",
        "2026-03-01T10:00:00+01:00",
        "2026-03-01T10:00:00-05:30",
        "2026-03-01T10:00:00.123456000+01:00",
        "2026-03-01t10:00:00z",  # RFC 3339 allows lower case
    ],
)
def test_rfc3339_date_time_is_accepted(value: str) -> None:
    assert input_checker("diary-entry").is_valid(_diary(recorded_at=value))


def test_date_time_keeps_its_offset_and_refuses_to_cut_beyond_microseconds() -> None:
    parsed = parse_date_time("2026-03-01T10:00:00.123456000-05:30")
    assert parsed is not None
    assert parsed.isoformat() == "2026-03-01T10:00:00.123456-05:30"
    assert parse_date_time("2026-03-01T10:00:00.123456789-05:30") is None


def test_checker_serves_any_schema_with_its_own_codes() -> None:
    schema = {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"const": "Observation"}},
    }
    checker = SchemaChecker(schema, INPUT_CODES)
    assert checker.is_valid({"resourceType": "Observation"})
    assert _codes(checker.problems({})) == [("input.required", "$.resourceType")]
    assert checker.problems({"resourceType": "Observation"}) == []


def test_messages_never_quote_the_value() -> None:
    secret = "Jane Doe has a migraine"
    checker = input_checker("diary-entry")
    attack = {"headache": True, "onset": "2026-03-01T08:00:00+01:00"}
    problems = checker.problems(
        _diary(**attack, severity_category=secret, date=secret, entry_id=secret)
    )
    assert len(problems) == 3
    assert all(secret not in p.message for p in problems)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("onset", "2026-03-01T08:00:00+01:00"),
        ("end", "2026-03-01T09:00:00+01:00"),
        ("duration_minutes", 30),
        ("severity", 7),
        ("severity_category", "mild"),
        ("laterality", "left"),
        ("medications", [{"drug": "ibuprofen"}]),
        ("disability", "mild"),
    ],
)
def test_attack_fields_are_not_allowed_on_a_headache_free_day(field: str, value: object) -> None:
    problems = input_checker("diary-entry").problems(_diary(**{field: value}))
    assert _codes(problems) == [("input.not-allowed", f"$.{field}")]
    assert problems[0].message == f"{field} is allowed only when headache is true"


def test_aura_symptoms_and_triggers_are_allowed_without_headache() -> None:
    # Migraine aura without headache and an aborted attack's prodrome are real diary days.
    record = _diary(
        aura=True,
        aura_symptoms=["visual-blind-spot"],
        prodrome=True,
        symptoms=["nausea"],
        triggers=["stress"],
    )
    assert input_checker("diary-entry").problems(record) == []
