"""Splitting a big file into parts that several workers score at once, and joining their outputs.

A CSV is split by one quote-aware pass over its bytes (a newline inside a quoted value does not end
a row), recording the byte offset and first row of every part; JSON Lines by newlines; Parquet by
row groups. Each part then knows its rows' numbers in the whole file, so the errors it reports
and the order of the joined output are those of the file itself.
"""

import io
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pyarrow.parquet as pq

from modelyard.tabular import Chunk, csv_header, csv_rows, jsonl_rows, parquet_file, parquet_rows

SCAN_BLOCK = 1 << 22
QUOTE, NEWLINE, CR = ord('"'), ord("\n"), ord("\r")


@dataclass(frozen=True)
class Part:
    index: int
    first_row: int
    """0-based data row of the part's first row in the whole file."""
    rows: int
    offset: int = 0
    """CSV and JSON Lines: the byte where the part starts."""
    length: int = 0
    """CSV and JSON Lines: how many bytes it spans."""
    row_groups: tuple[int, ...] = ()
    """Parquet: the row groups it holds."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Part":
        return cls(**{**data, "row_groups": tuple(data.get("row_groups", ()))})


def plan(path: Path, fmt: str, part_rows: int) -> list[Part]:
    """Parts of about `part_rows` rows each; one part means the file is not worth splitting."""
    if fmt == "parquet":
        return _parquet_parts(path, part_rows)
    with path.open("rb") as handle:
        if fmt == "csv":
            csv_header(handle)
        return _text_parts(handle, part_rows, quoted=fmt == "csv", size=path.stat().st_size)


def _parquet_parts(path: Path, part_rows: int) -> list[Part]:
    metadata = parquet_file(path).metadata
    parts: list[Part] = []
    groups: list[int] = []
    first = rows = 0
    for group in range(metadata.num_row_groups):
        groups.append(group)
        rows += metadata.row_group(group).num_rows
        if rows >= part_rows or group == metadata.num_row_groups - 1:
            parts.append(Part(len(parts), first, rows, row_groups=tuple(groups)))
            first, rows, groups = first + rows, 0, []
    return parts


def _text_parts(handle: BinaryIO, part_rows: int, quoted: bool, size: int) -> list[Part]:
    """Cut after every `part_rows` rows. A row ends at a newline outside quotes; an empty line is
    no row for the CSV parser (nor for the count here), while JSON Lines numbers every line."""
    boundaries = [handle.tell()]
    firsts = [0]
    rows = 0
    for ends in _row_ends(handle, quoted, skip_empty=quoted):
        # the k-th end in this block closes row rows+k+1: cut where that is a multiple of part_rows
        cuts = np.flatnonzero((rows + np.arange(1, len(ends) + 1)) % part_rows == 0)
        boundaries.extend(int(ends[k]) for k in cuts)
        firsts.extend(rows + int(k) + 1 for k in cuts)
        rows += len(ends)
    if boundaries[-1] < size:
        boundaries.append(size)
        firsts.append(rows)
    return [
        Part(
            i,
            firsts[i],
            firsts[i + 1] - firsts[i],
            offset=boundaries[i],
            length=boundaries[i + 1] - boundaries[i],
        )
        for i in range(len(boundaries) - 1)
    ]


def _row_ends(handle: BinaryIO, quoted: bool, skip_empty: bool) -> Iterator[np.ndarray]:
    """For each block read, the byte offsets just after the rows that end in it."""
    position = handle.tell()
    in_quotes = 0
    row_start = position
    last_byte = -1
    while block := handle.read(SCAN_BLOCK):
        data = np.frombuffer(block, dtype=np.uint8)
        newline = data == NEWLINE
        if quoted:
            inside = np.bitwise_xor.accumulate((data == QUOTE).astype(np.uint8)) ^ in_quotes
            in_quotes = int(inside[-1])
            newline &= inside == 0
        index = np.flatnonzero(newline)
        ends = position + index + 1
        if skip_empty and len(ends):
            starts = np.concatenate(([row_start], ends[:-1]))
            before = np.where(index > 0, data[np.maximum(index - 1, 0)], last_byte)
            blank = (ends - starts == 1) | ((ends - starts == 2) & (before == CR))
            kept = ends[~blank]
        else:
            kept = ends
        if len(ends):
            row_start = int(ends[-1])
        last_byte = int(data[-1])
        position += len(block)
        yield kept
    if position > row_start:
        yield np.array([position])  # a last row without a newline


def read_part(handle: BinaryIO, fmt: str, part: Part, chunk_rows: int, path: Path) -> Iterator[Chunk]:
    """The chunks of one part, with the rows numbered as in the whole file."""
    if fmt == "parquet":
        return parquet_rows(parquet_file(path), list(part.row_groups), chunk_rows, part.first_row)
    if fmt == "jsonl":
        handle.seek(part.offset)
        return jsonl_rows(handle, chunk_rows, part.first_row, limit=part.length)
    handle.seek(0)
    names = csv_header(handle)
    handle.seek(part.offset)
    window = cast(BinaryIO, _Window(handle, part.length))
    return csv_rows(window, names, chunk_rows, part.first_row)


class _Window(io.RawIOBase):
    """The next `length` bytes of a file, then end of file."""

    def __init__(self, handle: BinaryIO, length: int) -> None:
        self.handle = handle
        self.left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer)[: self.left]
        count = self.handle.readinto(view)  # type: ignore[attr-defined]
        self.left -= count
        return int(count)


def join(part_files: list[Path], fmt: str, output: Path) -> None:
    """Write the parts, in order, as one file of `fmt` at `output` (the caller makes it atomic)."""
    if fmt == "parquet":
        _join_parquet(part_files, output)
        return
    with output.open("wb") as sink:
        for index, path in enumerate(part_files):
            with path.open("rb") as source:
                if fmt == "csv" and index:
                    csv_header(source)  # the first part's header is the file's
                shutil.copyfileobj(source, sink, 1 << 20)


def _join_parquet(part_files: list[Path], output: Path) -> None:
    writer: pq.ParquetWriter | None = None
    try:
        for path in part_files:
            part = pq.ParquetFile(path)
            if writer is None:
                writer = pq.ParquetWriter(output, part.schema_arrow)
            for group in range(part.num_row_groups):
                writer.write_table(part.read_row_group(group))
        if writer is None:
            raise ValueError("no parts to join")
    finally:
        if writer is not None:
            writer.close()
