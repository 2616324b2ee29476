"""Bundle assembly: collection and transaction Bundles from converter output (pure).

Every entry gets fullUrl `urn:uuid:<id>` (our ids are UUIDs, so fullUrl and Resource.id
agree). R4 resolves a relative reference inside a Bundle against the *RESTful* base of the
referring entry's fullUrl (hl7.org/fhir/R4/bundle.html#references, "Resolving references in
Bundles"); a `urn:uuid:` fullUrl has no such base, so every relative `Type/id` reference to a
resource in the same Bundle is rewritten to that resource's `urn:uuid:` fullUrl. References
to resources outside the Bundle stay relative (a server resolves them against itself).
The input resources are never modified.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from migrainefhir import ids
from migrainefhir.convert.context import fhir_instant_utc

# put: PUT Type/id with our deterministic ids. conditional: PUT Type?identifier=system|value
# (conditional update on the business identifier), for servers that should match on the source
# system's ids; Provenance has no identifier in R4, so it is always written by id.
WRITE_MODES = ("put", "conditional")


def collection_bundle(
    resources: Iterable[Mapping[str, Any]], bundle_id: str, timestamp: datetime
) -> dict[str, Any]:
    """A `collection` Bundle of the resources, in the order given."""
    entries = [{"fullUrl": url, "resource": resource} for url, resource in _prepared(resources)]
    return _bundle("collection", bundle_id, timestamp, entries)


def transaction_bundle(
    resources: Iterable[Mapping[str, Any]],
    bundle_id: str,
    timestamp: datetime,
    write_mode: str = "put",
) -> dict[str, Any]:
    """A `transaction` Bundle whose replay changes nothing: every entry is an update, either
    `PUT Type/id` (write_mode "put") or `PUT Type?identifier=system|value` ("conditional")."""
    if write_mode not in WRITE_MODES:
        raise ValueError(f"unknown write mode {write_mode!r}; expected one of {WRITE_MODES}")
    entries = [
        {"fullUrl": url, "resource": resource, "request": _request(resource, write_mode)}
        for url, resource in _prepared(resources)
    ]
    return _bundle("transaction", bundle_id, timestamp, entries)


def _request(resource: Mapping[str, Any], write_mode: str) -> dict[str, str]:
    kind = resource["resourceType"]
    identifier = ids.business_identifier(resource)  # a Patient's MRN when it has one
    if write_mode == "put" or identifier is None:
        return {"method": "PUT", "url": f"{kind}/{resource['id']}"}
    token = f"{quote(identifier['system'], safe=':/')}|{quote(identifier['value'], safe='')}"
    return {"method": "PUT", "url": f"{kind}?identifier={token}"}


def _bundle(
    kind: str, bundle_id: str, timestamp: datetime, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": kind,
        "timestamp": fhir_instant_utc(timestamp),
        "entry": entries,
    }


def _prepared(resources: Iterable[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(fullUrl, copy with in-Bundle references rewritten) for each resource."""
    copies = [copy.deepcopy(dict(resource)) for resource in resources]
    full_urls = {f"{r['resourceType']}/{r['id']}": ids.urn(r["id"]) for r in copies}
    if len(full_urls) != len(copies):
        raise ValueError("a Bundle cannot hold two resources with the same type and id")
    for resource in copies:
        _rewrite_references(resource, full_urls)
    return [(ids.urn(resource["id"]), resource) for resource in copies]


def _rewrite_references(node: Any, full_urls: Mapping[str, str]) -> None:
    """Rewrite every Reference.reference that names a resource of this Bundle."""
    if isinstance(node, dict):
        target = node.get("reference")
        if isinstance(target, str) and target in full_urls:
            node["reference"] = full_urls[target]
        for value in node.values():
            _rewrite_references(value, full_urls)
    elif isinstance(node, list):
        for item in node:
            _rewrite_references(item, full_urls)
