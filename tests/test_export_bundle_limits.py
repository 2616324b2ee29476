"""--max-entries is a hard limit, and an index says which Bundles belong to which patient
(issue 19 item 11); a patient's records stream into its Bundles (issue 25 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from migrainefhir.cli import cli
from tests import process_helpers
from tests.cli_args import with_source_system

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "ndjson"
TIME = ["--timestamp", "2026-07-01T00:00:00Z"]


def export(out: Path, *options: str, inputs: tuple[str, ...] = (str(EXAMPLES),)) -> int:
    result = CliRunner().invoke(
        cli, with_source_system(["export", *inputs, "--out", str(out), *TIME, *options])
    )
    return result.exit_code


def test_no_bundle_exceeds_max_entries_and_too_large_records_are_rejected(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert export(out, "--format", "transaction", "--max-entries", "10", "-q", "-j", "1") == 1
    sizes = [len(json.loads(p.read_text())["entry"]) for p in (out / "bundles").iterdir()]
    assert max(sizes) == 10
    rejects = [json.loads(line) for line in (out / "rejects.ndjson").read_text().splitlines()]
    assert rejects
    for reject in rejects:
        (problem,) = reject["problems"]
        assert problem["code"] == "bundle.record-too-large"
        assert problem["message"].endswith("more than --max-entries 10; a record is never split")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records_rejected"] == len(rejects)
    assert CliRunner().invoke(cli, ["validate", str(out)]).exit_code == 0


def test_the_bundle_index_maps_every_file_to_its_patient_and_entry_count(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert export(out, "--format", "collection", "--max-entries", "40", "-q") == 0
    index = json.loads((out / "bundle-index.json").read_text())
    assert index["format"] == "collection"
    listed = {item["file"]: item for item in index["bundles"]}
    files = sorted(f"bundles/{p.name}" for p in (out / "bundles").iterdir())
    assert sorted(listed) == files
    for name, item in listed.items():
        entries = json.loads((out / name).read_text())["entry"]
        assert item["entries"] == len(entries) <= 40
        patient = entries[0]["resource"]
        assert item["patient"] == f"Patient/{patient['id']}"
        assert name.startswith(f"bundles/{patient['id']}")
    source_ids = {
        json.loads(line)["patient_id"]
        for line in (EXAMPLES / "patients.ndjson").read_text().splitlines()
    }
    text = (out / "bundle-index.json").read_text()
    assert not any(source_id in text for source_id in source_ids)
    assert len({item["patient"] for item in index["bundles"]}) == 4


def test_a_patient_record_fits_as_the_patient_group(tmp_path: Path) -> None:
    source = tmp_path / "in.ndjson"
    source.write_text(
        json.dumps({"record_type": "patient", "patient_id": "p1", "family": "Doe"}) + "\n"
    )
    out = tmp_path / "out"
    assert (
        export(out, "--format", "transaction", "--max-entries", "2", "-q", inputs=(str(source),))
        == 0
    )
    (item,) = json.loads((out / "bundle-index.json").read_text())["bundles"]
    assert item["entries"] == 2


def peak_mib(args: list[str]) -> int:
    return process_helpers.peak_mib(with_source_system(args), exit_code=0)


def diary_lines(count: int) -> str:
    day = (
        '{"record_type":"diary-entry","entry_id":"e%d","patient_id":"p1","date":"2026-03-01",'
        '"headache":false}\n'
    )
    return "".join(day % n for n in range(count))


def test_one_patients_records_stream_into_its_bundles_in_bounded_memory(tmp_path: Path) -> None:
    """Memory holds one Bundle, not the patient's whole group: 10x the records of one patient
    (each record 2 resources) must not take 10x the memory."""
    peaks = []
    for count in (1_000, 10_000):
        source = tmp_path / f"in-{count}.ndjson"
        source.write_text(diary_lines(count))
        out = tmp_path / f"out-{count}"
        args = ["export", str(source), "--out", str(out), *TIME, "-q", "-j", "1"]
        bundles = ["--format", "transaction", "--max-entries", "500", "--validation", "fast"]
        peaks.append(peak_mib([*args, *bundles]))
        index = json.loads((out / "bundle-index.json").read_text())["bundles"]
        assert sum(item["entries"] - 1 for item in index) == count * 2
    small, large = peaks
    assert large - small < 30, peaks
