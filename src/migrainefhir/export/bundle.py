"""Bundle assembly: collection and transaction Bundles from converter output (pure).

Every entry gets fullUrl `urn:uuid:<id>` (our ids are UUIDs, so fullUrl and Resource.id
agree). R4 resolves a relative reference inside a Bundle against the *RESTful* base of the
referring entry's fullUrl (hl7.org/fhir/R4/bundle.html#references, "Resolving references in
Bundles"); a `urn:uuid:` fullUrl has no such base, so every relative `Type/id` reference to a
resource in the same Bundle is rewritten to that resource's `urn:uuid:` fullUrl. References
to resources outside the Bundle stay relative (a server resolves them against itself).
The input resources are never modified.

A transaction entry named in `create_only` (a Patient stub: the export had no patient record
for it, so it carries only the source identifier) is a conditional create, `POST Patient` with
`ifNoneExist: identifier=system|value` and no `id`: a server that already holds the Patient
keeps it, with its name, birth date and MRNs, and resolves the Bundle's references to it (they
name the entry's urn:uuid fullUrl); a server without it creates one. A stub never replaces a
richer Patient (docs/mapping.md, "Patients without a patient record").
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
# system's ids; such an entry's resource carries no id (below); Provenance has no identifier in
# R4, so it is always written by id.
WRITE_MODES = ("put", "conditional")
# Types R4 gives no `identifier` search parameter (search-parameters.json of 4.0.1; AdverseEvent
# gets one in R5): a conditional URL on it would match nothing (or be refused), so a replay
# would create a duplicate. These are written by id in conditional mode too, as Provenance is.
NOT_SEARCHABLE_BY_IDENTIFIER = frozenset({"AdverseEvent", "Provenance"})


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
    create_only: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """A `transaction` Bundle whose replay changes nothing: every entry is an update, either
    `PUT Type/id` (write_mode "put") or `PUT Type?identifier=system|value` ("conditional"),
    but the resources named (`Type/id`) in `create_only` (Patient stubs) and, in conditional
    mode, a Patient matched on its MRN: each a conditional create (`POST Type`, `ifNoneExist`
    on its business identifier), without its id, so that no richer Patient is replaced."""
    if write_mode not in WRITE_MODES:
        raise ValueError(f"unknown write mode {write_mode!r}; expected one of {WRITE_MODES}")
    entries = []
    for url, resource in _prepared(resources):
        key = f"{resource['resourceType']}/{resource['id']}"
        if key in create_only or (write_mode == "conditional" and _is_an_ehr_chart(resource)):
            request = _create_request(resource)
            del resource["id"]
            entries.append({"fullUrl": url, "resource": resource, "request": request})
        else:
            entry = {
                "fullUrl": url,
                "resource": resource,
                "request": _request(resource, write_mode),
            }
            entries.append(_without_id_if_conditional(entry))
    return _bundle("transaction", bundle_id, timestamp, entries)


def _is_an_ehr_chart(resource: Mapping[str, Any]) -> bool:
    """A Patient matched on a medical record number: the EHR's own chart, which holds more than
    our patient record (addresses, contacts, other MRNs, ...). Conditional mode creates it when
    the EHR has none and never replaces it (a conditional update would wipe what we do not
    send); the Bundle's references reach the chart either way."""
    if resource["resourceType"] != "Patient":
        return False
    identifier = ids.business_identifier(resource)
    return identifier is not None and ids.is_medical_record_number(identifier)


def _without_id_if_conditional(entry: dict[str, Any]) -> dict[str, Any]:
    """A conditional update's resource without its `id`: the server decides which resource it
    is. R4 http.html#cond-update: one match and an id in the body that differs from the match's
    is 400, and with no match a server may refuse a client id (Medplum: "Cannot provide ID for
    create by update"). The entry keeps its `urn:uuid:` fullUrl, which the other entries'
    references name, so the server rewrites them to the id it settles on."""
    if "?" not in entry["request"]["url"]:
        return entry
    resource = {key: value for key, value in entry["resource"].items() if key != "id"}
    return {**entry, "resource": resource}


def _request(resource: Mapping[str, Any], write_mode: str) -> dict[str, str]:
    kind = resource["resourceType"]
    identifier = ids.business_identifier(resource)  # a Patient's MRN when it has one
    if write_mode == "put" or identifier is None or kind in NOT_SEARCHABLE_BY_IDENTIFIER:
        return {"method": "PUT", "url": f"{kind}/{resource['id']}"}
    return {"method": "PUT", "url": _identifier_url(kind, identifier)}


def _identifier_url(kind: str, identifier: Mapping[str, str]) -> str:
    return f"{kind}?identifier={_token(identifier)}"


def delete_entry(resource: Mapping[str, Any], write_mode: str) -> dict[str, Any]:
    """A DELETE entry for a resource an earlier export wrote (export --previous), addressed as
    that export wrote it: by id, or in conditional mode by its business identifier."""
    kind = resource["resourceType"]
    identifier = ids.business_identifier(resource)
    if write_mode == "put" or identifier is None or kind in NOT_SEARCHABLE_BY_IDENTIFIER:
        return {"request": {"method": "DELETE", "url": f"{kind}/{resource['id']}"}}
    return {"request": {"method": "DELETE", "url": _identifier_url(kind, identifier)}}


def deletion_bundle(
    entries: list[dict[str, Any]], bundle_id: str, timestamp: datetime
) -> dict[str, Any]:
    """A `transaction` Bundle of DELETE entries (Bulk Data's `deleted` files hold these too)."""
    return _bundle("transaction", bundle_id, timestamp, entries)


def _create_request(resource: Mapping[str, Any]) -> dict[str, str]:
    """`POST Type` only if no resource has the business identifier (R4 http.html#ccreate)."""
    identifier = ids.business_identifier(resource)
    if identifier is None:
        raise ValueError("a conditional create needs a business identifier")
    kind = resource["resourceType"]
    return {"method": "POST", "url": kind, "ifNoneExist": f"identifier={_token(identifier)}"}


def _token(identifier: Mapping[str, str]) -> str:
    """A token search value `system|value`, each part URL-encoded."""
    return f"{quote(identifier['system'], safe=':/')}|{quote(identifier['value'], safe='')}"


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
