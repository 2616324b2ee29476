"""The worker side of the export: each shard checked, converted and validated into part files.

`run_shards` runs the shards in the parent (`jobs=1`) or in worker processes (workers.py) and
hands the finished shards to the merge in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from migrainefhir import __version__
from migrainefhir.convert import ConvertContext, patient_stub
from migrainefhir.export.gate import Converted, convert_and_validate_many
from migrainefhir.export.options import ExportOptions
from migrainefhir.export.output import PRIVATE_DIR
from migrainefhir.export.pacing import CollectionPacer
from migrainefhir.export.parts import (
    EXPORTED,
    NOTICE,
    REJECTED,
    SKIPPED,
    PartWriter,
    dumps,
    rejected_original,
)
from migrainefhir.export.shards import Shard, read_shard
from migrainefhir.export.workers import run_in_order
from migrainefhir.ids import DEFAULT_SOURCE_SYSTEM
from migrainefhir.input.intake import CheckedRecord, InputOptions, check_each
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.records import PatientRecord, Record
from migrainefhir.problems import Problem, Severity, Source, has_errors, register_code
from migrainefhir.validate import ResourceValidator


@dataclass(frozen=True, slots=True)
class Task:
    """What every worker needs to know (picklable: sent once to each worker)."""

    input_options: InputOptions
    options: ExportOptions
    work: Path


@dataclass(frozen=True, slots=True)
class ShardDone:
    """A finished shard: where its part files are. Never the resources themselves."""

    shard: Shard
    folder: Path


def run_shards(
    shards: list[Shard], task: Task, validator: ResourceValidator
) -> Generator[ShardDone, None, None]:
    """The finished shards in input order (the merge can start as soon as the first is done)."""
    jobs = min(task.options.jobs, len(shards))
    if jobs <= 1:
        worker = ShardWorker(task)
        for shard in shards:
            yield worker.run(shard)
        return
    _warm_up(validator)  # forked workers then share the imported modules and compiled schemas
    yield from run_in_order(shards, jobs, partial(_shard_runner, task), Shard.describe)


def _warm_up(validator: ResourceValidator) -> None:
    ctx = ConvertContext(DEFAULT_SOURCE_SYSTEM, datetime(2000, 1, 1).astimezone(), __version__)
    validator.validate(patient_stub("warm-up", ctx))


def _shard_runner(task: Task) -> Callable[[Shard], ShardDone]:
    """In a worker process: what runs each shard sent to it."""
    return ShardWorker(task).run


# Records a worker converts and validates together (validate_records): enough for each compiled
# schema to stay in the CPU caches over a run of resources, few enough to keep memory flat.
_BATCH = 128


# A garbage collection after this many batches, none in between (pacing.py): 2,048 records,
# a few seconds of work, against under 1 ms for the collection (31 ms for the first).
_BATCHES_PER_COLLECTION = 16


class ShardWorker:
    """Checks, converts and validates the records of one shard at a time into part files."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.options = task.options
        self.ctx = ConvertContext(self.options.source_system, self.options.export_time, __version__)
        self.validator = ResourceValidator(self.options.validation)  # type: ignore[arg-type]

    def run(self, shard: Shard, raw: Iterator[RawRecord] | None = None) -> ShardDone:
        """The shard into part files; `raw` gives its records when they are not read from a
        local file (default: shards.read_shard)."""
        folder = self.task.work / f"shard-{shard.number:06d}"
        folder.mkdir(mode=PRIVATE_DIR)
        parts = PartWriter(folder)
        if raw is None:
            raw = read_shard(shard, self.task.input_options.read)
        try:
            records = enumerate(check_each(raw, self.task.input_options))
            with CollectionPacer(every=_BATCHES_PER_COLLECTION) as pacer:
                while batch := list(islice(records, _BATCH)):
                    self._batch(batch, shard.number, parts)
                    pacer.step()
        finally:
            parts.close()
        return ShardDone(shard, folder)

    def _original(self, checked: CheckedRecord) -> object:
        return rejected_original(checked.raw.original, self.task.input_options)

    def _batch(
        self, batch: list[tuple[int, CheckedRecord]], shard_number: int, parts: PartWriter
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
        """The record, when it is to be converted (accepted, and not skipped by --since, which
        compares the true recorded_at: a --deidentify record's own is shifted)."""
        record = checked.record
        if record is None or skipped_by_since(checked.recorded_at, self.options.since):
            return None
        return record

    def _one(
        self,
        checked: CheckedRecord,
        sequence: int,
        parts: PartWriter,
        converted: Converted | None,
    ) -> None:
        """One record -> one index line, and its resources or its reject lines."""
        if checked.notice is not None:  # a note about the file: its warnings, no record
            notes = [p.to_json() for p in checked.problems] or None
            source = checked.raw.source.to_json()
            parts.index([checked.notice, NOTICE, None, None, False, None, notes, None, source])
            return
        record = checked.record
        key: list[str] | None = None
        more: list[Problem] = []
        patient: str | None = None
        counts: dict[str, list[int]] | None = None
        if record is None:
            outcome = REJECTED
            parts.reject(checked.raw.source, self._original(checked), checked.problems)
        else:
            key = [record.record_type, record.record_id]
            if converted is None:
                outcome = SKIPPED
            else:
                resources, more, texts = converted
                if not has_errors(more):
                    more = more + self._too_large(record, resources, checked.raw.source)
                if has_errors(more):
                    outcome = REJECTED
                    problems = checked.problems + more
                    parts.reject(checked.raw.source, self._original(checked), problems)
                else:
                    outcome = EXPORTED
                    patient = record.patient_id
                    texts = texts or [dumps(resource) for resource in resources]
                    if self.options.format == "ndjson":
                        counts = parts.resources(resources, texts)
                    else:
                        holds_patient = isinstance(record, PatientRecord)
                        parts.partition(patient, sequence, texts, holds_patient)
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

    def _too_large(
        self, record: Record, resources: list[dict[str, Any]], source: Source
    ) -> list[Problem]:
        """bundle.record-too-large: a record whose resources, with the Patient that starts
        every Bundle, exceed --max-entries (a record is never split across Bundles)."""
        if self.options.format == "ndjson":
            return []
        entries = len(resources) + (0 if isinstance(record, PatientRecord) else 1)
        if entries <= self.options.max_entries:
            return []
        message = (
            f"the record makes {entries} Bundle entries with its Patient, more than "
            f"--max-entries {self.options.max_entries}; a record is never split"
        )
        return [Problem(RECORD_TOO_LARGE, Severity.ERROR, message, "$", source)]


RECORD_TOO_LARGE = register_code(
    "bundle.record-too-large",
    Severity.ERROR,
    "export --format transaction|collection: a record whose resources, with the Patient that "
    "starts every Bundle, are more than --max-entries; it is rejected (a record is never split "
    "across Bundles, and no Bundle exceeds the limit).",
    "bundle",
)


def skipped_by_since(recorded_at: datetime | None, since: datetime | None) -> bool:
    """Bulk Data _since: only records written at or after `since`. Without recorded_at we
    cannot tell, so the record is exported (re-export is idempotent)."""
    return since is not None and recorded_at is not None and recorded_at < since
