"""Progress of a long scoring run, and a terminal progress bar for it (rows, rows/s, time left),
silent off a terminal."""

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm


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


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[Progress], None]]:
    """A hook for each new progress report. Without a known row count, the total is estimated from
    the share of the file read so far, so the time left is there from the first chunk."""
    bar = tqdm(desc=label, unit=" rows", unit_scale=True, disable=None, dynamic_ncols=True)

    def update(progress: Progress) -> None:
        rows = progress.rows_done + progress.rows_failed
        total = progress.rows_total
        if total is None and progress.fraction:
            total = round(rows / progress.fraction)
        if total is not None and total != bar.total:
            bar.total = total
        bar.update(rows - bar.n)
        if progress.rows_failed:
            bar.set_postfix(invalid=progress.rows_failed, refresh=False)

    try:
        yield update
    finally:
        bar.close()
