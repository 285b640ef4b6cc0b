"""Batch jobs and schedules over PostgreSQL tables, against a private PostgreSQL 15 cluster of this
session (tests/pg.py), real `modelyard worker` subprocesses, a private redis-server and the API over
HTTP. Scored rows are read back from the database and matched by key against the registered model."""

import io
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.batch import queue
from modelyard.config import Settings
from modelyard.registry.store import Registry
from modelyard.schedules import runs
from modelyard.schedules.config import Schedule
from tests import factories
from tests.integration.batch.test_jobs import ended, until_registered, wait_job
from tests.pg import PostgresServer
from tests.server import ApiServer, RedisServer, S3Server, WorkerProcess, free_port, starting_workers
from tests.stored import redis_texts

SPLIT = {"chunk_rows": "100", "part_rows": "500"}
WRONG_PASSWORD = "wrong-password-7c41e9"
GONE_HOST = "127.0.0.3"
"""A loopback address nothing listens on: connections to it are refused."""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("warehouse")
    registry = Registry(root / "models")
    for name, model in [("churn", factories.classifier()), ("slow", factories.slow_classifier(0.15))]:
        registry.register(factories.save(model, root / f"{name}.joblib"), name)
        registry.promote(name, 1)
    (root / "data").mkdir()
    db = PostgresServer(root / "pg").start()
    db.execute("CREATE SCHEMA landing; CREATE SCHEMA scores; CREATE SCHEMA private")
    s3 = S3Server(root / "s3")
    s3.client().create_bucket(Bucket="scores")
    secrets = root / "secrets"
    secrets.mkdir()
    for name, value in [("db", db.password), ("wrong", WRONG_PASSWORD), ("s3", s3.secret_key)]:
        (secrets / name).write_text(value + "\n")
    connections = root / "connections.yaml"
    connections.write_text(
        f"""
connections:
  warehouse:
    type: postgresql
    host: {db.host}
    port: {db.port}
    database: {db.database}
    user: {db.user}
    password: {{file: {secrets / "db"}}}
    read: [landing, scores]
    write: [scores]
    queries:
      adults:
        sql: SELECT * FROM landing.customers WHERE age >= 40
        key: [id]
  locked:
    type: postgresql
    host: {db.host}
    port: {db.port}
    database: {db.database}
    user: {db.user}
    password: {{file: {secrets / "wrong"}}}
    read: [landing]
  gone:
    type: postgresql
    host: {GONE_HOST}
    port: {free_port()}
    database: shop
    user: {db.user}
    password: {{file: {secrets / "db"}}}
    read: [landing]
  lake:
    type: s3
    endpoint: {s3.endpoint}
    access_key: {{env: PG_TEST_UNUSED}}
    secret_key: {{file: {secrets / "s3"}}}
    read: [scores]
    write: [scores]
"""
    )
    redis_server = RedisServer(root / "redis")
    settings = {
        "data_dir": str(root / "data"),
        "redis_url": redis_server.url,
        "connections": str(connections),
    }
    os.environ["PG_TEST_UNUSED"] = s3.access_key  # the workers and the API inherit it
    api = ApiServer(registry.root, root / "api.log", **settings).wait()
    yield {
        "root": root,
        "registry": registry,
        "db": db,
        "s3": s3,
        "redis": redis_server,
        "api": api,
        "settings": settings,
    }
    api.stop()
    redis_server.stop()
    s3.stop()
    db.stop()


@pytest.fixture
def workers(warehouse: dict[str, Any]) -> Iterator[Callable[..., WorkerProcess]]:
    warehouse["redis"].client().flushall()
    connections = warehouse["settings"]["connections"]
    with starting_workers(warehouse["root"], warehouse["redis"].url, connections=connections) as start:
        yield start


def customers(rows: int, seed: int = 9, first_id: int = 1) -> pd.DataFrame:
    data = factories.frame(rows, seed=seed)
    data.insert(0, "id", np.arange(first_id, first_id + rows, dtype=np.int64))
    data.insert(1, "name", [f"customer {i}" for i in data["id"]])
    return data


def load(warehouse: dict[str, Any], table: str, data: pd.DataFrame, key: bool = True) -> None:
    """A new table landing.<table> holding `data`, with a primary key on id unless told."""
    db = warehouse["db"]
    db.execute(f"DROP TABLE IF EXISTS landing.{table} CASCADE")
    with db.connect(autocommit=False) as connection, connection.cursor() as cursor:
        cursor.adbc_ingest(table, pa.Table.from_pandas(data, preserve_index=False), db_schema_name="landing")
        connection.commit()
    if key:
        db.execute(f"ALTER TABLE landing.{table} ADD PRIMARY KEY (id)")


def table(warehouse: dict[str, Any], name: str) -> pd.DataFrame:
    with warehouse["db"].connect() as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {name} ORDER BY id")
        return cursor.fetch_arrow_table().to_pandas()


def submit(warehouse: dict[str, Any], expect: int = 202, **body: Any) -> dict[str, Any]:
    response = warehouse["api"].client.post("/v1/jobs", json=body)
    assert response.status_code == expect, response.text
    return dict(response.json())


def run_job(warehouse: dict[str, Any], **body: Any) -> dict[str, Any]:
    record = wait_job(warehouse, submit(warehouse, **body)["id"], ended)
    assert record["status"] == "finished", record
    return record


def assert_scored_by_key(
    warehouse: dict[str, Any], scored: pd.DataFrame, data: pd.DataFrame, name: str
) -> None:
    """Every input row exactly once, matched by key, with the registered model's own answers."""
    model = factories.load_as_served(warehouse["registry"].get(name, 1).artifact)
    scored = scored.sort_values("id").reset_index(drop=True)
    data = data.sort_values("id").reset_index(drop=True)
    assert scored["id"].tolist() == data["id"].tolist()
    features = data[["age", "income", "color"]]
    assert scored["prediction"].tolist() == model.predict(features).tolist()
    probabilities = scored[["probability_no", "probability_yes"]].to_numpy()
    assert np.array_equal(probabilities, model.predict_proba(features))
    assert set(scored["model"]) == {name} and set(scored["model_version"]) == {1}


def stage_tables(warehouse: dict[str, Any]) -> list[str]:
    found = warehouse["db"].query("SELECT tablename FROM pg_tables WHERE tablename LIKE 'modelyard_stage_%'")
    return [row[0] for row in found]


def test_a_table_into_a_table_and_into_an_s3_dataset_equals_the_model(warehouse, workers) -> None:
    workers("one")
    data = customers(700)
    load(warehouse, "customers", data)
    record = run_job(
        warehouse,
        model="churn",
        input="postgresql://warehouse/landing.customers",
        output="postgresql://warehouse/scores.churn",
    )
    assert (record["rows_done"], record["rows_failed"], record["output"]) == (
        700,
        0,
        "postgresql://warehouse/scores.churn",
    )
    scored = table(warehouse, "scores.churn")
    assert list(scored.columns) == [
        "id",
        "age",
        "income",
        "color",
        "prediction",
        "probability_no",
        "probability_yes",
        "model",
        "model_version",
    ]  # by default the key and the features, then what scoring added ("name" is not kept)
    assert_scored_by_key(warehouse, scored, data, "churn")
    result = warehouse["api"].client.get(f"/v1/jobs/{record['id']}/result")
    assert result.status_code == 404 and "scores.churn there" in result.json()["error"]["message"]
    ledger = warehouse["db"].query("SELECT job_id, destination, rows FROM scores.modelyard_ledger")
    assert ledger == [(record["id"], "postgresql://warehouse/scores.churn", 700)]

    again = submit(
        warehouse,
        409,
        model="churn",
        input="postgresql://warehouse/landing.customers",
        output="postgresql://warehouse/scores.churn",
    )
    assert again["error"]["code"] == "output_exists"

    to_s3 = run_job(
        warehouse,
        model="churn",
        input="postgresql://warehouse?query=adults",
        output="s3://scores/adults/",
        keep=["name"],
    )
    manifest = json.loads(
        warehouse["s3"].client().get_object(Bucket="scores", Key="adults/_SUCCESS")["Body"].read()
    )
    assert manifest["format"] == "parquet" and to_s3["rows_done"] == int((data["age"] >= 40).sum())
    frames = [
        pq.read_table(
            io.BytesIO(warehouse["s3"].client().get_object(Bucket="scores", Key=item["key"])["Body"].read())
        ).to_pandas()
        for item in manifest["files"]
    ]
    scored = pd.concat(frames, ignore_index=True)
    assert list(scored.columns)[:1] == ["name"]  # keep: only the columns asked for, then the scores
    scored["id"] = scored["name"].str.removeprefix("customer ").astype("int64")
    assert_scored_by_key(warehouse, scored, data[data["age"] >= 40], "churn")
    assert stage_tables(warehouse) == []


def test_bad_rows_go_to_the_errors_table_named_by_their_key(warehouse, workers) -> None:
    workers("one")
    data = customers(50, seed=3)
    data["age"] = data["age"].astype("float64")
    data.loc[data["id"] == 17, "age"] = np.nan  # NULL: the model has no imputer
    load(warehouse, "mixed", data)
    record = run_job(
        warehouse,
        model="churn",
        input="postgresql://warehouse/landing.mixed",
        output="postgresql://warehouse/scores.mixed",
    )
    assert (record["rows_done"], record["rows_failed"]) == (49, 1), record
    [(job_id, key, row, field)] = warehouse["db"].query(
        "SELECT job_id, key::text, row, field FROM scores.mixed_errors"
    )
    assert (job_id, key, row, field) == (record["id"], '{"id": 17}', None, "age")
    assert 17 not in table(warehouse, "scores.mixed")["id"].tolist()


def test_a_split_table_reads_one_snapshot_whatever_changes_meanwhile(warehouse, workers) -> None:
    """Two workers score key ranges of one snapshot: rows added, changed or removed while the job
    runs are neither missed nor scored twice, and the result equals one worker's."""
    data = customers(2000, seed=4)
    load(warehouse, "big", data)
    for name in ("a", "b"):
        workers(name, **SPLIT)
    until_registered(warehouse["redis"].client(), 2)
    record = submit(
        warehouse,
        model="slow",
        input="postgresql://warehouse/landing.big",
        output="postgresql://warehouse/scores.big",
    )
    wait_job(warehouse, record["id"], lambda r: r["rows_done"] >= 200)
    warehouse["db"].execute(
        "INSERT INTO landing.big SELECT id + 100000, name, age, income, color FROM landing.big "
        "WHERE id % 7 = 0; DELETE FROM landing.big WHERE id % 5 = 0; "
        "UPDATE landing.big SET age = 18 WHERE id % 3 = 0"
    )
    record = wait_job(warehouse, record["id"], ended, timeout=120)
    assert record["status"] == "finished" and record["parts"]["count"] == 2, record
    assert_scored_by_key(warehouse, table(warehouse, "scores.big"), data, "slow")
    assert stage_tables(warehouse) == []


def test_a_worker_killed_during_an_append_is_rescued_with_each_key_once(warehouse, workers) -> None:
    """SIGKILL of a worker's whole process tree mid-job: after the rescue (RQ declares the job
    abandoned after about 80 s), the destination holds its old rows and each new key once."""
    old, new = customers(100, seed=5, first_id=1), customers(1200, seed=6, first_id=1001)
    load(warehouse, "early", old)
    load(warehouse, "late", new)
    victim = workers("victim", chunk_rows="100")
    run_job(
        warehouse,
        model="churn",
        input="postgresql://warehouse/landing.early",
        output="postgresql://warehouse/scores.appended",
    )
    record = submit(
        warehouse,
        model="slow",
        input="postgresql://warehouse/landing.late",
        output="postgresql://warehouse/scores.appended",
        mode="append",
    )
    wait_job(warehouse, record["id"], lambda r: r["rows_done"] >= 300)
    victim.kill_tree()
    workers("rescuer", chunk_rows="100")
    record = wait_job(warehouse, record["id"], ended, timeout=200)
    assert record["status"] == "finished" and record["rows_done"] == 1200, record
    scored = table(warehouse, "scores.appended")
    assert scored["id"].is_unique and len(scored) == 1300
    assert_scored_by_key(warehouse, scored[scored["id"] > 1000], new, "slow")
    assert stage_tables(warehouse) == []


def test_a_canceled_job_leaves_the_destination_unchanged(warehouse, workers) -> None:
    workers("one", chunk_rows="100")
    load(warehouse, "cancel", customers(1500, seed=7))
    run_job(
        warehouse,
        model="churn",
        input="postgresql://warehouse/landing.cancel",
        output="postgresql://warehouse/scores.kept",
    )
    before = table(warehouse, "scores.kept")
    record = submit(
        warehouse,
        model="slow",
        input="postgresql://warehouse/landing.cancel",
        output="postgresql://warehouse/scores.kept",
        mode="replace",
    )
    wait_job(warehouse, record["id"], lambda r: r["rows_done"] >= 200)
    assert warehouse["api"].client.delete(f"/v1/jobs/{record['id']}").json()["status"] == "canceled"
    deadline = time.monotonic() + 30
    while stage_tables(warehouse) and time.monotonic() < deadline:
        time.sleep(0.2)  # the job stops at its next chunk and drops what it staged
    assert stage_tables(warehouse) == []
    pd.testing.assert_frame_equal(table(warehouse, "scores.kept"), before)


def test_a_database_stopped_mid_job_fails_it_with_the_destination_unchanged(
    warehouse, workers, tmp_path
) -> None:
    """A cluster of its own, stopped at once while a job reads it: the job fails saying the
    database did not answer, and once it is back, the destination is as it was."""
    db = PostgresServer(tmp_path / "pg").start()
    try:
        db.execute("CREATE SCHEMA landing; CREATE SCHEMA scores")
        connections = tmp_path / "connections.yaml"
        connections.write_text(
            f"""
connections:
  flaky:
    type: postgresql
    host: {db.host}
    port: {db.port}
    database: {db.database}
    user: {db.user}
    password: {{env: FLAKY_PASSWORD}}
    read: [landing]
    write: [scores]
"""
        )
        os.environ["FLAKY_PASSWORD"] = db.password
        rows = customers(1500, seed=8)
        with db.connect(autocommit=False) as connection, connection.cursor() as cursor:
            cursor.adbc_ingest(
                "t", pa.Table.from_pandas(rows, preserve_index=False), db_schema_name="landing"
            )
            cursor.execute("CREATE TABLE scores.out AS SELECT id FROM landing.t WHERE id < 10")
            connection.commit()
        db.execute("ALTER TABLE landing.t ADD PRIMARY KEY (id)")
        api = ApiServer(
            warehouse["registry"].root,
            tmp_path / "api.log",
            **{**warehouse["settings"], "connections": str(connections)},
        ).wait()
        try:
            workers("flaky", connections=str(connections), chunk_rows="100")
            response = api.client.post(
                "/v1/jobs",
                json={
                    "model": "slow",
                    "input": "postgresql://flaky/landing.t",
                    "output": "postgresql://flaky/scores.out",
                    "mode": "append",
                },
            )
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            deadline = time.monotonic() + 60
            while api.client.get(f"/v1/jobs/{job_id}").json()["rows_done"] < 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            db.stop_now()
            deadline = time.monotonic() + 90
            while (record := api.client.get(f"/v1/jobs/{job_id}").json())["status"] not in (
                "failed",
                "finished",
            ):
                assert time.monotonic() < deadline, record
                time.sleep(0.2)
            assert record["status"] == "failed" and record["error"]["code"] == "store_unavailable", record
            assert str(db.port) not in json.dumps(record)
        finally:
            api.stop()
        db.start_again()
        assert db.query("SELECT count(*) FROM scores.out") == [(9,)]
    finally:
        db.stop()


def test_replace_keeps_the_views_on_the_destination(warehouse, workers) -> None:
    workers("one")
    load(warehouse, "first", customers(30, seed=10))
    run_job(
        warehouse,
        model="churn",
        input="postgresql://warehouse/landing.first",
        output="postgresql://warehouse/scores.replaced",
    )
    warehouse["db"].execute(
        "CREATE VIEW scores.positive AS SELECT id FROM scores.replaced WHERE prediction = 'yes'"
    )
    second = customers(40, seed=11, first_id=501)
    load(warehouse, "second", second)
    run_job(
        warehouse,
        model="churn",
        input="postgresql://warehouse/landing.second",
        output="postgresql://warehouse/scores.replaced",
        mode="replace",
    )
    assert table(warehouse, "scores.replaced")["id"].tolist() == second["id"].tolist()
    through_view = {row[0] for row in warehouse["db"].query("SELECT id FROM scores.positive")}
    assert through_view and through_view <= set(second["id"])


def test_a_watermark_schedule_scores_each_new_row_once(warehouse, workers) -> None:
    """Runs score the rows newer than the last committed run: a missed run is caught up once, and
    a run whose commit Redis never heard of is not appended again."""
    workers("one")
    db = warehouse["db"]
    load(warehouse, "events", customers(20, seed=12))
    db.execute(
        "ALTER TABLE landing.events ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(); "
        "UPDATE landing.events SET updated_at = now() - interval '1 hour'"
    )
    settings = Settings(**warehouse["settings"], model_dir=warehouse["registry"].root)
    schedule = Schedule(
        name="new-rows",
        cron="0 2 * * *",
        model="churn",
        input="postgresql://warehouse/landing.events",
        since="updated_at",
        output="postgresql://warehouse/scores.events",
    )
    connection = warehouse["redis"].client()

    def insert(first_id: int, rows: int) -> None:
        fresh = customers(rows, seed=first_id, first_id=first_id)
        values = ", ".join(
            f"({r.id}, '{r.name}', {r.age}, {r.income}, '{r.color}', clock_timestamp())"
            for r in fresh.itertuples()
        )
        db.execute(f"INSERT INTO landing.events (id, name, age, income, color, updated_at) VALUES {values}")

    def run(at: str) -> dict[str, Any]:
        slot = pd.Timestamp(at, tz="UTC").to_pydatetime()
        record = runs.run(schedule, slot, runs.run_id(schedule, slot), settings, connection, slot)
        for job_id in record["jobs"]:
            assert wait_job(warehouse, job_id, ended)["status"] == "finished"
        return record

    def scored_ids() -> list[int]:
        return table(warehouse, "scores.events")["id"].tolist()

    first = run("2026-12-01T02:00")
    assert first["status"] == "enqueued" and first["range"]["after"] is None
    assert scored_ids() == list(range(1, 21))
    assert run("2026-12-02T02:00")["status"] == "no new rows"
    insert(101, 5)
    third = run("2026-12-03T02:00")
    assert third["range"]["after"] == first["range"]["upto"] and scored_ids() == [
        *range(1, 21),
        *range(101, 106),
    ]
    insert(201, 3)  # the night of the 4th is missed: the 5th catches up, once
    insert(301, 4)
    fifth = run("2026-12-05T02:00")
    assert scored_ids()[-7:] == [201, 202, 203, 301, 302, 303, 304]
    assert run("2026-12-06T02:00")["status"] == "no new rows"

    # the 5th's job runs again (its worker died after the commit, before Redis heard of it): nothing changes
    [job_id] = fifth["jobs"]
    connection.delete(queue.done_key(job_id))
    spec = queue.job_queue(connection).fetch_job(job_id).args
    queue.job_queue(connection).enqueue_call(queue.SCORE, args=spec, job_id=job_id + "-again")
    time.sleep(0.1)
    deadline = time.monotonic() + 30
    while queue.job_queue(connection).fetch_job(job_id + "-again").get_status() not in ("finished", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert len(scored_ids()) == 32 and pd.Series(scored_ids()).is_unique
    ledger = db.query(
        "SELECT since_after, since_upto FROM scores.modelyard_ledger WHERE origin = 'schedule:new-rows'"
    )
    assert len(ledger) == 3


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"input": "postgresql://warehouse/public.t; drop table x"}, "invalid_path"),
        ({"input": "postgresql://modelyard:pw@db.internal:5432/shop"}, "invalid_path"),
        ({"input": "postgresql://warehouse/private.t"}, "store_not_allowed"),  # not a readable schema
        ({"input": "postgresql://warehouse?query=nope"}, "store_not_allowed"),
        (
            {
                "input": "postgresql://warehouse/landing.customers",
                "output": "postgresql://warehouse/landing.out",
            },
            "store_not_allowed",
        ),
        ({"input": "postgresql://warehouse/landing.nokey"}, "invalid_request"),  # no primary key, no key
        ({"input": "postgresql://warehouse/landing.missing"}, "store_object_not_found"),
    ],
)
def test_places_no_connection_allows_are_refused(warehouse, body: dict[str, Any], code: str) -> None:
    load(warehouse, "customers", customers(5))
    load(warehouse, "nokey", customers(5), key=False)
    error = submit(
        warehouse, 422, model="churn", **{"output": "postgresql://warehouse/scores.refused", **body}
    )["error"]
    assert error["code"] == code, error
    assert "pw@" not in json.dumps(error) and "db.internal" not in json.dumps(error)


def test_a_table_without_a_primary_key_is_scored_with_the_key_given(warehouse, workers) -> None:
    workers("one")
    data = customers(40, seed=13)
    load(warehouse, "nokey", data, key=False)
    run_job(
        warehouse,
        model="churn",
        input="postgresql://warehouse/landing.nokey",
        output="postgresql://warehouse/scores.nokey",
        key=["id"],
    )
    assert_scored_by_key(warehouse, table(warehouse, "scores.nokey"), data, "churn")


def test_passwords_and_hosts_never_leave_the_connections_file(warehouse, workers) -> None:
    """Not in a response, a job record, a log line or anywhere in Redis: also after a wrong password
    and a database that refuses the connection."""
    worker = workers("one")
    load(warehouse, "customers", customers(5))
    wrong = warehouse["api"].client.post(
        "/v1/jobs",
        json={"model": "churn", "input": "postgresql://locked/landing.customers", "output": "x.csv"},
    )
    assert wrong.status_code == 503 and wrong.json()["error"]["code"] == "store_access_denied", wrong.text
    gone = warehouse["api"].client.post(
        "/v1/jobs", json={"model": "churn", "input": "postgresql://gone/landing.customers", "output": "y.csv"}
    )
    assert gone.status_code == 503 and gone.json()["error"]["code"] == "store_unavailable", gone.text
    db = warehouse["db"]
    secrets = [
        db.password,
        WRONG_PASSWORD,
        GONE_HOST,
        f"{db.host}:{db.port}",
        f"port {db.port}",
        f"{db.user}@",
    ]
    seen = [
        wrong.text,
        gone.text,
        warehouse["api"].logs(),
        worker.logs(),
        *redis_texts(warehouse["redis"].client()),
    ]
    for text in seen:
        for secret in secrets:
            assert secret not in text
