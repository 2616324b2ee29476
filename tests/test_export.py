"""`export`: the gate, nothing lost, safe and reproducible output, in all three formats."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from migrainefhir.export import sinks
from migrainefhir.export.job import export
from migrainefhir.export.options import ExportOptions
from migrainefhir.export.parts import partition_line
from migrainefhir.pipeline import InputOptions
from migrainefhir.validate import validate_bundle

EXPORT_TIME = datetime(2026, 7, 1, tzinfo=UTC)


def diary(entry_id: str, patient: str = "p1", **fields: Any) -> dict[str, Any]:
    record = {
        "record_type": "diary-entry",
        "entry_id": entry_id,
        "patient_id": patient,
        "date": "2026-03-01",
        "headache": False,
    }
    record.update(fields)
    return record


ATTACK = {
    "headache": True,
    "onset": "2026-03-01T08:00:00+01:00",
    "end": "2026-03-01T14:00:00+01:00",
    "severity": 7,
    "medications": [{"drug": "sumatriptan", "dose_mg": 50, "relief": "complete"}],
}


def write_ndjson(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def run(inputs: list[Path], out: Path, **options: Any) -> Any:
    return export(
        [str(p) for p in inputs],
        InputOptions(),
        ExportOptions(out=out, export_time=EXPORT_TIME, **options),
    )


def ndjson_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def mixed_input(tmp_path: Path) -> Path:
    """Three good records and two bad ones (line 2: severity 11; line 4: not JSON)."""
    path = tmp_path / "in.ndjson"
    lines = [
        json.dumps(diary("e1", **ATTACK)),
        json.dumps(diary("e2", **{**ATTACK, "severity": 11})),
        json.dumps(diary("e3")),
        "{broken",
        json.dumps(diary("e4", patient="p2")),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ndjson_export_writes_one_file_per_type_and_a_bulk_data_manifest(
    mixed_input: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run([mixed_input], out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["transactionTime"] == "2026-07-01T00:00:00Z"
    assert manifest["request"] == "https://example.org/migrainefhir/source/$export"
    assert manifest["requiresAccessToken"] is False
    for item in manifest["output"]:
        lines = ndjson_lines(out / item["url"])
        assert len(lines) == item["count"]
        assert {line["resourceType"] for line in lines} == {item["type"]}
    assert manifest["error"] == [
        {"type": "OperationOutcome", "url": "OperationOutcome.ndjson", "count": 2}
    ]
    assert result.resources == {item["type"]: item["count"] for item in manifest["output"]}


def test_every_patient_id_gets_exactly_one_patient_in_bundles(
    mixed_input: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run([mixed_input], out, format="collection")
    patients = [
        json.loads(path.read_text())["entry"][0]["resource"]
        for path in sorted((out / "bundles").iterdir())
    ]
    assert sorted(p["identifier"][0]["value"] for p in patients) == ["p1", "p2"]


def test_ndjson_writes_no_stub_for_patients_without_a_record(
    mixed_input: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run([mixed_input], out)
    assert not (out / "Patient.ndjson").exists()
    assert result.patients_without_record == 2
    assert len(result.patients_not_exported) == 2


def test_rejects_hold_exactly_the_bad_records_verbatim_with_their_problems(
    mixed_input: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run([mixed_input], out)
    rejects = ndjson_lines(out / "rejects.ndjson")
    assert [r["source"] for r in rejects] == [
        {"file": str(mixed_input), "line": 2},
        {"file": str(mixed_input), "line": 4},
    ]
    assert rejects[0]["record"] == diary("e2", **{**ATTACK, "severity": 11})
    assert [p["code"] for p in rejects[0]["problems"]] == ["input.range"]
    assert rejects[1]["record"] == "{broken"
    assert [p["code"] for p in rejects[1]["problems"]] == ["read.json-syntax"]
    outcomes = ndjson_lines(out / "OperationOutcome.ndjson")
    assert [o["resourceType"] for o in outcomes] == ["OperationOutcome"] * 2


def test_summary_reconciles_read_exported_rejected(mixed_input: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run([mixed_input], out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records_read"] == 5
    assert summary["records_exported"] == 3
    assert summary["records_rejected"] == 2
    assert summary["records_skipped"] == 0
    assert summary["by_record_type"]["diary-entry"] == {
        "read": 4,
        "exported": 3,
        "rejected": 1,
        "skipped": 0,
    }
    assert summary["by_record_type"]["unknown"]["rejected"] == 1


def test_the_same_input_gives_byte_identical_output(mixed_input: Path, tmp_path: Path) -> None:
    for fmt in ("ndjson", "collection", "transaction"):
        first, second = tmp_path / f"{fmt}-1", tmp_path / f"{fmt}-2"
        run([mixed_input], first, format=fmt)
        run([mixed_input], second, format=fmt)
        names = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
        assert names == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
        for name in names:
            assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.mark.parametrize("fmt", ["collection", "transaction"])
def test_bundle_formats_write_one_valid_bundle_per_patient(
    fmt: str, mixed_input: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run([mixed_input], out, format=fmt)
    bundles = sorted((out / "bundles").iterdir())
    assert len(bundles) == 2
    for path in bundles:
        bundle = json.loads(path.read_text())
        assert bundle["type"] == fmt
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
        assert [p for p in validate_bundle(bundle) if p.is_error] == []


def test_a_patient_over_max_entries_is_split_into_bundles_that_each_hold_the_patient(
    tmp_path: Path,
) -> None:
    records = [diary(f"e{n}", date=f"2026-03-{n:02d}", **ATTACK) for n in range(1, 11)]
    source = write_ndjson(tmp_path / "in.ndjson", records)
    out = tmp_path / "out"
    result = run([source], out, format="transaction", max_entries=10)
    bundles = [json.loads(p.read_text()) for p in sorted((out / "bundles").iterdir())]
    assert len(bundles) > 1
    for bundle in bundles:
        assert len(bundle["entry"]) <= 10
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
        assert [p for p in validate_bundle(bundle) if p.is_error] == []
    assert result.resources["Patient"] == 1


def test_a_duplicate_amid_split_files_loses_only_its_own_lines(tmp_path: Path) -> None:
    """The merge copies resource lines in runs: a record it rejects as a duplicate, in the
    middle of a run and of a file split, takes out its own lines and no other."""
    entries = [diary(f"e{n}", date=f"2026-03-0{n}") for n in range(1, 8)]
    duplicate = diary("e2", date="2026-03-09")
    source = write_ndjson(tmp_path / "in.ndjson", [*entries[:4], duplicate, *entries[4:]])
    out = tmp_path / "out"
    result = run([source], out, max_file_resources=3)
    assert result.summary()["records_rejected"] == 1
    days = [
        observation["effectiveDateTime"]
        for name in ("Observation.001.ndjson", "Observation.002.ndjson", "Observation.003.ndjson")
        for observation in ndjson_lines(out / name)
    ]
    assert days == [f"2026-03-0{n}" for n in range(1, 8)]


@pytest.mark.parametrize("chunk", [7, 64, 1024 * 1024])
def test_split_files_hold_the_same_lines_whatever_the_copy_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Where a file fills up, the lines that still fit are found by counting newlines in
    chunks: a chunk may hold no newline, several, or end just after one."""
    entries = [diary(f"e{n}", date=f"2026-03-{n:02d}") for n in range(1, 12)]
    source = write_ndjson(tmp_path / "in.ndjson", entries)
    run([source], tmp_path / "whole", max_file_resources=1000)
    monkeypatch.setattr(sinks, "_COPY_CHUNK", chunk)
    result = run([source], tmp_path / "split", max_file_resources=4)
    names = sorted(path.name for path in (tmp_path / "split").glob("Observation.*.ndjson"))
    lines = [
        line for name in names for line in (tmp_path / "split" / name).read_bytes().splitlines(True)
    ]
    assert lines == (tmp_path / "whole" / "Observation.ndjson").read_bytes().splitlines(True)
    assert [len(ndjson_lines(tmp_path / "split" / name)) for name in names[:-1]] == [4] * (
        len(names) - 1
    )
    assert result.resources["Observation"] == len(lines)


def test_ndjson_files_split_past_the_per_file_limit(tmp_path: Path) -> None:
    records = [diary(f"e{n}") for n in range(1, 8)]
    source = write_ndjson(tmp_path / "in.ndjson", records)
    out = tmp_path / "out"
    run([source], out, max_file_resources=3)
    manifest = json.loads((out / "manifest.json").read_text())
    observation_files = [i for i in manifest["output"] if i["type"] == "Observation"]
    assert [i["url"] for i in observation_files] == [
        "Observation.001.ndjson",
        "Observation.002.ndjson",
        "Observation.003.ndjson",
    ]
    assert [i["count"] for i in observation_files] == [3, 3, 1]


def test_gzip_writes_compressed_files_named_in_the_manifest(tmp_path: Path) -> None:
    import gzip

    source = write_ndjson(tmp_path / "in.ndjson", [diary("e1")])
    out = tmp_path / "out"
    run([source], out, gzip=True)
    manifest = json.loads((out / "manifest.json").read_text())
    for item in manifest["output"]:
        assert item["url"].endswith(".ndjson.gz")
        lines = gzip.decompress((out / item["url"]).read_bytes()).decode().splitlines()
        assert len(lines) == item["count"]


def test_base_url_makes_manifest_urls_absolute(tmp_path: Path) -> None:
    source = write_ndjson(tmp_path / "in.ndjson", [diary("e1")])
    out = tmp_path / "out"
    run([source], out, base_url="https://files.example.org/export/")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["output"][0]["url"].startswith("https://files.example.org/export/")


def test_since_skips_records_recorded_before_it_and_says_so(tmp_path: Path) -> None:
    records = [
        diary("old", recorded_at="2026-03-01T20:00:00+00:00"),
        diary("new", recorded_at="2026-03-03T20:00:00+00:00"),
        diary("unknown-age"),
    ]
    source = write_ndjson(tmp_path / "in.ndjson", records)
    out = tmp_path / "out"
    since = datetime(2026, 3, 2, tzinfo=UTC)
    result = run([source], out, since=since)
    assert result.report.counts.total_skipped == 1
    assert result.report.counts.total_accepted == 2
    assert result.report.counts.reconciles()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["request"].endswith("$export?_since=2026-03-02T00:00:00Z")


def test_strict_writes_nothing_when_a_record_is_rejected(mixed_input: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run([write_ndjson(tmp_path / "yesterday.ndjson", [diary("yesterday")])], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = run([mixed_input], out, strict=True)
    assert result.written is False
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_output_is_readable_by_the_owner_only(mixed_input: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run([mixed_input], out, format="collection")
    for path in [out, *out.rglob("*")]:
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_a_partition_line_holds_the_resources_as_orjson_writes_the_list() -> None:
    resources = [{"resourceType": "Patient", "id": "a"}, {"resourceType": "Observation", "id": "b"}]
    texts = [orjson.dumps(resource) for resource in resources]
    line = partition_line("p1", 7, texts, holds_patient=True)
    assert line == b"p1\t7\t2\tP\t" + orjson.dumps(resources) + b"\n"
