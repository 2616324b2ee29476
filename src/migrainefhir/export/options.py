"""What an export is asked to do (`ExportOptions`) and what it did (`ExportResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from migrainefhir.errors import UsageError
from migrainefhir.ids import DEFAULT_SOURCE_SYSTEM
from migrainefhir.problems import TalliedReport

FORMATS = ("ndjson", "transaction", "collection")


WRITE_MODES = ("put", "conditional")


VALIDATION_MODES = ("full", "fast")


# Where the shards run: this machine's worker processes, or the tasks of a Spark job (spark.py).
ENGINES = ("local", "spark")


# Azure Health Data Services accepts at most 500 entries per bundle; HAPI and Google accept
# more, so 500 suits the common servers (fhir-conventions.md section 3).
DEFAULT_MAX_ENTRIES = 500


# The Bulk Data IG's own example limit (STU2 "Server Capability Documentation").
DEFAULT_MAX_FILE_RESOURCES = 100_000


@dataclass(frozen=True, slots=True)
class ExportOptions:
    out: Path
    export_time: datetime
    format: str = "ndjson"
    source_system: str = DEFAULT_SOURCE_SYSTEM
    since: datetime | None = None
    write_mode: str = "put"
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_file_resources: int = DEFAULT_MAX_FILE_RESOURCES
    gzip: bool = False
    strict: bool = False
    base_url: str | None = None
    jobs: int = 1
    validation: str = "full"
    previous: Path | None = None  # --previous: an earlier export to delete what is gone from
    engine: str = "local"
    # engine "spark": the master URL; None: the running session's, or spark-submit's, or local[*]
    spark_master: str | None = None
    # engine "spark": --out / --previous as a file system URI only Spark reaches (hdfs://,
    # s3a://, abfss://, ...; export/hadoop.py), in place of the local `out` / `previous`.
    out_uri: str | None = None
    previous_uri: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise UsageError(f"unknown format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.write_mode not in WRITE_MODES:
            raise UsageError(f"unknown write mode {self.write_mode!r}")
        if self.max_entries < 2:
            raise UsageError("--max-entries must be at least 2")
        if self.max_file_resources < 1:
            raise UsageError("--max-file-resources must be at least 1")
        if self.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        if self.validation not in VALIDATION_MODES:
            raise UsageError(f"unknown validation mode {self.validation!r}; choose full or fast")
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}; choose local or spark")
        if self.spark_master is not None and self.engine != "spark":
            raise UsageError("--spark-master goes with --engine spark")


@dataclass(slots=True)
class ExportResult:
    report: TalliedReport
    resources: dict[str, int] = field(default_factory=dict)
    written: bool = True
    deleted: dict[str, int] | None = None  # with --previous: DELETE entries per type
    # Patients that records reference but no exported patient record gave: in the Bundle
    # formats each gets a stub; in NDJSON none, and their Patient references are listed here.
    patients_without_record: int = 0
    patients_not_exported: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        counts = self.report.counts
        return {
            "records_read": counts.total_read,
            "records_exported": counts.total_accepted,
            "records_rejected": counts.total_rejected,
            "records_skipped": counts.total_skipped,
            "files_skipped": counts.files_skipped,
            "by_record_type": {
                kind: {
                    "read": counts.read.get(kind, 0),
                    "exported": counts.accepted.get(kind, 0),
                    "rejected": counts.rejected.get(kind, 0),
                    "skipped": counts.skipped.get(kind, 0),
                }
                for kind in sorted(counts.read)
            },
            "resources": dict(sorted(self.resources.items())),
            "patients_without_record": self.patients_without_record,
            "patients_referenced_not_exported": self.patients_not_exported,
            "problems": self.problems_summary(),
        } | ({} if self.deleted is None else {"deleted": self.deleted})

    def problems_summary(self) -> dict[str, Any]:
        """Every problem counted per code, and the first ones of each severity in full (every
        rejected record's problems are in rejects.ndjson; warnings of exported records are
        counted here and shown first-ones-only)."""
        report = self.report
        return {
            "errors": report.error_count,
            "warnings": report.warning_count,
            "by_code": dict(sorted(report.by_code.items())),
            "first": [problem.to_json() for problem in report.problems],
            "first_limit_per_severity": report.keep,
        }
