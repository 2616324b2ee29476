"""Readers: input paths -> RawRecords, as records.md "Files and formats" says."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import orjson
import pytest

from migrainefhir.errors import InputUnreadable, UsageError
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.readers import (
    CSV_CELL,
    CSV_HEADER,
    CSV_ROW_SHAPE,
    ENCODING,
    JSON_SYNTAX,
    NO_RECORDS,
    NOT_AN_OBJECT,
    TOO_DEEP,
    TOO_LARGE,
    ReadOptions,
    expand_inputs,
    read_records,
)
from migrainefhir.problems import PROBLEM_CODES, Problem, Severity, Source

DATA = Path(__file__).parent / "data" / "readers"
FOLDER = DATA / "folder"

PATIENT_1 = b'{"record_type": "patient", "patient_id": "p1"}'
PATIENT_2 = b'{"record_type": "patient", "patient_id": "p2"}'


def read_file(tmp_path: Path, name: str, content: bytes, **options: str | None) -> list[RawRecord]:
    path = tmp_path / name
    path.write_bytes(content)
    return list(read_records([str(path)], ReadOptions(**options)))


def only_problem(record: RawRecord) -> Problem:
    assert len(record.problems) == 1, record.problems
    return record.problems[0]


def codes(record: RawRecord) -> list[str]:
    return [problem.code for problem in record.problems]


def test_reader_codes_are_registered_as_read_errors() -> None:
    for code in (JSON_SYNTAX, ENCODING, NOT_AN_OBJECT, CSV_ROW_SHAPE, CSV_CELL):
        assert PROBLEM_CODES[code].layer == "read"
        assert PROBLEM_CODES[code].severity is Severity.ERROR


# --- JSON ----------------------------------------------------------------------------------


def test_json_object_file_is_one_record(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "one.json", b"\n\n" + PATIENT_1 + b"\n")
    path = str(tmp_path / "one.json")
    assert record == RawRecord(
        Source(path, line=3),
        {"record_type": "patient", "patient_id": "p1"},
        {"record_type": "patient", "patient_id": "p1"},
    )


def test_json_array_elements_carry_the_line_where_each_starts() -> None:
    records = list(read_records([str(DATA / "diary.json")], ReadOptions()))
    assert [record.source.line for record in records] == [2, 9, 11]
    assert [record.data["entry_id"] for record in records[:2]] == ["e-001", "e-002"]  # type: ignore[index]
    assert all(record.problems == () for record in records)
    assert records[0].original is records[0].data


def test_json_array_two_elements_on_one_line(tmp_path: Path) -> None:
    records = read_file(tmp_path, "a.json", b"[" + PATIENT_1 + b", " + PATIENT_2 + b"]")
    assert [(r.source.line, r.data["patient_id"]) for r in records] == [(1, "p1"), (1, "p2")]  # type: ignore[index]


def test_json_with_utf8_bom_and_crlf(tmp_path: Path) -> None:
    records = read_file(
        tmp_path, "a.json", b"\xef\xbb\xbf[\r\n" + PATIENT_1 + b",\r\n" + PATIENT_2 + b"\r\n]\r\n"
    )
    assert [(r.source.line, r.problems) for r in records] == [(2, ()), (3, ())]


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\xef\xbb\xbf"])
def test_empty_json_file_is_a_syntax_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    [record] = read_file(tmp_path, "empty.json", content)
    assert (record.data, codes(record), record.notice) == (None, [JSON_SYNTAX], None)
    assert str(tmp_path / "empty.json") + " is empty" in record.problems[0].message


@pytest.mark.parametrize("content", [b"[]", b"[ \n ]\n"])
def test_empty_json_array_gives_a_no_records_notice(tmp_path: Path, content: bytes) -> None:
    [notice] = read_file(tmp_path, "empty.json", content)
    assert (notice.notice, codes(notice)) == ("file", [NO_RECORDS])


def test_truncated_json_array_reads_the_elements_before_the_break(tmp_path: Path) -> None:
    content = (
        b"[\n" + PATIENT_1 + b",\n" + PATIENT_2 + b',\n{"record_type": "patient",\n  "patient_id": '
    )
    first, second, rest = read_file(tmp_path, "cut.json", content)
    assert (first.data, second.problems) == ({"record_type": "patient", "patient_id": "p1"}, ())
    assert rest.data is None
    assert rest.source.line == 4
    assert rest.original == '{"record_type": "patient",\n  "patient_id": '
    problem = only_problem(rest)
    assert problem.code == JSON_SYNTAX
    assert problem.source == Source(str(tmp_path / "cut.json"), line=5)


def test_syntax_error_inside_an_array_element_rejects_the_rest(tmp_path: Path) -> None:
    content = b"[\n" + PATIENT_1 + b',\n{"patient_id": p2},\n' + PATIENT_2 + b"\n]"
    good, rest = read_file(tmp_path, "bad.json", content)
    assert good.problems == ()
    assert rest.original == '{"patient_id": p2},\n' + PATIENT_2.decode() + "\n]"
    assert codes(rest) == [JSON_SYNTAX]
    assert rest.problems[0].source == Source(str(tmp_path / "bad.json"), line=3)
    assert "column 16" in rest.problems[0].message


def test_missing_comma_between_array_elements(tmp_path: Path) -> None:
    good, rest = read_file(tmp_path, "bad.json", b"[" + PATIENT_1 + b"\n" + PATIENT_2 + b"]")
    assert good.problems == ()
    assert (rest.original, codes(rest), rest.source.line) == (
        PATIENT_2.decode() + "]",
        [JSON_SYNTAX],
        2,
    )


def test_text_after_the_json_value_is_a_syntax_error(tmp_path: Path) -> None:
    good, rest = read_file(tmp_path, "two.json", PATIENT_1 + b"\n" + PATIENT_2 + b"\n")
    assert good.problems == ()
    assert (rest.original, codes(rest), rest.source.line) == (
        PATIENT_2.decode() + "\n",
        [JSON_SYNTAX],
        2,
    )


def test_json_file_that_is_not_json_at_all(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "junk.json", b"hello")
    assert (record.data, record.original, codes(record)) == (None, "hello", [JSON_SYNTAX])


def test_non_object_array_elements_are_rejected_one_by_one(tmp_path: Path) -> None:
    records = read_file(tmp_path, "mixed.json", b'[1, "x", null, [], ' + PATIENT_1 + b"]")
    assert [codes(r) for r in records] == [[NOT_AN_OBJECT]] * 4 + [[]]
    assert [r.data for r in records[:4]] == [1, "x", None, []]
    assert records[3].problems[0].message == "a record must be a JSON object; this is an array"


def test_json_file_holding_a_single_non_object(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "n.json", b"42")
    assert (record.data, codes(record)) == (42, [NOT_AN_OBJECT])


def test_nan_in_one_array_element_rejects_only_that_element(tmp_path: Path) -> None:
    content = b'[{"dose_mg": NaN},\n{"dose_mg": 1e999},\n' + PATIENT_1 + b"]"
    nan, infinite, good = read_file(tmp_path, "nan.json", content)
    assert (nan.data, nan.original, codes(nan)) == (None, '{"dose_mg": NaN}', [JSON_SYNTAX])
    assert (infinite.source.line, codes(infinite)) == (2, [JSON_SYNTAX])
    assert good.problems == ()


def test_json_keeps_integers_beyond_64_bits_exact(tmp_path: Path) -> None:
    [record] = read_file(
        tmp_path, "big.json", b'{"session_number": 123456789012345678901234567890}'
    )
    assert record.data == {"session_number": 123456789012345678901234567890}


def test_json_invalid_utf8_rejects_only_the_element_that_has_it(tmp_path: Path) -> None:
    content = b'[\n{"notes": "caf\xe9"},\n' + PATIENT_1 + b"]"
    bad, good = read_file(tmp_path, "latin1.json", content)
    assert (bad.data, bad.source.line, codes(bad)) == (None, 2, [ENCODING])
    assert bad.original == '{"notes": "caf\ufffd"}'
    assert good.data == {"record_type": "patient", "patient_id": "p1"}


def test_json_invalid_utf8_outside_a_string_is_an_encoding_error(tmp_path: Path) -> None:
    good, rest = read_file(tmp_path, "x.json", b"[" + PATIENT_1 + b",\n\xff]")
    assert good.problems == ()
    assert (rest.original, codes(rest)) == ("\ufffd]", [ENCODING])
    assert rest.problems[0].source.line == 2  # type: ignore[union-attr]


def test_json_lone_surrogate_escape_is_an_encoding_error(tmp_path: Path) -> None:
    content = b'[{"notes": "\\ud800"}, {"notes": "\\ud83d\\ude00"}]'
    lone, pair = read_file(tmp_path, "s.json", content)
    assert (lone.data, codes(lone)) == (None, [ENCODING])
    assert pair.data == {"notes": "\U0001f600"}


def test_deeply_nested_json_is_too_deep_not_a_crash(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "deep.json", b"[" * 100_000 + b"]" * 100_000)
    assert codes(record) == [TOO_DEEP]


# --- NDJSON / JSONL ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.ndjson", "a.jsonl"])
def test_ndjson_one_record_per_line(tmp_path: Path, name: str) -> None:
    records = read_file(tmp_path, name, PATIENT_1 + b"\n" + PATIENT_2 + b"\n")
    path = str(tmp_path / name)
    assert records == [
        RawRecord(Source(path, line=1), {"record_type": "patient", "patient_id": "p1"},
                  {"record_type": "patient", "patient_id": "p1"}),
        RawRecord(Source(path, line=2), {"record_type": "patient", "patient_id": "p2"},
                  {"record_type": "patient", "patient_id": "p2"}),
    ]  # fmt: skip


def test_ndjson_bom_crlf_blank_lines_and_no_final_newline(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbf" + PATIENT_1 + b"\r\n\r\n   \t\n" + PATIENT_2
    records = read_file(tmp_path, "a.ndjson", content)
    assert [(r.source.line, r.problems) for r in records] == [(1, ()), (4, ())]


def test_ndjson_malformed_line_between_good_lines(tmp_path: Path) -> None:
    content = PATIENT_1 + b'\n{"patient_id": "p9",}\r\n' + PATIENT_2 + b"\n"
    first, bad, last = read_file(tmp_path, "a.ndjson", content)
    assert first.problems == () and last.problems == ()
    assert last.source.line == 3
    assert (bad.data, bad.original) == (None, '{"patient_id": "p9",}')
    assert bad.problems == (
        Problem(
            JSON_SYNTAX,
            Severity.ERROR,
            "the line is not valid JSON: "
            "Expecting property name enclosed in double quotes at column 21",
            "$",
            Source(str(tmp_path / "a.ndjson"), line=2),
        ),
    )


def test_ndjson_invalid_utf8_line_rejects_that_line_only(tmp_path: Path) -> None:
    content = PATIENT_1 + b'\n{"notes": "caf\xe9"}\n' + PATIENT_2 + b"\n"
    first, bad, last = read_file(tmp_path, "a.ndjson", content)
    assert (first.problems, last.problems) == ((), ())
    assert (bad.data, bad.original, codes(bad), bad.source.line) == (
        None,
        '{"notes": "caf\ufffd"}',
        [ENCODING],
        2,
    )


def test_ndjson_non_object_line(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "a.ndjson", b'["p1"]\n')
    assert (record.data, record.original, codes(record)) == (["p1"], ["p1"], [NOT_AN_OBJECT])


def test_ndjson_nan_and_lone_surrogate(tmp_path: Path) -> None:
    nan, lone = read_file(tmp_path, "a.ndjson", b'{"dose_mg": NaN}\n{"notes": "\\udc00"}\n')
    assert (nan.data, codes(nan)) == (None, [JSON_SYNTAX])
    assert (lone.data, codes(lone)) == (None, [ENCODING])


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf"])
def test_empty_ndjson_file_gives_a_no_records_notice(tmp_path: Path, content: bytes) -> None:
    [notice] = read_file(tmp_path, "empty.ndjson", content)
    assert (notice.notice, codes(notice)) == ("file", [NO_RECORDS])
    assert notice.problems[0].severity is Severity.WARNING
    assert notice.problems[0].message.startswith(f"no records in {tmp_path / 'empty.ndjson'}")


def test_binary_garbage_gives_per_line_problems_not_a_crash(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 4 + b"\n\x00\x01\x02\n\x89PNG\r\n\x1a\n"
    records = read_file(tmp_path, "garbage.ndjson", garbage)
    assert records
    for record in records:
        assert record.data is None
        assert codes(record) in ([ENCODING], [JSON_SYNTAX])


def test_overlong_line_is_rejected_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("migrainefhir.input.readers.MAX_LINE_BYTES", 64)
    content = PATIENT_1 + b"\n" + b'{"notes": "' + b"x" * 200 + b'"}\n' + PATIENT_2 + b"\n"
    first, long, last = read_file(tmp_path, "a.ndjson", content)
    assert (first.problems, last.problems, last.source.line) == ((), (), 3)
    assert (long.data, long.original, codes(long), long.source.line) == (
        None,
        None,
        [TOO_LARGE],
        2,
    )


# --- encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "name"),
    [
        ("utf-16", "UTF-16 (little-endian)"),
        ("utf-16-be", "UTF-16 (big-endian)"),
        ("utf-32", "UTF-32 (little-endian)"),
    ],
)
@pytest.mark.parametrize("file_name", ["a.json", "a.ndjson", "a.csv"])
def test_utf16_or_utf32_file_is_one_rejected_record_naming_the_encoding(
    tmp_path: Path, codec: str, name: str, file_name: str
) -> None:
    text = "record_type,patient_id\npatient,p1\n" if file_name == "a.csv" else PATIENT_1.decode()
    content = text.encode(codec)
    if codec == "utf-16-be":
        content = b"\xfe\xff" + content
    [record] = read_file(tmp_path, file_name, content)
    assert (record.data, record.original, codes(record)) == (None, None, [ENCODING])
    assert name in record.problems[0].message


# --- CSV -----------------------------------------------------------------------------------


def test_csv_rows_become_records_in_the_contract_shape() -> None:
    first, second = read_records([str(DATA / "sessions.csv")], ReadOptions())
    assert first.source == Source(str(DATA / "sessions.csv"), row=2)
    assert first.problems == ()
    assert first.data == {
        "record_type": "ketamine-session",
        "session_id": "s-001",
        "patient_id": "p-001",
        "start": "2026-03-01T09:00:00+01:00",
        "route": "intravenous",
        "dose_mg": 35.5,
        "session_number": 1,
        "vitals": [
            {
                "time": "2026-03-01T09:00:00+01:00",
                "phase": "pre",
                "heart_rate": 72,
                "systolic": 120,
                "diastolic": 80,
                "spo2": 98,
                "respiratory_rate": 14,
            },
            {"time": "2026-03-01T09:30:00+01:00", "phase": "during", "heart_rate": 88},
        ],
        "adverse_effects": [
            {"effect": "dissociation", "severity": "mild"},
            {"effect": "nausea"},
        ],
        "notes": "first session,\nwent well",
    }
    # the quoted newline makes row 2 span two lines; the next record is still row 3
    assert second.source.row == 3
    assert second.data == {
        "record_type": "ketamine-session",
        "session_id": "s-002",
        "patient_id": "p-001",
        "start": "2026-03-08T09:00:00+01:00",
        "route": "intranasal",
        "dose_mg": 56,
        "session_number": 2,
    }


def test_csv_original_is_every_cell_as_read(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "a.csv", b"record_type,patient_id,family\npatient,p1,\n")
    assert record.original == {"record_type": "patient", "patient_id": "p1", "family": ""}
    assert record.data == {"record_type": "patient", "patient_id": "p1"}


def test_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    content = b"\xef\xbb\xbfrecord_type,patient_id\r\npatient,p1\r\npatient,p2\r\n"
    records = read_file(tmp_path, "a.csv", content)
    assert [(r.source.row, r.data) for r in records] == [
        (2, {"record_type": "patient", "patient_id": "p1"}),
        (3, {"record_type": "patient", "patient_id": "p2"}),
    ]


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\r\n"])
def test_empty_csv_has_no_header_an_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    [record] = read_file(tmp_path, "empty.csv", content)
    assert (record.data, codes(record), record.notice) == (None, [CSV_HEADER], None)
    assert record.source.file == str(tmp_path / "empty.csv")


def test_header_only_csv_gives_a_no_records_notice(tmp_path: Path) -> None:
    [notice] = read_file(tmp_path, "empty.csv", b"record_type,patient_id\r\n")
    assert (notice.notice, codes(notice), notice.source.row) == ("file", [NO_RECORDS], 1)


def test_csv_blank_rows_count_as_rows_but_give_no_record(tmp_path: Path) -> None:
    content = b"record_type,patient_id\n\npatient,p1\n,\npatient,p2\n"
    records = read_file(tmp_path, "a.csv", content)
    assert [r.source.row for r in records] == [3, 5]


def test_csv_quoted_newlines_keep_spreadsheet_row_numbers(tmp_path: Path) -> None:
    content = (
        b'record_type,patient_id,family\npatient,p1,"two\r\nlines"\n'
        b'patient,p2,"x\n\ny"\npatient,p3,z\n'
    )
    records = read_file(tmp_path, "a.csv", content)
    assert [(r.source.row, r.data["family"]) for r in records] == [  # type: ignore[index]
        (2, "two\r\nlines"),
        (3, "x\n\ny"),
        (4, "z"),
    ]


def test_csv_row_with_more_cells_than_the_header(tmp_path: Path) -> None:
    content = b"record_type,patient_id\npatient,p1,extra\npatient,p2\n"
    bad, good = read_file(tmp_path, "a.csv", content)
    assert (bad.data, bad.original) == (None, ["patient", "p1", "extra"])
    assert bad.problems == (
        Problem(
            CSV_ROW_SHAPE,
            Severity.ERROR,
            "the row has 3 cells but the header has 2 columns",
            "$",
            Source(str(tmp_path / "a.csv"), row=2),
        ),
    )
    assert (good.source.row, good.problems) == (3, ())


def test_csv_row_with_fewer_cells_than_the_header(tmp_path: Path) -> None:
    [bad] = read_file(tmp_path, "a.csv", b"record_type,patient_id,family\npatient,p1\n")
    assert (bad.data, bad.original, codes(bad), bad.source.row) == (
        None,
        ["patient", "p1"],
        [CSV_ROW_SHAPE],
        2,
    )


def test_csv_cell_over_the_csv_field_limit_is_too_large(tmp_path: Path) -> None:
    content = b'record_type,notes\ndiary-entry,"' + b"x" * 200_000 + b'"\ndiary-entry,ok\n'
    bad, good = read_file(tmp_path, "a.csv", content)
    assert (bad.data, codes(bad), bad.source.row) == (None, [TOO_LARGE], 2)
    assert (good.source.row, good.data) == (3, {"record_type": "diary-entry", "notes": "ok"})


def test_csv_invalid_utf8_cell_rejects_that_row_only(tmp_path: Path) -> None:
    content = b"record_type,patient_id,family\npatient,p1,M\xfcller\npatient,p2,Meyer\n"
    bad, good = read_file(tmp_path, "a.csv", content)
    assert bad.data is None
    assert bad.original == {"record_type": "patient", "patient_id": "p1", "family": "M\ufffdller"}
    assert [(p.code, p.path) for p in bad.problems] == [(ENCODING, "$.family")]
    assert good.problems == ()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"record_type,patient_id,patient_id", 'column "patient_id" appears twice'),
        (b"record_type,,patient_id", "column 2 of the header row has no name"),
        (b"record_type,\xff", "not valid UTF-8"),
        (b"record_type,patient_id,favourite_colour", 'no record type has: "favourite_colour"'),
    ],
)
def test_csv_header_that_cannot_name_its_columns_rejects_the_file_once(
    tmp_path: Path, header: bytes, reason: str
) -> None:
    [record] = read_file(tmp_path, "a.csv", header + b"\npatient,p1,x\npatient,p2,y\n")
    assert (record.data, codes(record), record.source.row) == (None, [CSV_HEADER], 1)
    assert reason in record.problems[0].message


def test_csv_record_type_option_fills_rows_without_a_record_type(tmp_path: Path) -> None:
    content = (
        b"record_type,patient_id,entry_id,headache\n,p1,e1,true\nketamine-session,p1,e2,true\n"
    )
    filled, declared = read_file(tmp_path, "a.csv", content, record_type="diary-entry")
    assert filled.data == {
        "patient_id": "p1",
        "entry_id": "e1",
        "headache": True,
        "record_type": "diary-entry",
    }
    assert filled.original == {
        "record_type": "",
        "patient_id": "p1",
        "entry_id": "e1",
        "headache": "true",
    }
    # the cell wins; ketamine sessions have no headache column, so it stays a string
    assert declared.data == {
        "record_type": "ketamine-session",
        "patient_id": "p1",
        "entry_id": "e2",
        "headache": "true",
    }


def test_csv_record_type_option_without_a_record_type_column(tmp_path: Path) -> None:
    [record] = read_file(
        tmp_path, "a.csv", b"patient_id,given\np1,Ann;Marie\n", record_type="patient"
    )
    assert record.data == {"patient_id": "p1", "given": ["Ann", "Marie"], "record_type": "patient"}
    assert record.original == {"patient_id": "p1", "given": "Ann;Marie"}
    assert record.record_type == "patient"


def test_csv_without_any_record_type_keeps_cells_as_strings(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "a.csv", b"entry_id,headache,severity\ne1,true,5\n")
    assert record.data == {"entry_id": "e1", "headache": "true", "severity": "5"}
    assert record.record_type == "unknown"


def test_csv_wrong_part_count_is_a_cell_problem_at_the_item(tmp_path: Path) -> None:
    content = (
        b"record_type,session_id,vitals,adverse_effects\n"
        b"ketamine-session,s1,2026-03-01T09:00:00+01:00|pre|72|120|80|98|14;"
        b"2026-03-01T09:30:00+01:00|during|88,dissociation:mild:extra\n"
    )
    [record] = read_file(tmp_path, "a.csv", content)
    assert [(p.code, p.path) for p in record.problems] == [
        (CSV_CELL, "$.vitals[1]"),
        (CSV_CELL, "$.adverse_effects[0]"),
    ]
    assert record.problems[0].source == Source(str(tmp_path / "a.csv"), row=2)
    assert record.data["record_type"] == "ketamine-session"  # type: ignore[index]
    assert record.record_type == "ketamine-session"


def test_csv_columns_of_another_record_type_pass_through(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "a.csv", b"record_type,patient_id,severity\npatient,p1,5\n")
    # kept as the text it is: the schema reports it as input.unknown-field for a patient
    assert record.data == {"record_type": "patient", "patient_id": "p1", "severity": "5"}


# --- stdin ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input_format", "content"),
    [
        ("json", b"[" + PATIENT_1 + b"]"),
        ("ndjson", PATIENT_1 + b"\n"),
        ("csv", b"record_type,patient_id\npatient,p1\n"),
    ],
)
def test_stdin_in_each_input_format(input_format: str, content: bytes) -> None:
    records = list(
        read_records(["-"], ReadOptions(input_format=input_format), stdin=io.BytesIO(content))
    )
    assert [(r.source.file, r.data) for r in records] == [
        ("<stdin>", {"record_type": "patient", "patient_id": "p1"})
    ]


def test_stdin_without_an_input_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--input-format"):
        read_records(["-"], ReadOptions(), stdin=io.BytesIO(PATIENT_1))


def test_stdin_named_twice_is_read_once() -> None:
    stdin = io.BytesIO(PATIENT_1 + b"\n")
    records = list(read_records(["-", "-"], ReadOptions(input_format="ndjson"), stdin=stdin))
    assert len(records) == 1


def test_input_format_overrides_the_extension(tmp_path: Path) -> None:
    records = read_file(
        tmp_path, "export.json", PATIENT_1 + b"\n" + PATIENT_2 + b"\n", input_format="ndjson"
    )
    assert [(r.source.line, r.problems) for r in records] == [(1, ()), (2, ())]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"input_format": "xml"}, "unknown input format"),
        ({"record_type": "visit"}, "unknown record type"),
    ],
)
def test_bad_option_values_are_usage_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ReadOptions(**options)


# --- paths and folders ---------------------------------------------------------------------


def test_folder_expands_to_its_supported_files_by_name_not_recursively() -> None:
    assert expand_inputs([str(FOLDER)]) == [
        os.path.join(str(FOLDER), name) for name in ("a.json", "b.ndjson", "c.csv", "d.jsonl")
    ]


def test_folder_records_come_in_file_name_order() -> None:
    records = list(read_records([str(FOLDER)], ReadOptions()))
    assert [r.data["patient_id"] for r in records] == ["p-002", "p-001", "p-003", "p-004"]  # type: ignore[index]


def test_files_keep_the_order_given_and_duplicates_are_read_once() -> None:
    c, a = str(FOLDER / "c.csv"), str(FOLDER / "a.json")
    dotted = os.path.join(str(FOLDER), ".", "a.json")
    assert expand_inputs([c, a, dotted, str(FOLDER)]) == [
        c,
        a,
        os.path.join(str(FOLDER), "b.ndjson"),
        os.path.join(str(FOLDER), "d.jsonl"),
    ]


def test_missing_path_is_unreadable(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")
    with pytest.raises(InputUnreadable, match="no such file or folder"):
        read_records([missing], ReadOptions())


def test_folder_without_supported_files_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.json").write_bytes(PATIENT_1)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputUnreadable, match=r"no \.json, \.ndjson, \.jsonl or \.csv files"):
        expand_inputs([str(tmp_path)])


def test_unsupported_extension_named_explicitly_is_unreadable() -> None:
    with pytest.raises(InputUnreadable, match="unsupported file type"):
        expand_inputs([str(FOLDER / "readme.txt")])


def test_unsupported_extension_is_read_when_the_format_is_given(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes(PATIENT_1 + b"\n")
    assert expand_inputs([str(path)], input_format="ndjson") == [str(path)]
    [record] = read_records([str(path)], ReadOptions(input_format="ndjson"))
    assert record.problems == ()


def test_extensions_are_matched_without_regard_to_case(tmp_path: Path) -> None:
    (tmp_path / "A.JSON").write_bytes(PATIENT_1)
    [record] = read_records([str(tmp_path)], ReadOptions())
    assert record.data == {"record_type": "patient", "patient_id": "p1"}


def test_path_errors_are_raised_before_any_record(tmp_path: Path) -> None:
    good = tmp_path / "good.ndjson"
    good.write_bytes(PATIENT_1 + b"\n")
    with pytest.raises(InputUnreadable):
        read_records([str(good), str(tmp_path / "missing.csv")], ReadOptions())


# --- the project's examples ----------------------------------------------------------------

EXAMPLES = Path(__file__).parent.parent / "examples"
NO_CSV_FORM = {  # item fields the contract's CSV forms lack
    "drug_text",
    "taken_at",
    "route",
    "text",
    "serious",
    "outcome",
    "type",
    "assigner",
}


def without_csv_less_parts(record: object) -> object:
    assert isinstance(record, dict)
    return {
        key: [{k: v for k, v in item.items() if k not in NO_CSV_FORM} for item in value]
        if isinstance(value, list) and value and isinstance(value[0], dict)
        else value
        for key, value in record.items()
    }


@pytest.mark.parametrize("name", ["diary-entries", "ketamine-sessions", "patients"])
def test_example_csv_reads_as_the_same_records_as_its_json(name: str) -> None:
    from_json = read_records([str(EXAMPLES / "json" / f"{name}.json")], ReadOptions())
    from_csv = read_records([str(EXAMPLES / "csv" / f"{name}.csv")], ReadOptions())
    pairs = list(zip(from_json, from_csv, strict=True))
    assert pairs
    for json_record, csv_record in pairs:
        assert json_record.problems == csv_record.problems == ()
        # compared as JSON text, so 27 and 27.0 or "5" and 5 are told apart
        assert orjson.dumps(csv_record.data, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            without_csv_less_parts(json_record.data), option=orjson.OPT_SORT_KEYS
        )


def test_invalid_examples_give_exactly_the_expected_reader_problems() -> None:
    expected = json.loads((EXAMPLES / "invalid.expected.json").read_text(encoding="utf-8"))
    want = {
        (e["file"], e.get("line"), e.get("row"), e["code"], e["path"])
        for e in expected
        if e["code"].startswith("read.")
    }
    found = {
        (os.path.basename(p.source.file), p.source.line, p.source.row, p.code, p.path)
        for record in read_records([str(EXAMPLES / "invalid")], ReadOptions())
        for p in record.problems
        if p.source is not None
    }
    assert found == want


def test_binary_garbage_json_is_one_rejected_record(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "garbage.json", bytes(range(256)) * 4)
    assert (record.data, codes(record)) == (None, [JSON_SYNTAX])


def test_binary_garbage_csv_has_no_readable_header(tmp_path: Path) -> None:
    [record] = read_file(tmp_path, "garbage.csv", b"\x89PNG\x00\xff,\x01\n\x1a\x00\n")
    assert codes(record) == [CSV_HEADER]
    assert "header row is not valid UTF-8" in record.problems[0].message


def test_csv_overlong_line_rejects_its_row_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("migrainefhir.input.readers.MAX_LINE_BYTES", 64)
    content = b"record_type,notes\ndiary-entry," + b"x" * 200 + b"\ndiary-entry,ok\n"
    long, good = read_file(tmp_path, "a.csv", content)
    assert (long.data, codes(long), long.source.row) == (None, [TOO_LARGE], 2)
    assert (good.source.row, good.data) == (3, {"record_type": "diary-entry", "notes": "ok"})
