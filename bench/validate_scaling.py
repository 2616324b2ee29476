"""How validate_bundle scales: a collection Bundle of N entries, in "full" and "fast" mode.

Run: python bench/validate_scaling.py [N ...]   (default 10000 100000; full mode is only run
up to 20000 entries unless --full-all is given, as it costs ~0.5 ms per entry).

The Bundle holds one Patient, then session Procedures, each followed by heart-rate
Observations (claiming the session-vital-sign profile) that reference it and the Patient.
Entries/s that stay flat as N grows mean no quadratic step.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

from migrainefhir.validate import validate_bundle

NS = uuid.UUID("2b9c4e5c-7d2f-4f0a-9b1e-3c5d7e9f1a2b")
PROFILE = "https://migrainefhir.org/fhir/StructureDefinition/session-vital-sign"


def _id(kind: str, n: int) -> str:
    return str(uuid.uuid5(NS, f"{kind}-{n}"))


def build(entries: int) -> dict[str, Any]:
    patient = _id("patient", 0)
    out: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{patient}",
            "resource": {"resourceType": "Patient", "id": patient, "gender": "female"},
        }
    ]
    procedure = ""
    for n in range(1, entries):
        if n % 5 == 1:
            procedure = _id("procedure", n)
            out.append({"fullUrl": f"urn:uuid:{procedure}", "resource": {
                "resourceType": "Procedure", "id": procedure, "status": "completed",
                "code": {"text": "Ketamine infusion"},
                "subject": {"reference": f"urn:uuid:{patient}"},
                "performedPeriod": {"start": "2024-03-01T10:00:00+01:00",
                                    "end": "2024-03-01T10:45:00+01:00"}}})  # fmt: skip
            continue
        obs = _id("observation", n)
        out.append({"fullUrl": f"urn:uuid:{obs}", "resource": {
            "resourceType": "Observation", "id": obs, "meta": {"profile": [PROFILE]},
            "identifier": [{"system": "https://example.org/s", "value": f"s-{n}"}],
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"urn:uuid:{patient}"},
            "partOf": [{"reference": f"urn:uuid:{procedure}"}],
            "effectiveDateTime": "2024-03-01T10:15:00+01:00",
            "valueQuantity": {"value": 60 + n % 40, "unit": "/min",
                              "system": "http://unitsofmeasure.org", "code": "/min"}}})  # fmt: skip
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
