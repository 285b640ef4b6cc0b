"""Reports of batch runs through the real processes: a reference profile added by the CLI, jobs on
`modelyard worker` subprocesses, the report over the API and in the terminal."""

import json
import re
from typing import Any

from modelyard.batch import metrics
from modelyard.tabular import write_table
from tests import factories
from tests.integration.batch.test_jobs import customers, ended, put, submit, until_registered, wait_job
from tests.server import run_cli

SPLIT = {"chunk_rows": "100", "split_threshold_mb": "0.01", "part_rows": "1000"}


def drifted(rows: int) -> Any:
    """Customers ten years older than the reference's, some of them with a bad income."""
    data = customers(rows, seed=2)
    data["age"] += 10
    data["income"] = data["income"].astype(object)
    data.loc[::97, "income"] = "n/a"
    return data


def profiled(stack: dict[str, Any]) -> None:
    reference = stack["root"] / "reference.csv"
    reference.write_bytes(write_table(factories.frame(2000, seed=1), "csv"))
    added = run_cli(stack["root"], "models", "profile", "churn", "1", "--reference", str(reference))
    assert "reference profile of 2,000 rows" in added.stdout
    again = run_cli(
        stack["root"], "models", "profile", "churn", "1", "--reference", str(reference), check=False
    )
    assert again.returncode != 0 and "--again replaces it" in again.stderr


def report_file(stack: dict[str, Any], job_id: str) -> str:
    """The report as stored, with what differs from run to run (ids, times) blanked."""
    text = (stack["root"] / "data" / "reports" / f"{job_id}.json").read_text()
    text = text.replace(job_id, "JOB")
    text = re.sub(r'"(finished_at|submitted_at)": "[^"]+"', r'"\1": "TIME"', text)
    return re.sub(r'"counting_seconds": [0-9.e-]+', '"counting_seconds": TIME', text)


def test_a_split_run_and_a_whole_run_give_identical_reports(stack, workers) -> None:
    profiled(stack)
    data = drifted(3000)
    source = put(stack, "drifted.csv", write_table(data, "csv"))
    started = [workers(name, **SPLIT) for name in ("a", "b")]
    until_registered(stack["redis"].client(), 2)
    split = wait_job(stack, submit(stack, model="churn", input=source, output="scored/d.csv")["id"], ended)
    assert split["status"] == "finished" and split["parts"]["count"] >= 2, split
    for worker in started:
        worker.stop()
    workers("alone", chunk_rows="100")
    body = {"model": "churn", "input": source, "output": "scored/d.csv", "overwrite": True}
    whole = wait_job(stack, submit(stack, **body)["id"], ended)
    assert whole["status"] == "finished" and whole["parts"] is None
    assert report_file(stack, split["id"]) == report_file(stack, whole["id"])

    report = stack["api"].client.get(f"/v1/jobs/{whole['id']}/report").json()
    bad = len(data.loc[::97])
    assert report["rows"] == {"read": 3000, "scored": 3000 - bad, "invalid": bad}
    assert report["invalid"] == [{"field": "income", "code": "wrong_type", "rows": bad}]
    assert report["reference"]["rows"] == 2000 and report["note"] is None
    assert next(f["name"] for f in report["features"]) == "age"  # worst first
    age, *others = report["features"]
    assert age["status"] == "major" and all(f["psi"] < 0.1 for f in others), report["features"]
    assert sum(age["run"]) == 3000 - bad and sum(age["reference"]) == 2000
    assert report["prediction"]["bins"] == ["no", "yes", "unseen", "missing"]

    shown = run_cli(stack["root"], "jobs", "report", whole["id"], env={"MODELYARD_API_URL": stack["api"].url})
    lines = shown.stdout.splitlines()
    assert f"{bad:,} invalid" in lines[2]
    table = lines.index(next(line for line in lines if line.strip().startswith("FEATURE")))
    assert lines[table + 1].split()[:3] == ["age", f"{age['psi']:.3f}", "major"]
    assert "age: share of rows per bin, reference | this run" in shown.stdout


def test_a_version_without_a_profile_reports_rows_and_says_why_there_is_no_drift(stack, workers) -> None:
    workers("w1")
    data = customers(200)
    data.loc[3, "color"] = None
    record = wait_job(
        stack, submit(stack, model="slow", input=put(stack, "n.csv", write_table(data, "csv")))["id"], ended
    )
    report = stack["api"].client.get(f"/v1/jobs/{record['id']}/report").json()
    assert report["rows"] == {"read": 200, "scored": 199, "invalid": 1}
    assert report["features"] == [] and report["prediction"] is None and report["reference"] is None
    assert "modelyard models profile slow 1 --reference FILE" in report["note"]
    shown = run_cli(
        stack["root"], "jobs", "report", record["id"], env={"MODELYARD_API_URL": stack["api"].url}
    )
    assert "drift: not computed" in shown.stdout


def test_no_report_before_a_job_ends_nor_for_an_unknown_job(stack, workers) -> None:
    stack["redis"].client().flushall()
    queued = submit(stack, model="churn", input=put(stack, "q.csv", write_table(customers(5), "csv")))
    response = stack["api"].client.get(f"/v1/jobs/{queued['id']}/report")
    assert response.status_code == 404 and response.json()["error"]["code"] == "report_not_found"
    assert "is queued" in response.json()["error"]["message"]
    unknown = stack["api"].client.get("/v1/jobs/nope/report")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "job_not_found"


def test_a_tampered_profile_is_not_used(stack, workers) -> None:
    path = stack["registry"].get("churn", 1).path / "profile.json"
    if not path.exists():
        profiled(stack)
    original = path.read_bytes()
    sealed = json.loads(original)
    sealed["profile"]["reference"]["age"][0] += 1
    path.chmod(0o644)
    path.write_text(json.dumps(sealed))
    try:
        workers("w1")
        record = submit(stack, model="churn", input=put(stack, "t.csv", write_table(customers(50), "csv")))
        record = wait_job(stack, record["id"], ended)
        report = stack["api"].client.get(f"/v1/jobs/{record['id']}/report").json()
        assert report["reference"] is None and "changed after it was made" in report["note"]
        assert record["status"] == "finished" and report["rows"]["scored"] == 50  # scoring goes on
    finally:
        path.write_bytes(original)


def test_the_jobs_of_one_scheduled_run_add_up_on_metrics(stack) -> None:
    """A run of two files: rows summed, each feature's worst drift kept, whichever job ends last;
    the next run starts afresh."""
    connection = stack["redis"].client()
    connection.flushall()

    def report(read: int, invalid: int, age: float, prediction: float | None) -> dict[str, Any]:
        return {
            "rows": {"read": read, "scored": read - invalid, "invalid": invalid},
            "features": [{"name": "age", "psi": age}, {"name": "color", "psi": None}],
            "prediction": {"psi": prediction} if prediction is not None else None,
        }

    metrics.record_schedule_run(connection, "nightly", "nightly-1", report(100, 10, 0.9, 0.3))
    metrics.record_schedule_run(connection, "nightly", "nightly-1", report(300, 0, 0.01, None))
    figures = metrics.snapshot(connection).schedules["nightly"]
    assert (figures.rows_read, figures.rows_scored, figures.invalid_share) == (400, 390, 10 / 400)
    assert figures.drift == {"age": 0.9} and figures.prediction_drift == 0.3
    metrics.record_schedule_run(connection, "nightly", "nightly-2", report(50, 0, 0.02, 0.01))
    figures = metrics.snapshot(connection).schedules["nightly"]
    assert (figures.rows_read, figures.drift, figures.prediction_drift) == (50, {"age": 0.02}, 0.01)
