"""Where the merged output goes: Bulk Data NDJSON files and manifest, Bundles per patient,
and the rejects (rejects.ndjson and OperationOutcome.ndjson)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from array import array
from collections.abc import Iterator
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

    def add_extra(self, patient: str, resources: list[dict[str, Any]]) -> None:
        """Resources a later stage made for a patient of the export (`--with-outcomes`)."""
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
# A later stage's resources come after the stubs: they are never read as a Patient.
_EXTRA_SEQUENCE = _STUB_SEQUENCE + (1 << 40)


# The file beside bundles/ that says which Bundle files belong to which patient (the folder
# holds Bundles only, so that every file in it can be posted as it is).
BUNDLE_INDEX = "bundle-index.json"


class BundleSink:
    """One Bundle per patient (split past max_entries), grouped through partition files.

    Workers write each exported record's resources to the partition of its patient, one file
    per shard and partition; the merge adds the Patient stubs to its own partition files and,
    at the end, reads one partition at a time to write its patients' Bundles. Only the heads
    of a partition's lines are held (where each record is, how many resources it has); a
    Bundle's records are read back and decoded when that Bundle is written, so memory holds
    one Bundle, whatever the number of a patient's records.
    """

    def __init__(self, staging: Path, options: ExportOptions, ctx: ConvertContext) -> None:
        self.options = options
        self.ctx = ctx
        self.work = staging / ".partitions"
        self.work.mkdir(mode=PRIVATE_DIR)
        self.staging = staging
        self.bundles = staging / "bundles"
        self.bundles.mkdir(mode=PRIVATE_DIR)
        self.shard_folders: list[Path] = []
        self.dropped: set[int] = set()  # sequences of records the merge rejected
        self.own = PartWriter(self.work)
        self.stubs: set[str] = set()  # patients whose Patient is a stub
        self.extras = 0  # resources added by add_extra
        self.index: list[dict[str, Any]] = []  # bundle-index.json: file, patient, entries

    def add_stub(self, patient: str, stub: dict[str, Any]) -> None:
        """A patient's stub Patient (the merge adds one per patient without a record)."""
        texts = [dumps(stub)]
        self.own.partition(patient, _STUB_SEQUENCE + len(self.stubs), texts, holds_patient=True)
        self.stubs.add(patient)

    def add_extra(self, patient: str, resources: list[dict[str, Any]]) -> None:
        """Resources a later stage made for a patient of the export (`--with-outcomes`): in
        the patient's Bundles after its records, never taken for its Patient."""
        texts = [dumps(resource) for resource in resources]
        self.own.partition(patient, _EXTRA_SEQUENCE + self.extras, texts)
        self.extras += 1

    def close(self) -> None:
        self.own.close()

    def finish(self) -> dict[str, int]:
        self.own.close()
        totals: dict[str, int] = {}
        folders = [*self.shard_folders, self.work]
        for partition in range(PATIENT_PARTITIONS):
            paths = [folder / f"partition-{partition:02d}" for folder in folders]
            with _PartitionIndex(paths, self.dropped) as index:
                for patient in sorted(index.patients):
                    self._write_patient(patient, index, totals)
            for path in paths:
                path.unlink(missing_ok=True)
        shutil.rmtree(self.work)
        listing = {
            "format": self.options.format,
            "about": "Each Bundle file of bundles/, with the id of the Patient it is about "
            "(every split Bundle starts with that Patient) and its number of entries.",
            "bundles": self.index,
        }
        write_private(self.staging / BUNDLE_INDEX, dumps_pretty(listing))
        return dict(sorted(totals.items()))

    def _write_patient(self, patient: str, index: _PartitionIndex, totals: dict[str, int]) -> None:
        records = index.records(patient)
        pid = patient_id(self.ctx.source_system, patient)
        # A stub Patient is a conditional create: it never replaces the server's Patient.
        create_only = frozenset({f"Patient/{pid}"}) if patient in self.stubs else frozenset()
        chunks = _chunks(records.counts(), self.options.max_entries)
        the_patient: dict[str, Any] | None = None
        for number, chunk in enumerate(chunks, start=1):
            resources: list[dict[str, Any]] = [] if number == 1 else [_required(the_patient)]
            for position in chunk:
                decoded = index.read(records, position)
                if the_patient is None:
                    the_patient = decoded[0]
                resources.extend(decoded)
            for resource in resources[0 if number == 1 else 1 :]:
                kind = resource["resourceType"]
                totals[kind] = totals.get(kind, 0) + 1
            name = f"{pid}.json" if len(chunks) == 1 else f"{pid}-{number:03d}.json"
            bundle = self._bundle(resources, f"{pid}-{number}", create_only)
            write_private(self.bundles / name, dumps_pretty(bundle))
            self.index.append(
                {"file": f"bundles/{name}", "patient": f"Patient/{pid}", "entries": len(resources)}
            )

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


def _required(patient: dict[str, Any] | None) -> dict[str, Any]:
    if patient is None:
        raise AssertionError("a patient's Bundles start with its Patient")
    return patient


class _PartitionIndex:
    """Where each record of one partition is: per patient, (sequence, resources, where) with
    where = (file number, offset, length) of its JSON array. The patient's Patient group (the
    record holding its Patient) sorts first. Only line heads are held, never the resources."""

    def __init__(self, paths: list[Path], dropped: set[int]) -> None:
        self.handles: list[IO[bytes] | None] = []
        # patient -> flat array: holds_patient, sequence, count, file, offset, length per record
        self.patients: dict[str, array[int]] = {}
        for number, path in enumerate(paths):
            handle = open(path, "rb") if path.exists() else None  # noqa: SIM115 (closed in exit)
            self.handles.append(handle)
            if handle is not None:
                self._scan(number, handle, dropped)

    def _scan(self, number: int, handle: IO[bytes], dropped: set[int]) -> None:
        offset = 0
        for patient, sequence, count, kind, head, size in _heads(handle):
            if sequence not in dropped:
                found = self.patients.get(patient)
                if found is None:
                    found = self.patients[patient] = array("q")
                first = 0 if kind == b"P" else 1
                found.extend((first, sequence, count, number, offset + head, size))
            offset += head + size + 1

    def records(self, patient: str) -> _Records:
        """The patient's records: its Patient group first, then in input order."""
        flat = self.patients.pop(patient)
        order = sorted(range(len(flat) // 6), key=lambda row: (flat[6 * row], flat[6 * row + 1]))
        return _Records(flat, order)

    def read(self, records: _Records, position: int) -> list[dict[str, Any]]:
        """The resources of the record at `position` (in the order of `records`)."""
        row = 6 * records.order[position]
        number, offset, size = records.flat[row + 3 : row + 6]
        handle = self.handles[number]
        assert handle is not None
        handle.seek(offset)
        resources: list[dict[str, Any]] = orjson.loads(handle.read(size))
        return resources

    def __enter__(self) -> _PartitionIndex:
        return self

    def __exit__(self, *_: object) -> None:
        close_all(self.handles)


@dataclass(frozen=True, slots=True)
class _Records:
    """One patient's records in a partition: the flat rows (holds_patient, sequence, count,
    file, offset, length) and the order to write them in (a few dozen bytes a record)."""

    flat: array[int]
    order: list[int]

    def counts(self) -> list[int]:
        return [self.flat[6 * row + 2] for row in self.order]


def _heads(handle: IO[bytes]) -> Iterator[tuple[str, int, int, bytes, int, int]]:
    """(patient, sequence, resources, kind, head length, array length) of each partition line;
    the line's bytes are dropped once its head is read."""
    for line in handle:
        first = line.index(b"\t")
        second = line.index(b"\t", first + 1)
        third = line.index(b"\t", second + 1)
        fourth = line.index(b"\t", third + 1)
        yield (
            line[:first].decode(),
            int(line[first + 1 : second]),
            int(line[second + 1 : third]),
            line[third + 1 : fourth],
            fourth + 1,
            len(line) - fourth - 2,
        )


def _chunks(counts: list[int], max_entries: int) -> list[list[int]]:
    """Split a patient's records (their numbers of resources, the Patient group first) into
    Bundles of at most max_entries entries: positions of the records in each Bundle.

    A record is never split (its resources reference each other), and every Bundle starts
    with the Patient (the Patient group in the first, the Patient alone in the others), so each
    one imports on its own, in any order. The limit is hard: the workers reject a record whose
    resources and the Patient exceed it (bundle.record-too-large).
    """
    chunks: list[list[int]] = [[0]]
    size = counts[0]
    for position in range(1, len(counts)):
        count = counts[position]
        if size + count > max_entries:
            if count + 1 > max_entries:
                raise AssertionError("a record over --max-entries reached the Bundles")
            chunks.append([])
            size = 1  # the Patient
        chunks[-1].append(position)
        size += count
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
