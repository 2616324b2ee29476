"""HTTP to a FHIR server: retries with backoff and jitter, time limits, TLS and address rules.

What is retried (the request may be sent again as it is: every entry migrainefhir writes is an
update by id or by identifier, a conditional create or a delete, so a replay changes nothing):
408, 429, 500, 502, 503, 504 answers, connection errors, time-outs and answers broken off in
the middle. The wait is the server's `Retry-After` (seconds or an HTTP date) when it gives one,
else exponential backoff with jitter; a request gives up after `max_attempts` attempts or when
the next wait would pass `max_time` seconds since its first attempt, and the push stops
(`ServerUnavailable`, exit code 3). A 401 renews a SMART token once; a second 401, or a 403,
is `AuthenticationFailed` (exit code 3). Every other answer is returned to the caller.

Nothing here prints or logs a header: tokens never leave the Authorization header.
"""

from __future__ import annotations

import ipaddress
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from migrainefhir.errors import ExitCode, MigraineFhirError, UsageError

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class ServerUnavailable(MigraineFhirError):
    """The server could not be reached, or kept failing past the retry limits."""

    exit_code = ExitCode.UNREADABLE


class AuthenticationFailed(MigraineFhirError):
    """The server or its token endpoint refused the credentials."""

    exit_code = ExitCode.UNREADABLE


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Limits on one request's attempts; delays in seconds."""

    max_attempts: int = 6
    base_delay: float = 1.0  # the first backoff is between half of it and all of it
    max_delay: float = 60.0  # no backoff (but a Retry-After) waits longer than this
    max_time: float = 300.0  # since the first attempt of the request

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise UsageError("--max-attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_time < 0:
            raise UsageError("retry delays and --max-retry-time cannot be negative")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with jitter before attempt `attempt + 1`: half the doubled delay
        plus a random part up to the other half, so that clients do not retry in step."""
        ceiling = min(self.max_delay, self.base_delay * float(2 ** (attempt - 1)))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def check_server_url(url: str, allow_http: bool) -> str:
    """The base URL without a trailing slash; https, or http only to a loopback address unless
    allow_http (this is health data). Raises UsageError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not an http(s) URL of a FHIR server's base")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError("the server URL takes no query, fragment or credentials")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise UsageError(
            f"plain http to {parts.hostname} would send health data unencrypted: use https, "
            "or --allow-http if the network is trusted"
        )
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Credentials(Protocol):
    """What the transport needs of a credential: headers to send, and a renewal after 401."""

    def headers(self, transport: Transport) -> tuple[dict[str, str], int]:
        """The Authorization header (or none) and the generation of the token in it."""
        ...

    def renew(self, transport: Transport, generation: int) -> bool:
        """Get a new token after a 401 for `generation`; False if this credential cannot."""
        ...


class NoCredentials:
    def headers(self, transport: Transport) -> tuple[dict[str, str], int]:
        return {}, 0

    def renew(self, transport: Transport, generation: int) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class TransportOptions:
    timeout: float = 60.0
    ca_bundle: str | None = None
    proxy: str | None = None


class Transport:
    """One connection pool to the server, shared by the push's threads."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        policy: RetryPolicy,
        options: TransportOptions,
        on_retry: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url
        self.credentials = credentials
        self.policy = policy
        self.on_retry = on_retry
        self.sleep = sleep
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        verify: ssl.SSLContext | bool = True
        if options.ca_bundle is not None:
            try:
                verify = ssl.create_default_context(cafile=options.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise UsageError(f"cannot use --ca-bundle {options.ca_bundle}: {exc}") from exc
        # trust_env off: no proxy or certificate file from the environment decides where health
        # data goes; --proxy and --ca-bundle say it explicitly.
        self.client = httpx.Client(
            timeout=options.timeout,
            verify=verify,
            proxy=options.proxy,
            trust_env=False,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def url(self, path: str) -> str:
        if path.startswith(("https://", "http://")):
            return path
        return f"{self.base_url}/{path}" if path else self.base_url

    def fhir(self, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        """A FHIR request with the credentials; see the module docstring for what is retried."""
        headers = {"Accept": FHIR_JSON}
        if content is not None:
            headers["Content-Type"] = f"{FHIR_JSON}; charset=utf-8"
        return self.send(method, self.url(path), content=content, headers=headers)

    def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
    ) -> httpx.Response:
        started = time.monotonic()
        attempt = 0
        renewed = False
        what = f"{method} {_without_query(url)}"
        while True:
            request_headers = dict(headers or {})
            generation = 0
            if authenticate:
                auth_headers, generation = self.credentials.headers(self)
                request_headers.update(auth_headers)
            wait: float | None = None
            try:
                response = self.client.request(
                    method, url, content=content, data=data, headers=request_headers
                )
            except httpx.TimeoutException:
                reason = "timed out"
            except httpx.TransportError as exc:
                if _certificate_refused(exc):  # no retry changes that
                    raise ServerUnavailable(
                        f"{what}: the server's TLS certificate is not trusted (for a private "
                        "certificate authority, give its certificate with --ca-bundle)"
                    ) from None
                reason = _transport_reason(exc)
            else:
                status = response.status_code
                if status == 401 and authenticate and not renewed:
                    renewed = True
                    if self.credentials.renew(self, generation):
                        continue
                if status in (401, 403):
                    raise AuthenticationFailed(
                        f"{what}: the server refused the credentials ({status})"
                    )
                if status not in RETRY_STATUSES:
                    return response
                reason = f"answered {status}"
                wait = retry_after(response.headers.get("Retry-After"))
            attempt += 1
            if wait is None:
                with self._rng_lock:
                    wait = self.policy.backoff(attempt, self._rng)
            elapsed = time.monotonic() - started
            if attempt >= self.policy.max_attempts or elapsed + wait > self.policy.max_time:
                raise ServerUnavailable(
                    f"{what}: gave up after {attempt} attempt{'s' * (attempt > 1)} "
                    f"in {elapsed:.0f} s (last: {reason})"
                )
            if self.on_retry is not None:
                self.on_retry(f"{what} {reason}; retrying in {wait:.1f} s")
            self.sleep(wait)


def _without_query(url: str) -> str:
    """The URL as messages show it: no query (a conditional URL holds identifier values)."""
    return url.partition("?")[0]


def _certificate_refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "connection broken off in the answer"
    if isinstance(exc, httpx.ReadError):
        return "connection reset"
    return f"transport error ({type(exc).__name__})"
