"""CSV as spreadsheets and attackers write it (issue 19 item 6, issue 25 item 5)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.input import readers
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.readers import TOO_LARGE, ReadOptions, read_records
from tests.cli_args import with_source_system

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


# --- spreadsheet habits (issue 19 item 6) -------------------------------------------------------

DIARY_HEADER = "record_type,entry_id,patient_id,date,headache,onset,severity,laterality,symptoms"


def found(records: list[RawRecord]) -> list[tuple[int | None, str, str]]:
    return [(r.source.row, p.code, p.path) for r in records for p in r.problems]


def test_a_semicolon_separated_file_is_read_with_one_warning(tmp_path: Path) -> None:
    content = (
        DIARY_HEADER.replace(",", ";") + "\n"
        'diary-entry;e1;p1;2026-03-01;true;2026-03-01T10:00:00Z;7;left;"nausea;vomiting"\n'
        "diary-entry;e2;p1;2026-03-02;false;;;;\n"
    )
    notice, first, second = read(tmp_path, content)
    assert (notice.notice, found([notice])) == ("file", [(1, "read.csv-delimiter", "$")])
    assert isinstance(first.data, dict) and first.problems == ()
    assert first.data["symptoms"] == ["nausea", "vomiting"]
    assert (second.source.row, second.problems) == (3, ())


def test_a_trailing_empty_header_column_is_dropped(tmp_path: Path) -> None:
    content = (
        "record_type,entry_id,patient_id,date,headache,\n"
        "diary-entry,e1,p1,2026-03-01,false,\n"  # Excel's trailing comma
        "diary-entry,e2,p1,2026-03-02,false\n"  # or none
        "diary-entry,e3,p1,2026-03-03,false,oops\n"  # a value under no name: refused
    )
    first, second, third = read(tmp_path, content)
    assert first.problems == () and second.problems == ()
    assert isinstance(first.data, dict) and "" not in first.data
    assert found([third]) == [(4, "read.csv-row-shape", "$")]
    assert "column the header gives no name" in third.problems[0].message


def test_excel_booleans_codes_in_capitals_and_spaces_are_read_with_a_warning_each(
    tmp_path: Path,
) -> None:
    content = (
        DIARY_HEADER
        + ",medications,notes\n"
        + "diary-entry,e1,p1,2026-03-01,TRUE,2026-03-01T10:00:00Z, 7 ,Left,nausea; Vomiting,"
        + "Ibuprofen: 400:Partial,  two spaces kept  \n"
    )
    [record] = read(tmp_path, content)
    assert isinstance(record.data, dict)
    assert (record.data["headache"], record.data["severity"], record.data["laterality"]) == (
        True,
        7,
        "left",
    )
    assert record.data["symptoms"] == ["nausea", "vomiting"]
    assert record.data["medications"] == [
        {"drug": "ibuprofen", "dose_mg": 400, "relief": "partial"}
    ]
    assert record.data["notes"] == "  two spaces kept  "  # free text is never changed
    assert sorted(found([record])) == [
        (2, "read.csv-boolean", "$.headache"),
        (2, "read.csv-case", "$.laterality"),
        (2, "read.csv-case", "$.medications[0].drug"),
        (2, "read.csv-case", "$.medications[0].relief"),
        (2, "read.csv-case", "$.symptoms[1]"),
        (2, "read.csv-trimmed", "$.medications[0].dose_mg"),
        (2, "read.csv-trimmed", "$.severity"),
        (2, "read.csv-trimmed", "$.symptoms[1]"),
    ]
    assert all(p.severity.value == "warning" for p in record.problems)
    [case] = [p for p in record.problems if p.path == "$.laterality"]
    assert case.message == "laterality: 'Left' read as 'left' (codes are lower case)"


def test_a_value_that_is_no_spelling_of_a_code_is_still_refused(tmp_path: Path) -> None:
    from migrainefhir.input.model import ParseOptions, parse_record

    content = DIARY_HEADER + "\ndiary-entry,e1,p1,2026-03-01,yes,2026-03-01T10:00:00Z,7,Links,\n"
    [raw] = read(tmp_path, content)
    _, problems = parse_record(raw, ParseOptions())
    assert [(p.code, p.path) for p in problems] == [
        ("input.type", "$.headache"),
        ("input.enum", "$.laterality"),
    ]


def export(tmp_path: Path, *files: Path) -> tuple[int, str, dict[str, int]]:
    out = tmp_path / "out"
    args = ["export", *map(str, files), "--out", str(out), "--timestamp", "2026-07-01T00:00:00Z"]
    result = CliRunner().invoke(cli, with_source_system(args))
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    return result.exit_code, result.output, summary


def test_one_bad_header_rejects_its_file_once_and_the_other_files_are_exported(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "a.csv"
    rows = "".join(f"diary-entry,e{n},p1,2026-03-01,false,x\n" for n in range(50))
    bad.write_text("record_type,entry_id,patient_id,date,headache,sevrity\n" + rows)
    good = tmp_path / "b.csv"
    good.write_text(
        "record_type,entry_id,patient_id,date,headache\ndiary-entry,g1,p1,2026-03-01,false\n"
    )
    code, output, summary = export(tmp_path, bad, good)
    assert code == 1
    assert "Traceback" not in output
    assert (summary["records_read"], summary["records_exported"], summary["records_rejected"]) == (
        2,
        1,
        1,
    )
    rejects = (tmp_path / "out" / "rejects.ndjson").read_text("utf-8").splitlines()
    assert len(rejects) == 1 and '"read.csv-header"' in rejects[0]
    check = CliRunner().invoke(cli, ["check", str(bad)])
    assert check.output.count("sevrity") == 1  # reported once, for the header, not per row


def test_header_names_with_spaces_or_capitals_are_read_with_one_warning_each(
    tmp_path: Path,
) -> None:
    content = (
        "Record_Type, Entry_ID ,patient_id,date,headache\ndiary-entry,e1,p1,2026-03-01,false\n"
    )
    trimmed, cased, record = read(tmp_path, content)
    assert found([trimmed, cased]) == [(1, "read.csv-trimmed", "$"), (1, "read.csv-case", "$")]
    assert (trimmed.notice, cased.notice) == ("file", "file")
    assert record.problems == ()
    assert isinstance(record.data, dict) and record.data["entry_id"] == "e1"
