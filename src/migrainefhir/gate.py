"""The gate between converting and writing: a record's resources, validated before any is written.

Used by every command that writes FHIR (convert, export): a record any of whose resources has
an error is rejected whole, so no half of a record ever reaches an importer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from migrainefhir.convert import ConvertContext, convert_record, patient_stub
from migrainefhir.problems import Problem, Source
from migrainefhir.records import PatientRecord, Record
from migrainefhir.validate import RecordResources, ResourceValidator, validate_records

Converted = tuple[list[dict[str, Any]], list[Problem]]


def convert_and_validate(
    record: Record, ctx: ConvertContext, source: Source, validator: ResourceValidator
) -> Converted:
    """The record's resources and every problem found in them (the caller rejects on errors)."""
    [converted] = convert_and_validate_many([(record, source)], ctx, validator)
    return converted


def convert_and_validate_many(
    records: Sequence[tuple[Record, Source]], ctx: ConvertContext, validator: ResourceValidator
) -> list[Converted]:
    """convert_and_validate of each record, validated together (validate_records: the same
    problems, in less time than record by record)."""
    resources = [convert_record(record, ctx) for record, _ in records]
    batch = [
        # A record's references resolve inside it or to its Patient; a patient record holds it.
        RecordResources(converted, _patient_of(record, ctx), source)
        for converted, (record, source) in zip(resources, records, strict=True)
    ]
    problems = validate_records(batch, validator=validator)
    return list(zip(resources, problems, strict=True))


def _patient_of(record: Record, ctx: ConvertContext) -> dict[str, Any] | None:
    return None if isinstance(record, PatientRecord) else patient_stub(record.patient_id, ctx)
