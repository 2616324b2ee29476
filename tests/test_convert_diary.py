"""Diary entries -> Symptoms IG Observations, MedicationStatements, Provenance."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from migrainefhir import codes, ids
from migrainefhir.convert import convert_record
from migrainefhir.input.records import MedicationIntake
from tests.convert_helpers import by_role, ref, scalars
from tests.convert_records import CTX, SOURCE_SYSTEM, attack_entry, headache_free_entry

PATIENT_REF = {"reference": f"Patient/{ids.patient_id(SOURCE_SYSTEM, 'P1')}"}


def attack() -> list[dict[str, Any]]:
    return convert_record(attack_entry(), CTX)


def role(resources: list[dict[str, Any]], name: str, entry_id: str = "E123") -> dict[str, Any]:
    return by_role(resources, "diary-entry", entry_id, name)


SUMATRIPTAN = "medication/sumatriptan_20260301T140000Z"
IBUPROFEN = "medication/ibuprofen"
OTHER_DRUG = f"medication/other_{ids.key_text('Migräne-Kranit 500')}_20260301T174500Z"


def components(observation: dict[str, Any], code: codes.Code) -> list[dict[str, Any]]:
    return [c for c in observation.get("component", []) if c["code"]["coding"][0] == code.coding()]


def test_attack_is_a_symptom_observation_of_headache() -> None:
    headache = attack()[0]
    assert headache["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/symptoms/StructureDefinition/SymptomObservation",
        "https://migrainefhir.org/fhir/StructureDefinition/headache-attack",
    ]
    assert headache["category"] == [
        {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/uv/symptoms/CodeSystem/SymptomTemporary",
                    "code": "symptom",
                    "display": "Symptom",
                }
            ]
        },
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "survey",
                    "display": "Survey",
                }
            ]
        },
    ]
    assert headache["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "75325-1", "display": "Symptom"}
    ]
    assert headache["valueCodeableConcept"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "25064002", "display": "Headache"}
    ]
    assert headache["status"] == "final"
    assert headache["subject"] == PATIENT_REF
    assert headache["performer"] == [PATIENT_REF]


def test_attack_period_is_onset_to_end_with_offsets_kept() -> None:
    assert attack()[0]["effectivePeriod"] == {
        "start": "2026-03-01T14:30:00+01:00",
        "end": "2026-03-01T20:15:00+01:00",
    }


def test_attack_period_end_from_duration_when_no_end() -> None:
    entry = replace(attack_entry(), end=None, duration_minutes=90)
    assert convert_record(entry, CTX)[0]["effectivePeriod"]["end"] == "2026-03-01T16:00:00+01:00"


def test_recorded_at_is_issued_and_last_updated() -> None:
    headache = attack()[0]
    assert headache["issued"] == "2026-03-02T08:00:05Z"
    assert headache["meta"]["lastUpdated"] == "2026-03-02T08:00:05Z"


def test_severity_rating_is_a_loinc_72514_3_integer_component() -> None:
    (component,) = components(attack()[0], codes.PAIN_SEVERITY_0_10)
    assert component["valueInteger"] == 7


def test_severity_category_is_the_ig_severity_component_with_snomed() -> None:
    (component,) = components(attack()[0], codes.SYMPTOM_SEVERITY)
    assert component["code"]["coding"][0]["code"] == "64750-3"
    assert component["valueCodeableConcept"] == {
        "coding": [{"system": "http://snomed.info/sct", "code": "6736007"}],
        "text": "moderate",
    }


def test_severity_category_none_is_a_project_code() -> None:
    entry = replace(attack_entry(), severity_category="none")
    (component,) = components(convert_record(entry, CTX)[0], codes.SYMPTOM_SEVERITY)
    assert component["valueCodeableConcept"]["coding"][0] == {
        "system": "https://migrainefhir.org/fhir/CodeSystem/migraine-symptom",
        "code": "no-pain",
        "display": "No pain",
    }


def test_each_trigger_is_an_exacerbating_factor_component() -> None:
    triggers = components(attack()[0], codes.EXACERBATING_FACTOR)
    assert [c["valueCodeableConcept"]["coding"][-1]["code"] for c in triggers] == [
        "stress",
        "lack-of-sleep",
        "other",
    ]
    assert {c["valueCodeableConcept"]["coding"][-1]["system"] for c in triggers} == {
        "https://migrainefhir.org/fhir/CodeSystem/headache-trigger"
    }


def test_lack_of_sleep_carries_snomed_sleep_deprivation_before_the_project_code() -> None:
    lack_of_sleep = components(attack()[0], codes.EXACERBATING_FACTOR)[1]
    assert lack_of_sleep["valueCodeableConcept"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "130989002", "display": "Sleep deprivation"},
        {
            "system": "https://migrainefhir.org/fhir/CodeSystem/headache-trigger",
            "code": "lack-of-sleep",
            "display": "Lack of sleep",
        },
    ]


def test_trigger_text_rides_verbatim_on_the_other_trigger() -> None:
    other = components(attack()[0], codes.EXACERBATING_FACTOR)[2]
    assert other["valueCodeableConcept"]["text"] == "long flight <b>& jet lag</b>"


def test_trigger_text_without_other_gets_a_text_only_component() -> None:
    entry = replace(attack_entry(), triggers=("stress",))
    triggers = components(convert_record(entry, CTX)[0], codes.EXACERBATING_FACTOR)
    assert triggers[-1]["valueCodeableConcept"] == {"text": "long flight <b>& jet lag</b>"}


def test_each_medication_is_an_alleviating_factor_pointing_to_its_statement() -> None:
    resources = attack()
    factors = components(resources[0], codes.ALLEVIATING_FACTOR)
    statements = [role(resources, key) for key in (SUMATRIPTAN, IBUPROFEN, OTHER_DRUG)]
    assert [c["extension"] for c in factors] == [
        [
            {
                "url": "http://hl7.org/fhir/uv/symptoms/StructureDefinition/SurroundingEventMedication",
                "valueReference": ref(statement),
            }
        ]
        for statement in statements
    ]


def test_disability_is_a_project_coded_component() -> None:
    (component,) = components(attack()[0], codes.DISABILITY_COMPONENT)
    assert component["valueCodeableConcept"]["coding"][0] == {
        "system": "https://migrainefhir.org/fhir/CodeSystem/functional-impairment",
        "code": "severe",
        "display": "Severe impairment",
    }


def test_laterality_is_the_structure_laterality_of_the_head_body_site() -> None:
    assert attack()[0]["bodySite"] == {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/observation-structureLaterality",
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": "http://snomed.info/sct",
                            "code": "419161000",
                            "display": "Unilateral left",
                        }
                    ]
                },
            }
        ],
        "coding": [
            {"system": "http://snomed.info/sct", "code": "69536005", "display": "Head structure"}
        ],
        "text": "Left side of head",
    }


def test_notes_are_plain_text_as_written() -> None:
    # EHRs show Annotation.text raw: no markdown escapes that would show up on screen.
    assert attack()[0]["note"] == [{"text": "Worst in *weeks*; <script>alert(1)</script>"}]


def test_associated_symptoms_are_linked_symptom_observations() -> None:
    resources = attack()
    nausea = role(resources, "symptom/nausea")
    assert nausea["valueCodeableConcept"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "422587007", "display": "Nausea"}
    ]
    assert nausea["effectivePeriod"] == resources[0]["effectivePeriod"]
    linked = [e["valueReference"] for e in resources[0]["extension"]]
    assert ref(nausea) in linked
    assert resources[0]["extension"][0]["url"] == codes.SUPPORTING_INFO_EXTENSION


def test_symptom_without_verified_snomed_uses_the_project_code() -> None:
    osmophobia = role(attack(), "symptom/osmophobia")
    assert osmophobia["valueCodeableConcept"]["coding"][0]["system"] == (
        "https://migrainefhir.org/fhir/CodeSystem/migraine-symptom"
    )


def test_each_aura_feature_is_a_symptom_observation_linked_from_the_aura() -> None:
    resources = attack()
    aura = role(resources, "aura")
    assert aura["valueCodeableConcept"]["coding"][0]["code"] == "18618006"
    assert aura["effectiveDateTime"] == "2026-03-01"
    assert "component" not in aura  # the IG allows one quality component: none is used
    features = [role(resources, f"aura/{kind}") for kind in attack_entry().aura_symptoms]
    assert [f["valueCodeableConcept"]["coding"][0]["code"] for f in features] == [
        "246641000",
        "speech-difficulty",
    ]
    assert [f["code"]["coding"][0]["code"] for f in features] == ["75325-1", "75325-1"]
    assert [f["effectiveDateTime"] for f in features] == ["2026-03-01", "2026-03-01"]
    assert aura["extension"] == [
        {"url": codes.SUPPORTING_INFO_EXTENSION, "valueReference": ref(f)} for f in features
    ]
    headache_links = [e["valueReference"] for e in resources[0]["extension"]]
    assert ref(aura) in headache_links
    assert all(ref(f) not in headache_links for f in features)


def test_aura_features_of_a_denied_aura_are_linked_from_the_headache() -> None:
    resources = convert_record(replace(attack_entry(), aura=False), CTX)
    aura = role(resources, "aura")
    assert aura["code"]["coding"][0]["code"] == "111551-8"
    assert "extension" not in aura
    feature = role(resources, "aura/speech-difficulty")
    assert ref(feature) in [e["valueReference"] for e in resources[0]["extension"]]


def test_every_symptom_observation_also_carries_the_survey_category() -> None:
    symptom_codes = ("75325-1", "111551-8")
    symptoms = [
        r
        for r in attack()
        if r["resourceType"] == "Observation"
        and r["id"]
        and (r["code"]["coding"][0]["code"] in symptom_codes)
    ]
    assert len(symptoms) == 9
    for observation in symptoms:
        assert [c["coding"][0]["code"] for c in observation["category"]] == ["symptom", "survey"]


def test_a_denied_phase_is_a_symptom_absent_observation() -> None:
    postdrome = role(attack(), "postdrome")
    assert postdrome["code"]["coding"][0]["code"] == "111551-8"
    assert postdrome["meta"]["profile"][0] == codes.SYMPTOM_ABSENT_PROFILE
    assert postdrome["valueCodeableConcept"]["coding"][0]["code"] == "postdrome"


def test_headache_free_day_is_a_symptom_absent_observation_for_the_day() -> None:
    day = convert_record(headache_free_entry(), CTX)[0]
    assert day["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/symptoms/StructureDefinition/SymptomAbsentObservation",
        "https://migrainefhir.org/fhir/StructureDefinition/headache-free-day",
    ]
    assert day["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "111551-8", "display": "Symptom absent"}
    ]
    assert day["valueCodeableConcept"]["coding"][0]["code"] == "25064002"
    assert day["effectiveDateTime"] == "2026-03-02"
    assert "component" not in day


def test_lifestyle_fields_are_separate_daily_observations() -> None:
    resources = attack()
    sleep = role(resources, "sleep")
    assert sleep["code"]["coding"][0]["code"] == "93832-4"
    assert sleep["valueQuantity"] == {
        "value": 5.5,
        "unit": "h",
        "system": "http://unitsofmeasure.org",
        "code": "h",
    }
    assert role(resources, "stress")["valueInteger"] == 8
    assert role(resources, "exercise")["valueQuantity"]["value"] == 20
    assert role(resources, "exercise")["valueQuantity"]["code"] == "min"


def test_medication_statement_for_a_coded_drug() -> None:
    resources = attack()
    statement = role(resources, SUMATRIPTAN)
    assert statement["status"] == "completed"
    assert statement["medicationCodeableConcept"] == {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "37418",
                "display": "sumatriptan",
            }
        ],
        "text": "sumatriptan",
    }
    assert statement["effectiveDateTime"] == "2026-03-01T15:00:00+01:00"
    assert statement["dosage"] == [
        {
            "doseAndRate": [
                {
                    "doseQuantity": {
                        "value": 50,
                        "unit": "mg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mg",
                    }
                }
            ]
        }
    ]
    assert statement["reasonReference"] == [ref(resources[0])]
    assert statement["informationSource"] == PATIENT_REF
    assert statement["dateAsserted"] == "2026-03-02T08:00:05Z"


def test_medication_without_taken_at_takes_the_attack_period() -> None:
    resources = attack()
    assert role(resources, IBUPROFEN)["effectivePeriod"] == resources[0]["effectivePeriod"]


def test_other_drug_is_text_only_from_drug_text() -> None:
    statement = role(attack(), OTHER_DRUG)
    assert statement["medicationCodeableConcept"] == {"text": "Migräne-Kranit 500"}


def test_aspirin_is_the_rxnorm_ingredient_1191() -> None:
    entry = replace(
        attack_entry(), medications=(replace(attack_entry().medications[0], drug="aspirin"),)
    )
    statement = role(convert_record(entry, CTX), "medication/aspirin_20260301T140000Z")
    assert statement["medicationCodeableConcept"] == {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "1191",
                "display": "aspirin",
            }
        ],
        "text": "aspirin",
    }


def test_relief_is_the_project_relief_extension() -> None:
    statement = role(attack(), IBUPROFEN)
    assert statement["extension"] == [
        {
            "url": "https://migrainefhir.org/fhir/StructureDefinition/medication-relief",
            "valueCodeableConcept": {
                "coding": [
                    {
                        "system": "https://migrainefhir.org/fhir/CodeSystem/medication-relief",
                        "code": "partial",
                        "display": "Partial relief",
                    }
                ]
            },
        }
    ]


def test_diary_provenance_author_is_the_patient() -> None:
    author = attack()[-1]["agent"][0]
    assert author["type"]["coding"][0]["code"] == "author"
    assert author["who"] == PATIENT_REF


def test_every_input_value_of_a_maximal_entry_is_in_the_output() -> None:
    entry = attack_entry()
    values = scalars(attack())
    expected: list[object] = [
        entry.entry_id,
        entry.severity,
        entry.trigger_text,
        entry.notes,
        entry.sleep_hours,
        entry.stress_level,
        entry.exercise_minutes,
        "2026-03-01",
        "2026-03-01T14:30:00+01:00",
        "2026-03-01T20:15:00+01:00",
        "2026-03-02T08:00:05Z",
        *entry.triggers,
        "severe",  # disability
        "no-pain" if entry.severity_category == "none" else "6736007",
        "speech-difficulty",
        "246641000",
        "osmophobia",
        "422587007",
        "prodrome",
        "postdrome",
        "419161000",
        "69536005",
        *(m.dose_mg for m in entry.medications),
        "Migräne-Kranit 500",
        "complete",
        "partial",
        "none",
        "2026-03-01T15:00:00+01:00",
    ]
    missing = [value for value in expected if value not in values]
    assert missing == []


def test_medication_statement_is_patient_specified() -> None:
    statement = role(attack(), SUMATRIPTAN)
    assert statement["category"] == {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/medication-statement-category",
                "code": "patientspecified",
                "display": "Patient Specified",
            }
        ]
    }


def test_intake_route_is_the_dosage_route_when_known() -> None:
    intake = replace(attack_entry().medications[0], route="subcutaneous")
    statement = role(
        convert_record(replace(attack_entry(), medications=(intake,)), CTX), SUMATRIPTAN
    )
    assert statement["dosage"][0]["route"] == {
        "coding": [{"system": "http://snomed.info/sct", "code": "34206005"}],
        "text": "Subcutaneous route",
    }
    assert "route" not in role(attack(), SUMATRIPTAN)["dosage"][0]


def test_intramuscular_intake_route_is_text_only() -> None:
    intake = MedicationIntake(drug="ibuprofen", route="intramuscular")
    statement = role(convert_record(replace(attack_entry(), medications=(intake,)), CTX), IBUPROFEN)
    assert statement["dosage"] == [{"route": {"text": "Intramuscular route"}}]
