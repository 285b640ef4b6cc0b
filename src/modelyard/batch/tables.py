"""What a job reads from PostgreSQL: a table (`postgresql://CONNECTION/SCHEMA.TABLE`) or a named
query (`postgresql://CONNECTION?query=NAME`), in chunks, in one consistent snapshot.

Rows have no order, so a table needs a key: the columns that identify a row (the `key` option, by
default the primary key). Bad rows are named by their key, and a big table is split over the
workers by ranges of the key's first column, each part reading the snapshot the planner exported
(batch/snapshots.py), so that rows changed during the job are neither missed nor scored twice.

A job reads the key, the model's features and the columns it keeps; numeric columns come as
float8, and types Arrow has no plain type for (uuid, json...) as text.
"""

import dataclasses
import itertools
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from modelyard.batch import parts as parting
from modelyard.batch.spec import JobSpec, Since
from modelyard.config import Settings
from modelyard.errors import InvalidRequest
from modelyard.stores import connections as stores
from modelyard.stores import postgres as pg
from modelyard.stores.postgres import ident, literal
from modelyard.stores.uris import TableUri, is_table_uri, parse_table
from modelyard.tabular import Chunk, typed_chunk

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Place:
    """A table or named query, through the connection that allows the use asked for."""

    uri: TableUri
    connection: stores.PostgresConnection

    def session(self, doing: str, attempts: int = pg.RETRIES) -> AbstractContextManager[Any]:
        """A connection; `attempts=1` where a caller waits (a submission) and the database must
        answer at once."""
        return pg.session(self.uri.connection, self.connection, doing, attempts)

    @property
    def relation(self) -> str:
        """The rows, as SQL's FROM names them."""
        if self.uri.query:
            return f"({self.connection.queries[self.uri.query].sql}) AS q"
        return pg.qualified(self.uri.schema, self.uri.table)


def table_uri(text: str, what: str) -> TableUri | None:
    """The table a job names, or None for a file or object."""
    return parse_table(text, what) if is_table_uri(text) else None


def place_for(settings: Settings, uri: TableUri, use: stores.Use, what: str) -> Place:
    return Place(uri, stores.load(settings.connections).for_table(uri, use, what))


def input_place(settings: Settings, spec: JobSpec) -> Place | None:
    uri = table_uri(spec.input, "input")
    return place_for(settings, uri, "read", "input") if uri else None


# ---- at submission ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Described:
    columns: tuple[str, ...]
    key: tuple[str, ...]


def describe(place: Place, key: tuple[str, ...]) -> Described:
    """The input's columns, and its key: the one asked for, else the table's primary key. At
    submission: the database must answer at once."""
    with place.session("reading", attempts=1) as conn:
        schema = _schema(conn, place)
        columns = tuple(schema.names)
        if place.uri.query:
            key = key or place.connection.queries[place.uri.query].key
        elif not key:
            key = primary_key(conn, place.uri)
        conn.rollback()
    if not key:
        raise InvalidRequest(
            f"input {place.uri}: the table has no primary key; name the columns that identify a row "
            '("key": ["id"]; modelyard jobs submit --key id)'
        )
    missing = [name for name in key if name not in columns]
    if missing:
        raise InvalidRequest(f"input {place.uri}: key column {missing[0]!r} is not among {list(columns)}")
    return Described(columns, key)


def _schema(conn: Any, place: Place, names: str = "*") -> pa.Schema:
    """The columns of the input (or the named ones), as the driver types them, without reading a row."""
    cursor = conn.cursor()
    try:
        cursor.execute(f"SELECT {names} FROM {place.relation} LIMIT 0")
        return cursor.fetch_arrow_table().schema
    finally:
        cursor.close()


def primary_key(conn: Any, uri: TableUri) -> tuple[str, ...]:
    found = pg.rows(
        conn,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = "
        f"to_regclass({literal(pg.qualified(uri.schema, uri.table))}) "
        "ORDER BY array_position(i.indkey, a.attnum)",
    )
    return tuple(str(row[0]) for row in found)


def columns_read(described: Described, features: list[str], keep: tuple[str, ...]) -> tuple[str, ...]:
    """The key, the model's features the input has, and the columns kept, each once, in that order."""
    wanted = [*described.key, *features, *keep]
    unknown = [name for name in keep if name not in described.columns]
    if unknown:
        raise InvalidRequest(f"keep: column {unknown[0]!r} is not among {list(described.columns)}")
    return tuple(dict.fromkeys(name for name in wanted if name in described.columns))


# ---- reading ---------------------------------------------------------------------------------


def where(spec: JobSpec, piece: parting.Part | None) -> str:
    """The rows a job, or one of its parts, reads."""
    conditions = []
    if spec.since is not None:
        conditions.append(_since(spec.since))
    key = ident(spec.key[0]) if spec.key else ""
    if piece is not None and piece.low is not None:
        at_least = f"{key} >= {literal(piece.low)}"  # the last part also takes a given key's NULLs
        conditions.append(at_least if piece.high is not None else f"({at_least} OR {key} IS NULL)")
    if piece is not None and piece.high is not None:
        conditions.append(f"{key} < {literal(piece.high)}")
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _since(since: Since) -> str:
    column = ident(since.column)
    upto = f"{column} <= {literal(since.upto)}"
    return f"{column} > {literal(since.after)} AND {upto}" if since.after is not None else upto


def _select(conn: Any, place: Place, spec: JobSpec) -> str:
    """The columns to read, cast where Arrow would not carry them plainly."""
    schema = _schema(conn, place, ", ".join(map(ident, spec.columns)))
    items = []
    for field in schema:
        pg_type = (field.metadata or {}).get(b"POSTGRESQL:type", b"").decode()
        if pg_type == "numeric":
            items.append(f"{ident(field.name)}::float8 AS {ident(field.name)}")
        elif isinstance(field.type, pa.ExtensionType) or pa.types.is_dictionary(field.type):
            items.append(f"{ident(field.name)}::text AS {ident(field.name)}")
        else:
            items.append(ident(field.name))
    return ", ".join(items)


def begin_snapshot(conn: Any, snapshot: str | None = None) -> bool:
    """Start a repeatable-read transaction, in the exported snapshot when given; False when that
    snapshot is gone (its exporter ended), and the transaction then has a fresh one."""
    pg.execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    imported = True
    if snapshot is not None:
        try:
            pg.execute(conn, f"SET TRANSACTION SNAPSHOT {literal(snapshot)}")
        except Exception as exc:
            if not pg.is_driver_error(exc):
                raise
            conn.rollback()
            pg.execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            imported = False
    pg.execute(conn, "SET LOCAL max_parallel_workers_per_gather = 0")  # the workers are the parallelism
    return imported


def count(conn: Any, place: Place, spec: JobSpec, piece: parting.Part | None = None) -> int:
    return int(pg.rows(conn, f"SELECT count(*) FROM {place.relation}{where(spec, piece)}")[0][0])


def chunks(
    conn: Any, place: Place, spec: JobSpec, piece: parting.Part | None, chunk_rows: int
) -> Iterator[Chunk]:
    """The rows, in chunks of `chunk_rows`, within the connection's open transaction."""
    total = piece.rows if piece is not None and piece.rows else count(conn, place, spec, piece)
    sql = f"SELECT {_select(conn, place, spec)} FROM {place.relation}{where(spec, piece)}"
    done = 0
    with pg.reader(conn, sql) as batches:
        schema, held = batches.schema, []
        for batch in batches:
            held.append(batch)
            while sum(b.num_rows for b in held) >= chunk_rows:
                table = pa.Table.from_batches(held, schema)
                yield _chunk(table.slice(0, chunk_rows), spec, done, total)
                done += chunk_rows
                held = table.slice(chunk_rows).to_batches()
    if held or not done:
        yield _chunk(pa.Table.from_batches(held, schema), spec, done, total)


def _chunk(table: pa.Table, spec: JobSpec, done: int, total: int) -> Chunk:
    table = pa.Table.from_arrays(table.columns, names=table.column_names)  # no driver metadata
    rows = np.arange(done, done + table.num_rows)
    progress = min((done + table.num_rows) / total, 1.0) if total else 1.0
    chunk = typed_chunk(table, rows, progress, total)
    return dataclasses.replace(chunk, keys=table.select(list(spec.key)))


def read(
    settings: Settings,
    spec: JobSpec,
    piece: parting.Part | None,
    chunk_rows: int,
    on_begun: Callable[[], None] | None = None,
) -> Iterator[Chunk]:
    """A job's rows, or one part's, in a transaction of their own (in the part's snapshot);
    `on_begun` is called once the transaction holds its snapshot."""
    place = input_place(settings, spec)
    assert place is not None
    with place.session("reading") as conn:
        snapshot = piece.snapshot if piece is not None else None
        if not begin_snapshot(conn, snapshot):
            log.warning(
                "the job's snapshot is gone (its planner ended before this part started): this part "
                "reads the table as it is now",
                extra={"job_id": spec.id},
            )
        if on_begun is not None:
            on_begun()
        yield from chunks(conn, place, spec, piece, chunk_rows)
        conn.rollback()


# ---- splitting -------------------------------------------------------------------------------


def plan(
    conn: Any, place: Place, spec: JobSpec, part_rows: int, workers: int, snapshot: str
) -> list[parting.Part]:
    """Ranges of the key's first column holding about the same number of rows, one per worker
    (fewer for a table of fewer than `part_rows` rows a worker); one part for a small table."""
    rows = count(conn, place, spec)
    wanted = min(workers, math.ceil(rows / part_rows)) if rows > part_rows else 1
    if wanted <= 1:
        return [parting.Part(0, 0, rows)]
    key = ident(spec.key[0])
    found = [
        pg.rows(
            conn,
            f"SELECT {key}::text FROM {place.relation}{where(spec, None)} ORDER BY {key} "
            f"OFFSET {rows * i // wanted} LIMIT 1",
        )[0][0]
        for i in range(1, wanted)
    ]  # through the key's index, where it has one: no sort of the whole table
    bounds: list[str | None] = [None, *dict.fromkeys(b for b in found if b is not None), None]
    return [
        parting.Part(i, 0, rows // (len(bounds) - 1), low=low, high=high, snapshot=snapshot)
        for i, (low, high) in enumerate(itertools.pairwise(bounds))
    ]
