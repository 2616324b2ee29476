"""`check`: every input record is read, checked against the contract and counted."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.input.model import ParseOptions
from migrainefhir.pipeline import InputOptions, check

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
INVALID = EXAMPLES / "invalid"
EXPECTED = json.loads((EXAMPLES / "invalid.expected.json").read_text())


def _expected_by_file() -> dict[str, list[dict[str, object]]]:
    by_file: dict[str, list[dict[str, object]]] = defaultdict(list)
    for item in EXPECTED:
        by_file[str(item["file"])].append(item)
    return dict(by_file)


@pytest.mark.parametrize("form", ["ndjson", "json", "csv"])
def test_every_shipped_example_is_accepted(form: str) -> None:
    report = check([str(EXAMPLES / form)])
    assert report.problems == []
    assert report.counts.total_rejected == 0
    assert report.counts.total_read > 700


@pytest.mark.parametrize("name", sorted(_expected_by_file()))
def test_invalid_example_produces_exactly_its_expected_problems(name: str) -> None:
    expected = _expected_by_file()[name]
    zone = next((str(item["timezone"]) for item in expected if "timezone" in item), None)
    options = InputOptions(parse=ParseOptions(timezone=ZoneInfo(zone) if zone else None))
    report = check([str(INVALID / name)], options)
    found = sorted(
        (p.source.line or p.source.row or 0 if p.source else 0, p.code, p.path)
        for p in report.problems
    )
    wanted = sorted(
        (int(str(item.get("line") or item.get("row"))), str(item["code"]), str(item["path"]))
        for item in expected
    )
    assert found == wanted
    assert report.counts.reconciles()


def test_a_folder_of_bad_and_good_files_reconciles() -> None:
    report = check([str(INVALID)])
    counts = report.counts
    assert counts.total_read == counts.total_accepted + counts.total_rejected
    assert counts.total_accepted > 0 and counts.total_rejected > 0
    # Every problem belongs to a file the expectations name (no sidecar is read as input).
    named = {str(INVALID / str(item["file"])) for item in EXPECTED}
    assert {p.source.file for p in report.problems if p.source} <= named


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_check_exits_0_when_every_record_is_valid() -> None:
    code, out, _ = run("check", str(EXAMPLES / "ndjson" / "patients.ndjson"))
    assert code == 0
    assert out.splitlines()[-3:] == [
        "accepted: 4 (patient 4)",
        "rejected: 0",
        "problems: 0 errors, 0 warnings",
    ]


def test_cli_check_exits_1_and_names_file_line_code_and_path(tmp_path: Path) -> None:
    data = tmp_path / "d.ndjson"
    good = {
        "record_type": "diary-entry",
        "entry_id": "e1",
        "patient_id": "p1",
        "date": "2026-03-01",
        "headache": False,
    }
    bad = {**good, "entry_id": "e2", "headache": True}  # onset and severity missing
    data.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    code, out, _ = run("check", str(data))
    assert code == 1
    assert f"{data}:2: error [input.required] $.onset:" in out
    assert "records read: 2 (diary-entry 2)" in out
    assert "rejected: 1 (diary-entry 1)" in out


def test_cli_check_json_report_is_machine_readable(tmp_path: Path) -> None:
    data = tmp_path / "d.ndjson"
    data.write_text("{not json\n")
    code, out, _ = run("check", "--format", "json", str(data))
    assert code == 1
    report = json.loads(out)
    assert report["records"]["read"] == 1
    assert report["records"]["rejected"] == 1
    assert report["problems"][0]["code"] == "read.json-syntax"
    assert report["problems"][0]["source"] == {"file": str(data), "line": 1}


def test_cli_check_exits_3_on_a_missing_input(tmp_path: Path) -> None:
    code, out, err = run("check", str(tmp_path / "nope.ndjson"))
    assert code == 3
    assert out == ""
    assert err.startswith("migrainefhir: error: ")
    assert "nope.ndjson" in err


def test_cli_check_exits_2_on_an_unknown_time_zone(tmp_path: Path) -> None:
    code, _, err = run("check", "--timezone", "Mars/Olympus", str(tmp_path))
    assert code == 2
    assert "not an IANA time zone name" in err


def test_cli_check_reads_stdin_with_input_format() -> None:
    line = json.dumps({"record_type": "patient", "patient_id": "p9"}) + "\n"
    result = CliRunner().invoke(cli, ["check", "--input-format", "ndjson", "-"], input=line)
    assert result.exit_code == 0
    assert "accepted: 1 (patient 1)" in result.stdout


def test_cli_check_never_prints_a_traceback_for_binary_input(tmp_path: Path) -> None:
    data = tmp_path / "blob.ndjson"
    data.write_bytes(bytes(range(256)) * 64)
    result = CliRunner().invoke(cli, ["check", str(data)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
