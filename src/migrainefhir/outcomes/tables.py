"""metrics.csv and outcomes.csv: the measures as tables researchers load into R or pandas.

Plain RFC 4180 CSV (csv module, `\\r\\n` line ends, UTF-8 without BOM), ISO dates, `true` /
`false`, and an empty cell where a value does not exist. The first columns of metrics.csv are
fixed by the issue that asked for them; columns are only ever added after them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from migrainefhir.outcomes.metrics import Outcome, WindowMetrics

METRICS_COLUMNS = (
    "patient_id",
    "window",
    "window_start",
    "window_end",
    "diary_days",
    "headache_days",
    "migraine_days",
    "acute_medication_days",
    "triptan_ergot_days",
    "simple_analgesic_days",
    "moh_risk",
    # after the fixed columns
    "complete",
    "sessions",
    "mean_severity",
)

OUTCOMES_COLUMNS = (
    "patient_id",
    "first_session",
    "baseline_diary_days",
    "baseline_complete",
    "baseline_migraine_days",
    "follow_up_windows",
    "follow_up_migraine_days",
    "change_follow_up",
    "weeks_9_12_diary_days",
    "weeks_9_12_complete",
    "weeks_9_12_migraine_days",
    "change_weeks_9_12",
    "responder_50",
    "sessions_given",
    "sessions_stopped",
    "adverse_effects",
)


def cell(value: object) -> str:
    """One CSV cell: booleans as true/false, None empty, floats with at most 2 decimals."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return str(value)


def metrics_row(w: WindowMetrics) -> list[str]:
    values: tuple[object, ...] = (
        w.patient_id,
        w.window,
        w.start.isoformat(),
        w.end.isoformat(),
        w.diary_days,
        w.headache_days,
        w.migraine_days,
        w.acute_medication_days,
        w.triptan_ergot_days,
        w.simple_analgesic_days,
        w.moh_risk,
        w.complete,
        w.sessions,
        w.mean_severity,
    )
    return [cell(value) for value in values]


def outcome_row(o: Outcome) -> list[str]:
    baseline, late = o.baseline, o.weeks_9_12
    values: tuple[object, ...] = (
        o.patient_id,
        o.first_session.isoformat(),
        baseline.diary_days if baseline else 0,
        o.baseline_complete,
        baseline.migraine_days if baseline else None,
        len(o.follow_up),
        o.follow_up_migraine_days,
        o.change_follow_up,
        late.diary_days if late else 0,
        o.weeks_9_12_complete,
        late.migraine_days if late else None,
        o.change_weeks_9_12,
        o.responder_50,
        o.sessions_given,
        o.sessions_stopped,
        o.adverse_effects,
    )
    return [cell(value) for value in values]


class CsvTable:
    """A CSV table built row by row into bytes."""

    def __init__(self, columns: Iterable[str]) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        self._writer.writerow(list(columns))

    def add(self, row: list[str]) -> None:
        self._writer.writerow(row)

    def data(self) -> bytes:
        return self._buffer.getvalue().encode("utf-8")
