"""Worker for check.py: Google's strict FHIR R4 JSON parser (PyPI google-fhir-r4 0.11.0).

It parses each resource into the R4 protocol buffers generated from the 4.0.1 specification
and validates it (validate=True): unknown elements, JSON types, every primitive's regex and
calendar validity, int32 range, required bindings (codes are proto enums), required elements,
Period start <= end, reference target types. It stops at the first problem of a resource, so
it reports at most one finding per resource.

Reads one JSON item per stdin line: {"n": <int>, "resource": {...}}.
Writes one JSON finding per stdout line: {"n", "validator", "severity", "path", "message"}.
Runs in the tools/independent/.venv interpreter (see install.sh).
"""

from __future__ import annotations

import json
import sys

from google.fhir.r4 import json_format
from google.fhir.r4.proto.core.resources import bundle_and_contained_resource_pb2

VALIDATOR = "google-fhir-r4"


def problem(resource: object) -> str | None:
    """The parser's complaint about one resource, or None when it parses and validates."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return "not a resource (no resourceType)"
    try:
        json_format.json_fhir_string_to_proto(
            json.dumps(resource), bundle_and_contained_resource_pb2.ContainedResource, validate=True
        )
    except Exception as exc:  # any failure means the parser rejected it
        return f"{type(exc).__name__}: {exc}"
    return None


def main() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        item = json.loads(line)
        found = problem(item["resource"])
        if found is not None:
            finding = {
                "n": item["n"],
                "validator": VALIDATOR,
                "severity": "error",
                "path": item["resource"].get("resourceType", "")
                if isinstance(item["resource"], dict)
                else "",
                "message": found,
            }
            sys.stdout.write(json.dumps(finding) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
