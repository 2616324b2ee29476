"""A Patient stub never overwrites a full Patient (issue 19 item 2), through the command line.

A run without an exported patient record for a patient writes no stub in Bulk NDJSON (the
manifest and summary list the patient as referenced but not exported), a conditional create in
transaction Bundles, and a plain stub entry in collection Bundles (for review only).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.ids import DEFAULT_SOURCE_SYSTEM, patient_id
from tests.cli_args import with_source_system

EXTENSION = "https://migrainefhir.org/fhir/bulk/referenced-patients-not-exported"
P1 = patient_id(DEFAULT_SOURCE_SYSTEM, "p1")
P2 = patient_id(DEFAULT_SOURCE_SYSTEM, "p2")
IDENTIFIER = f"identifier={DEFAULT_SOURCE_SYSTEM}/patient|p1"


def diary(entry_id: str, patient: str = "p1") -> dict[str, Any]:
    return {
        "record_type": "diary-entry",
        "entry_id": entry_id,
        "patient_id": patient,
        "date": "2026-03-01",
        "headache": False,
        "recorded_at": "2026-03-02T08:00:00Z",
    }


PATIENT_P2 = {
    "record_type": "patient",
    "patient_id": "p2",
    "family": "Doe",
    "birth_date": "1980-02-03",
    "recorded_at": "2026-01-01T08:00:00Z",
}


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def export(inputs: Path, out: Path, *options: str) -> None:
    before = snapshot(inputs)
    args = ["export", str(inputs), "--out", str(out), "--timestamp", "2026-07-01T00:00:00Z"]
    result = CliRunner().invoke(cli, with_source_system([*args, "-q", "-j", "1", *options]))
    assert result.exit_code == 0, result.output
    assert snapshot(inputs) == before  # not a byte of any input changed
    validated = CliRunner().invoke(cli, ["validate", str(out)])
    assert validated.exit_code == 0, validated.output


@pytest.fixture
def diary_only(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "diary.ndjson").write_text(
        "".join(json.dumps(diary(f"d{n}")) + "\n" for n in range(3))
    )
    (folder / "notes.txt").write_text("not an input file")
    return folder


def test_ndjson_writes_no_patient_and_lists_it_as_referenced_not_exported(
    diary_only: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export(diary_only, out)
    assert not (out / "Patient.ndjson").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extension"] == {EXTENSION: [f"Patient/{P1}"]}
    assert "Patient" not in {item["type"] for item in manifest["output"]}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["patients_without_record"] == 1
    assert summary["patients_referenced_not_exported"] == [f"Patient/{P1}"]
    subjects = {
        json.loads(line)["subject"]["reference"]
        for line in (out / "Observation.ndjson").read_text().splitlines()
    }
    assert subjects == {f"Patient/{P1}"}


def test_validate_still_rejects_a_dangling_patient_the_manifest_does_not_list(
    diary_only: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export(diary_only, out)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["extension"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(cli, ["validate", str(out)])
    assert result.exit_code == 1
    unresolved = "[bulk.reference-unresolved] $.performer[0].reference: no resource of the "
    assert f"{unresolved}file set is Patient/{P1}" in result.output


def test_transaction_makes_the_stub_a_conditional_create_referenced_by_urn_uuid(
    diary_only: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export(diary_only, out, "--format", "transaction")
    (bundle_file,) = (out / "bundles").glob("*.json")
    bundle = json.loads(bundle_file.read_text())
    first = bundle["entry"][0]
    assert first["fullUrl"] == f"urn:uuid:{P1}"
    assert first["request"] == {"method": "POST", "url": "Patient", "ifNoneExist": IDENTIFIER}
    assert "id" not in first["resource"]
    assert first["resource"]["identifier"] == [
        {"system": f"{DEFAULT_SOURCE_SYSTEM}/patient", "value": "p1"}
    ]
    references = {
        entry["resource"]["subject"]["reference"]
        for entry in bundle["entry"]
        if "subject" in entry["resource"]
    }
    assert references == {f"urn:uuid:{P1}"}
    assert {e["request"]["method"] for e in bundle["entry"][1:]} == {"PUT"}


def test_collection_keeps_the_stub_as_a_plain_entry(diary_only: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export(diary_only, out, "--format", "collection")
    (bundle_file,) = (out / "bundles").glob("*.json")
    first = json.loads(bundle_file.read_text())["entry"][0]
    assert first["resource"]["id"] == P1
    assert "request" not in first


def test_a_patient_skipped_by_since_is_referenced_not_exported(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    records = [PATIENT_P2, diary("d1", "p2"), diary("d2", "p1")]
    (folder / "all.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    export(folder, out, "--since", "2026-02-01T00:00:00Z")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extension"] == {EXTENSION: sorted([f"Patient/{P1}", f"Patient/{P2}"])}
    assert not (out / "Patient.ndjson").exists()


def test_a_rejected_patient_record_gives_no_stub_line_either(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    typo = {**PATIENT_P2, "gender": "femal"}
    records = [typo, diary("d1", "p2")]
    (folder / "all.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        with_source_system(
            [
                "export",
                str(folder),
                "--out",
                str(out),
                "-q",
                "-j",
                "1",
                "--timestamp",
                "2026-07-01T00:00:00Z",
            ]
        ),
    )
    assert result.exit_code == 1
    assert not (out / "Patient.ndjson").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["patients_referenced_not_exported"] == [f"Patient/{P2}"]
    assert CliRunner().invoke(cli, ["validate", str(out)]).exit_code == 0


def test_a_patient_with_its_record_is_exported_in_full_and_not_listed(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    records = [PATIENT_P2, diary("d1", "p2")]
    (folder / "all.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    export(folder, out)
    (patient,) = [json.loads(line) for line in (out / "Patient.ndjson").read_text().splitlines()]
    assert patient["name"] == [{"family": "Doe"}]
    assert "extension" not in json.loads((out / "manifest.json").read_text())
    assert json.loads((out / "summary.json").read_text())["patients_referenced_not_exported"] == []
