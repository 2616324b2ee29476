"""docs/mapping.md stays in step with the contract and the converters."""

from __future__ import annotations

import re
from pathlib import Path

from migrainefhir import codes
from migrainefhir.convert import convert_record
from tests.convert_helpers import codings
from tests.convert_records import (
    CTX,
    attack_entry,
    completed_session,
    headache_free_entry,
    not_done_session,
    patient_record,
    stopped_session,
)
from tests.test_convert_terminology import codes_in_codes_py

MAPPING = (Path(__file__).parents[1] / "docs" / "mapping.md").read_text(encoding="utf-8")

# Every field of ../shared/spec/records.md (records and their list items).
CONTRACT_FIELDS = {
    "diary-entry": """record_type entry_id patient_id date headache onset end duration_minutes
        severity severity_category laterality aura aura_symptoms symptoms prodrome postdrome
        triggers trigger_text medications disability sleep_hours stress_level exercise_minutes
        notes recorded_at""",
    "medication intake": "drug drug_text dose_mg taken_at relief route",
    "ketamine-session": """record_type session_id patient_id start end status status_reason
        route product dose_mg weight_kg dose_mg_per_kg rate_mg_per_kg_per_h course_id
        session_number indication performer_id performer_name performer_role location_id
        vitals adverse_effects pain_before pain_after post_care notes recorded_at""",
    "vitals reading": "time phase heart_rate systolic diastolic spo2 respiratory_rate",
    "adverse effect": "effect severity text serious outcome",
    "patient": "patient_id identifiers family given birth_date gender recorded_at",
}


def documented_fields() -> set[str]:
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", MAPPING, flags=re.MULTILINE))


def test_every_contract_field_has_a_row() -> None:
    for fields in CONTRACT_FIELDS.values():
        missing = set(fields.split()) - documented_fields()
        assert missing == set()


def test_every_external_code_in_codes_py_is_documented() -> None:
    for code in codes_in_codes_py():
        if not code.system.startswith(codes.PROJECT_BASE):
            assert code.code in MAPPING, code


def test_every_code_the_converters_emit_is_documented() -> None:
    records = [
        attack_entry(),
        headache_free_entry(),
        completed_session(),
        stopped_session(),
        not_done_session(),
        patient_record(),
    ]
    for _system, code in {c for r in records for c in codings(convert_record(r, CTX))}:
        assert code in MAPPING, code


def test_every_project_profile_and_extension_is_documented() -> None:
    for url in codes.PROJECT_PROFILES:
        assert url.rsplit("/", 1)[1] in MAPPING, url
    for url in codes.PROJECT_EXTENSIONS:
        assert url in MAPPING, url


def test_every_project_code_system_and_concept_is_documented() -> None:
    for system in codes.PROJECT_CODE_SYSTEMS:
        assert f"MF/CodeSystem/{system.id}" in MAPPING, system.id
        for code, _display, _definition in system.concepts:
            assert f"`{code}`" in MAPPING or f"#{code}`" in MAPPING or f"/{code}`" in MAPPING, code
