"""PostgreSQL drivers for batch sources and destinations (issue 15): ADBC against psycopg 3.

Starts a private PostgreSQL 15 cluster (tests/pg.py) on a free port, makes a table of `--rows` rows
(id int8 primary key, four float8 features, one text column) and measures, each the best of
`--repeat` runs:

- reads of `SELECT * FROM t`: ADBC as Arrow record batches; psycopg 3 through a server-side (named)
  cursor as tuples, fetchmany(50,000); psycopg 3 `COPY t TO STDOUT (FORMAT binary)` into bytes,
  rows not parsed (meant as a floor for psycopg; ADBC, whose COPY loop is in C, beats it);
- writes of the same rows into a new table (no primary key): ADBC `adbc_ingest` of an Arrow table;
  psycopg 3 `COPY ... FROM STDIN (FORMAT binary)` with write_row of tuples, made beforehand and
  (a second row) from the Arrow table inside the timing, as a job holding Arrow data would; and
  ADBC ingest appending to a table with a primary key, as a scores table would have;
- the peak RSS growth of a process reading the whole table with ADBC, for a few values of the
  statement option `adbc.postgresql.batch_size_hint_bytes` (the driver's default is 16 MiB), each
  in a process of its own.

With two cores or more the server runs on core 1 and this process on core 0. Prints a table; checks
only that every method saw every row, never a time. Needs PostgreSQL 15 (scripts/bootstrap.sh
installs it) and, beside the dev dependencies, `adbc-driver-postgresql` and `psycopg[binary]`.

    .venv/bin/python benchmarks/pg_drivers.py [--rows 1000000] [--repeat 3]
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import adbc_driver_postgresql
import adbc_driver_postgresql.dbapi
import numpy as np
import psycopg
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pg import PostgresServer  # noqa: E402

CLIENT_CORE, SERVER_CORE = 0, 1
HINTS_MB = (1, 16, 128)
"""batch_size_hint_bytes values for the memory rows, in MiB (16 is the driver's default)."""

RSS_CHILD = """
import re, sys, pyarrow, adbc_driver_postgresql, adbc_driver_postgresql.dbapi
def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
uri, hint = sys.argv[1], int(sys.argv[2])
options = {adbc_driver_postgresql.StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(hint)}
with adbc_driver_postgresql.dbapi.connect(uri) as connection:
    cursor = connection.cursor(adbc_stmt_kwargs=options)
    open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) reset to the current RSS
    before = status("VmRSS")
    cursor.execute("SELECT * FROM t")
    rows = batches = largest = 0
    for batch in cursor.fetch_record_batch():
        rows, batches, largest = rows + batch.num_rows, batches + 1, max(largest, batch.nbytes)
    print(rows, batches, largest, status("VmHWM") - before)
"""
"""Reads the table with ADBC in a fresh process, each batch dropped as the next comes (as a job's
reader would): rows, batches, the largest batch (bytes), and the peak RSS growth (bytes) from just
before the query, with the interpreter, pyarrow and the connection already loaded."""


def make_table(rows: int) -> pa.Table:
    generator = np.random.default_rng(15)
    names = np.array([f"customer-{i:03d}" for i in range(1000)], dtype=object)
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            **{f"f{i}": pa.array(generator.normal(size=rows)) for i in range(1, 5)},
            "name": pa.array(names[np.arange(rows) % 1000], type=pa.string()),
        }
    )


COLUMNS = "id int8 PRIMARY KEY, f1 float8, f2 float8, f3 float8, f4 float8, name text"


def best(repeat: int, run: Callable[[], int], reset: Callable[[], None] | None = None) -> tuple[float, int]:
    """The shortest of `repeat` runs (reset before each, untimed) and what the run counted."""
    times, counted = [], 0
    for _ in range(repeat):
        if reset:
            reset()
        started = time.perf_counter()
        counted = run()
        times.append(time.perf_counter() - started)
    return min(times), counted


def pin(server: PostgresServer) -> str:
    if len(os.sched_getaffinity(0)) < 2:
        return "server and client share the only core"
    assert server.home is not None
    postmaster = int((server.home / "data" / "postmaster.pid").read_text().split()[0])
    os.sched_setaffinity(postmaster, {SERVER_CORE})  # backends fork from it and inherit its core
    os.sched_setaffinity(0, {CLIENT_CORE})
    return f"server on core {SERVER_CORE}, client on core {CLIENT_CORE}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    began = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the server is stopped on the way out

    with tempfile.TemporaryDirectory(prefix="modelyard-bench-pg-") as folder:
        server = PostgresServer(Path(folder)).start()
        try:
            where = pin(server)
            run(server, args.rows, args.repeat, where)
        finally:
            server.stop()
    print(f"\n{time.perf_counter() - began:.0f} s in all")


def run(server: PostgresServer, rows: int, repeat: int, where: str) -> None:
    table = make_table(rows)
    adbc = adbc_driver_postgresql.dbapi.connect(server.uri, autocommit=True)
    conninfo = f"host={server.host} port={server.port} user={server.user} dbname={server.database}"
    # autocommit, each run in a transaction of its own: without it a COPY TO leaves one open, and
    # the transaction() blocks become savepoints inside it
    pg = psycopg.connect(conninfo, password=server.password, autocommit=True)
    results: list[tuple[str, float, int]] = []

    with adbc.cursor() as cursor:
        cursor.execute(f"CREATE TABLE t ({COLUMNS})")
        cursor.adbc_ingest("t", table, mode="append")
        cursor.execute("VACUUM ANALYZE t")
    wire = server.query("SELECT pg_size_pretty(pg_table_size('t'))")[0][0]

    def adbc_read() -> int:
        with adbc.cursor() as cursor:
            cursor.execute("SELECT * FROM t")
            return sum(batch.num_rows for batch in cursor.fetch_record_batch())

    def psycopg_read() -> int:
        count = 0
        with pg.transaction(), pg.cursor(name="bench") as cursor:
            cursor.execute("SELECT * FROM t")
            while chunk := cursor.fetchmany(50_000):
                count += len(chunk)
        return count

    copied = [0]

    def psycopg_copy_out() -> int:
        size = 0
        with pg.transaction(), pg.cursor() as cursor, cursor.copy("COPY t TO STDOUT (FORMAT binary)") as copy:
            for data in copy:
                size += len(data)
        copied[0] = size
        return rows

    results.append(("read  ADBC, Arrow record batches", *best(repeat, adbc_read)))
    results.append(("read  psycopg, named cursor, fetchmany(50k)", *best(repeat, psycopg_read)))
    results.append(("read  psycopg, COPY TO binary, bytes only", *best(repeat, psycopg_copy_out)))

    def fresh(primary_key: bool = False) -> Callable[[], None]:
        def reset() -> None:
            columns = COLUMNS if primary_key else COLUMNS.replace(" PRIMARY KEY", "")
            server.execute(f"DROP TABLE IF EXISTS w; CREATE TABLE w ({columns})")

        return reset

    def adbc_ingest_create() -> int:
        with adbc.cursor() as cursor:
            return int(cursor.adbc_ingest("w", table, mode="create"))

    def drop() -> None:
        server.execute("DROP TABLE IF EXISTS w")

    def adbc_ingest_append() -> int:
        with adbc.cursor() as cursor:
            return int(cursor.adbc_ingest("w", table, mode="append"))

    def as_tuples() -> list[tuple[object, ...]]:
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    made = as_tuples()

    def psycopg_copy_in(tuples: list[tuple[object, ...]] | None = None) -> int:
        rows = made if tuples is None else tuples
        with (
            pg.transaction(),
            pg.cursor() as cursor,
            cursor.copy("COPY w FROM STDIN (FORMAT binary)") as copy,
        ):
            copy.set_types(["int8", "float8", "float8", "float8", "float8", "text"])
            for row in rows:
                copy.write_row(row)
        return len(rows)

    results.append(("write ADBC ingest, create (no key)", *best(repeat, adbc_ingest_create, drop)))
    results.append(("write psycopg, COPY FROM binary, write_row", *best(repeat, psycopg_copy_in, fresh())))
    results.append(
        (
            "  the same, Arrow -> tuples included",
            *best(repeat, lambda: psycopg_copy_in(as_tuples()), fresh()),
        )
    )
    results.append(("write ADBC ingest, append, primary key", *best(repeat, adbc_ingest_append, fresh(True))))
    adbc.close()
    pg.close()

    memory = []
    for hint_mb in HINTS_MB:
        output = subprocess.run(
            [sys.executable, "-c", RSS_CHILD, server.uri, str(hint_mb * 1024 * 1024)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        counted, batches, largest, growth = map(int, output)
        memory.append((hint_mb, counted, batches, largest, growth))

    print(f"\n{rows:,} rows (table {wire} on disk, {copied[0] / 2**20:.0f} MiB as binary COPY); {where};")
    print(f"best of {repeat}; PostgreSQL {server.query('SHOW server_version')[0][0]},")
    print(f"adbc-driver-postgresql {adbc_driver_postgresql.__version__}, psycopg {psycopg.__version__}\n")
    print(f"{'method':<46} {'seconds':>8} {'rows/s':>12}")
    for name, seconds, counted in results:
        assert counted == rows, f"{name}: {counted} rows"
        print(f"{name:<46} {seconds:>8.2f} {counted / seconds:>12,.0f}")
    print("\nADBC read of the whole table, one process each: peak RSS growth from just before the query")
    print(
        f"{'batch_size_hint_bytes':<24} {'batches':>8} {'largest batch MiB':>18} {'peak RSS growth MiB':>20}"
    )
    for hint_mb, counted, batches, largest, growth in memory:
        assert counted == rows, f"ADBC read with a {hint_mb} MiB hint: {counted} rows"
        label = f"{hint_mb} MiB" + (" (default)" if hint_mb == 16 else "")
        print(f"{label:<24} {batches:>8} {largest / 2**20:>18.1f} {growth / 2**20:>20.0f}")


if __name__ == "__main__":
    main()
