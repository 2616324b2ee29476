"""`export`: accepted records -> validated FHIR resources -> Bundles or Bulk-Data NDJSON.

The gate: every resource of a record is validated before anything is written; a record any of
whose resources fails goes, verbatim, with its problems, to rejects.ndjson (and its problems as
an OperationOutcome to OperationOutcome.ndjson). Nothing is lost: records read = exported +
rejected + skipped (skipped only with --since), written to summary.json.

Streaming and parallel. The input is cut into shards (shards.py: NDJSON byte ranges, whole
JSON and CSV files). A worker reads its own shard, checks, converts and validates each record
and writes part files: an index line per record, the record's resources (per type, or per
patient partition for Bundles) and its reject lines. The parent merges the part files in input
order, so the output is the same bytes whatever the number of workers; it is also where the
run-wide checks happen: duplicate ids (in input order, exactly as a single pass), a Patient
stub for every patient without a patient record, and the grouping of Bundles per patient.
Built resources never cross a process boundary; only file names do. workers.py runs the
worker processes (and turns a killed worker into an error, not a hang); `jobs=1` runs the same
worker code in the parent (no multiprocessing).

Output is written into a staging folder and swapped in at the end (output.py), and is the same
bytes for the same input and options.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson

from migrainefhir import __version__
from migrainefhir.bundle import collection_bundle, transaction_bundle
from migrainefhir.convert import ConvertContext, patient_stub
from migrainefhir.errors import UsageError
from migrainefhir.gate import Converted, convert_and_validate_many
from migrainefhir.ids import DEFAULT_SOURCE_SYSTEM, patient_id
from migrainefhir.intake import CheckedRecord, CompactDuplicateIds, InputOptions, check_each
from migrainefhir.output import PRIVATE_DIR, open_private, staged_directory, write_private
from migrainefhir.pacing import CollectionPacer
from migrainefhir.problems import Problem, Report, Severity, Source, has_errors
from migrainefhir.readers import STDIN
from migrainefhir.records import PatientRecord, Record
from migrainefhir.shards import Shard, input_files, plan_shards, read_shard, read_whole_file
from migrainefhir.validate import ResourceValidator, validate_record_resources
from migrainefhir.validate.outcome import operation_outcome
from migrainefhir.workers import run_in_order

FORMATS = ("ndjson", "transaction", "collection")
WRITE_MODES = ("put", "conditional")
VALIDATION_MODES = ("full", "fast")

# Azure Health Data Services accepts at most 500 entries per bundle; HAPI and Google accept
# more, so 500 suits the common servers (fhir-conventions.md section 3).
DEFAULT_MAX_ENTRIES = 500
# The Bulk Data IG's own example limit (STU2 "Server Capability Documentation").
DEFAULT_MAX_FILE_RESOURCES = 100_000
# Bundle formats group resources by patient through this many spill files, so memory holds
# one partition at a time, not the whole export.
PATIENT_PARTITIONS = 64


@dataclass(frozen=True, slots=True)
class ExportOptions:
    out: Path
    export_time: datetime
    format: str = "ndjson"
    source_system: str = DEFAULT_SOURCE_SYSTEM
    since: datetime | None = None
    write_mode: str = "put"
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_file_resources: int = DEFAULT_MAX_FILE_RESOURCES
    gzip: bool = False
    strict: bool = False
    base_url: str | None = None
    jobs: int = 1
    validation: str = "full"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.write_mode not in WRITE_MODES:
            raise UsageError(f"unknown write mode {self.write_mode!r}")
        if self.max_entries < 2:
            raise UsageError("--max-entries must be at least 2")
        if self.max_file_resources < 1:
            raise UsageError("--max-file-resources must be at least 1")
        if self.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        if self.validation not in VALIDATION_MODES:
            raise UsageError(f"unknown validation mode {self.validation!r}; choose full or fast")


@dataclass(slots=True)
class ExportResult:
    report: Report
    resources: dict[str, int] = field(default_factory=dict)
    written: bool = True

    def summary(self) -> dict[str, Any]:
        counts = self.report.counts
        return {
            "records_read": counts.total_read,
            "records_exported": counts.total_accepted,
            "records_rejected": counts.total_rejected,
            "records_skipped": counts.total_skipped,
            "by_record_type": {
                kind: {
                    "read": counts.read.get(kind, 0),
                    "exported": counts.accepted.get(kind, 0),
                    "rejected": counts.rejected.get(kind, 0),
                    "skipped": counts.skipped.get(kind, 0),
                }
                for kind in sorted(counts.read)
            },
            "resources": dict(sorted(self.resources.items())),
        }


class _StrictAbort(Exception):
    """--strict and a record was rejected: discard the staged output."""


def export(
    paths: Sequence[str],
    input_options: InputOptions,
    options: ExportOptions,
    on_record: Callable[[int], None] | None = None,
) -> ExportResult:
    """Export every input record; returns what happened. Writes nothing else than options.out."""
    files = input_files(paths, input_options.read)  # unreadable paths fail before any output
    result = ExportResult(Report())
    try:
        with staged_directory(options.out) as staging:
            _export_into(staging, files, input_options, options, result, on_record)
            if options.strict and result.report.counts.total_rejected:
                raise _StrictAbort
    except _StrictAbort:
        result.written = False
    return result


def _export_into(
    staging: Path,
    files: list[str],
    input_options: InputOptions,
    options: ExportOptions,
    result: ExportResult,
    on_record: Callable[[int], None] | None,
) -> None:
    work = staging / ".work"
    work.mkdir(mode=PRIVATE_DIR)
    stdin_copy = _copy_stdin(work) if STDIN in files else None
    shards = plan_shards(files, input_options.read, options.jobs, stdin_copy)
    task = _Task(input_options, options, work)
    # Every shard's records, or more (its lines): what the duplicate-id table must hold.
    expected_ids = sum(shard.most_records or 0 for shard in shards)
    merger = _Merger(staging, task, result, on_record, expected_ids)
    try:
        for done in _run_shards(shards, task, merger.validator):
            merger.add(done)
        merger.finish()
    finally:
        merger.close()  # also when writing failed: no file is left open
    shutil.rmtree(work)


def _copy_stdin(work: Path) -> str:
    """Standard input, copied to a private file, so it can be read like any input file."""
    path = work / "stdin"
    with open_private(path) as handle:
        shutil.copyfileobj(sys.stdin.buffer, handle, 1024 * 1024)
    return str(path)


# --- the shards: run in the parent (jobs=1) or in worker processes ----------------------------


@dataclass(frozen=True, slots=True)
class _Task:
    """What every worker needs to know (picklable: sent once to each worker)."""

    input_options: InputOptions
    options: ExportOptions
    work: Path


@dataclass(frozen=True, slots=True)
class _ShardDone:
    """A finished shard: where its part files are. Never the resources themselves."""

    shard: Shard
    folder: Path


def _run_shards(
    shards: list[Shard], task: _Task, validator: ResourceValidator
) -> Iterator[_ShardDone]:
    """The finished shards in input order (the merge can start as soon as the first is done)."""
    jobs = min(task.options.jobs, len(shards))
    if jobs <= 1:
        worker = _ShardWorker(task)
        for shard in shards:
            yield worker.run(shard)
        return
    _warm_up(validator)  # forked workers then share the imported modules and compiled schemas
    yield from run_in_order(shards, jobs, partial(_shard_runner, task), Shard.describe)


def _warm_up(validator: ResourceValidator) -> None:
    ctx = ConvertContext(DEFAULT_SOURCE_SYSTEM, datetime(2000, 1, 1).astimezone(), __version__)
    validator.validate(patient_stub("warm-up", ctx))


def _shard_runner(task: _Task) -> Callable[[Shard], _ShardDone]:
    """In a worker process: what runs each shard sent to it."""
    return _ShardWorker(task).run


# Records a worker converts and validates together (validate_records): enough for each compiled
# schema to stay in the CPU caches over a run of resources, few enough to keep memory flat.
_BATCH = 128
# A garbage collection after this many batches, none in between (pacing.py): 2,048 records,
# a few seconds of work, against under 1 ms for the collection (31 ms for the first).
_BATCHES_PER_COLLECTION = 16

# Index line fields: one JSON array per record (see _ShardWorker.run).
_EXPORTED, _REJECTED, _SKIPPED = "x", "r", "s"


class _ShardWorker:
    """Checks, converts and validates the records of one shard at a time into part files."""

    def __init__(self, task: _Task) -> None:
        self.task = task
        self.options = task.options
        self.ctx = ConvertContext(self.options.source_system, self.options.export_time, __version__)
        self.validator = ResourceValidator(self.options.validation)  # type: ignore[arg-type]

    def run(self, shard: Shard) -> _ShardDone:
        folder = self.task.work / f"shard-{shard.number:06d}"
        folder.mkdir(mode=PRIVATE_DIR)
        parts = _PartWriter(folder)
        try:
            records = enumerate(
                check_each(read_shard(shard, self.task.input_options.read), self.task.input_options)
            )
            with CollectionPacer(every=_BATCHES_PER_COLLECTION) as pacer:
                while batch := list(islice(records, _BATCH)):
                    self._batch(batch, shard.number, parts)
                    pacer.step()
        finally:
            parts.close()
        return _ShardDone(shard, folder)

    def _original(self, checked: CheckedRecord) -> object:
        return _rejected_original(checked.raw.original, self.task.input_options)

    def _batch(
        self, batch: list[tuple[int, CheckedRecord]], shard_number: int, parts: _PartWriter
    ) -> None:
        """A few records, converted and validated together, then written one by one, in order."""
        records = [self._to_convert(checked) for _, checked in batch]
        wanted = [
            (record, checked.raw.source)
            for record, (_, checked) in zip(records, batch, strict=True)
            if record is not None
        ]
        converted = iter(convert_and_validate_many(wanted, self.ctx, self.validator))
        for record, (ordinal, checked) in zip(records, batch, strict=True):
            result = next(converted) if record is not None else None
            self._one(checked, (shard_number << 32) | ordinal, parts, result)

    def _to_convert(self, checked: CheckedRecord) -> Record | None:
        """The record, when it is to be converted (accepted, and not skipped by --since)."""
        record = checked.record
        if record is None or _skipped_by_since(record.recorded_at, self.options.since):
            return None
        return record

    def _one(
        self,
        checked: CheckedRecord,
        sequence: int,
        parts: _PartWriter,
        converted: Converted | None,
    ) -> None:
        """One record -> one index line, and its resources or its reject lines."""
        record = checked.record
        key: list[str] | None = None
        more: list[Problem] = []
        patient: str | None = None
        counts: dict[str, list[int]] | None = None
        if record is None:
            outcome = _REJECTED
            parts.reject(checked.raw.source, self._original(checked), checked.problems)
        else:
            key = [record.record_type, record.record_id]
            if converted is None:
                outcome = _SKIPPED
            else:
                resources, more, texts = converted
                if has_errors(more):
                    outcome = _REJECTED
                    problems = checked.problems + more
                    parts.reject(checked.raw.source, self._original(checked), problems)
                else:
                    outcome = _EXPORTED
                    patient = record.patient_id
                    texts = texts or [_dumps(resource) for resource in resources]
                    if self.options.format == "ndjson":
                        counts = parts.resources(resources, texts)
                    else:
                        parts.partition(patient, sequence, texts)
        is_patient = isinstance(record, PatientRecord)
        parts.index(
            [
                checked.raw.record_type,
                outcome,
                key,
                patient,
                is_patient,
                counts,
                [p.to_json() for p in checked.problems] or None,
                [p.to_json() for p in more] or None,
                checked.raw.source.to_json(),
            ]
        )


# A type's part file gets a resource line of about 1 KB at a time: with the default 8 KiB
# buffer, a system call every few lines (2.4 us per line written; 1.3 us with this one). A
# shard has a handful of types; the 64 patient partitions keep the default buffer.
_TYPE_BUFFER = 256 * 1024


class _PartWriter:
    """The part files of one shard (opened on first use)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.handles: dict[str, IO[bytes]] = {}

    def _handle(self, name: str, buffer_size: int = -1) -> IO[bytes]:
        handle = self.handles.get(name)
        if handle is None:
            handle = open_private(self.folder / name, buffer_size=buffer_size)
            self.handles[name] = handle
        return handle

    def index(self, fields: list[Any]) -> None:
        self._handle("index").write(orjson.dumps(fields) + b"\n")

    def resources(
        self, resources: list[dict[str, Any]], texts: list[bytes]
    ) -> dict[str, list[int]]:
        """Each resource's orjson text to its type's part file; per type, [lines, bytes]."""
        counts: dict[str, list[int]] = {}
        for resource, text in zip(resources, texts, strict=True):
            kind = resource["resourceType"]
            line = text + b"\n"
            self._handle(f"type-{kind}", _TYPE_BUFFER).write(line)
            written = counts.get(kind)
            if written is None:
                counts[kind] = [1, len(line)]
            else:
                written[0] += 1
                written[1] += len(line)
        return counts

    def partition(self, patient: str, sequence: int, texts: list[bytes]) -> None:
        name = f"partition-{_partition_of(patient):02d}"
        self._handle(name).write(_partition_line(patient, sequence, texts))

    def reject(self, source: Source, original: object, problems: list[Problem]) -> None:
        line, outcome = _reject_lines(source, original, problems)
        self._handle("rejects").write(line)
        self._handle("outcomes").write(outcome)

    def close(self) -> None:
        _close_all(self.handles.values())


def _reject_lines(source: Source, original: object, problems: list[Problem]) -> tuple[bytes, bytes]:
    """The rejects.ndjson line (record verbatim with its problems) and its OperationOutcome."""
    line = {
        "source": source.to_json(),
        "record": original,
        "problems": [problem.to_json() for problem in problems],
    }
    return _dumps(line) + b"\n", _dumps(operation_outcome(problems)) + b"\n"


# What rejects.ndjson holds instead of the record in a de-identified (research) export: the
# original would carry the very names, ids and free text --deidentify strips. The source file
# and line still say where to find it.
WITHHELD_RECORD = "withheld: --deidentify"


def _rejected_original(original: object, input_options: InputOptions) -> object:
    return WITHHELD_RECORD if input_options.deidentifier is not None else original


def _copy_bytes(source: IO[bytes], target: IO[bytes], size: int) -> None:
    """The next `size` bytes of `source` to `target`, a mebibyte at a time."""
    while size:
        chunk = source.read(min(size, _COPY_CHUNK))
        if not chunk:
            raise AssertionError(f"a part file ended {size} bytes short of what its index says")
        target.write(chunk)
        size -= len(chunk)


_COPY_CHUNK = 1024 * 1024


def _copy_lines(source: IO[bytes], target: IO[bytes], lines: int) -> int:
    """The next `lines` lines of `source` to `target`, a mebibyte at a time; the bytes copied.
    The chunk that holds the last newline is cut after it, and `source` moved back to there."""
    copied = 0
    while lines:
        chunk = source.read(_COPY_CHUNK)
        if not chunk:
            raise AssertionError(f"a part file ended {lines} lines short of what its index says")
        newlines = chunk.count(b"\n")
        if newlines >= lines:
            end = 0
            for _ in range(lines):
                end = chunk.index(b"\n", end) + 1
            source.seek(end - len(chunk), os.SEEK_CUR)
            chunk = chunk[:end]
            newlines = lines
        target.write(chunk)
        copied += len(chunk)
        lines -= newlines
    return copied


def _partition_line(patient: str, sequence: int, texts: list[bytes]) -> bytes:
    """The record's resources as one JSON array (orjson's own form of the list, from the
    resources' texts). Patient ids follow the contract's id rule (no tab): the grouping reads
    them unparsed."""
    return b"%s\t%d\t[%s]\n" % (patient.encode(), sequence, b",".join(texts))


# --- the merge: input order, run-wide checks, final files -------------------------------------


def _problem_from_json(data: dict[str, Any]) -> Problem:
    source = data.get("source")
    return Problem(
        data["code"],
        Severity(data["severity"]),
        data["message"],
        data["path"],
        Source(**source) if source is not None else None,
    )


def _problems(items: list[dict[str, Any]] | None) -> list[Problem]:
    return [_problem_from_json(item) for item in items] if items else []


class _Merger:
    """Merges finished shards in input order into the final files, and counts everything."""

    def __init__(
        self,
        staging: Path,
        task: _Task,
        result: ExportResult,
        on_record: Callable[[int], None] | None,
        expected_ids: int = 0,
    ) -> None:
        self.options = task.options
        self.input_options = task.input_options
        self.result = result
        self.on_record = on_record
        self.ctx = ConvertContext(self.options.source_system, self.options.export_time, __version__)
        self.validator = ResourceValidator(self.options.validation)  # type: ignore[arg-type]
        self.sink: _NdjsonSink | _BundleSink = (
            _NdjsonSink(staging, self.options)
            if self.options.format == "ndjson"
            else _BundleSink(staging, self.options, self.ctx)
        )
        self.rejects = _RejectWriter(staging)
        self.duplicates = CompactDuplicateIds(expected_ids)
        self.originals = _Originals(self.input_options)
        self.records = 0
        self.file_records: dict[str, int] = {}  # records merged so far, per input file
        self.patients_seen: set[str] = set()
        self.patients_with_record: set[str] = set()
        # Resource lines of exported records not yet copied, per type, [lines, bytes]: they are
        # copied in runs (before a record's lines are dropped, and at the end of each shard).
        self.pending: dict[str, list[int]] = {}

    def add(self, done: _ShardDone) -> None:
        parts = _PartReader(done.folder)
        shard = done.shard
        try:
            for ordinal, line in enumerate(parts.index()):
                self._record(shard, (shard.number << 32) | ordinal, orjson.loads(line), parts)
            self._copy_pending(parts)
        finally:
            parts.close()
        if self.options.format == "ndjson":
            shutil.rmtree(done.folder)
        else:
            assert isinstance(self.sink, _BundleSink)
            self.sink.shard_folders.append(done.folder)

    def _record(self, shard: Shard, sequence: int, fields: list[Any], parts: _PartReader) -> None:
        kind, outcome, key, patient, is_patient, counts, contract, more, where = fields
        self.records += 1
        if self.on_record is not None:
            self.on_record(self.records)
        file_ordinal = self.file_records.get(shard.file, 0)
        self.file_records[shard.file] = file_ordinal + 1
        source = Source(**where)
        problems = _problems(contract)
        report = self.result.report
        duplicate = self.duplicates.check(key[0], key[1], source) if key is not None else []
        if duplicate:
            problems += duplicate
            report.problems.extend(problems)
            report.counts.count(kind, accepted=False)
            original = _rejected_original(
                self.originals.get(shard, file_ordinal), self.input_options
            )
            self.rejects.add(*_reject_lines(source, original, problems))
            self._copy_pending(parts)
            parts.drop(outcome, counts)
            if outcome == _EXPORTED and isinstance(self.sink, _BundleSink):
                self.sink.dropped.add(sequence)
            return
        report.problems.extend(problems + _problems(more))
        if outcome == _REJECTED:
            report.counts.count(kind, accepted=False)
            self.rejects.add(*parts.reject())
        elif outcome == _SKIPPED:
            report.counts.count_skipped(kind)
        else:
            report.counts.count(kind, accepted=True)
            for resource_type, (lines, size) in (counts or {}).items():
                pending = self.pending.setdefault(resource_type, [0, 0])
                pending[0] += lines
                pending[1] += size
            self.patients_seen.add(patient)
            if is_patient:
                self.patients_with_record.add(patient)

    def _copy_pending(self, parts: _PartReader) -> None:
        """The pending resource lines, from the shard's part files to the final files."""
        if self.pending:
            assert isinstance(self.sink, _NdjsonSink)
            for resource_type, (lines, size) in self.pending.items():
                self.sink.copy_run(resource_type, parts.resource_file(resource_type), lines, size)
            self.pending.clear()

    def close(self) -> None:
        """Close every file the merge holds (idempotent; after finish there are none left)."""
        try:
            self.sink.close()
            self.rejects.close()
        finally:
            self.duplicates.close()
            self.originals.close()

    def finish(self) -> None:
        """Patient stubs, then the final files, the summary and the manifest."""
        result, options = self.result, self.options
        # Every patient_id gets a Patient, from its patient record or, without one, a stub.
        for pid in sorted(self.patients_seen - self.patients_with_record):
            stub = patient_stub(pid, self.ctx)
            problems = validate_record_resources([stub], None, validator=self.validator)
            result.report.problems.extend(problems)
            if not has_errors(problems):
                self.sink.add(pid, [stub])
        self.duplicates.close()
        self.originals.close()
        result.resources = self.sink.finish()
        error_files = self.rejects.finish()
        result.report.problems.sort(key=_problem_order)
        staging = self.rejects.staging
        write_private(staging / "summary.json", _dumps_pretty(result.summary()))
        if options.format == "ndjson":
            assert isinstance(self.sink, _NdjsonSink)
            manifest = _manifest(options, self.sink.outputs, error_files)
            write_private(staging / "manifest.json", _dumps_pretty(manifest))


def _close_all(handles: Iterable[IO[bytes] | None]) -> None:
    """Close every file, even when closing one fails (a full disk fails the last flush)."""
    failure: OSError | None = None
    for handle in handles:
        if handle is None:
            continue
        try:
            handle.close()
        except OSError as exc:  # the file is closed all the same
            failure = failure or exc
    if failure is not None:
        raise failure


class _PartReader:
    """Reads one shard's part files in step with its index."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.handles: dict[str, IO[bytes]] = {}

    def _handle(self, name: str) -> IO[bytes]:
        handle = self.handles.get(name)
        if handle is None:
            handle = self.handles[name] = open(self.folder / name, "rb")  # noqa: SIM115
        return handle

    def index(self) -> Iterator[bytes]:
        if not (self.folder / "index").exists():
            return iter(())
        return iter(self._handle("index"))

    def resource_file(self, resource_type: str) -> IO[bytes]:
        """The type's part file, read on from where the last copy or drop stopped."""
        return self._handle(f"type-{resource_type}")

    def reject(self) -> tuple[bytes, bytes]:
        return self._handle("rejects").readline(), self._handle("outcomes").readline()

    def drop(self, outcome: str, counts: dict[str, list[int]] | None) -> None:
        """Skip what the worker wrote for a record that the merge rejects as a duplicate."""
        if outcome == _REJECTED:
            self.reject()
        for resource_type, (_, size) in (counts or {}).items():
            self.resource_file(resource_type).seek(size, os.SEEK_CUR)

    def close(self) -> None:
        _close_all(self.handles.values())


class _Originals:
    """The verbatim input record at a file position, for a duplicate found only at the merge.

    Duplicates come in input order, so one forward reader per file reads each file at most
    once more, and only when it has a duplicate.
    """

    def __init__(self, input_options: InputOptions) -> None:
        self.read = input_options.read
        self.readers: dict[str, tuple[Iterator[Any], list[int]]] = {}

    def get(self, shard: Shard, ordinal: int) -> object:
        reader, position = self.readers.get(shard.file, (None, [0]))
        if reader is None:
            reader = read_whole_file(shard.file, shard.name, self.read)
            self.readers[shard.file] = (reader, position)
        for raw in reader:
            position[0] += 1
            if position[0] - 1 == ordinal:
                return raw.original
        raise AssertionError(f"record {ordinal} of {shard.name} not found again")

    def close(self) -> None:
        for reader, _ in self.readers.values():
            close = getattr(reader, "close", None)
            if close is not None:
                close()


def _skipped_by_since(recorded_at: datetime | None, since: datetime | None) -> bool:
    """Bulk Data _since: only records written at or after `since`. Without recorded_at we
    cannot tell, so the record is exported (re-export is idempotent)."""
    return since is not None and recorded_at is not None and recorded_at < since


def _problem_order(problem: Problem) -> tuple[str, int, int]:
    source = problem.source
    if source is None:
        return ("", 0, 0)
    return (source.file, source.line or source.row or 0, source.entry or 0)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def _dumps_pretty(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


@dataclass(slots=True)
class _TypeFiles:
    """The numbered NDJSON files of one resource type, split past the per-file limit."""

    paths: list[Path] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    handle: IO[bytes] | None = None


class _NdjsonSink:
    """Bulk Data layout: one NDJSON file per resource type, numbered when split."""

    def __init__(self, staging: Path, options: ExportOptions) -> None:
        self.staging = staging
        self.options = options
        self.files: dict[str, _TypeFiles] = {}
        self.outputs: list[dict[str, Any]] = []

    def add(self, patient: str, resources: list[dict[str, Any]]) -> None:
        for resource in resources:
            self.write_line(resource["resourceType"], _dumps(resource) + b"\n")

    def write_line(self, resource_type: str, line: bytes) -> None:
        self.copy_run(resource_type, io.BytesIO(line), 1, len(line))

    def copy_run(self, resource_type: str, source: IO[bytes], lines: int, size: int) -> None:
        """The next `lines` lines of `source`, `size` bytes in all, to the type's files, a new
        file when one is full. Copied as bytes, not line by line: where a file is full, the
        lines that still fit are copied in chunks too, their newlines counted."""
        while lines:
            files = self._with_room(resource_type)
            assert files.handle is not None
            room = self.options.max_file_resources - files.counts[-1]
            if lines <= room:
                _copy_bytes(source, files.handle, size)
                files.counts[-1] += lines
                return
            size -= _copy_lines(source, files.handle, room)
            files.counts[-1] += room
            lines -= room

    def _with_room(self, resource_type: str) -> _TypeFiles:
        files = self.files.get(resource_type)
        if files is None:
            files = self.files[resource_type] = _TypeFiles()
        if files.handle is None or files.counts[-1] >= self.options.max_file_resources:
            if files.handle is not None:
                files.handle.close()
            path = self.staging / self._name(resource_type, len(files.paths) + 1)
            files.paths.append(path)
            files.counts.append(0)
            files.handle = open_private(path, compress=self.options.gzip)
        return files

    def _name(self, resource_type: str, number: int) -> str:
        suffix = ".ndjson.gz" if self.options.gzip else ".ndjson"
        return f"{resource_type}.{number:03d}{suffix}"

    def close(self) -> None:
        _close_all(files.handle for files in self.files.values())

    def finish(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for resource_type in sorted(self.files):
            files = self.files[resource_type]
            if files.handle is not None:
                files.handle.close()
            if len(files.paths) == 1:  # not split: the plain Type.ndjson name
                single = self.staging / self._name(resource_type, 1).replace(".001", "", 1)
                files.paths[0].rename(single)
                files.paths[0] = single
            for path, count in zip(files.paths, files.counts, strict=True):
                self.outputs.append({"type": resource_type, "url": path.name, "count": count})
            totals[resource_type] = sum(files.counts)
        return totals


# Patient stubs are added after every record: they sort after all records of their patient
# (and the Patient goes first in its Bundles anyway).
_STUB_SEQUENCE = 1 << 62


class _BundleSink:
    """One Bundle per patient (split past max_entries), grouped through partition files.

    Workers write each exported record's resources to the partition of its patient, one file
    per shard and partition; the merge adds the Patient stubs to its own partition files and,
    at the end, reads one partition at a time (as bytes) to write its patients' Bundles.
    """

    def __init__(self, staging: Path, options: ExportOptions, ctx: ConvertContext) -> None:
        self.options = options
        self.ctx = ctx
        self.work = staging / ".partitions"
        self.work.mkdir(mode=PRIVATE_DIR)
        self.bundles = staging / "bundles"
        self.bundles.mkdir(mode=PRIVATE_DIR)
        self.shard_folders: list[Path] = []
        self.dropped: set[int] = set()  # sequences of records the merge rejected
        self.own = _PartWriter(self.work)
        self.stubs = 0

    def add(self, patient: str, resources: list[dict[str, Any]]) -> None:
        texts = [_dumps(resource) for resource in resources]
        self.own.partition(patient, _STUB_SEQUENCE + self.stubs, texts)
        self.stubs += 1

    def close(self) -> None:
        self.own.close()

    def finish(self) -> dict[str, int]:
        self.own.close()
        totals: dict[str, int] = {}
        folders = [*self.shard_folders, self.work]
        for partition in range(PATIENT_PARTITIONS):
            paths = [folder / f"partition-{partition:02d}" for folder in folders]
            for patient, groups in _grouped_by_patient(paths, self.dropped):
                self._write_patient(patient, groups, totals)
            for path in paths:
                path.unlink(missing_ok=True)
        shutil.rmtree(self.work)
        return dict(sorted(totals.items()))

    def _write_patient(
        self, patient: str, groups: list[list[dict[str, Any]]], totals: dict[str, int]
    ) -> None:
        for resources in groups:
            for resource in resources:
                kind = resource["resourceType"]
                totals[kind] = totals.get(kind, 0) + 1
        pid = patient_id(self.ctx.source_system, patient)
        chunks = _chunks(groups, self.options.max_entries)
        for number, chunk in enumerate(chunks, start=1):
            name = f"{pid}.json" if len(chunks) == 1 else f"{pid}-{number:03d}.json"
            bundle = self._bundle(chunk, f"{pid}-{number}")
            write_private(self.bundles / name, _dumps_pretty(bundle))

    def _bundle(self, resources: list[dict[str, Any]], key: str) -> dict[str, Any]:
        bundle_id = hashlib.sha256(f"{self.ctx.source_system}|{key}".encode()).hexdigest()[:32]
        if self.options.format == "transaction":
            return transaction_bundle(
                resources, bundle_id, self.ctx.export_time, write_mode=self.options.write_mode
            )
        return collection_bundle(resources, bundle_id, self.ctx.export_time)


def _partition_of(patient: str) -> int:
    digest = hashlib.blake2b(patient.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % PATIENT_PARTITIONS


def _grouped_by_patient(
    paths: Iterable[Path], dropped: set[int]
) -> Iterator[tuple[str, list[list[dict[str, Any]]]]]:
    """One partition's records, grouped per patient (sorted), Patient resource first.

    The partition is held as bytes; only one patient's resources are decoded at a time.
    """
    per_patient: dict[str, list[tuple[int, bytes]]] = {}
    for path in paths:
        if not path.exists():
            continue
        with path.open("rb") as handle:
            for line in handle:
                name, sequence, resources = line.split(b"\t", 2)
                if int(sequence) not in dropped:
                    per_patient.setdefault(name.decode(), []).append((int(sequence), resources))
    for patient in sorted(per_patient):
        records = [orjson.loads(resources) for _, resources in sorted(per_patient.pop(patient))]
        records.sort(key=_patient_first)
        yield patient, records


def _patient_first(resources: list[dict[str, Any]]) -> int:
    return 0 if resources[0]["resourceType"] == "Patient" else 1


def _chunks(groups: list[list[dict[str, Any]]], max_entries: int) -> list[list[dict[str, Any]]]:
    """Split a patient's records into Bundles of at most max_entries.

    A record is never split (its resources reference each other), and every Bundle starts
    with the Patient, so each one can be imported on its own, in any order. A single record
    larger than max_entries gets a Bundle of its own, over the limit.
    """
    patient_group, *records = groups
    patient = patient_group[0]
    chunks: list[list[dict[str, Any]]] = []
    current = list(patient_group)
    for resources in records:
        if len(current) > 1 and len(current) + len(resources) > max_entries:
            chunks.append(current)
            current = [patient]
        current.extend(resources)
    chunks.append(current)
    return chunks


class _RejectWriter:
    """rejects.ndjson (verbatim records with their problems) and OperationOutcome.ndjson."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.count = 0
        self.rejects = open_private(staging / "rejects.ndjson")
        self.outcomes: IO[bytes] | None = None  # created with the first reject

    def add(self, line: bytes, outcome: bytes) -> None:
        self.rejects.write(line)
        if self.outcomes is None:
            self.outcomes = open_private(self.staging / "OperationOutcome.ndjson")
        self.outcomes.write(outcome)
        self.count += 1

    def close(self) -> None:
        _close_all([self.rejects, self.outcomes])

    def finish(self) -> list[dict[str, Any]]:
        """Close both files; the manifest's `error` entries (none when nothing was rejected)."""
        self.rejects.close()
        if self.outcomes is None:
            return []
        self.outcomes.close()
        return [{"type": "OperationOutcome", "url": "OperationOutcome.ndjson", "count": self.count}]


def _manifest(
    options: ExportOptions, outputs: list[dict[str, Any]], errors: list[dict[str, Any]]
) -> dict[str, Any]:
    """The Bulk Data (STU2) completion manifest for the NDJSON file set."""
    request = f"{options.source_system.rstrip('/')}/$export"
    if options.since is not None:
        request += f"?_since={_instant(options.since)}"
    return {
        "transactionTime": _instant(options.export_time),
        "request": request,
        "requiresAccessToken": False,
        "output": [_with_url(item, options.base_url) for item in outputs],
        "error": [_with_url(item, options.base_url) for item in errors],
    }


def _with_url(item: dict[str, Any], base_url: str | None) -> dict[str, Any]:
    if base_url is None:
        return item
    return {**item, "url": f"{base_url.rstrip('/')}/{item['url']}"}


def _instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
