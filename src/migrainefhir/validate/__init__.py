"""The FHIR R4 validator: one call returns Problems (or a Report), offline and in linear time.

Four layers, each catching what the others miss (see docs of each module):

1. structure (structure.py): the fhir.resources R4B model of each resource, plus JSON types;
2. profiles (profiles.py): our per-shape JSON Schemas, for resources claiming our profiles;
3. rules (rules.py): invariants, required bindings, nulls/empties, dates, units, codes;
4. integrity (references.py, bulk.py): Bundle invariants, requests, ids and references, and
   references across a Bulk Data NDJSON file set.

Where two layers report the same element, the more specific finding wins: a rule's problem
hides a structure problem at the same path, and either hides a profile problem there.

Modes: "full" runs every layer on every resource. "fast" runs fhir.resources only on the
first resource of each shape (resourceType + the migrainefhir profiles it claims) and relies
on the closed profile schemas for the rest; resources that claim none of our profiles are
always validated in full, so "fast" never lowers the bar for foreign resources. A Bundle's own
entry elements are treated alike: a closed entry schema for each entry, fhir.resources for
the first entry of each shape, everything when an entry fails the schema (entries.py).

`ignore` suppresses problems by code: any code, warnings and errors alike. Ignoring an error
code means accepting resources that have that error; the caller takes that decision.

May import: the leaves (problems, errors, codes, ids, schema), input/ and convert/; it needs
neither today: it checks any R4 data, ours or anyone's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from migrainefhir.problems import Problem, Report, Severity, Source, error
from migrainefhir.validate import (
    bulk,
    core,
    entries,
    load,
    profiles,
    references,
    rules,
    screen,
    structure,
)
from migrainefhir.validate.outcome import operation_outcome

__all__ = [
    "Mode",
    "RecordResources",
    "ResourceValidator",
    "ValidationReport",
    "operation_outcome",
    "validate_bundle",
    "validate_paths",
    "validate_record_resources",
    "validate_records",
    "validate_resource",
]

Mode = Literal["full", "fast"]


class ResourceValidator:
    """Validates resources one at a time; keeps the per-shape memory that "fast" mode needs.

    Use one instance for a whole run (the export stage, a validate command).
    """

    def __init__(
        self,
        mode: Mode = "full",
        ignore: frozenset[str] = frozenset(),
        terminology: rules.Terminology | None = None,
        extension_domains: tuple[str, ...] = (),
    ) -> None:
        if mode not in ("full", "fast"):
            raise ValueError(f"unknown validation mode {mode!r}")
        self.mode = mode
        self.ignore = ignore
        self.terminology = terminology
        self.extension_domains = extension_domains
        self._shapes_seen: set[object] = set()

    def validate(
        self,
        resource: Any,
        source: Source | None = None,
        references: rules.References | None = None,
        with_structure: bool | None = None,
        with_core: bool = True,
    ) -> list[Problem]:
        """Every problem of one resource (structure, profiles, rules), placed at `source`.

        `references`, when given, receives the resource's references (rules.check_rules).
        `with_structure` overrides the mode's choice of whether fhir.resources sees it (a
        caller that already asked wants_structure passes the answer on). `with_core` False
        leaves the core layer out (a Bundle's shell: validate_bundle runs it on the Bundle)."""
        if not isinstance(resource, dict):
            found = [error(structure.RESOURCE_TYPE, "a resource must be a JSON object")]
            return _finish(found, source, self.ignore)
        if with_structure is None:
            with_structure = self.wants_structure(resource)
        if references is None and with_core and self.is_clean(resource, with_structure):
            return []
        by_rules = rules.check_rules(resource, self.terminology, references)
        by_structure = structure.check_structure(resource) if with_structure else []
        by_profiles = profiles.check_profiles(resource)
        # The core layer goes with fhir.resources: on every resource in full mode, on the
        # resources fhir.resources sees in fast mode. It masks nothing and is masked by nothing.
        by_core = (
            core.check_core(resource, self.extension_domains)
            if with_structure and with_core
            else []
        ) + core.check_declared_profiles(resource)
        found = _prefer(by_rules, by_structure, by_profiles)
        known = {(p.code, p.path) for p in found}
        found += [p for p in by_core if (p.code, p.path) not in known]
        return _finish(found, source, self.ignore)

    def is_clean(self, resource: Mapping[str, Any], with_structure: bool) -> bool:
        """True only if validate() would find no problem at all: the compiled checks (profile
        schemas, the rules screen) and, if asked, fhir.resources. Answering costs a fraction
        of validate(), which is then needed only for the resources that are not clean, to
        give their problems with paths and messages."""
        return self.compiled_clean(resource) and self.structure_clean(resource, with_structure)

    def compiled_clean(self, resource: Mapping[str, Any]) -> bool:
        """is_clean's compiled checks: the profile schemas and the rules screen, merged where
        one profile is claimed."""
        return self.compiled_check(tuple(profiles.claimed_profiles(resource)))(resource)

    def compiled_check(self, claimed: tuple[str, ...]) -> Callable[[Mapping[str, Any]], bool]:
        """compiled_clean for resources whose meta.profile lists `claimed` (validate_records
        looks it up once per group of a batch)."""
        return screen.compiled_check(claimed, self.terminology)

    def structure_clean(self, resource: Mapping[str, Any], with_structure: bool) -> bool:
        """is_clean's last step: fhir.resources and the core layer find nothing, when the
        resource goes to them, and the core profiles it declares, if any, find nothing."""
        if core.check_declared_profiles(resource):
            return False
        return not (
            with_structure
            and (
                structure.check_structure(resource)
                or core.check_core(resource, self.extension_domains)
            )
        )

    def wants_structure(
        self, resource: Mapping[str, Any], claimed: tuple[str, ...] | None = None
    ) -> bool:
        """Whether this resource goes through fhir.resources (in fast mode, the first one of
        each shape says yes, the rest no: ask once per resource). `claimed` is its
        meta.profile list, for a caller that has it already."""
        if self.mode == "full":
            return True
        if claimed is None:
            claimed = tuple(profiles.claimed_profiles(resource))
        known = profiles.shipped_among(claimed)
        if not known:
            return True  # nothing else checks its structure
        return self.first_of_shape((str(resource.get("resourceType")), known))

    def first_of_shape(self, shape: object) -> bool:
        """True the first time this validator meets `shape` (a hashable description)."""
        if shape in self._shapes_seen:
            return False
        self._shapes_seen.add(shape)
        return True


def _prefer(*layers: list[Problem]) -> list[Problem]:
    """All problems, minus those at a path an earlier (more specific) layer already reported."""
    out: list[Problem] = []
    taken: set[str] = set()
    for layer in layers:
        out.extend(p for p in layer if p.path not in taken)
        taken.update(p.path for p in layer)
    return out


def _finish(
    problems: Iterable[Problem], source: Source | None, ignore: frozenset[str]
) -> list[Problem]:
    kept = (p for p in problems if p.code not in ignore)
    if source is None:
        return list(kept)
    return [p if p.source is not None else p.at(source) for p in kept]


def validate_resource(
    resource: Mapping[str, Any],
    source: Source | None = None,
    *,
    mode: Mode = "full",
    ignore: frozenset[str] = frozenset(),
) -> list[Problem]:
    """Every problem of one resource. (For many resources, keep one ResourceValidator.)"""
    return ResourceValidator(mode, ignore).validate(resource, source)


_EXPORT_VALIDATOR: ResourceValidator | None = None


@dataclass(frozen=True, slots=True)
class RecordResources:
    """The resources converted from ONE record, the Patient they may reference (not itself
    validated here: None for a patient record, whose own Patient is among the resources), and
    where the record came from."""

    resources: Sequence[Mapping[str, Any]]
    patient: Mapping[str, Any] | None
    source: Source | None = None
    # Each resource's orjson text, when the caller has it (the reference scan reads it).
    texts: Sequence[bytes] | None = None


def validate_record_resources(
    resources: Sequence[Mapping[str, Any]],
    patient: Mapping[str, Any] | None,
    source: Source | None = None,
    *,
    validator: ResourceValidator | None = None,
) -> list[Problem]:
    """The export gate for the resources converted from ONE record: every resource validated,
    and every Type/id reference resolving to one of them or to `patient` (which is not itself
    validated here). Messages name the resource (Type/id) the path is inside."""
    [problems] = validate_records(
        [RecordResources(resources, patient, source)], validator=validator
    )
    return problems


def validate_records(
    records: Sequence[RecordResources], *, validator: ResourceValidator | None = None
) -> list[list[Problem]]:
    """validate_record_resources of each record, with the same answers, in less time.

    Each compiled check runs over the whole batch, the resources that claim the same profiles
    one after another, so a compiled schema stays in the CPU caches (record by record, every
    resource evicts the schemas the next one needs). Only a record that is not clean takes
    the detailed way, which gives its problems with paths and messages."""
    global _EXPORT_VALIDATOR
    if validator is None:
        _EXPORT_VALIDATOR = _EXPORT_VALIDATOR or ResourceValidator("full")
        validator = _EXPORT_VALIDATOR
    claims = [[_claimed(resource) for resource in r.resources] for r in records]
    # In record order: fast mode sends the first resource of each shape to fhir.resources.
    with_structure = [
        [
            isinstance(resource, dict) and validator.wants_structure(resource, claimed)
            for resource, claimed in zip(r.resources, claimed_by_r, strict=True)
        ]
        for r, claimed_by_r in zip(records, claims, strict=True)
    ]
    clean = _records_clean(records, validator, with_structure, claims)
    return [
        [] if is_clean else _record_problems(record, validator, structured)
        for record, structured, is_clean in zip(records, with_structure, clean, strict=True)
    ]


def _record_problems(
    record: RecordResources, validator: ResourceValidator, with_structure: list[bool]
) -> list[Problem]:
    """Every problem of one record's resources, resource by resource (the detailed way)."""
    index = references.FileSetIndex()
    patient_key = references.type_and_id(record.patient) if record.patient is not None else None
    if patient_key is not None:
        index.seen[patient_key] = record.source
    problems: list[Problem] = []
    for resource, structured in zip(record.resources, with_structure, strict=True):
        collected: rules.References = []
        found = validator.validate(resource, record.source, collected, structured)
        found += _finish(index.add(resource, record.source, collected), None, validator.ignore)
        name = references.type_and_id(resource) or str(resource.get("resourceType"))
        problems.extend(dataclasses.replace(p, message=f"{name}: {p.message}") for p in found)
    problems.extend(_finish(index.unresolved(), None, validator.ignore))
    return problems


def _claimed(resource: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(profiles.claimed_profiles(resource)) if isinstance(resource, dict) else ()


def _records_clean(
    records: Sequence[RecordResources],
    validator: ResourceValidator,
    with_structure: list[list[bool]],
    claims: list[list[tuple[str, ...]]],
) -> list[bool]:
    """For each record, True only if _record_problems would find no problem: ids unique,
    every resource clean, and every reference naming one of the record's resources or its
    Patient. `claims` holds each resource's meta.profile list."""
    known = [_unique_keys(record) for record in records]
    clean = [keys is not None for keys in known]
    by_profiles: dict[tuple[str, ...], list[tuple[int, Mapping[str, Any]]]] = {}
    for position, record in enumerate(records):
        if clean[position]:
            for resource, claimed in zip(record.resources, claims[position], strict=True):
                by_profiles.setdefault(claimed, []).append((position, resource))
    for claimed, group in by_profiles.items():
        check = validator.compiled_check(claimed)
        for position, resource in group:
            if clean[position] and not check(resource):
                clean[position] = False
    for position, record in enumerate(records):
        keys = known[position]
        if keys is not None and clean[position]:
            clean[position] = all(
                validator.structure_clean(resource, structured)
                for resource, structured in zip(
                    record.resources, with_structure[position], strict=True
                )
            ) and _references_known(record, keys)
    return clean


def _unique_keys(record: RecordResources) -> set[str] | None:
    """The Type/id of the record's resources and its Patient; None when one has none or two
    share one."""
    known: set[str] = set()
    patient = record.patient
    for resource in (patient, *record.resources) if patient is not None else record.resources:
        key = references.type_and_id(resource) if isinstance(resource, dict) else None
        if key is None or key in known:
            return None
        known.add(key)
    return known


def _references_known(record: RecordResources, known: set[str]) -> bool:
    """Every reference in the record's resources names one of `known`. With the texts, one
    scan of them all, joined: each is a whole JSON object, so no reference spans two."""
    if record.texts is not None:
        found = references.plain_references(b"\n".join(record.texts))
        return found is not None and known.issuperset(found)
    for resource in record.resources:
        found = references.scanned_references(resource)
        if found is None or not known.issuperset(found):
            return False
    return True


def validate_bundle(
    bundle: Mapping[str, Any],
    source: Source | None = None,
    *,
    mode: Mode = "full",
    ignore: frozenset[str] = frozenset(),
    validator: ResourceValidator | None = None,
) -> list[Problem]:
    """Every problem of a Bundle: its own elements, each entry's resource (Source.entry = i,
    path inside the resource) and the Bundle's integrity (path from the Bundle root)."""
    checker = validator or ResourceValidator(mode, ignore)
    where = source or Source("<bundle>")
    shell, emptied = _shell(bundle)
    problems = [
        p
        for p in _shell_problems(checker, shell, where)
        if not (p.code == rules.EMPTY and p.path in emptied)
    ]
    listed = bundle.get("entry")
    if isinstance(listed, list):
        for position, entry in enumerate(listed):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if resource is not None:
                resource = _as_created(entry, resource)
                problems.extend(
                    checker.validate(resource, dataclasses.replace(where, entry=position))
                )
    problems.extend(_finish(references.check_bundle(bundle, where), None, checker.ignore))
    by_core = core.check_core(bundle, checker.extension_domains, entries=False)
    problems.extend(_finish(by_core, where, checker.ignore))
    return problems


def _as_created(entry: Mapping[str, Any], resource: Any) -> Any:
    """A POST (create) entry's resource without an id, as the server will store it: with the
    id of its urn:uuid fullUrl (R4 http.html#create: a created resource needs no id, the
    server assigns one; our profiles require an id of every stored resource)."""
    request, full_url = entry.get("request"), entry.get("fullUrl")
    if (
        isinstance(resource, dict)
        and "id" not in resource
        and isinstance(request, dict)
        and request.get("method") == "POST"
        and isinstance(full_url, str)
        and full_url.startswith("urn:uuid:")
    ):
        return {**resource, "id": full_url.removeprefix("urn:uuid:")}
    return resource


def _shell_problems(
    checker: ResourceValidator, shell: dict[str, Any], where: Source
) -> list[Problem]:
    """The Bundle's own problems. Fast mode gives fhir.resources the first entry of each shape
    only, when every entry passes the entry schema (entries.py); else, or when that sample has
    a problem, the whole shell goes to fhir.resources, as in full mode."""
    if checker.mode == "fast":
        sample = _structure_sample(checker, shell)
        if sample is not None and checker.structure_clean(sample, with_structure=True):
            return checker.validate(shell, where, with_structure=False, with_core=False)
    return checker.validate(shell, where, with_core=False)


def _structure_sample(checker: ResourceValidator, shell: dict[str, Any]) -> dict[str, Any] | None:
    """The shell with only the entries of shapes `checker` has not met, or None when an entry
    fails the entry schema."""
    listed = shell.get("entry")
    if not isinstance(listed, list) or not listed:
        return shell
    if not all(entries.entry_clean(entry) for entry in listed):
        return None
    sample = {key: value for key, value in shell.items() if key != "entry"}
    new = [
        entry for entry in listed if checker.first_of_shape(("Bundle.entry", entries.shape(entry)))
    ]
    if new:
        sample["entry"] = new
    return sample


def _shell(bundle: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The Bundle without its entries' resources (those are validated one by one), and the
    paths of entries that held nothing but a resource (empty only because of the stripping)."""
    shell = dict(bundle)
    emptied: set[str] = set()
    entries = bundle.get("entry")
    if isinstance(entries, list):
        stripped: list[Any] = []
        for position, entry in enumerate(entries):
            if isinstance(entry, dict) and "resource" in entry:
                entry = {k: v for k, v in entry.items() if k != "resource"}
                if not entry:
                    emptied.add(f"$.entry[{position}]")
            stripped.append(entry)
        shell["entry"] = stripped
    return shell, emptied


@dataclass(slots=True)
class ValidationReport(Report):
    """A Report, plus the resource type found at each Source that has problems (so the
    OperationOutcome can name elements as Observation.status rather than Resource.status)."""

    resource_types: dict[Source | None, str] = field(default_factory=dict)

    def operation_outcome(self) -> dict[str, object]:
        return operation_outcome(self.problems, self.resource_types)


class _Run:
    """One validate_paths run: the validator, the report, and the counting."""

    def __init__(
        self, mode: Mode, ignore: frozenset[str], extension_domains: tuple[str, ...] = ()
    ) -> None:
        self.validator = ResourceValidator(mode, ignore, extension_domains=extension_domains)
        self.ignore = ignore
        self.report = ValidationReport()
        # Resources counted valid that wait for a reference target: recounted at the end.
        self.waiting: dict[Source, str] = {}

    def add(self, problems: list[Problem]) -> None:
        self.report.problems.extend(p for p in problems if p.code not in self.ignore)

    def resource(
        self, document: load.Document, index: references.FileSetIndex | None
    ) -> list[Problem]:
        data = document.data
        found = self.validator.validate(data, document.source)
        if index is not None:
            found += _finish(index.add(data, document.source), None, self.ignore)
            if index.last_waited and not any(p.is_error for p in found):
                self.waiting[document.source] = str(data.get("resourceType", "unknown"))
        self._count(data, document.source, found)
        self.add(found)
        return found

    def bundle(self, document: load.Document) -> None:
        data = document.data
        found = validate_bundle(data, document.source, validator=self.validator)
        self.report.resource_types[document.source] = "Bundle"
        failed = {p.source.entry for p in found if p.is_error and p.source is not None}
        entries = data.get("entry")
        for position, entry in enumerate(entries if isinstance(entries, list) else []):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                kind = str(resource.get("resourceType", "unknown"))
                self.report.counts.count(kind, position not in failed)
                self.report.resource_types[dataclasses.replace(document.source, entry=position)] = (
                    kind
                )
        self.add(found)

    def document(
        self, item: load.Document | Problem, index: references.FileSetIndex | None = None
    ) -> None:
        if isinstance(item, Problem):
            self.add([item])
            self.report.counts.count("unreadable", False)
        elif item.data.get("resourceType") == "Bundle":
            self.bundle(item)
        else:
            self.resource(item, index)

    def recount(self, failed: set[Source | None]) -> None:
        """Count as rejected the resources counted valid whose references never resolved."""
        counts = self.report.counts
        for source in failed:
            kind = self.waiting.pop(source, None) if source is not None else None
            if kind is not None:
                counts.accepted[kind] -= 1
                counts.rejected[kind] = counts.rejected.get(kind, 0) + 1
        self.waiting.clear()

    def _count(self, data: Mapping[str, Any], source: Source, found: list[Problem]) -> None:
        kind = str(data.get("resourceType", "unknown"))
        self.report.counts.count(kind, not any(p.is_error for p in found))
        if found:
            self.report.resource_types[source] = kind


def validate_paths(
    paths: Sequence[str],
    ignore: frozenset[str] = frozenset(),
    *,
    mode: Mode = "full",
    extension_domains: Sequence[str] = (),
) -> ValidationReport:
    """Validate Bundles, single resources, NDJSON files and folders; one Report for all.

    A folder with a manifest.json is a Bulk Data export: the manifest is checked, every file
    it lists is validated, and references are resolved across the whole file set. Any other
    folder is validated file by file. Raises errors.InputUnreadable when a path cannot be read.
    Counts: one record per resource, by resourceType; accepted = no error. Extensions whose
    URL starts with one of `extension_domains` are accepted without a definition.
    """
    run = _Run(mode, ignore, tuple(extension_domains))
    for path in load.expand(list(paths)):
        if path.is_dir():
            manifest = path / load.MANIFEST
            if manifest.is_file():
                _bulk_export(run, manifest)
            else:
                for file in load.folder_files(path):
                    _file(run, file)
        elif path.name == load.MANIFEST:
            _bulk_export(run, path)
        else:
            _file(run, path)
    return run.report


def _file(run: _Run, path: Path) -> None:
    if path.name.endswith((".ndjson", ".ndjson.gz")):
        for item in load.read_ndjson(path):
            run.document(item)
        return
    item = load.read_json(path)
    if isinstance(item, load.Document) and load.is_manifest(item.data):
        return  # a manifest met while walking a plain folder: validated with its export only
    run.document(item)


def _bulk_export(run: _Run, manifest_path: Path) -> None:
    item = load.read_json(manifest_path)
    if isinstance(item, Problem):
        run.add([item])
        return
    manifest_problems, listed = bulk.check_manifest(item.data, manifest_path)
    run.add(manifest_problems)
    external_problems, external = bulk.not_exported(item.data, manifest_path)
    run.add(external_problems)
    index = references.FileSetIndex(external=external)
    for listing in bulk.reading_order(listed):
        count = 0
        for line in load.read_ndjson(listing.path):
            count += 1
            if isinstance(line, load.Document) and listing.kind == "output":
                actual = line.data.get("resourceType")
                if listing.type is not None and actual != listing.type:
                    run.add(
                        [
                            Problem(
                                bulk.TYPE_MISMATCH,
                                Severity.ERROR,
                                f"a {actual} in a file listed as {listing.type}",
                                "$.resourceType",
                                line.source,
                            )
                        ]
                    )
            run.document(line, index if listing.kind == "output" else None)
        if listing.count is not None and count != listing.count:
            run.add(
                [
                    Problem(
                        bulk.COUNT_MISMATCH,
                        Severity.ERROR,
                        f"the manifest says {listing.count} resources, the file has {count}",
                        f"$.{listing.kind}[{listing.index}].count",
                        Source(str(manifest_path)),
                    )
                ]
            )
    unresolved = _finish(index.unresolved(), None, run.ignore)
    run.add(unresolved)
    if unresolved:
        run.recount(index.unresolved_sources())
