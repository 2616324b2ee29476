"""A profile JSON Schema (what the validator runs) compiled into a StructureDefinition's
constraints, so that the two cannot drift: the schema is the one definition, this is a function.

What maps onto ElementDefinition structure becomes structure:

- `properties` of a closed object (`additionalProperties: false`): the elements it names;
  every other element of the base type gets `max: "0"` (prohibited); of a choice element only
  the named types stay in `type`;
- `required` -> `min: 1`; `minItems` / `maxItems` of an array -> `min` / `max`;
- `const` on a primitive -> `fixed[x]`;
- an `extension` array whose items fix `url` -> a slice of the extension element (sliced by
  url), named after the extension, its `url` fixed and its value's type restricted.

Everything else a schema says (enum, a regex, ranges, if/then/else, anyOf, not, contains,
prefixItems, uniqueItems, dependentSchemas) becomes an ElementDefinition.constraint on the
element where the schema says it: a FHIRPath invariant generated from the schema, severity
error, keyed `mf-<n>`. The references to the shared R4 primitive `$defs` that only restate the
base type's own rule (a string is a string) add nothing.

Server-managed metadata is not constrained beyond what the schema says (the schemas leave
`meta` open for versionId, lastUpdated, tags and security labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from migrainefhir.conformance import base

# The shared R4 `$defs` that restate a primitive type's own format: a reference to one from an
# element of that very type adds nothing to the base definition.
PRIMITIVE_DEFS = frozenset(
    {
        "id",
        "string",
        "markdown",
        "code",
        "uri",
        "canonical",
        "boolean",
        "decimal",
        "integer",
        "positiveInt",
        "unsignedInt",
        "date",
        "dateTime",
        "instant",
    }
)
# Keywords that only document, or that the base type already enforces in every validator.
_IGNORED = frozenset(
    {"description", "title", "$schema", "$id", "$defs", "$comment", "type", "minProperties"}
)
_ARRAY_KEYS = frozenset(
    {"minItems", "maxItems", "items", "prefixItems", "contains", "minContains", "maxContains"}
    | {"uniqueItems"}
)
# Keywords whose subschemas, on an array, are array schemas (not item schemas).
_ARRAY_COMBINATORS = frozenset({"if", "then", "else", "anyOf", "oneOf", "not"})
_FIXED_TYPES = frozenset(
    {"code", "uri", "canonical", "string", "id", "boolean", "integer", "positiveInt"}
    | {"unsignedInt", "decimal", "url", "dateTime", "instant", "date", "markdown"}
)


class SchemaNotExpressible(ValueError):
    """A schema construct the compiler does not translate (a test keeps this from happening)."""


@dataclass
class Constraint:
    """What a profile says about one element (by element id)."""

    path: str
    min: int | None = None
    max: str | None = None
    types: list[str] | None = None  # restricted type codes, in base order
    type_profile: str | None = None  # for an extension slice: the extension's canonical
    fixed: tuple[str, Any] | None = None  # (Type, value) -> fixed<Type>
    invariants: list[dict[str, str]] = field(default_factory=list)
    slice_name: str | None = None
    slicing_rules: str | None = None  # set on the sliced element
    slicing_by: tuple[str, str] = ("value", "url")  # the discriminator (type, path)
    slicing_ordered: bool = False
    pattern: tuple[str, Any] | None = None  # (Type, value) -> pattern<Type>

    def require(self, minimum: int) -> None:
        self.min = max(self.min or 0, minimum)

    def cap(self, maximum: int) -> None:
        current = None if self.max is None or self.max == "*" else int(self.max)
        self.max = str(maximum if current is None else min(current, maximum))


@dataclass(frozen=True)
class Context:
    """Where a schema node sits: the element's FHIR type, and where its children are defined
    (the structure `owner` and the path inside it, for backbone elements)."""

    type: str
    owner: str
    owner_path: str

    @staticmethod
    def of_type(type_name: str) -> Context:
        return Context(type_name, type_name, type_name)


@dataclass(frozen=True)
class Child:
    name: str  # element name, `value[x]` for a choice
    type: str  # the FHIR type of this JSON key
    context: Context
    repeats: bool  # base max > 1
    base_min: int
    choice: bool

    @property
    def fhirpath(self) -> str:
        if self.choice:
            return f"{self.name[:-3]}.ofType({self.type})"
        return self.name


def _children(context: Context) -> list[dict[str, Any]]:
    prefix = context.owner_path + "."
    return [
        element
        for element in base.definition(context.owner)["snapshot"]["element"]
        if element["path"].startswith(prefix) and "." not in element["path"][len(prefix) :]
    ]


def _fhir_type(element: dict[str, Any]) -> str:
    """The FHIR type of an element the base types as a FHIRPath system type (ids, urls)."""
    if element["path"].count(".") == 1 and element["path"].endswith(".id"):
        owner = element["path"].split(".", 1)[0]
        if base.definition(owner)["kind"] == "resource":
            return "id"
    for extension in element["type"][0].get("extension", []):
        if extension["url"].endswith("/structuredefinition-fhir-type"):
            return str(extension["valueUrl"])
    return "string"


def _type_suffix(code: str) -> str:
    return code[0].upper() + code[1:]


def _child_context(context: Context, element: dict[str, Any], type_code: str) -> Context:
    if "contentReference" in element:
        target = element["contentReference"].split("#", 1)[1]
        return Context("BackboneElement", context.owner, target)
    if type_code in ("BackboneElement", "Element") and context.owner not in ("Element",):
        return Context("BackboneElement", context.owner, element["path"])
    return Context.of_type(type_code)


def child(context: Context, key: str) -> Child:
    """The element a JSON member name stands for, in an element of this context."""
    for element in _children(context):
        name = element["path"].rsplit(".", 1)[1]
        codes = [entry["code"] for entry in element.get("type", [])]
        if "contentReference" in element:
            codes = ["BackboneElement"]
        repeats = element["max"] == "*" or int(element["max"]) > 1
        if name == key:
            code = codes[0] if len(codes) == 1 else ""
            if code.startswith("http://hl7.org/fhirpath/"):
                code = _fhir_type(element)
            return Child(
                name, code, _child_context(context, element, code), repeats, element["min"], False
            )
        if name.endswith("[x]") and key.startswith(name[:-3]):
            suffix = key[len(name) - 3 :]
            for code in codes:
                if _type_suffix(code) == suffix:
                    return Child(name, code, Context.of_type(code), repeats, element["min"], True)
    raise SchemaNotExpressible(f"{context.owner_path} has no element for the member {key!r}")


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return f"'{escaped}'"
    raise SchemaNotExpressible(f"no FHIRPath literal for {value!r}")


def full_match(pattern: str) -> str:
    """A JSON Schema pattern (a search) as a regex that must match the whole string, so that
    FHIRPath engines agree whether their matches() searches or matches in full."""
    if pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern
    return f"^[\\s\\S]*(?:{pattern})[\\s\\S]*$"


def _and(clauses: list[str | None] | list[str]) -> str | None:
    kept = [clause for clause in clauses if clause]
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0]
    return "(" + " and ".join(kept) + ")"


# The JSON Schema combinators as FHIRPath, for an element's own schema and for an array's
# (the two compilers give the subschemas' expressions; these say how they combine).


def _if_then_else(condition: str, then: str | None, otherwise: str | None) -> str | None:
    """`then` where the condition holds, `otherwise` where it does not."""
    clauses = []
    if then:
        clauses.append(f"(({condition}).not() or {then})")
    if otherwise:
        clauses.append(f"({condition} or {otherwise})")
    return _and(clauses)


def _any_of(options: list[str]) -> str:
    return "(" + " or ".join(options) + ")"


def _one_of(options: list[str]) -> str:
    return "(" + " + ".join(f"iif({option}, 1, 0)" for option in options) + ") = 1"


def _not(inner: str) -> str:
    return f"({inner}).not()"


@dataclass
class Part:
    schema: Mapping[str, Any]
    origin: str | None  # the `$defs` name this part came from, if any

    @property
    def restates(self) -> str | None:
        """The primitive `$defs` name this part came from, if any."""
        return self.origin if self.origin in PRIMITIVE_DEFS else None


class Compiler:
    def __init__(self, schema: Mapping[str, Any], resource_type: str) -> None:
        self.schema = schema
        self.resource_type = resource_type
        self.constraints: dict[str, Constraint] = {}
        self._keys = 0
        self._expanding: list[str] = []  # the `$defs` being expanded (they may recurse)
        self._in_fhirpath: list[str] = []

    # -- schema plumbing -------------------------------------------------------------------

    def _resolve(self, ref: str) -> tuple[Mapping[str, Any], str | None]:
        if not ref.startswith("#/$defs/"):
            raise SchemaNotExpressible(f"reference outside the bundled schema: {ref}")
        name = ref[len("#/$defs/") :]
        return self.schema["$defs"][name], name

    def parts(self, schema: Mapping[str, Any] | bool, origin: str | None = None) -> list[Part]:
        """The schema with `$ref` and `allOf` flattened into a list of plain parts. A boolean
        schema is no part (`true`: anything matches) or one that nothing matches (`false`)."""
        if isinstance(schema, bool):
            return [] if schema else [Part({"not": {}}, origin)]
        out: list[Part] = []
        own = {key: value for key, value in schema.items() if key not in ("$ref", "allOf")}
        if own:
            out.append(Part(own, origin))
        if "$ref" in schema:
            target, name = self._resolve(schema["$ref"])
            out.extend(self.parts(target, name))
        for sub in schema.get("allOf", []):
            out.extend(self.parts(sub, origin))
        return out

    def constraint(self, element_id: str, path: str) -> Constraint:
        found = self.constraints.get(element_id)
        if found is None:
            found = self.constraints[element_id] = Constraint(path)
        return found

    def _invariant(self, element_id: str, path: str, expression: str | None, human: str) -> None:
        if expression is None:
            return
        self._keys += 1
        self.constraint(element_id, path).invariants.append(
            {"key": f"mf-{self._keys}", "human": human, "expression": expression}
        )

    # -- structure -------------------------------------------------------------------------

    def compile(self) -> dict[str, Constraint]:
        root = self.resource_type
        self.constraint(root, root)
        self.value(self.schema, root, root, Context.of_type(root), is_root=True)
        return self.constraints

    def value(
        self,
        schema: Mapping[str, Any],
        element_id: str,
        path: str,
        context: Context,
        is_root: bool = False,
        repeats: bool = False,
    ) -> None:
        """One value of the element `element_id` must match `schema`."""
        if context.type == "BackboneElement" and ":" not in element_id:
            # the structure below says it; the same as one invariant on the backbone element,
            # for validators that check a backbone's children against the base type only
            self._invariant(
                element_id,
                path,
                self.fhirpath(schema, context),
                f"each {path.rsplit('.', 1)[1]} as the profile's elements below define it",
            )
        primitive = base.is_primitive(context.type)
        parts = self.parts(schema)
        origins = [part.origin for part in parts if part.origin]
        if any(origin in self._expanding for origin in origins):
            # a recursive datatype (Reference.identifier.assigner...): the structure stops at
            # its first level; deeper levels keep the base definition's rules
            return
        self._expanding.extend(origins)
        try:
            self._value(parts, element_id, path, context, is_root, primitive, repeats)
        finally:
            del self._expanding[len(self._expanding) - len(origins) :]

    def _value(
        self,
        parts: list[Part],
        element_id: str,
        path: str,
        context: Context,
        is_root: bool,
        primitive: bool,
        repeats: bool,
    ) -> None:
        properties: dict[str, list[Mapping[str, Any]]] = {}
        required: set[str] = set()
        closed: set[str] | None = None
        leftover: list[dict[str, Any]] = []
        for part in parts:
            if part.restates is not None and part.restates == context.type:
                continue  # the base type's own rule
            rest: dict[str, Any] = {}
            for key, value in part.schema.items():
                if key == "properties":
                    for name, sub in value.items():
                        properties.setdefault(name, []).append(sub)
                elif key == "required":
                    required.update(value)
                elif key == "additionalProperties":
                    if value is not False:
                        continue
                    names = set(part.schema.get("properties", {}))
                    closed = names if closed is None else closed & names
                elif key == "const" and primitive and context.type in _FIXED_TYPES and not repeats:
                    self.constraint(element_id, path).fixed = (_type_suffix(context.type), value)
                elif key in _IGNORED:
                    continue
                else:
                    rest[key] = value
            if rest:
                leftover.append(rest)
        for rest in leftover:
            self._invariant(
                element_id,
                path,
                self.fhirpath({**rest}, context),
                rest.get("description") or _describe(rest),
            )
        if primitive:
            return
        members = {name for name in properties if not (is_root and name == "resourceType")}
        by_element: dict[str, list[tuple[str, Child]]] = {}
        for name in sorted(members | (required - {"resourceType"})):
            found = child(context, name)
            by_element.setdefault(found.name, []).append((name, found))
        for element_name, keys in by_element.items():
            child_id = f"{element_id}.{element_name}"
            child_path = f"{path}.{element_name}"
            first = keys[0][1]
            if first.choice:
                self.constraint(child_id, child_path).types = [found.type for _, found in keys]
            if any(name in required for name, _ in keys):
                self.constraint(child_id, child_path).require(1)
            for name, found in keys:
                for sub in properties.get(name, []):
                    if first.choice and len(keys) > 1:
                        # a choice of several types: what the schema says of one type holds
                        # for the values of that type (an invariant, not a type slice)
                        inner = self.fhirpath(sub, found.context)
                        expression = f"$this.ofType({found.type}).all({inner})" if inner else None
                        self._invariant(
                            child_id, child_path, expression, f"{name}: {_describe(sub)}"
                        )
                    elif found.repeats:
                        self.array(
                            sub, element_id, path, child_id, child_path, found, name in required
                        )
                    else:
                        self.value(sub, child_id, child_path, found.context)
        if closed is not None:
            allowed = {child(context, name).name for name in closed if name != "resourceType"}
            for element in _children(context):
                name = element["path"].rsplit(".", 1)[1]
                if name not in allowed and element["min"] == 0:
                    self.constraint(f"{element_id}.{name}", f"{path}.{name}").max = "0"

    def array(
        self,
        schema: Mapping[str, Any],
        parent_id: str,
        parent_path: str,
        element_id: str,
        path: str,
        found: Child,
        required: bool,
    ) -> None:
        """The array `element_id` (a repeating element of the parent) must match `schema`."""
        collection_rules: dict[str, Any] = {}
        for part in self.parts(schema):
            for key, value in part.schema.items():
                if key == "minItems":
                    if required:
                        self.constraint(element_id, path).require(value)
                    elif value > 1:  # when present (FHIR has no empty arrays)
                        expression = (
                            f"({found.fhirpath}.empty() or {found.fhirpath}.count() >= {value})"
                        )
                        self._invariant(
                            parent_id,
                            parent_path,
                            expression,
                            f"{found.name}: at least {value} when present",
                        )
                elif key == "maxItems":
                    self.constraint(element_id, path).cap(value)
                elif key == "items" and "prefixItems" in part.schema:
                    collection_rules[key] = value  # the items after the prefix
                elif key == "prefixItems":
                    collection_rules[key] = value
                    self._positional_slices(value, part.schema, element_id, path, found, required)
                elif key == "items":
                    if found.name in ("extension", "modifierExtension") and self._slice(
                        value, element_id, path, part.schema
                    ):
                        continue
                    self.value(value, element_id, path, found.context, repeats=True)
                elif key in _IGNORED:
                    continue
                elif key in _ARRAY_KEYS or key in _ARRAY_COMBINATORS:
                    collection_rules[key] = value
                else:
                    raise SchemaNotExpressible(f"{path}: {key} on an array")
        if collection_rules:
            rule = self.collection(collection_rules, found.fhirpath, found.context)
            self._invariant(parent_id, parent_path, rule, _describe(collection_rules))

    def _fixed_code(self, item: Mapping[str, Any]) -> tuple[str | None, dict[str, str] | None]:
        """(its `$defs` name, the one Coding its `code` fixes) of an item schema, if any."""
        name = None
        for part in self.parts(item):
            name = name or part.origin
            code = part.schema.get("properties", {}).get("code")
            if code is None:
                continue
            for code_part in self.parts(code):
                coding = code_part.schema.get("properties", {}).get("coding", {})
                for coding_part in self.parts(coding):
                    items = coding_part.schema.get("items")
                    if coding_part.schema.get("maxItems") != 1 or not isinstance(items, dict):
                        continue
                    fixed = {}
                    for item_part in self.parts(items):
                        for member, rule in item_part.schema.get("properties", {}).items():
                            if member in ("system", "code") and isinstance(rule.get("const"), str):
                                fixed[member] = rule["const"]
                    if set(fixed) == {"system", "code"}:
                        return name, fixed
        return name, None

    def _positional_slices(
        self,
        prefix: list[Mapping[str, Any]],
        array: Mapping[str, Any],
        element_id: str,
        path: str,
        found: Child,
        required: bool,
    ) -> None:
        """A backbone array whose positions each fix a code (blood pressure's systolic and
        diastolic components): ordered slices by the code's pattern, one per position."""
        if found.context.type != "BackboneElement" or array.get("items", False) is not False:
            return  # not a backbone, or items beyond the prefix: no closed slicing
        fixed = [self._fixed_code(item) for item in prefix]
        if any(code is None for _, code in fixed):
            return
        names = [name or str(code["code"]) for name, code in fixed if code is not None]
        if len(set(names)) != len(names):
            return
        sliced = self.constraint(element_id, path)
        sliced.slicing_rules = "closed"
        sliced.slicing_by = ("pattern", "code")
        sliced.slicing_ordered = True
        least = array.get("minItems", 0) if required else 0  # absent is allowed otherwise
        for position, (item, name, (_, code)) in enumerate(zip(prefix, names, fixed, strict=True)):
            slice_id = f"{element_id}:{name}"
            entry = self.constraint(slice_id, path)
            entry.slice_name = name
            entry.min = 1 if position < least else 0
            entry.max = "1"
            self.constraint(f"{slice_id}.code", f"{path}.code").pattern = (
                "CodeableConcept",
                {"coding": [code]},
            )
            self.value(item, slice_id, path, found.context)

    def _slice(
        self, item: Mapping[str, Any], element_id: str, path: str, array: Mapping[str, Any]
    ) -> bool:
        """An extension array whose items fix the url: one slice, named after the extension."""
        url = None
        for part in self.parts(item):
            fixed = part.schema.get("properties", {}).get("url", {})
            if "const" in fixed:
                url = fixed["const"]
        if not isinstance(url, str):
            return False
        name = url.rstrip("/").rsplit("/", 1)[1]
        sliced = self.constraint(element_id, path)
        # the slice says it in structure; the same as an invariant on every extension (the
        # slicing is closed), for validators that do not look inside slices
        self._invariant(
            element_id,
            path,
            self.fhirpath(item, Context.of_type("Extension")),
            f"every {path.rsplit('.', 1)[1]} is {url}, as the slice {name} defines it",
        )
        sliced.slicing_rules = "closed"
        slice_id = f"{element_id}:{name}"
        entry = self.constraint(slice_id, path)
        entry.slice_name = name
        entry.type_profile = url
        entry.min = sliced.min or 0
        entry.max = sliced.max or "*"
        self.value(item, slice_id, path, Context.of_type("Extension"))
        return True

    # -- FHIRPath for what structure cannot say ----------------------------------------------

    def fhirpath(self, schema: Mapping[str, Any], context: Context) -> str | None:
        """A FHIRPath boolean that is true exactly when one value ($this) matches `schema`."""
        clauses: list[str | None] = []
        parts = self.parts(schema)
        origins = [part.origin for part in parts if part.origin]
        if any(origin in self._in_fhirpath for origin in origins):
            return None  # a recursive datatype: its first level is said already
        self._in_fhirpath.extend(origins)
        try:
            for part in parts:
                if part.restates is not None and part.restates == context.type:
                    continue
                for key, value in part.schema.items():
                    clauses.append(self._keyword(key, value, part.schema, context))
        finally:
            del self._in_fhirpath[len(self._in_fhirpath) - len(origins) :]
        return _and([clause for clause in clauses if clause])

    def _keyword(
        self, key: str, value: Any, schema: Mapping[str, Any], context: Context
    ) -> str | None:
        if key == "additionalProperties":
            return self._closed(schema, context) if value is False else None
        if key in _IGNORED or key in ("else", "minContains"):
            return None
        if key in ("const", "enum"):
            options = [value] if key == "const" else list(value)
            if all(isinstance(option, dict) for option in options):
                # an object value: each member as a const (the object's other members are
                # left to additionalProperties, as the schemas write them)
                tests = [
                    self.fhirpath(
                        {
                            "required": sorted(option),
                            "properties": {name: {"const": v} for name, v in option.items()},
                        },
                        context,
                    )
                    or "true"
                    for option in options
                ]
                return "(" + " or ".join(tests) + ")"
            return "(" + " or ".join(f"$this = {_literal(option)}" for option in options) + ")"
        if key == "minLength":
            return f"$this.length() >= {value}"
        if key == "maxLength":
            return f"$this.length() <= {value}"
        if key == "oneOf":
            return _one_of([self.fhirpath(sub, context) or "true" for sub in value])
        if key == "pattern":
            return f"$this.matches({_literal(full_match(value))})"
        if key == "minimum":
            return f"$this >= {_literal(value)}"
        if key == "maximum":
            return f"$this <= {_literal(value)}"
        if key == "exclusiveMinimum":
            return f"$this > {_literal(value)}"
        if key == "exclusiveMaximum":
            return f"$this < {_literal(value)}"
        if key == "required":
            return _and([f"{child(context, name).fhirpath}.exists()" for name in value])
        if key == "properties":
            clauses = []
            for name, sub in value.items():
                if name == "resourceType":
                    continue
                found = child(context, name)
                if found.repeats:
                    clauses.append(self.collection(sub, found.fhirpath, found.context))
                else:
                    inner = self.fhirpath(sub, found.context)
                    clauses.append(f"{found.fhirpath}.all({inner})" if inner else None)
            return _and([clause for clause in clauses if clause])
        if key == "if":
            condition = self.fhirpath(value, context) or "true"
            then = self.fhirpath(schema.get("then", {}), context)
            otherwise = self.fhirpath(schema["else"], context) if "else" in schema else None
            return _if_then_else(condition, then, otherwise)
        if key == "then":
            return None  # with its if
        if key == "anyOf":
            return _any_of([self.fhirpath(sub, context) or "true" for sub in value])
        if key == "not":
            return _not(self.fhirpath(value, context) or "true")
        if key == "dependentSchemas":
            clauses = []
            for name, sub in value.items():
                inner = self.fhirpath(sub, context)
                if inner:
                    clauses.append(f"({child(context, name).fhirpath}.empty() or {inner})")
            return _and(clauses)
        raise SchemaNotExpressible(f"{context.owner_path}: no FHIRPath for the keyword {key}")

    def _closed(self, schema: Mapping[str, Any], context: Context) -> str | None:
        """No element but those the closed object names (and of a choice, only its types)."""
        if base.is_primitive(context.type):
            return None
        named = set(schema.get("properties", {})) - {"resourceType"}
        clauses = []
        for element in _children(context):
            name = element["path"].rsplit(".", 1)[1]
            if not name.endswith("[x]"):
                if name not in named:
                    clauses.append(f"{name}.empty()")
                continue
            stem = name[:-3]
            codes = [entry["code"] for entry in element.get("type", [])]
            allowed = [code for code in codes if stem + _type_suffix(code) in named]
            if not allowed:
                clauses.append(f"{stem}.empty()")
            elif len(allowed) < len(codes):
                options = " or ".join(f"{stem}.ofType({code}).exists()" for code in allowed)
                clauses.append(f"({stem}.empty() or {options})")
        return _and(clauses)

    def collection(
        self, schema: Mapping[str, Any], expression: str, context: Context
    ) -> str | None:
        """A FHIRPath boolean that is true when the collection `expression` matches the array
        schema `schema`."""
        clauses: list[str | None] = []
        for part in self.parts(schema):
            rules = part.schema
            for key, value in rules.items():
                if key in _IGNORED or key == "minContains":
                    continue
                if key == "minItems":
                    if value > 1:  # an absent array is an empty one (FHIR has no empty arrays)
                        clauses.append(f"({expression}.empty() or {expression}.count() >= {value})")
                elif key == "maxItems":
                    clauses.append(f"{expression}.count() <= {value}")
                elif key == "uniqueItems":
                    clauses.append(f"{expression}.isDistinct()" if value else None)
                elif key == "items":
                    prefix = len(rules.get("prefixItems", []))
                    if value is False:  # no items beyond the prefix
                        clauses.append(f"{expression}.count() <= {prefix}")
                        continue
                    inner = self.fhirpath(value, context)
                    rest = f"{expression}.skip({prefix})" if prefix else expression
                    clauses.append(f"{rest}.all({inner})" if inner else None)
                elif key == "prefixItems":
                    for index, sub in enumerate(value):
                        inner = self.fhirpath(sub, context)
                        if inner:
                            clauses.append(f"{expression}[{index}].all({inner})")
                elif key in ("contains", "maxContains"):
                    if key == "maxContains":
                        continue
                    inner = self.fhirpath(value, context) or "true"
                    least = rules.get("minContains", 1)
                    clauses.append(f"{expression}.where({inner}).count() >= {least}")
                    if "maxContains" in rules:
                        most = rules["maxContains"]
                        clauses.append(f"{expression}.where({inner}).count() <= {most}")
                elif key in _ARRAY_COMBINATORS:
                    clauses.append(self._combine(key, value, rules, expression, context))
                else:
                    inner = self._keyword(key, value, rules, context)
                    clauses.append(f"{expression}.all({inner})" if inner else None)
        return _and([clause for clause in clauses if clause])

    def _combine(
        self, key: str, value: Any, rules: Mapping[str, Any], expression: str, context: Context
    ) -> str | None:
        """if/then/else, anyOf, oneOf or not on an array: its subschemas are array schemas
        (a trigger's codings: if there are two, they are these two, else each is one of...)."""
        if key in ("then", "else"):
            return None  # with its if
        if key == "if":
            condition = self.collection(value, expression, context) or "true"
            then = self.collection(rules.get("then", {}), expression, context)
            otherwise = (
                self.collection(rules["else"], expression, context) if "else" in rules else None
            )
            return _if_then_else(condition, then, otherwise)
        if key == "not":
            return _not(self.collection(value, expression, context) or "true")
        options = [self.collection(sub, expression, context) or "true" for sub in value]
        return _any_of(options) if key == "anyOf" else _one_of(options)


def _describe(rules: Mapping[str, Any]) -> str:
    described = rules.get("description")
    if isinstance(described, str):
        return described
    for value in rules.values():
        if isinstance(value, Mapping) and isinstance(value.get("description"), str):
            return str(value["description"])
    return "migrainefhir profile rule (" + ", ".join(sorted(rules)) + "), from its JSON Schema"


def compile_schema(schema: Mapping[str, Any]) -> dict[str, Constraint]:
    """Element id -> what the profile schema says about that element."""
    resource_type = schema["properties"]["resourceType"]["const"]
    return Compiler(schema, resource_type).compile()


def differential_elements(
    constraints: Mapping[str, Constraint], source: str
) -> dict[str, dict[str, Any]]:
    """Element id -> the differential ElementDefinition (id, path and what the profile sets)."""
    out: dict[str, dict[str, Any]] = {}
    for element_id, said in constraints.items():
        element: dict[str, Any] = {"id": element_id, "path": said.path}
        if said.slice_name is not None:
            element["sliceName"] = said.slice_name
        if said.slicing_rules is not None:
            element["slicing"] = {
                "discriminator": [{"type": said.slicing_by[0], "path": said.slicing_by[1]}],
                "ordered": said.slicing_ordered,
                "rules": said.slicing_rules,
            }
        if said.min is not None:
            element["min"] = said.min
        if said.max is not None:
            element["max"] = said.max
        if said.type_profile is not None:
            element["type"] = [{"code": "Extension", "profile": [said.type_profile]}]
        elif said.types is not None:
            element["type"] = [{"code": code} for code in said.types]
        if said.fixed is not None:
            element[f"fixed{said.fixed[0]}"] = said.fixed[1]
        if said.pattern is not None:
            element[f"pattern{said.pattern[0]}"] = said.pattern[1]
        if said.invariants:
            element["constraint"] = [
                {**invariant, "severity": "error", "source": source}
                for invariant in said.invariants
            ]
        out[element_id] = element
    return out
