"""`migrainefhir push` against a real FHIR engine (Medplum's router, tests/fhir_server.py).

Every test goes through the command line: `export --format transaction`, then `push`, then the
server is read back. The numbered points are those of the push issue: 1 everything arrives,
equal and resolvable; 2 a second push changes nothing; 3 conditional mode; 4 a corrected
record leaves nothing stale; 5 a Patient record is never reduced to a stub; 6 validate accepts
what the server returns; 7 faults. The router's own quirks (every PUT a new version, mixed
entry statuses instead of a rollback) are in tools/fhir-server/README.md.
"""

from __future__ import annotations

import contextlib
import copy
import http.server
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from migrainefhir.cli import cli
from tests.cli_args import with_source_system
from tests.fhir_server import ROOT, FhirServer, requires_fhir_server

pytestmark = requires_fhir_server

EXAMPLES = ROOT / "examples" / "ndjson"
TIMESTAMP = "2026-07-01T00:00:00Z"
# Short waits, so that the fault tests take seconds: a Retry-After is still honoured in full.
FAST_RETRIES = ["--retry-delay", "0.05", "--max-retry-time", "20"]
SERVER_META = ("versionId", "lastUpdated")


# -- fixtures and helpers -----------------------------------------------------------------------


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def records() -> list[dict[str, Any]]:
    """Two patients from the shipped examples, each with a patient record, a headache-free day,
    attacks with medications and symptoms, and a ketamine session with vital signs."""
    diary = _lines(EXAMPLES / "diary-entries.ndjson")
    sessions = _lines(EXAMPLES / "ketamine-sessions.ndjson")
    patients = _lines(EXAMPLES / "patients.ndjson")[:2]
    chosen = [diary[0], diary[9], diary[10], diary[186], diary[187]]
    firsts = {pid: next(s for s in sessions if s["patient_id"] == pid) for pid in ("pt-000001",)}
    firsts["pt-000002"] = next(s for s in sessions if s["patient_id"] == "pt-000002")
    return [*patients, *chosen, *firsts.values()]


def write_input(folder: Path, items: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "records.ndjson"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, with_source_system(args), catch_exceptions=False)


def export(tmp: Path, name: str, items: list[dict[str, Any]], *extra: str) -> Path:
    out = tmp / name
    source = write_input(tmp / f"{name}-input", items)
    result = invoke(
        "export", str(source), "--out", str(out), "--format", "transaction",
        "--timestamp", TIMESTAMP, "--max-entries", "32", "--jobs", "1", "--quiet", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def push(folder: Path, server: FhirServer, *extra: str) -> Result:
    return invoke("push", str(folder), "--server", server.base_url, *FAST_RETRIES, *extra)


def exported_resources(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource of the export by (type, id) (a Patient repeats in split Bundles), with
    the Bundle's urn:uuid references written back as Type/id."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((folder / "bundles").iterdir()):
        bundle = json.loads(path.read_text())
        urls = {
            e[
                "fullUrl"
            ]: f"{e['resource']['resourceType']}/{e['fullUrl'].removeprefix('urn:uuid:')}"
            for e in bundle["entry"]
            if "resource" in e
        }
        for entry in bundle["entry"]:
            if "resource" not in entry:
                continue
            resource = _replaced(copy.deepcopy(entry["resource"]), urls)
            resource.setdefault("id", entry["fullUrl"].removeprefix("urn:uuid:"))
            found[(resource["resourceType"], resource["id"])] = resource
    return found


def _replaced(node: Any, urls: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: urls.get(v, v) if k == "reference" else _replaced(v, urls) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_replaced(item, urls) for item in node]
    return node


def stored(server: FhirServer, types: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every resource of these types on the server (no _count: one page holds all)."""
    found = {}
    for kind in types:
        bundle = server.get(kind).json()
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            found[(kind, resource["id"])] = resource
    return found


def without_server_meta(resource: dict[str, Any]) -> dict[str, Any]:
    copied = copy.deepcopy(resource)
    for name in SERVER_META:
        copied.get("meta", {}).pop(name, None)
    return copied


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def counts_on(server: FhirServer, types: list[str]) -> dict[str, int]:
    return {kind: server.get(f"{kind}?_summary=count").json()["total"] for kind in types}


def summary_counts(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = json.loads((folder / "summary.json").read_text())["resources"]
    return counts


def posts(server: FhirServer) -> list[Any]:
    return [r["status"] for r in server.requests() if r["method"] == "POST"]


def private_file(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(0o600)
    return path


# -- 1, 2: everything arrives, and a second push changes nothing -------------------------------


def test_push_loads_every_resource_equal_and_with_every_reference_resolved(
    server: FhirServer, tmp_path: Path
) -> None:
    out = export(tmp_path, "out", records())
    result = push(out, server)
    assert result.exit_code == 0, result.stderr
    expected = summary_counts(out)
    assert counts_on(server, list(expected)) == expected
    exported = exported_resources(out)
    on_server = stored(server, list(expected))
    assert set(on_server) == set(exported)
    for key, resource in exported.items():
        assert without_server_meta(on_server[key]) == without_server_meta(resource), key
    dangling = [ref for r in on_server.values() for ref in references(r)
                if tuple(ref.split("/")) not in on_server]  # fmt: skip
    assert dangling == []
    summary = json.loads((out / "push-summary.json").read_text())
    assert summary["bundles"] == {
        "total": summary["bundles"]["total"], "accepted": summary["bundles"]["total"],
        "skipped": 0, "refused": 0, "not_sent": 0,
    }  # fmt: skip
    assert summary["bundles"]["total"] == len(list((out / "bundles").iterdir())) > 2
    for written in ("push-summary.json", "push-journal.ndjson"):
        assert stat.S_IMODE((out / written).stat().st_mode) == 0o600


def test_a_second_push_adds_no_resource_and_changes_none(
    server: FhirServer, tmp_path: Path
) -> None:
    out = export(tmp_path, "out", records())
    types = list(summary_counts(out))
    assert push(out, server).exit_code == 0
    before = {k: without_server_meta(r) for k, r in stored(server, types).items()}
    # The journal skips what this server accepted: nothing but /metadata is asked.
    again = push(out, server)
    assert again.exit_code == 0
    assert "0 accepted" in again.stderr and "skipped" in again.stderr
    server_log = server.requests()
    assert [r["url"] for r in server_log][-1] == "/metadata"
    # --force sends every Bundle again: the router makes new versions (every PUT does), with
    # the same content, and no new resource.
    forced = push(out, server, "--force")
    assert forced.exit_code == 0
    after = {k: without_server_meta(r) for k, r in stored(server, types).items()}
    assert after == before
    assert counts_on(server, types) == summary_counts(out)


# -- 3: conditional mode ------------------------------------------------------------------------


def test_conditional_mode_loads_and_a_second_push_matches_by_identifier(
    server: FhirServer, tmp_path: Path
) -> None:
    # One patient: the router searches slowly for conditional entries.
    patient, _, free_day, attack, *_, session, _ = records()
    out = export(
        tmp_path, "out", [patient, free_day, attack, session], "--write-mode", "conditional"
    )
    bundle = json.loads(next((out / "bundles").iterdir()).read_text())
    for entry in bundle["entry"]:
        assert entry["fullUrl"].startswith("urn:uuid:")
        if "?" in entry["request"]["url"]:
            assert "id" not in entry["resource"]
    assert push(out, server).exit_code == 0
    expected = summary_counts(out)
    assert counts_on(server, list(expected)) == expected
    first = stored(server, list(expected))
    # The server chose the ids (but of Provenance and AdverseEvent, which R4 cannot search by
    # identifier: written by id), and every reference points at them.
    ours = {key[1] for key in exported_resources(out)}
    by_id = {"Provenance", "AdverseEvent"}
    assert [key for key in first if key[0] not in by_id and key[1] in ours] == []
    assert [ref for r in first.values() for ref in references(r)
            if tuple(ref.split("/")) not in first] == []  # fmt: skip
    assert push(out, server, "--force").exit_code == 0
    assert counts_on(server, list(expected)) == expected
    assert set(stored(server, list(expected))) == set(first)


# -- 6: validate accepts what the server returns ------------------------------------------------


def test_validate_accepts_resources_as_the_server_returns_them(
    server: FhirServer, tmp_path: Path
) -> None:
    out = export(tmp_path, "out", records())
    assert push(out, server).exit_code == 0
    folder = tmp_path / "read-back"
    folder.mkdir()
    returned = stored(server, list(summary_counts(out)))
    assert all("versionId" in r["meta"] for r in returned.values())
    for kind in summary_counts(out):
        lines = [json.dumps(r) for (k, _), r in sorted(returned.items()) if k == kind]
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n")
    result = invoke("validate", str(folder))
    assert result.exit_code == 0, result.output


# -- refused entries, dry run, usage --------------------------------------------------------------


def test_a_refused_entry_is_recorded_with_the_outcome_and_the_rest_go_on(
    server: FhirServer, tmp_path: Path
) -> None:
    out = export(tmp_path, "out", records())
    names = sorted(p.name for p in (out / "bundles").iterdir())
    broken = out / "bundles" / names[0]
    bundle = json.loads(broken.read_text())
    bundle["entry"][2]["resource"]["bogus"] = 1  # the router answers 400 for this entry only
    broken.write_text(json.dumps(bundle))
    result = push(out, server)
    assert result.exit_code == 1
    kind = bundle["entry"][2]["resource"]["resourceType"]
    assert f"refused: bundles/{names[0]} entry 2 (PUT {kind}): 400 (structure at {kind}.bogus)" in (
        result.stderr
    )
    summary = json.loads((out / "push-summary.json").read_text())
    assert summary["bundles"]["refused"] == 1
    assert summary["bundles"]["accepted"] == len(names) - 1
    [refused] = summary["refused"]
    assert refused["file"] == f"bundles/{names[0]}"
    assert [(e["index"], e["status"]) for e in refused["entries"]] == [(2, 400)]
    assert refused["entries"][0]["outcome"]["issue"][0]["expression"] == [f"{kind}.bogus"]
    # Fixed, the push sends only that Bundle again.
    bundle["entry"][2]["resource"].pop("bogus")
    broken.write_text(json.dumps(bundle))
    again = push(out, server)
    assert again.exit_code == 0
    assert "1 accepted" in again.stderr and f"{len(names) - 1} skipped" in again.stderr


def test_dry_run_reads_metadata_and_sends_nothing(server: FhirServer, tmp_path: Path) -> None:
    out = export(tmp_path, "out", records())
    result = push(out, server, "--dry-run")
    assert result.exit_code == 0
    bundles = len(list((out / "bundles").iterdir()))
    assert "speaks FHIR 4.0.1 and takes transactions" in result.stderr
    assert f"would send {bundles} of {bundles} Bundles" in result.stderr
    assert server.requests() == [{"method": "GET", "url": "/metadata", "status": 200}]
    assert not (out / "push-summary.json").exists()


@pytest.mark.parametrize(
    ("export_format", "message"),
    [("ndjson", "is an NDJSON (Bulk Data) export"), ("collection", "not a transaction")],
)
def test_other_export_formats_are_refused_with_what_to_run(
    server: FhirServer, tmp_path: Path, export_format: str, message: str
) -> None:
    out = tmp_path / "out"
    source = write_input(tmp_path / "in", records()[:3])
    exported = invoke(
        "export", str(source), "--out", str(out), "--format", export_format, "-j", "1", "-q"
    )
    assert exported.exit_code == 0, exported.output
    result = push(out, server)
    assert result.exit_code == 2
    assert message in result.stderr and "--format transaction" in result.stderr
    assert server.requests() == []


def test_plain_http_goes_only_to_loopback_unless_allowed(tmp_path: Path) -> None:
    result = invoke("push", str(tmp_path), "--server", "http://fhir.example.org/r4")
    assert result.exit_code == 2
    assert "unencrypted" in result.stderr and "--allow-http" in result.stderr


# -- 7: faults ----------------------------------------------------------------------------------


def test_503_with_retry_after_is_waited_out_and_retried(server: FhirServer, tmp_path: Path) -> None:
    out = export(tmp_path, "out", records())
    server.delay(0)  # /metadata passes
    server.fail(503, count=2, retry_after=1)
    started = time.monotonic()
    result = push(out, server, "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - started >= 2.0  # Retry-After honoured, not the 0.05 s backoff
    assert posts(server)[:3] == [503, 503, 200]
    assert "answered 503; retrying in 1.0 s" in result.stderr
    assert counts_on(server, list(summary_counts(out))) == summary_counts(out)


def test_429_with_an_http_date_retry_after(server: FhirServer, tmp_path: Path) -> None:
    out = export(tmp_path, "out", records()[:3])
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.delay(0)
    server.fail(429, retry_after=when)
    started = time.monotonic()
    result = push(out, server, "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    assert time.monotonic() - started >= 0.9  # the date is whole seconds: at least ~1 s
    assert posts(server)[:2] == [429, 200]


@pytest.mark.parametrize("fault", ["timeout", "disconnect"])
def test_a_timeout_or_an_answer_broken_off_is_retried_and_nothing_is_doubled(
    server: FhirServer, tmp_path: Path, fault: str
) -> None:
    # The server did the work both times; only its answer was late or lost. The Bundle is sent
    # again, which changes nothing: conditional mode, so a doubled create would show. (The
    # router is slow on conditional entries: a small export, a timeout it can meet.)
    out = export(tmp_path, "out", records()[:3], "--write-mode", "conditional")
    server.delay(0)
    if fault == "timeout":
        server.delay(4.0)
        extra = ["--timeout", "2"]
    else:
        server.disconnect()
        extra = []
    result = push(out, server, "--jobs", "1", *extra)
    assert result.exit_code == 0, result.stderr
    # A late answer is still on its way when the push is done: no status for it yet.
    assert posts(server)[:2] == ["disconnected" if fault == "disconnect" else None, 200]
    reason = "timed out" if fault == "timeout" else "connection broken off in the answer"
    assert f"{reason}; retrying" in result.stderr
    assert counts_on(server, list(summary_counts(out))) == summary_counts(out)


def test_the_push_stops_with_exit_3_when_the_server_keeps_failing(
    server: FhirServer, tmp_path: Path
) -> None:
    out = export(tmp_path, "out", records())
    server.delay(0)
    server.fail(503, count=50)
    result = push(out, server, "--jobs", "1", "--max-attempts", "3")
    assert result.exit_code == 3
    assert "gave up after 3 attempts" in result.stderr and "answered 503" in result.stderr
    summary = json.loads((out / "push-summary.json").read_text())
    assert summary["stopped"] and summary["bundles"]["accepted"] == 0


def test_an_unreachable_server_is_exit_3(tmp_path: Path) -> None:
    out = export(tmp_path, "out", records()[:3])
    result = invoke(
        "push", str(out), "--server", "http://127.0.0.1:9/fhir", *FAST_RETRIES,
        "--max-attempts", "2",
    )  # fmt: skip
    assert result.exit_code == 3
    assert "could not connect" in result.stderr


def test_kill_9_mid_push_then_a_rerun_leaves_every_resource_exactly_once(
    server: FhirServer, tmp_path: Path
) -> None:
    out = export(
        tmp_path, "out", records()[:5], "--write-mode", "conditional", "--max-entries", "12"
    )
    bundles = len(list((out / "bundles").iterdir()))
    assert bundles >= 4
    server.delay(0.4, count=100)  # every answer late: the kill finds the push under way
    command = [sys.executable, "-m", "migrainefhir", "push", str(out), "--server",
               server.base_url, "--jobs", "1", "--quiet"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(command, env=env)
    journal = out / "push-journal.ndjson"
    deadline = time.monotonic() + 30
    while not (journal.exists() and journal.read_text().count("\n") >= 1):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(0.2)  # now in the middle of the next Bundle
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = journal.read_text().count("\n")
    assert 1 <= done < bundles
    rerun = subprocess.run(command, env=env, timeout=60)
    assert rerun.returncode == 0
    assert counts_on(server, list(summary_counts(out))) == summary_counts(out)
    lines = _lines(journal)
    assert sum(line["outcome"] == "accepted" for line in lines) >= bundles
    assert len({line["file"] for line in lines}) == bundles


# -- authentication -----------------------------------------------------------------------------


def _rsa_pem() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    del ec
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pems(key, serialization)


def _ec_pem() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return _pems(ec.generate_private_key(ec.SECP384R1()), serialization)


def _pems(key: Any, serialization: Any) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.mark.parametrize("make_key", [_rsa_pem, _ec_pem], ids=["RS384", "ES384"])
def test_smart_backend_services_token_is_fetched_once_and_used(
    server: FhirServer, tmp_path: Path, make_key: Any
) -> None:
    private, public = make_key()
    server.register_smart_client("migrainefhir-test", public.decode())
    out = export(tmp_path, "out", records())
    key = private_file(tmp_path / "key.pem", private)
    result = push(out, server, "--client-id", "migrainefhir-test", "--private-key", str(key),
                  "--scope", "system/*.cruds")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    issued = server.tokens_issued()
    assert (issued["issued"], issued["scopes"]) == (1, ["system/*.cruds"])  # cached
    assert server.get("Patient?_summary=count").status == 401  # the issued token is required
    server.require_token(None)
    assert counts_on(server, list(summary_counts(out))) == summary_counts(out)


def test_a_401_renews_the_smart_token_once_and_the_push_goes_on(
    server: FhirServer, tmp_path: Path
) -> None:
    private, public = _ec_pem()
    server.register_smart_client("c1", public.decode())
    out = export(tmp_path, "out", records())
    key = private_file(tmp_path / "key.pem", private)
    server.delay(0)  # /metadata
    server.fail(401)  # the first Bundle: as if the token had been revoked
    # one Bundle at a time: with several in flight, another may meet the renewal (a second 401)
    result = push(out, server, "--client-id", "c1", "--private-key", str(key), "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    assert server.tokens_issued()["issued"] == 2
    assert posts(server)[:2] == [401, 200]


def test_a_bearer_token_file_is_sent_and_a_wrong_one_fails_with_exit_3(
    server: FhirServer, tmp_path: Path
) -> None:
    server.require_token("T0KEN-4c9e7d")
    out = export(tmp_path, "out", records()[:3])
    good = private_file(tmp_path / "good.token", "T0KEN-4c9e7d\n")
    assert push(out, server, "--token-file", str(good)).exit_code == 0
    bad = private_file(tmp_path / "bad.token", "WR0NG-77aa31\n")
    result = push(out, server, "--token-file", str(bad), "--force")
    assert result.exit_code == 3
    assert "refused the credentials (401)" in result.stderr


@pytest.mark.parametrize("option", ["--token-file", "--private-key"])
def test_key_and_token_files_readable_by_others_are_refused(tmp_path: Path, option: str) -> None:
    secret = private_file(tmp_path / "secret", _ec_pem()[0])
    secret.chmod(0o644)
    extra = ["--client-id", "c1"] if option == "--private-key" else []
    result = invoke("push", str(tmp_path), "--server", "http://127.0.0.1:9", option,
                    str(secret), *extra)  # fmt: skip
    assert result.exit_code == 2
    assert "readable by others" in result.stderr and "chmod 600" in result.stderr
    assert stat.S_IMODE(secret.stat().st_mode) == 0o644


def test_tokens_and_keys_are_never_printed_or_written(server: FhirServer, tmp_path: Path) -> None:
    private, public = _ec_pem()
    server.register_smart_client("c1", public.decode())
    out = export(tmp_path, "out", records()[:3])
    key = private_file(tmp_path / "key.pem", private)
    server.delay(0)
    server.fail(401)
    smart = push(out, server, "--client-id", "c1", "--private-key", str(key))
    assert smart.exit_code == 0
    issued = server.tokens_issued()["token"]
    assert issued
    server.require_token("S3CRET-TOKEN-9f2b")
    token = private_file(tmp_path / "t", "S3CRET-TOKEN-9f2b")
    bad = private_file(tmp_path / "bad", "S3CRET-WRONG-1c4d")
    ok = push(out, server, "--token-file", str(token), "--force")
    failed = push(out, server, "--token-file", str(bad), "--force")
    assert (ok.exit_code, failed.exit_code) == (0, 3)
    written = b"".join(
        p.read_bytes() for p in [out / "push-journal.ndjson", out / "push-summary.json"]
    )
    said = smart.output + smart.stderr + ok.output + ok.stderr + failed.output + failed.stderr
    body = private.decode().splitlines()[1]  # a line of the key's base64
    for secret in ("S3CRET-TOKEN-9f2b", "S3CRET-WRONG-1c4d", issued, body):
        assert secret not in said
        assert secret.encode() not in written


# -- 4: a corrected record leaves nothing stale -------------------------------------------------

ATTACK_ONLY = ("onset", "end", "duration_minutes", "severity", "severity_category",
               "laterality", "medications", "disability")  # fmt: skip


def corrected(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same records after corrections at the source: an attack lost its medication and a
    symptom, another attack day turned out headache-free, a session lost a vital sign."""
    fixed = copy.deepcopy(items)
    lost_some = next(r for r in fixed if r.get("entry_id") == "pt-000001-20251010")
    del lost_some["medications"]
    lost_some["symptoms"] = lost_some["symptoms"][:-1]
    free = next(r for r in fixed if r.get("entry_id") == "pt-000001-20251011")
    for name in ATTACK_ONLY:
        free.pop(name, None)
    free["headache"] = False
    session = next(r for r in fixed if r.get("record_type") == "ketamine-session")
    session["vitals"] = session["vitals"][:-1]
    return fixed


@pytest.mark.parametrize("write_mode", ["put", "conditional"])
def test_a_corrected_record_leaves_nothing_stale(
    server: FhirServer, tmp_path: Path, write_mode: str
) -> None:
    patient, _, free_day, attack, attack_2, *_, session, _ = records()
    first = [patient, free_day, attack, attack_2, session]
    old = export(tmp_path, "old", first, "--write-mode", write_mode)
    assert push(old, server).exit_code == 0
    new = export(tmp_path, "new", corrected(first), "--write-mode", write_mode,
                 "--previous", str(old))  # fmt: skip
    deleted = json.loads((new / "summary.json").read_text())["deleted"]
    # The first attack's medication and the symptom it lost, the second attack's medication (a
    # headache-free day keeps its symptoms), the four measurements of the lost vital sign.
    assert deleted == {"MedicationStatement": 2, "Observation": 5}
    assert (new / "bundles" / "deleted-001.json").exists()
    result = push(new, server)
    assert result.exit_code == 0, result.stderr
    types = sorted({*summary_counts(old), *summary_counts(new)})
    on_server = stored(server, types)
    assert counts_on(server, types) == {t: summary_counts(new).get(t, 0) for t in types}
    if write_mode == "put":
        assert set(on_server) == set(exported_resources(new))
    # A second push of the corrected export: the deletes find nothing, which is done too.
    assert push(new, server, "--force").exit_code == 0
    assert counts_on(server, types) == {t: summary_counts(new).get(t, 0) for t in types}


# -- 5: a Patient record on the server is never reduced to a stub -------------------------------


def test_a_later_export_without_the_patient_record_leaves_the_patient_whole(
    server: FhirServer, tmp_path: Path
) -> None:
    patient, _, free_day, attack, *_ = records()
    full = export(tmp_path, "full", [patient, free_day])
    assert push(full, server).exit_code == 0
    [(key, before)] = stored(server, ["Patient"]).items()
    assert before["name"] and before["birthDate"]
    # A later export of new diary days only: the patient gets a stub (identifier only).
    later = export(tmp_path, "later", [attack])
    assert push(later, server).exit_code == 0
    after = stored(server, ["Patient"])
    assert list(after) == [key]
    assert without_server_meta(after[key]) == without_server_meta(before)


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTPS server on 127.0.0.1 with a self-signed certificate, answering /metadata
    like the FHIR server does (enough for --dry-run): the base URL and the certificate file."""
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "migrainefhir test CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = tmp_path / "ca.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = private_file(
        tmp_path / "tls-key.pem",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    with metadata_server(CAPABILITIES, context) as base:
        yield base, cert_file


CAPABILITIES = {
    "resourceType": "CapabilityStatement",
    "fhirVersion": "4.0.1",
    "rest": [{"mode": "server", "interaction": [{"code": "transaction"}]}],
}


@contextlib.contextmanager
def metadata_server(statement: dict[str, Any], context: Any = None) -> Iterator[str]:
    """A real HTTP(S) server on 127.0.0.1 that answers GET /fhir/metadata with `statement`
    (all --dry-run asks); its base URL."""
    body = json.dumps(statement).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, answer = (200, body) if self.path == "/fhir/metadata" else (404, b"{}")
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if context is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{httpd.server_address[1]}/fhir"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_tls_is_verified_and_a_ca_bundle_makes_a_private_ca_trusted(
    tls_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, ca = tls_server
    out = export(tmp_path, "out", records()[:3])
    refused = invoke("push", str(out), "--server", base, "--dry-run", *FAST_RETRIES)
    assert refused.exit_code == 3
    assert "TLS certificate is not trusted" in refused.stderr and "--ca-bundle" in refused.stderr
    trusted = invoke("push", str(out), "--server", base, "--dry-run", "--ca-bundle", str(ca))
    assert trusted.exit_code == 0, trusted.stderr
    assert "speaks FHIR 4.0.1 and takes transactions" in trusted.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fhirVersion": "3.0.2"}, "the server speaks FHIR 3.0.2; these Bundles are FHIR R4"),
        ({"rest": [{"mode": "server", "interaction": [{"code": "batch"}]}]}, "no transaction"),
    ],
)
def test_a_server_that_is_not_r4_or_takes_no_transactions_is_refused_before_sending(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    out = export(tmp_path, "out", records()[:3])
    with metadata_server(CAPABILITIES | change) as base:
        for extra in (["--dry-run"], []):
            result = invoke("push", str(out), "--server", base, *extra)
            assert result.exit_code == 3
            assert message in result.stderr
