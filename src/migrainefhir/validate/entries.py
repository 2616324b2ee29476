"""A Bundle's own entry elements in fast mode: one compiled schema, fhir.resources per shape.

In full mode fhir.resources validates the Bundle with every entry's own elements (fullUrl,
request, response, search, link; the resources are validated one by one): one BundleEntry
model per entry, about a third of validate_bundle's time on a large Bundle. Fast mode treats
the entries as it treats resources. Every entry goes through entry_schema(), a closed schema of
the R4 BundleEntry elements whose values fhir.resources would accept (R4 primitives, the
http-verb and search-entry-mode codes; an extension or anything else is refused); the
Bundle goes to fhir.resources with only the first entry of each shape (`shape`: the element
names at every level and the JSON type of each value). When any entry fails the schema, or
fhir.resources finds something in that sample, the whole Bundle goes to fhir.resources as in
full mode, so the problems are the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from migrainefhir.validate import profiles, references

Json = Any

SEARCH_MODES = ("match", "include", "outcome")
# fhir.resources' R4 string: any of these characters, at least one of them, and our own
# primitives' rule (not only whitespace).
_STRING = {"type": "string", "pattern": "^[ \\r\\n\\t\\S]+$", "allOf": [{"pattern": "\\S"}]}


def _closed(required: list[str], **properties: Json) -> dict[str, Json]:
    """A closed, non-empty object."""
    return {**_closed_or_empty(required, **properties), "minProperties": 1}


def _closed_or_empty(required: list[str], **properties: Json) -> dict[str, Json]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    }


def entry_schema() -> dict[str, Json]:
    """The R4 BundleEntry elements other than `resource`, as fhir.resources accepts them."""
    uri, instant, decimal = ({"$ref": f"#/$defs/{name}"} for name in ("uri", "instant", "decimal"))
    link = _closed(["relation", "url"], relation=_STRING, url=uri)
    request = _closed(
        ["method", "url"],
        method={"enum": sorted(references.METHODS)},
        url=uri,
        ifNoneMatch=_STRING,
        ifModifiedSince=instant,
        ifMatch=_STRING,
        ifNoneExist=_STRING,
    )
    response = _closed(["status"], status=_STRING, location=uri, etag=_STRING, lastModified=instant)
    # Empty when the entry held only its resource (the shell strips it).
    entry = _closed_or_empty(
        [],
        id=_STRING,
        link={"type": "array", "minItems": 1, "items": link},
        fullUrl=uri,
        search=_closed([], mode={"enum": list(SEARCH_MODES)}, score=decimal),
        request=request,
        response=response,
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": profiles.shared_defs(),
        **entry,
    }


@functools.cache
def _compiled() -> Callable[[object], bool]:
    from migrainefhir.schema import compiled_predicate

    return compiled_predicate(entry_schema())


def entry_clean(entry: object) -> bool:
    """True when entry_schema() accepts the entry (without its resource)."""
    return _compiled()(entry)


def shape(value: Json) -> Json:
    """The element names at every level and the JSON type of each value, hashable."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(key), shape(item)) for key, item in value.items()))
    if isinstance(value, list):
        return ("[]", tuple(shape(item) for item in value))
    return type(value).__name__
