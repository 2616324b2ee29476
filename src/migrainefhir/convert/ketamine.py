"""Ketamine sessions -> Procedure, Encounter, Condition, MedicationAdministration, pain and
vital-sign Observations, AdverseEvents and a Provenance.

The Procedure is the session (status, time, indication, performer, place, complications,
notes, post-care); the Encounter is the visit it happened in, and every resource of the session
links to it (EHR flowsheets and medication administration records hang off encounters); the
indication is also a Condition, the Procedure's reasonReference; the MedicationAdministration
(partOf the Procedure) carries drug, route, dose and rate and is not made for a session that
never began; pain before and after are 0-10 rating Observations partOf the Procedure; each
vitals measurement is an Observation conforming to the FHIR R4 vital-signs profiles, partOf the
Procedure; each adverse effect is an AdverseEvent (date, seriousness, severity, outcome) and a
Procedure.complication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrainefhir import codes, ids
from migrainefhir.codes import Code, Unit
from migrainefhir.convert.context import (
    ConvertContext,
    RecordScope,
    concept_or_text,
    extension,
    fhir_datetime,
    number,
    quantity,
    ref_to,
    reference,
)
from migrainefhir.convert.provenance import provenance
from migrainefhir.input.records import (
    KETAMINE_SESSION,
    AdverseEffect,
    KetamineSession,
    VitalsReading,
)

PRODUCT_NAMES = {"ketamine": "Ketamine", "esketamine": "Esketamine"}
ROUTE_TEXT = {
    "intravenous": "Intravenous route",
    "intranasal": "Nasal route",
    "intramuscular": "Intramuscular route",
}
INDICATION_TEXT = {
    "migraine": "Migraine",
    "chronic-migraine": "Chronic migraine",
    "migraine-with-aura": "Migraine with aura",
    "migraine-without-aura": "Migraine without aura",
    "medication-overuse-headache": "Medication overuse headache",
}
ADMINISTRATION_STATUS = {"completed": "completed", "stopped": "stopped"}
# R4 encounter-status: a session that began (completed or stopped early) is a finished visit;
# one never begun was cancelled.
ENCOUNTER_STATUS = {"completed": "finished", "stopped": "finished", "not-done": "cancelled"}

# Practitioner, Location and treatment-course ids live in these id spaces of the source system.
PRACTITIONER_ID_SPACE = "practitioner"
LOCATION_ID_SPACE = "location"
COURSE_ID_SPACE = "course"


def convert_ketamine_session(session: KetamineSession, ctx: ConvertContext) -> list[dict[str, Any]]:
    """[Procedure, Encounter, Condition, MedicationAdministration?, weight?, pain scores...,
    vital signs..., AdverseEvents..., Provenance]."""
    scope = RecordScope(
        ctx, KETAMINE_SESSION, session.session_id, session.patient_id, session.recorded_at
    )
    times = _SessionTimes.of(session)
    visit = reference("Encounter", scope.resource_id("encounter"))
    indication = reference("Condition", scope.resource_id("indication"))
    procedure = _procedure(session, scope, times)
    _link(procedure, "subject", "encounter", dict(visit))
    _link(procedure, "reasonCode", "reasonReference", [dict(indication)])
    encounter = _encounter(session, scope, times, indication)
    condition = _condition(session, scope, visit)
    weight = (
        _body_weight(scope, procedure, times, session.weight_kg)
        if session.weight_kg is not None
        else None
    )
    administration = (
        _administration(session, scope, times, procedure, weight)
        if session.status != "not-done"
        else None
    )
    if administration is not None:
        _link(administration, "subject", "context", dict(visit))
    pain = _pain_scores(session, scope, times, procedure)
    vitals = [
        observation
        for key, reading in zip(vitals_keys(session.vitals), session.vitals, strict=True)
        for observation in _vital_signs(scope, procedure, key, reading)
    ]
    for observation in [*([weight] if weight is not None else []), *pain, *vitals]:
        _link(observation, "subject", "encounter", dict(visit))
    suspect = administration if administration is not None else procedure
    adverse_events = [
        _adverse_event(session, scope, times, key, effect, suspect, visit)
        for key, effect in zip(
            adverse_effect_keys(session.adverse_effects), session.adverse_effects, strict=True
        )
    ]
    resources = [
        procedure,
        encounter,
        condition,
        *([administration] if administration is not None else []),
        *([weight] if weight is not None else []),
        *pain,
        *vitals,
        *adverse_events,
    ]
    return [*resources, provenance(scope, resources, author=_performer_reference(session, scope))]


def _link(resource: dict[str, Any], after: str, key: str, value: Any) -> None:
    """Set resource[key] = value right after the element `after` (R4's element order), so the
    links to the session's Encounter and Condition sit where FHIR puts them."""
    items = list(resource.items())
    resource.clear()
    for name, item in items:
        resource[name] = item
        if name == after:
            resource[key] = value
    if key not in resource:
        resource[key] = value


def vitals_keys(readings: tuple[VitalsReading, ...]) -> list[str]:
    """Stable keys of the readings (ids.item_keys): the reading's time in UTC; readings at the
    same second are numbered in list order."""
    return ids.item_keys(ids.key_time(reading.time) for reading in readings)


def adverse_effect_keys(effects: tuple[AdverseEffect, ...]) -> list[str]:
    """Stable keys of the adverse effects (ids.item_keys): the effect code, with its text for
    `other` (two different `other` effects are two effects); repeats numbered in list order."""
    return ids.item_keys(
        ids.item_key(
            effect.effect,
            ids.key_text(effect.text)
            if effect.effect == "other" and effect.text is not None
            else None,
        )
        for effect in effects
    )


def _performer_reference(session: KetamineSession, scope: RecordScope) -> dict[str, Any] | None:
    """The supervising clinician: a logical Practitioner reference by the source's id."""
    if session.performer_id is None and session.performer_name is None:
        return None
    out: dict[str, Any] = {"type": "Practitioner"}
    if session.performer_id is not None:
        out = scope.logical("Practitioner", PRACTITIONER_ID_SPACE, session.performer_id)
    if session.performer_name is not None:
        out["display"] = session.performer_name
    return out


@dataclass(frozen=True, slots=True)
class _SessionTimes:
    """The session's start and end as FHIR text, formatted once: the Procedure, the
    MedicationAdministration and the body weight all carry them."""

    start: str
    end: str | None

    @classmethod
    def of(cls, session: KetamineSession) -> _SessionTimes:
        end = fhir_datetime(session.end) if session.end is not None else None
        return cls(fhir_datetime(session.start), end)

    def period(self) -> dict[str, str]:
        """A new Period dict."""
        if self.end is None:
            return {"start": self.start}
        return {"start": self.start, "end": self.end}


def _session_text(session: KetamineSession) -> str:
    return f"{PRODUCT_NAMES[session.product]} administration, {session.route}"


# --- Encounter and indication ----------------------------------------------------------------


def _encounter(
    session: KetamineSession,
    scope: RecordScope,
    times: _SessionTimes,
    indication: dict[str, str],
) -> dict[str, Any]:
    """The visit the session happened in: EHRs hang flowsheets (vitals) and the medication
    administration record off encounters."""
    encounter = scope.start("Encounter", "encounter", codes.SESSION_ENCOUNTER_PROFILE)
    encounter["status"] = ENCOUNTER_STATUS[session.status]
    encounter["class"] = codes.ENCOUNTER_CLASS_AMBULATORY.coding()
    encounter["subject"] = scope.patient
    performer = _performer_reference(session, scope)
    if performer is not None:
        encounter["participant"] = [{"individual": performer}]
    encounter["period"] = times.period()
    encounter["reasonReference"] = [dict(indication)]
    if session.location_id is not None:
        location = scope.logical("Location", LOCATION_ID_SPACE, session.location_id)
        encounter["location"] = [{"location": location}]
    return encounter


def _condition(
    session: KetamineSession, scope: RecordScope, visit: dict[str, str]
) -> dict[str, Any]:
    """The indication as a Condition (an encounter diagnosis: why this visit happened), so the
    Procedure's reason is a resource an EHR can show and query."""
    condition = scope.start("Condition", "indication", codes.SESSION_INDICATION_PROFILE)
    condition["clinicalStatus"] = codes.CONDITION_ACTIVE.concept()
    condition["verificationStatus"] = codes.CONDITION_CONFIRMED.concept()
    condition["category"] = [codes.ENCOUNTER_DIAGNOSIS.concept()]
    condition["code"] = _indication_concept(session)
    condition["subject"] = scope.patient
    condition["encounter"] = dict(visit)
    return condition


def _indication_concept(session: KetamineSession) -> dict[str, Any]:
    return codes.INDICATIONS[session.indication].concept(INDICATION_TEXT[session.indication])


# --- Pain before and after -------------------------------------------------------------------


def _pain_scores(
    session: KetamineSession,
    scope: RecordScope,
    times: _SessionTimes,
    procedure: dict[str, Any],
) -> list[dict[str, Any]]:
    """Pain the patient reported before (at the start) and after (at the end, else the start)
    the session, on the 0-10 numeric rating scale, part of the Procedure."""
    out = []
    for role, phase, score, time in (
        ("pain/before", "pre", session.pain_before, times.start),
        ("pain/after", "post", session.pain_after, times.end or times.start),
    ):
        if score is None:
            continue
        phase_concept = codes.SESSION_PHASES[phase].concept()
        observation = scope.start(
            "Observation",
            role,
            codes.SESSION_PAIN_SCORE_PROFILE,
            extensions=[
                extension(codes.SESSION_PHASE_EXTENSION, "valueCodeableConcept", phase_concept)
            ],
        )
        observation["partOf"] = [ref_to(procedure)]
        observation["status"] = "final"
        observation["category"] = [codes.CATEGORY_SURVEY.concept()]
        observation["code"] = codes.PAIN_SEVERITY_0_10.concept()
        observation["subject"] = scope.patient
        observation["effectiveDateTime"] = time
        observation["valueInteger"] = score
        out.append(observation)
    return out


# --- Procedure -------------------------------------------------------------------------------


def _procedure(
    session: KetamineSession, scope: RecordScope, times: _SessionTimes
) -> dict[str, Any]:
    extensions = None
    if session.session_number is not None:
        extensions = [
            extension(codes.SESSION_NUMBER_EXTENSION, "valuePositiveInt", session.session_number)
        ]
    procedure = scope.start(
        "Procedure", "primary", codes.KETAMINE_PROCEDURE_PROFILE, extensions=extensions
    )
    if session.course_id is not None:
        # The sessions of one course are based on the course's plan (a logical CarePlan).
        procedure["basedOn"] = [scope.logical("CarePlan", COURSE_ID_SPACE, session.course_id)]
    procedure["status"] = session.status
    if session.status_reason is not None:
        procedure["statusReason"] = {"text": session.status_reason}
    procedure["code"] = codes.ADMINISTRATION_OF_MEDICINE.concept(_session_text(session))
    procedure["subject"] = scope.patient
    procedure.update(_performed(session, times))
    performer = _performer_reference(session, scope)
    if performer is not None:
        entry: dict[str, Any] = {}
        if session.performer_role is not None:
            entry["function"] = codes.PERFORMER_ROLES[session.performer_role].concept()
        entry["actor"] = performer
        procedure["performer"] = [entry]
    if session.location_id is not None:
        procedure["location"] = scope.logical("Location", LOCATION_ID_SPACE, session.location_id)
    procedure["reasonCode"] = [_indication_concept(session)]
    if session.adverse_effects:
        procedure["complication"] = [_effect_concept(effect) for effect in session.adverse_effects]
    if session.post_care is not None:
        procedure["followUp"] = [{"text": session.post_care}]
    if session.notes is not None:
        procedure["note"] = [{"text": session.notes}]  # plain text (docs/mapping.md)
    return procedure


def _performed(session: KetamineSession, times: _SessionTimes) -> dict[str, Any]:
    """performedPeriod for a session that began; a not-done session keeps its planned start
    as performedDateTime (R4 Procedure has no planned-time element)."""
    if session.status == "not-done" and session.end is None:
        return {"performedDateTime": times.start}
    return {"performedPeriod": times.period()}


def _effect_concept(effect: AdverseEffect) -> dict[str, Any]:
    code = codes.ADVERSE_EFFECTS[effect.effect]
    text = effect.text if effect.text is not None else code.display
    return code.concept(text)


# --- MedicationAdministration ----------------------------------------------------------------


def _administration(
    session: KetamineSession,
    scope: RecordScope,
    times: _SessionTimes,
    procedure: dict[str, Any],
    weight: dict[str, Any] | None,
) -> dict[str, Any]:
    administration = scope.start(
        "MedicationAdministration", "administration", codes.KETAMINE_ADMINISTRATION_PROFILE
    )
    administration["partOf"] = [ref_to(procedure)]
    administration["status"] = ADMINISTRATION_STATUS[session.status]
    administration["medicationCodeableConcept"] = codes.KETAMINE_PRODUCTS[session.product].concept(
        PRODUCT_NAMES[session.product]
    )
    administration["subject"] = scope.patient
    if weight is not None:
        administration["supportingInformation"] = [ref_to(weight)]
    administration["effectivePeriod"] = times.period()
    performer = _performer_reference(session, scope)
    if performer is not None:
        administration["performer"] = [{"actor": performer}]
    administration["dosage"] = _dosage(session)
    return administration


def _dosage(session: KetamineSession) -> dict[str, Any]:
    dosage: dict[str, Any] = {}
    if session.dose_mg_per_kg is not None:
        dosage["extension"] = [
            extension(
                codes.DOSE_PER_WEIGHT_EXTENSION,
                "valueQuantity",
                quantity(session.dose_mg_per_kg, codes.MG_PER_KG),
            )
        ]
    dosage["text"] = _dosage_text(session)
    dosage["route"] = concept_or_text(codes.ROUTES[session.route], ROUTE_TEXT[session.route])
    if session.dose_mg is not None:
        dosage["dose"] = quantity(session.dose_mg, codes.MG)
    if session.rate_mg_per_kg_per_h is not None:
        dosage["rateQuantity"] = quantity(session.rate_mg_per_kg_per_h, codes.MG_PER_KG_PER_H)
    return dosage


def _dosage_text(session: KetamineSession) -> str:
    """A readable summary of the dosing figures (the coded elements carry each one)."""
    parts = [f"{PRODUCT_NAMES[session.product]} {session.route}"]
    if session.dose_mg is not None:
        parts.append(f"{number(session.dose_mg)} mg total")
    if session.dose_mg_per_kg is not None:
        parts.append(f"{number(session.dose_mg_per_kg)} mg/kg")
    if session.rate_mg_per_kg_per_h is not None:
        parts.append(f"at {number(session.rate_mg_per_kg_per_h)} mg/kg/h")
    return ", ".join(parts)


# --- Vital signs -----------------------------------------------------------------------------


def _vital_observation(
    scope: RecordScope,
    procedure: dict[str, Any],
    role: str,
    core_profile: str,
    code: dict[str, Any],
    time: str,
    phase: str | None,
) -> dict[str, Any]:
    extensions = None
    if phase is not None:
        phase_concept = codes.SESSION_PHASES[phase].concept()
        extensions = [
            extension(codes.SESSION_PHASE_EXTENSION, "valueCodeableConcept", phase_concept)
        ]
    observation = scope.start(
        "Observation",
        role,
        core_profile,
        codes.SESSION_VITAL_SIGN_PROFILE,
        extensions=extensions,
    )
    observation["partOf"] = [ref_to(procedure)]
    observation["status"] = "final"
    observation["category"] = [codes.CATEGORY_VITAL_SIGNS.concept()]
    observation["code"] = code
    observation["subject"] = scope.patient
    observation["effectiveDateTime"] = time
    return observation


def _simple_vital(
    scope: RecordScope,
    procedure: dict[str, Any],
    reading: VitalsReading,
    time: str,
    role: str,
    profile: str,
    code: dict[str, Any],
    value: float,
    unit: Unit,
) -> dict[str, Any]:
    observation = _vital_observation(scope, procedure, role, profile, code, time, reading.phase)
    observation["valueQuantity"] = quantity(value, unit)
    return observation


def _vital_signs(
    scope: RecordScope, procedure: dict[str, Any], key: str, reading: VitalsReading
) -> list[dict[str, Any]]:
    """One Observation per measurement in a reading, in a fixed order."""
    prefix = f"vitals/{key}"
    time = fhir_datetime(reading.time)  # once: every measurement of the reading carries it
    out = []
    if reading.heart_rate is not None:
        out.append(
            _simple_vital(
                scope,
                procedure,
                reading,
                time,
                f"{prefix}/heart-rate",
                codes.HEART_RATE_PROFILE,
                codes.HEART_RATE.concept(),
                reading.heart_rate,
                codes.PER_MIN,
            )
        )
    if reading.systolic is not None and reading.diastolic is not None:
        out.append(
            _blood_pressure(
                scope,
                procedure,
                reading,
                time,
                f"{prefix}/blood-pressure",
                (reading.systolic, reading.diastolic),
            )
        )
    if reading.spo2 is not None:
        out.append(
            _simple_vital(
                scope,
                procedure,
                reading,
                time,
                f"{prefix}/oxygen-saturation",
                codes.OXYGEN_SATURATION_PROFILE,
                {
                    "coding": [
                        codes.OXYGEN_SATURATION.coding(),
                        codes.OXYGEN_SATURATION_PULSE_OXIMETRY.coding(),
                    ]
                },
                reading.spo2,
                codes.PERCENT,
            )
        )
    if reading.respiratory_rate is not None:
        out.append(
            _simple_vital(
                scope,
                procedure,
                reading,
                time,
                f"{prefix}/respiratory-rate",
                codes.RESPIRATORY_RATE_PROFILE,
                codes.RESPIRATORY_RATE.concept(),
                reading.respiratory_rate,
                codes.PER_MIN,
            )
        )
    return out


def _blood_pressure(
    scope: RecordScope,
    procedure: dict[str, Any],
    reading: VitalsReading,
    time: str,
    role: str,
    pressures: tuple[float, float],
) -> dict[str, Any]:
    """The BP panel: no top-level value, systolic and diastolic components in mm[Hg]."""
    systolic, diastolic = pressures
    observation = _vital_observation(
        scope,
        procedure,
        role,
        codes.BLOOD_PRESSURE_PROFILE,
        codes.BLOOD_PRESSURE_PANEL.concept(),
        time,
        reading.phase,
    )
    observation["component"] = [
        _bp_component(codes.SYSTOLIC_BP, systolic),
        _bp_component(codes.DIASTOLIC_BP, diastolic),
    ]
    return observation


def _bp_component(code: Code, value: float) -> dict[str, Any]:
    return {"code": code.concept(), "valueQuantity": quantity(value, codes.MM_HG)}


def _body_weight(
    scope: RecordScope, procedure: dict[str, Any], times: _SessionTimes, weight_kg: float
) -> dict[str, Any]:
    """Body weight for weight-based dosing, taken at the session's start."""
    observation = _vital_observation(
        scope,
        procedure,
        "weight",
        codes.BODY_WEIGHT_PROFILE,
        codes.BODY_WEIGHT.concept(),
        times.start,
        None,
    )
    observation["valueQuantity"] = quantity(weight_kg, codes.KG)
    return observation


# --- AdverseEvent ----------------------------------------------------------------------------


def _adverse_event(
    session: KetamineSession,
    scope: RecordScope,
    times: _SessionTimes,
    key: str,
    effect: AdverseEffect,
    suspect: dict[str, Any],
    visit: dict[str, str],
) -> dict[str, Any]:
    event = scope.start(
        "AdverseEvent", f"adverse-effect/{key}", codes.KETAMINE_ADVERSE_EVENT_PROFILE
    )
    # AdverseEvent.identifier is 0..1 in R4 (a single Identifier, not a list).
    event["identifier"] = event["identifier"][0]
    event["actuality"] = "actual"
    event["event"] = _effect_concept(effect)
    event["subject"] = scope.patient
    event["encounter"] = dict(visit)
    # When it occurred: during the session; the record gives no time of its own.
    event["date"] = times.start
    if effect.serious is not None:
        event["seriousness"] = codes.SERIOUSNESS[effect.serious].concept()
    if effect.severity is not None:
        event["severity"] = codes.ADVERSE_EVENT_SEVERITIES[effect.severity].concept()
    if effect.outcome is not None:
        event["outcome"] = codes.ADVERSE_EVENT_OUTCOMES[effect.outcome].concept()
    recorder = _performer_reference(session, scope)
    if recorder is not None:
        event["recorder"] = recorder
    event["suspectEntity"] = [{"instance": ref_to(suspect)}]
    return event
