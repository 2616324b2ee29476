"""The run context and the small FHIR building blocks every converter shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from migrainefhir import codes, ids
from migrainefhir.codes import Code, Unit


@dataclass(frozen=True, slots=True)
class ConvertContext:
    """What a conversion needs besides the record: where the data comes from, and when."""

    source_system: str  # the source system's URI; qualifies every id and identifier
    export_time: datetime  # timezone-aware; Provenance.recorded
    software_version: str  # of migrainefhir; named in Provenance
    # export_time as Provenance.recorded writes it: formatted once per run, not per record.
    recorded_text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A frozen dataclass sets its own derived fields through object.__setattr__.
        object.__setattr__(self, "recorded_text", fhir_instant_utc(self.export_time))


def fhir_datetime(value: datetime) -> str:
    """A FHIR dateTime/instant keeping the record's offset; UTC is written `Z`."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("FHIR date-times need a UTC offset; the model stage guarantees one")
    text = value.isoformat()
    if not offset:  # a zero offset is written `+00:00` by isoformat
        text = text[: -len("+00:00")] + "Z"
    return text


def fhir_instant_utc(value: datetime) -> str:
    """An instant in UTC written with `Z` (Provenance.recorded, Bundle.timestamp)."""
    return fhir_datetime(value.astimezone(UTC))


def fhir_date(value: date) -> str:
    return value.isoformat()


def number(value: float) -> int | float:
    """A JSON number for a FHIR decimal: integral values without a trailing `.0`."""
    if isinstance(value, int):
        return value
    return int(value) if value.is_integer() else value


def quantity(value: float, unit: Unit) -> dict[str, Any]:
    """A UCUM Quantity."""
    return {"value": number(value), "unit": unit.unit, "system": codes.UCUM, "code": unit.code}


def reference(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def ref_to(resource: dict[str, Any]) -> dict[str, str]:
    """A relative reference to a resource dict built here."""
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def concept_or_text(code: Code | None, text: str) -> dict[str, Any]:
    """A CodeableConcept with the code when there is one, and always the text."""
    if code is None:
        return {"text": text}
    return code.concept(text)


def extension(url: str, value_key: str, value: Any) -> dict[str, Any]:
    return {"url": url, value_key: value}


class RecordScope:
    """Ids, identifiers, meta and the Patient reference for the resources made from one record.

    What all resources of a record share is worked out once, here: the record's part of every
    id's hash, the identifier system, meta.source, meta.lastUpdated and the Patient reference.
    Every call still returns new dicts, so no two resources share a mutable element.
    """

    __slots__ = (
        "_ids",
        "ctx",
        "identifier_system",
        "patient_id",
        "patient_reference",
        "record_id",
        "record_type",
        "recorded_at",
        "recorded_text",
        "source_uri",
    )

    def __init__(
        self,
        ctx: ConvertContext,
        record_type: str,
        record_id: str,
        patient_id: str,
        recorded_at: datetime | None,
    ) -> None:
        self.ctx = ctx
        self.record_type = record_type
        self.record_id = record_id
        self.patient_id = patient_id
        self.recorded_at = recorded_at
        # recorded_at is when the source last wrote the record: the content's last change.
        self.recorded_text = None if recorded_at is None else fhir_datetime(recorded_at)
        # meta.source: the source system with a fragment naming the record.
        self.source_uri = f"{ctx.source_system}#{record_type}/{record_id}"
        self.identifier_system = ids.identifier_system(ctx.source_system, record_type)
        self.patient_reference = f"Patient/{ids.patient_id(ctx.source_system, patient_id)}"
        self._ids: ids.RecordIds | None = None  # made on first use: a Patient stub needs none

    def resource_id(self, role: str) -> str:
        if self._ids is None:
            self._ids = ids.RecordIds(self.ctx.source_system, self.record_type, self.record_id)
        return self._ids.resource_id(role)

    def identifier(self, role: str) -> dict[str, str]:
        """ids.identifier(source system, record type, record id, role)."""
        return {
            "system": self.identifier_system,
            "value": ids.identifier_value(self.record_id, role),
        }

    def meta(self, *profiles: str, last_updated: bool = True) -> dict[str, Any]:
        if last_updated and self.recorded_text is not None:
            return {
                "lastUpdated": self.recorded_text,
                "source": self.source_uri,
                "profile": list(profiles),
            }
        return {"source": self.source_uri, "profile": list(profiles)}

    def start(
        self,
        resource_type: str,
        role: str,
        *profiles: str,
        extensions: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The common head of a resource: type, id, meta, extensions if any (after meta, where
        FHIR puts them), business identifier."""
        head: dict[str, Any] = {
            "resourceType": resource_type,
            "id": self.resource_id(role),
            "meta": self.meta(*profiles),
        }
        if extensions:
            head["extension"] = extensions
        head["identifier"] = [self.identifier(role)]
        return head

    @property
    def patient(self) -> dict[str, str]:
        """A new reference to the record's Patient (each use gets its own dict)."""
        return {"reference": self.patient_reference}

    def logical(self, resource_type: str, id_space: str, value: str) -> dict[str, Any]:
        """A logical reference by identifier in one of the source system's id spaces."""
        return {
            "type": resource_type,
            "identifier": {
                "system": ids.identifier_system(self.ctx.source_system, id_space),
                "value": value,
            },
        }
