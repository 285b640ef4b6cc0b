"""Where a job's scored rows go in PostgreSQL: staging tables, then one transaction, exactly once.

Each part of a job (a job scored in one piece has one) writes its rows with COPY into a staging table
of its own, and its bad rows into another, beside the destination and committed when the part ends.
The destination changes only in the job's last transaction, which also writes the job's line in the
ledger (`modelyard_ledger`, in the destination's schema) and drops the staging tables:

- create: the destination must not exist (checked at submission and again here);
- replace: TRUNCATE and INSERT, so grants and views on the table survive;
- append: INSERT.

A job run again (a retry, a worker rescued after it died) whose id the ledger already holds
changes nothing. Bad rows go to `<table>_errors`, named by their key. Column names longer than
PostgreSQL's 63 bytes are cut to 54 bytes, then `_` and 8 hex digits of the whole name's SHA-256:
the same name always gives the same column, and two names never share one.
"""

import hashlib
import io
import json
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa

from modelyard.batch.places import Written
from modelyard.batch.spec import JobSpec
from modelyard.batch.tables import Place, place_for, table_uri
from modelyard.config import Settings
from modelyard.errors import InvalidRequest, OutputExists
from modelyard.stores import postgres as pg
from modelyard.stores.postgres import ident, literal, qualified
from modelyard.stores.uris import TableUri
from modelyard.tabular import Opener

log = logging.getLogger(__name__)

LEDGER = "modelyard_ledger"
STAGE_PREFIX = "modelyard_stage_"
NAME_BYTES = 63
MODES = ("create", "replace", "append")
ERROR_COLUMNS = ("key", "row", "object", "field", "code", "message", "value", "other_problems")


def pg_name(name: str) -> str:
    """A name PostgreSQL keeps whole: at most 63 bytes (see the module's docstring)."""
    raw = name.encode()
    if len(raw) <= NAME_BYTES:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:8]
    return raw[: NAME_BYTES - 9].decode(errors="ignore") + "_" + digest


def errors_table(uri: TableUri) -> TableUri:
    return uri.beside(pg_name(f"{uri.table}_errors"))


def output_place(settings: Settings, spec: JobSpec) -> Place | None:
    uri = table_uri(spec.output, "output")
    return place_for(settings, uri, "write", "output") if uri else None


def _stage_stem(spec: JobSpec) -> str:
    return STAGE_PREFIX + hashlib.sha256(spec.id.encode()).hexdigest()[:16]


@dataclass
class StageTarget:
    """One part's scored rows (`writer`) or bad rows (`open`), in a staging table of its own."""

    place: Place
    table: str
    written: Written | None = field(default=None, init=False)

    @contextmanager
    def writer(self, fmt: str) -> Iterator["_StageWriter"]:
        del fmt  # a table has no file format
        with self.place.session("writing to") as conn:
            sink = _StageWriter(conn, self.place.uri.schema, self.table)
            try:
                yield sink
                sink.finish()
            finally:
                sink.close()
            conn.commit()
        self.written = Written(self.table, 0, "")

    @contextmanager
    def open(self) -> Iterator["_ErrorSink"]:
        with self.writer("jsonl") as rows:
            errors = _ErrorSink(rows)
            yield errors
            errors.flush()

    def opener(self) -> Opener:
        """The bad rows back, as JSON Lines."""

        def read() -> BinaryIO:
            with self.place.session("reading") as conn:
                found = pg.rows(conn, f"SELECT {', '.join(map(ident, ERROR_COLUMNS))} FROM {self._name}")
            lines = [json.dumps(_error_record(dict(zip(ERROR_COLUMNS, row, strict=True)))) for row in found]
            return io.BytesIO("".join(line + "\n" for line in lines).encode())

        return read

    def exists(self) -> bool:
        return exists(Place(self.place.uri.beside(self.table), self.place.connection))

    @property
    def _name(self) -> str:
        return qualified(self.place.uri.schema, self.table)

    def __str__(self) -> str:
        return str(self.place.uri.beside(self.table))


class _StageWriter:
    """Rows COPYed into a staging table on a thread of its own, one table in flight at most: the
    database takes in one chunk while the next is scored."""

    def __init__(self, conn: Any, schema: str, table: str) -> None:
        self.conn, self.schema, self.table = conn, schema, table
        self.started = False
        self.names: list[str] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="staging")
        self._pending: Future[None] | None = None

    def write(self, table: pa.Table) -> None:
        if self.names is None:
            self.names = [pg_name(name) for name in table.column_names]
            if len(set(self.names)) < len(self.names):
                raise InvalidRequest(f"two output columns share a name once cut to 63 bytes: {self.names}")
        first, self.started = not self.started, True
        self._wait()
        self._pending = self._thread.submit(self._ingest, table.rename_columns(self.names), first)

    def _ingest(self, table: pa.Table, first: bool) -> None:
        if first:  # a killed attempt's staging table is replaced
            pg.execute(self.conn, f"DROP TABLE IF EXISTS {qualified(self.schema, self.table)}")
        pg.ingest(self.conn, self.schema, self.table, table, create=first)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def finish(self) -> None:
        self._wait()
        if not self.started:
            raise AssertionError("a part wrote no table, not even an empty one")

    def close(self) -> None:
        """Wait for the table in flight, whatever happened: the connection closes next."""
        with suppress(Exception):
            self._wait()
        self._thread.shutdown()


class _ErrorSink:
    """Bad rows as score_chunks writes them (JSON Lines), kept as columns of text."""

    def __init__(self, rows: _StageWriter) -> None:
        self.rows = rows
        self.pending: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.pending.extend(json.loads(line) for line in data.splitlines() if line.strip())
        if len(self.pending) >= 10_000:
            self.flush()

    def flush(self) -> None:
        if self.rows.started and not self.pending:
            return
        columns: dict[str, list[str | None]] = {name: [] for name in ERROR_COLUMNS}
        for record in self.pending:
            for name in ERROR_COLUMNS:
                value = record.get(name)
                text = value if isinstance(value, str) and name in ("field", "code", "message") else None
                columns[name].append(text if text is not None or value is None else json.dumps(value))
        self.rows.write(pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()}))
        self.pending = []


def _error_record(row: dict[str, Any]) -> dict[str, Any]:
    record = {}
    for name, value in row.items():
        if value is not None:
            record[name] = value if name in ("field", "code", "message") else json.loads(value)
    return record


def part_targets(settings: Settings, spec: JobSpec, index: int) -> tuple[StageTarget, StageTarget]:
    place = output_place(settings, spec)
    assert place is not None
    stem = f"{_stage_stem(spec)}_{index:05d}"
    return StageTarget(place, stem), StageTarget(place, stem + "_e")


# ---- the one transaction ---------------------------------------------------------------------


def commit(settings: Settings, spec: JobSpec, parts: list[dict[str, Any]]) -> None:
    """The staged rows into the destination, the bad rows into its errors table and the job into
    the ledger, in one transaction; nothing changes if the ledger has the job already."""
    place = output_place(settings, spec)
    assert place is not None
    schema, dest = place.uri.schema, qualified(place.uri.schema, place.uri.table)
    stages = [item["output"]["key"] for item in parts]
    error_stages = [item["errors"]["key"] for item in parts]
    with place.session("committing to") as conn:
        prepare(conn, schema)
        if not _claimed(conn, spec, schema, parts):
            conn.rollback()
            log.info("already committed (the ledger has the job): nothing changes", extra={"job_id": spec.id})
            _drop(conn, schema, [*stages, *error_stages])
            conn.commit()
            return
        exists = _table_exists(conn, dest)
        if exists and spec.mode == "create":
            raise OutputExists(
                f"output {place.uri} already exists: choose another table, or ask to replace it or append "
                'to it ("mode": "replace" or "append")'
            )
        rest = stages
        if not exists:  # the first part's staging table becomes the destination: nothing is copied
            first, *rest = stages
            pg.execute(conn, f"ALTER TABLE {qualified(schema, first)} RENAME TO {ident(place.uri.table)}")
        elif spec.mode == "replace":
            pg.execute(conn, f"TRUNCATE {dest}")
        for stage in rest:
            names = ", ".join(ident(name) for name in _columns(conn, schema, stage))
            pg.execute(conn, f"INSERT INTO {dest} ({names}) SELECT {names} FROM {qualified(schema, stage)}")
        _errors_into(conn, spec, errors_table(place.uri), error_stages)
        _drop(conn, schema, [*rest, *error_stages])
        conn.commit()


def prepare(conn: Any, schema: str) -> None:
    """The ledger, created once (committed on its own: a job's transaction only adds its line)."""
    pg.execute(
        conn,
        f"CREATE TABLE IF NOT EXISTS {qualified(schema, LEDGER)} (job_id text PRIMARY KEY, "
        "destination text NOT NULL, rows bigint NOT NULL, rows_failed bigint NOT NULL, origin text, "
        "since_column text, since_after text, since_upto text, "
        "committed_at timestamptz NOT NULL DEFAULT now())",
    )
    conn.commit()


def _claimed(conn: Any, spec: JobSpec, schema: str, parts: list[dict[str, Any]]) -> bool:
    since = spec.since
    values = [
        literal(spec.id),
        literal(spec.output),
        str(sum(item["output"]["rows"] for item in parts)),
        str(sum(item["errors"]["rows"] for item in parts)),
        literal(spec.origin or ""),
        *(
            (
                literal(since.column),
                literal(since.after) if since.after is not None else "NULL",
                literal(since.upto),
            )
            if since
            else ("NULL", "NULL", "NULL")
        ),
    ]
    found = pg.rows(
        conn,
        f"INSERT INTO {qualified(schema, LEDGER)} (job_id, destination, rows, rows_failed, origin, "
        f"since_column, since_after, since_upto) VALUES ({', '.join(values)}) "
        "ON CONFLICT (job_id) DO NOTHING RETURNING job_id",
    )
    return bool(found)


def _columns(conn: Any, schema: str, table: str) -> list[str]:
    return [
        str(row[0])
        for row in pg.rows(
            conn,
            "SELECT attname FROM pg_attribute WHERE attnum > 0 AND NOT attisdropped AND attrelid = "
            f"to_regclass({literal(qualified(schema, table))}) ORDER BY attnum",
        )
    ]


def _errors_into(conn: Any, spec: JobSpec, uri: TableUri, stages: list[str]) -> None:
    name = qualified(uri.schema, uri.table)
    pg.execute(
        conn,
        f"CREATE TABLE IF NOT EXISTS {name} (job_id text NOT NULL, key jsonb, row bigint, object text, "
        "field text, code text NOT NULL, message text NOT NULL, value jsonb, other_problems jsonb, "
        "recorded_at timestamptz NOT NULL DEFAULT now())",
    )
    for stage in stages:
        pg.execute(
            conn,
            f"INSERT INTO {name} (job_id, key, row, object, field, code, message, value, other_problems) "
            f"SELECT {literal(spec.id)}, key::jsonb, row::bigint, object::jsonb #>> '{{}}', field, code, "
            f"message, value::jsonb, other_problems::jsonb FROM {qualified(uri.schema, stage)}",
        )


def _drop(conn: Any, schema: str, tables: list[str]) -> None:
    for table in tables:
        pg.execute(conn, f"DROP TABLE IF EXISTS {qualified(schema, table)}")


def exists(place: Place, attempts: int = pg.RETRIES) -> bool:
    with place.session("reading", attempts) as conn:
        name = qualified(place.uri.schema, place.uri.table)
        return _table_exists(conn, name)


def _table_exists(conn: Any, qualified_name: str) -> bool:
    return pg.rows(conn, f"SELECT to_regclass({literal(qualified_name)})")[0][0] is not None


def discard(settings: Settings, spec: JobSpec) -> None:
    """Drop what a failed or canceled job staged; the destination was never touched."""
    place = output_place(settings, spec)
    assert place is not None
    pattern = _stage_stem(spec).replace("_", "\\_") + "\\_%"
    with place.session("cleaning up") as conn:
        found = pg.rows(
            conn,
            f"SELECT tablename FROM pg_tables WHERE schemaname = {literal(place.uri.schema)} "
            f"AND tablename LIKE {literal(pattern)}",
        )
        _drop(conn, place.uri.schema, [str(row[0]) for row in found])
        conn.commit()


def committed(place: Place, origin: str) -> dict[str, Any] | None:
    """The last range a schedule's runs committed to this destination, from the ledger."""
    with place.session("reading the ledger of") as conn:
        prepare(conn, place.uri.schema)
        found = pg.rows(
            conn,
            f"SELECT job_id, since_column, since_upto FROM {qualified(place.uri.schema, LEDGER)} "
            f"WHERE origin = {literal(origin)} AND destination = {literal(str(place.uri))} "
            "AND since_upto IS NOT NULL ORDER BY committed_at DESC LIMIT 1",
        )
    if not found:
        return None
    job_id, column, upto = found[0]
    return {"job_id": job_id, "column": column, "upto": upto}
