"""The project profile schemas (validator layer 2): one closed schema per migrainefhir profile.

Every resource the converters write passes its profile with no problem at all, in full and fast
validation; one defect in a real converted resource (an unknown or R5-only element, a wrong
fixed code, a string where a number belongs, a null, an empty array, a value out of range, a
status outside its value set, ...) is reported by the profile layer as exactly one
`fhir.profile` problem at the element's JSONPath, and the whole validator rejects it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from migrainefhir import codes
from migrainefhir.convert import convert_record, patient_stub
from migrainefhir.input import contract
from migrainefhir.input.records import AdverseEffect, MedicationIntake
from migrainefhir.outcomes.fhir import window_observation
from migrainefhir.outcomes.metrics import Cohort, WindowMetrics
from migrainefhir.pipeline import InputOptions, checked_records
from migrainefhir.problems import Severity
from migrainefhir.validate import ResourceValidator, profiles, validate_resource
from tests import convert_records as records
from tests.fhir_r4_elements import NESTED, R4_ELEMENTS

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "golden"
Resource = dict[str, Any]


def _name(canonical: str) -> str:
    return canonical.rsplit("/", 1)[1]


def _profile(resource: Resource) -> str:
    """The one migrainefhir profile a converted resource claims."""
    ours = [str(p) for p in resource["meta"]["profile"] if p in codes.PROJECT_PROFILES]
    assert len(ours) == 1, resource["meta"]
    return ours[0]


# --- the schema files ----------------------------------------------------------------------


def test_every_project_profile_has_exactly_one_schema_named_after_it() -> None:
    names = profiles.schema_files()
    ids = [json.loads(_schema_text(name))["$id"] for name in names]
    assert sorted(ids) == sorted(codes.PROJECT_PROFILES)
    assert names == sorted(f"{_name(canonical)}.json" for canonical in codes.PROJECT_PROFILES)


def _schema_text(name: str) -> str:
    folder = REPO / "src" / "migrainefhir" / "schemas" / "profiles"
    return (folder / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("canonical", codes.PROJECT_PROFILES, ids=_name)
def test_each_schema_is_valid_draft_2020_12(canonical: str) -> None:
    jsonschema.Draft202012Validator.check_schema(profiles.profile_schemas()[canonical])
    jsonschema.Draft202012Validator.check_schema(json.loads(_schema_text("_r4-primitives.json")))


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item)


@pytest.mark.parametrize("canonical", codes.PROJECT_PROFILES, ids=_name)
def test_each_schema_is_closed_and_allows_no_empty_array(canonical: str) -> None:
    for node in _nodes(profiles.profile_schemas()[canonical]):
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False, node
        if node.get("type") == "array":
            assert node.get("minItems", 0) >= 1, node


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A subschema with its local $ref / allOf-of-$ref followed to the closed object."""
    while True:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
        elif "properties" not in node and "allOf" in node:
            node = node["allOf"][0]
        else:
            return node


def _declared(schema: dict[str, Any], node: dict[str, Any]) -> set[str]:
    """The element names a (list of) closed object(s) declares."""
    node = _resolve(schema, node)
    if node.get("type") != "array":
        return set(node["properties"])
    items = [*node.get("prefixItems", []), *([node["items"]] if "items" in node else [])]
    return {name for item in items for name in _resolve(schema, item)["properties"]}


@pytest.mark.parametrize("canonical", codes.PROJECT_PROFILES, ids=_name)
def test_each_schema_names_only_r4_elements(canonical: str) -> None:
    """R4 (4.0.1) element names only, so no R4B/R5-only element can pass the closed schema."""
    schema = profiles.profile_schemas()[canonical]
    kind = schema["properties"]["resourceType"]["const"]
    assert set(schema["properties"]) <= R4_ELEMENTS[kind]
    assert _declared(schema, schema["properties"]["meta"]) <= R4_ELEMENTS["Meta"]
    for key, element in NESTED.get(kind, {}).items():
        if key in schema["properties"]:
            assert _declared(schema, schema["properties"][key]) <= R4_ELEMENTS[element], key


def test_attack_and_headache_free_day_share_one_component_shape() -> None:
    """Attack-only fields on a headache-free day are written the same way (docs/mapping.md)."""
    attack = json.loads(_schema_text("headache-attack.json"))["$defs"]
    free_day = json.loads(_schema_text("headache-free-day.json"))["$defs"]
    assert attack == free_day


def test_vital_sign_ranges_are_the_input_contracts_possible_values() -> None:
    schema = profiles.profile_schemas()[codes.SESSION_VITAL_SIGN_PROFILE]
    text = json.dumps(schema)
    for low, high in (
        contract.HEART_RATE_POSSIBLE,
        contract.RESPIRATORY_RATE_POSSIBLE,
        contract.SPO2_POSSIBLE,
        contract.SYSTOLIC_POSSIBLE,
        contract.DIASTOLIC_POSSIBLE,
    ):
        assert f'{{"minimum": {low}, "maximum": {high}}}' in text


# --- converter output passes ---------------------------------------------------------------


def _example_resources() -> list[Resource]:
    """Every resource the export makes from examples/ndjson (Patients from records or stubs),
    with --with-outcomes (the headache outcome windows)."""
    out: list[Resource] = []
    patients: set[str] = set()
    stubs: set[str] = set()
    cohort = Cohort()
    for checked in checked_records([str(REPO / "examples" / "ndjson")], InputOptions()):
        assert checked.record is not None, [str(p) for p in checked.problems]
        out += convert_record(checked.record, records.CTX)
        cohort.add(checked.record)
        if checked.record.record_type == "patient":
            patients.add(checked.record.patient_id)
        else:
            stubs.add(checked.record.patient_id)
    out += [patient_stub(patient_id, records.CTX) for patient_id in sorted(stubs - patients)]
    out += [
        window_observation(window, records.CTX.source_system)
        for patient in cohort.ordered()
        for window in patient.windows()
    ]
    return out


def _golden_resources() -> list[Resource]:
    out: list[Resource] = []
    for path in sorted(GOLDEN.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        out += document if isinstance(document, list) else [document]
    return out


def _branch_resources() -> list[Resource]:
    """Converter branches the examples may not reach: text-only drugs, intramuscular route, a
    name-only or no performer, a not-done session with an end, a headache-free day carrying
    attack fields, attacks without end or severity score, notes with outer whitespace."""
    attack, free_day = records.attack_entry(), records.headache_free_entry()
    session, not_done = records.completed_session(), records.not_done_session()
    variants = [
        attack,
        free_day,
        session,
        records.stopped_session(),
        not_done,
        records.patient_record(),
        replace(
            free_day,
            severity=0,
            severity_category="none",
            symptoms=("nausea",),
            aura=True,
            prodrome=False,
            triggers=("stress",),
            trigger_text="x",
            medications=(MedicationIntake(drug="aspirin"),),
            laterality="left",
            disability="none",
            notes="  outer whitespace stays\n",
        ),
        replace(
            attack,
            triggers=(),
            trigger_text="only text",
            medications=(MedicationIntake(drug="other", drug_text="Thing"),),
            severity=None,
            end=None,
            duration_minutes=None,
            aura=False,
            aura_symptoms=(),
            prodrome=None,
            postdrome=None,
        ),
        replace(attack, severity_category=None, symptoms=("vomiting", "dizziness", "fatigue")),
        replace(
            session,
            performer_id=None,
            performer_role=None,
            route="intramuscular",
            rate_mg_per_kg_per_h=None,
            weight_kg=None,
            dose_mg_per_kg=None,
            vitals=(),
            session_number=None,
            course_id=None,
            location_id=None,
            recorded_at=None,
        ),
        replace(session, performer_id=None, performer_name=None, performer_role=None),
        replace(
            not_done,
            end=not_done.start + timedelta(hours=1),
            adverse_effects=(AdverseEffect(effect="tachycardia"),),
            performer_name="Nurse on duty",
        ),
    ]
    out = [resource for record in variants for resource in convert_record(record, records.CTX)]
    windows = [
        WindowMetrics("P9", 0, date(2026, 2, 1), date(2026, 2, 28), 28, 28, 28, 28, 10, 15, 1, 3.0),
        WindowMetrics("P9", -2, date(2025, 12, 7), date(2026, 1, 3), 1, 0, 0, 0, 0, 0, 0, None),
    ]
    outcome_windows = [window_observation(window, records.CTX.source_system) for window in windows]
    return [*out, patient_stub("P9", records.CTX), *outcome_windows]


EXAMPLES = _example_resources()
ALL_CONVERTED = EXAMPLES + _golden_resources() + _branch_resources()


def test_the_examples_reach_every_profile() -> None:
    assert {_profile(resource) for resource in EXAMPLES} == set(codes.PROJECT_PROFILES)


def _problems(resources: list[Resource], validate: Callable[[Resource], list[Any]]) -> list[str]:
    return [f"{r['resourceType']}/{r['id']}: {p}" for r in resources for p in validate(r)]


def test_every_converted_resource_passes_in_full_mode() -> None:
    # A note is the patient's text verbatim (docs/mapping.md), and R4 types Annotation.text as
    # markdown: a note holding an HTML tag gets the warning the HL7 validator gives, no more.
    html_tag = (
        "warning [fhir.markdown-html] $.note[0].text: "
        "The markdown contains content that appears to be an embedded HTML tag"
    )
    with_tags = [
        f"{r['resourceType']}/{r['id']}: {html_tag}"
        for r in ALL_CONVERTED
        if any("<script>" in note["text"] for note in r.get("note", []))
    ]
    assert with_tags  # the goldens hold a note with a <script> tag
    assert _problems(ALL_CONVERTED, lambda r: validate_resource(r, mode="full")) == with_tags


def test_every_converted_resource_passes_in_fast_mode() -> None:
    validator = ResourceValidator("fast")  # one run: only the first of each shape in full
    assert _problems(ALL_CONVERTED, validator.validate) == []


def _as_a_server_returns_it(resource: Resource) -> Resource:
    """The resource with what a server manages: a version, the time it stored it, its own
    meta.source (HAPI appends a request id), tag and security labels, and a new id."""
    returned = copy.deepcopy(resource)
    returned["id"] = "server-assigned-1"
    returned["meta"] = {
        **returned["meta"],
        "versionId": "7b3f0c9e-0c55-4d3e-9f1a-2f6d1c1e8a11",
        "lastUpdated": "2026-07-01T00:00:01.123Z",
        "source": "https://fhir.example.org/request#Xk2pQ9",
        "tag": [{"system": "https://fhir.example.org/tags", "code": "imported"}],
        "security": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST"}
        ],
    }
    return returned


def test_resources_as_a_server_returns_them_pass_every_profile() -> None:
    returned = [_as_a_server_returns_it(resource) for resource in EXAMPLES]
    assert {_profile(resource) for resource in returned} == set(codes.PROJECT_PROFILES)
    assert _problems(returned, lambda r: validate_resource(r, mode="full")) == []


def test_a_conditional_entry_without_an_id_passes_every_profile() -> None:
    # --write-mode conditional sends no id: the server settles it (export/bundle.py).
    stripped = [{k: v for k, v in r.items() if k != "id"} for r in EXAMPLES]
    found = [p for r in stripped for p in profiles.check_profiles(r)]
    assert found == []


# --- one defect, one problem at its path ---------------------------------------------------

DELETE = object()  # the mutation removes the element
FIXTURE_RESOURCES = _branch_resources()
OURS = "https://migrainefhir.org/fhir/StructureDefinition/"
R4_VITAL = "http://hl7.org/fhir/StructureDefinition/"


def _pick(key: str) -> Resource:
    """A converted fixture resource by its identifier value (Provenance: its source record)."""
    for resource in FIXTURE_RESOURCES:
        if resource["resourceType"] == "Provenance":
            value = resource["entity"][0]["what"]["identifier"]["value"]
            found_key = f"provenance of {value}"
        else:
            found = resource["identifier"]
            found_key = (found[0] if isinstance(found, list) else found)["value"]
        if found_key == key:
            return copy.deepcopy(resource)
    raise KeyError(key)


_PART = re.compile(r"\.([A-Za-z_]+)|\[(\d+)\]")


def _parts(path: str) -> list[str | int]:
    assert path.startswith("$")
    return [name if name else int(index) for name, index in _PART.findall(path)]


def _mutate(resource: Resource, path: str, value: Any) -> None:
    *parents, last = _parts(path)
    node: Any = resource
    for part in parents:
        node = node[part]
    if value is DELETE:
        del node[last]
    elif callable(value):
        node[last] = value(copy.deepcopy(resource))
    elif isinstance(last, int) and last == len(node):
        node.append(value)
    else:
        node[last] = value


PHASE = {
    "url": codes.SESSION_PHASE_EXTENSION,
    "valueCodeableConcept": codes.SESSION_PHASES["pre"].concept(),
}
READING = "S1/vitals/20260303T075000Z"  # the first reading of the completed session
BP = f"{READING}/blood-pressure"
HR = f"{READING}/heart-rate"
SPO2 = f"{READING}/oxygen-saturation"
AE = "S1/adverse-effect/dissociation"
MED = "E123/medication/sumatriptan_20260301T140000Z"
BP_VALUE = {"value": 120, "unit": "mmHg", "system": codes.UCUM, "code": "mm[Hg]"}

# (resource, JSONPath of the defect, the value put there or DELETE, what it shows[, where the
# problem is reported when that is not the changed element])
MUTATIONS: list[tuple[str, ...] | tuple[Any, ...]] = [
    # headache-outcome-window
    ("P9/0", "$.component[3].valueInteger", 29, "more migraine days than the window has"),
    ("P9/0", "$.component[1].valueInteger", -1, "a negative count"),
    ("P9/0", "$.component[7].valueBoolean", "true", "moh-risk as a string"),
    ("P9/0", "$.component[2].code.coding[0].code", "migraine-days", "measures out of order"),
    ("P9/0", "$.effectivePeriod.end", DELETE, "an open window"),
    ("P9/0", "$.effectivePeriod.start", "2026-02-01T00:00:00Z", "a dateTime, not the day"),
    ("P9/0", "$.code.coding[0].code", "migraine-days", "a measure as the summary code"),
    ("P9/0", "$.valueInteger", 3, "a value beside the components"),
    ("P9/0", "$.identifier[0].value", "P9/w0", "not patient/window"),
    ("P9/-2", "$.component", [], "empty array"),
    # headache-attack
    ("E123", "$.comment", "text", "unknown element (STU3 Observation.comment)"),
    ("E123", "$.triggeredBy", [{"observation": {"reference": "Observation/x"}}], "R5-only"),
    ("E123", "$.bodyStructure", {"reference": "BodyStructure/x"}, "R5-only"),
    ("E123", "$.code.coding[0].code", "111551-8", "wrong fixed code"),
    ("E123", "$.category[0].coding[0].system", codes.OBSERVATION_CATEGORY, "wrong system"),
    ("E123", "$.component[0].valueInteger", "7", "string for number"),
    ("E123", "$.component[0].valueInteger", 11, "pain score out of 0-10"),
    ("E123", "$.component[0].valueInteger", 7.5, "fraction for integer"),
    ("E123", "$.issued", None, "null"),
    ("E123", "$.performer", [], "empty array"),
    ("E123", "$.note[0].text", "", "empty string"),
    ("E123", "$.status", "preliminary", "status other than final"),
    ("E123", "$.status", "done", "status outside observation-status"),
    ("E123", "$.component[2].valueCodeableConcept.coding[0].code", "coffee", "unknown trigger"),
    ("E123", "$.component[3].valueCodeableConcept.coding[0].code", "73595000", "not sleep loss"),
    ("E123", "$.component[1].valueInteger", 3, "score on the severity-category component"),
    ("E123", "$.component[5].extension", DELETE, "medication component without its link"),
    ("E123", "$.component", lambda r: r["component"][2:], "attack without any severity"),
    ("E123", "$.effectivePeriod", DELETE, "attack without its period"),
    ("E123", "$.effectivePeriod.start", "2026-03-01T14:30:00", "date-time without offset"),
    ("E123", "$.extension[0].url", codes.RELATED_MEDICATION_EXTENSION, "wrong extension url"),
    ("E123", "$.subject.reference", "Group/g1", "subject not a Patient"),
    ("E123", "$.meta.source", "https://clinic.example.org/my diary#diary-entry/E123", "space"),
    ("E123", "$.identifier[0].system", f"{records.SOURCE_SYSTEM}/patient", "wrong id space"),
    ("E123", "$.bodySite.extension[0].valueCodeableConcept.coding[0].code", "24028007", "side"),
    ("E123", "$.bodySite.coding[0].code", "51440002", "a laterality as the body site"),
    ("E123", "$.category", lambda r: r["category"][:1], "without the survey category"),
    # headache-free-day
    ("E124", "$.triggeredBy", [{"observation": {"reference": "Observation/x"}}], "R5-only"),
    ("E124", "$.code.coding[0].code", "75325-1", "wrong fixed code"),
    ("E124", "$.valueCodeableConcept.coding[0].code", "18618006", "not Headache"),
    ("E124", "$.effectiveDateTime", "2026-03-02T10:00:00Z", "a time, not the diary day"),
    ("E124", "$.effectivePeriod", {"start": "2026-03-02T10:00:00Z"}, "a period"),
    ("E124", "$.meta.profile[0]", codes.SYMPTOM_OBSERVATION_PROFILE, "IG profile of an attack"),
    ("E124", "$.performer", None, "null"),
    ("E124", "$.category", [], "empty array"),
    ("E124", "$.status", "cancelled", "status other than final"),
    # headache-associated-symptom
    ("E123/aura", "$.triggeredBy", [{"observation": {"reference": "Observation/x"}}], "R5"),
    ("E123/aura", "$.code.coding[0].code", "111551-8", "wrong fixed code"),
    ("E123/aura", "$.component", lambda r: [{"code": r["code"]}], "unknown element here"),
    ("E123/aura", "$.extension[0].valueReference", None, "null"),
    ("E123/aura", "$.extension", [], "empty array"),
    ("E123/aura/speech-difficulty", "$.valueCodeableConcept.coding[0].code", "smell", "kind"),
    ("E123/aura/speech-difficulty", "$.identifier[0].value", "E123/aura/numbness", "role"),
    ("E123/aura", "$.identifier[0].value", "E123/prodrome", "identifier of another role"),
    ("E123/aura", "$.status", "entered-in-error", "status other than final"),
    ("E123/symptom/nausea", "$.extension", lambda r: _pick("E123/aura")["extension"], "links"),
    ("E123/symptom/nausea", "$.identifier[0].value", "E123/symptom/vomiting", "wrong role"),
    ("E123/symptom/nausea", "$.valueCodeableConcept.coding[0].code", "25064002", "headache"),
    ("E123/prodrome", "$.effectivePeriod", {"start": "2026-03-01T10:00:00Z"}, "phase period"),
    # headache-absent-symptom
    ("E123/postdrome", "$.component", [{"code": {"text": "x"}}], "unknown element here"),
    ("E123/postdrome", "$.triggeredBy", [{"observation": {"reference": "Observation/x"}}], "R5"),
    ("E123/postdrome", "$.code.coding[0].code", "75325-1", "wrong fixed code"),
    ("E123/postdrome", "$.valueCodeableConcept.coding[0].code", "neck-pain", "not a phase"),
    ("E123/postdrome", "$.identifier[0].value", "E123/prodrome", "identifier of another role"),
    ("E123/postdrome", "$.performer", None, "null"),
    ("E123/postdrome", "$.status", "amended", "status other than final"),
    # diary-lifestyle-observation
    ("E123/sleep", "$.valueQuantity.value", "5.5", "string for number"),
    ("E123/sleep", "$.valueQuantity.value", 25, "sleep over 24 h"),
    ("E123/sleep", "$.valueQuantity.code", "min", "wrong unit"),
    ("E123/sleep", "$.valueInteger", 3, "a score on the sleep observation"),
    ("E123/sleep", "$.category[0].coding[0].code", "survey", "wrong category for sleep"),
    ("E123/sleep", "$.instantiatesCanonical", "http://example.org/q", "R5-only"),
    ("E123/sleep", "$.category", [], "empty array"),
    ("E123/sleep", "$.issued", None, "null"),
    ("E123/sleep", "$.status", "preliminary", "status other than final"),
    ("E123/stress", "$.valueInteger", 11, "stress over 10"),
    ("E123/stress", "$.valueInteger", "8", "string for number"),
    ("E123/exercise", "$.valueQuantity.value", 1441, "more minutes than a day has"),
    ("E123/exercise", "$.identifier[0].value", "E123/sleep", "identifier of another role"),
    # acute-medication-statement
    (MED, "$.adherence", {"code": {"text": "taken"}}, "R5-only"),
    (MED, "$.status", "taken", "STU3 status, not in R4"),
    (MED, "$.status", "active", "status other than completed"),
    (MED, "$.dosage[0].doseAndRate[0].doseQuantity.value", "50", "string"),
    (MED, "$.dosage[0].doseAndRate[0].doseQuantity.value", 0, "no dose"),
    (MED, "$.dosage[0].doseAndRate[0].doseQuantity.code", "g", "wrong unit"),
    (MED, "$.extension[0].valueCodeableConcept.coding[0].code", "some", "relief"),
    (MED, "$.medicationCodeableConcept.coding[0].code", "2670", "not ours"),
    (MED, "$.dateAsserted", None, "null"),
    (MED, "$.reasonReference", [], "empty array"),
    (MED, "$.effectivePeriod", {"start": "2026-03-01T14:30:00+01:00"}, "both"),
    (MED, "$.informationSource.reference", "Practitioner/x", "not the patient"),
    # ketamine-session-procedure
    ("S1", "$.occurrenceDateTime", "2026-03-03T09:00:00+01:00", "R5-only"),
    ("S1", "$.status", "done", "status outside event-status"),
    ("S1", "$.status", "in-progress", "status we never write"),
    ("S1", "$.status", "stopped", "stopped without a reason", "$.statusReason"),
    ("S1", "$.code.coding[0].code", "71388002", "wrong fixed code"),
    ("S1", "$.extension[0].valuePositiveInt", 0, "session number 0"),
    ("S1", "$.extension[0].valuePositiveInt", "3", "string for number"),
    ("S1", "$.reasonCode[0].coding[0].code", "migraine", "indication outside the value set"),
    ("S1", "$.performer[0].function.coding[0].code", "surgeon", "performer role"),
    ("S1", "$.location.identifier.system", f"{records.SOURCE_SYSTEM}/practitioner", "id space"),
    ("S1", "$.note", None, "null"),
    ("S1", "$.complication", [], "empty array"),
    ("S1", "$.reasonReference[0].reference", "Observation/x", "reason not a Condition"),
    ("S1", "$.encounter", DELETE, "not in its encounter"),
    ("S3", "$.status", "completed", "completed, with a planned time", "$.performedDateTime"),
    # ketamine-administration
    ("S1/administration", "$.occurenceDateTime", "2026-03-03T09:00:00+01:00", "R5-only"),
    ("S1/administration", "$.status", "not-done", "never written for a session not begun"),
    ("S1/administration", "$.dosage.dose.value", "35", "string for number"),
    ("S1/administration", "$.dosage.dose.code", "g", "wrong unit"),
    ("S1/administration", "$.dosage.dose", DELETE, "no total dose"),
    ("S1/administration", "$.dosage.rateQuantity.code", "mg/h", "wrong rate unit"),
    ("S1/administration", "$.dosage.extension[0].valueQuantity.value", 0, "zero mg/kg"),
    ("S1/administration", "$.dosage.route.coding[0].code", "78421000", "route outside ours"),
    ("S1/administration", "$.medicationCodeableConcept.coding[0].code", "1234", "product"),
    ("S1/administration", "$.partOf[0].reference", "Observation/x", "not the Procedure"),
    ("S1/administration", "$.performer", [], "empty array"),
    ("S1/administration", "$.supportingInformation", None, "null"),
    # session-vital-sign
    (HR, "$.valueQuantity.value", "72", "string for number"),
    (HR, "$.valueQuantity.value", 0, "heart rate 0"),
    (HR, "$.valueQuantity.value", 301, "heart rate over 300"),
    (HR, "$.valueQuantity.code", "{beats}/min", "wrong unit"),
    (HR, "$.meta.profile[0]", f"{R4_VITAL}bp", "wrong R4 profile"),
    (HR, "$.component", lambda r: _pick(BP)["component"], "components"),
    (HR, "$.identifier[0].value", BP, "role"),
    (HR, "$.extension[0].valueCodeableConcept.coding[0].code", "x", "phase"),
    (HR, "$.effectiveDateTime", "2026-03-03", "a day, not a time"),
    (HR, "$.triggeredBy", [{"type": "reflex"}], "R5-only"),
    (HR, "$.interpretation", [{"text": "high"}], "element not written"),
    (HR, "$.partOf", None, "null"),
    (HR, "$.category", [], "empty array"),
    (HR, "$.status", "preliminary", "status other than final"),
    (HR, "$.status", "draft", "status outside observation-status"),
    (SPO2, "$.valueQuantity.value", 101, "SpO2 over 100 %"),
    (SPO2, "$.code.coding[1]", DELETE, "one code", "$.code.coding"),
    (BP, "$.component[0].valueQuantity.value", 371, "systolic"),
    (BP, "$.component[1].valueQuantity.code", "%", "wrong unit"),
    (BP, "$.component[1].code.coding[0].code", "8480-6", "order"),
    (BP, "$.valueQuantity", BP_VALUE, "panel with its own value"),
    ("S1/weight", "$.extension", [PHASE], "phase on the body weight"),
    ("S1/weight", "$.valueQuantity.value", 0, "no weight"),
    ("S1/weight", "$.valueQuantity.code", "[lb_av]", "pounds"),
    # ketamine-adverse-event
    (AE, "$.status", "completed", "R5-only"),
    (AE, "$.code", {"text": "nausea"}, "R5-only"),
    (AE, "$.actuality", "potential", "not the fixed actual"),
    (AE, "$.actuality", "happened", "outside adverse-event-actuality"),
    (AE, "$.severity.coding[0].code", "life-threatening", "severity"),
    (AE, "$.identifier", lambda r: [r["identifier"]], "identifier is 0..1"),
    (AE, "$.event.coding[0].code", "euphoria", "effect outside ours"),
    (AE, "$.suspectEntity", [], "empty array"),
    (AE, "$.recorder", None, "null"),
    (AE, "$.date", "2026-03-03T09:00:00", "date-time without offset"),
    (AE, "$.seriousness.coding[0].code", "serious", "post-R4 lower-case code"),
    (AE, "$.outcome.coding[0].code", "resolved-with-sequelae", "contract value, not the code"),
    (AE, "$.suspectEntity[0].instance.reference", "Observation/x", "suspect"),
    # ketamine-session-encounter
    ("S1/encounter", "$.status", "in-progress", "a session is written when it is over"),
    ("S1/encounter", "$.status", "done", "outside encounter-status"),
    ("S1/encounter", "$.class.code", "IMP", "not ambulatory"),
    ("S1/encounter", "$.class", [{"code": "AMB"}], "class is a single Coding in R4"),
    ("S1/encounter", "$.period", DELETE, "no period"),
    ("S1/encounter", "$.reasonReference[0].reference", "Observation/x", "reason not a Condition"),
    ("S1/encounter", "$.participant", [], "empty array"),
    ("S1/encounter", "$.actualPeriod", {"start": "2026-03-03T09:00:00+01:00"}, "R5-only"),
    ("S1/encounter", "$.identifier[0].value", "S1/indication", "identifier of another role"),
    # ketamine-session-indication
    ("S1/indication", "$.clinicalStatus.coding[0].code", "resolved", "not active"),
    ("S1/indication", "$.verificationStatus", None, "null"),
    ("S1/indication", "$.category[0].coding[0].code", "problem-list-item", "not this visit's"),
    ("S1/indication", "$.code.coding[0].code", "tension", "indication outside the value set"),
    ("S1/indication", "$.encounter.reference", "Procedure/x", "encounter not an Encounter"),
    ("S1/indication", "$.participant", [{"actor": {"reference": "Practitioner/x"}}], "R5-only"),
    # session-pain-score
    ("S1/pain/before", "$.valueInteger", 11, "pain over 10"),
    ("S1/pain/before", "$.valueInteger", "7", "string for number"),
    ("S1/pain/before", "$.code.coding[0].code", "8867-4", "not the 0-10 rating"),
    ("S1/pain/before", "$.extension[0].valueCodeableConcept.coding[0].code", "post", "phase"),
    ("S1/pain/after", "$.partOf", [], "empty array"),
    ("S1/pain/after", "$.encounter", DELETE, "not in the session's encounter"),
    ("S1/pain/after", "$.category[0].coding[0].code", "vital-signs", "not a vital sign"),
    # migrainefhir-patient
    ("P1", "$.gender", "f", "gender outside administrative-gender"),
    ("P1", "$.birthDate", "1984-7-14", "not an R4 date"),
    ("P1", "$.identifier[0].system", f"{records.SOURCE_SYSTEM}/diary-entry", "id space"),
    ("P1", "$.identifier[1].system", "urn:oid:1.2 3", "uri with a space"),
    ("P1", "$.name[0].given[0]", None, "null in an array"),
    ("P1", "$.name[0].given", [], "empty array"),
    ("P1", "$.name[0].family", "  ", "blank string"),
    ("P1", "$.name[0].use", "official", "element not written"),
    ("P1", "$.active", "true", "element not written"),
    ("P9", "$.identifier", [], "stub without identifier"),
    # migrainefhir-provenance
    ("provenance of S1", "$.patient", {"reference": "Patient/x"}, "R5-only"),
    ("provenance of S1", "$.recorded", "2026-03-05T03:00:00+01:00", "not written in UTC"),
    ("provenance of S1", "$.entity[0].role", "derivation", "not the fixed source"),
    ("provenance of S1", "$.entity[0].role", "copied", "outside provenance-entity-role"),
    ("provenance of S1", "$.agent[0].type.coding[0].code", "performer", "agent type"),
    ("provenance of S1", "$.agent[1].who.identifier.system", "https://example.org/sid", "sw"),
    ("provenance of S1", "$.target", [], "empty array"),
    ("provenance of S1", "$.recorded", None, "null"),
    ("provenance of S1", "$.meta.versionId", "v 1", "not an R4 id"),
    ("provenance of S1", "$.target[0].reference", "Location/x", "target we never make"),
]


def _mutation_id(row: tuple[Any, ...]) -> str:
    key, path, _value, why, *_reported_at = row
    return f"{key} {path} {why}"


def test_mutations_cover_every_profile() -> None:
    claimed = {_profile(_pick(row[0])) for row in MUTATIONS}
    assert claimed == set(codes.PROJECT_PROFILES)


@pytest.mark.parametrize("row", MUTATIONS, ids=_mutation_id)
def test_one_defect_is_one_profile_problem_at_its_path(row: tuple[Any, ...]) -> None:
    key, path, value, _why, *reported_at = row
    where = reported_at[0] if reported_at else path
    resource = _pick(key)
    assert profiles.check_profiles(resource) == []
    _mutate(resource, path, value)
    found = [(p.code, p.path) for p in profiles.check_profiles(resource)]
    assert found == [("fhir.profile", where)]
    rejected = {p.path for p in validate_resource(resource) if p.severity is Severity.ERROR}
    assert where in rejected
