"""Posting transaction Bundles twice, or after a record changed, never duplicates anything.

The server here is a small in-test model of FHIR R4 transaction semantics (http.html#trules):
PUT Type/id creates or updates that id; a conditional update PUT Type?identifier=system|value
updates the one match, creates when there is none, and fails with 412 on several; urn:uuid
fullUrls are replaced by the ids the server settled on, in every reference of the Bundle.
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
        for entry in bundle["entry"]:
            request, resource = entry["request"], entry["resource"]
            assert request["method"] == "PUT", "our transactions only update"
            settled[entry["fullUrl"]] = self._target(store, request["url"], resource)
        for entry in bundle["entry"]:
            resource = _rewritten(copy.deepcopy(entry["resource"]), settled)
            kind, rid = settled[entry["fullUrl"]].split("/")
            resource["id"] = rid
            store[(kind, rid)] = resource
        self.store = store

    def _target(self, store: Store, url: str, resource: dict[str, Any]) -> str:
        kind, _, query = url.partition("?")
        if not query:
            return kind  # Type/id
        name, _, token = query.partition("=")
        assert name == "identifier"
        system, _, value = unquote(token).partition("|")
        matches = [
            key
            for key, stored in store.items()
            if key[0] == kind and {"system": system, "value": value} in _identifiers(stored)
        ]
        if len(matches) > 1:
            raise TransactionError("412 Precondition Failed: several matches")
        if matches:
            if "id" in resource and resource["id"] != matches[0][1]:
                raise TransactionError("400: the match has another id")
            return f"{kind}/{matches[0][1]}"
        return f"{kind}/{resource.get('id') or next(self._new_ids)}"

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
