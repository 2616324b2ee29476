"""The rules walk collects references in exactly the order iter_references gives them, so the
export gate walks each resource once for both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from migrainefhir.validate.references import iter_references
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
