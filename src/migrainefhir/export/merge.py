"""The merge: finished shards in input order into the final files, with the run-wide checks.

Duplicate ids are decided here, in input order, exactly as a single pass would; a patient
without an exported patient record gets a Patient stub in the Bundle formats (a conditional
create in a transaction, so that it never replaces a richer Patient on the server) and none in
NDJSON (the manifest and the summary list it as referenced but not exported); the sinks write
the output, then the summary and the Bulk Data manifest.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from migrainefhir import __version__
from migrainefhir.convert import ConvertContext, patient_stub
from migrainefhir.export.options import ExportResult
from migrainefhir.export.output import write_private
from migrainefhir.export.parts import (
    EXPORTED,
    NOTICE,
    REJECTED,
    SKIPPED,
    PartReader,
    reject_lines,
    rejected_original,
)
from migrainefhir.export.shards import Opener, Shard, read_whole_file
from migrainefhir.export.sinks import (
    BundleSink,
    NdjsonSink,
    RejectWriter,
    bulk_manifest,
    dumps_pretty,
)
from migrainefhir.export.worker import ShardDone, Task
from migrainefhir.ids import patient_id
from migrainefhir.input.intake import CompactDuplicateIds, InputOptions
from migrainefhir.problems import Problem, Severity, Source, has_errors
from migrainefhir.validate import ResourceValidator, validate_record_resources


class Merger:
    """Merges finished shards in input order into the final files, and counts everything."""

    def __init__(
        self,
        staging: Path,
        task: Task,
        result: ExportResult,
        on_record: Callable[[int, int | None], None] | None,
        expected_ids: int = 0,
        expected: int | None = None,
        opener: Opener | None = None,
    ) -> None:
        """`opener` opens the input files that are not local (shards.read_whole_file)."""
        self.options = task.options
        self.input_options = task.input_options
        self.result = result
        self.on_record = on_record
        self.expected = expected  # records to come, about (input lines), when known
        self.ctx = ConvertContext(self.options.source_system, self.options.export_time, __version__)
        self.validator = ResourceValidator(self.options.validation)  # type: ignore[arg-type]
        self.sink: NdjsonSink | BundleSink = (
            NdjsonSink(staging, self.options)
            if self.options.format == "ndjson"
            else BundleSink(staging, self.options, self.ctx)
        )
        self.rejects = RejectWriter(staging)
        try:
            self.duplicates = CompactDuplicateIds(expected_ids)
        except BaseException:  # no temporary file (a full TMPDIR): close what is open
            self.sink.close()
            self.rejects.close()
            raise
        self.originals = _Originals(self.input_options, opener)
        self.records = 0
        self.file_records: dict[str, int] = {}  # records merged so far, per input file
        self.patients_seen: set[str] = set()
        self.patients_with_record: set[str] = set()
        # Resource lines of exported records not yet copied, per type, [lines, bytes]: they are
        # copied in runs (before a record's lines are dropped, and at the end of each shard).
        self.pending: dict[str, list[int]] = {}

    def add(self, done: ShardDone) -> None:
        parts = PartReader(done.folder)
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
            assert isinstance(self.sink, BundleSink)
            self.sink.shard_folders.append(done.folder)

    def _record(self, shard: Shard, sequence: int, fields: list[Any], parts: PartReader) -> None:
        kind, outcome, key, patient, is_patient, counts, contract, more, where = fields
        if outcome == NOTICE:  # a note about a whole file: its warnings, and no record
            self.file_records[shard.file] = self.file_records.get(shard.file, 0) + 1
            self.result.report.add(_problems(contract))
            self.result.report.counts.count_notice(kind)
            return
        self.records += 1
        if self.on_record is not None:
            self.on_record(self.records, self.expected)
        file_ordinal = self.file_records.get(shard.file, 0)
        self.file_records[shard.file] = file_ordinal + 1
        source = Source(**where)
        problems = _problems(contract)
        report = self.result.report
        duplicate = self.duplicates.check(key[0], key[1], source) if key is not None else []
        if duplicate:
            problems += duplicate
            report.add(problems)
            report.counts.count(kind, accepted=False)
            original = rejected_original(
                self.originals.get(shard, file_ordinal), self.input_options
            )
            self.rejects.add(*reject_lines(source, original, problems))
            self._copy_pending(parts)
            parts.drop(outcome, counts)
            if outcome == EXPORTED and isinstance(self.sink, BundleSink):
                self.sink.dropped.add(sequence)
            return
        report.add(problems + _problems(more))
        if outcome == REJECTED:
            report.counts.count(kind, accepted=False)
            self.rejects.add(*parts.reject())
        elif outcome == SKIPPED:
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

    def _copy_pending(self, parts: PartReader) -> None:
        """The pending resource lines, from the shard's part files to the final files."""
        if self.pending:
            assert isinstance(self.sink, NdjsonSink)
            for resource_type, (lines, size) in self.pending.items():
                self.sink.copy_run(resource_type, parts.resource_file(resource_type), lines, size)
            self.pending.clear()

    def add_extra(
        self, per_patient: list[tuple[str, list[dict[str, Any]]]], problems: list[Problem]
    ) -> None:
        """Resources a later stage made (already validated), for patients this export holds;
        those of any other patient would reference a Patient that is not written: left out."""
        self.result.report.add(problems)
        for patient, resources in per_patient:
            if patient in self.patients_seen:
                for resource in resources:
                    self.sink.add_extra(patient, [resource])

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
        without_record = sorted(self.patients_seen - self.patients_with_record)
        result.patients_without_record = len(without_record)
        if options.format == "ndjson":
            # A stub line in Patient.ndjson would replace the full Patient on an $import upsert:
            # none is written; the references stay (Bulk Data allows them) and are listed.
            result.patients_not_exported = sorted(
                f"Patient/{patient_id(options.source_system, pid)}" for pid in without_record
            )
        else:
            # Bundles get a stub (a conditional create in a transaction, see bundle.py).
            for pid in without_record:
                stub = patient_stub(pid, self.ctx)
                problems = validate_record_resources([stub], None, validator=self.validator)
                result.report.add(problems)
                if not has_errors(problems):
                    assert isinstance(self.sink, BundleSink)
                    self.sink.add_stub(pid, stub)
        self.duplicates.close()
        self.originals.close()
        result.resources = self.sink.finish()
        error_files = self.rejects.finish()
        result.report.problems.sort(key=_problem_order)
        staging = self.rejects.staging
        write_private(staging / "summary.json", dumps_pretty(result.summary()))
        if options.format == "ndjson":
            assert isinstance(self.sink, NdjsonSink)
            manifest = bulk_manifest(
                options, self.sink.outputs, error_files, result.patients_not_exported
            )
            write_private(staging / "manifest.json", dumps_pretty(manifest))


class _Originals:
    """The verbatim input record at a file position, for a duplicate found only at the merge.

    Duplicates come in input order, so one forward reader per file reads each file at most
    once more, and only when it has a duplicate.
    """

    def __init__(self, input_options: InputOptions, opener: Opener | None) -> None:
        self.read = input_options.read
        self.opener = opener
        self.readers: dict[str, tuple[Iterator[Any], list[int]]] = {}

    def get(self, shard: Shard, ordinal: int) -> object:
        reader, position = self.readers.get(shard.file, (None, [0]))
        if reader is None:
            reader = read_whole_file(shard.file, shard.name, self.read, self.opener)
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


def _problem_order(problem: Problem) -> tuple[str, int, int]:
    source = problem.source
    if source is None:
        return ("", 0, 0)
    return (source.file, source.line or source.row or 0, source.entry or 0)
