"""`export`: accepted records -> validated FHIR resources -> Bundles or Bulk-Data NDJSON.

The gate: every resource of a record is validated before anything is written; a record any of
whose resources fails goes, verbatim, with its problems, to rejects.ndjson (and its problems as
an OperationOutcome to OperationOutcome.ndjson). Nothing is lost: records read = exported +
rejected + skipped (skipped only with --since), written to summary.json.

Streaming and parallel. The input is cut into shards (shards.py: NDJSON byte ranges, whole
JSON and CSV files). A worker (worker.py) reads its own shard, checks, converts and validates
each record and writes part files (parts.py): an index line per record, the record's resources
(per type, or per patient partition for Bundles) and its reject lines. The parent merges the
part files in input order (merge.py), so the output is the same bytes whatever the number of
workers; it is also where the run-wide checks happen: duplicate ids (in input order, exactly as
a single pass), a Patient stub for every patient without a patient record, and the grouping of
Bundles per patient. The merge writes through the sinks (sinks.py: NDJSON files and manifest,
Bundles, rejects). Built resources never cross a process boundary; only file names do.
workers.py runs the worker processes (and turns a killed worker into an error, not a hang);
`jobs=1` runs the same worker code in the parent (no multiprocessing).

Output is written into a staging folder and swapped in at the end (output.py), and is the same
bytes for the same input and options. `--out` must be new, empty or a previous export, and
never an input's folder (target.py): the swap deletes only what a previous export wrote.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrainefhir.errors import UsageError
from migrainefhir.export.deletions import check_previous, write_deletions
from migrainefhir.export.hadoop import is_hadoop_uri
from migrainefhir.export.merge import Merger
from migrainefhir.export.options import ExportOptions, ExportResult
from migrainefhir.export.output import (
    PRIVATE_DIR,
    open_private,
    staged_directory,
    write_private,
)
from migrainefhir.export.shards import Opener, Shard, input_files, plan_shards
from migrainefhir.export.sinks import dumps_pretty
from migrainefhir.export.target import checked_target
from migrainefhir.export.worker import ShardDone, Task, run_shards
from migrainefhir.input.intake import InputOptions
from migrainefhir.input.readers import STDIN, ReadOptions
from migrainefhir.problems import Problem, TalliedReport
from migrainefhir.validate import ResourceValidator

# A later stage's resources added to the export after every record (`export --with-outcomes`):
# called with the input files (standard input as its private copy) once the records are
# merged; returns (source patient id, validated resources) pairs and the problems found.
ExtraResources = Callable[[list[str]], tuple[list[tuple[str, list[dict[str, Any]]]], list[Problem]]]
# What runs the shards: the finished shards in input order (worker.run_shards runs them here,
# in this process or in forked workers; spark.py runs them as the tasks of a Spark job).
ShardRunner = Callable[[list[Shard], Task, ResourceValidator], Generator[ShardDone, None, None]]


@dataclass(frozen=True, slots=True)
class Engine:
    """Where an export's input files are found, cut into shards and run: this machine's disk
    and workers (the defaults), or Spark (spark.py; spark_uris.py for file system URIs). The
    merge and the output are the same whatever the engine."""

    # The input files, checked before anything is written (names as Sources give them).
    files: Callable[[Sequence[str], ReadOptions], list[str]] = input_files
    # The shards of those files (the last argument: standard input's private copy).
    plan: Callable[[list[str], ReadOptions, int, str | None], list[Shard]] = plan_shards
    run: ShardRunner = run_shards
    # Opens an input file again (for a duplicate's verbatim text); None: a local file.
    opener: Opener | None = None


class _StrictAbort(Exception):
    """--strict and a record was rejected: discard the staged output."""


def export(
    paths: Sequence[str],
    input_options: InputOptions,
    options: ExportOptions,
    on_record: Callable[[int, int | None], None] | None = None,
    extra_resources: ExtraResources | None = None,
    engine: Engine | None = None,
) -> ExportResult:
    """Export every input record; returns what happened. Writes nothing else than options.out.

    `extra_resources`, when given, adds validated resources of patients the export holds
    (the export stage does not know what they are; pipeline.py wires in the outcomes).
    `engine` finds and runs the shards (default: this machine's, or Spark for engine "spark").
    """
    if engine is None and options.engine == "spark":
        from migrainefhir.export.spark import export_with_spark_engine

        return export_with_spark_engine(paths, input_options, options, on_record, extra_resources)
    if engine is None:
        _refuse_uris(paths, options)
    engine = engine or Engine()
    files = engine.files(paths, input_options.read)  # unreadable paths fail before any output
    if options.previous is not None:
        check_previous(options.previous, options)
    target = checked_target(options.out, paths)  # never an input's folder, never foreign files
    result = ExportResult(TalliedReport())
    try:
        with staged_directory(target) as staging:
            _export_into(
                staging, files, input_options, options, result, on_record, extra_resources, engine
            )
            if options.strict and result.report.counts.total_rejected:
                raise _StrictAbort
    except _StrictAbort:
        result.written = False
    return result


def _refuse_uris(paths: Sequence[str], options: ExportOptions) -> None:
    """UsageError for a file system URI given to the local engine (only Spark reaches them)."""
    uris = [path for path in paths if is_hadoop_uri(path)]
    uris += [uri for uri in (options.out_uri, options.previous_uri) if uri is not None]
    if uris:
        raise UsageError(
            f"{uris[0]}: file system URIs (hdfs://, s3a://, ...) are read and written "
            "through Spark: add --engine spark"
        )


def _export_into(
    staging: Path,
    files: list[str],
    input_options: InputOptions,
    options: ExportOptions,
    result: ExportResult,
    on_record: Callable[[int, int | None], None] | None,
    extra_resources: ExtraResources | None,
    engine: Engine,
) -> None:
    work = staging / ".work"
    work.mkdir(mode=PRIVATE_DIR)
    stdin_copy = _copy_stdin(work) if STDIN in files else None
    shards = engine.plan(files, input_options.read, options.jobs, stdin_copy)
    task = Task(input_options, options, work)
    # Every shard's records, or more (its lines): what the duplicate-id table must hold.
    expected_ids = sum(shard.most_records or 0 for shard in shards)
    # The records to come for the progress line: the lines counted, unless a file is JSON.
    known = all(shard.most_records is not None for shard in shards)
    expected = expected_ids if known else None
    merger = Merger(staging, task, result, on_record, expected_ids, expected, engine.opener)
    try:
        # closing: the workers are stopped at once when the merge fails or a signal stops the
        # run (not whenever the generator happens to be collected)
        with contextlib.closing(engine.run(shards, task, merger.validator)) as finished:
            for done in finished:
                merger.add(done)
        if extra_resources is not None:
            inputs = [stdin_copy if name == STDIN and stdin_copy else name for name in files]
            merger.add_extra(*extra_resources(inputs))
        merger.finish()
    finally:
        merger.close()  # also when writing failed: no file is left open
    shutil.rmtree(work)
    if options.previous is not None:
        key = f"{options.source_system}|{options.format}"
        result.deleted = write_deletions(staging, options.previous, options, key)
        write_private(staging / "summary.json", dumps_pretty(result.summary()))


def _copy_stdin(work: Path) -> str:
    """Standard input, copied to a private file, so it can be read like any input file."""
    path = work / "stdin"
    with open_private(path) as handle:
        shutil.copyfileobj(sys.stdin.buffer, handle, 1024 * 1024)
    return str(path)
