"""Provenance: which source record every resource came from, who wrote it, who converted it."""

from __future__ import annotations

from typing import Any

from migrainefhir import codes, ids
from migrainefhir.convert.context import RecordScope, ref_to

PROVENANCE_ROLE = "provenance"


def software_agent_reference(version: str) -> dict[str, Any]:
    """The exporting software as a logical Device reference (no Device resource to dedupe)."""
    return {
        "type": "Device",
        "identifier": {
            "system": codes.SOFTWARE_IDENTIFIER_SYSTEM,
            "value": f"{codes.SOFTWARE_NAME}/{version}",
        },
        "display": f"{codes.SOFTWARE_NAME} {version}",
    }


def provenance(
    scope: RecordScope,
    targets: list[dict[str, Any]],
    author: dict[str, Any] | None,
) -> dict[str, Any]:
    """The Provenance of one record: targets, export time, author, software, source record."""
    agents: list[dict[str, Any]] = []
    if author is not None:
        agents.append({"type": codes.AGENT_AUTHOR.concept(), "who": author})
    agents.append(
        {
            "type": codes.AGENT_ASSEMBLER.concept(),
            "who": software_agent_reference(scope.ctx.software_version),
        }
    )
    return {
        "resourceType": "Provenance",
        "id": scope.resource_id(PROVENANCE_ROLE),
        # No lastUpdated: a Provenance changes with every export (recorded).
        "meta": scope.meta(codes.PROVENANCE_PROFILE, last_updated=False),
        "target": [ref_to(target) for target in targets],
        "recorded": scope.ctx.recorded_text,  # fhir_instant_utc(export_time)
        "agent": agents,
        "entity": [
            {
                "role": "source",
                "what": {
                    "identifier": scope.identifier(ids.PRIMARY),
                    "display": f"{scope.record_type} {scope.record_id}",
                },
            }
        ],
    }
