"""Intake: read every input record and check it against the contract, one at a time.

The first two stages of the one-way flow (read -> check + parse), shared by every command.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from migrainefhir.contract import DuplicateIds
from migrainefhir.model import ParseOptions, parse_record
from migrainefhir.problems import Problem, has_errors
from migrainefhir.raw import RawRecord
from migrainefhir.readers import ReadOptions, read_records
from migrainefhir.records import Record


@dataclass(frozen=True, slots=True)
class InputOptions:
    """How to read and interpret input records (--input-format, --record-type, --timezone)."""

    read: ReadOptions = field(default_factory=ReadOptions)
    parse: ParseOptions = field(default_factory=ParseOptions)


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
    duplicates = DuplicateIds()
    for raw in read_records(paths, options.read):
        record, problems = parse_record(raw, options.parse)
        if record is not None:
            problems = problems + duplicates.check(record.record_type, record.record_id, raw.source)
            if has_errors(problems):
                record = None
        yield CheckedRecord(raw, record, problems)
