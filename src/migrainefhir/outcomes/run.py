"""`report`: read the input once, compute the measures, write tables, FHIR and HTML.

Records come through input/intake.py (`checked_records`): the same readers, contract, time
zones, duplicate-id check and de-identification as `export`, so a report and an export of the
same input with the same options count the same records and, with --deidentify, show the same
pseudonyms and shifted dates. Each accepted record is folded into its patient's per-day
aggregates at once (metrics.Cohort) and dropped.

The output is written into a staging folder and swapped in at the end (export/output.py): a
failed run leaves the previous report as it was. Files are readable by their owner only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migrainefhir.export.output import PRIVATE_DIR, write_private
from migrainefhir.export.output import staged_directory as staged
from migrainefhir.export.target import checked_target
from migrainefhir.ids import DEFAULT_SOURCE_SYSTEM
from migrainefhir.input.intake import InputOptions, checked_records
from migrainefhir.outcomes import html, tables
from migrainefhir.outcomes.fhir import validated_observations
from migrainefhir.outcomes.metrics import Cohort
from migrainefhir.problems import Problem, Report
from migrainefhir.validate import ResourceValidator

METRICS_CSV = "metrics.csv"
OUTCOMES_CSV = "outcomes.csv"
METRICS_NDJSON = "metrics.ndjson"
INDEX_HTML = "index.html"


@dataclass(frozen=True, slots=True)
class ReportOptions:
    out: Path
    source_system: str = DEFAULT_SOURCE_SYSTEM
    validation: str = "full"


@dataclass(slots=True)
class ReportResult:
    report: Report
    patients: int = 0
    windows: int = 0
    observations: int = 0
    outcomes: int = 0
    files: list[str] = field(default_factory=list)


def collect(paths: Sequence[str], input_options: InputOptions, report: Report) -> Cohort:
    """Every accepted record folded into the cohort; counts and problems into `report`."""
    cohort = Cohort()
    for checked in checked_records(paths, input_options):
        report.problems.extend(checked.problems)
        if checked.notice is not None:  # a note about a whole file, not a record
            report.counts.count_notice(checked.notice)
            continue
        report.counts.count(checked.raw.record_type, checked.accepted)
        if checked.record is not None:
            cohort.add(checked.record)
    return cohort


def summaries(cohort: Cohort) -> list[html.PatientSummary]:
    out = []
    for patient in cohort.ordered():
        windows = patient.windows()
        out.append(html.PatientSummary(patient, windows, patient.outcome(windows)))
    return out


def write_report(
    paths: Sequence[str], input_options: InputOptions, options: ReportOptions
) -> ReportResult:
    """The whole `report` command: read, measure, validate the Observations, write."""
    target = checked_target(options.out, paths)  # never an input's folder, never foreign files
    result = ReportResult(Report())
    cohort = collect(paths, input_options, result.report)
    people = summaries(cohort)
    validator = ResourceValidator(options.validation)  # type: ignore[arg-type]
    windows = [w for s in people for w in s.windows]
    observations, problems = validated_observations(windows, options.source_system, validator)
    result.report.problems.extend(problems)
    metrics = tables.CsvTable(tables.METRICS_COLUMNS)
    for window in windows:
        metrics.add(tables.metrics_row(window))
    outcomes = tables.CsvTable(tables.OUTCOMES_COLUMNS)
    for person in people:
        if person.outcome is not None:
            outcomes.add(tables.outcome_row(person.outcome))
            result.outcomes += 1
    counts = result.report.counts
    note = (
        "De-identified: patient ids are keyed pseudonyms and every date is shifted per "
        "patient (docs/deidentify.md)."
        if input_options.deidentifier is not None
        else "Identified data: patient ids and dates as in the source records."
    )
    with staged(target) as staging:
        write_private(staging / METRICS_CSV, metrics.data())
        write_private(staging / OUTCOMES_CSV, outcomes.data())
        write_private(staging / METRICS_NDJSON, ndjson(observations))
        index_counts = {
            "read": counts.total_read,
            "accepted": counts.total_accepted,
            "rejected": counts.total_rejected,
        }
        write_private(staging / INDEX_HTML, html.render_index(people, index_counts, note))
        folder = staging / html.PATIENT_FOLDER
        folder.mkdir(mode=PRIVATE_DIR)
        for person in people:
            write_private(
                staging / html.page_name(person.patient.patient_id), html.render_patient(person)
            )
    result.patients = len(people)
    result.windows = len(windows)
    result.observations = len(observations)
    result.files = [METRICS_CSV, OUTCOMES_CSV, METRICS_NDJSON, INDEX_HTML, html.PATIENT_FOLDER]
    return result


def ndjson(resources: Sequence[dict[str, Any]]) -> bytes:
    import orjson

    return b"".join(orjson.dumps(resource) + b"\n" for resource in resources)


def outcome_resources(
    paths: Sequence[str],
    input_options: InputOptions,
    source_system: str,
    validator: ResourceValidator,
) -> tuple[list[tuple[str, list[dict[str, Any]]]], list[Problem]]:
    """For `export --with-outcomes`: the validated window Observations per patient id (in
    patient order), and the Observations' problems (the export reports the records' own)."""
    cohort = collect(paths, input_options, Report())
    per_patient: list[tuple[str, list[dict[str, Any]]]] = []
    found: list[Problem] = []
    for patient in cohort.ordered():
        observations, problems = validated_observations(patient.windows(), source_system, validator)
        found.extend(problems)
        if observations:
            per_patient.append((patient.patient_id, observations))
    return per_patient, found
