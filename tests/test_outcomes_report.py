"""`migrainefhir report` and `export --with-outcomes`, run as a user runs them.

A small NDJSON diary of two patients (one treated, one not) goes through the command line;
the tests read the files the user gets: metrics.csv and outcomes.csv byte for byte,
metrics.ndjson through our validator, the HTML pages' text, de-identified output, and an
export with the outcome Observations validated as a whole Bulk Data folder.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.ids import DEFAULT_SOURCE_SYSTEM, patient_id
from migrainefhir.outcomes.tables import METRICS_COLUMNS
from tests.cli_args import with_source_system

START = date(2026, 3, 2)  # T1's first session: window 1 starts here


def _diary(patient: str, first: date, days: int, headache_every: int = 0) -> list[dict[str, Any]]:
    out = []
    for offset in range(days):
        on = first + timedelta(days=offset)
        entry: dict[str, Any] = {
            "record_type": "diary-entry",
            "entry_id": f"{patient}-{on.isoformat()}",
            "patient_id": patient,
            "date": on.isoformat(),
            "headache": bool(headache_every) and offset % headache_every == 0,
        }
        if entry["headache"]:
            entry.update(
                onset=f"{on.isoformat()}T08:00:00+01:00",
                duration_minutes=240,
                severity=7,
                laterality="left",
                symptoms=["nausea"],
                medications=[  # a repeated dose: one medication day
                    {"drug": "sumatriptan", "dose_mg": 50, "taken_at": f"{on}T08:30:00+01:00"},
                    {"drug": "sumatriptan", "dose_mg": 50, "taken_at": f"{on}T12:30:00+01:00"},
                ],
            )
        out.append(entry)
    return out


def _session(session_id: str, start: str, status: str = "completed") -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_type": "ketamine-session",
        "session_id": session_id,
        "patient_id": "T1",
        "start": start,
        "route": "intravenous",
        "status": status,
        "vitals": [
            {"time": start, "phase": "pre", "heart_rate": 88, "systolic": 141, "diastolic": 90}
        ],
        "adverse_effects": [{"effect": "dissociation", "severity": "mild"}],
    }
    if status != "not-done":
        record["dose_mg"] = 35
    if status != "completed":
        record["status_reason"] = "Patient felt unwell (Dr. Who)"
    return record


def _records() -> list[dict[str, Any]]:
    """T1: baseline with a headache every 2nd day, then every 4th, sessions on day 0 (late
    evening at UTC-05:00, so 2 March locally), a stopped one and a not-done one earlier;
    U2: a diary and no session."""
    return [
        _session("S0", "2026-02-20T10:00:00+01:00", "not-done"),
        _session("S1", "2026-03-02T23:30:00-05:00"),
        _session("S2", "2026-03-09T10:00:00+01:00", "stopped"),
        *_diary("T1", START - timedelta(days=28), 28, headache_every=2),
        *_diary("T1", START, 84, headache_every=4),
        *_diary("U2", date(2026, 1, 10), 30, headache_every=10),
    ]


def _write(tmp_path: Path, records: list[dict[str, Any]]) -> Path:
    path = tmp_path / "in.ndjson"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, with_source_system(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    source = _write(tmp, _records())
    result = _run("report", str(source), "--out", str(tmp / "out"))
    assert result.exit_code == 0, result.output
    return tmp / "out"


def test_report_writes_the_tables_the_fhir_and_a_page_per_patient(report: Path) -> None:
    # the marker of the staged output (as export's): the next report may replace the folder
    assert sorted(p.name for p in report.iterdir()) == [
        ".migrainefhir-export",
        "index.html",
        "metrics.csv",
        "metrics.ndjson",
        "outcomes.csv",
        "patients",
    ]
    assert sorted(p.name for p in (report / "patients").iterdir()) == ["T1.html", "U2.html"]


def test_every_file_is_readable_by_its_owner_only(report: Path) -> None:
    for path in [report, *report.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))


def test_metrics_csv_has_the_fixed_columns_first_and_one_row_per_patient_and_window(
    report: Path,
) -> None:
    lines = (report / "metrics.csv").read_bytes().decode().split("\r\n")
    assert lines[0].split(",")[:11] == list(METRICS_COLUMNS[:11])
    assert lines[0] == ",".join(METRICS_COLUMNS)
    assert lines[1:] == [
        "T1,0,2026-02-02,2026-03-01,28,14,14,14,14,0,true,true,0,3",
        "T1,1,2026-03-02,2026-03-29,28,7,7,7,7,0,false,true,2,3",
        "T1,2,2026-03-30,2026-04-26,28,7,7,7,7,0,false,true,0,3",
        "T1,3,2026-04-27,2026-05-24,28,7,7,7,7,0,false,true,0,3",
        "U2,1,2026-01-10,2026-02-06,28,3,3,3,3,0,false,true,0,3",
        "U2,2,2026-02-07,2026-03-06,2,0,0,0,0,0,false,false,0,",
        "",
    ]


def test_outcomes_csv_has_one_row_per_treated_patient(report: Path) -> None:
    assert (report / "outcomes.csv").read_bytes().decode().split("\r\n") == [
        "patient_id,first_session,baseline_diary_days,baseline_complete,"
        "baseline_migraine_days,follow_up_windows,follow_up_migraine_days,change_follow_up,"
        "weeks_9_12_diary_days,weeks_9_12_complete,weeks_9_12_migraine_days,"
        "change_weeks_9_12,responder_50,sessions_given,sessions_stopped,adverse_effects",
        "T1,2026-03-02,28,true,14,3,7,-7,28,true,7,-7,true,2,1,2",  # S0 not-done: not counted
        "",
    ]


def test_metrics_ndjson_holds_one_valid_observation_per_window(report: Path) -> None:
    lines = (report / "metrics.ndjson").read_text().splitlines()
    observations = [json.loads(line) for line in lines]
    assert len(observations) == 6
    first = observations[0]
    assert first["subject"] == {"reference": f"Patient/{patient_id(DEFAULT_SOURCE_SYSTEM, 'T1')}"}
    assert first["effectivePeriod"] == {"start": "2026-02-02", "end": "2026-03-01"}
    assert [
        (c["code"]["coding"][0]["code"], c.get("valueInteger", c.get("valueBoolean")))
        for c in first["component"]
    ] == [
        ("window-number", 0),
        ("diary-days", 28),
        ("headache-days", 14),
        ("migraine-days", 14),
        ("acute-medication-days", 14),
        ("triptan-ergot-days", 14),
        ("simple-analgesic-days", 0),
        ("moh-risk", True),
    ]
    from migrainefhir.validate import validate_resource

    assert [p for o in observations for p in validate_resource(o)] == []


def test_the_pages_show_the_numbers_and_no_free_text(report: Path) -> None:
    index = (report / "index.html").read_text()
    assert "<script" not in index
    assert 'href="patients/T1.html"' in index
    assert "<strong>1</strong> of 1 treated" in index  # complete cases
    page = (report / "patients" / "T1.html").read_text()
    assert "2026-03-02" in page and "stopped" in page and "not-done" in page
    assert "141/90" in page and "dissociation (mild)" in page
    assert "Dr. Who" not in page and "felt unwell" not in page  # status_reason never shown
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_the_same_input_gives_the_same_bytes(report: Path, tmp_path: Path) -> None:
    source = _write(tmp_path, _records())
    assert _run("report", str(source), "--out", str(tmp_path / "again")).exit_code == 0
    for path in sorted(p for p in report.rglob("*") if p.is_file()):
        assert (tmp_path / "again" / path.relative_to(report)).read_bytes() == path.read_bytes()


def test_a_second_report_into_the_same_out_replaces_the_first(tmp_path: Path) -> None:
    """The marker the first run wrote tells the second that the folder is a previous output."""
    source = _write(tmp_path, _records())
    out = tmp_path / "out"

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    assert _run("report", str(source), "--out", str(out)).exit_code == 0
    first = files()
    again = _run("report", str(source), "--out", str(out))
    assert again.exit_code == 0, again.output
    assert files() == first


def test_rejected_records_are_counted_and_left_out_and_exit_1(tmp_path: Path) -> None:
    records = [*_diary("U2", date(2026, 1, 10), 3), {"record_type": "diary-entry", "entry_id": "x"}]
    result = _run("report", str(_write(tmp_path, records)), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "records read: 4" in result.output and "rejected: 1" in result.output
    rows = (tmp_path / "out" / "metrics.csv").read_bytes().decode().split("\r\n")[1:-1]
    assert rows == ["U2,1,2026-01-10,2026-02-06,3,0,0,0,0,0,false,false,0,"]


def test_unreadable_input_is_exit_3_and_leaves_no_output(tmp_path: Path) -> None:
    result = _run("report", str(tmp_path / "missing.ndjson"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 3
    assert not (tmp_path / "out").exists()


def test_the_session_date_follows_the_timezone_option_for_times_without_offset(
    tmp_path: Path,
) -> None:
    """02:00 local on 2 March in Tokyo is 1 March in UTC: the windows start on 2 March."""
    session = _session("S1", "2026-03-02T02:00:00")
    records = [session, *_diary("T1", date(2026, 2, 20), 20)]
    out = tmp_path / "out"
    source = _write(tmp_path, records)
    assert _run("report", str(source), "--out", str(out), "--timezone", "Asia/Tokyo").exit_code == 0
    rows = (out / "metrics.csv").read_bytes().decode().split("\r\n")[1:-1]
    assert [row.split(",")[1:4] for row in rows] == [
        ["0", "2026-02-02", "2026-03-01"],
        ["1", "2026-03-02", "2026-03-29"],
    ]


# --- de-identification ----------------------------------------------------------------------


def _key(tmp_path: Path) -> Path:
    key = tmp_path / "key"
    key.write_bytes(b"k" * 40)
    os.chmod(key, 0o600)
    return key


def test_deidentified_report_has_pseudonyms_and_shifted_dates_only(tmp_path: Path) -> None:
    source = _write(tmp_path, _records())
    key = _key(tmp_path)
    out = tmp_path / "out"
    result = _run("report", str(source), "--out", str(out), "--deidentify", "--key-file", str(key))
    assert result.exit_code == 0, result.output
    real_dates = {r["date"] for r in _records() if "date" in r} | {"2026-03-02"}
    for path in [p for p in out.rglob("*") if p.is_file()]:
        text = path.read_text()
        assert "T1" not in text and "U2" not in text, path
        assert not any(day in text for day in real_dates), path
        assert "T1" not in path.name
    # the same pseudonyms and shifts as export --deidentify: the Patients it references exist
    exported = tmp_path / "export"
    assert (
        _run(
            "export",
            str(source),
            "--out",
            str(exported),
            "--deidentify",
            "--key-file",
            str(key),
            "-j",
            "1",
            "--timestamp",
            "2026-07-01T00:00:00Z",
        ).exit_code
        == 0
    )
    # the input holds no patient record: NDJSON writes no Patient stub and lists the Patients
    # the export references instead (summary.json)
    summary = json.loads((exported / "summary.json").read_text())
    patients = {
        reference.removeprefix("Patient/")
        for reference in summary["patients_referenced_not_exported"]
    }
    assert len(patients) == 2
    subjects = {
        json.loads(line)["subject"]["reference"].removeprefix("Patient/")
        for line in (out / "metrics.ndjson").read_text().splitlines()
    }
    assert subjects == patients


def test_deidentify_needs_the_key_file(tmp_path: Path) -> None:
    result = _run(
        "report", str(_write(tmp_path, _records())), "--out", str(tmp_path / "o"), "--deidentify"
    )
    assert result.exit_code == 2


# --- export --with-outcomes -------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["ndjson", "transaction"])
def test_export_with_outcomes_adds_valid_observations_of_exported_patients(
    tmp_path: Path, output_format: str
) -> None:
    source = _write(tmp_path, _records())
    out = tmp_path / "out"
    args = ["export", str(source), "--out", str(out), "--format", output_format]
    result = _run(*args, "--with-outcomes", "-j", "2", "--timestamp", "2026-07-01T00:00:00Z")
    assert result.exit_code == 0, result.output
    plain = tmp_path / "plain"
    same = ["--format", output_format, "-j", "1", "--timestamp", "2026-07-01T00:00:00Z"]
    assert _run("export", str(source), "--out", str(plain), *same).exit_code == 0
    with_outcomes = json.loads((out / "summary.json").read_text())["resources"]["Observation"]
    without = json.loads((plain / "summary.json").read_text())["resources"]["Observation"]
    assert with_outcomes - without == 6
    assert _run("validate", str(out)).exit_code == 0


def test_export_with_outcomes_does_not_go_with_since(tmp_path: Path) -> None:
    result = _run(
        "export",
        str(_write(tmp_path, _records())),
        "--out",
        str(tmp_path / "o"),
        "--with-outcomes",
        "--since",
        "2026-01-01T00:00:00Z",
    )
    assert result.exit_code == 2
    assert "--since" in result.output
    assert not (tmp_path / "o").exists()


def test_export_with_outcomes_reads_standard_input_once(tmp_path: Path) -> None:
    data = "".join(json.dumps(r) + "\n" for r in _records())
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        with_source_system(
            [
                "export",
                "-",
                "--input-format",
                "ndjson",
                "--out",
                str(out),
                "--with-outcomes",
                "-j",
                "1",
            ]
        ),
        input=data,
    )
    assert result.exit_code == 0, result.output
    lines = (out / "Observation.ndjson").read_text().splitlines()
    assert (
        sum(
            '"headache-outcome-window"' in line or "headache-outcome-window" in line
            for line in lines
        )
        == 6
    )


def test_no_free_text_name_or_identifier_reaches_any_report_file(tmp_path: Path) -> None:
    marker = "ZQXMARK"
    diary = _diary("T1", START - timedelta(days=3), 6, headache_every=2)
    diary[0].update(notes=f"{marker} note", trigger_text=f"{marker} trigger", triggers=["other"])
    diary[0]["medications"] = [{"drug": "other", "drug_text": f"{marker} pill"}]
    session = _session("S1", "2026-03-02T10:00:00+01:00", "stopped")
    session.update(
        notes=f"{marker} n",
        post_care=f"{marker} care",
        performer_name=f"Dr {marker}",
        status_reason=f"{marker} reason",
        adverse_effects=[{"effect": "other", "text": f"<b>{marker}</b>"}],
    )
    patient = {
        "record_type": "patient",
        "patient_id": "T1",
        "family": marker,
        "given": [marker],
        "birth_date": "1901-02-03",
        "identifiers": [{"system": "https://ehr.example.org/mrn", "value": marker}],
    }
    source = _write(tmp_path, [patient, session, *diary])
    out = tmp_path / "out"
    result = _run("report", str(source), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert marker in source.read_text()  # the search can find it where it is
    for path in [p for p in out.rglob("*") if p.is_file()]:
        text = path.read_text()
        assert marker not in text and "1901-02-03" not in text, path
    assert marker not in result.output


def test_export_with_outcomes_is_the_same_bytes_for_any_number_of_jobs(tmp_path: Path) -> None:
    source = _write(tmp_path, _records())
    outputs = []
    for jobs in ("1", "3"):
        out = tmp_path / f"out-{jobs}"
        args = ["export", str(source), "--out", str(out), "--with-outcomes", "-j", jobs]
        assert _run(*args, "--timestamp", "2026-07-01T00:00:00Z").exit_code == 0
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]


def test_an_observation_that_fails_its_profile_is_reported_and_not_written() -> None:
    from migrainefhir.outcomes.fhir import validated_observations
    from migrainefhir.outcomes.metrics import WindowMetrics
    from migrainefhir.validate import ResourceValidator

    good = WindowMetrics("T1", 0, START, START + timedelta(days=27), 28, 3, 2, 1, 1, 0, 0, 1.0)
    impossible = WindowMetrics("T1", 1, START, START, 29, 3, 2, 1, 1, 0, 0, 1.0)  # 29 days
    written, problems = validated_observations(
        [good, impossible], DEFAULT_SOURCE_SYSTEM, ResourceValidator("full")
    )
    assert [o["identifier"][0]["value"] for o in written] == ["T1/0"]
    assert [(p.code, p.path) for p in problems] == [("fhir.profile", "$.component[1].valueInteger")]


def test_report_without_a_source_system_is_a_usage_error_that_says_why(tmp_path: Path) -> None:
    source = _write(tmp_path, _records())
    result = CliRunner().invoke(cli, ["report", str(source), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "report needs --source-system URI" in result.output
    assert not (tmp_path / "out").exists()
