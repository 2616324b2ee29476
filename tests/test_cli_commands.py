"""CLI wiring of convert, export and validate: exit codes, streams, messages, config file."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from migrainefhir.cli import cli
from tests.cli_args import with_source_system

PATIENT = {"record_type": "patient", "patient_id": "p1", "gender": "female"}
DAY = {
    "record_type": "diary-entry",
    "entry_id": "e1",
    "patient_id": "p1",
    "date": "2026-03-01",
    "headache": False,
}
TIME = ["--timestamp", "2026-07-01T00:00:00Z"]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, with_source_system(args))


def records(tmp_path: Path, *items: object) -> str:
    path = tmp_path / "in.ndjson"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return str(path)


def test_convert_writes_a_collection_bundle_to_stdout_and_the_report_to_stderr(
    tmp_path: Path,
) -> None:
    result = run("convert", records(tmp_path, PATIENT, DAY), *TIME)
    assert result.exit_code == 0
    bundle = json.loads(result.stdout)
    assert bundle["type"] == "collection"
    assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
    assert "converted: 2 (diary-entry 1, patient 1)" in result.stderr


def test_convert_to_a_file_exits_1_when_a_record_is_rejected(tmp_path: Path) -> None:
    output = tmp_path / "bundle.json"
    bad = {**DAY, "entry_id": "e2", "date": "2026-02-30"}
    result = run("convert", records(tmp_path, DAY, bad), *TIME, "-o", str(output))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "error [input.format] $.date" in result.stderr
    entries = json.loads(output.read_text())["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == [
        "Patient",
        "Observation",
        "Provenance",
    ]


def test_export_prints_the_reconciliation_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("export", records(tmp_path, PATIENT, DAY), "--out", str(out), *TIME)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "records read: 2 (diary-entry 1, patient 1)",
        "exported: 2 (diary-entry 1, patient 1)",
        "rejected: 0",
    ]
    assert (out / "manifest.json").is_file()


def test_export_quiet_prints_nothing_and_exits_1_on_rejects(tmp_path: Path) -> None:
    out = tmp_path / "out"
    source = records(tmp_path, DAY, {**DAY, "entry_id": "e2", "headache": "yes"})
    result = run("export", source, "--out", str(out), *TIME, "--quiet")
    assert result.exit_code == 1
    assert result.output == ""
    assert len((out / "rejects.ndjson").read_text().splitlines()) == 1


def test_export_reads_site_settings_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        '[migrainefhir]\nformat = "collection"\nsource_system = "https://clinic.example.org/ids"\n'
    )
    out = tmp_path / "out"
    result = run("export", records(tmp_path, DAY), "--config", str(config), "--out", str(out))
    assert result.exit_code == 0
    bundle = json.loads(next((out / "bundles").iterdir()).read_text())
    assert bundle["type"] == "collection"
    patient = bundle["entry"][0]["resource"]
    assert patient["identifier"][0]["system"] == "https://clinic.example.org/ids/patient"


def test_command_line_options_win_over_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        '[migrainefhir]\nformat = "collection"\nsource_system = "https://clinic.example.org/ids"\n'
    )
    out = tmp_path / "out"
    result = run(
        "export",
        records(tmp_path, DAY),
        "--config",
        str(config),
        "--format",
        "ndjson",
        "--out",
        str(out),
        *TIME,
    )
    assert result.exit_code == 0
    assert (out / "manifest.json").is_file()


def test_an_unknown_config_setting_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('[migrainefhir]\nsource_sytem = "typo"\n')
    result = run("export", records(tmp_path, DAY), "--config", str(config), "--out", "x")
    assert result.exit_code == 2
    assert "unknown setting(s) source_sytem" in result.stderr


def test_export_timestamp_needs_an_offset(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    result = run("export", records(tmp_path, DAY), "--out", out, "--timestamp", "2026-07-01T00:00")
    assert result.exit_code == 2
    assert "--timestamp needs a UTC offset" in result.stderr


def test_validate_exits_0_on_our_export_and_1_on_a_broken_resource(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("export", records(tmp_path, PATIENT, DAY), "--out", str(out), *TIME).exit_code == 0
    assert run("validate", str(out)).exit_code == 0
    broken = tmp_path / "obs.json"
    broken.write_text(json.dumps({"resourceType": "Observation", "status": "done"}))
    result = run("validate", str(broken))
    assert result.exit_code == 1
    assert "error [" in result.stdout


def test_validate_outcome_format_is_an_operation_outcome(tmp_path: Path) -> None:
    broken = tmp_path / "obs.json"
    broken.write_text(json.dumps({"resourceType": "Observation", "status": "done"}))
    result = run("validate", "--format", "outcome", str(broken))
    outcome = json.loads(result.stdout)
    assert outcome["resourceType"] == "OperationOutcome"
    assert all(issue["expression"] for issue in outcome["issue"])


def test_validate_ignore_suppresses_a_code(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run("export", records(tmp_path, DAY), "--out", str(out), *TIME)
    plain = run("validate", "--format", "json", str(out))
    ignored = run("validate", "--format", "json", "--ignore", "bulk.relative-url", str(out))
    codes = {p["code"] for p in json.loads(plain.stdout)["problems"]}
    assert "bulk.relative-url" in codes
    assert "bulk.relative-url" not in {p["code"] for p in json.loads(ignored.stdout)["problems"]}


def test_validate_exits_3_on_a_missing_path(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "missing.json"))
    assert result.exit_code == 3
    assert result.stderr.startswith("migrainefhir: error: ")


def test_export_without_a_source_system_is_a_usage_error_that_says_why(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["export", records(tmp_path, DAY), "--out", str(out)])
    assert result.exit_code == 2
    assert "export needs --source-system URI (or source_system in the --config file)" in (
        result.stderr
    )
    assert "would write the same Patient ids" in result.stderr
    assert not out.exists()


def test_convert_keeps_its_default_source_system_for_review(tmp_path: Path) -> None:
    result = run("convert", records(tmp_path, DAY), *TIME)
    assert result.exit_code == 0
    assert "https://example.org/migrainefhir/source/diary-entry" in result.stdout


def test_a_source_system_that_is_not_an_absolute_uri_is_a_usage_error(tmp_path: Path) -> None:
    for bad in ("clinic", "https://clinic.example.org/ids#x", "https://a b.example"):
        result = run("export", records(tmp_path, DAY), "--out", "x", "--source-system", bad)
        assert result.exit_code == 2, bad
        assert "is not an absolute URI" in result.stderr
