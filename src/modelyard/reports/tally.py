"""What a run counts for its report, chunk by chunk as it streams: its valid rows on the reference
profile's bins, its predictions likewise, and its invalid rows by field and code.

Counts only add up, so the parts of a split job each keep a tally, and the join sums them: a split
run and a whole one give the same counts, hence the same report.
"""

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from modelyard.reports.profile import Profile


class Tally:
    def __init__(self, profile: Profile | None, note: str | None = None) -> None:
        self.profile = profile
        self.note = note
        """Why there is no profile to compare with, when there is none."""
        self.counts: dict[str, np.ndarray] = {}
        if profile is not None:
            for bins in (*profile.features, profile.prediction):
                self.counts[bins.name] = np.zeros(len(bins.labels), dtype=np.int64)
        self.invalid: Counter[tuple[str, str]] = Counter()
        self.seconds = 0.0
        """Time spent counting, what the report cost the run."""

    def add_rows(self, frame: pd.DataFrame, predictions: np.ndarray) -> None:
        """Valid rows, as validation left them, and what the model predicted for them."""
        if self.profile is None or not len(frame):
            return
        started = time.perf_counter()
        for bins in self.profile.features:
            self.counts[bins.name] += bins.count(frame[bins.name])
        self.counts[self.profile.prediction.name] += self.profile.prediction.count(predictions)
        self.seconds += time.perf_counter() - started

    def add_problems(self, problems: Iterable[dict[str, Any]]) -> None:
        """Invalid rows' error records: each row counts once under every field and code it broke."""
        for record in problems:
            found = {(record["field"], record["code"])}
            found.update((other["field"], other["code"]) for other in record.get("other_problems", ()))
            self.invalid.update(found)

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": {name: counts.tolist() for name, counts in self.counts.items()},
            "invalid": [[field, code, n] for (field, code), n in sorted(self.invalid.items(), key=str)],
            "seconds": self.seconds,
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add another tally's counts (a part's, as it recorded them)."""
        for name, counts in data.get("counts", {}).items():
            if name in self.counts:
                self.counts[name] += np.asarray(counts, dtype=np.int64)
        for field, code, n in data.get("invalid", []):
            self.invalid[(field, code)] += n
        self.seconds += data.get("seconds", 0.0)
