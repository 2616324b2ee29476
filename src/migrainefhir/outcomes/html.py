"""The HTML report: index.html for the cohort and one page per patient, from Jinja2 templates.

Self-contained: the style is inline, the charts are inline SVG (charts.py), there is no script
and nothing is loaded from anywhere (not even a favicon). Autoescaping is on for every
template, so no value from the input can become markup. Pages print on A4/Letter (print
styles in the base template), and every number of a chart is also in a table.

Jinja2 is imported on first use (the `report` command), never when the CLI starts.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrainefhir.outcomes import charts
from migrainefhir.outcomes.metrics import (
    COMPLETE_DIARY_DAYS,
    SEVERITY_LEVELS,
    SIMPLE_ANALGESIC_MOH_DAYS,
    TRIPTAN_ERGOT_MOH_DAYS,
    WINDOW_DAYS,
    DayFlags,
    Outcome,
    PatientDays,
    WindowMetrics,
    day_severity,
)

if TYPE_CHECKING:
    import jinja2

PATIENT_FOLDER = "patients"


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("migrainefhir.outcomes", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=_number, signed=_signed, yes_no=_yes_no)
    return env


def page_name(patient_id: str) -> str:
    """The patient page's path under the report folder (ids are [A-Za-z0-9._-], never '..')."""
    return f"{PATIENT_FOLDER}/{patient_id}.html"


@dataclass(frozen=True, slots=True)
class PatientSummary:
    """One patient as the cohort page lists them."""

    patient: PatientDays
    windows: list[WindowMetrics]
    outcome: Outcome | None

    @property
    def diary_days(self) -> int:
        return len(self.patient.days)


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _signed(value: float | None) -> str:
    if value is None:
        return "–"
    text = _number(value)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def _yes_no(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "no")


def _window_label(window: WindowMetrics) -> str:
    return f"{window.window}" if window.complete else f"{window.window}*"


def patient_charts(summary: PatientSummary) -> list[charts.Chart]:
    windows, patient = summary.windows, summary.patient
    categories = [_window_label(w) for w in windows]
    markers = [f"▲{w.sessions}" if w.sessions else "" for w in windows]
    days_chart = charts.bar_chart(
        "days",
        "Headache and migraine days per 28-day window",
        "Bars per window: headache days and migraine days, 0 to 28. A triangle under a window "
        "gives the number of ketamine sessions in it; an asterisk marks an incomplete window "
        f"(fewer than {COMPLETE_DIARY_DAYS} diary days). The numbers are in the table below.",
        categories,
        [
            charts.Series("headache days", [w.headache_days for w in windows], "headache"),
            charts.Series("migraine days", [w.migraine_days for w in windows], "migraine"),
        ],
        WINDOW_DAYS,
        (0, 7, 14, 21, 28),
        markers=markers,
    )
    severity_days = sorted(
        (day, level)
        for day, flags in patient.days.items()
        if flags & DayFlags.HEADACHE and (level := day_severity(flags)) is not None
    )
    session_days = [s.day for s in patient.sessions if s.given]
    severity = charts.severity_chart(
        "severity",
        "Peak pain of each headache day over time",
        "One bar per headache day, its height the day's peak pain on the IHS 4-point scale "
        "(none, mild, moderate, severe); dashed vertical lines mark ketamine sessions. Mean "
        "pain per window is in the table above.",
        severity_days,
        sorted(set(session_days)),
        SEVERITY_LEVELS,
        (min(patient.days), max(patient.days)) if patient.days else None,
    )
    medication = charts.bar_chart(
        "medication",
        "Acute medication days per window against the medication-overuse thresholds",
        "Bars per window: days with a triptan or ergot and days with a simple analgesic. "
        f"Dashed lines: {TRIPTAN_ERGOT_MOH_DAYS} days (triptans, ergots) and "
        f"{SIMPLE_ANALGESIC_MOH_DAYS} days (simple analgesics), the ICHD-3 8.2 thresholds. "
        "The numbers are in the table above.",
        categories,
        [
            charts.Series(
                "triptan or ergot days", [w.triptan_ergot_days for w in windows], "triptan"
            ),
            charts.Series(
                "simple analgesic days", [w.simple_analgesic_days for w in windows], "simple"
            ),
        ],
        WINDOW_DAYS,
        (0, 7, 14, 21, 28),
        thresholds=[
            (TRIPTAN_ERGOT_MOH_DAYS, f"triptan/ergot {TRIPTAN_ERGOT_MOH_DAYS} days"),
            (SIMPLE_ANALGESIC_MOH_DAYS, f"simple analgesic {SIMPLE_ANALGESIC_MOH_DAYS} days"),
        ],
    )
    return [days_chart, severity, medication]


def render_patient(summary: PatientSummary) -> bytes:
    template = environment().get_template("patient.html.j2")
    text = template.render(
        s=summary,
        charts=patient_charts(summary),
        sessions=summary.patient.ordered_sessions(),
        complete_days=COMPLETE_DIARY_DAYS,
        triptan_limit=TRIPTAN_ERGOT_MOH_DAYS,
        simple_limit=SIMPLE_ANALGESIC_MOH_DAYS,
    )
    return text.encode("utf-8")


def change_histogram(changes: Sequence[int]) -> tuple[charts.Chart, list[tuple[str, int]]]:
    """The distribution of the change in migraine days (weeks 9-12 minus baseline), in bins
    of 2 days, as a chart and as (bin, count) rows."""
    if changes:
        low = (min(changes) // 2) * 2
        high = (max(changes) // 2) * 2
    else:
        low = high = 0
    bins = list(range(low, high + 1, 2))
    counts = [sum(1 for c in changes if start <= c < start + 2) for start in bins]
    labels = [f"{start:+d}…{start + 1:+d}".replace("+0", "0") for start in bins]
    top = max([*counts, 1])
    step = max(1, -(-top // 4))
    ticks = list(range(0, step * 4 + 1, step))
    chart = charts.bar_chart(
        "change",
        "Change in migraine days, weeks 9-12 against baseline",
        "Patients per 2-day bin of the change in migraine days (weeks 9-12 minus the 28-day "
        "baseline), complete cases only; negative is fewer migraine days. The counts are in "
        "the table beside the chart.",
        labels,
        [charts.Series("patients", counts, "migraine")],
        ticks[-1],
        ticks,
    )
    return chart, list(zip(labels, counts, strict=True))


def render_index(
    summaries: Sequence[PatientSummary], counts: dict[str, int], source_note: str
) -> bytes:
    outcomes = [s.outcome for s in summaries if s.outcome is not None]
    complete = [o for o in outcomes if o.responder_50 is not None]
    responders = sum(1 for o in complete if o.responder_50)
    changes = [c for o in complete if (c := o.change_weeks_9_12) is not None]
    chart, bins = change_histogram(changes)
    moh = [w for s in summaries for w in s.windows if w.moh_risk]
    template = environment().get_template("index.html.j2")
    text = template.render(
        summaries=summaries,
        counts=counts,
        treated=len(outcomes),
        complete=len(complete),
        responders=responders,
        rate=(100 * responders / len(complete)) if complete else None,
        median_change=statistics.median(changes) if changes else None,
        mean_change=statistics.fmean(changes) if changes else None,
        chart=chart,
        bins=bins,
        moh=moh,
        page_name=page_name,
        source_note=source_note,
        complete_days=COMPLETE_DIARY_DAYS,
        triptan_limit=TRIPTAN_ERGOT_MOH_DAYS,
        simple_limit=SIMPLE_ANALGESIC_MOH_DAYS,
    )
    return text.encode("utf-8")
