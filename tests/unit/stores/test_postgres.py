"""PostgreSQL places without a server: URIs, connections, names and what driver errors become."""

from pathlib import Path

import pytest

from modelyard.batch.staging import pg_name
from modelyard.errors import InvalidPath
from modelyard.stores.connections import ConnectionsConfigError, StoreNotAllowed, load
from modelyard.stores.errors import StoreAccessDenied, StoreObjectNotFound, StoreUnavailable
from modelyard.stores.postgres import TableWriteRefused, ident, literal, translated
from modelyard.stores.uris import TableUri, parse_table

FILE = """
connections:
  warehouse:
    type: postgresql
    host: db.internal
    database: shop
    user: scorer
    password: {env: WAREHOUSE_TEST_PASSWORD}
    read: [landing]
    write: [scores]
    queries:
      open_orders:
        sql: SELECT * FROM landing.orders WHERE status = 'open'
        key: [id]
"""


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("postgresql://warehouse/landing.customers", TableUri("warehouse", "landing", "customers")),
        ("postgresql://warehouse?query=open_orders", TableUri("warehouse", query="open_orders")),
        ("postgresql://w-2/Sales.Orders_2026", TableUri("w-2", "Sales", "Orders_2026")),
    ],
)
def test_table_uris_name_a_connection_and_a_table_or_query(text: str, parsed: TableUri) -> None:
    assert parse_table(text, "input") == parsed
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://warehouse/public.t; drop table x",
        "postgresql://warehouse/customers",  # no schema
        "postgresql://warehouse/a.b.c",
        'postgresql://warehouse/public."t"',
        "postgresql://warehouse?query=x;drop",
        "postgresql://warehouse?sql=select 1",
        "postgresql://scorer:hunter2@db.internal:5432/shop",
        "postgresql://db.internal:5432/shop",
    ],
)
def test_anything_but_a_connection_and_plain_names_is_refused_without_echo(text: str) -> None:
    with pytest.raises(InvalidPath) as refused:
        parse_table(text, "input")
    for secret in ("hunter2", "db.internal", "5432", "drop"):
        assert secret not in refused.value.message


def test_names_go_into_sql_quoted() -> None:
    assert ident('we"ird') == '"we""ird"'
    assert literal("it's") == "'it''s'"


def test_long_column_names_are_cut_to_63_bytes_the_same_way_without_collisions() -> None:
    assert pg_name("probability_yes") == "probability_yes"
    first, second = "probability_" + "a" * 60 + "_one", "probability_" + "a" * 60 + "_two"
    assert len(pg_name(first).encode()) == 63 and pg_name(first) == pg_name(first)
    assert pg_name(first) != pg_name(second)
    assert pg_name(first).startswith("probability_aaaa")
    accented = "probabilité_" + "é" * 40  # two bytes a letter: never cut inside one
    assert len(pg_name(accented).encode()) <= 63
    pg_name(accented).encode().decode()


def test_a_postgresql_connection_allows_only_its_schemas_and_queries(tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(FILE)
    connections = load(path)
    read = parse_table("postgresql://warehouse/landing.customers", "input")
    assert connections.for_table(read, "read", "input").database == "shop"
    assert connections.for_table(
        parse_table("postgresql://warehouse?query=open_orders", "input"), "read", "input"
    )
    for text, use in [
        ("postgresql://warehouse/landing.customers", "write"),
        ("postgresql://warehouse/scores_old.t", "write"),
        ("postgresql://warehouse/private.t", "read"),
        ("postgresql://warehouse?query=missing", "read"),
        ("postgresql://other/landing.t", "read"),
    ]:
        with pytest.raises(StoreNotAllowed) as refused:
            connections.for_table(parse_table(text, "input"), use, "input")  # type: ignore[arg-type]
        assert "db.internal" not in refused.value.message


def test_a_mistake_in_a_postgresql_connection_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(FILE.replace("read: [landing]", "read: ['landing; drop']"))
    with pytest.raises(ConnectionsConfigError, match=r"connections\.warehouse\.postgresql\.read"):
        load(path)


class FakeDriverError(Exception):
    """What adbc_driver_manager raises: libpq's text, with the host, port and query in it."""

    def __init__(self, text: str, sqlstate: str | None = None) -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


FakeDriverError.__module__ = "adbc_driver_manager"


@pytest.mark.parametrize(
    ("text", "state", "kind"),
    [
        (
            'IO: [libpq] Failed to connect: connection to server at "db.internal" (10.0.0.7), port 5432 '
            'failed: FATAL:  password authentication failed for user "scorer"',
            None,
            StoreAccessDenied,
        ),
        (
            'IO: [libpq] Failed to connect: connection to server at "db.internal", port 5432 failed: '
            "Connection refused",
            None,
            StoreUnavailable,
        ),
        (
            'NOT_FOUND: ERROR:  relation "landing.nope" does not exist\nQuery was: SELECT * FROM '
            "landing.nope. SQLSTATE: 42P01",
            "42P01",
            StoreObjectNotFound,
        ),
        (
            'ERROR:  column "score" is of type bigint but expression is of type text\nQuery was: INSERT '
            "INTO scores.t. SQLSTATE: 42804",
            "42804",
            TableWriteRefused,
        ),
    ],
)
def test_driver_errors_become_ours_without_hosts_or_users(text: str, state: str | None, kind: type) -> None:
    error = translated(FakeDriverError(text, state), "warehouse", "reading")
    assert isinstance(error, kind)
    assert "warehouse" in error.message
    for secret in ("db.internal", "10.0.0.7", "5432", '"scorer"', "Query was"):
        assert secret not in error.message
