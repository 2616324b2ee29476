"""Ketamine sessions -> Procedure, MedicationAdministration, vital signs, AdverseEvents."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from migrainefhir import codes
from migrainefhir.convert import convert_record
from tests.convert_helpers import by_role, ref, scalars
from tests.convert_records import (
    CTX,
    SOURCE_SYSTEM,
    completed_session,
    not_done_session,
    stopped_session,
)

PRACTITIONER = {
    "type": "Practitioner",
    "identifier": {"system": f"{SOURCE_SYSTEM}/practitioner", "value": "DR42"},
    "display": "Dr. Anna Meier",
}


def completed() -> list[dict[str, Any]]:
    return convert_record(completed_session(), CTX)


def role(resources: list[dict[str, Any]], name: str, session_id: str = "S1") -> dict[str, Any]:
    return by_role(resources, "ketamine-session", session_id, name)


def test_session_is_a_procedure_with_status_time_and_code() -> None:
    procedure = completed()[0]
    assert procedure["resourceType"] == "Procedure"
    assert procedure["status"] == "completed"
    assert procedure["performedPeriod"] == {
        "start": "2026-03-03T09:00:00+01:00",
        "end": "2026-03-03T10:00:00+01:00",
    }
    assert procedure["code"] == {
        "coding": [{"system": "http://snomed.info/sct", "code": "18629005"}],
        "text": "Ketamine administration, intravenous",
    }


def test_chronic_migraine_indication_is_a_project_code() -> None:
    assert completed()[0]["reasonCode"] == [
        {
            "coding": [
                {
                    "system": "https://migrainefhir.org/fhir/CodeSystem/headache-indication",
                    "code": "chronic-migraine",
                    "display": "Chronic migraine",
                }
            ],
            "text": "Chronic migraine",
        }
    ]


def test_migraine_indication_is_snomed() -> None:
    procedure = convert_record(replace(completed_session(), indication="migraine"), CTX)[0]
    assert procedure["reasonCode"][0]["coding"][0]["code"] == "37796009"


def test_performer_is_a_logical_practitioner_with_function() -> None:
    assert completed()[0]["performer"] == [
        {
            "function": {
                "coding": [
                    {
                        "system": "https://migrainefhir.org/fhir/CodeSystem/performer-role",
                        "code": "anesthesiologist",
                        "display": "Anesthesiologist",
                    }
                ]
            },
            "actor": PRACTITIONER,
        }
    ]


def test_location_and_course_are_logical_references() -> None:
    procedure = completed()[0]
    assert procedure["location"] == {
        "type": "Location",
        "identifier": {"system": f"{SOURCE_SYSTEM}/location", "value": "CLINIC-1"},
    }
    assert procedure["basedOn"] == [
        {"type": "CarePlan", "identifier": {"system": f"{SOURCE_SYSTEM}/course", "value": "C7"}}
    ]
    assert procedure["extension"] == [
        {"url": codes.SESSION_NUMBER_EXTENSION, "valuePositiveInt": 3}
    ]


def test_post_care_is_follow_up_verbatim_and_notes_a_plain_text_note() -> None:
    procedure = completed()[0]
    assert procedure["followUp"] == [
        {"text": "No driving for 24 h.\nCall if <b>headache</b> returns."}
    ]
    assert procedure["note"] == [{"text": "Tolerated well overall."}]


def test_adverse_effects_are_complications_with_codes_and_text() -> None:
    assert completed()[0]["complication"] == [
        {
            "coding": [
                {
                    "system": "https://migrainefhir.org/fhir/CodeSystem/ketamine-adverse-effect",
                    "code": "dissociation",
                    "display": "Dissociation",
                }
            ],
            "text": "felt 'floaty' & far",
        },
        {
            "coding": [
                {
                    "system": "http://snomed.info/sct",
                    "code": "24184005",
                    "display": "Increased blood pressure",
                }
            ],
            "text": "Increased blood pressure",
        },
        {
            "coding": [
                {
                    "system": "https://migrainefhir.org/fhir/CodeSystem/ketamine-adverse-effect",
                    "code": "other",
                    "display": "Other adverse effect",
                }
            ],
            "text": "metallic taste",
        },
    ]


def test_adverse_effect_severity_lives_on_an_adverse_event() -> None:
    resources = completed()
    event = role(resources, "adverse-effect/dissociation")
    assert event["actuality"] == "actual"
    assert event["severity"]["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
            "code": "moderate",
            "display": "Moderate",
        }
    ]
    assert event["suspectEntity"] == [{"instance": ref(role(resources, "administration"))}]
    assert event["recorder"] == PRACTITIONER
    assert event["identifier"]["value"] == "S1/adverse-effect/dissociation"


def test_administration_carries_drug_route_dose_rate() -> None:
    resources = completed()
    administration = role(resources, "administration")
    assert administration["partOf"] == [ref(resources[0])]
    assert administration["status"] == "completed"
    assert administration["medicationCodeableConcept"]["coding"] == [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "6130",
            "display": "ketamine",
        }
    ]
    assert administration["effectivePeriod"] == resources[0]["performedPeriod"]
    dosage = administration["dosage"]
    assert dosage["route"] == {
        "coding": [{"system": "http://snomed.info/sct", "code": "47625008"}],
        "text": "Intravenous route",
    }
    assert dosage["dose"] == {
        "value": 35,
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert dosage["rateQuantity"]["code"] == "mg/kg/h"
    assert dosage["rateQuantity"]["value"] == 0.5
    assert dosage["extension"] == [
        {
            "url": codes.DOSE_PER_WEIGHT_EXTENSION,
            "valueQuantity": {
                "value": 0.5,
                "unit": "mg/kg",
                "system": "http://unitsofmeasure.org",
                "code": "mg/kg",
            },
        }
    ]
    assert administration["supportingInformation"] == [ref(role(resources, "weight"))]


def test_body_weight_observation_follows_the_bodyweight_profile() -> None:
    weight = role(completed(), "weight")
    assert weight["meta"]["profile"][0] == "http://hl7.org/fhir/StructureDefinition/bodyweight"
    assert weight["code"]["coding"][0]["code"] == "29463-7"
    assert weight["valueQuantity"]["code"] == "kg"
    assert weight["valueQuantity"]["value"] == 70


def test_heart_rate_observation_follows_the_heartrate_profile() -> None:
    resources = completed()
    heart_rate = role(resources, "vitals/20260303T075000Z/heart-rate")
    assert heart_rate["meta"]["profile"] == [
        "http://hl7.org/fhir/StructureDefinition/heartrate",
        "https://migrainefhir.org/fhir/StructureDefinition/session-vital-sign",
    ]
    assert heart_rate["category"][0]["coding"][0]["code"] == "vital-signs"
    assert heart_rate["code"]["coding"][0]["code"] == "8867-4"
    assert heart_rate["valueQuantity"] == {
        "value": 72,
        "unit": "/min",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }
    assert heart_rate["effectiveDateTime"] == "2026-03-03T08:50:00+01:00"
    assert heart_rate["partOf"] == [ref(resources[0])]
    assert heart_rate["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "pre"


def test_blood_pressure_is_a_panel_with_components_and_no_value() -> None:
    bp = role(completed(), "vitals/20260303T083000Z/blood-pressure")
    assert bp["code"]["coding"][0]["code"] == "85354-9"
    assert not any(key.startswith("value") for key in bp)
    assert [
        (c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in bp["component"]
    ] == [
        ("8480-6", 152),
        ("8462-4", 94),
    ]
    assert {c["valueQuantity"]["code"] for c in bp["component"]} == {"mm[Hg]"}


def test_oxygen_saturation_has_both_loinc_codes() -> None:
    spo2 = role(completed(), "vitals/20260303T091500Z/oxygen-saturation")
    assert [c["code"] for c in spo2["code"]["coding"]] == ["2708-6", "59408-5"]
    assert spo2["valueQuantity"]["value"] == 97.5
    assert spo2["valueQuantity"]["code"] == "%"
    assert "extension" not in spo2  # no phase given


def test_one_observation_per_measurement() -> None:
    roles = [r["identifier"][0]["value"] for r in completed() if r["resourceType"] == "Observation"]
    assert roles == [
        "S1/weight",
        "S1/pain/before",
        "S1/pain/after",
        "S1/vitals/20260303T075000Z/heart-rate",
        "S1/vitals/20260303T075000Z/blood-pressure",
        "S1/vitals/20260303T075000Z/oxygen-saturation",
        "S1/vitals/20260303T075000Z/respiratory-rate",
        "S1/vitals/20260303T083000Z/heart-rate",
        "S1/vitals/20260303T083000Z/blood-pressure",
        "S1/vitals/20260303T091500Z/oxygen-saturation",
    ]


def test_stopped_session_keeps_its_reason_and_esketamine_nasal() -> None:
    resources = convert_record(stopped_session(), CTX)
    procedure = resources[0]
    assert procedure["status"] == "stopped"
    assert procedure["statusReason"] == {"text": "Severe nausea"}
    administration = role(resources, "administration", "S2")
    assert administration["status"] == "stopped"
    assert administration["medicationCodeableConcept"]["coding"][0]["code"] == "2119365"
    assert administration["dosage"]["route"]["coding"][0]["code"] == "46713006"


def test_not_done_session_has_no_administration() -> None:
    resources = convert_record(not_done_session(), CTX)
    assert [r["resourceType"] for r in resources] == [
        "Procedure",
        "Encounter",
        "Condition",
        "Observation",
        "Provenance",
    ]
    procedure = resources[0]
    assert procedure["status"] == "not-done"
    assert resources[1]["status"] == "cancelled"
    assert procedure["statusReason"] == {"text": "Patient unwell on arrival"}
    assert procedure["performedDateTime"] == "2026-03-17T09:00:00Z"


def test_intramuscular_route_is_text_only() -> None:
    session = replace(completed_session(), route="intramuscular")
    administration = role(convert_record(session, CTX), "administration")
    assert administration["dosage"]["route"] == {"text": "Intramuscular route"}


def test_session_provenance_author_is_the_performer() -> None:
    assert completed()[-1]["agent"][0] == {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "code": "author",
                    "display": "Author",
                }
            ]
        },
        "who": PRACTITIONER,
    }


def test_session_without_performer_has_only_the_assembler_agent() -> None:
    provenance = convert_record(not_done_session(), CTX)[-1]
    assert [a["type"]["coding"][0]["code"] for a in provenance["agent"]] == ["assembler"]


def test_every_input_value_of_a_maximal_session_is_in_the_output() -> None:
    session = completed_session()
    values = scalars(completed())
    expected: list[object] = [
        session.session_id,
        "2026-03-03T09:00:00+01:00",
        "2026-03-03T10:00:00+01:00",
        "completed",
        "47625008",
        "6130",
        session.dose_mg,
        session.weight_kg,
        session.dose_mg_per_kg,
        session.rate_mg_per_kg_per_h,
        session.course_id,
        session.session_number,
        "chronic-migraine",
        session.performer_id,
        session.performer_name,
        session.performer_role,
        session.location_id,
        session.post_care,
        session.notes,
        "2026-03-03T11:00:00Z",
        "pre",
        "during",
    ]
    for reading in session.vitals:
        expected.append(reading.time.isoformat())
        expected += [
            v
            for v in (
                reading.heart_rate,
                reading.systolic,
                reading.diastolic,
                reading.spo2,
                reading.respiratory_rate,
            )
            if v is not None
        ]
    for effect in session.adverse_effects:
        expected.append(effect.effect)
        if effect.severity is not None:
            expected.append(effect.severity)
        if effect.text is not None:
            expected.append(effect.text)
    expected.remove("hypertension")  # coded as SNOMED 24184005
    expected.append("24184005")
    missing = [value for value in expected if value not in values]
    assert missing == []
    assert "Severe nausea" in scalars(convert_record(stopped_session(), CTX))


# --- the session's Encounter and indication Condition ----------------------------------------


def test_the_session_is_an_ambulatory_encounter_every_resource_links_to() -> None:
    resources = completed()
    encounter = role(resources, "encounter")
    assert encounter["meta"]["profile"] == [codes.SESSION_ENCOUNTER_PROFILE]
    assert encounter["status"] == "finished"
    assert encounter["class"] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "AMB",
        "display": "ambulatory",
    }
    assert encounter["period"] == {
        "start": "2026-03-03T09:00:00+01:00",
        "end": "2026-03-03T10:00:00+01:00",
    }
    assert encounter["participant"][0]["individual"]["identifier"]["value"] == "DR42"
    assert encounter["location"][0]["location"]["identifier"]["value"] == "CLINIC-1"
    visit = ref(encounter)
    assert resources[0]["encounter"] == visit
    assert role(resources, "administration")["context"] == visit
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    assert len(observations) == 10  # weight, 2 pain scores, 7 vital signs
    assert all(o["encounter"] == visit for o in observations)
    events = [r for r in resources if r["resourceType"] == "AdverseEvent"]
    assert all(e["encounter"] == visit for e in events)


def test_the_indication_is_an_encounter_diagnosis_the_procedure_gives_as_its_reason() -> None:
    resources = completed()
    condition = role(resources, "indication")
    assert condition["meta"]["profile"] == [codes.SESSION_INDICATION_PROFILE]
    assert condition["clinicalStatus"]["coding"][0]["code"] == "active"
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert condition["code"] == resources[0]["reasonCode"][0]
    assert condition["encounter"] == ref(role(resources, "encounter"))
    assert resources[0]["reasonReference"] == [ref(condition)]
    assert role(resources, "encounter")["reasonReference"] == [ref(condition)]


def test_pain_before_and_after_are_nrs_observations_part_of_the_procedure() -> None:
    resources = completed()
    before, after = role(resources, "pain/before"), role(resources, "pain/after")
    for observation, phase, score, time in (
        (before, "pre", 7, "2026-03-03T09:00:00+01:00"),
        (after, "post", 3, "2026-03-03T10:00:00+01:00"),
    ):
        assert observation["meta"]["profile"] == [codes.SESSION_PAIN_SCORE_PROFILE]
        assert observation["code"]["coding"] == [
            {
                "system": "http://loinc.org",
                "code": "72514-3",
                "display": "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
            }
        ]
        assert observation["category"][0]["coding"][0]["code"] == "survey"
        assert observation["valueInteger"] == score
        assert observation["effectiveDateTime"] == time
        assert observation["partOf"] == [ref(resources[0])]
        assert observation["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == phase


def test_no_pain_scores_without_them_in_the_record() -> None:
    resources = convert_record(stopped_session(), CTX)
    assert not [r for r in resources if "/pain/" in str(r.get("identifier"))]


def test_adverse_event_has_its_date_seriousness_and_outcome_when_known() -> None:
    resources = completed()
    event = role(resources, "adverse-effect/dissociation")
    assert event["date"] == "2026-03-03T09:00:00+01:00"
    assert event["seriousness"] == {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
                "code": "Non-serious",
                "display": "Non-serious",
            }
        ]
    }
    assert event["outcome"] == {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
                "code": "resolved",
                "display": "Resolved",
            }
        ]
    }
    other = role(resources, "adverse-effect/hypertension")
    assert "seriousness" not in other
    assert "outcome" not in other
