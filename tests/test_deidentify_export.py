"""export --deidentify: no source id, name or free text reaches the research export."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner, Result

from migrainefhir.cli import cli
from tests.cli_args import with_source_system

MARKERS = ("pt-secret-7", "e-secret-1", "Marker Family", "Marker Given", "note-marker-text")


def inputs(tmp_path: Path) -> str:
    records = [
        {
            "record_type": "patient",
            "patient_id": "pt-secret-7",
            "family": "Marker Family",
            "given": "Marker Given",
            "birth_date": "1980-05-17",
            "identifiers": [{"system": "https://ehr.example.org/mrn", "value": "MRN-77"}],
        },
        {
            "record_type": "diary-entry",
            "entry_id": "e-secret-1",
            "patient_id": "pt-secret-7",
            "date": "2026-03-01",
            "headache": True,
            "onset": "2026-03-01T08:00:00+01:00",
            "severity": 6,
            "notes": "note-marker-text",
        },
    ]
    path = tmp_path / "in.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


TIMESTAMP = "2026-07-01T00:00:00Z"


def key_file(tmp_path: Path) -> str:
    path = tmp_path / "key"
    path.write_bytes(b"k" * 32)
    os.chmod(path, 0o600)
    return str(path)


def export_deidentified(source: str, out: Path, key: str, *more: str) -> Result:
    """`migrainefhir export SOURCE --out OUT --deidentify --key-file KEY ...`"""
    arguments = ["export", source, "--out", str(out), "--deidentify", "--key-file", key, *more]
    return CliRunner().invoke(cli, with_source_system(arguments))


def test_deidentified_export_holds_no_source_id_name_or_free_text(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = export_deidentified(
        inputs(tmp_path), out, key_file(tmp_path), "--timestamp", TIMESTAMP, "--jobs", "1"
    )
    assert result.exit_code == 0, result.output
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file()).decode()
    for marker in (*MARKERS, "MRN-77", "1980-05-17"):
        assert marker not in written
    assert json.loads((out / "summary.json").read_text())["records_exported"] == 2


def test_deidentify_needs_a_key_file(tmp_path: Path) -> None:
    args = with_source_system(["export", inputs(tmp_path), "--out", "x", "--deidentify"])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "--deidentify and --key-file go together" in result.stderr


def test_a_key_file_others_can_read_is_a_usage_error(tmp_path: Path) -> None:
    key = key_file(tmp_path)
    os.chmod(key, 0o644)
    result = export_deidentified(inputs(tmp_path), tmp_path / "o", key)
    assert result.exit_code == 2
    assert "readable by others" in result.stderr


def test_rejects_of_a_deidentified_export_withhold_the_record(tmp_path: Path) -> None:
    source = tmp_path / "in.ndjson"
    bad = {
        "record_type": "patient",
        "patient_id": "pt-secret-7",
        "family": "Marker Family",
        "gender": "robot",
    }
    duplicate = {"record_type": "patient", "patient_id": "pt-dup", "family": "Marker Family"}
    source.write_text("".join(json.dumps(r) + "\n" for r in (bad, duplicate, duplicate)))
    out = tmp_path / "out"
    result = export_deidentified(str(source), out, key_file(tmp_path), "--timestamp", TIMESTAMP)
    assert result.exit_code == 1
    rejects = [json.loads(line) for line in (out / "rejects.ndjson").read_text().splitlines()]
    assert [r["record"] for r in rejects] == ["withheld: --deidentify"] * 2
    assert [r["source"]["line"] for r in rejects] == [1, 3]
    assert "Marker Family" not in (out / "rejects.ndjson").read_text()


EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "ndjson"


def test_since_filters_on_the_true_recorded_at_before_de_identification(tmp_path: Path) -> None:
    """Shifted dates must not decide what --since skips: the same records are exported."""
    since = ("--since", "2026-02-01T00:00:00Z", "--timestamp", TIMESTAMP, "--jobs", "1")
    plain = CliRunner().invoke(
        cli, with_source_system(["export", str(EXAMPLES), "--out", str(tmp_path / "a"), *since])
    )
    assert plain.exit_code == 0, plain.output
    research = export_deidentified(str(EXAMPLES), tmp_path / "b", key_file(tmp_path), *since)
    assert research.exit_code == 0, research.output
    counts = [json.loads((tmp_path / out / "summary.json").read_text()) for out in ("a", "b")]
    assert counts[0]["records_skipped"] > 0  # the cut-off does skip records
    for key in ("records_read", "records_exported", "records_skipped", "by_record_type"):
        assert counts[1][key] == counts[0][key], key
