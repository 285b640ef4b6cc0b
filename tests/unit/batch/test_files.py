"""Scoring whole files in chunks: outputs equal the model's own answers, bad rows set aside, nothing
half-written left behind."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.batch.files import score_chunks, score_file
from modelyard.errors import InvalidInput
from modelyard.registry.store import Registry
from modelyard.scoring.predict import LoadedModel
from modelyard.serving import load as loading
from modelyard.tabular import read_chunks, write_table
from tests import factories


@pytest.fixture
def model(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    artifact = tmp_path_factory.mktemp("artifact") / "m.joblib"
    registry.register(factories.save(factories.classifier(), artifact), "churn")
    return loading.load(registry.get("churn", 1), n_jobs=1)


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry(tmp_path_factory.mktemp("registry"))


def customers(rows: int) -> pd.DataFrame:
    data = factories.frame(rows, seed=9)
    data.insert(0, "customer_id", [f"C{i:04d}" for i in range(rows)])
    return data


def read_back(path: Path, fmt: str) -> pd.DataFrame:
    chunks = list(read_chunks(path, fmt, chunk_rows=1 << 30))
    return chunks[0].table.frame


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_output_equals_the_model_on_every_row(model: LoadedModel, tmp_path: Path, fmt: str) -> None:
    data = customers(230)
    source = tmp_path / f"in.{fmt}"
    source.write_bytes(write_table(data, fmt))
    reports = []
    result = score_file(
        model,
        source,
        fmt,
        tmp_path / f"out.{fmt}",
        tmp_path / "errors.jsonl",
        chunk_rows=50,
        on_progress=reports.append,
    )
    assert (result.rows_done, result.rows_failed) == (230, 0)
    assert [r.rows_done for r in reports] == [50, 100, 150, 200, 230]
    assert reports[-1].fraction == 1.0

    scored = read_back(tmp_path / f"out.{fmt}", fmt)
    assert list(scored.columns) == [
        *data.columns,
        "prediction",
        "probability_no",
        "probability_yes",
        "model",
        "model_version",
    ]
    features = data[["age", "income", "color"]]
    assert scored["customer_id"].tolist() == data["customer_id"].tolist()
    assert scored["prediction"].tolist() == model.estimator.predict(features).tolist()
    probabilities = scored[["probability_no", "probability_yes"]].apply(pd.to_numeric).to_numpy()
    assert np.array_equal(probabilities, model.estimator.predict_proba(features))
    assert set(scored["model"]) == {"churn"} and set(pd.to_numeric(scored["model_version"])) == {1}
    assert (tmp_path / "errors.jsonl").read_text() == ""


def test_bad_rows_go_to_the_errors_file_with_their_file_row(model: LoadedModel, tmp_path: Path) -> None:
    lines = ["customer_id,age,income,color", "a,30,40.5,red", "b,forty,40.5,red", "c,30", "d,50,1e999,"]
    lines += [f"e{i},{20 + i},50.0,blue" for i in range(6)]
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    result = score_file(model, source, "csv", tmp_path / "out.csv", tmp_path / "err.jsonl", chunk_rows=3)

    assert (result.rows_done, result.rows_failed) == (7, 3)
    errors = [json.loads(line) for line in (tmp_path / "err.jsonl").read_text().splitlines()]
    assert [(e["row"], e["line"], e["field"], e["code"]) for e in errors] == [
        (1, 3, "age", "wrong_type"),
        (2, 4, None, "malformed_row"),
        (3, 5, "income", "wrong_type"),
    ]
    assert errors[0]["value"] == "forty" and errors[1]["value"] == "c,30"
    assert errors[1]["message"] == "expected 4 fields, found 2"
    assert [p["code"] for p in errors[2]["other_problems"]] == ["missing_value"]
    scored = read_back(tmp_path / "out.csv", "csv")
    assert scored["customer_id"].tolist() == ["a", *(f"e{i}" for i in range(6))]


def test_fail_fast_stops_at_the_first_bad_row_and_leaves_nothing(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("age,income,color\n30,1,red\n31,2,red\n32,x,red\n")
    with pytest.raises(InvalidInput) as caught:
        score_file(model, source, "csv", tmp_path / "out.csv", tmp_path / "err.jsonl", fail_fast=True)
    assert "row 2 (line 4), field 'income'" in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_stop_in_the_middle_leaves_no_output(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(write_table(customers(100), "csv"))

    def stop_after_the_first_chunk(progress: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_file(
            model,
            source,
            "csv",
            tmp_path / "out.csv",
            tmp_path / "err.jsonl",
            chunk_rows=10,
            on_progress=stop_after_the_first_chunk,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_missing_column_fails_the_file(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(write_table(customers(5).drop(columns="income"), "csv"))
    with pytest.raises(InvalidInput, match="no field 'income'"):
        score_file(model, source, "csv", tmp_path / "out.csv", tmp_path / "err.jsonl")


def test_output_format_can_differ_and_an_empty_file_gives_a_header(
    model: LoadedModel, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(write_table(customers(20), "csv"))
    score_file(model, source, "csv", tmp_path / "out.parquet", tmp_path / "err.jsonl", "parquet")
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 20

    empty = tmp_path / "empty.csv"
    empty.write_text("customer_id,age,income,color\n")
    result = score_file(model, empty, "csv", tmp_path / "empty.out.csv", tmp_path / "e.jsonl")
    assert result.rows_total == 0
    assert (tmp_path / "empty.out.csv").read_text().startswith("customer_id,age,income,color,prediction")


def test_what_a_run_reports_as_it_goes_and_at_the_end(model: LoadedModel, tmp_path: Path) -> None:
    lines = ["customer_id,age,income,color", "a,30,40.5,purple", "b,x,40.5,purple", "c,31,41.0,red"]
    lines += ["d,32,42.0,purple", "e,y,1.0,red"]
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    reports = []
    result = score_file(
        model,
        source,
        "csv",
        output=tmp_path / "out.parquet",
        errors_output=tmp_path / "err.jsonl",
        output_format="parquet",
        chunk_rows=3,
        on_progress=reports.append,
    )
    purple = {"field": "color", "code": "unknown_category"}
    assert [(r.rows_done, r.rows_failed, r.rows_total) for r in reports] == [(2, 1, None), (3, 2, None)]
    assert [r.warnings for r in reports] == [[{**purple, "count": 1}], [{**purple, "count": 2}]]
    assert all(isinstance(r.chunk_seconds, float) and 0 <= r.chunk_seconds < 60 for r in reports)
    assert (result.rows_done, result.rows_failed, result.rows_total) == (3, 2, 5)
    assert (result.output, result.errors_output) == (
        str(tmp_path / "out.parquet"),
        str(tmp_path / "err.jsonl"),
    )
    assert 0 < result.seconds < 60 and result.warnings == [{**purple, "count": 2}]  # bad rows do not count
    assert pd.read_parquet(tmp_path / "out.parquet")["model_version"].dtype == np.int64
    parquet, reports = tmp_path / "in.parquet", []
    parquet.write_bytes(write_table(customers(7), "parquet"))
    score_file(
        model, parquet, "parquet", tmp_path / "p.csv", tmp_path / "p.jsonl", "csv", 3, False, reports.append
    )
    assert [r.rows_total for r in reports] == [7, 7, 7]  # Parquet says its size up front


def test_a_file_with_no_valid_row_fails_with_its_first_problem(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("age,income,color\nx,1,red\n31,y,red\n")
    with pytest.raises(InvalidInput) as caught:
        score_file(model, source, "csv", tmp_path / "out.csv", tmp_path / "err.jsonl", chunk_rows=1)
    assert caught.value.message == (
        "no row could be scored: all 2 rows are invalid; the first, row 0 (line 2), field 'age': "
        "expected a finite number, got a string ('x')"
    )
    assert [(d["row"], d["line"], d["field"], d["code"]) for d in caught.value.details] == [
        (0, 2, "age", "wrong_type")
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["err.jsonl", "in.csv"]  # no output, but why
    errors = [json.loads(line) for line in (tmp_path / "err.jsonl").read_text().splitlines()]
    assert [(e["row"], e["line"], e["field"]) for e in errors] == [(0, 2, "age"), (1, 3, "income")]


def test_a_part_with_no_valid_row_is_not_a_failure(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("age,income,color\nx,1,red\n")
    with source.open("rb") as handle:
        result = score_chunks(
            model,
            read_chunks(handle, "csv", 10),
            tmp_path / "o.csv",
            tmp_path / "e.jsonl",
            "csv",
            whole_file=False,
        )
    assert (result.rows_done, result.rows_failed) == (0, 1)


def test_fail_fast_and_a_wrong_column_say_what_stopped_them(model: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("age,income,color\n30,1,red\n32,x,red\n")
    with pytest.raises(InvalidInput) as caught:
        score_file(model, source, "csv", tmp_path / "out.csv", tmp_path / "err.jsonl", fail_fast=True)
    assert caught.value.message == (
        "row 1 (line 3), field 'income': expected a finite number, got a string ('x') (fail_fast is on: "
        "the first bad row stops the job)"
    )
    assert [(d["row"], d["line"], d["field"]) for d in caught.value.details] == [(1, 3, "income")]
    source.write_text("age,income\n30,1\n")
    with pytest.raises(InvalidInput) as missing:
        score_file(model, source, "csv", tmp_path / "out.csv", tmp_path / "err.jsonl")
    assert missing.value.message == "the file cannot be scored: no field 'color' in the input"
    assert [(d["field"], d["code"]) for d in missing.value.details] == [("color", "missing_feature")]


def test_file_chunks_are_scored_by_the_bulk_runtime(model: LoadedModel, tmp_path: Path) -> None:
    class Counting:
        name = "counting"

        def __init__(self, runtime) -> None:
            self.runtime, self.rows = runtime, 0

        def predict(self, features):
            self.rows += len(features)
            return self.runtime.predict(features)

    bulk = Counting(model.runtime)
    served = replace(model, bulk=bulk)
    source = tmp_path / "in.csv"
    source.write_bytes(write_table(customers(12), "csv"))
    score_file(served, source, "csv", tmp_path / "out.csv", tmp_path / "err.jsonl", chunk_rows=5)
    assert bulk.rows == 12
