"""validate_paths: files, NDJSON lines, folders, Bulk Data exports with a manifest."""

import json
from pathlib import Path
from typing import Any

import pytest

from migrainefhir.errors import InputUnreadable
from migrainefhir.problems import Source
from migrainefhir.validate import validate_paths, validate_record_resources

VALID = Path(__file__).parent / "data" / "validator" / "valid"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((VALID / f"{name}.json").read_text())
    return loaded


PATIENT, PROCEDURE = load("patient"), load("procedure-ketamine-session")


def plain_vital_sign(observation: dict[str, Any]) -> dict[str, Any]:
    """The corpus heart rate as a plain R4 vital sign: without the session-vital-sign profile,
    which requires a link to the session's Encounter, and without that link (these folders hold
    no Encounter; they test how references resolve, not the profile)."""
    plain = {key: value for key, value in observation.items() if key != "encounter"}
    plain["meta"] = {
        **observation["meta"],
        "profile": [p for p in observation["meta"]["profile"] if "migrainefhir.org" not in p],
    }
    return plain


HEART_RATE = plain_vital_sign(load("observation-heart-rate"))
MED_ADMIN = load("medication-administration-ketamine")


def ndjson(path: Path, *resources: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def export_folder(tmp_path: Path, manifest_changes: dict[str, Any] | None = None) -> Path:
    ndjson(tmp_path / "Patient.000.ndjson", PATIENT)
    ndjson(tmp_path / "Procedure.000.ndjson", PROCEDURE)
    ndjson(tmp_path / "Observation.000.ndjson", HEART_RATE)
    base = "https://exports.example.org/run-1"
    manifest: dict[str, Any] = {
        "transactionTime": "2024-03-03T02:00:00Z",
        "request": "https://fhir.example.org/fhir/$export",
        "requiresAccessToken": False,
        "output": [
            {"type": "Observation", "url": f"{base}/Observation.000.ndjson", "count": 1},
            {"type": "Patient", "url": f"{base}/Patient.000.ndjson", "count": 1},
            {"type": "Procedure", "url": f"{base}/Procedure.000.ndjson", "count": 1},
        ],
        "error": [],
    }
    manifest.update(manifest_changes or {})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def found(report: Any) -> list[tuple[str, str, str]]:
    return [(p.code, p.path, str(p.source)) for p in report.problems]


def test_a_valid_bulk_export_passes_and_counts_every_resource(tmp_path: Path) -> None:
    report = validate_paths([str(export_folder(tmp_path))])
    assert found(report) == []
    assert report.counts.read == {"Observation": 1, "Patient": 1, "Procedure": 1}
    assert report.counts.total_accepted == 3 and report.ok


def test_references_resolve_across_the_file_set_only(tmp_path: Path) -> None:
    folder = export_folder(tmp_path)
    (folder / "Procedure.000.ndjson").write_text("")
    report = validate_paths([str(folder)])
    observation_file = str(folder / "Observation.000.ndjson")
    assert found(report) == [
        ("bulk.count-mismatch", "$.output[2].count", str(folder / "manifest.json")),
        ("bulk.reference-unresolved", "$.partOf[0].reference", f"{observation_file}:1"),
    ]


def test_a_duplicate_type_and_id_across_files_is_an_error(tmp_path: Path) -> None:
    folder = export_folder(tmp_path)
    ndjson(folder / "Patient.001.ndjson", PATIENT)
    report = validate_paths([str(folder)])
    assert [(p.code, p.path) for p in report.problems] == [("bulk.file-unlisted", "$")]
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["output"].append({"type": "Patient", "url": "https://x.example/Patient.001.ndjson"})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = validate_paths([str(folder)])
    assert found(report) == [("bulk.duplicate-id", "$.id", f"{folder / 'Patient.001.ndjson'}:1")]


def test_manifest_fields_and_files_are_checked(tmp_path: Path) -> None:
    folder = export_folder(tmp_path, {"requiresAccessToken": "no", "transactionTime": "2024-03-03"})
    (folder / "Patient.000.ndjson").unlink()
    report = validate_paths([str(folder / "manifest.json")])
    codes = [(p.code, p.path) for p in report.problems]
    assert codes[:3] == [
        ("bulk.manifest-field", "$.transactionTime"),
        ("bulk.manifest-field", "$.requiresAccessToken"),
        ("bulk.file-missing", "$.output[1].url"),
    ]
    assert ("bulk.reference-unresolved", "$.subject.reference") in codes


def test_a_resource_in_a_file_of_another_type_is_an_error(tmp_path: Path) -> None:
    folder = export_folder(tmp_path)
    ndjson(folder / "Procedure.000.ndjson", PROCEDURE, MED_ADMIN)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["output"][2]["count"] = 2
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = validate_paths([str(folder)])
    assert found(report) == [
        ("bulk.type-mismatch", "$.resourceType", f"{folder / 'Procedure.000.ndjson'}:2")
    ]


def test_ndjson_problems_name_the_line_and_bad_lines_do_not_stop_reading(tmp_path: Path) -> None:
    bad = dict(PROCEDURE, status="done")
    path = tmp_path / "Procedure.ndjson"
    path.write_text(json.dumps(PROCEDURE) + "\n\n{not json\n" + json.dumps(bad) + "\n")
    report = validate_paths([str(path)])
    assert found(report) == [
        ("fhir.json-syntax", "$", f"{path}:3"),
        ("fhir.status-code", "$.status", f"{path}:4"),
    ]
    assert report.counts.read == {"Procedure": 2, "unreadable": 1}
    assert report.counts.accepted == {"Procedure": 1}


def test_ignore_suppresses_a_code(tmp_path: Path) -> None:
    path = ndjson(tmp_path / "Procedure.ndjson", dict(PROCEDURE, status="done"))
    report = validate_paths([str(path)], ignore=frozenset({"fhir.status-code"}))
    assert report.problems == [] and report.counts.total_accepted == 1


def test_a_bundle_file_counts_its_entries_and_rejects_only_the_bad_one(tmp_path: Path) -> None:
    bundle = load("bundle-collection")
    bundle["entry"][1]["resource"]["status"] = "done"
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    report = validate_paths([str(path)])
    assert found(report) == [("fhir.status-code", "$.status", f"{path} entry[1]")]
    # the Bundle's 10 entries, the session's Encounter and Condition among them
    assert report.counts.total_read == 10 and report.counts.rejected == {"Procedure": 1}
    outcome = report.operation_outcome()
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.status"]  # type: ignore[index]


def test_a_plain_folder_is_validated_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps(PATIENT))
    ndjson(tmp_path / "Observation.ndjson", HEART_RATE)
    report = validate_paths([str(tmp_path)])
    assert found(report) == [] and report.counts.total_read == 2


def test_a_missing_path_is_unreadable_input(tmp_path: Path) -> None:
    with pytest.raises(InputUnreadable, match="no such file"):
        validate_paths([str(tmp_path / "nope.ndjson")])


def test_record_resources_resolve_against_each_other_and_the_patient() -> None:
    source = Source("sessions.ndjson", line=4)
    assert validate_record_resources([PROCEDURE, HEART_RATE, MED_ADMIN], PATIENT, source) == []
    [problem] = validate_record_resources([HEART_RATE], PATIENT, source)
    assert (problem.code, problem.path, problem.source) == (
        "bulk.reference-unresolved",
        "$.partOf[0].reference",
        source,
    )


def test_a_relative_manifest_url_is_a_warning_and_still_resolves(tmp_path: Path) -> None:
    folder = export_folder(tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["output"][0]["url"] = "Observation.000.ndjson"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    report = validate_paths([str(folder)])
    assert found(report) == [
        ("bulk.relative-url", "$.output[0].url", str(folder / "manifest.json")),
    ]
    assert report.counts.total_accepted == 3


def test_migrainefhir_rejects_sidecar_is_not_an_unlisted_file(tmp_path: Path) -> None:
    folder = export_folder(tmp_path)
    (folder / "rejects.ndjson").write_text('{"record": "not FHIR"}\n')
    (folder / "Stray.ndjson.gz").write_bytes(b"")
    report = validate_paths([str(folder)])
    assert found(report) == [("bulk.file-unlisted", "$", str(folder / "manifest.json"))]


def test_an_export_folder_skips_its_summary_and_rejects_sidecars(tmp_path: Path) -> None:
    (tmp_path / "bundles").mkdir()
    ndjson(tmp_path / "bundles" / "p.ndjson", PATIENT)
    (tmp_path / "summary.json").write_text('{"records_read": 1}')
    (tmp_path / "rejects.ndjson").write_text('{"record": "x", "problems": []}\n')
    report = validate_paths([str(tmp_path)])
    assert found(report) == []
    assert report.counts.read == {"Patient": 1}


def test_a_summary_json_outside_an_export_folder_is_still_validated(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text('{"records_read": 1}')
    report = validate_paths([str(tmp_path)])
    assert [p.code for p in report.problems] == ["fhir.resource-type"]
