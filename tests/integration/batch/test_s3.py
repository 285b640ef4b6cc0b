"""Batch jobs and schedules over S3 buckets, against a real S3 API server in its own process (moto's
server mode, over HTTP, with request signing checked), real `modelyard worker` subprocesses, a
private redis-server and the API over HTTP. Outputs are read back from the server and checked row
by row against the registered model."""

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelyard.config import Settings
from modelyard.registry.store import Registry
from modelyard.schedules import runs
from modelyard.schedules.config import Schedule
from modelyard.stores import upload
from modelyard.stores.uris import parse
from modelyard.tabular import write_table
from tests import factories
from tests.integration.batch.test_jobs import (
    assert_scored_like_the_model,
    customers,
    ended,
    until_registered,
    wait_job,
)
from tests.server import ApiServer, RedisServer, S3Server, WorkerProcess, free_port, run_cli, starting_workers
from tests.stored import redis_texts

SPLIT = {"chunk_rows": "100", "split_threshold_mb": "0.01", "part_rows": "1000"}
WRONG_SECRET = "wrong-secret-3f9c1d7e8b"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("lake")
    registry = Registry(root / "models")
    for name, model in [("churn", factories.classifier()), ("slow", factories.slow_classifier(0.15))]:
        registry.register(factories.save(model, root / f"{name}.joblib"), name)
        registry.promote(name, 1)
    (root / "data").mkdir()
    server = S3Server(root / "s3")
    s3 = server.client()
    for bucket in ("landing", "scores", "shared", "private", "locked"):
        s3.create_bucket(Bucket=bucket)
    secrets = root / "secrets"
    secrets.mkdir()
    for name, value in [
        ("access", server.access_key),
        ("secret", server.secret_key),
        ("wrong", WRONG_SECRET),
    ]:
        (secrets / name).write_text(value + "\n")
    connections = root / "connections.yaml"
    connections.write_text(
        f"""
connections:
  lake:
    type: s3
    endpoint: {server.endpoint}
    access_key: {{file: {secrets / "access"}}}
    secret_key: {{file: {secrets / "secret"}}}
    read: [landing, "shared/allowed/", scores]
    write: [scores]
  locked:
    type: s3
    endpoint: {server.endpoint}
    access_key: {{file: {secrets / "access"}}}
    secret_key: {{file: {secrets / "wrong"}}}
    read: [locked]
  gone:
    type: s3
    endpoint: http://127.0.0.1:{free_port()}
    access_key: {{file: {secrets / "access"}}}
    secret_key: {{file: {secrets / "secret"}}}
    read: [nowhere]
"""
    )
    redis_server = RedisServer(root / "redis")
    settings = {
        "data_dir": str(root / "data"),
        "redis_url": redis_server.url,
        "connections": str(connections),
    }
    api = ApiServer(registry.root, root / "api.log", **settings).wait()
    yield {
        "root": root,
        "registry": registry,
        "server": server,
        "s3": s3,
        "redis": redis_server,
        "api": api,
        "settings": settings,
    }
    api.stop()
    redis_server.stop()
    server.stop()


@pytest.fixture
def workers(lake: dict[str, Any]) -> Iterator[Callable[..., WorkerProcess]]:
    lake["redis"].client().flushall()
    connections = lake["settings"]["connections"]
    with starting_workers(lake["root"], lake["redis"].url, connections=connections) as start:
        yield start


def put(lake: dict[str, Any], bucket: str, key: str, data: pd.DataFrame, fmt: str = "csv") -> bytes:
    body = write_table(data, fmt)
    lake["s3"].put_object(Bucket=bucket, Key=key, Body=body)
    return body


def get(lake: dict[str, Any], bucket: str, key: str) -> bytes:
    return bytes(lake["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())


def keys(lake: dict[str, Any], bucket: str, prefix: str) -> list[str]:
    answer = lake["s3"].list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in answer.get("Contents", []))


def submit(lake: dict[str, Any], expect: int = 202, **body: Any) -> dict[str, Any]:
    response = lake["api"].client.post("/v1/jobs", json=body)
    assert response.status_code == expect, response.text
    return dict(response.json())


def read_dataset(lake: dict[str, Any], bucket: str, prefix: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """The manifest, and the rows of the parts it lists, each checked against its SHA-256."""
    manifest = json.loads(get(lake, bucket, prefix + "_SUCCESS"))
    frames = []
    for item in manifest["files"]:
        body = get(lake, bucket, item["key"])
        assert hashlib.sha256(body).hexdigest() == item["sha256"] and len(body) == item["bytes"]
        frame = (
            pq.read_table(io.BytesIO(body)).to_pandas()
            if manifest["format"] == "parquet"
            else (pd.read_csv(io.BytesIO(body)))
        )
        assert len(frame) == item["rows"]
        frames.append(frame)
    return manifest, pd.concat(frames, ignore_index=True)


def test_an_object_and_a_prefix_are_scored_like_the_model(lake, workers) -> None:
    workers("one")
    first, second = customers(500, seed=1), customers(300, seed=2)
    put(lake, "landing", "day1/a.csv", first)
    put(lake, "landing", "day1/b.csv", second)
    put(lake, "landing", "day1/_notes.csv", customers(3))  # skipped: '_' and '.' mark no input
    put(lake, "landing", "day1/.partial.csv", customers(3))

    record = submit(lake, model="churn", input="s3://landing/day1/a.csv", output="s3://scores/one/a.csv")
    record = wait_job(lake, record["id"], ended)
    assert record["status"] == "finished" and record["rows_done"] == 500, record
    assert_scored_like_the_model(
        lake, pd.read_csv(io.BytesIO(get(lake, "scores", "one/a.csv"))), first, "churn"
    )
    assert get(lake, "scores", "one/a.errors.jsonl") == b""

    record = submit(
        lake, model="churn", input="s3://landing/day1/", output="s3://scores/ds/", format="parquet"
    )
    record = wait_job(lake, record["id"], ended)
    assert record["status"] == "finished" and record["rows_done"] == 800, record
    manifest, scored = read_dataset(lake, "scores", "ds/")
    assert (manifest["rows"], manifest["rows_failed"], manifest["input"]) == (800, 0, "s3://landing/day1/")
    both = pd.concat([first, second], ignore_index=True)
    assert_scored_like_the_model(lake, scored, both, "churn")

    again = submit(lake, 409, model="churn", input="s3://landing/day1/", output="s3://scores/ds/")
    assert again["error"]["code"] == "output_exists"
    old_parts = [key for key in keys(lake, "scores", "ds/") if "part-" in key]
    body = {
        "model": "churn",
        "input": "s3://landing/day1/b.csv",
        "output": "s3://scores/ds/",
        "overwrite": True,
    }
    replaced = wait_job(lake, submit(lake, **body)["id"], ended)
    assert replaced["status"] == "finished", replaced
    manifest, scored = read_dataset(lake, "scores", "ds/")
    assert manifest["job_id"] == replaced["id"] and manifest["format"] == "csv"
    assert_scored_like_the_model(lake, scored, second, "churn")
    assert not set(old_parts) & set(keys(lake, "scores", "ds/"))  # deleted once the new manifest was written


def test_bad_rows_name_their_object_and_row(lake, workers) -> None:
    workers("one")
    data = customers(50)
    data["age"] = data["age"].astype(object)
    data.loc[7, "age"] = "old"
    put(lake, "landing", "bad/x.csv", customers(20))
    put(lake, "landing", "bad/y.csv", data)
    record = wait_job(
        lake, submit(lake, model="churn", input="s3://landing/bad/", output="s3://scores/bad/")["id"], ended
    )
    assert (record["status"], record["rows_done"], record["rows_failed"]) == ("finished", 69, 1), record
    manifest = json.loads(get(lake, "scores", "bad/_SUCCESS"))
    [errors] = [item for item in manifest["errors"] if item["rows"]]
    [problem] = [json.loads(line) for line in get(lake, "scores", errors["key"]).splitlines()]
    assert (problem["object"], problem["row"], problem["field"]) == ("s3://landing/bad/y.csv", 7, "age")


def test_a_split_object_equals_an_unsplit_one(lake, workers) -> None:
    data = customers(3000)
    put(lake, "landing", "big/all.csv", data)
    started = [workers(name, **SPLIT) for name in ("a", "b", "c")]
    until_registered(
        lake["redis"].client(), 3
    )  # a job is cut into as many parts as a multiple of the workers it finds
    split = wait_job(
        lake,
        submit(lake, model="slow", input="s3://landing/big/all.csv", output="s3://scores/split.csv")["id"],
        ended,
    )
    assert split["status"] == "finished" and split["parts"] == {"count": 3, "finished": 3}, split
    dataset = wait_job(
        lake,
        submit(lake, model="slow", input="s3://landing/big/all.csv", output="s3://scores/split-ds/")["id"],
        ended,
    )
    assert dataset["status"] == "finished" and dataset["parts"]["count"] == 3, dataset
    for index in range(3):
        put(lake, "landing", f"big3/{index}.csv", data.iloc[index * 1000 : (index + 1) * 1000])
    by_object = submit(lake, model="slow", input="s3://landing/big3/", output="s3://scores/split3/")
    by_object = wait_job(lake, by_object["id"], ended)
    assert by_object["status"] == "finished" and by_object["parts"]["count"] == 3, by_object
    for worker in started:
        worker.stop()
    workers("alone")
    whole = wait_job(
        lake,
        submit(lake, model="slow", input="s3://landing/big/all.csv", output="s3://scores/whole.csv")["id"],
        ended,
    )
    assert whole["status"] == "finished" and whole["parts"] is None
    assert get(lake, "scores", "split.csv") == get(lake, "scores", "whole.csv")
    assert get(lake, "scores", "split.errors.jsonl") == get(lake, "scores", "whole.errors.jsonl")
    manifest, scored = read_dataset(lake, "scores", "split-ds/")
    assert len(manifest["files"]) == 3
    pd.testing.assert_frame_equal(scored, pd.read_csv(io.BytesIO(get(lake, "scores", "whole.csv"))))
    _, by_objects = read_dataset(lake, "scores", "split3/")
    pd.testing.assert_frame_equal(by_objects, scored)
    assert not [key for key in keys(lake, "scores", "") if ".parts/" in key]  # staging removed


def test_a_killed_worker_is_rescued_into_one_complete_manifest(lake, workers) -> None:
    """SIGKILL of a worker's whole process tree mid-part: the rescue writes one manifest with every
    row once (RQ declares the part abandoned after about 80 s)."""
    data = customers(2400)
    put(lake, "landing", "kill/all.csv", data)
    victim = workers("victim", **SPLIT)
    record = submit(lake, model="slow", input="s3://landing/kill/all.csv", output="s3://scores/kill/")
    wait_job(lake, record["id"], lambda r: r["rows_done"] >= 300)
    victim.kill_tree()
    workers("rescuer", **SPLIT)
    record = wait_job(lake, record["id"], ended, timeout=200)
    assert record["status"] == "finished" and record["rows_done"] == 2400, record
    manifest, scored = read_dataset(lake, "scores", "kill/")
    assert_scored_like_the_model(lake, scored, data, "slow")
    listed = {item["key"] for item in [*manifest["files"], *manifest["errors"]]} | {"kill/_SUCCESS"}
    assert set(keys(lake, "scores", "kill/")) == listed  # no part twice, nothing else
    assert not lake["s3"].list_multipart_uploads(Bucket="scores", Prefix="kill/").get("Uploads")


def test_a_canceled_job_leaves_no_manifest_and_no_parts(lake, workers) -> None:
    for name in ("a", "b"):
        workers(name, **SPLIT)
    put(lake, "landing", "cancel/all.csv", customers(4000))
    record = submit(lake, model="slow", input="s3://landing/cancel/all.csv", output="s3://scores/cancel/")
    wait_job(lake, record["id"], lambda r: r["parts"] and r["parts"]["finished"] >= 1)
    assert lake["api"].client.delete(f"/v1/jobs/{record['id']}").json()["status"] == "canceled"
    deadline = time.monotonic() + 30
    while keys(lake, "scores", "cancel/") and time.monotonic() < deadline:
        time.sleep(0.5)  # the running parts stop at their next chunk, and remove what they wrote
    assert keys(lake, "scores", "cancel/") == []
    assert not lake["s3"].list_multipart_uploads(Bucket="scores", Prefix="cancel/").get("Uploads")


def test_a_schedule_scores_new_and_changed_objects_once(lake, workers) -> None:
    workers("one")
    settings = Settings(**lake["settings"], model_dir=lake["registry"].root)
    schedule = Schedule(
        name="nightly-lake",
        cron="0 2 * * *",
        model="churn",
        input="s3://landing/nightly/",
        output="s3://scores/nightly/{date}-{time}/",
    )
    connection = lake["redis"].client()
    put(lake, "landing", "nightly/a.csv", customers(40, seed=3))
    put(lake, "landing", "nightly/b.csv", customers(60, seed=4))

    def run(at: str) -> dict[str, Any]:
        slot = pd.Timestamp(at, tz="UTC").to_pydatetime()
        record = runs.run(schedule, slot, runs.run_id(schedule, slot), settings, connection, slot)
        for job_id in record["jobs"]:
            assert wait_job(lake, job_id, ended)["status"] == "finished"
        return record

    first = run("2026-12-01T02:00")
    assert first["files"] == ["s3://landing/nightly/a.csv", "s3://landing/nightly/b.csv"]
    assert json.loads(get(lake, "scores", "nightly/2026-12-01-0200/_SUCCESS"))["rows"] == 100
    second = run("2026-12-02T02:00")
    assert (second["status"], second["unchanged"], second["jobs"]) == ("no new files", 2, [])
    changed = customers(10, seed=5)
    put(lake, "landing", "nightly/b.csv", changed)
    third = run("2026-12-03T02:00")
    assert third["files"] == ["s3://landing/nightly/b.csv"] and third["unchanged"] == 1
    _, scored = read_dataset(lake, "scores", "nightly/2026-12-03-0200/")
    assert_scored_like_the_model(lake, scored, changed, "churn")

    runs.publish(connection, [schedule], 600)  # as the scheduler does: the API and CLI run it now
    put(lake, "landing", "nightly/c.csv", customers(5, seed=7))
    put(lake, "landing", "nightly/d.csv", customers(5, seed=8))
    now = run_cli(
        lake["root"], "schedules", "run", "nightly-lake", env={"MODELYARD_API_URL": lake["api"].url}
    )
    assert "1 job(s)" in now.stdout and "2 object(s): s3://landing/nightly/c.csv" in now.stdout, now.stdout


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"input": "s3://private/x.csv"}, "store_not_allowed"),  # no connection lists the bucket
        ({"input": "s3://shared/other/x.csv"}, "store_not_allowed"),  # outside the allowed prefix
        ({"input": "s3://shared/allowed/../other/x.csv"}, "invalid_path"),
        (
            {"input": "s3://landing/day1/a.csv", "output": "s3://landing/out/"},
            "store_not_allowed",
        ),  # read only
        ({"input": "s3://landing/none.csv"}, "store_object_not_found"),
        ({"input": "s3://landing/empty/"}, "input_not_found"),
    ],
)
def test_places_no_connection_allows_are_refused(lake, body: dict[str, Any], code: str) -> None:
    put(lake, "landing", "day1/a.csv", customers(5))
    error = submit(lake, 422, model="churn", **body)["error"]
    assert error["code"] == code, error


def test_credentials_never_leave_the_connections_file(lake, workers) -> None:
    """Not in a response, a job record, a log line or anywhere in Redis: also after a wrong secret
    (the store refuses the signature) and a store that refuses the connection."""
    worker = workers("one")
    pasted = submit(
        lake, 422, model="churn", input=f"s3://{lake['server'].access_key}:{WRONG_SECRET}@landing/x.csv"
    )
    lake["s3"].put_object(Bucket="locked", Key="x.csv", Body=b"age\n1\n")
    refused = lake["api"].client.post("/v1/jobs", json={"model": "churn", "input": "s3://locked/x.csv"})
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "store_access_denied"
    gone = submit(lake, model="churn", input="s3://nowhere/x.csv")  # the store does not answer: the job fails
    record = wait_job(lake, gone["id"], ended, timeout=120)
    assert record["status"] == "failed" and record["error"]["code"] == "store_unavailable", record

    secrets = [lake["server"].secret_key, WRONG_SECRET]
    seen = [json.dumps(pasted), refused.text, json.dumps(record), lake["api"].logs(), worker.logs()]
    seen += redis_texts(lake["redis"].client())
    assert len(seen) > 10
    for text in seen:
        for secret in secrets:
            assert secret not in text


def test_the_cli_scores_objects_as_a_worker_does(lake) -> None:
    """`modelyard score` on this machine, from a prefix into a dataset, and from an object to a file."""
    data = customers(120, seed=6)
    put(lake, "landing", "cli/a.parquet", data, "parquet")
    env = {"MODELYARD_CONNECTIONS": lake["settings"]["connections"]}
    done = run_cli(
        lake["root"],
        "score",
        "s3://landing/cli/",
        "--model",
        "churn",
        "--output",
        "s3://scores/cli/",
        env=env,
    )
    assert "scored 120 rows" in done.stdout and "s3://scores/cli/" in done.stdout, done.stdout
    manifest, scored = read_dataset(lake, "scores", "cli/")
    assert manifest["format"] == "parquet"
    assert_scored_like_the_model(lake, scored, data, "churn")
    run_cli(
        lake["root"],
        "score",
        "s3://landing/cli/a.parquet",
        "--model",
        "churn",
        "--output",
        "here.csv",
        env=env,
    )
    assert_scored_like_the_model(lake, pd.read_csv(lake["root"] / "here.csv"), data, "churn")
    refused = run_cli(lake["root"], "score", "s3://private/x.csv", "--model", "churn", env=env, check=False)
    assert refused.returncode != 0 and "no connection allows reading there" in refused.stderr


def test_an_object_of_several_parts_appears_whole_or_not_at_all(lake, monkeypatch) -> None:
    """Parts go up while the writer goes on; the object exists only once committed, and an abort
    leaves neither the object nor an unfinished upload."""
    monkeypatch.setattr(upload, "PART_BYTES", 5 << 20)  # S3's smallest part: three parts here
    client = lake["server"].client()
    body = os.urandom(12 << 20)
    uri = parse("s3://scores/parts/whole.bin", "output")
    with upload.object_writer(client, "lake", uri) as writer:
        for start in range(0, len(body), 1 << 20):
            writer.write(body[start : start + (1 << 20)])
        assert keys(lake, "scores", "parts/") == []  # nothing to see before the commit
    assert get(lake, "scores", "parts/whole.bin") == body
    assert writer.sha256 == hashlib.sha256(body).hexdigest() and writer.size == len(body)

    failed = parse("s3://scores/parts/failed.bin", "output")
    with (
        pytest.raises(RuntimeError, match="scoring failed"),
        upload.object_writer(client, "lake", failed) as writer,
    ):
        writer.write(body)
        raise RuntimeError("scoring failed")
    assert keys(lake, "scores", "parts/") == ["parts/whole.bin"]
    assert not client.list_multipart_uploads(Bucket="scores", Prefix="parts/").get("Uploads")
