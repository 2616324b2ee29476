"""Golden files: the exact resources for a handful of records, checked in under
tests/data/golden/ and compared as parsed JSON.

A change to the converters that changes these is a change to what integrators receive:
review the diff, then regenerate on purpose with

    MIGRAINEFHIR_REGENERATE_GOLDEN=1 /work/venv/bin/python -m pytest tests/test_convert_golden.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from migrainefhir.convert import convert_record
from migrainefhir.input.records import Record
from tests.convert_records import (
    CTX,
    attack_entry,
    completed_session,
    headache_free_entry,
    not_done_session,
    patient_record,
    stopped_session,
)

GOLDEN = Path(__file__).parent / "data" / "golden"
CASES: dict[str, Callable[[], Record]] = {
    "diary-attack-everything": attack_entry,
    "diary-headache-free-day": headache_free_entry,
    "session-completed-iv": completed_session,
    "session-stopped": stopped_session,
    "session-not-done": not_done_session,
    "patient": patient_record,
}
REGENERATE = os.environ.get("MIGRAINEFHIR_REGENERATE_GOLDEN") == "1"


@pytest.mark.parametrize("case", sorted(CASES))
def test_output_matches_golden_file(case: str) -> None:
    resources = convert_record(CASES[case](), CTX)
    path = GOLDEN / f"{case}.json"
    if REGENERATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        text = json.dumps(resources, indent=2, ensure_ascii=False) + "\n"
        path.write_text(text, encoding="utf-8")
    assert resources == json.loads(path.read_text(encoding="utf-8"))


def test_every_golden_file_has_a_case() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(CASES)
