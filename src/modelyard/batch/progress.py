"""Progress of a long scoring run, reported after every chunk, and the warnings it counts."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Progress:
    rows_done: int
    """Rows scored and written to the output."""
    rows_failed: int
    """Rows set aside in the errors file."""
    fraction: float | None
    """Share of the input read, 0 to 1, when it can be told."""
    rows_total: int | None
    """Rows in the input, when known before the end."""
    chunk_seconds: float
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """Rows scored with a caveat, counted by field and code (e.g. an unknown category)."""


def counted(warned: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
    """Warning counts as a report lists them: [{"field", "code", "count"}]."""
    return [{"field": f, "code": c, "count": n} for (f, c), n in sorted(warned.items())]


def merge_warnings(reports: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Several runs' warning counts (the parts of a split job) as one list, summed by field and code."""
    warned: Counter[tuple[str, str]] = Counter()
    for warnings in reports:
        for warning in warnings:
            warned[(warning["field"], warning["code"])] += warning["count"]
    return counted(warned)
