"""The export on Apache Spark: the same shards, worker code and merge, with Spark running the
shards (`export --engine spark`, or `export_on_spark` from a notebook).

The driver (this process) does what it does for a local export: it checks the inputs, plans the
shards (shards.py), opens the staging folder beside the output (output.py) and, once the shards
are done, merges them in input order with the same Merger (merge.py: duplicate ids in input
order, Patient stubs, rejects, summary, manifest) and swaps the output in. Only the running of
the shards differs: they become a Spark job with one partition per shard, and each task runs
the local engine's ShardWorker (worker.py: intake -> convert -> validate -> part files) on its
shard. So the output is the same bytes as the local engine's for the same input and options.

Paths. Local paths (and file: URIs) must be seen the same way by every executor and the
driver: a local disk with a local master, or a file system mounted on every node (NFS, a
Databricks /dbfs or /Volumes FUSE path, EFS, Filestore). Each task then opens its input by path
and writes its part files under the staging folder beside the output, where the driver reads
them, and returns only where they are (ShardDone). When an input, --out or --previous is a URI
that only Spark reaches (hdfs://, s3a://, abfss://, gs://, ...), spark_uris.py runs the export
instead: Spark's file sources read the inputs, and the tasks return their part files' bytes.

A task that fails fails the job (after Spark's own retries; each attempt writes its own
folder, so a retried or speculative attempt never mixes with another): the export stops with
SparkJobFailed (exit code 3) and the previous output is intact, as with a lost local worker.

pyspark is an optional extra (`pip install 'migrainefhir[spark]'`) and is imported only here,
only when the Spark engine runs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from migrainefhir.errors import ExitCode, MigraineFhirError, UsageError
from migrainefhir.export.hadoop import is_hadoop_uri, local_path
from migrainefhir.export.job import Engine, ExtraResources, export
from migrainefhir.export.options import ExportOptions, ExportResult
from migrainefhir.export.output import PRIVATE_DIR
from migrainefhir.export.shards import Shard, input_files
from migrainefhir.export.worker import ShardDone, ShardWorker, Task
from migrainefhir.input.intake import InputOptions
from migrainefhir.validate import ResourceValidator

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# For tests of a failing task: the number of the shard whose task raises (read by the driver
# when it submits the job, and sent with the tasks).
FAIL_SHARD_VARIABLE = "MIGRAINEFHIR_SPARK_FAIL_SHARD"

DEFAULT_MASTER = "local[*]"

INSTALL_HINT = "pip install 'migrainefhir[spark]'"

# The master URLs Spark 4 knows (Spark's "Master URLs" documentation); anything else would
# only fail after the JVM has started, with a Java stack trace.
MASTER_URL = re.compile(
    r"local(\[(\*|[1-9][0-9]*)(,[1-9][0-9]*)?\])?|local-cluster\[.+\]|yarn|(spark|k8s)://.+"
)


class SparkJobFailed(MigraineFhirError):
    """The Spark job failed (a task raised, executors were lost, Spark could not start); the
    previous output is intact."""

    exit_code = ExitCode.UNREADABLE


def export_on_spark(
    spark: SparkSession,
    paths: Sequence[str],
    input_options: InputOptions,
    options: ExportOptions,
    on_record: Callable[[int, int | None], None] | None = None,
    extra_resources: ExtraResources | None = None,
) -> ExportResult:
    """Export every input record, the shards run as the tasks of a Spark job on `spark`.

    The same output (byte for byte) and ExportResult as `export` with the local engine.
    NDJSON inputs are cut into about as many ranges as Spark has cores (its default
    parallelism), whatever `options.jobs` says. Inputs may be file system URIs (hdfs://,
    s3a://, abfss://, ...), and so may the output and the previous export
    (`options.out_uri`, `options.previous_uri`): spark_uris.py runs those exports.
    """
    parallelism = max(1, spark.sparkContext.defaultParallelism)
    options = replace(
        options,
        jobs=parallelism,
        engine="spark",
        out=_local(options.out),
        previous=None if options.previous is None else _local(options.previous),
    )
    paths = [local_path(path) for path in paths]
    if _any_uri(paths, options):
        from migrainefhir.export.spark_uris import export_with_uris

        return export_with_uris(spark, paths, input_options, options, on_record, extra_resources)
    engine = Engine(run=partial(_run_on_spark, spark))
    return export(paths, input_options, options, on_record, extra_resources, engine)


def _local(folder: Path) -> Path:
    """A folder given as a file: URI, as its path (Path("file:///x") reads "file:/x")."""
    return Path(local_path(str(folder)))


def _any_uri(paths: Sequence[str], options: ExportOptions) -> bool:
    """Whether a path only Spark reaches is involved (spark_uris.py)."""
    return any(is_hadoop_uri(path) for path in paths) or (
        options.out_uri is not None or options.previous_uri is not None
    )


def export_with_spark_engine(
    paths: Sequence[str],
    input_options: InputOptions,
    options: ExportOptions,
    on_record: Callable[[int, int | None], None] | None = None,
    extra_resources: ExtraResources | None = None,
) -> ExportResult:
    """`export --engine spark`: the running SparkSession (a notebook, spark-submit) or a new one
    on `options.spark_master` (default local[*]), stopped again at the end."""
    if importlib.util.find_spec("pyspark") is None:
        raise UsageError(f"--engine spark needs pyspark: {INSTALL_HINT}")
    master = options.spark_master
    if master is not None and not MASTER_URL.fullmatch(master):
        raise UsageError(
            f"--spark-master {master!r} is not a Spark master URL (local[N], local[*], "
            "spark://HOST:PORT, yarn, k8s://URL)"
        )
    paths = [local_path(path) for path in paths]
    if not _any_uri(paths, options):
        input_files(paths, input_options.read)  # unreadable paths fail before Spark starts
    spark, started = _session(options.spark_master)
    try:
        return export_on_spark(spark, paths, input_options, options, on_record, extra_resources)
    finally:
        if started:
            spark.stop()


def start_session(
    master: str = DEFAULT_MASTER, settings: Mapping[str, str] | None = None
) -> SparkSession:
    """A new SparkSession on `master`, whose Python workers run this Python (and so see the
    packages installed beside migrainefhir); `settings` are more Spark settings (such as
    `spark.hadoop.*` for a file system)."""
    if not _java_found():
        raise UsageError(
            "--engine spark needs Java 17 or later: set JAVA_HOME or put java on the PATH"
        )
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("migrainefhir export").master(master)
    builder = builder.config("spark.ui.showConsoleProgress", "false")  # ours is on stderr
    for key, value in (settings or {}).items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:
        raise SparkJobFailed(f"Spark could not start: {reason(exc)}") from exc


def _session(master: str | None) -> tuple[SparkSession, bool]:
    """(the session, whether it was started here)."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    if master is None and "PYSPARK_GATEWAY_PORT" in os.environ:  # under spark-submit
        try:
            return SparkSession.builder.getOrCreate(), True
        except Exception as exc:
            raise SparkJobFailed(f"Spark could not start: {reason(exc)}") from exc
    return start_session(master or DEFAULT_MASTER), True


def _java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return True
    return shutil.which("java") is not None


def _run_on_spark(
    spark: SparkSession, shards: list[Shard], task: Task, _validator: ResourceValidator
) -> Generator[ShardDone, None, None]:
    """Every shard run by a Spark task (one partition per shard); the results in input order.

    A generator, like worker.run_shards: the job starts when the merge asks for the first."""
    if not shards:
        return
    # Files by absolute path: an executor's working folder is not the driver's. Sources keep
    # the names given (Shard.name), so the output does not change.
    shards = [replace(shard, file=os.path.abspath(shard.file)) for shard in shards]
    run = partial(_run_partition, task, failing_shard())
    context = spark.sparkContext
    context.setJobDescription(f"migrainefhir export: {len(shards)} shards")
    try:
        done: list[ShardDone] = (
            context.parallelize(shards, len(shards)).mapPartitions(run).collect()
        )
    except Exception as exc:
        raise SparkJobFailed(f"the Spark job failed, nothing was written: {reason(exc)}") from exc
    finally:
        context.setJobDescription(None)  # type: ignore[arg-type]
    if [d.shard for d in done] != shards:  # one shard per partition, in order: a Spark promise
        raise SparkJobFailed("the Spark job did not return one result per shard, in order")
    yield from done


# --- in a Spark task (an executor's Python worker) --------------------------------------------


def _run_partition(task: Task, fail: int | None, shards: Iterable[Shard]) -> Iterator[ShardDone]:
    """The partition's shard through the local engine's worker; its part files go to a folder
    of this task attempt's own (a retried or speculative attempt never meets another's files)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    attempt = context.attemptNumber() if context is not None else 0
    for shard in shards:
        if shard.number == fail:
            raise injected_failure(shard)
        work = task.work / f"attempt-{shard.number:06d}-{attempt}"
        work.mkdir(mode=PRIVATE_DIR)
        yield ShardWorker(replace(task, work=work)).run(shard)


def failing_shard() -> int | None:
    """For tests: the shard whose task is to raise (FAIL_SHARD_VARIABLE), read by the driver
    and sent with the tasks."""
    fail = os.environ.get(FAIL_SHARD_VARIABLE)
    return int(fail) if fail else None


def injected_failure(shard: Shard) -> RuntimeError:
    return RuntimeError(f"failure injected into shard {shard.number} ({FAIL_SHARD_VARIABLE})")


def reason(exc: BaseException) -> str:
    """One line for the error message: the Python exception a task raised, when there is one
    (the last line of its traceback), else the first line of the exception."""
    text = str(exc)
    lines = text.splitlines()
    if "Traceback (most recent call last)" in text:
        after = text.split("Traceback (most recent call last)", 1)[1].splitlines()
        for line in after[1:]:
            if line and not line[0].isspace():
                return line.strip()
    return lines[0].strip() if lines else type(exc).__name__
