"""Render a Report: text for people, JSON for scripts.

(The FHIR OperationOutcome form for integrators' tools lives in validate/outcome.py.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migrainefhir.problems import Counts, Report

if TYPE_CHECKING:
    from typing import Protocol

    from migrainefhir.problems import TalliedReport

    class _ExportOutcome(Protocol):
        """What export_report_lines reads of an export's result (export/options.py's
        ExportResult: report.py is a leaf and does not import the export stage)."""

        @property
        def report(self) -> TalliedReport: ...

        @property
        def written(self) -> bool: ...


def _by_type(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) + ")"


def summary_lines(counts: Counts, accepted_word: str = "accepted") -> list[str]:
    """The reconciliation every run prints: read = accepted (or exported) + rejected."""
    lines = [
        f"records read: {counts.total_read}{_by_type(counts.read)}",
        f"{accepted_word}: {counts.total_accepted}{_by_type(counts.accepted)}",
        f"rejected: {counts.total_rejected}{_by_type(counts.rejected)}",
    ]
    if counts.total_skipped:
        lines.append(f"skipped (unchanged since --since): {counts.total_skipped}")
    if counts.files_skipped:
        lines.append(f"files skipped (no input records in them): {counts.files_skipped}")
    return lines


def render_text(report: Report, accepted_word: str = "accepted") -> str:
    lines = [str(problem) for problem in report.problems]
    if lines:
        lines.append("")
    lines.extend(summary_lines(report.counts, accepted_word))
    lines.append(f"problems: {report.error_count} errors, {report.warning_count} warnings")
    return "\n".join(lines) + "\n"


def counts_json(counts: Counts) -> dict[str, object]:
    return {
        "read": counts.total_read,
        "accepted": counts.total_accepted,
        "rejected": counts.total_rejected,
        "files_skipped": counts.files_skipped,
        "by_type": {
            kind: {
                "read": counts.read.get(kind, 0),
                "accepted": counts.accepted.get(kind, 0),
                "rejected": counts.rejected.get(kind, 0),
            }
            for kind in sorted(counts.read)
        },
    }


def render_json(report: Report) -> dict[str, object]:
    return {
        "records": counts_json(report.counts),
        "errors": report.error_count,
        "warnings": report.warning_count,
        "problems": [problem.to_json() for problem in report.problems],
    }


def export_report_lines(result: _ExportOutcome, out: str) -> list[str]:
    """What export prints on stderr: the first problems (up to the report's limit per
    severity), where the rest are, the reconciliation, the problem counts per code, and with
    --strict, plainly, that nothing was written and why."""
    report = result.report
    lines = [str(problem) for problem in report.problems]
    if report.left_out:
        where = (
            f"every rejected record is in {out}/rejects.ndjson with all its problems, "
            f"and {out}/summary.json counts them per code"
            if result.written
            else "`migrainefhir check` lists every one"
        )
        lines.append(
            f"... and {report.left_out} more problems (first {report.keep} of each severity "
            f"shown): {where}"
        )
    elif report.counts.total_rejected and result.written:
        lines.append(f"(rejected records, with their problems: {out}/rejects.ndjson)")
    if lines:
        lines.append("")
    word = "exported" if result.written else "accepted (none written: --strict)"
    lines.extend(summary_lines(report.counts, word))
    if report.total:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(report.by_code.items()))
        lines.append(
            f"problems: {report.error_count} errors, {report.warning_count} warnings ({codes})"
        )
    if not result.written:
        rejected = report.counts.total_rejected
        lines.append(
            f"--strict: {rejected} record{'s' if rejected != 1 else ''} rejected, so nothing "
            f"was written: {out} is as it was before this run. Fix the records (the problems "
            f"above; `migrainefhir check` lists every one), or export without --strict to write "
            f"them to {out}/rejects.ndjson."
        )
    return lines
