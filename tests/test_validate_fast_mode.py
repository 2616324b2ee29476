"""Fast mode is honest: once fhir.resources has seen a shape, what it no longer checks is caught
by the profile schemas, the rules and the integrity layer.

test_validate_corpus runs each document through a fresh validator, so fast mode still runs
fhir.resources on it (the first resource of its shape). Here the validator has already seen
the same shapes, as a worker has after its first records: the second pass skips fhir.resources
for every resource that claims a shipped profile, and must still report exactly the defect.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from migrainefhir.problems import Problem, Source
from migrainefhir.validate import Mode, ResourceValidator, structure, validate_bundle
from tests.test_validate_corpus import EXPECTED, INVALID, _found


def _twice(path: Path, validator: ResourceValidator) -> list[Problem]:
    """Validate the document once (the shapes become known), then again: the fast pass."""
    document = orjson.loads(path.read_bytes())
    source = Source(path.name)
    for _ in range(2):
        if document.get("resourceType") == "Bundle":
            problems = validate_bundle(document, source, validator=validator)
        else:
            problems = validator.validate(document, source)
    return problems


@pytest.mark.parametrize("mode", ["fast", "full"])
@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_with_known_shapes_and_elements_each_mode_finds_exactly_the_defect(
    path: Path, mode: Mode
) -> None:
    """The second pass also meets every valid element again (full mode reuses those)."""
    problems = _twice(path, ResourceValidator(mode))
    assert _found(problems) == sorted(EXPECTED[path.name], key=json.dumps)


def test_the_fast_pass_really_skips_fhir_resources_for_profiled_resources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = structure.check_structure

    def counting(resource: dict[str, object]) -> list[Problem]:
        calls.append(str(resource.get("resourceType")))
        return real(resource)

    monkeypatch.setattr(structure, "check_structure", counting)
    validator = ResourceValidator("fast")
    profiled = next(p for p in INVALID if p.name == "vital-profile-missing-identifier.json")
    _twice(profiled, validator)
    assert calls == ["Observation"]  # the first pass only
