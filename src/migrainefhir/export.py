"""`export`: accepted records -> validated FHIR resources -> Bundles or Bulk-Data NDJSON.

The gate: every resource of a record is validated before anything is written; a record any of
whose resources fails goes, verbatim, with its problems, to rejects.ndjson (and its problems as
an OperationOutcome to OperationOutcome.ndjson). Nothing is lost: records read = exported +
rejected + skipped (skipped only with --since), written to summary.json.

Output is written into a staging folder and swapped in at the end (output.py), and is the same
bytes for the same input and options.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from migrainefhir import __version__
from migrainefhir.bundle import collection_bundle, transaction_bundle
from migrainefhir.convert import ConvertContext, patient_stub
from migrainefhir.errors import UsageError
from migrainefhir.gate import convert_and_validate
from migrainefhir.ids import DEFAULT_SOURCE_SYSTEM, patient_id
from migrainefhir.intake import CheckedRecord, InputOptions, checked_records
from migrainefhir.output import open_private, staged_directory, write_private
from migrainefhir.problems import Problem, Report, has_errors
from migrainefhir.records import PatientRecord
from migrainefhir.validate import ResourceValidator, validate_record_resources
from migrainefhir.validate.outcome import operation_outcome

FORMATS = ("ndjson", "transaction", "collection")
WRITE_MODES = ("put", "conditional")

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

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.write_mode not in WRITE_MODES:
            raise UsageError(f"unknown write mode {self.write_mode!r}")
        if self.max_entries < 2:
            raise UsageError("--max-entries must be at least 2")
        if self.max_file_resources < 1:
            raise UsageError("--max-file-resources must be at least 1")


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
    result = ExportResult(Report())
    try:
        with staged_directory(options.out) as staging:
            _export_into(staging, paths, input_options, options, result, on_record)
            if options.strict and result.report.counts.total_rejected:
                raise _StrictAbort
    except _StrictAbort:
        result.written = False
    return result


def _export_into(
    staging: Path,
    paths: Sequence[str],
    input_options: InputOptions,
    options: ExportOptions,
    result: ExportResult,
    on_record: Callable[[int], None] | None,
) -> None:
    ctx = ConvertContext(options.source_system, options.export_time, __version__)
    sink: _Sink = (
        _NdjsonSink(staging, options)
        if options.format == "ndjson"
        else _BundleSink(staging, options, ctx)
    )
    rejects = _RejectWriter(staging, options)
    validator = ResourceValidator("full")
    patients_seen: set[str] = set()
    patients_with_record: set[str] = set()
    for number, checked in enumerate(checked_records(paths, input_options), start=1):
        if on_record is not None:
            on_record(number)
        resources = _gate(checked, options, ctx, validator, result, rejects)
        if resources is None:
            continue
        record = checked.record
        assert record is not None  # _gate returns resources only for accepted records
        sink.add(record.patient_id, resources)
        patients_seen.add(record.patient_id)
        if isinstance(record, PatientRecord):
            patients_with_record.add(record.patient_id)
    # Every patient_id gets a Patient, from its patient record or, without one, a stub.
    for pid in sorted(patients_seen - patients_with_record):
        stub = patient_stub(pid, ctx)
        problems = validate_record_resources([stub], None, validator=validator)
        result.report.problems.extend(problems)
        if not has_errors(problems):
            sink.add(pid, [stub])
    result.resources = sink.finish()
    error_files = rejects.finish()
    result.report.problems.sort(key=_problem_order)
    write_private(staging / "summary.json", _dumps_pretty(result.summary()))
    if options.format == "ndjson":
        assert isinstance(sink, _NdjsonSink)
        manifest = _manifest(options, sink.outputs, error_files)
        write_private(staging / "manifest.json", _dumps_pretty(manifest))


def _gate(
    checked: CheckedRecord,
    options: ExportOptions,
    ctx: ConvertContext,
    validator: ResourceValidator,
    result: ExportResult,
    rejects: _RejectWriter,
) -> list[dict[str, Any]] | None:
    """Convert and validate one record; the resources to write, or None (rejected/skipped)."""
    kind = checked.raw.record_type
    record = checked.record
    result.report.problems.extend(checked.problems)
    if record is None:
        result.report.counts.count(kind, accepted=False)
        rejects.add(checked, checked.problems)
        return None
    if _skipped_by_since(record.recorded_at, options.since):
        result.report.counts.count_skipped(kind)
        return None
    resources, problems = convert_and_validate(record, ctx, checked.raw.source, validator)
    result.report.problems.extend(problems)
    if has_errors(problems):
        result.report.counts.count(kind, accepted=False)
        rejects.add(checked, checked.problems + problems)
        return None
    result.report.counts.count(kind, accepted=True)
    return resources


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


class _Sink:
    def add(self, patient: str, resources: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def finish(self) -> dict[str, int]:
        raise NotImplementedError


@dataclass(slots=True)
class _TypeFiles:
    """The numbered NDJSON files of one resource type, split past the per-file limit."""

    paths: list[Path] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    handle: IO[bytes] | None = None


class _NdjsonSink(_Sink):
    """Bulk Data layout: one NDJSON file per resource type, numbered when split."""

    def __init__(self, staging: Path, options: ExportOptions) -> None:
        self.staging = staging
        self.options = options
        self.files: dict[str, _TypeFiles] = {}
        self.outputs: list[dict[str, Any]] = []

    def add(self, patient: str, resources: list[dict[str, Any]]) -> None:
        for resource in resources:
            self._write(resource["resourceType"], _dumps(resource) + b"\n")

    def _write(self, resource_type: str, line: bytes) -> None:
        files = self.files.setdefault(resource_type, _TypeFiles())
        if files.handle is None or files.counts[-1] >= self.options.max_file_resources:
            if files.handle is not None:
                files.handle.close()
            path = self.staging / self._name(resource_type, len(files.paths) + 1)
            files.paths.append(path)
            files.counts.append(0)
            files.handle = open_private(path, compress=self.options.gzip)
        files.handle.write(line)
        files.counts[-1] += 1

    def _name(self, resource_type: str, number: int) -> str:
        suffix = ".ndjson.gz" if self.options.gzip else ".ndjson"
        return f"{resource_type}.{number:03d}{suffix}"

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


class _BundleSink(_Sink):
    """One Bundle per patient (split past max_entries), grouped through spill files."""

    def __init__(self, staging: Path, options: ExportOptions, ctx: ConvertContext) -> None:
        self.options = options
        self.ctx = ctx
        self.work = staging / ".partitions"
        self.work.mkdir(mode=0o700)
        self.bundles = staging / "bundles"
        self.bundles.mkdir(mode=0o700)
        self.partitions: dict[int, IO[bytes]] = {}
        self.sequence = 0

    def add(self, patient: str, resources: list[dict[str, Any]]) -> None:
        partition = _partition_of(patient)
        handle = self.partitions.get(partition)
        if handle is None:
            handle = open_private(self.work / f"{partition:02d}.ndjson")
            self.partitions[partition] = handle
        self.sequence += 1
        handle.write(_dumps([patient, self.sequence, resources]) + b"\n")

    def finish(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for handle in self.partitions.values():
            handle.close()
        for partition in sorted(self.partitions):
            path = self.work / f"{partition:02d}.ndjson"
            for patient, groups in _grouped_by_patient(path):
                self._write_patient(patient, groups, totals)
            path.unlink()
        self.work.rmdir()
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


def _grouped_by_patient(path: Path) -> list[tuple[str, list[list[dict[str, Any]]]]]:
    """One partition's records, grouped per patient (sorted), Patient resource first."""
    per_patient: dict[str, list[tuple[int, list[dict[str, Any]]]]] = {}
    with path.open("rb") as handle:
        for line in handle:
            patient, sequence, resources = orjson.loads(line)
            per_patient.setdefault(patient, []).append((sequence, resources))
    grouped = []
    for patient in sorted(per_patient):
        records = [resources for _, resources in sorted(per_patient[patient], key=_first)]
        records.sort(key=_patient_first)
        grouped.append((patient, records))
    return grouped


def _first(item: tuple[int, list[dict[str, Any]]]) -> int:
    return item[0]


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

    def __init__(self, staging: Path, options: ExportOptions) -> None:
        self.staging = staging
        self.options = options
        self.count = 0
        self.rejects = open_private(staging / "rejects.ndjson")
        self.outcomes: IO[bytes] | None = None  # created with the first reject

    def add(self, checked: CheckedRecord, problems: Iterable[Problem]) -> None:
        problems = list(problems)
        line = {
            "source": checked.raw.source.to_json(),
            "record": checked.raw.original,
            "problems": [problem.to_json() for problem in problems],
        }
        self.rejects.write(_dumps(line) + b"\n")
        if self.outcomes is None:
            self.outcomes = open_private(self.staging / "OperationOutcome.ndjson")
        self.outcomes.write(_dumps(operation_outcome(problems)) + b"\n")
        self.count += 1

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
