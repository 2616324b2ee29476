"""Maximal and typical typed records for the converter tests (every field set, lists > 1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

from migrainefhir.convert import ConvertContext
from migrainefhir.input.records import (
    AdverseEffect,
    DiaryEntry,
    KetamineSession,
    MedicationIntake,
    PatientIdentifier,
    PatientRecord,
    Record,
    VitalsReading,
)
from migrainefhir.problems import Source

SOURCE_SYSTEM = "https://clinic.example.org/diary"
CET = timezone(timedelta(hours=1))

CTX = ConvertContext(
    source_system=SOURCE_SYSTEM,
    export_time=datetime(2026, 3, 5, 2, 0, 0, tzinfo=UTC),
    software_version="0.1.0",
)


def attack_entry() -> DiaryEntry:
    return DiaryEntry(
        entry_id="E123",
        patient_id="P1",
        date=date(2026, 3, 1),
        headache=True,
        source=Source("diary.ndjson", line=3),
        onset=datetime(2026, 3, 1, 14, 30, tzinfo=CET),
        end=datetime(2026, 3, 1, 20, 15, tzinfo=CET),
        duration_minutes=345,
        severity=7,
        severity_category="moderate",
        laterality="left",
        aura=True,
        aura_symptoms=("visual-flashing-lights", "speech-difficulty"),
        symptoms=("nausea", "photophobia", "osmophobia"),
        prodrome=True,
        postdrome=False,
        triggers=("stress", "lack-of-sleep", "other"),
        trigger_text="long flight <b>& jet lag</b>",
        medications=(
            MedicationIntake(
                drug="sumatriptan",
                dose_mg=50,
                taken_at=datetime(2026, 3, 1, 15, 0, tzinfo=CET),
                relief="complete",
            ),
            MedicationIntake(drug="ibuprofen", dose_mg=400.5, relief="partial"),
            MedicationIntake(
                drug="other",
                drug_text="Migräne-Kranit 500",
                dose_mg=500,
                taken_at=datetime(2026, 3, 1, 18, 45, tzinfo=CET),
                relief="none",
            ),
        ),
        disability="severe",
        sleep_hours=5.5,
        stress_level=8,
        exercise_minutes=20,
        notes="Worst in *weeks*; <script>alert(1)</script>",
        recorded_at=datetime(2026, 3, 2, 8, 0, 5, tzinfo=UTC),
    )


def headache_free_entry() -> DiaryEntry:
    return DiaryEntry(
        entry_id="E124",
        patient_id="P1",
        date=date(2026, 3, 2),
        headache=False,
        source=Source("diary.ndjson", line=4),
        sleep_hours=8,
        recorded_at=datetime(2026, 3, 2, 21, 0, tzinfo=UTC),
    )


def completed_session() -> KetamineSession:
    return KetamineSession(
        session_id="S1",
        patient_id="P1",
        start=datetime(2026, 3, 3, 9, 0, tzinfo=CET),
        end=datetime(2026, 3, 3, 10, 0, tzinfo=CET),
        route="intravenous",
        source=Source("sessions.csv", row=2),
        status="completed",
        product="ketamine",
        dose_mg=35,
        weight_kg=70,
        dose_mg_per_kg=0.5,
        rate_mg_per_kg_per_h=0.5,
        course_id="C7",
        session_number=3,
        indication="chronic-migraine",
        performer_id="DR42",
        performer_name="Dr. Anna Meier",
        performer_role="anesthesiologist",
        location_id="CLINIC-1",
        vitals=(
            VitalsReading(
                time=datetime(2026, 3, 3, 8, 50, tzinfo=CET),
                phase="pre",
                heart_rate=72,
                systolic=128,
                diastolic=82,
                spo2=98,
                respiratory_rate=14,
            ),
            VitalsReading(
                time=datetime(2026, 3, 3, 9, 30, tzinfo=CET),
                phase="during",
                heart_rate=96,
                systolic=152,
                diastolic=94,
            ),
            VitalsReading(time=datetime(2026, 3, 3, 10, 15, tzinfo=CET), spo2=97.5),
        ),
        adverse_effects=(
            AdverseEffect(
                effect="dissociation",
                severity="moderate",
                text="felt 'floaty' & far",
                serious=False,
                outcome="resolved",
            ),
            AdverseEffect(effect="hypertension", severity="mild"),
            AdverseEffect(effect="other", text="metallic taste"),
        ),
        pain_before=7,
        pain_after=3,
        post_care="No driving for 24 h.\nCall if <b>headache</b> returns.",
        notes="Tolerated well overall.",
        recorded_at=datetime(2026, 3, 3, 11, 0, tzinfo=UTC),
    )


def stopped_session() -> KetamineSession:
    return KetamineSession(
        session_id="S2",
        patient_id="P1",
        start=datetime(2026, 3, 10, 9, 0, tzinfo=UTC),
        end=datetime(2026, 3, 10, 9, 20, tzinfo=UTC),
        route="intranasal",
        source=Source("sessions.ndjson", line=2),
        status="stopped",
        status_reason="Severe nausea",
        product="esketamine",
        dose_mg=28,
        performer_id="RN7",
        performer_role="nurse",
        adverse_effects=(AdverseEffect(effect="nausea", severity="severe"),),
    )


def not_done_session() -> KetamineSession:
    return KetamineSession(
        session_id="S3",
        patient_id="P2",
        start=datetime(2026, 3, 17, 9, 0, tzinfo=UTC),
        route="intramuscular",
        source=Source("sessions.ndjson", line=3),
        status="not-done",
        status_reason="Patient unwell on arrival",
        weight_kg=81.2,
    )


def patient_record() -> PatientRecord:
    return PatientRecord(
        patient_id="P1",
        source=Source("patients.csv", row=2),
        identifiers=(
            PatientIdentifier(
                "urn:oid:1.2.36.146.595.217.0.1", "MRN-0042", type="MR", assigner="City Hospital"
            ),
            PatientIdentifier("https://ehr.example.org/id/patient", "998877"),
        ),
        family="Muster",
        given=("Erika", "Maria"),
        birth_date=date(1984, 7, 14),
        gender="female",
        recorded_at=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
    )


# Every kind of record above, by name (parametrised tests take one of each).
def plain_note_attack_entry() -> DiaryEntry:
    """attack_entry, its note without an HTML tag: a record no check has anything to say about.
    (A note is written verbatim, and a tag in it draws the fhir.markdown-html warning.)"""
    return replace(attack_entry(), notes="Worst in *weeks*")


RECORDS: dict[str, Callable[[], Record]] = {
    "attack": attack_entry,
    "headache-free-day": headache_free_entry,
    "completed-session": completed_session,
    "stopped-session": stopped_session,
    "not-done-session": not_done_session,
    "patient": patient_record,
}
