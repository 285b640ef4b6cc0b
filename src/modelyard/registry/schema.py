"""The input contract of a fitted estimator: read once at registration, stored as JSON.

Scikit-learn keeps the feature names it was fitted on and, in its encoders, the categories it saw.
This module walks a fitted estimator (pipelines and column transformers included) to collect them.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

from modelyard.errors import RegistryError

NUMBER = "number"
STRING = "string"


@dataclass
class Feature:
    name: str
    dtype: str = NUMBER
    categories: list[Any] | None = None
    """Categories a fitted encoder knows; None when the feature is not encoded."""
    unknown_categories: str | None = None
    """'error' when the encoder refuses a category it did not see, 'allowed' when it scores it."""
    nullable: bool = False
    """True when an imputer (or the estimator itself) handles a missing value."""
    example: Any = None
    """A value typical of the fitting data (a fitted scaler's mean, an imputer's fill), for examples."""


@dataclass
class InputSchema:
    features: list[Feature] = field(default_factory=list)
    generated_names: bool = False
    """The model was fitted without feature names: x0, x1, ... are scikit-learn's names for them,
    and records may also be arrays of values in that order."""

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [asdict(feature) for feature in self.features],
            "generated_names": self.generated_names,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InputSchema":
        return cls(
            features=[Feature(**feature) for feature in data["features"]],
            generated_names=bool(data.get("generated_names", False)),
        )

    def example_row(self) -> dict[str, Any]:
        """One valid record: to warm a freshly loaded model, and to show in the API's documentation."""
        return {feature.name: _example(feature) for feature in self.features}


def _example(feature: Feature) -> Any:
    if feature.categories:
        return feature.categories[0]
    return feature.example if feature.example is not None else 0.0


def read_input_schema(estimator: Any) -> InputSchema:
    names = getattr(estimator, "feature_names_in_", None)
    generated = names is None
    if names is None:
        count = getattr(estimator, "n_features_in_", None)
        if count is None:
            raise RegistryError(
                f"cannot read the input schema of {type(estimator).__name__}: "
                "it has neither feature_names_in_ nor n_features_in_. Register a fitted estimator."
            )
        # The names scikit-learn itself gives features fitted without names.
        names = [f"x{i}" for i in range(count)]
    features = {str(name): Feature(name=str(name)) for name in names}
    _walk(estimator, list(features), features)
    if get_tags(estimator).input_tags.allow_nan:
        for feature in features.values():
            feature.nullable = True
    return InputSchema(features=list(features.values()), generated_names=generated)


def _walk(estimator: Any, scope: list[str], features: dict[str, Feature]) -> None:
    """Record what each transformer tells about the columns in `scope` it was fitted on."""
    if getattr(estimator, "n_features_in_", len(scope)) != len(scope):
        return  # fitted on transformed columns, not on the input: nothing to learn here
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            if step not in (None, "passthrough"):
                _walk(step, scope, features)
    elif isinstance(estimator, ColumnTransformer):
        indices = getattr(estimator, "_transformer_to_input_indices", {})
        for name, transformer, _ in estimator.transformers_:
            if transformer in ("drop", "passthrough") or name not in indices:
                continue
            _walk(transformer, [scope[i] for i in indices[name]], features)
    elif type(estimator).__module__.startswith("sklearn.impute"):
        for name in scope:
            features[name].nullable = True
        _record_examples(scope, getattr(estimator, "statistics_", None), features)
    elif hasattr(estimator, "mean_"):  # StandardScaler and its kind
        _record_examples(scope, estimator.mean_, features)
    elif hasattr(estimator, "categories_"):
        unknown = "error" if getattr(estimator, "handle_unknown", None) == "error" else "allowed"
        for name, categories in zip(scope, estimator.categories_, strict=True):
            _record_categories(features[name], np.asarray(categories), unknown)


def _record_examples(scope: list[str], values: Any, features: dict[str, Feature]) -> None:
    if values is None or len(values) != len(scope):
        return
    for name, value in zip(scope, values, strict=True):
        if (
            isinstance(value, int | float | np.number)
            and np.isfinite(value)
            and features[name].example is None
        ):
            features[name].example = round(float(value), 4)


def _record_categories(feature: Feature, categories: np.ndarray, unknown: str) -> None:
    missing = [value is None or (isinstance(value, float) and np.isnan(value)) for value in categories]
    if any(missing):
        feature.nullable = True  # the encoder learned "missing" as a category of its own
    known = [value for value, is_missing in zip(categories, missing, strict=True) if not is_missing]
    feature.dtype = STRING if any(isinstance(value, str) for value in known) else NUMBER
    feature.categories = [value.item() if hasattr(value, "item") else value for value in known]
    if feature.unknown_categories != "error":
        feature.unknown_categories = unknown
