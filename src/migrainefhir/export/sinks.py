"""Where the merged output goes: Bulk Data NDJSON files and manifest, Bundles per patient,
and the rejects (rejects.ndjson and OperationOutcome.ndjson)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from migrainefhir.convert import ConvertContext
from migrainefhir.export.bundle import collection_bundle, transaction_bundle
from migrainefhir.export.options import ExportOptions
from migrainefhir.export.output import PRIVATE_DIR, open_private, write_private
from migrainefhir.export.parts import PATIENT_PARTITIONS, PartWriter, close_all, dumps
from migrainefhir.ids import patient_id
from migrainefhir.validate.bulk import NOT_EXPORTED_EXTENSION


def dumps_pretty(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


@dataclass(slots=True)
class _TypeFiles:
    """The numbered NDJSON files of one resource type, split past the per-file limit."""

    paths: list[Path] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    handle: IO[bytes] | None = None


class NdjsonSink:
    """Bulk Data layout: one NDJSON file per resource type, numbered when split."""

    def __init__(self, staging: Path, options: ExportOptions) -> None:
        self.staging = staging
        self.options = options
        self.files: dict[str, _TypeFiles] = {}
        self.outputs: list[dict[str, Any]] = []

    def add(self, patient: str, resources: list[dict[str, Any]]) -> None:
        for resource in resources:
            self.write_line(resource["resourceType"], dumps(resource) + b"\n")

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
        close_all(files.handle for files in self.files.values())

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


# Patient stubs are added after every record: they sort after all records of their patient
# (and the Patient goes first in its Bundles anyway).
_STUB_SEQUENCE = 1 << 62


class BundleSink:
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
        self.own = PartWriter(self.work)
        self.stubs: set[str] = set()  # patients whose Patient is a stub

    def add(self, patient: str, resources: list[dict[str, Any]]) -> None:
        """A patient's stub Patient (the merge adds one per patient without a record)."""
        texts = [dumps(resource) for resource in resources]
        self.own.partition(patient, _STUB_SEQUENCE + len(self.stubs), texts)
        self.stubs.add(patient)

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
        # A stub Patient is a conditional create: it never replaces the server's Patient.
        create_only = frozenset({f"Patient/{pid}"}) if patient in self.stubs else frozenset()
        chunks = _chunks(groups, self.options.max_entries)
        for number, chunk in enumerate(chunks, start=1):
            name = f"{pid}.json" if len(chunks) == 1 else f"{pid}-{number:03d}.json"
            bundle = self._bundle(chunk, f"{pid}-{number}", create_only)
            write_private(self.bundles / name, dumps_pretty(bundle))

    def _bundle(
        self, resources: list[dict[str, Any]], key: str, create_only: frozenset[str]
    ) -> dict[str, Any]:
        bundle_id = hashlib.sha256(f"{self.ctx.source_system}|{key}".encode()).hexdigest()[:32]
        if self.options.format == "transaction":
            return transaction_bundle(
                resources,
                bundle_id,
                self.ctx.export_time,
                write_mode=self.options.write_mode,
                create_only=create_only,
            )
        return collection_bundle(resources, bundle_id, self.ctx.export_time)


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


class RejectWriter:
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
        close_all([self.rejects, self.outcomes])

    def finish(self) -> list[dict[str, Any]]:
        """Close both files; the manifest's `error` entries (none when nothing was rejected)."""
        self.rejects.close()
        if self.outcomes is None:
            return []
        self.outcomes.close()
        return [{"type": "OperationOutcome", "url": "OperationOutcome.ndjson", "count": self.count}]


def bulk_manifest(
    options: ExportOptions,
    outputs: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    not_exported: list[str] | None = None,
) -> dict[str, Any]:
    """The Bulk Data (STU2) completion manifest for the NDJSON file set."""
    request = f"{options.source_system.rstrip('/')}/$export"
    if options.since is not None:
        request += f"?_since={_instant(options.since)}"
    manifest: dict[str, Any] = {
        "transactionTime": _instant(options.export_time),
        "request": request,
        "requiresAccessToken": False,
        "output": [_with_url(item, options.base_url) for item in outputs],
        "error": [_with_url(item, options.base_url) for item in errors],
    }
    if not_exported:
        # STU2's `extension` (a JSON object): the Patient references no Patient of the file
        # set resolves (patients without an exported patient record); validate accepts these.
        manifest["extension"] = {NOT_EXPORTED_EXTENSION: not_exported}
    return manifest


def _with_url(item: dict[str, Any], base_url: str | None) -> dict[str, Any]:
    if base_url is None:
        return item
    return {**item, "url": f"{base_url.rstrip('/')}/{item['url']}"}


def _instant(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
