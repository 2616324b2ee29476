"""Fast mode on a Bundle's own entry elements: the entry schema decides for every entry,
fhir.resources sees the first entry of each shape, and anything the schema refuses sends the
whole Bundle to fhir.resources (validate/entries.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from migrainefhir.convert import convert_record, patient_stub
from migrainefhir.export.bundle import collection_bundle, transaction_bundle
from migrainefhir.problems import Problem
from migrainefhir.validate import ResourceValidator, entries, structure, validate_bundle
from tests.convert_records import CTX, plain_note_attack_entry

TIMESTAMP = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)
INSTANT = "2026-03-05T03:00:00Z"

FULL_ENTRY: dict[str, Any] = {
    "id": "e1",
    "link": [{"relation": "self", "url": "https://example.org/fhir/Patient/1"}],
    "fullUrl": "urn:uuid:0f9e5b5e-9d35-4f1e-8a49-5b0a3f3c2a11",
    "search": {"mode": "match", "score": 0.5},
    "request": {
        "method": "PUT",
        "url": "Patient/1",
        "ifNoneMatch": "*",
        "ifModifiedSince": INSTANT,
        "ifMatch": 'W/"1"',
        "ifNoneExist": "identifier=a|b",
    },
    "response": {"status": "200 OK", "location": "Patient/1/_history/1", "etag": 'W/"1"',
                 "lastModified": INSTANT},
}  # fmt: skip


def _resources() -> list[dict[str, Any]]:
    return [patient_stub("P1", CTX), *convert_record(plain_note_attack_entry(), CTX)]


def _stripped(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in entry.items() if k != "resource"} for entry in bundle["entry"]]


@pytest.mark.parametrize("write_mode", ["put", "conditional"])
def test_the_entry_schema_accepts_every_transaction_entry_the_export_writes(
    write_mode: str,
) -> None:
    bundle = transaction_bundle(_resources(), "t-1", TIMESTAMP, write_mode=write_mode)
    assert all(entries.entry_clean(entry) for entry in _stripped(bundle))


def test_the_entry_schema_accepts_every_collection_entry_the_export_writes() -> None:
    bundle = collection_bundle(_resources(), "b-1", TIMESTAMP)
    assert all(entries.entry_clean(entry) for entry in _stripped(bundle))


def test_the_entry_schema_accepts_every_r4_entry_element_and_an_emptied_entry() -> None:
    assert entries.entry_clean(FULL_ENTRY)
    assert entries.entry_clean({})  # held only its resource


def _with(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    entry = copy.deepcopy(FULL_ENTRY)
    node: Any = entry
    for part in path[:-1]:
        node = node[part]
    if value is _DROP:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return entry


_DROP = object()
REFUSED = {
    "extension": (("extension",), [{"url": "https://example.org/x", "valueString": "x"}]),
    "unknown element": (("resourceType",), "Bundle"),
    "method not an http verb": (("request", "method"), "FETCH"),
    "request without url": (("request", "url"), _DROP),
    "request without method": (("request", "method"), _DROP),
    "uri with a space": (("fullUrl",), "urn:uuid:a b"),
    "instant without seconds": (("request", "ifModifiedSince"), "2026-03-05T03:00Z"),
    "instant without offset": (("response", "lastModified"), "2026-03-05T03:00:00"),
    "search mode not a code of the set": (("search", "mode"), "matched"),
    "score as a string": (("search", "score"), "0.5"),
    "empty search": (("search",), {}),
    "response without status": (("response", "status"), _DROP),
    "response outcome": (("response", "outcome"), {"resourceType": "OperationOutcome"}),
    "link without url": (("link", 0, "url"), _DROP),
    "empty link list": (("link",), []),
    "whitespace-only string": (("request", "ifMatch"), "   "),
    "vertical tab in a string": (("response", "etag"), "W/\x0b1"),
    "null": (("id",), None),
}


@pytest.mark.parametrize("defect", sorted(REFUSED))
def test_the_entry_schema_refuses(defect: str) -> None:
    path, value = REFUSED[defect]
    assert not entries.entry_clean(_with(path, value))


def _searchset(elements: dict[str, Any]) -> dict[str, Any]:
    """A searchset of the converter's resources, each entry with these elements too."""
    listed = [{**copy.deepcopy(elements), "resource": r} for r in _resources()]
    return {"resourceType": "Bundle", "type": "searchset", "entry": listed}


@pytest.mark.parametrize("defect", sorted(REFUSED))
def test_fast_mode_reports_a_refused_entry_as_full_mode_does(defect: str) -> None:
    """Even once the entries' shapes are known (a first, clean Bundle of the same shapes)."""
    path, value = REFUSED[defect]
    bundle = _searchset(_with(path, value))
    fast = ResourceValidator("fast")
    validate_bundle(_searchset(FULL_ENTRY), validator=fast)
    problems = validate_bundle(bundle, validator=fast)
    assert problems == validate_bundle(bundle, mode="full")


def _shell_entries_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many entries each Bundle that reaches fhir.resources holds."""
    seen: list[int] = []
    real = structure.check_structure

    def counting(resource: dict[str, Any]) -> list[Problem]:
        if resource.get("resourceType") == "Bundle":
            seen.append(len(resource.get("entry", [])))
        return real(resource)

    monkeypatch.setattr(structure, "check_structure", counting)
    return seen


def test_fast_mode_gives_fhir_resources_the_first_entry_of_each_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _shell_entries_seen(monkeypatch)
    bundle = transaction_bundle(_resources(), "t-1", TIMESTAMP)
    shapes = {entries.shape(entry) for entry in _stripped(bundle)}
    assert len(bundle["entry"]) > len(shapes) == 1  # every entry: fullUrl, request{method, url}
    validator = ResourceValidator("fast")
    assert validate_bundle(bundle, validator=validator) == []
    assert validate_bundle(bundle, validator=validator) == []
    assert seen == [1, 0]  # the second Bundle: its entries' shape is known


def test_fast_mode_gives_fhir_resources_the_whole_bundle_when_an_entry_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _shell_entries_seen(monkeypatch)
    bundle = transaction_bundle(_resources(), "t-1", TIMESTAMP)
    # A core extension allowed on any element: valid R4 (an unknown one would be an error).
    absent = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
    bundle["entry"][-1]["extension"] = [{"url": absent, "valueCode": "unknown"}]
    assert validate_bundle(bundle, mode="fast") == []  # valid R4, refused by the schema only
    assert seen == [len(bundle["entry"])]


def test_full_mode_gives_fhir_resources_every_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _shell_entries_seen(monkeypatch)
    bundle = transaction_bundle(_resources(), "t-1", TIMESTAMP)
    validator = ResourceValidator("full")
    validate_bundle(bundle, validator=validator)
    validate_bundle(bundle, validator=validator)
    assert seen == [len(bundle["entry"])] * 2


def test_an_entry_shape_is_its_element_names_and_json_types() -> None:
    assert entries.shape(
        {"fullUrl": "a", "request": {"method": "PUT", "url": "b"}}
    ) == entries.shape({"request": {"url": "c", "method": "POST"}, "fullUrl": "d"})
    assert entries.shape({"search": {"score": 1}}) != entries.shape({"search": {"score": 1.5}})
    assert entries.shape({"link": [{"url": "a"}]}) != entries.shape({"link": [{"url": "a"}] * 2})


ACCEPTED_EDGE_VALUES = [
    ("fullUrl", "urn:uuid:0f9e5b5e-9d35-4f1e-8a49-5b0a3f3c2a11"),
    ("fullUrl", "https://example.org/fhir/Patient/1"),
    ("id", " leading and trailing spaces "),
    ("id", "tab\tinside"),
    ("id", "ünïcödé"),
]


@pytest.mark.parametrize(("element", "value"), ACCEPTED_EDGE_VALUES)
def test_what_the_entry_schema_accepts_fhir_resources_accepts(element: str, value: str) -> None:
    entry = {**FULL_ENTRY, element: value}
    assert entries.entry_clean(entry)
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [entry]}
    assert structure.check_structure(bundle) == []


def test_fhir_resources_accepts_the_full_entry() -> None:
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [FULL_ENTRY]}
    assert structure.check_structure(bundle) == []
