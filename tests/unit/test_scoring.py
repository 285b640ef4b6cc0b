import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import ExtraTreesClassifier, GradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelyard.artifacts import describe
from modelyard.schema import InputSchema
from modelyard.scoring import LoadedModel, score, with_predictions
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
