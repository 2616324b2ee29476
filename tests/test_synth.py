"""bench/synth.py: deterministic, streaming, the same records in every form, sizes as asked."""

from __future__ import annotations

import csv
import importlib.util
import json
import shlex
import sys
import tracemalloc
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from migrainefhir.input.csvform import RowShaper
from migrainefhir.pipeline import InputOptions, checked_records

REPO = Path(__file__).resolve().parents[1]


def _load_synth() -> ModuleType:
    spec = importlib.util.spec_from_file_location("synth", REPO / "bench" / "synth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["synth"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


synth = _load_synth()

SMALL = synth.Options(patients=3, days=40, ketamine_patients=2, seed=11)
STEMS = ("diary-entries", "ketamine-sessions", "patients")
# Fields the contract's CSV forms cannot carry (records.md, "CSV forms").
NO_CSV_FORM = {
    "medications": ("drug_text", "taken_at", "route"),
    "adverse_effects": ("text", "serious", "outcome"),
    "identifiers": ("type", "assigner"),
}


def _write_all(options: Any, out: Path) -> dict[str, int]:
    counts: dict[str, int] = synth.write_dataset(options, out, synth.FORMATS)
    return counts


def _ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _csv(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    shaper = RowShaper(rows[0])
    records = []
    for cells in rows[1:]:
        record, errors = shaper.to_record(cells)
        assert errors == []
        records.append(record)
    return records


def _without_csv_less_fields(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for field, parts in NO_CSV_FORM.items():
        if field in out:
            out[field] = [{k: v for k, v in item.items() if k not in parts} for item in out[field]]
    return out


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    _write_all(SMALL, tmp_path / "a")
    _write_all(SMALL, tmp_path / "b")
    for form in synth.FORMATS:
        for stem in STEMS:
            name = f"{form}/{stem}.{form}"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    synth.write_dataset(SMALL, tmp_path / "a", ("ndjson",))
    other = synth.Options(patients=3, days=40, ketamine_patients=2, seed=12)
    synth.write_dataset(other, tmp_path / "b", ("ndjson",))
    a = (tmp_path / "a" / "diary-entries.ndjson").read_bytes()
    b = (tmp_path / "b" / "diary-entries.ndjson").read_bytes()
    assert a != b


def test_ndjson_and_json_hold_the_same_records(tmp_path: Path) -> None:
    _write_all(SMALL, tmp_path)
    for stem in STEMS:
        from_ndjson = _ndjson(tmp_path / "ndjson" / f"{stem}.ndjson")
        from_json = json.loads((tmp_path / "json" / f"{stem}.json").read_text(encoding="utf-8"))
        assert from_json == from_ndjson
        assert len(from_ndjson) > 0


def test_csv_holds_the_same_records_except_fields_without_a_csv_form(tmp_path: Path) -> None:
    _write_all(SMALL, tmp_path)
    for stem in STEMS:
        from_ndjson = _ndjson(tmp_path / "ndjson" / f"{stem}.ndjson")
        from_csv = _csv(tmp_path / "csv" / f"{stem}.csv")
        assert from_csv == [_without_csv_less_fields(r) for r in from_ndjson]


def test_csv_has_a_record_type_column_and_the_contract_columns(tmp_path: Path) -> None:
    synth.write_dataset(SMALL, tmp_path, ("csv",))
    with (tmp_path / "diary-entries.csv").open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[0] == "record_type"
    assert "medications" in header and "drug_text" not in header


def test_counts_match_the_options(tmp_path: Path) -> None:
    counts = synth.write_dataset(SMALL, tmp_path, ("ndjson",))
    entries = _ndjson(tmp_path / "diary-entries.ndjson")
    patients = _ndjson(tmp_path / "patients.ndjson")
    sessions = _ndjson(tmp_path / "ketamine-sessions.ndjson")
    assert counts == {
        "diary-entry": 3 * 40,
        "ketamine-session": len(sessions),
        "patient": 3,
    }
    assert len(entries) == 120 and len(patients) == 3
    assert {s["patient_id"] for s in sessions} == {"pt-000001", "pt-000002"}


def test_every_patient_has_one_entry_per_day_in_order(tmp_path: Path) -> None:
    synth.write_dataset(SMALL, tmp_path, ("ndjson",))
    days_by_patient: dict[str, list[str]] = {}
    for entry in _ndjson(tmp_path / "diary-entries.ndjson"):
        days_by_patient.setdefault(entry["patient_id"], []).append(entry["date"])
    expected = [(SMALL.start + timedelta(days=n)).isoformat() for n in range(40)]
    assert days_by_patient == {f"pt-{n:06d}": expected for n in (1, 2, 3)}


def test_diary_entries_option_gives_exactly_that_many(tmp_path: Path) -> None:
    lines: list[str] = []
    code = synth.main(
        ["--diary-entries", "1000", "--days", "90", "--format", "ndjson", "--out", str(tmp_path)],
        report=lines.append,
    )
    assert code == 0
    entries = _ndjson(tmp_path / "diary-entries.ndjson")
    assert len(entries) == 1000
    per_patient = Counter(e["patient_id"] for e in entries)
    assert len(per_patient) == 12  # ceil(1000 / 90)
    assert sorted(per_patient.values()) == [10] + [90] * 11
    assert lines == [
        f"wrote 1000 diary-entry, {len(_ndjson(tmp_path / 'ketamine-sessions.ndjson'))} "
        f"ketamine-session, 12 patient (ndjson) to {tmp_path}"
    ]


def _peak_memory_writing(entries: int, out: Path) -> int:
    options = synth.options_for_diary_entries(entries, days=100, seed=3)
    tracemalloc.start()
    try:
        synth.write_dataset(options, out, ("ndjson", "json", "csv"))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_generation_streams_instead_of_holding_all_records(tmp_path: Path) -> None:
    small = _peak_memory_writing(500, tmp_path / "small")
    large = _peak_memory_writing(2000, tmp_path / "large")
    # Four times the records, about the same memory: one patient at a time is held.
    assert large < 1.5 * small


def test_a_chronic_patient_has_at_least_15_headache_days_a_month_before_treatment(
    tmp_path: Path,
) -> None:
    options = synth.Options(patients=3, days=182, ketamine_patients=0, seed=7)
    synth.write_dataset(options, tmp_path, ("ndjson",))
    headache_days = Counter(
        (e["patient_id"], e["date"][:7])
        for e in _ndjson(tmp_path / "diary-entries.ndjson")
        if e["headache"]
    )
    months = ("2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03")
    chronic = [headache_days["pt-000001", m] for m in months]
    episodic = [headache_days[p, m] for p in ("pt-000002", "pt-000003") for m in months]
    assert sum(chronic) / len(chronic) >= 15
    assert 2 <= sum(episodic) / len(episodic) <= 10


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_attack_times_are_consistent(tmp_path: Path) -> None:
    synth.write_dataset(synth.Options(patients=4, days=182, seed=5), tmp_path, ("ndjson",))
    attacks = [e for e in _ndjson(tmp_path / "diary-entries.ndjson") if e["headache"]]
    assert attacks
    for entry in attacks:
        onset = _moment(entry["onset"])
        assert onset.date() == date.fromisoformat(entry["date"])
        if "end" in entry:
            assert _moment(entry["end"]) > onset
        if "end" in entry and "duration_minutes" in entry:
            minutes = (_moment(entry["end"]) - onset).total_seconds() / 60
            assert abs(minutes - entry["duration_minutes"]) <= 1
        for intake in entry.get("medications", ()):
            assert _moment(intake["taken_at"]) > onset
        assert "severity" in entry or "severity_category" in entry
        if "severity" in entry and "severity_category" in entry:
            category = synth.severity_category(entry["severity"])
            assert entry["severity_category"] == category
        if "aura_symptoms" in entry:
            assert entry["aura"] is True
        assert _moment(entry["recorded_at"]) > onset


@pytest.mark.parametrize("route", ["intravenous", "intranasal"])
def test_a_ketamine_course_has_a_stopped_session_and_consistent_doses(
    tmp_path: Path, route: str
) -> None:
    synth.write_dataset(
        synth.Options(patients=2, days=182, ketamine_patients=2), tmp_path, ("ndjson",)
    )
    sessions = [s for s in _ndjson(tmp_path / "ketamine-sessions.ndjson") if s["route"] == route]
    given = [s for s in sessions if s["status"] != "not-done"]
    assert len(given) >= 6
    assert [s["session_number"] for s in sessions] == list(range(1, len(sessions) + 1))
    assert [s["status"] for s in sessions].count("stopped") == 1
    assert any("adverse_effects" in s for s in given)
    for session in sessions:
        if session["status"] != "completed":
            assert session["status_reason"]
        if session["status"] == "not-done":
            assert "dose_mg" not in session and "vitals" not in session
            continue
        start, end = _moment(session["start"]), _moment(session["end"])
        assert end > start
        phases = {v["phase"] for v in session["vitals"]}
        assert phases == {"pre", "during", "post"}
        for reading in session["vitals"]:
            assert (
                start - timedelta(hours=2) <= _moment(reading["time"]) <= end + timedelta(hours=2)
            )
            assert reading["diastolic"] < reading["systolic"]
        if "dose_mg_per_kg" in session:
            expected = session["weight_kg"] * session["dose_mg_per_kg"]
            assert abs(session["dose_mg"] - expected) <= 0.05 * expected
        if route != "intravenous":
            assert "rate_mg_per_kg_per_h" not in session


def test_times_carry_the_real_utc_offsets_of_the_patients_zones(tmp_path: Path) -> None:
    synth.write_dataset(synth.Options(patients=3, days=182, seed=7), tmp_path, ("ndjson",))
    offsets: dict[str, set[str]] = {}
    for entry in _ndjson(tmp_path / "diary-entries.ndjson"):
        offsets.setdefault(entry["patient_id"], set()).add(entry["recorded_at"][-6:])
    assert offsets == {
        "pt-000001": {"+01:00", "+02:00"},  # Europe/Berlin, both sides of DST
        "pt-000002": {"-05:00", "-04:00"},  # America/New_York
        "pt-000003": {"+00:00", "+01:00"},  # Europe/London
    }


def test_every_generated_record_meets_the_input_contract(tmp_path: Path) -> None:
    options = synth.Options(patients=6, days=120, ketamine_patients=3, seed=21)
    counts = synth.write_dataset(options, tmp_path, synth.FORMATS)
    for form in synth.FORMATS:  # each form on its own: together their ids would be duplicates
        checked = list(checked_records([str(tmp_path / form)], InputOptions()))
        assert [str(p) for c in checked for p in c.problems] == []
        assert all(c.accepted for c in checked)
        assert len(checked) == sum(counts.values())


def _readme_command() -> list[str]:
    """The arguments of the one generator command that examples/README.md documents."""
    readme = (REPO / "examples" / "README.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if line.startswith("python bench/synth.py")]
    assert len(commands) == 1
    return shlex.split(commands[0])[2:]


def test_the_examples_are_what_the_documented_command_writes(tmp_path: Path) -> None:
    arguments = _readme_command()
    out = arguments.index("--out")
    assert arguments[out + 1] == "examples"
    arguments[out + 1] = str(tmp_path)
    assert synth.main(arguments, report=lambda line: None) == 0
    for form in synth.FORMATS:
        for stem in STEMS:
            name = f"{form}/{stem}.{form}"
            assert (tmp_path / name).read_bytes() == (REPO / "examples" / name).read_bytes(), name
