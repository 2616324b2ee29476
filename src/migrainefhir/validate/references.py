"""Layer 4, integrity: a Bundle's entries and references, and references across NDJSON files.

ONE pass over the entries builds the indexes (fullUrl -> entry, Type/id -> entry) and
collects every reference; a second pass over the collected references resolves each with a
dict lookup. Nothing is nested: time and memory are linear in the number of entries. The
references are found by scanning each resource's orjson text; only a Bundle with a reference
that does not resolve is walked again, for the paths and order of its problems.

Paths of `bundle.*` problems are JSONPaths from the Bundle root ($.entry[3].request.url);
their Source carries the entry index when one entry is at fault.

Sources: https://hl7.org/fhir/R4/bundle.html (invariants bdl-1..bdl-12, "Resolving
references in Bundles"), https://hl7.org/fhir/R4/references.html,
https://hl7.org/fhir/R4/http.html#transaction.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from migrainefhir.problems import (
    PROBLEM_CODES,
    Problem,
    Severity,
    Source,
    json_path,
    register_code,
)
from migrainefhir.validate.rules import (
    ABSOLUTE_REFERENCE,
    CONDITIONAL_REFERENCE,
    RELATIVE_REFERENCE,
    reference_form,
)

Json = Any
Parts = tuple[str | int, ...]


def _code(code: str, severity: Severity, summary: str) -> str:
    return register_code(code, severity, summary, "bundle")


BDL_1 = _code(
    "bundle.bdl-1", Severity.ERROR, "Bundle.total outside a searchset or history (bdl-1)."
)
BDL_2 = _code("bundle.bdl-2", Severity.ERROR, "entry.search outside a searchset Bundle (bdl-2).")
BDL_3 = _code(
    "bundle.bdl-3",
    Severity.ERROR,
    "entry.request missing in a batch/transaction/history, or present in another Bundle (bdl-3).",
)
BDL_4 = _code(
    "bundle.bdl-4",
    Severity.ERROR,
    "entry.response missing in a batch-/transaction-response/history, or present elsewhere "
    "(bdl-4).",
)
BDL_5 = _code(
    "bundle.bdl-5", Severity.ERROR, "An entry with neither resource, request nor response (bdl-5)."
)
BDL_7 = _code(
    "bundle.bdl-7",
    Severity.ERROR,
    "Two entries share a fullUrl (and meta.versionId) outside a history Bundle (bdl-7).",
)
BDL_8 = _code("bundle.bdl-8", Severity.ERROR, "entry.fullUrl is a version-specific URL (bdl-8).")
BDL_9 = _code(
    "bundle.bdl-9",
    Severity.ERROR,
    "A document Bundle without identifier.system and .value (bdl-9).",
)
BDL_10 = _code("bundle.bdl-10", Severity.ERROR, "A document Bundle without a timestamp (bdl-10).")
BDL_11 = _code(
    "bundle.bdl-11",
    Severity.ERROR,
    "A document Bundle whose first resource is no Composition (bdl-11).",
)
BDL_12 = _code(
    "bundle.bdl-12",
    Severity.ERROR,
    "A message Bundle whose first resource is no MessageHeader (bdl-12).",
)
FULLURL_RELATIVE = _code(
    "bundle.fullurl-relative",
    Severity.ERROR,
    "entry.fullUrl is not an absolute URI (R4: it is absolute, or a urn:uuid / urn:oid).",
)
LINK_REPEATED = _code(
    "bundle.link-repeated",
    Severity.ERROR,
    "A Bundle link relation that may occur once (self, first, previous, next, last) is "
    "given twice.",
)
REFERENCE_VERSION = _code(
    "bundle.reference-version",
    Severity.ERROR,
    "A version-specific reference (/_history/N) whose entry holds another version.",
)
TYPE = _code("bundle.type", Severity.ERROR, "Bundle.type is missing or not an R4 bundle type.")
NOT_A_BUNDLE = _code(
    "bundle.not-a-bundle", Severity.ERROR, "The document is not a Bundle, or its entry is no array."
)
ENTRY = _code("bundle.entry", Severity.ERROR, "A Bundle entry that is not a JSON object.")
DUPLICATE_ID = _code(
    "bundle.duplicate-id", Severity.ERROR, "Two entries hold resources with the same Type/id."
)
FULLURL_MISMATCH = _code(
    "bundle.fullurl-mismatch",
    Severity.ERROR,
    "A RESTful fullUrl whose Type/id tail is not the entry resource's type and id.",
)
FULLURL_MISSING = _code(
    "bundle.fullurl-missing",
    Severity.WARNING,
    "An entry with a resource but no fullUrl (its resource cannot be referenced in the Bundle).",
)
REQUEST = _code(
    "bundle.request",
    Severity.ERROR,
    "A malformed entry.request (method, url, ifNoneExist only with POST).",
)
REQUEST_URL = _code(
    "bundle.request-url",
    Severity.ERROR,
    "entry.request.url does not fit the method and the entry's resource (PUT Type/id, POST Type).",
)
UNRESOLVED = _code(
    "bundle.reference-unresolved",
    Severity.ERROR,
    "A reference that must resolve inside the Bundle (urn:uuid or Type/id in a document or "
    "message, #contained anywhere) does not.",
)
SEARCH_ID = _code(
    "bundle.search-id",
    Severity.ERROR,
    "A search result (entry.search.mode match or include) whose resource has no id.",
)
OUTSIDE = _code(
    "bundle.reference-outside",
    Severity.WARNING,
    "A urn:uuid or Type/id reference that no entry of a collection, transaction, batch, ... "
    "Bundle holds (it may name a resource on the server: only documents and messages must "
    "be self-contained).",
)
EXTERNAL = _code(
    "bundle.reference-external",
    Severity.WARNING,
    "An absolute reference to no entry of the Bundle: the importer must resolve it elsewhere.",
)
CONDITIONAL = _code(
    "bundle.conditional-reference",
    Severity.ERROR,
    "A conditional reference (Type?search) outside a transaction or batch Bundle.",
)
ORPHAN = _code(
    "bundle.orphan",
    Severity.WARNING,
    "A resource in a collection Bundle linked to no other entry: it references none and none "
    "references it (Patient and Provenance excepted).",
)

BUNDLE_TYPES = frozenset(
    {"document", "message", "transaction", "transaction-response", "batch", "batch-response",
     "history", "searchset", "collection"}
)  # fmt: skip
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"})
_WITH_REQUEST = frozenset({"batch", "transaction", "history"})
_WITH_RESPONSE = frozenset({"batch-response", "transaction-response", "history"})
_CONDITIONAL_OK = frozenset({"batch", "transaction"})
# Resources that stand on their own in a collection: the subject, and the record of origin.
_ROOTS = frozenset({"Patient", "Provenance"})


def _problem(
    code: str, message: str, parts: Parts, source: Source | None, entry: int | None
) -> Problem:
    where = source
    if source is not None and entry is not None:
        where = dataclasses.replace(source, entry=entry)
    return Problem(code, PROBLEM_CODES[code].severity, message, json_path(parts), where)


def iter_references(node: Json, parts: Parts = ()) -> Iterator[tuple[Parts, str]]:
    """Every Reference.reference string in a resource, with its path (contained included).

    Depth first, each node's own reference before its children, the children last to first.
    """
    found: list[tuple[Parts, str]] = []
    _collect_references(node, parts, found)
    return iter(found)


def _collect_references(node: Json, here: Parts, found: list[tuple[Parts, str]]) -> None:
    if isinstance(node, dict):
        reference = node.get("reference")
        if isinstance(reference, str) and reference:
            found.append(((*here, "reference"), reference))
        for key, value in reversed(node.items()):
            if isinstance(value, dict | list):
                _collect_references(value, (*here, key), found)
    elif isinstance(node, list):
        for index in range(len(node) - 1, -1, -1):
            item = node[index]
            if isinstance(item, dict | list):
                _collect_references(item, (*here, index), found)


# How a Reference.reference key starts in orjson output (which writes no whitespace, and
# escapes every `"` inside a string, so a real key always shows this way; a false match inside
# a key name only sends the resource to the walk).
_REFERENCE_KEY = b'"reference":'
_REFERENCE_STRING = _REFERENCE_KEY + b'"'


def plain_references(text: bytes) -> list[str] | None:
    """Every Reference.reference in a resource written by orjson (or several, joined), in
    document order, without paths; None when one is not a string without escapes (the walk
    then decides). A C-speed scan of the text, a fraction of iter_references' Python walk:
    split at each key followed by a string, cut each string at its first quote, and decode
    them all at once."""
    parts = text.split(_REFERENCE_STRING)
    if len(parts) - 1 != text.count(_REFERENCE_KEY):
        return None  # a reference that is not a string
    found = [after.partition(b'"')[0] for after in parts[1:]]
    joined = b"\n".join(found)  # orjson escapes a newline in a string: none is in a reference
    if b"\\" in joined:
        return None  # an escape (an escaped quote cuts its string just after the backslash)
    return joined.decode().split("\n") if found else []


def scanned_references(resource: Mapping[str, Json]) -> list[str] | None:
    """plain_references of the resource's orjson form; None when the scan cannot tell (a
    value that is not JSON, a reference that is not a plain string)."""
    try:
        return plain_references(orjson.dumps(resource))
    except TypeError:  # not JSON at all (an int beyond 64 bits, ...)
        return None


def _contained_ids(resource: Mapping[str, Json]) -> set[str]:
    contained = resource.get("contained")
    if not isinstance(contained, list):
        return set()
    return {c["id"] for c in contained if isinstance(c, dict) and isinstance(c.get("id"), str)}


def type_and_id(resource: Mapping[str, Json]) -> str | None:
    resource_type, resource_id = resource.get("resourceType"), resource.get("id")
    if isinstance(resource_type, str) and isinstance(resource_id, str) and resource_id:
        return f"{resource_type}/{resource_id}"
    return None


def _strip_history(reference: str) -> str:
    head, marker, _ = reference.partition("/_history/")
    return head if marker else reference


@dataclass(slots=True)
class _Reference:
    entry: int
    parts: Parts  # from the Bundle root
    reference: str
    contained: frozenset[str]


@dataclass(slots=True)
class _Index:
    full_urls: dict[str, int] = field(default_factory=dict)
    versioned: set[tuple[str, str]] = field(default_factory=set)
    type_ids: dict[str, int] = field(default_factory=dict)
    references: list[_Reference] = field(default_factory=list)
    referenced: set[int] = field(default_factory=set)  # entries linked to another entry
    # Type/id -> the meta.versionId of each entry holding it (None: no versionId)
    key_versions: dict[str, set[str | None]] = field(default_factory=dict)
    # True when some references were found by the text scan: no paths, not in walk order.
    scanned: bool = False


def check_bundle(bundle: Mapping[str, Json], source: Source | None = None) -> list[Problem]:
    """Every integrity problem of one Bundle: invariants, requests, ids and references."""
    if bundle.get("resourceType") != "Bundle":
        return [
            _problem(NOT_A_BUNDLE, "resourceType is not Bundle", ("resourceType",), source, None)
        ]
    out: list[Problem] = []
    bundle_type = bundle.get("type")
    if bundle_type not in BUNDLE_TYPES:
        out.append(
            _problem(
                TYPE, "Bundle.type is missing or not an R4 bundle type", ("type",), source, None
            )
        )
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        out.append(_problem(NOT_A_BUNDLE, "Bundle.entry is not an array", ("entry",), source, None))
        entries = []
    out.extend(_bundle_invariants(bundle, bundle_type, entries, source))
    out.extend(_links(bundle.get("link"), source))
    index = _Index()
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            out.append(
                _problem(ENTRY, "entry is not an object", ("entry", position), source, position)
            )
            continue
        out.extend(_check_entry(entry, position, bundle_type, index, source))
    out.extend(_resolve_all(index, entries, bundle_type, source))
    if bundle_type == "collection":
        out.extend(_orphans(entries, index, source))
    return out


def _bundle_invariants(
    bundle: Mapping[str, Json], bundle_type: Json, entries: list[Json], source: Source | None
) -> Iterator[Problem]:
    if "total" in bundle and bundle_type not in ("searchset", "history"):
        yield _problem(
            BDL_1,
            "total is only allowed in a searchset or history Bundle",
            ("total",),
            source,
            None,
        )
    first = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    first_type = first.get("resourceType") if isinstance(first, dict) else None
    if bundle_type == "document":
        identifier = bundle.get("identifier")
        if not (
            isinstance(identifier, dict) and identifier.get("system") and identifier.get("value")
        ):
            yield _problem(
                BDL_9,
                "a document needs identifier.system and identifier.value",
                ("identifier",),
                source,
                None,
            )
        if not bundle.get("timestamp"):
            yield _problem(BDL_10, "a document needs a timestamp", ("timestamp",), source, None)
        if first_type != "Composition":
            yield _problem(BDL_11, "a document starts with a Composition", ("entry", 0), source, 0)
    if bundle_type == "message" and first_type != "MessageHeader":
        yield _problem(BDL_12, "a message starts with a MessageHeader", ("entry", 0), source, 0)


_ONCE = {"self": "self", "first": "first", "previous": "previous", "prev": "previous",
         "next": "next", "last": "last"}  # fmt: skip


def _links(links: Json, source: Source | None) -> Iterator[Problem]:
    """Bundle.link relations from https://hl7.org/fhir/R4/http.html#paging (self, first,
    previous, next, last) name one URL each: a Bundle has at most one link of each."""
    if not isinstance(links, list):
        return
    seen: set[str] = set()
    for position, link in enumerate(links):
        relation = link.get("relation") if isinstance(link, dict) else None
        once = _ONCE.get(relation) if isinstance(relation, str) else None
        if once is None:
            continue
        if once in seen:
            yield _problem(
                LINK_REPEATED,
                f"the link relation '{once}' may occur only once",
                ("link", position, "relation"),
                source,
                None,
            )
        seen.add(once)


_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")


def _check_entry(
    entry: Mapping[str, Json],
    position: int,
    bundle_type: Json,
    index: _Index,
    source: Source | None,
) -> Iterator[Problem]:
    here: Parts = ("entry", position)
    resource = entry.get("resource")
    resource = resource if isinstance(resource, dict) else None
    request = entry.get("request")

    if resource is None and request is None and entry.get("response") is None:
        yield _problem(
            BDL_5, "an entry needs a resource, a request or a response", here, source, position
        )
    if entry.get("search") is not None and bundle_type != "searchset":
        yield _problem(
            BDL_2,
            "entry.search is only allowed in a searchset",
            (*here, "search"),
            source,
            position,
        )
    if bundle_type in _WITH_REQUEST and request is None:
        yield _problem(
            BDL_3, f"every entry of a {bundle_type} Bundle needs a request", here, source, position
        )
    elif bundle_type not in _WITH_REQUEST and request is not None:
        yield _problem(
            BDL_3,
            "entry.request is only allowed in batch, transaction or history",
            (*here, "request"),
            source,
            position,
        )
    if bundle_type in _WITH_RESPONSE and entry.get("response") is None:
        yield _problem(
            BDL_4, f"every entry of a {bundle_type} Bundle needs a response", here, source, position
        )
    elif bundle_type not in _WITH_RESPONSE and entry.get("response") is not None:
        yield _problem(
            BDL_4,
            "entry.response is only allowed in batch-/transaction-response or history",
            (*here, "response"),
            source,
            position,
        )

    search = entry.get("search")
    mode = search.get("mode") if isinstance(search, dict) else None
    if mode in ("match", "include") and resource is not None and not resource.get("id"):
        yield _problem(
            SEARCH_ID, "Search results must have ids", (*here, "resource"), source, position
        )
    key = type_and_id(resource) if resource is not None else None
    meta = resource.get("meta") if resource is not None else None
    version = meta.get("versionId") if isinstance(meta, dict) else None
    if key is not None:
        # The same resource in two versions (meta.versionId) is two resources (bdl-7).
        versions = index.key_versions.setdefault(key, set())
        if (
            key in index.type_ids
            and bundle_type != "history"
            and (version is None or None in versions or version in versions)
        ):
            yield _problem(
                DUPLICATE_ID,
                f"{key} is also the resource of entry {index.type_ids[key]}",
                (*here, "resource", "id"),
                source,
                position,
            )
        index.type_ids.setdefault(key, position)
        versions.add(version if isinstance(version, str) else None)
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str) and full_url:
        yield from _check_full_url(full_url, position, resource, key, bundle_type, index, source)
    elif resource is not None and not (
        isinstance(request, dict) and request.get("method") == "POST"
    ):
        yield _problem(
            FULLURL_MISSING, "entry has a resource but no fullUrl", here, source, position
        )

    if isinstance(request, dict) and bundle_type in _WITH_REQUEST:
        yield from _check_request(request, resource, position, source)
    if resource is not None:
        scanned = scanned_references(resource)
        if scanned is None:
            index.references.extend(_walked_references(resource, position))
        else:
            contained = frozenset(_contained_ids(resource))
            # The walk skips empty references: so does the index, scanned or walked.
            index.references.extend(_Reference(position, (), r, contained) for r in scanned if r)
            index.scanned = True


def _walked_references(resource: Mapping[str, Json], position: int) -> Iterator[_Reference]:
    contained = frozenset(_contained_ids(resource))
    for parts, reference in iter_references(resource, ("entry", position, "resource")):
        yield _Reference(position, parts, reference, contained)


def _check_full_url(
    full_url: str,
    position: int,
    resource: Mapping[str, Json] | None,
    key: str | None,
    bundle_type: Json,
    index: _Index,
    source: Source | None,
) -> Iterator[Problem]:
    parts: Parts = ("entry", position, "fullUrl")
    if not _ABSOLUTE_URI.match(full_url):
        yield _problem(
            FULLURL_RELATIVE,
            "The fullUrl must be an absolute URL (not a relative one like Type/id)",
            parts,
            source,
            position,
        )
    if "/_history/" in full_url:
        yield _problem(
            BDL_8, "fullUrl must not be version specific (/_history/)", parts, source, position
        )
    version = ""
    if resource is not None and isinstance(resource.get("meta"), dict):
        version = str(resource["meta"].get("versionId", ""))
    if bundle_type != "history":
        if (full_url, version) in index.versioned:
            yield _problem(
                BDL_7,
                f"fullUrl is also used by entry {index.full_urls[full_url]}",
                parts,
                source,
                position,
            )
        index.versioned.add((full_url, version))
    index.full_urls.setdefault(full_url, position)
    restful = ABSOLUTE_REFERENCE.match(_strip_history(full_url))
    if restful is not None:
        tail = f"{restful[1]}/{restful[2]}"
        if key is not None and tail != key:
            yield _problem(
                FULLURL_MISMATCH,
                f"fullUrl ends in {tail} but the resource is {key}",
                parts,
                source,
                position,
            )
        index.type_ids.setdefault(tail, position)


def _check_request(
    request: Mapping[str, Json],
    resource: Mapping[str, Json] | None,
    position: int,
    source: Source | None,
) -> Iterator[Problem]:
    here: Parts = ("entry", position, "request")
    method, url = request.get("method"), request.get("url")
    if method not in METHODS:
        yield _problem(
            REQUEST,
            "request.method must be GET, HEAD, POST, PUT, DELETE or PATCH",
            (*here, "method"),
            source,
            position,
        )
        return
    if not isinstance(url, str) or not url:
        yield _problem(REQUEST, "request.url is missing", (*here, "url"), source, position)
        return
    if request.get("ifNoneExist") is not None and method != "POST":
        yield _problem(
            REQUEST,
            "ifNoneExist is only for POST (conditional create)",
            (*here, "ifNoneExist"),
            source,
            position,
        )
    if method in ("POST", "PUT") and resource is None:
        yield _problem(
            REQUEST, f"a {method} entry needs a resource", ("entry", position), source, position
        )
        return
    resource_type = resource.get("resourceType") if resource is not None else None
    if method == "POST" and url.split("?", 1)[0] != resource_type:
        yield _problem(
            REQUEST_URL, "a POST url is the resource type", (*here, "url"), source, position
        )
    elif method == "PUT":
        relative = RELATIVE_REFERENCE.match(url)
        conditional = CONDITIONAL_REFERENCE.match(url)
        key = type_and_id(resource) if resource is not None else None
        if relative is not None:
            if f"{relative[1]}/{relative[2]}" != key or relative[3]:
                yield _problem(
                    REQUEST_URL,
                    "a PUT url Type/id must match the resource's type and id",
                    (*here, "url"),
                    source,
                    position,
                )
        elif conditional is None or conditional[1] != resource_type:
            yield _problem(
                REQUEST_URL,
                "a PUT url is Type/id or Type?search of the resource's type",
                (*here, "url"),
                source,
                position,
            )
    elif method == "DELETE" and not (
        RELATIVE_REFERENCE.match(url) or CONDITIONAL_REFERENCE.match(url)
    ):
        yield _problem(
            REQUEST_URL, "a DELETE url is Type/id or Type?search", (*here, "url"), source, position
        )


def _resolve_all(
    index: _Index, entries: list[Json], bundle_type: Json, source: Source | None
) -> list[Problem]:
    """Every reference problem. Scanned references carry no path and not the walk's order, so
    when one of them does not resolve, the Bundle's references are collected again by the walk
    (the usual, valid Bundle never pays for it) and resolved from scratch."""
    problems = list(_resolve(index, bundle_type, source))
    if not problems or not index.scanned:
        return problems
    index.references = [
        reference
        for position, entry in enumerate(entries)
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict)
        for reference in _walked_references(entry["resource"], position)
    ]
    index.referenced.clear()
    index.scanned = False
    return list(_resolve(index, bundle_type, source))


def _resolve(index: _Index, bundle_type: Json, source: Source | None) -> Iterator[Problem]:
    for ref in index.references:
        form = reference_form(ref.reference)
        target: int | None = None
        if form == "contained":
            local = ref.reference[1:]
            if local and local not in ref.contained:
                yield _problem(
                    UNRESOLVED,
                    f"no contained resource has id '{local}'",
                    ref.parts,
                    source,
                    ref.entry,
                )
            continue
        if form == "conditional":
            if bundle_type not in _CONDITIONAL_OK:
                yield _problem(
                    CONDITIONAL,
                    "conditional references only work in a transaction or batch",
                    ref.parts,
                    source,
                    ref.entry,
                )
            continue
        # Documents and messages must be self-contained (R4 bundle.html#references); in the
        # other Bundles a reference may name a resource elsewhere: a warning, as the HL7
        # validator gives it.
        missing = UNRESOLVED if bundle_type in ("document", "message") else OUTSIDE
        if form == "urn":
            target = index.full_urls.get(ref.reference)
            if target is None:
                yield _problem(missing, "no entry has this fullUrl", ref.parts, source, ref.entry)
        elif form == "relative":
            target = index.type_ids.get(_strip_history(ref.reference))
            wanted = ref.reference.partition("/_history/")[2]
            held = index.key_versions.get(_strip_history(ref.reference), set())
            if wanted and held and None not in held and wanted not in held:
                yield _problem(
                    REFERENCE_VERSION,
                    f"the reference asks for version {_printable(wanted)}, no entry holds it",
                    ref.parts,
                    source,
                    ref.entry,
                )
            if target is None:
                yield _problem(
                    missing,
                    "no entry holds the referenced Type/id",
                    ref.parts,
                    source,
                    ref.entry,
                )
        elif form == "absolute":
            target = index.full_urls.get(_strip_history(ref.reference))
            if target is None:
                yield _problem(
                    EXTERNAL,
                    "absolute reference to no entry of this Bundle",
                    ref.parts,
                    source,
                    ref.entry,
                )
        if target is not None and target != ref.entry:
            index.referenced.add(target)
            index.referenced.add(ref.entry)  # linked both ways: neither end is an orphan


def _orphans(entries: list[Json], index: _Index, source: Source | None) -> Iterator[Problem]:
    for position, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or position in index.referenced:
            continue
        resource_type = resource.get("resourceType")
        if resource_type not in _ROOTS:
            yield _problem(
                ORPHAN,
                f"this {resource_type} references no other entry and none references it",
                ("entry", position),
                source,
                position,
            )


# --- NDJSON file sets (Bulk Data): references across files ------------------------------------

BULK_DUPLICATE_ID = register_code(
    "bulk.duplicate-id",
    Severity.ERROR,
    "Two resources in one NDJSON file set share Type/id (importers keep one at random).",
    "bundle",
)
BULK_UNRESOLVED = register_code(
    "bulk.reference-unresolved",
    Severity.ERROR,
    "A Type/id or urn reference that no resource of the NDJSON file set resolves.",
    "bundle",
)
BULK_CONDITIONAL = register_code(
    "bulk.conditional-reference",
    Severity.ERROR,
    "A conditional reference (Type?search) in NDJSON, which bulk importers do not resolve.",
    "bundle",
)


@dataclass(slots=True)
class FileSetIndex:
    """Type/id of every resource seen across a set of NDJSON files, and the references still
    waiting for their target. Memory: one string per resource, one per distinct pending target.
    Paths of problems are JSONPaths inside the referencing resource."""

    seen: dict[str, Source | None] = field(default_factory=dict)
    pending: dict[str, tuple[Source | None, str]] = field(default_factory=dict)
    # Targets outside the file set on purpose (the manifest says so): not unresolved.
    external: set[str] = field(default_factory=set)
    # Every resource waiting for a pending target (not only the first), so that none of them
    # is counted valid when the target never comes; and whether the last add() waited.
    waiting: dict[str, list[Source | None]] = field(default_factory=dict)
    last_waited: bool = False

    def add(
        self,
        resource: Mapping[str, Json],
        source: Source | None,
        references: list[tuple[Parts, str]] | None = None,
    ) -> list[Problem]:
        """Index the resource and check its references (`references`: iter_references of the
        resource, already collected by the rules walk)."""
        out = []
        key = type_and_id(resource)
        if key is not None:
            if key in self.seen:
                first = self.seen[key]
                where = f" (first at {first})" if first is not None else ""
                out.append(
                    Problem(
                        BULK_DUPLICATE_ID,
                        Severity.ERROR,
                        f"{key} appears twice{where}",
                        "$.id",
                        source,
                    )
                )
            else:
                self.seen[key] = source
                self.pending.pop(key, None)
                self.waiting.pop(key, None)
        self.last_waited = False
        contained = _contained_ids(resource)
        for parts, reference in references if references else iter_references(resource):
            path = json_path(parts)
            form = reference_form(reference)
            if form == "conditional":
                out.append(
                    Problem(
                        BULK_CONDITIONAL,
                        Severity.ERROR,
                        "conditional reference in NDJSON",
                        path,
                        source,
                    )
                )
            elif form == "contained":
                local = reference[1:]
                if local and local not in contained:
                    out.append(
                        Problem(
                            BULK_UNRESOLVED,
                            Severity.ERROR,
                            f"no contained resource has id '{local}'",
                            path,
                            source,
                        )
                    )
            elif form in ("relative", "urn"):
                target = _strip_history(reference)
                if target not in self.seen:
                    if target not in self.pending:
                        self.pending[target] = (source, path)
                    self.waiting.setdefault(target, []).append(source)
                    self.last_waited = True
        return out

    def unresolved_sources(self) -> set[Source | None]:
        """Where every resource with a reference that never resolved came from."""
        return {
            source
            for target, sources in self.waiting.items()
            if target not in self.seen
            for source in sources
        }

    def unresolved(self) -> list[Problem]:
        """The references whose target never appeared, one problem per distinct target."""
        return [
            Problem(
                BULK_UNRESOLVED,
                Severity.ERROR,
                f"no resource of the file set is {_printable(target)}",
                path,
                source,
            )
            for target, (source, path) in sorted(self.pending.items(), key=lambda item: item[0])
            if target not in self.seen and target not in self.external
        ]


def _printable(reference: str) -> str:
    return reference if len(reference) <= 80 and reference.isprintable() else reference[:77] + "..."
