"""Layer 1, structure: the R4 model (fhir.resources R4B) of each resource.

The only module of the package that imports fhir.resources. The import happens on first use
(`_r4b()`), so `migrainefhir --help` never pays its ~200 ms.

What this layer catches, and what it leaves to others (see shared performance notes):
fhir.resources checks cardinality, unknown elements, primitive formats and calendar dates,
but coerces the JSON string "7" to a number and accepts nulls and empty arrays. This module
adds the missing JSON-type check by walking the resource alongside the model's field types;
nulls and empty values are the rules layer's `fhir.empty`, choice exclusivity is the rules
layer's `fhir.value-choice` (reported there with the exact element path).
"""

from __future__ import annotations

import decimal
import functools
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from migrainefhir.problems import (
    Problem,
    Severity,
    error,
    first_of_each,
    json_path,
    register_code,
    shown_name,
    shows_as_name,
)

STRUCTURE = register_code(
    "fhir.structure",
    Severity.ERROR,
    "An element does not fit the FHIR R4 model (format, cardinality, invalid value).",
    "structure",
)
UNKNOWN_ELEMENT = register_code(
    "fhir.unknown-element",
    Severity.ERROR,
    "An element that R4 does not define for this resource or datatype (often an R5 element).",
    "structure",
)
REQUIRED = register_code(
    "fhir.required",
    Severity.ERROR,
    "A required (1..1 or 1..*) element is missing.",
    "structure",
)
JSON_TYPE = register_code(
    "fhir.json-type",
    Severity.ERROR,
    "An element has the wrong JSON type (a string where R4 wants a number or boolean, ...).",
    "structure",
)
RESOURCE_TYPE = register_code(
    "fhir.resource-type",
    Severity.ERROR,
    "resourceType is missing or names no R4 resource.",
    "structure",
)

# Elements R5 added that people put into R4 resources; named in the message so the fix is clear.
R5_ONLY_ELEMENTS = frozenset(
    {
        "Procedure.occurrenceDateTime",
        "Procedure.occurrencePeriod",
        "Procedure.occurrenceString",
        "Procedure.occurrenceAge",
        "Procedure.occurrenceRange",
        "Procedure.occurrenceTiming",
        "Procedure.recorded",
        "Procedure.reportedBoolean",
        "Procedure.reportedReference",
        "Procedure.supportingInfo",
        "Observation.triggeredBy",
        "Observation.instantiatesCanonical",
        "Observation.instantiatesReference",
        "Observation.bodyStructure",
        "MedicationAdministration.occurenceDateTime",
        "MedicationAdministration.occurencePeriod",
        "MedicationAdministration.isSubPotent",
        "MedicationAdministration.subPotentReason",
        "MedicationAdministration.recorded",
        "MedicationStatement.adherence",
        "MedicationStatement.relatedClinicalInformation",
        "MedicationStatement.renderedDosageInstruction",
    }
)

# pydantic error types that mean "this JSON value has the wrong type".
_JSON_TYPE_ERRORS = {
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "json_invalid": "an object",
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean",
    "float_type": "a number",
    "decimal_type": "a number",
}
_MISSING_ERRORS = {"missing", "model_field_validation.missing"}
# fhir.resources' own message when two value[x] are present; the rules layer reports it better.
_CHOICE_MESSAGE = "Any of one field value is expected"
# ... and when an array holds a null (reported without the index).
_NULL_IN_LIST_MESSAGE = "None is not allowed as an element of"


@functools.cache
def _r4b() -> Any:
    """The fhir.resources R4B package, imported on first use only."""
    import fhir.resources.R4B as r4b
    import fhir.resources.R4B.resource  # noqa: F401  (the Resource base class)

    return r4b


@functools.cache
def model_class(resource_type: str) -> Any | None:
    """The R4B model class of a resource type, or None when R4 has no such resource."""
    r4b = _r4b()
    try:
        cls = r4b.get_fhir_model_class(resource_type)
    except (ValueError, KeyError):
        return None
    if not issubclass(cls, r4b.resource.Resource):  # "Quantity" is a datatype, not a resource
        return None
    return cls


def check_structure(resource: Mapping[str, Any]) -> list[Problem]:
    """Every structural problem of one resource, each with the JSONPath of its element.

    Every resource goes through its R4 model. A valid one takes the fast path (elements
    already validated as part of an earlier resource are passed as model instances); anything
    that fails there is validated again from scratch, which gives the detailed problems.
    """
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        return [error(RESOURCE_TYPE, "resourceType is missing or not a string", "$.resourceType")]
    cls = model_class(resource_type)
    if cls is None:
        return [
            error(
                RESOURCE_TYPE,
                f"resourceType '{_printable(resource_type)}' is not an R4 resource",
                "$.resourceType",
            )
        ]
    if _accepted_with_known_elements(resource, cls):
        return []
    problems = json_type_problems(resource, cls)
    try:
        cls.model_validate(resource)
    except _r4b_validation_error() as exc:
        errors = exc.errors(include_input=False)  # type: ignore[attr-defined]
        problems.extend(_clearer(_from_pydantic(resource_type, errors), resource))
    except (TypeError, ValueError) as exc:  # a validator raising outside pydantic's protocol
        problems.append(
            error(STRUCTURE, f"the R4 model rejects this resource ({type(exc).__name__})")
        )
    return _dedupe(problems)


@functools.cache
def _r4b_validation_error() -> type[Exception]:
    import pydantic

    return pydantic.ValidationError


def _from_pydantic(resource_type: str, errors: Sequence[Any]) -> list[Problem]:
    problems = []
    for err in errors:
        kind = str(err.get("type", ""))
        message = str(err.get("msg", ""))
        parts = [_element_name(part) for part in err.get("loc", ())]
        path = json_path(parts)
        if _CHOICE_MESSAGE in message:
            continue  # rules.VALUE_CHOICE reports this at the offending element
        if _NULL_IN_LIST_MESSAGE in message:
            continue  # rules.EMPTY reports each null with its index
        if kind == "extra_forbidden":
            name = str(parts[-1]) if parts else "?"
            owner = _owner(resource_type, parts)
            note = " (an R5 element)" if f"{owner}.{name}" in R5_ONLY_ELEMENTS else ""
            shown = f"'{name}'"
            if not shows_as_name(name):  # a key that may be a value: shown nowhere
                path, shown = json_path(parts[:-1]), shown_name(name)
            message = f"element {shown} is not defined in R4 {owner}{note}"
            problems.append(error(UNKNOWN_ELEMENT, message, path))
        elif kind in _MISSING_ERRORS:
            name = str(parts[-1]) if parts else "?"
            problems.append(error(REQUIRED, f"required element '{name}' is missing", path))
        elif kind in _JSON_TYPE_ERRORS:
            problems.append(error(JSON_TYPE, f"expected {_JSON_TYPE_ERRORS[kind]}", path))
        else:
            problems.append(error(STRUCTURE, _safe_message(message), path))
    return problems


_TIME_WITHOUT_ZONE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_REGEX_MESSAGE = "value string does not match spec regex"


def _clearer(problems: list[Problem], resource: Mapping[str, Any]) -> list[Problem]:
    """The HL7 validator's words for what a library's regex message hides: a dateTime or
    instant with a time but no time zone."""
    out = []
    for problem in problems:
        if problem.code == STRUCTURE and _REGEX_MESSAGE in problem.message:
            value = _value_at(resource, problem.path)
            if isinstance(value, str) and _TIME_WITHOUT_ZONE.match(value):
                problem = error(
                    STRUCTURE, "a time zone is required when a time is given", problem.path
                )
        out.append(problem)
    return out


_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _value_at(resource: Mapping[str, Any], path: str) -> Any:
    node: Any = resource
    for name, index in _PATH_PART.findall(path):
        if name and isinstance(node, dict):
            node = node.get(name)
        elif index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            return None
    return node


def _element_name(part: Any) -> str | int:
    """pydantic field names back to JSON names: resource_type, status__ext, class_fhir."""
    if isinstance(part, int):
        return part
    name = str(part)
    if name == "resource_type":
        return "resourceType"
    if name.endswith("__ext"):
        return "_" + name[: -len("__ext")]
    if name.endswith("_fhir"):
        return name[: -len("_fhir")]
    return name


def _owner(resource_type: str, parts: Sequence[str | int]) -> str:
    """'Procedure' for a top-level element, 'Procedure.performer' for a nested one."""
    names = [p for p in parts[:-1] if isinstance(p, str)]
    return ".".join([resource_type, *names])


def _safe_message(message: str) -> str:
    # pydantic messages name the rule, never the input value (errors(include_input=False));
    # cut long regex patterns so a line stays readable.
    message = message.removeprefix("Value error, ").strip()
    return message if len(message) <= 160 else message[:157] + "..."


def _printable(text: str) -> str:
    return text if len(text) <= 40 and text.isprintable() else text[:37] + "..."


def _dedupe(problems: list[Problem]) -> list[Problem]:
    """One problem per code and place."""
    return first_of_each(problems, lambda problem: (problem.code, problem.path))


# --- the JSON-type walk -------------------------------------------------------------------

# What JSON a primitive element needs. fhir.resources accepts "7" for 7 and "yes" for true.
_NUMBER, _BOOLEAN, _OTHER = "number", "boolean", "other"


@dataclass(frozen=True, slots=True)
class _Field:
    kind: str  # _NUMBER, _BOOLEAN, _OTHER, or "model" / "resource"
    model: Any | None  # the child model class for "model"


def json_type_problems(resource: Mapping[str, Any], cls: Any) -> list[Problem]:
    """Numbers and booleans given as strings (or booleans given as numbers), anywhere."""
    problems: list[Problem] = []
    _walk(resource, cls, (), problems)
    return problems


def _walk(
    node: Mapping[str, Any], cls: Any, parts: tuple[str | int, ...], out: list[Problem]
) -> None:
    fields = _fields(cls)
    for key, value in node.items():
        spec = fields.get(key)
        if spec is None or value is None:
            continue
        if isinstance(value, list):
            for index, item in enumerate(value):
                _check(item, spec, (*parts, key, index), out)
        else:
            _check(value, spec, (*parts, key), out)


def _check(value: Any, spec: _Field, parts: tuple[str | int, ...], out: list[Problem]) -> None:
    if spec.kind == _NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.append(
                error(
                    JSON_TYPE, f"expected a JSON number, got {_json_kind(value)}", json_path(parts)
                )
            )
    elif spec.kind == _BOOLEAN:
        if not isinstance(value, bool):
            out.append(
                error(
                    JSON_TYPE, f"expected true or false, got {_json_kind(value)}", json_path(parts)
                )
            )
    elif spec.kind == "model" and isinstance(value, dict):
        _walk(value, spec.model, parts, out)
    elif spec.kind == "resource" and isinstance(value, dict):
        inner = value.get("resourceType")
        child = model_class(inner) if isinstance(inner, str) else None
        if child is not None:
            _walk(value, child, parts, out)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "an object"


@functools.cache
def _fields(cls: Any) -> dict[str, _Field]:
    """JSON name -> what JSON that element needs, read once per model class."""
    out: dict[str, _Field] = {}
    for name, info in cls.model_fields.items():
        alias = info.alias or name
        if alias.startswith("_") or alias == "fhir_comments":
            continue
        out[alias] = _classify(info.annotation)
    return out


def _classify(annotation: Any) -> _Field:
    inner = _unwrap(annotation)
    if inner is bool:
        return _Field(_BOOLEAN, None)
    if inner in (int, float, decimal.Decimal):
        return _Field(_NUMBER, None)
    if isinstance(inner, type) and hasattr(inner, "get_model_klass"):
        if inner.__name__ == "ResourceType":
            return _Field("resource", None)
        return _Field("model", inner.get_model_klass())
    return _Field(_OTHER, None)


def _unwrap(annotation: Any) -> Any:
    """Optional[List[Annotated[int, ...]]] -> int."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        elif origin in (list, typing.List):  # noqa: UP006
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


# --- the fast path: R4 elements validated once, then reused ----------------------------------

# The resources of one record, and of one patient, repeat most of their elements (meta, code,
# category, subject, effectivePeriod, ...). An element's validity depends only on its own
# content and its R4 type, so a validated element instance is reused for an identical element:
# the resource still goes through its own model (cardinality, choices, required elements,
# unknown elements), but that element is not parsed again. Bounded: oldest entries go first.
_ELEMENT_CACHE_SIZE = 4096
_elements: dict[tuple[Any, bytes], Any] = {}


def _accepted_with_known_elements(resource: Mapping[str, Any], cls: Any) -> bool:
    """True when the resource is certainly valid R4 (its JSON types and its model); False means
    "not known": the caller validates it from scratch for the detailed problems."""
    prepared = _prepared(resource, cls)
    if prepared is _UNKNOWN:
        return False
    try:
        cls.model_validate(prepared)
    except (_r4b_validation_error(), TypeError, ValueError):
        return False
    return True


_UNKNOWN: Any = object()


def _prepared(node: Mapping[str, Any], cls: Any) -> Any:
    """`node` with each element object replaced by its validated instance; _UNKNOWN when a
    JSON type is wrong or an element is not valid."""
    fields = _fields(cls)
    prepared: dict[str, Any] = {}
    for key, value in node.items():
        spec = fields.get(key)
        if spec is None or value is None:
            prepared[key] = value
        elif spec.kind == "model":
            if isinstance(value, list):
                items = [_element(spec.model, item) if isinstance(item, dict) else item
                         for item in value]  # fmt: skip
                if any(item is _UNKNOWN for item in items):
                    return _UNKNOWN
                prepared[key] = items
            else:
                element = _element(spec.model, value) if isinstance(value, dict) else value
                if element is _UNKNOWN:
                    return _UNKNOWN
                prepared[key] = element
        else:
            problems: list[Problem] = []
            for item in value if isinstance(value, list) else [value]:
                _check(item, spec, (key,), problems)
            if problems:
                return _UNKNOWN
            prepared[key] = value
    return prepared


def _element(model: Any, value: dict[str, Any]) -> Any:
    """The validated model instance of one element, or _UNKNOWN when it is not valid."""
    try:
        key = (model, orjson.dumps(value))
    except orjson.JSONEncodeError:
        return _UNKNOWN
    cached = _elements.get(key)
    if cached is not None:
        return cached
    prepared = _prepared(value, model)
    if prepared is _UNKNOWN:
        return _UNKNOWN
    try:
        instance = model.model_validate(prepared)
    except (_r4b_validation_error(), TypeError, ValueError):
        return _UNKNOWN
    if len(_elements) >= _ELEMENT_CACHE_SIZE:
        del _elements[next(iter(_elements))]
    _elements[key] = instance
    return instance
