"""Reading and writing the tabular files modelyard scores: CSV, Parquet and JSON Lines.

Files are read in chunks through pyarrow, so memory stays flat whatever their size, and each chunk
knows where its rows sit in the whole file. The API reads an upload as one chunk of the same readers.

Row numbers here are 0-based positions among the data rows of the file (the CSV header is not a
row). A CSV row with the wrong number of fields, or a JSON Lines line that is not a JSON object,
is a malformed row: it is skipped by the reader and reported, with its number, for the caller to
refuse the file (the API) or to set aside (batch scoring).
"""

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from modelyard.errors import UnparseableFile
from modelyard.textrows import CsvLines

if TYPE_CHECKING:  # imported where used: a process that meets no Parquet file saves 4 MB
    import pyarrow.parquet as pq

CSV_BLOCK_BYTES = 1 << 20
"""pyarrow reads about twenty blocks ahead: 1 MiB blocks keep that read-ahead near 20 MiB."""

Opener = Callable[[], BinaryIO]
"""Opens a file afresh, at its start: on the data volume, or an object in a store."""
Source = Path | BinaryIO | Opener


@dataclass
class Table:
    frame: pd.DataFrame
    """Every column of the input as read; extra columns pass through to the output."""
    text_values: bool = False
    """True when every value arrived as text (CSV) and numbers still have to be parsed."""
    records: list[dict[str, Any]] | None = None
    """The parsed records, for inputs made of JSON objects (a key can be absent in one record)."""
    arrow: pa.Table | None = None
    """The rows as read from a file, to pass through to the output."""
    line_of: Callable[[int], int] | None = None
    """The line of a CSV or JSON Lines file a data row starts on, asked in increasing row order."""

    @classmethod
    def from_records(cls, records: list[dict[str, Any]]) -> "Table":
        return cls(frame=pd.DataFrame.from_records(records), records=records)


@dataclass
class MalformedRow:
    row: int
    """0-based data row of the file."""
    message: str
    text: str | None = None
    """The row as it stands in the file, when the parser gives it."""


@dataclass
class Chunk:
    table: Table
    rows: np.ndarray
    """The file's data row of each row of `table` (malformed rows leave gaps)."""
    malformed: list[MalformedRow] = field(default_factory=list)
    """Malformed rows found since the previous chunk."""
    progress: float | None = None
    """Share of the file read so far, 0 to 1, when it can be told."""
    rows_total: int | None = None
    """Rows in the whole file, when the format records it (Parquet)."""
    source: str | None = None
    """The object the rows come from, when a job reads several (an s3:// prefix)."""
    keys: pa.Table | None = None
    """For a table's rows: their key columns, which name a bad row instead of its number."""


def read_table(content: bytes, fmt: str) -> Table:
    """A whole upload as one table; a malformed row or an empty file is refused."""
    chunks = list(read_chunks(io.BytesIO(content), fmt, chunk_rows=1 << 62))
    malformed = [row for chunk in chunks for row in chunk.malformed]
    table = chunks[0].table
    if malformed:
        assert table.line_of is not None  # Parquet has no malformed rows
        details = [
            {"row": m.row, "line": table.line_of(m.row), "message": m.message} for m in malformed[:100]
        ]
        joined = joined_by(list(table.frame.columns)) if fmt == "csv" else None
        hint = f"; {joined}" if joined else ""
        raise UnparseableFile(
            f"the {fmt} file cannot be parsed: line {details[0]['line']}: {details[0]['message']}{hint}",
            details,
        )
    if table.frame.empty:
        raise UnparseableFile(f"the {fmt} file has no rows to score")
    return table


SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}


def joined_by(columns: list[str]) -> str | None:
    """Why a CSV read as one column is probably separated by something else than commas (as
    spreadsheets write it where the decimal mark is a comma); None when it does not look so."""
    if len(columns) != 1:
        return None
    for separator, said in SEPARATORS.items():
        if separator in str(columns[0]):
            return (
                f"the columns look joined by {said} (one column {str(columns[0])[:80]!r}): modelyard reads "
                "comma-separated CSV; save the file with commas as separators (such files often have "
                "decimal commas too: use points), or as Parquet or JSON Lines"
            )
    return None


def read_chunks(source: Source, fmt: str, chunk_rows: int) -> Iterator[Chunk]:
    """The rows of a whole file, `chunk_rows` at a time; at least one chunk, empty for no rows."""
    if fmt == "csv":
        handle = _open(source)
        names = csv_header(handle)
        lines = CsvLines(_reopen(source, handle.tell()), first_row=0)
        return csv_rows(handle, names, chunk_rows, start_row=0, lines=lines)
    if fmt == "parquet":
        return parquet_rows(parquet_file(source), None, chunk_rows, start_row=0)
    return jsonl_rows(_open(source), chunk_rows, start_row=0, limit=None)


def as_opener(source: Path | Opener) -> Opener:
    """A file on this machine, or an opener already."""
    if isinstance(source, Path):
        path = source
        return lambda: path.open("rb")
    return source


def _open(source: Source) -> BinaryIO:
    if isinstance(source, Path):
        return source.open("rb")
    return source() if callable(source) else source


def _reopen(source: Source, offset: int) -> Callable[[], BinaryIO]:
    """A second handle on the same bytes, at `offset`: a file opened again, or the same buffer."""

    def at_offset() -> BinaryIO:
        handle: BinaryIO
        if isinstance(source, io.BytesIO):
            handle = io.BytesIO(source.getvalue())  # shares the bytes: BytesIO copies on write only
        elif callable(source):
            handle = source()
        elif isinstance(source, Path) or isinstance(getattr(source, "name", None), str):
            handle = _open(Path(source if isinstance(source, Path) else source.name))
        else:
            raise TypeError(f"cannot read {source!r} twice")
        handle.seek(offset)
        return handle

    return at_offset


def _size(handle: BinaryIO) -> int | None:
    try:
        position = handle.tell()
        size = handle.seek(0, io.SEEK_END)
        handle.seek(position)
        return size - position
    except (OSError, ValueError):
        return None


# ---- CSV ------------------------------------------------------------------------------------


def csv_header(handle: BinaryIO) -> list[str]:
    """Read the header line (quotes and all) and leave `handle` at the first data row."""
    first = handle.readline()
    while first.count(b'"') % 2:  # a quoted header name holding a newline
        more = handle.readline()
        if not more:
            break
        first += more
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnparseableFile(f"the CSV file is not UTF-8 text: {exc}") from exc
    try:
        names = next(csv.reader([text.rstrip("\r\n")]), [])
    except csv.Error as exc:  # a bare carriage return inside the line, say
        raise UnparseableFile(
            f"the CSV file's header line is not CSV ({exc}): quote a name that holds a line break"
        ) from exc
    if not names or names == [""]:
        raise UnparseableFile("the CSV file is empty: it has no header line of column names")
    return names


def csv_reader(handle: BinaryIO, names: list[str], on_malformed: Any) -> pacsv.CSVStreamingReader:
    """A pyarrow reader of data rows (no header) where every value is text: the model's input
    schema, not a guess from the data, decides what is a number."""
    return pacsv.open_csv(
        handle,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False, column_names=names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_malformed),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=True,
            null_values=[""],
        ),
    )


def csv_rows(
    handle: BinaryIO, names: list[str], chunk_rows: int, start_row: int, lines: CsvLines | None = None
) -> Iterator[Chunk]:
    """Chunks of the data rows from `handle`'s position on, the first of them being `start_row`;
    `lines`, when given, tells the line each starts on."""
    size = _size(handle)
    start = handle.tell() if size is not None else 0
    skipped: list[int] = []  # malformed rows, relative to start_row, in file order
    pending: list[MalformedRow] = []

    def on_malformed(row: Any) -> str:
        if row.number is None:
            return "error"  # cannot say which row: let the parse error stand
        # pyarrow counts rows from 1, header included when there is one in the stream
        relative = row.number - 1
        skipped.append(relative)
        pending.append(
            MalformedRow(
                start_row + relative,
                f"expected {row.expected_columns} fields, found {row.actual_columns}",
                row.text[:200] if row.text else None,
            )
        )
        return "skip"

    try:
        reader = csv_reader(handle, names, on_malformed)
    except pa.ArrowInvalid as exc:
        if "Empty CSV" not in str(exc):
            raise _csv_error(exc) from exc
        reader = None
    schema = reader.schema if reader else pa.schema([(n, pa.string()) for n in names])
    parsed = 0  # rows handed out so far
    shown = 0.0  # the progress reported so far

    def rows_of(table: pa.Table, produced: int, final: bool = False) -> Chunk:
        nonlocal parsed, shown
        positions = np.arange(parsed, parsed + table.num_rows)
        parsed += table.num_rows
        gaps = np.asarray(skipped, dtype=np.int64)
        gaps.sort()
        # position p is the data row d with d - (malformed rows before d) == p
        relative = positions + np.searchsorted(gaps - np.arange(len(gaps)), positions, side="right")
        if size:
            # The parser reads ahead (a small file whole at once): the share of the file it has
            # read, times the share of the rows parsed from it that are handed out; never backwards
            read = (handle.tell() - start) / size
            shown = max(shown, min(read * (parsed / produced if produced else 1.0), 1.0))
        rows = relative + start_row
        # the parser reads ahead: keep a later row's report for the chunk it belongs to
        last = rows[-1] if len(rows) and not final else None
        mine = [m for m in pending if last is None or m.row <= last]
        pending[:] = [m for m in pending if m not in mine]
        return Chunk(
            table=Table(
                frame=table.to_pandas(), text_values=True, arrow=table, line_of=lines.line if lines else None
            ),
            rows=rows,
            malformed=mine,
            progress=shown if size else None,
        )

    yielded = False
    for table, produced in _rebatch(reader, schema, chunk_rows):
        yielded = True
        yield rows_of(table, produced)
    if not yielded or pending:
        yield rows_of(schema.empty_table(), parsed, final=True)


def _rebatch(
    reader: pacsv.CSVStreamingReader | None, schema: pa.Schema, chunk_rows: int
) -> Iterator[tuple[pa.Table, int]]:
    """Batches of whatever size the parser makes, regrouped into tables of `chunk_rows` rows; each
    with the rows parsed so far."""
    if reader is None:
        return
    held: list[pa.RecordBatch] = []
    count = produced = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:
            raise _csv_error(exc) from exc
        held.append(batch)
        count += batch.num_rows
        produced += batch.num_rows
        while count >= chunk_rows:
            table = pa.Table.from_batches(held, schema)
            yield table.slice(0, chunk_rows), produced
            rest = table.slice(chunk_rows)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held, schema), produced


def _csv_error(exc: Exception) -> UnparseableFile:
    if "invalid UTF8" in str(exc):
        return UnparseableFile(f"the CSV file is not UTF-8 text: {exc}")
    return UnparseableFile(f"the CSV file cannot be parsed: {exc}")


# ---- Parquet --------------------------------------------------------------------------------


def parquet_file(source: Source) -> "pq.ParquetFile":
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(source() if callable(source) else source)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UnparseableFile(f"the Parquet file cannot be read: {exc}") from exc


def parquet_rows(
    file: "pq.ParquetFile", row_groups: list[int] | None, chunk_rows: int, start_row: int
) -> Iterator[Chunk]:
    """Chunks of a Parquet file, or of some of its row groups, one row group read at a time."""
    groups = row_groups if row_groups is not None else list(range(file.num_row_groups))
    total = sum(file.metadata.row_group(g).num_rows for g in groups)
    done = 0
    batches = file.iter_batches(batch_size=chunk_rows, row_groups=groups) if groups else iter(())
    try:
        for batch in batches:
            table = pa.Table.from_batches([batch])
            rows = np.arange(start_row + done, start_row + done + table.num_rows)
            done += table.num_rows
            yield typed_chunk(table, rows, done / total, total)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise UnparseableFile(f"the Parquet file cannot be read: {exc}") from exc
    if not done:
        yield typed_chunk(file.schema_arrow.empty_table(), np.arange(0), 1.0, 0)


def typed_chunk(table: pa.Table, rows: np.ndarray, progress: float, total: int) -> Chunk:
    frame = table.to_pandas().reset_index(drop=True)
    return Chunk(Table(frame=frame, arrow=table), rows, progress=progress, rows_total=total)


# ---- JSON Lines -----------------------------------------------------------------------------


def jsonl_rows(handle: BinaryIO, chunk_rows: int, start_row: int, limit: int | None) -> Iterator[Chunk]:
    """Chunks of JSON objects, one per line; a line's data row is its line number, from 0.

    Blank lines are skipped. `limit` stops after that many bytes (a part of a larger file).
    """
    size = _size(handle) if limit is None else limit
    read = 0
    line_number = start_row
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    malformed: list[MalformedRow] = []
    yielded = False
    while limit is None or read < limit:
        line = handle.readline()
        if not line:
            break
        read += len(line)
        if line.strip():
            record, problem = _json_object(line)
            if problem is None:
                records.append(record)
                rows.append(line_number)
            else:
                text = line.decode("utf-8", errors="replace").strip()[:200]
                malformed.append(MalformedRow(line_number, problem, text))
        line_number += 1
        if len(records) >= chunk_rows:
            yield _records_chunk(records, rows, malformed, read / size if size else None)
            records, rows, malformed, yielded = [], [], [], True
    if records or malformed or not yielded:
        yield _records_chunk(records, rows, malformed, 1.0)


def _jsonl_line(row: int) -> int:
    """A JSON Lines row is its line: blank lines are numbered too."""
    return row + 1


def _json_object(line: bytes) -> tuple[dict[str, Any], str | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return {}, f"not JSON: {exc.msg} at character {exc.pos + 1}"
    except UnicodeDecodeError:
        return {}, "not UTF-8 text"
    if not isinstance(record, dict):
        return {}, "not a JSON object"
    return record, None


def _records_chunk(
    records: list[dict[str, Any]], rows: list[int], malformed: list[MalformedRow], progress: float | None
) -> Chunk:
    table = Table.from_records(records)
    table.arrow = records_to_arrow(records)
    table.line_of = _jsonl_line
    return Chunk(
        table=table,
        rows=np.asarray(rows, dtype=np.int64),
        malformed=malformed,
        progress=progress,
    )


def records_to_arrow(records: list[dict[str, Any]]) -> pa.Table:
    """JSON objects as a table, every key a column; a column of mixed types is kept as JSON text."""
    names = list(dict.fromkeys(key for record in records for key in record))
    columns = {}
    for name in names:
        values = [record.get(name) for record in records]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[name] = pa.array(
                [None if v is None else json.dumps(v, ensure_ascii=False) for v in values], pa.string()
            )
    return pa.table(columns) if columns else pa.table({})


# ---- Writing --------------------------------------------------------------------------------


class TableWriter:
    """Writes tables of one schema, chunk after chunk, to one file in one format.

    The first table fixes the columns; later ones are cast to them (a JSON Lines chunk may lack a
    key that another had). CSV values are quoted only in the chunks that need it, so a plain file
    comes out as plain as it went in.
    """

    def __init__(self, sink: Path | BinaryIO, fmt: str, header: bool = True) -> None:
        self.sink = sink
        self.fmt = fmt
        self.header = header
        self.schema: pa.Schema | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._handle: BinaryIO | None = None

    def write(self, table: pa.Table) -> None:
        if self.fmt == "jsonl":  # JSON needs no fixed schema: each line says what it holds
            self._output().write(jsonl_bytes(table))
            return
        if self.schema is None:
            self.schema = table.schema
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                self._parquet = pq.ParquetWriter(self.sink, table.schema)
            elif self.header:
                self._output().write(_csv_line(table.column_names))
        else:
            table = _conform(table, self.schema)
        if self._parquet is not None:
            self._parquet.write_table(table)
        elif table.num_rows:
            options = pacsv.WriteOptions(include_header=False, quoting_style=_quoting(table))
            pacsv.write_csv(table, self._output(), options)

    def _output(self) -> BinaryIO:
        if self._handle is None:
            self._handle = self.sink.open("wb") if isinstance(self.sink, Path) else self.sink
        return self._handle

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._handle is not None and isinstance(self.sink, Path):
            self._handle.close()

    def __enter__(self) -> "TableWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _csv_line(values: list[str]) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(values)
    return text.getvalue().encode()


def _quoting(table: pa.Table) -> str:
    """'none' when no text value holds a comma, a quote or a line break, else quotes on text."""
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            if any(_has_special_bytes(chunk) for chunk in column.chunks):
                return "needed"
        elif not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            return "needed"
    return "none"


def _has_special_bytes(strings: pa.Array) -> bool:
    """Looks at the bytes of the whole buffer, a slice's neighbours too: a false alarm only quotes."""
    data = strings.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()
    return any(special in raw for special in (b",", b'"', b"\n", b"\r"))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly the columns of `schema`, of its types (a missing column is null)."""
    if table.schema.equals(schema):
        return table
    columns = [
        table[name] if name in table.column_names else pa.nulls(table.num_rows, schema.field(name).type)
        for name in schema.names
    ]
    try:
        return pa.Table.from_arrays(columns, names=schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise UnparseableFile(
            f"a column changes type from one part of the file to the next ({exc}); "
            "write the output as jsonl, which has no fixed column types"
        ) from exc


def write_table(table: pa.Table | pd.DataFrame, fmt: str) -> bytes:
    """A whole table as the bytes of a file."""
    if isinstance(table, pd.DataFrame):
        if fmt == "csv":
            return table.to_csv(index=False).encode()  # any mix of types, as text
        if fmt == "jsonl":
            records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
            return jsonl_bytes(records_to_arrow([{str(k): v for k, v in r.items()} for r in records]))
        table = pa.Table.from_pandas(table, preserve_index=False)
    sink = io.BytesIO()
    with TableWriter(sink, fmt) as writer:
        writer.write(table)
    return sink.getvalue()


def jsonl_bytes(table: pa.Table) -> bytes:
    """One JSON object per row. Not pandas' to_json, which rounds floats to 10 significant digits."""
    lines = (
        json.dumps({key: _json_value(value) for key, value in row.items()}, ensure_ascii=False, default=str)
        for row in table.to_pylist()
    )
    text = "".join(line + "\n" for line in lines)
    return text.encode()


def _json_value(value: Any) -> Any:
    """JSON has no NaN or infinity: a missing number is null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
