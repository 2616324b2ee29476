"""Files that are not records, and empty files (issue 19 items 7 and 8).

A folder holding an export's manifest.json, summary.json or Type.ndjson next to the diaries is
read without a wall of rejects: each such file is skipped with one warning and counted as a
skipped file. Empty inputs are never silent: an empty .json or .csv is an error naming the
file, an empty NDJSON or a header-only CSV a warning "no records in FILE".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.export.shards import Shard, read_shard
from migrainefhir.input.readers import ReadOptions, read_records
from tests.cli_args import with_source_system

TIMESTAMP = "2026-07-01T00:00:00Z"
DIARY = {
    "record_type": "diary-entry",
    "entry_id": "e1",
    "patient_id": "p1",
    "date": "2026-03-01",
    "headache": False,
}
OBSERVATION = {"resourceType": "Observation", "id": "o1", "status": "final"}


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, with_source_system(args))


def folder_with_an_old_export(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "diary.ndjson").write_text(json.dumps(DIARY) + "\n")
    manifest = {"transactionTime": TIMESTAMP, "request": "x", "output": [], "error": []}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    summary = {"records_read": 1, "records_exported": 1, "records_rejected": 0}
    (folder / "summary.json").write_text(json.dumps(summary))
    lines = "".join(json.dumps({**OBSERVATION, "id": f"o{n}"}) + "\n" for n in range(20))
    (folder / "Observation.ndjson").write_text(lines)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    (folder / "bundle.json").write_text(json.dumps(bundle))
    (folder / "README.md").write_text("# notes\n")
    return folder


def test_an_old_export_in_the_input_folder_is_skipped_file_by_file(tmp_path: Path) -> None:
    folder = folder_with_an_old_export(tmp_path)
    out = tmp_path / "out"
    result = run("export", str(folder), "--out", str(out), "--timestamp", TIMESTAMP, "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert (summary["records_read"], summary["records_exported"]) == (1, 1)
    assert summary["files_skipped"] == 4
    assert (out / "rejects.ndjson").read_text("utf-8") == ""
    checked = run("check", str(folder))
    warnings = [line for line in checked.output.splitlines() if "[read.not-records]" in line]
    assert len(warnings) == 4
    assert "files skipped (no input records in them): 4" in checked.output


def test_a_file_with_a_record_type_is_never_skipped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([OBSERVATION, {**DIARY, "record_type": "diary"}]))
    records = list(read_records([str(path)], ReadOptions()))
    assert [r.notice for r in records] == [None, None]


def test_records_with_typos_are_rejected_one_by_one_not_skipped(tmp_path: Path) -> None:
    path = tmp_path / "typos.ndjson"
    path.write_text(json.dumps({"entry_id": "e1"}) + "\n" + json.dumps({"recordtype": "x"}) + "\n")
    result = run("check", str(path))
    assert result.exit_code == 1
    assert result.output.count("[input.record-type]") == 2


def test_a_fhir_ndjson_read_in_ranges_is_skipped_once(tmp_path: Path) -> None:
    path = tmp_path / "Observation.ndjson"
    lines = [json.dumps({**OBSERVATION, "id": f"o{n}"}) + "\n" for n in range(10)]
    path.write_text("".join(lines))
    split = len("".join(lines[:5]).encode())
    first = Shard(0, str(path), str(path), 0, split, 1)
    second = Shard(1, str(path), str(path), split, None, 6)
    read = [list(read_shard(shard, ReadOptions())) for shard in (first, second)]
    assert [[(r.notice, r.problems[0].code) for r in part] for part in read] == [
        [("skipped-file", "read.not-records")],
        [],
    ]


def test_empty_inputs_are_never_silent(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_bytes(b"")
    (folder / "b.csv").write_bytes(b"")
    (folder / "c.ndjson").write_bytes(b"")
    (folder / "d.csv").write_text("record_type,entry_id\n")
    (folder / "e.ndjson").write_text(json.dumps(DIARY) + "\n")
    result = run("check", str(folder))
    assert result.exit_code == 1  # the empty .json and .csv are errors: records rejected
    lines = result.output.splitlines()
    assert (
        f"{folder / 'a.json'}:1: error [read.json-syntax] $: {folder / 'a.json'} is empty"
        in (lines[0])
    )
    assert lines[1].startswith(f"{folder / 'b.csv'} row 1: error [read.csv-header] $: the file is")
    assert lines[2] == (
        f"{folder / 'c.ndjson'}:1: warning [read.no-records] $: no records in "
        f"{folder / 'c.ndjson'}: the NDJSON file has no lines but blank ones"
    )
    assert lines[3] == (
        f"{folder / 'd.csv'} row 1: warning [read.no-records] $: no records in "
        f"{folder / 'd.csv'}: the CSV file has a header row and no rows"
    )
    assert "records read: 3" in result.output  # two empty files, each one rejected, and e1
    assert "accepted: 1" in result.output


def test_an_empty_ndjson_alone_exits_0_with_its_warning(tmp_path: Path) -> None:
    path = tmp_path / "empty.ndjson"
    path.write_bytes(b"")
    out = tmp_path / "out"
    result = run("export", str(path), "--out", str(out), "--timestamp", TIMESTAMP, "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text("utf-8"))["records_read"] == 0


def test_a_whole_previous_export_as_input_is_skipped_file_by_file(tmp_path: Path) -> None:
    source = tmp_path / "in.ndjson"
    source.write_text(json.dumps(DIARY) + "\n" + json.dumps({"entry_id": "bad"}) + "\n")
    first = tmp_path / "first"
    run("export", str(source), "--out", str(first), "--timestamp", TIMESTAMP, "-q")
    written = sorted(path.name for path in first.iterdir())
    assert "rejects.ndjson" in written and "OperationOutcome.ndjson" in written
    # the export's own marker is hidden: a folder's hidden files are never read
    assert ".migrainefhir-export" in written
    written.remove(".migrainefhir-export")
    result = run("check", str(first))
    assert result.exit_code == 0, result.output
    assert "records read: 0" in result.output
    assert f"files skipped (no input records in them): {len(written)}" in result.output
    assert "rejected records of a migrainefhir export (rejects.ndjson)" in result.output


def test_a_transaction_exports_bundle_index_is_skipped_not_rejected(tmp_path: Path) -> None:
    source = tmp_path / "in.ndjson"
    source.write_text(json.dumps(DIARY) + "\n")
    first = tmp_path / "first"
    exported = run(
        "export", str(source), "--out", str(first), "--format", "transaction",
        "--source-system", "https://clinic.example.org/ids", "--timestamp", TIMESTAMP, "-q",
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert (first / "bundle-index.json").exists()
    result = run("check", str(first / "bundle-index.json"))
    assert result.exit_code == 0, result.output
    assert "records read: 0" in result.output
    assert "a migrainefhir export's Bundle index" in result.output
