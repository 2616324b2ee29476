"""Layer 2, profiles: our own per-shape JSON Schemas, keyed by the profile canonical they check.

Every `*.json` under `migrainefhir/schemas/profiles/` except the shared `_*.json` files is a
per-shape schema whose `$id` is the canonical URL of a migrainefhir profile. A resource is
checked against the schema of each profile in its `meta.profile` that we ship; a resource that
claims none skips this layer. Claiming a migrainefhir canonical we do not ship is a warning.

Per-shape schemas refer to the shared R4 datatypes as `_r4-primitives.json#/$defs/<name>`;
`bundled()` merges those `$defs` into the schema, so both schema engines see one
self-contained document and no reference ever leaves the package (offline by construction).

schema.py (and with it jsonschema) is imported on first use, never at import time.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources as package_files
from typing import TYPE_CHECKING, Any

from migrainefhir.problems import Problem, Severity, register_code

if TYPE_CHECKING:
    from migrainefhir.schema import SchemaChecker

PROFILE = register_code(
    "fhir.profile",
    Severity.ERROR,
    "A resource does not match the migrainefhir profile it claims in meta.profile.",
    "profile",
)
PROFILE_UNKNOWN = register_code(
    "fhir.profile-unknown",
    Severity.WARNING,
    "meta.profile claims a migrainefhir profile this version does not ship.",
    "profile",
)

PROJECT_PROFILES = "https://migrainefhir.org/fhir/StructureDefinition/"
SHARED_PREFIX = "_r4-primitives.json#/$defs/"
_FOLDER = ("schemas", "profiles")


def _read(name: str) -> dict[str, Any]:
    text = package_files.files("migrainefhir").joinpath(*_FOLDER, name).read_text(encoding="utf-8")
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError(f"profile schema {name} is not a JSON object")
    return document


def schema_files() -> list[str]:
    """The per-shape schema file names, sorted (shared `_*.json` files excluded)."""
    folder = package_files.files("migrainefhir").joinpath(*_FOLDER)
    return sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.name.endswith(".json") and not entry.name.startswith("_")
    )


@functools.cache
def shared_defs() -> dict[str, Any]:
    defs = _read("_r4-primitives.json").get("$defs")
    if not isinstance(defs, dict):
        raise ValueError("_r4-primitives.json has no $defs")
    return defs


def bundled(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with the shared R4 `$defs` merged in and its references made local."""
    own = dict(schema.get("$defs", {}))
    clash = set(own) & set(shared_defs())
    if clash:
        raise ValueError(f"profile schema redefines shared $defs: {sorted(clash)}")
    out: dict[str, Any] = _relocate(schema)
    out["$defs"] = {**shared_defs(), **_relocate(own)}
    return out


def _relocate(node: Any) -> Any:
    if isinstance(node, dict):
        out = {key: _relocate(value) for key, value in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith(SHARED_PREFIX):
            out["$ref"] = "#/$defs/" + ref[len(SHARED_PREFIX) :]
        return out
    if isinstance(node, list):
        return [_relocate(item) for item in node]
    return node


@functools.cache
def profile_schemas() -> dict[str, dict[str, Any]]:
    """Every shipped per-shape schema (bundled), keyed by its `$id` (the profile canonical)."""
    schemas: dict[str, dict[str, Any]] = {}
    for name in schema_files():
        schema = _read(name)
        canonical = schema.get("$id")
        if not isinstance(canonical, str) or not canonical.startswith(PROJECT_PROFILES):
            raise ValueError(f"profile schema {name} has no migrainefhir canonical $id")
        if canonical in schemas:
            raise ValueError(f"two profile schemas share the $id {canonical}")
        schemas[canonical] = bundled(schema)
    return schemas


@functools.cache
def element_names() -> frozenset[str]:
    """Every member name any shipped profile allows, at any depth (the profiles are closed,
    so a resource that passes one has no other key)."""
    names: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            properties = node.get("properties")
            if isinstance(properties, dict):
                names.update(properties)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(list(profile_schemas().values()))
    return frozenset(names)


@functools.cache
def checker(canonical: str) -> SchemaChecker:
    """The compiled checker of one profile (compiled once per process, on first use)."""
    from migrainefhir.schema import ProblemCodes, SchemaChecker

    return SchemaChecker(profile_schemas()[canonical], ProblemCodes(by_keyword={}, default=PROFILE))


def claimed_profiles(resource: Mapping[str, Any]) -> list[str]:
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    if not isinstance(profiles, list):
        return []
    return [p for p in profiles if isinstance(p, str)]


def known_profiles(resource: Mapping[str, Any]) -> list[str]:
    """The profiles in meta.profile that we have a schema for."""
    return list(shipped_among(tuple(claimed_profiles(resource))))


@functools.lru_cache(maxsize=256)  # a run's resources claim a handful of profile lists
def shipped_among(claimed: tuple[str, ...]) -> tuple[str, ...]:
    """The profiles among `claimed` (a meta.profile list) that we have a schema for."""
    shipped = profile_schemas()
    return tuple(p for p in claimed if p in shipped)


def is_clean(resource: Mapping[str, Any]) -> bool:
    """True only if check_profiles(resource) finds no problem (the compiled checks only)."""
    shipped = profile_schemas()
    for canonical in claimed_profiles(resource):
        if canonical in shipped:
            if not checker(canonical).is_valid(resource):
                return False
        elif canonical.startswith(PROJECT_PROFILES):
            return False  # an unknown migrainefhir profile: a warning
    return True


def check_profiles(resource: Mapping[str, Any]) -> list[Problem]:
    """Problems of a resource against every shipped profile it claims."""
    problems: list[Problem] = []
    shipped = profile_schemas()
    for index, canonical in enumerate(claimed_profiles(resource)):
        if canonical in shipped:
            for problem in checker(canonical).problems(resource):
                message = problem.message.replace(
                    "the contract does not define it", "the profile does not allow it"
                )
                problems.append(
                    Problem(
                        PROFILE,
                        Severity.ERROR,
                        f"{message} (profile {_name(canonical)})",
                        problem.path,
                    )
                )
        elif canonical.startswith(PROJECT_PROFILES):
            problems.append(
                Problem(
                    PROFILE_UNKNOWN,
                    Severity.WARNING,
                    f"no schema for migrainefhir profile {_name(canonical)}",
                    f"$.meta.profile[{index}]",
                )
            )
    return problems


def _name(canonical: str) -> str:
    return canonical.removeprefix(PROJECT_PROFILES)
