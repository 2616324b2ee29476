"""Properties every converter output has, for every kind of record."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from migrainefhir import codes, ids
from migrainefhir.convert import convert_record
from migrainefhir.input.records import Record
from tests.convert_helpers import model_validate, walk
from tests.convert_records import (
    CTX,
    RECORDS,
    SOURCE_SYSTEM,
)
from tests.fhir_r4_elements import unknown_elements

EXTERNAL_PROFILES = {
    codes.SYMPTOM_OBSERVATION_PROFILE,
    codes.SYMPTOM_ABSENT_PROFILE,
    codes.HEART_RATE_PROFILE,
    codes.RESPIRATORY_RATE_PROFILE,
    codes.OXYGEN_SATURATION_PROFILE,
    codes.BLOOD_PRESSURE_PROFILE,
    codes.BODY_WEIGHT_PROFILE,
}


@pytest.fixture(params=sorted(RECORDS))
def record(request: pytest.FixtureRequest) -> Record:
    return RECORDS[request.param]()


@pytest.fixture
def resources(record: Record) -> list[dict[str, Any]]:
    return convert_record(record, CTX)


def test_every_resource_is_a_valid_r4b_model(resources: list[dict[str, Any]]) -> None:
    for resource in resources:
        model_validate(resource)


def test_no_element_outside_fhir_r4(resources: list[dict[str, Any]]) -> None:
    assert [path for r in resources for path in unknown_elements(r)] == []


def test_same_record_twice_gives_identical_bytes(record: Record) -> None:
    first = orjson.dumps(convert_record(record, CTX))
    second = orjson.dumps(convert_record(record, CTX))
    assert first == second


def test_ids_are_distinct_uuids(resources: list[dict[str, Any]]) -> None:
    resource_ids = [r["id"] for r in resources]
    assert len(set(resource_ids)) == len(resource_ids)
    assert all(len(i) == 36 for i in resource_ids)


def test_ids_follow_record_and_role(record: Record, resources: list[dict[str, Any]]) -> None:
    primary, provenance = resources[0], resources[-1]
    assert primary["id"] == ids.resource_id(
        SOURCE_SYSTEM, record.record_type, record.record_id, "primary"
    )
    assert provenance["id"] == ids.resource_id(
        SOURCE_SYSTEM, record.record_type, record.record_id, "provenance"
    )


def test_every_resource_names_its_source_record(
    record: Record, resources: list[dict[str, Any]]
) -> None:
    for resource in resources:
        expected = f"{SOURCE_SYSTEM}#{record.record_type}/{record.record_id}"
        assert resource["meta"]["source"] == expected


def test_every_resource_has_a_project_profile(resources: list[dict[str, Any]]) -> None:
    for resource in resources:
        profiles = resource["meta"]["profile"]
        assert len([p for p in profiles if p in codes.PROJECT_PROFILES]) == 1
        assert set(profiles) <= set(codes.PROJECT_PROFILES) | EXTERNAL_PROFILES


def test_every_resource_but_provenance_has_a_business_identifier(
    record: Record, resources: list[dict[str, Any]]
) -> None:
    system = ids.identifier_system(SOURCE_SYSTEM, record.record_type)
    for resource in resources[:-1]:
        identifier = resource["identifier"]
        first = identifier[0] if isinstance(identifier, list) else identifier
        assert first["system"] == system
        assert first["value"].split("/")[0] == record.record_id


def test_provenance_is_last_and_targets_everything_else(
    resources: list[dict[str, Any]],
) -> None:
    provenance = resources[-1]
    assert provenance["resourceType"] == "Provenance"
    assert provenance["target"] == [
        {"reference": f"{r['resourceType']}/{r['id']}"} for r in resources[:-1]
    ]
    assert provenance["recorded"] == "2026-03-05T02:00:00Z"


def test_provenance_names_the_source_record_and_the_software(
    record: Record, resources: list[dict[str, Any]]
) -> None:
    provenance = resources[-1]
    assert provenance["entity"] == [
        {
            "role": "source",
            "what": {
                "identifier": {
                    "system": ids.identifier_system(SOURCE_SYSTEM, record.record_type),
                    "value": record.record_id,
                },
                "display": f"{record.record_type} {record.record_id}",
            },
        }
    ]
    assembler = provenance["agent"][-1]
    assert assembler["type"]["coding"][0]["code"] == "assembler"
    assert assembler["who"]["identifier"] == {
        "system": codes.SOFTWARE_IDENTIFIER_SYSTEM,
        "value": "migrainefhir/0.1.0",
    }


def test_references_are_relative_and_resolve(resources: list[dict[str, Any]]) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in resources}
    patients = {f"Patient/{ids.patient_id(SOURCE_SYSTEM, p)}" for p in ("P1", "P2")}
    for node in walk(resources):
        if isinstance(node, dict) and "reference" in node:
            assert node["reference"] in known | patients


def test_no_narrative_is_generated(resources: list[dict[str, Any]]) -> None:
    assert all("text" not in resource for resource in resources)


def test_no_component_code_equals_the_observation_code(resources: list[dict[str, Any]]) -> None:
    """R4 obs-7."""
    for resource in resources:
        for component in resource.get("component", []) if "code" in resource else []:
            assert component["code"]["coding"][0] != resource["code"]["coding"][0]
