"""Resources made from list items are keyed by the item's content, not its list position:
reordering a list never moves data to another resource id (ids.item_keys)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from migrainefhir import ids
from migrainefhir.convert import convert_record
from migrainefhir.input.records import MedicationIntake
from tests.convert_records import CTX, attack_entry, completed_session


def test_item_keys_number_only_the_repeats_in_list_order() -> None:
    assert ids.item_keys(["a", "b", "a", "a", "c", "b"]) == ["a", "b", "a.2", "a.3", "c", "b.2"]


def test_key_time_is_the_instant_in_utc_whatever_the_offset() -> None:
    cet = datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=1)))
    assert ids.key_time(cet) == "20260301T140000Z"
    assert ids.key_time(cet.astimezone(UTC)) == "20260301T140000Z"


def test_item_key_leaves_out_absent_parts() -> None:
    assert ids.item_key("ibuprofen", None, "20260301T140000Z") == "ibuprofen_20260301T140000Z"


def _content(resources: list[dict[str, Any]]) -> dict[str, str]:
    """resource id -> the resource without its id (what would move if ids followed positions)."""
    return {r["id"]: repr({k: v for k, v in r.items() if k != "id"}) for r in resources}


def _list_resources(resources: list[dict[str, Any]], role_part: str) -> list[dict[str, Any]]:
    return [
        r
        for r in resources
        if isinstance(r.get("identifier"), (list, dict)) and role_part in str(r["identifier"])
    ]


def test_reordering_medications_keeps_every_statement_id() -> None:
    entry = attack_entry()
    reordered = replace(entry, medications=tuple(reversed(entry.medications)))
    before = _list_resources(convert_record(entry, CTX), "/medication/")
    after = _list_resources(convert_record(reordered, CTX), "/medication/")
    assert len(before) == 3
    assert _content(before) == _content(after)


def test_reordering_vitals_and_adverse_effects_keeps_every_id() -> None:
    session = completed_session()
    reordered = replace(
        session,
        vitals=tuple(reversed(session.vitals)),
        adverse_effects=tuple(reversed(session.adverse_effects)),
    )
    for part in ("/vitals/", "/adverse-effect/"):
        before = _list_resources(convert_record(session, CTX), part)
        after = _list_resources(convert_record(reordered, CTX), part)
        assert before
        assert _content(before) == _content(after)


def test_reordering_aura_features_keeps_every_id() -> None:
    entry = attack_entry()
    reordered = replace(entry, aura_symptoms=tuple(reversed(entry.aura_symptoms)))
    before = {r["id"] for r in _list_resources(convert_record(entry, CTX), "/aura/")}
    after = {r["id"] for r in _list_resources(convert_record(reordered, CTX), "/aura/")}
    assert len(before) == 2
    assert before == after


def test_removing_an_intake_leaves_the_others_ids_alone() -> None:
    entry = attack_entry()
    shorter = replace(entry, medications=entry.medications[1:])
    before = {r["id"] for r in _list_resources(convert_record(entry, CTX), "/medication/")}
    after = {r["id"] for r in _list_resources(convert_record(shorter, CTX), "/medication/")}
    assert after < before
    assert len(before - after) == 1


def test_identical_intakes_are_two_statements_numbered_in_order() -> None:
    dose = MedicationIntake(drug="ibuprofen", dose_mg=400)
    entry = replace(attack_entry(), medications=(dose, dose))
    values = [
        r["identifier"][0]["value"]
        for r in convert_record(entry, CTX)
        if r["resourceType"] == "MedicationStatement"
    ]
    assert values == ["E123/medication/ibuprofen", "E123/medication/ibuprofen.2"]
