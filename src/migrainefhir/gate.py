"""The gate between converting and writing: a record's resources, validated before any is written.

Used by every command that writes FHIR (convert, export): a record any of whose resources has
an error is rejected whole, so no half of a record ever reaches an importer.
"""

from __future__ import annotations

from typing import Any

from migrainefhir.convert import ConvertContext, convert_record, patient_stub
from migrainefhir.problems import Problem, Source
from migrainefhir.records import PatientRecord, Record
from migrainefhir.validate import ResourceValidator, validate_record_resources


def convert_and_validate(
    record: Record, ctx: ConvertContext, source: Source, validator: ResourceValidator
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The record's resources and every problem found in them (the caller rejects on errors)."""
    resources = convert_record(record, ctx)
    # A record's references resolve inside it or to its Patient; a patient record holds it.
    patient = None if isinstance(record, PatientRecord) else patient_stub(record.patient_id, ctx)
    problems = validate_record_resources(resources, patient, source, validator=validator)
    return resources, problems
