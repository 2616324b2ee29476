"""A Bulk Data export folder: its manifest.json, and which files it lists.

Manifest fields follow the Bulk Data Access IG STU2 (export.md, "Response - Complete
Status"): transactionTime (instant), request (URL), requiresAccessToken (boolean), output and
error (arrays of {type, url, count?}) are required; deleted and extension are optional. An
output file is found in the manifest's folder by the last segment of its url.

`extension` (a JSON object, STU2) may hold NOT_EXPORTED_EXTENSION: the `Patient/id` references
of the file set that no Patient in it resolves, on purpose (migrainefhir export writes no
Patient stub in NDJSON, so that a Bulk import never replaces a full Patient with one). Those
references are accepted; any other unresolved reference is still an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from migrainefhir.problems import Problem, Severity, Source, json_path, register_code

MANIFEST_FIELD = register_code(
    "bulk.manifest-field",
    Severity.ERROR,
    "A Bulk Data manifest field is missing or has the wrong type or form.",
    "bundle",
)
FILE_MISSING = register_code(
    "bulk.file-missing",
    Severity.ERROR,
    "A file the manifest lists is not in the export folder.",
    "bundle",
)
FILE_UNLISTED = register_code(
    "bulk.file-unlisted",
    Severity.WARNING,
    "An .ndjson file in the export folder that the manifest does not list.",
    "bundle",
)
RELATIVE_URL = register_code(
    "bulk.relative-url",
    Severity.WARNING,
    "A manifest url that is relative: the IG wants absolute URLs (migrainefhir export writes "
    "relative ones unless given --base-url); it is resolved against the manifest's folder.",
    "bundle",
)
TYPE_MISMATCH = register_code(
    "bulk.type-mismatch",
    Severity.ERROR,
    "A resource in an NDJSON file of another type than the manifest says.",
    "bundle",
)
COUNT_MISMATCH = register_code(
    "bulk.count-mismatch",
    Severity.ERROR,
    "An output file holds another number of resources than the manifest's count.",
    "bundle",
)

_INSTANT = re.compile(
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
    r"(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))$"
)
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]+$")

NOT_EXPORTED_EXTENSION = "https://migrainefhir.org/fhir/bulk/referenced-patients-not-exported"
_PATIENT_REFERENCE = re.compile(r"^Patient/[A-Za-z0-9\-.]{1,64}$")


def not_exported(manifest: dict[str, Any], manifest_path: Path) -> tuple[list[Problem], set[str]]:
    """The Patient references the manifest says are referenced but not exported, and the
    problems of that list's form."""
    source = Source(str(manifest_path))
    extension = manifest.get("extension")
    if extension is None:
        return [], set()
    if not isinstance(extension, dict):
        message = "extension must be a JSON object"
        return [_problem(MANIFEST_FIELD, message, ("extension",), source)], set()
    listed = extension.get(NOT_EXPORTED_EXTENSION)
    if listed is None:
        return [], set()
    where = ("extension", NOT_EXPORTED_EXTENSION)
    if not isinstance(listed, list) or not all(
        isinstance(item, str) and _PATIENT_REFERENCE.match(item) for item in listed
    ):
        message = "the patients not exported must be an array of Patient/id references"
        return [_problem(MANIFEST_FIELD, message, where, source)], set()
    return [], set(listed)


@dataclass(frozen=True, slots=True)
class Listed:
    """One file the manifest lists: which list, the declared type and count, the local path."""

    kind: str  # "output", "error" or "deleted"
    index: int
    type: str | None
    count: int | None
    path: Path


def _problem(code: str, message: str, parts: tuple[str | int, ...], source: Source) -> Problem:
    severity = Severity.WARNING if code in (FILE_UNLISTED, RELATIVE_URL) else Severity.ERROR
    return Problem(code, severity, message, json_path(parts), source)


def check_manifest(
    manifest: dict[str, Any], manifest_path: Path
) -> tuple[list[Problem], list[Listed]]:
    """The manifest's own problems, and the files it lists (those that exist)."""
    source = Source(str(manifest_path))
    problems: list[Problem] = []
    time = manifest.get("transactionTime")
    if not isinstance(time, str) or not _INSTANT.match(time):
        problems.append(
            _problem(
                MANIFEST_FIELD,
                "transactionTime must be a FHIR instant",
                ("transactionTime",),
                source,
            )
        )
    request = manifest.get("request")
    if not isinstance(request, str) or not urlparse(request).scheme:
        problems.append(
            _problem(
                MANIFEST_FIELD, "request must be the absolute kick-off URL", ("request",), source
            )
        )
    if not isinstance(manifest.get("requiresAccessToken"), bool):
        problems.append(
            _problem(
                MANIFEST_FIELD,
                "requiresAccessToken must be true or false",
                ("requiresAccessToken",),
                source,
            )
        )
    listed: list[Listed] = []
    for kind in ("output", "error", "deleted"):
        items = manifest.get(kind)
        if items is None and kind == "deleted":
            continue
        if not isinstance(items, list):
            problems.append(_problem(MANIFEST_FIELD, f"{kind} must be an array", (kind,), source))
            continue
        for index, item in enumerate(items):
            problems.extend(_check_item(kind, index, item, manifest_path.parent, source, listed))
    problems.extend(_unlisted(manifest_path.parent, listed, source))
    return problems, listed


def _check_item(
    kind: str, index: int, item: Any, folder: Path, source: Source, listed: list[Listed]
) -> Iterator[Problem]:
    here = (kind, index)
    if not isinstance(item, dict):
        yield _problem(MANIFEST_FIELD, f"{kind} items are objects", here, source)
        return
    resource_type, url, count = item.get("type"), item.get("url"), item.get("count")
    if not isinstance(resource_type, str) or not _RESOURCE_TYPE.match(resource_type):
        yield _problem(MANIFEST_FIELD, "type must be a resource type", (*here, "type"), source)
        resource_type = None
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        yield _problem(MANIFEST_FIELD, "count must be a whole number", (*here, "count"), source)
        count = None
    if not isinstance(url, str) or not url:
        yield _problem(MANIFEST_FIELD, "url must be a URL", (*here, "url"), source)
        return
    if not urlparse(url).scheme:
        yield _problem(
            RELATIVE_URL,
            "url is relative; the Bulk Data IG wants an absolute URL",
            (*here, "url"),
            source,
        )
    name = PurePosixPath(urlparse(url).path).name
    path = folder / name
    if not name or not path.is_file():
        yield _problem(
            FILE_MISSING, f"file '{name}' is not in the export folder", (*here, "url"), source
        )
        return
    listed.append(Listed(kind, index, resource_type, count, path))


# migrainefhir export's own sidecar beside the Bulk Data files: the rejected input records,
# which are not FHIR resources and so are rightly not in the manifest.
_SIDECARS = frozenset({"rejects.ndjson"})


def _unlisted(folder: Path, listed: list[Listed], source: Source) -> Iterator[Problem]:
    known = {item.path.name for item in listed} | _SIDECARS
    files = [*folder.glob("*.ndjson"), *folder.glob("*.ndjson.gz")]
    for path in sorted(files):
        if path.name not in known:
            yield _problem(FILE_UNLISTED, f"'{path.name}' is not in the manifest", (), source)


# Files whose resources others reference come first, so fewer references wait for a target.
_FIRST = ("Patient", "Practitioner", "Organization", "Device", "Procedure")


def reading_order(listed: list[Listed]) -> list[Listed]:
    def rank(item: Listed) -> tuple[int, str, str]:
        position = _FIRST.index(item.type) if item.type in _FIRST else len(_FIRST)
        return position, item.type or "", item.path.name

    return sorted(listed, key=rank)
