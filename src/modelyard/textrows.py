"""Where the rows of a CSV or JSON Lines file are in its bytes: where each ends, and on which line it
starts. One vectorized pass, a block at a time, so memory stays flat whatever the file.

A CSV row ends at a newline outside double quotes (a quoted value may hold newlines, and then a row
spans several lines); an empty line is no row for the CSV parser, nor here. A JSON Lines row is a
line. Splitting a big file into parts (batch/parts.py) cuts at row ends; errors name a row's line.
"""

from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np

SCAN_BLOCK = 1 << 22
QUOTE, NEWLINE, CR = ord('"'), ord("\n"), ord("\r")


def row_spans(handle: BinaryIO, quoted: bool, skip_empty: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each block read from the handle's position on: the byte offsets just after the rows that
    end in it, and the line each of those rows starts on (the handle's position is on line 1)."""
    position = handle.tell()
    in_quotes = 0
    row_start, row_start_line = position, 1
    newlines_before = 0  # newline bytes before this block, quoted or not
    last_byte = -1
    while block := handle.read(SCAN_BLOCK):
        data = np.frombuffer(block, dtype=np.uint8)
        every = data == NEWLINE
        newline = every.copy()
        quotes = data == QUOTE if quoted else None
        if quotes is not None and (in_quotes or quotes.any()):  # most blocks have no quote at all
            inside = np.bitwise_xor.accumulate(quotes.view(np.uint8)) ^ in_quotes
            in_quotes = int(inside[-1])
            newline &= inside == 0
        index = np.flatnonzero(newline)
        ends = position + index + 1
        # the line after each row end: one past the newlines up to it (that one included)
        after = 1 + newlines_before + np.searchsorted(np.flatnonzero(every), index, side="right")
        starts_on = np.concatenate(([row_start_line], after[:-1])).astype(np.int64)
        kept = np.ones(len(ends), dtype=bool)
        if skip_empty and len(ends):
            starts = np.concatenate(([row_start], ends[:-1]))
            before = np.where(index > 0, data[np.maximum(index - 1, 0)], last_byte)
            kept = ~((ends - starts == 1) | ((ends - starts == 2) & (before == CR)))
        if len(ends):
            row_start, row_start_line = int(ends[-1]), int(after[-1])
        last_byte = int(data[-1])
        position += len(block)
        newlines_before += int(np.count_nonzero(every))
        yield ends[kept], starts_on[kept]
    if position > row_start:
        yield np.array([position]), np.array([row_start_line])  # a last row without a newline


def newlines_before(handle: BinaryIO, offset: int) -> int:
    """Newline bytes in the first `offset` bytes of the file."""
    handle.seek(0)
    count, left = 0, offset
    while left > 0 and (block := handle.read(min(SCAN_BLOCK, left))):
        count += int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == NEWLINE))
        left -= len(block)
    return count


class CsvLines:
    """The line each data row of a CSV starts on, for rows asked in increasing order (as a run
    reports its bad rows): it reads on only as far as the last row asked, so a file without a bad
    row is never read twice.

    `open_at()` gives it a handle of its own on the file, at the rows numbered from `first_row` on
    (after the header, or where a part of a split file starts).
    """

    def __init__(self, open_at: Callable[[], BinaryIO], first_row: int) -> None:
        self._open_at = open_at
        self._row = first_row  # the first row of the block held
        self._lines = np.empty(0, dtype=np.int64)
        self._spans: Iterator[tuple[np.ndarray, np.ndarray]] | None = None
        self._shift = 0

    def line(self, row: int) -> int:
        if row < self._row:
            raise ValueError(f"row {row} asked after row {self._row}: ask in increasing order")
        if self._spans is None:
            self._spans = self._scan()
        while row >= self._row + len(self._lines):
            self._row += len(self._lines)
            ends, self._lines = next(self._spans, (None, np.empty(0, dtype=np.int64)))
            if ends is None:
                raise IndexError(f"the file has no data row {row}")
        return int(self._lines[row - self._row]) + self._shift

    def _scan(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        handle = self._open_at()
        start = handle.tell()
        self._shift = newlines_before(handle, start)  # the lines above: the header's, or a part's
        handle.seek(start)
        return row_spans(handle, quoted=True, skip_empty=True)
