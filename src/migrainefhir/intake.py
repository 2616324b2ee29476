"""Intake: read every input record and check it against the contract, one at a time.

The first two stages of the one-way flow (read -> check + parse), shared by every command.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from migrainefhir.contract import _ID_FIELDS, DUPLICATE_ID, DuplicateIds
from migrainefhir.deidentify import Deidentifier
from migrainefhir.model import ParseOptions, parse_record
from migrainefhir.problems import Problem, Severity, Source, has_errors
from migrainefhir.raw import RawRecord
from migrainefhir.readers import ReadOptions, read_records
from migrainefhir.records import Record


@dataclass(frozen=True, slots=True)
class InputOptions:
    """How to read and interpret input records (--input-format, --record-type, --timezone),
    and, for research export (--deidentify), the pseudonymisation applied to every accepted
    record before anything is converted."""

    read: ReadOptions = field(default_factory=ReadOptions)
    parse: ParseOptions = field(default_factory=ParseOptions)
    deidentifier: Deidentifier | None = None


@dataclass(frozen=True, slots=True)
class CheckedRecord:
    """One input record after the contract: a typed record, or None when it is rejected."""

    raw: RawRecord
    record: Record | None
    problems: list[Problem]

    @property
    def accepted(self) -> bool:
        return self.record is not None


def checked_records(paths: Sequence[str], options: InputOptions) -> Iterator[CheckedRecord]:
    """Read every input record and check it against the contract, one at a time.

    Raises errors.InputUnreadable / UsageError before the first record when an input path
    cannot be read at all; every problem with the data itself comes back as Problems.
    """
    records = read_records(paths, options.read)
    duplicates = CompactDuplicateIds()
    try:
        for checked in check_each(records, options):
            record = checked.record
            if record is None:
                yield checked
                continue
            found = duplicates.check(record.record_type, record.record_id, checked.raw.source)
            if found:
                yield CheckedRecord(checked.raw, None, checked.problems + found)
            else:
                yield checked
    finally:
        duplicates.close()


def check_each(raws: Iterable[RawRecord], options: InputOptions) -> Iterator[CheckedRecord]:
    """The contract on each record on its own: everything but duplicate ids, which need the
    whole run (a parallel export checks those when it merges its shards, in input order)."""
    for raw in raws:
        record, problems = parse_record(raw, options.parse)
        if record is not None and has_errors(problems):
            record = None
        if record is not None and options.deidentifier is not None:
            record = options.deidentifier.apply(record)
        yield CheckedRecord(raw, record, problems)


# One slot: 8-byte hash of (record type, id), the packed first Source, and where the exact key
# is in the key file. At most 2/3 of the slots are used: about 36 bytes per id in memory.
_EMPTY = 0
_MAX_LOAD = 2 / 3
_FLUSH_BYTES = 1024 * 1024


class CompactDuplicateIds(DuplicateIds):
    """DuplicateIds in about 36 bytes per id (a dict of id strings takes about 130).

    An open-addressing table of 64-bit hashes; each key is also appended to a private temporary
    file, and a hash match is confirmed by reading the key back, so two different ids whose
    hashes collide are never reported as duplicates: the answer is exact.
    """

    def __init__(self) -> None:
        super().__init__()
        self._hashes = array("Q", bytes(8 * 1024))
        self._firsts = array("Q", bytes(8 * 1024))
        self._offsets = array("Q", bytes(8 * 1024))
        self._used = 0
        # Keys are appended to a private, already unlinked file; the newest stay in `_pending`
        # until it is large, so an insert costs no system call.
        self._keys = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the tracker)
        self._written = 0  # bytes of keys in the file; the rest are in _pending
        self._pending = bytearray()

    def check(self, record_type: str, record_id: str, source: Source) -> list[Problem]:
        """[] for the first record with this type and id; else input.duplicate-id."""
        key = f"{record_type}\x00{record_id}".encode()
        hashed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") or 1
        hashes = self._hashes
        mask = len(hashes) - 1
        slot = hashed & mask
        while hashes[slot] != _EMPTY:
            if hashes[slot] == hashed and self._key_at(self._offsets[slot], len(key)) == key:
                return self._duplicate(record_type, record_id, self._firsts[slot], source)
            slot = (slot + 1) & mask
        hashes[slot] = hashed
        self._firsts[slot] = self._pack(source)
        self._offsets[slot] = self._written + len(self._pending)
        self._pending += key
        if len(self._pending) >= _FLUSH_BYTES:
            self._flush()
        self._used += 1
        if self._used > len(hashes) * _MAX_LOAD:
            self._grow()
        return []

    def _flush(self) -> None:
        os.pwrite(self._keys.fileno(), self._pending, self._written)
        self._written += len(self._pending)
        self._pending.clear()

    def _key_at(self, offset: int, length: int) -> bytes:
        if offset >= self._written:
            start = offset - self._written
            return bytes(self._pending[start : start + length])
        return os.pread(self._keys.fileno(), length, offset)

    def _duplicate(
        self, record_type: str, record_id: str, first: int, source: Source
    ) -> list[Problem]:
        field_name = _ID_FIELDS.get(record_type, "id")
        message = (
            f"duplicate {record_type} {field_name} {record_id}: the first record with this id "
            f"is at {self._unpack(first)}; records are never merged"
        )
        return [Problem(DUPLICATE_ID, Severity.ERROR, message, f"$.{field_name}", source)]

    def _grow(self) -> None:
        old = (self._hashes, self._firsts, self._offsets)
        size = 2 * len(old[0])
        self._hashes = array("Q", bytes(8 * size))
        self._firsts = array("Q", bytes(8 * size))
        self._offsets = array("Q", bytes(8 * size))
        mask = size - 1
        for hashed, first, offset in zip(*old, strict=True):
            if hashed == _EMPTY:
                continue
            slot = hashed & mask
            while self._hashes[slot] != _EMPTY:
                slot = (slot + 1) & mask
            self._hashes[slot] = hashed
            self._firsts[slot] = first
            self._offsets[slot] = offset

    def close(self) -> None:
        self._keys.close()
