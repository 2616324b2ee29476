"""CSV cell forms (records.md "CSV forms"): one row -> one record in the contract's JSON shape."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from migrainefhir.input.csvform import (
    ADVERSE_EFFECT_FORM,
    COLUMNS,
    IDENTIFIER_FORM,
    MEDICATION_FORM,
    VITALS_FORM,
    CellError,
    CellNote,
    Column,
    Kind,
    NestedForm,
    RowShaper,
    parse_boolean,
    parse_number,
)


def convert(record_type: str, **cells: str) -> tuple[dict[str, object], list[CellError]]:
    """One row of a CSV whose header is record_type plus the given columns."""
    shaper = RowShaper(["record_type", *cells])
    return shaper.to_record([record_type, *cells.values()])


def converted(record_type: str, **cells: str) -> dict[str, object]:
    data, errors = convert(record_type, **cells)
    assert errors == []
    return data


# --- scalars -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("0", 0),
        ("12", 12),
        ("-3", -3),
        ("007", 7),
        ("2.5", 2.5),
        ("-0.25", -0.25),
        ("1e3", 1000.0),
        ("1.5E-2", 0.015),
    ],
)
def test_numbers_are_read_as_json_numbers(cell: str, value: float) -> None:
    result = parse_number(cell)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize(
    "cell",
    [" 5", "5 ", "+5", "1_000", "1,5", ".5", "5.", "nan", "inf", "1e999", "٣", "five", "0x10"],
)
def test_cells_that_are_not_json_numbers_stay_strings(cell: str) -> None:
    assert parse_number(cell) == cell


def test_integer_too_long_for_int_stays_a_string() -> None:
    assert parse_number("9" * 5000) == "9" * 5000


@pytest.mark.parametrize(("cell", "value"), [("true", True), ("false", False)])
def test_booleans(cell: str, value: bool) -> None:
    assert parse_boolean(cell) is value


@pytest.mark.parametrize("cell", ["TRUE", "True", "1", "yes", "false "])
def test_other_boolean_spellings_stay_strings(cell: str) -> None:
    assert parse_boolean(cell) == cell


def test_diary_scalar_columns() -> None:
    data = converted(
        "diary-entry",
        headache="true",
        aura="false",
        severity="7",
        sleep_hours="6.5",
        stress_level="x",
        notes="12",
    )
    assert data == {
        "record_type": "diary-entry",
        "headache": True,
        "aura": False,
        "severity": 7,
        "sleep_hours": 6.5,
        "stress_level": "x",  # stays a string: the schema layer reports input.type here
        "notes": "12",  # free text is never converted
    }


def test_integer_column_with_a_fraction_is_left_for_the_schema() -> None:
    assert converted("diary-entry", severity="6.5")["severity"] == 6.5


def test_empty_cells_are_absent_fields() -> None:
    assert converted("diary-entry", entry_id="", severity="", symptoms="") == {
        "record_type": "diary-entry"
    }


def test_unknown_columns_pass_through_as_strings() -> None:
    assert converted("diary-entry", mood="5") == {"record_type": "diary-entry", "mood": "5"}


# --- lists ---------------------------------------------------------------------------------


def test_list_fields_are_semicolon_separated() -> None:
    data = converted(
        "diary-entry",
        symptoms="nausea;photophobia",
        triggers="stress",
        aura_symptoms="visual-blind-spot;numbness",
    )
    assert data["symptoms"] == ["nausea", "photophobia"]
    assert data["triggers"] == ["stress"]
    assert data["aura_symptoms"] == ["visual-blind-spot", "numbness"]


def test_list_items_lose_surrounding_spaces_but_empty_items_stay() -> None:
    # an empty item is not smoothed away: the schema reports it with its index; a space after
    # `;` is a spreadsheet habit, undone with a warning (read.csv-trimmed)
    notes: list[CellNote] = []
    shaper = RowShaper(["record_type", "symptoms"])
    data, _ = shaper.to_record(["diary-entry", "nausea;; vomiting"], notes)
    assert data["symptoms"] == ["nausea", "", "vomiting"]
    assert [(n.code, n.path) for n in notes] == [("read.csv-trimmed", "$.symptoms[2]")]


def test_patient_given_names() -> None:
    assert converted("patient", given="Ann;Marie")["given"] == ["Ann", "Marie"]


# --- nested forms --------------------------------------------------------------------------


def test_medications() -> None:
    data = converted("diary-entry", medications="sumatriptan:50:complete;ibuprofen:400.5:partial")
    assert data["medications"] == [
        {"drug": "sumatriptan", "dose_mg": 50, "relief": "complete"},
        {"drug": "ibuprofen", "dose_mg": 400.5, "relief": "partial"},
    ]


@pytest.mark.parametrize(
    ("cell", "item"),
    [
        ("ibuprofen::partial", {"drug": "ibuprofen", "relief": "partial"}),
        ("ibuprofen:400:", {"drug": "ibuprofen", "dose_mg": 400}),
        (":400:none", {"dose_mg": 400, "relief": "none"}),
        ("::", {}),
        ("ibuprofen:lots:", {"drug": "ibuprofen", "dose_mg": "lots"}),
    ],
)
def test_medication_empty_parts_are_absent_fields(cell: str, item: dict[str, object]) -> None:
    assert converted("diary-entry", medications=cell)["medications"] == [item]


@pytest.mark.parametrize(
    ("cell", "index", "parts"),
    [
        ("ibuprofen", 0, 1),
        ("ibuprofen:400", 0, 2),
        ("sumatriptan:50:complete;ibuprofen:400:partial:x", 1, 4),
        ("sumatriptan:50:complete;", 1, 1),
    ],
)
def test_medication_with_the_wrong_number_of_parts(cell: str, index: int, parts: int) -> None:
    data, errors = convert("diary-entry", medications=cell)
    assert errors == [
        CellError(
            f"$.medications[{index}]",
            f"medications item {index + 1} has {parts} part(s) separated by ':'; the CSV form "
            "is drug:dose_mg:relief (3 parts, empty parts allowed), items separated by ';'",
        )
    ]
    assert data["medications"] == cell  # kept as read; the record is rejected for the cell


def test_every_bad_item_of_a_cell_is_reported() -> None:
    _, errors = convert("diary-entry", medications="a;b:1:none;c")
    assert [error.path for error in errors] == ["$.medications[0]", "$.medications[2]"]


def test_vitals_times_keep_their_colons() -> None:
    cell = "2026-03-01T09:00:00+01:00|pre|72|120|80|98|14;2026-03-01T09:30:00Z|during|88.5||||"
    assert converted("ketamine-session", vitals=cell)["vitals"] == [
        {
            "time": "2026-03-01T09:00:00+01:00",
            "phase": "pre",
            "heart_rate": 72,
            "systolic": 120,
            "diastolic": 80,
            "spo2": 98,
            "respiratory_rate": 14,
        },
        {"time": "2026-03-01T09:30:00Z", "phase": "during", "heart_rate": 88.5},
    ]


def test_vitals_with_the_wrong_number_of_parts() -> None:
    cell = "2026-03-01T09:00:00+01:00|pre|72|120|80|98|14;2026-03-01T09:30:00+01:00|during|88"
    _, errors = convert("ketamine-session", vitals=cell)
    assert [(error.path, error.message) for error in errors] == [
        (
            "$.vitals[1]",
            "vitals item 2 has 3 part(s) separated by '|'; the CSV form is "
            "time|phase|heart_rate|systolic|diastolic|spo2|respiratory_rate "
            "(7 parts, empty parts allowed), items separated by ';'",
        )
    ]


def test_adverse_effects() -> None:
    data = converted("ketamine-session", adverse_effects="dissociation:moderate;nausea:")
    assert data["adverse_effects"] == [
        {"effect": "dissociation", "severity": "moderate"},
        {"effect": "nausea"},
    ]


def test_adverse_effect_with_the_wrong_number_of_parts() -> None:
    _, errors = convert("ketamine-session", adverse_effects="nausea;dizziness:mild:brief")
    assert [error.path for error in errors] == ["$.adverse_effects[0]", "$.adverse_effects[1]"]


def test_identifier_systems_keep_their_colons() -> None:
    cell = "https://ehr.example.org/fhir/sid/mrn|MRN-1;urn:oid:1.2.36.146.595.217.0.1|12345"
    assert converted("patient", identifiers=cell)["identifiers"] == [
        {"system": "https://ehr.example.org/fhir/sid/mrn", "value": "MRN-1"},
        {"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"},
    ]


def test_identifier_numbers_stay_strings() -> None:
    assert converted("patient", identifiers="urn:x|007")["identifiers"] == [
        {"system": "urn:x", "value": "007"}
    ]


@pytest.mark.parametrize("cell", ["https://ehr.example.org/mrn", "urn:x|1|2"])
def test_identifier_with_the_wrong_number_of_parts(cell: str) -> None:
    _, errors = convert("patient", identifiers=cell)
    assert [error.path for error in errors] == ["$.identifiers[0]"]


# --- record types --------------------------------------------------------------------------


def test_default_record_type_fills_an_empty_record_type_cell() -> None:
    shaper = RowShaper(["record_type", "severity"], default_record_type="diary-entry")
    assert shaper.to_record(["", "5"]) == ({"severity": 5, "record_type": "diary-entry"}, [])


def test_record_type_cell_wins_over_the_default() -> None:
    shaper = RowShaper(["record_type", "session_number"], default_record_type="diary-entry")
    assert shaper.to_record(["ketamine-session", "3"]) == (
        {"record_type": "ketamine-session", "session_number": 3},
        [],
    )


def test_rows_of_different_record_types_in_one_file_convert_by_their_own_table() -> None:
    shaper = RowShaper(["record_type", "severity", "dose_mg"])
    assert shaper.to_record(["diary-entry", "5", "5"])[0] == {
        "record_type": "diary-entry",
        "severity": 5,
        "dose_mg": "5",
    }
    assert shaper.to_record(["ketamine-session", "5", "5"])[0] == {
        "record_type": "ketamine-session",
        "severity": "5",
        "dose_mg": 5,
    }


def test_unknown_record_type_converts_nothing() -> None:
    shaper = RowShaper(["record_type", "severity", "medications"])
    assert shaper.to_record(["diary", "5", "x"]) == (
        {"record_type": "diary", "severity": "5", "medications": "x"},
        [],
    )


# --- the tables agree with the shipped JSON Schemas ----------------------------------------

# Item fields the contract gives no CSV form (records.md): JSON / NDJSON only.
NO_CSV_FORM = {
    MEDICATION_FORM: {"drug_text", "taken_at", "route"},
    ADVERSE_EFFECT_FORM: {"text", "serious", "outcome"},
    VITALS_FORM: set(),
    IDENTIFIER_FORM: {"type", "assigner"},
}

SCALAR_TYPES = {
    Kind.STRING: "string",
    Kind.INTEGER: "integer",
    Kind.NUMBER: "number",
    Kind.BOOLEAN: "boolean",
}


def load_schema(record_type: str) -> dict[str, Any]:
    text = (
        resources.files("migrainefhir")
        .joinpath("schemas", f"{record_type}.schema.json")
        .read_text(encoding="utf-8")
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local `#/$defs/...` references (the only kind our schemas use)."""
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/"), ref
        node = {**schema["$defs"][ref.removeprefix("#/$defs/")], **node}
        del node["$ref"]
    return node


def types_of(node: dict[str, Any]) -> set[str]:
    if "const" in node:
        return {"string"} if isinstance(node["const"], str) else {"other"}
    declared = node.get("type")
    return set(declared) if isinstance(declared, list) else {declared}


def check_column(schema: dict[str, Any], name: str, node: dict[str, Any], form: Column) -> None:
    node = resolve(schema, node)
    if isinstance(form, NestedForm):
        assert types_of(node) == {"array"}, name
        item = resolve(schema, node["items"])
        properties = item["properties"]
        part_names = {part for part, _ in form.parts}
        assert set(properties) - part_names == NO_CSV_FORM[form], name
        for part, kind in form.parts:
            assert types_of(resolve(schema, properties[part])) == {SCALAR_TYPES[kind]}, (name, part)
    elif form is Kind.STRING_LIST:
        assert "array" in types_of(node), name
        assert types_of(resolve(schema, node["items"])) == {"string"}, name
    else:
        assert types_of(node) == {SCALAR_TYPES[form]}, name


@pytest.mark.parametrize("record_type", sorted(COLUMNS))
def test_column_table_agrees_with_the_schema(record_type: str) -> None:
    schema = load_schema(record_type)
    table = COLUMNS[record_type]
    assert set(table) == set(schema["properties"])
    for name, form in table.items():
        check_column(schema, name, schema["properties"][name], form)
