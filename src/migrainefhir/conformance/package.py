"""The FHIR NPM package of migrainefhir's conformance resources (`migrainefhir package`).

DIR/package/ holds package.json, .index.json and one JSON file per resource: a
StructureDefinition (differential + snapshot) per profile the export claims and per project
extension, every project CodeSystem and ValueSet (the problem-code CodeSystem of the
OperationOutcomes included), a CapabilityStatement and an ImplementationGuide;
DIR/package/example/ holds one exported resource per profile, converted from the shipped
examples (and, through a hook a later caller passes, what a later stage derives from them: the
outcome window Observations of `export --with-outcomes`, which this stage may not import).
DIR/<name>-<version>.tgz is the same folder as the tarball FHIR tools load, with deterministic
bytes (sorted entries, fixed times and owners, gzip mtime 0).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources as package_files
from pathlib import Path
from typing import Any

from migrainefhir import __version__, codes, terminology
from migrainefhir.conformance import base
from migrainefhir.conformance.differential import compile_schema, differential_elements
from migrainefhir.conformance.snapshot import generate
from migrainefhir.export.bundle import NOT_SEARCHABLE_BY_IDENTIFIER

NAME = "migrainefhir.fhir.r4"
CANONICAL = codes.PROJECT_BASE
FHIR_VERSION = "4.0.1"
DEPENDENCIES = {"hl7.fhir.r4.core": "4.0.1", "hl7.fhir.uv.symptoms": "1.0.0"}
PUBLISHER = terminology.PUBLISHER
# Fixed, so the package is the same bytes for the same version (and the examples' ids and
# Provenance.recorded with it).
BUILD_DATE = "2026-07-01T00:00:00Z"
EXAMPLE_SOURCE_SYSTEM = "https://clinic.example.org/fhir/ids"
# What a later stage makes from the example records (their paths, the source system), valid
# resources only: pipeline.py passes the outcome windows (outcomes/ is not importable here).
DerivedExamples = Callable[[Sequence[str], str], Sequence[dict[str, Any]]]
_TAR_MTIME = 1782864000  # BUILD_DATE as seconds since the epoch


def _pascal(identifier: str) -> str:
    return "".join(part.capitalize() for part in identifier.replace("_", "-").split("-"))


# -- StructureDefinitions -------------------------------------------------------------------


def profile_definition(url: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The StructureDefinition of one profile, generated from its JSON Schema."""
    resource_type = schema["properties"]["resourceType"]["const"]
    identifier = url.rsplit("/", 1)[1]
    elements = differential_elements(compile_schema(schema), url)
    elements[resource_type].update(
        {"short": schema.get("title", identifier), "definition": schema.get("description", "")}
    )
    snapshot, differential = generate(resource_type, list(elements.values()))
    return {
        "resourceType": "StructureDefinition",
        "id": identifier,
        "url": url,
        "version": __version__,
        "name": _pascal(identifier),
        "title": schema.get("title", identifier),
        "status": "active",
        "experimental": False,
        "date": BUILD_DATE,
        "publisher": PUBLISHER,
        "description": schema.get("description", ""),
        "fhirVersion": FHIR_VERSION,
        "kind": "resource",
        "abstract": False,
        "type": resource_type,
        "baseDefinition": base.CORE + resource_type,
        "derivation": "constraint",
        "snapshot": {"element": snapshot},
        "differential": {"element": differential},
    }


def profile_definitions() -> list[dict[str, Any]]:
    from migrainefhir.validate.profiles import profile_schemas

    return [profile_definition(url, schema) for url, schema in sorted(profile_schemas().items())]


def extension_definitions() -> list[dict[str, Any]]:
    """The project extensions (terminology/, built from codes.py), each with a snapshot."""
    out = []
    for _, resource in sorted(terminology.build().items()):
        if resource["resourceType"] != "StructureDefinition":
            continue
        definition = json.loads(json.dumps(resource))
        snapshot, differential = generate("Extension", definition["differential"]["element"])
        definition["snapshot"] = {"element": snapshot}
        definition["differential"] = {"element": differential}
        out.append(definition)
    return out


# -- terminology ----------------------------------------------------------------------------


def terminology_resources() -> list[dict[str, Any]]:
    """Every project CodeSystem and ValueSet, the problem-code ones included (terminology/)."""
    return [
        resource
        for _, resource in sorted(terminology.build().items())
        if resource["resourceType"] in ("CodeSystem", "ValueSet")
    ]


# -- CapabilityStatement, ImplementationGuide -----------------------------------------------


# The R4 (4.0.1) search parameter on `identifier` of each type the export may write by a
# conditional update, from the core search-parameters.json. AdverseEvent has none in R4 (its
# identifier is 0..1 and not searchable) and Provenance has no identifier: the export writes both
# by id in every write mode (export/bundle.py NOT_SEARCHABLE_BY_IDENTIFIER).
_CORE_SEARCH = "http://hl7.org/fhir/SearchParameter/"
IDENTIFIER_SEARCH = {
    "Condition": f"{_CORE_SEARCH}clinical-identifier",
    "Encounter": f"{_CORE_SEARCH}clinical-identifier",
    "MedicationAdministration": f"{_CORE_SEARCH}clinical-identifier",
    "MedicationStatement": f"{_CORE_SEARCH}clinical-identifier",
    "Observation": f"{_CORE_SEARCH}clinical-identifier",
    "Procedure": f"{_CORE_SEARCH}clinical-identifier",
    "Patient": f"{_CORE_SEARCH}Patient-identifier",
}


def capability_statement(profiles: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What the export produces, and what a server receiving it must support."""
    by_type: dict[str, list[str]] = {}
    for profile in profiles:
        by_type.setdefault(profile["type"], []).append(profile["url"])
    entries = []
    for resource_type, urls in sorted(by_type.items()):
        entry: dict[str, Any] = {
            "type": resource_type,
            "supportedProfile": sorted(urls),
            "interaction": [{"code": "read"}, {"code": "update"}],
            "updateCreate": True,
        }
        search = None
        if resource_type not in NOT_SEARCHABLE_BY_IDENTIFIER:
            search = IDENTIFIER_SEARCH[resource_type]
        if search is None:
            entry["documentation"] = (
                "Always written by id (PUT Type/id): R4 has no identifier search parameter for it."
            )
            entry["conditionalUpdate"] = False
        else:
            entry["documentation"] = (
                "PUT Type/id, or with --write-mode conditional PUT Type?identifier=system|value "
                "(conditional update on the business identifier)."
            )
            entry["conditionalUpdate"] = True
            entry["searchParam"] = [{"name": "identifier", "definition": search, "type": "token"}]
        if resource_type == "Patient":
            # Stubs (patients without a patient record in the run), and in conditional mode a
            # Patient matched on its MRN, never replace a Patient the server holds (bundle.py).
            entry["interaction"].append({"code": "create"})
            entry["conditionalCreate"] = True
            entry["documentation"] += (
                " A Patient stub, and with --write-mode conditional a Patient with an MRN, is a "
                "conditional create (POST Patient with ifNoneExist on its identifier)."
            )
        entries.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "id": "migrainefhir-receiving-server",
        "url": f"{CANONICAL}/CapabilityStatement/migrainefhir-receiving-server",
        "version": __version__,
        "name": "MigrainefhirReceivingServer",
        "title": "What a FHIR server receiving a migrainefhir export must support",
        "status": "active",
        "experimental": False,
        "date": BUILD_DATE,
        "publisher": PUBLISHER,
        "description": "migrainefhir writes the resources below, each claiming its profile, as "
        "transaction Bundles (one per patient: PUT Type/id with client-assigned ids, or PUT "
        "Type?identifier=system|value as conditional updates) or as Bulk Data NDJSON for $import. "
        "A receiving server must support transaction, update as create (client-assigned ids) "
        "and, for --write-mode conditional, conditional update with the identifier search "
        "parameter of each type but AdverseEvent and Provenance (always written by id); "
        "Patients the export holds no record of come as conditional creates (ifNoneExist).",
        "kind": "requirements",
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "The server the export's transaction Bundles are posted to.",
                "resource": entries,
                "interaction": [{"code": "transaction"}],
            }
        ],
    }


def implementation_guide(
    resources: Iterable[Mapping[str, Any]], samples: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    listed = [
        {
            "reference": {"reference": f"{item['resourceType']}/{item['id']}"},
            "name": item.get("title", item["id"]),
            "exampleBoolean": False,
        }
        for item in resources
    ]
    for sample in samples:
        profile = next(
            (url for url in sample["meta"]["profile"] if url.startswith(CANONICAL)), None
        )
        entry: dict[str, Any] = {
            "reference": {"reference": f"{sample['resourceType']}/{sample['id']}"},
            "name": f"Example {sample['resourceType']}",
        }
        if profile is None:
            entry["exampleBoolean"] = True
        else:
            entry["exampleCanonical"] = profile
        listed.append(entry)
    return {
        "resourceType": "ImplementationGuide",
        "id": "migrainefhir",
        "url": f"{CANONICAL}/ImplementationGuide/migrainefhir",
        "version": __version__,
        "name": "Migrainefhir",
        "title": "migrainefhir: migraine headache diaries and ketamine sessions as FHIR R4",
        "status": "active",
        "experimental": False,
        "date": BUILD_DATE,
        "publisher": PUBLISHER,
        "description": "The profiles, extensions and terminology of the FHIR R4 resources "
        "migrainefhir exports.",
        "packageId": NAME,
        "license": "Apache-2.0",
        "fhirVersion": [FHIR_VERSION],
        "dependsOn": [
            {
                "id": package.replace(".", "_"),
                "uri": uri,
                "packageId": package,
                "version": version,
            }
            for (package, version), uri in zip(
                DEPENDENCIES.items(),
                ("http://hl7.org/fhir", "http://hl7.org/fhir/uv/symptoms"),
                strict=True,
            )
        ],
        "definition": {"resource": listed},
    }


# -- examples -------------------------------------------------------------------------------


def _examples_folder() -> Path | None:
    shipped = package_files.files(__package__ or "migrainefhir.conformance").joinpath("examples")
    if shipped.is_dir():
        return Path(str(shipped))
    checkout = Path(__file__).resolve().parents[3] / "examples" / "ndjson"
    return checkout if checkout.is_dir() else None


@functools.cache
def examples(derived: DerivedExamples | None = None) -> tuple[dict[str, Any], ...]:
    """One exported resource per profile (and per resource type), from the shipped examples
    (and what `derived` makes of them)."""
    from migrainefhir.convert import ConvertContext
    from migrainefhir.export.gate import convert_and_validate
    from migrainefhir.input.intake import InputOptions, checked_records
    from migrainefhir.problems import has_errors
    from migrainefhir.validate import ResourceValidator

    folder = _examples_folder()
    if folder is None:
        return ()
    ctx = ConvertContext(
        EXAMPLE_SOURCE_SYSTEM,
        datetime.fromisoformat(BUILD_DATE.replace("Z", "+00:00")).astimezone(UTC),
        __version__,
    )
    validator = ResourceValidator("full")
    chosen: dict[tuple[str, ...], dict[str, Any]] = {}
    for checked in checked_records([str(folder)], InputOptions()):
        if checked.record is None:
            continue
        resources, problems, _ = convert_and_validate(
            checked.record, ctx, checked.raw.source, validator
        )
        if has_errors(problems):
            continue
        for resource in resources:
            key = (resource["resourceType"], *resource.get("meta", {}).get("profile", []))
            chosen.setdefault(key, resource)
    for resource in derived([str(folder)], EXAMPLE_SOURCE_SYSTEM) if derived else ():
        key = (resource["resourceType"], *resource.get("meta", {}).get("profile", []))
        chosen.setdefault(key, resource)
    return tuple(chosen[key] for key in sorted(chosen))


# -- the package ----------------------------------------------------------------------------


def dumps(resource: Mapping[str, Any]) -> bytes:
    return (json.dumps(resource, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def conformance_resources(derived: DerivedExamples | None = None) -> list[dict[str, Any]]:
    profiles = profile_definitions()
    found: list[dict[str, Any]] = [*profiles, *extension_definitions(), *terminology_resources()]
    found.append(capability_statement(profiles))
    found.append(implementation_guide(found, examples(derived)))
    return found


def manifest() -> dict[str, Any]:
    return {
        "name": NAME,
        "version": __version__,
        "description": "migrainefhir's FHIR R4 profiles, extensions and terminology: what its "
        "exported resources claim in meta.profile.",
        "author": PUBLISHER,
        "license": "Apache-2.0",
        "canonical": CANONICAL,
        "url": CANONICAL,
        "fhirVersions": [FHIR_VERSION],
        "type": "fhir.ig",
        "dependencies": dict(DEPENDENCIES),
        "date": BUILD_DATE[:10].replace("-", "") + "000000",
    }


def _file_name(resource: Mapping[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def _index(resources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    files = []
    for resource in resources:
        entry = {
            "filename": _file_name(resource),
            "resourceType": resource["resourceType"],
            "id": resource["id"],
        }
        for key in ("url", "version", "kind", "type"):
            if isinstance(resource.get(key), str):
                entry[key] = resource[key]
        files.append(entry)
    return {"index-version": 1, "files": sorted(files, key=lambda entry: entry["filename"])}


def package_files_content(derived: DerivedExamples | None = None) -> dict[str, bytes]:
    """Path inside the tarball (`package/...`) -> bytes, for every file of the package."""
    found = conformance_resources(derived)
    sample = list(examples(derived))
    files = {"package/package.json": dumps(manifest())}
    files["package/.index.json"] = dumps(_index(found))
    for resource in found:
        files[f"package/{_file_name(resource)}"] = dumps(resource)
    if sample:
        files["package/example/.index.json"] = dumps(_index(sample))
        for resource in sample:
            files[f"package/example/{_file_name(resource)}"] = dumps(resource)
    return dict(sorted(files.items()))


def tarball(files: Mapping[str, bytes]) -> bytes:
    """The package as .tgz: sorted entries, fixed mtime, owner and mode, gzip mtime 0."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = _TAR_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def tarball_name() -> str:
    return f"{NAME}-{__version__}.tgz"


def write(out: Path, derived: DerivedExamples | None = None) -> list[Path]:
    """Write DIR/package/... and DIR/<name>-<version>.tgz; return the paths written."""
    files = package_files_content(derived)
    written = []
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    archive = out / tarball_name()
    archive.write_bytes(tarball(files))
    written.append(archive)
    return written
