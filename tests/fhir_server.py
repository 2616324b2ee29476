"""A real FHIR R4 server for tests: tools/fhir-server/server.js on 127.0.0.1.

`FhirServer` starts `node tools/fhir-server/server.js 0` (Medplum's FHIR router over its
in-memory repository; see tools/fhir-server/README.md for what it does and does not do), waits
for its ready line, talks to it over urllib and stops it on exit, whatever happened in between:

    with FhirServer() as server:
        server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
        server.fail(503, count=2, retry_after=1)   # the next two requests answer 503

The server also exits by itself when this process dies (it watches its stdin, which only this
process holds), so no node process outlives the tests.

`requires_fhir_server` skips a test when the server's packages are not installed (`bash
tools/fhir-server/install.sh`), except under CI=true, where a missing server fails the test.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_DIR = ROOT / "tools" / "fhir-server"
SERVER_JS = SERVER_DIR / "server.js"
READY_PREFIX = "listening "
READY_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
FHIR_JSON = "application/fhir+json"


class FhirServerUnavailable(RuntimeError):
    """The server cannot be started here: node or its packages are missing, or it died."""


def missing_reason() -> str | None:
    """Why the server cannot run on this machine, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed (the test FHIR server needs Node 20.19+)"
    if not (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return "test FHIR server not installed: run `bash tools/fhir-server/install.sh`"
    return None


_MISSING = missing_reason()
# Under CI a missing server must fail, never skip silently: the marker then lets the test run,
# and FhirServer.start() raises FhirServerUnavailable with the same reason.
requires_fhir_server = pytest.mark.skipif(
    _MISSING is not None and os.environ.get("CI") != "true",
    reason=_MISSING or "",
)

# Loopback only: never send the test traffic through a proxy named in the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FhirServer:
    """One server process; a context manager. `base_url` ends in /fhir/R4 (no slash)."""

    def __init__(self, *, ready_timeout: float = READY_TIMEOUT) -> None:
        self.ready_timeout = ready_timeout
        self.base_url = ""
        self.origin = ""
        self.process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> FhirServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> FhirServer:
        reason = missing_reason()
        if reason is not None:
            raise FhirServerUnavailable(reason)
        # stderr goes to a file: a pipe nobody reads could fill up and block the server. It
        # lives as long as the server, so stop() closes it, not a with block.
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["node", str(SERVER_JS), "0", "--exit-with-stdin"],
            cwd=SERVER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
        )
        try:
            line = self._ready_line()
        except BaseException:
            self.stop()
            raise
        self.base_url = line.removeprefix(READY_PREFIX).strip()
        scheme, _, rest = self.base_url.partition("://")
        self.origin = f"{scheme}://{rest.partition('/')[0]}"
        return self

    def _ready_line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        lines: queue.Queue[str] = queue.Queue()
        # readline() blocks; a daemon thread reads so that the wait can time out.
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=self.ready_timeout)
        except queue.Empty:
            raise FhirServerUnavailable(
                f"no ready line within {self.ready_timeout:g} s{self._stderr_tail()}"
            ) from None
        if not line.startswith(READY_PREFIX):
            raise FhirServerUnavailable(
                f"server did not start (first line {line!r}){self._stderr_tail()}"
            )
        return line

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        time.sleep(0.2)  # let a dying process finish writing
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].strip()
        return f"; stderr: {tail}" if tail else ""

    def stop(self) -> None:
        """Terminate the process, kill it if it lingers; safe to call more than once."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    # -- FHIR requests ------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """An absolute URL as is, else a path relative to the FHIR base ("Patient/p1")."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path}" if path else self.base_url

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> Response:
        """Any HTTP status is returned, not raised; time-outs and broken connections raise."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url(path), data=data, method=method)
        request.add_header("Accept", FHIR_JSON)
        if data is not None:
            request.add_header("Content-Type", FHIR_JSON)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with _OPENER.open(request, timeout=timeout) as answer:
                return Response(answer.status, answer.headers, answer.read())
        except urllib.error.HTTPError as error:
            with error:
                return Response(error.code, error.headers, error.read())

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Response:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> Response:
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Response:
        return self.request("DELETE", path, **kwargs)

    # -- test control (/__control/...) --------------------------------------------------------

    def control(self, name: str, method: str = "POST", **args: Any) -> dict[str, Any]:
        data = json.dumps(args).encode() if method == "POST" else None
        request = urllib.request.Request(f"{self.origin}/__control/{name}", data, method=method)
        with _OPENER.open(request, timeout=REQUEST_TIMEOUT) as answer:
            result: dict[str, Any] = json.loads(answer.read())
        return result

    def reset(self) -> None:
        """Empty store, no pending faults, no token, transactions off, request log cleared."""
        self.control("reset")

    def fail(self, status: int, *, count: int = 1, retry_after: int | str | None = None) -> None:
        """The next `count` FHIR requests answer `status` (not carried out)."""
        args: dict[str, Any] = {"status": status, "count": count}
        if retry_after is not None:
            args["retry_after"] = retry_after
        self.control("fail", **args)

    def delay(self, seconds: float, *, count: int = 1) -> None:
        """The next `count` FHIR requests are carried out, then answered `seconds` late."""
        self.control("delay", seconds=seconds, count=count)

    def disconnect(self, *, count: int = 1) -> None:
        """The next `count` FHIR requests are carried out; the answer breaks off halfway."""
        self.control("disconnect", count=count)

    def require_token(self, token: str | None) -> None:
        """FHIR requests but GET /metadata need `Authorization: Bearer token`; None: off."""
        self.control("auth", token=token)

    def set_transactions(self, enabled: bool) -> None:
        """The router's transaction mode (README: Transactions); off after a reset."""
        self.control("transactions", enabled=enabled)

    def register_smart_client(
        self, client_id: str, public_key_pem: str, *, expires_in: int = 300
    ) -> None:
        """SMART Backend Services: the token endpoint accepts assertions of this client signed
        with the key; each token it issues becomes the bearer token FHIR requests need."""
        self.control("smart", client_id=client_id, public_key=public_key_pem, expires_in=expires_in)

    def tokens_issued(self) -> dict[str, Any]:
        """{"issued": n, "scopes": [...]}: the token endpoint's answers since the reset."""
        return self.control("smart", method="GET")

    def requests(self) -> list[dict[str, Any]]:
        """Every FHIR request since the last reset: method, url (after the base), status."""
        log: list[dict[str, Any]] = self.control("requests", method="GET")["requests"]
        return log
