"""Checking input records against a model's input schema, column by column.

`check` finds every problem at once, vectorized per column, and leaves the policy to the caller:
the API refuses a request with any problem (`prepare`), batch scoring sets the bad rows aside.
Every problem names its row (0-based position in the table) and its field. Unknown categories that
the fitted encoder can score are let through and reported as warnings.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from modelyard.errors import InvalidInput
from modelyard.registry.schema import NUMBER, Feature, InputSchema
from modelyard.tabular import Table, joined_by

MAX_LISTED = 100
"""Problems or warnings an API answer lists one by one; the rest are counted."""


@dataclass
class Finding:
    """One check that failed (or warned) on some rows of one field."""

    field: str
    code: str
    message: str
    rows: np.ndarray | None
    """Positions in the table; None when the whole column is missing from a file."""
    values: pd.Series | None = None
    """The input column, to show the value at each row."""
    says_what_it_got: bool = False
    """Add what kind of value the row holds to the message ("expected a number, got a string")."""

    def describe(self, position: int | None, row: int | None) -> dict[str, Any]:
        """The finding at one position, reported as `row`."""
        item: dict[str, Any] = {"row": row, "field": self.field, "code": self.code}
        message = self.message
        if self.values is not None and position is not None:
            value = self.values.iloc[position]
            item["value"] = _plain(value)
            if self.says_what_it_got:
                message = f"{message}, got {_kind(value)}"
        item["message"] = message
        return item


@dataclass
class Checked:
    frame: pd.DataFrame
    """Exactly the model's features, in its order, with the dtypes it was fitted on (all rows)."""
    problems: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def column_problems(self) -> list[Finding]:
        """Problems of the whole input (a missing column), not of some rows."""
        return [finding for finding in self.problems if finding.rows is None]

    def bad_rows(self) -> np.ndarray:
        """A mask of the rows with at least one problem."""
        mask = np.zeros(len(self.frame), dtype=bool)
        for finding in self.problems:
            mask[finding.rows if finding.rows is not None else slice(None)] = True
        return mask


@dataclass
class Prepared:
    frame: pd.DataFrame
    warnings: list[dict[str, Any]] = field(default_factory=list)


def listed(findings: list[Finding], limit: int = MAX_LISTED) -> tuple[list[dict[str, Any]], int]:
    """The first `limit` findings, one item per row, and how many there are in all."""
    items: list[dict[str, Any]] = []
    count = 0
    for finding in findings:
        rows = [None] if finding.rows is None else finding.rows
        count += len(rows)
        for row in list(rows)[: max(0, limit - len(items))]:
            items.append(finding.describe(row, None if row is None else int(row)))
    return items, count


def where(item: dict[str, Any]) -> str:
    """Where a problem is, as messages say it: "row 3 (line 5), ", "row 3, ", or nothing."""
    if item.get("row") is None:
        return ""
    return f"row {item['row']}" + (f" (line {item['line']})" if "line" in item else "") + ", "


def with_lines(items: list[dict[str, Any]], table: Table) -> list[dict[str, Any]]:
    """Each item of a file's row with the line the row starts on (CSV and JSON Lines)."""
    if table.line_of is None:
        return items
    rows = sorted({item["row"] for item in items if item["row"] is not None})
    lines = dict(zip(rows, map(table.line_of, rows), strict=True))  # asked in increasing order
    return [
        {"row": item["row"], "line": lines[item["row"]], **item} if item["row"] is not None else item
        for item in items
    ]


def prepare(table: Table, schema: InputSchema) -> Prepared:
    """The model's input frame, or InvalidInput listing what is wrong."""
    checked = check(table, schema)
    if checked.problems:
        items, count = listed(checked.problems)
        items = with_lines(items, table)
        first = items[0]
        raise InvalidInput(
            f"{count} problem(s) in the input; first: {where(first)}field {first['field']!r}: "
            f"{first['message']}" + (f" (the first {MAX_LISTED} are listed)" if count > MAX_LISTED else ""),
            items,
        )
    return Prepared(frame=checked.frame, warnings=with_lines(listed(checked.warnings)[0], table))


def check(table: Table, schema: InputSchema) -> Checked:
    problems: list[Finding] = []
    warnings: list[Finding] = []
    columns: dict[str, pd.Series] = {}
    rows = len(table.frame)
    joined = _joined_columns(table, schema)
    if joined is not None:
        frame = pd.DataFrame({name: np.full(rows, np.nan) for name in schema.names}, columns=schema.names)
        return Checked(frame=frame, problems=[joined])
    for feature in schema.features:
        absent = _absent(table, feature.name)
        if absent.any():
            where = np.flatnonzero(absent) if table.records is not None else None
            problems.append(
                Finding(feature.name, "missing_feature", f"no field {feature.name!r} in the input", where)
            )
        if absent.all():
            columns[feature.name] = pd.Series(np.full(rows, np.nan))
        else:
            values = table.frame[feature.name].reset_index(drop=True)
            columns[feature.name] = _column(values, feature, table.text_values, absent, problems, warnings)
    frame = pd.DataFrame(columns, columns=schema.names)
    return Checked(frame=frame, problems=problems, warnings=warnings)


def _absent(table: Table, name: str) -> np.ndarray:
    """Rows that lack the field altogether (as opposed to carrying a null)."""
    if table.records is not None:
        return np.fromiter(
            (name not in record for record in table.records), dtype=bool, count=len(table.records)
        )
    return np.full(len(table.frame), name not in table.frame.columns)


def _joined_columns(table: Table, schema: InputSchema) -> Finding | None:
    """A file read as one column that holds the model's features joined by another separator."""
    if table.records is not None or any(name in table.frame.columns for name in schema.names):
        return None
    columns = list(map(str, table.frame.columns))
    message = joined_by(columns)
    return Finding(columns[0], "wrong_separator", message, None) if message else None


def _column(
    values: pd.Series,
    feature: Feature,
    text: bool,
    absent: np.ndarray,
    problems: list[Finding],
    warnings: list[Finding],
) -> pd.Series:
    nulls = values.isna().to_numpy()
    if feature.dtype == NUMBER:
        converted, wrong = _as_numbers(values, text, nulls)
        wrong |= np.isinf(converted.to_numpy())  # JSON 1e999 or CSV "inf": no estimator takes them
        expected = "a finite number"
    else:
        converted, wrong = _as_strings(values, nulls)
        expected = "a string"
    if wrong.any():
        problems.append(
            Finding(feature.name, "wrong_type", f"expected {expected}", np.flatnonzero(wrong), values, True)
        )

    if not feature.nullable and (nulls & ~absent).any():
        problems.append(
            Finding(
                feature.name,
                "missing_value",
                "the value is missing and this model has no imputer for it",
                np.flatnonzero(nulls & ~absent),
            )
        )
    if feature.categories is not None:
        unknown = ~nulls & ~wrong & ~converted.isin(feature.categories).to_numpy()
        if unknown.any():
            if feature.unknown_categories == "error":
                known = ", ".join(map(repr, feature.categories[:20]))
                message = f"the model's encoder refuses categories it was not fitted on; known: {known}"
                found = problems
            else:
                message = "a category the model was not fitted on; scored as the encoder allows"
                found = warnings
            found.append(Finding(feature.name, "unknown_category", message, np.flatnonzero(unknown), values))
    return converted


def _as_numbers(values: pd.Series, text: bool, nulls: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float), ~nulls
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float), np.zeros(len(values), dtype=bool)
    if text:
        converted = _parse_numbers(values)
        return converted, ~nulls & converted.isna().to_numpy()
    is_number = np.fromiter(
        (isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_) for v in values),
        dtype=bool,
        count=len(values),
    )
    converted = pd.to_numeric(values.where(is_number), errors="coerce").astype(float)
    return converted, ~nulls & ~is_number


def _parse_numbers(values: pd.Series) -> pd.Series:
    """Numbers from text: pyarrow's parser when every value parses, pandas' coercion otherwise.

    Either way a value that is not a number becomes NaN; "nan" and "inf" are parsed and refused later.
    """
    try:
        parsed = pc.cast(pa.array(values, from_pandas=True), pa.float64())
        return pd.Series(parsed.to_numpy(zero_copy_only=False), index=values.index)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pd.to_numeric(values, errors="coerce").astype(float)


def _as_strings(values: pd.Series, nulls: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        return values, np.zeros(len(values), dtype=bool)  # text already, nulls as NaN
    is_str = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    return values.astype(object).where(~nulls, np.nan), ~nulls & ~is_str


def _kind(value: Any) -> str:
    """What a value is, in JSON's words."""
    if isinstance(value, bool | np.bool_):
        return "a boolean"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, float | np.floating):
        return "infinity" if np.isinf(value) else "NaN" if np.isnan(value) else "a number"
    if isinstance(value, int | np.number):  # an integer past 64 bits too, which numpy cannot test
        return "a number"
    if isinstance(value, list | tuple | np.ndarray):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """A value as JSON can carry it, for error details."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else str(value)
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
