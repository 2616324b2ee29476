"""Render a Report: text for people, JSON for scripts.

(The FHIR OperationOutcome form for integrators' tools lives in validate/outcome.py.)
"""

from __future__ import annotations

from migrainefhir.problems import Counts, Report


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
