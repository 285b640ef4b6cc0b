"""Pure prediction: a loaded model and validated records in, predictions out. No HTTP, no queues."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelyard.errors import InvalidInput, PredictionFailed
from modelyard.registry.schema import InputSchema
from modelyard.scoring.runtimes import Features, Predictions, Runtime, SklearnRuntime, as_frame
from modelyard.scoring.validation import prepare
from modelyard.tabular import Table


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    estimator: Any
    schema: InputSchema
    metadata: dict[str, Any]
    runtime: Runtime | None = None
    """What scores requests; scikit-learn itself unless a verified compiled runtime was loaded."""
    bulk: Runtime | None = None
    """What scores big chunks; the runtime above unless measured slower there."""
    runtime_reason: str = ""
    bulk_from_rows: int | None = None
    """Requests of at least this many rows go to `bulk` too: where it was measured faster for this
    version, when it was compiled (None: requests never do)."""

    def __post_init__(self) -> None:
        runtime = self.runtime or SklearnRuntime(self.estimator, self.has_probabilities)
        object.__setattr__(self, "runtime", runtime)
        object.__setattr__(self, "bulk", self.bulk or runtime)

    def runtime_for(self, bulk: bool, rows: int = 0) -> Runtime:
        """The runtime for a file's chunk (`bulk`), or for a request of `rows` rows."""
        big = bulk or (self.bulk_from_rows is not None and rows >= self.bulk_from_rows)
        runtime = self.bulk if big else self.runtime
        assert runtime is not None
        return runtime

    @property
    def classes(self) -> list[Any] | None:
        return self.metadata.get("classes")

    @property
    def has_probabilities(self) -> bool:
        return bool(self.metadata.get("has_predict_proba"))

    @property
    def output_columns(self) -> list[str]:
        """What scoring a file appends: `prediction` and, for classifiers, `probability_<class>`."""
        probabilities = self.classes if self.has_probabilities and self.classes is not None else []
        return ["prediction", *(f"probability_{label}" for label in probabilities)]


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
        return list(safe.tolist())
    return list(values.tolist())


def score(model: LoadedModel, table: Table, bulk: bool = False) -> Scores:
    """Validate every record, then predict; any invalid record refuses the whole table."""
    prepared = prepare(table, model.schema)
    predictions, probabilities = predict(model, prepared.frame, bulk)
    return Scores(predictions=predictions, probabilities=probabilities, warnings=prepared.warnings)


def predict(model: LoadedModel, features: Features, bulk: bool = False) -> Predictions:
    """Predictions (and probabilities) for valid features: a DataFrame, or columns by name.
    `bulk` is for file chunks: the runtime measured faster on big chunks scores them, and requests as
    big as where it was measured faster."""
    try:
        return model.runtime_for(bulk, len(features)).predict(features)
    except ValueError as exc:
        if "too large for dtype" not in str(exc) and "contains infinity" not in str(exc):
            raise PredictionFailed(
                f"model {model.name!r} version {model.version} failed on valid input: ValueError: {exc}"
            ) from exc
        # finite numbers, but beyond the float32 range that trees (and others) compute in
        raise InvalidInput(
            f"model {model.name!r} cannot take values this large (it computes in float32, up to "
            "±3.4e38, once its pipeline has transformed them)",
            _too_large(as_frame(features)),
        ) from exc
    except Exception as exc:
        raise PredictionFailed(
            f"model {model.name!r} version {model.version} failed on valid input: {type(exc).__name__}: {exc}"
        ) from exc


def _too_large(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Where values beyond float32 are, when they are in the input itself."""
    numbers = frame.select_dtypes("number")
    where = np.argwhere(np.abs(numbers.to_numpy(dtype=float)) > np.finfo(np.float32).max)
    found = [
        {"row": int(frame.index[r]), "field": str(numbers.columns[c]), "code": "out_of_range"}
        for r, c in where
    ]
    return found[:100] or [{"row": None, "field": None, "code": "out_of_range"}]


def refuse_clashes(input_columns: list[str], added: list[str]) -> None:
    """Refuse an input that already has a column the output would add."""
    clashes = [name for name in added if name in input_columns]
    if clashes:
        raise InvalidInput(
            f"the input already has column(s) {clashes}, which the output would overwrite; rename them",
            [{"row": None, "field": name, "code": "column_conflict"} for name in clashes],
        )


def with_predictions(
    table: pa.Table,
    model: LoadedModel,
    predictions: np.ndarray,
    probabilities: np.ndarray | None,
    extra: dict[str, pa.Array] | None = None,
) -> pa.Table:
    """The input rows with `prediction`, one `probability_<class>` per class, then `extra` columns."""
    refuse_clashes(table.column_names, [*model.output_columns, *(extra or {})])
    prediction_type = _prediction_type(model)
    columns: dict[str, pa.Array] = {"prediction": pa.array(predictions, type=prediction_type)}
    if probabilities is not None and model.has_probabilities:
        for index, name in enumerate(model.output_columns[1:]):
            columns[name] = pa.array(probabilities[:, index], type=pa.float64())
    columns.update(extra or {})
    for name, values in columns.items():
        table = table.append_column(name, values)
    return table


def _prediction_type(model: LoadedModel) -> pa.DataType:
    """Fixed by the model, so every chunk of a file gets the same column type."""
    if model.classes is None:
        return pa.float64()
    return pa.array(np.asarray(model.classes)).type
