"""The record rules the JSON Schemas cannot express, as small registered functions.

Each rule takes a typed record (already schema-valid) and returns Problems without a Source
(model.py places them); a rule that does not apply to a record type returns nothing. Each has
a permanent code. `DuplicateIds` is the one cross-record rule: it remembers every id of a run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from migrainefhir.input.records import DiaryEntry, KetamineSession, Record, VitalsReading
from migrainefhir.problems import Problem, Severity, Source, error, register_code, warning
from migrainefhir.schema import MAX_YEAR, RANGE

_LAYER = "input"
END_BEFORE_ONSET = register_code(
    "input.end-before-onset", Severity.ERROR, "diary end before onset", _LAYER
)
DURATION_MISMATCH = register_code(
    "input.duration-mismatch",
    Severity.ERROR,
    "end and duration_minutes disagree by more than 1 minute",
    _LAYER,
)
END_BEFORE_START = register_code(
    "input.end-before-start", Severity.ERROR, "session end before start", _LAYER
)
ATTACK_TOO_LONG = register_code(
    "input.attack-too-long",
    Severity.ERROR,
    "a diary attack whose end is more than 14 days after its onset (a typing error in the "
    "end's date: status migrainosus is over 72 hours, and 14 days is far beyond it)",
    _LAYER,
)
SESSION_TOO_LONG = register_code(
    "input.session-too-long",
    Severity.ERROR,
    "a ketamine session whose end is more than 2 days after its start (even a multi-day "
    "inpatient infusion is recorded as one session per day or two)",
    _LAYER,
)
DOSE_MISMATCH = register_code(
    "input.dose-mismatch",
    Severity.ERROR,
    "dose_mg, weight_kg and dose_mg_per_kg disagree by more than 5 %",
    _LAYER,
)
VITALS_OUTSIDE_WINDOW = register_code(
    "input.vitals-outside-window",
    Severity.ERROR,
    "a vitals time outside [start - 2 h, (end or start) + 2 h]",
    _LAYER,
)
VITALS_IMPOSSIBLE = register_code(
    "input.vitals-impossible",
    Severity.ERROR,
    "a physically impossible vital (heart rate 0 or 400, diastolic above systolic, "
    "SpO2 over 100 %)",
    _LAYER,
)
VITALS_IMPLAUSIBLE = register_code(
    "input.vitals-implausible",
    Severity.WARNING,
    "possible but implausible vital (e.g. heart rate 35 or 190): the record is still accepted",
    _LAYER,
)
DUPLICATE_ID = register_code(
    "input.duplicate-id",
    Severity.ERROR,
    "a second record with the same record type and id in one run "
    "(the message names where the first was)",
    _LAYER,
)

# How far end - onset may differ from duration_minutes (records.md: "within 1 minute").
DURATION_TOLERANCE = timedelta(minutes=1)
# How far weight_kg x dose_mg_per_kg may differ from dose_mg, as a share of dose_mg
# (records.md: "within 5 %"; dose_mg is the dose actually given, so it is the reference).
DOSE_TOLERANCE = 0.05
# The longest an attack or a session may last (ATTACK_TOO_LONG, SESSION_TOO_LONG). An attack
# over 72 hours is status migrainosus; one over 14 days is a wrong date, not an attack. The
# schemas' maximum duration_minutes (20160) is the same 14 days.
MAX_ATTACK = timedelta(days=14)
MAX_SESSION = timedelta(days=2)
# Vitals may be taken this long before start and after end (or after start without an end).
VITALS_WINDOW = timedelta(hours=2)


# Vital signs. "Impossible" means no reading a monitor takes from a living patient can have this
# value: it is a data-entry or unit error and the record is rejected. "Implausible" values are
# possible but rare in a seated outpatient receiving ketamine: the record is kept with a warning
# so a clinician can check the entry. Bounds are inclusive of the allowed value.

# Heart rate, /min. Above 300/min exceeds even the fastest tachyarrhythmias a clinic monitor
# reports (maximal sinus rate is about 220 minus age); 0 is asystole, not a monitored reading.
HEART_RATE_POSSIBLE = (1.0, 300.0)
# Below 40/min is marked bradycardia, above 180/min marked tachycardia; ketamine usually raises
# the rate by 10-20 %, so either extreme more likely means a typo or artefact.
HEART_RATE_PLAUSIBLE = (40.0, 180.0)
# Systolic pressure, mm[Hg]. The highest pressure ever recorded in a human is about 370/360
# (maximal leg press, MacDougall et al. 1985); 0 or less is not a pressure reading.
SYSTOLIC_POSSIBLE = (1.0, 370.0)
# Below 70 is shock-level hypotension; above 220 a hypertensive emergency that would stop a
# session (ketamine raises blood pressure, but not to this degree in a routine session).
SYSTOLIC_PLAUSIBLE = (70.0, 220.0)
# Diastolic pressure, mm[Hg]: the same sources as systolic.
DIASTOLIC_POSSIBLE = (1.0, 360.0)
# Below 40 or above 130 is rare outside emergencies.
DIASTOLIC_PLAUSIBLE = (40.0, 130.0)
# Oxygen saturation, %: a share of haemoglobin, so above 100 % cannot be; 0 is no reading.
SPO2_POSSIBLE = (1.0, 100.0)
# Below 80 % an awake outpatient is severely hypoxic; such a value (or 0.97 written as a
# fraction instead of a percentage) is more often an entry error.
SPO2_PLAUSIBLE = (80.0, 100.0)
# Respiratory rate, /min. Above 100/min is beyond human ventilation even in neonates; 0 is
# apnoea, not a monitored rate.
RESPIRATORY_RATE_POSSIBLE = (1.0, 100.0)
# Below 6 or above 40 breaths/min is marked respiratory depression or distress, uncommon with
# the dissociative (respiration-sparing) ketamine doses used for migraine.
RESPIRATORY_RATE_PLAUSIBLE = (6.0, 40.0)

_VITALS_BOUNDS: dict[str, tuple[str, tuple[float, float], tuple[float, float]]] = {
    "heart_rate": ("/min", HEART_RATE_POSSIBLE, HEART_RATE_PLAUSIBLE),
    "systolic": ("mm[Hg]", SYSTOLIC_POSSIBLE, SYSTOLIC_PLAUSIBLE),
    "diastolic": ("mm[Hg]", DIASTOLIC_POSSIBLE, DIASTOLIC_PLAUSIBLE),
    "spo2": ("%", SPO2_POSSIBLE, SPO2_PLAUSIBLE),
    "respiratory_rate": ("/min", RESPIRATORY_RATE_POSSIBLE, RESPIRATORY_RATE_PLAUSIBLE),
}

Rule = Callable[[Record], list[Problem]]
RULES: dict[str, Rule] = {}
# The rules of each record class, in registration order: a record is given only the rules of
# its own class (each rule still returns nothing for any other, when called directly).
_RULES_OF: dict[type[Record], list[Rule]] = {}


def rule(name: str, record_class: type[Record]) -> Callable[[Rule], Rule]:
    """Register a record rule under a permanent name, for the records of one class."""

    def register(function: Rule) -> Rule:
        if name in RULES:
            raise ValueError(f"record rule {name} registered twice")
        RULES[name] = function
        _RULES_OF.setdefault(record_class, []).append(function)
        return function

    return register


def rules_for(record: Record) -> list[Rule]:
    """The rules that apply to `record`, in registration order (as RULES lists them); for a
    class no rule names (a patient), all of them, each of which returns nothing for it."""
    found = _RULES_OF.get(type(record))
    return list(RULES.values()) if found is None else found


@rule("end-before-onset", DiaryEntry)
def end_before_onset(record: Record) -> list[Problem]:
    if not isinstance(record, DiaryEntry) or record.onset is None or record.end is None:
        return []
    if record.end >= record.onset:
        return []
    return [error(END_BEFORE_ONSET, "end is before onset", "$.end")]


@rule("attack-too-long", DiaryEntry)
def attack_too_long(record: Record) -> list[Problem]:
    if not isinstance(record, DiaryEntry) or record.onset is None or record.end is None:
        return []
    if record.end - record.onset <= MAX_ATTACK:
        return []
    return [error(ATTACK_TOO_LONG, "end is more than 14 days after onset", "$.end")]


@rule("duration-mismatch", DiaryEntry)
def duration_mismatch(record: Record) -> list[Problem]:
    if not isinstance(record, DiaryEntry) or record.duration_minutes is None:
        return []
    if record.onset is None or record.end is None or record.end < record.onset:
        return []  # nothing to compare (an end before onset is its own problem)
    if _end_by_duration(record.onset, record.duration_minutes) is None:
        return []  # a duration beyond the calendar: duration-range reports it
    stated = timedelta(minutes=record.duration_minutes)
    if abs((record.end - record.onset) - stated) <= DURATION_TOLERANCE:
        return []
    return [
        error(
            DURATION_MISMATCH,
            "duration_minutes disagrees with end - onset by more than 1 minute",
            "$.duration_minutes",
        )
    ]


@rule("duration-range", DiaryEntry)
def duration_range(record: Record) -> list[Problem]:
    if not isinstance(record, DiaryEntry) or record.duration_minutes is None:
        return []
    if record.onset is None or _end_by_duration(record.onset, record.duration_minutes):
        return []
    return [
        error(
            RANGE,
            f"duration_minutes puts the end of the attack after the year {MAX_YEAR}",
            "$.duration_minutes",
        )
    ]


def _end_by_duration(onset: datetime, minutes: int) -> datetime | None:
    """onset + minutes, or None when that leaves the years a date-time may name."""
    try:
        end = onset + timedelta(minutes=minutes)
    except OverflowError:  # beyond what datetime can hold at all
        return None
    return end if end.year <= MAX_YEAR else None


@rule("end-before-start", KetamineSession)
def end_before_start(record: Record) -> list[Problem]:
    if not isinstance(record, KetamineSession) or record.end is None:
        return []
    if record.end >= record.start:
        return []
    return [error(END_BEFORE_START, "end is before start", "$.end")]


@rule("session-too-long", KetamineSession)
def session_too_long(record: Record) -> list[Problem]:
    if not isinstance(record, KetamineSession) or record.end is None:
        return []
    if record.end - record.start <= MAX_SESSION:
        return []
    return [error(SESSION_TOO_LONG, "end is more than 2 days after start", "$.end")]


@rule("dose-mismatch", KetamineSession)
def dose_mismatch(record: Record) -> list[Problem]:
    if not isinstance(record, KetamineSession):
        return []
    dose, weight, per_kg = record.dose_mg, record.weight_kg, record.dose_mg_per_kg
    if dose is None or weight is None or per_kg is None:
        return []
    if abs(weight * per_kg - dose) <= DOSE_TOLERANCE * dose:
        return []
    return [
        error(
            DOSE_MISMATCH,
            "weight_kg x dose_mg_per_kg differs from dose_mg by more than 5 %",
            "$.dose_mg_per_kg",
        )
    ]


@rule("vitals-outside-window", KetamineSession)
def vitals_outside_window(record: Record) -> list[Problem]:
    if not isinstance(record, KetamineSession):
        return []
    earliest = record.start - VITALS_WINDOW
    latest = (record.end or record.start) + VITALS_WINDOW
    until = "end" if record.end is not None else "start (there is no end)"
    return [
        error(
            VITALS_OUTSIDE_WINDOW,
            f"vitals[{index}].time is outside the session: it must be from 2 h before start "
            f"to 2 h after {until}",
            f"$.vitals[{index}].time",
        )
        for index, reading in enumerate(record.vitals)
        if not earliest <= reading.time <= latest
    ]


@rule("vitals-impossible", KetamineSession)
def vitals_impossible(record: Record) -> list[Problem]:
    if not isinstance(record, KetamineSession):
        return []
    problems = []
    for index, reading in enumerate(record.vitals):
        for name, value, unit, (low, high), _ in _measurements(reading):
            if not low <= value <= high:
                problems.append(
                    error(
                        VITALS_IMPOSSIBLE,
                        f"vitals[{index}].{name} is not a possible reading: it must be from "
                        f"{low:g} to {high:g} {unit}",
                        f"$.vitals[{index}].{name}",
                    )
                )
        if _pressure_inverted(reading):
            problems.append(
                error(
                    VITALS_IMPOSSIBLE,
                    f"vitals[{index}].diastolic is above systolic",
                    f"$.vitals[{index}].diastolic",
                )
            )
    return problems


@rule("vitals-implausible", KetamineSession)
def vitals_implausible(record: Record) -> list[Problem]:
    if not isinstance(record, KetamineSession):
        return []
    problems = []
    for index, reading in enumerate(record.vitals):
        for name, value, unit, (low, high), (usual_low, usual_high) in _measurements(reading):
            if low <= value <= high and not usual_low <= value <= usual_high:
                problems.append(
                    warning(
                        VITALS_IMPLAUSIBLE,
                        f"vitals[{index}].{name} is possible but implausible (outside "
                        f"{usual_low:g}-{usual_high:g} {unit}): please check it",
                        f"$.vitals[{index}].{name}",
                    )
                )
    return problems


def _measurements(
    reading: VitalsReading,
) -> Iterator[tuple[str, float, str, tuple[float, float], tuple[float, float]]]:
    for name, (unit, possible, plausible) in _VITALS_BOUNDS.items():
        value = getattr(reading, name)
        if value is not None:
            yield name, value, unit, possible, plausible


def _pressure_inverted(reading: VitalsReading) -> bool:
    systolic, diastolic = reading.systolic, reading.diastolic
    return systolic is not None and diastolic is not None and diastolic > systolic


# -- duplicate ids across a run --------------------------------------------------------------

_ID_FIELDS = {"diary-entry": "entry_id", "ketamine-session": "session_id", "patient": "patient_id"}

# A first occurrence is kept as one int: (number << 32) | (file index << 2) | kind, where kind
# says whether the number is a line, a row or a Bundle entry. One int and one id string per
# record keeps a run of millions of records to about 100 bytes per id.
_NONE, _LINE, _ROW, _ENTRY = range(4)
_FILE_BITS = 30


class DuplicateIds:
    """Remembers the first Source of every (record type, id) in a run; reports later ones."""

    def __init__(self) -> None:
        self._files: list[str] = []
        self._file_numbers: dict[str, int] = {}
        self._first: dict[str, dict[str, int]] = {}

    def check(self, record_type: str, record_id: str, source: Source) -> list[Problem]:
        """[] for the first record with this type and id; else input.duplicate-id."""
        seen = self._first.setdefault(record_type, {})
        first = seen.get(record_id)
        if first is None:
            seen[record_id] = self._pack(source)
            return []
        field = _ID_FIELDS.get(record_type, "id")
        message = (
            f"duplicate {record_type} {field} {record_id}: the first record with this id "
            f"is at {self._unpack(first)}; records are never merged"
        )
        return [Problem(DUPLICATE_ID, Severity.ERROR, message, f"$.{field}", source)]

    def _pack(self, source: Source) -> int:
        number = self._file_numbers.get(source.file)
        if number is None:
            number = self._file_numbers[source.file] = len(self._files)
            self._files.append(source.file)
            if number >= 1 << _FILE_BITS:
                raise OverflowError("more input files than DuplicateIds can number")
        for kind, where in ((_LINE, source.line), (_ROW, source.row), (_ENTRY, source.entry)):
            if where is not None:
                return (where << 32) | (number << 2) | kind
        return (number << 2) | _NONE

    def _unpack(self, packed: int) -> Source:
        kind, number, where = packed & 3, (packed >> 2) & ((1 << _FILE_BITS) - 1), packed >> 32
        file = self._files[number]
        if kind == _LINE:
            return Source(file, line=where)
        if kind == _ROW:
            return Source(file, row=where)
        if kind == _ENTRY:
            return Source(file, entry=where)
        return Source(file)
