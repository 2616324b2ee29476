"""Layer 1: fhir.resources R4B, its errors as Problems, and its import kept lazy."""

import subprocess
import sys

from migrainefhir.validate import validate_resource
from migrainefhir.validate.structure import check_structure


def test_importing_the_validator_does_not_import_fhir_resources_or_jsonschema() -> None:
    code = (
        "import sys, migrainefhir.validate, migrainefhir.cli;"
        "print(sorted(m for m in ('fhir.resources', 'jsonschema', 'jsonschema_rs', 'pydantic')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_a_non_resource_type_is_rejected() -> None:
    problems = check_structure({"resourceType": "Quantity", "value": 1})
    assert [(p.code, p.path) for p in problems] == [("fhir.resource-type", "$.resourceType")]


def test_an_r5_element_is_named_as_such() -> None:
    procedure = {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": {"reference": "Patient/p-1"},
        "occurrenceDateTime": "2024-03-01T10:00:00Z",
    }
    [problem] = check_structure(procedure)
    assert (problem.code, problem.path) == ("fhir.unknown-element", "$.occurrenceDateTime")
    assert (
        problem.message
        == "element 'occurrenceDateTime' is not defined in R4 Procedure (an R5 element)"
    )


def test_messages_never_quote_the_offending_value() -> None:
    secret = "Jane Roe born 1987-06-14"
    patient = {"resourceType": "Patient", "gender": secret, "birthDate": secret, "active": secret}
    problems = validate_resource(patient)
    assert {p.path for p in problems} == {"$.gender", "$.birthDate", "$.active"}
    assert all(secret not in p.message and "Jane" not in p.message for p in problems)


def test_a_nested_element_error_points_at_the_element() -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "component": [{"code": {"text": "y"}, "valueQuantity": {"value": 1, "unitt": "mg"}}],
    }
    [problem] = check_structure(observation)
    assert (problem.code, problem.path) == (
        "fhir.unknown-element",
        "$.component[0].valueQuantity.unitt",
    )
