"""Deterministic ids and business identifiers.

The same source record always yields the same resource ids, so re-importing never duplicates:
an id is the uuid5 of (source system, record type, record id, the resource's role in the
record) under a fixed project namespace. The business identifier lets an importer match on
the source system's own id space instead of ours.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

# Fixed forever: changing it changes every id ever exported.
# = uuid5(NAMESPACE_URL, "https://migrainefhir.org/ns/resource-id"), written out as a constant.
ID_NAMESPACE = uuid.UUID("67b0f17c-34a6-5d1f-a44e-c39e2d3ee7fe")

# For trying the tool out only; a site sets its own with --source-system or the config file.
DEFAULT_SOURCE_SYSTEM = "https://example.org/migrainefhir/source"

# The primary resource of a record (the diary Observation, the session Procedure, the Patient).
PRIMARY = "primary"

_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in ids or roles, so joins never collide


_NAMESPACE_BYTES = ID_NAMESPACE.bytes


class RecordIds:
    """The ids of the resources made from one record.

    Every id of a record hashes the same start of the name (namespace, source system, record
    type, record id): it is hashed once here, and each role only adds its own bytes.
    """

    __slots__ = ("_record_hash",)

    def __init__(self, source_system: str, record_type: str, record_id: str) -> None:
        # The separator is ASCII, so encoding the parts joined with a trailing separator gives
        # the same bytes as the start of the whole name encoded at once.
        record_part = _SEPARATOR.join((source_system, record_type, record_id, ""))
        self._record_hash = hashlib.sha1(_NAMESPACE_BYTES + record_part.encode())

    def resource_id(self, role: str) -> str:
        """resource_id(source_system, record_type, record_id, role) for this record."""
        digest = self._record_hash.copy()
        digest.update(role.encode())
        return _uuid5_text(digest.hexdigest())


def resource_id(source_system: str, record_type: str, record_id: str, role: str) -> str:
    """The deterministic FHIR id of one resource made from one record.

    Exactly str(uuid.uuid5(ID_NAMESPACE, name)) (RFC 4122 section 4.3: SHA-1, version 5, the
    RFC 4122 variant), computed without building a UUID object: ids are made for every
    resource, and the object costs more than the hash.
    """
    name = _SEPARATOR.join((source_system, record_type, record_id, role))
    return _uuid5_text(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).hexdigest())


# The RFC 4122 variant (binary 10xx) written over the first hex digit of the fourth group: the
# digit's two low bits stay, its two high bits become 10. A table, as it runs for every id.
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 0x3] for digit in "0123456789abcdef"}


def _uuid5_text(sha1_hex: str) -> str:
    """The uuid5 text from the SHA-1 of its name: the first 128 bits, with the version (5)
    and the variant written over their digits."""
    return (
        f"{sha1_hex[:8]}-{sha1_hex[8:12]}-5{sha1_hex[13:16]}"
        f"-{_VARIANT_DIGIT[sha1_hex[16]]}{sha1_hex[17:20]}-{sha1_hex[20:32]}"
    )


@functools.lru_cache(maxsize=4096)  # a record names its patient in every resource
def patient_id(source_system: str, patient: str) -> str:
    """The Patient resource id for a source patient_id, whether or not a patient record exists."""
    return resource_id(source_system, "patient", patient, PRIMARY)


def identifier_system(source_system: str, record_type: str) -> str:
    """The identifier system of one record type's ids in the source system's id space."""
    return f"{source_system.rstrip('/')}/{record_type}"


def identifier(source_system: str, record_type: str, record_id: str, role: str) -> dict[str, str]:
    """The business identifier of one resource: the record id, qualified by role unless primary."""
    return {
        "system": identifier_system(source_system, record_type),
        "value": identifier_value(record_id, role),
    }


def identifier_value(record_id: str, role: str) -> str:
    """The value of a resource's business identifier: the record id, qualified by role unless
    primary."""
    return record_id if role == PRIMARY else f"{record_id}/{role}"


# --- stable keys for list items -------------------------------------------------------------
#
# A resource made from an item of a list (a medication intake, a vitals reading, an adverse
# effect, an aura feature) is keyed by what the item is, not by where it stands in the list:
# reordering the list keeps every resource id, and removing an item leaves the others' ids
# alone. Identical keys get an occurrence number in list order (the second `sumatriptan` at
# the same time is `<key>.2`): the n-th identical item is always the same resource.

KEY_PART_SEPARATOR = "_"
OCCURRENCE_SEPARATOR = "."


def key_time(value: datetime) -> str:
    """A time as a key part: UTC, to the second, `20260301T140000Z` (the same instant written
    with another offset is the same key)."""
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def key_text(text: str) -> str:
    """Free text as a key part: the first 12 hex digits of its SHA-256 (keys are written into
    identifiers, which allow only A-Z a-z 0-9 . _ -)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def item_key(*parts: str | None) -> str:
    """One item's content key from its identifying parts (None parts are left out)."""
    return KEY_PART_SEPARATOR.join(part for part in parts if part is not None)


def item_keys(keys: Iterable[str]) -> list[str]:
    """The stable keys of a list's items, given each item's content key (`item_key`): the key
    itself the first time, `<key>.<n>` for its n-th occurrence (n >= 2)."""
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        count = seen.get(key, 0) + 1
        seen[key] = count
        out.append(key if count == 1 else f"{key}{OCCURRENCE_SEPARATOR}{count}")
    return out


# --- matching on the receiving server --------------------------------------------------------

# HL7 v2 table 0203 (codes.IDENTIFIER_TYPES; repeated here: ids.py imports no other module).
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def business_identifier(resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """The identifier a conditional write matches the resource on (`Type?identifier=system|value`),
    or None (Provenance has no identifier in R4).

    A Patient with a medical record number (an identifier typed v2-0203 `MR`) is matched on the
    first such MRN (export/bundle.py creates it only where the EHR has no such chart); any
    other resource (and a Patient without an MRN) on the first
    identifier the converters write, the source system's own id (AdverseEvent.identifier is a
    single Identifier in R4)."""
    found = resource.get("identifier")
    if isinstance(found, dict):
        found = [found]
    if not isinstance(found, list):
        return None
    usable = [i for i in found if isinstance(i, dict) and "system" in i and "value" in i]
    if resource.get("resourceType") == "Patient":
        for identifier in usable:
            if is_medical_record_number(identifier):
                return identifier
    return usable[0] if usable else None


def is_medical_record_number(identifier: Mapping[str, Any]) -> bool:
    """Whether an Identifier is typed v2-0203 `MR` (a medical record number)."""
    codings = identifier.get("type", {}).get("coding", [])
    return any(c.get("system") == _V2_0203 and c.get("code") == "MR" for c in codings)


def urn(resource_uuid: str) -> str:
    """The fullUrl of a resource inside a Bundle."""
    return f"urn:uuid:{resource_uuid}"
