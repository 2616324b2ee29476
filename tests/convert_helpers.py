"""Small helpers for the converter tests: walking resources, finding them by role."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from migrainefhir import ids
from tests.convert_records import SOURCE_SYSTEM


def walk(node: Any) -> Iterator[Any]:
    """Every value in a JSON tree (dicts, lists and scalars), depth first."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def scalars(resources: list[dict[str, Any]]) -> list[Any]:
    return [v for v in walk(resources) if not isinstance(v, dict | list)]


def codings(resources: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (node["system"], node["code"])
        for node in walk(resources)
        if isinstance(node, dict) and "system" in node and "code" in node and "value" not in node
    }


def by_role(
    resources: list[dict[str, Any]], record_type: str, record_id: str, role: str
) -> dict[str, Any]:
    wanted = ids.resource_id(SOURCE_SYSTEM, record_type, record_id, role)
    matches = [r for r in resources if r["id"] == wanted]
    assert len(matches) == 1, f"no single resource with role {role}"
    return matches[0]


def ref(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def model_validate(resource: dict[str, Any]) -> None:
    kind = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    getattr(module, kind).model_validate(resource)
