"""What export reports (issue 19 item 9) with memory flat in the number of problems (issue 25
item 4): the first problems on stderr and where the rest are, warnings counted per code in
stderr and summary.json, a plain --strict message, a progress line with the time left."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from migrainefhir.cli import Progress, cli, progress_text
from migrainefhir.export.job import export
from migrainefhir.export.options import ExportOptions
from migrainefhir.input.intake import InputOptions
from migrainefhir.problems import FIRST_PROBLEMS
from tests import process_helpers
from tests.cli_args import with_source_system

TIME = ["--timestamp", "2026-07-01T00:00:00Z"]
SESSION = {
    "record_type": "ketamine-session",
    "session_id": "s1",
    "patient_id": "p1",
    "start": "2026-03-01T10:00:00+01:00",
    "end": "2026-03-01T11:00:00+01:00",
    "route": "intravenous",
    "dose_mg": 35,
    "weight_kg": 70,
    "vitals": [{"time": "2026-03-01T10:30:00+01:00", "heart_rate": 190}],
}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, with_source_system(["export", *args, *TIME, "-j", "1"]))


def test_export_prints_the_first_problems_and_where_the_rest_are(tmp_path: Path) -> None:
    source = write(tmp_path / "in.ndjson", ["{}"] * 30)
    out = tmp_path / "out"
    result = run(str(source), "--out", str(out))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    shown = [line for line in lines if "error [input." in line or "error [read." in line]
    assert len(shown) == FIRST_PROBLEMS == 20
    assert shown[0].startswith(f"{source}:1: error [")
    assert (
        f"... and 10 more problems (first 20 of each severity shown): every rejected record is "
        f"in {out}/rejects.ndjson with all its problems, and {out}/summary.json counts them "
        "per code"
    ) in lines
    assert "rejected: 30 (unknown 30)" in lines
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"]["errors"] == 30
    assert len(summary["problems"]["first"]) == 20
    assert len((out / "rejects.ndjson").read_text().splitlines()) == 30


def test_input_warnings_reach_stderr_and_the_summary(tmp_path: Path) -> None:
    source = write(tmp_path / "in.ndjson", [json.dumps(SESSION)])
    out = tmp_path / "out"
    result = run(str(source), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"{source}:1: warning [input.vitals-implausible] $.vitals[0].heart_rate" in (
        result.stderr
    )
    assert "problems: 0 errors, 1 warnings (input.vitals-implausible 1)" in result.stderr
    problems = json.loads((out / "summary.json").read_text())["problems"]
    assert problems["by_code"] == {"input.vitals-implausible": 1}
    (first,) = problems["first"]
    assert first["code"] == "input.vitals-implausible"
    assert first["source"] == {"file": str(source), "line": 1}


def test_strict_says_plainly_that_nothing_was_written_and_why(tmp_path: Path) -> None:
    source = write(tmp_path / "in.ndjson", [json.dumps(SESSION), "{}"])
    out = tmp_path / "out"
    result = run(str(source), "--out", str(out), "--strict")
    assert result.exit_code == 1
    assert not out.exists()
    assert (
        f"--strict: 1 record rejected, so nothing was written: {out} is as it was before this run."
    ) in result.stderr
    assert "accepted (none written: --strict): 1 (ketamine-session 1)" in result.stderr
    assert f"{source}:2: error [" in result.stderr


def test_a_clean_export_prints_only_the_reconciliation(tmp_path: Path) -> None:
    day = {"record_type": "diary-entry", "entry_id": "e1", "patient_id": "p1"}
    source = write(
        tmp_path / "in.ndjson", [json.dumps({**day, "date": "2026-03-01", "headache": False})]
    )
    result = run(str(source), "--out", str(tmp_path / "out"))
    assert result.stderr.splitlines() == [
        "records read: 1 (diary-entry 1)",
        "exported: 1 (diary-entry 1)",
        "rejected: 0",
    ]


def test_the_progress_line_shows_records_of_the_total_and_the_time_left() -> None:
    assert progress_text(12_000, 100_000, 30.0) == (
        "12000 of ~100000 records (12%), about 3m 40s left"
    )
    assert progress_text(500, 1000, 4000.0) == "500 of ~1000 records (50%), about 1h 06m left"
    assert progress_text(10, None, 1.0) == "10 records"
    assert progress_text(1200, 1000, 1.0) == "1200 records"  # the estimate was low


def test_the_progress_line_is_redrawn_at_most_twice_a_second() -> None:
    shown: list[str] = []
    now = [0.0]
    progress = Progress(shown.append, clock=lambda: now[0])
    for done in range(1, 101):
        now[0] = done * 0.01
        progress(done, 1000)
    assert len(shown) == 2  # at 0.01 s and 0.51 s
    assert shown[-1] == "\r\033[K51 of ~1000 records (5%), about 9s left"


def test_export_reports_progress_against_the_lines_counted(tmp_path: Path) -> None:
    source = write(tmp_path / "in.ndjson", ["{}"] * 5)
    calls: list[tuple[int, int | None]] = []
    options = ExportOptions(out=tmp_path / "out", export_time=datetime(2026, 7, 1, tzinfo=UTC))
    export([str(source)], InputOptions(), options, lambda done, total: calls.append((done, total)))
    # The shard planner's count: 5 newlines, and one more for a last line without any.
    assert calls == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6)]


def peak_mib(args: list[str]) -> int:
    return process_helpers.peak_mib(with_source_system(args), exit_code=1)


def test_memory_is_flat_in_the_number_of_rejects(tmp_path: Path) -> None:
    """Every problem used to be kept in the parent (about 580 bytes a reject: 3 million
    rejects peaked at 1.74 GB); now only counts and the first ones are. 5x the rejects must
    not take more memory (bench/README.md has the 1 million case)."""
    peaks = []
    for count in (20_000, 100_000):
        source = tmp_path / f"in-{count}.ndjson"
        source.write_text("{}\n" * count)
        out = tmp_path / f"out-{count}"
        peaks.append(peak_mib(["export", str(source), "--out", str(out), *TIME, "-q", "-j", "1"]))
        summary = json.loads((out / "summary.json").read_text())
        assert summary["records_rejected"] == count
    small, large = peaks
    assert large - small < 12, peaks  # the old way: +45 MiB


def test_a_files_notice_is_counted_like_every_warning(tmp_path: Path) -> None:
    """An empty file's read.no-records warning is shown, counted in the warnings and per
    code, and never makes the count of problems left out negative."""
    empty = write(tmp_path / "empty.ndjson", [])
    sessions = write(tmp_path / "sessions.ndjson", [json.dumps(SESSION)])
    out = tmp_path / "out"
    result = run(str(empty), str(sessions), "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert f"{empty}:1: warning [read.no-records] $: no records in {empty}" in result.stderr
    assert "more problems" not in result.stderr
    summary = json.loads((out / "summary.json").read_text())["problems"]
    assert summary["by_code"]["read.no-records"] == 1
    assert summary["by_code"] == {"read.no-records": 1, "input.vitals-implausible": 1}
    assert (summary["errors"], summary["warnings"]) == (0, 2)
    assert "problems: 0 errors, 2 warnings" in result.stderr
