"""A terminal progress bar for a long scoring run (rows, rows/s, time left), silent off a terminal."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

from modelyard.batch.progress import Progress


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
