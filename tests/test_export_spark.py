"""The export on Spark (`--engine spark`, `export_on_spark`): the local engine's bytes.

One SparkSession on local[2] for the whole module (starting one takes seconds). The input
mixes every case the merge must get right: an NDJSON file split into several byte ranges (so
several Spark tasks), whole-file JSON and CSV shards, contract rejects, a malformed line, blank
lines, and duplicate ids whose first occurrence is in an earlier shard or another file.

Skipped when pyspark or Java is missing, except in CI (CI=true), where that is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.export import shards
from migrainefhir.export.job import export
from migrainefhir.export.options import ExportOptions
from migrainefhir.export.spark import FAIL_SHARD_VARIABLE, export_on_spark, start_session
from migrainefhir.pipeline import InputOptions
from tests.cli_args import TEST_SOURCE_SYSTEM
from tests.spark_helpers import modes, require_spark, tree, write_mixed

require_spark()

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

EXAMPLES = Path(__file__).parent.parent / "examples"
EXPORT_TIME = datetime(2026, 7, 1, tzinfo=UTC)
TIMESTAMP = "2026-07-01T00:00:00Z"
SOURCE = ("--source-system", TEST_SOURCE_SYSTEM)  # export has no default source system

# Spark's own code leaves sockets to the garbage collector and warns about a few things.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = start_session("local[2]")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def small_shards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards of 16 KiB, so the test-sized NDJSON file is split into several byte ranges."""
    monkeypatch.setattr(shards, "MIN_SHARD_BYTES", 16 * 1024)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("mixed")
    return [str(folder / name) for name in write_mixed(folder)]


def options(out: Path, **more: Any) -> ExportOptions:
    return ExportOptions(out=out, export_time=EXPORT_TIME, validation="fast", **more)


@pytest.mark.parametrize("output_format", ["ndjson", "transaction", "collection"])
def test_spark_writes_the_local_engines_bytes(
    spark: SparkSession, mixed: list[str], tmp_path: Path, output_format: str
) -> None:
    export(mixed, InputOptions(), options(tmp_path / "local", format=output_format, jobs=2))
    result = export_on_spark(
        spark, mixed, InputOptions(), options(tmp_path / "spark", format=output_format)
    )
    local, on_spark = tree(tmp_path / "local"), tree(tmp_path / "spark")
    assert on_spark == local
    assert modes(tmp_path / "spark") == modes(tmp_path / "local")
    assert "rejects.ndjson" in on_spark
    summary = json.loads(on_spark["summary.json"])
    assert summary == result.summary()
    assert summary["records_read"] == summary["records_exported"] + summary["records_rejected"]
    rejects = [json.loads(line) for line in on_spark["rejects.ndjson"].splitlines()]
    codes = [problem["code"] for reject in rejects for problem in reject["problems"]]
    assert codes.count("input.duplicate-id") == 3
    assert {"input.range", "read.json-syntax"} <= set(codes)


def test_the_input_really_runs_as_several_spark_tasks(
    spark: SparkSession, mixed: list[str]
) -> None:
    plan = shards.plan_shards(mixed, InputOptions().read, spark.sparkContext.defaultParallelism)
    assert spark.sparkContext.defaultParallelism == 2
    assert len([shard for shard in plan if shard.file == mixed[0]]) >= 3


def test_the_command_line_runs_on_the_active_session(
    spark: SparkSession, mixed: list[str], tmp_path: Path
) -> None:
    common = [*mixed, "--timestamp", TIMESTAMP, "-q", "--validation", "fast", *SOURCE]
    local = CliRunner().invoke(cli, ["export", *common, "--out", str(tmp_path / "local")])
    on_spark = CliRunner().invoke(
        cli, ["export", *common, "--out", str(tmp_path / "spark"), "--engine", "spark"]
    )
    assert (on_spark.exit_code, local.exit_code) == (1, 1)  # records were rejected
    assert tree(tmp_path / "spark") == tree(tmp_path / "local")
    assert spark.sparkContext._jsc is not None  # not stopped: the session was not the CLI's


def test_a_failed_task_fails_the_job_with_exit_3_and_the_previous_output_intact(
    spark: SparkSession, mixed: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    export(mixed, InputOptions(), options(out))
    before = tree(out)
    monkeypatch.setenv(FAIL_SHARD_VARIABLE, "1")
    done = CliRunner().invoke(
        cli,
        [
            "export",
            *mixed,
            "--out",
            str(out),
            "--engine",
            "spark",
            "--timestamp",
            TIMESTAMP,
            *SOURCE,
        ],
    )
    assert done.exit_code == 3
    assert "the Spark job failed, nothing was written" in done.output
    assert f"RuntimeError: failure injected into shard 1 ({FAIL_SHARD_VARIABLE})" in done.output
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left


def probe(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )


CLI_PROBE = """
import sys
{prelude}
from migrainefhir.cli import main
sys.argv = ["migrainefhir", "export", {inputs!r}, "--out", {out!r}, "--engine", "spark",
            "--source-system", "https://clinic.example.org/ids"]
main()
"""


def test_without_pyspark_the_spark_engine_is_a_usage_error(
    mixed: list[str], tmp_path: Path
) -> None:
    code = CLI_PROBE.format(
        prelude="sys.modules['pyspark'] = None  # as if not installed",
        inputs=mixed[1],
        out=str(tmp_path / "out"),
    )
    done = probe(code, dict(os.environ))
    assert done.returncode == 2
    assert "--engine spark needs pyspark: pip install 'migrainefhir[spark]'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_without_java_the_spark_engine_is_a_usage_error(mixed: list[str], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT")}
    env["PATH"] = str(tmp_path / "no-java")  # nothing on the PATH
    code = CLI_PROBE.format(prelude="", inputs=mixed[1], out=str(tmp_path / "out"))
    done = probe(code, env)
    assert done.returncode == 2
    assert "--engine spark needs Java 17 or later" in done.stderr
    assert not (tmp_path / "out").exists()


def test_spark_master_without_the_spark_engine_is_a_usage_error(
    mixed: list[str], tmp_path: Path
) -> None:
    done = CliRunner().invoke(
        cli,
        ["export", mixed[1], "--out", str(tmp_path / "out"), "--spark-master", "local[2]", *SOURCE],
    )
    assert done.exit_code == 2
    assert "--spark-master goes with --engine spark" in done.output


@pytest.mark.parametrize("master", ["nonsense://x", "local[0]", "local[two]"])
def test_a_master_spark_does_not_know_is_a_usage_error_before_spark_starts(
    mixed: list[str], tmp_path: Path, master: str
) -> None:
    args = ["export", mixed[1], "--out", str(tmp_path / "out"), "--engine", "spark", *SOURCE]
    done = CliRunner().invoke(cli, [*args, "--spark-master", master])
    assert done.exit_code == 2
    assert f"--spark-master {master!r} is not a Spark master URL" in done.output
    assert not (tmp_path / "out").exists()


def test_file_uris_are_the_local_paths(
    spark: SparkSession, mixed: list[str], tmp_path: Path
) -> None:
    export(mixed, InputOptions(), options(tmp_path / "local", jobs=2))
    uris = [Path(path).as_uri() for path in mixed]
    export_on_spark(spark, uris, InputOptions(), options(Path((tmp_path / "spark").as_uri())))
    assert tree(tmp_path / "spark") == tree(tmp_path / "local")
