"""RawRecord: one record as a reader found it, before the contract is checked."""

from __future__ import annotations

from dataclasses import dataclass

from migrainefhir.input.records import RECORD_TYPES
from migrainefhir.problems import Problem, Source

# RawRecord.notice: the kinds of note about a whole file that a reader gives instead of records.
FILE_NOTE = "file"  # a warning about the file (no records in it, a ;-separated CSV)
FILE_SKIPPED = "skipped-file"  # the file holds no input records (a Bulk manifest): skipped
NOTICES = (FILE_NOTE, FILE_SKIPPED)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One input record, verbatim, with where it came from.

    `data` is the decoded JSON value (a dict when the record is well formed; for CSV, the row
    already turned into the JSON shape of the contract), or None when the line or row could not
    be decoded at all. `original` is what goes, verbatim, to the rejects output: the JSON value
    as read, the CSV row as {column: cell text}, or the undecodable line as text.
    `problems` are the reader's own findings (malformed line, bad CSV cell); a record with a
    reader error is rejected without further checks.

    A `notice` (FILE_NOTE, FILE_SKIPPED) is not a record at all: a warning about a whole file
    (its `problems`), counted in no record count (read = exported + rejected + skipped stays
    true); FILE_SKIPPED is counted as a skipped file.
    """

    source: Source
    data: object
    original: object
    problems: tuple[Problem, ...] = ()
    notice: str | None = None

    @property
    def record_type(self) -> str:
        """The record's declared type, or "unknown" when it is missing or not a known type.

        Used to count records per type, so no unchecked input string ever becomes a key.
        """
        if isinstance(self.data, dict):
            declared = self.data.get("record_type")
            if declared in RECORD_TYPES:
                return str(declared)
        return "unknown"
