"""parse_record: each rule of the input contract (records.md), broken once and kept once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from migrainefhir.input.model import ParseOptions, parse_record
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.records import (
    AdverseEffect,
    DiaryEntry,
    KetamineSession,
    MedicationIntake,
    PatientIdentifier,
    PatientRecord,
    Record,
    VitalsReading,
)
from migrainefhir.problems import Problem, Severity, Source

SOURCE = Source("diary.ndjson", line=7)
BERLIN = ZoneInfo("Europe/Berlin")
CET = timezone(timedelta(hours=1))
DELETE = object()

DIARY: dict[str, Any] = {
    "record_type": "diary-entry",
    "entry_id": "e-1",
    "patient_id": "p-1",
    "date": "2026-03-01",
    "headache": True,
    "onset": "2026-03-01T14:30:00+01:00",
    "severity": 6,
}
SESSION: dict[str, Any] = {
    "record_type": "ketamine-session",
    "session_id": "s-1",
    "patient_id": "p-1",
    "start": "2026-03-02T09:00:00+01:00",
    "route": "intravenous",
    "dose_mg": 35,
}
PATIENT: dict[str, Any] = {"record_type": "patient", "patient_id": "p-1"}
BASES = {"diary": DIARY, "session": SESSION, "patient": PATIENT}


def parse(data: object, timezone: ZoneInfo | None = None) -> tuple[Record | None, list[Problem]]:
    return parse_record(RawRecord(SOURCE, data, data), ParseOptions(timezone))


def changed(base: dict[str, Any], **changes: object) -> dict[str, Any]:
    record = dict(base)
    for name, value in changes.items():
        if value is DELETE:
            del record[name]
        else:
            record[name] = value
    return record


def found(data: object, timezone: ZoneInfo | None = None) -> list[tuple[str, str]]:
    record, problems = parse(data, timezone)
    assert (record is None) == any(p.is_error for p in problems)
    assert all(p.source == SOURCE for p in problems)
    return [(p.code, p.path) for p in problems]


LONG = "x" * 4001
OK_TEXT = "x" * 4000
T = "2026-03-02T09:30:00+01:00"

# (base, changes, expected problems); one row per way of breaking a rule of records.md.
BREAKING: list[tuple[str, dict[str, object], list[tuple[str, str]]]] = [
    # common rules
    ("diary", {"record_type": DELETE}, [("input.record-type", "$.record_type")]),
    ("diary", {"record_type": "diary"}, [("input.record-type", "$.record_type")]),
    ("diary", {"severty": 5}, [("input.unknown-field", "$.severty")]),
    ("diary", {"entry_id": "-e1"}, [("input.id", "$.entry_id")]),
    ("diary", {"entry_id": ""}, [("input.id", "$.entry_id")]),
    ("diary", {"entry_id": "e" * 65}, [("input.id", "$.entry_id")]),
    ("diary", {"entry_id": "e 1"}, [("input.id", "$.entry_id")]),
    ("diary", {"entry_id": 12}, [("input.type", "$.entry_id")]),
    ("diary", {"patient_id": "p/1"}, [("input.id", "$.patient_id")]),
    ("diary", {"recorded_at": "2026-02-30T10:00:00Z"}, [("input.format", "$.recorded_at")]),
    ("diary", {"onset": "2026-03-01T14:30:00"}, [("input.no-offset", "$.onset")]),
    # diary-entry
    ("diary", {"entry_id": DELETE}, [("input.required", "$.entry_id")]),
    ("diary", {"patient_id": DELETE}, [("input.required", "$.patient_id")]),
    ("diary", {"date": DELETE}, [("input.required", "$.date")]),
    ("diary", {"headache": DELETE}, [("input.required", "$.headache")]),
    ("diary", {"headache": "yes"}, [("input.type", "$.headache")]),
    ("diary", {"date": "2026-02-30"}, [("input.format", "$.date")]),
    ("diary", {"date": "2026-13-01"}, [("input.format", "$.date")]),
    ("diary", {"onset": DELETE}, [("input.required", "$.onset")]),
    ("diary", {"severity": DELETE}, [("input.required", "$.severity")]),
    ("diary", {"end": "2026-03-01T25:00:00+01:00"}, [("input.format", "$.end")]),
    ("diary", {"duration_minutes": 0}, [("input.range", "$.duration_minutes")]),
    ("diary", {"duration_minutes": 1.5}, [("input.type", "$.duration_minutes")]),
    ("diary", {"severity": 11}, [("input.range", "$.severity")]),
    ("diary", {"severity": -1}, [("input.range", "$.severity")]),
    ("diary", {"severity": "7"}, [("input.type", "$.severity")]),
    ("diary", {"severity_category": "terrible"}, [("input.enum", "$.severity_category")]),
    ("diary", {"laterality": "top"}, [("input.enum", "$.laterality")]),
    ("diary", {"aura": "true"}, [("input.type", "$.aura")]),
    ("diary", {"aura_symptoms": ["numbness"]}, [("input.not-allowed", "$.aura_symptoms")]),
    (
        "diary",
        {"aura": False, "aura_symptoms": ["numbness"]},
        [("input.not-allowed", "$.aura_symptoms")],
    ),
    (
        "diary",
        {"aura": True, "aura_symptoms": ["numbness", "numbness"]},
        [("input.duplicate-item", "$.aura_symptoms[1]")],
    ),
    ("diary", {"aura": True, "aura_symptoms": ["fog"]}, [("input.enum", "$.aura_symptoms[0]")]),
    ("diary", {"symptoms": ["nausea", "headache"]}, [("input.enum", "$.symptoms[1]")]),
    (
        "diary",
        {"symptoms": ["nausea", "fatigue", "nausea"]},
        [("input.duplicate-item", "$.symptoms[2]")],
    ),
    ("diary", {"symptoms": "nausea"}, [("input.type", "$.symptoms")]),
    ("diary", {"prodrome": 1}, [("input.type", "$.prodrome")]),
    ("diary", {"postdrome": "yes"}, [("input.type", "$.postdrome")]),
    ("diary", {"triggers": ["chocolate"]}, [("input.enum", "$.triggers[0]")]),
    ("diary", {"triggers": ["stress", "stress"]}, [("input.duplicate-item", "$.triggers[1]")]),
    ("diary", {"trigger_text": LONG}, [("input.text-too-long", "$.trigger_text")]),
    ("diary", {"medications": [{"dose_mg": 400}]}, [("input.required", "$.medications[0].drug")]),
    (
        "diary",
        {"medications": [{"drug": "other"}]},
        [("input.required", "$.medications[0].drug_text")],
    ),
    (
        "diary",
        {"medications": [{"drug": "other", "drug_text": " "}]},
        [("input.required", "$.medications[0].drug_text")],
    ),
    ("diary", {"medications": [{"drug": "tylenol"}]}, [("input.enum", "$.medications[0].drug")]),
    (
        "diary",
        {"medications": [{"drug": "ibuprofen", "dose_mg": 0}]},
        [("input.range", "$.medications[0].dose_mg")],
    ),
    (
        "diary",
        {"medications": [{"drug": "ibuprofen", "dose_mg": "400"}]},
        [("input.type", "$.medications[0].dose_mg")],
    ),
    (
        "diary",
        {"medications": [{"drug": "ibuprofen", "relief": "some"}]},
        [("input.enum", "$.medications[0].relief")],
    ),
    (
        "diary",
        {"medications": [{"drug": "ibuprofen", "taken_at": "2026-03-01T15:00:00"}]},
        [("input.no-offset", "$.medications[0].taken_at")],
    ),
    (
        "diary",
        {"medications": [{"drug": "ibuprofen", "brand": "Advil"}]},
        [("input.unknown-field", "$.medications[0].brand")],
    ),
    ("diary", {"disability": "total"}, [("input.enum", "$.disability")]),
    ("diary", {"sleep_hours": 25}, [("input.range", "$.sleep_hours")]),
    ("diary", {"sleep_hours": -0.5}, [("input.range", "$.sleep_hours")]),
    ("diary", {"stress_level": 11}, [("input.range", "$.stress_level")]),
    ("diary", {"exercise_minutes": 1441}, [("input.range", "$.exercise_minutes")]),
    ("diary", {"notes": LONG}, [("input.text-too-long", "$.notes")]),
    # ketamine-session
    ("session", {"session_id": DELETE}, [("input.required", "$.session_id")]),
    ("session", {"patient_id": DELETE}, [("input.required", "$.patient_id")]),
    ("session", {"start": DELETE}, [("input.required", "$.start")]),
    ("session", {"route": DELETE}, [("input.required", "$.route")]),
    ("session", {"route": "oral"}, [("input.enum", "$.route")]),
    ("session", {"end": "2026-03-02"}, [("input.format", "$.end")]),
    ("session", {"status": "done"}, [("input.enum", "$.status")]),
    ("session", {"status": "stopped"}, [("input.required", "$.status_reason")]),
    (
        "session",
        {"status": "not-done", "status_reason": "", "dose_mg": DELETE},
        [("input.required", "$.status_reason")],
    ),
    ("session", {"status_reason": LONG}, [("input.text-too-long", "$.status_reason")]),
    ("session", {"dose_mg": DELETE}, [("input.required", "$.dose_mg")]),
    ("session", {"status": "completed", "dose_mg": DELETE}, [("input.required", "$.dose_mg")]),
    (
        "session",
        {"status": "stopped", "status_reason": "nausea", "dose_mg": DELETE},
        [("input.required", "$.dose_mg")],
    ),
    ("session", {"product": "ketalar"}, [("input.enum", "$.product")]),
    ("session", {"dose_mg": 0}, [("input.range", "$.dose_mg")]),
    ("session", {"weight_kg": 0}, [("input.range", "$.weight_kg")]),
    ("session", {"dose_mg_per_kg": -0.5}, [("input.range", "$.dose_mg_per_kg")]),
    ("session", {"rate_mg_per_kg_per_h": 0}, [("input.range", "$.rate_mg_per_kg_per_h")]),
    (
        "session",
        {"route": "intranasal", "rate_mg_per_kg_per_h": 0.5},
        [("input.not-allowed", "$.rate_mg_per_kg_per_h")],
    ),
    ("session", {"course_id": "course 1"}, [("input.id", "$.course_id")]),
    ("session", {"session_number": 0}, [("input.range", "$.session_number")]),
    ("session", {"indication": "cluster-headache"}, [("input.enum", "$.indication")]),
    ("session", {"performer_id": "_dr"}, [("input.id", "$.performer_id")]),
    ("session", {"performer_name": LONG}, [("input.text-too-long", "$.performer_name")]),
    ("session", {"performer_role": "surgeon"}, [("input.enum", "$.performer_role")]),
    ("session", {"location_id": ".clinic"}, [("input.id", "$.location_id")]),
    ("session", {"vitals": [{"heart_rate": 80}]}, [("input.required", "$.vitals[0].time")]),
    ("session", {"vitals": [{"time": T}]}, [("input.required", "$.vitals[0].heart_rate")]),
    (
        "session",
        {"vitals": [{"time": T, "phase": "after"}]},
        [("input.enum", "$.vitals[0].phase"), ("input.required", "$.vitals[0].heart_rate")],
    ),
    (
        "session",
        {"vitals": [{"time": T, "systolic": 120}]},
        [("input.required", "$.vitals[0].diastolic")],
    ),
    (
        "session",
        {"vitals": [{"time": T, "diastolic": 80}]},
        [("input.required", "$.vitals[0].systolic")],
    ),
    ("session", {"vitals": [{"time": T, "spo2": "98%"}]}, [("input.type", "$.vitals[0].spo2")]),
    (
        "session",
        {"vitals": [{"time": T, "heart_rate": 80, "temp": 37}]},
        [("input.unknown-field", "$.vitals[0].temp")],
    ),
    (
        "session",
        {"vitals": [{"time": "2026-03-02T09:30:00", "heart_rate": 80}]},
        [("input.no-offset", "$.vitals[0].time")],
    ),
    (
        "session",
        {"adverse_effects": [{"severity": "mild"}]},
        [("input.required", "$.adverse_effects[0].effect")],
    ),
    (
        "session",
        {"adverse_effects": [{"effect": "headache"}]},
        [("input.enum", "$.adverse_effects[0].effect")],
    ),
    (
        "session",
        {"adverse_effects": [{"effect": "nausea", "severity": "extreme"}]},
        [("input.enum", "$.adverse_effects[0].severity")],
    ),
    (
        "session",
        {"adverse_effects": [{"effect": "other", "text": LONG}]},
        [("input.text-too-long", "$.adverse_effects[0].text")],
    ),
    (
        "session",
        {"adverse_effects": [{"effect": "nausea"}, {"effect": "nausea"}]},
        [("input.duplicate-item", "$.adverse_effects[1]")],
    ),
    ("session", {"post_care": LONG}, [("input.text-too-long", "$.post_care")]),
    # patient
    ("patient", {"patient_id": DELETE}, [("input.required", "$.patient_id")]),
    ("patient", {"patient_id": "p:1"}, [("input.id", "$.patient_id")]),
    (
        "patient",
        {"identifiers": [{"system": "urn:oid:1.2.3"}]},
        [("input.required", "$.identifiers[0].value")],
    ),
    (
        "patient",
        {"identifiers": [{"system": "the EHR", "value": "123"}]},
        [("input.format", "$.identifiers[0].system")],
    ),
    (
        "patient",
        {"identifiers": [{"system": "urn:x", "value": "1", "use": "usual"}]},
        [("input.unknown-field", "$.identifiers[0].use")],
    ),
    (
        "patient",
        {"identifiers": [{"system": "urn:x", "value": "1"}, {"value": "1", "system": "urn:x"}]},
        [("input.duplicate-item", "$.identifiers[1]")],
    ),
    ("patient", {"family": LONG}, [("input.text-too-long", "$.family")]),
    ("patient", {"given": 5}, [("input.type", "$.given")]),
    ("patient", {"birth_date": "1990-02-30"}, [("input.format", "$.birth_date")]),
    ("patient", {"gender": "f"}, [("input.enum", "$.gender")]),
]


@pytest.mark.parametrize(("base", "changes", "expected"), BREAKING)
def test_breaking_a_rule_is_reported(
    base: str, changes: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert found(changed(BASES[base], **changes)) == expected


# Records on the allowed side of the same rules.
PASSING: list[tuple[str, dict[str, object]]] = [
    ("diary", {}),
    ("diary", {"headache": False, "onset": DELETE, "severity": DELETE}),
    ("diary", {"severity": DELETE, "severity_category": "moderate"}),
    ("diary", {"entry_id": "E.1_a-" + "x" * 58}),  # 64 characters
    ("diary", {"entry_id": "7"}),
    ("diary", {"date": "2024-02-29"}),
    ("diary", {"severity": 0}),
    ("diary", {"severity": 10}),
    ("diary", {"severity": 6.0}),  # JSON Schema: 6.0 is an integer
    ("diary", {"duration_minutes": 1}),
    ("diary", {"aura": True, "aura_symptoms": ["numbness", "tingling-hands"]}),
    ("diary", {"aura": False}),
    ("diary", {"trigger_text": OK_TEXT, "notes": OK_TEXT}),
    ("diary", {"notes": ""}),  # blank text counts as absent
    ("diary", {"postdrome": None, "medications": []}),  # null and [] count as absent
    ("diary", {"medications": [{"drug": "other", "drug_text": "a new triptan"}]}),
    ("diary", {"medications": [{"drug": "ibuprofen", "drug_text": "Advil"}]}),
    ("diary", {"sleep_hours": 24, "stress_level": 0, "exercise_minutes": 1440}),
    ("diary", {"sleep_hours": 0, "stress_level": 10, "exercise_minutes": 0}),
    ("session", {}),
    ("session", {"status": "not-done", "status_reason": "patient unwell", "dose_mg": DELETE}),
    ("session", {"status": "stopped", "status_reason": "dissociation"}),
    ("session", {"rate_mg_per_kg_per_h": 0.5}),
    ("session", {"route": "intranasal", "product": "esketamine"}),
    ("session", {"vitals": [{"time": T, "systolic": 120, "diastolic": 80}]}),
    ("session", {"vitals": [{"time": T, "spo2": 97}, {"time": T, "respiratory_rate": 14}]}),
    ("session", {"adverse_effects": [{"effect": "nausea"}, {"effect": "dissociation"}]}),
    ("patient", {}),
    ("patient", {"given": "Ann"}),
    ("patient", {"given": ["Ann", "Ann"]}),  # a sequence: a name may repeat
    ("patient", {"identifiers": [{"system": "urn:oid:1.2.3", "value": "123"}]}),
]


@pytest.mark.parametrize(("base", "changes"), PASSING)
def test_record_within_the_rules_is_accepted(base: str, changes: dict[str, object]) -> None:
    assert found(changed(BASES[base], **changes)) == []


def test_conditional_requirement_says_the_condition() -> None:
    _, problems = parse(changed(DIARY, onset=DELETE))
    assert [p.message for p in problems] == ["onset is required when headache is true"]


def test_every_schema_error_is_reported_once() -> None:
    data = changed(DIARY, severity=11, laterality="top", notes=LONG, extra=1)
    assert sorted(found(data)) == [
        ("input.enum", "$.laterality"),
        ("input.range", "$.severity"),
        ("input.text-too-long", "$.notes"),
        ("input.unknown-field", "$.extra"),
    ]


def test_range_message_is_for_people() -> None:
    _, problems = parse(changed(DIARY, severity=11))
    assert [p.message for p in problems] == ["severity must be at most 10"]


def test_free_text_is_never_quoted() -> None:
    secret = "Ms Doe, 12 Elm St"
    _, problems = parse(changed(DIARY, notes=secret * 300, laterality=secret))
    assert problems and all(secret not in p.message for p in problems)


def test_reader_problems_reject_the_record_as_is() -> None:
    reader_problem = Problem("read.json-syntax", Severity.ERROR, "not JSON", "$", SOURCE)
    raw = RawRecord(SOURCE, None, "{bad", (reader_problem,))
    assert parse_record(raw, ParseOptions()) == (None, [reader_problem])


def test_record_that_is_not_an_object_is_rejected() -> None:
    assert found([DIARY]) == [("input.type", "$")]


def test_rule_problems_are_placed_at_the_source() -> None:
    record, problems = parse(changed(DIARY, end="2026-03-01T14:00:00+01:00"))
    assert record is None
    assert [(p.code, p.source) for p in problems] == [("input.end-before-onset", SOURCE)]


def test_warning_comes_back_with_the_accepted_record() -> None:
    data = changed(SESSION, vitals=[{"time": T, "heart_rate": 190}])
    record, problems = parse(data)
    assert isinstance(record, KetamineSession)
    assert [(p.code, p.severity, p.path) for p in problems] == [
        ("input.vitals-implausible", Severity.WARNING, "$.vitals[0].heart_rate")
    ]


def test_input_is_not_modified() -> None:
    data = changed(DIARY, onset="2026-03-01T14:30:00", notes="  ")
    before = repr(data)
    parse(data, BERLIN)
    assert repr(data) == before


# -- time zones ------------------------------------------------------------------------------


def onset_of(onset: str, zone: ZoneInfo | None = None) -> datetime:
    record, problems = parse(changed(DIARY, onset=onset), zone)
    assert problems == []
    assert isinstance(record, DiaryEntry) and record.onset is not None
    return record.onset


def test_offset_is_kept() -> None:
    onset = onset_of("2026-03-01T14:30:00-05:00")
    assert onset.utcoffset() == timedelta(hours=-5)
    assert onset == datetime(2026, 3, 1, 19, 30, tzinfo=UTC)


def test_offset_wins_over_timezone() -> None:
    onset = onset_of("2026-07-01T14:30:00Z", BERLIN)
    assert onset.utcoffset() == timedelta(0)


def test_local_time_in_winter_gets_the_standard_offset() -> None:
    onset = onset_of("2026-01-15T14:30:00", BERLIN)
    assert onset.utcoffset() == timedelta(hours=1)
    assert onset == datetime(2026, 1, 15, 13, 30, tzinfo=UTC)


def test_local_time_in_summer_gets_the_daylight_saving_offset() -> None:
    onset = onset_of("2026-07-15T14:30:00", BERLIN)
    assert onset.utcoffset() == timedelta(hours=2)
    assert onset == datetime(2026, 7, 15, 12, 30, tzinfo=UTC)


def test_local_time_in_the_dst_gap_is_rejected() -> None:
    # Berlin, 29 March 2026: clocks jump from 02:00 to 03:00.
    assert found(changed(DIARY, onset="2026-03-29T02:30:00"), BERLIN) == [
        ("input.local-time-invalid", "$.onset")
    ]


def test_local_time_in_the_dst_overlap_is_rejected() -> None:
    # Berlin, 25 October 2026: 02:00-03:00 happens twice.
    assert found(changed(DIARY, onset="2026-10-25T02:30:00"), BERLIN) == [
        ("input.local-time-invalid", "$.onset")
    ]


def test_local_times_next_to_the_dst_change_are_accepted() -> None:
    assert onset_of("2026-03-29T01:59:59", BERLIN).utcoffset() == timedelta(hours=1)
    assert onset_of("2026-03-29T03:00:00", BERLIN).utcoffset() == timedelta(hours=2)


def test_no_offset_without_timezone_names_the_field() -> None:
    _, problems = parse(changed(DIARY, onset="2026-03-01T14:30:00"))
    assert [(p.code, p.path) for p in problems] == [("input.no-offset", "$.onset")]
    assert problems[0].message.startswith("onset has no UTC offset")


def test_impossible_local_time_is_a_format_error_even_with_timezone() -> None:
    assert found(changed(DIARY, onset="2026-02-30T14:30:00"), BERLIN) == [
        ("input.format", "$.onset")
    ]


def test_every_date_time_field_is_localised() -> None:
    data = changed(
        SESSION,
        start="2026-07-02T09:00:00",
        end="2026-07-02T10:00:00",
        recorded_at="2026-07-02T11:00:00",
        vitals=[{"time": "2026-07-02T09:15:00", "heart_rate": 80}],
    )
    record, problems = parse(data, BERLIN)
    assert problems == []
    assert isinstance(record, KetamineSession) and record.end and record.recorded_at
    times = [record.start, record.end, record.recorded_at, record.vitals[0].time]
    assert [t.utcoffset() for t in times] == [timedelta(hours=2)] * 4


# -- maximal records -------------------------------------------------------------------------


def test_maximal_diary_entry() -> None:
    data = {
        "record_type": "diary-entry",
        "entry_id": "e-42",
        "patient_id": "p-7",
        "date": "2026-03-01",
        "headache": True,
        "onset": "2026-03-01T14:30:00+01:00",
        "end": "2026-03-01T18:30:00+01:00",
        "duration_minutes": 240,
        "severity": 7,
        "severity_category": "severe",
        "laterality": "left",
        "aura": True,
        "aura_symptoms": ["visual-flashing-lights", "tingling-hands"],
        "symptoms": ["nausea", "photophobia"],
        "prodrome": True,
        "postdrome": False,
        "triggers": ["stress", "other"],
        "trigger_text": "long flight",
        "medications": [
            {
                "drug": "sumatriptan",
                "dose_mg": 50,
                "taken_at": "2026-03-01T15:00:00+01:00",
                "relief": "complete",
            },
            {"drug": "other", "drug_text": "metoclopramide", "dose_mg": 10.5},
        ],
        "disability": "moderate",
        "sleep_hours": 6.5,
        "stress_level": 8,
        "exercise_minutes": 30,
        "notes": "woke up with it",
        "recorded_at": "2026-03-02T08:00:00Z",
    }
    record, problems = parse(data)
    assert problems == []
    assert record == DiaryEntry(
        entry_id="e-42",
        patient_id="p-7",
        date=date(2026, 3, 1),
        headache=True,
        source=SOURCE,
        onset=datetime(2026, 3, 1, 14, 30, tzinfo=CET),
        end=datetime(2026, 3, 1, 18, 30, tzinfo=CET),
        duration_minutes=240,
        severity=7,
        severity_category="severe",
        laterality="left",
        aura=True,
        aura_symptoms=("visual-flashing-lights", "tingling-hands"),
        symptoms=("nausea", "photophobia"),
        prodrome=True,
        postdrome=False,
        triggers=("stress", "other"),
        trigger_text="long flight",
        medications=(
            MedicationIntake(
                drug="sumatriptan",
                dose_mg=50.0,
                taken_at=datetime(2026, 3, 1, 15, 0, tzinfo=CET),
                relief="complete",
            ),
            MedicationIntake(drug="other", drug_text="metoclopramide", dose_mg=10.5),
        ),
        disability="moderate",
        sleep_hours=6.5,
        stress_level=8,
        exercise_minutes=30,
        notes="woke up with it",
        recorded_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
    )
    assert isinstance(record.medications[0].dose_mg, float)


def test_maximal_ketamine_session() -> None:
    data = {
        "record_type": "ketamine-session",
        "session_id": "s-9",
        "patient_id": "p-7",
        "start": "2026-03-02T09:00:00+01:00",
        "end": "2026-03-02T09:40:00+01:00",
        "status": "stopped",
        "status_reason": "strong dissociation",
        "route": "intravenous",
        "product": "esketamine",
        "dose_mg": 35,
        "weight_kg": 70,
        "dose_mg_per_kg": 0.5,
        "rate_mg_per_kg_per_h": 0.75,
        "course_id": "course-1",
        "session_number": 3,
        "indication": "chronic-migraine",
        "performer_id": "dr-1",
        "performer_name": "Dr. Example",
        "performer_role": "anesthesiologist",
        "location_id": "clinic.north",
        "vitals": [
            {
                "time": "2026-03-02T08:55:00+01:00",
                "phase": "pre",
                "heart_rate": 72,
                "systolic": 120,
                "diastolic": 80,
                "spo2": 98,
                "respiratory_rate": 14,
            },
            {"time": "2026-03-02T09:20:00+01:00", "phase": "during", "heart_rate": 88.5},
        ],
        "adverse_effects": [
            {"effect": "dissociation", "severity": "severe"},
            {"effect": "other", "severity": "mild", "text": "metallic taste"},
        ],
        "post_care": "no driving for 24 h",
        "notes": "stopped early",
        "recorded_at": "2026-03-02T12:00:00Z",
    }
    record, problems = parse(data)
    assert problems == []
    assert record == KetamineSession(
        session_id="s-9",
        patient_id="p-7",
        start=datetime(2026, 3, 2, 9, 0, tzinfo=CET),
        route="intravenous",
        source=SOURCE,
        end=datetime(2026, 3, 2, 9, 40, tzinfo=CET),
        status="stopped",
        status_reason="strong dissociation",
        product="esketamine",
        dose_mg=35.0,
        weight_kg=70.0,
        dose_mg_per_kg=0.5,
        rate_mg_per_kg_per_h=0.75,
        course_id="course-1",
        session_number=3,
        indication="chronic-migraine",
        performer_id="dr-1",
        performer_name="Dr. Example",
        performer_role="anesthesiologist",
        location_id="clinic.north",
        vitals=(
            VitalsReading(
                time=datetime(2026, 3, 2, 8, 55, tzinfo=CET),
                phase="pre",
                heart_rate=72.0,
                systolic=120.0,
                diastolic=80.0,
                spo2=98.0,
                respiratory_rate=14.0,
            ),
            VitalsReading(
                time=datetime(2026, 3, 2, 9, 20, tzinfo=CET), phase="during", heart_rate=88.5
            ),
        ),
        adverse_effects=(
            AdverseEffect(effect="dissociation", severity="severe"),
            AdverseEffect(effect="other", severity="mild", text="metallic taste"),
        ),
        post_care="no driving for 24 h",
        notes="stopped early",
        recorded_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
    )


def test_maximal_patient() -> None:
    data = {
        "record_type": "patient",
        "patient_id": "p-7",
        "identifiers": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-12345"}],
        "family": "Example",
        "given": ["Anna", "Maria"],
        "birth_date": "1985-04-12",
        "gender": "female",
        "recorded_at": "2026-03-02T12:00:00+00:00",
    }
    record, problems = parse(data)
    assert problems == []
    assert record == PatientRecord(
        patient_id="p-7",
        source=SOURCE,
        identifiers=(PatientIdentifier("urn:oid:1.2.36.146.595.217.0.1", "MRN-12345"),),
        family="Example",
        given=("Anna", "Maria"),
        birth_date=date(1985, 4, 12),
        gender="female",
        recorded_at=datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
    )


def test_minimal_session_gets_the_contract_defaults() -> None:
    record, _ = parse(SESSION)
    assert isinstance(record, KetamineSession)
    assert (record.status, record.product, record.indication) == (
        "completed",
        "ketamine",
        "migraine",
    )
    assert (record.vitals, record.adverse_effects, record.end) == ((), (), None)


def test_blank_text_becomes_absent() -> None:
    record, _ = parse(changed(DIARY, notes=" \n", trigger_text=""))
    assert isinstance(record, DiaryEntry)
    assert (record.notes, record.trigger_text) == (None, None)


def test_integer_written_as_float_becomes_int() -> None:
    record, _ = parse(changed(DIARY, severity=6.0))
    assert isinstance(record, DiaryEntry)
    assert record.severity == 6 and isinstance(record.severity, int)
