"""Batch scoring from and into PostgreSQL tables, beside the same rows as CSV files (issue 15).

A private PostgreSQL 15 cluster (tests/pg.py) is started here on a free port, pinned to core 1 with
Redis; one worker runs on core 0, two workers on both cores (beside the database: a machine of two
cores has no third for it). The demo's customers are loaded into `landing.customers_<rows>` (with a
primary key) and written as a CSV file, and:

- one worker scores the table into a new table, and the CSV file into a CSV file (the median of
  `--repeat` runs each, alternated);
- two workers score the table split into key ranges, against one worker on the same table;
- one worker scores a table of 300,000 and of 3,000,000 rows (peak RSS of the worker and its horse).

Rows/s count the job from its start to its end as the queue records them, the final transaction
into the destination included.

    .venv/bin/python benchmarks/tables.py [--rows 1000000] [--repeat 3] [--rss-rows 300000 3000000]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.batch import ONE_THREAD, customers_file, through_workers  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402
from tests.server import free_port  # noqa: E402

from modelyard import demo  # noqa: E402
from modelyard.config import Settings  # noqa: E402
from modelyard.registry.store import Registry  # noqa: E402

SCORING_CORE, STORE_CORE = 0, 1


def load_table(db: PostgresServer, rows: int) -> str:
    """landing.customers_<rows>: the rows of customers_file(rows), with an integer primary key."""
    name = f"customers_{rows}"
    frame = demo.customers(rows, seed=21).reset_index(names="id")
    with db.connect(autocommit=False) as connection, connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS landing.{name}")
        cursor.adbc_ingest(name, pa.Table.from_pandas(frame, preserve_index=False), db_schema_name="landing")
        cursor.execute(f"ALTER TABLE landing.{name} ADD PRIMARY KEY (id)")
        cursor.execute(f"ANALYZE landing.{name}")
        connection.commit()
    return f"postgresql://bench/landing.{name}"


@contextmanager
def redis_server(root: Path) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(root)],
        stdout=subprocess.DEVNULL,
    )
    os.sched_setaffinity(process.pid, {STORE_CORE})
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=30)


def pin_server(db: PostgresServer, core: int) -> None:
    """The postmaster and every backend it forks from now on, on one core."""
    assert db.home is not None
    pid = (db.home / "data" / "postmaster.pid").read_text().split()[0]
    subprocess.run(["taskset", "-a", "-p", "-c", str(core), pid], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-rows", type=int, nargs="+", default=[300_000, 3_000_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-tables-") as tmp:
        root = Path(tmp)
        data = root / "data"
        data.mkdir()
        registry = Registry(root / "models")
        demo.train(registry, data)
        db = PostgresServer(root / "pg").start()
        try:
            pin_server(db, STORE_CORE)
            db.execute("CREATE SCHEMA landing; CREATE SCHEMA scores")
            connections = root / "connections.yaml"
            connections.write_text(
                f"connections:\n  bench:\n    type: postgresql\n    host: {db.host}\n"
                f"    port: {db.port}\n    database: {db.database}\n    user: {db.user}\n"
                "    password: {env: BENCH_PG_PASSWORD}\n    read: [landing]\n    write: [scores]\n"
            )
            os.environ["BENCH_PG_PASSWORD"] = db.password  # for submitting, which reads the table's columns
            with redis_server(root) as redis_url:
                env = {
                    **os.environ,
                    **ONE_THREAD,
                    "MODELYARD_MODEL_DIR": str(registry.root),
                    "MODELYARD_DATA_DIR": str(data),
                    "MODELYARD_REDIS_URL": redis_url,
                    "MODELYARD_CONNECTIONS": str(connections),
                    "MODELYARD_LOG_LEVEL": "WARNING",
                }
                settings = Settings(
                    _env_file=None,
                    model_dir=registry.root,
                    data_dir=data,
                    redis_url=redis_url,
                    connections=connections,
                )
                measure(root, env, settings, data, db, args)
        finally:
            db.stop()


def measure(
    root: Path,
    env: dict[str, str],
    settings: Settings,
    data: Path,
    db: PostgresServer,
    args: argparse.Namespace,
) -> None:
    def workers(source: str, output: str, rows: int, count: int = 1) -> dict[str, float]:
        return through_workers(
            root, env, settings, source, output, rows, count, SCORING_CORE if count == 1 else None
        )

    print(
        f"\nOne worker on core {SCORING_CORE}, PostgreSQL on core {STORE_CORE}; medians of {args.repeat} runs"
    )
    print(f"{'rows':>10}  {'run':<34} {'rows/s':>10} {'peak RSS MB':>12}")
    for rows in args.rows:
        table = load_table(db, rows)
        csv = customers_file(data, rows, "csv")
        files, tables, split = [], [], []
        for attempt in range(args.repeat):
            files.append(workers(csv.name, f"scored/tables-{rows}-{attempt}.csv", rows))
            tables.append(workers(table, f"postgresql://bench/scores.t{rows}_{attempt}", rows))
            split.append(workers(table, f"postgresql://bench/scores.s{rows}_{attempt}", rows, count=2))
        results = {
            "file, CSV -> CSV file": files,
            "table -> table, one worker": tables,
            "table -> table, two workers (split)": split,
        }
        for name, measures in results.items():
            rate = median(m["rows_per_s"] for m in measures)
            peak = max(m["peak_mb"] for m in measures)
            print(f"{rows:>10,}  {name:<34} {rate:>10,.0f} {peak:>12.0f}")
        rate = [median(m["rows_per_s"] for m in measures) for measures in results.values()]
        print(
            f"{'':>10}  table -> table / CSV files: {rate[1] / rate[0]:.2f}x (target 0.85x); "
            f"two workers / one: {rate[2] / rate[1]:.2f}x (target 1.3x)"
        )
    print("\nPeak RSS of one worker scoring one table (MB)")
    peaks = {}
    for rows in args.rss_rows:
        peaks[rows] = workers(load_table(db, rows), f"postgresql://bench/scores.rss{rows}", rows)["peak_mb"]
        db.execute(f"DROP TABLE landing.customers_{rows}")
        print(f"{rows:>10,}  {peaks[rows]:>8.0f}")
    if len(peaks) == 2:
        small, big = sorted(peaks)
        print(f"{'':>10}  {big:,} / {small:,} rows: {peaks[big] / peaks[small]:.2f}x (target at most 1.2x)")


if __name__ == "__main__":
    main()
