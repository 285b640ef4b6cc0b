"""Whether a compiled graph computes what scikit-learn computes, on rows chosen to find out.

The verification set: real rows (a sample the user supplies), every known category of every encoded
feature, random rows mixing the values seen, and rows at the final estimator's split thresholds (the
threshold and the float32 values either side of it, where rounding decides the branch). A graph
passes when every probability is within TOLERANCE of scikit-learn's, every row of them in [0, 1] and
summing to 1 within SUM_TOLERANCE, every regression output within REGRESSION_TOLERANCE (relative to
max(1, |value|)) and every label is scikit-learn's. The probabilities compared are the runtime's,
after its one correction (each row divided by its sum). Labels come from the graph's probabilities,
as scikit-learn's forests take them (`classes_[argmax]`), except on a near tie, where the runtime
asks scikit-learn (scoring/runtimes.py).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelyard.registry.schema import NUMBER, InputSchema
from modelyard.scoring.runtimes import (
    REGRESSION_TOLERANCE,
    SUM_TOLERANCE,
    TOLERANCE,
    near_ties,
    within_unit,
)

UNKNOWN_CATEGORY = "__modelyard_unseen__"


@dataclass
class Verdict:
    rows: dict[str, int] = field(default_factory=dict)
    """How many rows of each kind were compared."""
    max_difference: float = 0.0
    label_mismatches: int = 0
    near_ties: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def add(self, kind: str, expected: "Outputs", got: "Outputs") -> None:
        self.rows[kind] = self.rows.get(kind, 0) + len(expected.values)
        if expected.values.shape != got.values.shape:
            self.problems.append(
                f"{kind} rows: outputs of shape {got.values.shape}, not {expected.values.shape}"
            )
            return
        if expected.labels is None:  # a regressor
            scale = np.maximum(1.0, np.abs(expected.values))
            difference, tolerance = np.abs(got.values - expected.values) / scale, REGRESSION_TOLERANCE
            bound = f"{tolerance:g} * max(1, |value|)"
        else:
            difference, tolerance = np.abs(got.values - expected.values), TOLERANCE
            bound = f"{tolerance:g}"
            self._probabilities(kind, got.values)
        worst = float(np.nanmax(difference)) if difference.size else 0.0
        if np.isnan(difference).any():
            worst = float("inf")
        self.max_difference = max(self.max_difference, worst)
        if worst > tolerance:
            rows = int((difference.reshape(len(difference), -1) > tolerance).any(axis=1).sum())
            self.problems.append(f"{kind} rows: {rows} differ by more than {bound} (up to {worst:.3g})")
        if expected.labels is not None and got.labels is not None:
            decided = ~near_ties(got.values)
            self.near_ties += int((~decided).sum())
            wrong = int((expected.labels[decided] != got.labels[decided]).sum())
            self.label_mismatches += wrong
            if wrong:
                self.problems.append(f"{kind} rows: {wrong} get another label than scikit-learn's")

    def _probabilities(self, kind: str, probabilities: np.ndarray) -> None:
        outside = int((~within_unit(probabilities)).sum())
        if outside:
            self.problems.append(f"{kind} rows: {outside} with a probability outside [0, 1]")
        off = int((np.abs(probabilities.sum(axis=1) - 1.0) > SUM_TOLERANCE).sum())
        if off:
            self.problems.append(
                f"{kind} rows: {off} whose probabilities do not sum to 1 within {SUM_TOLERANCE:g}"
            )

    def summary(self) -> str:
        total = sum(self.rows.values())
        kinds = ", ".join(f"{count} {kind}" for kind, count in self.rows.items())
        if self.passed:
            return (
                f"verified on {total} rows ({kinds}): largest difference {self.max_difference:.2g}, "
                f"labels equal ({self.near_ties} near ties left to scikit-learn)"
            )
        return f"not verified on {total} rows ({kinds}): " + "; ".join(self.problems)


@dataclass
class Outputs:
    values: np.ndarray
    """Probabilities (rows x classes) or regression outputs."""
    labels: np.ndarray | None = None


def input_rows(
    schema: InputSchema, sample: pd.DataFrame | None, rng: np.random.Generator, random_rows: int = 500
) -> Iterator[tuple[str, pd.DataFrame]]:
    """Rows in the model's input space, by kind: sample, categories, random."""
    base = sample if sample is not None and len(sample) else pd.DataFrame([schema.example_row()])
    base = base[schema.names].reset_index(drop=True)
    if sample is not None and len(sample):
        yield "sample", base
    edges: list[dict[Any, Any]] = []
    for feature in schema.features:
        values = list(feature.categories or [])
        if values and feature.unknown_categories == "allowed":
            values.append(UNKNOWN_CATEGORY if feature.dtype != NUMBER else -987654.0)
        for value in values:
            row = base.iloc[len(edges) % len(base)].to_dict()
            row[feature.name] = value
            edges.append(row)
    if edges:
        yield "category", pd.DataFrame(edges, columns=schema.names)
    yield "random", _mixed(schema, base, rng, random_rows)


def _mixed(schema: InputSchema, base: pd.DataFrame, rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Each value drawn from its column, numbers spread around what was seen (wider with one row)."""
    columns = {}
    for feature in schema.features:
        seen = base[feature.name].dropna().to_numpy()
        if feature.categories:
            choices = np.asarray(feature.categories, dtype=object)
            columns[feature.name] = choices[rng.integers(len(choices), size=rows)]
        elif feature.dtype == NUMBER:
            seen = seen.astype(float) if len(seen) else np.zeros(1)
            spread = max(float(np.std(seen)), 0.1 * float(np.abs(seen).max()), 1.0)
            columns[feature.name] = rng.choice(seen, size=rows) + rng.normal(0, spread, rows)
        else:
            columns[feature.name] = rng.choice(
                seen.astype(object) if len(seen) else np.array([""]), size=rows
            )
    return pd.DataFrame(columns, columns=schema.names)


def threshold_rows(final: Any, base: np.ndarray, rng: np.random.Generator, limit: int = 3000) -> np.ndarray:
    """Rows of the final estimator's input at its trees' split thresholds and one float32 step
    either side; empty for an estimator without trees."""
    splits = _splits(final)
    if not len(splits) or not len(base):
        return np.empty((0, base.shape[1] if base.ndim == 2 else 0))
    chosen = splits[rng.choice(len(splits), size=min(len(splits), limit // 3), replace=False)]
    rows = np.repeat(base[rng.integers(len(base), size=len(chosen))], 3, axis=0).astype(np.float64)
    for index, (feature, threshold) in enumerate(chosen):
        at = np.float32(threshold)
        for step, value in enumerate(
            (np.nextafter(at, np.float32(-np.inf)), at, np.nextafter(at, np.float32(np.inf)))
        ):
            rows[3 * index + step, int(feature)] = float(value)
    return rows


def _splits(final: Any) -> np.ndarray:
    """(feature, threshold) of every split of every tree, without repeats."""
    trees = [final] if hasattr(final, "tree_") else list(np.ravel(getattr(final, "estimators_", [])))
    pairs = [
        np.column_stack([tree.tree_.feature[inner], tree.tree_.threshold[inner]])
        for tree in trees
        if hasattr(tree, "tree_")
        for inner in [tree.tree_.feature >= 0]
    ]
    return np.unique(np.concatenate(pairs), axis=0) if pairs else np.empty((0, 2))
