from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelyard.errors import InvalidInput, PredictionFailed
from modelyard.registry.artifacts import describe, set_n_jobs
from modelyard.registry.schema import InputSchema
from modelyard.scoring.predict import LoadedModel, Scores, refuse_clashes, score, with_predictions
from modelyard.scoring.runtimes import forest_mean
from modelyard.tabular import Table
from tests import factories


def pipeline(final):
    preprocess = make_column_transformer(
        (StandardScaler(), ["age", "income"]), (OneHotEncoder(handle_unknown="ignore"), ["color"])
    )
    data = factories.frame(80)
    target = factories.labels(data) if hasattr(final, "predict_proba") else data["income"] * 2
    return make_pipeline(preprocess, final).fit(data, target)


ESTIMATORS = [
    factories.classifier(),
    pipeline(ExtraTreesClassifier(n_estimators=5, random_state=0)),
    pipeline(GradientBoostingClassifier(n_estimators=5, random_state=0)),
    pipeline(LogisticRegression()),
    pipeline(RandomForestRegressor(n_estimators=5, random_state=0)),
]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e[-1]).__name__)
def test_scores_equal_the_estimators_own(estimator) -> None:
    meta = describe(estimator)
    model = LoadedModel("m", 1, estimator, InputSchema.from_dict(meta["input_schema"]), meta)
    records = factories.records(200, seed=12)
    scores = score(model, Table.from_records(records))
    frame = pd.DataFrame(records)
    assert np.array_equal(scores.predictions, estimator.predict(frame))
    if meta["has_predict_proba"]:
        assert np.array_equal(scores.probabilities, estimator.predict_proba(frame))


def test_with_predictions_appends_columns_and_keeps_the_rest() -> None:
    estimator = factories.classifier()
    meta = describe(estimator)
    model = LoadedModel("m", 1, estimator, InputSchema.from_dict(meta["input_schema"]), meta)
    data = factories.frame(5)
    data.insert(0, "id", range(5))
    scores = score(model, Table(frame=data))
    output = with_predictions(
        pa.Table.from_pandas(data, preserve_index=False), model, scores.predictions, scores.probabilities
    ).to_pandas()
    assert list(output.columns) == [
        "id",
        "age",
        "income",
        "color",
        "prediction",
        "probability_no",
        "probability_yes",
    ]
    assert output["id"].tolist() == [0, 1, 2, 3, 4]


def loaded(estimator) -> LoadedModel:
    meta = describe(estimator)
    return LoadedModel("m", 3, estimator, InputSchema.from_dict(meta["input_schema"]), meta)


def test_a_one_step_pipeline_and_an_unnamed_model() -> None:
    data = factories.frame(40)
    one_step = make_pipeline(RandomForestRegressor(n_estimators=3, random_state=0)).fit(
        data[["age", "income"]], data["income"]
    )
    records = [{"age": 30, "income": 50.0}, {"age": 60, "income": 20.0}]
    scores = score(loaded(one_step), Table.from_records(records))
    assert np.array_equal(scores.predictions, one_step.predict(pd.DataFrame(records)))
    assert scores.probabilities is None and scores.warnings == []
    unnamed = factories.array_regressor()
    rows = [{"x0": 1.0, "x1": 2.0, "x2": 3.0}]
    assert (
        score(loaded(unnamed), Table.from_records(rows)).predictions.tolist()
        == unnamed.predict(np.array([[1.0, 2.0, 3.0]])).tolist()
    )


def test_warnings_come_with_the_scores() -> None:
    records = factories.records(2)
    records[0]["color"] = "purple"
    scores = score(loaded(factories.classifier()), Table.from_records(records))
    assert [(w["row"], w["code"]) for w in scores.warnings] == [(0, "unknown_category")]
    assert len(scores) == 2


def test_values_beyond_float32_name_their_rows() -> None:
    records = [{"age": 30, "income": 1.0, "color": "red"}, {"age": 30, "income": 1e300, "color": "red"}]
    with pytest.raises(InvalidInput) as caught:
        score(loaded(factories.classifier()), Table.from_records(records))
    assert caught.value.message == (
        "model 'm' cannot take values this large (it computes in float32, up to ±3.4e38, once its "
        "pipeline has transformed them)"
    )
    assert caught.value.details == [{"row": 1, "field": "income", "code": "out_of_range"}]


def test_a_model_that_fails_on_valid_input() -> None:
    fragile = factories.FragileRegressor().fit([[0.0, 0.0]], [0.0])
    model = loaded(fragile)
    with pytest.raises(PredictionFailed) as caught:
        score(model, Table.from_records([{"x0": 1.0, "x1": 500.0}]))
    assert caught.value.message == (
        "model 'm' version 3 failed on valid input: RuntimeError: overflow in the model's own code"
    )
    broken = factories.array_regressor()
    broken.coef_ = np.zeros(5)
    with pytest.raises(PredictionFailed) as caught:
        score(loaded(broken), Table.from_records([{"x0": 1.0, "x1": 2.0, "x2": 3.0}]))
    assert caught.value.message.startswith("model 'm' version 3 failed on valid input: ValueError: matmul")


def test_scores_as_json_have_null_for_what_json_cannot_hold() -> None:
    scores = Scores(np.array([1.5, np.nan, np.inf]), np.array([[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]]), [])
    assert scores.as_json() == {
        "predictions": [1.5, None, None],
        "probabilities": [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]],
    }
    assert Scores(np.array(["no", "yes"]), None, []).as_json() == {"predictions": ["no", "yes"]}


def test_a_column_the_output_would_overwrite_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        refuse_clashes(
            ["id", "prediction", "probability_yes"], ["prediction", "probability_no", "probability_yes"]
        )
    assert caught.value.message == (
        "the input already has column(s) ['prediction', 'probability_yes'], which the output would "
        "overwrite; rename them"
    )
    assert caught.value.details == [
        {"row": None, "field": "prediction", "code": "column_conflict"},
        {"row": None, "field": "probability_yes", "code": "column_conflict"},
    ]
    refuse_clashes(["id"], ["prediction"])


def test_output_column_types_are_fixed_by_the_model() -> None:
    regressor = loaded(factories.array_regressor())
    table = pa.table({"id": [1, 2]})
    out = with_predictions(table, regressor, np.array([1, 2]), None, extra={"row": pa.array([7, 8])})
    assert out.schema.types == [pa.int64(), pa.float64(), pa.int64()] and out.column_names == [
        "id",
        "prediction",
        "row",
    ]
    classifier = loaded(factories.classifier())
    out = with_predictions(table, classifier, np.array(["no", "yes"]), np.array([[1, 0], [0, 1]]))
    assert out.schema.types == [pa.int64(), pa.string(), pa.float64(), pa.float64()]
    assert out.column("probability_yes").to_pylist() == [0.0, 1.0]


def test_values_that_overflow_only_once_transformed() -> None:
    data = factories.frame(40)
    data["income"] = data["income"] * 1e-30  # a tiny scale: 1e10 becomes about 1e40 once scaled
    model = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=3, random_state=0)).fit(
        data[["age", "income"]], data["age"]
    )
    with pytest.raises(InvalidInput) as caught:
        score(loaded(model), Table.from_records([{"age": 30, "income": 1e10}]))
    assert caught.value.details == [{"row": None, "field": None, "code": "out_of_range"}]


@pytest.mark.parametrize(
    ("forest", "method"),
    [
        (RandomForestClassifier, "predict_proba"),
        (ExtraTreesClassifier, "predict_proba"),
        (RandomForestRegressor, "predict"),
        (ExtraTreesRegressor, "predict"),
    ],
)
@pytest.mark.parametrize("rows", [1, 3, 200])
def test_a_forests_answers_are_its_own_to_the_last_bit(forest, method: str, rows: int) -> None:
    """Served with one job, a forest's trees are summed without joblib's dispatch: same bits."""
    data = pd.DataFrame(np.random.default_rng(1).normal(size=(300, 4)), columns=list("abcd"))
    data.iloc[::7, 2] = np.nan  # forests take missing values
    target = np.random.default_rng(2).integers(0, 3, size=300)
    if method == "predict":
        target = target * 6543.21 + np.random.default_rng(3).normal(size=300)
    model = forest(n_estimators=15, random_state=0).fit(data, target)
    set_n_jobs(model, 1)
    own_answers = getattr(model, method)(data[:rows])
    assert np.array_equal(forest_mean(model, data[:rows], method), own_answers)
    with pytest.raises(ValueError, match="feature names"):
        forest_mean(model, data[:rows].rename(columns={"a": "z"}), method)
    set_n_jobs(model, 2)  # the order of the sums is scikit-learn's own then
    with mock.patch.object(type(model), method, return_value=np.ones(own_answers.shape)) as own:
        assert forest_mean(model, data[:rows], method).sum() == own_answers.size
    own.assert_called_once()
