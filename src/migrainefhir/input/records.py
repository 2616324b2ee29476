"""Typed input records: what the converters receive once a record has passed the contract.

These are the shapes of ../shared/spec/records.md after parsing and normalising: date-times
are timezone-aware `datetime`s (a time without offset was either rejected or read in the
run's `--timezone`), dates are `date`s, enumerations are the contract's strings, units are
as the contract gives them (mg, kg, mg/kg/h, /min, mm[Hg], %). Optional fields are None or
an empty tuple when absent. Every record keeps the Source it was read from.

This module holds only the types; parsing lives in model.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from migrainefhir.problems import Source

DIARY_ENTRY = "diary-entry"
KETAMINE_SESSION = "ketamine-session"
PATIENT = "patient"
RECORD_TYPES = (DIARY_ENTRY, KETAMINE_SESSION, PATIENT)


@dataclass(frozen=True, slots=True)
class MedicationIntake:
    drug: str  # ibuprofen, acetaminophen, ..., other
    drug_text: str | None = None
    dose_mg: float | None = None
    taken_at: datetime | None = None
    relief: str | None = None  # none, partial, complete
    route: str | None = None  # oral, intranasal, subcutaneous, rectal, intramuscular, intravenous


@dataclass(frozen=True, slots=True)
class DiaryEntry:
    entry_id: str
    patient_id: str
    date: date
    headache: bool
    source: Source
    onset: datetime | None = None
    end: datetime | None = None
    duration_minutes: int | None = None
    severity: int | None = None
    severity_category: str | None = None
    laterality: str | None = None
    aura: bool | None = None
    aura_symptoms: tuple[str, ...] = ()
    symptoms: tuple[str, ...] = ()
    prodrome: bool | None = None
    postdrome: bool | None = None
    triggers: tuple[str, ...] = ()
    trigger_text: str | None = None
    medications: tuple[MedicationIntake, ...] = ()
    disability: str | None = None
    sleep_hours: float | None = None
    stress_level: int | None = None
    exercise_minutes: int | None = None
    notes: str | None = None
    recorded_at: datetime | None = None

    record_type = DIARY_ENTRY

    @property
    def record_id(self) -> str:
        return self.entry_id


@dataclass(frozen=True, slots=True)
class VitalsReading:
    time: datetime
    phase: str | None = None  # pre, during, post
    heart_rate: float | None = None  # /min
    systolic: float | None = None  # mm[Hg]
    diastolic: float | None = None  # mm[Hg]
    spo2: float | None = None  # %
    respiratory_rate: float | None = None  # /min


@dataclass(frozen=True, slots=True)
class AdverseEffect:
    effect: str  # dissociation, tachycardia, ..., other
    severity: str | None = None  # mild, moderate, severe
    text: str | None = None
    serious: bool | None = None
    outcome: str | None = None  # resolved, recovering, ongoing, resolved-with-sequelae, ...


@dataclass(frozen=True, slots=True)
class KetamineSession:
    session_id: str
    patient_id: str
    start: datetime
    route: str  # intravenous, intranasal, intramuscular
    source: Source
    end: datetime | None = None
    status: str = "completed"  # completed, stopped, not-done
    status_reason: str | None = None
    product: str = "ketamine"  # ketamine, esketamine
    dose_mg: float | None = None
    weight_kg: float | None = None
    dose_mg_per_kg: float | None = None
    rate_mg_per_kg_per_h: float | None = None
    course_id: str | None = None
    session_number: int | None = None
    indication: str = "migraine"
    performer_id: str | None = None
    performer_name: str | None = None
    performer_role: str | None = None
    location_id: str | None = None
    vitals: tuple[VitalsReading, ...] = ()
    adverse_effects: tuple[AdverseEffect, ...] = ()
    pain_before: int | None = None  # 0-10 numeric rating
    pain_after: int | None = None
    post_care: str | None = None
    notes: str | None = None
    recorded_at: datetime | None = None

    record_type = KETAMINE_SESSION

    @property
    def record_id(self) -> str:
        return self.session_id


@dataclass(frozen=True, slots=True)
class PatientIdentifier:
    system: str
    value: str
    type: str | None = None  # MR (HL7 v2 table 0203)
    assigner: str | None = None  # the issuing organisation's name


@dataclass(frozen=True, slots=True)
class PatientRecord:
    patient_id: str
    source: Source
    identifiers: tuple[PatientIdentifier, ...] = ()
    family: str | None = None
    given: tuple[str, ...] = ()
    birth_date: date | None = None
    gender: str | None = None  # male, female, other, unknown
    recorded_at: datetime | None = None

    record_type = PATIENT

    @property
    def record_id(self) -> str:
        return self.patient_id


Record = DiaryEntry | KetamineSession | PatientRecord
