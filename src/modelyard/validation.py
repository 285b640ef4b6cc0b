"""Checking input records against a model's input schema, column by column.

Every problem names its row (0-based position of the record in the input) and its field.
Unknown categories that the fitted encoder can score are let through and reported as warnings.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelyard.errors import InvalidInput
from modelyard.schema import NUMBER, Feature, InputSchema
from modelyard.tabular import Table

MAX_LISTED = 100
"""Problems or warnings listed one by one; the rest are counted."""


@dataclass
class Prepared:
    frame: pd.DataFrame
    """Exactly the model's features, in its order, with the dtypes it was fitted on."""
    warnings: list[dict[str, Any]] = field(default_factory=list)


class _Findings:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.count = 0

    def add(
        self,
        rows: Sequence[int | None] | np.ndarray,
        name: str,
        code: str,
        message: str,
        values: pd.Series | None = None,
    ) -> None:
        self.count += len(rows)
        for row in list(rows)[: max(0, MAX_LISTED - len(self.items))]:
            item: dict[str, Any] = {
                "row": None if row is None else int(row),
                "field": name,
                "code": code,
            }
            if values is not None and row is not None:
                item["value"] = _plain(values.iloc[int(row)])
            item["message"] = message
            self.items.append(item)


def prepare(table: Table, schema: InputSchema) -> Prepared:
    problems, warnings = _Findings(), _Findings()
    columns: dict[str, pd.Series] = {}
    for feature in schema.features:
        absent = _absent(table, feature.name)
        if absent.any():
            rows = np.flatnonzero(absent) if table.records is not None else [None]
            problems.add(rows, feature.name, "missing_feature", f"no field {feature.name!r} in the input")
        if not absent.all():
            values = table.frame[feature.name]
            columns[feature.name] = _column(values, feature, table.text_values, absent, problems, warnings)
    if problems.count:
        first = problems.items[0]
        where = "" if first["row"] is None else f"row {first['row']}, "
        raise InvalidInput(
            f"{problems.count} problem(s) in the input; first: {where}field {first['field']!r}: "
            f"{first['message']}"
            + (f" (the first {MAX_LISTED} are listed)" if problems.count > MAX_LISTED else ""),
            problems.items,
        )
    frame = pd.DataFrame(columns, columns=schema.names)
    return Prepared(frame=frame, warnings=warnings.items)


def _absent(table: Table, name: str) -> np.ndarray:
    """Rows that lack the field altogether (as opposed to carrying a null)."""
    if table.records is not None:
        return np.fromiter(
            (name not in record for record in table.records), dtype=bool, count=len(table.records)
        )
    return np.full(len(table.frame), name not in table.frame.columns)


def _column(
    values: pd.Series,
    feature: Feature,
    text: bool,
    absent: np.ndarray,
    problems: _Findings,
    warnings: _Findings,
) -> pd.Series:
    values = values.reset_index(drop=True)
    nulls = values.isna().to_numpy()
    if feature.dtype == NUMBER:
        converted, wrong = _as_numbers(values, text, nulls)
        wrong |= np.isinf(converted.to_numpy())  # JSON 1e999 or CSV "inf": no estimator takes them
        expected = "a finite number"
    else:
        converted, wrong = values.astype(object).where(~nulls, np.nan), ~nulls & ~_is_str(values)
        expected = "a string"
    if wrong.any():
        problems.add(np.flatnonzero(wrong), feature.name, "wrong_type", f"expected {expected}", values)
    if not feature.nullable and (nulls & ~absent).any():
        problems.add(
            np.flatnonzero(nulls & ~absent),
            feature.name,
            "missing_value",
            "the value is missing and this model has no imputer for it",
        )
    if feature.categories is not None:
        unknown = ~nulls & ~wrong & ~converted.isin(feature.categories).to_numpy()
        if unknown.any():
            rows = np.flatnonzero(unknown)
            known = ", ".join(map(repr, feature.categories[:20]))
            if feature.unknown_categories == "error":
                problems.add(
                    rows,
                    feature.name,
                    "unknown_category",
                    f"the model's encoder refuses categories it was not fitted on; known: {known}",
                    values,
                )
            else:
                warnings.add(
                    rows,
                    feature.name,
                    "unknown_category",
                    "a category the model was not fitted on; scored as the encoder allows",
                    values,
                )
    return converted


def _as_numbers(values: pd.Series, text: bool, nulls: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float), ~nulls
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float), np.zeros(len(values), dtype=bool)
    if text:
        converted = pd.to_numeric(values, errors="coerce").astype(float)
        return converted, ~nulls & converted.isna().to_numpy()
    is_number = np.fromiter(
        (isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_) for v in values),
        dtype=bool,
        count=len(values),
    )
    converted = pd.to_numeric(values.where(is_number), errors="coerce").astype(float)
    return converted, ~nulls & ~is_number


def _is_str(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        return np.ones(len(values), dtype=bool)
    return np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))


def _plain(value: Any) -> Any:
    """A value as JSON can carry it, for error details."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else str(value)
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
