"""The test FHIR server (tools/fhir-server/) does what its README says.

One server for the module, emptied before each test. The expectations are the behaviour of
Medplum's router 4.5.2 as observed, including where it differs from other FHIR servers
(update-as-create answers 200, every PUT makes a new version, a transaction is not rolled back).
"""

from __future__ import annotations

import http.client
import time
from typing import Any

import pytest

from tests.fhir_server import FhirServer, requires_fhir_server

pytestmark = requires_fhir_server

SYSTEM = "https://example.org/migrainefhir/source/patient"
OBS_SYSTEM = "https://example.org/migrainefhir/source/diary-entry"
PATIENT_URN = "urn:uuid:11111111-1111-4111-8111-111111111111"
OBS_URN = "urn:uuid:22222222-2222-4222-8222-222222222222"
NEW_OBS_URN = "urn:uuid:33333333-3333-4333-8333-333333333333"


def patient(pid: str | None = None, value: str = "pt-1", family: str = "A") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": value}],
        "name": [{"family": family}],
    }
    if pid is not None:
        resource["id"] = pid
    return resource


def observation(oid: str | None, value: str, subject: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": OBS_SYSTEM, "value": value}],
        "status": "final",
        "code": {"text": "headache"},
    }
    if oid is not None:
        resource["id"] = oid
    if subject is not None:
        resource["subject"] = {"reference": subject}
    return resource


def put_entry(full_url: str, resource: dict[str, Any], url: str) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "PUT", "url": url}}


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def statuses(bundle: dict[str, Any]) -> list[str]:
    return [entry["response"]["status"] for entry in bundle["entry"]]


def search_total(server: FhirServer, query: str) -> int:
    answer = server.get(query)
    assert answer.status == 200
    total: int = answer.json()["total"]
    return total


def failed_bundle() -> dict[str, Any]:
    bad = observation("obs-bad", "bad") | {"bogus": True}
    return transaction(
        put_entry(PATIENT_URN, patient("pat-1"), "Patient/pat-1"),
        put_entry(OBS_URN, bad, "Observation/obs-bad"),
        put_entry(NEW_OBS_URN, observation("obs-2", "2"), "Observation/obs-2"),
    )


# -- the server ---------------------------------------------------------------------------------


def test_metadata_is_an_r4_capability_statement_with_transactions(server: FhirServer) -> None:
    answer = server.get("metadata")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    statement = answer.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["rest"][0]["interaction"] == [
        {"code": "transaction"},
        {"code": "batch"},
        {"code": "search-system"},
    ]
    (patient_entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Patient"]
    assert patient_entry["updateCreate"] is True
    assert patient_entry["conditionalUpdate"] is True


def test_base_url_is_loopback(server: FhirServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.base_url.endswith("/fhir/R4")


def test_put_with_client_id_creates_then_updates(server: FhirServer) -> None:
    first = server.put("Patient/p1", patient("p1", family="First"))
    # Medplum answers update-as-create with 200, not 201, and no Location.
    assert first.status == 200
    assert first.headers["Location"] is None
    v1 = first.json()["meta"]["versionId"]
    assert first.json()["id"] == "p1"
    assert first.headers["ETag"] == f'W/"{v1}"'

    second = server.put("Patient/p1", patient("p1", family="Second"))
    assert second.status == 200
    v2 = second.json()["meta"]["versionId"]
    # versionIds are random UUIDs, not counters: a new one, not a larger one.
    assert v2 != v1
    read = server.get("Patient/p1")
    assert read.status == 200
    assert read.json()["name"] == [{"family": "Second"}]
    assert read.headers["ETag"] == f'W/"{v2}"'
    history = server.get("Patient/p1/_history").json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == [v2, v1]


def test_put_of_identical_content_still_makes_a_new_version(server: FhirServer) -> None:
    v1 = server.put("Patient/p1", patient("p1")).json()["meta"]["versionId"]
    again = server.put("Patient/p1", patient("p1"))
    assert again.status == 200
    assert again.json()["meta"]["versionId"] != v1
    assert len(server.get("Patient/p1/_history").json()["entry"]) == 2


def test_put_with_another_id_in_the_body_is_refused(server: FhirServer) -> None:
    answer = server.put("Patient/p2", patient("p1"))
    assert answer.status == 400
    assert answer.json()["issue"][0]["details"]["text"] == "Incorrect resource ID"


def test_invalid_resource_is_refused_by_validation(server: FhirServer) -> None:
    answer = server.put("Patient/p1", patient("p1") | {"foo": 1})
    assert answer.status == 400
    issue = answer.json()["issue"][0]
    assert issue["code"] == "structure"
    assert issue["expression"] == ["Patient.foo"]
    assert server.get("Patient/p1").status == 404


def test_post_creates_with_201_location_and_etag(server: FhirServer) -> None:
    answer = server.post("Observation", observation(None, "o1"))
    assert answer.status == 201
    created = answer.json()
    version = created["meta"]["versionId"]
    assert answer.headers["Location"] == (
        f"{server.base_url}/Observation/{created['id']}/_history/{version}"
    )
    assert answer.headers["ETag"] == f'W/"{version}"'


# -- transactions -------------------------------------------------------------------------------


def test_transaction_creates_resources_and_rewrites_urn_uuid_references(
    server: FhirServer,
) -> None:
    posted = observation(None, "posted", subject=PATIENT_URN)
    posted["hasMember"] = [{"reference": OBS_URN}]
    bundle = transaction(
        put_entry(PATIENT_URN, patient("pat-1"), "Patient/pat-1"),
        put_entry(OBS_URN, observation("obs-1", "1", subject=PATIENT_URN), "Observation/obs-1"),
        {
            "fullUrl": NEW_OBS_URN,
            "resource": posted,
            "request": {"method": "POST", "url": "Observation"},
        },
    )
    answer = server.post("", bundle)
    assert answer.status == 200
    result = answer.json()
    assert result["type"] == "transaction-response"
    assert statuses(result) == ["200", "200", "201"]
    new_id = result["entry"][2]["resource"]["id"]
    assert [e["response"]["location"] for e in result["entry"]] == [
        "Patient/pat-1",
        "Observation/obs-1",
        f"Observation/{new_id}",
    ]
    assert server.get("Observation/obs-1").json()["subject"] == {"reference": "Patient/pat-1"}
    stored = server.get(f"Observation/{new_id}").json()
    assert stored["subject"] == {"reference": "Patient/pat-1"}
    assert stored["hasMember"] == [{"reference": "Observation/obs-1"}]
    assert search_total(server, "Observation?subject=Patient/pat-1") == 2


def test_transaction_with_a_failing_entry_answers_mixed_statuses(server: FhirServer) -> None:
    # Default (Medplum's default too): the Bundle is run entry by entry, like a batch.
    answer = server.post("", failed_bundle())
    assert answer.status == 200
    result = answer.json()
    assert result["type"] == "transaction-response"
    assert statuses(result) == ["200", "400", "200"]
    assert result["entry"][1]["response"]["outcome"]["issue"][0]["expression"] == [
        "Observation.bogus"
    ]
    assert server.get("Patient/pat-1").status == 200
    assert server.get("Observation/obs-bad").status == 404
    assert server.get("Observation/obs-2").status == 200


def test_transaction_mode_fails_the_bundle_but_does_not_roll_back(server: FhirServer) -> None:
    server.set_transactions(True)
    answer = server.post("", failed_bundle())
    assert answer.status == 400
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["expression"] == ["Observation.bogus"]
    # Entries before the failing one stay written; those after it never run.
    assert server.get("Patient/pat-1").status == 200
    assert server.get("Observation/obs-2").status == 404


def test_transaction_conditional_put_with_an_id_and_no_match_is_refused(
    server: FhirServer,
) -> None:
    bundle = transaction(
        put_entry(PATIENT_URN, patient("pat-1"), f"Patient?identifier={SYSTEM}|pt-1"),
    )
    answer = server.post("", bundle)
    assert answer.status == 200
    entry = answer.json()["entry"][0]
    assert entry["response"]["status"] == "400"
    text = entry["response"]["outcome"]["issue"][0]["details"]["text"]
    assert text == "Cannot provide ID for create by update"


def test_transaction_conditional_put_updates_the_match(server: FhirServer) -> None:
    server.put("Patient/pat-1", patient("pat-1", family="Old"))
    bundle = transaction(
        put_entry(PATIENT_URN, patient("pat-1", family="New"), f"Patient?identifier={SYSTEM}|pt-1"),
    )
    answer = server.post("", bundle)
    assert statuses(answer.json()) == ["200"]
    assert answer.json()["entry"][0]["response"]["location"] == "Patient/pat-1"
    assert server.get("Patient/pat-1").json()["name"] == [{"family": "New"}]


# -- conditional operations, search, history, delete ------------------------------------------


def test_conditional_update_by_identifier_finds_the_existing_resource(
    server: FhirServer,
) -> None:
    server.put("Patient/p1", patient("p1", family="Old"))
    answer = server.put(f"Patient?identifier={SYSTEM}|pt-1", patient(family="New"))
    assert answer.status == 200
    assert answer.json()["id"] == "p1"
    assert server.get("Patient/p1").json()["name"] == [{"family": "New"}]
    assert search_total(server, "Patient") == 1


def test_conditional_update_with_the_matching_id_in_the_body(server: FhirServer) -> None:
    server.put("Patient/p1", patient("p1"))
    answer = server.put(f"Patient?identifier={SYSTEM}|pt-1", patient("p1", family="B"))
    assert answer.status == 200
    assert answer.json()["id"] == "p1"


def test_conditional_update_with_another_id_in_the_body_is_refused(server: FhirServer) -> None:
    server.put("Patient/p1", patient("p1"))
    answer = server.put(f"Patient?identifier={SYSTEM}|pt-1", patient("other"))
    assert answer.status == 400
    text = answer.json()["issue"][0]["details"]["text"]
    assert text == "Resource ID did not match resolved ID"


def test_conditional_update_without_a_match_creates(server: FhirServer) -> None:
    answer = server.put(f"Patient?identifier={SYSTEM}|pt-9", patient(value="pt-9"))
    assert answer.status == 201
    new_id = answer.json()["id"]
    assert answer.headers["Location"].startswith(f"{server.base_url}/Patient/{new_id}/_history/")
    # With a client id in the body and no match, Medplum refuses instead of creating.
    refused = server.put(f"Patient?identifier={SYSTEM}|pt-8", patient("p8", value="pt-8"))
    assert refused.status == 400
    text = refused.json()["issue"][0]["details"]["text"]
    assert text == "Cannot perform create as update with client-assigned ID"


def test_conditional_update_with_two_matches_is_412(server: FhirServer) -> None:
    server.put("Patient/p1", patient("p1"))
    server.put("Patient/p2", patient("p2"))
    answer = server.put(f"Patient?identifier={SYSTEM}|pt-1", patient(family="X"))
    assert answer.status == 412
    assert answer.json()["issue"][0]["code"] == "multiple-matches"


def test_post_with_if_none_exist_does_not_create_a_duplicate(server: FhirServer) -> None:
    condition = {"If-None-Exist": f"identifier={OBS_SYSTEM}|o1"}
    first = server.post("Observation", observation(None, "o1"), headers=condition)
    assert first.status == 201
    second = server.post("Observation", observation(None, "o1"), headers=condition)
    assert second.status == 200
    assert second.json()["id"] == first.json()["id"]
    assert search_total(server, f"Observation?identifier={OBS_SYSTEM}|o1") == 1


def test_search_by_identifier(server: FhirServer) -> None:
    for n in range(1, 4):
        server.put(f"Observation/o{n}", observation(f"o{n}", f"v{n}"))
    answer = server.get(f"Observation?identifier={OBS_SYSTEM}|v2")
    assert answer.status == 200
    bundle = answer.json()
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 1
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"{server.base_url}/Observation/o2"]
    assert search_total(server, f"Observation?identifier={OBS_SYSTEM}|v9") == 0
    # An unknown search parameter matches nothing rather than failing.
    assert search_total(server, "Observation?no-such-param=1") == 0


def test_search_pages_with_count_and_links(server: FhirServer) -> None:
    for n in range(1, 6):
        server.put(f"Observation/o{n}", observation(f"o{n}", f"v{n}"))
    pages: list[list[str]] = []
    url = "Observation?_count=2"
    links: dict[str, str] = {}
    while url:
        bundle = server.get(url).json()
        assert bundle["total"] == 5
        pages.append([e["resource"]["id"] for e in bundle["entry"]])
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = links.get("next", "")
    assert pages == [["o1", "o2"], ["o3", "o4"], ["o5"]]
    assert links == {
        "self": f"{server.base_url}/Observation?_count=2&_offset=4",
        "previous": f"{server.base_url}/Observation?_count=2&_offset=2",
    }


def test_history_lists_versions_newest_first_on_every_read(server: FhirServer) -> None:
    for family in ("A", "B", "C"):
        server.put("Patient/p1", patient("p1", family=family))
    for _ in range(2):  # Medplum's own history flips order on each read; ours must not
        history = server.get("Patient/p1/_history").json()
        assert history["type"] == "history"
        assert [e["resource"]["name"][0]["family"] for e in history["entry"]] == ["C", "B", "A"]


def test_delete(server: FhirServer) -> None:
    server.put("Patient/p1", patient("p1"))
    answer = server.delete("Patient/p1")
    assert answer.status == 200
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert server.get("Patient/p1").status == 404  # not 410
    assert server.get("Patient/p1/_history").status == 404
    assert server.delete("Patient/p1").status == 404


# -- fault controls -----------------------------------------------------------------------------


def test_fail_answers_the_next_requests_with_the_status_and_retry_after(
    server: FhirServer,
) -> None:
    server.fail(503, count=2, retry_after=1)
    for _ in range(2):
        refused = server.put("Patient/p1", patient("p1"))
        assert refused.status == 503
        assert refused.headers["Retry-After"] == "1"
    assert server.get("Patient/p1").status == 404  # the refused requests were not carried out
    assert server.put("Patient/p1", patient("p1")).status == 200
    assert [r["status"] for r in server.requests()] == [503, 503, 404, 200]


def test_fail_without_retry_after_sends_no_header(server: FhirServer) -> None:
    server.fail(429)
    answer = server.get("metadata")
    assert answer.status == 429
    assert answer.headers["Retry-After"] is None
    assert server.get("metadata").status == 200


def test_delay_makes_the_client_time_out_after_the_work_is_done(server: FhirServer) -> None:
    server.delay(1.5)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        server.put("Patient/p1", patient("p1"), timeout=0.5)
    assert time.monotonic() - started < 1.4
    assert server.get("Patient/p1").status == 200


def test_delay_delivers_the_answer_late(server: FhirServer) -> None:
    server.delay(1.0)
    started = time.monotonic()
    assert server.get("metadata").status == 200
    assert time.monotonic() - started >= 1.0


def test_disconnect_breaks_the_answer_off_after_the_work_is_done(server: FhirServer) -> None:
    server.disconnect()
    with pytest.raises(http.client.IncompleteRead):
        server.put("Patient/p1", patient("p1"))
    assert server.get("Patient/p1").status == 200
    assert [r["status"] for r in server.requests()] == ["disconnected", 200]


def test_bearer_token_is_required_once_configured(server: FhirServer) -> None:
    server.require_token("s3cret")
    refused = server.get("Patient?_count=1")
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    wrong = server.get("Patient?_count=1", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    right = server.get("Patient?_count=1", headers={"Authorization": "Bearer s3cret"})
    assert right.status == 200
    assert server.get("metadata").status == 200  # discovery stays open
    server.require_token(None)
    assert server.get("Patient?_count=1").status == 200


def test_reset_empties_the_store_and_clears_faults_and_token(server: FhirServer) -> None:
    server.put("Patient/p1", patient("p1"))
    server.fail(500, count=3)
    server.require_token("s3cret")
    server.set_transactions(True)
    server.reset()
    assert server.get("Patient/p1").status == 404
    assert search_total(server, "Patient") == 0
    assert server.requests() == [
        {"method": "GET", "url": "/Patient/p1", "status": 404},
        {"method": "GET", "url": "/Patient", "status": 200},
    ]
    assert server.post("", failed_bundle()).status == 200  # transactions back off


# -- the process --------------------------------------------------------------------------------


def test_stop_leaves_no_process() -> None:
    server = FhirServer().start()
    process = server.process
    assert process is not None
    assert process.poll() is None
    server.stop()
    assert process.poll() is not None
    server.stop()  # twice is fine


def test_server_exits_when_its_parent_goes_away() -> None:
    # The parent's end of stdin closing is what the server sees when the test process dies.
    with FhirServer() as server:
        process = server.process
        assert process is not None and process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=10) == 0


def test_no_server_on_a_missing_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.fhir_server as helper

    monkeypatch.setattr(helper, "SERVER_DIR", helper.SERVER_DIR / "no-such-folder")
    with pytest.raises(helper.FhirServerUnavailable, match=r"install\.sh"):
        FhirServer().start()
