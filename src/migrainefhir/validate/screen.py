"""The rules screen: a compiled yes/no that the rules layer would find nothing in a resource.

rules.check_rules walks every node of a resource in Python (150-190 us for one of ours).
Almost every resource an export validates is clean, so the validator first asks a compiled
JSON Schema (jsonschema_rs, 50-70 us in a tight loop) whether the resource is *surely*
clean, and runs the Python walk, with its paths and messages, only when the screen says no.

Most of the general screen's cost is regexes on keys (is this a date key, a choice, a
Period?). Their answers depend on the key alone, so a second compiled screen,
vocabulary_schema(), decides them once per element name of the shipped profiles and refuses
any other key; rules_clean asks it first (about half the cost) and the general screen only
when it says no.

A third form, profile_screen(), merges the known-keys screen into one closed profile schema:
one walk of a resource checks both (profile_and_rules_clean, the gate's compiled check, asks it
first for a resource that claims one shipped profile; about a third less time than the two).

The screen is sound, not exact: when it accepts a resource, check_rules returns no problem at
all (errors and warnings alike); when it rejects one, check_rules decides. It may therefore be
stricter than the rules, which costs speed on unusual input, never correctness: it accepts
only printable-ASCII URIs, the full forms of dates, relative and urn:uuid references, the
choice types listed in CHOICE_TYPES, vital signs only in the shapes migrainefhir writes (LOINC
codes from the R4 table, a valueQuantity in their UCUM unit), no Period with both ends
below the resource's own elements, and no array in an array or null in an array.

Every rule code is accounted for (tests/test_validate_screen.py keeps the two sets complete and
checks soundness on the validator corpus and on generated mutations):

* IN_SCHEMA: expressed by the schema (the vital-sign rules for the shapes above only; any
  other vital sign fails the screen, so the rules walk checks it).
* IN_PYTHON: checked after the schema, because they compare two values: fhir.per-1 on the
  resource's own Period elements, fhir.obs-7 and fhir.period-order (rules.py's functions).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from migrainefhir.validate import profiles, rules
from migrainefhir.validate.switches import with_switches

Json = Any

IN_SCHEMA = frozenset(
    {
        rules.EMPTY, rules.INT32, rules.DATE_IMPOSSIBLE, rules.QTY_3, rules.UCUM_UNIT,
        rules.REFERENCE_FORM, rules.PROJECT_CODE, rules.URI, rules.VALUE_CHOICE,
        "fhir.obs-6", "fhir.status-code", "fhir.required-binding",
        "fhir.vs-2", "fhir.vs-3", "fhir.vital-sign-code",
    }
)  # fmt: skip
PYTHON_RESOURCE_RULES = frozenset({"fhir.obs-7", "fhir.period-order"})
IN_PYTHON = frozenset({rules.PER_1}) | PYTHON_RESOURCE_RULES

# --- the values the screen accepts (each a subset of what the rules accept) -----------------

# A uri without whitespace: printable ASCII. (Python's \s, which the rules use, also matches
# \x1c-\x1f and Unicode spaces that Rust's \s does not; none of them is printable ASCII.)
_URI = r"^[!-~]+$"
# Calendar-exact date, dateTime and instant in their full forms (YYYY, YYYY-MM, YYYY-MM-DD, or
# a day with hh:mm:ss, an optional fraction and a zone). Leap years: every 4th, centuries
# only when divisible by 400.
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_MONTH_DAY = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_DAY = rf"(?:[0-9]{{4}}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?"
_ZONE = r"(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
DATE = rf"^(?:[0-9]{{4}}(?:-(?:0[1-9]|1[0-2]))?|{_DAY}(?:{_TIME}{_ZONE})?)$"
# References: relative Type/id[/_history/vid] and urn:uuid (both rules.reference_form forms).
_ID = r"[A-Za-z0-9.\-]{1,64}"
_HEX = "[0-9a-fA-F]"
_REFERENCE = (
    rf"^(?:[A-Z][A-Za-z]+/{_ID}(?:/_history/{_ID})?"
    rf"|urn:uuid:{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})$"
)
_INT32 = {"multipleOf": 1, "minimum": -(2**31), "maximum": 2**31 - 1}

# The keys of each choice element ([x]) the screen knows; like the rules walk, it counts any
# key of the choice's name plus a capital letter (so Dosage.doseAndRate counts as a `dose`).
# An object with another such key fails the screen. The lists need not be complete.
CHOICE_TYPES: dict[str, tuple[str, ...]] = {
    "value": (
        "Quantity", "CodeableConcept", "String", "Boolean", "Integer", "Range", "Ratio",
        "SampledData", "Time", "DateTime", "Period", "Reference", "PositiveInt", "UnsignedInt",
        "Decimal", "Code", "Coding", "Uri", "Url", "Canonical", "Date", "Instant", "Id",
        "Markdown", "Identifier", "Attachment", "Age", "Duration", "Count", "Money",
        "Annotation", "Timing",
    ),
    "effective": ("DateTime", "Period", "Timing", "Instant"),
    "performed": ("DateTime", "Period", "String", "Age", "Range"),
    "medication": ("CodeableConcept", "Reference"),
    "deceased": ("Boolean", "DateTime"),
    "multipleBirth": ("Boolean", "Integer"),
    "onset": ("DateTime", "Age", "Period", "Range", "String"),
    "abatement": ("DateTime", "Age", "Period", "Range", "String", "Boolean"),
    "occurred": ("Period", "DateTime"),
    "occurrence": ("DateTime", "Period", "Timing"),
    "timing": ("Timing", "Reference", "DateTime", "Period"),
    "bounds": ("Duration", "Range", "Period"),
    "asNeeded": ("Boolean", "CodeableConcept"),
    "rate": ("Ratio", "Range", "Quantity"),
    "dose": ("Range", "Quantity", "AndRate"),
    "born": ("Period", "Date", "String"),
    "age": ("Age", "Range", "String"),
    "serviced": ("Date", "Period"),
    "reported": ("Boolean", "Reference"),
}  # fmt: skip


def _choice_keys(choice: str) -> list[str]:
    return [choice + suffix for suffix in CHOICE_TYPES[choice]]


# The value checks by kind of key, each one entry of the schema's $defs, so that each pattern
# is compiled once (an inline copy per key would compile, and warm up, one regex per key).
_BY_KIND: dict[str, Json] = {
    "uri": {"pattern": _URI, "items": {"pattern": _URI}},
    "date": {"pattern": DATE, "items": {"pattern": DATE}},
    "integer": {**_INT32, "items": _INT32},
    "reference": {"pattern": _REFERENCE},
}


# Patterns on keys (jsonschema_rs searches, unanchored unless the pattern says so). The
# vocabulary screen evaluates these same patterns once per known key, when it is built.
_DATE_KEY = "(?:" + "|".join(rules.DATE_SUFFIXES) + ")$"
_INT_KEY = "(?:" + "|".join(rules.INT_SUFFIXES) + ")$"
# A prefix test, so a key the rules walk counts as a choice always counts here too.
_ANY_CHOICE = "^(?:" + "|".join(CHOICE_TYPES) + ")[A-Z]"
_PERIOD_KEY = "[Pp][Ee][Rr][Ii][Oo][Dd]$"
_KNOWN_CHOICE_KEYS = frozenset(key for choice in CHOICE_TYPES for key in _choice_keys(choice))
# per-1 below the resource's own elements: the schema cannot compare, so it refuses.
_NOT_A_CLOSED_PERIOD = {"not": {"type": "object", "required": ["start", "end"]}}


def _keyed() -> dict[str, Json]:
    """What a member must hold, by its key: uris, dates, integers, references."""
    uri, date, integer = ({"$ref": f"#/$defs/{kind}"} for kind in ("uri", "date", "integer"))
    properties: dict[str, Json] = {key: uri for key in rules.URI_KEYS}
    properties.update({key: date for key in rules.DATE_KEYS})
    properties.update({key: integer for key in rules.INT_KEYS})
    properties["reference"] = {"$ref": "#/$defs/reference"}
    return {"properties": properties, "patternProperties": {_DATE_KEY: date, _INT_KEY: integer}}


def _choices() -> dict[str, Json]:
    """At most one key per choice element; objects naming no choice skip the check."""
    exclusive = {
        key: {"properties": {other: False for other in _choice_keys(choice) if other != key}}
        for choice in CHOICE_TYPES
        for key in _choice_keys(choice)
    }
    return {
        "if": {"propertyNames": {"not": {"pattern": _ANY_CHOICE}}},
        "else": {
            "propertyNames": {
                "anyOf": [{"not": {"pattern": _ANY_CHOICE}}, {"enum": sorted(_KNOWN_CHOICE_KEYS)}]
            },
            "dependentSchemas": exclusive,
        },
    }


def _quantity() -> dict[str, Json]:
    """qty-3 (a unit code needs its system) and fhir.ucum-unit, on every object the rules
    walk takes for a Quantity (rules._is_quantity)."""
    numeric_value = {"required": ["value"], "properties": {"value": {"type": "number"}}}
    looks_like_quantity = {
        "anyOf": [
            {"required": ["unit"]},
            {"required": ["comparator"]},
            {**numeric_value, "anyOf": [{"required": ["code"]}, {"required": ["system"]}]},
        ]
    }
    known_unit = {
        "anyOf": [
            {"enum": sorted(rules.KNOWN_UCUM)},
            {"pattern": r"^\{[^{}]+\}$"},
            {"not": {"type": "string"}},
        ]
    }
    return {
        "if": looks_like_quantity,
        "then": {
            "anyOf": [{"not": {"required": ["code"]}}, {"required": ["system"]}],
            "if": {"required": ["system"], "properties": {"system": {"const": rules.UCUM}}},
            "then": {"properties": {"code": known_unit}},
        },
    }


def _project_codes(terminology: rules.Terminology) -> dict[str, Json]:
    """fhir.project-code: a Coding in a migrainefhir CodeSystem uses a code it defines."""
    if not terminology.code_systems:
        return {}  # without shipped CodeSystems the rule does nothing
    prefix = rules.PROJECT_CODE_SYSTEMS.replace(".", r"\.")
    in_project_system = {
        "required": ["system", "code"],
        "properties": {"system": {"type": "string", "pattern": f"^{prefix}"}},
    }
    defined = [
        {"properties": {"system": {"const": url}, "code": {"enum": sorted(codes)}}}
        for url, codes in sorted(terminology.code_systems.items())
        if codes
    ]
    return {"if": in_project_system, "then": {"anyOf": defined} if defined else False}


def _for_type(resource_type: str, then: Json) -> Json:
    is_type = {
        "required": ["resourceType"],
        "properties": {"resourceType": {"const": resource_type}},
    }
    return {"if": is_type, "then": then}


def _code_in(codes: frozenset[str]) -> Json:
    return {"anyOf": [{"enum": sorted(codes)}, {"not": {"type": "string"}}]}


def _resource_rules() -> list[Json]:
    """The resource rules the schema expresses (on the root object)."""
    status = [
        _for_type(kind, {"properties": {"status": _code_in(codes)}})
        for kind, codes in sorted(rules.STATUS_CODES.items())
    ]
    bindings = [
        _for_type(kind, {"properties": {element: _code_in(codes)}})
        for (kind, element), codes in sorted(rules.REQUIRED_CODES.items())
    ]
    observation = _for_type(
        "Observation",
        {
            # obs-6, stricter: beside a dataAbsentReason, no key that starts with "value".
            "if": {"required": ["dataAbsentReason"]},
            "then": {"propertyNames": {"not": {"pattern": "^value."}}},
            "allOf": [_vital_signs()],
        },
    )
    return [*status, *bindings, observation]


def _loinc_codings(codes: Sequence[str]) -> Json:
    """A CodeableConcept with a LOINC coding, and every LOINC coding with a code in `codes`
    (a LOINC coding without a code would not count for the rules: it is refused too)."""
    system = {"const": rules.LOINC}
    is_loinc = {"type": "object", "required": ["system"], "properties": {"system": system}}
    listed_code = {
        "type": "object",
        "required": ["system", "code"],
        "properties": {"system": system, "code": {"enum": list(codes)}},
    }
    coding = {
        "type": "array",
        "contains": listed_code,
        "items": {"if": is_loinc, "then": listed_code},
    }
    return {"type": "object", "required": ["coding"], "properties": {"coding": coding}}


def _quantity_in(unit: str) -> Json:
    return {
        "type": "object",
        "required": ["code", "system"],
        "properties": {"code": {"const": unit}, "system": {"const": rules.UCUM}},
    }


def _vital_signs() -> Json:
    """vs-2, vs-3 and vital-sign-code for the vital signs of the table, in the shape
    migrainefhir writes them: LOINC codings of one unit in the table, and a valueQuantity in
    that UCUM unit (the blood pressure panel: no value of its own, and components with a
    systolic or diastolic LOINC code and a valueQuantity in mm[Hg]). Any other vital sign fails
    the screen and goes to the rules walk."""
    units: dict[str, list[str]] = {}
    for code, unit in sorted(rules.VITAL_SIGN_UNITS.items()):
        units.setdefault(unit, []).append(code)
    single = [
        {
            "required": ["code", "valueQuantity"],
            "properties": {
                "code": _loinc_codings(codes),
                "valueQuantity": _quantity_in(unit),
                "component": {
                    "items": {
                        "anyOf": [
                            {"required": ["valueQuantity"]},
                            {"required": ["dataAbsentReason"]},
                        ]
                    }
                },
            },
        }
        for unit, codes in sorted(units.items())
    ]
    blood_pressure = {
        "required": ["code", "component"],
        "propertyNames": {"not": {"pattern": "^value."}},
        "properties": {
            "code": _loinc_codings([rules.BP_PANEL]),
            "component": {
                "items": {
                    "required": ["code", "valueQuantity"],
                    "properties": {
                        "code": _loinc_codings(sorted(rules.BP_COMPONENTS)),
                        "valueQuantity": _quantity_in("mm[Hg]"),
                    },
                }
            },
        },
    }
    vital_sign_coding = {
        "type": "object",
        "required": ["system", "code"],
        "properties": {
            "system": {"const": rules.OBSERVATION_CATEGORY},
            "code": {"const": "vital-signs"},
        },
    }
    is_vital_sign = {
        "required": ["category"],
        "properties": {
            "category": {
                "type": "array",
                "contains": {
                    "type": "object",
                    "required": ["coding"],
                    "properties": {"coding": {"type": "array", "contains": vital_sign_coding}},
                },
            }
        },
    }
    return {"if": is_vital_sign, "then": {"anyOf": [*single, blood_pressure]}}


def schema(terminology: rules.Terminology) -> dict[str, Json]:
    """The screen as a JSON Schema: every value non-null and non-empty and every object's
    members checked, down the whole tree; the resource rules on the root."""
    object_rules = [_keyed(), _choices(), _quantity(), _project_codes(terminology)]
    general_object = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {"$ref": "#/$defs/value"},
        "allOf": object_rules,
    }
    deeper_period = {"patternProperties": {_PERIOD_KEY: _NOT_A_CLOSED_PERIOD}}
    return _document(
        objects={"object": general_object},
        member_object={"$ref": "#/$defs/object", **deeper_period},
    )


# Element names the vocabulary screen can resolve when it is built: plain ASCII names, on
# which Python's re and jsonschema_rs's regex agree (Python's `$` also matches before a final
# newline, Rust's does not).
_PLAIN_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def vocabulary_schema(terminology: rules.Terminology, vocabulary: Iterable[str]) -> dict[str, Json]:
    """schema() for resources whose every key is in `vocabulary`, without a regex per key.

    Every key-dependent check of schema() (uri, date and integer keys, choices, Periods
    below the resource's own elements) depends on the key alone, so for a known key it is
    decided here, once, by the same patterns; each known key gets its own member schema and
    any other key fails. It accepts only what schema() accepts, and exactly that for
    resources whose keys are all known (tests/test_validate_screen.py checks both).
    """
    keys = _plain_keys(vocabulary)
    keyed = _keyed()
    object_rules = [_quantity(), _project_codes(terminology)]
    exclusive = _exclusive_choices(keys)

    def known_keys_object(member: bool) -> Json:
        shape: dict[str, Json] = {
            "type": "object",
            "minProperties": 1,
            "properties": {key: _member_schema(key, member, keyed) for key in keys},
            "additionalProperties": False,
            "allOf": object_rules,
        }
        if exclusive:
            shape["dependentSchemas"] = exclusive
        return shape

    return _document(
        objects={"object": known_keys_object(False), "member_object": known_keys_object(True)},
        member_object={"$ref": "#/$defs/member_object"},
    )


def _plain_keys(vocabulary: Iterable[str]) -> list[str]:
    """The names of `vocabulary` the known-keys screen resolves (_PLAIN_KEY), sorted."""
    return sorted({key for key in vocabulary if _PLAIN_KEY.fullmatch(key)})


def _member_schema(key: str, member_object: bool, keyed: Json) -> Json:
    """What schema() asks of the member `key` (of an object that is itself a member's value
    when `member_object`), decided by schema()'s own patterns."""
    if re.search(_ANY_CHOICE, key) and key not in _KNOWN_CHOICE_KEYS:
        return False
    checks: list[Json] = [{"$ref": "#/$defs/value"}]
    if key in keyed["properties"]:
        checks.append(keyed["properties"][key])
    checks.extend(
        check for pattern, check in keyed["patternProperties"].items() if re.search(pattern, key)
    )
    if member_object and re.search(_PERIOD_KEY, key):
        checks.append(_NOT_A_CLOSED_PERIOD)
    return checks[0] if len(checks) == 1 else {"allOf": checks}


def _exclusive_choices(keys: Sequence[str]) -> dict[str, Json]:
    """dependentSchemas for the choices with two or more keys among `keys` (a key outside
    `keys` fails anyway). Each key forbids the keys after it, which covers every pair with
    one entry fewer per choice (each entry costs a lookup in every object)."""
    exclusive: dict[str, Json] = {}
    for choice in CHOICE_TYPES:
        present = [key for key in _choice_keys(choice) if key in keys]
        for position, key in enumerate(present[:-1]):
            exclusive[key] = {"properties": {later: False for later in present[position + 1 :]}}
    return exclusive


def _document(objects: dict[str, Json], member_object: Json) -> dict[str, Json]:
    """The screen's tree: the root object, member values and array items, with the resource
    rules on the root. `objects` defines "object" (the root and array items) and whatever
    `member_object` (an object that is a member's value) refers to."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [{"$ref": "#/$defs/object"}, *_resource_rules()],
        "$defs": {
            **_BY_KIND,
            **objects,
            "value": {
                "if": {"type": "object"},
                "then": member_object,
                "else": {
                    "type": ["array", "string", "number", "boolean"],
                    "minLength": 1,
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/item"},
                },
            },
            # An array item: never null, never an array (the walk does not look inside those).
            "item": {
                "if": {"type": "object"},
                "then": {"$ref": "#/$defs/object"},
                "else": {"type": ["string", "number", "boolean"], "minLength": 1},
            },
        },
    }


@dataclass(frozen=True)
class _Screens:
    """The compiled screens of one Terminology: `known_keys` for resources of the shipped
    profiles' element names (the usual case, about half the cost), `general` for any other."""

    terminology: rules.Terminology  # kept alive: the cache is keyed by its id
    known_keys: Callable[[object], bool]
    general: Callable[[object], bool]
    # profile_screen() of each shipped profile, by canonical, compiled on first use.
    merged: dict[str, _MergedScreen] = field(default_factory=dict)
    # compiled_check() by the meta.profile list it serves.
    checks: dict[tuple[str, ...], Callable[[Mapping[str, Json]], bool]] = field(
        default_factory=dict
    )


# Compiled once per process and Terminology. A Terminology holds a dict, so it is not
# hashable: it is keyed by identity.
_COMPILED: dict[int, _Screens] = {}


def _compiled(terminology: rules.Terminology) -> _Screens:
    cached = _COMPILED.get(id(terminology))
    if cached is None:
        from migrainefhir.schema import compiled_predicate

        cached = _COMPILED[id(terminology)] = _Screens(
            terminology,
            known_keys=compiled_predicate(vocabulary_schema(terminology, profiles.element_names())),
            general=compiled_predicate(schema(terminology)),
        )
    return cached


def rules_clean(resource: Mapping[str, Json], terminology: rules.Terminology | None = None) -> bool:
    """True only if rules.check_rules(resource, terminology) finds no problem at all."""
    terms = terminology if terminology is not None else rules.project_terminology()
    screens = _compiled(terms)
    return (screens.known_keys(resource) or screens.general(resource)) and _comparisons_clean(
        resource, terms
    )


def profile_and_rules_clean(
    resource: Mapping[str, Json], terminology: rules.Terminology | None = None
) -> bool:
    """True only if profiles.is_clean(resource) and rules_clean(resource, terminology) both are."""
    claimed = tuple(profiles.claimed_profiles(resource))
    return compiled_check(claimed, terminology)(resource)


def compiled_check(
    claimed: tuple[str, ...], terminology: rules.Terminology | None = None
) -> Callable[[Mapping[str, Json]], bool]:
    """profile_and_rules_clean for resources whose meta.profile lists `claimed` (a caller that
    checks many such resources looks it up once).

    A resource that claims one shipped migrainefhir profile (and no other) is first asked of
    that profile's merged screen (profile_screen: one walk instead of two, about a third
    less time); when it says no, the two checks decide."""
    terms = terminology if terminology is not None else rules.project_terminology()
    screens = _compiled(terms)
    check = screens.checks.get(claimed)
    if check is None:
        check = _check_for(_merged_screen(claimed, screens), terms)
        if len(screens.checks) < _CACHED_CHECKS:  # input may list any profiles: keep it bounded
            screens.checks[claimed] = check
    return check


_CACHED_CHECKS = 256


def _check_for(
    merged: _MergedScreen | None, terms: rules.Terminology
) -> Callable[[Mapping[str, Json]], bool]:
    def profiles_and_rules(resource: Mapping[str, Json]) -> bool:
        return profiles.is_clean(resource) and rules_clean(resource, terms)

    if merged is None:
        return profiles_and_rules
    check, period_keys, python_rules = merged

    def merged_first(resource: Mapping[str, Json]) -> bool:
        if check(resource):
            return _comparisons_clean(resource, terms, period_keys, python_rules)
        return profiles_and_rules(resource)

    return merged_first


class _MergedScreen(NamedTuple):
    check: Callable[[object], bool]
    # The top-level elements holding a Period that the profile allows: a resource its merged
    # screen accepts has no other (looking each key up costs more than the comparisons).
    period_keys: tuple[str, ...] | None
    # The comparison rules that can find something in a resource the merged screen accepts.
    python_rules: tuple[Callable[..., Any], ...] | None


def _merged_screen(claimed: tuple[str, ...], screens: _Screens) -> _MergedScreen | None:
    ours = [p for p in claimed if p.startswith(profiles.PROJECT_PROFILES)]
    shipped = profiles.profile_schemas()
    if len(ours) != 1 or ours[0] not in shipped:
        return None
    merged = screens.merged.get(ours[0])
    if merged is None:
        from migrainefhir.schema import compiled_predicate

        profile = shipped[ours[0]]
        check = compiled_predicate(profile_screen(profile, screens.terminology))
        merged = _MergedScreen(check, _period_keys(profile), _profile_rules(profile))
        screens.merged[ours[0]] = merged
    return merged


def _period_keys(profile: Mapping[str, Json]) -> tuple[str, ...] | None:
    """The Period elements among the properties of a closed profile; None when it is open."""
    properties = _closed_properties(profile)
    if properties is None:
        return None
    return tuple(key for key in properties if rules.is_period_key(key))


def _profile_rules(profile: Mapping[str, Json]) -> tuple[Callable[..., Any], ...] | None:
    """The comparison rules of a closed profile's resource type that can find something in a
    resource it accepts; None when the profile is open or its resource type not pinned."""
    properties = _closed_properties(profile)
    kind = _pinned_type(profile)
    if properties is None or kind is None:
        return None
    skipped = set() if _obs_7_can_fire(profile) else {"fhir.obs-7"}
    return tuple(
        rule.check
        for rule in rules.rules_for(kind)
        if rule.code in PYTHON_RESOURCE_RULES and rule.code not in skipped
    )


def _obs_7_can_fire(profile: Mapping[str, Json]) -> bool:
    """obs-7 compares each component's codes with the Observation's own: it cannot fire where
    the profile allows no component, or where the codes it allows for the two share none."""
    properties = _closed_properties(profile)
    if properties is not None and "component" not in properties:
        return False
    defs = profile.get("$defs", {})
    own = _allowed_strings([profile], ("code", "coding", "*", "code"), defs)
    components = _allowed_strings(
        [profile], ("component", "*", "code", "coding", "*", "code"), defs
    )
    return own is None or components is None or not own.isdisjoint(components)


def _allowed_strings(
    schemas: list[Json], path: tuple[str, ...], defs: Mapping[str, Json]
) -> frozenset[str] | None:
    """A set holding every string a value at `path` may be in an instance of all `schemas`
    ("*": each item of an array), read from their const and enum; None when they set no bound.
    Each conjunct (allOf member, local $ref) bounds the value on its own, so any bound found
    is sound; alternatives (an array's prefixItems and items) bound it by their union."""
    bound: frozenset[str] | None = None
    for conjunct in (c for schema in schemas for c in _conjuncts(schema, defs)):
        if not path:
            found = _listed_strings(conjunct)
        else:
            alternatives = _step(conjunct, path[0])
            if alternatives is None:
                continue
            bounds = [_allowed_strings([alt], path[1:], defs) for alt in alternatives]
            found = None if None in bounds else frozenset().union(*bounds)  # type: ignore[arg-type]
        if found is not None:
            bound = found if bound is None else bound & found
    return bound


def _conjuncts(schema: Json, defs: Mapping[str, Json]) -> Iterator[Mapping[str, Json]]:
    """The schema and what it also asks through allOf and local $refs."""
    if not isinstance(schema, dict):
        return
    yield schema
    for member in schema.get("allOf", []):
        yield from _conjuncts(member, defs)
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
        yield from _conjuncts(defs[ref[8:]], defs)


def _step(schema: Mapping[str, Json], step: str) -> list[Json] | None:
    """The schemas one of which holds for the member `step` ("*": each item), or None."""
    if step != "*":
        member = schema.get("properties", {}).get(step)
        return None if member is None else [member]
    prefix, rest = schema.get("prefixItems", []), schema.get("items")
    if isinstance(rest, dict):
        return [*prefix, rest]
    if rest is False or (prefix and schema.get("maxItems", len(prefix) + 1) <= len(prefix)):
        return list(prefix)
    return None


def _listed_strings(schema: Mapping[str, Json]) -> frozenset[str] | None:
    if isinstance(schema.get("const"), str):
        return frozenset([schema["const"]])
    listed = schema.get("enum")
    if isinstance(listed, list) and all(isinstance(value, str) for value in listed):
        return frozenset(listed)
    return None


def _closed_properties(profile: Mapping[str, Json]) -> Mapping[str, Json] | None:
    """A closed profile's properties (a resource it accepts has no other key); else None."""
    properties = profile.get("properties")
    closed = profile.get("additionalProperties") is False and "patternProperties" not in profile
    return properties if closed and isinstance(properties, dict) else None


def _pinned_type(profile: Mapping[str, Json]) -> str | None:
    """The resourceType a profile requires, as a const; else None."""
    pinned = profile.get("properties", {}).get("resourceType", {})
    kind = pinned.get("const") if isinstance(pinned, dict) else None
    required = "resourceType" in profile.get("required", [])
    return kind if isinstance(kind, str) and required else None


def _comparisons_clean(
    resource: Mapping[str, Json],
    terms: rules.Terminology,
    period_keys: Iterable[str] | None = None,
    python_rules: Iterable[Callable[..., Any]] | None = None,
) -> bool:
    """The comparison rules (per-1 on each top-level Period, obs-7, period order). The
    Periods are looked for under `period_keys` when given, else under every key."""
    if period_keys is None:
        period_keys = [key for key in resource if rules.is_period_key(key)]
    for key in period_keys:
        value = resource.get(key)
        if isinstance(value, dict) and rules.period_inverted(value):
            return False
    if python_rules is None:
        python_rules = _python_rules_for(resource.get("resourceType"))
    return all(next(iter(check(resource, terms)), None) is None for check in python_rules)


def _python_rules_for(resource_type: object) -> tuple[Callable[..., Any], ...]:
    return _python_rules_for_type(resource_type if isinstance(resource_type, str) else None)


@functools.lru_cache(maxsize=256)
def _python_rules_for_type(resource_type: str | None) -> tuple[Callable[..., Any], ...]:
    return tuple(r.check for r in rules.rules_for(resource_type) if r.code in PYTHON_RESOURCE_RULES)


# --- the screen merged into one profile ------------------------------------------------------
#
# The profile schemas are closed: a resource that passes one has only the keys it lists, each
# with its shape. For such a resource, the screen's walk over every node, its dispatch on each
# node's type and many of its checks repeat what the profile already decided. profile_screen()
# builds one schema per profile that walks the resource once: the profile's own tree, each
# member's schema joined with what the screen asks of that member, and the screen's object
# rules only where the profile leaves them open (a quantity rule on an object that cannot hold
# a quantity, a project-code rule on one without a project system, the resource rules of other
# resource types are dropped). It follows closed objects (their own dependentSchemas joined
# with the screen's), arrays (items and prefixItems), and an allOf through the one conjunct it
# can follow (the others only narrow it). Where the profile's shape is not plain enough to
# follow (no closed properties, alternatives), the member is checked by the screen's own
# recursive definitions as well, which costs a second walk of it (the shipped profiles have no
# such member: tests/test_validate_screen.py). It accepts only what the profile and the
# known-keys screen both accept.

_SCREEN_PREFIX = "screen-"
_ANNOTATIONS = frozenset({"description", "title", "$comment"})


def profile_screen(profile: Mapping[str, Json], terminology: rules.Terminology) -> dict[str, Json]:
    """One schema that accepts only what `profile` (a bundled profile schema, closed) and the
    known-keys screen both accept. Its if-chains on one value are switches (switches.py):
    the document is compiled for a yes or no, never read for problems."""
    switched: dict[str, Json] = with_switches(_ProfileScreen(profile, terminology).document())
    return switched


class _ProfileScreen:
    def __init__(self, profile: Mapping[str, Json], terminology: rules.Terminology) -> None:
        self.profile = profile
        self.defs: Mapping[str, Json] = profile.get("$defs", {})
        self.terminology = terminology
        self.keyed = _keyed()
        plain = _plain_keys(profiles.element_names())
        self.keys = frozenset(plain)
        self.exclusive = _exclusive_choices(plain)
        self.specialized: dict[str, Json] = {}

    def document(self) -> dict[str, Json]:
        screen = vocabulary_schema(self.terminology, self.keys)
        own = _without_defs(self.profile)
        root = self.closed_object(own, member=False)
        if root is None:  # not a closed profile: both, side by side
            root = {"allOf": [own, {"$ref": _screen_ref("object")}]}
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [root, *self.resource_rules(screen["allOf"][1:])],
            "$defs": {
                **self.defs,
                **{
                    _SCREEN_PREFIX + name: _to_screen_refs(body)
                    for name, body in screen["$defs"].items()
                },
                **self.specialized,
            },
        }

    def resource_rules(self, rules_: list[Json]) -> list[Json]:
        """The screen's resource rules, without those of other resource types."""
        kind = _pinned_type(self.profile)
        if kind is None:
            return rules_
        kept = []
        for rule in rules_:
            condition = rule.get("if", {})
            for_kind = condition.get("properties", {}).get("resourceType", {}).get("const")
            if set(rule) == {"if", "then"} and condition == _for_type(for_kind, {})["if"]:
                if for_kind == kind:
                    kept.append(rule["then"])
            else:
                kept.append(rule)
        return kept

    # One member's value, one array's item: the profile's schema for it, plus the screen's.

    def member(self, schema: Json, key: str, container_member: bool) -> Json:
        screen = _member_schema(key, container_member, self.keyed) if key in self.keys else False
        if not isinstance(screen, dict):  # a key the known-keys screen refuses
            return False
        extras = [_to_screen_refs(check) for check in screen.get("allOf", [])[1:]]
        value = self.value(schema, "member")
        if value is None:
            value = {"allOf": [schema, {"$ref": _screen_ref("value")}]}
        return {"allOf": [value, *extras]} if extras else value

    def item(self, schema: Json) -> Json:
        value = self.value(schema, "item")
        return {"allOf": [schema, {"$ref": _screen_ref("item")}]} if value is None else value

    def value(self, schema: Json, context: str) -> Json | None:
        """`schema` joined with what the screen asks of a value in `context` ("member": a
        member's value; "item": an array item), or None when the profile's shape is not plain
        enough to follow."""
        followed = self.conjunction(schema, context)
        if followed is not None:
            return followed
        kind = self.pinned_type(schema)
        if kind == "object":
            return self.object_value(schema, context)
        if kind == "array":
            return False if context == "item" else self.array(schema)
        if kind == "string":
            return {"allOf": [schema, {"minLength": 1}]}
        if kind in ("number", "boolean"):
            return schema
        return None

    def conjunction(self, schema: Json, context: str) -> Json | None:
        """An allOf (annotations aside) with a conjunct the screen can follow: that conjunct
        joined with the screen's checks, the others as they are (they only narrow it)."""
        if not isinstance(schema, dict) or set(schema) - _ANNOTATIONS != {"allOf"}:
            return None
        conjuncts = schema["allOf"]
        for index, conjunct in enumerate(conjuncts):
            followed = self.value(conjunct, context)
            if followed is not None:
                return {"allOf": [*conjuncts[:index], followed, *conjuncts[index + 1 :]]}
        return None

    def object_value(self, schema: Json, context: str) -> Json | None:
        reference = _plain_reference(schema)
        if reference is None:
            return self.closed_object(schema, member=context == "member")
        name = f"{reference}@{context}"
        if name not in self.specialized:
            self.specialized[name] = True  # taken: a recursive definition refers to itself
            target = self.defs[reference]
            specialized = self.object_value(target, context)
            if specialized is None:
                screen = _screen_ref("member_object" if context == "member" else "object")
                specialized = {"allOf": [target, {"$ref": screen}]}
            self.specialized[name] = specialized
        return {"$ref": f"#/$defs/{name}"}

    def closed_object(self, schema: Json, member: bool) -> Json | None:
        """A closed object schema, each member joined with the screen's, and the screen's
        object rules that can apply to its members."""
        if not isinstance(schema, dict) or "$ref" in schema or "patternProperties" in schema:
            return None
        properties = schema.get("properties")
        if schema.get("additionalProperties") is not False or not isinstance(properties, dict):
            return None
        out = dict(schema)
        out["properties"] = {
            key: self.member(value, key, member) for key, value in properties.items()
        }
        if not schema.get("required"):
            out["minProperties"] = max(1, schema.get("minProperties", 0))
        object_rules = [rule for rule in self.object_rules(properties) if rule]
        if object_rules:
            out["allOf"] = [*schema.get("allOf", []), *object_rules]
        exclusive = {key: rule for key, rule in self.exclusive.items() if key in properties}
        if exclusive:
            out["dependentSchemas"] = _joined(schema.get("dependentSchemas", {}), exclusive)
        return out

    def object_rules(self, properties: Mapping[str, Json]) -> list[Json]:
        """The screen's object rules that can apply to an object of these members."""
        kept = []
        holds = set(properties)
        if {"unit", "comparator"} & holds or ("value" in holds and {"code", "system"} & holds):
            kept.append(_quantity())
        if {"system", "code"} <= holds:
            system = properties["system"]
            fixed = system.get("const") if isinstance(system, dict) else None
            if not (isinstance(fixed, str) and not fixed.startswith(rules.PROJECT_CODE_SYSTEMS)):
                kept.append(_project_codes(self.terminology))
        return kept

    def array(self, schema: Json) -> Json | None:
        if not isinstance(schema, dict) or "$ref" in schema:
            return None
        prefix = schema.get("prefixItems")
        if prefix is None and "items" not in schema:
            return None
        out = dict(schema)
        if isinstance(prefix, list):
            out["prefixItems"] = [self.item(item) for item in prefix]
        elif prefix is not None:
            return None
        # Without "items", the items after the prefix are the screen's alone.
        out["items"] = (
            self.item(schema["items"]) if "items" in schema else {"$ref": _screen_ref("item")}
        )
        out["minItems"] = max(1, schema.get("minItems", 0))
        return out

    def pinned_type(self, schema: Json) -> str | None:
        """The one JSON type `schema` allows ("number" for integers too), if it pins one."""
        if not isinstance(schema, dict):
            return None
        declared = schema.get("type")
        if isinstance(declared, str):
            return "number" if declared == "integer" else declared
        if "const" in schema:
            return _json_type(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            kinds = {_json_type(value) for value in schema["enum"]}
            return kinds.pop() if len(kinds) == 1 else None
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return self.pinned_type(self.defs.get(reference.removeprefix("#/$defs/")))
        for conjunct in schema.get("allOf", []):
            kind = self.pinned_type(conjunct)
            if kind is not None:
                return kind
        return None


def _joined(first: Mapping[str, Json], second: Mapping[str, Json]) -> dict[str, Json]:
    """Two dependentSchemas maps as one: a key in both must meet both schemas."""
    joined = dict(first)
    for key, schema in second.items():
        joined[key] = {"allOf": [joined[key], schema]} if key in joined else schema
    return joined


def _plain_reference(schema: Json) -> str | None:
    """The $defs name a schema only refers to (annotations aside), else None."""
    if not isinstance(schema, dict) or set(schema) - _ANNOTATIONS != {"$ref"}:
        return None
    reference = schema["$ref"]
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        return reference.removeprefix("#/$defs/")
    return None


def _json_type(value: Json) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    for kind, python in (("string", str), ("object", dict), ("array", list)):
        if isinstance(value, python):
            return kind
    return None


def _screen_ref(name: str) -> str:
    return f"#/$defs/{_SCREEN_PREFIX}{name}"


def _to_screen_refs(node: Json) -> Json:
    """The screen's own $defs references, renamed into the merged document's screen- names."""
    if isinstance(node, dict):
        out = {key: _to_screen_refs(value) for key, value in node.items()}
        reference = out.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            out["$ref"] = _screen_ref(reference.removeprefix("#/$defs/"))
        return out
    if isinstance(node, list):
        return [_to_screen_refs(item) for item in node]
    return node


def _without_defs(schema: Mapping[str, Json]) -> dict[str, Json]:
    return {key: value for key, value in schema.items() if key not in ("$defs", "$schema", "$id")}
