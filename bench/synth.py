"""Seeded synthetic migraine-diary, ketamine-session and patient records.

Makes realistic input records (../shared/spec/records.md) for examples, tests and benchmarks:
one diary entry per patient per day (headache-free days included), attacks with plausible
times, pain, symptoms, triggers and acute medication, and for some patients a ketamine course
with vitals and adverse effects. All names are clearly fictional.

Deterministic: the same options give the same bytes (stdlib `random.Random` seeded per patient,
never the clock). Streaming: records are written as they are made, one patient at a time, so a
million diary entries never sit in memory.

    python bench/synth.py --patients 3 --days 182 --ketamine-patients 1 --seed 7 \
        --format ndjson --out DIR
    python bench/synth.py --diary-entries 1000000 --seed 1 --format ndjson --out DIR

Only the standard library is used, so this runs without the package installed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO
from zoneinfo import ZoneInfo

Record = dict[str, Any]

DIARY_ENTRY = "diary-entry"
KETAMINE_SESSION = "ketamine-session"
PATIENT = "patient"
RECORD_TYPES = (DIARY_ENTRY, KETAMINE_SESSION, PATIENT)

# One file stem per record type, the same in every format.
FILE_STEMS = {
    DIARY_ENTRY: "diary-entries",
    KETAMINE_SESSION: "ketamine-sessions",
    PATIENT: "patients",
}
FORMATS = ("ndjson", "json", "csv")

DEFAULT_START = date(2025, 10, 1)  # 182 days from here cross both DST changes of the winter
DEFAULT_DAYS = 182
MRN_SYSTEM = "https://ehr.example.org/fhir/sid/mrn"
MRN_ASSIGNER = "Example University Hospital"
DIARY_APP_SYSTEM = "https://diary.example.com/fhir/sid/user-id"

# The contract's field order per record type: the JSON key order and the CSV columns.
DIARY_FIELDS = (
    "record_type",
    "entry_id",
    "patient_id",
    "date",
    "headache",
    "onset",
    "end",
    "duration_minutes",
    "severity",
    "severity_category",
    "laterality",
    "aura",
    "aura_symptoms",
    "symptoms",
    "prodrome",
    "postdrome",
    "triggers",
    "trigger_text",
    "medications",
    "disability",
    "sleep_hours",
    "stress_level",
    "exercise_minutes",
    "notes",
    "recorded_at",
)
SESSION_FIELDS = (
    "record_type",
    "session_id",
    "patient_id",
    "start",
    "end",
    "status",
    "status_reason",
    "route",
    "product",
    "dose_mg",
    "weight_kg",
    "dose_mg_per_kg",
    "rate_mg_per_kg_per_h",
    "course_id",
    "session_number",
    "indication",
    "performer_id",
    "performer_name",
    "performer_role",
    "location_id",
    "vitals",
    "adverse_effects",
    "pain_before",
    "pain_after",
    "post_care",
    "notes",
    "recorded_at",
)
PATIENT_FIELDS = (
    "record_type",
    "patient_id",
    "identifiers",
    "family",
    "given",
    "birth_date",
    "gender",
    "recorded_at",
)
FIELDS = {DIARY_ENTRY: DIARY_FIELDS, KETAMINE_SESSION: SESSION_FIELDS, PATIENT: PATIENT_FIELDS}

# Contract enumerations, in contract order (lists are written in this order).
AURA_SYMPTOMS = (
    "visual-flashing-lights",
    "visual-blind-spot",
    "visual-other",
    "tingling-face",
    "tingling-hands",
    "numbness",
    "speech-difficulty",
)
SYMPTOMS = (
    "nausea",
    "vomiting",
    "photophobia",
    "phonophobia",
    "osmophobia",
    "dizziness",
    "neck-pain",
    "fatigue",
)
TRIGGERS = (
    "stress",
    "hormonal-change",
    "menstruation",
    "caffeine",
    "alcohol",
    "aged-cheese",
    "other-food",
    "physical-exertion",
    "bright-light",
    "strong-smell",
    "lack-of-sleep",
    "skipped-meal",
    "weather-change",
    "other",
)
# Triggers a patient may be prone to; each patient has three of them.
COMMON_TRIGGERS = (
    "stress",
    "lack-of-sleep",
    "weather-change",
    "alcohol",
    "skipped-meal",
    "bright-light",
    "caffeine",
    "strong-smell",
    "physical-exertion",
    "aged-cheese",
)
# Chance of each symptom during an attack (migraine cohorts: photophobia and nausea dominate).
SYMPTOM_RATES = {
    "nausea": 0.6,
    "photophobia": 0.75,
    "phonophobia": 0.6,
    "osmophobia": 0.3,
    "dizziness": 0.2,
    "neck-pain": 0.35,
    "fatigue": 0.4,
}
# Aura: visual in most attacks with aura; sensory and speech symptoms less often.
AURA_SYMPTOM_RATES = {
    "visual-flashing-lights": 0.7,
    "visual-blind-spot": 0.45,
    "visual-other": 0.15,
    "tingling-face": 0.15,
    "tingling-hands": 0.25,
    "numbness": 0.1,
    "speech-difficulty": 0.05,
}

# Acute drugs with real tablet strengths (mg) and how well they tend to work.
TRIPTANS = {
    "sumatriptan": (50, 100),
    "rizatriptan": (10,),
    "zolmitriptan": (2.5, 5),
    "eletriptan": (40,),
}
ANALGESICS = {
    "ibuprofen": (400, 600),
    "acetaminophen": (1000,),
    "naproxen": (500,),
    "aspirin": (1000,),
}
# Brand or product names a diary app may store next to the generic drug (JSON/NDJSON only).
DRUG_PRODUCT_TEXT = {
    "sumatriptan": "Imigran",
    "rizatriptan": "Maxalt Lingua",
    "zolmitriptan": "AscoTop",
    "eletriptan": "Relpax",
    "ibuprofen": "Nurofen",
    "acetaminophen": "Panadol",
    "naproxen": "Aleve",
    "aspirin": "Aspirin Effect",
}

TIME_ZONES = ("Europe/Berlin", "America/New_York", "Europe/London")

FAMILY_NAMES = (
    "Mustermann",
    "Example",
    "Placeholder",
    "Testperson",
    "Sample",
    "Fictitious",
    "Musterfrau",
    "Synthetic",
    "Normalverbraucher",
    "Doe",
)
GIVEN_FEMALE = ("Erika", "Jane", "Ada", "Synthia", "Zoë", "Testa", "Mira", "Probanda")
GIVEN_MALE = ("Max", "John", "Otto", "Testo", "Sam", "Proband")

OTHER_TRIGGER_TEXTS = (
    "long-haul flight",
    "loud concert",
    "sauna, probably dehydrated",
    "hours of screen work without a break",
    "cold wind on the way home",
    "perfume in the office",
)
HEADACHE_NOTES = (
    "Woke up with it.",
    "Started during the commute.",
    "Dark, quiet room helped.",
    "Had to leave work early.",
    "Cold pack on the neck, slept two hours.",
    "Could not look at the screen.",
    "Cancelled plans for the evening.",
    "Better after a nap; still foggy.",
)
FREE_DAY_NOTES = (
    "Good day.",
    "Long walk, felt fine.",
    "Busy day at work, no headache.",
    "Slight neck stiffness, no headache.",
    "Slept badly but no attack.",
)

# Ketamine therapy: staff and places (fictional).
IV_PERFORMERS = (
    ("prac-anes-01", "Dr. Erika Beispiel", "anesthesiologist"),
    ("prac-anes-02", "Dr. Max Platzhalter", "anesthesiologist"),
    ("prac-phys-03", "Dr. Jane Example", "physician"),
)
NASAL_PERFORMERS = (
    ("prac-nurse-11", "Sam Sample, RN", "nurse"),
    ("prac-phys-03", "Dr. Jane Example", "physician"),
)
LOCATIONS = ("loc-infusion-clinic-1", "loc-headache-centre-2")
IV_POST_CARE = (
    "Rest for the rest of the day. Do not drive, cycle or operate machinery for 24 hours; "
    "an adult accompanies you home. Call the clinic for persistent confusion, chest pain "
    "or a severe headache."
)
NASAL_POST_CARE = (
    "Do not drive until the next day after a full night's sleep. Someone should take you "
    "home. Report lasting dissociation or raised blood pressure to the clinic."
)
IV_SESSION_NOTES = (
    "Pain 6/10 before the infusion, 3/10 afterwards.",
    "Tolerated well; eyes closed with music during the infusion.",
    "Patient anxious before the start; reassured.",
    "Pain 7/10 at arrival, 4/10 at discharge.",
)
# mg/kg per session of an intravenous course: a cautious start, then titrated up.
IV_DOSE_STEPS = (0.5, 0.5, 0.6, 0.7, 0.75, 0.8, 0.8, 0.8, 0.8, 0.8)


@dataclass(frozen=True, slots=True)
class Options:
    """What to generate. `patient_days`, when set, gives each patient's number of diary days."""

    patients: int = 3
    days: int = DEFAULT_DAYS
    ketamine_patients: int = 1
    seed: int = 7
    start: date = DEFAULT_START
    patient_days: tuple[int, ...] | None = None

    def days_of(self, index: int) -> int:
        if self.patient_days is not None:
            return self.patient_days[index]
        return self.days


def options_for_diary_entries(
    entries: int,
    days: int = DEFAULT_DAYS,
    seed: int = 7,
    ketamine_patients: int | None = None,
    start: date = DEFAULT_START,
) -> Options:
    """Options for exactly `entries` diary entries: `days` per patient, the last one fewer.

    Without an explicit count, one patient in ten has a ketamine course.
    """
    if entries < 1 or days < 1:
        raise ValueError("entries and days must be at least 1")
    patients = math.ceil(entries / days)
    last = entries - (patients - 1) * days
    per_patient = (days,) * (patients - 1) + (last,)
    ketamine = patients // 10 if ketamine_patients is None else ketamine_patients
    return Options(patients, days, ketamine, seed, start, per_patient)


# ---------------------------------------------------------------------------------------------
# Patients


@dataclass(frozen=True, slots=True)
class Profile:
    """The fixed traits of one synthetic patient that shape all of their records."""

    index: int
    patient_id: str
    zone: tzinfo
    gender: str
    family: str
    given: tuple[str, ...]
    birth_date: date
    chronic: bool
    with_aura: bool
    monthly_attack_days: float
    triptan: str
    triptan_dose: float
    analgesic: str
    analgesic_dose: float
    usual_triggers: tuple[str, ...]
    weight_kg: float
    cycle_length: int
    cycle_offset: int
    diligence: float  # how often the optional daily fields are filled in
    ketamine_route: str | None  # intravenous, intranasal, or None without a course


def patient_rng(seed: int, index: int, purpose: str) -> random.Random:
    """An independent stream per patient and purpose (str seeds hash stably with SHA-512)."""
    return random.Random(f"migrainefhir-synth:{seed}:{index}:{purpose}")


def make_profile(options: Options, index: int) -> Profile:
    rng = patient_rng(options.seed, index, "profile")
    has_ketamine = index < options.ketamine_patients
    # The first three patients are fixed types so a small example shows the whole range:
    # a chronic patient, an episodic patient with aura, an episodic man without aura.
    # Later patients are drawn at random; those with a ketamine course are chronic.
    if index == 0:
        chronic, with_aura, gender = True, False, "female"
    elif index == 1:
        chronic, with_aura, gender = False, True, "female"
    elif index == 2:
        chronic, with_aura, gender = False, False, "male"
    elif has_ketamine:
        chronic, with_aura, gender = True, rng.random() < 0.3, "female"
    else:
        chronic = rng.random() < 0.15
        with_aura = rng.random() < 0.3
        gender = "female" if rng.random() < 0.72 else "male"
        if rng.random() < 0.01:
            gender = "other"
    monthly = rng.uniform(16, 21) if chronic else rng.uniform(4, 10)
    given_pool = GIVEN_MALE if gender == "male" else GIVEN_FEMALE
    given: tuple[str, ...] = (rng.choice(given_pool),)
    if rng.random() < 0.3:
        second = rng.choice(given_pool)
        if second != given[0]:
            given = (given[0], second)
    age_days = rng.randint(19 * 365, 64 * 365)
    triptan = rng.choice(sorted(TRIPTANS))
    analgesic = rng.choice(sorted(ANALGESICS))
    usual = tuple(sorted(rng.sample(COMMON_TRIGGERS, k=3), key=TRIGGERS.index))
    weight = rng.uniform(54, 82) if gender == "female" else rng.uniform(66, 98)
    route = None
    if has_ketamine:
        # Alternate the two routes across the ketamine patients: IV ketamine first.
        route = "intravenous" if index % 2 == 0 else "intranasal"
    return Profile(
        index=index,
        patient_id=f"pt-{index + 1:06d}",
        zone=ZoneInfo(TIME_ZONES[index % len(TIME_ZONES)]),
        gender=gender,
        family=rng.choice(FAMILY_NAMES),
        given=given,
        birth_date=options.start - timedelta(days=age_days),
        chronic=chronic,
        with_aura=with_aura,
        monthly_attack_days=monthly,
        triptan=triptan,
        triptan_dose=rng.choice(TRIPTANS[triptan]),
        analgesic=analgesic,
        analgesic_dose=rng.choice(ANALGESICS[analgesic]),
        usual_triggers=usual,
        weight_kg=round(weight, 1),
        cycle_length=rng.randint(26, 32),
        cycle_offset=rng.randint(0, 31),
        diligence=rng.uniform(0.6, 0.98),
        ketamine_route=route,
    )


def patient_record(profile: Profile, options: Options) -> Record:
    rng = patient_rng(options.seed, profile.index, "patient")
    mrn = f"MRN{rng.randint(10**7, 10**8 - 1)}"
    identifiers: list[Record] = [
        {"system": MRN_SYSTEM, "value": mrn, "type": "MR", "assigner": MRN_ASSIGNER}
    ]
    if rng.random() < 0.5:
        identifiers.append({"system": DIARY_APP_SYSTEM, "value": f"u{rng.getrandbits(48):012x}"})
    registered = local_datetime(
        options.start - timedelta(days=rng.randint(3, 40)), rng.randint(9 * 60, 17 * 60), profile
    )
    record: Record = {
        "record_type": PATIENT,
        "patient_id": profile.patient_id,
        "identifiers": identifiers,
        "family": profile.family,
        "given": list(profile.given),
        "birth_date": profile.birth_date.isoformat(),
        "gender": profile.gender,
        "recorded_at": stamp(registered),
    }
    return record


# ---------------------------------------------------------------------------------------------
# Times


def local_datetime(day: date, minute_of_day: int, profile: Profile) -> datetime:
    """A wall-clock time in the patient's zone, as a real instant.

    A time in a DST gap (02:30 on the spring-forward night) becomes the instant it names with
    the offset before the change, then is normalised to the real offset (03:30+02:00).
    """
    naive = datetime.combine(day, time()) + timedelta(minutes=minute_of_day)
    return naive.replace(tzinfo=profile.zone).astimezone(UTC).astimezone(profile.zone)


def stamp(moment: datetime) -> str:
    """RFC 3339 with the zone's real offset (+01:00, -05:00, +00:00)."""
    return moment.isoformat(timespec="seconds")


def plus(moment: datetime, minutes: float, profile: Profile) -> datetime:
    """`minutes` of elapsed time later, on the patient's wall clock (DST-aware)."""
    return (moment.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(profile.zone)


# ---------------------------------------------------------------------------------------------
# Ketamine course


@dataclass(frozen=True, slots=True)
class PlannedSession:
    number: int
    day: date
    minute_of_day: int
    status: str  # completed, stopped, not-done


def plan_course(profile: Profile, options: Options) -> list[PlannedSession]:
    """Weekly-ish sessions on weekdays; exactly one stopped early, sometimes one not done."""
    if profile.ketamine_route is None:
        return []
    rng = patient_rng(options.seed, profile.index, "course")
    days = options.days_of(profile.index)
    count = rng.randint(6, 8)
    first = min(rng.randint(28, 45), max(1, days // 4))
    stopped = rng.randint(2, count - 1)
    # Sometimes one planned session never begins; it comes on top of the sessions given.
    not_done = rng.randint(2, count) if profile.index == 0 or rng.random() < 0.5 else 0
    if not_done:
        count += 1
        stopped += 1 if stopped >= not_done else 0
    sessions: list[PlannedSession] = []
    day = options.start + timedelta(days=first)
    for number in range(1, count + 1):
        while not clinic_open(day):
            day += timedelta(days=1)
        status = (
            "stopped" if number == stopped else "not-done" if number == not_done else "completed"
        )
        slot = rng.choice(range(8 * 60 + 30, 13 * 60 + 31, 15))
        sessions.append(PlannedSession(number, day, slot, status))
        day += timedelta(days=rng.choice((6, 7, 7, 7, 8)))
    return sessions


def clinic_open(day: date) -> bool:
    """Weekdays, except the days between Christmas Eve and New Year's Day."""
    holidays = (day.month == 12 and day.day >= 24) or (day.month == 1 and day.day == 1)
    return day.weekday() < 5 and not holidays


def indication(profile: Profile) -> str:
    if profile.chronic:
        return "chronic-migraine"
    return "migraine-with-aura" if profile.with_aura else "migraine-without-aura"


def session_records(profile: Profile, options: Options) -> Iterator[Record]:
    plan = plan_course(profile, options)
    rng = patient_rng(options.seed, profile.index, "sessions")
    course_id = f"{profile.patient_id}-course-1"
    performer = rng.choice(
        IV_PERFORMERS if profile.ketamine_route == "intravenous" else NASAL_PERFORMERS
    )
    location = rng.choice(LOCATIONS)
    rise_session = rng.randint(1, len(plan)) if plan else 0
    for planned in plan:
        if profile.ketamine_route == "intravenous":
            record = iv_session(profile, planned, rng, rise_session == planned.number)
        else:
            record = nasal_session(profile, planned, rng, rise_session == planned.number)
        record["course_id"] = course_id
        record["session_number"] = planned.number
        record["indication"] = indication(profile)
        record["performer_id"], record["performer_name"], record["performer_role"] = performer
        record["location_id"] = location
        yield ordered(record, SESSION_FIELDS)


def iv_session(
    profile: Profile, planned: PlannedSession, rng: random.Random, transient_rise: bool
) -> Record:
    """An intravenous ketamine infusion over 40-60 minutes at a titrated mg/kg dose."""
    start = local_datetime(planned.day, planned.minute_of_day, profile)
    weight = round(profile.weight_kg + rng.uniform(-0.8, 0.8), 1)
    per_kg = IV_DOSE_STEPS[min(planned.number, len(IV_DOSE_STEPS)) - 1]
    minutes = 40 if planned.number == 1 else rng.choice((40, 45, 50, 60))
    rate = round(per_kg / (minutes / 60), 2)
    record: Record = {
        "record_type": KETAMINE_SESSION,
        "session_id": f"{profile.patient_id}-ket-{planned.number:02d}",
        "patient_id": profile.patient_id,
        "start": stamp(start),
        "route": "intravenous",
        "product": "ketamine",
        "weight_kg": weight,
    }
    if planned.status == "not-done":
        record["status"] = "not-done"
        record["status_reason"] = rng.choice(
            (
                "Not started: patient reported a febrile illness on the morning of the session.",
                "Not started: blood pressure 168/102 at arrival on two readings.",
                "Not started: patient cancelled (no escort home available).",
            )
        )
        record["recorded_at"] = stamp(plus(start, rng.randint(20, 90), profile))
        return record
    if planned.status == "stopped":
        given_minutes = rng.randint(14, 25)
        end = plus(start, given_minutes, profile)
        record["end"] = stamp(end)
        record["status"] = "stopped"
        record["status_reason"] = (
            "Infusion stopped early: marked dissociation with a rise in blood pressure."
        )
        # The dose actually given: the planned rate for the minutes it ran.
        record["dose_mg"] = round(weight * rate * given_minutes / 60, 1)
        record["rate_mg_per_kg_per_h"] = rate
        record["vitals"] = iv_vitals(start, end, profile, rng, stopped=True, transient_rise=False)
        record["adverse_effects"] = [
            {
                "effect": "dissociation",
                "severity": "severe",
                "text": "Distressing detachment; eased within 30 minutes of stopping.",
                "serious": False,
                "outcome": "resolved",
            },
            {"effect": "hypertension", "severity": "moderate"},
            {"effect": "tachycardia", "severity": "mild"},
        ]
    else:
        end = plus(start, minutes, profile)
        record["end"] = stamp(end)
        record["status"] = "completed"
        record["dose_mg"] = round(weight * per_kg)
        record["dose_mg_per_kg"] = per_kg
        record["rate_mg_per_kg_per_h"] = rate
        record["vitals"] = iv_vitals(start, end, profile, rng, False, transient_rise)
        effects = iv_adverse_effects(rng, transient_rise)
        if effects:
            record["adverse_effects"] = effects
    # Pain on the 0-10 scale before and after (deterministic: no draw from rng).
    record["pain_before"] = 5 + planned.number % 4
    record["pain_after"] = max(0, record["pain_before"] - (1 if planned.status == "stopped" else 3))
    record["post_care"] = IV_POST_CARE
    if rng.random() < 0.5:
        record["notes"] = rng.choice(IV_SESSION_NOTES)
    record["recorded_at"] = stamp(plus(end, rng.randint(25, 75), profile))
    return record


def iv_adverse_effects(rng: random.Random, transient_rise: bool) -> list[Record]:
    effects: list[Record] = []
    if rng.random() < 0.55:
        effects.append(
            {"effect": "dissociation", "severity": rng.choice(("mild", "mild", "moderate"))}
        )
    if rng.random() < 0.3:
        effects.append({"effect": "drowsiness", "severity": "mild"})
    if rng.random() < 0.15:
        effects.append({"effect": "nausea", "severity": "mild"})
    if rng.random() < 0.12:
        effects.append({"effect": "dizziness", "severity": "mild"})
    if transient_rise:
        effects.append({"effect": "hypertension", "severity": "mild"})
    if rng.random() < 0.05:
        effects.append({"effect": "other", "severity": "mild", "text": "Blurred vision"})
    return effects


VITALS_PARTS = ("heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate")
Vitals = tuple[int, int, int, int, int]  # heart rate, systolic, diastolic, SpO2, resp. rate


def vitals_reading(moment: datetime, phase: str, values: Vitals) -> Record:
    return {"time": stamp(moment), "phase": phase, **dict(zip(VITALS_PARTS, values, strict=True))}


def iv_vitals(
    start: datetime,
    end: datetime,
    profile: Profile,
    rng: random.Random,
    stopped: bool,
    transient_rise: bool,
) -> list[Record]:
    """Baseline before, every 15 minutes during, twice after; ketamine raises BP and pulse a bit."""
    hr0, sys0, dia0 = rng.randint(62, 82), rng.randint(112, 132), rng.randint(68, 84)
    baseline = (hr0, sys0, dia0, rng.randint(97, 99), rng.randint(12, 16))
    readings = [vitals_reading(plus(start, -15, profile), "pre", baseline)]
    length = (end - start).total_seconds() / 60
    minute = 15
    while minute < length:
        hr, sy, di = hr0 + rng.randint(3, 14), sys0 + rng.randint(6, 18), dia0 + rng.randint(3, 10)
        if transient_rise and minute == 30:  # a brief rise that settles without treatment
            sy, di, hr = max(sy, rng.randint(156, 166)), max(di, rng.randint(92, 98)), hr + 8
        during = (hr, sy, di, rng.randint(95, 99), rng.randint(12, 18))
        readings.append(vitals_reading(plus(start, minute, profile), "during", during))
        minute += 15
    if stopped:  # the reading that made the team stop
        alarm = (hr0 + rng.randint(28, 36), rng.randint(164, 172), rng.randint(96, 104), 96, 20)
        readings.append(vitals_reading(plus(end, -1, profile), "during", alarm))
    for after in (30, 60):
        settled = (
            hr0 + rng.randint(-3, 6),
            sys0 + rng.randint(-4, 8),
            dia0 + rng.randint(-3, 5),
            rng.randint(97, 99),
            rng.randint(12, 16),
        )
        readings.append(vitals_reading(plus(end, after, profile), "post", settled))
    return readings


def nasal_session(
    profile: Profile, planned: PlannedSession, rng: random.Random, transient_rise: bool
) -> Record:
    """Intranasal esketamine (28 mg devices): 56 mg, then 84 mg, with 2 h observation."""
    start = local_datetime(planned.day, planned.minute_of_day, profile)
    record: Record = {
        "record_type": KETAMINE_SESSION,
        "session_id": f"{profile.patient_id}-ket-{planned.number:02d}",
        "patient_id": profile.patient_id,
        "start": stamp(start),
        "route": "intranasal",
        "product": "esketamine",
    }
    if planned.status == "not-done":
        record["status"] = "not-done"
        record["status_reason"] = "Not started: nasal congestion from a cold on the day."
        record["recorded_at"] = stamp(plus(start, rng.randint(20, 90), profile))
        return record
    dose = 56 if planned.number <= 2 else 84
    if planned.status == "stopped":
        # One device (28 mg) given, the rest withheld.
        end = plus(start, rng.randint(30, 45), profile)
        record["status"] = "stopped"
        record["status_reason"] = "Remaining doses withheld: dissociation and blood pressure rise."
        record["dose_mg"] = 28
        effects: list[Record] = [
            {"effect": "dissociation", "severity": "severe"},
            {"effect": "hypertension", "severity": "moderate"},
        ]
    else:
        end = plus(start, rng.choice((120, 125, 130)), profile)
        record["status"] = "completed"
        record["dose_mg"] = dose
        effects = []
        if rng.random() < 0.6:
            effects.append({"effect": "dissociation", "severity": rng.choice(("mild", "moderate"))})
        if rng.random() < 0.25:
            effects.append({"effect": "dizziness", "severity": "mild"})
        if rng.random() < 0.2:
            effects.append({"effect": "drowsiness", "severity": "mild"})
        if transient_rise:
            effects.append({"effect": "hypertension", "severity": "mild"})
    record["end"] = stamp(end)
    record["weight_kg"] = round(profile.weight_kg + rng.uniform(-0.8, 0.8), 1)
    hr0, sys0, dia0 = rng.randint(60, 80), rng.randint(110, 130), rng.randint(66, 82)
    peak_sys = sys0 + rng.randint(8, 20) if not transient_rise else rng.randint(156, 164)
    stopped = planned.status == "stopped"
    if stopped:
        peak = (hr0 + 30, rng.randint(166, 172), dia0 + 22, 97, 18)
    else:
        peak = (hr0 + rng.randint(2, 10), peak_sys, dia0 + rng.randint(4, 12), 98, 16)
    settled = (hr0 + rng.randint(-2, 5), sys0 + rng.randint(0, 8), dia0 + rng.randint(0, 5), 98, 14)
    record["vitals"] = [
        vitals_reading(plus(start, -10, profile), "pre", (hr0, sys0, dia0, 98, 14)),
        vitals_reading(plus(start, 25 if stopped else 40, profile), "during", peak),
        vitals_reading(plus(end, 5, profile), "post", settled),
    ]
    if effects:
        record["adverse_effects"] = effects
    record["post_care"] = NASAL_POST_CARE
    record["recorded_at"] = stamp(plus(end, rng.randint(15, 60), profile))
    return record


def course_effect(plan: Sequence[PlannedSession], day: date) -> float:
    """How much a ketamine course lowers the attack rate: gradually over the course, then kept."""
    given = [s for s in plan if s.status != "not-done" and s.day <= day]
    return 1.0 - 0.05 * min(len(given), 6)


# ---------------------------------------------------------------------------------------------
# Diary


def diary_records(profile: Profile, options: Options) -> Iterator[Record]:
    """One entry per day; an attack that runs past midnight blocks a new one until it ends."""
    rng = patient_rng(options.seed, profile.index, "diary")
    plan = plan_course(profile, options)
    busy_until: datetime | None = None
    for offset in range(options.days_of(profile.index)):
        day = options.start + timedelta(days=offset)
        entry, attack_end = diary_entry(profile, day, rng, busy_until, course_effect(plan, day))
        if attack_end is not None:
            busy_until = attack_end
        yield entry


def attack_probability(profile: Profile, day: date, course_factor: float) -> float:
    p = profile.monthly_attack_days / 30.4 * 1.08  # a little extra: overlapping days are lost
    if menstrual_window(profile, day):
        p *= 1.8
    return min(0.9, p * course_factor)


def menstrual_window(profile: Profile, day: date) -> bool:
    if profile.gender != "female" or (day - profile.birth_date).days > 50 * 365:
        return False  # past the menopause
    position = (day.toordinal() + profile.cycle_offset) % profile.cycle_length
    return position <= 2 or position >= profile.cycle_length - 2


def diary_entry(
    profile: Profile,
    day: date,
    rng: random.Random,
    busy_until: datetime | None,
    course_factor: float,
) -> tuple[Record, datetime | None]:
    entry: Record = {
        "record_type": DIARY_ENTRY,
        "entry_id": f"{profile.patient_id}-{day:%Y%m%d}",
        "patient_id": profile.patient_id,
        "date": day.isoformat(),
    }
    sleep = daily_sleep(profile, rng)
    stress = rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5, 6, 7, 8, 9))
    onset = None
    if rng.random() < attack_probability(profile, day, course_factor):
        onset = local_datetime(day, onset_minute(rng), profile)
        if busy_until is not None and onset < plus(busy_until, 60, profile):
            onset = None  # still in (or just after) yesterday's attack
    attack_end = None
    if onset is None:
        entry["headache"] = False
        last_moment = local_datetime(day, 20 * 60, profile)
    else:
        entry["headache"] = True
        attack_end = add_attack(entry, profile, onset, rng, sleep, stress, day)
        last_moment = attack_end or plus(onset, 180, profile)
    add_daily_fields(entry, profile, rng, sleep, stress)
    entry["recorded_at"] = stamp(recorded_at(profile, day, last_moment, rng))
    return ordered(entry, DIARY_FIELDS), attack_end


def daily_sleep(profile: Profile, rng: random.Random) -> float:
    hours = rng.gauss(6.9, 1.1) if not profile.chronic else rng.gauss(6.4, 1.3)
    return min(11.0, max(2.5, round(hours * 4) / 4))


def onset_minute(rng: random.Random) -> int:
    """Attacks start most often in the early morning, fewer in the afternoon and evening."""
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    return hour * 60 + rng.choice(range(0, 60, 5))


HOUR_WEIGHTS = (1, 1, 1, 2, 3, 6, 8, 8, 7, 6, 5, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 2, 2, 1)


def severity_category(severity: int) -> str:
    """The 11-point NRS grouped into the IHS 4-point verbal scale."""
    if severity == 0:
        return "none"
    if severity <= 3:
        return "mild"
    if severity <= 6:
        return "moderate"
    return "severe"


def add_attack(
    entry: Record,
    profile: Profile,
    onset: datetime,
    rng: random.Random,
    sleep: float,
    stress: int,
    day: date,
) -> datetime | None:
    """Fill in one attack; returns when it ended, or None when the diary does not say."""
    severity = rng.choices(range(1, 11), weights=(2, 4, 6, 9, 10, 10, 9, 7, 4, 2))[0]
    if profile.chronic:
        severity = max(1, min(10, severity + rng.choice((-1, 0, 0, 1))))
    medications = medication_intakes(profile, onset, severity, rng)
    duration = untreated_duration(rng, profile)
    relief = [intake["relief"] for _, intake in medications if "relief" in intake]
    last_dose = max((after for after, _ in medications), default=0)
    if "complete" in relief:
        duration = min(duration, last_dose + rng.randint(45, 150))
    elif "partial" in relief:
        duration = int(duration * rng.uniform(0.6, 0.9))
    duration = max(duration, last_dose + 20, 30)  # the attack outlasts the last dose
    end = plus(onset, duration, profile)

    entry["onset"] = stamp(onset)
    form = rng.random()
    if form < 0.65:
        entry["end"] = stamp(end)
    elif form < 0.85:
        entry["duration_minutes"] = duration
    elif form < 0.95:
        entry["end"] = stamp(end)
        entry["duration_minutes"] = duration
    # else: neither (the patient did not note when it stopped)

    scale = rng.random()
    if scale < 0.6:
        entry["severity"] = severity
        entry["severity_category"] = severity_category(severity)
    elif scale < 0.85:
        entry["severity"] = severity
    else:
        entry["severity_category"] = severity_category(severity)

    if rng.random() < 0.85:
        entry["laterality"] = rng.choices(("left", "right", "bilateral"), weights=(3, 3, 4))[0]
    aura = profile.with_aura and rng.random() < 0.4
    if aura:
        entry["aura"] = True
        chosen = [s for s in AURA_SYMPTOMS if rng.random() < AURA_SYMPTOM_RATES[s]]
        entry["aura_symptoms"] = chosen or ["visual-flashing-lights"]
    elif rng.random() < 0.5:
        entry["aura"] = False
    symptoms = [s for s in SYMPTOMS if s != "vomiting" and rng.random() < SYMPTOM_RATES[s]]
    if "nausea" in symptoms and severity >= 6 and rng.random() < 0.3:
        symptoms.append("vomiting")
    if symptoms:
        entry["symptoms"] = sorted(symptoms, key=SYMPTOMS.index)
    if rng.random() < 0.7:
        entry["prodrome"] = rng.random() < 0.3
    if rng.random() < 0.7:
        entry["postdrome"] = rng.random() < 0.45

    triggers, trigger_text = attack_triggers(profile, rng, sleep, stress, day)
    if triggers:
        entry["triggers"] = triggers
    if trigger_text is not None:
        entry["trigger_text"] = trigger_text
    if medications:
        entry["medications"] = [intake for _, intake in medications]
    entry["disability"] = disability(severity, rng)
    if rng.random() < 0.18:
        entry["notes"] = rng.choice(HEADACHE_NOTES)
    return end if ("end" in entry or "duration_minutes" in entry) else None


def untreated_duration(rng: random.Random, profile: Profile) -> int:
    """Minutes: median about 6 h, from under an hour to three days (ICHD: 4-72 h untreated)."""
    median = 300 if profile.chronic else 380
    return int(min(72 * 60, max(35, rng.lognormvariate(math.log(median), 0.75))))


def medication_intakes(
    profile: Profile, onset: datetime, severity: int, rng: random.Random
) -> list[tuple[int, Record]]:
    """Acute medication: a triptan for stronger attacks, an analgesic otherwise, sometimes both.

    Each intake comes with the minutes after onset it was taken.
    """
    if rng.random() > (0.85 if severity >= 4 else 0.4):
        return []
    first_is_triptan = severity >= 5 and rng.random() < 0.75
    drugs = [
        (profile.triptan, profile.triptan_dose)
        if first_is_triptan
        else (profile.analgesic, profile.analgesic_dose)
    ]
    if rng.random() < 0.25:
        drugs.append(
            (profile.analgesic, profile.analgesic_dose)
            if first_is_triptan
            else (profile.triptan, profile.triptan_dose)
        )
    intakes: list[tuple[int, Record]] = []
    after = rng.randint(10, 90)
    for drug, dose in drugs:
        intake: Record = {"drug": drug}
        if rng.random() < 0.08:
            intake["drug_text"] = DRUG_PRODUCT_TEXT[drug]
        if rng.random() < 0.95:
            intake["dose_mg"] = dose
        intake["taken_at"] = stamp(plus(onset, after, profile))
        if rng.random() < 0.9:
            intake["relief"] = relief_for(drug, severity, rng)
        intakes.append((after, intake))
        after += rng.randint(45, 150)
    return intakes


def relief_for(drug: str, severity: int, rng: random.Random) -> str:
    triptan = drug in TRIPTANS
    complete = (0.45 if triptan else 0.25) - (0.1 if severity >= 8 else 0.0)
    partial = 0.4
    roll = rng.random()
    return "complete" if roll < complete else "partial" if roll < complete + partial else "none"


def disability(severity: int, rng: random.Random) -> str:
    levels = ("none", "mild", "moderate", "severe")
    base = 0 if severity <= 2 else 1 if severity <= 5 else 2 if severity <= 8 else 3
    return levels[max(0, min(3, base + rng.choice((-1, 0, 0, 0, 1))))]


def attack_triggers(
    profile: Profile, rng: random.Random, sleep: float, stress: int, day: date
) -> tuple[list[str], str | None]:
    chosen = {t for t in profile.usual_triggers if rng.random() < 0.3}
    if sleep < 6 and rng.random() < 0.6:
        chosen.add("lack-of-sleep")
    if stress >= 7 and rng.random() < 0.6:
        chosen.add("stress")
    if menstrual_window(profile, day) and rng.random() < 0.7:
        chosen.add("menstruation")
    if profile.gender == "female" and rng.random() < 0.03:
        chosen.add("hormonal-change")
    for trigger in ("other-food", "weather-change", "bright-light"):
        if rng.random() < 0.04:
            chosen.add(trigger)
    text = None
    if rng.random() < 0.05:
        chosen.add("other")
        text = rng.choice(OTHER_TRIGGER_TEXTS)
    return sorted(chosen, key=TRIGGERS.index), text


def add_daily_fields(
    entry: Record, profile: Profile, rng: random.Random, sleep: float, stress: int
) -> None:
    """Sleep, stress and exercise: filled in on most days, as diligent as the patient is."""
    if rng.random() < profile.diligence:
        entry["sleep_hours"] = sleep
    if rng.random() < profile.diligence * 0.85:
        entry["stress_level"] = stress
    if rng.random() < profile.diligence * 0.7:
        entry["exercise_minutes"] = 0 if rng.random() < 0.45 else rng.choice(range(10, 125, 5))
    if not entry["headache"] and rng.random() < 0.06:
        entry["notes"] = rng.choice(FREE_DAY_NOTES)


def recorded_at(profile: Profile, day: date, last_moment: datetime, rng: random.Random) -> datetime:
    """Written in the evening or the next morning, and never before the attack ended."""
    if rng.random() < 0.6:
        written = local_datetime(day, rng.randint(20 * 60, 23 * 60 + 30), profile)
    else:
        written = local_datetime(day + timedelta(days=1), rng.randint(7 * 60, 10 * 60), profile)
    if written < last_moment:
        written = plus(last_moment, rng.randint(10, 90), profile)
    return written


def ordered(record: Record, fields: Sequence[str]) -> Record:
    """The record with its keys in contract order (stable output, readable files)."""
    return {name: record[name] for name in fields if name in record}


# ---------------------------------------------------------------------------------------------
# All records


def generate(options: Options) -> Iterator[Record]:
    """Every record, patient by patient: the patient, their sessions, then their diary days."""
    for index in range(options.patients):
        profile = make_profile(options, index)
        yield patient_record(profile, options)
        yield from session_records(profile, options)
        yield from diary_records(profile, options)


# ---------------------------------------------------------------------------------------------
# Writers


def json_text(record: Record) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def csv_number(value: int | float) -> str:
    return str(value)


def csv_part(value: object) -> str:
    """One part of a list item (`drug:dose_mg:relief`, vitals): empty when absent."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_cell(field: str, value: Any) -> str:
    """A field's CSV cell in the contract's form; fields without a CSV form are left out."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if field == "medications":
        return ";".join(
            ":".join(csv_part(m.get(k)) for k in ("drug", "dose_mg", "relief")) for m in value
        )
    if field == "vitals":
        parts = ("time", "phase", "heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate")
        return ";".join("|".join(csv_part(v.get(k)) for k in parts) for v in value)
    if field == "adverse_effects":
        return ";".join(":".join(csv_part(a.get(k)) for k in ("effect", "severity")) for a in value)
    if field == "identifiers":
        return ";".join(f"{i['system']}|{i['value']}" for i in value)
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    return str(value)


class DatasetWriter:
    """Writes records to one file per record type in one format, as they come (streaming)."""

    def __init__(self, directory: Path, form: str) -> None:
        if form not in FORMATS:
            raise ValueError(f"unknown format {form}")
        self.form = form
        directory.mkdir(parents=True, exist_ok=True)
        self.counts = dict.fromkeys(RECORD_TYPES, 0)
        self._files: dict[str, TextIO] = {}
        self._csv: dict[str, Any] = {}
        for record_type in RECORD_TYPES:
            path = directory / f"{FILE_STEMS[record_type]}.{form}"
            handle = path.open("w", encoding="utf-8", newline="")
            self._files[record_type] = handle
            if form == "json":
                handle.write("[")
            elif form == "csv":
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(FIELDS[record_type])
                self._csv[record_type] = writer

    def write(self, record: Record) -> None:
        record_type = record["record_type"]
        handle = self._files[record_type]
        if self.form == "ndjson":
            handle.write(json_text(record) + "\n")
        elif self.form == "json":
            separator = "\n" if self.counts[record_type] == 0 else ",\n"
            handle.write(separator + indented_json(record))
        else:
            self._csv[record_type].writerow(
                [csv_cell(name, record.get(name)) for name in FIELDS[record_type]]
            )
        self.counts[record_type] += 1

    def close(self) -> None:
        for record_type, handle in self._files.items():
            if self.form == "json":
                handle.write("\n]\n" if self.counts[record_type] else "]\n")
            handle.close()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def indented_json(record: Record) -> str:
    """A record as an element of a readable JSON array: it starts on its own line."""
    text = json.dumps(record, ensure_ascii=False, indent=2)
    return "\n".join("  " + line for line in text.splitlines())


def write_dataset(options: Options, out: Path, forms: Sequence[str]) -> dict[str, int]:
    """Generate once and write every form; with several forms each goes to out/<form>/.

    Returns the number of records written per record type.
    """
    directories = {form: out / form if len(forms) > 1 else out for form in forms}
    writers = [DatasetWriter(directories[form], form) for form in forms]
    try:
        for record in generate(options):
            for writer in writers:
                writer.write(record)
    finally:
        for writer in writers:
            writer.close()
    return dict(writers[0].counts)


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="synth.py",
        description="Write seeded synthetic migrainefhir input records (fictional patients).",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--patients", type=positive, default=3, help="number of patients")
    size.add_argument(
        "--diary-entries",
        type=positive,
        help="exactly this many diary entries, over as many patients of --days days as needed",
    )
    parser.add_argument("--days", type=positive, default=DEFAULT_DAYS, help="diary days each")
    parser.add_argument(
        "--ketamine-patients",
        type=non_negative,
        help="patients with a ketamine course (default 1 with --patients, 1 in 10 otherwise)",
    )
    parser.add_argument("--seed", type=int, default=7, help="the same seed gives the same bytes")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=DEFAULT_START,
        help=f"first diary day, YYYY-MM-DD (default {DEFAULT_START})",
    )
    parser.add_argument(
        "--format",
        choices=(*FORMATS, "all"),
        default="ndjson",
        help="'all' writes OUT/ndjson, OUT/json and OUT/csv",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    return parser.parse_args(argv)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def options_from(args: argparse.Namespace) -> Options:
    if args.diary_entries is not None:
        options = options_for_diary_entries(
            args.diary_entries, args.days, args.seed, args.ketamine_patients, args.start
        )
    else:
        ketamine = 1 if args.ketamine_patients is None else args.ketamine_patients
        options = Options(args.patients, args.days, ketamine, args.seed, args.start)
    if options.ketamine_patients > options.patients:
        raise SystemExit(
            f"synth.py: --ketamine-patients cannot exceed the {options.patients} patient(s)"
        )
    return options


def main(argv: Sequence[str] | None = None, report: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    options = options_from(args)
    forms = FORMATS if args.format == "all" else (args.format,)
    counts = write_dataset(options, args.out, forms)
    summary = ", ".join(f"{counts[t]} {t}" for t in RECORD_TYPES)
    report(f"wrote {summary} ({'/'.join(forms)}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
