"""Pure converters: one typed record in, its FHIR R4 (4.0.1) resource dicts out.

No I/O, no clock, no randomness: the export time and software version come in through
ConvertContext, ids are deterministic (ids.py), and the output order is stable (primary
resource first, Provenance last). The Patient is not part of a record's output: the export
stage adds one per patient_id, from the patient record (patient_resource) or a stub.
References are relative (`Type/id`); export/bundle.py rewrites them for Bundles.

May import: the leaves (problems, errors, codes, ids, schema) and input/ (the typed records).
"""

from __future__ import annotations

from typing import Any

from migrainefhir.convert.context import ConvertContext
from migrainefhir.convert.diary import convert_diary_entry
from migrainefhir.convert.ketamine import convert_ketamine_session
from migrainefhir.convert.patient import convert_patient_record, patient_resource, patient_stub
from migrainefhir.input.records import DiaryEntry, KetamineSession, PatientRecord, Record

__all__ = [
    "ConvertContext",
    "convert_diary_entry",
    "convert_ketamine_session",
    "convert_patient_record",
    "convert_record",
    "patient_resource",
    "patient_stub",
]


def convert_record(record: Record, ctx: ConvertContext) -> list[dict[str, Any]]:
    """Every resource made from one record, primary first and its Provenance last."""
    if isinstance(record, DiaryEntry):
        return convert_diary_entry(record, ctx)
    if isinstance(record, KetamineSession):
        return convert_ketamine_session(record, ctx)
    if isinstance(record, PatientRecord):
        return convert_patient_record(record, ctx)
    raise TypeError(f"not a record: {type(record).__name__}")
