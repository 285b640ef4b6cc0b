"""Schedules over stores, for real: the stack of compose.yaml with its demo profile's S3 test server
and PostgreSQL, and the README's two example schedules (examples/s3-demo/ and examples/pg-demo/):

- from a bucket prefix into a dated output prefix, through a connection whose access key comes from
  .env and whose secret is a Docker secret, as the README shows. A test-only compose.override.yaml
  publishes the S3 server's port, through which the test puts the input objects and reads back the
  `_SUCCESS` manifest and every scored row;
- from a table's new rows into a scores table, through a connection whose password comes from .env
  (as `make up` writes it); the test adds rows and reads the scores with psql in the container."""

import hashlib
import io
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
import yaml

from tests import factories
from tests.e2e.compose import ROOT, Stack, ended, job, wait_for
from tests.server import free_port

SCHEDULE = "nightly-lake"
"""The README's example schedule, from examples/s3-demo/schedules.yaml."""
TABLE_SCHEDULE = "nightly-customers"
"""The README's example schedule on new rows, from examples/pg-demo/schedules.yaml."""
CONTAINER_UID = 10001
"""The user the modelyard images run as: Compose mounts a secret file as it is on the host."""


class Lake:
    def __init__(self, stack: Stack, s3: Any, artifact: Path, secret: str) -> None:
        self.stack, self.s3, self.artifact, self.secret = stack, s3, artifact, secret

    def put(self, key: str, data: pd.DataFrame) -> None:
        self.s3.put_object(Bucket="landing", Key=key, Body=data.to_csv(index=False).encode())

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket="scores", Key=key)["Body"].read())


@pytest.fixture(scope="module")
def lake(images: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    folder = tmp_path_factory.mktemp("lake")
    s3_port, secret = free_port(), f"lake-secret-{secrets.token_hex(8)}"
    (folder / "connections.yaml").write_text(
        """connections:
  lake:
    type: s3
    endpoint: http://s3:5000
    access_key: {env: LAKE_ACCESS_KEY}
    secret_key: {file: /run/secrets/lake_secret_key}
    read: [landing]
    write: [scores]
"""
        + (ROOT / "examples" / "pg-demo" / "connections.yaml").read_text().split("connections:\n", 1)[1]
    )
    examples = [ROOT / "examples" / name / "schedules.yaml" for name in ("s3-demo", "pg-demo")]
    entries = [entry for path in examples for entry in yaml.safe_load(path.read_text())["schedules"]]
    (folder / "schedules.yaml").write_text(yaml.safe_dump({"schedules": entries}))
    secret_file = folder / "lake_secret_key"
    secret_file.write_text(secret + "\n")
    if os.geteuid() == 0:
        os.chown(secret_file, CONTAINER_UID, -1)
        secret_file.chmod(0o400)
    else:
        secret_file.chmod(0o444)
    (folder / "compose.override.yaml").write_text(
        f"""# test only: the S3 test server's port on this host; the secret key as a Docker secret
services:
  s3:
    ports: ["127.0.0.1:{s3_port}:5000"]
  api: {{secrets: [lake_secret_key]}}
  worker: {{secrets: [lake_secret_key]}}
  scheduler: {{secrets: [lake_secret_key]}}
secrets:
  lake_secret_key: {{file: ./lake_secret_key}}
"""
    )
    stack = Stack(
        folder, "modelyard-e2e-s3", free_port(),
        COMPOSE_PROFILES="demo",
        MODELYARD_CONNECTIONS_FILE="./connections.yaml",
        MODELYARD_SCHEDULES_FILE="./schedules.yaml",
        LAKE_ACCESS_KEY="lake-access",
        MODELYARD_API_PROCESSES="1",
        MODELYARD_WORKERS="1",
    )  # fmt: skip
    with stack.running("stack and S3 test server"):
        artifact = factories.save(factories.classifier(seed=5), folder / "churn.joblib")
        artifact.chmod(0o644)
        registered = stack.compose(
            "run", "--rm", "-v", f"{artifact}:/in/churn.joblib:ro", "admin",
            "modelyard", "models", "register", "/in/churn.joblib", "--name", "churn", "--promote",
        )  # fmt: skip
        assert "registered churn version 1" in registered
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{s3_port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        yield Lake(stack, s3, artifact, secret)


def test_a_scheduled_run_scores_new_objects_of_a_bucket_into_a_dated_dataset(lake: Lake) -> None:
    first, second = factories.frame(40, seed=21), factories.frame(30, seed=22)
    second["age"] = second["age"].astype(object)
    second.loc[7, "age"] = "old"  # one bad row: set aside in the dataset's errors, not fatal
    lake.put("incoming/2026-12-01.csv", first)
    lake.put("incoming/2026-12-02.csv", second)
    lake.put("incoming/_copying.csv", first)  # hidden: never an input

    started = time.monotonic()
    run_now = lake.stack.http.post(f"/v1/schedules/{SCHEDULE}/run")
    assert run_now.status_code == 202, run_now.text
    assert run_now.json()["files"] == [
        "s3://landing/incoming/2026-12-01.csv",
        "s3://landing/incoming/2026-12-02.csv",
    ]
    [job_id] = run_now.json()["jobs"]
    record = wait_for(lambda: job(lake.stack, job_id), ended)
    print(f"the scheduled job ended {time.monotonic() - started:.1f}s after the run was asked for")
    assert record["status"] == "finished", record
    assert (record["rows_done"], record["rows_failed"], record["origin"]) == (69, 1, f"schedule:{SCHEDULE}")
    prefix = record["output"].removeprefix("s3://scores/")
    assert record["output"] == f"s3://scores/nightly/{run_now.json()['slot'][:10]}/"

    manifest = json.loads(lake.read(prefix + "_SUCCESS"))
    assert (manifest["job_id"], manifest["model"], manifest["model_version"]) == (job_id, "churn", 1)
    assert (manifest["input"], manifest["format"]) == ("s3://landing/incoming/", "csv")
    assert (manifest["rows"], manifest["rows_failed"]) == (69, 1)
    parts = []
    for part in manifest["files"]:
        body = lake.read(part["key"])
        assert (len(body), part["sha256"]) == (part["bytes"], hashlib.sha256(body).hexdigest())
        parts.append(pd.read_csv(io.BytesIO(body)))
    scored = pd.concat(parts, ignore_index=True)

    good = pd.concat([first, second.drop(index=7)], ignore_index=True).astype({"age": int})
    model = factories.load_as_served(lake.artifact)
    assert scored[["age", "income", "color"]].equals(good)
    assert scored["prediction"].tolist() == model.predict(good).tolist()
    assert np.array_equal(scored[["probability_no", "probability_yes"]].to_numpy(), model.predict_proba(good))
    assert set(scored["model"]) == {"churn"} and set(scored["model_version"]) == {1}
    [bad] = [
        json.loads(line) for entry in manifest["errors"] for line in lake.read(entry["key"]).splitlines()
    ]
    assert (bad["object"], bad["row"], bad["field"]) == ("s3://landing/incoming/2026-12-02.csv", 7, "age")

    again = lake.stack.http.post(f"/v1/schedules/{SCHEDULE}/run").json()
    assert (again["status"], again["unchanged"], again["jobs"]) == ("no new files", 2, [])
    logs = lake.stack.compose("logs", both=True)
    assert lake.secret not in logs and lake.secret not in json.dumps(record)


def test_a_scheduled_run_scores_a_tables_new_rows_into_a_scores_table(lake: Lake) -> None:
    """The demo database's 500 customers, then three new ones: each run appends only what is new,
    and the ledger beside the scores records each run's range."""

    def psql(sql: str) -> list[str]:
        out = lake.stack.compose("exec", "-T", "postgres", "psql", "-d", "shop", "-At", "-F", ",", "-c", sql)
        return out.splitlines()

    trained = lake.stack.compose("run", "--rm", "admin", "modelyard", "demo", "train")  # the table's model
    assert "version 2" in trained, trained

    def run_now() -> dict[str, Any]:
        answer = lake.stack.http.post(f"/v1/schedules/{TABLE_SCHEDULE}/run")
        assert answer.status_code == 202, answer.text
        return dict(answer.json())

    first = run_now()
    [job_id] = first["jobs"]
    record = wait_for(lambda: job(lake.stack, job_id), ended)
    assert record["status"] == "finished" and record["rows_done"] == 500, record
    assert first["range"]["after"] is None
    psql(
        "INSERT INTO landing.customers (id, tenure_months, monthly_charges, support_calls, data_usage_gb,"
        " plan, contract, payment_method, region) VALUES (1001, 3, 99.5, 6, 40.0, 'basic',"
        " 'month-to-month', 'card', 'north'), (1002, 60, 20.0, 0, 2.5, 'premium', 'two-year', 'invoice',"
        " 'east'), (1003, 12, 70.0, 1, 10.0, 'standard', 'one-year', 'wallet', 'south')"
    )
    second = run_now()
    assert second["range"]["after"] == first["range"]["upto"], second
    [job_id] = second["jobs"]
    record = wait_for(lambda: job(lake.stack, job_id), ended)
    assert record["status"] == "finished" and record["rows_done"] == 3, record
    assert run_now()["status"] == "no new rows"

    counts = psql(
        "SELECT count(*), count(DISTINCT id), min(model_version), max(model_version) FROM scores.churn"
    )
    assert counts == ["503,503,2,2"]
    new = psql(
        "SELECT id, prediction, probability_no + probability_yes FROM scores.churn WHERE id > 1000 "
        "ORDER BY id"
    )
    assert [line.split(",")[0] for line in new] == ["1001", "1002", "1003"]
    assert all(
        line.split(",")[1] in ("yes", "no") and abs(float(line.split(",")[2]) - 1) < 1e-9 for line in new
    )
    ledger = psql(
        "SELECT rows, since_after IS NULL FROM scores.modelyard_ledger "
        f"WHERE origin = 'schedule:{TABLE_SCHEDULE}' ORDER BY committed_at"
    )
    assert ledger == ["500,t", "3,f"]
    password = lake.stack.compose("exec", "-T", "postgres", "printenv", "MODELYARD_POSTGRES_PASSWORD").strip()
    assert password and password not in lake.stack.compose("logs", both=True)
