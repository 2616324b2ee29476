"""The project's own FHIR R4 conformance resources, shipped for integrators to load.

One CodeSystem (content complete, status active) and one all-codes ValueSet per project code
system in codes.PROJECT_CODE_SYSTEMS, and one StructureDefinition per project extension in
codes.PROJECT_EXTENSIONS. They are built from codes.py (the single source of truth) and written
as JSON files next to this module; a test keeps the files equal to what is built here.

Also the problem-code CodeSystem (PROBLEM_CODE_SYSTEM): every permanent problem code of the
registry (problem_codes.py), the codes the OperationOutcomes of an export carry in
issue.details.coding, so that a validator (ours too) finds them defined.

Regenerate on purpose with:  python -m migrainefhir.terminology

A leaf, like codes.py: it may import the other leaves only, and every stage may import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from migrainefhir import codes
from migrainefhir.codes import ProjectCodeSystem
from migrainefhir.problem_codes import registry

# The CodeSystem of our permanent problem codes (docs/problem-codes.md); the URL the
# OperationOutcomes use (validate/outcome.py).
PROBLEM_CODE_SYSTEM_ID = "problem-code"

PUBLISHER = "migrainefhir"


def _pascal(identifier: str) -> str:
    return "".join(part.capitalize() for part in identifier.split("-"))


def code_system(system: ProjectCodeSystem) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": system.id,
        "url": system.url,
        "version": codes.TERMINOLOGY_VERSION,
        "name": system.name,
        "title": system.title,
        "status": "active",
        "experimental": False,
        "publisher": PUBLISHER,
        "description": system.description,
        "caseSensitive": True,
        "valueSet": system.value_set_url,
        "content": "complete",
        "count": len(system.concepts),
        "concept": [
            {"code": code, "display": display, "definition": definition}
            for code, display, definition in system.concepts
        ],
    }


def value_set(system: ProjectCodeSystem) -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "id": system.id,
        "url": system.value_set_url,
        "version": codes.TERMINOLOGY_VERSION,
        "name": system.name,
        "title": system.title,
        "status": "active",
        "experimental": False,
        "publisher": PUBLISHER,
        "description": f"All codes of {system.url}.",
        "compose": {"include": [{"system": system.url}]},
    }


@dataclass(frozen=True, slots=True)
class ExtensionDefinition:
    url: str
    title: str
    description: str
    context: str  # FHIRPath of the element the extension sits on
    value_type: str
    value_set: str | None = None  # required binding, for CodeableConcept values

    @property
    def id(self) -> str:
        return self.url.rsplit("/", 1)[1]


EXTENSIONS: tuple[ExtensionDefinition, ...] = (
    ExtensionDefinition(
        codes.RELIEF_EXTENSION,
        "Medication relief",
        "Relief of the headache the patient attributes to this acute medication (R4 "
        "MedicationStatement has no outcome element).",
        "MedicationStatement",
        "CodeableConcept",
        codes.RELIEF_CS.value_set_url,
    ),
    ExtensionDefinition(
        codes.SESSION_PHASE_EXTENSION,
        "Treatment session phase",
        "When, relative to the drug administration, this measurement was taken.",
        "Observation",
        "CodeableConcept",
        codes.SESSION_PHASE_CS.value_set_url,
    ),
    ExtensionDefinition(
        codes.DOSE_PER_WEIGHT_EXTENSION,
        "Dose per body weight",
        "The dose as prescribed per kilogram of body weight (UCUM mg/kg), next to the total "
        "dose in Dosage.dose.",
        "MedicationAdministration.dosage",
        "Quantity",
    ),
    ExtensionDefinition(
        codes.SESSION_NUMBER_EXTENSION,
        "Course session number",
        "Position of this session in its treatment course (the course is Procedure.basedOn).",
        "Procedure",
        "positiveInt",
    ),
)


def problem_code_system() -> ProjectCodeSystem:
    """The problem-code CodeSystem, from the registry: code, the code as display, its summary."""
    return ProjectCodeSystem(
        PROBLEM_CODE_SYSTEM_ID,
        "ProblemCode",
        "migrainefhir problem code",
        "The permanent codes of the problems migrainefhir reports (docs/problem-codes.md), as "
        "carried by the OperationOutcomes it writes. A code is never reused for another meaning.",
        tuple((info.code, info.code, info.summary) for info in registry().values()),
    )


def extension_definition(definition: ExtensionDefinition) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": "Extension.value[x]",
        "path": "Extension.value[x]",
        "min": 1,
        "type": [{"code": definition.value_type}],
    }
    if definition.value_set is not None:
        value["binding"] = {"strength": "required", "valueSet": definition.value_set}
    return {
        "resourceType": "StructureDefinition",
        "id": definition.id,
        "url": definition.url,
        "version": codes.TERMINOLOGY_VERSION,
        "name": _pascal(definition.id),
        "title": definition.title,
        "status": "active",
        "experimental": False,
        "publisher": PUBLISHER,
        "description": definition.description,
        "fhirVersion": "4.0.1",
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": definition.context}],
        "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "differential": {
            "element": [
                {
                    "id": "Extension",
                    "path": "Extension",
                    "short": definition.title,
                    "definition": definition.description,
                    "min": 0,
                    "max": "1",
                },
                {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                {"id": "Extension.url", "path": "Extension.url", "fixedUri": definition.url},
                value,
            ]
        },
    }


def build() -> dict[str, dict[str, Any]]:
    """File name -> resource, for every shipped conformance resource."""
    out: dict[str, dict[str, Any]] = {}
    for system in (*codes.PROJECT_CODE_SYSTEMS, problem_code_system()):
        out[f"CodeSystem-{system.id}.json"] = code_system(system)
        out[f"ValueSet-{system.id}.json"] = value_set(system)
    for definition in EXTENSIONS:
        out[f"StructureDefinition-{definition.id}.json"] = extension_definition(definition)
    return out


def dumps(resource: dict[str, Any]) -> str:
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def shipped() -> dict[str, dict[str, Any]]:
    """File name -> resource, as shipped in the package."""
    folder = resources.files(__name__)
    return {
        item.name: json.loads(item.read_text(encoding="utf-8"))
        for item in sorted(folder.iterdir(), key=lambda entry: entry.name)
        if item.name.endswith(".json")
    }


def write(folder: Path) -> list[Path]:
    """Write every built resource into folder; return the paths written."""
    written = []
    for name, resource in build().items():
        path = folder / name
        path.write_text(dumps(resource), encoding="utf-8")
        written.append(path)
    return written
