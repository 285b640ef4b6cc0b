import math

import pandas as pd
import pytest

from modelyard.errors import InvalidInput
from modelyard.registry.schema import read_input_schema
from modelyard.scoring.validation import MAX_LISTED, check, listed, prepare
from modelyard.tabular import Table
from tests import factories

SCHEMA = read_input_schema(factories.classifier())
STRICT = read_input_schema(factories.classifier(handle_unknown="error"))


def problems(table: Table, schema=SCHEMA) -> list[dict]:
    with pytest.raises(InvalidInput) as caught:
        prepare(table, schema)
    return caught.value.details


def test_valid_records_become_a_typed_frame() -> None:
    prepared = prepare(Table.from_records(factories.records(3)), SCHEMA)
    assert list(prepared.frame.columns) == ["age", "income", "color"]
    assert prepared.frame["age"].dtype == float
    assert pd.api.types.is_string_dtype(prepared.frame["color"])
    assert prepared.warnings == []


@pytest.mark.parametrize("from_records", [True, False])
def test_missing_field_names_row_and_field(from_records: bool) -> None:
    records = factories.records(3)
    del records[1]["income"]
    table = Table.from_records(records) if from_records else Table(frame=pd.DataFrame(records[1:2]))
    assert problems(table) == [
        {
            "row": 1 if from_records else None,
            "field": "income",
            "code": "missing_feature",
            "message": "no field 'income' in the input",
        }
    ]


def test_json_types_are_strict() -> None:
    records = factories.records(3)
    records[0]["age"] = "41"
    records[2]["color"] = 7
    records[1]["age"] = True
    found = {(item["row"], item["field"], item["code"]) for item in problems(Table.from_records(records))}
    assert found == {(0, "age", "wrong_type"), (1, "age", "wrong_type"), (2, "color", "wrong_type")}


def test_csv_text_is_parsed_by_the_schema() -> None:
    text = pd.DataFrame({"age": ["41", "x"], "income": ["1.5", "2"], "color": ["red", "blue"]})
    details = problems(Table(frame=text, text_values=True))
    assert [(d["row"], d["field"], d["code"], d["value"]) for d in details] == [(1, "age", "wrong_type", "x")]


def test_null_is_refused_unless_imputed() -> None:
    records = factories.records(2)
    records[1]["income"] = None
    assert problems(Table.from_records(records))[0]["code"] == "missing_value"
    imputed = read_input_schema(factories.imputing_classifier())
    prepared = prepare(Table.from_records([{"age": 30, "income": None}]), imputed)
    assert math.isnan(prepared.frame["income"][0])


def test_unknown_category_warns_or_fails_as_the_encoder_does() -> None:
    records = factories.records(2)
    records[1]["color"] = "purple"
    prepared = prepare(Table.from_records(records), SCHEMA)
    assert [(w["row"], w["field"], w["code"], w["value"]) for w in prepared.warnings] == [
        (1, "color", "unknown_category", "purple")
    ]
    assert problems(Table.from_records(records), STRICT)[0]["code"] == "unknown_category"


def test_problem_list_is_capped_but_counted() -> None:
    records = [{"age": "bad", "income": 1.0, "color": "red"}] * (MAX_LISTED + 50)
    with pytest.raises(InvalidInput) as caught:
        prepare(Table.from_records(records), SCHEMA)
    assert len(caught.value.details) == MAX_LISTED
    assert caught.value.message.startswith(f"{MAX_LISTED + 50} problem(s)")


@pytest.mark.parametrize(
    ("value", "shown", "got"),
    [
        ("41", "41", "a string ('41')"),
        ("x" * 50, "x" * 50, f"a string ({'x' * 40!r})"),
        (True, True, "a boolean"),
        ([1, 2], "[1, 2]", "an array"),
        ({"years": 41}, "{'years': 41}", "an object"),
        (float("inf"), "inf", "infinity"),
        (-float("inf"), "-inf", "infinity"),
    ],
)
def test_a_wrong_number_says_what_it_got(value, shown, got) -> None:
    records = factories.records(2)
    records[1]["age"] = value
    assert problems(Table.from_records(records)) == [
        {
            "row": 1,
            "field": "age",
            "code": "wrong_type",
            "value": shown,
            "message": f"expected a finite number, got {got}",
        }
    ]


@pytest.mark.parametrize(("value", "got"), [(7, "a number"), (2.5, "a number"), (False, "a boolean")])
def test_a_wrong_category_says_what_it_got(value, got) -> None:
    records = factories.records(3)
    records[2]["color"] = value
    [problem] = problems(Table.from_records(records))
    assert problem == {
        "row": 2,
        "field": "color",
        "code": "wrong_type",
        "value": value,
        "message": f"expected a string, got {got}",
    }


def test_csv_text_that_is_not_a_finite_number() -> None:
    text = pd.DataFrame(
        {"age": ["41", "inf", "nan", None, "1e3"], "income": ["1"] * 5, "color": ["red"] * 5}
    )  # an empty CSV cell is read as null
    details = problems(Table(frame=text, text_values=True))
    assert [(d["row"], d["code"], d.get("value"), d["message"]) for d in details] == [
        (1, "wrong_type", "inf", "expected a finite number, got a string ('inf')"),
        (2, "wrong_type", "nan", "expected a finite number, got a string ('nan')"),
        (3, "missing_value", None, "the value is missing and this model has no imputer for it"),
    ]
    prepared = prepare(Table(frame=text.drop([1, 2, 3]), text_values=True), SCHEMA)
    assert prepared.frame["age"].tolist() == [41.0, 1000.0]


def test_the_first_problem_is_in_the_message() -> None:
    records = factories.records(3)
    records[2]["age"] = "old"
    del records[1]["color"]
    with pytest.raises(InvalidInput) as caught:
        prepare(Table.from_records(records), SCHEMA)
    assert caught.value.message == (
        "2 problem(s) in the input; first: row 2, field 'age': expected a finite number, got a string ('old')"
    )
    assert [(d["row"], d["field"], d["code"]) for d in caught.value.details] == [
        (2, "age", "wrong_type"),
        (1, "color", "missing_feature"),
    ]


def test_a_column_missing_from_a_file_is_reported_once() -> None:
    frame = factories.frame(4).drop(columns=["income"])
    with pytest.raises(InvalidInput) as caught:
        prepare(Table(frame=frame), SCHEMA)
    assert caught.value.message == (
        "1 problem(s) in the input; first: field 'income': no field 'income' in the input"
    )


def test_check_marks_bad_rows_and_keeps_the_rest() -> None:
    records = factories.records(4)
    records[0]["age"] = "x"
    records[3]["income"] = None
    checked = check(Table.from_records(records), SCHEMA)
    assert checked.bad_rows().tolist() == [True, False, False, True]
    assert checked.column_problems == []
    assert checked.frame["income"].iloc[1] == records[1]["income"]
    missing = check(Table(frame=factories.frame(2).drop(columns=["age"])), SCHEMA)
    assert missing.bad_rows().tolist() == [True, True] and len(missing.column_problems) == 1


def test_listed_caps_items_and_counts_all() -> None:
    records = [{"age": "x", "income": None, "color": "red"}] * 3
    checked = check(Table.from_records(records), SCHEMA)
    items, count = listed(checked.problems, limit=4)
    assert count == 6 and len(items) == 4
    assert [(i["row"], i["code"]) for i in items] == [
        (0, "wrong_type"),
        (1, "wrong_type"),
        (2, "wrong_type"),
        (0, "missing_value"),
    ]


def test_unknown_category_messages() -> None:
    records = factories.records(2)
    records[0]["color"] = "purple"
    [warning] = prepare(Table.from_records(records), SCHEMA).warnings
    assert warning == {
        "row": 0,
        "field": "color",
        "code": "unknown_category",
        "value": "purple",
        "message": "a category the model was not fitted on; scored as the encoder allows",
    }
    [problem] = problems(Table.from_records(records), STRICT)
    assert problem == {
        "row": 0,
        "field": "color",
        "code": "unknown_category",
        "value": "purple",
        "message": (
            "the model's encoder refuses categories it was not fitted on; known: 'blue', 'green', 'red'"
        ),
    }
