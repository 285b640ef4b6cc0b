"""A job's life through the API and the CLI, with the folder's private redis-server and real
workers: it is canceled with POST /v1/jobs/{id}/cancel (DELETE still cancels, deprecated), and once
it has ended, DELETE removes everything Redis holds for it, and its files on the data volume when
asked to."""

import time
from pathlib import Path
from typing import Any

from rq import Queue
from rq.executions import ExecutionRegistry
from rq.job import Job

from modelyard.tabular import write_table
from tests.integration.batch.test_jobs import customers, ended, job, put, submit, wait_job
from tests.server import run_cli


def queued(stack: dict[str, Any], name: str, rows: int, model: str = "churn") -> dict[str, Any]:
    return submit(stack, model=model, input=put(stack, name, write_table(customers(rows), "csv")))


def finished(stack: dict[str, Any], name: str, rows: int) -> dict[str, Any]:
    record = wait_job(stack, queued(stack, name, rows)["id"], ended)
    assert record["status"] == "finished", record
    return record


def keys_of(stack: dict[str, Any], job_id: str) -> list[str]:
    """Every Redis key that names the job, and whether the job list still holds it."""
    client = stack["redis"].client()
    found = sorted(key.decode() for key in client.scan_iter(f"*{job_id}*"))
    listed = client.zscore("modelyard:jobs", job_id) is not None
    in_registries = [
        key.decode()
        for key in client.scan_iter("rq:*")
        if client.type(key) == b"zset" and client.zscore(key, job_id) is not None
    ]
    return found + (["modelyard:jobs"] if listed else []) + in_registries


def test_post_cancel_cancels_and_keeps_the_record(stack, workers) -> None:
    record = queued(stack, "queued.csv", 10)  # no worker: it stays queued
    canceled = stack["api"].client.post(f"/v1/jobs/{record['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled", canceled.text
    assert "deprecation" not in canceled.headers
    assert job(stack, record["id"])["status"] == "canceled"
    again = stack["api"].client.post(f"/v1/jobs/{record['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_already_ended"
    missing = stack["api"].client.post("/v1/jobs/nope/cancel")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"


def test_delete_on_a_running_job_still_cancels_it_and_says_it_is_deprecated(stack, workers) -> None:
    workers("w1", chunk_rows="100")
    record = queued(stack, "running.csv", 3000, model="slow")
    wait_job(stack, record["id"], lambda r: r["rows_done"] >= 200)
    answer = stack["api"].client.delete(f"/v1/jobs/{record['id']}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "canceled" and answer.json()["id"] == record["id"]
    assert answer.headers["deprecation"].startswith("@")  # RFC 9745: the date it was deprecated
    assert answer.headers["link"] == f'</v1/jobs/{record["id"]}/cancel>; rel="successor-version"'
    kept = wait_job(stack, record["id"], ended)  # canceled, as before: the record stays
    assert kept["status"] == "canceled" and kept["rows_done"] < 3000


def test_deleting_an_ended_job_forgets_it_and_keeps_its_files(stack, workers) -> None:
    workers("w1")
    record = finished(stack, "done.csv", 40)
    report = stack["root"] / "data" / "reports" / f"{record['id']}.json"
    assert report.is_file() and keys_of(stack, record["id"])

    answer = stack["api"].client.delete(f"/v1/jobs/{record['id']}")
    assert answer.status_code == 200, answer.text
    assert "deprecation" not in answer.headers
    assert answer.json() == {
        "id": record["id"],
        "removed": [],
        "kept": [record["output"], record["errors_output"]],
    }
    gone = stack["api"].client.get(f"/v1/jobs/{record['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "job_not_found"
    assert stack["api"].client.get("/v1/jobs").json()["jobs"] == []
    assert keys_of(stack, record["id"]) == []
    assert not report.exists()  # the report goes with the record
    assert (stack["root"] / "data" / record["output"]).is_file()
    assert (stack["root"] / "data" / record["errors_output"]).is_file()
    again = stack["api"].client.delete(f"/v1/jobs/{record['id']}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "job_not_found"


def test_files_true_removes_the_outputs_and_the_upload(stack, workers) -> None:
    workers("w1")
    uploaded = stack["api"].client.post(
        "/v1/jobs/upload",
        files={"file": ("mine.csv", write_table(customers(20), "csv"))},
        data={"model": "churn"},
    )
    assert uploaded.status_code == 202, uploaded.text
    record = wait_job(stack, uploaded.json()["id"], ended)
    assert record["status"] == "finished" and record["origin"] == "upload", record
    upload_folder = stack["root"] / "data" / "uploads" / record["id"]
    assert upload_folder.is_dir()
    outside = stack["root"] / "outside.csv"  # never touched: not the job's, and off the volume
    outside.write_text("x\n")

    answer = stack["api"].client.delete(f"/v1/jobs/{record['id']}", params={"files": "true"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "id": record["id"],
        "removed": [record["output"], record["errors_output"], f"uploads/{record['id']}/"],
        "kept": [],
    }
    assert not (stack["root"] / "data" / record["output"]).exists()
    assert not (stack["root"] / "data" / record["errors_output"]).exists()
    assert not upload_folder.exists() and outside.exists()
    assert keys_of(stack, record["id"]) == []


def test_a_split_job_is_deleted_with_its_parts_and_join(stack, workers) -> None:
    split = {"split_threshold_mb": "0.01", "part_rows": "1000"}
    workers("a", **split)
    workers("b", **split)
    record = finished(stack, "split.csv", 3000)
    assert record["parts"]["count"] > 1, record
    assert any("-part" in key for key in keys_of(stack, record["id"]))
    client = stack["redis"].client()
    part = Job.fetch(f"{record['id']}-part0001", connection=client)
    # RQ's maintenance marks a job it sees between its dequeuing and its start, for a day
    assert Queue(part.origin, connection=client).intermediate_queue.set_first_seen(part.id)

    answer = stack["api"].client.delete(f"/v1/jobs/{record['id']}", params={"files": "true"})
    assert answer.status_code == 200, answer.text
    assert keys_of(stack, record["id"]) == []
    assert not list((stack["root"] / "data").glob(f"**/*{record['id']}*"))


def test_a_job_a_worker_still_holds_is_not_deleted(stack, workers) -> None:
    """A canceled job ends at once to its submitter, while its worker stops at its next chunk: its
    records must not be deleted under it (they would come back half-written)."""
    workers("w1")
    record = finished(stack, "held.csv", 10)
    connection = stack["redis"].client()
    registry = ExecutionRegistry(record["id"], connection)  # what RQ keeps while a worker holds a job
    connection.zadd(registry.key, {"a-worker-execution": time.time() + 600})

    refused = stack["api"].client.delete(f"/v1/jobs/{record['id']}")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "job_not_ended"
    assert "a worker still holds it" in refused.json()["error"]["message"]
    assert stack["api"].client.get(f"/v1/jobs/{record['id']}").status_code == 200

    connection.delete(registry.key)
    assert stack["api"].client.delete(f"/v1/jobs/{record['id']}").status_code == 200


def test_the_cli_cancels_with_post_and_deletes_ended_jobs(stack, workers) -> None:
    env = {"MODELYARD_API_URL": stack["api"].url}
    root: Path = stack["root"]
    waiting = queued(stack, "cli.csv", 10)
    refused = run_cli(root, "jobs", "delete", waiting["id"], env=env, check=False)
    assert refused.returncode == 1 and f"jobs cancel {waiting['id']}), then delete it" in refused.stderr
    assert f"job {waiting['id']}: canceled" in run_cli(root, "jobs", "cancel", waiting["id"], env=env).stdout
    again = run_cli(root, "jobs", "cancel", waiting["id"], env=env, check=False)
    assert again.returncode == 1 and "has already ended" in again.stderr
    assert stack["api"].client.get(f"/v1/jobs/{waiting['id']}").status_code == 200  # a cancel never deletes

    deleted = run_cli(root, "jobs", "delete", waiting["id"], "--files", env=env)
    assert deleted.stdout.splitlines() == [f"job {waiting['id']} deleted"]  # no output: it never ran
    assert stack["api"].client.get(f"/v1/jobs/{waiting['id']}").status_code == 404

    workers("w1")
    done = finished(stack, "cli2.csv", 10)
    shown = run_cli(root, "jobs", "delete", done["id"], env=env).stdout
    assert f"  kept     {done['output']}" in shown
