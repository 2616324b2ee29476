"""How validate_bundle scales: a collection Bundle of N entries, in "full" and "fast" mode.

Run: python bench/validate_scaling.py [N ...]   (default 10000 100000; full mode is only run
up to 20000 entries unless --full-all is given, as it costs ~0.5 ms per entry).

The Bundle holds one Patient, then session Procedures, each followed by heart-rate
Observations that reference it and the Patient: copies (new ids) of what the converter writes
for the first shipped example session, so every entry passes our profiles.
Entries/s that stay flat as N grows mean no quadratic step.
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from migrainefhir import __version__
from migrainefhir.convert import ConvertContext, convert_record, patient_stub
from migrainefhir.ids import DEFAULT_SOURCE_SYSTEM
from migrainefhir.input.intake import InputOptions, checked_records
from migrainefhir.input.records import KetamineSession
from migrainefhir.validate import validate_bundle

NS = uuid.UUID("2b9c4e5c-7d2f-4f0a-9b1e-3c5d7e9f1a2b")
EXAMPLE = (
    Path(__file__).resolve().parent.parent / "examples" / "ndjson" / "ketamine-sessions.ndjson"
)
HEART_RATE = "8867-4"


def _id(kind: str, n: int) -> str:
    return str(uuid.uuid5(NS, f"{kind}-{n}"))


def _templates() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A Patient, a session Procedure and a heart-rate Observation exactly as the converter
    writes them (so they pass our profiles), from the first shipped example session."""
    ctx = ConvertContext(DEFAULT_SOURCE_SYSTEM, datetime(2026, 7, 1, tzinfo=UTC), __version__)
    for checked in checked_records([str(EXAMPLE)], InputOptions()):
        record = checked.record
        if isinstance(record, KetamineSession):
            resources = convert_record(record, ctx)
            procedure = next(r for r in resources if r["resourceType"] == "Procedure")
            heart = next(
                r
                for r in resources
                if r["resourceType"] == "Observation"
                and r["code"]["coding"][0]["code"] == HEART_RATE
            )
            return patient_stub(record.patient_id, ctx), procedure, heart
    raise SystemExit(f"no ketamine session in {EXAMPLE}")


def _copy(template: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    text = orjson.dumps(template).decode()
    for old, new in ids.items():
        text = text.replace(old, new)
    copy: dict[str, Any] = orjson.loads(text)
    return copy


def build(entries: int) -> dict[str, Any]:
    patient, procedure, heart = _templates()
    out: list[dict[str, Any]] = [{"fullUrl": f"urn:uuid:{patient['id']}", "resource": patient}]
    current = procedure["id"]
    for n in range(1, entries):
        if n % 5 == 1:
            current = _id("procedure", n)
            resource = _copy(procedure, {procedure["id"]: current})
        else:
            resource = _copy(heart, {heart["id"]: _id("observation", n), procedure["id"]: current})
        out.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": out}


def measure(entries: int, mode: str) -> None:
    bundle = build(entries)
    start = time.perf_counter()
    problems = validate_bundle(bundle, mode=mode)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    assert not problems, problems[:3]
    print(
        f"{mode:>4}  {entries:>7} entries  {seconds:8.2f} s  {entries / seconds:>9,.0f} entries/s"
    )


def main(argv: list[str]) -> None:
    full_all = "--full-all" in argv
    sizes = [int(a) for a in argv if a.isdigit()] or [10_000, 100_000]
    validate_bundle(build(10))  # imports, model classes and schema compilation, not timed
    for n in sizes:
        measure(n, "fast")
        if full_all or n <= 20_000:
            measure(n, "full")


if __name__ == "__main__":
    main(sys.argv[1:])
