"""De-identification (deidentify.py): keyed pseudonyms, a per-patient date shift, nothing else.

Run over the shipped examples (4 patients, 6 months of diaries, ketamine courses): intervals
and headache-day counts survive exactly; no id, name, identifier, birth date or free text of
the input survives in the converted FHIR output; the output is still valid R4.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from migrainefhir.convert import ConvertContext, convert_record, patient_stub
from migrainefhir.errors import UsageError
from migrainefhir.input.deidentify import (
    MAX_SHIFT_DAYS,
    MIN_KEY_BYTES,
    WITHHELD_TEXT,
    Deidentifier,
    load_key,
)
from migrainefhir.input.intake import InputOptions, checked_records
from migrainefhir.input.records import DiaryEntry, KetamineSession, PatientRecord, Record
from migrainefhir.schema import ID_PATTERN
from migrainefhir.validate import ResourceValidator, validate_record_resources

EXAMPLES = Path(__file__).parent.parent / "examples" / "ndjson"
KEY = b"k" * MIN_KEY_BYTES
OTHER_KEY = b"o" * MIN_KEY_BYTES
CTX = ConvertContext("https://example.org/source", datetime(2026, 7, 1, tzinfo=UTC), "test")


def example_records() -> list[Record]:
    records = []
    for checked in checked_records([str(EXAMPLES)], InputOptions()):
        assert checked.record is not None, checked.problems
        records.append(checked.record)
    return records


RECORDS = example_records()


def deidentified(key: bytes = KEY) -> list[Record]:
    deidentifier = Deidentifier(key)
    return [deidentifier.apply(record) for record in RECORDS]


def times_of(record: Record) -> list[datetime | date]:
    """Every date and date-time of a record, in a fixed order."""
    found: list[datetime | date | None] = [record.recorded_at]
    if isinstance(record, DiaryEntry):
        found += [record.date, record.onset, record.end]
        found += [m.taken_at for m in record.medications]
    elif isinstance(record, KetamineSession):
        found += [record.start, record.end] + [v.time for v in record.vitals]
    else:
        found.append(record.birth_date)
    return [t for t in found if t is not None]


def test_the_examples_cover_every_field_that_is_changed() -> None:
    diaries = [r for r in RECORDS if isinstance(r, DiaryEntry)]
    sessions = [r for r in RECORDS if isinstance(r, KetamineSession)]
    patients = [r for r in RECORDS if isinstance(r, PatientRecord)]
    assert any(r.notes for r in diaries) and any(r.medications for r in diaries)
    assert any(r.performer_name and r.course_id and r.location_id for r in sessions)
    assert any(r.post_care for r in sessions) and any(r.vitals for r in sessions)
    assert all(r.family and r.given and r.birth_date and r.identifiers for r in patients)


def test_the_same_key_gives_the_same_output() -> None:
    assert deidentified() == deidentified()


def test_another_key_gives_other_ids_and_other_shifts() -> None:
    ours, theirs = deidentified(KEY), deidentified(OTHER_KEY)
    assert all(a.record_id != b.record_id for a, b in zip(ours, theirs, strict=True))
    patients = sorted({r.patient_id for r in RECORDS})
    ours_shift = [Deidentifier(KEY).shift_days(p) for p in patients]
    theirs_shift = [Deidentifier(OTHER_KEY).shift_days(p) for p in patients]
    assert ours_shift != theirs_shift


def test_pseudonyms_fit_the_id_rule_and_keep_a_patients_records_linked() -> None:
    rule = re.compile(ID_PATTERN)
    for before, after in zip(RECORDS, deidentified(), strict=True):
        assert rule.match(after.record_id) and rule.match(after.patient_id)
        assert after.patient_id == Deidentifier(KEY).pseudonym("patient", before.patient_id)
    assert len({r.patient_id for r in deidentified()}) == len({r.patient_id for r in RECORDS})


def test_id_spaces_are_kept_apart() -> None:
    deidentifier = Deidentifier(KEY)
    assert deidentifier.pseudonym("patient", "x1") != deidentifier.pseudonym("entry", "x1")


def test_every_date_of_a_patient_moves_by_the_same_nonzero_whole_days() -> None:
    for before, after in zip(RECORDS, deidentified(), strict=True):
        shift = Deidentifier(KEY).shift_days(before.patient_id)
        assert 1 <= abs(shift) <= MAX_SHIFT_DAYS
        for old, new in zip(times_of(before), times_of(after), strict=True):
            assert new - old == timedelta(days=shift)
            if isinstance(old, datetime):
                assert isinstance(new, datetime)
                assert (new.time(), new.utcoffset()) == (old.time(), old.utcoffset())


def test_shifts_are_spread_and_never_zero() -> None:
    shifts = [Deidentifier(KEY).shift_days(f"patient-{n}") for n in range(2000)]
    assert 0 not in shifts
    assert min(shifts) < -300 and max(shifts) > 300


def test_intervals_between_any_two_times_of_a_patient_are_unchanged() -> None:
    def intervals(records: list[Record]) -> dict[int, list[timedelta]]:
        per_patient: dict[int, list[datetime]] = defaultdict(list)
        order = {pid: n for n, pid in enumerate(dict.fromkeys(r.patient_id for r in records))}
        for record in records:
            per_patient[order[record.patient_id]] += [
                t for t in times_of(record) if isinstance(t, datetime)
            ]
        return {
            n: [b - a for a, b in itertools.pairwise(times)] for n, times in per_patient.items()
        }

    assert intervals(deidentified()) == intervals(RECORDS)


def test_headache_day_counts_are_unchanged() -> None:
    def headache_days(records: list[Record]) -> Counter[int]:
        order = {pid: n for n, pid in enumerate(dict.fromkeys(r.patient_id for r in records))}
        days = {
            (order[r.patient_id], r.date)
            for r in records
            if isinstance(r, DiaryEntry) and r.headache
        }
        return Counter(patient for patient, _ in days)

    before = headache_days(RECORDS)
    assert sum(before.values()) > 20
    assert headache_days(deidentified()) == before


def test_names_identifiers_and_free_text_are_dropped() -> None:
    for record in deidentified():
        if isinstance(record, PatientRecord):
            assert (record.family, record.given, record.identifiers) == (None, (), ())
        elif isinstance(record, DiaryEntry):
            assert (record.notes, record.trigger_text) == (None, None)
            assert all(m.drug_text is None for m in record.medications)
        else:
            assert (record.notes, record.post_care) == (None, None)
            assert record.status_reason in (None, WITHHELD_TEXT)
            assert record.performer_name is None
            assert all(a.text is None for a in record.adverse_effects)


def secrets_of(record: Record) -> set[str]:
    """Every id, name, identifier, birth date and free text of an input record."""
    found: set[str | None] = {record.record_id, record.patient_id}
    if isinstance(record, PatientRecord):
        found |= {record.family, *record.given, *(i.value for i in record.identifiers)}
        found.add(record.birth_date.isoformat() if record.birth_date else None)
    elif isinstance(record, DiaryEntry):
        found |= {record.notes, record.trigger_text, *(m.drug_text for m in record.medications)}
    else:
        found |= {record.course_id, record.performer_id, record.location_id}
        found |= {record.performer_name, record.post_care, record.notes, record.status_reason}
        found |= {a.text for a in record.adverse_effects}
    return {s for s in found if s}


def converted(records: list[Record]) -> list[dict[str, object]]:
    resources = []
    for record in records:
        resources += convert_record(record, CTX)
    for pid in sorted(
        {r.patient_id for r in records}
        - {r.patient_id for r in records if isinstance(r, PatientRecord)}
    ):
        resources.append(patient_stub(pid, CTX))
    return resources


def test_no_input_id_name_birth_date_or_free_text_survives_in_the_fhir_output() -> None:
    secrets = set().union(*(secrets_of(r) for r in RECORDS))
    assert len(secrets) > 100
    text = json.dumps(converted(deidentified()), ensure_ascii=False)
    survivors = sorted(s for s in secrets if s in text)
    assert survivors == []
    # ... whereas without de-identification they are all there (the check can fail).
    plain = json.dumps(converted(RECORDS), ensure_ascii=False)
    assert [s for s in secrets if s in plain and len(s) > 6]


def test_deidentified_records_convert_into_valid_fhir() -> None:
    validator = ResourceValidator("full")
    for record in deidentified():
        resources = convert_record(record, CTX)
        patient = (
            None if isinstance(record, PatientRecord) else patient_stub(record.patient_id, CTX)
        )
        errors = [
            p
            for p in validate_record_resources(resources, patient, validator=validator)
            if p.is_error
        ]
        assert errors == []


def test_a_short_key_is_refused() -> None:
    with pytest.raises(UsageError, match="at least 32 bytes"):
        Deidentifier(b"short")


def test_load_key_reads_a_private_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"0123456789abcdef0123456789abcdef0123\n")
    os.chmod(path, 0o600)
    assert load_key(str(path)) == b"0123456789abcdef0123456789abcdef0123"


def test_load_key_refuses_a_key_file_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"x" * 40)
    os.chmod(path, 0o644)
    with pytest.raises(UsageError, match="readable by others"):
        load_key(str(path))


def test_load_key_refuses_a_short_or_missing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"x" * 8)
    os.chmod(path, 0o600)
    with pytest.raises(UsageError, match="at least 32"):
        load_key(str(path))
    with pytest.raises(UsageError, match="cannot read"):
        load_key(str(tmp_path / "missing"))
