"""Parallel export: shards, workers and the merge give the bytes of a single pass.

The input mixes every case the merge must get right: NDJSON split into several byte ranges,
whole-file JSON and CSV shards, contract rejects, a malformed line, blank lines, and duplicate
ids whose first occurrence is in an earlier shard or another file.
"""

from __future__ import annotations

import errno
import gc
import json
import multiprocessing
import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from migrainefhir.errors import OutputUnwritable, TemporaryUnwritable, WorkerLost
from migrainefhir.export import merge, shards, worker
from migrainefhir.export.job import export
from migrainefhir.export.options import ExportOptions
from migrainefhir.input.intake import CompactDuplicateIds
from migrainefhir.input.readers import ReadOptions
from migrainefhir.pipeline import InputOptions
from migrainefhir.problems import Source

EXAMPLES = Path(__file__).parent.parent / "examples"
EXPORT_TIME = datetime(2026, 7, 1, tzinfo=UTC)
SMALL_SHARDS = 16 * 1024


@pytest.fixture(autouse=True)
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards of 16 KiB, so a test-sized NDJSON file is split into several byte ranges."""
    monkeypatch.setattr(shards, "MIN_SHARD_BYTES", SMALL_SHARDS)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("mixed")
    lines = (EXAMPLES / "ndjson" / "diary-entries.ndjson").read_text().splitlines()[:150]
    first, bad = json.loads(lines[2]), json.loads(lines[40])
    bad["severity"] = 11  # input.range
    lines[40] = json.dumps(bad)
    lines[60] = "{not json"
    lines.insert(80, "")
    lines.append(json.dumps(first))  # a duplicate of line 3, three shards later
    diary = folder / "diary.ndjson"
    diary.write_text("\n".join(lines) + "\n")
    again = folder / "again.json"  # a whole-file shard
    again.write_text(f"[\n{lines[4]},\n{lines[6]}\n]\n")  # duplicates of lines 5 and 7
    return [
        str(diary),
        str(EXAMPLES / "json" / "patients.json"),
        str(EXAMPLES / "csv" / "ketamine-sessions.csv"),
        str(again),
    ]


def run(inputs: list[str], out: Path, **options: Any) -> Any:
    return export(
        inputs, InputOptions(), ExportOptions(out=out, export_time=EXPORT_TIME, **options)
    )


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_the_mixed_input_is_really_split_into_several_shards(mixed: list[str]) -> None:
    plan = shards.plan_shards(mixed, ReadOptions(), jobs=2)
    diary_shards = [s for s in plan if s.file == mixed[0]]
    assert len(diary_shards) >= 3
    assert [s.file for s in plan[len(diary_shards) :]] == mixed[1:]


def test_ranges_shrink_towards_the_end_of_the_input_so_the_workers_finish_together(
    tmp_path: Path,
) -> None:
    """Each range is a share of the input left (this file's rest and the files after it), so
    the last ones are small; together they cover the file, each starting on a line."""
    big, after = tmp_path / "big.ndjson", tmp_path / "after.ndjson"
    big.write_bytes(b"".join(b'{"n":%06d}\n' % n for n in range(40_000)))  # 13-byte lines
    after.write_bytes(b'{"n":0}\n' * 100)
    plan = [
        s
        for s in shards.plan_shards([str(big), str(after)], ReadOptions(), 2)
        if s.file == str(big)
    ]
    data = big.read_bytes()
    ends = [shard.end if shard.end is not None else len(data) for shard in plan]
    sizes = [end - shard.start for shard, end in zip(plan, ends, strict=True)]
    assert [shard.start for shard in plan[1:]] == ends[:-1]
    assert all(data[shard.start - 1 : shard.start] == b"\n" for shard in plan[1:])
    assert [shard.first_line for shard in plan] == [shard.start // 13 + 1 for shard in plan]
    quarter = (len(data) + 800) // 4  # TAPER 2, 2 jobs: the first range is a quarter, ...
    assert 0 <= sizes[0] - quarter < 13  # ... up to the next line
    assert sizes[:-2] == sorted(sizes[:-2], reverse=True)
    assert all(0 <= size - SMALL_SHARDS < 13 for size in sizes[-4:-1])  # down to the smallest
    assert sizes[-1] <= SMALL_SHARDS
    # Their lines (one more than their newlines): at least their records.
    assert [shard.most_records for shard in plan] == [size // 13 + 1 for size in sizes]


@pytest.mark.parametrize("output_format", ["ndjson", "transaction", "collection"])
def test_output_is_byte_identical_for_one_two_and_three_jobs(
    mixed: list[str], tmp_path: Path, output_format: str
) -> None:
    outputs = []
    for jobs in (1, 2, 3):
        run(mixed, tmp_path / f"jobs{jobs}", format=output_format, jobs=jobs, validation="fast")
        outputs.append(tree(tmp_path / f"jobs{jobs}"))
    assert outputs[0] == outputs[1] == outputs[2]
    assert "rejects.ndjson" in outputs[0]


@pytest.mark.parametrize("batch", [1, 7])
def test_output_is_byte_identical_whatever_the_batch_of_records_validated_together(
    mixed: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    since = datetime(2025, 10, 20, tzinfo=UTC)  # skips some records inside each batch
    run(mixed, tmp_path / "usual", jobs=1, validation="fast", since=since)
    monkeypatch.setattr(worker, "_BATCH", batch)
    run(mixed, tmp_path / "other", jobs=1, validation="fast", since=since)
    usual = tree(tmp_path / "usual")
    assert tree(tmp_path / "other") == usual
    summary = json.loads(usual["summary.json"])
    assert summary["records_skipped"] and summary["records_rejected"]


def test_fast_and_full_validation_write_the_same_bytes(mixed: list[str], tmp_path: Path) -> None:
    run(mixed, tmp_path / "full", jobs=2, validation="full")
    run(mixed, tmp_path / "fast", jobs=2, validation="fast")
    assert tree(tmp_path / "full") == tree(tmp_path / "fast")


def test_duplicates_across_shards_and_files_are_rejected_in_input_order(
    mixed: list[str], tmp_path: Path
) -> None:
    result = run(mixed, tmp_path / "out", jobs=2, validation="fast")
    rejects = [
        json.loads(line) for line in (tmp_path / "out" / "rejects.ndjson").read_text().splitlines()
    ]
    duplicates = [r for r in rejects if r["problems"][-1]["code"] == "input.duplicate-id"]
    diary, again = mixed[0], mixed[3]
    assert [r["source"] for r in duplicates] == [
        {"file": diary, "line": 152},
        {"file": again, "line": 2},
        {"file": again, "line": 3},
    ]
    first_line = json.loads(Path(diary).read_text().splitlines()[2])
    assert duplicates[0]["record"] == first_line  # verbatim, fetched again from the input
    assert f"is at {diary}:3;" in duplicates[0]["problems"][-1]["message"]
    assert f"is at {diary}:5;" in duplicates[1]["problems"][-1]["message"]
    assert f"is at {diary}:7;" in duplicates[2]["problems"][-1]["message"]
    counts = result.report.counts
    assert counts.total_read == counts.total_accepted + counts.total_rejected
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["records_rejected"] == len(rejects)


def test_a_worker_names_the_files_own_line_numbers(mixed: list[str], tmp_path: Path) -> None:
    run(mixed, tmp_path / "out", jobs=2, validation="fast")
    rejects = [
        json.loads(line) for line in (tmp_path / "out" / "rejects.ndjson").read_text().splitlines()
    ]
    by_code = {r["problems"][0]["code"]: r["source"] for r in rejects}
    assert by_code["input.range"] == {"file": mixed[0], "line": 41}
    assert by_code["read.json-syntax"] == {"file": mixed[0], "line": 61}


def test_one_job_runs_in_process_without_multiprocessing(
    mixed: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_processes(*_args: object) -> None:
        raise AssertionError("jobs=1 must not start processes")

    monkeypatch.setattr(worker, "run_in_order", no_processes)
    result = run(mixed, tmp_path / "out", jobs=1, validation="fast")
    assert result.report.counts.total_read > 150


def test_an_in_process_export_leaves_the_garbage_collector_as_it_was(
    mixed: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker turns automatic collection off and freezes survivors (pacing.py); a caller
    running the export in its own process gets the collector back enabled, nothing frozen."""
    monkeypatch.setattr(worker, "_BATCH", 4)
    monkeypatch.setattr(worker, "_BATCHES_PER_COLLECTION", 2)  # several collections
    gc.collect()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    run(mixed, tmp_path / "out", jobs=1, validation="fast")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("first_slots", [16, 1 << 16], ids=["grows-often", "never-grows"])
def test_the_compact_duplicate_tracker_reports_exactly_what_the_dict_one_does(
    monkeypatch: pytest.MonkeyPatch, first_slots: int
) -> None:
    import migrainefhir.input.intake as intake
    from migrainefhir.input.contract import DuplicateIds

    # From 16 slots, its 3000 distinct ids make the table grow nine times (to 8192 slots) and
    # wrap around its end often.
    monkeypatch.setattr(intake, "_FIRST_SLOTS", first_slots)
    plain, compact = DuplicateIds(), CompactDuplicateIds()
    for number in range(5000):
        kind = ("diary-entry", "patient")[number % 2]
        record_id = f"id-{number % 3000}"
        source = Source(f"f{number % 3}.ndjson", line=number + 1)
        assert compact.check(kind, record_id, source) == plain.check(kind, record_id, source)
    compact.close()


def test_a_duplicate_table_sized_for_the_expected_ids_never_grows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import migrainefhir.input.intake as intake

    monkeypatch.setattr(intake, "_FIRST_SLOTS", 16)
    tracker = CompactDuplicateIds(expected=1000)
    table = tracker._table
    assert table.slots == 2048  # 1024 slots hold 682 ids at most (2/3)
    for number in range(1000):
        assert tracker.check("patient", f"p{number}", Source("x", line=number + 1)) == []
    assert tracker._table is table
    assert tracker.check("patient", "p999", Source("x", line=1001)) != []
    tracker.close()


def test_the_merge_sizes_the_duplicate_table_for_every_line_of_the_input(
    mixed: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sized: list[int] = []
    monkeypatch.setattr(
        merge,
        "CompactDuplicateIds",
        lambda expected: sized.append(expected) or CompactDuplicateIds(expected),
    )
    run(mixed, tmp_path / "out", jobs=2, validation="fast")
    diary, csv = (Path(mixed[0]).read_bytes(), Path(mixed[2]).read_bytes())  # not the JSON
    ranges = sum(shard.file == mixed[0] for shard in shards.plan_shards(mixed, ReadOptions(), 2))
    assert sized == [diary.count(b"\n") + ranges + csv.count(b"\n") + 1]


def test_a_full_disk_while_the_duplicate_table_grows_is_an_error_not_a_lost_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import migrainefhir.input.intake as intake

    monkeypatch.setattr(intake, "_FIRST_SLOTS", 16)
    tracker = CompactDuplicateIds()
    for number in range(10):  # up to 2/3 of 16 slots: the next id makes the table grow
        assert tracker.check("patient", f"p{number}", Source("x", line=number + 1)) == []

    real_pwrite, writes = os.pwrite, []

    def full_after_one_write(fd: int, data: bytes, offset: int) -> int:
        writes.append(offset)
        if len(writes) > 1:  # the new id's slot is written; copying into the larger table fails
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(intake.os, "pwrite", full_after_one_write)
    with pytest.raises(TemporaryUnwritable, match=r"\(TMPDIR\): No space left on device"):
        tracker.check("patient", "p10", Source("x", line=11))
    assert len(writes) == 2
    tracker.close()


@pytest.mark.parametrize("flush_bytes", [1, 1024 * 1024], ids=["keys-in-file", "keys-in-memory"])
def test_a_hash_collision_is_not_a_duplicate(
    monkeypatch: pytest.MonkeyPatch, flush_bytes: int
) -> None:
    """Every key hashes alike here: the key read back from the key file tells them apart."""

    import migrainefhir.input.intake as intake

    monkeypatch.setattr(intake, "_hash", lambda _key: 1)
    monkeypatch.setattr(intake, "_FLUSH_BYTES", flush_bytes)
    tracker = CompactDuplicateIds()
    assert tracker.check("patient", "a", Source("x", line=1)) == []
    assert tracker.check("patient", "b", Source("x", line=2)) == []
    assert [p.code for p in tracker.check("patient", "a", Source("x", line=3))] == [
        "input.duplicate-id"
    ]
    tracker.close()


def test_a_merge_that_fails_stops_the_workers_before_the_error_is_raised(
    mixed: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Idle workers wait for their next shard and never end on their own: a failed merge must
    # stop them (workers.run_in_order's early-stop path) before its error reaches the caller.
    def full_disk(*_args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(merge.Merger, "add", full_disk)
    with pytest.raises(OutputUnwritable, match="No space left on device"):
        run(mixed, tmp_path / "out", jobs=2, validation="fast")
    assert multiprocessing.active_children() == []
    assert list(tmp_path.iterdir()) == []


def test_a_killed_worker_fails_the_export_instead_of_hanging_it(
    mixed: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_shard = worker.ShardWorker.run

    def killed_on_the_second_shard(worker: Any, shard: shards.Shard) -> Any:
        if shard.number == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
        return run_shard(worker, shard)

    monkeypatch.setattr(worker.ShardWorker, "run", killed_on_the_second_shard)
    expected = f"a worker process was killed by SIGKILL .* while working on {mixed[0]} from line"
    with pytest.raises(WorkerLost, match=expected):
        run(mixed, tmp_path / "out", jobs=2, validation="fast")
    assert multiprocessing.active_children() == []
    assert list(tmp_path.iterdir()) == []
