"""What a batch job is in Redis outlives any one release: the spec's JSON, the queue's name, the job
list's key and the dotted names RQ runs (`modelyard.jobs.score`, `score_part`, `join_parts`). Jobs
queued before an upgrade, and workers on other hosts still on the previous image, depend on them."""

import re
import time
import zlib
from pathlib import Path
from typing import Any

import pandas as pd
import redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from modelyard.batch.submit import JobRequest, submit
from modelyard.config import Settings
from modelyard.registry.store import Registry
from modelyard.tabular import write_table
from tests import factories

PLAIN = (
    b'["modelyard.jobs.score", null, [{"id": "golden-plain", "model": "churn", "version": 1, '
    b'"input": "incoming/people.csv", "input_format": "csv", '
    b'"output": "scored/people.golden-plain.predictions.csv", '
    b'"errors_output": "scored/people.golden-plain.errors.jsonl", "format": "csv", "fail_fast": false, '
    b'"origin": "api", "submitted_at": "<now>"}], {}]'
)
SCHEDULED = (
    b'["modelyard.jobs.score", null, [{"id": "golden-scheduled", "model": "churn", "version": 1, '
    b'"input": "incoming/people.txt", "input_format": "csv", "output": "nightly/people.parquet", '
    b'"errors_output": "nightly/people.errors.jsonl", "format": "parquet", "fail_fast": true, '
    b'"origin": "schedule:nightly", "submitted_at": "<now>", "marker": {"path": '
    b'".modelyard/scored/nightly/abc.json", "input": "incoming/people.txt", "sha256": "00ff", '
    b'"size": 12, "mtime": 1764547200.5}}], {}]'
)


def stored(connection: redis.Redis, job_id: str) -> bytes:
    """The job's function and arguments as RQ keeps them, with the submission time blanked."""
    raw = zlib.decompress(connection.hget(f"rq:job:{job_id}", "data"))
    return re.sub(rb'"submitted_at": "[^"]+"', b'"submitted_at": "<now>"', raw)


def test_the_job_spec_in_redis_is_byte_for_byte_what_it_was(stack: dict[str, Any]) -> None:
    root, connection = stack["root"], stack["redis"].client()
    people = write_table(factories.frame(5), "csv")
    for name in ("people.csv", "people.txt"):
        (root / "data" / "incoming" / name).write_bytes(people)
    settings = Settings(
        _env_file=None,
        model_dir=root / "models",
        data_dir=root / "data",
        redis_url=stack["redis"].url,
    )
    plain = JobRequest(model="churn", input="incoming/people.csv")
    submit(plain, settings, connection, job_id="golden-plain")
    assert stored(connection, "golden-plain") == PLAIN

    scheduled = JobRequest(
        model="churn",
        input="incoming/people.txt",
        version=1,
        output="nightly/people.parquet",
        fail_fast=True,
        input_format="csv",
        overwrite=True,
    )
    marker = {
        "path": ".modelyard/scored/nightly/abc.json",
        "input": "incoming/people.txt",
        "sha256": "00ff",
        "size": 12,
        "mtime": 1764547200.5,
    }
    submit(
        scheduled, settings, connection, job_id="golden-scheduled", origin="schedule:nightly", marker=marker
    )
    assert stored(connection, "golden-scheduled") == SCHEDULED


def enqueue_as_before(connection: redis.Redis, job_id: str, model: str, source: str, output: str) -> None:
    """A job as the previous release queued it: RQ and the literal names only, none of today's code."""
    spec = {
        "id": job_id,
        "model": model,
        "version": 1,
        "input": source,
        "input_format": "csv",
        "output": output,
        "errors_output": output.removesuffix(".csv") + ".errors.jsonl",
        "format": "csv",
        "fail_fast": False,
        "origin": "api",
        "submitted_at": "2026-11-30T02:00:00+00:00",
    }
    jobs = Queue("modelyard", connection=connection, serializer=JSONSerializer)
    jobs.enqueue_call(
        "modelyard.jobs.score", args=(spec,), job_id=job_id, result_ttl=3600, failure_ttl=3600, ttl=3600
    )
    connection.zadd("modelyard:jobs", {job_id: time.time()})


def wait(stack: dict[str, Any], job_id: str, until: Any, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = stack["api"].client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        if until(response.json()):
            return dict(response.json())
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {response.json()}")


def test_jobs_queued_by_the_old_names_run_and_answer_through_the_api(stack, workers) -> None:
    root, connection = stack["root"], stack["redis"].client()
    data = factories.frame(3000, seed=4)
    (root / "data" / "incoming" / "old.csv").write_bytes(write_table(data, "csv"))
    for name in ("old-a", "old-b"):
        workers(name, chunk_rows="100", split_threshold_mb="0.01", part_rows="1000")

    enqueue_as_before(connection, "old-whole", "churn", "incoming/old.csv", "scored/old.csv")
    record = wait(stack, "old-whole", lambda r: r["status"] in ("finished", "failed"))
    assert record["status"] == "finished", record
    assert record["rows_done"] == 3000 and record["parts"]["count"] >= 2, record
    for part in range(record["parts"]["count"]):
        job = Job.fetch(f"old-whole-part{part:04d}", connection=connection, serializer=JSONSerializer)
        assert job.func_name == "modelyard.jobs.score_part"
    join = Job.fetch("old-whole-join", connection=connection, serializer=JSONSerializer)
    assert join.func_name == "modelyard.jobs.join_parts"
    assert stack["api"].client.get("/v1/jobs/old-whole/result").status_code == 200
    scored = pd.read_csv(Path(root / "data" / "scored" / "old.csv"))
    model = factories.load_as_served(Registry(root / "models").get("churn", 1).artifact)
    assert scored["prediction"].tolist() == model.predict(data).tolist()

    enqueue_as_before(connection, "old-slow", "slow", "incoming/old.csv", "scored/old-slow.csv")
    wait(stack, "old-slow", lambda r: r["status"] == "started")
    canceled = stack["api"].client.delete("/v1/jobs/old-slow")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text
    assert wait(stack, "old-slow", lambda r: r["status"] == "canceled")["status"] == "canceled"
    listed = stack["api"].client.get("/v1/jobs").json()["jobs"]
    assert {r["id"] for r in listed} == {"old-whole", "old-slow"}
