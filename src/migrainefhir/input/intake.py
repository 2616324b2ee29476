"""Intake: read every input record and check it against the contract, one at a time.

The first two stages of the one-way flow (read -> check + parse), shared by every command.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from migrainefhir.errors import TemporaryUnwritable
from migrainefhir.input.contract import _ID_FIELDS, DUPLICATE_ID, DuplicateIds
from migrainefhir.input.deidentify import Deidentifier
from migrainefhir.input.model import ParseOptions, parse_record
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.readers import ReadOptions, read_records
from migrainefhir.input.records import Record
from migrainefhir.problems import Problem, Severity, Source, has_errors


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
    # The record's own recorded_at, as the source wrote it: before --deidentify shifts the
    # record's dates, so `export --since` compares the true time.
    recorded_at: datetime | None = None

    @property
    def accepted(self) -> bool:
        return self.record is not None

    @property
    def notice(self) -> str | None:
        """Not a record but a note about a whole file (RawRecord.notice): count no record."""
        return self.raw.notice


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
        if raw.notice is not None:
            yield CheckedRecord(raw, None, list(raw.problems))
            continue
        record, problems = parse_record(raw, options.parse)
        if record is not None and has_errors(problems):
            record = None
        recorded_at = None if record is None else record.recorded_at
        if record is not None and options.deidentifier is not None:
            record = options.deidentifier.apply(record)
        yield CheckedRecord(raw, record, problems, recorded_at)


# One slot of the table: 8-byte hash of (record type, id) (0 = empty), the packed first Source,
# and where the exact key is in the key file. At most 2/3 of the slots are used; a full table
# is copied into one twice its size.
_SLOT = struct.Struct("<QQQ")
_EMPTY = 0
_MAX_LOAD = 2 / 3
_FIRST_SLOTS = 1 << 16
_PROBE_BLOCK = 8  # slots read by one system call while probing
_GROW_BATCH = 1 << 16  # slots read at a time while the table is copied into a larger one
_FLUSH_BYTES = 1024 * 1024


class CompactDuplicateIds(DuplicateIds):
    """DuplicateIds whose process memory does not grow with the run (a dict of id strings
    takes about 130 bytes per id: 130 MB for 1M ids).

    An open-addressing table of 64-bit hashes in a private temporary file (24 to 72 bytes of
    disk per id), read and written with pread/pwrite: the kernel keeps in its page cache what
    memory allows and writes the rest out, which it cannot do with a process's own memory.
    Each key is appended to a second file, and a hash match is confirmed by reading the key
    back, so two different ids whose hashes collide are never reported as duplicates: the
    answer is exact. The price is two system calls per id (bench/duplicate_ids.py).
    """

    def __init__(self, expected: int = 0) -> None:
        """`expected`: about how many ids the run has; a table that holds them from the start
        is never copied into a larger one (which costs two system calls per id)."""
        super().__init__()
        self._table = _SlotFile(_slots_for(expected))
        self._used = 0
        # Keys are appended to a private, already unlinked file; the newest stay in `_pending`
        # until it is large, so an insert costs no extra system call.
        try:
            self._keys = _temporary_file()
        except BaseException:
            self._table.close()
            raise
        self._written = 0  # bytes of keys in the file; the rest are in _pending
        self._pending = bytearray()

    def check(self, record_type: str, record_id: str, source: Source) -> list[Problem]:
        """[] for the first record with this type and id; else input.duplicate-id.

        Raises TemporaryUnwritable (naming TMPDIR) when the table's files cannot be written.
        """
        try:
            return self._check(record_type, record_id, source)
        except OSError as exc:
            raise _unwritable(exc) from exc

    def _check(self, record_type: str, record_id: str, source: Source) -> list[Problem]:
        key = f"{record_type}\x00{record_id}".encode()
        hashed = _hash(key)
        table = self._table
        slot, first = table.find(hashed, lambda offset: self._key_at(offset, len(key)) == key)
        if first is not None:
            return self._duplicate(record_type, record_id, first, source)
        table.write(slot, hashed, self._pack(source), self._written + len(self._pending))
        self._pending += key
        if len(self._pending) >= _FLUSH_BYTES:
            self._flush()
        self._used += 1
        if self._used > table.slots * _MAX_LOAD:
            self._table = table.grown()
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

    def close(self) -> None:
        self._table.close()
        self._keys.close()


def _temporary_file() -> IO[bytes]:
    """A private, already unlinked temporary file in TMPDIR; TemporaryUnwritable when none can
    be made (a full or unwritable TMPDIR is named as such, not as the output folder)."""
    try:
        return tempfile.TemporaryFile()
    except OSError as exc:
        raise _unwritable(exc) from exc


def _unwritable(exc: OSError) -> TemporaryUnwritable:
    try:
        where = tempfile.gettempdir()
    except OSError:
        where = os.environ.get("TMPDIR") or "the temporary folder"
    reason = exc.strerror or str(exc)
    return TemporaryUnwritable(
        f"cannot write a temporary file in {where} (TMPDIR): {reason}; set TMPDIR to a "
        "private folder with room"
    )


def _hash(key: bytes) -> int:
    """The key's 64-bit hash, never 0 (an empty slot): Python's own (SipHash, keyed afresh in
    each process, which is as long as a table lives), a fifth of blake2b's time."""
    return hash(key) & 0xFFFF_FFFF_FFFF_FFFF or 1


def _slots_for(ids: int) -> int:
    """The fewest slots, a power of two, that hold `ids` within the load limit."""
    slots = _FIRST_SLOTS
    while ids > slots * _MAX_LOAD:
        slots *= 2
    return slots


class _SlotFile:
    """An open-addressing table of `slots` slots (linear probing) in a private temporary file.
    The file starts sparse: an unwritten slot reads as zeros, that is, empty."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._mask = slots - 1
        self._file = _temporary_file()
        self._fd = self._file.fileno()
        try:
            os.ftruncate(self._fd, slots * _SLOT.size)
        except OSError as exc:
            self._file.close()
            raise _unwritable(exc) from exc

    def find(self, hashed: int, is_key: Callable[[int], bool]) -> tuple[int, int | None]:
        """The slot holding `hashed` whose key is_key(key offset) confirms, with the first
        Source (packed); else the first empty slot of the hash's probe sequence, with None.
        Slots are read _PROBE_BLOCK at a time: a probe usually ends within a few slots, and a
        system call costs more than reading a few more bytes."""
        slot = hashed & self._mask
        while True:
            count = min(_PROBE_BLOCK, self.slots - slot)
            block = os.pread(self._fd, count * _SLOT.size, slot * _SLOT.size)
            for found, first, offset in _SLOT.iter_unpack(block):
                if found == _EMPTY:
                    return slot, None
                if found == hashed and is_key(offset):
                    return slot, first
                slot += 1
            slot &= self._mask

    def write(self, slot: int, hashed: int, first: int, offset: int) -> None:
        os.pwrite(self._fd, _SLOT.pack(hashed, first, offset), slot * _SLOT.size)

    def grown(self) -> _SlotFile:
        """A table twice the size with every entry of this one (which is closed)."""
        bigger = _SlotFile(2 * self.slots)
        try:
            for start in range(0, self.slots, _GROW_BATCH):
                batch = os.pread(self._fd, _GROW_BATCH * _SLOT.size, start * _SLOT.size)
                for hashed, first, offset in _SLOT.iter_unpack(batch):
                    if hashed != _EMPTY:
                        bigger.add(hashed, first, offset)
        except BaseException:  # a full disk, an interrupt: the caller still closes this one
            bigger.close()
            raise
        self.close()
        return bigger

    def add(self, hashed: int, first: int, offset: int) -> None:
        """Put an entry (whose key is in no other) in the first empty slot of its probe
        sequence."""
        slot, _ = self.find(hashed, lambda _offset: False)
        self.write(slot, hashed, first, offset)

    def close(self) -> None:
        self._file.close()
