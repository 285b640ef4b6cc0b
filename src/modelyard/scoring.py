"""Pure prediction: a loaded model and validated records in, predictions out. No HTTP, no queues."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.pipeline import Pipeline

from modelyard.errors import InvalidInput, PredictionFailed
from modelyard.schema import InputSchema
from modelyard.tabular import Table
from modelyard.validation import Prepared, prepare


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    estimator: Any
    schema: InputSchema
    metadata: dict[str, Any]

    @property
    def classes(self) -> list[Any] | None:
        return self.metadata.get("classes")

    @property
    def has_probabilities(self) -> bool:
        return bool(self.metadata.get("has_predict_proba"))


@dataclass
class Scores:
    predictions: np.ndarray
    probabilities: np.ndarray | None
    warnings: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.predictions)

    def as_json(self) -> dict[str, Any]:
        """Plain lists for a JSON answer; a non-finite float (JSON has none) becomes null."""
        content = {"predictions": _json_list(self.predictions)}
        if self.probabilities is not None:
            content["probabilities"] = _json_list(self.probabilities)
        return content


def _json_list(values: np.ndarray) -> list[Any]:
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        safe = values.astype(object)
        safe[~np.isfinite(values)] = None
        return safe.tolist()
    return values.tolist()


def score(model: LoadedModel, table: Table) -> Scores:
    prepared: Prepared = prepare(table, model.schema)
    features: Any = prepared.frame
    if not hasattr(model.estimator, "feature_names_in_"):
        features = features.to_numpy()  # fitted without names: pass a bare array, as it was fitted
    try:
        predictions, probabilities = _predict(model.estimator, features, model.has_probabilities)
    except Exception as exc:
        raise PredictionFailed(
            f"model {model.name!r} version {model.version} failed on valid input: {type(exc).__name__}: {exc}"
        ) from exc
    return Scores(predictions=predictions, probabilities=probabilities, warnings=prepared.warnings)


def _predict(estimator: Any, features: Any, with_probabilities: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """predict (and predict_proba) with the same answers as the estimator's own, in less time.

    A pipeline's transformers run once for both calls, as Pipeline.predict would run them. A forest
    classifier's predict is the argmax of its predict_proba (scikit-learn's own code), so it is
    derived from the probabilities instead of walking every tree twice.
    """
    final = estimator
    if isinstance(estimator, Pipeline) and len(estimator) > 1:
        final, features = estimator[-1], estimator[:-1].transform(features)
    if not with_probabilities:
        return final.predict(features), None
    probabilities = final.predict_proba(features)
    if isinstance(final, RandomForestClassifier | ExtraTreesClassifier) and final.n_outputs_ == 1:
        return final.classes_.take(np.argmax(probabilities, axis=1), axis=0), probabilities
    return final.predict(features), probabilities


def with_predictions(frame: pd.DataFrame, scores: Scores, classes: list[Any] | None) -> pd.DataFrame:
    """The input with a `prediction` column and, for classifiers, one `probability_<class>` each."""
    columns: dict[str, Any] = {"prediction": scores.predictions}
    if scores.probabilities is not None and classes is not None:
        for index, label in enumerate(classes):
            columns[f"probability_{label}"] = scores.probabilities[:, index]
    clashes = [name for name in columns if name in frame.columns]
    if clashes:
        raise InvalidInput(
            f"the input already has column(s) {clashes}, which the output would overwrite; rename them",
            [{"row": None, "field": name, "code": "column_conflict"} for name in clashes],
        )
    output = frame.reset_index(drop=True).copy()
    for name, values in columns.items():
        output[name] = values
    return output
