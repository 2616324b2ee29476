"""Health-data hygiene: reports and logs never quote the data; output is private; no markup runs.

Records carry marker strings in every free-text field, name, identifier and birth date, in
accepted and in rejected records (a rejected record's problems are where a careless message
would quote a value). Every report, log and error file of check, convert, export and validate
is then searched for the markers: none may appear. The markers do appear, as they must, in the
FHIR output and in rejects.ndjson (the verbatim records, for the data team): that shows the
search can fail.
"""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from tests.cli_args import with_source_system

TIMESTAMP = "2026-07-01T00:00:00Z"
BIRTH_DATE = "1961-07-23"
MARKERS = [
    "MARKER-NOTE",
    "MARKER-TRIGGER",
    "MARKER-DRUG",
    "MARKER-FAMILY",
    "MARKER-GIVEN",
    "MARKER-MRN",
    "MARKER-POSTCARE",
    "MARKER-REASON",
    "MARKER-EFFECT",
    "MARKER-PERFORMER",
    "MARKER-BAD-ENUM",
    "MARKER-BAD-NUMBER",
    "MARKER-BAD-DATE",
    "MARKER-SYNTAX",
    "MARKER-CSV",
    # names and codes where data can land in a malformed file (issue 25 item 9)
    "MARKER-KEY",
    "MARKER-DUPKEY",
    "MARKER-COLUMN",
    "MARKER9ENUM",
    "MARKER9STATUS",
    "MARKER-ELEMENT",
    BIRTH_DATE,
    "1962-02-30",
]


def diary(entry_id: str, **fields: Any) -> dict[str, Any]:
    record = {
        "record_type": "diary-entry",
        "entry_id": entry_id,
        "patient_id": "p1",
        "date": "2026-03-01",
        "headache": True,
        "onset": "2026-03-01T08:00:00+01:00",
        "severity": 6,
        "notes": "MARKER-NOTE <script>alert(1)</script>",
        "triggers": ["other"],
        "trigger_text": "MARKER-TRIGGER",
        "medications": [{"drug": "other", "drug_text": "MARKER-DRUG", "dose_mg": 5}],
    }
    record.update(fields)
    return record


def session(session_id: str, **fields: Any) -> dict[str, Any]:
    record = {
        "record_type": "ketamine-session",
        "session_id": session_id,
        "patient_id": "p1",
        "start": "2026-03-03T10:00:00+01:00",
        "end": "2026-03-03T10:30:00+01:00",
        "status": "stopped",
        "status_reason": "MARKER-REASON",
        "route": "intravenous",
        "dose_mg": 20,
        "performer_id": "dr1",
        "performer_name": "MARKER-PERFORMER",
        "adverse_effects": [{"effect": "other", "text": "MARKER-EFFECT"}],
        "post_care": "MARKER-POSTCARE",
        "notes": "MARKER-NOTE",
    }
    record.update(fields)
    return record


def patient(patient_id: str, **fields: Any) -> dict[str, Any]:
    record = {
        "record_type": "patient",
        "patient_id": patient_id,
        "identifiers": [{"system": "https://ehr.example.org/mrn", "value": "MARKER-MRN"}],
        "family": "MARKER-FAMILY",
        "given": ["MARKER-GIVEN"],
        "birth_date": BIRTH_DATE,
        "gender": "female",
    }
    record.update(fields)
    return record


def write_inputs(folder: Path) -> Path:
    """Accepted and rejected records holding every marker, in NDJSON and CSV."""
    folder.mkdir()
    records = [
        diary("d1"),
        session("s1"),
        patient("p1"),
        diary("d2", severity="MARKER-BAD-NUMBER"),  # input.type
        diary("d3", laterality="MARKER-BAD-ENUM"),  # input.enum
        diary("d4", date="MARKER-BAD-DATE"),  # input.format
        patient("p2", birth_date="1962-02-30", gender="MARKER-BAD-ENUM"),  # format, enum
        diary("d1"),  # input.duplicate-id
        diary("d5", unknown="MARKER-NOTE"),  # input.unknown-field
        diary("d6", notes="MARKER-NOTE" + "x" * 4000),  # input.text-too-long
        session("s2", vitals=[{"time": "2026-03-03T10:05:00+01:00", "heart_rate": 0}]),
        diary("d7", **{"MARKER-KEY x": 1}),  # input.unknown-field, a name that may be data
        diary("d8", laterality="MARKER9ENUM"),  # input.enum, a value that looks like a code
    ]
    lines = [json.dumps(record) for record in records]
    lines.append('{"record_type": "diary-entry", "notes": "MARKER-SYNTAX" oops}')
    lines.append('{"record_type": "diary-entry", "notes": "MARKER-SYNTAX", "notes": "x"}')
    lines.append('{"record_type": "diary-entry", "MARKER-DUPKEY": 1, "MARKER-DUPKEY": 2}')
    (folder / "records.ndjson").write_text("\n".join(lines) + "\n")
    (folder / "rows.csv").write_text(
        "record_type,entry_id,patient_id,date,headache,notes\n"
        "diary-entry,c1,p1,2026-03-02,false,MARKER-CSV\n"
        "diary-entry,c2,p1,2026-03-02,false,MARKER-CSV,extra\n"
        "diary-entry,c3,p1,2026-03-02,MARKER-CSV,MARKER-CSV\n"
    )
    # a header naming a column no record type has (read.csv-header, the file rejected once)
    (folder / "header.csv").write_text("record_type,entry_id,MARKER-COLUMN\ndiary-entry,h1,x\n")
    return folder


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, with_source_system(args))


def leaked(text: str) -> list[str]:
    return [marker for marker in MARKERS if marker in text]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every report and log of every command over the marked inputs, by name."""
    base = tmp_path_factory.mktemp("hygiene")
    inputs = str(write_inputs(base / "in"))
    found: dict[str, str] = {}
    check_text = run("check", inputs)
    check_json = run("check", inputs, "--format", "json")
    convert = run("convert", inputs, "-o", str(base / "bundle.json"), "--timestamp", TIMESTAMP)
    export = run("export", inputs, "--out", str(base / "out"), "--timestamp", TIMESTAMP)
    assert (check_text.exit_code, convert.exit_code, export.exit_code) == (1, 1, 1)
    found["check text"] = check_text.output
    found["check json"] = check_json.output
    found["convert stderr"] = convert.output
    found["export stderr"] = export.output
    for name in ("summary.json", "manifest.json", "OperationOutcome.ndjson"):
        found[name] = (base / "out" / name).read_text("utf-8")
    found["validate"] = run("validate", str(base / "out")).output
    found["validate bundle"] = run("validate", str(base / "bundle.json")).output
    found["fhir output"] = "".join(
        path.read_text("utf-8") for path in sorted((base / "out").glob("*.ndjson"))
    )
    found["rejects"] = (base / "out" / "rejects.ndjson").read_text("utf-8")
    return found


@pytest.mark.parametrize(
    "name",
    [
        "check text",
        "check json",
        "convert stderr",
        "export stderr",
        "summary.json",
        "manifest.json",
        "OperationOutcome.ndjson",
        "validate",
        "validate bundle",
    ],
)
def test_reports_and_logs_never_quote_free_text_names_or_birth_dates(
    outputs: dict[str, str], name: str
) -> None:
    assert outputs[name]  # something was reported
    assert leaked(outputs[name]) == []


def test_the_problems_name_files_lines_fields_and_codes(outputs: dict[str, str]) -> None:
    report = outputs["check text"]
    for expected in (
        "records.ndjson:4",
        "[input.type] $.severity",
        "[input.enum] $.laterality",
        "[input.format] $.date",
        "[input.duplicate-id] $.entry_id",
        "[read.json-syntax]",
        "[read.duplicate-key]",
        "rows.csv row 3",
        "[read.csv-row-shape]",
    ):
        assert expected in report


def test_the_search_finds_markers_where_the_data_belongs(outputs: dict[str, str]) -> None:
    """The FHIR output and the verbatim rejects hold the data: the search is not blind."""
    assert {"MARKER-FAMILY", "MARKER-MRN", BIRTH_DATE, "MARKER-PERFORMER"} <= set(
        leaked(outputs["fhir output"])
    )
    assert {"MARKER-BAD-ENUM", "MARKER-SYNTAX", "MARKER-CSV"} <= set(leaked(outputs["rejects"]))


# --- private output ----------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would make every new file world-readable, were it obeyed."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


@pytest.mark.parametrize("output_format", ["ndjson", "transaction", "collection"])
def test_export_creates_files_and_folders_readable_by_the_owner_only(
    tmp_path: Path, open_umask: None, output_format: str
) -> None:
    inputs = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    result = run(
        "export", str(inputs), "--out", str(out), "--timestamp", TIMESTAMP,
        "--format", output_format,
    )  # fmt: skip
    assert result.exit_code == 1
    paths = [out, *out.rglob("*")]
    assert len(paths) > 3
    assert [p for p in paths if not private(p)] == []


def test_convert_output_file_is_readable_by_the_owner_only(
    tmp_path: Path, open_umask: None
) -> None:
    inputs = write_inputs(tmp_path / "in")
    bundle = tmp_path / "bundle.json"
    run("convert", str(inputs), "-o", str(bundle), "--timestamp", TIMESTAMP)
    assert private(bundle)


# --- markup ------------------------------------------------------------------------------------

XHTML = "{http://www.w3.org/1999/xhtml}"


def resources_of(outputs: dict[str, str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in outputs["fhir output"].split("\n")[:-1]]


def test_no_resource_carries_a_narrative_so_none_can_hold_markup(outputs: dict[str, str]) -> None:
    resources = resources_of(outputs)
    assert len(resources) > 10
    narratives = [r["text"] for r in resources if "text" in r]
    # The converters write no Resource.text. Should one ever be added, every div must be
    # well-formed XHTML without script (checked here, so the test then still means something).
    for narrative in narratives:
        root = ElementTree.fromstring(narrative["div"])
        assert root.tag == f"{XHTML}div"
        assert not [e for e in root.iter() if e.tag.removeprefix(XHTML) in ("script", "iframe")]
        assert not [e for e in root.iter() for a in e.attrib if a.lower().startswith("on")]
    assert narratives == []


def test_free_text_that_looks_like_script_is_plain_text_in_notes_and_strings(
    outputs: dict[str, str],
) -> None:
    # EHRs show Annotation.text raw: the note is the patient's text, with no escapes added;
    # the JSON encoding is the only transformation.
    notes = [n["text"] for r in resources_of(outputs) for n in r.get("note", [])]
    assert "MARKER-NOTE <script>alert(1)</script>" in notes


def test_validate_never_quotes_the_values_of_a_broken_fhir_resource(tmp_path: Path) -> None:
    resource = {
        "resourceType": "Patient",
        "id": "x1",
        "birthDate": "MARKER-BAD-DATE",
        "gender": "MARKER-BAD-ENUM",
        "name": "MARKER-FAMILY",
        "active": "MARKER-BAD-NUMBER",
        "telecom": [{"system": "phone", "value": 12345678}],
        "extension": [{"url": "http://x.org", "valueString": "MARKER-NOTE", "valueInteger": 3}],
    }
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(resource))
    for output_format in ("text", "json", "outcome"):
        result = run("validate", str(path), "--format", output_format)
        assert result.exit_code == 1
        assert "birthDate" in result.output and "gender" in result.output
        assert leaked(result.output) == []


def test_validate_never_quotes_a_bad_code_or_a_key_that_may_be_data(tmp_path: Path) -> None:
    resource = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "MARKER9STATUS",
        "code": {"text": "x"},
        "MARKER-ELEMENT x": 1,
        "valueStrin": "x",
    }
    path = tmp_path / "observation.json"
    path.write_text(json.dumps(resource))
    result = run("validate", str(path))
    assert result.exit_code == 1
    assert "[fhir.status-code] $.status: status (a text of 13 characters, not shown)" in (
        result.output
    )
    assert "element 'valueStrin' is not defined in R4 Observation" in result.output
    assert "element (a name of 16 characters, not shown)" in result.output
    assert leaked(result.output) == []


def test_input_names_and_codes_are_shown_only_when_they_cannot_be_data(
    outputs: dict[str, str],
) -> None:
    report = outputs["check text"]
    assert "unknown field (a name of 12 characters, not shown)" in report
    assert "the key (a name of 13 characters, not shown) appears twice" in report
    assert "no record type has: (a name of 13 characters, not shown)" in report
    assert "laterality must be one of: left, right, bilateral; found (a text of 11" in report
