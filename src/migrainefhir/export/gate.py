"""The gate between converting and writing: a record's resources, validated before any is written.

Used by every command that writes FHIR (convert, export): a record any of whose resources has
an error is rejected whole, so no half of a record ever reaches an importer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from migrainefhir.convert import ConvertContext, convert_record, patient_stub
from migrainefhir.input.records import PatientRecord, Record
from migrainefhir.problems import Problem, Source
from migrainefhir.validate import RecordResources, ResourceValidator, validate_records


class Converted(NamedTuple):
    """One record's resources, every problem found in them, and each resource's orjson text
    (None if one is not JSON): validation scans the texts for references, and writers that
    write orjson reuse them instead of serializing every resource a second time."""

    resources: list[dict[str, Any]]
    problems: list[Problem]
    texts: list[bytes] | None


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
    texts = [_texts(converted) for converted in resources]
    stubs: dict[str, dict[str, Any]] = {}  # records of one patient share it (only read)
    batch = [
        # A record's references resolve inside it or to its Patient; a patient record holds it.
        RecordResources(converted, _patient_of(record, ctx, stubs), source, text)
        for converted, text, (record, source) in zip(resources, texts, records, strict=True)
    ]
    problems = validate_records(batch, validator=validator)
    return [Converted(*each) for each in zip(resources, problems, texts, strict=True)]


def _texts(resources: list[dict[str, Any]]) -> list[bytes] | None:
    try:
        return [orjson.dumps(resource) for resource in resources]
    except TypeError:  # not JSON (a converter bug): validation finds and reports it
        return None


def _patient_of(
    record: Record, ctx: ConvertContext, stubs: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    if isinstance(record, PatientRecord):
        return None
    stub = stubs.get(record.patient_id)
    if stub is None:
        stub = stubs[record.patient_id] = patient_stub(record.patient_id, ctx)
    return stub
