"""De-identification for research export: a pure transform of typed records (records.py).

`Deidentifier(key).apply(record)` returns the record with

- every id (patient, entry, session, course, performer, location) replaced by a keyed hash
  (HMAC-SHA256 under the secret key, 32 hex digits, so it still fits the id rule): the same id
  and key always give the same pseudonym, so a patient's records stay linked across files and
  runs, and without the key nobody can compute the pseudonym of a known id;
- every date and date-time of one patient moved by the same whole number of days, derived
  from HMAC(key, patient id) (1 to 365 days, earlier or later): the interval between any two
  of the patient's times, each time of day and UTC offset, and the number of headache days
  stay exactly as they were; the birth date moves by the same days, so the age at every diary
  day and session is kept;
- names, EHR identifiers (MRNs, ...) and every free-text field dropped (notes, trigger_text,
  drug_text, post_care, adverse-effect text, performer_name); a status_reason, which a stopped
  or not-done session must have, becomes the fixed text WITHHELD_TEXT.

What it protects and what it does not: docs/deidentify.md. It is pseudonymisation, not
anonymisation: whoever holds the key can re-link, and rare combinations can re-identify.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TypeVar

from migrainefhir.errors import UsageError
from migrainefhir.input.records import (
    AdverseEffect,
    DiaryEntry,
    KetamineSession,
    MedicationIntake,
    PatientRecord,
    Record,
    VitalsReading,
)

# At least 256 bits of secret: the key is all that stands between a pseudonym and its id.
MIN_KEY_BYTES = 32
# Dates move by 1 to this many days, earlier or later (never 0: a record must not keep its
# real date by chance). A year hides the exact day and the weekday; it keeps the season
# approximately (within a year), which headache research often needs.
MAX_SHIFT_DAYS = 365
# What replaces status_reason, which the contract and the session profile require for a stopped
# or not-done session: the free text may name people or places, so it is not kept.
WITHHELD_TEXT = "withheld (de-identified export)"
# Pseudonyms are this many hex digits of the HMAC (128 bits: no collision in any real cohort).
PSEUDONYM_HEX_DIGITS = 32

T = TypeVar("T", date, datetime)


class Deidentifier:
    """Pseudonymise ids, shift dates per patient and drop direct identifiers and free text."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise UsageError(f"the de-identification key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    # -- the building blocks ------------------------------------------------------------------

    def _mac(self, *parts: str) -> bytes:
        message = b"\x00".join(part.encode("utf-8") for part in parts)
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def pseudonym(self, kind: str, value: str) -> str:
        """The keyed hash of one id; `kind` (patient, entry, ...) keeps the id spaces apart."""
        return self._mac("id", kind, value).hex()[:PSEUDONYM_HEX_DIGITS]

    def shift_days(self, patient_id: str) -> int:
        """The patient's secret date shift: -MAX_SHIFT_DAYS..-1 or 1..MAX_SHIFT_DAYS."""
        number = int.from_bytes(self._mac("date-shift", patient_id)[:8], "big")
        shift = number % (2 * MAX_SHIFT_DAYS) - MAX_SHIFT_DAYS
        return shift + 1 if shift >= 0 else shift

    # -- records --------------------------------------------------------------------------------

    def apply(self, record: Record) -> Record:
        """The de-identified copy of one record (the record itself is not changed)."""
        shift = timedelta(days=self.shift_days(record.patient_id))
        if isinstance(record, DiaryEntry):
            return self._diary_entry(record, shift)
        if isinstance(record, KetamineSession):
            return self._ketamine_session(record, shift)
        return self._patient(record, shift)

    def _diary_entry(self, entry: DiaryEntry, shift: timedelta) -> DiaryEntry:
        return replace(
            entry,
            entry_id=self.pseudonym("entry", entry.entry_id),
            patient_id=self.pseudonym("patient", entry.patient_id),
            date=entry.date + shift,
            onset=_moved(entry.onset, shift),
            end=_moved(entry.end, shift),
            trigger_text=None,
            medications=tuple(_medication(m, shift) for m in entry.medications),
            notes=None,
            recorded_at=_moved(entry.recorded_at, shift),
        )

    def _ketamine_session(self, session: KetamineSession, shift: timedelta) -> KetamineSession:
        return replace(
            session,
            session_id=self.pseudonym("session", session.session_id),
            patient_id=self.pseudonym("patient", session.patient_id),
            start=session.start + shift,
            end=_moved(session.end, shift),
            status_reason=None if session.status_reason is None else WITHHELD_TEXT,
            course_id=self._optional("course", session.course_id),
            performer_id=self._optional("performer", session.performer_id),
            performer_name=None,
            location_id=self._optional("location", session.location_id),
            vitals=tuple(_vitals(reading, shift) for reading in session.vitals),
            adverse_effects=tuple(_adverse_effect(effect) for effect in session.adverse_effects),
            post_care=None,
            notes=None,
            recorded_at=_moved(session.recorded_at, shift),
        )

    def _patient(self, patient: PatientRecord, shift: timedelta) -> PatientRecord:
        return replace(
            patient,
            patient_id=self.pseudonym("patient", patient.patient_id),
            identifiers=(),
            family=None,
            given=(),
            birth_date=_moved(patient.birth_date, shift),
            recorded_at=_moved(patient.recorded_at, shift),
        )

    def _optional(self, kind: str, value: str | None) -> str | None:
        return None if value is None else self.pseudonym(kind, value)


def _moved(value: T | None, shift: timedelta) -> T | None:
    """A date or an aware date-time moved by whole days: time of day and UTC offset kept."""
    return None if value is None else value + shift


def _medication(intake: MedicationIntake, shift: timedelta) -> MedicationIntake:
    return replace(intake, drug_text=None, taken_at=_moved(intake.taken_at, shift))


def _vitals(reading: VitalsReading, shift: timedelta) -> VitalsReading:
    return replace(reading, time=reading.time + shift)


def _adverse_effect(effect: AdverseEffect) -> AdverseEffect:
    return replace(effect, text=None)


def load_key(path: str) -> bytes:
    """The secret key from a file that only its owner can read (like an SSH private key).

    Raises UsageError when the file is missing, readable by group or others, or too short.
    """
    try:
        mode = os.stat(path).st_mode
        with open(path, "rb") as handle:
            key = handle.read().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the key file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(
            f"the key file {path} is readable by others: make it private (chmod 600 {path})"
        )
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(
            f"the key file {path} holds {len(key)} bytes; it needs at least {MIN_KEY_BYTES} "
            "random bytes (e.g. `head -c 32 /dev/urandom | base64 > FILE`)"
        )
    return key
