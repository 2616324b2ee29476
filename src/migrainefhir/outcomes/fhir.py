"""The window measures as FHIR R4 Observations, validated before anything is written.

One Observation per patient and window (profile headache-outcome-window): code
headache-outcome#diary-window-summary, effectivePeriod = the window's first and last day, and
one component per measure in a fixed order (window number, the six day counts, moh-risk).
One resource per window, not one per measure, keeps what belongs together together: an EHR
shows the window, and a query for one measure reads one component.

The subject is the same Patient id the export writes for the patient (ids.patient_id), so
`export --with-outcomes` adds these Observations to an export whose Patients they reference.
No `issued`: the same diary gives the same bytes whenever it is measured (and a window's end
may lie after the run, while it is still being filled).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from migrainefhir import codes
from migrainefhir.ids import identifier_system, patient_id, resource_id
from migrainefhir.outcomes.metrics import WindowMetrics
from migrainefhir.problems import Problem, has_errors
from migrainefhir.validate import ResourceValidator

OUTCOME_WINDOW = "outcome-window"  # the identifier's and the id's record type
CS = codes.HEADACHE_OUTCOME_CODES
COUNT_MEASURES = (
    ("diary-days", "diary_days"),
    ("headache-days", "headache_days"),
    ("migraine-days", "migraine_days"),
    ("acute-medication-days", "acute_medication_days"),
    ("triptan-ergot-days", "triptan_ergot_days"),
    ("simple-analgesic-days", "simple_analgesic_days"),
)


def window_observation(window: WindowMetrics, source_system: str) -> dict[str, Any]:
    """The Observation of one patient's window (a plain dict, not yet validated)."""
    key = f"{window.patient_id}/{window.window}"
    components: list[dict[str, Any]] = [
        {"code": CS["window-number"].concept(), "valueInteger": window.window}
    ]
    components += [
        {"code": CS[code].concept(), "valueInteger": getattr(window, attribute)}
        for code, attribute in COUNT_MEASURES
    ]
    components.append({"code": CS["moh-risk"].concept(), "valueBoolean": window.moh_risk})
    return {
        "resourceType": "Observation",
        "id": resource_id(source_system, OUTCOME_WINDOW, key, "primary"),
        "meta": {"profile": [codes.HEADACHE_OUTCOME_WINDOW_PROFILE]},
        "identifier": [{"system": identifier_system(source_system, OUTCOME_WINDOW), "value": key}],
        "status": "final",
        "category": [codes.CATEGORY_SURVEY.concept()],
        "code": CS["diary-window-summary"].concept(),
        "subject": {"reference": f"Patient/{patient_id(source_system, window.patient_id)}"},
        "effectivePeriod": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "component": components,
    }


def validated_observations(
    windows: Iterable[WindowMetrics],
    source_system: str,
    validator: ResourceValidator,
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Every window's Observation that passes the validator (with its profile), and the
    problems of those that do not (which are left out: nothing invalid is ever written)."""
    good: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for window in windows:
        resource = window_observation(window, source_system)
        found = validator.validate(resource)
        problems.extend(found)
        if not has_errors(found):
            good.append(resource)
    return good, problems
