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

# Fixed forever: changing it changes every id ever exported.
# = uuid5(NAMESPACE_URL, "https://migrainefhir.org/ns/resource-id"), written out as a constant.
ID_NAMESPACE = uuid.UUID("67b0f17c-34a6-5d1f-a44e-c39e2d3ee7fe")

# For trying the tool out only; a site sets its own with --source-system or the config file.
DEFAULT_SOURCE_SYSTEM = "https://example.org/migrainefhir/source"

# The primary resource of a record (the diary Observation, the session Procedure, the Patient).
PRIMARY = "primary"

_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in ids or roles, so joins never collide


_NAMESPACE_BYTES = ID_NAMESPACE.bytes


def resource_id(source_system: str, record_type: str, record_id: str, role: str) -> str:
    """The deterministic FHIR id of one resource made from one record.

    Exactly str(uuid.uuid5(ID_NAMESPACE, name)) (RFC 4122 section 4.3: SHA-1, version 5, the
    RFC 4122 variant), computed without building a UUID object: ids are made for every
    resource, and the object costs more than the hash.
    """
    name = _SEPARATOR.join((source_system, record_type, record_id, role))
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # variant RFC 4122
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.lru_cache(maxsize=4096)  # a record names its patient in every resource
def patient_id(source_system: str, patient: str) -> str:
    """The Patient resource id for a source patient_id, whether or not a patient record exists."""
    return resource_id(source_system, "patient", patient, PRIMARY)


def identifier_system(source_system: str, record_type: str) -> str:
    """The identifier system of one record type's ids in the source system's id space."""
    return f"{source_system.rstrip('/')}/{record_type}"


def identifier(source_system: str, record_type: str, record_id: str, role: str) -> dict[str, str]:
    """The business identifier of one resource: the record id, qualified by role unless primary."""
    value = record_id if role == PRIMARY else f"{record_id}/{role}"
    return {"system": identifier_system(source_system, record_type), "value": value}


def urn(resource_uuid: str) -> str:
    """The fullUrl of a resource inside a Bundle."""
    return f"urn:uuid:{resource_uuid}"
