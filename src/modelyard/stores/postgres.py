"""PostgreSQL through ADBC's driver: connections, SQL quoting, and what the driver's failures mean.

ADBC reads a query's rows as Arrow record batches over COPY's binary format, and ingests Arrow
tables with COPY: no row becomes a Python object on the way (benchmarks/pg_drivers.py measures it
against psycopg 3). Statements are prepared, so one `execute` never runs two commands.

libpq's messages name the host, the port and the user, and echo the query: a driver error is read
for its SQLSTATE and kind, and only PostgreSQL's own one-line message about the data is kept.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from modelyard.errors import InvalidRequest, ModelyardError
from modelyard.stores.connections import PostgresConnection
from modelyard.stores.errors import StoreAccessDenied, StoreObjectNotFound, StoreUnavailable

if TYPE_CHECKING:  # imported where used: a process that never meets a table does without it
    from adbc_driver_manager.dbapi import Connection

log = logging.getLogger(__name__)

RETRIES = 5
"""Attempts at connecting to a server that does not answer, with doubling waits: about 15 s in all."""
FIRST_WAIT_S = 1.0
BATCH_BYTES = 8 << 20
"""Arrow bytes per batch the driver reads: memory stays flat, whatever the table's size."""


class TableWriteRefused(InvalidRequest):
    """PostgreSQL refused the rows or the statement: a type that does not fit, a constraint."""

    code = "table_write_refused"


def ident(name: str) -> str:
    """A name quoted as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{ident(schema)}.{ident(table)}"


def literal(value: str) -> str:
    """A value quoted as an SQL string literal, of a type PostgreSQL infers where it is compared."""
    return "'" + value.replace("'", "''") + "'"


def _uri(connection: PostgresConnection, name: str) -> str:
    password = connection.password.value(name, "password").get_secret_value()
    return (
        f"postgresql://{quote(connection.user, safe='')}:{quote(password, safe='')}@{connection.host}:"
        f"{connection.port}/{quote(connection.database, safe='')}?application_name=modelyard"
    )


def connect(name: str, connection: PostgresConnection, attempts: int = RETRIES) -> Connection:
    """A connection with autocommit off; a server that does not answer is tried again with
    backoff, a refusal is not (it would answer the same)."""
    import adbc_driver_postgresql.dbapi as adbc

    uri = _uri(connection, name)
    wait = FIRST_WAIT_S
    for attempt in range(1, attempts + 1):
        try:
            conn: Connection = adbc.connect(uri, autocommit=False)
            return conn
        except Exception as exc:
            error = translated(exc, name, "connecting to")
            if not isinstance(error, StoreUnavailable) or attempt == attempts:
                raise error from None
            log.warning(
                "database did not answer: retrying",
                extra={"connection": name, "attempt": attempt, "wait_s": wait},
            )
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")


@contextmanager
def session(
    name: str, connection: PostgresConnection, doing: str, attempts: int = RETRIES
) -> Iterator[Connection]:
    """A connection for one piece of work; any driver failure inside becomes our own error, and
    whatever was not committed is rolled back as the connection closes."""
    conn = connect(name, connection, attempts)
    try:
        with driver_errors(name, doing):
            yield conn
    finally:
        try:
            conn.close()
        except Exception:  # a server gone: the socket is closed all the same
            log.debug("closing a connection failed", extra={"connection": name})


@contextmanager
def driver_errors(name: str, doing: str) -> Iterator[None]:
    try:
        yield
    except ModelyardError:
        raise
    except Exception as exc:
        if not is_driver_error(exc):
            raise
        raise translated(exc, name, doing) from None


def is_driver_error(exc: BaseException) -> bool:
    """ADBC's errors; and mid-read, where the driver raises a plain OSError ("[libpq] ...")."""
    return type(exc).__module__.startswith("adbc_driver_manager") or (
        isinstance(exc, OSError) and "[libpq]" in str(exc)
    )


SQLSTATE = re.compile(r"SQLSTATE: ([0-9A-Z]{5})")
MESSAGE = re.compile(r"ERROR:\s+([^\n]*)")


def translated(exc: BaseException, name: str, doing: str) -> ModelyardError:
    """Our own error for a driver's failure; only PostgreSQL's one-line message about the data
    (a type, a constraint, a missing table) is kept."""
    text = str(exc)
    state = getattr(exc, "sqlstate", None) or (m.group(1) if (m := SQLSTATE.search(text)) else "")
    said = m.group(1).strip() if (m := MESSAGE.search(text)) else ""
    lower = text.lower()
    if state.startswith("28") or "password authentication failed" in lower or "no pg_hba.conf" in lower:
        return StoreAccessDenied(
            f"{doing} connection {name!r}: the database refused its user or password; check the "
            "password it reads and the server's pg_hba.conf"
        )
    if state == "42501":
        return StoreAccessDenied(
            f"{doing} connection {name!r}: permission denied ({said}); grant the connection's user "
            "the rights it needs"
        )
    if state in ("42P01", "3F000", "3D000") or ('database "' in lower and "does not exist" in lower):
        return StoreObjectNotFound(f"{doing} connection {name!r}: {said or 'no such database'}")
    if state[:2] in ("22", "23", "42", "P0"):
        return TableWriteRefused(f"{doing} connection {name!r}: PostgreSQL refused it: {said}")
    return StoreUnavailable(
        f"{doing} connection {name!r}: the database did not answer or closed the connection; check "
        "its host and that it is running"
    )


def rows(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def execute(conn: Connection, *statements: str) -> None:
    cursor = conn.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
    finally:
        cursor.close()


@contextmanager
def reader(conn: Connection, sql: str) -> Iterator[Any]:
    """The query's rows as an Arrow record batch reader, read as they come."""
    cursor = conn.cursor()
    try:
        cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
        cursor.execute(sql)
        yield cursor.fetch_record_batch()
    finally:
        cursor.close()


def ingest(conn: Connection, schema: str, table: str, data: Any, create: bool) -> None:
    """Rows into a table with COPY, within the connection's transaction."""
    cursor = conn.cursor()
    try:
        cursor.adbc_ingest(table, data, mode="create" if create else "append", db_schema_name=schema)
    finally:
        cursor.close()
