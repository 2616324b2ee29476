"""Posting transaction Bundles twice, or after a record changed, never duplicates anything.

The server here is a small in-test model of FHIR R4 transaction semantics (http.html#trules):
PUT Type/id creates or updates that id; a conditional update PUT Type?identifier=system|value
updates the one match, creates when there is none, and fails with 412 on several; a conditional
create POST Type with ifNoneExist creates (with an id of the server's) only when nothing matches,
else leaves the match as it is; urn:uuid fullUrls are replaced by the ids the server settled on,
in every reference of the Bundle.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from migrainefhir.export.job import export
from migrainefhir.export.options import ExportOptions
from migrainefhir.input.intake import InputOptions

Store = dict[tuple[str, str], dict[str, Any]]


class TransactionError(Exception):
    pass


class FhirServerModel:
    def __init__(self) -> None:
        self.store: Store = {}
        self._new_ids = count(1)

    def post(self, bundle: dict[str, Any]) -> None:
        """Process one transaction atomically: all entries or none."""
        store = copy.deepcopy(self.store)
        settled: dict[str, str] = {}  # fullUrl -> Type/id
        kept: set[str] = set()  # conditional creates that matched: nothing written
        for entry in bundle["entry"]:
            request, resource = entry["request"], entry["resource"]
            if request["method"] == "POST":
                assert "id" not in resource, "a create carries no id"
                kind = request["url"]
                found = self._matches(store, kind, request["ifNoneExist"])
                if len(found) > 1:
                    raise TransactionError("412 Precondition Failed: several matches")
                if found:
                    kept.add(entry["fullUrl"])
                    settled[entry["fullUrl"]] = f"{kind}/{found[0][1]}"
                else:
                    settled[entry["fullUrl"]] = f"{kind}/{next(self._new_ids)}"
                continue
            assert request["method"] == "PUT", "our transactions only update or create"
            settled[entry["fullUrl"]] = self._target(store, request["url"], resource)
        for entry in bundle["entry"]:
            if entry["fullUrl"] in kept:
                continue
            resource = _rewritten(copy.deepcopy(entry["resource"]), settled)
            kind, rid = settled[entry["fullUrl"]].split("/")
            resource["id"] = rid
            store[(kind, rid)] = resource
        self.store = store

    def _target(self, store: Store, url: str, resource: dict[str, Any]) -> str:
        kind, _, query = url.partition("?")
        if not query:
            return kind  # Type/id
        matches = self._matches(store, kind, query)
        if len(matches) > 1:
            raise TransactionError("412 Precondition Failed: several matches")
        if matches:
            if "id" in resource and resource["id"] != matches[0][1]:
                raise TransactionError("400: the match has another id")
            return f"{kind}/{matches[0][1]}"
        return f"{kind}/{resource.get('id') or next(self._new_ids)}"

    def _matches(self, store: Store, kind: str, query: str) -> list[tuple[str, str]]:
        name, _, token = query.partition("=")
        assert name == "identifier"
        system, _, value = unquote(token).partition("|")
        return [
            key
            for key, stored in store.items()
            if key[0] == kind and {"system": system, "value": value} in _identifiers(stored)
        ]

    def count(self, kind: str) -> int:
        return sum(1 for key in self.store if key[0] == kind)

    def dangling_references(self) -> list[str]:
        found = []
        for resource in self.store.values():
            for reference in _references(resource):
                kind, _, rid = reference.partition("/")
                if (kind, rid) not in self.store:
                    found.append(reference)
        return found


def _identifiers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found = resource.get("identifier", [])
    return found if isinstance(found, list) else [found]


def _rewritten(node: Any, settled: dict[str, str]) -> Any:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str) and node["reference"] in settled:
            node["reference"] = settled[node["reference"]]
        for value in node.values():
            _rewritten(value, settled)
    elif isinstance(node, list):
        for item in node:
            _rewritten(item, settled)
    return node


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for item in node for r in _references(item)]
    return []


def diary(entry_id: str, day: int, severity: int) -> dict[str, Any]:
    return {
        "record_type": "diary-entry",
        "entry_id": entry_id,
        "patient_id": "p1",
        "date": f"2026-03-{day:02d}",
        "headache": True,
        "onset": f"2026-03-{day:02d}T08:00:00+01:00",
        "end": f"2026-03-{day:02d}T12:00:00+01:00",
        "severity": severity,
        "symptoms": ["nausea"],
        "medications": [{"drug": "ibuprofen", "dose_mg": 400, "relief": "partial"}],
    }


PATIENT = {
    "record_type": "patient",
    "patient_id": "p1",
    "family": "Doe",
    "given": ["Jane"],
    "birth_date": "1980-02-03",
    "gender": "female",
    "identifiers": [{"system": "https://ehr.example.org/fhir/sid/mrn", "value": "MRN-1"}],
}


def bundles(tmp_path: Path, records: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    tmp_path.mkdir(exist_ok=True)
    source = tmp_path / "in.ndjson"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    options = ExportOptions(
        out=out,
        export_time=datetime(2026, 7, 1, tzinfo=UTC),
        format="transaction",
        write_mode=mode,
        max_entries=8,  # several Bundles for one patient
    )
    result = export([str(source)], InputOptions(), options)
    assert result.report.counts.total_rejected == 0
    return [json.loads(p.read_text()) for p in sorted((out / "bundles").iterdir())]


@pytest.mark.parametrize("mode", ["put", "conditional"])
def test_posting_the_same_bundles_twice_changes_nothing(mode: str, tmp_path: Path) -> None:
    records = [diary("e1", 1, 6), diary("e2", 2, 8), diary("e3", 3, 4)]
    server = FhirServerModel()
    exported = bundles(tmp_path, records, mode)
    assert len(exported) > 1
    for bundle in exported:
        server.post(bundle)
    first = copy.deepcopy(server.store)
    for bundle in exported:
        server.post(bundle)
    assert server.store == first
    assert server.count("Patient") == 1
    assert server.dangling_references() == []


@pytest.mark.parametrize("mode", ["put", "conditional"])
def test_reexport_after_a_record_changed_updates_in_place(mode: str, tmp_path: Path) -> None:
    server = FhirServerModel()
    for bundle in bundles(tmp_path, [diary("e1", 1, 6), diary("e2", 2, 8)], mode):
        server.post(bundle)
    sizes = {kind: server.count(kind) for kind, _ in server.store}
    changed = [diary("e1", 1, 9), diary("e2", 2, 8)]
    for bundle in bundles(tmp_path / "again", changed, mode):
        server.post(bundle)
    assert {kind: server.count(kind) for kind, _ in server.store} == sizes
    ratings = [
        component["valueInteger"]
        for resource in server.store.values()
        for component in resource.get("component", [])
        if component["code"]["coding"][0]["code"] == "72514-3"
    ]
    assert sorted(ratings) == [8, 9]
    assert server.dangling_references() == []


@pytest.mark.parametrize("mode", ["put", "conditional"])
def test_a_diary_only_export_never_reduces_the_servers_patient_to_a_stub(
    mode: str, tmp_path: Path
) -> None:
    """Issue 19 item 2: the stub of a run without the patient record is a conditional create."""
    server = FhirServerModel()
    for bundle in bundles(tmp_path, [PATIENT, diary("e1", 1, 6)], mode):
        server.post(bundle)
    (full,) = [r for (kind, _), r in server.store.items() if kind == "Patient"]
    assert full["name"] == [{"family": "Doe", "given": ["Jane"]}]
    diary_only = bundles(tmp_path / "diary-only", [diary("e2", 2, 8), diary("e3", 3, 4)], mode)
    for bundle in diary_only:
        assert bundle["entry"][0]["request"]["method"] == "POST"
        server.post(bundle)
    assert [r for (kind, _), r in server.store.items() if kind == "Patient"] == [full]
    assert server.dangling_references() == []
    subjects = {r["subject"]["reference"] for r in server.store.values() if "subject" in r}
    assert subjects == {f"Patient/{full['id']}"}


def test_a_diary_only_export_creates_the_patient_on_an_empty_server_once(tmp_path: Path) -> None:
    server = FhirServerModel()
    exported = bundles(tmp_path, [diary("e1", 1, 6), diary("e2", 2, 8), diary("e3", 3, 4)], "put")
    for bundle in exported * 2:
        server.post(bundle)
    assert server.count("Patient") == 1
    assert server.dangling_references() == []
