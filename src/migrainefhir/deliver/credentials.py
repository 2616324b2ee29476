"""Credentials for push: a bearer token from a file, or SMART Backend Services.

SMART Backend Services (hl7.org/fhir/smart-app-launch/backend-services.html): the token
endpoint is read from `BASE/.well-known/smart-configuration`; the client authenticates with a
JWT (`iss` = `sub` = client id, `aud` = the token endpoint, `exp` at most five minutes ahead, a
fresh `jti`, header `kid`) signed RS384 (an RSA key) or ES384 (a P-384 key) with its private
key, in a `client_credentials` grant with the asked `scope`. The token is cached until shortly
before `expires_in` runs out, and renewed once when the server answers 401.

Key and token files readable by group or others are refused, as `export --key-file` is. No
token, key or assertion is ever put in a message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from migrainefhir.deliver.transport import AuthenticationFailed, check_server_url
from migrainefhir.errors import UsageError

if TYPE_CHECKING:
    from migrainefhir.deliver.transport import Transport

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300  # seconds: the most SMART allows
EXPIRY_MARGIN = 30  # seconds: a token this close to its expiry is renewed before use


def read_private_file(path: str, what: str) -> bytes:
    """A secret file's bytes; UsageError if it is missing, empty or readable by others."""
    try:
        mode = os.stat(path).st_mode
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(
            f"the {what} {path} is readable by others: make it private (chmod 600 {path})"
        )
    if not data.strip():
        raise UsageError(f"the {what} {path} is empty")
    return data


class BearerToken:
    """--token-file: a token the user got elsewhere; it cannot be renewed."""

    def __init__(self, path: str) -> None:
        token = read_private_file(path, "token file").strip()
        try:
            self._header = {"Authorization": f"Bearer {token.decode('ascii')}"}
        except UnicodeDecodeError as exc:
            raise UsageError(f"the token file {path} does not hold an ASCII token") from exc

    def headers(self, transport: Transport) -> tuple[dict[str, str], int]:
        return dict(self._header), 0

    def renew(self, transport: Transport, generation: int) -> bool:
        return False


class SmartBackend:
    """SMART Backend Services client credentials with a signed JWT assertion."""

    def __init__(
        self,
        client_id: str,
        key_path: str,
        scope: str,
        key_id: str | None = None,
        allow_http: bool = False,
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        pem = read_private_file(key_path, "private key file")
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise UsageError(
                f"the private key file {key_path} is not an unencrypted PEM private key"
            ) from exc
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
            self.algorithm = "RS384"
        elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
            self.algorithm = "ES384"
        else:
            raise UsageError(
                f"the private key in {key_path} must be RSA (2048 bits or more, for RS384) or "
                "EC P-384 (for ES384), as SMART Backend Services requires"
            )
        self._key = key
        self.client_id = client_id
        self.scope = scope
        self.key_id = key_id or _thumbprint(key.public_key())
        self.allow_http = allow_http
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self._generation = 0
        self._endpoint: str | None = None

    def headers(self, transport: Transport) -> tuple[dict[str, str], int]:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires - EXPIRY_MARGIN:
                self._fetch(transport)
            assert self._token is not None
            return {"Authorization": f"Bearer {self._token}"}, self._generation

    def renew(self, transport: Transport, generation: int) -> bool:
        with self._lock:
            if generation == self._generation:  # no other thread renewed it meanwhile
                self._fetch(transport)
        return True

    def _fetch(self, transport: Transport) -> None:
        import jwt

        endpoint = self._token_endpoint(transport)
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": endpoint,
            "exp": now + ASSERTION_LIFETIME,
            "jti": uuid.uuid4().hex,
        }
        assertion = jwt.encode(
            claims, self._key, algorithm=self.algorithm, headers={"kid": self.key_id, "typ": "JWT"}
        )
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        started = time.monotonic()
        response = transport.send(
            "POST", endpoint, data=form, headers={"Accept": "application/json"}, authenticate=False
        )
        answer = _json_object(response.content)
        token = answer.get("access_token")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            error = answer.get("error")
            said = f": {error}" if isinstance(error, str) and error.isprintable() else ""
            raise AuthenticationFailed(
                f"the token endpoint refused the client assertion ({response.status_code}{said})"
            )
        lifetime = answer.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) else ASSERTION_LIFETIME
        self._token = token
        self._expires = started + seconds
        self._generation += 1

    def _token_endpoint(self, transport: Transport) -> str:
        if self._endpoint is None:
            url = transport.url(".well-known/smart-configuration")
            response = transport.send(
                "GET", url, headers={"Accept": "application/json"}, authenticate=False
            )
            endpoint = _json_object(response.content).get("token_endpoint")
            if response.status_code != 200 or not isinstance(endpoint, str):
                raise AuthenticationFailed(
                    f"no SMART configuration with a token_endpoint at {url} "
                    f"({response.status_code})"
                )
            try:
                self._endpoint = check_server_url(endpoint, self.allow_http)
            except UsageError as exc:
                raise AuthenticationFailed(f"the token endpoint is refused: {exc}") from exc
        return self._endpoint


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _thumbprint(public_key: Any) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256) of the public key: a stable default `kid`."""
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    if hasattr(public_key, "curve"):
        jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    else:
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        members = {name: jwk[name] for name in ("e", "kty", "n")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
