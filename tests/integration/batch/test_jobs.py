"""Batch jobs through the real processes: a private redis-server, `modelyard worker` subprocesses and
the API over HTTP. Workers are killed and stopped for real; outputs are checked row by row against
the registered model itself."""

import io
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rq import Worker

from modelyard.batch import queue
from modelyard.registry.store import Registry
from modelyard.tabular import write_table
from tests import factories
from tests.server import run_cli


def customers(rows: int, seed: int = 9) -> pd.DataFrame:
    data = factories.frame(rows, seed=seed)
    data.insert(0, "customer_id", [f"C{i:05d}" for i in range(rows)])
    return data


def put(stack: dict[str, Any], name: str, content: bytes) -> str:
    path = stack["root"] / "data" / "incoming" / name
    path.write_bytes(content)
    return f"incoming/{name}"


def submit(stack: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = stack["api"].client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/jobs/{response.json()['id']}"
    return response.json()


def job(stack: dict[str, Any], job_id: str) -> dict[str, Any]:
    response = stack["api"].client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_job(
    stack: dict[str, Any], job_id: str, until: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = job(stack, job_id)
        if until(record):
            return record
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {record}")


def ended(record: dict[str, Any]) -> bool:
    return record["status"] in ("finished", "failed", "canceled")


def output_of(stack: dict[str, Any], record: dict[str, Any]) -> pd.DataFrame:
    response = stack["api"].client.get(f"/v1/jobs/{record['id']}/result")
    assert response.status_code == 200, response.text
    return pd.read_csv(io.BytesIO(response.content))


def assert_scored_like_the_model(
    stack: dict[str, Any], scored: pd.DataFrame, data: pd.DataFrame, name: str
) -> None:
    """Every input row exactly once, in order, with the registered model's own answers."""
    model = factories.load_as_served(stack["registry"].get(name, 1).artifact)
    features = data[["age", "income", "color"]]
    assert scored["customer_id"].tolist() == data["customer_id"].tolist()
    assert scored["prediction"].tolist() == model.predict(features).tolist()
    probabilities = scored[["probability_no", "probability_yes"]].to_numpy()
    assert np.array_equal(probabilities, model.predict_proba(features))
    assert set(scored["model"]) == {name} and set(scored["model_version"]) == {1}


def test_a_job_scores_its_file_like_the_model(stack, workers) -> None:
    workers("w1")
    data = customers(300)
    record = submit(stack, model="churn", input=put(stack, "plain.csv", write_table(data, "csv")))
    assert record["status"] == "queued" and record["version"] == 1

    record = wait_job(stack, record["id"], ended)
    assert record["status"] == "finished", record
    assert (record["rows_done"], record["rows_failed"], record["rows_total"]) == (300, 0, 300)
    assert record["worker"] == "w1" and record["started_at"] and record["ended_at"]
    assert_scored_like_the_model(stack, output_of(stack, record), data, "churn")
    errors = stack["api"].client.get(f"/v1/jobs/{record['id']}/errors")
    assert errors.status_code == 200 and errors.content == b""
    listed = stack["api"].client.get("/v1/jobs", params={"status": "finished"}).json()["jobs"]
    assert [j["id"] for j in listed] == [record["id"]]


def test_progress_rises_while_a_job_runs(stack, workers) -> None:
    workers("w1", chunk_rows="100")
    record = submit(stack, model="slow", input=put(stack, "slow.csv", write_table(customers(2000), "csv")))
    seen = []
    while not ended(record := job(stack, record["id"])):
        seen.append(record["rows_done"])
        time.sleep(0.1)
    assert record["status"] == "finished"
    progress = sorted(set(seen))
    assert len([p for p in progress if 0 < p < 2000]) >= 3, progress
    assert seen == sorted(seen)  # never goes back


def test_bad_rows_end_in_the_errors_file(stack, workers) -> None:
    workers("w1", chunk_rows="4")
    lines = ["customer_id,age,income,color"] + [f"C{i},{20 + i},50.5,red" for i in range(10)]
    lines[3] = "C2,old,50.5,red"
    lines[7] = "C6,30"
    record = submit(stack, model="churn", input=put(stack, "bad.csv", ("\n".join(lines) + "\n").encode()))
    record = wait_job(stack, record["id"], ended)
    assert (record["status"], record["rows_done"], record["rows_failed"]) == ("finished", 8, 2)
    errors = stack["api"].client.get(f"/v1/jobs/{record['id']}/errors").text.splitlines()
    assert [(e["row"], e["line"], e["field"], e["code"]) for e in map(json.loads, errors)] == [
        (2, 4, "age", "wrong_type"),
        (6, 8, None, "malformed_row"),
    ]
    scored = output_of(stack, record)
    assert scored["customer_id"].tolist() == [f"C{i}" for i in range(10) if i not in (2, 6)]

    failing = submit(stack, model="churn", input="incoming/bad.csv", fail_fast=True, output="scored/ff.csv")
    failing = wait_job(stack, failing["id"], ended)
    assert failing["status"] == "failed"
    assert (
        failing["error"]["code"] == "invalid_input"
        and "row 2 (line 4), field 'age'" in failing["error"]["message"]
    )
    assert not (stack["root"] / "data" / "scored" / "ff.csv").exists()


def test_cancel_a_queued_job(stack, workers) -> None:
    record = submit(stack, model="churn", input=put(stack, "q.csv", write_table(customers(10), "csv")))
    canceled = stack["api"].client.delete(f"/v1/jobs/{record['id']}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    worker = workers("w1")
    time.sleep(3)
    assert job(stack, record["id"])["status"] == "canceled"
    assert not (stack["root"] / "data" / record["output"]).exists()
    assert "Job OK" not in worker.logs()
    again = stack["api"].client.post(f"/v1/jobs/{record['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_already_ended"


def test_cancel_a_running_job_leaves_no_output(stack, workers) -> None:
    worker = workers("w1", chunk_rows="100")
    record = submit(stack, model="slow", input=put(stack, "c.csv", write_table(customers(3000), "csv")))
    wait_job(stack, record["id"], lambda r: r["rows_done"] >= 200)
    assert stack["api"].client.delete(f"/v1/jobs/{record['id']}").json()["status"] == "canceled"
    deadline = time.monotonic() + 20
    while "stopped between two chunks" not in worker.logs():
        assert time.monotonic() < deadline, worker.logs()
        time.sleep(0.1)
    time.sleep(1)
    record = job(stack, record["id"])
    assert record["status"] == "canceled" and record["rows_done"] < 3000
    scored = stack["root"] / "data" / "scored"
    assert not [p.name for p in scored.iterdir() if p.name.startswith((".c.", "c."))]
    assert stack["api"].client.get(f"/v1/jobs/{record['id']}/result").status_code == 409


def test_sigterm_hands_the_job_to_another_worker(stack, workers) -> None:
    first = workers("first", chunk_rows="100")
    data = customers(3000)
    record = submit(stack, model="slow", input=put(stack, "t.csv", write_table(data, "csv")))
    wait_job(stack, record["id"], lambda r: r["rows_done"] >= 200 and r["worker"] == "first")
    workers("second", chunk_rows="100")
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(timeout=30) == 0  # it stopped after one chunk, not after the job
    record = wait_job(stack, record["id"], ended, timeout=90)
    assert (record["status"], record["worker"]) == ("finished", "second"), record
    assert_scored_like_the_model(stack, output_of(stack, record), data, "slow")


def test_a_killed_worker_and_horse_lose_nothing(stack, workers) -> None:
    """SIGKILL of a worker with its whole process tree mid-job: another worker finishes the job once
    RQ declares it abandoned (heartbeat expiry plus a maintenance pass: about 80 s)."""
    victim = workers("victim", chunk_rows="100")
    data = customers(3000)
    record = submit(stack, model="slow", input=put(stack, "k.csv", write_table(data, "csv")))
    wait_job(stack, record["id"], lambda r: r["rows_done"] >= 300)
    victim.kill_tree()
    killed_at = time.monotonic()
    workers("rescuer", chunk_rows="100")
    record = wait_job(stack, record["id"], ended, timeout=180)
    took = time.monotonic() - killed_at
    assert (record["status"], record["worker"]) == ("finished", "rescuer"), record
    assert took < 150, f"the job was re-run {took:.0f}s after the kill"
    assert_scored_like_the_model(stack, output_of(stack, record), data, "slow")
    print(f"job finished by the rescuer {took:.0f}s after the kill")


def until_registered(connection: Any, count: int) -> None:
    """Until `count` workers are up: a big job is cut into a multiple of the workers it finds."""
    deadline = time.monotonic() + 30
    while Worker.count(connection=connection) < count:
        assert time.monotonic() < deadline, f"{count} workers never registered"
        time.sleep(0.1)


def test_a_big_file_split_over_three_workers_equals_one_worker(stack, workers) -> None:
    data = customers(3000)
    source = put(stack, "big.csv", write_table(data, "csv"))
    split = {"chunk_rows": "100", "split_threshold_mb": "0.01", "part_rows": "1000"}
    names = ["a", "b", "c"]
    started = [workers(name, **split) for name in names]
    until_registered(stack["redis"].client(), len(names))
    record = submit(stack, model="slow", input=source, output="scored/split.csv")
    record = wait_job(stack, record["id"], ended, timeout=90)
    assert record["status"] == "finished" and record["parts"] == {"count": 3, "finished": 3}, record
    assert (record["rows_done"], record["rows_total"]) == (3000, 3000)
    connection = stack["redis"].client()
    ran_parts = {queue.fetch(connection, f"{record['id']}-part{i:04d}").worker_name for i in range(3)}
    assert len(ran_parts) >= 2, f"parts all ran on {ran_parts}"
    for worker in started:
        worker.stop()

    workers("alone", chunk_rows="100")
    whole = wait_job(stack, submit(stack, model="slow", input=source, output="scored/whole.csv")["id"], ended)
    assert whole["status"] == "finished" and whole["parts"] is None
    folder = stack["root"] / "data" / "scored"
    assert (folder / "split.csv").read_bytes() == (folder / "whole.csv").read_bytes()
    assert not list(folder.glob(".*parts"))  # the parts are cleaned up


def test_upload_a_file_as_a_job(stack, workers) -> None:
    workers("w1")
    data = customers(50)
    response = stack["api"].client.post(
        "/v1/jobs/upload",
        files={"file": ("my upload.parquet", write_table(data, "parquet"))},
        data={"model": "churn", "format": "csv"},
    )
    assert response.status_code == 202, response.text
    record = wait_job(stack, response.json()["id"], ended)
    assert record["status"] == "finished" and record["input"].startswith("uploads/")
    assert_scored_like_the_model(stack, output_of(stack, record), data, "churn")


def test_a_refused_model_version_fails_the_job_with_the_reason(stack, workers) -> None:
    registry: Registry = stack["registry"]
    tampered = registry.register(
        factories.save(factories.classifier(seed=3), stack["root"] / "t.joblib"), "churn"
    )
    os.chmod(tampered.artifact, 0o644)
    tampered.artifact.write_bytes(b"not what was registered")
    workers("w1")
    record = submit(stack, model="churn", version=tampered.version, input=put(stack, "r.csv", b"age\n1\n"))
    record = wait_job(stack, record["id"], ended)
    assert record["status"] == "failed" and record["error"]["code"] == "artifact_tampered", record


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"input": "../outside.csv"}, 422, "invalid_path"),
        ({"input": "/etc/passwd"}, 422, "invalid_path"),
        ({"input": "incoming/link.csv"}, 422, "invalid_path"),
        ({"input": "incoming/a\u0000.csv"}, 422, "invalid_path"),  # found by make fuzz: was a 500
        ({"input": "incoming/ok.csv", "output": "a\u0000b.csv"}, 422, "invalid_path"),
        ({"input": "incoming/nothing.csv"}, 422, "input_not_found"),
        ({"input": "incoming/notes.txt"}, 415, "unsupported_format"),
        ({"input": "incoming/ok.csv", "model": "nobody"}, 404, "model_not_found"),
        ({"input": "incoming/ok.csv", "version": 99}, 404, "version_not_found"),
        ({"input": "incoming/ok.csv", "output": "../../escape.csv"}, 422, "invalid_path"),
        ({"input": "incoming/ok.csv", "format": "xlsx"}, 415, "unsupported_format"),
        ({"input": "incoming/ok.csv", "surprise": 1}, 422, "invalid_request"),
        ({"input": "incoming/ok.csv", "output": "x.parquet", "format": "csv"}, 422, "invalid_request"),
        ({"input": "incoming/ok.csv", "output": "incoming/notes.txt"}, 409, "output_exists"),
        ({"input": "incoming/ok.csv", "version": 1, "alias": "production"}, 422, "invalid_request"),
    ],
)
def test_bad_job_requests(stack, body: dict[str, Any], status: int, code: str) -> None:
    incoming = stack["root"] / "data" / "incoming"
    (incoming / "ok.csv").write_text("age\n1\n")
    (incoming / "notes.txt").write_text("hello")
    if not (incoming / "link.csv").is_symlink():
        (incoming / "link.csv").symlink_to(stack["root"] / "churn.joblib")
    response = stack["api"].client.post("/v1/jobs", json={"model": "churn", **body})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_a_path_no_file_system_can_name(stack) -> None:
    """JSON can carry an unpaired surrogate, which no file name can (found by make fuzz: was a 500)."""
    raw = b'{"model": "churn", "input": "incoming/\\ud9f2.csv"}'
    response = stack["api"].client.post("/v1/jobs", content=raw)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_path"
    assert "is not a file name" in response.json()["error"]["message"]


def test_curl_style_bodies_text_inputs_overwrite_and_warnings(stack, workers) -> None:
    """The body is JSON whatever the Content-Type (curl -d sends a form type); an input named .txt
    says its format; an existing output needs overwrite; unknown categories are counted."""
    workers("w1")
    lines = ["age,income,color"] + [f"{30 + i},50.5,{'purple' if i < 3 else 'red'}" for i in range(10)]
    put(stack, "export.txt", ("\n".join(lines) + "\n").encode())
    body = {"model": "churn", "input": "incoming/export.txt", "input_format": "csv", "output": "scored/t.csv"}
    response = stack["api"].client.post(
        "/v1/jobs", content=json.dumps(body), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 202, response.text
    record = wait_job(stack, response.json()["id"], ended)
    assert record["status"] == "finished" and record["rows_done"] == 10
    assert record["warnings"] == [{"field": "color", "code": "unknown_category", "count": 3}]
    again = stack["api"].client.post("/v1/jobs", json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "output_exists"
    assert stack["api"].client.post("/v1/jobs", json={**body, "overwrite": True}).status_code == 202


def test_a_file_with_no_valid_row_fails(stack, workers) -> None:
    workers("w1")
    data = customers(20).astype({"age": str})
    data["age"] = "old"
    record = submit(stack, model="churn", input=put(stack, "allbad.csv", write_table(data, "csv")))
    record = wait_job(stack, record["id"], ended)
    assert record["status"] == "failed" and record["error"]["code"] == "invalid_input"
    assert "no row could be scored: all 20 rows are invalid" in record["error"]["message"]
    assert "row 0 (line 2), field 'age'" in record["error"]["message"]


def test_canceling_a_split_job_removes_its_parts(stack, workers) -> None:
    split = {"chunk_rows": "100", "split_threshold_mb": "0.01", "part_rows": "1000"}
    for name in ("a", "b"):
        workers(name, **split)
    record = submit(stack, model="slow", input=put(stack, "sc.csv", write_table(customers(4000), "csv")))
    wait_job(stack, record["id"], lambda r: r["parts"] and r["parts"]["finished"] >= 1)
    assert stack["api"].client.delete(f"/v1/jobs/{record['id']}").json()["status"] == "canceled"
    time.sleep(2)  # the running parts stop at their next chunk
    scored = stack["root"] / "data" / "scored"
    assert not list(scored.glob(f".{record['id']}.parts*"))
    assert job(stack, record["id"])["status"] == "canceled"


def test_unknown_job_and_unfinished_downloads(stack, workers) -> None:
    assert stack["api"].client.get("/v1/jobs/nope").json()["error"]["code"] == "job_not_found"
    record = submit(stack, model="churn", input=put(stack, "u.csv", write_table(customers(5), "csv")))
    response = stack["api"].client.get(f"/v1/jobs/{record['id']}/result")
    assert response.status_code == 409 and response.json()["error"]["code"] == "job_not_finished"


def test_metrics_show_the_batch_side(stack, workers) -> None:
    workers("w1")
    record = submit(stack, model="churn", input=put(stack, "m.csv", write_table(customers(40), "csv")))
    wait_job(stack, record["id"], ended)
    text = stack["api"].client.get("/metrics").text
    assert "modelyard_queue_up 1.0" in text and "modelyard_queue_depth 0.0" in text
    assert 'modelyard_batch_rows_scored_total{model="churn",version="1"} 40.0' in text
    assert 'modelyard_batch_jobs{status="finished"} 1.0' in text
    assert "modelyard_batch_chunk_duration_seconds_count 1.0" in text


def test_the_jobs_commands_follow_a_job_through_the_api(stack, workers) -> None:
    workers("w1")
    put(stack, "cli.csv", write_table(customers(30), "csv"))
    env = {"MODELYARD_API_URL": stack["api"].url}
    submitted = run_cli(
        stack["root"], "jobs", "submit", "--model", "churn", "--input", "incoming/cli.csv", "--wait", env=env
    )
    assert "finished" in submitted.stdout and "30 scored, 0 invalid, of 30" in submitted.stdout
    job_id = submitted.stdout.split()[1]
    assert "finished" in run_cli(stack["root"], "jobs", "list", env=env).stdout
    local = stack["root"] / "local.csv"
    local.write_bytes(write_table(customers(12), "csv"))
    uploaded = run_cli(
        stack["root"], "jobs", "submit", "--model", "churn", "--upload", str(local), "--wait", env=env
    )
    assert "12 scored, 0 invalid, of 12" in uploaded.stdout
    status = json.loads(run_cli(stack["root"], "jobs", "status", job_id, "--json", env=env).stdout)
    assert status["rows_done"] == 30
    refused = run_cli(stack["root"], "jobs", "cancel", job_id, env=env, check=False)
    assert refused.returncode == 1 and "has already ended" in refused.stderr
