"""The part files of one shard: what a worker writes and the merge reads back.

Per shard: `index` (one JSON array per record: its outcome, key, patient, resource counts,
problems and source), `type-<Type>` (resource lines, NDJSON format), `partition-NN` (a record's
resources grouped by patient, for the Bundle formats) and `rejects` / `outcomes` (the reject
lines). The formats live here, so that writer and reader cannot disagree.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from migrainefhir.export.output import open_private
from migrainefhir.input.intake import InputOptions
from migrainefhir.problems import Problem, Source
from migrainefhir.validate.outcome import operation_outcome

# Index line fields: one JSON array per record (see ShardWorker.run).
EXPORTED, REJECTED, SKIPPED = "x", "r", "s"
# Not a record: a note about a whole input file (RawRecord.notice), its kind in the type field.
NOTICE = "n"


# A type's part file gets a resource line of about 1 KB at a time: with the default 8 KiB
# buffer, a system call every few lines (2.4 us per line written; 1.3 us with this one). A
# shard has a handful of types; the 64 patient partitions keep the default buffer.
_TYPE_BUFFER = 256 * 1024


class PartWriter:
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

    def partition(
        self, patient: str, sequence: int, texts: list[bytes], holds_patient: bool = False
    ) -> None:
        name = f"partition-{partition_of(patient):02d}"
        self._handle(name).write(partition_line(patient, sequence, texts, holds_patient))

    def reject(self, source: Source, original: object, problems: list[Problem]) -> None:
        line, outcome = reject_lines(source, original, problems)
        self._handle("rejects").write(line)
        self._handle("outcomes").write(outcome)

    def close(self) -> None:
        close_all(self.handles.values())


class PartReader:
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
        if outcome == REJECTED:
            self.reject()
        for resource_type, (_, size) in (counts or {}).items():
            self.resource_file(resource_type).seek(size, os.SEEK_CUR)

    def close(self) -> None:
        close_all(self.handles.values())


def reject_lines(source: Source, original: object, problems: list[Problem]) -> tuple[bytes, bytes]:
    """The rejects.ndjson line (record verbatim with its problems) and its OperationOutcome."""
    line = {
        "source": source.to_json(),
        "record": original,
        "problems": [problem.to_json() for problem in problems],
    }
    return dumps(line) + b"\n", dumps(operation_outcome(problems)) + b"\n"


# What rejects.ndjson holds instead of the record in a de-identified (research) export: the
# original would carry the very names, ids and free text --deidentify strips. The source file
# and line still say where to find it.
WITHHELD_RECORD = "withheld: --deidentify"


def rejected_original(original: object, input_options: InputOptions) -> object:
    return WITHHELD_RECORD if input_options.deidentifier is not None else original


# Bundle formats group resources by patient through this many spill files, so memory holds
# one partition at a time, not the whole export.
PATIENT_PARTITIONS = 64


def partition_line(
    patient: str, sequence: int, texts: list[bytes], holds_patient: bool = False
) -> bytes:
    """`patient TAB sequence TAB resources TAB P|r TAB [resources]`: the record's resources as
    one JSON array (orjson's own form of the list, from the resources' texts), their number,
    and whether the first is the patient's Patient (a patient record, or a stub). Patient ids
    follow the contract's id rule (no tab): the grouping reads them unparsed, and reads only
    these heads until it writes a Bundle (PartitionIndex)."""
    kind = b"P" if holds_patient else b"r"
    head = b"%s\t%d\t%d\t%s\t" % (patient.encode(), sequence, len(texts), kind)
    return head + b"[" + b",".join(texts) + b"]\n"


def partition_of(patient: str) -> int:
    digest = hashlib.blake2b(patient.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % PATIENT_PARTITIONS


def close_all(handles: Iterable[IO[bytes] | None]) -> None:
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


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)
