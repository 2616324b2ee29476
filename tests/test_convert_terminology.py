"""The shipped project terminology matches codes.py and covers every project code we emit."""

from __future__ import annotations

from typing import Any

import pytest

from migrainefhir import codes, terminology
from migrainefhir.codes import Code
from migrainefhir.convert import convert_record
from tests.convert_helpers import codings, model_validate
from tests.convert_records import (
    CTX,
    attack_entry,
    completed_session,
    headache_free_entry,
    not_done_session,
    patient_record,
    stopped_session,
)

# The contract's enumerations (../shared/spec/records.md), each must map to a code.
CONTRACT_ENUMS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "severity_category": (codes.SEVERITY_CATEGORY, {"none", "mild", "moderate", "severe"}),
    "laterality": (codes.LATERALITY, {"left", "right", "bilateral"}),
    "aura_symptoms": (
        codes.AURA_SYMPTOMS,
        {
            "visual-flashing-lights",
            "visual-blind-spot",
            "visual-other",
            "tingling-face",
            "tingling-hands",
            "numbness",
            "speech-difficulty",
        },
    ),
    "symptoms": (
        codes.SYMPTOMS,
        {
            "nausea",
            "vomiting",
            "photophobia",
            "phonophobia",
            "osmophobia",
            "dizziness",
            "neck-pain",
            "fatigue",
        },
    ),
    "triggers": (
        codes.TRIGGERS,
        {
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
        },
    ),
    "disability": (codes.DISABILITY, {"none", "mild", "moderate", "severe"}),
    "drug": (
        codes.ACUTE_DRUGS,
        {
            "ibuprofen",
            "acetaminophen",
            "aspirin",
            "naproxen",
            "sumatriptan",
            "rizatriptan",
            "zolmitriptan",
            "eletriptan",
            "ergotamine",
            "dihydroergotamine",
            "other",
        },
    ),
    "relief": (codes.RELIEF, {"none", "partial", "complete"}),
    "route": (codes.ROUTES, {"intravenous", "intranasal", "intramuscular"}),
    "product": (codes.KETAMINE_PRODUCTS, {"ketamine", "esketamine"}),
    "indication": (
        codes.INDICATIONS,
        {
            "migraine",
            "chronic-migraine",
            "migraine-with-aura",
            "migraine-without-aura",
            "medication-overuse-headache",
        },
    ),
    "performer_role": (codes.PERFORMER_ROLES, {"physician", "nurse", "anesthesiologist", "other"}),
    "phase": (codes.SESSION_PHASES, {"pre", "during", "post"}),
    "effect": (
        codes.ADVERSE_EFFECTS,
        {
            "dissociation",
            "tachycardia",
            "hypertension",
            "nausea",
            "vomiting",
            "drowsiness",
            "disorientation",
            "dizziness",
            "hallucination",
            "other",
        },
    ),
    "adverse severity": (codes.ADVERSE_EVENT_SEVERITIES, {"mild", "moderate", "severe"}),
}


def codes_in_codes_py() -> set[Code]:
    """Every Code constant and every Code in a mapping table of codes.py."""
    found: set[Code] = set()
    for value in vars(codes).values():
        if isinstance(value, Code):
            found.add(value)
        elif isinstance(value, dict):
            found |= {v for v in value.values() if isinstance(v, Code)}
    return found


def project_concepts() -> set[tuple[str, str]]:
    return {
        (system.url, code)
        for system in codes.PROJECT_CODE_SYSTEMS
        for code, _display, _definition in system.concepts
    }


def test_shipped_files_are_what_codes_py_builds() -> None:
    """Regenerate with: python -m migrainefhir.terminology"""
    assert terminology.shipped() == terminology.build()


def test_shipped_resources_are_valid_r4b_models() -> None:
    for resource in terminology.shipped().values():
        model_validate(resource)


def test_every_code_system_is_complete_active_with_a_value_set() -> None:
    shipped = terminology.shipped()
    for system in codes.PROJECT_CODE_SYSTEMS:
        code_system = shipped[f"CodeSystem-{system.id}.json"]
        assert code_system["url"] == f"https://migrainefhir.org/fhir/CodeSystem/{system.id}"
        assert (code_system["status"], code_system["content"]) == ("active", "complete")
        assert code_system["count"] == len(code_system["concept"])
        value_set = shipped[f"ValueSet-{system.id}.json"]
        assert value_set["compose"] == {"include": [{"system": code_system["url"]}]}


def test_one_extension_definition_per_project_extension() -> None:
    urls = {
        r["url"]
        for r in terminology.shipped().values()
        if r["resourceType"] == "StructureDefinition"
    }
    assert urls == set(codes.PROJECT_EXTENSIONS)


@pytest.mark.parametrize("field", sorted(CONTRACT_ENUMS))
def test_every_contract_value_has_a_mapping(field: str) -> None:
    table, values = CONTRACT_ENUMS[field]
    assert set(table) == values


def test_every_project_code_used_is_defined_and_every_defined_code_is_used() -> None:
    used = {
        (code.system, code.code)
        for code in codes_in_codes_py()
        if code.system.startswith(codes.PROJECT_BASE)
    }
    assert used - project_concepts() == set()
    assert project_concepts() - used - codes.RESERVED_PROJECT_CODES == set()


def test_project_codes_in_converter_output_are_defined() -> None:
    records = [
        attack_entry(),
        headache_free_entry(),
        completed_session(),
        stopped_session(),
        not_done_session(),
        patient_record(),
    ]
    emitted = {c for r in records for c in codings(convert_record(r, CTX))}
    project = {c for c in emitted if c[0].startswith(codes.PROJECT_BASE)}
    assert project
    assert project <= project_concepts()


def test_no_project_code_under_an_external_system() -> None:
    for code in codes_in_codes_py():
        if code.system in (codes.SNOMED, codes.LOINC, codes.RXNORM):
            assert code.code[0].isdigit(), code
