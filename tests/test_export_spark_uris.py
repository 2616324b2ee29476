"""The export on Spark with file system URIs (spark_uris.py, hadoop.py): inputs, --out and
--previous that only Spark reaches give the local engine's bytes.

The file system is Hadoop's ViewFs: `viewfs://t/in/...` and `viewfs://t/out/...` are mount
points over two local folders, so this process cannot open those paths itself (Python sees
no file there), while Spark reaches them through Hadoop exactly as it reaches hdfs:// or
s3a://. Hadoop's local file system keeps a `.NAME.crc` checksum file beside each file it
writes; Hadoop's own listings hide them, and so does `tree` here.

One SparkSession on local[2] for the module. Skipped when pyspark or Java is missing, except
in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.export import spark_uris
from migrainefhir.export.hadoop import HadoopFiles, expand_inputs
from migrainefhir.export.job import export
from migrainefhir.export.options import ExportOptions
from migrainefhir.export.spark import FAIL_SHARD_VARIABLE, export_on_spark, start_session
from migrainefhir.pipeline import InputOptions
from tests.cli_args import TEST_SOURCE_SYSTEM
from tests.process_helpers import children_of, wait_until_gone
from tests.spark_helpers import modes, require_spark, tree, write_mixed
from tests.test_export_crash import write_input

require_spark()

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXAMPLES = Path(__file__).parent.parent / "examples"
EXPORT_TIME = datetime(2026, 7, 1, tzinfo=UTC)
TIMESTAMP = "2026-07-01T00:00:00Z"
IN, OUT = "viewfs://t/in", "viewfs://t/out"

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The local folders under viewfs://t/in and viewfs://t/out."""
    return tmp_path_factory.mktemp("in"), tmp_path_factory.mktemp("out")


@pytest.fixture(scope="module")
def spark(roots: tuple[Path, Path]) -> Iterator[SparkSession]:
    inside, outside = roots
    session = start_session(
        "local[2]",
        {
            "spark.hadoop.fs.viewfs.mounttable.t.link./in": inside.as_uri(),
            "spark.hadoop.fs.viewfs.mounttable.t.link./out": outside.as_uri(),
        },
    )
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def small_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Splits of 16 KiB, so the test-sized NDJSON file is read as several Spark splits."""
    monkeypatch.setattr(spark_uris, "SPLIT_BYTES", 16 * 1024)


@pytest.fixture(scope="module")
def mixed(roots: tuple[Path, Path]) -> list[str]:
    return write_mixed(roots[0])


def local(names: list[str], roots: tuple[Path, Path]) -> list[str]:
    return [str(roots[0] / name) for name in names]


def remote(names: list[str]) -> list[str]:
    return [f"{IN}/{name}" for name in names]


def options(out: Path, **more: Any) -> ExportOptions:
    return ExportOptions(out=out, export_time=EXPORT_TIME, validation="fast", **more)


def cli_export(*arguments: str) -> Any:
    common = ["--timestamp", TIMESTAMP, "-q", "--validation", "fast"]
    return CliRunner().invoke(
        cli, ["export", *arguments, *common, "--source-system", TEST_SOURCE_SYSTEM]
    )


@pytest.mark.parametrize("output_format", ["ndjson", "transaction", "collection"])
def test_uri_inputs_and_out_give_the_local_engines_bytes(
    spark: SparkSession,
    roots: tuple[Path, Path],
    mixed: list[str],
    tmp_path: Path,
    output_format: str,
) -> None:
    export(local(mixed, roots), InputOptions(), options(tmp_path / "local", format=output_format))
    out = f"{OUT}/{output_format}"
    result = export_on_spark(
        spark,
        remote(mixed),
        InputOptions(),
        options(tmp_path / "unused", format=output_format, out_uri=out),
    )
    written = roots[1] / output_format
    on_spark, expected = tree(written), tree(tmp_path / "local")
    # Sources name the inputs as given: the same records, with their URIs for names
    assert on_spark.keys() == expected.keys()
    for name, data in expected.items():
        assert on_spark[name] == data.replace(str(roots[0]).encode(), IN.encode()), name
    assert modes(written) == modes(tmp_path / "local")
    assert not (tmp_path / "unused").exists()
    summary = json.loads(on_spark["summary.json"])
    assert summary == result.summary()
    assert summary["records_read"] == summary["records_exported"] + summary["records_rejected"]
    rejects = [json.loads(line) for line in on_spark["rejects.ndjson"].splitlines()]
    codes = [problem["code"] for reject in rejects for problem in reject["problems"]]
    assert codes.count("input.duplicate-id") == 3
    assert {"input.range", "read.json-syntax", "read.encoding"} <= set(codes)


def test_a_large_ndjson_file_is_read_as_several_splits_with_their_line_numbers(
    spark: SparkSession, roots: tuple[Path, Path], mixed: list[str]
) -> None:
    route = spark_uris._Route(spark, HadoopFiles(spark))
    route.expand(remote(mixed), InputOptions().read)
    plan = route.plan([], InputOptions().read, 2, None)
    splits = [shard for shard in plan if shard.name == f"{IN}/diary.ndjson"]
    assert len(splits) >= 3
    assert [shard.start for shard in splits] == sorted(shard.start for shard in splits)
    for before, after in itertools.pairwise(splits):
        assert after.first_line == before.first_line + (before.most_records or 0)
    lines = (roots[0] / "diary.ndjson").read_bytes().count(b"\n")
    assert splits[-1].first_line + (splits[-1].most_records or 0) - 1 == lines
    assert [shard.whole_file for shard in plan if shard not in splits] == [True, True, True]


def test_uri_inputs_with_a_local_out(
    spark: SparkSession, roots: tuple[Path, Path], mixed: list[str], tmp_path: Path
) -> None:
    export(local(mixed, roots), InputOptions(), options(tmp_path / "local"))
    export_on_spark(spark, remote(mixed), InputOptions(), options(tmp_path / "spark"))
    expected = {
        name: data.replace(str(roots[0]).encode(), IN.encode())
        for name, data in tree(tmp_path / "local").items()
    }
    assert tree(tmp_path / "spark") == expected


def test_local_inputs_with_a_uri_out(
    spark: SparkSession, roots: tuple[Path, Path], mixed: list[str], tmp_path: Path
) -> None:
    """Local inputs are read by Spark as file: URIs (each node's own disk), split as well."""
    export(local(mixed, roots), InputOptions(), options(tmp_path / "local"))
    out = options(tmp_path / "unused", out_uri=f"{OUT}/from-local")
    export_on_spark(spark, local(mixed, roots), InputOptions(), out)
    assert tree(roots[1] / "from-local") == tree(tmp_path / "local")


def test_a_uri_out_inside_an_input_folder_is_refused(
    spark: SparkSession, roots: tuple[Path, Path], mixed: list[str]
) -> None:
    done = cli_export(IN, "--out", f"{IN}/out", "--engine", "spark")
    assert done.exit_code == 2
    assert f"--out {IN}/out lies inside the input folder {IN}" in done.output
    assert not (roots[0] / "out").exists()


def test_a_uri_folder_is_read_like_a_local_folder(
    spark: SparkSession, roots: tuple[Path, Path], mixed: list[str]
) -> None:
    (roots[0] / ".hidden.ndjson").write_text("{}\n")
    (roots[0] / "notes.txt").write_text("not an input\n")
    found = expand_inputs(HadoopFiles(spark), [IN], None)
    assert [each.name for each in found] == [f"{IN}/{name}" for name in sorted(mixed)]
    assert all(each.uri.startswith("viewfs://t/in/") for each in found)


def test_the_command_line_writes_a_uri_out_and_replaces_it_on_the_next_run(
    spark: SparkSession, roots: tuple[Path, Path], mixed: list[str]
) -> None:
    out = f"{OUT}/cli"
    first = cli_export(*remote(mixed), "--out", out, "--engine", "spark")
    assert first.exit_code == 1, first.output  # records were rejected
    assert "manifest.json" in tree(roots[1] / "cli")
    again = cli_export(*remote(mixed), "--out", out, "--engine", "spark", "--format", "transaction")
    assert again.exit_code == 1, again.output
    names = tree(roots[1] / "cli")
    assert "manifest.json" not in names  # nothing stale of the NDJSON export is left
    assert any(name.startswith("bundles/") for name in names)
    left = [name for name in os.listdir(roots[1]) if ".staging-" in name or ".previous-" in name]
    assert left == []


def test_a_uri_out_that_is_not_an_export_is_refused_and_left_alone(
    spark: SparkSession, roots: tuple[Path, Path], mixed: list[str]
) -> None:
    foreign = roots[1] / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    done = cli_export(*remote(mixed), "--out", f"{OUT}/foreign", "--engine", "spark")
    assert done.exit_code == 2
    assert f"--out {OUT}/foreign is not empty and not a previous migrainefhir export" in (
        done.output
    )
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_a_failed_task_leaves_the_previous_uri_output_intact_and_nothing_behind(
    spark: SparkSession,
    roots: tuple[Path, Path],
    mixed: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = f"{OUT}/failing"
    assert cli_export(*remote(mixed), "--out", out, "--engine", "spark").exit_code == 1
    before = tree(roots[1] / "failing")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the driver's private folder
    monkeypatch.setenv(FAIL_SHARD_VARIABLE, "2")
    done = cli_export(*remote(mixed), "--out", out, "--engine", "spark")
    assert done.exit_code == 3
    assert "the Spark job failed, nothing was written" in done.output
    assert f"RuntimeError: failure injected into shard 2 ({FAIL_SHARD_VARIABLE})" in done.output
    assert tree(roots[1] / "failing") == before
    assert not [name for name in os.listdir(roots[1]) if ".staging-" in name]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_uri_input_fails_before_any_work(
    spark: SparkSession, roots: tuple[Path, Path]
) -> None:
    done = cli_export(f"{IN}/absent.ndjson", "--out", f"{OUT}/absent", "--engine", "spark")
    assert done.exit_code == 3
    assert f"{IN}/absent.ndjson: no such file or folder" in done.output
    assert not (roots[1] / "absent").exists()


def test_previous_as_a_uri_deletes_what_a_correction_removed(
    spark: SparkSession, roots: tuple[Path, Path], tmp_path: Path
) -> None:
    lines = (EXAMPLES / "ndjson" / "diary-entries.ndjson").read_text().splitlines()[:60]
    (roots[0] / "v1.ndjson").write_text("\n".join(lines) + "\n")
    corrected = [json.loads(line) for line in lines]
    corrected[9]["medications"] = []  # line 10 took a triptan; the correction says not
    (roots[0] / "v2.ndjson").write_text("\n".join(json.dumps(r) for r in corrected) + "\n")
    out = f"{OUT}/corrected"
    assert cli_export(f"{IN}/v1.ndjson", "--out", out, "--engine", "spark").exit_code == 0
    old = tmp_path / "old"
    shutil.copytree(roots[1] / "corrected", old)
    done = cli_export(f"{IN}/v2.ndjson", "--out", out, "--previous", out, "--engine", "spark")
    assert done.exit_code == 0, done.output
    local_done = cli_export(
        str(roots[0] / "v2.ndjson"), "--out", str(tmp_path / "local"), "--previous", str(old)
    )
    assert local_done.exit_code == 0
    summary = json.loads((roots[1] / "corrected" / "summary.json").read_text())
    assert (
        summary["deleted"]
        == json.loads((tmp_path / "local" / "summary.json").read_text())["deleted"]
    )
    assert sum(summary["deleted"].values()) > 0
    assert (roots[1] / "corrected" / "deleted.ndjson").read_bytes() == (
        tmp_path / "local" / "deleted.ndjson"
    ).read_bytes()


def test_the_local_engine_refuses_uris_with_a_usage_error(tmp_path: Path) -> None:
    done = cli_export(f"{IN}/diary.ndjson", "--out", str(tmp_path / "out"))
    assert done.exit_code == 2
    assert "add --engine spark" in done.output
    out = cli_export(str(EXAMPLES / "json" / "patients.json"), "--out", f"{OUT}/x")
    assert out.exit_code == 2
    assert f"{OUT}/x: file system URIs" in out.output


def test_file_uris_are_local_paths(tmp_path: Path) -> None:
    given = EXAMPLES / "json" / "patients.json"
    assert cli_export(str(given), "--out", str(tmp_path / "plain")).exit_code == 0
    done = cli_export(given.as_uri(), "--out", (tmp_path / "uri").as_uri())
    assert done.exit_code == 0, done.output
    assert tree(tmp_path / "uri") == tree(tmp_path / "plain")


@pytest.mark.parametrize("name", ["_diary.ndjson", ".diary.ndjson"])
def test_a_file_spark_would_skip_is_an_error_not_a_loss(
    spark: SparkSession, roots: tuple[Path, Path], mixed: list[str], name: str
) -> None:
    """Spark's file sources skip names starting with '_' or '.' even when named one by one."""
    folder = roots[0] / f"hidden{name[0]}"  # not in the folder the other tests read
    folder.mkdir()
    shutil.copy(roots[0] / "diary.ndjson", folder / name)
    given = f"{IN}/{folder.name}/{name}"
    done = cli_export(given, "--out", f"{OUT}/hidden", "--engine", "spark")
    assert done.exit_code == 3
    assert f"{given}: Spark does not read files whose names start with '_' or '.'" in done.output
    assert not (roots[1] / "hidden").exists()


def descendants(pid: int) -> set[int]:
    found, pending = set(), [pid]
    while pending:
        for child in children_of(pending.pop()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def test_sigterm_stops_a_uri_export_cleanly_and_leaves_nothing_behind(tmp_path: Path) -> None:
    """The command line's own Spark (JVM, Python workers) stops with it; the previous output
    at the URI --out is intact; no staging copy beside it, no private folder in TMPDIR."""
    inside, outside, temporary = tmp_path / "in", tmp_path / "out", tmp_path / "tmp"
    for folder in (inside, outside, temporary):
        folder.mkdir()
    write_input(inside / "large.ndjson", 20_000)
    write_input(inside / "small.ndjson", 5)
    assert cli_export(str(inside / "small.ndjson"), "--out", str(outside / "export")).exit_code == 0
    before = tree(outside / "export")
    mounts = {"in": inside, "out": outside}
    settings = [
        f"--conf spark.hadoop.fs.viewfs.mounttable.k.link./{name}={folder.as_uri()}"
        for name, folder in mounts.items()
    ]
    arguments = ["export", "viewfs://k/in/large.ndjson", "--out", "viewfs://k/out/export"]
    arguments += ["--engine", "spark", "--spark-master", "local[2]", "--timestamp", TIMESTAMP]
    arguments += ["--source-system", TEST_SOURCE_SYSTEM, "--quiet"]
    process = subprocess.Popen(
        [sys.executable, "-m", "migrainefhir", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={
            **os.environ,
            "TMPDIR": str(temporary),
            "PYSPARK_SUBMIT_ARGS": " ".join([*settings, "pyspark-shell"]),
        },
    )
    deadline = time.monotonic() + 120
    while not list(temporary.glob("migrainefhir-spark-*/.out.staging-*/.work/shard-*")):
        assert process.poll() is None, process.communicate()[1].decode()[-3000:]
        assert time.monotonic() < deadline, "the Spark job did not start"
        time.sleep(0.1)
    spark_processes = descendants(process.pid)
    assert spark_processes, "no JVM and no Python workers under the export"
    os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr.decode()[-3000:]
    assert "migrainefhir: stopped by SIGTERM: nothing written" in stderr.decode()
    assert b"Traceback" not in stderr
    assert wait_until_gone(spark_processes, 30) == set()
    assert tree(outside / "export") == before
    assert sorted(p.name for p in outside.iterdir() if not p.name.endswith(".crc")) == ["export"]
    assert list(temporary.iterdir()) == []


def test_empty_files_give_their_notices_as_locally(
    spark: SparkSession, roots: tuple[Path, Path], tmp_path: Path
) -> None:
    """Spark's file sources skip files of 0 bytes; they are read here, as the local reader
    does (a notice each), between the other files in input order."""
    folder = roots[0] / "empty"
    folder.mkdir()
    (folder / "a.ndjson").write_bytes(b"")
    shutil.copy(EXAMPLES / "json" / "patients.json", folder / "b.json")
    (folder / "c.csv").write_bytes(b"")
    export([str(folder)], InputOptions(), options(tmp_path / "local"))
    export_on_spark(spark, [f"{IN}/empty"], InputOptions(), options(tmp_path / "spark"))
    expected = {
        name: data.replace(str(folder).encode(), f"{IN}/empty".encode())
        for name, data in tree(tmp_path / "local").items()
    }
    assert tree(tmp_path / "spark") == expected
    first = json.loads(expected["summary.json"])["problems"]["first"]
    assert [problem["code"] for problem in first] == ["read.no-records", "read.csv-header"]
