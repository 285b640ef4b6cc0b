"""Splitting a big file into parts that several workers score at once, and joining their outputs.

A CSV is split by one quote-aware pass over its bytes (a newline inside a quoted value does not end
a row), recording the byte offset and first row of every part; JSON Lines by newlines; Parquet by
row groups. Each part then knows its rows' numbers in the whole file, so the errors it reports
and the order of the joined output are those of the file itself.
"""

import io
import itertools
import math
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np

from modelyard.tabular import (
    Chunk,
    Opener,
    as_opener,
    csv_header,
    csv_rows,
    jsonl_rows,
    parquet_file,
    parquet_rows,
)
from modelyard.textrows import CsvLines, row_spans


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
    objects: tuple[int, ...] = ()
    """An s3:// prefix: the objects it holds, as indices into the job's list of them."""
    low: str | None = None
    """A table: the smallest value of the key's first column it holds (none for the first part)."""
    high: str | None = None
    """A table: the value of the key's first column where the next part starts (none for the last)."""
    snapshot: str | None = None
    """A table: the snapshot every part of the job reads, exported by its planner."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("low", "high", "snapshot"):
            if data[name] is None:
                del data[name]  # a file's part keeps the keys it always had
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Part":
        return cls(
            **{
                **data,
                "row_groups": tuple(data.get("row_groups", ())),
                "objects": tuple(data.get("objects", ())),
            }
        )


def plan(file: Path | Opener, fmt: str, part_rows: int, workers: int = 1) -> list[Part]:
    """Parts of about `part_rows` rows; as many as a multiple of `workers`, so that no worker is left
    with the last part alone. One part means the file is not worth splitting."""
    source = as_opener(file)
    if fmt == "parquet":
        metadata = parquet_file(source).metadata
        sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
        rows = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))
        cuts = _cuts(rows, part_rows, workers)
        return [
            Part(i, int(rows[a]), int(rows[b] - rows[a]), row_groups=tuple(range(a, b)))
            for i, (a, b) in enumerate(itertools.pairwise(cuts))
        ]
    with source() as handle:
        if fmt == "csv":
            csv_header(handle)
        rows, offsets = _checkpoints(handle, max(1, min(10_000, part_rows // 4)), quoted=fmt == "csv")
    cuts = _cuts(rows, part_rows, workers)
    return [
        Part(
            i,
            int(rows[a]),
            int(rows[b] - rows[a]),
            offset=int(offsets[a]),
            length=int(offsets[b] - offsets[a]),
        )
        for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ]


def plan_objects(sizes: list[int], part_bytes: int, workers: int = 1) -> list[Part]:
    """Parts of whole objects, consecutive in key order, of about `part_bytes` each."""
    bytes_before = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))
    cuts = _cuts(bytes_before, max(part_bytes, 1), workers)
    return [Part(i, 0, 0, objects=tuple(range(a, b))) for i, (a, b) in enumerate(itertools.pairwise(cuts))]


def _cuts(rows: np.ndarray, part_rows: int, workers: int) -> list[int]:
    """Indices of the checkpoints (rows[i] rows before it) where parts begin and end."""
    total = int(rows[-1])
    count = math.ceil(total / part_rows)
    if count > 1:
        count = math.ceil(count / workers) * workers
    targets = [round(k * total / count) for k in range(1, count)] if count > 1 else []
    inner = {int(np.abs(rows - target).argmin()) for target in targets}
    return sorted({0, len(rows) - 1} | inner)


def _checkpoints(handle: BinaryIO, step: int, quoted: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every `step` rows, the rows read so far and the byte where the next row begins, from the
    handle's position to the end of the file. A row ends at a newline outside quotes; an empty line
    is no row for the CSV parser (nor here), while JSON Lines numbers every line."""
    rows, offsets = [0], [handle.tell()]
    count = 0
    end = handle.tell()
    for ends, _ in row_spans(handle, quoted, skip_empty=quoted):
        # the k-th end of this block closes row count+k+1: keep those that are a multiple of step
        marks = np.flatnonzero((count + np.arange(1, len(ends) + 1)) % step == 0)
        rows.extend(count + marks + 1)
        offsets.extend(ends[marks])
        count += len(ends)
        end = int(ends[-1]) if len(ends) else end
    if rows[-1] != count:
        rows.append(count)
        offsets.append(end)
    return np.asarray(rows, dtype=np.int64), np.asarray(offsets, dtype=np.int64)


def read_part(
    handle: BinaryIO, fmt: str, part: Part, chunk_rows: int, file: Path | Opener
) -> Iterator[Chunk]:
    """The chunks of one part, with the rows numbered as in the whole file."""
    source = as_opener(file)
    if fmt == "parquet":
        return parquet_rows(parquet_file(source), list(part.row_groups), chunk_rows, part.first_row)
    if fmt == "jsonl":
        handle.seek(part.offset)
        return jsonl_rows(handle, chunk_rows, part.first_row, limit=part.length)
    handle.seek(0)
    names = csv_header(handle)
    handle.seek(part.offset)
    window = cast(BinaryIO, _Window(handle, part.length))
    return csv_rows(
        window, names, chunk_rows, part.first_row, CsvLines(partial(_at, source, part.offset), part.first_row)
    )


def _at(source: Opener, offset: int) -> BinaryIO:
    handle = source()
    handle.seek(offset)
    return handle


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


def join(parts: list[Opener], fmt: str, sink: BinaryIO) -> None:
    """Write the parts, in order, as one file of `fmt` into `sink` (the caller commits it)."""
    if fmt == "parquet":
        _join_parquet(parts, sink)
        return
    for index, part in enumerate(parts):
        with part() as source:
            if fmt == "csv" and index:
                csv_header(source)  # the first part's header is the file's
            shutil.copyfileobj(source, sink, 1 << 20)


def _join_parquet(parts: list[Opener], sink: BinaryIO) -> None:
    import pyarrow.parquet as pq  # here, as in tabular.py

    writer: pq.ParquetWriter | None = None
    try:
        for opener in parts:
            with opener() as handle:
                part = pq.ParquetFile(handle)
                if writer is None:
                    writer = pq.ParquetWriter(sink, part.schema_arrow)
                for group in range(part.num_row_groups):
                    writer.write_table(part.read_row_group(group))
        if writer is None:
            raise ValueError("no parts to join")
    finally:
        if writer is not None:
            writer.close()
