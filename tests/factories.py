"""Tiny fitted estimators and data for tests: real scikit-learn, small enough to fit in milliseconds."""

import time
from pathlib import Path
from typing import Any
from unittest import mock

import joblib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from modelyard.registry.artifacts import set_n_jobs

COLORS = ["blue", "green", "red"]


def frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(50.0, 15.0, rows).round(2),
            "color": rng.choice(COLORS, rows),
        }
    )


def labels(data: pd.DataFrame) -> np.ndarray:
    score = (data["age"] > 45).astype(int) + (data["color"] == "red").astype(int)
    return np.where(score + (data["income"] > 50) >= 2, "yes", "no")


def classifier(handle_unknown: str = "ignore", seed: int = 0, trees: int = 10) -> Pipeline:
    """A churn-like pipeline: scaling, one-hot encoding and a random forest."""
    data = frame(seed=seed)
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["age", "income"]),
            ("categorical", OneHotEncoder(handle_unknown=handle_unknown), ["color"]),
        ]
    )
    forest = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=-1)
    return Pipeline([("preprocess", preprocess), ("forest", forest)]).fit(data, labels(data))


def pause(features: Any, seconds: float) -> Any:
    """An identity transform that takes its time: makes a batch job slow enough to watch."""
    time.sleep(seconds)
    return features


def slow_classifier(seconds: float = 0.2) -> Pipeline:
    """The churn-like classifier with a step that sleeps once per call, i.e. once per chunk."""
    fitted = classifier()
    slow = FunctionTransformer(pause, kw_args={"seconds": seconds}, feature_names_out="one-to-one")
    data = frame()
    return Pipeline([("slow", slow.fit(data)), *fitted.steps])


def imputing_classifier() -> Pipeline:
    data = frame()
    return make_pipeline(SimpleImputer(), LogisticRegression()).fit(data[["age", "income"]], labels(data))


def array_regressor() -> LinearRegression:
    """Fitted on a bare array: no feature names, so its inputs are x0, x1, x2."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    return LinearRegression().fit(x, x @ np.array([1.0, -2.0, 0.5]) + 3)


class FragileRegressor(RegressorMixin, BaseEstimator):
    """Predicts the row sum, and fails on values over 100: a model with a bug of its own."""

    def fit(self, x: Any, y: Any) -> "FragileRegressor":
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict(self, x: Any) -> np.ndarray:
        values = np.asarray(x, dtype=float)
        if (values > 100).any():
            raise RuntimeError("overflow in the model's own code")
        return values.sum(axis=1)


def load_as_served(path: Path) -> Any:
    """An artifact loaded as the API runs it: n_jobs=1. A forest sums its trees' probabilities in
    whatever order its threads finish, so with n_jobs=-1 the last bit can differ from run to run."""
    estimator = joblib.load(path)
    set_n_jobs(estimator, 1)
    return estimator


def save(estimator: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, path)
    return path


def save_as_if_sklearn(version: str, estimator: Any, path: Path) -> Path:
    """A genuine artifact as another scikit-learn release would have written it."""
    import sklearn.base

    with mock.patch.object(sklearn.base, "__version__", version):
        return save(estimator, path)


def records(rows: int = 5, seed: int = 3) -> list[dict[str, Any]]:
    data = frame(rows, seed)
    return [
        {"age": int(row.age), "income": float(row.income), "color": str(row.color)}
        for row in data.itertuples()
    ]
