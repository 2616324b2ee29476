"""Diary entries -> HL7 Symptoms IG Observations, MedicationStatements and a Provenance.

An attack day is a SymptomObservation (code LOINC 75325-1 "Symptom", value Headache) with the
severity, triggers and medications as the IG's components; a headache-free day is a
SymptomAbsentObservation (LOINC 111551-8) for Headache, so these days never vanish from a
headache-day rate. Associated symptoms, aura, prodrome and postdrome are their own Symptom(Absent)
Observations linked from the headache one (the IG's associatedSymptomOrCondition extension), and
each aura feature is one linked from the aura Observation;
sleep, stress and exercise are separate daily Observations. docs/mapping.md says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from migrainefhir import codes, ids
from migrainefhir.codes import Code
from migrainefhir.convert.context import (
    ConvertContext,
    RecordScope,
    concept_or_text,
    extension,
    fhir_date,
    fhir_datetime,
    quantity,
    ref_to,
)
from migrainefhir.convert.provenance import provenance
from migrainefhir.input.records import DIARY_ENTRY, DiaryEntry, MedicationIntake

INTAKE_ROUTE_TEXT = {
    "oral": "Oral route",
    "intranasal": "Nasal route",
    "subcutaneous": "Subcutaneous route",
    "rectal": "Rectal route",
    "intramuscular": "Intramuscular route",
    "intravenous": "Intravenous route",
}
LATERALITY_TEXT = {
    "left": "Left side of head",
    "right": "Right side of head",
    "bilateral": "Both sides of head",
}


def convert_diary_entry(entry: DiaryEntry, ctx: ConvertContext) -> list[dict[str, Any]]:
    """[headache Observation, symptom Observations..., MedicationStatements..., lifestyle
    Observations..., Provenance]."""
    scope = RecordScope(ctx, DIARY_ENTRY, entry.entry_id, entry.patient_id, entry.recorded_at)
    times = _EntryTimes.of(entry)
    related, linked = _related_symptoms(entry, scope, times)
    primary = _headache_observation(entry, scope, times, linked)
    medications = [
        _medication_statement(entry, scope, times, key, intake, primary)
        for key, intake in zip(medication_keys(entry.medications), entry.medications, strict=True)
    ]
    _add_components(entry, primary, medications)
    resources = [primary, *related, *medications, *_lifestyle(entry, scope, times)]
    return [*resources, provenance(scope, resources, author=scope.patient)]


# --- when ------------------------------------------------------------------------------------


# Not frozen: one is made per entry, and a frozen dataclass takes three times as long to make.
@dataclass(slots=True)
class _EntryTimes:
    """The entry's times as FHIR text, formatted once per entry: most of its resources carry
    the attack's or the day's time, and formatting a date-time costs more than a resource's
    dicts. Each effective* call still returns new dicts."""

    day: str  # a date-precision dateTime covers the whole diary day
    attack_start: str | None  # None: headache-free day or no onset, so the attack is the day
    attack_end: str | None

    @classmethod
    def of(cls, entry: DiaryEntry) -> _EntryTimes:
        if not entry.headache or entry.onset is None:
            return cls(fhir_date(entry.date), None, None)
        end = entry.end
        if end is None and entry.duration_minutes is not None:
            end = entry.onset + timedelta(minutes=entry.duration_minutes)
        end_text = fhir_datetime(end) if end is not None else None
        return cls(fhir_date(entry.date), fhir_datetime(entry.onset), end_text)

    def attack_effective(self) -> dict[str, Any]:
        """The attack as effectivePeriod (onset to end, or onset + duration); else the day."""
        if self.attack_start is None:
            return self.day_effective()
        if self.attack_end is None:
            return {"effectivePeriod": {"start": self.attack_start}}
        return {"effectivePeriod": {"start": self.attack_start, "end": self.attack_end}}

    def day_effective(self) -> dict[str, Any]:
        return {"effectiveDateTime": self.day}


# --- Observations ----------------------------------------------------------------------------


def _observation(
    scope: RecordScope,
    role: str,
    profiles: tuple[str, ...],
    category: Code,
    code: Code,
    effective: dict[str, Any],
    extensions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A patient-reported Observation: the patient is subject and performer."""
    observation = {
        **scope.start("Observation", role, *profiles, extensions=extensions),
        "status": "final",
        "category": [category.concept()],
        "code": code.concept(),
        "subject": scope.patient,
        **effective,
    }
    if scope.recorded_text is not None:
        # Symptoms IG: issued = when this version of the symptom information was recorded.
        observation["issued"] = scope.recorded_text
    observation["performer"] = [scope.patient]
    return observation


def _symptom(
    scope: RecordScope,
    role: str,
    present: bool,
    symptom: Code,
    effective: dict[str, Any],
    profile: str,
    extensions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A SymptomObservation (present) or SymptomAbsentObservation (absent) for one symptom."""
    if present:
        ig_profile, code = codes.SYMPTOM_OBSERVATION_PROFILE, codes.SYMPTOM
    else:
        ig_profile, code = codes.SYMPTOM_ABSENT_PROFILE, codes.SYMPTOM_ABSENT
    observation = _observation(
        scope, role, (ig_profile, profile), codes.CATEGORY_SYMPTOM, code, effective, extensions
    )
    # The IG's category slice (SymptomTemporary#symptom) is open: the standard `survey` beside
    # it lets an EHR's `Observation?category=survey` find patient-reported symptoms.
    observation["category"].append(codes.CATEGORY_SURVEY.concept())
    observation["valueCodeableConcept"] = symptom.concept()
    return observation


def _headache_observation(
    entry: DiaryEntry, scope: RecordScope, times: _EntryTimes, linked: list[dict[str, Any]]
) -> dict[str, Any]:
    """The headache (or its absence), linking the related symptom Observations."""
    profile = codes.HEADACHE_ATTACK_PROFILE if entry.headache else codes.HEADACHE_FREE_DAY_PROFILE
    links = [
        extension(codes.SUPPORTING_INFO_EXTENSION, "valueReference", ref_to(observation))
        for observation in linked
    ]
    observation = _symptom(
        scope,
        "primary",
        entry.headache,
        codes.HEADACHE,
        times.attack_effective(),
        profile,
        extensions=links,
    )
    if entry.notes is not None:
        # Plain text: EHRs show Annotation.text as written (docs/mapping.md).
        observation["note"] = [{"text": entry.notes}]
    if entry.laterality is not None:
        observation["bodySite"] = _head_site(entry.laterality)
    return observation


def _head_site(laterality: str) -> dict[str, Any]:
    """The head (a body structure), with the side as its laterality."""
    side = codes.LATERALITY[laterality].concept()
    return {
        "extension": [
            extension(codes.STRUCTURE_LATERALITY_EXTENSION, "valueCodeableConcept", side)
        ],
        **codes.HEAD_STRUCTURE.concept(LATERALITY_TEXT[laterality]),
    }


def _related_symptoms(
    entry: DiaryEntry, scope: RecordScope, times: _EntryTimes
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Associated symptoms (during the attack), then aura, its features, prodrome, postdrome
    (the day): all of them, and those the headache links (all but the aura features, which
    the aura links; when aura is denied but features are listed, the headache links them)."""
    linked = [
        _symptom(
            scope,
            f"symptom/{symptom}",
            True,
            codes.SYMPTOMS[symptom],
            times.attack_effective(),
            codes.ASSOCIATED_SYMPTOM_PROFILE,
        )
        for symptom in dict.fromkeys(entry.symptoms)  # a symptom listed twice is one symptom
    ]
    features: list[dict[str, Any]] = []
    if entry.aura is not None or entry.aura_symptoms:
        # Each aura feature is its own SymptomObservation linked from the aura one: the IG allows
        # one quality component (LOINC 56823-8) per SymptomObservation, and a feature is a
        # symptom in its own right (queryable by its code).
        features = [
            _phase(scope, times, f"aura/{kind}", True, codes.AURA_SYMPTOMS[kind])
            for kind in dict.fromkeys(entry.aura_symptoms)  # listed twice is one feature
        ]
        present = entry.aura is not False
        links = [
            extension(codes.SUPPORTING_INFO_EXTENSION, "valueReference", ref_to(feature))
            for feature in features
        ]
        linked.append(_phase(scope, times, "aura", present, codes.AURA, links if present else None))
        if not present:
            linked.extend(features)
            features = []
    if entry.prodrome is not None:
        linked.append(_phase(scope, times, "prodrome", entry.prodrome, codes.PRODROME))
    if entry.postdrome is not None:
        linked.append(_phase(scope, times, "postdrome", entry.postdrome, codes.POSTDROME))
    return [*linked, *features], linked


def _phase(
    scope: RecordScope,
    times: _EntryTimes,
    role: str,
    present: bool,
    symptom: Code,
    extensions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Aura (and its features), prodrome, postdrome: around rather than within the headache,
    so the diary day."""
    profile = codes.ASSOCIATED_SYMPTOM_PROFILE if present else codes.ABSENT_SYMPTOM_PROFILE
    return _symptom(scope, role, present, symptom, times.day_effective(), profile, extensions)


def _add_components(
    entry: DiaryEntry, observation: dict[str, Any], medications: list[dict[str, Any]]
) -> None:
    """Severity, triggers, medications taken and disability as the IG's components."""
    components: list[dict[str, Any]] = []
    if entry.severity is not None:
        components.append(
            {"code": codes.PAIN_SEVERITY_0_10.concept(), "valueInteger": entry.severity}
        )
    if entry.severity_category is not None:
        components.append(
            {
                "code": codes.SYMPTOM_SEVERITY.concept(),
                "valueCodeableConcept": codes.SEVERITY_CATEGORY[entry.severity_category].concept(
                    entry.severity_category
                ),
            }
        )
    components.extend(_trigger_components(entry))
    for intake, statement in zip(entry.medications, medications, strict=True):
        components.append(
            {
                "extension": [
                    extension(
                        codes.RELATED_MEDICATION_EXTENSION, "valueReference", ref_to(statement)
                    )
                ],
                "code": codes.ALLEVIATING_FACTOR.concept(),
                "valueCodeableConcept": _drug_concept(intake),
            }
        )
    if entry.disability is not None:
        components.append(
            {
                "code": codes.DISABILITY_COMPONENT.concept(),
                "valueCodeableConcept": codes.DISABILITY[entry.disability].concept(),
            }
        )
    if components:
        observation["component"] = components


def _trigger_components(entry: DiaryEntry) -> list[dict[str, Any]]:
    """One exacerbating-factor component per trigger; trigger_text rides on `other` (or, with
    no `other`, on a text-only component of its own)."""
    text_placed = entry.trigger_text is None
    components = []
    for trigger in entry.triggers:
        text = None
        if trigger == "other" and not text_placed:
            text, text_placed = entry.trigger_text, True
        value = codes.TRIGGERS[trigger].concept(text)
        standard = codes.TRIGGER_STANDARD_CODES.get(trigger)
        if standard is not None:  # the standard code first, the project code after it
            value["coding"].insert(0, standard.coding())
        components.append(
            {"code": codes.EXACERBATING_FACTOR.concept(), "valueCodeableConcept": value}
        )
    if not text_placed:
        components.append(
            {
                "code": codes.EXACERBATING_FACTOR.concept(),
                "valueCodeableConcept": {"text": entry.trigger_text},
            }
        )
    return components


def _lifestyle(entry: DiaryEntry, scope: RecordScope, times: _EntryTimes) -> list[dict[str, Any]]:
    """Sleep the night before, stress and exercise: observations of the day, not of the attack."""
    out = []
    profiles = (codes.DIARY_LIFESTYLE_PROFILE,)
    day = times.day_effective()
    if entry.sleep_hours is not None:
        sleep = _observation(
            scope, "sleep", profiles, codes.CATEGORY_ACTIVITY, codes.SLEEP_DURATION, day
        )
        sleep["valueQuantity"] = quantity(entry.sleep_hours, codes.HOUR)
        out.append(sleep)
    if entry.stress_level is not None:
        stress = _observation(
            scope, "stress", profiles, codes.CATEGORY_SURVEY, codes.STRESS_LEVEL, day
        )
        stress["valueInteger"] = entry.stress_level
        out.append(stress)
    if entry.exercise_minutes is not None:
        exercise = _observation(
            scope, "exercise", profiles, codes.CATEGORY_ACTIVITY, codes.EXERCISE_DURATION, day
        )
        exercise["valueQuantity"] = quantity(entry.exercise_minutes, codes.MINUTE)
        out.append(exercise)
    return out


# --- MedicationStatement ---------------------------------------------------------------------


def _drug_concept(intake: MedicationIntake) -> dict[str, Any]:
    """RxNorm ingredient where verified; the text is the patient's wording or the drug name."""
    text = intake.drug_text if intake.drug_text is not None else codes.DRUG_NAMES[intake.drug]
    return concept_or_text(codes.ACUTE_DRUGS[intake.drug], text)


def medication_keys(intakes: tuple[MedicationIntake, ...]) -> list[str]:
    """Stable keys of the intakes (ids.item_keys): the drug (with its own wording for `other`)
    and the time taken; identical intakes are numbered in list order."""
    return ids.item_keys(
        ids.item_key(
            intake.drug,
            ids.key_text(intake.drug_text)
            if intake.drug == "other" and intake.drug_text is not None
            else None,
            ids.key_time(intake.taken_at) if intake.taken_at is not None else None,
        )
        for intake in intakes
    )


def _medication_statement(
    entry: DiaryEntry,
    scope: RecordScope,
    times: _EntryTimes,
    key: str,
    intake: MedicationIntake,
    attack: dict[str, Any],
) -> dict[str, Any]:
    extensions = None
    if intake.relief is not None:
        relief = codes.RELIEF[intake.relief].concept()
        extensions = [extension(codes.RELIEF_EXTENSION, "valueCodeableConcept", relief)]
    statement = scope.start(
        "MedicationStatement",
        f"medication/{key}",
        codes.ACUTE_MEDICATION_PROFILE,
        extensions=extensions,
    )
    statement["status"] = "completed"
    # What the patient says they took (R4 medication-statement-category).
    statement["category"] = codes.PATIENT_SPECIFIED.concept()
    statement["medicationCodeableConcept"] = _drug_concept(intake)
    statement["subject"] = scope.patient
    if intake.taken_at is not None:
        statement["effectiveDateTime"] = fhir_datetime(intake.taken_at)
    else:
        statement.update(times.attack_effective())
    if scope.recorded_text is not None:
        statement["dateAsserted"] = scope.recorded_text
    statement["informationSource"] = scope.patient
    if entry.headache:
        statement["reasonReference"] = [ref_to(attack)]
    dosage: dict[str, Any] = {}
    if intake.route is not None:
        dosage["route"] = concept_or_text(
            codes.INTAKE_ROUTES[intake.route], INTAKE_ROUTE_TEXT[intake.route]
        )
    if intake.dose_mg is not None:
        dosage["doseAndRate"] = [{"doseQuantity": quantity(intake.dose_mg, codes.MG)}]
    if dosage:
        statement["dosage"] = [dosage]
    return statement
