"""Bundle assembly: fullUrls, reference rewriting, transaction requests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from migrainefhir import ids
from migrainefhir.convert import convert_record, patient_resource, patient_stub
from migrainefhir.export.bundle import collection_bundle, transaction_bundle
from tests.convert_helpers import model_validate, walk
from tests.convert_records import CTX, attack_entry, completed_session, patient_record
from tests.fhir_r4_elements import R4_ELEMENTS

TIMESTAMP = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)


def resources() -> list[dict[str, Any]]:
    return [patient_stub("P1", CTX), *convert_record(attack_entry(), CTX)]


def test_collection_bundle_has_urn_uuid_full_urls_in_order() -> None:
    given = resources()
    bundle = collection_bundle(given, "b-1", TIMESTAMP)
    assert bundle["resourceType"] == "Bundle"
    assert bundle["id"] == "b-1"
    assert bundle["type"] == "collection"
    assert bundle["timestamp"] == "2026-03-05T03:00:00Z"
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"urn:uuid:{r['id']}" for r in given]
    assert [e["resource"]["id"] for e in bundle["entry"]] == [r["id"] for r in given]


def test_references_inside_the_bundle_become_urn_uuids() -> None:
    bundle = collection_bundle(resources(), "b-1", TIMESTAMP)
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    references = [n["reference"] for n in walk(bundle) if isinstance(n, dict) and "reference" in n]
    assert references
    assert set(references) <= full_urls
    patient = f"urn:uuid:{ids.patient_id(CTX.source_system, 'P1')}"
    assert bundle["entry"][1]["resource"]["subject"] == {"reference": patient}


def test_references_outside_the_bundle_stay_relative() -> None:
    given = convert_record(attack_entry(), CTX)  # no Patient in this Bundle
    bundle = collection_bundle(given, "b-1", TIMESTAMP)
    assert bundle["entry"][0]["resource"]["subject"] == given[0]["subject"]


def test_input_resources_are_not_modified() -> None:
    given = resources()
    before = copy.deepcopy(given)
    collection_bundle(given, "b-1", TIMESTAMP)
    transaction_bundle(given, "b-2", TIMESTAMP)
    assert given == before


def test_transaction_bundle_puts_each_resource_by_id() -> None:
    given = resources()
    bundle = transaction_bundle(given, "t-1", TIMESTAMP)
    assert bundle["type"] == "transaction"
    assert [e["request"] for e in bundle["entry"]] == [
        {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"} for r in given
    ]


def test_unknown_write_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="write mode"):
        transaction_bundle(resources(), "t-1", TIMESTAMP, write_mode="post")


def test_duplicate_resources_are_refused() -> None:
    given = resources()
    with pytest.raises(ValueError, match="same type and id"):
        collection_bundle([*given, given[0]], "b-1", TIMESTAMP)


@pytest.mark.parametrize("build", [collection_bundle, transaction_bundle])
def test_bundles_are_valid_deterministic_r4(build: Any) -> None:
    first = build(resources(), "b-1", TIMESTAMP)
    assert orjson.dumps(first) == orjson.dumps(build(resources(), "b-1", TIMESTAMP))
    model_validate(first)
    assert set(first) <= R4_ELEMENTS["Bundle"]
    for entry in first["entry"]:
        assert set(entry) <= R4_ELEMENTS["Bundle.entry"]


def test_conditional_mode_updates_by_business_identifier() -> None:
    given = resources()
    bundle = transaction_bundle(given, "t-1", TIMESTAMP, write_mode="conditional")
    assert bundle["entry"][0]["request"] == {
        "method": "PUT",
        "url": "Patient?identifier=https://clinic.example.org/diary/patient|P1",
    }
    identifier = given[1]["identifier"][0]
    assert bundle["entry"][1]["request"]["url"] == (
        f"Observation?identifier={identifier['system']}|{identifier['value']}"
    )


def test_conditional_mode_creates_a_patient_matched_on_its_mrn_and_never_replaces_it() -> None:
    """The EHR's chart holds more than our record: a conditional update would wipe it."""
    patient = patient_resource(patient_record(), CTX)
    bundle = transaction_bundle([patient], "t-1", TIMESTAMP, write_mode="conditional")
    [entry] = bundle["entry"]
    assert entry["request"] == {
        "method": "POST",
        "url": "Patient",
        "ifNoneExist": "identifier=urn:oid:1.2.36.146.595.217.0.1|MRN-0042",
    }
    assert "id" not in entry["resource"]
    assert entry["fullUrl"] == f"urn:uuid:{patient['id']}"


def test_put_mode_writes_a_patient_with_an_mrn_by_its_own_id() -> None:
    patient = patient_resource(patient_record(), CTX)
    bundle = transaction_bundle([patient], "t-1", TIMESTAMP, write_mode="put")
    assert bundle["entry"][0]["request"] == {"method": "PUT", "url": f"Patient/{patient['id']}"}


def test_conditional_mode_percent_encodes_identifier_values() -> None:
    patient = patient_stub("P1", CTX)
    patient["identifier"] = [{"system": "https://ehr.example/mrn", "value": "a b&c|d"}]
    bundle = transaction_bundle([patient], "t-1", TIMESTAMP, write_mode="conditional")
    assert bundle["entry"][0]["request"]["url"] == (
        "Patient?identifier=https://ehr.example/mrn|a%20b%26c%7Cd"
    )


def test_conditional_mode_writes_provenance_by_id_as_it_has_no_identifier() -> None:
    given = resources()
    provenance = given[-1]
    assert provenance["resourceType"] == "Provenance"
    bundle = transaction_bundle(given, "t-1", TIMESTAMP, write_mode="conditional")
    assert bundle["entry"][-1]["request"] == {
        "method": "PUT",
        "url": f"Provenance/{provenance['id']}",
    }


def test_conditional_entries_carry_no_id_and_references_name_their_fullurls() -> None:
    # R4 http.html#cond-update: a body id that differs from the one match is a 400, and a server
    # may refuse a client id when nothing matches; the server settles each id itself.
    given = resources()
    bundle = transaction_bundle(given, "t-1", TIMESTAMP, write_mode="conditional")
    for entry, resource in zip(bundle["entry"], given, strict=True):
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        if entry["request"]["url"].startswith("Provenance/"):
            assert entry["resource"]["id"] == resource["id"]
        else:
            assert "id" not in entry["resource"]
    observation = bundle["entry"][1]["resource"]
    assert observation["subject"] == {"reference": f"urn:uuid:{given[0]['id']}"}
    assert all("id" in resource for resource in given)  # the inputs are not modified


def test_conditional_mode_writes_adverse_events_by_id_as_r4_cannot_search_their_identifier() -> (
    None
):
    # R4 AdverseEvent has an identifier but no `identifier` search parameter (R5 adds one): a
    # conditional update on it matches nothing, and each replay would create another.
    given = convert_record(completed_session(), CTX)
    bundle = transaction_bundle(given, "t-1", TIMESTAMP, write_mode="conditional")
    events = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "AdverseEvent"]
    assert events
    for entry in events:
        assert entry["request"] == {
            "method": "PUT",
            "url": f"AdverseEvent/{entry['resource']['id']}",
        }
