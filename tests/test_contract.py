"""The record rules the schemas cannot express, and duplicate ids across a run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from migrainefhir.input.contract import (
    DIASTOLIC_PLAUSIBLE,
    DIASTOLIC_POSSIBLE,
    HEART_RATE_PLAUSIBLE,
    HEART_RATE_POSSIBLE,
    RESPIRATORY_RATE_PLAUSIBLE,
    RESPIRATORY_RATE_POSSIBLE,
    RULES,
    SPO2_PLAUSIBLE,
    SPO2_POSSIBLE,
    SYSTOLIC_PLAUSIBLE,
    SYSTOLIC_POSSIBLE,
    DuplicateIds,
)
from migrainefhir.input.records import DiaryEntry, KetamineSession, PatientRecord, VitalsReading
from migrainefhir.problems import PROBLEM_CODES, Severity, Source

SOURCE = Source("in.ndjson", line=1)
CET = timezone(timedelta(hours=1))
ONSET = datetime(2026, 3, 1, 14, 0, tzinfo=CET)
START = datetime(2026, 3, 2, 9, 0, tzinfo=CET)


def diary(**fields: object) -> DiaryEntry:
    return DiaryEntry("e-1", "p-1", date(2026, 3, 1), True, SOURCE, onset=ONSET, **fields)  # type: ignore[arg-type]


def session(**fields: object) -> KetamineSession:
    return KetamineSession("s-1", "p-1", START, "intravenous", SOURCE, dose_mg=35.0, **fields)  # type: ignore[arg-type]


def reading(minutes: float = 10, **values: float) -> VitalsReading:
    return VitalsReading(START + timedelta(minutes=minutes), **values)  # type: ignore[arg-type]


def check(record: DiaryEntry | KetamineSession | PatientRecord) -> list[tuple[str, str]]:
    return [(p.code, p.path) for rule in RULES.values() for p in rule(record)]


def test_rules_are_registered_under_permanent_names() -> None:
    assert sorted(RULES) == [
        "attack-too-long",
        "dose-mismatch",
        "duration-mismatch",
        "duration-range",
        "end-before-onset",
        "end-before-start",
        "session-too-long",
        "vitals-implausible",
        "vitals-impossible",
        "vitals-outside-window",
    ]


def test_codes_are_registered_with_their_severity() -> None:
    assert PROBLEM_CODES["input.vitals-implausible"].severity is Severity.WARNING
    for code in ("input.end-before-onset", "input.vitals-impossible", "input.duplicate-id"):
        assert PROBLEM_CODES[code].severity is Severity.ERROR


def test_valid_records_pass_every_rule() -> None:
    assert check(diary(end=ONSET + timedelta(hours=2), duration_minutes=120)) == []
    assert check(session(end=START + timedelta(minutes=40), vitals=(reading(heart_rate=80),))) == []
    assert check(PatientRecord("p-1", SOURCE)) == []


# diary: end and duration


def test_end_before_onset() -> None:
    assert check(diary(end=ONSET - timedelta(minutes=1))) == [("input.end-before-onset", "$.end")]


def test_end_equal_to_onset_is_allowed() -> None:
    assert check(diary(end=ONSET)) == []


def test_end_compares_instants_not_wall_clocks() -> None:
    # 13:30 UTC is 14:30 in CET: after the onset at 14:00 CET.
    assert check(diary(end=datetime(2026, 3, 1, 13, 30, tzinfo=UTC))) == []


@pytest.mark.parametrize("seconds", [0, 60, -60])
def test_duration_within_one_minute_of_end_agrees(seconds: int) -> None:
    end = ONSET + timedelta(minutes=90, seconds=seconds)
    assert check(diary(end=end, duration_minutes=90)) == []


@pytest.mark.parametrize("seconds", [61, -61])
def test_duration_more_than_one_minute_off_disagrees(seconds: int) -> None:
    end = ONSET + timedelta(minutes=90, seconds=seconds)
    assert check(diary(end=end, duration_minutes=90)) == [
        ("input.duration-mismatch", "$.duration_minutes")
    ]


def test_duration_without_end_is_not_compared() -> None:
    assert check(diary(duration_minutes=90)) == []


def test_end_before_onset_is_not_also_a_duration_mismatch() -> None:
    assert check(diary(end=ONSET - timedelta(hours=1), duration_minutes=60)) == [
        ("input.end-before-onset", "$.end")
    ]


# session: end, dose


def test_end_before_start() -> None:
    assert check(session(end=START - timedelta(seconds=1))) == [("input.end-before-start", "$.end")]


def test_end_equal_to_start_is_allowed() -> None:
    assert check(session(end=START)) == []


@pytest.mark.parametrize("per_kg", [0.5, 0.5 * 1.05, 0.5 * 0.95])
def test_dose_within_5_percent_agrees(per_kg: float) -> None:
    assert check(session(weight_kg=70.0, dose_mg_per_kg=per_kg)) == []


@pytest.mark.parametrize("per_kg", [0.5 * 1.06, 0.5 * 0.94, 1.0])
def test_dose_more_than_5_percent_off_disagrees(per_kg: float) -> None:
    assert check(session(weight_kg=70.0, dose_mg_per_kg=per_kg)) == [
        ("input.dose-mismatch", "$.dose_mg_per_kg")
    ]


def test_dose_is_not_compared_without_weight() -> None:
    assert check(session(dose_mg_per_kg=3.0)) == []


# session: vitals window


@pytest.mark.parametrize("minutes", [-120, 0, 40 + 120])
def test_vitals_inside_the_window(minutes: int) -> None:
    end = START + timedelta(minutes=40)
    assert check(session(end=end, vitals=(reading(minutes, heart_rate=80),))) == []


@pytest.mark.parametrize("minutes", [-121, 40 + 121])
def test_vitals_outside_the_window(minutes: int) -> None:
    end = START + timedelta(minutes=40)
    vitals = (reading(0, heart_rate=80), reading(minutes, heart_rate=80))
    assert check(session(end=end, vitals=vitals)) == [
        ("input.vitals-outside-window", "$.vitals[1].time")
    ]


def test_without_end_the_window_closes_2_h_after_start() -> None:
    assert check(session(vitals=(reading(120, heart_rate=80),))) == []
    assert check(session(vitals=(reading(121, heart_rate=80),))) == [
        ("input.vitals-outside-window", "$.vitals[0].time")
    ]


# session: vital values

BOUNDS = {
    "heart_rate": (HEART_RATE_POSSIBLE, HEART_RATE_PLAUSIBLE),
    "systolic": (SYSTOLIC_POSSIBLE, SYSTOLIC_PLAUSIBLE),
    "diastolic": (DIASTOLIC_POSSIBLE, DIASTOLIC_PLAUSIBLE),
    "spo2": (SPO2_POSSIBLE, SPO2_PLAUSIBLE),
    "respiratory_rate": (RESPIRATORY_RATE_POSSIBLE, RESPIRATORY_RATE_PLAUSIBLE),
}


def only(name: str, value: float) -> VitalsReading:
    """A reading with one measurement (blood pressure given as a consistent pair)."""
    if name == "systolic":
        return reading(systolic=value, diastolic=min(value, 80.0))
    if name == "diastolic":
        return reading(systolic=max(value, 120.0), diastolic=value)
    return reading(**{name: value})


@pytest.mark.parametrize(("name", "value"), [("heart_rate", 0), ("heart_rate", 400)])
def test_contract_examples_of_impossible_heart_rates(name: str, value: float) -> None:
    assert check(session(vitals=(only(name, value),))) == [
        ("input.vitals-impossible", f"$.vitals[0].{name}")
    ]


@pytest.mark.parametrize(("name", "value"), [("heart_rate", 35), ("heart_rate", 190)])
def test_contract_examples_of_implausible_heart_rates(name: str, value: float) -> None:
    assert check(session(vitals=(only(name, value),))) == [
        ("input.vitals-implausible", f"$.vitals[0].{name}")
    ]


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_values_just_outside_the_possible_range_are_errors(name: str) -> None:
    (low, high), _ = BOUNDS[name]
    for value in (low - 0.5, high + 0.5):
        found = check(session(vitals=(only(name, value),)))
        assert ("input.vitals-impossible", f"$.vitals[0].{name}") in found
        assert ("input.vitals-implausible", f"$.vitals[0].{name}") not in found


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_values_between_plausible_and_possible_are_warnings(name: str) -> None:
    (low, high), (usual_low, usual_high) = BOUNDS[name]
    for value in {(low + usual_low) / 2, (usual_high + high) / 2} - {usual_high}:
        found = check(session(vitals=(only(name, value),)))
        # (a very low systolic makes its diastolic partner implausible too)
        assert ("input.vitals-implausible", f"$.vitals[0].{name}") in found, value
        assert {code for code, _ in found} == {"input.vitals-implausible"}, value


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_plausible_bounds_themselves_pass(name: str) -> None:
    _, (usual_low, usual_high) = BOUNDS[name]
    for value in (usual_low, usual_high):
        assert check(session(vitals=(only(name, value),))) == [], value


def test_implausible_is_a_warning() -> None:
    rule = RULES["vitals-implausible"]
    problems = rule(session(vitals=(reading(heart_rate=190),)))
    assert [p.severity for p in problems] == [Severity.WARNING]


def test_diastolic_above_systolic_is_impossible() -> None:
    assert check(session(vitals=(reading(systolic=110, diastolic=120),))) == [
        ("input.vitals-impossible", "$.vitals[0].diastolic")
    ]


def test_vitals_messages_do_not_quote_the_value() -> None:
    problems = RULES["vitals-impossible"](session(vitals=(reading(heart_rate=412.5),)))
    assert len(problems) == 1 and "412" not in problems[0].message


# duplicate ids


def test_first_id_is_fine_and_the_second_names_the_first() -> None:
    ids = DuplicateIds()
    assert ids.check("diary-entry", "e-1", Source("a.ndjson", line=3)) == []
    second = ids.check("diary-entry", "e-1", Source("b.csv", row=9))
    assert [(p.code, p.path, p.source) for p in second] == [
        ("input.duplicate-id", "$.entry_id", Source("b.csv", row=9))
    ]
    assert "a.ndjson:3" in second[0].message


def test_every_later_duplicate_names_the_first() -> None:
    ids = DuplicateIds()
    ids.check("ketamine-session", "s-1", Source("a.csv", row=2))
    ids.check("ketamine-session", "s-1", Source("a.csv", row=3))
    third = ids.check("ketamine-session", "s-1", Source("a.csv", row=4))
    assert "a.csv row 2" in third[0].message
    assert third[0].path == "$.session_id"


def test_same_id_in_another_record_type_is_no_duplicate() -> None:
    ids = DuplicateIds()
    assert ids.check("diary-entry", "x-1", SOURCE) == []
    assert ids.check("patient", "x-1", SOURCE) == []
    assert ids.check("ketamine-session", "x-1", SOURCE) == []


def test_duplicate_in_a_source_without_line() -> None:
    ids = DuplicateIds()
    ids.check("patient", "p-1", Source("-"))
    assert "at -;" in ids.check("patient", "p-1", Source("-"))[0].message
