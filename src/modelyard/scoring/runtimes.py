"""What computes the predictions of a loaded model: scikit-learn itself, or its verified ONNX graph.

Both take the model's features as columns (a DataFrame, or a dict of arrays in the schema's order)
and give predictions and, for classifiers, probabilities. The ONNX runtime takes its labels from its
probabilities as scikit-learn's forests do, and asks scikit-learn for the rows on a near tie, where a
difference within the verified tolerance could change the ranking, and for any row whose
probabilities leave [0, 1] (verification refuses such graphs; this guards rows it never saw).
"""

from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline

from modelyard.registry.schema import NUMBER, InputSchema

FINAL_INPUT = "X"
"""The input of the final estimator's ONNX graph."""
FRONT_OUTPUT = "final_input"
"""The whole graph's copy of that input, as an output."""
PREFIX = "final_"
"""Of the final estimator's names inside the whole graph."""
TOLERANCE = 1e-5
"""What the compiled runtime promises for probabilities, as verified before it serves:
|compiled - scikit-learn| <= 1e-5 for each."""
REGRESSION_TOLERANCE = 1e-9
"""And for regression outputs: |compiled - scikit-learn| <= 1e-9 * max(1, |scikit-learn|)."""
SUM_TOLERANCE = 1e-9
"""Each row of probabilities lies in [0, 1] and sums to 1 within this, as scikit-learn's do."""
NEAR_TIE = 2 * TOLERANCE
"""Top two probabilities closer than this may rank either way within the tolerance."""

Features = Any
"""A DataFrame of the model's features, a fastpath.Decoded, or a dict of columns."""
Predictions = tuple[np.ndarray, np.ndarray | None]


class Runtime(Protocol):
    name: str

    def predict(self, features: Features) -> Predictions: ...


def split(estimator: Any) -> tuple[Any | None, Any]:
    """The preprocessing (None for a bare estimator) and the final estimator."""
    if isinstance(estimator, Pipeline) and len(estimator) > 1:
        return estimator[:-1], estimator[-1]
    if isinstance(estimator, Pipeline):
        return None, estimator[-1]
    return None, estimator


def as_frame(features: Features) -> pd.DataFrame:
    if isinstance(features, pd.DataFrame):
        return features
    if hasattr(features, "to_frame"):
        return pd.DataFrame(features.to_frame())
    return pd.DataFrame(features, copy=False)


class SklearnRuntime:
    name = "sklearn"

    def __init__(self, estimator: Any, with_probabilities: bool) -> None:
        self.estimator = estimator
        self.with_probabilities = with_probabilities
        self.prep, self.final = split(estimator)
        self.named = hasattr(estimator, "feature_names_in_")

    def predict(self, features: Features) -> Predictions:
        """The estimator's own answers, in less time: a pipeline's transformers run once for both
        predict and predict_proba, and a forest's predict is the argmax of its predict_proba
        (scikit-learn's own code), so it is derived from the probabilities instead of walking every
        tree twice."""
        frame = as_frame(features)
        inputs: Any = frame if self.named else frame.to_numpy()  # fitted without names: an array
        if self.prep is not None:
            inputs = self.prep.transform(inputs)
        if not self.with_probabilities:
            if _is_forest(self.final, RandomForestRegressor | ExtraTreesRegressor):
                return forest_mean(self.final, inputs, "predict"), None
            return self.final.predict(inputs), None
        if _is_forest(self.final, RandomForestClassifier | ExtraTreesClassifier):
            probabilities = forest_mean(self.final, inputs, "predict_proba")
            return self.final.classes_.take(np.argmax(probabilities, axis=1), axis=0), probabilities
        return self.final.predict(inputs), self.final.predict_proba(inputs)

    def transform(self, features: Features) -> np.ndarray:
        """The final estimator's input, as scikit-learn computes it."""
        frame = as_frame(features)
        inputs: Any = frame if self.named else frame.to_numpy()
        if self.prep is not None:
            inputs = self.prep.transform(inputs)
        dense = inputs.toarray() if hasattr(inputs, "toarray") else np.asarray(inputs)
        return np.asarray(dense, dtype=np.float64)


def _is_forest(estimator: Any, kinds: Any) -> bool:
    return (
        isinstance(estimator, kinds)
        and estimator.n_outputs_ == 1
        and hasattr(estimator, "_validate_X_predict")
    )


def forest_mean(forest: Any, inputs: Any, method: str) -> np.ndarray:
    """A forest's predict_proba or (regressor) predict, to the last bit. With one job (as served),
    scikit-learn adds its trees' answers one after another in their order, through joblib's
    dispatch, whose cost per tree is most of the call for a few rows; the same sums in the same order
    skip it. With more jobs the order of the sums is not fixed, and scikit-learn's own call is kept."""
    if forest.n_jobs not in (None, 1):
        return np.asarray(getattr(forest, method)(inputs))
    rows = forest._validate_X_predict(inputs)  # float32, feature names checked, as scikit-learn does
    total = np.zeros((rows.shape[0], forest.n_classes_) if method == "predict_proba" else rows.shape[0])
    for tree in forest.estimators_:
        total += getattr(tree, method)(rows, check_input=False)
    total /= len(forest.estimators_)
    return total


class OnnxRuntime:
    name = "onnx"

    def __init__(
        self,
        session: Any,
        graph: str,
        schema: InputSchema,
        sklearn: SklearnRuntime,
        final_dtype: type,
    ) -> None:
        self.session = session
        self.graph = graph
        """'whole': features in, predictions out; 'final': after scikit-learn's preprocessing."""
        self.sklearn = sklearn
        self.final_dtype = final_dtype
        self.numbers = [f.name for f in schema.features if f.dtype == NUMBER]
        self.texts = [f.name for f in schema.features if f.dtype != NUMBER]
        self.classes = getattr(sklearn.final, "classes_", None)
        outputs = [output.name for output in session.get_outputs()]
        wanted = "probabilities" if sklearn.with_probabilities else "variable"
        self.output = next(name for name in outputs if name.removeprefix(PREFIX) == wanted)

    def feed(self, features: Features) -> dict[str, np.ndarray]:
        if self.graph == "final":
            return {FINAL_INPUT: self.sklearn.transform(features).astype(self.final_dtype)}
        feed = {name: np.asarray(features[name], dtype=np.float64).reshape(-1, 1) for name in self.numbers}
        for name in self.texts:
            feed[name] = np.asarray(features[name], dtype=object).reshape(-1, 1)
        return feed

    def predict(self, features: Features) -> Predictions:
        if self.texts and self.graph == "whole" and _has_missing_text(features, self.texts):
            return self.sklearn.predict(features)  # ONNX strings have no null
        feed = self.feed(features)
        if self.graph == "final":
            values, between = self.session.run([self.output], feed)[0], feed[FINAL_INPUT]
        else:
            values, between = self.session.run([self.output, FRONT_OUTPUT], feed)
        if not np.isfinite(between).all():
            # beyond float32, or NaN: scikit-learn's own answer (or refusal) for those rows
            return self.sklearn.predict(features)
        if self.classes is None:
            return np.asarray(values, dtype=np.float64).reshape(len(values), -1)[:, 0], None
        values = as_probabilities(values)
        labels = self.classes.take(np.argmax(values, axis=1), axis=0)
        asked = near_ties(values)
        if not 0.0 <= values.min() <= values.max() <= 1.0:  # two scalars first: cheaper than rows
            asked |= ~within_unit(values)
        if asked.any():
            rows = np.flatnonzero(asked)
            labels[rows], theirs = self.sklearn.predict(as_frame(features).iloc[rows])
            values[rows] = theirs
        return labels, values


def _has_missing_text(features: Features, names: list[str]) -> bool:
    return any(pd.isna(np.asarray(features[name], dtype=object)).any() for name in names)


def as_probabilities(values: np.ndarray) -> np.ndarray:
    """A graph's probabilities, in float64. A float32 graph's rows sum to 1 only within float32
    rounding (a few 1e-7): each is divided by its sum. A double graph's are computed in double
    already, and kept as they are (verification holds their sums to 1 within SUM_TOLERANCE). Nothing
    is clipped: a value outside [0, 1] stays there, for `within_unit` to find."""
    if values.dtype == np.float64:
        return values
    values = values.astype(np.float64)
    sums = values.sum(axis=1, keepdims=True)
    return np.asarray(np.divide(values, sums, out=values, where=sums > 0))


def within_unit(probabilities: np.ndarray) -> np.ndarray:
    """Rows whose probabilities are all in [0, 1] (and finite)."""
    return np.asarray(((probabilities >= 0.0) & (probabilities <= 1.0)).all(axis=1), dtype=bool)


def near_ties(probabilities: np.ndarray) -> np.ndarray:
    """Rows whose two highest probabilities are within NEAR_TIE: their label is not certain."""
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        return np.zeros(len(probabilities), dtype=bool)
    top = np.partition(probabilities, -2, axis=1)
    return np.asarray(top[:, -1] - top[:, -2] <= NEAR_TIE, dtype=bool)
