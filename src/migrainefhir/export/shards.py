"""Shards: the unit of work of a parallel export, planned by the parent, read by a worker.

An NDJSON file is split at line boundaries into byte ranges; the parent counts the lines
before each split, so a worker reading a range still names the file's own 1-based line
numbers. JSON and CSV files are whole-file shards (a JSON array's element positions and a CSV
header are only known by reading from the start). A file that starts with a UTF-16/32 byte
order mark is one shard: the reader rejects it as a whole.

Shards are listed in input order, so merging their results in list order gives the output a
single pass would have written, whatever the number of workers.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from migrainefhir.errors import InputUnreadable, UsageError
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.readers import (
    STDIN,
    STDIN_NAME,
    ReadOptions,
    _extension_format,
    _read_stream,
    _wide_bom,
    expand_inputs,
    read_ndjson,
    skipped_ndjson_notice,
)

# A range smaller than this is not worth a worker's round trip; larger ones balance badly.
MIN_SHARD_BYTES = 256 * 1024
MAX_SHARD_BYTES = 8 * 1024 * 1024  # small enough that the merge keeps up with the workers
# Each range is at most this share of the input left (it included) per job, so ranges shrink
# towards the end of the input: the workers finish close together, and the merge left to do
# once the last one has finished is small.
TAPER = 2
_CHUNK = 8 * 1024 * 1024

# Opens an input file that is not on this machine's disk, for reading.
Opener = Callable[[str], BinaryIO]


@dataclass(frozen=True, slots=True)
class Shard:
    """One file, or the byte range [start, end) of an NDJSON file whose first line is
    `first_line`. `end` None means to the end of the file."""

    number: int
    file: str
    name: str  # the file's name in Sources ("<stdin>" for standard input spooled to `file`)
    start: int = 0
    end: int | None = None
    first_line: int = 1
    # At least as many as the shard's records: its lines (None: not counted, a JSON file).
    most_records: int | None = None

    @property
    def whole_file(self) -> bool:
        return self.start == 0 and self.end is None

    def describe(self) -> str:
        """The shard as a message names it: the file, and where its range starts."""
        return self.name if self.whole_file else f"{self.name} from line {self.first_line}"


def input_files(paths: Sequence[str], options: ReadOptions) -> list[str]:
    """The files to read (readers.expand_inputs), checked before anything is written."""
    files = expand_inputs(paths, options.input_format)
    if STDIN in files and options.input_format is None:
        raise UsageError("reading standard input ('-') needs --input-format (json, ndjson or csv)")
    return files


def plan_shards(
    files: Sequence[str], options: ReadOptions, jobs: int, stdin_copy: str | None = None
) -> list[Shard]:
    """The shards of every input file, in input order. Standard input must have been copied to
    the file `stdin_copy` (it is read like a file, under the name "<stdin>")."""
    real = [stdin_copy if file == STDIN and stdin_copy else file for file in files]
    sizes = [_size(file) for file in real]
    left_after = [sum(sizes[index + 1 :]) for index in range(len(sizes))]
    shards: list[Shard] = []
    for given, file, size, after in zip(files, real, sizes, left_after, strict=True):
        name = STDIN_NAME if given == STDIN else given
        form = options.input_format or _extension_format(file)
        if jobs > 1 and form == "ndjson" and size > 2 * range_bytes(size + after, jobs):
            ranges = _ndjson_ranges(file, size, after, jobs)
        else:
            lines = _count_lines(file, size) if form in ("ndjson", "csv") else None
            ranges = [(0, None, 1, lines)]
        for start, end, first_line, lines in ranges:
            shards.append(Shard(len(shards), file, name, start, end, first_line, lines))
    return shards


def range_bytes(left: int, jobs: int) -> int:
    """The size of the next NDJSON range when `left` bytes of input are still to be shared
    out: 1/TAPER of each job's share, within MIN_SHARD_BYTES and MAX_SHARD_BYTES."""
    return min(MAX_SHARD_BYTES, max(MIN_SHARD_BYTES, left // (jobs * TAPER)))


def _size(file: str) -> int:
    try:
        return os.path.getsize(file)
    except OSError as exc:
        raise InputUnreadable(f"{file}: cannot be opened ({exc.strerror})") from exc


def _ndjson_ranges(
    file: str, size: int, after: int, jobs: int
) -> list[tuple[int, int | None, int, int | None]]:
    """(start, end, first line, lines) of each range: every split is just after a newline,
    and a range is about range_bytes long for what is left of this file and the `after` bytes
    of the files after it."""
    try:
        with open(file, "rb") as handle:
            if _wide_bom(handle.read(4)) is not None:
                return [(0, None, 1, None)]
            starts = [0]
            while (wanted := starts[-1] + range_bytes(size - starts[-1] + after, jobs)) < size:
                split = _next_line_start(handle, wanted)
                if split is None or split >= size:
                    break
                starts.append(split)
            # A range's lines: its newlines, and one more for a last line without any.
            lines = [
                _count_newlines(handle, start, end) + 1
                for start, end in itertools.pairwise([*starts, size])
            ]
    except OSError as exc:
        raise InputUnreadable(f"{file}: reading failed ({exc.strerror})") from exc
    first_lines = list(
        itertools.accumulate(lines[:-1], lambda first, count: first + count - 1, initial=1)
    )
    ends: list[int | None] = [*starts[1:], None]
    return list(zip(starts, ends, first_lines, lines, strict=True))


def _count_lines(file: str, size: int) -> int | None:
    """The lines of a whole file (None if it cannot be read: the worker reports that)."""
    try:
        with open(file, "rb") as handle:
            return _count_newlines(handle, 0, size) + 1
    except OSError:
        return None


def _next_line_start(handle: BinaryIO, offset: int) -> int | None:
    """The first line start at or after `offset` (None: no newline before the end)."""
    handle.seek(offset - 1)
    position = offset - 1
    while True:
        chunk = handle.read(64 * 1024)
        if not chunk:
            return None
        found = chunk.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(chunk)


def _count_newlines(handle: BinaryIO, start: int, end: int) -> int:
    handle.seek(start)
    count, left = 0, end - start
    while left > 0:
        chunk = handle.read(min(_CHUNK, left))
        if not chunk:
            break
        count += chunk.count(b"\n")
        left -= len(chunk)
    return count


class _Range:
    """A binary file read only up to `end` (readline is all read_ndjson uses)."""

    def __init__(self, handle: BinaryIO, end: int | None) -> None:
        self.handle = handle
        self.left = None if end is None else end - handle.tell()

    def readline(self, limit: int = -1) -> bytes:
        if self.left is None:
            return self.handle.readline(limit)
        if self.left <= 0:
            return b""
        line = self.handle.readline(self.left if limit < 0 else min(limit, self.left))
        self.left -= len(line)
        return line


def read_shard(shard: Shard, options: ReadOptions) -> Iterator[RawRecord]:
    """The shard's records, with the Sources a single pass over the whole file would give."""
    if shard.whole_file:
        yield from read_whole_file(shard.file, shard.name, options)
        return
    skipped = skipped_ndjson_notice(shard.file, shard.name)
    if skipped is not None:  # FHIR NDJSON, not records: one notice, from the first range
        if shard.start == 0:
            yield skipped
        return
    try:
        handle = open(shard.file, "rb")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise InputUnreadable(f"{shard.file}: cannot be opened ({exc.strerror})") from exc
    with handle:
        handle.seek(shard.start)
        try:
            yield from read_ndjson(
                _Range(handle, shard.end),  # type: ignore[arg-type]
                shard.name,
                shard.first_line,
                whole_file=False,
            )
        except OSError as exc:
            raise InputUnreadable(f"{shard.name}: reading failed ({exc.strerror})") from exc


def read_whole_file(
    file: str, name: str, options: ReadOptions, opener: Opener | None = None
) -> Iterator[RawRecord]:
    """Every record of one file, named `name` in its Sources. `opener` opens files that are
    not local (export/hadoop.py); it raises InputUnreadable."""
    try:
        handle = opener(file) if opener is not None else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputUnreadable(f"{name}: cannot be opened ({exc.strerror})") from exc
    with handle:
        yield from _read_stream(handle, name, file, options)


# --- shards whose bytes another reader gives (Spark's file sources: spark_uris.py) ----------


def read_given_lines(shard: Shard, lines: Iterable[bytes]) -> Iterator[RawRecord]:
    """The records of a range of an NDJSON file, given as its lines without their "\n": the
    records read_shard gives for the same lines."""
    return read_ndjson(
        _GivenLines(lines),  # type: ignore[arg-type]
        shard.name,
        shard.first_line,
        whole_file=False,
    )


def read_given_file(shard: Shard, content: bytes, options: ReadOptions) -> Iterator[RawRecord]:
    """The records of a whole file, given as its bytes."""
    return _read_stream(io.BytesIO(content), shard.name, shard.file, options)


class _GivenLines:
    """Lines without their line end, as a binary file read only by readline (all read_ndjson
    uses): each line comes back with "\n", in pieces of at most `limit` bytes."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self.lines = iter(lines)
        self.rest = b""

    def readline(self, limit: int = -1) -> bytes:
        if not self.rest:
            line = next(self.lines, None)
            if line is None:
                return b""
            self.rest = line + b"\n"
        if 0 <= limit < len(self.rest):
            piece, self.rest = self.rest[:limit], self.rest[limit:]
            return piece
        piece, self.rest = self.rest, b""
        return piece
