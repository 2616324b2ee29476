"""Each registered rule: one resource that passes it, one that fails it with the exact path."""

from typing import Any

import pytest

from migrainefhir.problems import PROBLEM_CODES, Severity
from migrainefhir.validate import fhirtime
from migrainefhir.validate.rules import RULES, Terminology, check_rules, reference_form

CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"


def observation(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "25064002"}]},
    }
    base.update(extra)
    return base


def vital(code: str, **extra: Any) -> dict[str, Any]:
    return observation(
        category=[{"coding": [{"system": CAT, "code": "vital-signs"}]}],
        code={"coding": [{"system": "http://loinc.org", "code": code}]},
        **extra,
    )


def quantity(code: str, value: float = 72) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": UCUM, "code": code}


def found(
    resource: dict[str, Any], terminology: Terminology | None = None
) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in check_rules(resource, terminology or Terminology())]


# (rule code, a passing resource, a failing resource, the path the failure names)
CASES = [
    (
        "fhir.obs-6",
        observation(valueString="mild"),
        observation(valueString="mild", dataAbsentReason={"text": "unknown"}),
        "$.dataAbsentReason",
    ),
    (
        "fhir.obs-7",
        observation(
            valueBoolean=True, component=[{"code": {"text": "other"}, "valueBoolean": True}]
        ),
        observation(
            valueBoolean=True,
            component=[
                {
                    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "25064002"}]},
                    "valueBoolean": True,
                }
            ],
        ),
        "$.component[0].code",
    ),
    ("fhir.vs-2", vital("8867-4", valueQuantity=quantity("/min")), vital("8867-4"), "$"),
    (
        "fhir.vs-3",
        vital(
            "85354-9",
            component=[
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": quantity("mm[Hg]"),
                }
            ],
        ),
        vital(
            "85354-9",
            component=[{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}}],
        ),
        "$.component[0]",
    ),
    (
        "fhir.vital-sign-code",
        vital("2708-6", valueQuantity=quantity("%", 98)),
        vital("2708-6", valueQuantity=quantity("/min", 98)),
        "$.valueQuantity.code",
    ),
    (
        "fhir.qty-3",
        observation(valueQuantity={"value": 1, "unit": "mg", "system": UCUM, "code": "mg"}),
        observation(valueQuantity={"value": 1, "unit": "mg", "code": "mg"}),
        "$.valueQuantity.code",
    ),
    (
        "fhir.ucum-unit",
        observation(valueQuantity=quantity("{score}", 7)),
        observation(valueQuantity=quantity("beats", 7)),
        "$.valueQuantity.code",
    ),
    (
        "fhir.per-1",
        observation(effectivePeriod={"start": "2024-03-02", "end": "2024-03-02T06:00:00+01:00"}),
        observation(
            effectivePeriod={"start": "2024-03-02T07:00:00Z", "end": "2024-03-02T06:00:00Z"}
        ),
        "$.effectivePeriod.end",
    ),
    (
        "fhir.period-order",
        observation(effectiveDateTime="2024-03-02T07:00:00Z", issued="2024-03-02T07:00:00Z"),
        observation(effectiveDateTime="2024-03-02T07:00:00Z", issued="2024-03-02T06:59:00Z"),
        "$.issued",
    ),
    (
        "fhir.int32",
        observation(valueInteger=2147483647),
        observation(valueInteger=-2147483649),
        "$.valueInteger",
    ),
    (
        "fhir.date-impossible",
        observation(effectiveDateTime="2024-02-29T23:59:60+14:00"),
        observation(effectiveDateTime="2023-02-29T10:00:00Z"),
        "$.effectiveDateTime",
    ),
    (
        "fhir.value-choice",
        observation(valueInteger=1),
        observation(valueInteger=1, valueString="1"),
        "$.valueString",
    ),
    ("fhir.empty", observation(note=[{"text": "x"}]), observation(note=[{}]), "$.note[0]"),
    ("fhir.status-code", observation(status="amended"), observation(status="complete"), "$.status"),
    (
        "fhir.required-binding",
        {"resourceType": "Patient", "gender": "unknown"},
        {"resourceType": "Patient", "gender": "F"},
        "$.gender",
    ),
    (
        "fhir.reference-form",
        observation(subject={"reference": "urn:uuid:5d2c2a50-4a1f-5c5e-9a0b-2f9d3c6e7a11"}),
        observation(subject={"reference": "urn:uuid:not-a-uuid"}),
        "$.subject.reference",
    ),
    (
        "fhir.uri",
        observation(meta={"profile": ["https://example.org/p"]}),
        observation(meta={"profile": ["https://example.org/ p"]}),
        "$.meta.profile[0]",
    ),
]


@pytest.mark.parametrize(("code", "good", "bad", "path"), CASES, ids=[c[0] for c in CASES])
def test_rule_passes_and_fails(
    code: str, good: dict[str, Any], bad: dict[str, Any], path: str
) -> None:
    assert found(good) == []
    assert found(bad) == [(code, path)]


def test_every_registered_rule_code_has_a_case() -> None:
    tested = {case[0] for case in CASES} | {"fhir.project-code"}
    rule_codes = {code for code, info in PROBLEM_CODES.items() if info.layer == "rule"}
    assert rule_codes <= tested
    assert {r.code for r in RULES} <= rule_codes


def test_period_order_and_ucum_are_warnings_everything_else_errors() -> None:
    warnings = {
        code
        for code, info in PROBLEM_CODES.items()
        if info.layer == "rule" and info.severity is Severity.WARNING
    }
    assert warnings == {"fhir.period-order", "fhir.ucum-unit"}


PROJECT = "https://migrainefhir.org/fhir/CodeSystem/trigger"
TERMS = Terminology({PROJECT: frozenset({"stress", "sleep-loss"})})


def test_project_code_accepts_a_defined_code() -> None:
    resource = observation(valueCodeableConcept={"coding": [{"system": PROJECT, "code": "stress"}]})
    assert found(resource, TERMS) == []


def test_project_code_rejects_an_undefined_code() -> None:
    resource = observation(
        valueCodeableConcept={"coding": [{"system": PROJECT, "code": "weather"}]}
    )
    assert found(resource, TERMS) == [
        ("fhir.project-code", "$.valueCodeableConcept.coding[0].code")
    ]


def test_project_code_rejects_an_unshipped_project_code_system() -> None:
    system = "https://migrainefhir.org/fhir/CodeSystem/nope"
    resource = observation(valueCodeableConcept={"coding": [{"system": system, "code": "x"}]})
    assert found(resource, TERMS) == [
        ("fhir.project-code", "$.valueCodeableConcept.coding[0].system")
    ]


def test_project_code_is_silent_when_no_code_system_is_shipped() -> None:
    resource = observation(
        valueCodeableConcept={"coding": [{"system": PROJECT, "code": "weather"}]}
    )
    assert found(resource, Terminology()) == []


def test_null_paired_with_an_extension_array_is_allowed() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [
            {
                "given": ["Ann", None],
                "_given": [
                    None,
                    {"extension": [{"url": "https://example.org/x", "valueString": "y"}]},
                ],
            }
        ],
    }
    assert found(patient) == []


def test_two_problems_in_one_resource_are_both_reported() -> None:
    resource = observation(status="done", note=[])
    assert sorted(found(resource)) == [("fhir.empty", "$.note"), ("fhir.status-code", "$.status")]


@pytest.mark.parametrize(
    ("reference", "form"),
    [
        ("Patient/p-1", "relative"),
        ("Patient/p-1/_history/2", "relative"),
        ("https://fhir.example.org/fhir/Patient/p-1", "absolute"),
        ("urn:uuid:5d2c2a50-4a1f-5c5e-9a0b-2f9d3c6e7a11", "urn"),
        ("urn:oid:1.2.3.4", "urn"),
        ("#med-1", "contained"),
        ("#", "contained"),
        ("Patient?identifier=https://example.org|42", "conditional"),
        ("Patient/", None),
        ("patient/p-1", None),
        ("Patient/p 1", None),
        ("urn:uuid:nope", None),
    ],
)
def test_reference_forms(reference: str, form: str | None) -> None:
    assert reference_form(reference) == form


def test_partial_dates_are_only_ordered_when_they_cannot_overlap() -> None:
    assert not fhirtime.surely_before("2024-03", "2024-03-31T23:00:00Z")
    assert fhirtime.surely_before("2024-02", "2024-03-31T23:00:00Z")
    assert fhirtime.calendar_problem("2024-13-01") == "month 13 does not exist"
    assert fhirtime.calendar_problem("2024-02-29T25:00:00Z") == "hour 25 does not exist"
    assert (
        fhirtime.calendar_problem("2024-02-29T10:00:00+15:00")
        == "time-zone offset +15:00 does not exist"
    )
