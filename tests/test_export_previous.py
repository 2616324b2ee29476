"""`export --previous OLD_DIR`: DELETE entries for what a record exported again no longer has
(export/deletions.py; the round trip through a server is in tests/test_push.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from migrainefhir.cli import cli
from tests.cli_args import with_source_system
from tests.test_push import corrected, records, write_input

TIMESTAMP = "2026-07-01T00:00:00Z"


def export(tmp: Path, name: str, items: list[dict[str, Any]], *extra: str) -> Path:
    out = tmp / name
    source = write_input(tmp / f"{name}-input", items)
    args = ["export", str(source), "--out", str(out), "--timestamp", TIMESTAMP, "-j", "1", "-q"]
    result = CliRunner().invoke(cli, with_source_system([*args, *extra]))
    assert result.exit_code == 0, result.output
    return out


def first() -> list[dict[str, Any]]:
    patient, _, free_day, attack, attack_2, *_, session, _ = records()
    return [patient, free_day, attack, attack_2, session]


def ndjson_ids(folder: Path) -> set[tuple[str, str]]:
    found = set()
    for path in folder.glob("*.ndjson"):
        if path.name.split(".")[0] in ("OperationOutcome", "rejects", "deleted"):
            continue
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            found.add((resource["resourceType"], resource["id"]))
    return found


def test_ndjson_deleted_file_holds_delete_bundles_listed_in_the_manifest(tmp_path: Path) -> None:
    old = export(tmp_path, "old", first())
    new = export(tmp_path, "new", corrected(first()), "--previous", str(old))
    manifest = json.loads((new / "manifest.json").read_text())
    assert manifest["deleted"] == [{"type": "Bundle", "url": "deleted.ndjson", "count": 1}]
    [bundle] = [json.loads(line) for line in (new / "deleted.ndjson").read_text().splitlines()]
    assert bundle["type"] == "transaction"
    urls = [entry["request"]["url"] for entry in bundle["entry"]]
    assert all(entry["request"]["method"] == "DELETE" for entry in bundle["entry"])
    gone = {tuple(url.split("/")) for url in urls}
    # Exactly what the old export had and the new one has not; none of it in `output`.
    assert gone == ndjson_ids(old) - ndjson_ids(new)
    assert len(gone) == 7
    assert json.loads((new / "summary.json").read_text())["deleted"] == {
        "MedicationStatement": 2,
        "Observation": 5,
    }
    assert CliRunner().invoke(cli, ["validate", str(new)]).exit_code == 0


def test_the_previous_export_may_be_out_itself(tmp_path: Path) -> None:
    out = export(tmp_path, "out", first(), "--format", "transaction")
    again = export(tmp_path, "out", corrected(first()), "--format", "transaction",
                   "--previous", str(out))  # fmt: skip
    assert json.loads((again / "summary.json").read_text())["deleted"] == {
        "MedicationStatement": 2,
        "Observation": 5,
    }
    assert CliRunner().invoke(cli, ["validate", str(again / "bundles")]).exit_code == 0


def test_records_this_run_did_not_export_are_never_deleted(tmp_path: Path) -> None:
    # --since skips the corrected records, and one record is missing from the input: nothing
    # tells a record deleted at the source from one not read again, so nothing is deleted.
    old = export(tmp_path, "old", first())
    fixed = corrected(first())
    new = export(tmp_path, "new", fixed[:-1], "--since", "2026-01-01T00:00:00Z",
                 "--previous", str(old))  # fmt: skip
    assert json.loads((new / "summary.json").read_text())["deleted"] == {}
    assert not (new / "deleted.ndjson").exists()
    assert "deleted" not in json.loads((new / "manifest.json").read_text())


def test_an_unchanged_export_deletes_nothing(tmp_path: Path) -> None:
    old = export(tmp_path, "old", first(), "--format", "transaction")
    new = export(tmp_path, "new", first(), "--format", "transaction", "--previous", str(old))
    assert json.loads((new / "summary.json").read_text())["deleted"] == {}
    assert not list((new / "bundles").glob("deleted-*.json"))


def test_previous_with_a_collection_export_is_a_usage_error(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in", first())
    result = CliRunner().invoke(
        cli, with_source_system(["export", str(source), "--out", str(tmp_path / "o"),
              "--format", "collection", "--previous", str(tmp_path), "-q"]),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--previous needs --format transaction or ndjson" in result.stderr
