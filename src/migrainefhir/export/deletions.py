"""`export --previous OLD_DIR`: what a corrected record no longer has is deleted on the server.

A record that is exported again after a correction (a diary day that lost a medication or a
symptom, became headache-free, a session that lost a vital sign) yields fewer resources than
before; PUT updates the ones it still has, but nothing would remove the others. With the
previous export of the same source, the run compares, per source record, the resources the
previous export wrote with the ones this run wrote, by type and id alone:

- a source record is the `meta.source` every resource of a record carries
  (`<source>#<record_type>/<record_id>`);
- a record counts as in this run only if this run exported it: its Provenance is in the output
  (every exported record has exactly one; a Patient stub has none). A record this run did not
  read (`--since`), rejected, or that is missing from the input is left alone: nothing tells a
  deleted record from one not read again;
- a resource of such a record that the previous export had and this run's output does not
  have (anywhere) is deleted: `DELETE Type/id`, or in conditional mode the business
  identifier, as the previous export wrote it.

The DELETE entries go into transaction Bundles of at most `--max-entries` entries: for
`--format transaction` `bundles/deleted-001.json`, `-002`, ... (push sends them like any
other Bundle; a delete of what is already gone is done); for `--format ndjson` one Bundle a
line in `deleted.ndjson`, listed in the manifest's `deleted` array (Bulk Data STU2: files of
transaction Bundles with DELETE entries; a resource in `deleted` is in no `output` file).
summary.json counts them per type under `deleted`. The previous export may be `--out` itself:
the run reads it before its own output is swapped in.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from migrainefhir.errors import InputUnreadable, UsageError
from migrainefhir.export.bundle import delete_entry, deletion_bundle
from migrainefhir.export.options import ExportOptions
from migrainefhir.export.output import write_private

DELETED_NDJSON = "deleted.ndjson"
DELETED_BUNDLE = "deleted-{number:03d}.json"
# Files of an NDJSON export that hold no exported resources.
_NOT_OUTPUT = frozenset({"OperationOutcome", "rejects", "deleted"})

Key = tuple[str, str]  # (resourceType, id)


@dataclass(frozen=True, slots=True)
class OldResource:
    """What a DELETE entry needs of a resource the previous export wrote."""

    resource_type: str
    id: str
    identifier: Any

    def as_resource(self) -> dict[str, Any]:
        found = {"resourceType": self.resource_type, "id": self.id}
        return found | ({"identifier": self.identifier} if self.identifier is not None else {})


def check_previous(folder: Path, options: ExportOptions) -> None:
    """Fail before the run (UsageError) when --previous cannot be used."""
    if options.format == "collection":
        raise UsageError(
            "--previous needs --format transaction or ndjson (a collection deletes nothing)"
        )
    if not folder.is_dir():
        raise InputUnreadable(f"--previous {folder}: not a folder")


def write_deletions(
    staging: Path, previous: Path, options: ExportOptions, bundle_key: str
) -> dict[str, int]:
    """Write the DELETE Bundles into the staged output; their counts per resource type."""
    old = _by_source(_resources_in(previous))
    records, present = _this_run(staging, options.format, old)
    gone = [
        resource
        for source in sorted(records & old.keys())
        for resource in old[source]
        if (resource.resource_type, resource.id) not in present
    ]
    entries = [delete_entry(resource.as_resource(), options.write_mode) for resource in gone]
    chunks = [
        entries[start : start + options.max_entries]
        for start in range(0, len(entries), options.max_entries)
    ]
    bundles = [
        deletion_bundle(chunk, _bundle_id(bundle_key, number), options.export_time)
        for number, chunk in enumerate(chunks, start=1)
    ]
    if options.format == "transaction":
        for number, bundle in enumerate(bundles, start=1):
            path = staging / "bundles" / DELETED_BUNDLE.format(number=number)
            write_private(path, orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n")
    elif bundles:
        write_private(staging / DELETED_NDJSON, b"".join(orjson.dumps(b) + b"\n" for b in bundles))
        _add_to_manifest(staging, options, len(bundles))
    counts: dict[str, int] = {}
    for resource in gone:
        counts[resource.resource_type] = counts.get(resource.resource_type, 0) + 1
    return dict(sorted(counts.items()))


def _bundle_id(key: str, number: int) -> str:
    return hashlib.sha256(f"{key}|deleted|{number}".encode()).hexdigest()[:32]


def _add_to_manifest(staging: Path, options: ExportOptions, bundles: int) -> None:
    path = staging / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    url = DELETED_NDJSON
    if options.base_url is not None:
        url = f"{options.base_url.rstrip('/')}/{url}"
    manifest["deleted"] = [{"type": "Bundle", "url": url, "count": bundles}]
    write_private(path, orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")


def _by_source(resources: Iterator[tuple[str, OldResource]]) -> dict[str, list[OldResource]]:
    found: dict[str, list[OldResource]] = {}
    for source, resource in resources:
        found.setdefault(source, []).append(resource)
    return found


def _this_run(
    staging: Path, export_format: str, old: dict[str, list[OldResource]]
) -> tuple[set[str], set[Key]]:
    """The source records this run exported (their Provenance's meta.source), and the keys of
    this run's resources that the previous export had records for (all that is compared)."""
    records: set[str] = set()
    present: set[Key] = set()
    for source, resource in _resources_in(staging, export_format):
        if resource.resource_type == "Provenance":
            records.add(source)
        if source in old:
            present.add((resource.resource_type, resource.id))
    return records, present


def _resources_in(
    folder: Path, export_format: str | None = None
) -> Iterator[tuple[str, OldResource]]:
    """(meta.source, resource) of every resource of an export folder, either format."""
    bundles = folder / "bundles"
    if export_format == "transaction" or (export_format is None and bundles.is_dir()):
        for path in sorted(bundles.glob("*.json")):
            yield from _bundle_resources(_read(path))
        return
    files = sorted([*folder.glob("*.ndjson"), *folder.glob("*.ndjson.gz")])
    output = [p for p in files if p.name.split(".", 1)[0] not in _NOT_OUTPUT]
    if export_format is None and not output:
        raise InputUnreadable(f"--previous {folder}: no export there (no bundles/, no .ndjson)")
    for path in output:
        with _open(path) as handle:
            for line in handle:
                if line.strip():
                    yield from _entry(_parse(line, path), None)


def _bundle_resources(bundle: Any) -> Iterator[tuple[str, OldResource]]:
    for entry in bundle.get("entry") or [] if isinstance(bundle, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            yield from _entry(entry["resource"], entry.get("fullUrl"))


def _entry(resource: dict[str, Any], full_url: Any) -> Iterator[tuple[str, OldResource]]:
    """A conditional entry has no id: its urn:uuid fullUrl holds it."""
    meta = resource.get("meta")
    source = meta.get("source") if isinstance(meta, dict) else None
    rid = resource.get("id")
    if rid is None and isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
        rid = full_url.removeprefix("urn:uuid:")
    kind = resource.get("resourceType")
    if isinstance(source, str) and isinstance(rid, str) and isinstance(kind, str):
        yield source, OldResource(kind, rid, resource.get("identifier"))


def _open(path: Path) -> IO[bytes]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _read(path: Path) -> Any:
    try:
        return _parse(path.read_bytes(), path)
    except OSError as exc:
        raise InputUnreadable(f"cannot read {path}: {exc.strerror}") from exc


def _parse(data: bytes, path: Path) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputUnreadable(f"--previous: {path} is not JSON") from exc
