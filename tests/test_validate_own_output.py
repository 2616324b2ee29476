"""The tool accepts its own output: `validate` of every export it writes exits 0 (issue 19,
items 12 and 13), also of rejects (OperationOutcomes coded in the shipped problem-code
CodeSystem) and of `--gzip` files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrainefhir import terminology
from migrainefhir.cli import cli
from migrainefhir.problem_codes import registry
from migrainefhir.validate.outcome import PROBLEM_CODE_SYSTEM
from tests.cli_args import with_source_system

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
INPUTS = [str(EXAMPLES / "ndjson"), str(EXAMPLES / "invalid")]
FORMATS = {
    "ndjson": ["--format", "ndjson"],
    "ndjson-gzip": ["--format", "ndjson", "--gzip"],
    "transaction": ["--format", "transaction"],
    "transaction-conditional": ["--format", "transaction", "--write-mode", "conditional"],
    "collection": ["--format", "collection"],
}


@pytest.fixture(scope="module", params=sorted(FORMATS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / "out"
    args = ["export", *INPUTS, "--out", str(out), "--timestamp", "2026-07-01T00:00:00Z"]
    result = CliRunner().invoke(
        cli, with_source_system([*args, "--jobs", "1", *FORMATS[request.param]])
    )
    assert result.exit_code == 1, result.output  # examples/invalid: records are rejected
    return out


def test_validate_of_the_export_exits_0(exported: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(exported)])
    assert result.exit_code == 0, result.output
    assert "0 errors" in result.output


def test_every_reject_is_validated_as_an_operation_outcome(exported: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(exported), "--format", "json"])
    report = json.loads(result.output)
    rejected = json.loads((exported / "summary.json").read_text())["records_rejected"]
    assert rejected > 0
    assert report["records"]["by_type"]["OperationOutcome"]["accepted"] == rejected


def test_the_problem_code_system_holds_every_registered_code() -> None:
    shipped = terminology.shipped()["CodeSystem-problem-code.json"]
    assert shipped["url"] == PROBLEM_CODE_SYSTEM
    assert (shipped["status"], shipped["content"]) == ("active", "complete")
    assert [c["code"] for c in shipped["concept"]] == sorted(registry())
    assert {c["code"]: c["definition"] for c in shipped["concept"]} == {
        code: info.summary for code, info in registry().items()
    }


def test_gzip_output_validates_file_by_file_too(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["export", str(EXAMPLES / "ndjson"), "--out", str(out), "--gzip", "-q", "-j", "1"]
    assert CliRunner().invoke(cli, with_source_system(args)).exit_code == 0
    result = CliRunner().invoke(cli, ["validate", str(out / "Patient.ndjson.gz")])
    assert result.exit_code == 0, result.output
    assert "valid: 4 (Patient 4)" in result.output


def test_a_corrupt_gzip_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    good = gzip.compress(b'{"resourceType":"Basic","id":"a","code":{"text":"x"}}\n')
    path = tmp_path / "Basic.ndjson.gz"
    path.write_bytes(good[: len(good) // 2])
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert "[fhir.json-syntax]" in result.output
    assert "not valid gzip" in result.output
