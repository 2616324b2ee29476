"""Numbers and repeated intakes (issue 25 item 1, issue 19 items 4 and 5).

Every number in the contract has a plausible maximum, so no number can reach the export that
FHIR (32-bit integers, finite decimals) or the JSON writer cannot hold: a huge number is one
rejected record with input.range, never a crash. Repeated identical intakes are accepted, each
its own MedicationStatement; JSON null and empty lists mean "absent".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.input.model import ParseOptions, parse_record
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.records import DiaryEntry
from migrainefhir.problems import Source
from tests.cli_args import with_source_system

TIMESTAMP = "2026-07-01T00:00:00Z"
SOURCE = Source("in.ndjson", line=1)

DIARY: dict[str, Any] = {
    "record_type": "diary-entry",
    "entry_id": "e1",
    "patient_id": "p1",
    "date": "2026-03-01",
    "headache": True,
    "onset": "2026-03-01T10:00:00Z",
    "severity": 5,
}
SESSION: dict[str, Any] = {
    "record_type": "ketamine-session",
    "session_id": "s1",
    "patient_id": "p1",
    "start": "2026-03-02T09:00:00Z",
    "end": "2026-03-02T10:00:00Z",
    "route": "intravenous",
    "dose_mg": 35,
}


def errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    record, problems = parse_record(RawRecord(SOURCE, data, data), ParseOptions())
    found = [(p.code, p.path) for p in problems if p.is_error]
    assert (record is None) == bool(found)
    return found


HUGE = [1e20, 1e308, 18446744073709551617, 2**31]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    ("base", "field", "path"),
    [
        (DIARY, {"medications": [{"drug": "ibuprofen", "dose_mg": None}]}, "medications.0.dose_mg"),
        (DIARY, {"duration_minutes": None}, "duration_minutes"),
        (DIARY, {"sleep_hours": None}, "sleep_hours"),
        (SESSION, {"dose_mg": None}, "dose_mg"),
        (SESSION, {"weight_kg": None}, "weight_kg"),
        (SESSION, {"dose_mg_per_kg": None}, "dose_mg_per_kg"),
        (SESSION, {"rate_mg_per_kg_per_h": None}, "rate_mg_per_kg_per_h"),
        (SESSION, {"session_number": None}, "session_number"),
        (
            SESSION,
            {"vitals": [{"time": "2026-03-02T09:30:00Z", "heart_rate": None}]},
            "vitals.0.heart_rate",
        ),
    ],
)
def test_every_number_has_a_maximum(
    base: dict[str, Any], field: dict[str, Any], path: str, value: float
) -> None:
    data = json.loads(json.dumps({**base, **field}))
    parts = path.split(".")
    target: Any = data
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[parts[-1]] = value
    json_path = "$." + ".".join(f"[{p}]" if p.isdigit() else p for p in parts).replace(".[", "[")
    assert errors(data) == [("input.range", json_path)]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("heart_rate", -18446744073709551617),
        ("spo2", -1e308),
    ],
)
def test_huge_negative_vitals_are_out_of_range(field: str, value: float) -> None:
    data = {**SESSION, "vitals": [{"time": "2026-03-02T09:30:00Z", field: value}]}
    assert errors(data) == [("input.range", f"$.vitals[0].{field}")]


def export(tmp_path: Path, name: str, content: str, *options: str) -> Any:
    source = tmp_path / name
    source.write_text(content, encoding="utf-8")
    out = tmp_path / "out"
    args = ["export", str(source), "--out", str(out), "--timestamp", TIMESTAMP, "--quiet"]
    return CliRunner().invoke(cli, with_source_system([*args, *options])), out


def rejects(out: Path) -> list[dict[str, Any]]:
    lines = (out / "rejects.ndjson").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("dose", ["1e20", "1e308", "18446744073709551617", "-18446744073709551617"])
def test_export_rejects_a_huge_dose_and_exports_the_rest(
    tmp_path: Path, dose: str, jobs: str
) -> None:
    bad = json.dumps({**DIARY, "medications": [{"drug": "ibuprofen", "dose_mg": 1}]})
    bad = bad.replace('"dose_mg": 1}', f'"dose_mg": {dose}}}')
    good = json.dumps({**DIARY, "entry_id": "e2", "date": "2026-03-02"})
    result, out = export(tmp_path, "in.ndjson", f"{bad}\n{good}\n", "--jobs", jobs)
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert (summary["records_read"], summary["records_exported"]) == (2, 1)
    [reject] = rejects(out)
    assert reject["source"] == {"file": str(tmp_path / "in.ndjson"), "line": 1}
    assert [(p["code"], p["path"]) for p in reject["problems"]] == [
        ("input.range", "$.medications[0].dose_mg")
    ]


def test_export_rejects_a_huge_csv_dose_with_its_row(tmp_path: Path) -> None:
    content = (
        "record_type,entry_id,patient_id,date,headache,onset,severity,medications\n"
        "diary-entry,e1,p1,2026-03-01,true,2026-03-01T10:00:00Z,5,ibuprofen:1e20:partial\n"
        "diary-entry,e2,p1,2026-03-02,false,,,\n"
    )
    result, out = export(tmp_path, "in.csv", content)
    assert result.exit_code == 1, result.output
    [reject] = rejects(out)
    assert reject["source"]["row"] == 2
    assert [(p["code"], p["path"]) for p in reject["problems"]] == [
        ("input.range", "$.medications[0].dose_mg")
    ]


def test_an_internal_failure_exits_3_without_a_traceback_or_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 1 means "records rejected": a bug must never look like that."""
    from migrainefhir import pipeline

    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError("MARKER-SECRET")

    monkeypatch.setattr(pipeline, "check", broken)
    source = tmp_path / "in.ndjson"
    source.write_text(json.dumps(DIARY) + "\n")
    result = CliRunner().invoke(cli, ["check", str(source)])
    assert result.exit_code == 3
    assert "internal error: KeyError at " in result.output
    assert "MARKER-SECRET" not in result.output
    assert "Traceback" not in result.output


# --- repeated doses (issue 19 item 4) -------------------------------------------------------


def medication_ids(out: Path) -> list[str]:
    lines = (out / "MedicationStatement.ndjson").read_text("utf-8").splitlines()
    return [json.loads(line)["id"] for line in lines]


def test_two_identical_intakes_in_json_are_two_medication_statements(tmp_path: Path) -> None:
    intake = {"drug": "sumatriptan", "dose_mg": 50}
    record = {**DIARY, "medications": [intake, dict(intake)]}
    result, out = export(tmp_path, "in.ndjson", json.dumps(record) + "\n")
    assert result.exit_code == 0, result.output
    first = medication_ids(out)
    assert len(set(first)) == 2
    _, out_again = export(tmp_path, "in.ndjson", json.dumps(record) + "\n")
    assert medication_ids(out_again) == first  # stable ids: a replay updates, never duplicates


def test_two_identical_intakes_in_a_csv_cell_are_accepted(tmp_path: Path) -> None:
    content = (
        "record_type,entry_id,patient_id,date,headache,onset,severity,medications\n"
        "diary-entry,e1,p1,2026-03-01,true,2026-03-01T10:00:00Z,5,sumatriptan:50:;sumatriptan:50:\n"
    )
    result, out = export(tmp_path, "in.csv", content)
    assert result.exit_code == 0, result.output
    assert len(set(medication_ids(out))) == 2


def test_code_lists_still_refuse_a_repeated_code() -> None:
    assert errors({**DIARY, "symptoms": ["nausea", "nausea"]}) == [
        ("input.duplicate-item", "$.symptoms[1]")
    ]


def test_a_given_name_may_repeat() -> None:
    patient = {"record_type": "patient", "patient_id": "p1", "given": ["Maria", "Maria"]}
    assert errors(patient) == []


# --- null and empty lists (issue 19 item 5) -------------------------------------------------


def test_null_optional_fields_and_empty_lists_mean_absent_on_a_headache_free_day() -> None:
    day = {
        **DIARY,
        "headache": False,
        "onset": None,
        "end": None,
        "severity": None,
        "severity_category": None,
        "laterality": None,
        "medications": [],
        "symptoms": [],
        "triggers": [],
        "notes": None,
        "disability": None,
    }
    record, problems = parse_record(RawRecord(SOURCE, day, day), ParseOptions())
    assert problems == []
    assert isinstance(record, DiaryEntry)
    assert (record.onset, record.medications, record.symptoms, record.notes) == (None, (), (), None)


def test_null_inside_an_intake_means_absent() -> None:
    intake = {"drug": "ibuprofen", "dose_mg": None, "taken_at": None, "relief": None}
    assert errors({**DIARY, "medications": [intake]}) == []


def test_null_in_a_required_field_is_reported_as_missing() -> None:
    assert errors({**DIARY, "patient_id": None}) == [("input.required", "$.patient_id")]


def test_an_empty_list_in_a_text_field_is_still_the_wrong_type() -> None:
    assert errors({**DIARY, "notes": []}) == [("input.type", "$.notes")]


def test_null_in_an_unknown_field_is_still_an_unknown_field() -> None:
    assert errors({**DIARY, "sevrity": None}) == [("input.unknown-field", "$.sevrity")]
