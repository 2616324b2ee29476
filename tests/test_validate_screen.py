"""The rules screen is sound: when it says a resource is clean, the rules walk finds nothing.

It may say "not clean" more often than the walk would (then the walk decides and nothing is
lost but time); it must never say "clean" for a resource the walk has a problem with, or the
fast path would export a defect. Checked here on every rule code, on the validator corpus, on
the converters' output and on generated mutations of it; and the record gate (ids, references)
likewise against the detailed check.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import date, timedelta
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import migrainefhir.validate as validate_package
from migrainefhir.convert import convert_record, patient_stub
from migrainefhir.input.records import PatientRecord
from migrainefhir.problems import PROBLEM_CODES, Source
from migrainefhir.schema import compiled_predicate
from migrainefhir.validate import (
    RecordResources,
    ResourceValidator,
    fhirtime,
    profiles,
    references,
    rules,
    screen,
    validate_record_resources,
    validate_records,
)
from tests import convert_records as records
from tests.test_validate_corpus import INVALID, VALID

MUTATIONS = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _records() -> list[Any]:
    return [make() for make in records.RECORDS.values()]


def _converted() -> list[dict[str, Any]]:
    return [resource for record in _records() for resource in convert_record(record, records.CTX)]


def _is_vital_sign(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "Observation" and rules._is_vital_sign(resource)


def _corpus_resources() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in [*VALID, *INVALID]:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("resourceType") == "Bundle":
            out.extend(
                e["resource"]
                for e in document.get("entry", [])
                if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            )
        else:
            out.append(document)
    return out


# --- the bookkeeping ------------------------------------------------------------------------


def test_every_rule_code_is_either_in_the_schema_or_checked_in_python() -> None:
    rule_codes = {code for code, info in PROBLEM_CODES.items() if info.layer == "rule"}
    assert rule_codes == screen.IN_SCHEMA | screen.IN_PYTHON
    assert not screen.IN_SCHEMA & screen.IN_PYTHON


def test_the_screen_is_a_valid_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(screen.schema(rules.project_terminology()))


def test_the_known_keys_screen_is_a_valid_2020_12_schema() -> None:
    terms = rules.project_terminology()
    document = screen.vocabulary_schema(terms, profiles.element_names())
    jsonschema.Draft202012Validator.check_schema(document)


def test_what_the_converters_make_passes_the_known_keys_screen() -> None:
    """Otherwise every resource would pay for both screens."""
    known_keys = screen._compiled(rules.project_terminology()).known_keys
    for resource in _converted():
        assert known_keys(resource), resource["id"]


def test_what_the_converters_make_passes_the_screen() -> None:
    """Otherwise the fast path would not be taken for our own resources."""
    converted = _converted()
    assert any(_is_vital_sign(r) for r in converted)
    for resource in converted:
        assert screen.rules_clean(resource), resource["id"]


# --- soundness --------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(_corpus_resources())))
def test_on_the_validator_corpus_clean_means_no_rule_problem(index: int) -> None:
    resource = _corpus_resources()[index]
    if screen.rules_clean(resource):
        assert rules.check_rules(resource) == []


def _headache_attack() -> dict[str, Any]:
    return convert_record(records.attack_entry(), records.CTX)[0]


def _provenance() -> dict[str, Any]:
    return convert_record(records.attack_entry(), records.CTX)[-1]


def _vital_sign() -> dict[str, Any]:
    return next(r for r in _converted() if _is_vital_sign(r) and "valueQuantity" in r)


def _blood_pressure() -> dict[str, Any]:
    return next(r for r in _converted() if _is_vital_sign(r) and "component" in r)


def _patient() -> dict[str, Any]:
    return convert_record(records.patient_record(), records.CTX)[0]


def _first_component_quantity(resource: dict[str, Any], quantity: dict[str, Any]) -> None:
    component = resource["component"][0]
    for key in [k for k in component if k.startswith("value")]:
        del component[key]
    component["valueQuantity"] = quantity


# One defect per rule code: (a resource that is clean, the edit that breaks exactly that rule).
DEFECTS: dict[str, tuple[Any, Any]] = {
    rules.EMPTY: (_headache_attack, lambda r: r["code"]["coding"][0].update(display="")),
    rules.INT32: (_headache_attack, lambda r: r["component"][0].update(valueInteger=2**31)),
    rules.DATE_IMPOSSIBLE: (_headache_attack, lambda r: r.update(issued="2026-02-29T10:00:00Z")),
    rules.PER_1: (_headache_attack, lambda r: r["effectivePeriod"].update(end="2026-02-01")),
    rules.QTY_3: (
        _headache_attack,
        lambda r: _first_component_quantity(r, {"value": 1, "code": "mg"}),
    ),
    rules.UCUM_UNIT: (
        _headache_attack,
        lambda r: _first_component_quantity(
            r, {"value": 1, "unit": "x", "system": rules.UCUM, "code": "furlong"}
        ),
    ),
    rules.REFERENCE_FORM: (
        _headache_attack,
        lambda r: r["subject"].update(reference="Patient/a b"),
    ),
    rules.PROJECT_CODE: (
        _headache_attack,
        lambda r: r["code"]["coding"].append(
            {"system": rules.PROJECT_CODE_SYSTEMS + "migraine-trigger", "code": "moonlight"}
        ),
    ),
    rules.URI: (_headache_attack, lambda r: r["code"]["coding"][0].update(system="http://a b")),
    rules.VALUE_CHOICE: (_headache_attack, lambda r: r.update(valueString="headache")),
    "fhir.obs-6": (_headache_attack, lambda r: r.update(dataAbsentReason={"text": "unknown"})),
    "fhir.obs-7": (
        _headache_attack,
        lambda r: r["component"][0]["code"]["coding"].append(r["code"]["coding"][0]),
    ),
    "fhir.status-code": (_headache_attack, lambda r: r.update(status="done")),
    "fhir.vs-2": (_vital_sign, lambda r: r.pop("valueQuantity")),
    "fhir.vs-3": (_blood_pressure, lambda r: r["component"][0].pop("valueQuantity")),
    "fhir.vital-sign-code": (_vital_sign, lambda r: r["valueQuantity"].update(code="cm")),
    "fhir.period-order": (_headache_attack, lambda r: r.update(issued="2020-01-01T00:00:00Z")),
    "fhir.required-binding": (_patient, lambda r: r.update(gender="woman")),
}


def test_every_defect_case_starts_from_a_clean_resource() -> None:
    for code, (make, _) in DEFECTS.items():
        resource = make()
        assert screen.rules_clean(resource), code
        assert rules.check_rules(resource) == [], code


@pytest.mark.parametrize("code", sorted(DEFECTS))
def test_each_rule_defect_fails_the_screen(code: str) -> None:
    make, damage = DEFECTS[code]
    resource = make()
    damage(resource)
    assert code in {p.code for p in rules.check_rules(resource)}
    assert not screen.rules_clean(resource)


def test_a_vital_sign_in_another_shape_is_left_to_the_walk() -> None:
    """A respiratory rate given as a valueInteger: the walk reports it, the screen refuses."""
    vital = _vital_sign()
    vital["code"]["coding"] = [{"system": rules.LOINC, "code": "9279-1"}]
    vital["valueInteger"] = vital.pop("valueQuantity")["value"]
    assert [p.code for p in rules.check_rules(vital)] == ["fhir.vital-sign-code"]
    assert not screen.rules_clean(vital)


# Values that break one rule or another (or look as if they might).
AWKWARD: list[Any] = [
    "", None, [], {}, [None], [[]], [""], "2024-02-30", "2023-02-29", "2024-02-29T10:00:00Z",
    "1900-02-29", "2000-02-29", "2024-13-01", "2024-01-01T24:00:00Z", "2024-01-01T10:00:00+15:00",
    "2024-01-01T10:00", "2024-01-01T10:00:60Z", "2024-01-01T10:00:00.5-03:30", "2024",
    "2024-02", "٢٠٢٤-٠٢-٣٠", "2024-02-30\n", "a b", "a\x1cb", "http://x.org/a\u00a0b",
    "http://x.org/ok", 2**31, -(2**31) - 1, 2**31 - 1, 1.5, 7, 7.0, True, "Patient/x y",
    "Patient/ok", "Patient/ok\n", "urn:uuid:123e4567-e89b-12d3-a456-426614174000", "#c",
    "Patient?x=1", "urn:foo", "mg", "furlong", "{score}", "{score}\n",
    rules.PROJECT_CODE_SYSTEMS + "nope", rules.PROJECT_CODE_SYSTEMS + "medication-relief",
    "none", "bogus", "final", "done", "female", "vital-signs", rules.UCUM,
    {"start": "2024-01-02", "end": "2024-01-01"}, {"start": "2024-01-01", "end": "2024-01-02"},
    {"coding": [{"system": rules.OBSERVATION_CATEGORY, "code": "vital-signs"}]},
    {"value": 5, "code": "mg"}, {"value": 5, "unit": "x", "system": rules.UCUM, "code": "zz"},
    {"system": rules.PROJECT_CODE_SYSTEMS + "medication-relief", "code": "nope"},
    {"reference": "Observation/1"}, {"valueString": "x", "valueInteger": 1},
]  # fmt: skip
KEYS = [
    "valueString", "valueInteger", "valueQuantity", "valueFoo", "value_x", "valueString\n",
    "effectiveDateTime", "effectivePeriod", "doseQuantity", "doseAndRate", "system", "code",
    "unit", "comparator", "value", "reference", "start", "end", "count", "total", "url",
    "profile", "issued", "dataAbsentReason", "status", "gender", "period", "boundsPeriod",
    "component", "category", "xPERIOD", "dateAsserted", "Reference",
]  # fmt: skip


def _node_paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_node_paths(value, (*here, key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            out.extend(_node_paths(item, (*here, index)))
    return out


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """One of our resources with one to three random edits: a value replaced, a key added or
    a key removed, anywhere in the tree."""
    bases = _converted()
    resource = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_node_paths(resource)))
        target = _at(resource, path)
        action = draw(st.sampled_from(["replace", "add", "remove"]))
        value = copy.deepcopy(draw(st.sampled_from(AWKWARD)))
        if action == "replace" and path:
            _at(resource, path[:-1])[path[-1]] = value
        elif action == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(KEYS))] = value
        elif action == "remove" and path and isinstance(path[-1], str):
            del _at(resource, path[:-1])[path[-1]]
    return resource


@MUTATIONS
@given(mutated())
def test_on_mutations_clean_means_no_rule_problem(resource: dict[str, Any]) -> None:
    if screen.rules_clean(resource):
        assert rules.check_rules(resource) == []


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(_keys(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_keys(item) for item in node))
    return set()


def _assert_known_keys_screen_agrees(resource: dict[str, Any]) -> None:
    """The known-keys screen accepts only what the general screen accepts, and exactly that
    when every key of the resource is a profile element name."""
    screens = screen._compiled(rules.project_terminology())
    if _keys(resource) <= profiles.element_names():
        assert screens.known_keys(resource) == screens.general(resource)
    elif screens.known_keys(resource):
        raise AssertionError(f"accepted a resource with unknown keys: {resource}")


@pytest.mark.parametrize("index", range(len(_corpus_resources())))
def test_on_the_validator_corpus_the_known_keys_screen_agrees(index: int) -> None:
    _assert_known_keys_screen_agrees(_corpus_resources()[index])


@pytest.mark.parametrize("code", sorted(DEFECTS))
def test_on_each_rule_defect_the_known_keys_screen_agrees(code: str) -> None:
    make, damage = DEFECTS[code]
    resource = make()
    damage(resource)
    _assert_known_keys_screen_agrees(resource)


CLOSED_PERIOD = {"start": "2024-01-01", "end": "2024-01-02"}
EDGES = {
    "a closed Period below a member": lambda r: r["code"].update(period=dict(CLOSED_PERIOD)),
    "a closed Period in an array item": lambda r: r["identifier"][0].update(
        period=dict(CLOSED_PERIOD)
    ),
    "two values of one choice": lambda r: r.update(valueInteger=1),
    "a date in a member": lambda r: r["meta"].update(lastUpdated="2024-02-30T00:00:00Z"),
    "a whole number in a member": lambda r: r["component"][0].update(valueInteger=1.5),
}


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_at_the_edges_the_known_keys_screen_agrees(edge: str) -> None:
    resource = _headache_attack()
    EDGES[edge](resource)
    assert _keys(resource) <= profiles.element_names()
    _assert_known_keys_screen_agrees(resource)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("valueFoo", "x"),  # a choice-like key that is no known choice
        ("xPERIOD", CLOSED_PERIOD),
        ("xPERIOD", {"start": "2024-01-01"}),
        ("thingDate", "2024-02-30"),
        ("thingDate", "2024-02-28"),
        ("thingUnsignedInt", -1.5),
        ("url", "a b"),
    ],
)
def test_any_plain_key_is_decided_as_the_general_screen_decides_it(key: str, value: Any) -> None:
    """The vocabulary is the profiles' element names today; whatever it holds, a key in it is
    checked exactly as the general screen checks it, at the root and below a member."""
    terms = rules.project_terminology()
    general = screen._compiled(terms).general
    known_keys = compiled_predicate(
        screen.vocabulary_schema(terms, {*_keys(_patient()), *_keys({key: value})})
    )
    at_root = {**_patient(), key: copy.deepcopy(value)}
    below = {**_patient(), "meta": {**_patient()["meta"], key: copy.deepcopy(value)}}
    for resource in (at_root, below):
        assert known_keys(resource) == general(resource)


@MUTATIONS
@given(mutated())
def test_on_mutations_the_known_keys_screen_agrees(resource: dict[str, Any]) -> None:
    _assert_known_keys_screen_agrees(resource)


# --- the date pattern against the calendar ---------------------------------------------------


def test_the_date_pattern_accepts_exactly_the_real_days() -> None:
    pattern = re.compile(screen.DATE)
    day = date(1896, 1, 1)
    while day.year < 2105:
        assert pattern.match(day.isoformat()), day
        day += timedelta(days=1)
    for year in range(1890, 2110):
        for month in range(1, 13):
            for day_number in (29, 30, 31, 32):
                text = f"{year:04d}-{month:02d}-{day_number:02d}"
                if pattern.match(text):
                    assert fhirtime.calendar_problem(text) is None, text
                else:
                    assert fhirtime.calendar_problem(text) is not None, text


# --- the record gate ----------------------------------------------------------------------------


def _record_resources(record: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    resources = convert_record(record, records.CTX)
    patient = (
        None if isinstance(record, PatientRecord) else patient_stub(record.patient_id, records.CTX)
    )
    return resources, patient


def _detailed(resources: list[Any], patient: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What validate_record_resources reports without its fast path, resource by resource."""
    with monkeypatch.context() as patch:
        patch.setattr(
            validate_package, "_records_clean", lambda records, *_: [False] * len(records)
        )
        patch.setattr(ResourceValidator, "is_clean", lambda *_: False)
        return validate_record_resources(resources, patient, validator=ResourceValidator("fast"))


@pytest.mark.parametrize("index", range(6))
def test_a_clean_record_takes_the_fast_path(index: int) -> None:
    clean = [records.plain_note_attack_entry(), *_records()[1:]]  # the attack's note: no tag
    resources, patient = _record_resources(clean[index])
    validator = ResourceValidator("fast")
    wants = [validator.wants_structure(r) for r in resources]
    claims = [tuple(profiles.claimed_profiles(r)) for r in resources]
    batch = [RecordResources(resources, patient)]
    assert validate_package._records_clean(batch, validator, [wants], [claims]) == [True]


RECORD_DEFECTS = {
    "reference to a resource not in the record": lambda rs: rs[0]["subject"].update(
        reference="Patient/someone-else"
    ),
    "two resources with one id": lambda rs: rs[1].update(
        id=rs[0]["id"], resourceType="Observation"
    ),
    "a resource without an id": lambda rs: rs[0].pop("id"),
    "a conditional reference": lambda rs: rs[0]["subject"].update(reference="Patient?identifier=x"),
    "an escaped reference": lambda rs: rs[0]["subject"].update(reference="Patient/\u00e9"),
}


@pytest.mark.parametrize("defect", sorted(RECORD_DEFECTS))
def test_a_record_defect_is_reported_as_the_detailed_check_reports_it(
    defect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, patient = _record_resources(records.attack_entry())
    RECORD_DEFECTS[defect](resources)
    expected = _detailed(resources, patient, monkeypatch)
    assert expected
    found = validate_record_resources(resources, patient, validator=ResourceValidator("fast"))
    assert found == expected


@st.composite
def mutated_record(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The resources of one record, one of them mutated as above."""
    resources, patient = _record_resources(draw(st.sampled_from(_records())))
    index = draw(st.integers(0, len(resources) - 1))
    resource = resources[index]
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(_node_paths(resource)))
        value = copy.deepcopy(draw(st.sampled_from([*AWKWARD, resources[0]["id"]])))
        if path:
            _at(resource, path[:-1])[path[-1]] = value
    return resources, patient


@settings(MUTATIONS, max_examples=150)
@given(mutated_record())
def test_on_mutated_records_the_gate_reports_what_the_detailed_check_reports(
    record: tuple[list[dict[str, Any]], dict[str, Any] | None],
) -> None:
    resources, patient = record
    with pytest.MonkeyPatch.context() as patch:
        expected = _detailed(resources, patient, patch)
    found = validate_record_resources(resources, patient, validator=ResourceValidator("fast"))
    assert found == expected


@st.composite
def record_batch(draw: st.DrawFn) -> list[RecordResources]:
    """A few records, as the export validates them together: clean ones and mutated ones."""
    clean = st.sampled_from(_records()).map(_record_resources)
    records = draw(st.lists(st.one_of(clean, mutated_record()), min_size=1, max_size=5))
    return [
        RecordResources(
            resources,
            patient,
            Source("in.ndjson", line=line),
            _orjson_texts(resources) if draw(st.booleans()) else None,
        )
        for line, (resources, patient) in enumerate(records, start=1)
    ]


def _orjson_texts(resources: list[dict[str, Any]]) -> list[bytes] | None:
    """What the export's gate hands validate_records along with the resources."""
    try:
        return [orjson.dumps(resource) for resource in resources]
    except TypeError:
        return None


@pytest.mark.parametrize("mode", ["fast", "full"])
@settings(MUTATIONS, max_examples=60)
@given(batch=record_batch())
def test_a_batch_gets_exactly_the_problems_of_its_records_one_by_one(
    mode: str, batch: list[RecordResources]
) -> None:
    one_by_one = ResourceValidator(mode)  # type: ignore[arg-type]
    expected = [
        validate_record_resources(r.resources, r.patient, r.source, validator=one_by_one)
        for r in batch
    ]
    assert validate_records(batch, validator=ResourceValidator(mode)) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("which", ["first", "last"])
@pytest.mark.parametrize("position", [0, -1], ids=["attack", "provenance"])
def test_with_the_texts_given_each_unresolved_reference_is_still_found(
    which: str, position: int
) -> None:
    """The first and the last reference in the text of the record's first resource (the
    attack Observation) and of its last (the Provenance), each pointed at another resource of
    the same type, outside the record."""
    resources, patient = _record_resources(records.plain_note_attack_entry())
    text = orjson.dumps(resources[position])
    found_in_text = references.plain_references(text)
    assert found_in_text is not None
    reference = found_in_text[0 if which == "first" else -1]
    named = b'"reference":"%s"' % reference.encode()
    elsewhere = b'"reference":"%s/elsewhere"' % reference.split("/")[0].encode()
    before, _, after = text.partition(named) if which == "first" else text.rpartition(named)
    resources[position] = orjson.loads(before + elsewhere + after)
    batch = [RecordResources(resources, patient, None, _orjson_texts(resources))]
    [found] = validate_records(batch, validator=ResourceValidator("fast"))
    assert [p.code for p in found] == ["bulk.reference-unresolved"]


def test_in_a_batch_fhir_resources_still_sees_what_only_it_checks() -> None:
    """A resource that claims none of our profiles, with a defect only fhir.resources finds,
    in the first record of a batch: found, as when that record is validated alone."""
    resources, patient = _record_resources(records.plain_note_attack_entry())
    clean, _ = _record_resources(records.plain_note_attack_entry())
    del resources[0]["meta"]["profile"]
    resources[0]["meta"]["versionId"] = "v 1"  # not an R4 id: only fhir.resources says so
    batch = [RecordResources(resources, patient), RecordResources(clean, patient)]
    found = validate_records(batch, validator=ResourceValidator("fast"))
    assert [p.code for p in found[0]] == ["fhir.structure"]
    assert found[1] == []


# --- the screen merged into each profile ------------------------------------------------------

SHIPPED = sorted(profiles.profile_schemas())


def _merged(canonical: str) -> Any:
    terms = rules.project_terminology()
    return compiled_predicate(screen.profile_screen(profiles.profile_schemas()[canonical], terms))


def _profile_and_known_keys(canonical: str, resource: Any) -> bool:
    known_keys = screen._compiled(rules.project_terminology()).known_keys
    return profiles.checker(canonical).is_valid(resource) and known_keys(resource)


@pytest.mark.parametrize("canonical", SHIPPED)
def test_each_merged_screen_is_a_valid_2020_12_schema(canonical: str) -> None:
    terms = rules.project_terminology()
    document = screen.profile_screen(profiles.profile_schemas()[canonical], terms)
    jsonschema.Draft202012Validator.check_schema(document)


def test_the_merged_screens_accept_what_the_converters_make() -> None:
    checked = 0
    for resource in _converted():
        [canonical] = profiles.known_profiles(resource)
        assert _merged(canonical)(resource), resource["id"]
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("canonical", SHIPPED)
def test_on_the_validator_corpus_each_merged_screen_is_its_profile_and_the_screen(
    canonical: str,
) -> None:
    """Every corpus resource against every profile, so each merged screen also meets
    resources of other types and shapes."""
    merged = _merged(canonical)
    for resource in _corpus_resources():
        assert merged(resource) == _profile_and_known_keys(canonical, resource), resource


@pytest.mark.parametrize("code", sorted(DEFECTS))
def test_each_rule_defect_fails_the_compiled_check(code: str) -> None:
    make, damage = DEFECTS[code]
    resource = make()
    assert screen.profile_and_rules_clean(resource)
    damage(resource)
    assert not screen.profile_and_rules_clean(resource)
    if code in screen.IN_SCHEMA:
        for canonical in profiles.known_profiles(resource):
            assert not _merged(canonical)(resource)


@MUTATIONS
@given(mutated())
def test_on_mutations_the_merged_screen_is_its_profile_and_the_screen(
    resource: dict[str, Any],
) -> None:
    for canonical in profiles.known_profiles(resource):
        assert _merged(canonical)(resource) == _profile_and_known_keys(canonical, resource)


@MUTATIONS
@given(mutated())
def test_on_mutations_the_compiled_check_is_profiles_and_rules(resource: dict[str, Any]) -> None:
    expected = profiles.is_clean(resource) and screen.rules_clean(resource)
    assert screen.profile_and_rules_clean(resource) == expected


def test_the_checks_kept_per_profile_list_stay_bounded_and_answer_the_same() -> None:
    """Input may list any profiles: a validate run over many distinct lists keeps at most a
    bounded number of looked-up checks, and each still answers as the two checks."""
    terms = rules.project_terminology()
    converted = _converted()
    for number in range(screen._CACHED_CHECKS + 50):
        resource = copy.deepcopy(converted[number % len(converted)])
        resource["meta"]["profile"].append(f"https://example.org/StructureDefinition/p{number}")
        claimed = tuple(profiles.claimed_profiles(resource))
        expected = profiles.is_clean(resource) and screen.rules_clean(resource)
        assert screen.compiled_check(claimed, terms)(resource) == expected
    assert len(screen._compiled(terms).checks) <= screen._CACHED_CHECKS


# A closed profile that leaves every value open (no patterns, enums or minimums): each check
# the merged screen could drop because a shipped profile already makes it must hold here.
LOOSE_STRING = {"type": "string"}
LOOSE_CODING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"system": LOOSE_STRING, "code": LOOSE_STRING, "display": LOOSE_STRING},
}
LOOSE_CODEABLE_CONCEPT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"coding": {"type": "array", "items": {"$ref": "#/$defs/Coding"}}},
}
LOOSE_QUANTITY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "value": {"type": "number"},
        "unit": LOOSE_STRING,
        "system": LOOSE_STRING,
        "code": LOOSE_STRING,
    },
}
# Also the forms the merged screen follows through: a dependentSchemas of the profile's own, a
# member that is an allOf, an array of prefixItems with no "items".
LOOSE_PROFILE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["resourceType"],
    "dependentSchemas": {"valueQuantity": {"required": ["status"]}},
    "properties": {
        "resourceType": {"const": "Observation"},
        "status": LOOSE_STRING,
        "category": {"type": "array", "prefixItems": [LOOSE_CODEABLE_CONCEPT]},
        "code": LOOSE_CODEABLE_CONCEPT,
        "effectiveDateTime": LOOSE_STRING,
        "valueQuantity": {"allOf": [{"$ref": "#/$defs/Quantity"}, {"required": ["value"]}]},
        "valueInteger": {"type": "integer"},
        "note": {"type": "array", "items": {"type": "array", "items": LOOSE_STRING}},
    },
    "$defs": {"Coding": LOOSE_CODING, "Quantity": LOOSE_QUANTITY},
}
LOOSE_CLEAN = {
    "resourceType": "Observation",
    "status": "final",
    "category": [{"coding": [{"code": "survey"}]}],
    "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]},
    "effectiveDateTime": "2026-02-28",
    "valueQuantity": {"value": 1, "unit": "mg", "system": rules.UCUM, "code": "mg"},
}
LOOSE_DEFECTS: dict[str, Any] = {
    "empty string": lambda r: r["code"]["coding"][0].update(display=""),
    "empty object": lambda r: r["code"]["coding"].append({}),
    "empty array": lambda r: r["code"].update(coding=[]),
    "array in an array": lambda r: r.update(note=[["x"]]),
    "impossible date": lambda r: r.update(effectiveDateTime="2026-02-30"),
    "unknown status": lambda r: r.update(status="done"),
    "unit code without system": lambda r: r["valueQuantity"].pop("system"),
    "unknown UCUM unit": lambda r: r["valueQuantity"].update(code="furlong"),
    "undefined project code": lambda r: r["code"]["coding"].append(
        {"system": rules.PROJECT_CODE_SYSTEMS + "migraine-trigger", "code": "moonlight"}
    ),
    "two values": lambda r: r.update(valueInteger=1),
    "empty string in a prefix item": lambda r: r["category"][0]["coding"][0].update(code=""),
    "empty object after the prefix": lambda r: r["category"].append({}),
}


def _loose_merged() -> Any:
    terms = rules.project_terminology()
    return compiled_predicate(screen.profile_screen(LOOSE_PROFILE, terms))


def test_the_loose_profile_accepts_its_clean_resource() -> None:
    assert compiled_predicate(LOOSE_PROFILE)(LOOSE_CLEAN)
    assert _loose_merged()(LOOSE_CLEAN)


@pytest.mark.parametrize("defect", sorted(LOOSE_DEFECTS))
def test_a_merged_screen_keeps_the_checks_its_profile_leaves_open(defect: str) -> None:
    resource = copy.deepcopy(LOOSE_CLEAN)
    LOOSE_DEFECTS[defect](resource)
    assert compiled_predicate(LOOSE_PROFILE)(resource)
    assert not screen._compiled(rules.project_terminology()).known_keys(resource)
    assert not _loose_merged()(resource)


LOOSE_PROFILE_DEFECTS: dict[str, Any] = {
    "its own dependentSchemas": lambda r: r.pop("status"),
    "the other conjunct of an allOf": lambda r: r["valueQuantity"].pop("value"),
    "a prefix item's schema": lambda r: r["category"][0].update(text="x"),
}


@pytest.mark.parametrize("defect", sorted(LOOSE_PROFILE_DEFECTS))
def test_a_merged_screen_keeps_the_checks_of_its_profile(defect: str) -> None:
    resource = copy.deepcopy(LOOSE_CLEAN)
    LOOSE_PROFILE_DEFECTS[defect](resource)
    assert not compiled_predicate(LOOSE_PROFILE)(resource)
    assert not _loose_merged()(resource)


_GENERIC_SCREENS = {screen._screen_ref(name) for name in ("object", "member_object", "value")}


def _generic_screen_uses(node: Any) -> int:
    if isinstance(node, dict):
        own = 1 if node.get("$ref") in _GENERIC_SCREENS else 0
        return own + sum(_generic_screen_uses(value) for value in node.values())
    if isinstance(node, list):
        return sum(_generic_screen_uses(item) for item in node)
    return 0


@pytest.mark.parametrize("canonical", SHIPPED)
def test_each_merged_screen_follows_its_profile_to_the_leaves(canonical: str) -> None:
    """Where the merged screen cannot follow a profile, it checks the member twice (the
    profile's schema and the screen's generic object walk): sound, but it doubled the time of
    the profiles that fell back to it at the root."""
    terms = rules.project_terminology()
    document = screen.profile_screen(profiles.profile_schemas()[canonical], terms)
    own = {key: value for key, value in document.items() if key != "$defs"}
    followed = {
        name: body
        for name, body in document["$defs"].items()
        if not name.startswith(screen._SCREEN_PREFIX)
    }
    assert _generic_screen_uses(own) + _generic_screen_uses(followed) == 0


def test_the_compiled_check_looks_for_periods_only_where_each_profile_allows_one() -> None:
    """A resource its merged screen accepts has only the profile's top-level elements, so
    per-1 is checked on the Period elements among those, not on every key."""
    periods = {
        canonical.rsplit("/", 1)[-1]: screen._period_keys(schema)
        for canonical, schema in profiles.profile_schemas().items()
    }
    assert periods == {
        "acute-medication-statement": ("effectivePeriod",),
        "diary-lifestyle-observation": (),
        "headache-absent-symptom": (),
        "headache-associated-symptom": ("effectivePeriod",),
        "headache-attack": ("effectivePeriod",),
        "headache-free-day": (),
        "headache-outcome-window": ("effectivePeriod",),
        "ketamine-administration": ("effectivePeriod",),
        "ketamine-adverse-event": (),
        "ketamine-session-encounter": ("period",),
        "ketamine-session-indication": (),
        "ketamine-session-procedure": ("performedPeriod",),
        "migrainefhir-patient": (),
        "migrainefhir-provenance": (),
        "session-pain-score": (),
        "session-vital-sign": (),
    }


def test_after_a_merged_screen_only_the_comparison_rules_that_can_fire_are_run() -> None:
    """obs-7 needs a component whose code is the Observation's own: no shipped profile allows
    one (their codes for the two are disjoint)."""
    found = {
        canonical.rsplit("/", 1)[-1]: [check.__name__ for check in screen._profile_rules(schema)]
        for canonical, schema in profiles.profile_schemas().items()
    }
    observation = ["period_order"]
    assert found == {
        "acute-medication-statement": [],
        "diary-lifestyle-observation": observation,
        "headache-absent-symptom": observation,
        "headache-associated-symptom": observation,
        "headache-attack": observation,
        "headache-free-day": observation,
        "headache-outcome-window": observation,
        "ketamine-administration": [],
        "ketamine-adverse-event": [],
        "ketamine-session-encounter": [],
        "ketamine-session-indication": [],
        "ketamine-session-procedure": [],
        "migrainefhir-patient": [],
        "migrainefhir-provenance": ["period_order"],
        "session-pain-score": observation,
        "session-vital-sign": observation,
    }


def _coded(codes: Any, component_codes: Any) -> dict[str, Any]:
    """A closed Observation profile: code.coding[*].code and component[*].code.coding[*].code
    as given (None: no bound)."""

    def codings(code: Any) -> dict[str, Any]:
        items = {"properties": {"code": code}} if code is not None else {}
        return {"properties": {"coding": {"items": items}}}

    return {
        "additionalProperties": False,
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"const": "Observation"},
            "code": codings(codes),
            "component": {"items": {"properties": {"code": codings(component_codes)}}},
        },
    }


@pytest.mark.parametrize(
    ("codes", "component_codes", "can_fire"),
    [
        ({"const": "a"}, {"enum": ["b", "c"]}, False),
        ({"const": "a"}, {"enum": ["b", "a"]}, True),
        (None, {"enum": ["b"]}, True),
        ({"const": "a"}, None, True),
        ({"allOf": [{"enum": ["a", "b"]}, {"enum": ["a"]}]}, {"const": "b"}, False),
        ({"$ref": "#/$defs/code"}, {"const": "b"}, True),
        ({"const": 1}, {"const": "1"}, True),
    ],
    ids=["disjoint", "shared", "open-own", "open-component", "allOf", "ref", "not-strings"],
)
def test_obs_7_is_skipped_only_where_the_profile_keeps_the_codes_apart(
    codes: Any, component_codes: Any, can_fire: bool
) -> None:
    profile = _coded(codes, component_codes)
    profile["$defs"] = {"code": {"enum": ["a", "b"]}}
    assert screen._obs_7_can_fire(profile) is can_fire


def test_obs_7_is_skipped_where_the_profile_allows_no_component() -> None:
    profile = _coded(None, None)
    del profile["properties"]["component"]
    assert not screen._obs_7_can_fire(profile)


@pytest.mark.parametrize(
    ("array", "bound"),
    [
        ({"prefixItems": [{"const": "a"}], "items": {"const": "b"}}, {"a", "b"}),
        ({"prefixItems": [{"const": "a"}], "items": False}, {"a"}),
        ({"prefixItems": [{"const": "a"}], "maxItems": 1}, {"a"}),
        ({"prefixItems": [{"const": "a"}]}, None),
        ({"prefixItems": [{"const": "a"}], "items": {}}, None),
        ({"contains": {"const": "a"}}, None),
    ],
    ids=["items", "no-more", "max-items", "more-unbounded", "items-unbounded", "contains"],
)
def test_each_item_of_an_array_is_bounded_by_all_the_schemas_it_may_meet(
    array: dict[str, Any], bound: set[str] | None
) -> None:
    found = screen._allowed_strings([array], ("*",), {})
    assert found == (frozenset(bound) if bound is not None else None)


def test_an_open_profile_runs_every_comparison_rule_of_its_type() -> None:
    assert screen._profile_rules({"properties": {"resourceType": {"const": "Observation"}}}) is None


def test_an_open_profile_leaves_the_periods_to_be_looked_for_under_every_key() -> None:
    assert screen._period_keys({"type": "object", "properties": {"effectivePeriod": {}}}) is None
    assert (
        screen._period_keys(
            {
                "additionalProperties": False,
                "properties": {"effectivePeriod": {}},
                "patternProperties": {"Period$": {}},
            }
        )
        is None
    )
