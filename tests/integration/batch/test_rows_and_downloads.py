"""One row numbering on every path (API records, uploaded files, batch errors files), with the line a
file's row starts on; a job's files downloaded by the CLI; what a job with no valid row keeps."""

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from modelyard.tabular import write_table
from tests import factories
from tests.server import run_cli

# the bad cell is in data row 1, which starts on line 3 and spans two lines
CSV = 'customer_id,age,income,color\na,30,40.5,red\nb,"thirty\nyears",40.5,red\nc,31,41.0,red\n'


def submit(stack: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = stack["api"].client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return dict(response.json())


def ended(stack: dict[str, Any], job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = stack["api"].client.get(f"/v1/jobs/{job_id}").json()
        if record["status"] in ("finished", "failed", "canceled"):
            return dict(record)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end: {record}")


def put(stack: dict[str, Any], name: str, content: str | bytes) -> str:
    path = stack["root"] / "data" / "incoming" / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return f"incoming/{name}"


def test_a_bad_cell_is_the_same_row_and_line_on_every_path(stack, workers) -> None:
    workers("w1")
    api = stack["api"].client
    uploaded = api.post("/v1/models/churn/predict-file", files={"file": ("people.csv", CSV.encode())})
    assert uploaded.status_code == 422, uploaded.text
    detail = uploaded.json()["error"]["details"][0]
    assert (detail["row"], detail["line"], detail["field"]) == (1, 3, "age")
    assert "first: row 1 (line 3), field 'age'" in uploaded.json()["error"]["message"]

    record = ended(stack, submit(stack, model="churn", input=put(stack, "people.csv", CSV))["id"])
    assert record["status"] == "finished" and (record["rows_done"], record["rows_failed"]) == (2, 1)
    [error] = [json.loads(line) for line in api.get(f"/v1/jobs/{record['id']}/errors").text.splitlines()]
    assert (error["row"], error["line"], error["field"]) == (1, 3, "age")

    records = [
        dict(zip(["age", "income", "color"], values, strict=True)) for values in [(30, 1.0, "red")] * 3
    ]
    records[1]["age"] = "thirty"
    answered = api.post("/v1/models/churn/predict", json={"instances": records})
    detail = answered.json()["error"]["details"][0]
    assert (detail["row"], detail["field"]) == (1, "age") and "line" not in detail  # a JSON body has no lines


def test_json_lines_count_every_line_and_split_files_keep_whole_file_lines(stack, workers) -> None:
    workers("w1", chunk_rows="50", split_threshold_mb="0.001", part_rows="100")
    workers("w2", chunk_rows="50", split_threshold_mb="0.001", part_rows="100")
    lines = [json.dumps(r) for r in factories.records(300, seed=2)]
    lines[150] = json.dumps({**json.loads(lines[150]), "age": "old"})
    lines.insert(10, "")  # a blank line: numbered, no row
    record = ended(
        stack, submit(stack, model="churn", input=put(stack, "people.jsonl", "\n".join(lines) + "\n"))["id"]
    )
    assert record["status"] == "finished" and record["parts"]["count"] >= 2, record
    [error] = [
        json.loads(line)
        for line in stack["api"].client.get(f"/v1/jobs/{record['id']}/errors").text.splitlines()
    ]
    assert (error["row"], error["line"], error["field"]) == (151, 152, "age")

    rows = factories.frame(300, seed=5).astype({"age": object})
    rows.loc[220, "age"] = "late"
    text = (
        write_table(rows, "csv").decode().replace("blue", '"bl\nue"', 3)
    )  # three quoted newlines above the bad row shift its line
    record = ended(stack, submit(stack, model="churn", input=put(stack, "wrapped.csv", text))["id"])
    assert record["status"] == "finished" and record["parts"]["count"] >= 2, record
    [error] = [
        json.loads(line)
        for line in stack["api"].client.get(f"/v1/jobs/{record['id']}/errors").text.splitlines()
    ]
    assert (error["row"], error["line"], error["field"]) == (220, 225, "age")


def test_the_cli_downloads_a_job_s_files_never_trusting_their_names(stack, workers, tmp_path: Path) -> None:
    workers("w1")
    source = put(stack, "people.csv", CSV)
    record = ended(
        stack, submit(stack, model="churn", input=source, output="scored/../scored/.hidden.csv")["id"]
    )
    env = {"MODELYARD_API_URL": stack["api"].url}
    target = tmp_path / "mine.csv"
    fetched = run_cli(tmp_path, "jobs", "result", record["id"], "-o", str(target), env=env)
    assert fetched.stdout.startswith(f"wrote {target} (")
    assert target.read_bytes() == stack["api"].client.get(f"/v1/jobs/{record['id']}/result").content
    assert len(pd.read_csv(target)) == 2
    again = run_cli(tmp_path, "jobs", "result", record["id"], "-o", str(target), env=env, check=False)
    assert again.returncode == 1 and "exists: pass --force to replace it" in again.stderr
    run_cli(tmp_path, "jobs", "errors", record["id"], env=env)  # named after the server's name, made safe
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "mine.csv") == ["hidden.errors.jsonl"]
    assert json.loads((tmp_path / "hidden.errors.jsonl").read_text())["field"] == "age"


def test_a_job_with_no_valid_row_keeps_its_errors_and_its_count(stack, workers, tmp_path: Path) -> None:
    workers("w1")
    data = factories.frame(20).astype({"age": str})
    data["age"] = "old"
    record = ended(
        stack, submit(stack, model="churn", input=put(stack, "allbad.csv", write_table(data, "csv")))["id"]
    )
    assert record["status"] == "failed" and record["error"]["code"] == "invalid_input"
    assert (record["rows_failed"], record["rows_total"]) == (20, 20)
    errors = stack["api"].client.get(f"/v1/jobs/{record['id']}/errors")
    assert errors.status_code == 200 and len(errors.text.splitlines()) == 20
    assert (
        stack["api"].client.get(f"/v1/jobs/{record['id']}/result").json()["error"]["code"]
        == "job_not_finished"
    )
    env = {"MODELYARD_API_URL": stack["api"].url}
    status = run_cli(tmp_path, "jobs", "status", record["id"], env=env).stdout
    assert "0 scored, 20 invalid, of 20" in status and f"modelyard jobs errors {record['id']}" in status
    assert not (stack["root"] / "data" / "scored" / f"allbad.{record['id']}.predictions.csv").exists()


def test_a_file_separated_by_semicolons_is_told_so(stack, workers) -> None:
    workers("w1")
    semicolons = "age;income;color\n30;40,5;red\n31;41;blue\n"
    uploaded = stack["api"].client.post(
        "/v1/models/churn/predict-file", files={"file": ("s.csv", semicolons.encode())}
    )
    assert uploaded.status_code == 422, uploaded.text
    assert "the columns look joined by ';'" in uploaded.json()["error"]["message"]
    record = ended(stack, submit(stack, model="churn", input=put(stack, "s.csv", semicolons))["id"])
    assert record["status"] == "failed" and "the columns look joined by ';'" in record["error"]["message"]
