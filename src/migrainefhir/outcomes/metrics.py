"""Headache outcome measures per 28-day window, from per-day aggregates of each diary.

Every definition here is written out, with its source, in docs/outcomes.md; the constants
below are the numbers those sources give. A patient's records are folded into one small
integer per diary date (`DayFlags`) and a short summary per ketamine session as they stream
past (`Cohort.add`), so memory grows with the patient-days, never with the records.

Windows: each patient's time is cut into 28-day windows anchored at the local date of the
first session in which ketamine was given (completed or stopped), or, for a patient without
one, at the earliest diary date. Window k covers anchor + 28(k-1) .. anchor + 28k - 1: window
0 is the baseline just before the first session, 1..3 the follow-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from migrainefhir.input.records import DiaryEntry, KetamineSession, PatientRecord, Record

WINDOW_DAYS = 28  # the IHS trial guidelines' "month"
COMPLETE_DIARY_DAYS = 24  # fewer diary days than this in a window: incomplete
MIN_MIGRAINE_MINUTES = 30  # van der Arend et al.'s duration floor (ICHD-3 says 4 h untreated)
TRIPTAN_ERGOT_MOH_DAYS = 10  # ICHD-3 8.2.1 / 8.2.2: ergotamine or triptans on >= 10 days/month
SIMPLE_ANALGESIC_MOH_DAYS = 15  # ICHD-3 8.2.3: simple analgesics on >= 15 days/month
BASELINE = 0
FOLLOW_UP = (1, 2, 3)
WEEKS_9_TO_12 = 3

TRIPTANS_AND_ERGOTS = frozenset(
    {"sumatriptan", "rizatriptan", "zolmitriptan", "eletriptan", "ergotamine", "dihydroergotamine"}
)
SIMPLE_ANALGESICS = frozenset({"ibuprofen", "acetaminophen", "aspirin", "naproxen"})
GIVEN = frozenset({"completed", "stopped"})  # a session in which ketamine was given

# The IHS 4-point verbal scale, and the 0-10 numeric rating scale folded onto it
# (1-3 mild, 4-6 moderate, 7-10 severe: a common convention, see docs/outcomes.md).
SEVERITY_LEVELS = ("none", "mild", "moderate", "severe")
_CATEGORY_LEVEL = {name: level for level, name in enumerate(SEVERITY_LEVELS)}


class DayFlags:
    """What one diary date holds, as bits of one int (several entries on a date are ORed).

    Bits 0-5 are the measures; bits 8-10 hold the day's peak pain on the verbal scale plus one
    (0: no pain recorded)."""

    DIARY = 1
    HEADACHE = 2
    MIGRAINE = 4
    ACUTE = 8
    TRIPTAN_ERGOT = 16
    SIMPLE_ANALGESIC = 32
    SEVERITY_SHIFT = 8
    SEVERITY_MASK = 0b111 << SEVERITY_SHIFT


def severity_level(entry: DiaryEntry) -> int | None:
    """The entry's peak pain on the IHS verbal scale (0 none .. 3 severe), or None."""
    levels = []
    if entry.severity_category is not None:
        levels.append(_CATEGORY_LEVEL[entry.severity_category])
    if entry.severity is not None:
        levels.append(nrs_level(entry.severity))
    return max(levels) if levels else None


def nrs_level(score: int) -> int:
    """0 none, 1-3 mild, 4-6 moderate, 7-10 severe."""
    if score <= 0:
        return 0
    if score <= 3:
        return 1
    if score <= 6:
        return 2
    return 3


def duration_minutes(entry: DiaryEntry) -> float | None:
    if entry.duration_minutes is not None:
        return float(entry.duration_minutes)
    if entry.onset is not None and entry.end is not None:
        return (entry.end - entry.onset).total_seconds() / 60
    return None


def migraine_criteria(entry: DiaryEntry) -> tuple[bool, bool, bool]:
    """ICHD-3 1.1 criteria B, C and D as far as the diary records them.

    B: the attack lasted at least MIN_MIGRAINE_MINUTES. C: at least two of unilateral location,
    pulsating quality, moderate or severe pain, aggravation by routine activity (the diary has
    no field for pulsating quality or aggravation, so C needs unilateral and moderate/severe
    pain). D: nausea or vomiting, or photophobia and phonophobia. A criterion whose fields
    were not recorded is not met."""
    minutes = duration_minutes(entry)
    b = minutes is not None and minutes >= MIN_MIGRAINE_MINUTES
    level = severity_level(entry)
    features = (entry.laterality in ("left", "right")) + (level is not None and level >= 2)
    c = features >= 2
    symptoms = set(entry.symptoms)
    d = bool(symptoms & {"nausea", "vomiting"}) or {"photophobia", "phonophobia"} <= symptoms
    return b, c, d


def is_migraine_entry(entry: DiaryEntry) -> bool:
    """A headache entry that makes its date a migraine day (docs/outcomes.md): aura, a triptan
    or ergot taken, or migraine / probable migraine (at least two of the criteria B, C, D)."""
    if not entry.headache:
        return False
    if entry.aura:
        return True
    if any(intake.drug in TRIPTANS_AND_ERGOTS for intake in entry.medications):
        return True
    return sum(migraine_criteria(entry)) >= 2


def day_flags(entry: DiaryEntry) -> int:
    """The flags one diary entry sets on its date."""
    flags = DayFlags.DIARY
    if entry.headache:
        flags |= DayFlags.HEADACHE
        if is_migraine_entry(entry):
            flags |= DayFlags.MIGRAINE
    drugs = {intake.drug for intake in entry.medications}
    if drugs:
        flags |= DayFlags.ACUTE
    if drugs & TRIPTANS_AND_ERGOTS:
        flags |= DayFlags.TRIPTAN_ERGOT
    if drugs & SIMPLE_ANALGESICS:
        flags |= DayFlags.SIMPLE_ANALGESIC
    level = severity_level(entry) if entry.headache else None
    if level is not None:
        flags |= (level + 1) << DayFlags.SEVERITY_SHIFT
    return flags


def merge_flags(old: int, new: int) -> int:
    """Two entries of one date: the measures ORed, the higher peak pain kept."""
    severity = max(old & DayFlags.SEVERITY_MASK, new & DayFlags.SEVERITY_MASK)
    return ((old | new) & ~DayFlags.SEVERITY_MASK) | severity


def day_severity(flags: int) -> int | None:
    stored = (flags & DayFlags.SEVERITY_MASK) >> DayFlags.SEVERITY_SHIFT
    return stored - 1 if stored else None


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """What the report shows of one ketamine session (no free text)."""

    session_id: str
    day: date  # the local date of its start
    status: str
    route: str
    product: str
    dose_mg: float | None
    peak_heart_rate: float | None
    peak_systolic: float | None  # the reading with the highest systolic pressure
    peak_diastolic: float | None
    adverse_effects: tuple[tuple[str, str | None], ...]  # (effect, severity)

    @property
    def given(self) -> bool:
        return self.status in GIVEN

    @property
    def stopped(self) -> bool:
        return self.status == "stopped"


def session_summary(session: KetamineSession) -> SessionSummary:
    heart_rates = [r.heart_rate for r in session.vitals if r.heart_rate is not None]
    pressures = [(r.systolic, r.diastolic) for r in session.vitals if r.systolic is not None]
    peak_bp = max(pressures, key=lambda pair: (pair[0], pair[1] or 0.0), default=(None, None))
    return SessionSummary(
        session_id=session.session_id,
        day=session.start.date(),  # local: the date in the start's own UTC offset
        status=session.status,
        route=session.route,
        product=session.product,
        dose_mg=session.dose_mg,
        peak_heart_rate=max(heart_rates) if heart_rates else None,
        peak_systolic=peak_bp[0],
        peak_diastolic=peak_bp[1],
        adverse_effects=tuple((e.effect, e.severity) for e in session.adverse_effects),
    )


@dataclass(frozen=True, slots=True)
class WindowMetrics:
    """The measures of one patient in one 28-day window."""

    patient_id: str
    window: int
    start: date
    end: date  # inclusive
    diary_days: int
    headache_days: int
    migraine_days: int
    acute_medication_days: int
    triptan_ergot_days: int
    simple_analgesic_days: int
    sessions: int  # sessions in which ketamine was given, by local start date
    mean_severity: float | None  # mean peak pain of the headache days (0-3), None without any

    @property
    def complete(self) -> bool:
        return self.diary_days >= COMPLETE_DIARY_DAYS

    @property
    def moh_risk(self) -> bool:
        return (
            self.triptan_ergot_days >= TRIPTAN_ERGOT_MOH_DAYS
            or self.simple_analgesic_days >= SIMPLE_ANALGESIC_MOH_DAYS
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """Baseline (window 0) against follow-up, for a patient who had ketamine."""

    patient_id: str
    first_session: date
    baseline: WindowMetrics | None
    follow_up: tuple[WindowMetrics, ...]  # the complete windows among 1-3
    weeks_9_12: WindowMetrics | None
    sessions_given: int = 0  # completed or stopped, over the whole record
    sessions_stopped: int = 0
    adverse_effects: int = 0  # adverse effects recorded in the sessions ketamine was given

    @property
    def baseline_complete(self) -> bool:
        return self.baseline is not None and self.baseline.complete

    @property
    def follow_up_migraine_days(self) -> float | None:
        """Mean migraine days of the complete follow-up windows (1-3)."""
        if not self.follow_up:
            return None
        return sum(w.migraine_days for w in self.follow_up) / len(self.follow_up)

    @property
    def change_follow_up(self) -> float | None:
        mean = self.follow_up_migraine_days
        if mean is None or self.baseline is None or not self.baseline.complete:
            return None
        return mean - self.baseline.migraine_days

    @property
    def weeks_9_12_complete(self) -> bool:
        return self.weeks_9_12 is not None and self.weeks_9_12.complete

    @property
    def change_weeks_9_12(self) -> int | None:
        if not (self.baseline_complete and self.weeks_9_12_complete):
            return None
        assert self.baseline is not None and self.weeks_9_12 is not None
        return self.weeks_9_12.migraine_days - self.baseline.migraine_days

    @property
    def responder_50(self) -> bool | None:
        """Migraine days in weeks 9-12 at most half the baseline's; None unless both complete."""
        if not (self.baseline_complete and self.weeks_9_12_complete):
            return None
        assert self.baseline is not None and self.weeks_9_12 is not None
        return 2 * self.weeks_9_12.migraine_days <= self.baseline.migraine_days


@dataclass(slots=True)
class PatientDays:
    """One patient's per-day aggregates and session summaries: all the report keeps."""

    patient_id: str
    days: dict[date, int] = field(default_factory=dict)
    sessions: list[SessionSummary] = field(default_factory=list)
    has_patient_record: bool = False

    def add_entry(self, entry: DiaryEntry) -> None:
        flags = day_flags(entry)
        old = self.days.get(entry.date)
        self.days[entry.date] = flags if old is None else merge_flags(old, flags)

    @property
    def first_session(self) -> date | None:
        """The local date of the first session in which ketamine was given."""
        given = [s.day for s in self.sessions if s.given]
        return min(given) if given else None

    @property
    def anchor(self) -> date | None:
        first = self.first_session
        if first is not None:
            return first
        return min(self.days) if self.days else None

    @property
    def treated(self) -> bool:
        return self.first_session is not None

    def ordered_sessions(self) -> list[SessionSummary]:
        return sorted(self.sessions, key=lambda s: (s.day, s.session_id))

    def windows(self) -> list[WindowMetrics]:
        """Every window holding at least one diary day, in order."""
        anchor = self.anchor
        if anchor is None or not self.days:
            return []
        by_window: dict[int, list[int]] = {}
        for day, flags in self.days.items():
            by_window.setdefault(window_of(day, anchor), []).append(flags)
        sessions: dict[int, int] = {}
        for session in self.sessions:
            if session.given:
                k = window_of(session.day, anchor)
                sessions[k] = sessions.get(k, 0) + 1
        return [
            _window(self.patient_id, k, anchor, by_window[k], sessions.get(k, 0))
            for k in sorted(by_window)
        ]

    def outcome(self, windows: list[WindowMetrics] | None = None) -> Outcome | None:
        first = self.first_session
        if first is None:
            return None
        by_number = {w.window: w for w in (self.windows() if windows is None else windows)}
        follow_up = tuple(
            by_number[k] for k in FOLLOW_UP if k in by_number and by_number[k].complete
        )
        return Outcome(
            self.patient_id,
            first,
            by_number.get(BASELINE),
            follow_up,
            by_number.get(WEEKS_9_TO_12),
            sessions_given=sum(1 for s in self.sessions if s.given),
            sessions_stopped=sum(1 for s in self.sessions if s.stopped),
            adverse_effects=sum(len(s.adverse_effects) for s in self.sessions if s.given),
        )


def window_of(day: date, anchor: date) -> int:
    """The number of the window holding `day` (window 1 starts at the anchor)."""
    return (day - anchor).days // WINDOW_DAYS + 1


def window_bounds(window: int, anchor: date) -> tuple[date, date]:
    """First and last day (inclusive) of window `window`."""
    start = anchor + timedelta(days=WINDOW_DAYS * (window - 1))
    return start, start + timedelta(days=WINDOW_DAYS - 1)


def _count(days: list[int], bit: int) -> int:
    return sum(1 for flags in days if flags & bit)


def _window(patient: str, k: int, anchor: date, days: list[int], sessions: int) -> WindowMetrics:
    start, end = window_bounds(k, anchor)
    levels = [
        level
        for flags in days
        if flags & DayFlags.HEADACHE and (level := day_severity(flags)) is not None
    ]
    return WindowMetrics(
        patient_id=patient,
        window=k,
        start=start,
        end=end,
        diary_days=len(days),
        headache_days=_count(days, DayFlags.HEADACHE),
        migraine_days=_count(days, DayFlags.MIGRAINE),
        acute_medication_days=_count(days, DayFlags.ACUTE),
        triptan_ergot_days=_count(days, DayFlags.TRIPTAN_ERGOT),
        simple_analgesic_days=_count(days, DayFlags.SIMPLE_ANALGESIC),
        sessions=sessions,
        mean_severity=sum(levels) / len(levels) if levels else None,
    )


@dataclass(slots=True)
class Cohort:
    """Every patient's aggregates, filled one accepted record at a time."""

    patients: dict[str, PatientDays] = field(default_factory=dict)

    def patient(self, patient_id: str) -> PatientDays:
        found = self.patients.get(patient_id)
        if found is None:
            found = self.patients[patient_id] = PatientDays(patient_id)
        return found

    def add(self, record: Record) -> None:
        if isinstance(record, DiaryEntry):
            self.patient(record.patient_id).add_entry(record)
        elif isinstance(record, KetamineSession):
            self.patient(record.patient_id).sessions.append(session_summary(record))
        elif isinstance(record, PatientRecord):
            self.patient(record.patient_id).has_patient_record = True

    def add_all(self, records: Iterable[Record]) -> Cohort:
        for record in records:
            self.add(record)
        return self

    def ordered(self) -> Iterator[PatientDays]:
        for patient_id in sorted(self.patients):
            yield self.patients[patient_id]
