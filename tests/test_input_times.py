"""Times: no silent change, and plausibility bounds (issue 25 item 8)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from migrainefhir.input.model import ParseOptions, parse_record
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.records import DiaryEntry
from migrainefhir.problems import Source

SOURCE = Source("in.ndjson", line=1)
NOW = datetime(2026, 7, 1, tzinfo=UTC)
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
    "route": "intravenous",
    "dose_mg": 35,
}
PATIENT: dict[str, Any] = {"record_type": "patient", "patient_id": "p1"}


def problems(data: dict[str, Any], **options: Any) -> list[tuple[str, str, str]]:
    record, found = parse_record(RawRecord(SOURCE, data, data), ParseOptions(**options))
    assert (record is None) == any(p.is_error for p in found)
    return [(p.code, p.severity.value, p.path) for p in found]


@pytest.mark.parametrize(
    "onset", ["2026-03-01T10:00:00.123456789Z", "2026-03-01T10:00:00.1234561Z"]
)
def test_a_fraction_finer_than_microseconds_is_refused_not_cut(onset: str) -> None:
    assert problems({**DIARY, "onset": onset}) == [("input.time-precision", "error", "$.onset")]


def test_a_fine_fraction_without_offset_is_refused_even_with_a_zone() -> None:
    from zoneinfo import ZoneInfo

    data = {**DIARY, "onset": "2026-03-01T10:00:00.1234567"}
    assert problems(data, timezone=ZoneInfo("Europe/Berlin")) == [
        ("input.time-precision", "error", "$.onset")
    ]


def test_microseconds_and_zeros_past_them_are_kept_exactly() -> None:
    data = {**DIARY, "onset": "2026-03-01T10:00:00.123456000Z"}
    record, found = parse_record(RawRecord(SOURCE, data, data), ParseOptions())
    assert found == []
    assert isinstance(record, DiaryEntry) and record.onset is not None
    assert record.onset.microsecond == 123456


def test_an_attack_ending_more_than_14_days_after_onset_is_refused() -> None:
    assert problems({**DIARY, "end": "2199-03-01T10:00:00Z"}) == [
        ("input.attack-too-long", "error", "$.end")
    ]
    assert problems({**DIARY, "end": "2026-03-15T10:00:00Z"}) == []  # exactly 14 days


def test_a_session_ending_more_than_2_days_after_start_is_refused() -> None:
    assert problems({**SESSION, "end": "2026-03-04T09:00:01Z"}) == [
        ("input.session-too-long", "error", "$.end")
    ]
    assert problems({**SESSION, "end": "2026-03-04T09:00:00Z"}) == []


def test_duration_minutes_is_at_most_14_days() -> None:
    assert problems({**DIARY, "duration_minutes": 20161}) == [
        ("input.range", "error", "$.duration_minutes")
    ]


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({**DIARY, "date": "2062-03-01", "onset": "2062-03-01T10:00:00Z"}, ["$.date", "$.onset"]),
        ({**DIARY, "recorded_at": "2026-07-02T00:00:01Z"}, ["$.recorded_at"]),
        ({**SESSION, "start": "2027-01-01T09:00:00Z"}, ["$.start"]),
        ({**PATIENT, "birth_date": "2030-01-01"}, ["$.birth_date"]),
    ],
)
def test_a_date_after_the_export_time_is_a_warning(data: dict[str, Any], path: list[str]) -> None:
    assert problems(data, now=NOW) == [("input.future", "warning", p) for p in path]


def test_a_date_within_a_day_of_the_export_time_is_not_in_the_future() -> None:
    data = {**DIARY, "date": "2026-07-02", "onset": "2026-07-02T00:00:00Z"}
    assert problems(data, now=NOW) == []


def test_without_an_export_time_the_future_is_not_checked() -> None:
    assert problems({**DIARY, "date": "2062-03-01", "onset": "2062-03-01T10:00:00Z"}) == []


def test_the_commands_judge_the_future_by_the_export_time(tmp_path: Any) -> None:
    import json

    from click.testing import CliRunner

    from migrainefhir.cli import cli

    path = tmp_path / "in.ndjson"
    path.write_text(json.dumps({**DIARY, "date": "2026-08-01", "onset": "2026-08-01T10:00:00Z"}))
    runner = CliRunner()
    before = runner.invoke(cli, ["convert", str(path), "--timestamp", "2026-07-01T00:00:00Z"])
    after = runner.invoke(cli, ["convert", str(path), "--timestamp", "2026-09-01T00:00:00Z"])
    assert (before.exit_code, after.exit_code) == (0, 0)  # a warning rejects nothing
    assert before.output.count("[input.future]") == 2
    assert "[input.future]" not in after.output
