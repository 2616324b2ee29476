"""How references are collected: the rules walk gives them in exactly the order iter_references
gives them (so the export gate walks each resource once for both), and the text scan of the
orjson form (plain_references) finds the same ones, so a valid Bundle's integrity check needs no
walk at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from migrainefhir.problems import Problem
from migrainefhir.validate import references
from migrainefhir.validate.references import check_bundle, iter_references, plain_references
from migrainefhir.validate.rules import References, check_rules

CORPUS = Path(__file__).parent / "data" / "validator"

_keys = st.sampled_from(["reference", "subject", "entry", "resource", "a", "valueReference"])
_json: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(["", "Patient/1", "#x", "x y"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=25,
)


def _collected(resource: dict[str, Any]) -> References:
    found: References = []
    check_rules(resource, references=found)
    return found


def test_every_corpus_resource_gives_the_same_references() -> None:
    documents = [orjson.loads(p.read_bytes()) for p in sorted(CORPUS.rglob("*.json"))]
    resources = [d for d in documents if isinstance(d, dict) and "resourceType" in d]
    checked = 0
    for document in resources:
        for entry in document.get("entry", []) if document["resourceType"] == "Bundle" else []:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                resources.append(entry["resource"])
        assert _collected(document) == list(iter_references(document))
        checked += 1
    assert checked > 100


@given(st.dictionaries(_keys, _json, max_size=5))
def test_any_json_gives_the_same_references_or_none(resource: dict[str, Any]) -> None:
    found = _collected(resource)
    expected = list(iter_references(resource))
    assert found == expected or (found == [] and _has_array_in_array(resource))


def _has_array_in_array(node: Any, in_array: bool = False) -> bool:
    if isinstance(node, dict):
        return any(_has_array_in_array(value) for value in node.values())
    if isinstance(node, list):
        return in_array or any(_has_array_in_array(item, True) for item in node)
    return False


# --- the text scan ----------------------------------------------------------------------------


def test_references_are_read_from_the_written_json() -> None:
    resource = {
        "a": {"reference": "Patient/1"},
        "b": [{"x": {"reference": "Observation/3"}}],
        "c": 'text with "reference":"Fake/4" inside',
    }
    found = plain_references(orjson.dumps(resource))
    assert found == ["Patient/1", "Observation/3"]


def test_a_text_without_references_has_none() -> None:
    assert plain_references(orjson.dumps({"code": {"text": "reference"}})) == []


def test_references_of_several_texts_joined_are_those_of_each_in_turn() -> None:
    texts = [
        orjson.dumps({"subject": {"reference": "Patient/1"}, "focus": [{"reference": ""}]}),
        orjson.dumps({"code": {"text": "no reference"}}),
        orjson.dumps({"target": [{"reference": "Observation/é"}, {"reference": "Patient/1"}]}),
    ]
    assert plain_references(b"\n".join(texts)) == ["Patient/1", "", "Observation/é", "Patient/1"]


@pytest.mark.parametrize(
    "reference", ['Patient/"2', "Patient/\\2", 7, {"reference": "Patient/1"}, None]
)
def test_a_reference_that_is_not_a_plain_string_is_left_to_the_walk(reference: object) -> None:
    text = orjson.dumps({"subject": {"reference": reference}})
    assert plain_references(text) is None


@given(st.dictionaries(_keys, _json, max_size=5))
@example({"subject": {"reference": ""}, "a": [{"reference": "Patient/1"}]})
def test_the_scan_finds_what_the_walk_finds_or_nothing(resource: dict[str, Any]) -> None:
    scanned = references.scanned_references(resource)
    walked = [reference for _, reference in iter_references(resource)]
    assert scanned is None or sorted(r for r in scanned if r) == sorted(walked)


# --- check_bundle: the scan when every reference resolves, the walk when one does not --------


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


_PATIENT = {"resourceType": "Patient", "id": "p1"}


def _observation(resource_id: str, *subjects: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "subject": {"reference": subjects[0]},
        "hasMember": [{"reference": s} for s in subjects[1:]],
    }


def _walk_only(bundle: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[Problem]:
    with monkeypatch.context() as patch:
        patch.setattr(references, "scanned_references", lambda _resource: None)
        return check_bundle(bundle)


def test_a_valid_bundle_is_checked_without_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[object] = []
    monkeypatch.setattr(references, "iter_references", lambda *a: walks.append(a) or iter(()))
    assert check_bundle(_bundle(_PATIENT, _observation("o1", "Patient/p1", "urn:uuid:p1"))) == []
    assert walks == []


def test_unresolved_references_get_the_walks_paths_and_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = _bundle(_PATIENT, _observation("o1", "Patient/p2", "Patient/p1", "Patient/p3"))
    found = check_bundle(bundle)
    assert [(p.code, p.path) for p in found] == [
        ("bundle.reference-outside", "$.entry[1].resource.hasMember[1].reference"),
        ("bundle.reference-outside", "$.entry[1].resource.subject.reference"),
    ]
    assert found == _walk_only(bundle, monkeypatch)


def test_an_orphan_is_found_the_same_way_after_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    lonely = {"resourceType": "Observation", "id": "o2"}
    bundle = _bundle(
        _PATIENT, _observation("o1", "Patient/p1"), lonely, _observation("o3", "Patient/x")
    )
    found = check_bundle(bundle)
    assert [(p.code, p.path) for p in found] == [
        ("bundle.reference-outside", "$.entry[3].resource.subject.reference"),
        ("bundle.orphan", "$.entry[2]"),
        ("bundle.orphan", "$.entry[3]"),
    ]
    assert found == _walk_only(bundle, monkeypatch)
