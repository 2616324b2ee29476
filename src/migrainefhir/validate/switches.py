"""If-chains that test one value, rewritten as a switch: for the compiled yes/no screens only.

The profiles state their code-dependent rules as if/then/else members of an allOf whose
conditions all test the same value: "if component.code.coding[0].code is 72514-3 then
valueInteger is required", "if it is 100752-5 then the value is a trigger", and so on, seven
for each component of a headache Observation. jsonschema_rs evaluates every condition, each a
walk down to that value (about a microsecond apiece), for every object the rules apply to.

`with_switches` rewrites such a group as one anyOf with a branch per tested value: "the value
is v (a strict test: each step of the path has the type it needs), and the then or else of
every member as v decides it", so a conforming object walks down once per branch tried, not
once per rule. A last branch keeps the members as they were, for objects whose value is none
of those tested or whose path is not well typed. At most one branch can hold for an object
(a path leads to one value), so the rewritten schema accepts exactly what the original
accepts (tests/test_validate_switches.py). Problems are never computed from the rewritten
form: only the merged screens, which answer yes or no, are compiled from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Json = Any
Step = str | int  # an object member's key, or 0: an array's first item
_MEMBER_KEYS = frozenset({"if", "then", "else"})
_ANNOTATIONS = frozenset({"description", "title", "$comment"})


def with_switches(schema: Json) -> Json:
    """`schema` with each if-chain on one value rewritten as a switch (a new document; the
    argument is not changed)."""
    if isinstance(schema, list):
        return [with_switches(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    rewritten = {key: with_switches(value) for key, value in schema.items() if key != "allOf"}
    if "allOf" in schema:
        rewritten["allOf"] = _switched(schema["allOf"])
    return rewritten


def _switched(members: list[Json]) -> list[Json]:
    """The members of an allOf, the if-members of each path tested twice or more replaced by
    a switch (the most tested path first)."""
    path = _most_tested_path(members)
    if path is None:
        return [with_switches(member) for member in members]
    group = [member for member in members if _tested_path(member) == path]
    rest = [member for member in members if _tested_path(member) != path]
    return [_switch(path, group), *_switched(rest)]


def _most_tested_path(members: list[Json]) -> tuple[Step, ...] | None:
    """The path tested by the most if-members (nested ones counted), if at least twice."""
    counts: dict[tuple[Step, ...], int] = {}
    for member in members:
        path = _tested_path(member)
        if path is not None:
            counts[path] = counts.get(path, 0) + _tests_of(path, member)
    best = max(counts.items(), key=lambda item: item[1], default=None)
    return best[0] if best is not None and best[1] >= 2 else None


def _switch(path: tuple[Step, ...], group: list[Json]) -> Json:
    values: list[str] = []
    for member in group:
        _collect_values(path, member, values)
    branches = []
    for value in values:
        decided = [_decided(path, value, member) for member in group]
        kept = [with_switches(schema) for schema in decided if schema is not True]
        branches.append({"allOf": [_strict_test(path, {"const": value}), *kept]})
    untested = {"not": _strict_test(path, {"enum": values})}
    branches.append({"allOf": [untested, *group]})
    return {"anyOf": branches}


def _decided(path: tuple[Step, ...], value: str, schema: Json) -> Json:
    """`schema` as it applies to an object whose value at `path` is `value`: each if-member on
    the path replaced by its then or else (True when it has none), at any depth of allOf."""
    if not isinstance(schema, dict):
        return schema
    if _tested_path(schema) == path:
        tested = _condition(schema["if"])
        assert tested is not None
        chosen = schema.get("then", True) if value in tested[1] else schema.get("else", True)
        return _decided(path, value, chosen)
    if "allOf" not in schema:
        return schema
    members = [_decided(path, value, member) for member in schema["allOf"]]
    members = [member for member in members if member is not True]
    rest = {key: item for key, item in schema.items() if key != "allOf"}
    if not members:
        return rest or True
    if not rest and len(members) == 1:
        return members[0]
    return {**rest, "allOf": members}


def _tests_of(path: tuple[Step, ...], schema: Json) -> int:
    """How many if-members test `path` in `schema`, itself included, through then, else and
    allOf."""
    if not isinstance(schema, dict):
        return 0
    count = 0
    if _tested_path(schema) == path:
        count = 1
        schema = {"allOf": [schema.get("then", True), schema.get("else", True)]}
    return count + sum(_tests_of(path, member) for member in schema.get("allOf", []))


def _collect_values(path: tuple[Step, ...], schema: Json, values: list[str]) -> None:
    """Every value the if-members on `path` test, in the order they appear."""
    if not isinstance(schema, dict):
        return
    if _tested_path(schema) == path:
        condition = _condition(schema["if"])
        assert condition is not None
        values.extend(value for value in condition[1] if value not in values)
        for branch in ("then", "else"):
            _collect_values(path, schema.get(branch, True), values)
    for member in schema.get("allOf", []):
        _collect_values(path, member, values)


def _tested_path(member: Json) -> tuple[Step, ...] | None:
    """The path an if-member ({"if", "then", "else"} and nothing else) tests, or None."""
    if not isinstance(member, dict) or "if" not in member or not set(member) <= _MEMBER_KEYS:
        return None
    condition = _condition(member["if"])
    return condition[0] if condition is not None else None


def _condition(schema: Json) -> tuple[tuple[Step, ...], tuple[str, ...]] | None:
    """(path, values) when `schema` only asks that the string at `path` be one of `values`:
    {"required": [k], "properties": {k: ...}} for an object's member, {"type": "array",
    "minItems": 1, "prefixItems": [...]} for an array's first item, and a const or enum of
    strings at the end."""
    if not isinstance(schema, dict):
        return None
    keys = set(schema) - _ANNOTATIONS
    if keys == {"required", "properties"}:
        required, properties = schema["required"], schema["properties"]
        if not isinstance(properties, dict) or len(properties) != 1 or required != [*properties]:
            return None
        ((key, inner),) = properties.items()
        tail = _values(inner) if isinstance(inner, dict) else None
        if tail is not None:
            return (key,), tail
        nested = _condition(inner)
        return ((key, *nested[0]), nested[1]) if nested is not None else None
    if keys == {"type", "minItems", "prefixItems"}:
        items = schema["prefixItems"]
        if schema["type"] != "array" or schema["minItems"] != 1 or len(items) != 1:
            return None
        nested = _condition(items[0])
        return ((0, *nested[0]), nested[1]) if nested is not None else None
    return None


def _values(schema: Mapping[str, Json]) -> tuple[str, ...] | None:
    """The strings a {"const": s} or {"enum": [s, ...]} allows, or None."""
    if set(schema) == {"const"} and isinstance(schema["const"], str):
        return (schema["const"],)
    values = schema.get("enum") if set(schema) == {"enum"} else None
    if isinstance(values, list) and values and all(isinstance(value, str) for value in values):
        return tuple(values)
    return None


def _strict_test(path: tuple[Step, ...], leaf: Json) -> Json:
    """The value at `path` satisfies `leaf`, every step having the type it needs (the if-form
    holds vacuously where a step is not an object or an array)."""
    schema = leaf
    for step in reversed(path):
        if isinstance(step, int):
            schema = {"type": "array", "minItems": 1, "prefixItems": [schema]}
        else:
            schema = {"type": "object", "required": [step], "properties": {step: schema}}
    return schema
