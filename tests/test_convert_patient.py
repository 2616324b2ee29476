"""Patient resources from a patient record or a bare patient_id."""

from __future__ import annotations

from migrainefhir import ids
from migrainefhir.convert import convert_record, patient_resource, patient_stub
from tests.convert_records import CTX, SOURCE_SYSTEM, completed_session, patient_record


def test_patient_carries_source_and_ehr_identifiers_and_demographics() -> None:
    patient = patient_resource(patient_record(), CTX)
    assert patient["id"] == ids.patient_id(SOURCE_SYSTEM, "P1")
    assert patient["identifier"] == [
        {"system": f"{SOURCE_SYSTEM}/patient", "value": "P1"},
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "MR",
                        "display": "Medical record number",
                    }
                ]
            },
            "system": "urn:oid:1.2.36.146.595.217.0.1",
            "value": "MRN-0042",
            "assigner": {"display": "City Hospital"},
        },
        {"system": "https://ehr.example.org/id/patient", "value": "998877"},
    ]
    assert patient["name"] == [{"family": "Muster", "given": ["Erika", "Maria"]}]
    assert patient["birthDate"] == "1984-07-14"
    assert patient["gender"] == "female"
    assert patient["meta"] == {
        "lastUpdated": "2026-01-05T12:00:00Z",
        "source": f"{SOURCE_SYSTEM}#patient/P1",
        "profile": ["https://migrainefhir.org/fhir/StructureDefinition/migrainefhir-patient"],
    }


def test_stub_has_the_same_id_and_only_the_identifier() -> None:
    stub = patient_stub("P1", CTX)
    assert stub == {
        "resourceType": "Patient",
        "id": patient_resource(patient_record(), CTX)["id"],
        "meta": {
            "source": f"{SOURCE_SYSTEM}#patient/P1",
            "profile": ["https://migrainefhir.org/fhir/StructureDefinition/migrainefhir-patient"],
        },
        "identifier": [{"system": f"{SOURCE_SYSTEM}/patient", "value": "P1"}],
    }


def test_patient_record_converts_to_patient_and_provenance() -> None:
    resources = convert_record(patient_record(), CTX)
    assert [r["resourceType"] for r in resources] == ["Patient", "Provenance"]
    assert resources[0] == patient_resource(patient_record(), CTX)
    assert [a["type"]["coding"][0]["code"] for a in resources[1]["agent"]] == ["assembler"]


def test_other_source_system_gives_other_ids() -> None:
    other = type(CTX)("https://other.example.org", CTX.export_time, CTX.software_version)
    assert patient_stub("P1", other)["id"] != patient_stub("P1", CTX)["id"]


def test_a_patient_with_an_mrn_is_matched_on_it() -> None:
    patient = patient_resource(patient_record(), CTX)
    assert ids.business_identifier(patient) == patient["identifier"][1]


def test_a_patient_without_an_mrn_is_matched_on_the_source_identifier() -> None:
    assert ids.business_identifier(patient_stub("P1", CTX)) == {
        "system": f"{SOURCE_SYSTEM}/patient",
        "value": "P1",
    }


def test_other_resources_are_matched_on_their_first_identifier() -> None:
    resources = convert_record(completed_session(), CTX)
    event = next(r for r in resources if r["resourceType"] == "AdverseEvent")
    assert ids.business_identifier(resources[0]) == resources[0]["identifier"][0]
    assert ids.business_identifier(event) == event["identifier"]
    assert ids.business_identifier(resources[-1]) is None  # Provenance
