"""If-chains on one value become switches: same answers, one walk down to the value per
branch tried (validate/switches.py)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrainefhir.schema import compiled_predicate
from migrainefhir.validate.switches import with_switches


def code_is(value: Any, min_items: int = 1) -> dict[str, Any]:
    """The profiles' condition: code.coding[0].code is `value` (a const or an enum)."""
    return {
        "required": ["code"],
        "properties": {
            "code": {
                "required": ["coding"],
                "properties": {
                    "coding": {
                        "type": "array",
                        "minItems": min_items,
                        "prefixItems": [{"required": ["code"], "properties": {"code": value}}],
                    }
                },
            }
        },
    }


def strictly(value: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["code"],
        "properties": {
            "code": {
                "type": "object",
                "required": ["coding"],
                "properties": {
                    "coding": {
                        "type": "array",
                        "minItems": 1,
                        "prefixItems": [
                            {
                                "type": "object",
                                "required": ["code"],
                                "properties": {"code": value},
                            }
                        ],
                    }
                },
            }
        },
    }


NEEDS_SCORE = {"required": ["score"]}
NO_SCORE = {"not": {"required": ["score"]}}
NEEDS_NOTE = {"required": ["note"]}

CHAIN = {
    "allOf": [
        {"if": code_is({"const": "a"}), "then": NEEDS_SCORE, "else": NO_SCORE},
        {"if": code_is({"enum": ["b", "c"]}), "then": NEEDS_NOTE},
        {"required": ["id"]},
    ]
}


def test_an_if_chain_on_one_value_becomes_one_branch_per_value_and_the_chain_for_the_rest() -> None:
    assert with_switches(CHAIN) == {
        "allOf": [
            {
                "anyOf": [
                    {"allOf": [strictly({"const": "a"}), NEEDS_SCORE]},
                    {"allOf": [strictly({"const": "b"}), NO_SCORE, NEEDS_NOTE]},
                    {"allOf": [strictly({"const": "c"}), NO_SCORE, NEEDS_NOTE]},
                    {
                        "allOf": [
                            {"not": strictly({"enum": ["a", "b", "c"]})},
                            *CHAIN["allOf"][:2],
                        ]
                    },
                ]
            },
            {"required": ["id"]},
        ]
    }


def test_if_members_nested_in_a_then_on_the_same_value_are_decided_in_each_branch() -> None:
    nested = {
        "allOf": [
            {
                "if": code_is({"enum": ["a", "b"]}),
                "then": {
                    "allOf": [
                        {"if": code_is({"const": "a"}), "then": NEEDS_SCORE},
                        {"if": code_is({"const": "b"}), "then": NEEDS_NOTE},
                    ]
                },
            }
        ]
    }
    [switch] = with_switches(nested)["allOf"]
    assert switch["anyOf"][:2] == [
        {"allOf": [strictly({"const": "a"}), NEEDS_SCORE]},
        {"allOf": [strictly({"const": "b"}), NEEDS_NOTE]},
    ]


def test_a_single_if_is_left_as_it_is() -> None:
    single = {"allOf": [{"if": code_is({"const": "a"}), "then": NEEDS_SCORE}]}
    assert with_switches(single) == single


NOT_VALUE_TESTS = {
    "another keyword": lambda v: {"if": code_is({"const": v}), "then": NEEDS_SCORE, "$comment": ""},
    "not a string": lambda v: {"if": code_is({"const": ord(v)}), "then": NEEDS_SCORE},
    "a pattern": lambda v: {"if": code_is({"pattern": f"^{v}"}), "then": NEEDS_SCORE},
    "not required": lambda v: {"if": {"properties": {"code": {"const": v}}}, "then": NEEDS_SCORE},
    "minItems 0": lambda v: {"if": code_is({"const": v}, min_items=0), "then": NEEDS_SCORE},
}


@pytest.mark.parametrize("kind", sorted(NOT_VALUE_TESTS))
def test_members_that_are_not_plain_value_tests_are_left_as_they_are(kind: str) -> None:
    """A switch decides each member by the value alone; these need more (an empty list passes
    minItems 0, a value that is not an object passes a test without required)."""
    member = NOT_VALUE_TESTS[kind]
    chain = {"allOf": [member("a"), member("b")]}
    assert with_switches(chain) == chain


def test_chains_are_rewritten_at_any_depth_and_the_argument_is_not_changed() -> None:
    deep = {"properties": {"component": {"items": CHAIN}}, "$defs": {"part": CHAIN}}
    before = json.dumps(deep)
    rewritten = with_switches(deep)
    assert rewritten["properties"]["component"]["items"] == with_switches(CHAIN)
    assert rewritten["$defs"]["part"] == with_switches(CHAIN)
    assert json.dumps(deep) == before


# --- the same answers ------------------------------------------------------------------------

LEAVES = st.sampled_from(["a", "b", "c", "d", 1, None, True])
CODINGS = st.lists(
    st.one_of(st.fixed_dictionaries({}, optional={"code": LEAVES}), LEAVES), max_size=2
)
CODES = st.one_of(
    st.fixed_dictionaries({}, optional={"coding": st.one_of(CODINGS, LEAVES)}), LEAVES
)
INSTANCES = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "code": CODES,
            "score": st.just(1),
            "note": st.just("n"),
            "id": st.just("x"),
        },
    ),
    LEAVES,
    CODINGS,
)


@settings(max_examples=400, deadline=None)
@given(INSTANCES)
def test_the_switch_accepts_exactly_what_the_chain_accepts(instance: Any) -> None:
    """Python jsonschema and the compiled engine, on instances that reach every branch: each
    value, other values, and paths that are not objects or lists (where the if-form holds
    without looking)."""
    switched = with_switches(CHAIN)
    expected = jsonschema.Draft202012Validator(CHAIN).is_valid(instance)
    assert jsonschema.Draft202012Validator(switched).is_valid(instance) == expected
    assert compiled_predicate(switched)(instance) == expected
