"""The headache outcome measures (docs/outcomes.md), on hand-made diaries.

Each test builds a small diary of typed records, folds it into a Cohort exactly as the report
does, and checks one definition or edge with exact numbers: window borders, the anchor (time
zones of session starts, stopped and not-done sessions, patients without sessions),
incomplete windows, repeated doses on one day, migraine-day criteria, overuse thresholds,
baseline against follow-up.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from migrainefhir.input.records import (
    AdverseEffect,
    DiaryEntry,
    KetamineSession,
    MedicationIntake,
    Record,
    VitalsReading,
)
from migrainefhir.outcomes.metrics import (
    Cohort,
    PatientDays,
    WindowMetrics,
    is_migraine_entry,
    migraine_criteria,
    window_of,
)
from migrainefhir.problems import Source

SRC = Source("diary.ndjson", line=1)
ANCHOR = date(2026, 3, 2)


def day(offset: int) -> date:
    """The date `offset` days after the anchor (window 1 starts at 0, window 0 at -28)."""
    return ANCHOR + timedelta(days=offset)


def free(on: date, patient: str = "P1") -> DiaryEntry:
    return DiaryEntry(f"F{on.isoformat()}", patient, on, False, SRC)


def attack(
    on: date, patient: str = "P1", entry_id: str | None = None, **fields: object
) -> DiaryEntry:
    """A plain headache: mild, 2 h, bilateral, no other symptom: not a migraine day alone."""
    defaults: dict[str, object] = {
        "onset": datetime(on.year, on.month, on.day, 9, 0, tzinfo=UTC),
        "duration_minutes": 120,
        "severity_category": "mild",
        "laterality": "bilateral",
    }
    defaults.update(fields)
    return DiaryEntry(entry_id or f"A{on.isoformat()}", patient, on, True, SRC, **defaults)  # type: ignore[arg-type]


def migraine(on: date, patient: str = "P1", **fields: object) -> DiaryEntry:
    """An attack meeting ICHD-3 1.1 B, C and D."""
    values: dict[str, object] = {
        "severity_category": "severe",
        "laterality": "left",
        "duration_minutes": 300,
        "symptoms": ("nausea",),
    }
    values.update(fields)
    return attack(on, patient, **values)


def session(
    start: datetime, status: str = "completed", patient: str = "P1", session_id: str = "S1"
) -> KetamineSession:
    reason = None if status == "completed" else "patient request"
    dose = None if status == "not-done" else 35.0
    return KetamineSession(
        session_id,
        patient,
        start,
        "intravenous",
        SRC,
        status=status,
        status_reason=reason,
        dose_mg=dose,
    )


def full_diary(first: int, last: int, patient: str = "P1") -> list[DiaryEntry]:
    """A headache-free day on every date from day(first) to day(last)."""
    return [free(day(offset), patient) for offset in range(first, last + 1)]


def windows(records: list[Record], patient: str = "P1") -> dict[int, WindowMetrics]:
    cohort = Cohort().add_all(records)
    return {w.window: w for w in cohort.patients[patient].windows()}


def replace_days(diary: list[DiaryEntry], entries: list[DiaryEntry]) -> list[Record]:
    """The diary with the given entries in place of the headache-free entries of their dates."""
    taken = {(e.patient_id, e.date) for e in entries}
    return [e for e in diary if (e.patient_id, e.date) not in taken] + list(entries)


START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # on ANCHOR


# --- windows and the anchor ------------------------------------------------------------------


def test_window_1_starts_on_the_first_session_day_and_window_0_is_the_28_days_before() -> None:
    found = windows([session(START), *full_diary(-28, 27)])
    assert sorted(found) == [0, 1]
    assert (found[0].start, found[0].end) == (date(2026, 2, 2), date(2026, 3, 1))
    assert (found[1].start, found[1].end) == (date(2026, 3, 2), date(2026, 3, 29))
    assert found[0].diary_days == found[1].diary_days == 28


def test_window_borders_day_27_is_window_1_and_day_28_is_window_2() -> None:
    assert window_of(day(-29), ANCHOR) == -1
    assert window_of(day(-28), ANCHOR) == 0
    assert window_of(day(-1), ANCHOR) == 0
    assert window_of(day(0), ANCHOR) == 1
    assert window_of(day(27), ANCHOR) == 1
    assert window_of(day(28), ANCHOR) == 2


def test_a_headache_on_the_last_day_of_the_baseline_counts_in_window_0_only() -> None:
    found = windows([session(START), attack(day(-1)), attack(day(0))])
    assert (found[0].headache_days, found[1].headache_days) == (1, 1)
    assert (found[0].diary_days, found[1].diary_days) == (1, 1)


def test_windows_without_a_diary_day_are_not_reported_and_negative_windows_are() -> None:
    found = windows([session(START), free(day(-60)), free(day(90))])
    assert sorted(found) == [-2, 4]
    assert found[-2].start == day(-84)


def test_the_anchor_is_the_local_date_of_the_session_start_not_the_utc_date() -> None:
    # 23:30 at UTC-05:00 on 1 March is 04:30 UTC on 2 March: the session is on 1 March.
    late_evening = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    found = windows([session(late_evening), free(date(2026, 3, 1)), free(date(2026, 2, 28))])
    assert found[1].start == date(2026, 3, 1)
    assert found[0].end == date(2026, 2, 28)
    # and early morning east of UTC: 00:30 at +09:00 on 2 March is still 1 March in UTC
    early = datetime(2026, 3, 2, 0, 30, tzinfo=timezone(timedelta(hours=9)))
    assert windows([session(early), free(date(2026, 3, 2))])[1].start == date(2026, 3, 2)


def test_a_stopped_session_anchors_the_windows_a_not_done_one_does_not() -> None:
    stopped = [session(START, "stopped"), free(day(-1))]
    assert Cohort().add_all(stopped).patients["P1"].first_session == ANCHOR
    not_done = [
        session(START - timedelta(days=10), "not-done", session_id="S0"),
        session(START, "completed"),
        free(day(-1)),
    ]
    patient = Cohort().add_all(not_done).patients["P1"]
    assert patient.first_session == ANCHOR
    assert patient.windows()[0].sessions == 0  # the not-done session is not counted


def test_only_not_done_sessions_means_untreated_anchored_at_the_first_diary_day() -> None:
    patient = Cohort().add_all([session(START, "not-done"), free(day(5)), free(day(40))])
    found = patient.patients["P1"]
    assert found.treated is False
    assert found.anchor == day(5)
    assert [(w.window, w.start) for w in found.windows()] == [(1, day(5)), (2, day(33))]
    assert found.outcome() is None


def test_a_patient_without_sessions_starts_at_the_earliest_diary_date_in_any_input_order() -> None:
    found = windows([free(day(31)), free(day(30)), free(day(3)), attack(day(10))])
    assert [(k, w.start, w.diary_days) for k, w in found.items()] == [
        (1, day(3), 3),
        (2, day(31), 1),
    ]


def test_a_patient_with_sessions_but_no_diary_has_no_window() -> None:
    patient = Cohort().add_all([session(START)]).patients["P1"]
    assert patient.windows() == []
    assert patient.outcome() is not None
    assert patient.outcome().baseline is None  # type: ignore[union-attr]


def test_sessions_count_in_the_window_of_their_local_date() -> None:
    records: list[Record] = [
        session(START, session_id="S1"),
        session(START + timedelta(days=27), session_id="S2"),
        session(START + timedelta(days=28), "stopped", session_id="S3"),
        session(START + timedelta(days=29), "not-done", session_id="S4"),
        *full_diary(0, 60),
    ]
    found = windows(records)
    assert (found[1].sessions, found[2].sessions, found[3].sessions) == (2, 1, 0)


# --- day counts --------------------------------------------------------------------------------


def test_diary_days_are_distinct_dates_and_two_entries_on_one_date_count_once() -> None:
    found = windows([free(day(0)), attack(day(0), entry_id="second"), free(day(1))])
    assert (found[1].diary_days, found[1].headache_days) == (2, 1)


def test_repeated_doses_on_one_day_are_one_medication_day() -> None:
    doses = (
        MedicationIntake("sumatriptan", dose_mg=50),
        MedicationIntake("sumatriptan", dose_mg=50),
        MedicationIntake("ibuprofen", dose_mg=400),
    )
    again = attack(day(0), entry_id="later", medications=(MedicationIntake("ibuprofen"),))
    found = windows([attack(day(0), medications=doses), again])[1]
    assert (found.acute_medication_days, found.triptan_ergot_days) == (1, 1)
    assert found.simple_analgesic_days == 1


def test_drug_classes_other_counts_only_as_acute_medication() -> None:
    entries = [
        attack(day(0), medications=(MedicationIntake("other", drug_text="x"),)),
        attack(day(1), medications=(MedicationIntake("dihydroergotamine"),)),
        attack(day(2), medications=(MedicationIntake("naproxen"),)),
        attack(day(3), medications=(MedicationIntake("eletriptan"), MedicationIntake("aspirin"))),
    ]
    found = windows(entries)[1]
    assert found.acute_medication_days == 4
    assert found.triptan_ergot_days == 2
    assert found.simple_analgesic_days == 2


# --- migraine days -----------------------------------------------------------------------------


def test_ichd3_criteria_b_c_d_from_the_diary_fields() -> None:
    assert migraine_criteria(migraine(day(0))) == (True, True, True)
    plain = attack(day(0))
    assert migraine_criteria(plain) == (True, False, False)
    assert migraine_criteria(attack(day(0), duration_minutes=29)) == (False, False, False)
    # C: unilateral and moderate pain (the diary records no pulsating quality, no aggravation)
    assert migraine_criteria(
        attack(day(0), laterality="right", severity=4, severity_category=None)
    )[1]
    assert not migraine_criteria(
        attack(day(0), laterality="right", severity=3, severity_category=None)
    )[1]
    # D: photophobia needs phonophobia too; nausea or vomiting alone is enough
    assert not migraine_criteria(attack(day(0), symptoms=("photophobia",)))[2]
    assert migraine_criteria(attack(day(0), symptoms=("photophobia", "phonophobia")))[2]
    assert migraine_criteria(attack(day(0), symptoms=("vomiting",)))[2]


def test_duration_from_onset_and_end_when_no_duration_is_given() -> None:
    onset = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    short = attack(day(0), duration_minutes=None, onset=onset, end=onset + timedelta(minutes=29))
    long = attack(day(0), duration_minutes=None, onset=onset, end=onset + timedelta(minutes=30))
    assert migraine_criteria(short)[0] is False
    assert migraine_criteria(long)[0] is True
    assert migraine_criteria(attack(day(0), duration_minutes=None))[0] is False  # unknown


def test_probable_migraine_two_of_b_c_d_is_a_migraine_day_one_is_not() -> None:
    assert is_migraine_entry(migraine(day(0)))
    assert is_migraine_entry(migraine(day(0), symptoms=()))  # B and C: probable migraine
    assert is_migraine_entry(attack(day(0), symptoms=("nausea",)))  # B and D
    assert not is_migraine_entry(attack(day(0)))  # B only
    assert not is_migraine_entry(migraine(day(0), duration_minutes=10, symptoms=()))  # C only


def test_aura_or_a_triptan_or_ergot_makes_any_headache_day_a_migraine_day() -> None:
    short = {"duration_minutes": 10}
    assert is_migraine_entry(attack(day(0), aura=True, **short))
    assert is_migraine_entry(attack(day(0), medications=(MedicationIntake("ergotamine"),), **short))
    assert not is_migraine_entry(
        attack(day(0), medications=(MedicationIntake("ibuprofen"),), **short)
    )


def test_aura_on_a_headache_free_day_is_not_a_migraine_day() -> None:
    aura_only = DiaryEntry("F1", "P1", day(0), False, SRC, aura=True)
    found = windows([aura_only])[1]
    assert (found.diary_days, found.headache_days, found.migraine_days) == (1, 0, 0)


def test_one_migraine_entry_makes_the_date_a_migraine_day_whatever_the_other_entry() -> None:
    found = windows([attack(day(0)), migraine(day(0), entry_id="second")])[1]
    assert (found.headache_days, found.migraine_days) == (1, 1)


def test_peak_pain_per_day_is_the_highest_entry_and_the_window_mean_uses_headache_days() -> None:
    entries = [
        attack(day(0), severity_category="mild"),
        attack(day(0), entry_id="b", severity_category="severe"),
        attack(day(1), severity_category=None, severity=5),
        free(day(2)),
    ]
    assert windows(entries)[1].mean_severity == (3 + 2) / 2


# --- incomplete windows, overuse ---------------------------------------------------------------


def test_a_window_with_23_diary_days_is_incomplete_and_24_complete() -> None:
    found = windows([*full_diary(0, 22), *full_diary(28, 51)])
    assert (found[1].diary_days, found[1].complete) == (23, False)
    assert (found[2].diary_days, found[2].complete) == (24, True)


def test_moh_risk_at_10_triptan_days_or_15_simple_analgesic_days() -> None:
    def window_with(drug: str, days: int) -> WindowMetrics:
        entries = [attack(day(i), medications=(MedicationIntake(drug),)) for i in range(days)]
        return windows(entries)[1]

    assert window_with("rizatriptan", 9).moh_risk is False
    assert window_with("rizatriptan", 10).moh_risk is True
    assert window_with("acetaminophen", 14).moh_risk is False
    assert window_with("acetaminophen", 15).moh_risk is True


def test_nine_triptan_days_and_fourteen_analgesic_days_together_are_not_flagged() -> None:
    entries = [attack(day(i), medications=(MedicationIntake("zolmitriptan"),)) for i in range(9)]
    entries += [attack(day(i), medications=(MedicationIntake("ibuprofen"),)) for i in range(9, 23)]
    found = windows(entries)[1]
    assert (found.acute_medication_days, found.moh_risk) == (23, False)


# --- baseline against follow-up ----------------------------------------------------------------


def _course(baseline_migraine: int, late_migraine: int, late_days: int = 28) -> PatientDays:
    diary = full_diary(-28, 55) + full_diary(56, 55 + late_days)
    migraines = [migraine(day(-28 + i)) for i in range(baseline_migraine)]
    migraines += [migraine(day(56 + i)) for i in range(late_migraine)]
    migraines += [migraine(day(0)), migraine(day(28)), migraine(day(29))]
    return Cohort().add_all([session(START), *replace_days(diary, migraines)]).patients["P1"]


def test_change_and_responder_weeks_9_to_12_against_baseline() -> None:
    outcome = _course(baseline_migraine=10, late_migraine=5).outcome()
    assert outcome is not None
    assert outcome.baseline is not None and outcome.baseline.migraine_days == 10
    assert outcome.change_weeks_9_12 == -5
    assert outcome.responder_50 is True
    assert [w.window for w in outcome.follow_up] == [1, 2, 3]
    assert outcome.follow_up_migraine_days == (1 + 2 + 5) / 3
    assert outcome.change_follow_up == (1 + 2 + 5) / 3 - 10


def test_six_of_ten_is_not_a_50_percent_response() -> None:
    outcome = _course(baseline_migraine=10, late_migraine=6).outcome()
    assert outcome is not None and outcome.responder_50 is False


def test_responder_is_empty_when_weeks_9_to_12_are_incomplete() -> None:
    outcome = _course(baseline_migraine=10, late_migraine=0, late_days=23).outcome()
    assert outcome is not None
    assert outcome.weeks_9_12 is not None and outcome.weeks_9_12.diary_days == 23
    assert (outcome.responder_50, outcome.change_weeks_9_12) == (None, None)
    assert [w.window for w in outcome.follow_up] == [1, 2]  # incomplete windows left out


def test_responder_is_empty_without_a_baseline_diary() -> None:
    patient = Cohort().add_all([session(START), *full_diary(0, 83)]).patients["P1"]
    outcome = patient.outcome()
    assert outcome is not None and outcome.baseline is None
    assert (outcome.responder_50, outcome.change_follow_up) == (None, None)
    assert outcome.follow_up_migraine_days == 0


# --- sessions as the report shows them -------------------------------------------------------


def test_session_summary_peak_heart_rate_and_blood_pressure_and_adverse_effects() -> None:
    vitals = (
        VitalsReading(START, "pre", heart_rate=70, systolic=120, diastolic=80),
        VitalsReading(START + timedelta(minutes=20), "during", heart_rate=96),
        VitalsReading(START + timedelta(minutes=30), "during", systolic=150, diastolic=70),
        VitalsReading(START + timedelta(minutes=40), "post", systolic=150, diastolic=95),
    )
    record = KetamineSession(
        "S1",
        "P1",
        START,
        "intravenous",
        SRC,
        status="stopped",
        status_reason="x",
        dose_mg=20,
        vitals=vitals,
        adverse_effects=(AdverseEffect("dissociation", "moderate"), AdverseEffect("nausea")),
    )
    summary = Cohort().add_all([record]).patients["P1"].sessions[0]
    assert (summary.peak_heart_rate, summary.peak_systolic, summary.peak_diastolic) == (96, 150, 95)
    assert summary.adverse_effects == (("dissociation", "moderate"), ("nausea", None))
    assert (summary.stopped, summary.given) == (True, True)


# --- properties --------------------------------------------------------------------------------

DRUGS = st.sampled_from(
    ["ibuprofen", "acetaminophen", "sumatriptan", "ergotamine", "naproxen", "other"]
)


@st.composite
def diary_entries(draw: st.DrawFn) -> DiaryEntry:
    on = day(draw(st.integers(-70, 120)))
    patient = draw(st.sampled_from(["P1", "P2"]))
    if not draw(st.booleans()):
        return DiaryEntry("F", patient, on, False, SRC, aura=draw(st.none() | st.booleans()))
    medications = tuple(
        MedicationIntake(drug, drug_text="x" if drug == "other" else None)
        for drug in draw(st.lists(DRUGS, max_size=4))
    )
    return DiaryEntry(
        "A",
        patient,
        on,
        True,
        SRC,
        duration_minutes=draw(st.none() | st.integers(1, 4000)),
        severity=draw(st.none() | st.integers(0, 10)),
        severity_category=draw(st.none() | st.sampled_from(["none", "mild", "moderate", "severe"])),
        laterality=draw(st.none() | st.sampled_from(["left", "right", "bilateral"])),
        aura=draw(st.none() | st.booleans()),
        symptoms=tuple(
            draw(st.lists(st.sampled_from(["nausea", "vomiting", "photophobia", "phonophobia"])))
        ),
        medications=medications,
    )


@st.composite
def sessions(draw: st.DrawFn) -> KetamineSession:
    offset = draw(st.integers(-50, 100))
    hours = draw(st.integers(-12, 14))
    start = datetime.combine(day(offset), datetime.min.time()).replace(
        hour=draw(st.integers(0, 23)), tzinfo=timezone(timedelta(hours=hours))
    )
    return session(
        start,
        draw(st.sampled_from(["completed", "stopped", "not-done"])),
        draw(st.sampled_from(["P1", "P2"])),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(diary_entries(), max_size=80), st.lists(sessions(), max_size=4))
def test_counts_never_exceed_the_days(
    entries: list[DiaryEntry], given_sessions: list[KetamineSession]
) -> None:
    cohort = Cohort().add_all([*given_sessions, *entries])
    for patient in cohort.patients.values():
        listed = patient.windows()
        assert sum(w.diary_days for w in listed) == len(patient.days)
        for w in listed:
            assert 1 <= w.diary_days <= 28
            assert w.migraine_days <= w.headache_days <= w.diary_days
            assert w.triptan_ergot_days <= w.acute_medication_days <= w.diary_days
            assert w.simple_analgesic_days <= w.acute_medication_days
            assert (w.end - w.start).days == 27
            assert all(w.start <= d <= w.end for d in patient.days if window_of(d, w.start) == 1)
        assert [w.window for w in listed] == sorted({w.window for w in listed})
