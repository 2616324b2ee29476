"""What the converters' speed-ups must keep: ids equal to the plain uuid5 computation, and every
resource built of its own dicts and lists (later stages may change a resource in place)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrainefhir import codes
from migrainefhir.codes import Code
from migrainefhir.convert import ConvertContext, convert_record, patient_stub
from migrainefhir.convert.context import fhir_datetime
from migrainefhir.ids import ID_NAMESPACE, RecordIds, resource_id
from tests.convert_records import (
    CTX,
    RECORDS,
    patient_record,
)


@given(st.text(), st.text(), st.text(), st.lists(st.text(), min_size=1, max_size=3))
def test_record_ids_equal_uuid5_of_the_joined_name(
    source: str, kind: str, record_id: str, roles: list[str]
) -> None:
    try:
        expected = [
            str(uuid.uuid5(ID_NAMESPACE, "\x1f".join((source, kind, record_id, role))))
            for role in roles
        ]
    except UnicodeEncodeError:  # a lone surrogate: both refuse it
        return
    record_ids = RecordIds(source, kind, record_id)
    assert [record_ids.resource_id(role) for role in roles] == expected
    assert [resource_id(source, kind, record_id, role) for role in roles] == expected


def _containers(node: Any, found: list[object]) -> None:
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            _containers(value, found)
    elif isinstance(node, list):
        found.append(node)
        for item in node:
            _containers(item, found)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_no_dict_or_list_is_shared_between_or_within_resources(name: str) -> None:
    record = RECORDS[name]()
    outputs = [convert_record(record, CTX), convert_record(record, CTX)]
    if record.record_type != "patient":
        outputs.append([patient_stub(record.patient_id, CTX), patient_stub(record.patient_id, CTX)])
    found: list[object] = []
    for resources in outputs:
        for resource in resources:
            _containers(resource, found)
    assert len({id(container) for container in found}) == len(found)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 3, 1, 14, 30, tzinfo=UTC), "2026-03-01T14:30:00Z"),
        (datetime(2026, 3, 1, 14, 30, 5, 120000, tzinfo=UTC), "2026-03-01T14:30:05.120000Z"),
        (
            datetime(2026, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
            "2026-03-01T14:30:00-05:30",
        ),
        (
            datetime(2026, 3, 1, 14, 30, tzinfo=timezone(timedelta(seconds=30))),
            "2026-03-01T14:30:00+00:00:30",
        ),
    ],
)
def test_fhir_datetime_writes_only_a_zero_offset_as_z(moment: datetime, text: str) -> None:
    assert fhir_datetime(moment) == text


def test_fhir_datetime_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        fhir_datetime(datetime(2026, 3, 1, 14, 30))


def test_the_context_formats_the_export_time_in_utc() -> None:
    ctx = ConvertContext(
        "https://example.org/source",
        datetime(2026, 7, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),
        "test",
    )
    assert ctx.recorded_text == "2026-07-01T00:00:00Z"
    assert convert_record(patient_record(), ctx)[-1]["recorded"] == "2026-07-01T00:00:00Z"


def test_codes_compare_by_system_code_and_display_only() -> None:
    assert Code("http://loinc.org", "8867-4", "Heart rate") == codes.HEART_RATE
    assert hash(Code("http://loinc.org", "8867-4", "Heart rate")) == hash(codes.HEART_RATE)
    assert Code("http://loinc.org", "8867-4") != codes.HEART_RATE


def test_each_coding_is_a_new_dict() -> None:
    first, second = codes.HEART_RATE.coding(), codes.HEART_RATE.coding()
    first["display"] = "changed"
    assert second == {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
    assert codes.HEART_RATE.concept("x") == {"coding": [second], "text": "x"}
