"""CSV as spreadsheets and attackers write it (issue 19 item 6, issue 25 item 5)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from migrainefhir.input import readers
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.readers import TOO_LARGE, ReadOptions, read_records

HEADER = "record_type,entry_id,patient_id,date,headache,notes\n"
SMUGGLED = "diary-entry,smuggled,p1,2026-03-05,false,\n"
NEXT_ROW = "diary-entry,d2,p1,2026-03-02,false,ok\n"


def read(tmp_path: Path, content: str | bytes, name: str = "a.csv") -> list[RawRecord]:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return list(read_records([str(path)], ReadOptions()))


def rows_as_csv_reads_them(content: str) -> list[list[str]]:
    limit = csv.field_size_limit()
    csv.field_size_limit(10**8)
    try:
        return list(csv.reader(io.StringIO(content), strict=True))
    finally:
        csv.field_size_limit(limit)


def ids(records: list[RawRecord]) -> list[tuple[int | None, object]]:
    return [
        (r.source.row, r.data.get("entry_id") if isinstance(r.data, dict) else None)
        for r in records
    ]


# --- a record smuggled through an over-long quoted cell (issue 25 item 5) ----------------------


@pytest.mark.parametrize(
    "size",
    [
        200_000,  # over csv's field limit (131,072 characters), within the line limit
        2 * 1024 * 1024,  # over the line limit (1 MiB): the line is never held
    ],
)
def test_an_over_long_quoted_cell_cannot_smuggle_a_row(tmp_path: Path, size: int) -> None:
    content = (
        HEADER
        + 'diary-entry,d1,p1,2026-03-01,false,"'
        + "x" * size
        + "\n"
        + SMUGGLED
        + '"\n'
        + NEXT_ROW
    )
    # Python's csv reads it as two rows: the smuggled text is inside d1's notes.
    assert [row[1] for row in rows_as_csv_reads_them(content)[1:]] == ["d1", "d2"]
    records = read(tmp_path, content)
    assert ids(records) == [(2, None), (3, "d2")]
    assert [p.code for p in records[0].problems] == [TOO_LARGE]
    assert records[1].problems == ()


def test_a_row_over_the_record_limit_is_skipped_to_its_real_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 300)
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 300)
    # Doubled quotes, a delimiter and a quote at the ends of lines: none of them ends the cell.
    cell = '"' + 'say ""hi"",\n' * 20 + SMUGGLED + '"",\n' + "x" * 400 + '\n"'
    content = HEADER + f"diary-entry,d1,p1,2026-03-01,false,{cell}\n" + NEXT_ROW
    assert [row[1] for row in rows_as_csv_reads_them(content)[1:]] == ["d1", "d2"]
    records = read(tmp_path, content)
    assert ids(records) == [(2, None), (3, "d2")]
    assert [p.code for p in records[0].problems] == [TOO_LARGE]


def test_an_over_long_unquoted_line_ends_at_its_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 64)
    content = HEADER + "diary-entry,d1,p1,2026-03-01,false," + "x" * 200 + "\n" + NEXT_ROW
    assert ids(read(tmp_path, content)) == [(2, None), (3, "d2")]


def test_a_quote_opening_a_later_cell_of_an_over_long_line_is_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 64)
    content = HEADER + "diary-entry,d1," + "x" * 100 + ',2026-03-01,false,"a\n' + SMUGGLED
    content += '"\n' + NEXT_ROW
    assert [row[1] for row in rows_as_csv_reads_them(content)[1:]] == ["d1", "d2"]
    assert ids(read(tmp_path, content)) == [(2, None), (3, "d2")]
