"""The floor: the least work an export of the same input can do, to measure export against.

Reads NDJSON records, builds for each record the same number and kind of FHIR resource dicts
that migrainefhir writes (similar shape and size), and writes them with orjson to one NDJSON
file per resource type. No project code, no contract check, no validation. Workers split the
input into byte ranges exactly as the export does and their part files are concatenated in
order at the end, so it also pays for a merge.

    python bench/floor.py INPUT.ndjson... --out DIR [--jobs N]

Prints one JSON line: {"resources": N, "seconds": S}.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import orjson

SHARD_BYTES = 16 * 1024 * 1024
SOURCE = "https://example.org/migrainefhir/source"


def _id(*parts: str) -> str:
    digest = hashlib.md5("/".join(parts).encode()).hexdigest()  # an id, not security
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _meta(kind: str, record_id: str, profile: str, updated: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"source": f"{SOURCE}#{kind}/{record_id}", "profile": [profile]}
    if updated:
        meta["lastUpdated"] = updated
    return meta


def _observation(record: dict[str, Any], role: str, patient: str, when: Any) -> dict[str, Any]:
    record_id = record.get("entry_id") or record.get("session_id") or "?"
    kind = record["record_type"]
    resource = {
        "resourceType": "Observation",
        "id": _id(kind, record_id, role),
        "meta": _meta(kind, record_id, f"https://migrainefhir.org/fhir/{role}", None),
        "identifier": [{"system": f"{SOURCE}/{kind}", "value": f"{record_id}/{role}"}],
        "status": "final",
        "category": [_coding("http://hl7.org/fhir/uv/symptoms/CodeSystem/SymptomTemporary",
                             "symptom", "Symptom")],
        "code": _coding("http://loinc.org", "75325-1", "Symptom"),
        "subject": {"reference": f"Patient/{patient}"},
        "issued": record.get("recorded_at") or "2026-01-01T00:00:00Z",
        "performer": [{"reference": f"Patient/{patient}"}],
        "valueCodeableConcept": _coding("http://snomed.info/sct", "25064002", role),
    }  # fmt: skip
    if isinstance(when, dict):
        resource["effectivePeriod"] = when
    else:
        resource["effectiveDateTime"] = when
    return resource


def _diary(record: dict[str, Any]) -> list[dict[str, Any]]:
    patient = _id("patient", str(record.get("patient_id")))
    entry = str(record.get("entry_id"))
    onset = record.get("onset")
    when: Any = {"start": onset, "end": record.get("end") or onset} if onset else record["date"]
    primary = _observation(record, "headache", patient, when)
    primary["component"] = [
        {"code": _coding("http://loinc.org", "72514-3", "Pain severity"),
         "valueInteger": record.get("severity") or 0},
        {"code": _coding("http://loinc.org", "64750-3", "Severity of symptoms"),
         "valueCodeableConcept": _coding("http://snomed.info/sct", "6736007", "moderate")},
    ] + [
        {"code": _coding("http://loinc.org", "100752-5", "Exacerbating factors"),
         "valueCodeableConcept": _coding("https://migrainefhir.org/fhir/CodeSystem/trigger",
                                         trigger, trigger)}
        for trigger in record.get("triggers") or ()
    ]  # fmt: skip
    related = [
        _observation(record, f"symptom/{symptom}", patient, when)
        for symptom in dict.fromkeys(record.get("symptoms") or ())
    ]
    for phase in ("aura", "prodrome", "postdrome"):
        if record.get(phase) is not None or (phase == "aura" and record.get("aura_symptoms")):
            related.append(_observation(record, phase, patient, record["date"]))
    primary["extension"] = [
        {"url": "http://hl7.org/fhir/StructureDefinition/workflow-supportingInfo",
         "valueReference": {"reference": f"Observation/{obs['id']}"}}
        for obs in related
    ]  # fmt: skip
    medications = [
        {
            "resourceType": "MedicationStatement",
            "id": _id(entry, "medication", str(index)),
            "meta": _meta("diary-entry", entry, "https://migrainefhir.org/fhir/med", None),
            "identifier": [{"system": f"{SOURCE}/diary-entry", "value": f"{entry}/m/{index}"}],
            "status": "completed",
            "medicationCodeableConcept": _coding(
                "http://www.nlm.nih.gov/research/umls/rxnorm", "7258", str(intake.get("drug"))
            ),
            "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": intake.get("taken_at") or record["date"],
            "informationSource": {"reference": f"Patient/{patient}"},
            "reasonReference": [{"reference": f"Observation/{primary['id']}"}],
            "dosage": [
                {
                    "doseAndRate": [
                        {
                            "doseQuantity": {
                                "value": intake.get("dose_mg") or 0,
                                "unit": "mg",
                                "system": "http://unitsofmeasure.org",
                                "code": "mg",
                            }
                        }
                    ]
                }
            ],
        }
        for index, intake in enumerate(record.get("medications") or ())
    ]
    lifestyle = []
    for field in ("sleep_hours", "stress_level", "exercise_minutes"):
        if record.get(field) is not None:
            obs = _observation(record, field, patient, record["date"])
            del obs["valueCodeableConcept"]
            obs["valueQuantity"] = {"value": record[field], "unit": "h",
                                    "system": "http://unitsofmeasure.org", "code": "h"}  # fmt: skip
            lifestyle.append(obs)
    resources = [primary, *related, *medications, *lifestyle]
    return [*resources, _provenance(record, entry, patient, resources)]


def _provenance(
    record: dict[str, Any], record_id: str, patient: str, targets: list[dict[str, Any]]
) -> dict[str, Any]:
    kind = record["record_type"]
    return {
        "resourceType": "Provenance",
        "id": _id(kind, record_id, "provenance"),
        "meta": _meta(kind, record_id, "https://migrainefhir.org/fhir/provenance", None),
        "target": [{"reference": f"{r['resourceType']}/{r['id']}"} for r in targets],
        "recorded": "2026-07-01T00:00:00Z",
        "agent": [
            {"type": _coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                             "author", "Author"),
             "who": {"reference": f"Patient/{patient}"}},
            {"type": _coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                             "assembler", "Assembler"),
             "who": {"type": "Device", "display": "floor 0",
                     "identifier": {"system": "https://example.org/software", "value": "floor"}}},
        ],
        "entity": [{"role": "source", "what": {
            "identifier": {"system": f"{SOURCE}/{kind}", "value": record_id},
            "display": f"{kind} {record_id}"}}],
    }  # fmt: skip


def _session(record: dict[str, Any]) -> list[dict[str, Any]]:
    patient = _id("patient", str(record.get("patient_id")))
    session = str(record.get("session_id"))
    procedure = _observation(record, "procedure", patient, record.get("start"))
    procedure["resourceType"] = "Procedure"
    administration = _observation(record, "administration", patient, record.get("start"))
    administration["resourceType"] = "MedicationAdministration"
    vitals = [
        _observation(record, f"vitals/{index}", patient, reading.get("time"))
        for index, reading in enumerate(record.get("vitals") or ())
        for _ in ("heart", "pressure", "saturation")
    ]
    effects = [
        _observation(record, f"effect/{index}", patient, record.get("start"))
        for index, _ in enumerate(record.get("adverse_effects") or ())
    ]
    resources = [procedure, administration, *vitals, *effects]
    return [*resources, _provenance(record, session, patient, resources)]


def _patient(record: dict[str, Any]) -> list[dict[str, Any]]:
    pid = str(record.get("patient_id"))
    return [
        {
            "resourceType": "Patient",
            "id": _id("patient", pid),
            "meta": _meta("patient", pid, "https://migrainefhir.org/fhir/patient", None),
            "identifier": [{"system": f"{SOURCE}/patient", "value": pid}],
            "gender": record.get("sex") or "unknown",
            "birthDate": record.get("birth_date") or "1980-01-01",
        }
    ]


BUILDERS = {"diary-entry": _diary, "ketamine-session": _session, "patient": _patient}


def run_range(task: tuple[str, int, int, str]) -> int:
    """Read [start, end) of one NDJSON file; write this range's part files into `folder`."""
    path, start, end, folder = task
    handles: dict[str, Any] = {}
    written = 0
    with open(path, "rb") as source:
        source.seek(start)
        position = start
        for line in source:
            if position >= end:
                break
            position += len(line)
            if not line.strip():
                continue
            record = orjson.loads(line)
            for resource in BUILDERS[record["record_type"]](record):
                kind = resource["resourceType"]
                handle = handles.get(kind)
                if handle is None:
                    handle = handles[kind] = open(os.path.join(folder, kind), "wb")  # noqa: SIM115
                handle.write(orjson.dumps(resource) + b"\n")
                written += 1
    for handle in handles.values():
        handle.close()
    return written


def ranges(path: str) -> list[tuple[int, int]]:
    size = os.path.getsize(path)
    starts = [0]
    with open(path, "rb") as handle:
        while starts[-1] + SHARD_BYTES < size:
            handle.seek(starts[-1] + SHARD_BYTES)
            handle.readline()
            if handle.tell() >= size:
                break
            starts.append(handle.tell())
    return list(zip(starts, [*starts[1:], size], strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="floor.py", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    files = []
    for given in args.inputs:
        folder = Path(given)
        files += sorted(str(p) for p in folder.glob("*.ndjson")) if folder.is_dir() else [given]
    if args.out.exists():
        shutil.rmtree(args.out)
    work = args.out / ".parts"
    work.mkdir(parents=True)
    tasks = []
    for path in files:
        for start, end in ranges(path):
            folder = work / f"{len(tasks):06d}"
            folder.mkdir()
            tasks.append((path, start, end, str(folder)))
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            total = sum(pool.imap(run_range, tasks))
    else:
        total = sum(map(run_range, tasks))
    outputs: dict[str, Any] = {}
    for task in tasks:  # concatenate the part files in input order
        for part in sorted(Path(task[3]).iterdir()):
            if part.name not in outputs:
                outputs[part.name] = open(args.out / f"{part.name}.ndjson", "wb")  # noqa: SIM115
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, outputs[part.name], 1024 * 1024)
    for handle in outputs.values():
        handle.close()
    shutil.rmtree(work)
    seconds = time.perf_counter() - started
    print(orjson.dumps({"resources": total, "seconds": round(seconds, 3)}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
