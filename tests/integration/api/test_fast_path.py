"""The fast path through a real server: micro-batched answers equal one-by-one answers, a bad request
inside a batch gets its own 422 while its neighbours get 200, and each version is served by the
runtime its compile report allows, with the reason shown."""

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from modelyard.registry.store import Registry
from modelyard.tabular import write_table
from tests import factories
from tests.server import ApiServer, run_cli

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, Path]]:
    root = tmp_path_factory.mktemp("fast")
    data = factories.frame(400, seed=5)
    boosted = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(
        data[["age", "income"]], factories.labels(data)
    )
    (root / "sample.csv").write_bytes(write_table(data[["age", "income"]], "csv"))
    models = {
        "slow": (factories.slow_classifier(seconds=0.05), []),  # scikit-learn: too slow to be compiled
        "boosted": (boosted, ["--sample", str(root / "sample.csv")]),
        "fragile": (factories.FragileRegressor().fit([[0.0, 0.0]], [0.0]), []),
    }
    for name, (estimator, options) in models.items():
        path = factories.save(estimator, root / f"{name}.joblib")
        compile = ["--no-compile"] if name == "slow" else options
        here = {"PYTHONPATH": str(ROOT)}  # the slow and fragile models' code lives in tests/
        run_cli(root, "models", "register", str(path), "--name", name, "--promote", *compile, env=here)
    server = ApiServer(root / "models", root / "api.log", microbatch_max_wait_ms="5").wait()
    yield server, root
    server.stop()


def post(server: ApiServer, name: str, instances: list) -> tuple[int, dict]:
    response = server.client.post(f"/v1/models/{name}/predict", json={"instances": instances})
    return response.status_code, response.json()


def test_micro_batched_answers_equal_one_by_one_and_a_bad_one_fails_alone(served) -> None:
    server, _ = served
    requests = [factories.records(1 + i % 3, seed=i) for i in range(16)]
    requests[7] = [{"age": 30, "income": 1e300, "color": "red"}]  # valid JSON, beyond float32
    with ThreadPoolExecutor(max_workers=16) as pool:
        together = list(pool.map(lambda instances: post(server, "slow", instances), requests))
    status, body = together[7]
    assert status == 422 and body["error"]["code"] == "invalid_input"
    assert body["error"]["details"] == [{"row": 0, "field": "income", "code": "out_of_range"}]
    for index, instances in enumerate(requests):
        if index == 7:
            continue
        alone = post(server, "slow", instances)
        assert together[index] == (200, {**alone[1], "request_id": together[index][1]["request_id"]})
    metrics = server.client.get("/metrics").text
    count = float(re.search(r'modelyard_microbatch_requests_count\{model="slow"\} (\S+)', metrics)[1])
    total = float(re.search(r'modelyard_microbatch_requests_sum\{model="slow"\} (\S+)', metrics)[1])
    assert total > count, "some batch held more than one request"


@pytest.mark.parametrize("name", ["slow", "boosted"])
def test_the_fast_path_answers_as_the_full_path_does(served, name: str) -> None:
    server, _ = served
    body = {"instances": factories.records(5, seed=3)}
    fast = server.client.post(f"/v1/models/{name}/predict", json=body)
    full = server.client.post(f"/v1/models/{name}/predict?version=1", json=body)  # pinned: full path
    assert fast.status_code == full.status_code == 200
    assert fast.headers["content-type"] == full.headers["content-type"] == "application/json"
    assert {**fast.json(), "request_id": None} == {**full.json(), "request_id": None}


def test_each_version_says_which_runtime_serves_it_and_why(served) -> None:
    server, root = served
    runtimes = {
        name: server.client.get(f"/v1/models/{name}").json()["versions"][0]["runtime"]
        for name in ("slow", "boosted", "fragile")
    }
    assert runtimes["slow"]["serving"] == "sklearn"
    assert (
        runtimes["slow"]["reason"]
        == "not compiled; to try the compiled runtime: modelyard models compile slow 1"
    )
    assert runtimes["fragile"]["serving"] == "sklearn"
    assert runtimes["fragile"]["reason"].startswith("not converted to ONNX: ")
    assert runtimes["boosted"]["serving"] == "onnx" and runtimes["boosted"]["reason"].startswith(
        "verified on "
    )
    assert runtimes["boosted"]["compiled"]["sample_rows"] == 400

    estimator = factories.load_as_served(Registry(root / "models").get("boosted", 1).artifact)
    records = factories.records(50, seed=9)
    status, body = post(server, "boosted", records)
    frame = factories.frame(50, seed=9)[["age", "income"]]
    assert status == 200 and body["predictions"] == estimator.predict(frame).tolist()
    assert np.abs(np.array(body["probabilities"]) - estimator.predict_proba(frame)).max() <= 1e-5


def test_errors_and_warnings_are_the_full_paths(served) -> None:
    server, _ = served
    records = factories.records(3)
    records[1]["color"] = "purple"
    status, body = post(server, "slow", records)
    assert status == 200 and [(w["row"], w["code"]) for w in body["warnings"]] == [(1, "unknown_category")]
    records[2]["age"] = "old"
    status, body = post(server, "slow", records)
    assert status == 422 and body["error"]["details"][0]["row"] == 2


def test_onnx_only_refuses_a_version_without_a_verified_graph(served, api_server) -> None:
    _, root = served
    strict = api_server(root / "models", ready=False, runtime="onnx")
    deadline = time.monotonic() + 60
    while True:  # not ready as a whole (fragile is refused), so wait for each model's own outcome
        by_model = {entry["model"]: entry for entry in strict.client.get("/readyz").json()["models"]}
        if all(entry["status"] != "loading" for entry in by_model.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert by_model["boosted"]["status"] == "ready"
    assert by_model["fragile"]["status"] == "refused" and by_model["fragile"]["code"] == "runtime_unavailable"


def test_a_big_request_answers_as_its_rows_sent_one_by_one(served, api_server) -> None:
    """Big requests go to the runtime measured faster for their size (here scikit-learn from 256
    rows, as the report is edited to say), single ones to the compiled graph: the same answers."""
    _, root = served
    data = factories.frame(3000, seed=11)
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(
        data[["age", "income"]], factories.labels(data)
    )
    path = factories.save(forest, root / "forest.joblib")
    run_cli(root, "models", "register", str(path), "--name", "forest", "--promote")
    report_path = root / "models" / "forest" / "1" / "compiled.json"
    report = json.loads(report_path.read_text())
    assert report["runtime"] == "onnx", report["reason"]
    report["batch"].update(runtime="sklearn", from_rows=256)
    report_path.chmod(0o644)
    report_path.write_text(json.dumps(report))
    server = api_server(root / "models")
    records = factories.records(1000, seed=12)
    status, big = post(server, "forest", records)
    assert status == 200
    with ThreadPoolExecutor(max_workers=8) as pool:
        singles = list(pool.map(lambda record: post(server, "forest", [record])[1], records))
    assert big["predictions"] == [single["predictions"][0] for single in singles]
    probabilities = np.array([single["probabilities"][0] for single in singles])
    assert np.abs(np.array(big["probabilities"]) - probabilities).max() <= 1e-5
