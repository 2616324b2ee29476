"""Layer 3, rules: small registered checks with permanent codes, for what the R4 model misses.

fhir.resources enforces neither invariants (obs-6, per-1, ...), nor required value-set
bindings, nor JSON nulls and empty arrays, nor choice exclusivity in a way that names the
element. Each rule below is one function with one code, registered with @rule; its docstring
cites the R4 text it implements. Element rules run during ONE walk over the resource (one
visit per node); resource rules look at a few named elements.

A rule never raises on odd input: whatever shape the resource has, structure reports it, and
rules only look at values of the types they expect.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources as package_files
from typing import Any

from migrainefhir.problems import (
    PROBLEM_CODES,
    Problem,
    Severity,
    json_path,
    register_code,
    shown_value,
)
from migrainefhir.validate import fhirtime

Json = Any
Parts = tuple[str | int, ...]

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PROJECT_CODE_SYSTEMS = "https://migrainefhir.org/fhir/CodeSystem/"


@dataclass(frozen=True, slots=True)
class Terminology:
    """The project CodeSystems we ship: canonical URL -> the codes it defines."""

    code_systems: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    severity: Severity
    summary: str
    check: Callable[[Mapping[str, Json], Terminology], Iterator[Problem]]
    resource_types: frozenset[str] | None  # None: every resource


RULES: list[Rule] = []


def rule(
    code: str, severity: Severity, summary: str, resource_types: Sequence[str] | None = None
) -> Callable[
    [Callable[[Mapping[str, Json], Terminology], Iterator[Problem]]],
    Callable[[Mapping[str, Json], Terminology], Iterator[Problem]],
]:
    """Register a resource rule under a permanent problem code (layer "rule")."""
    register_code(code, severity, summary, "rule")

    def add(
        check: Callable[[Mapping[str, Json], Terminology], Iterator[Problem]],
    ) -> Callable[[Mapping[str, Json], Terminology], Iterator[Problem]]:
        types = frozenset(resource_types) if resource_types is not None else None
        RULES.append(Rule(code, severity, summary, check, types))
        return check

    return add


References = list[tuple[Parts, str]]


def check_rules(
    resource: Mapping[str, Json],
    terminology: Terminology | None = None,
    references: References | None = None,
) -> list[Problem]:
    """Every rule problem of one resource (element rules in one walk, then resource rules).

    With `references`, the same walk also collects every Reference.reference with its path,
    in the order references.iter_references gives them (so the integrity layer need not walk
    the resource again); the list is cleared when the walk cannot give that order.
    """
    terms = terminology if terminology is not None else project_terminology()
    problems: list[Problem] = []
    walker = _Walker(terms, problems, references)
    walker.walk(resource, ())
    if references is not None:
        if walker.nested_list:
            references.clear()  # an array in an array: only iter_references sees inside
        else:
            references.reverse()
    for each in rules_for(resource.get("resourceType")):
        problems.extend(each.check(resource, terms))
    return problems


def rules_for(resource_type: object) -> tuple[Rule, ...]:
    """The registered resource rules that apply to a resourceType. A resourceType that is not
    a string (structure reports it) gets the rules that apply to every resource."""
    return _rules_for_type(resource_type if isinstance(resource_type, str) else None)


@functools.lru_cache(maxsize=256)
def _rules_for_type(resource_type: str | None) -> tuple[Rule, ...]:
    # All rules are registered at import, before the first call.
    return tuple(
        r
        for r in RULES
        if r.resource_types is None
        or (resource_type is not None and resource_type in r.resource_types)
    )


def _problem(code: str, message: str, parts: Parts) -> Problem:
    return Problem(code, PROBLEM_CODES[code].severity, message, json_path(parts))


# --- element rules: registered codes, run by the walker --------------------------------------

EMPTY = register_code(
    "fhir.empty",
    Severity.ERROR,
    "An empty string, array or object, or a JSON null (R4 JSON allows none of them).",
    "rule",
)
INT32 = register_code(
    "fhir.int32",
    Severity.ERROR,
    "An integer element holds a fraction or a number outside the 32-bit range R4 allows.",
    "rule",
)
DATE_IMPOSSIBLE = register_code(
    "fhir.date-impossible",
    Severity.ERROR,
    "A date or dateTime that names no real day or time (30 February, month 13, 25:61).",
    "rule",
)
PER_1 = register_code(
    "fhir.per-1",
    Severity.ERROR,
    "Period.start is after Period.end (R4 invariant per-1).",
    "rule",
)
QTY_3 = register_code(
    "fhir.qty-3",
    Severity.ERROR,
    "A Quantity has a unit code but no system (R4 invariant qty-3).",
    "rule",
)
UCUM_UNIT = register_code(
    "fhir.ucum-unit",
    Severity.WARNING,
    "A UCUM Quantity whose unit code is not in the R4 common UCUM units this project knows.",
    "rule",
)
REFERENCE_FORM = register_code(
    "fhir.reference-form",
    Severity.ERROR,
    "Reference.reference is not a relative, absolute, urn:uuid/urn:oid, contained or "
    "conditional reference.",
    "rule",
)
PROJECT_CODE = register_code(
    "fhir.project-code",
    Severity.ERROR,
    "A coding in a migrainefhir CodeSystem uses a code (or system) the project does not define.",
    "rule",
)
URI = register_code(
    "fhir.uri",
    Severity.ERROR,
    "A uri element (system, url, meta.profile) that contains whitespace.",
    "rule",
)
VALUE_CHOICE = register_code(
    "fhir.value-choice",
    Severity.ERROR,
    "Two types of one choice element at once (valueInteger and valueString, ...).",
    "rule",
)


# Elements whose type is date, dateTime or instant in the R4 resources and datatypes we see,
# plus every `xxxDate`, `xxxDateTime`, `xxxInstant` choice. Only date-shaped strings are read.
DATE_KEYS = frozenset(
    {
        "issued", "start", "end", "recorded", "lastUpdated", "timestamp", "date", "time",
        "when", "birthDate", "authoredOn", "dateAsserted", "recordedDate", "occurredDateTime",
        "transactionTime", "created", "lastModified", "event",
    }
)  # fmt: skip
DATE_SUFFIXES = ("DateTime", "Date", "Instant")
# uri / url / canonical elements by name (Coding.system, Identifier.system, Quantity.system,
# Extension.url, meta.profile, instantiatesUri).
URI_KEYS = frozenset({"system", "url", "profile", "instantiatesUri", "instantiatesCanonical"})
_WHITESPACE = re.compile(r"\s")
# integer / positiveInt / unsignedInt elements (JSON numbers that must be whole and int32).
INT_KEYS = frozenset({"total", "count", "countMax", "size", "sequence", "rank", "frequency",
                       "frequencyMax", "numberOfSeries", "numberOfInstances",
                       "dimensions"})  # fmt: skip
INT_SUFFIXES = ("Integer", "PositiveInt", "UnsignedInt")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

# The R4 choice elements ([x]) that occur in the resources we validate; a resource with two
# keys of one of these names plus a type suffix has two values for one choice.
_CHOICE_NAMES = ("value", "effective", "performed", "medication", "deceased", "multipleBirth",
                 "onset", "abatement", "occurred", "occurrence", "timing", "bounds", "asNeeded",
                 "rate", "dose", "born", "age", "serviced", "reported")  # fmt: skip
_CHOICE_KEY = re.compile(r"^(" + "|".join(_CHOICE_NAMES) + r")([A-Z][A-Za-z0-9]*)$")

# UCUM codes from the R4 value sets ucum-vitals-common (all 12 codes) and ucum-common (the
# subset for the quantities this project and its importers exchange: doses, rates, durations,
# scores). Source: https://hl7.org/fhir/R4/valueset-ucum-vitals-common.html and
# https://hl7.org/fhir/R4/valueset-ucum-common.html (4.0.1).
UCUM_VITALS_COMMON = frozenset(
    {"%", "cm", "[in_i]", "kg", "g", "[lb_av]", "Cel", "[degF]", "mm[Hg]", "/min", "kg/m2", "m2"}
)
KNOWN_UCUM = UCUM_VITALS_COMMON | frozenset(
    {
        "mg", "ug", "ng", "mg/kg", "mg/kg/h", "mg/kg/min", "ug/kg", "ug/kg/min", "ug/kg/h",
        "mg/h", "mg/min", "ug/h", "ug/min", "mL", "L", "mL/h", "mL/min", "mL/kg", "mL/kg/h",
        "s", "min", "h", "d", "wk", "mo", "a", "1", "/h", "/d", "/wk", "m", "mm", "[iU]",
        "mmol/L", "mg/dL", "mg/mL", "ug/mL",
    }
)  # fmt: skip
# A pure UCUM annotation such as {score} is valid UCUM meaning "1" (terminology notes, sec. 10).
_UCUM_ANNOTATION = re.compile(r"^\{[^{}]+\}$")

# R4 reference forms (https://hl7.org/fhir/R4/references.html#literal, #regex; bundle.html).
_ID = r"[A-Za-z0-9\-\.]{1,64}"
_TYPE = r"[A-Z][A-Za-z]+"
RELATIVE_REFERENCE = re.compile(rf"^({_TYPE})/({_ID})(/_history/{_ID})?$")
ABSOLUTE_REFERENCE = re.compile(rf"^https?://\S+/({_TYPE})/({_ID})(/_history/{_ID})?$")
CONDITIONAL_REFERENCE = re.compile(rf"^({_TYPE})\?\S+$")
URN_REFERENCE = re.compile(
    r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    r"|^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$"
)
CONTAINED_REFERENCE = re.compile(rf"^#({_ID})?$")
OTHER_ABSOLUTE_URI = re.compile(r"^[a-z][a-z0-9+.\-]*:\S+$")  # canonical / other URIs


# References repeat (every resource of a record names its Patient): the answer is cached.
@functools.lru_cache(maxsize=16384)
def reference_form(reference: str) -> str | None:
    """'relative', 'absolute', 'urn', 'contained', 'conditional', 'uri', or None (malformed)."""
    if RELATIVE_REFERENCE.match(reference):
        return "relative"
    if URN_REFERENCE.match(reference):
        return "urn"
    if ABSOLUTE_REFERENCE.match(reference):
        return "absolute"
    if CONTAINED_REFERENCE.match(reference):
        return "contained"
    if CONDITIONAL_REFERENCE.match(reference):
        return "conditional"
    if reference.startswith("urn:"):
        return None  # a urn that is neither a uuid nor an oid
    if OTHER_ABSOLUTE_URI.match(reference):
        return "uri"
    return None


class _Walker:
    """One visit per node, running every element rule."""

    def __init__(
        self, terminology: Terminology, out: list[Problem], references: References | None = None
    ) -> None:
        self.terminology = terminology
        self.out = out
        # Collected after each node's children (post-order): reversed, that is the order of
        # references.iter_references (pre-order, children last to first).
        self.references = references
        self.nested_list = False

    def walk(self, node: Mapping[str, Json], parts: Parts) -> None:
        if not node:
            self.out.append(_problem(EMPTY, "empty object", parts))
            return
        self._object_rules(node, parts)
        choices: dict[str, str] | None = None
        key_kind = _key_kind
        for key, value in node.items():
            kind = key_kind(key)
            if value is None:
                self.out.append(_problem(EMPTY, "null is not allowed in FHIR JSON", (*parts, key)))
                continue
            if kind.choice is not None:
                choices = choices if choices is not None else {}
                first = choices.setdefault(kind.choice, key)
                if first != key:
                    message = f"{kind.choice}[x] given twice: '{first}' and '{key}'"
                    self.out.append(_problem(VALUE_CHOICE, message, (*parts, key)))
            if isinstance(value, dict):
                self.walk(value, (*parts, key))
            elif isinstance(value, list):
                self._array(node, key, value, (*parts, key))
            elif kind.checked or value == "":
                self._primitive(kind, value, (*parts, key))
        if self.references is not None:
            reference = node.get("reference")
            if isinstance(reference, str) and reference:
                self.references.append(((*parts, "reference"), reference))

    def _array(self, node: Mapping[str, Json], key: str, items: list[Json], parts: Parts) -> None:
        if not items:
            self.out.append(_problem(EMPTY, "empty array", parts))
            return
        kind = _key_kind(key)
        for index, item in enumerate(items):
            if isinstance(item, dict):
                self.walk(item, (*parts, index))
            elif item is None:
                # R4 JSON: primitive arrays pair with `_key` arrays, with null where one side
                # is absent.
                partner = node.get(key[1:] if key.startswith("_") else "_" + key)
                paired = isinstance(partner, list) and index < len(partner)
                if not (paired and partner is not None and partner[index] is not None):
                    self.out.append(_problem(EMPTY, "null in an array", (*parts, index)))
            elif kind.checked or item == "":
                self._primitive(kind, item, (*parts, index))
            elif isinstance(item, list):
                self.nested_list = True

    def _primitive(self, kind: _KeyKind, value: Json, parts: Parts) -> None:
        if isinstance(value, str):
            if value == "":
                self.out.append(_problem(EMPTY, "empty string", parts))
            elif kind.uri and _WHITESPACE.search(value):
                # R4 uri: "\S*" (https://hl7.org/fhir/R4/datatypes.html#uri); fhir.resources
                # accepts spaces in it.
                self.out.append(_problem(URI, "a uri must not contain whitespace", parts))
            elif kind.date:
                why = fhirtime.calendar_problem(value)
                if why is not None:
                    self.out.append(_problem(DATE_IMPOSSIBLE, f"impossible date: {why}", parts))
        elif kind.integer and isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                self.out.append(_problem(INT32, "an integer element holds a fraction", parts))
            elif not _INT32_MIN <= value <= _INT32_MAX:
                self.out.append(
                    _problem(INT32, "integer outside the 32-bit range R4 allows", parts)
                )

    def _object_rules(self, node: Mapping[str, Json], parts: Parts) -> None:
        if _is_quantity(node):
            self._quantity(node, parts)
        elif isinstance(node.get("system"), str) and isinstance(node.get("code"), str):
            self._coding(node, parts)
        reference = node.get("reference")
        if isinstance(reference, str) and reference and reference_form(reference) is None:
            self.out.append(
                _problem(REFERENCE_FORM, "not a valid R4 reference", (*parts, "reference"))
            )
        if parts and isinstance(parts[-1], str) and _key_kind(parts[-1]).period:
            self._period(node, parts)

    def _quantity(self, node: Mapping[str, Json], parts: Parts) -> None:
        """qty-3: "If a code for the unit is present, the system SHALL also be present"
        (code.empty() or system.exists()), https://hl7.org/fhir/R4/datatypes.html#Quantity.
        fhir.ucum-unit: the R4 ucum-common / ucum-vitals-common value sets
        (https://hl7.org/fhir/R4/valueset-ucum-common.html)."""
        code, system = node.get("code"), node.get("system")
        if isinstance(code, str) and code and system is None:
            self.out.append(
                _problem(
                    QTY_3,
                    "Constraint failed: qty-3: 'If a code for the unit is present, the system "
                    "SHALL also be present'",
                    (*parts, "code"),
                )
            )
        elif system == UCUM and isinstance(code, str) and not _known_ucum(code):
            self.out.append(
                _problem(
                    UCUM_UNIT,
                    f"UCUM unit '{_short(code)}' is not one of the common R4 UCUM units",
                    (*parts, "code"),
                )
            )

    def _coding(self, node: Mapping[str, Json], parts: Parts) -> None:
        """fhir.project-code: a code in https://migrainefhir.org/fhir/CodeSystem/* must be
        defined in the CodeSystem we ship (R4 terminologies.html: a Coding's code SHALL be a
        code defined by its system)."""
        system = node["system"]
        if not system.startswith(PROJECT_CODE_SYSTEMS) or not self.terminology.code_systems:
            return
        codes = self.terminology.code_systems.get(system)
        if codes is None:
            self.out.append(
                _problem(
                    PROJECT_CODE, "no migrainefhir CodeSystem has this URL", (*parts, "system")
                )
            )
        elif node["code"] not in codes:
            self.out.append(
                _problem(
                    PROJECT_CODE,
                    f"code {shown_value(node['code'], codes)} is not defined in {system}",
                    (*parts, "code"),
                )
            )

    def _period(self, node: Mapping[str, Json], parts: Parts) -> None:
        """per-1: "If present, start SHALL have a lower value than end"
        (start.hasValue().not() or end.hasValue().not() or (start <= end)),
        https://hl7.org/fhir/R4/datatypes.html#Period. Partial dates are compared as the
        intervals they name, so only a certain inversion is reported."""
        if period_inverted(node):
            self.out.append(
                _problem(
                    PER_1,
                    "Constraint failed: per-1: 'If present, start SHALL have a lower value than "
                    "end'",
                    (*parts, "end"),
                )
            )


def period_inverted(period: Mapping[str, Json]) -> bool:
    """per-1 on one Period: its end surely before its start."""
    start, end = period.get("start"), period.get("end")
    return isinstance(start, str) and isinstance(end, str) and fhirtime.surely_before(end, start)


def is_period_key(key: str) -> bool:
    """The element holds a Period (effectivePeriod, period, ...), as per-1 reads the name."""
    return _key_kind(key).period


def _known_ucum(code: str) -> bool:
    return not code or code in KNOWN_UCUM or _UCUM_ANNOTATION.match(code) is not None


@dataclass(frozen=True, slots=True)
class _KeyKind:
    """What the element rules need to know about an element name (computed once per name)."""

    choice: str | None  # "value" for valueQuantity, ...
    date: bool
    integer: bool
    uri: bool
    period: bool
    checked: bool  # date, integer or uri: its primitive values are looked at


@functools.cache
def _key_kind(key: str) -> _KeyKind:
    match = _CHOICE_KEY.match(key)
    date = key in DATE_KEYS or key.endswith(DATE_SUFFIXES)
    integer = key in INT_KEYS or key.endswith(INT_SUFFIXES)
    uri = key in URI_KEYS
    return _KeyKind(
        choice=match[1] if match is not None else None,
        date=date,
        integer=integer,
        uri=uri,
        period=key.lower().endswith("period"),
        checked=date or integer or uri,
    )


def _is_quantity(node: Mapping[str, Json]) -> bool:
    value = node.get("value")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return (
        "unit" in node or "comparator" in node or (numeric and ("code" in node or "system" in node))
    )


def _short(text: str) -> str:
    return text if len(text) <= 30 and text.isprintable() else text[:27] + "..."


# --- resource rules ---------------------------------------------------------------------------


def _value_keys(node: Mapping[str, Json]) -> list[str]:
    return [k for k in node if k.startswith("value") and len(k) > 5 and k[5].isupper()]


def _codings(concept: Json) -> list[tuple[str | None, str]]:
    """(system, code) of each coding with a string code (and a string system, or none: a
    system of another JSON type is structure's finding, and could not be compared)."""
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return []
    return [
        (c.get("system"), c["code"])
        for c in concept["coding"]
        if isinstance(c, dict)
        and isinstance(c.get("code"), str)
        and isinstance(c.get("system"), str | None)
    ]


def _list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


@rule(
    "fhir.obs-6",
    Severity.ERROR,
    "Observation with both dataAbsentReason and a value (R4 invariant obs-6).",
    ["Observation"],
)
def obs_6(resource: Mapping[str, Json], _: Terminology) -> Iterator[Problem]:
    """obs-6: "dataAbsentReason SHALL only be present if Observation.value[x] is not present"
    (dataAbsentReason.empty() or value.empty()), https://hl7.org/fhir/R4/observation.html#invs."""
    if resource.get("dataAbsentReason") is not None and _value_keys(resource):
        yield _problem(
            "fhir.obs-6",
            "Constraint failed: obs-6: 'dataAbsentReason SHALL only be present if "
            "Observation.value[x] is not present'",
            ("dataAbsentReason",),
        )


@rule(
    "fhir.obs-7",
    Severity.ERROR,
    "Observation with a value whose component repeats Observation.code (R4 invariant obs-7).",
    ["Observation"],
)
def obs_7(resource: Mapping[str, Json], _: Terminology) -> Iterator[Problem]:
    """obs-7: "If Observation.code is the same as an Observation.component.code then the value
    element associated with the code SHALL NOT be present" (value.empty() or
    component.code.where(coding.intersect(%resource.code.coding).exists()).empty()),
    https://hl7.org/fhir/R4/observation.html#invs. intersect() compares whole Codings (a
    display that differs makes two Codings differ), as the FHIRPath engines do."""
    components = _list(resource.get("component"))
    if not components or not _value_keys(resource):
        return
    own = set(_whole_codings(resource.get("code")))
    if not own:
        return
    for index, component in enumerate(components):
        if isinstance(component, dict) and not own.isdisjoint(
            _whole_codings(component.get("code"))
        ):
            yield _problem(
                "fhir.obs-7",
                "Constraint failed: obs-7: 'If Observation.code is the same as an "
                "Observation.component.code then the value element associated with the code "
                "SHALL NOT be present'",
                ("component", index, "code"),
            )


def _whole_codings(concept: Json) -> list[str]:
    """Each Coding of a CodeableConcept as canonical JSON text (for comparing whole Codings)."""
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return []
    return [json.dumps(c, sort_keys=True) for c in concept["coding"] if isinstance(c, dict)]


def _is_vital_sign(resource: Mapping[str, Json]) -> bool:
    return any(
        system == OBSERVATION_CATEGORY and code == "vital-signs"
        for category in _list(resource.get("category"))
        for system, code in _codings(category)
    )


@rule(
    "fhir.vs-2",
    Severity.ERROR,
    "Vital-sign Observation with neither value, dataAbsentReason, component nor hasMember.",
    ["Observation"],
)
def vs_2(resource: Mapping[str, Json], _: Terminology) -> Iterator[Problem]:
    """vs-2 (R4 vital signs profile): "If there is no component or hasMember element then
    either a value[x] or a data absent reason must be present" ((component.empty() and
    hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())),
    https://hl7.org/fhir/R4/vitalsigns.html. Applies to Observations in category vital-signs."""
    if not _is_vital_sign(resource):
        return
    if resource.get("component") or resource.get("hasMember"):
        return
    if resource.get("dataAbsentReason") is None and not _value_keys(resource):
        yield _problem(
            "fhir.vs-2",
            "Constraint failed: vs-2: 'If there is no component or hasMember element then "
            "either a value[x] or a data absent reason must be present.'",
            (),
        )


@rule(
    "fhir.vs-3",
    Severity.ERROR,
    "Vital-sign Observation component with neither value nor dataAbsentReason.",
    ["Observation"],
)
def vs_3(resource: Mapping[str, Json], _: Terminology) -> Iterator[Problem]:
    """vs-3 (R4 vital signs profile, on Observation.component): "If there is no a value a data
    absent reason must be present" (value.exists() or dataAbsentReason.exists()),
    https://hl7.org/fhir/R4/vitalsigns.html."""
    if not _is_vital_sign(resource):
        return
    for index, component in enumerate(_list(resource.get("component"))):
        if not isinstance(component, dict):
            continue
        if component.get("dataAbsentReason") is None and not _value_keys(component):
            yield _problem(
                "fhir.vs-3",
                "Constraint failed: vs-3: 'If there is no a value a data absent reason must be "
                "present'",
                ("component", index),
            )


# The vital-sign table (terminology notes, section (c), from the R4 vital signs profiles):
# LOINC code -> the UCUM unit its valueQuantity must carry. The BP panel has no own value.
VITAL_SIGN_UNITS: dict[str, str] = {
    "8867-4": "/min",  # heart rate
    "9279-1": "/min",  # respiratory rate
    "2708-6": "%",  # oxygen saturation in arterial blood
    "59408-5": "%",  # ... by pulse oximetry (second coding)
    "29463-7": "kg",  # body weight
}
BP_PANEL, PANEL = "85354-9", "85353-1"
BP_COMPONENTS = {"8480-6": "mm[Hg]", "8462-4": "mm[Hg]"}


@rule(
    "fhir.vital-sign-code",
    Severity.ERROR,
    "Vital-sign Observation whose LOINC code, value or UCUM unit does not match the R4 vital "
    "signs profile table.",
    ["Observation"],
)
def vital_sign_code(resource: Mapping[str, Json], _: Terminology) -> Iterator[Problem]:
    """R4 vital signs profiles (https://hl7.org/fhir/R4/vitalsigns.html, table of profiles):
    Observation.code carries a LOINC code; heart rate 8867-4 and respiratory rate 9279-1 in
    /min, oxygen saturation 2708-6 in %, body weight 29463-7 in kg, the blood pressure panel
    85354-9 with systolic 8480-6 / diastolic 8462-4 components in mm[Hg] and no value of its
    own; valueQuantity.system is http://unitsofmeasure.org (required binding to
    ucum-vitals-common). Only codes in that table are checked."""
    if not _is_vital_sign(resource):
        return
    loinc = [code for system, code in _codings(resource.get("code")) if system == LOINC]
    if not loinc:
        yield _problem("fhir.vital-sign-code", "vital sign without a LOINC code", ("code",))
        return
    if BP_PANEL in loinc:
        if _value_keys(resource):
            yield _problem(
                "fhir.vital-sign-code",
                "the blood pressure panel carries its values in components only",
                (_value_keys(resource)[0],),
            )
        for index, component in enumerate(_list(resource.get("component"))):
            if not isinstance(component, dict):
                continue
            codes = [c for s, c in _codings(component.get("code")) if s == LOINC]
            expected = next((BP_COMPONENTS[c] for c in codes if c in BP_COMPONENTS), None)
            if expected is None:
                yield _problem(
                    "fhir.vital-sign-code",
                    "blood pressure component is neither systolic 8480-6 nor diastolic 8462-4",
                    ("component", index, "code"),
                )
            else:
                yield from _unit_problems(component, expected, ("component", index))
        return
    expected = next((VITAL_SIGN_UNITS[c] for c in loinc if c in VITAL_SIGN_UNITS), None)
    if expected is not None:
        yield from _unit_problems(resource, expected, ())


def _unit_problems(node: Mapping[str, Json], unit: str, parts: Parts) -> Iterator[Problem]:
    if not _value_keys(node):
        return  # no value at all: vs-2 / vs-3 (or a dataAbsentReason)
    quantity = node.get("valueQuantity")
    if not isinstance(quantity, dict):
        present = _value_keys(node)
        where = (*parts, present[0]) if present else parts
        yield _problem(
            "fhir.vital-sign-code", "a vital sign's value must be a valueQuantity", where
        )
        return
    # A missing system is qty-3's finding; here only a wrong unit or a non-UCUM system.
    if quantity.get("code") != unit or quantity.get("system") not in (None, UCUM):
        yield _problem(
            "fhir.vital-sign-code",
            f"this vital sign's unit must be UCUM '{unit}'",
            (*parts, "valueQuantity", "code"),
        )


# Required bindings of status elements (R4 4.0.1 value sets).
STATUS_CODES: dict[str, frozenset[str]] = {
    # http://hl7.org/fhir/ValueSet/observation-status
    "Observation": frozenset({"registered", "preliminary", "final", "amended", "corrected",
                              "cancelled", "entered-in-error", "unknown"}),
    # http://hl7.org/fhir/ValueSet/event-status
    "Procedure": frozenset({"preparation", "in-progress", "not-done", "on-hold", "stopped",
                            "completed", "entered-in-error", "unknown"}),
    # http://hl7.org/fhir/ValueSet/medication-admin-status
    "MedicationAdministration": frozenset({"in-progress", "not-done", "on-hold", "completed",
                                           "entered-in-error", "stopped", "unknown"}),
    # http://hl7.org/fhir/ValueSet/medication-statement-status
    "MedicationStatement": frozenset({"active", "completed", "entered-in-error", "intended",
                                      "stopped", "on-hold", "unknown", "not-taken"}),
    # http://hl7.org/fhir/ValueSet/device-status
    "Device": frozenset({"active", "inactive", "entered-in-error", "unknown"}),
}  # fmt: skip


@rule(
    "fhir.status-code",
    Severity.ERROR,
    "A status outside its required R4 value set (Observation, Procedure, Medication*, Device).",
    list(STATUS_CODES),
)
def status_code(resource: Mapping[str, Json], _: Terminology) -> Iterator[Problem]:
    """Required bindings (https://hl7.org/fhir/R4/terminologies.html#required: "the concept
    SHALL be from the specified value set"): Observation.status -> observation-status,
    Procedure.status -> event-status, MedicationAdministration.status ->
    medication-admin-status, MedicationStatement.status -> medication-statement-status,
    Device.status -> device-status. fhir.resources stores these codes but does not check them."""
    status = resource.get("status")
    allowed = STATUS_CODES[resource["resourceType"]]
    if isinstance(status, str) and status and status not in allowed:
        yield _problem(
            "fhir.status-code",
            f"status {shown_value(status, allowed)} is not in the R4 value set for "
            f"{resource['resourceType']}.status",
            ("status",),
        )


_EVENT_TIME = {"Observation": ("effective", "issued"), "Provenance": ("occurred", "recorded")}


@rule(
    "fhir.period-order",
    Severity.WARNING,
    "A resource recorded or issued before the event it records started.",
    list(_EVENT_TIME),
)
def period_order(resource: Mapping[str, Json], _: Terminology) -> Iterator[Problem]:
    """Observation.issued is "the date and time this version of the observation was made
    available" and Provenance.recorded "the instant of time at which the activity was recorded"
    (https://hl7.org/fhir/R4/observation-definitions.html#Observation.issued,
    https://hl7.org/fhir/R4/provenance-definitions.html#Provenance.recorded): neither can
    precede the start of the event (effective[x] / occurred[x]). A warning: clocks drift."""
    choice, stamp_key = _EVENT_TIME[resource["resourceType"]]
    stamp = resource.get(stamp_key)
    if not isinstance(stamp, str):
        return
    start = resource.get(f"{choice}DateTime")
    period = resource.get(f"{choice}Period")
    if start is None and isinstance(period, dict):
        start = period.get("start")
    if isinstance(start, str) and fhirtime.surely_before(stamp, start):
        yield _problem(
            "fhir.period-order",
            f"{stamp_key} is before the start of {choice}[x]",
            (stamp_key,),
        )


# --- project terminology ------------------------------------------------------------------


@functools.cache
def project_terminology() -> Terminology:
    """The CodeSystems shipped in migrainefhir/terminology/*.json (read once, on first use).

    No shipped CodeSystem means an empty Terminology, and fhir.project-code does nothing.
    """
    code_systems: dict[str, frozenset[str]] = {}
    try:
        folder = package_files.files("migrainefhir") / "terminology"
        files = [f for f in folder.iterdir() if f.name.endswith(".json")]
    except (FileNotFoundError, NotADirectoryError, ModuleNotFoundError):
        return Terminology()
    for file in sorted(files, key=lambda f: f.name):
        document = json.loads(file.read_text(encoding="utf-8"))
        if isinstance(document, dict) and document.get("resourceType") == "CodeSystem":
            url = document.get("url")
            if isinstance(url, str):
                code_systems[url] = frozenset(_concept_codes(document.get("concept")))
    return Terminology(code_systems)


def _concept_codes(concepts: Json) -> Iterator[str]:
    for concept in _list(concepts):
        if isinstance(concept, dict):
            if isinstance(concept.get("code"), str):
                yield concept["code"]
            yield from _concept_codes(concept.get("concept"))


# Other required bindings on top-level coded elements (R4 4.0.1 value sets).
REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    # http://hl7.org/fhir/ValueSet/administrative-gender
    ("Patient", "gender"): frozenset({"male", "female", "other", "unknown"}),
}


@rule(
    "fhir.required-binding",
    Severity.ERROR,
    "A coded element outside its required R4 value set (Patient.gender, ...).",
    sorted({resource_type for resource_type, _ in REQUIRED_CODES}),
)
def required_binding(resource: Mapping[str, Json], _: Terminology) -> Iterator[Problem]:
    """Required bindings (https://hl7.org/fhir/R4/terminologies.html#required) that
    fhir.resources does not check: Patient.gender -> administrative-gender
    (https://hl7.org/fhir/R4/valueset-administrative-gender.html)."""
    resource_type = resource["resourceType"]
    for (owner, element), allowed in REQUIRED_CODES.items():
        value = resource.get(element)
        if owner == resource_type and isinstance(value, str) and value and value not in allowed:
            yield _problem(
                "fhir.required-binding",
                f"{owner}.{element} is not in its required R4 value set",
                (element,),
            )
