"""What a model file is: unpickling its bytes and describing the fitted estimator inside.

`unpickle` takes bytes, and its callers get them from the load gate (registry/gate.py) or, at
registration, from the file being registered: pickle runs whatever code is in the file, so nothing
else reads an artifact.
"""

import io
import sys
import warnings
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import InconsistentVersionWarning

from modelyard.errors import RegistryError
from modelyard.registry.schema import read_input_schema

FORMATS = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle"}


def unpickle(data: bytes) -> tuple[Any, str | None]:
    """The estimator in an artifact, and the scikit-learn version it was saved with if not ours.

    It takes the bytes, not a path, so that what was checked is what gets loaded.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        estimator = joblib.load(io.BytesIO(data))
    saved_with = next(
        (
            w.message.original_sklearn_version
            for w in caught
            if isinstance(w.message, InconsistentVersionWarning)
        ),
        None,
    )
    return estimator, saved_with


def describe(estimator: Any) -> dict[str, Any]:
    """What the registry records about a fitted estimator, besides the file itself."""
    kind = type(estimator).__name__
    try:
        task = (
            "classification"
            if is_classifier(estimator)
            else "regression"
            if is_regressor(estimator)
            else None
        )
    except Exception:  # not a scikit-learn object at all: it has no estimator tags
        task = None
    if task is None or not hasattr(estimator, "predict"):
        raise RegistryError(
            f"{kind} is neither a classifier nor a regressor; "
            "modelyard serves fitted scikit-learn classifiers, regressors and pipelines ending in one"
        )
    classes = getattr(estimator, "classes_", None)
    return {
        "task": task,
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "classes": None if classes is None else np.asarray(classes).tolist(),
        "has_predict_proba": hasattr(estimator, "predict_proba"),
        "input_schema": read_input_schema(estimator).to_dict(),
    }


def library_versions(sklearn_version: str | None = None) -> dict[str, str]:
    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "scikit-learn": sklearn_version or sklearn.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }


def set_n_jobs(estimator: Any, n_jobs: int) -> None:
    """Set n_jobs on the estimator and every step inside it that has one.

    The caller decides: in a server, n_jobs>1 costs more in thread start-up than it saves on small
    requests, while a batch worker alone on a machine may want every core.
    """
    params = {key: n_jobs for key in estimator.get_params(deep=True) if key.split("__")[-1] == "n_jobs"}
    if params:
        estimator.set_params(**params)
