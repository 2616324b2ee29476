"""Patient resources: one per patient_id, from a patient record or as an identifier-only stub."""

from __future__ import annotations

from typing import Any

from migrainefhir import codes, ids
from migrainefhir.convert.context import ConvertContext, RecordScope, fhir_date
from migrainefhir.convert.provenance import provenance
from migrainefhir.input.records import PATIENT, PatientIdentifier, PatientRecord


def _scope(patient_id: str, ctx: ConvertContext, record: PatientRecord | None) -> RecordScope:
    recorded_at = record.recorded_at if record is not None else None
    return RecordScope(ctx, PATIENT, patient_id, patient_id, recorded_at)


def _head(scope: RecordScope) -> dict[str, Any]:
    """scope.start("Patient", ids.PRIMARY, codes.PATIENT_PROFILE), with the id from
    ids.patient_id: the same value (resource_id(source, "patient", patient_id, "primary"),
    whether the Patient comes from a record or a stub), already worked out for the record's
    Patient references. The export makes a stub for every record."""
    return {
        "resourceType": "Patient",
        "id": ids.patient_id(scope.ctx.source_system, scope.patient_id),
        "meta": scope.meta(codes.PATIENT_PROFILE),
        "identifier": [scope.identifier(ids.PRIMARY)],
    }


def patient_stub(patient_id: str, ctx: ConvertContext) -> dict[str, Any]:
    """The Patient for a patient_id with no patient record: only its identifier."""
    return _head(_scope(patient_id, ctx, None))


def patient_resource(record: PatientRecord, ctx: ConvertContext) -> dict[str, Any]:
    """The Patient for a patient record: source identifier, EHR identifiers, demographics."""
    patient = _head(_scope(record.patient_id, ctx, record))
    patient["identifier"].extend(_identifier(identifier) for identifier in record.identifiers)
    name: dict[str, Any] = {}
    if record.family is not None:
        name["family"] = record.family
    if record.given:
        name["given"] = list(record.given)
    if name:
        patient["name"] = [name]
    if record.gender is not None:
        patient["gender"] = record.gender
    if record.birth_date is not None:
        patient["birthDate"] = fhir_date(record.birth_date)
    return patient


def _identifier(identifier: PatientIdentifier) -> dict[str, Any]:
    """An EHR identifier: its type (v2-0203, e.g. MR) and assigner when the record gives them,
    so a receiving EHR can match the patient on its medical record number."""
    out: dict[str, Any] = {}
    if identifier.type is not None:
        out["type"] = codes.IDENTIFIER_TYPES[identifier.type].concept()
    out["system"] = identifier.system
    out["value"] = identifier.value
    if identifier.assigner is not None:
        out["assigner"] = {"display": identifier.assigner}
    return out


def convert_patient_record(record: PatientRecord, ctx: ConvertContext) -> list[dict[str, Any]]:
    """A patient record: [Patient, Provenance]."""
    patient = patient_resource(record, ctx)
    return [patient, provenance(_scope(record.patient_id, ctx, record), [patient], author=None)]
