"""No option is silently ignored (issue 19 item 10): an option that has no effect in the
combination given is a usage error (exit 2) naming it; the config file too; check and convert
take --config like export, so a site's time zone applies to every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from migrainefhir.cli import cli
from tests.cli_args import TEST_SOURCE_SYSTEM, with_source_system

LOCAL_TIME = {
    "record_type": "diary-entry",
    "entry_id": "e1",
    "patient_id": "p1",
    "date": "2026-03-01",
    "headache": True,
    "onset": "2026-03-01T08:00:00",  # no UTC offset: needs a time zone
    "severity": 5,
}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, with_source_system(args))


@pytest.fixture
def source(tmp_path: Path) -> str:
    path = tmp_path / "in.ndjson"
    path.write_text(json.dumps(LOCAL_TIME) + "\n")
    return str(path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--format", "transaction", "--gzip"], "--gzip has no effect with --format transaction"),
        (["--format", "collection", "--gzip"], "--gzip has no effect with --format collection"),
        (
            ["--format", "transaction", "--base-url", "https://x.example.org/run"],
            "--base-url has no effect with --format transaction",
        ),
        (
            ["--format", "collection", "--max-file-resources", "10"],
            "--max-file-resources has no effect with --format collection",
        ),
        (["--write-mode", "put"], "--write-mode has no effect with --format ndjson"),
        (
            ["--format", "collection", "--write-mode", "conditional"],
            "--write-mode has no effect with --format collection",
        ),
        (["--max-entries", "50"], "--max-entries has no effect with --format ndjson"),
        (["--record-type", "diary-entry"], "--record-type has no effect"),
    ],
)
def test_an_option_without_effect_is_a_usage_error(
    source: str, tmp_path: Path, options: list[str], message: str
) -> None:
    out = tmp_path / "out"
    result = run("export", source, "--out", str(out), *options)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not out.exists()


def test_record_type_is_accepted_when_an_input_is_csv(tmp_path: Path) -> None:
    path = tmp_path / "days.csv"
    path.write_text("entry_id,patient_id,date,headache\ne1,p1,2026-03-01,false\n")
    result = run("check", str(path), "--record-type", "diary-entry")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", ["check", "convert"])
def test_record_type_for_ndjson_input_is_a_usage_error_in_every_command(
    source: str, command: str
) -> None:
    result = run(command, source, "--record-type", "diary-entry")
    assert result.exit_code == 2
    assert "--record-type has no effect" in result.stderr


def test_options_that_apply_are_accepted(source: str, tmp_path: Path) -> None:
    result = run(
        "export",
        source,
        "--out",
        str(tmp_path / "out"),
        "--format",
        "transaction",
        "--write-mode",
        "conditional",
        "--max-entries",
        "50",
        "--timezone",
        "Europe/Berlin",
        "-q",
    )
    assert result.exit_code == 0, result.output


def test_a_config_file_without_the_migrainefhir_table_is_a_usage_error(
    source: str, tmp_path: Path
) -> None:
    config = tmp_path / "site.toml"
    config.write_text('timezone = "Europe/Berlin"\n')
    result = run("export", source, "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "has no [migrainefhir] table" in result.stderr


def test_config_settings_for_other_formats_are_site_defaults_not_errors(
    source: str, tmp_path: Path
) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        f'[migrainefhir]\nsource_system = "{TEST_SOURCE_SYSTEM}"\ntimezone = "Europe/Berlin"\n'
        'gzip = true\nmax_entries = 100\nwrite_mode = "conditional"\n'
    )
    out = tmp_path / "out"
    result = run("export", source, "--config", str(config), "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert (out / "Observation.ndjson.gz").is_file()


@pytest.mark.parametrize("command", ["check", "convert"])
def test_check_and_convert_take_the_sites_time_zone_from_the_config_file(
    source: str, tmp_path: Path, command: str
) -> None:
    assert run(command, source).exit_code == 1  # without a zone: rejected
    config = tmp_path / "site.toml"
    config.write_text(
        '[migrainefhir]\ntimezone = "Europe/Berlin"\nformat = "transaction"\n'
        'source_system = "https://clinic.example.org/ids"\n'
    )
    result = run(command, source, "--config", str(config))
    assert result.exit_code == 0, result.output


def test_convert_takes_the_source_system_from_the_config_file(source: str, tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        '[migrainefhir]\ntimezone = "Europe/Berlin"\nsource_system = "https://clinic.example.org/ids"\n'
    )
    result = run("convert", source, "--config", str(config))
    bundle = json.loads(result.stdout)
    patient = bundle["entry"][0]["resource"]
    assert patient["identifier"][0]["system"] == "https://clinic.example.org/ids/patient"
