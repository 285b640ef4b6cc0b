"""The bins a feature's values fall into: fixed once, from the reference rows, then counted on every
run with the very same rule, so that a run's counts and the reference's compare bin for bin.

- A numeric feature: quantile edges of the reference (deciles, each a value the reference has,
  ties merged), so each bin holds about a tenth of the reference; a value v falls in the first bin
  whose edge is >= v, the last bin is open above; then one bin for missing values.
- A categorical feature (or a classifier's predictions): one bin per category of the reference,
  most frequent first (at most MAX_CATEGORIES), then one for every other value ("unseen"), then
  one for missing values.
"""

import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

QUANTILE_BINS = 10
MAX_CATEGORIES = 100
"""Categories of the reference kept by name; rarer ones count as unseen, in the reference too."""
UNSEEN = "unseen"
MISSING = "missing"


@dataclass(frozen=True)
class Bins:
    name: str
    kind: str
    """'numeric' or 'categorical'."""
    edges: tuple[float, ...] = ()
    categories: tuple[Any, ...] = ()

    @property
    def labels(self) -> list[str]:
        """What each bin holds, as a report prints it."""
        if self.kind == "categorical":
            return [*map(str, self.categories), UNSEEN, MISSING]
        bounds = ["-inf", *(f"{edge:.6g}" for edge in self.edges), "inf"]
        spans = [f"({low}, {high}]" for low, high in itertools.pairwise(bounds)]
        spans[-1] = spans[-1].replace("]", ")")
        return [*spans, MISSING]

    @cached_property
    def size(self) -> int:
        return len(self.labels)

    @cached_property
    def _index(self) -> Any:
        return pd.Index(list(self.categories))

    def count(self, values: Any) -> np.ndarray:
        """How many of `values` fall in each bin (the missing bin last). This runs on every column
        of every chunk a batch run scores, so it takes the fast road: one hashing pass over a
        categorical column, one comparison pass per edge over a numeric one."""
        if self.kind == "categorical":
            # a Series as it is: pandas factorizes its Arrow-backed strings without making objects
            column = values if isinstance(values, pd.Series) else np.asarray(values)
            codes, uniques = pd.factorize(column)  # a missing value: code -1
            found = self._index.get_indexer(uniques)
            lookup = np.append(np.where(found < 0, len(self.categories), found), self.size - 1)
            return np.bincount(lookup[codes], minlength=self.size)
        numbers = np.asarray(values)
        if numbers.dtype.kind in "iub":
            numbers = numbers.astype(np.float64)
        elif numbers.dtype.kind != "f":
            numbers = pd.to_numeric(pd.Series(values, copy=False), errors="coerce").to_numpy(np.float64)
        bins = np.zeros(len(numbers), dtype=np.int16)
        for edge in self.edges:  # faster than a binary search for so few edges
            bins += numbers > edge
        bins[np.isnan(numbers)] = self.size - 1
        return np.bincount(bins, minlength=self.size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            **({"edges": list(self.edges)} if self.kind == "numeric" else {}),
            **({"categories": list(self.categories)} if self.kind == "categorical" else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Bins":
        return cls(
            data["name"], data["kind"], tuple(data.get("edges", ())), tuple(data.get("categories", ()))
        )


def numeric_bins(name: str, values: Any) -> Bins:
    numbers = pd.to_numeric(pd.Series(values, copy=False), errors="coerce").to_numpy(np.float64)
    present = numbers[~np.isnan(numbers)]
    if not len(present):
        return Bins(name, "numeric")
    inner = np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1]
    edges = np.unique(np.quantile(present, inner, method="inverted_cdf"))  # values the data has
    return Bins(name, "numeric", edges=tuple(float(edge) for edge in edges))


def categorical_bins(name: str, values: Any, known: list[Any] | None = None) -> Bins:
    """The reference's categories, most frequent first; `known` ones (a classifier's classes) all,
    in their order."""
    if known is not None:
        return Bins(name, "categorical", categories=tuple(_plain(value) for value in known))
    frequencies = pd.Series(values, copy=False).dropna().value_counts(sort=False)
    ordered = sorted(frequencies.items(), key=lambda item: (-item[1], str(item[0])))
    return Bins(name, "categorical", categories=tuple(_plain(value) for value, _ in ordered[:MAX_CATEGORIES]))


def _plain(value: Any) -> Any:
    """A category as JSON keeps it: numpy's scalars become Python's."""
    return value.item() if isinstance(value, np.generic) else value
