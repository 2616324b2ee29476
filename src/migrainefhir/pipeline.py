"""The library API: what every command calls. The CLI only wires options to these functions.

Data flows one way: read -> check + parse (input/intake.py) -> convert -> validate
(export/gate.py) -> bundle / write (export/job.py). `validate_paths` checks FHIR files from
anywhere. `report` computes the headache outcome measures (outcomes/run.py); `export` with
`with_outcomes` adds them to an export as Observations (the export stage cannot import the
later outcomes stage, so they are wired together here). `package` writes the FHIR package,
its examples with the outcome windows (conformance/ cannot import outcomes/ either).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from migrainefhir.convert import ConvertContext, patient_stub
from migrainefhir.errors import UsageError
from migrainefhir.export.bundle import collection_bundle
from migrainefhir.export.gate import convert_and_validate
from migrainefhir.export.job import export as export_records
from migrainefhir.export.options import ExportOptions, ExportResult
from migrainefhir.input.intake import CheckedRecord, InputOptions, checked_records
from migrainefhir.input.records import PatientRecord
from migrainefhir.outcomes.run import (
    ReportOptions,
    ReportResult,
    outcome_resources,
    write_report,
)
from migrainefhir.problems import Problem, Report, has_errors
from migrainefhir.validate import ResourceValidator, ValidationReport, validate_paths

__all__ = [
    "CheckedRecord",
    "ExportOptions",
    "ExportResult",
    "InputOptions",
    "ReportOptions",
    "ReportResult",
    "ValidationReport",
    "check",
    "checked_records",
    "convert",
    "export",
    "package",
    "report",
    "validate_paths",
]


def check(paths: Sequence[str], options: InputOptions | None = None) -> Report:
    """Check input records against the contract; every record is counted accepted or rejected."""
    report = Report()
    for checked in checked_records(paths, options or InputOptions()):
        report.problems.extend(checked.problems)
        if checked.notice is not None:
            report.counts.count_notice(checked.notice)
            continue
        report.counts.count(checked.raw.record_type, checked.accepted)
    return report


def convert(
    paths: Sequence[str], options: InputOptions, ctx: ConvertContext
) -> tuple[dict[str, Any], Report]:
    """Every accepted record as one collection Bundle (Patients first), and the Report.

    The whole Bundle is built in memory: for large inputs use `export`, which streams.
    Records whose resources fail validation are rejected, exactly as export does.
    """
    validator = ResourceValidator("full")
    report = Report()
    patients: dict[str, list[dict[str, Any]]] = {}
    body: list[dict[str, Any]] = []
    for checked in checked_records(paths, options):
        kind, record = checked.raw.record_type, checked.record
        report.problems.extend(checked.problems)
        if checked.notice is not None:
            report.counts.count_notice(checked.notice)
            continue
        if record is None:
            report.counts.count(kind, accepted=False)
            continue
        resources, problems, _ = convert_and_validate(record, ctx, checked.raw.source, validator)
        report.problems.extend(problems)
        report.counts.count(kind, accepted=not has_errors(problems))
        if has_errors(problems):
            continue
        if isinstance(record, PatientRecord):
            patients[record.patient_id] = resources
        else:
            patients.setdefault(record.patient_id, [patient_stub(record.patient_id, ctx)])
            body.extend(resources)
    ordered = [resource for pid in sorted(patients) for resource in patients[pid]] + body
    return collection_bundle(ordered, _bundle_id(ordered), ctx.export_time), report


def _bundle_id(resources: list[dict[str, Any]]) -> str:
    """Deterministic: the same resources give the same Bundle id."""
    digest = hashlib.sha256()
    for resource in resources:
        digest.update(f"{resource['resourceType']}/{resource['id']}\n".encode())
    return digest.hexdigest()[:32]


def export(
    paths: Sequence[str],
    input_options: InputOptions,
    options: ExportOptions,
    on_record: Callable[[int, int | None], None] | None = None,
    with_outcomes: bool = False,
) -> ExportResult:
    """Export every record (export/job.py); `with_outcomes` adds the window measures as
    Observations (outcomes/fhir.py) for every exported patient, validated like every resource.

    The measures need each patient's whole diary, so `with_outcomes` does not go with `since`.
    """
    if not with_outcomes:
        return export_records(paths, input_options, options, on_record)
    if options.since is not None:
        raise UsageError("--with-outcomes needs the whole diary: it does not go with --since")

    def outcomes(
        files: list[str],
    ) -> tuple[list[tuple[str, list[dict[str, Any]]]], list[Problem]]:
        validator = ResourceValidator(options.validation)  # type: ignore[arg-type]
        return outcome_resources(files, input_options, options.source_system, validator)

    return export_records(paths, input_options, options, on_record, outcomes)


def _outcome_examples(paths: Sequence[str], source_system: str) -> list[dict[str, Any]]:
    """The window Observations of the example records, for the package's examples."""
    per_patient, _ = outcome_resources(
        paths, InputOptions(), source_system, ResourceValidator("full")
    )
    return [resource for _, resources in per_patient for resource in resources]


def package(out: Path) -> list[Path]:
    """The FHIR NPM package of the profiles in `out` (conformance/package.py), its examples
    covering the outcome window profile too; the paths written."""
    from migrainefhir.conformance.package import write  # only `package` needs it

    return write(out, _outcome_examples)


def report(
    paths: Sequence[str], input_options: InputOptions, options: ReportOptions
) -> ReportResult:
    """The headache outcome report: metrics.csv, outcomes.csv, metrics.ndjson and the HTML
    pages in options.out (outcomes/run.py)."""
    return write_report(paths, input_options, options)
