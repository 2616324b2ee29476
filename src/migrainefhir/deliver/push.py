"""`push`: a transaction export (`export --format transaction`) sent to a FHIR server.

Each patient's Bundles go in order (`<patient>-001.json`, `-002`, ...; every split Bundle starts
with its Patient), `jobs` patients at a time. The server's `/metadata` is read first (FHIR
4.0.x, `transaction` supported). A Bundle counts as accepted only when the answer is a
`transaction-response` with one entry per request and every entry's status is 2xx (a DELETE
answered 404 or 410 is done too: the resource is gone); servers that run a transaction like a
batch answer 200 with mixed entry statuses, and then nothing tells a failed entry apart but
its status. A refused Bundle is recorded with the server's OperationOutcome and the rest go
on. The journal (journal.py) makes a re-run resume. At the end, `DIR/push-summary.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migrainefhir.deliver.journal import Journal
from migrainefhir.deliver.transport import (
    Credentials,
    RetryPolicy,
    ServerUnavailable,
    Transport,
    TransportOptions,
)
from migrainefhir.errors import InputUnreadable, MigraineFhirError, UsageError
from migrainefhir.export.output import write_file_atomically

SUMMARY_NAME = "push-summary.json"
_BUNDLE_NAME = re.compile(r"^(?P<patient>.+?)(?:-(?P<number>\d{3}))?\.json$")


class ServerUnsuitable(MigraineFhirError):
    """The server's CapabilityStatement says it cannot take these Bundles."""

    exit_code = ServerUnavailable.exit_code


@dataclass(frozen=True, slots=True)
class PushOptions:
    folder: Path
    server: str  # checked base URL, no trailing slash
    jobs: int = 4
    force: bool = False
    dry_run: bool = False
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    transport: TransportOptions = field(default_factory=TransportOptions)

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise UsageError("--jobs must be at least 1")


@dataclass(frozen=True, slots=True)
class BundleFile:
    name: str  # relative to the export folder: bundles/<file>
    entries: int


@dataclass(slots=True)
class Refusal:
    file: str
    status: int
    entries: list[dict[str, Any]]  # the failed entries: index, request, status, outcome
    outcome: Any = None  # the whole answer's OperationOutcome, when the Bundle was refused


@dataclass(slots=True)
class Progress:
    bundles_done: int
    bundles_total: int
    entries_done: int
    entries_total: int
    elapsed: float

    def line(self) -> str:
        """`12/40 Bundles, 3,000/9,800 entries, 250/s, about 27 s left`."""
        rate = self.entries_done / self.elapsed if self.elapsed > 0 else 0.0
        left = (self.entries_total - self.entries_done) / rate if rate > 0 else None
        text = (
            f"{self.bundles_done}/{self.bundles_total} Bundles, "
            f"{self.entries_done:,}/{self.entries_total:,} entries, {rate:,.0f}/s"
        )
        return text + (f", about {left:,.0f} s left" if left is not None else "")


@dataclass(slots=True)
class PushResult:
    server: str
    bundles: int = 0
    entries: int = 0
    accepted: int = 0
    skipped: int = 0  # accepted by this server before, same bytes (journal)
    refusals: list[Refusal] = field(default_factory=list)
    entries_sent: int = 0  # entries of the Bundles accepted in this run
    fhir_version: str = ""
    dry_run: bool = False
    stopped: str | None = None  # why the push stopped early (then exit code 3)
    started: str = ""
    seconds: float = 0.0

    @property
    def refused(self) -> int:
        return len(self.refusals)

    def summary(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "fhirVersion": self.fhir_version,
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
            "bundles": {
                "total": self.bundles,
                "accepted": self.accepted,
                "skipped": self.skipped,
                "refused": self.refused,
                "not_sent": self.bundles - self.accepted - self.skipped - self.refused,
            },
            "entries": {"total": self.entries, "sent_and_accepted": self.entries_sent},
            "stopped": self.stopped,
            "refused": [
                {
                    "file": refusal.file,
                    "status": refusal.status,
                    "entries": refusal.entries,
                    "outcome": refusal.outcome,
                }
                for refusal in self.refusals
            ],
        }


def plan(folder: Path) -> list[list[BundleFile]]:
    """Each patient's transaction Bundles, in order; patients in file-name order."""
    bundles = folder / "bundles"
    if not bundles.is_dir():
        if (folder / "manifest.json").is_file():
            raise UsageError(
                f"{folder} is an NDJSON (Bulk Data) export: load it with the server's bulk "
                "import ($import), or export again with --format transaction to push it"
            )
        raise InputUnreadable(f"{folder} holds no export (no bundles/ folder)")
    patients: dict[str, list[tuple[int, BundleFile]]] = {}
    for path in sorted(bundles.iterdir()):
        match = _BUNDLE_NAME.match(path.name)
        if match is None or not path.is_file():
            continue
        bundle = _read_bundle(path)
        if bundle.get("type") != "transaction":
            raise UsageError(
                f"{path} is a {bundle.get('type')!r} Bundle, not a transaction: a server "
                "would store it as one document. Export again with --format transaction"
            )
        number = int(match["number"] or 0)
        entries = len(bundle.get("entry") or [])
        patients.setdefault(match["patient"], []).append(
            (number, BundleFile(f"bundles/{path.name}", entries))
        )
    return [[item for _, item in sorted(files)] for _, files in sorted(patients.items())]


def _read_bundle(path: Path) -> dict[str, Any]:
    try:
        bundle = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputUnreadable(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InputUnreadable(f"{path} is not JSON") from exc
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputUnreadable(f"{path} is not a FHIR Bundle")
    return bundle


def check_capabilities(transport: Transport) -> str:
    """The server's FHIR version, after checking it is 4.0.x and takes transactions."""
    response = transport.fhir("GET", "metadata")
    if response.status_code != 200:
        raise ServerUnsuitable(f"GET {transport.base_url}/metadata answered {response.status_code}")
    try:
        statement = json.loads(response.content)
    except ValueError as exc:
        raise ServerUnsuitable(f"{transport.base_url}/metadata is not JSON") from exc
    if not isinstance(statement, dict) or statement.get("resourceType") != "CapabilityStatement":
        raise ServerUnsuitable(f"{transport.base_url}/metadata is not a CapabilityStatement")
    version = str(statement.get("fhirVersion", ""))
    if not version.startswith("4.0."):
        raise ServerUnsuitable(
            f"the server speaks FHIR {version or '(unknown)'}; these Bundles are FHIR R4 (4.0.x)"
        )
    interactions = {
        item.get("code")
        for rest in statement.get("rest") or []
        if isinstance(rest, dict)
        for item in rest.get("interaction") or []
        if isinstance(item, dict)
    }
    if "transaction" not in interactions:
        raise ServerUnsuitable("the server's CapabilityStatement lists no transaction interaction")
    return version


def push(
    options: PushOptions,
    credentials: Credentials,
    on_progress: Callable[[Progress], None] | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> PushResult:
    """Push the export in options.folder; raises ServerUnavailable, AuthenticationFailed or
    ServerUnsuitable when the push cannot go on (the result so far is in push-summary.json)."""
    started = time.monotonic()
    patients = plan(options.folder)
    result = PushResult(
        server=options.server,
        bundles=sum(len(files) for files in patients),
        entries=sum(f.entries for files in patients for f in files),
        dry_run=options.dry_run,
        started=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    journal = Journal(options.folder)
    transport = Transport(
        options.server, credentials, options.policy, options.transport, on_retry=on_retry
    )
    try:
        result.fhir_version = check_capabilities(transport)
        if options.dry_run:
            result.skipped = _already_accepted(patients, options, journal)
            return result
        run = _Run(options, transport, journal, result, on_progress, started)
        run.all(patients)
    except (MigraineFhirError, KeyboardInterrupt) as stop:
        result.stopped = str(stop) or "interrupted"
        raise
    finally:
        transport.close()
        journal.close()
        result.seconds = time.monotonic() - started
        if not options.dry_run:
            write_file_atomically(
                options.folder / SUMMARY_NAME,
                json.dumps(result.summary(), indent=2, ensure_ascii=False).encode() + b"\n",
            )
    return result


def _already_accepted(
    patients: list[list[BundleFile]], options: PushOptions, journal: Journal
) -> int:
    if options.force:
        return 0
    return sum(
        journal.accepted(f.name, _sha256((options.folder / f.name).read_bytes()), options.server)
        for files in patients
        for f in files
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Run:
    """One push: patients on a thread pool, each patient's Bundles in order."""

    def __init__(
        self,
        options: PushOptions,
        transport: Transport,
        journal: Journal,
        result: PushResult,
        on_progress: Callable[[Progress], None] | None,
        started: float,
    ) -> None:
        self.options = options
        self.transport = transport
        self.journal = journal
        self.result = result
        self.on_progress = on_progress
        self.started = started
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.bundles_done = 0
        self.entries_done = 0

    def all(self, patients: list[list[BundleFile]]) -> None:
        pool = ThreadPoolExecutor(max_workers=self.options.jobs, thread_name_prefix="push")
        try:
            futures = [pool.submit(self.patient, files) for files in patients]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    raise error
        finally:
            # On an error or Ctrl-C: no new Bundle starts; those on their way finish (a
            # thread cannot be stopped mid-request), then the pool's threads end.
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def patient(self, files: list[BundleFile]) -> None:
        for bundle in files:
            if self.stop.is_set():
                return
            self.one(bundle)

    def one(self, bundle: BundleFile) -> None:
        path = self.options.folder / bundle.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputUnreadable(f"cannot read {path}: {exc.strerror}") from exc
        digest = _sha256(data)
        server = self.options.server
        if not self.options.force and self.journal.accepted(bundle.name, digest, server):
            self._done(bundle, "skipped")
            return
        sent = json.loads(data)
        response = self.transport.fhir("POST", "", data)
        refusal = _refusal(bundle.name, sent, response.status_code, response.content)
        outcome = "accepted" if refusal is None else "refused"
        self.journal.record(bundle.name, digest, server, outcome, bundle.entries)
        with self.lock:
            if refusal is not None:
                self.result.refusals.append(refusal)
        self._done(bundle, outcome)

    def _done(self, bundle: BundleFile, outcome: str) -> None:
        with self.lock:
            if outcome == "accepted":
                self.result.accepted += 1
                self.result.entries_sent += bundle.entries
            elif outcome == "skipped":
                self.result.skipped += 1
            self.bundles_done += 1
            self.entries_done += bundle.entries
            progress = Progress(
                self.bundles_done,
                self.result.bundles,
                self.entries_done,
                self.result.entries,
                time.monotonic() - self.started,
            )
        if self.on_progress is not None:
            self.on_progress(progress)


def _refusal(name: str, sent: dict[str, Any], status: int, content: bytes) -> Refusal | None:
    """None when the server took every entry; else what it refused and why."""
    try:
        answer = json.loads(content)
    except ValueError:
        answer = None
    if not 200 <= status < 300:
        outcome = answer if isinstance(answer, dict) else None
        return Refusal(name, status, [], outcome)
    requests = sent.get("entry") or []
    if (
        not isinstance(answer, dict)
        or answer.get("resourceType") != "Bundle"
        or answer.get("type") != "transaction-response"
        or len(answer.get("entry") or []) != len(requests)
    ):
        return Refusal(
            name, status, [], {"note": "not a transaction-response with one entry per request"}
        )
    failed = []
    for index, (request, reply) in enumerate(zip(requests, answer["entry"], strict=True)):
        method = request.get("request", {}).get("method", "")
        code = _entry_status(reply)
        if 200 <= code < 300 or (method == "DELETE" and code in (404, 410)):
            continue
        response = reply.get("response") if isinstance(reply, dict) else None
        failed.append(
            {
                "index": index,
                "method": method,
                "type": _entry_type(request),
                "status": code,
                "outcome": (response or {}).get("outcome"),
            }
        )
    return Refusal(name, status, failed) if failed else None


def _entry_status(reply: Any) -> int:
    """The code of Bundle.entry.response.status ("201", "201 Created"); 0 if none."""
    status = reply.get("response", {}).get("status") if isinstance(reply, dict) else None
    head = str(status or "").split(" ", 1)[0]
    return int(head) if head.isdigit() else 0


def _entry_type(request: dict[str, Any]) -> str:
    resource = request.get("resource")
    if isinstance(resource, dict):
        return str(resource.get("resourceType", ""))
    return str(request.get("request", {}).get("url", "")).split("/", 1)[0].split("?", 1)[0]
