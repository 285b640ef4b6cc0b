import math

import pandas as pd
import pytest

from modelyard.errors import InvalidInput
from modelyard.schema import read_input_schema
from modelyard.tabular import Table
from modelyard.validation import MAX_LISTED, prepare
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
