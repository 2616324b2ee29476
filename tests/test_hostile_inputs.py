"""Hostile and broken input: every case of tests/data/hostile has an exact expected outcome.

Each case is exported on its own through the command line. Its outcome is compared with
tests/data/hostile/expected.json (written by hand in make_cases.py): the exit code, which
records are rejected (line or row, every error's code and path) and which are exported (the
record ids their Provenance names). Every run must reconcile (read = exported + rejected) and
never print a traceback. The cases too large to commit are generated here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.input import readers
from tests.cli_args import with_source_system

HOSTILE = Path(__file__).parent / "data" / "hostile"
CASES = HOSTILE / "cases"
EXPECTED: dict[str, dict[str, Any]] = json.loads((HOSTILE / "expected.json").read_text("utf-8"))
TIMESTAMP = "2026-07-01T00:00:00Z"


def export(inputs: list[str], out: Path, *options: str) -> Any:
    args = ["export", *inputs, "--out", str(out), "--timestamp", TIMESTAMP, "--quiet", *options]
    return CliRunner().invoke(cli, with_source_system(args))


def outcome(out: Path) -> dict[str, Any]:
    """What an export wrote: rejected records (where, error code + path) and exported ids."""
    rejected = []
    for text in (out / "rejects.ndjson").read_text("utf-8").split("\n")[:-1]:
        reject = json.loads(text)
        where = reject["source"].get("line", reject["source"].get("row"))
        errors = {(p["code"], p["path"]) for p in reject["problems"] if p["severity"] == "error"}
        rejected.append({"at": where, "problems": sorted([list(e) for e in errors])})
    exported = []
    provenance = out / "Provenance.ndjson"
    if provenance.exists():
        for text in provenance.read_text("utf-8").split("\n")[:-1]:
            entity = json.loads(text)["entity"][0]
            exported.append(entity["what"]["identifier"]["value"])
    warnings = set()
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    for text in (out / "rejects.ndjson").read_text("utf-8").split("\n")[:-1]:
        warnings |= {p["code"] for p in json.loads(text)["problems"] if p["severity"] == "warning"}
    return {
        "rejected": rejected,
        "exported": sorted(exported),
        "summary": summary,
        "warnings": warnings,
    }


def test_the_corpus_has_at_least_40_cases_over_every_reader() -> None:
    assert len(EXPECTED) >= 40
    assert sorted(CASES.iterdir()) == sorted(CASES / name for name in EXPECTED)
    extensions = {Path(name).suffix for name in EXPECTED}
    assert extensions == {".ndjson", ".json", ".csv"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_case_meets_its_expected_outcome(name: str, tmp_path: Path) -> None:
    expected = EXPECTED[name]
    result = export([str(CASES / name)], tmp_path / "out", *expected.get("options", []))
    assert "Traceback" not in result.output
    assert result.exit_code == expected["exit"], result.output
    found = outcome(tmp_path / "out")
    assert found["rejected"] == expected["rejected"]
    assert found["exported"] == expected["exported"]
    summary = found["summary"]
    assert summary["records_rejected"] == len(expected["rejected"])
    assert summary["records_exported"] == len(expected["exported"])
    assert summary["records_read"] == summary["records_exported"] + summary["records_rejected"]


def test_implausible_vitals_are_exported_with_a_warning(tmp_path: Path) -> None:
    out = tmp_path / "out"
    export([str(CASES / "ndjson-session-rules.ndjson")], out)
    from migrainefhir.pipeline import InputOptions, check

    report = check([str(CASES / "ndjson-session-rules.ndjson")], InputOptions())
    warnings = [(p.code, p.source and p.source.line) for p in report.problems if not p.is_error]
    assert warnings == [("input.vitals-implausible", 4)]


def test_all_cases_at_once_reconcile(tmp_path: Path) -> None:
    """Every case in one run (a folder): the counts add up to the sum of the cases."""
    folder = tmp_path / "in"
    folder.mkdir()
    # Ids repeat across cases, so some records become duplicates in one run: which records
    # are exported changes, how many are read does not.
    for name in EXPECTED:
        if "options" in EXPECTED[name]:
            continue
        (folder / name).write_bytes((CASES / name).read_bytes())
    result = export([str(folder)], tmp_path / "out")
    assert "Traceback" not in result.output
    assert result.exit_code == 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text("utf-8"))
    assert summary["records_read"] == summary["records_exported"] + summary["records_rejected"]
    cases = [e for e in EXPECTED.values() if "options" not in e]
    read = sum(len(e["exported"]) + len(e["rejected"]) for e in cases)
    assert summary["records_read"] == read


# --- generated cases (too large to commit) -----------------------------------------------------

DIARY = (
    '{"record_type":"diary-entry","entry_id":"%s","patient_id":"p1","date":"2026-03-01",'
    '"headache":false}'
)

_MEASURE = """
import resource, sys
from migrainefhir.cli import cli
try:
    cli(sys.argv[1:])
finally:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stderr.write(f"\\nPEAK-KIB {peak_kib}\\n")
"""


def run_measured(args: list[str], timeout: float) -> tuple[int, str, int]:
    """The CLI in a fresh process, with a time limit: (exit code, stderr, peak memory in MiB)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *with_source_system(args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    peak = int(done.stderr.rsplit("PEAK-KIB ", 1)[1].split()[0]) // 1024
    return done.returncode, done.stderr, peak


def baseline_peak(tmp_path: Path) -> int:
    """Peak memory of exporting one small record: the interpreter and its libraries."""
    small = tmp_path / "small.ndjson"
    small.write_text(DIARY % "d0" + "\n")
    _, _, peak = run_measured(
        ["export", str(small), "--out", str(tmp_path / "o0"), "--timestamp", TIMESTAMP], 120
    )
    return peak


FIFTY_MB = 50 * 1024 * 1024


@pytest.mark.parametrize("name", ["big.ndjson", "big.csv"])
def test_a_50_mb_single_line_is_rejected_in_bounded_memory_and_time(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    with path.open("wb") as handle:
        if name.endswith(".csv"):
            handle.write(b"record_type,entry_id,patient_id,date,headache,notes\n")
            handle.write(b"diary-entry,d1,p1,2026-03-01,false,")
        else:
            handle.write(b'{"record_type":"diary-entry","notes":"')
        chunk = b"A" * (1024 * 1024)
        for _ in range(50):
            handle.write(chunk)
        handle.write(b'"\n' if name.endswith(".ndjson") else b"\n")
        handle.write(b"diary-entry,d2,p1,2026-03-01,false,ok\n" if name.endswith(".csv") else b"")
        if name.endswith(".ndjson"):
            handle.write((DIARY % "d2").encode() + b"\n")
    assert path.stat().st_size > FIFTY_MB
    out = tmp_path / "out"
    code, stderr, peak = run_measured(
        ["export", str(path), "--out", str(out), "--timestamp", TIMESTAMP], 120
    )
    assert "Traceback" not in stderr
    assert code == 1
    found = outcome(out)
    assert found["rejected"] == [
        {"at": 2 if name.endswith(".csv") else 1, "problems": [["read.too-large", "$"]]}
    ]
    assert found["exported"] == ["d2"]
    # The line is skipped in MAX_LINE_BYTES pieces, never held: far less than its 50 MB.
    assert peak - baseline_peak(tmp_path) < 25


def test_10000_records_with_the_same_id_one_exported_the_rest_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "same.ndjson"
    path.write_text("".join(DIARY % "same" + "\n" for _ in range(10_000)))
    result = export([str(path)], tmp_path / "out")
    assert result.exit_code == 1
    found = outcome(tmp_path / "out")
    assert found["exported"] == ["same"]
    assert found["rejected"] == [
        {"at": line, "problems": [["input.duplicate-id", "$.entry_id"]]}
        for line in range(2, 10_001)
    ]


def test_a_json_file_over_the_size_limit_is_one_rejected_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_JSON_FILE_BYTES", 1024)
    path = tmp_path / "big.json"
    path.write_text("[" + ",".join(DIARY % f"d{i}" for i in range(20)) + "]")
    result = export([str(path)], tmp_path / "out")
    assert result.exit_code == 1
    found = outcome(tmp_path / "out")
    assert (found["exported"], found["rejected"]) == (
        [],
        [{"at": 1, "problems": [["read.too-large", "$"]]}],
    )


def test_a_json_element_over_the_record_limit_is_rejected_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 200)
    big = (DIARY % "d1")[:-1] + ',"notes":"' + "x" * 300 + '"}'
    path = tmp_path / "a.json"
    path.write_text("[\n" + big + ",\n" + DIARY % "d2" + "\n]")
    export([str(path)], tmp_path / "out")
    found = outcome(tmp_path / "out")
    assert (found["exported"], found["rejected"]) == (
        ["d2"],
        [{"at": 2, "problems": [["read.too-large", "$"]]}],
    )


def test_a_csv_row_over_the_record_limit_is_rejected_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 200)
    path = tmp_path / "a.csv"
    cell = '"' + "line\n" * 60 + '"'
    path.write_text(
        "record_type,entry_id,patient_id,date,headache,notes\n"
        f"diary-entry,d1,p1,2026-03-01,false,{cell}\n"
        "diary-entry,d2,p1,2026-03-01,false,ok\n"
    )
    export([str(path)], tmp_path / "out")
    found = outcome(tmp_path / "out")
    assert (found["exported"], found["rejected"]) == (
        ["d2"],
        [{"at": 2, "problems": [["read.too-large", "$"]]}],
    )


def test_limits_are_documented_constants() -> None:
    assert readers.MAX_LINE_BYTES == 1024 * 1024
    assert readers.MAX_RECORD_BYTES == 1024 * 1024
    assert readers.MAX_JSON_FILE_BYTES == 64 * 1024 * 1024
    assert readers.MAX_DEPTH == 32
    readme = (Path(__file__).parent.parent / "README.md").read_text("utf-8")
    for limit in ("1 MiB", "64 MiB", "32 levels"):
        assert limit in readme
