"""The export on Spark with file system URIs: inputs, `--out` and `--previous` on any file
system Spark reaches through Hadoop (hdfs://, s3a://, abfss://, gs://, viewfs://, ...).

A task's Python has no client for such file systems, so Spark's own file sources read the
inputs, and the shards follow Spark's splits:

- an NDJSON file larger than two splits is read by Spark's text source in splits of
  SPLIT_BYTES, one per partition, each line as its raw bytes (cut at "\\n" only, as the local
  reader does). A first, small Spark job counts each split's lines, so each split knows the
  file's own number of its first line; each split is a shard.
- every other file (JSON, CSV, a smaller NDJSON file, one that starts with a UTF-16/32 byte
  order mark or with what looks like export output, a compressed one) is one shard, read whole
  by Spark's binaryFile source (so at most 2 GiB).

Each task runs the local worker's code (ShardWorker: intake -> convert -> validate -> part
files) on the records of its shards, in a temporary folder of its own, and returns the part
files' bytes. The driver writes them into its staging folder and merges them in input order
with the same Merger, so the output is the local engine's: the same bytes for the same input.

The driver asks for the tasks' answers in waves of a few partitions per core (at most
WAVE_INPUT_BYTES of input), one wave ahead of the merge, so it holds two waves' answers at a
time, whatever the size of the input. A remote `--out` is built in a private folder on the
driver (TMPDIR) and put in place at the end (hadoop.publish); a remote `--previous` is copied
there first. The merge itself runs on the driver, on one core, as for every export.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import queue
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from threading import Event
from typing import TYPE_CHECKING, Any

from migrainefhir.errors import UsageError
from migrainefhir.export.hadoop import (
    HadoopFiles,
    InputFile,
    check_output,
    download_previous,
    expand_inputs,
    publish,
    same_file,
)
from migrainefhir.export.job import Engine, ExtraResources, export
from migrainefhir.export.options import ExportOptions, ExportResult
from migrainefhir.export.output import PRIVATE_DIR, write_private
from migrainefhir.export.shards import (
    MAX_SHARD_BYTES,
    Shard,
    read_given_file,
    read_given_lines,
)
from migrainefhir.export.spark import SparkJobFailed, failing_shard, injected_failure, reason
from migrainefhir.export.worker import ShardDone, ShardWorker, Task
from migrainefhir.input.intake import InputOptions
from migrainefhir.input.readers import (
    FORMAT_BY_EXTENSION,
    MAX_LINE_BYTES,
    ReadOptions,
    _export_ndjson,
    _wide_bom,
)
from migrainefhir.validate import ResourceValidator

if TYPE_CHECKING:
    from pyspark import RDD
    from pyspark.sql import DataFrame, SparkSession

# The bytes of an NDJSON split: a Spark task's share of a large file (the local engine's
# largest shard). Read when the export runs, so tests can make it small.
SPLIT_BYTES = MAX_SHARD_BYTES
# At most this much input per wave of tasks (but at least one partition per core): what the
# driver holds of the tasks' answers is a few times this, twice (one wave ahead).
WAVE_INPUT_BYTES = 256 * 1024 * 1024
# Names Hadoop decompresses when it reads them; the local reader reads their bytes as they are,
# so these files are read whole, as bytes, here too.
_COMPRESSED = frozenset({".gz", ".bz2", ".deflate", ".lz4", ".snappy", ".zst"})


def export_with_uris(
    spark: SparkSession,
    paths: Sequence[str],
    input_options: InputOptions,
    options: ExportOptions,
    on_record: Callable[[int, int | None], None] | None = None,
    extra_resources: ExtraResources | None = None,
) -> ExportResult:
    """`export_on_spark` when an input, `options.out_uri` or `options.previous_uri` is a file
    system URI; the same output and ExportResult as the local engine."""
    if extra_resources is not None:
        raise UsageError(
            "--with-outcomes reads the inputs again on this machine, so it does not go with "
            "file system URIs: run `migrainefhir report` on a local copy of the inputs"
        )
    files = HadoopFiles(spark)
    route = _Route(spark, files)
    inputs = route.expand(paths, input_options.read)  # unreadable paths fail before any work
    if options.out_uri is not None:
        check_output(files, options.out_uri, inputs)
    with _private_folder() as here:
        if options.previous_uri is not None:
            download_previous(files, options.previous_uri, here / "previous")
            options = replace(options, previous=here / "previous", previous_uri=None)
        out = options.out if options.out_uri is None else here / "out"
        result = export(
            paths, input_options, replace(options, out=out), on_record, None, route.engine()
        )
        if options.out_uri is not None and result.written:
            publish(files, out, options.out_uri)
    return result


@contextlib.contextmanager
def _private_folder() -> Iterator[Path]:
    """A private folder on the driver (TMPDIR) for what is built or copied here; removed at
    the end, also when the run fails or is stopped by a signal."""
    folder = Path(tempfile.mkdtemp(prefix="migrainefhir-spark-"))
    try:
        os.chmod(folder, PRIVATE_DIR)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _Route:
    """The Engine of an export whose inputs Spark reads: files, plan, run and opener."""

    def __init__(self, spark: SparkSession, files: HadoopFiles) -> None:
        self.spark = spark
        self.files = files
        self.inputs: list[InputFile] = []

    def engine(self) -> Engine:
        return Engine(files=self.names, plan=self.plan, run=self.run, opener=self.files.open)

    def expand(self, paths: Sequence[str], read: ReadOptions) -> list[InputFile]:
        self.inputs = expand_inputs(self.files, paths, read.input_format)
        return self.inputs

    def names(self, paths: Sequence[str], read: ReadOptions) -> list[str]:
        if not self.inputs:
            self.expand(paths, read)
        return [each.name for each in self.inputs]

    # --- the plan --------------------------------------------------------------------------

    def plan(
        self, names: list[str], read: ReadOptions, _jobs: int, _stdin: str | None
    ) -> list[Shard]:
        """The shards in input order: whole files, and the splits of large NDJSON files with
        their first line numbers (counted by a Spark job)."""
        split = [each for each in self.inputs if self._is_split(each, read)]
        lines = self._lines_per_split(split) if split else {}
        shards: list[Shard] = []
        for each in self.inputs:
            if each not in split:
                shards.append(Shard(len(shards), each.uri, each.name))
                continue
            first = 1
            for start, length, count in lines.get(each.uri, []):
                end = start + length
                shards.append(Shard(len(shards), each.uri, each.name, start, end, first, count))
                first += count
        return shards

    def _is_split(self, each: InputFile, read: ReadOptions) -> bool:
        """Whether an input is read in splits: a large NDJSON file of input records (decided,
        as the local reader does, by its first non-blank line)."""
        suffix = os.path.splitext(each.name)[1].lower()
        form = read.input_format or FORMAT_BY_EXTENSION.get(suffix)
        if form != "ndjson" or suffix in _COMPRESSED or each.size <= 2 * SPLIT_BYTES:
            return False
        for size in (64 * 1024, MAX_LINE_BYTES + 1):  # a record's line is rarely long
            start = self.files.read_start(each.uri, size)
            if _wide_bom(start[:4]) is not None:
                return False
            complete = start.split(b"\n")[:-1]  # the last piece may be cut short
            first = next((line for line in complete if line.strip()), None)
            if first is not None:
                return _export_ndjson(io.BytesIO(first + b"\n")) is None
        return False

    def _lines_per_split(self, split: list[InputFile]) -> dict[str, list[tuple[int, int, int]]]:
        """(start, length, lines) of every split of each file, in file order."""
        with _split_settings(self.spark):
            rows = (
                _lines_frame(self.spark, [each.uri for each in split])
                .groupBy("file", "start", "length")
                .count()
                .collect()
            )
        known = {each.uri for each in split}
        found: dict[str, list[tuple[int, int, int]]] = {}
        for row in rows:
            file = same_file(row["file"])
            if file not in known:
                raise SparkJobFailed(f"Spark read {row['file']}, which is not an input")
            found.setdefault(file, []).append((row["start"], row["length"], row["count"]))
        for each in split:  # every split file has lines: its first one was looked at
            if each.uri not in found:
                raise SparkJobFailed(f"Spark read no lines of {each.name}")
        return {uri: sorted(splits) for uri, splits in found.items()}

    # --- the run ---------------------------------------------------------------------------

    def run(
        self, shards: list[Shard], task: Task, _validator: ResourceValidator
    ) -> Generator[ShardDone, None, None]:
        """Every shard run by a Spark task; the finished shards in input order."""
        empty = {each.uri for each in self.inputs if each.size == 0}
        done = self._run_empty([shard for shard in shards if shard.file in empty], task)
        split = {(shard.file, shard.start): shard for shard in shards if not shard.whole_file}
        whole = {s.file: s for s in shards if s.whole_file and s.file not in empty}
        fail = failing_shard()
        parts: list[RDD[Any]] = []
        with _split_settings(self.spark):
            if split:
                frame = _lines_frame(self.spark, sorted({file for file, _ in split}))
                parts.append(frame.rdd.mapPartitions(partial(_run_splits, task, fail, split)))
            if whole:
                frame = _files_frame(self.spark, list(whole))
                parts.append(frame.rdd.mapPartitions(partial(_run_files, task, fail, whole)))
            if not parts:  # only empty files
                yield from _in_order(shards, task.work, iter(()), done)
                return
            tasks = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
            # closing: when the merge stops early (a failure, a signal), the running wave is
            # cancelled now, while the session is still there, not when it is collected
            with contextlib.closing(_waves(self.spark, tasks)) as waves:
                yield from _in_order(shards, task.work, waves, done)

    def _run_empty(self, shards: list[Shard], task: Task) -> dict[int, Path]:
        """Empty files, run here: Spark's file sources skip files of 0 bytes, and an empty
        file still gives its notice (read.no-records) or its reject, as locally."""
        if not shards:
            return {}
        worker = ShardWorker(task)
        read = task.input_options.read
        return {s.number: worker.run(s, read_given_file(s, b"", read)).folder for s in shards}


def _in_order(
    shards: list[Shard],
    work: Path,
    waves: Iterator[list[tuple[int, list[tuple[str, bytes]]]]],
    done: dict[int, Path],
) -> Iterator[ShardDone]:
    """Each wave's answers written into the staging folder; the shards done so far (`done`:
    those already there), in order."""
    position = 0
    for answers in itertools.chain([[]], waves):  # first, the shards already done
        for number, files in answers:
            done[number] = _write_parts(work / f"shard-{number:06d}", files)
        while position < len(shards) and shards[position].number in done:
            yield ShardDone(shards[position], done.pop(shards[position].number))
            position += 1
    if position < len(shards):
        raise SparkJobFailed(
            f"Spark gave no result for {shards[position].describe()}: did the input change "
            "while the export ran?"
        )


def _write_parts(folder: Path, files: list[tuple[str, bytes]]) -> Path:
    folder.mkdir(mode=PRIVATE_DIR)
    for name, packed in files:
        write_private(folder / name, zlib.decompress(packed))
    return folder


def _waves(
    spark: SparkSession, tasks: RDD[Any]
) -> Generator[list[tuple[int, list[tuple[str, bytes]]]], None, None]:
    """The tasks' answers, a wave of partitions at a time; a thread runs the next wave while
    the merge works on this one. Closing the iterator cancels the running wave."""
    context = spark.sparkContext
    total = tasks.getNumPartitions()
    cores = max(1, context.defaultParallelism)
    size = max(cores, min(2 * cores, WAVE_INPUT_BYTES // SPLIT_BYTES))
    group = f"migrainefhir-{uuid.uuid4()}"
    answers: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = Event()

    def run_waves() -> None:
        context.setJobGroup(group, f"migrainefhir export: {total} partitions", True)
        try:
            for first in range(0, total, size):
                if stop.is_set():
                    return
                wave = list(range(first, min(first + size, total)))
                answers.put(("wave", context.runJob(tasks, _unchanged, wave)))
            answers.put(("end", None))
        except Exception as exc:
            answers.put(("failed", exc))

    from pyspark import InheritableThread  # its JVM thread ends with it (pinned threads)

    thread = InheritableThread(target=run_waves, name="migrainefhir-spark-waves", daemon=True)
    thread.start()
    over = False  # every wave answered, or the job failed: nothing left to cancel
    try:
        while True:
            kind, value = answers.get()
            over = kind != "wave"
            if kind == "end":
                return
            if kind == "failed":
                raise SparkJobFailed(
                    f"the Spark job failed, nothing was written: {reason(value)}"
                ) from value
            yield value
    finally:
        stop.set()
        if not over:
            context.cancelJobGroup(group)
        while thread.is_alive():  # let a blocked put finish, so the thread can end
            with contextlib.suppress(queue.Empty):
                answers.get(timeout=0.1)


def _unchanged(rows: Iterable[Any]) -> Iterable[Any]:
    return rows


@contextlib.contextmanager
def _split_settings(spark: SparkSession) -> Iterator[None]:
    """Spark's file sources cut the inputs into splits of SPLIT_BYTES, one per partition,
    whatever the number of cores (so the counting job and the run see the same splits), and
    fail on a missing or corrupt file rather than skip it (nothing may be lost). The session's
    own settings come back afterwards."""
    settings = {
        "spark.sql.files.maxPartitionBytes": str(SPLIT_BYTES),
        "spark.sql.files.openCostInBytes": str(SPLIT_BYTES),
        "spark.sql.files.ignoreCorruptFiles": "false",
        "spark.sql.files.ignoreMissingFiles": "false",
    }
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, earlier in before.items():
            if earlier is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, earlier)


def _lines_frame(spark: SparkSession, uris: list[str]) -> DataFrame:
    """Every line of the files, as (file, split start, split length, line bytes)."""
    from pyspark.sql import functions as F

    frame = spark.read.format("text").option("lineSep", "\n").load(uris)
    return frame.select(
        F.col("_metadata.file_path").alias("file"),
        F.col("_metadata.file_block_start").alias("start"),
        F.col("_metadata.file_block_length").alias("length"),
        F.col("value").cast("binary").alias("line"),
    )


def _files_frame(spark: SparkSession, uris: list[str]) -> DataFrame:
    """Every file whole, as (file, bytes)."""
    return spark.read.format("binaryFile").load(uris).select("path", "content")


# --- in a Spark task (an executor's Python worker) --------------------------------------------


def _run_splits(
    task: Task, fail: int | None, shards: dict[tuple[str, int], Shard], rows: Iterable[Any]
) -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    """The partition's splits (runs of rows of one file and split start), each as a shard."""
    groups = itertools.groupby(rows, key=lambda row: (same_file(row[0]), row[1]))

    def given() -> Iterator[tuple[Shard, Iterator[Any]]]:
        for (file, start), group in groups:
            shard = shards.get((file, start))
            if shard is None:
                raise RuntimeError(
                    f"Spark read a part of {file} (from byte {start}) that was not planned: "
                    "did the input change while the export ran?"
                )
            yield shard, read_given_lines(shard, (bytes(row[3]) for row in group))

    yield from _run_given(task, fail, given())


def _run_files(
    task: Task, fail: int | None, shards: dict[str, Shard], rows: Iterable[Any]
) -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    """The partition's whole files, each a shard."""
    read = task.input_options.read

    def given() -> Iterator[tuple[Shard, Iterator[Any]]]:
        for file, content in rows:
            shard = shards.get(same_file(file))
            if shard is None:
                raise RuntimeError(f"Spark read {file}, which was not planned")
            yield shard, read_given_file(shard, bytes(content), read)

    yield from _run_given(task, fail, given())


def _run_given(
    task: Task, fail: int | None, given: Iterator[tuple[Shard, Iterator[Any]]]
) -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    """Each shard through the local worker's code, in a private temporary folder of this
    task's own (removed at the end, also when the task fails or is cancelled); its part files
    as (name, bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="migrainefhir-task-", dir=_task_temp()))
    try:
        worker = ShardWorker(replace(task, work=folder))
        for shard, raw in given:
            if shard.number == fail:
                raise injected_failure(shard)
            done = worker.run(shard, raw)
            files = sorted(done.folder.iterdir())
            yield shard.number, [(path.name, _packed(path.read_bytes())) for path in files]
            shutil.rmtree(done.folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _packed(data: bytes) -> bytes:
    """A part file as it travels to the driver: FHIR JSON is about 16 times the size of its
    input and compresses about tenfold, and every byte of a task's answer is held by the
    executor's and the driver's JVM on the way (their heap is what limits a wave)."""
    return zlib.compress(data, 1)


def _task_temp() -> str | None:
    """Spark's own local folder for this application on the executor (Spark removes it when
    the application ends), else TMPDIR."""
    try:
        from pyspark import SparkFiles

        return SparkFiles.getRootDirectory()
    except Exception:
        return None
