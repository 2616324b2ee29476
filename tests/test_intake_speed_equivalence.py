"""The intake's fast paths give exactly what the general paths give (no timing here: speed is
measured by benchmarks). Each fast path is compared with the general one it stands in for."""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
import sys
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrainefhir.input import model
from migrainefhir.input.contract import RULES, rules_for
from migrainefhir.input.model import ParseOptions, _Shape, _shape, parse_record
from migrainefhir.input.raw import RawRecord
from migrainefhir.input.readers import DUPLICATE_KEY, MAX_DEPTH, TOO_DEEP, read_ndjson
from migrainefhir.input.records import (
    DiaryEntry,
    KetamineSession,
    PatientRecord,
    Record,
    VitalsReading,
)
from migrainefhir.problems import Source
from migrainefhir.schema import (
    _URI_RE,
    FORMAT_PATTERNS,
    WHITESPACE,
    _parse_any_date_time,
    compiled_predicate,
    parse_date,
    parse_date_time,
)

# -- date-times: the fromisoformat path against the general regex path -----------------------

YEARS = ("0000", "1899", "1900", "1904", "2000", "2024", "2025", "2100", "2199", "2200", "9999")
OFFSETS = (
    "Z",
    "+00:00",
    "-00:00",
    "+01:00",
    "-05:30",
    "+13:59",
    "+14:00",
    "-14:00",
    "+14:01",
    "-14:30",
    "+23:59",
    "+24:00",
    "+99:00",
)


def _same(text: str) -> None:
    fast, general = parse_date_time(text), _parse_any_date_time(text)
    assert fast == general, text
    if fast is not None and general is not None:
        assert fast.tzinfo == general.tzinfo, text
        assert fast.isoformat() == general.isoformat(), text


def test_every_calendar_day_of_the_edge_years_parses_as_the_general_path_does() -> None:
    for year, month, day in itertools.product(YEARS, range(14), range(33)):
        _same(f"{year}-{month:02}-{day:02}T12:00:00Z")


def test_every_edge_time_and_offset_parses_as_the_general_path_does() -> None:
    for hour, minute, second, offset in itertools.product(
        ("00", "23", "24", "99"), ("00", "59", "60"), ("00", "59", "60", "99"), OFFSETS
    ):
        _same(f"2026-03-01T{hour}:{minute}:{second}{offset}")


_DIGIT = st.sampled_from("0123456789")


@given(
    st.lists(_DIGIT, min_size=14, max_size=14),
    st.sampled_from(("Z", "+", "-")),
    st.lists(_DIGIT, min_size=4, max_size=4),
)
def test_any_digits_in_the_plain_form_parse_as_the_general_path_does(
    digits: list[str], sign: str, offset: list[str]
) -> None:
    d = "".join(digits)
    zone = "Z" if sign == "Z" else f"{sign}{offset[0]}{offset[1]}:{offset[2]}{offset[3]}"
    _same(f"{d[0:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}{zone}")


# -- the formats as native patterns, against their Python checks -----------------------------

_NATIVE = {name: compiled_predicate({"pattern": p}) for name, p in FORMAT_PATTERNS.items()}
_PYTHON = {
    "date": lambda text: parse_date(text) is not None,
    "date-time": lambda text: parse_date_time(text) is not None,
    "uri": lambda text: _URI_RE.fullmatch(text) is not None,
}


def _agree(name: str, text: str) -> None:
    assert _NATIVE[name](text) == _PYTHON[name](text), (name, text)


def test_the_date_time_pattern_accepts_exactly_what_parse_date_time_accepts() -> None:
    for year, month, day in itertools.product(YEARS, range(14), range(33)):
        _agree("date-time", f"{year}-{month:02}-{day:02}T12:00:00Z")
        _agree("date", f"{year}-{month:02}-{day:02}")
    for year in range(1890, 2210):  # every leap day of the range, and the years around it
        _agree("date-time", f"{year}-02-29T00:00:00+01:00")
        _agree("date", f"{year}-02-29")
    for hour, minute, second, offset in itertools.product(
        ("00", "23", "24", "99"), ("00", "59", "60"), ("00", "59", "60", "99"), OFFSETS
    ):
        _agree("date-time", f"2026-03-01T{hour}:{minute}:{second}{offset}")
    for offset_hours, offset_minutes in itertools.product(range(25), range(0, 61, 1)):
        _agree("date-time", f"2026-03-01T10:00:00-{offset_hours:02}:{offset_minutes:02}")


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-01t10:00:00z",
        "2026-03-01T10:00:00.5+01:00",
        "2026-03-01T10:00:00.1234567890Z",
        "2026-03-01T10:00:00.Z",
        "2026-03-01T10:00:00",
        "2026-03-01 10:00:00Z",
        "2026-03-01T10:00Z",
        "2026-03-01T10:00:00+0100",
        "2026-03-01T10:00:00+01:00\n",
        "\n2026-03-01T10:00:00+01:00",
        "x2026-03-01T10:00:00+01:00",
        "2026-03-01T10:00:00+01:00x",
        "٢٠٢٦-03-01T10:00:00Z",  # Arabic-Indic digits
        "2026-0٣-01T10:00:00Z",
        "2026-03-01T10:00:00+01:00:00",
        "",
    ],
)
def test_the_date_time_pattern_agrees_on_unusual_forms(text: str) -> None:
    _agree("date-time", text)
    _agree("date", text[:10])
    _agree("date", text)


@pytest.mark.parametrize(
    "text",
    [
        "https://example.org/id",
        "urn:oid:1.2.3",
        "urn:x",
        "urn:",
        ":x",
        "1urn:x",
        "ur n:x",
        "urn:x y",
        "urn:x\n",
        "HTTP+x.y-z:abc",
        "a_b:c",
        "é:x",
        "",
        *(f"urn:a{char}b" for char in WHITESPACE),
    ],
)
def test_the_uri_pattern_accepts_exactly_what_the_uri_format_accepts(text: str) -> None:
    _agree("uri", text)


@given(st.text(alphabet="0123456789-:TtZz+.٣ ", max_size=32))
def test_the_date_patterns_agree_on_any_text_of_their_characters(text: str) -> None:
    _agree("date-time", text)
    _agree("date", text)


# -- dates: fromisoformat against date() from the parts ---------------------------------------


def _date_from_parts(text: str) -> date | None:
    year, month, day = (int(part) for part in text.split("-"))
    if not 1900 <= year <= 2199:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def test_every_calendar_day_of_the_edge_years_is_a_date_as_date_makes_it() -> None:
    for year, month, day in itertools.product(YEARS, range(14), range(33)):
        text = f"{year}-{month:02}-{day:02}"
        assert parse_date(text) == _date_from_parts(text), text


# -- records: the one-call check against the full path ---------------------------------------


def test_the_whitespace_list_is_exactly_what_str_strip_removes() -> None:
    every = "".join(char for char in map(chr, range(sys.maxunicode + 1)) if char.isspace())
    assert every == WHITESPACE


def test_the_whitespace_list_is_exactly_what_backslash_s_means_to_python_re() -> None:
    space = re.compile(r"\s")
    every = "".join(char for char in map(chr, range(sys.maxunicode + 1)) if space.match(char))
    assert every == WHITESPACE


DIARY_DAY = {
    "record_type": "diary-entry",
    "entry_id": "e1",
    "patient_id": "p1",
    "date": "2026-03-01",
    "headache": False,
}


def test_free_text_of_whitespace_only_is_never_ready() -> None:
    is_ready = _shape("diary-entry").is_ready
    for char in WHITESPACE:
        assert not is_ready({**DIARY_DAY, "notes": char * 3}), hex(ord(char))
    assert is_ready({**DIARY_DAY, "notes": f"{WHITESPACE}x{WHITESPACE}"})


def test_a_time_without_offset_is_never_ready() -> None:
    assert not _shape("diary-entry").is_ready({**DIARY_DAY, "recorded_at": "2026-03-01T20:00:00"})


def _full_path_only(record_type: str) -> _Shape:
    return dataclasses.replace(_shape(record_type), is_ready=lambda _: False)


@given(
    notes=st.sampled_from(("", " ", "\u3000", "\x1c", "x", " x ", "x\x00", 5)),
    recorded_at=st.sampled_from(
        ("2026-03-01T20:00:00+01:00", "2026-03-01T20:00:00", "2026-03-01t20:00:00z", "2026-02-30")
    ),
    zone=st.sampled_from((None, ZoneInfo("Europe/Berlin"))),
)
def test_a_record_is_checked_as_the_full_path_checks_it(
    notes: object, recorded_at: str, zone: ZoneInfo | None
) -> None:
    raw = RawRecord(
        Source("f.ndjson", line=1), {**DIARY_DAY, "notes": notes, "recorded_at": recorded_at}, None
    )
    options = ParseOptions(timezone=zone)
    fast = parse_record(raw, options)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "_shape", _full_path_only)
        assert parse_record(raw, options) == fast


# -- NDJSON lines: the byte-for-byte round trip and the bracket count --------------------------


def _read_lines(*lines: bytes) -> list[RawRecord]:
    return list(read_ndjson(io.BytesIO(b"\n".join(lines) + b"\n"), "f.ndjson"))


@pytest.mark.parametrize(
    "line",
    [
        b'{"record_type":"diary-entry","entry_id":"d1","headache":true,"headache":false}',
        b'{"a":{"b":1,"b":1}}',  # the same value twice: the written-back line is still shorter
        b'{"vitals":[{"heart_rate":70,"heart_rate":190}]}',
    ],
)
def test_a_compact_line_with_a_repeated_key_is_rejected(line: bytes) -> None:
    (record,) = _read_lines(line)
    assert [p.code for p in record.problems] == [DUPLICATE_KEY]
    assert record.data is None and record.original == line.decode()


def test_a_compact_line_that_orjson_writes_back_is_read_as_it_is() -> None:
    line = b'{"record_type":"diary-entry","notes":"a\\":b","sleep_hours":8.0,"x":[[[{}]]]}'
    (record,) = _read_lines(line)
    assert record.problems == () and record.data == orjson.loads(line)


def test_brackets_inside_strings_do_not_make_a_shallow_line_too_deep() -> None:
    (record,) = _read_lines(b'{"notes":"' + b"[{" * MAX_DEPTH + b'"}')
    assert record.problems == ()


def test_a_compact_line_nested_past_the_limit_is_too_deep() -> None:
    nested = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    (record,) = _read_lines(b'{"x":' + nested + b"}")
    assert [p.code for p in record.problems] == [TOO_DEEP]
    (record,) = _read_lines(b'{"x":' + nested[1:-1] + b"}")
    assert record.problems == ()


# -- record rules: each record is given only its own class's rules -----------------------------

_AT = Source("in.ndjson", line=1)
_CET = timezone(timedelta(hours=1))
_T0 = datetime(2026, 3, 2, 9, 0, tzinfo=_CET)

# Records that break every rule of their class at once.
_RULE_BREAKERS = [
    DiaryEntry("e-1", "p-1", date(2026, 3, 1), True, _AT, onset=_T0, end=_T0 - timedelta(1)),
    DiaryEntry("e-2", "p-1", date(2026, 3, 1), True, _AT, onset=_T0, duration_minutes=10**9),
    DiaryEntry("e-3", "p-1", date(2026, 3, 1), True, _AT, onset=_T0, end=_T0, duration_minutes=60),
    KetamineSession(
        "s-1",
        "p-1",
        _T0,
        "intravenous",
        _AT,
        end=_T0 - timedelta(hours=1),
        dose_mg=35.0,
        weight_kg=70.0,
        dose_mg_per_kg=1.0,
        vitals=(
            VitalsReading(_T0 + timedelta(hours=5), heart_rate=0.0),
            VitalsReading(_T0, systolic=80.0, diastolic=90.0, spo2=85.0, heart_rate=190.0),
        ),
    ),
    PatientRecord("p-1", _AT),
]


@pytest.mark.parametrize("record", _RULE_BREAKERS, ids=lambda r: r.record_id)
def test_the_rules_of_a_record_find_what_all_rules_find(record: Record) -> None:
    every_rule = [problem for rule in RULES.values() for problem in rule(record)]
    own_rules = [problem for rule in rules_for(record) for problem in rule(record)]
    assert own_rules == every_rule
    assert every_rule or isinstance(record, PatientRecord)
