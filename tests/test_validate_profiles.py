"""Layer 2: the profile-schema framework and the example session-vital-sign schema."""

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from migrainefhir.validate import ResourceValidator, profiles, structure

HEART_RATE: dict[str, Any] = json.loads(
    (
        Path(__file__).parent / "data" / "validator" / "valid" / "observation-heart-rate.json"
    ).read_text()
)
CANONICAL = "https://migrainefhir.org/fhir/StructureDefinition/session-vital-sign"


def test_schemas_are_keyed_by_their_canonical_and_are_valid_2020_12() -> None:
    schemas = profiles.profile_schemas()
    assert CANONICAL in schemas
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_bundled_schemas_refer_only_to_themselves() -> None:
    text = json.dumps(profiles.profile_schemas()[CANONICAL])
    assert "_r4-primitives.json" not in text


def test_the_heart_rate_observation_matches_its_profile() -> None:
    assert profiles.check_profiles(HEART_RATE) == []


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda r: r["valueQuantity"].pop("system"), "$.valueQuantity.system"),
        (lambda r: r.__setitem__("status", "preliminary"), "$.status"),
        (lambda r: r["subject"].__setitem__("reference", "Group/g-1"), "$.subject.reference"),
        (lambda r: r.__setitem__("effectiveDateTime", "2024-03-01T10:15"), "$.effectiveDateTime"),
        (lambda r: r.__setitem__("note", []), "$.note"),
    ],
)
def test_a_profile_violation_is_reported_at_its_element(change: Any, path: str) -> None:
    resource = copy.deepcopy(HEART_RATE)
    change(resource)
    assert [(p.code, p.path) for p in profiles.check_profiles(resource)] == [("fhir.profile", path)]


def test_resources_claiming_no_project_profile_skip_the_layer() -> None:
    resource = copy.deepcopy(HEART_RATE)
    resource["meta"] = {"profile": ["http://hl7.org/fhir/StructureDefinition/heartrate"]}
    resource["note"] = [{"text": "x"}]
    assert profiles.check_profiles(resource) == []


def test_fast_mode_runs_fhir_resources_once_per_profiled_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    original = structure.check_structure

    def counting(resource: Any) -> Any:
        calls.append(resource.get("id"))
        return original(resource)

    monkeypatch.setattr(structure, "check_structure", counting)
    validator = ResourceValidator("fast")
    unprofiled = {k: v for k, v in HEART_RATE.items() if k != "meta"}
    for _ in range(3):
        assert validator.validate(HEART_RATE) == []
        assert validator.validate(unprofiled) == []
    assert calls == [HEART_RATE["id"]] * 4  # 1 profiled + 3 unprofiled


def test_full_mode_runs_fhir_resources_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = structure.check_structure
    monkeypatch.setattr(structure, "check_structure", lambda r: calls.append("x") or original(r))
    validator = ResourceValidator("full")
    for _ in range(3):
        validator.validate(HEART_RATE)
    assert len(calls) == 3


_ATTACK = "https://migrainefhir.org/fhir/StructureDefinition/headache-attack"


@pytest.mark.parametrize(
    ("claimed", "known"),
    [
        ((), ()),
        ((_ATTACK,), (_ATTACK,)),
        (
            (
                "http://hl7.org/fhir/uv/symptoms/StructureDefinition/SymptomObservation",
                _ATTACK,
                "https://migrainefhir.org/fhir/StructureDefinition/no-such-profile",
            ),
            (_ATTACK,),
        ),
    ],
)
def test_known_profiles_are_the_claimed_ones_we_ship_a_schema_for(
    claimed: tuple[str, ...], known: tuple[str, ...]
) -> None:
    resource = {"resourceType": "Observation", "meta": {"profile": list(claimed)}}
    assert profiles.shipped_among(claimed) == known
    assert profiles.known_profiles(resource) == list(known)
