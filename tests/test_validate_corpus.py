"""The validator corpus: hand-made R4 resources and Bundles under tests/data/validator/.

Every file in valid/ passes with no problem at all; every file in invalid/ has exactly one
defect, and the validator reports exactly the problems named for it in invalid/expected.json
(code, JSONPath and, in a Bundle, entry index), nothing more.
"""

import json
from pathlib import Path

import orjson
import pytest

from migrainefhir.problems import Problem, Source
from migrainefhir.validate import validate_bundle, validate_resource

CORPUS = Path(__file__).parent / "data" / "validator"
VALID = sorted((CORPUS / "valid").glob("*.json"))
EXPECTED: dict[str, list[dict[str, object]]] = json.loads(
    (CORPUS / "invalid" / "expected.json").read_text()
)
INVALID = sorted(p for p in (CORPUS / "invalid").glob("*.json") if p.name != "expected.json")


def _validate(path: Path) -> list[Problem]:
    document = orjson.loads(path.read_bytes())
    source = Source(path.name)
    if document.get("resourceType") == "Bundle":
        return validate_bundle(document, source)
    return validate_resource(document, source)


def _found(problems: list[Problem]) -> list[dict[str, object]]:
    out = []
    for problem in problems:
        item: dict[str, object] = {"code": problem.code, "path": problem.path}
        entry = problem.source.entry if problem.source is not None else None
        if entry is not None or problem.code.startswith("bundle."):
            item["entry"] = entry
        out.append(item)
    return sorted(out, key=json.dumps)


def test_the_corpus_is_big_enough() -> None:
    assert len(INVALID) >= 40
    assert len(VALID) >= 8
    assert sorted(EXPECTED) == [p.name for p in INVALID]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_documents_have_no_problems(path: Path) -> None:
    assert [str(p) for p in _validate(path)] == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_each_invalid_document_reports_exactly_its_defect(path: Path) -> None:
    expected = sorted(EXPECTED[path.name], key=json.dumps)
    assert _found(_validate(path)) == expected


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_fast_mode_finds_the_same_defects(path: Path) -> None:
    document = orjson.loads(path.read_bytes())
    source = Source(path.name)
    if document.get("resourceType") == "Bundle":
        problems = validate_bundle(document, source, mode="fast")
    else:
        problems = validate_resource(document, source, mode="fast")
    assert _found(problems) == sorted(EXPECTED[path.name], key=json.dumps)
