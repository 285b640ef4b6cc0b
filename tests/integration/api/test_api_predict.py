"""Predictions through real HTTP against a real uvicorn, checked against the estimator itself."""

import io
import json
import re
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from modelyard.registry.store import Registry
from modelyard.tabular import write_table
from tests import factories
from tests.server import ApiServer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, Registry]]:
    root = tmp_path_factory.mktemp("predict")
    registry = Registry(root / "models")
    first = registry.register(factories.save(factories.classifier(), root / "v1.joblib"), "churn")
    registry.register(factories.save(factories.classifier(seed=5, trees=20), root / "v2.joblib"), "churn")
    registry.promote("churn", first.version)
    registry.promote("churn", 2, alias="canary")
    registry.register(factories.save(factories.array_regressor(), root / "reg.joblib"), "price")
    registry.promote("price", 1)
    server = ApiServer(registry.root, root / "api.log").wait()
    yield server, registry
    server.stop()


def estimator(registry: Registry, name: str, version: int):
    return factories.load_as_served(registry.get(name, version).artifact)


def test_single_record(served) -> None:
    server, registry = served
    record = factories.records(1)[0]
    response = server.client.post("/v1/models/churn/predict", json={"instances": [record]})

    assert response.status_code == 200, response.text
    body = response.json()
    model = estimator(registry, "churn", 1)
    frame = pd.DataFrame([record])
    assert body["model"] == "churn" and body["version"] == 1
    assert body["predictions"] == model.predict(frame).tolist()
    assert body["probabilities"] == model.predict_proba(frame).tolist()
    assert body["classes"] == ["no", "yes"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["warnings"] == []


def test_hundred_records_equal_the_estimator(served) -> None:
    server, registry = served
    records = factories.records(100, seed=9)
    body = server.client.post("/v1/models/churn/predict", json={"instances": records}).json()

    model = estimator(registry, "churn", 1)
    frame = pd.DataFrame(records)
    assert len(body["predictions"]) == 100
    assert body["predictions"] == model.predict(frame).tolist()
    assert np.array_equal(np.array(body["probabilities"]), model.predict_proba(frame))


def test_pinned_version(served) -> None:
    server, registry = served
    records = factories.records(20, seed=4)
    body = server.client.post("/v1/models/churn/predict?version=2", json={"instances": records}).json()
    assert body["version"] == 2
    assert (
        body["probabilities"] == estimator(registry, "churn", 2).predict_proba(pd.DataFrame(records)).tolist()
    )


def test_alias_picks_its_version(served) -> None:
    server, _ = served
    body = {"instances": factories.records(2)}
    assert server.client.post("/v1/models/churn/predict?alias=canary", json=body).json()["version"] == 2
    assert server.client.post("/v1/models/churn/predict?alias=production", json=body).json()["version"] == 1
    upload = {"file": ("x.csv", write_table(factories.frame(3), "csv"))}
    response = server.client.post("/v1/models/churn/predict-file?alias=canary", files=upload)
    assert response.headers["x-model-version"] == "2"


def test_regressor_without_feature_names(served) -> None:
    server, registry = served
    rows = [[0.5, -1.0, 2.0], [1.0, 0.0, 0.0]]
    instances = [dict(zip(["x0", "x1", "x2"], row, strict=True)) for row in rows]
    body = server.client.post("/v1/models/price/predict", json={"instances": instances}).json()
    assert body["predictions"] == estimator(registry, "price", 1).predict(np.array(rows)).tolist()
    assert "probabilities" not in body and "classes" not in body
    as_arrays = server.client.post("/v1/models/price/predict", json={"instances": [rows[0], instances[1]]})
    assert as_arrays.json()["predictions"] == body["predictions"]  # arrays in feature order, or records
    short = server.client.post("/v1/models/price/predict", json={"instances": [[1.0, 2.0]]})
    assert short.status_code == 422 and "has 2 values; this model takes 3 (x0, x1, x2)" in short.text


def test_unsafe_request_ids_are_replaced(served) -> None:
    server, _ = served
    response = server.client.get("/healthz", headers={"X-Request-ID": "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_non_finite_prediction_is_null(served) -> None:
    server, _ = served
    instances = [{"x0": 1e308, "x1": -1e308, "x2": 0.0}, {"x0": 0.0, "x1": 0.0, "x2": 0.0}]
    body = server.client.post("/v1/models/price/predict", json={"instances": instances}).json()
    assert body["predictions"][0] is None
    assert body["predictions"][1] == pytest.approx(3.0)


def test_request_id_is_honoured(served) -> None:
    server, _ = served
    response = server.client.post(
        "/v1/models/churn/predict",
        json={"instances": factories.records(1)},
        headers={"X-Request-ID": "trace-42"},
    )
    assert response.headers["x-request-id"] == "trace-42"
    assert response.json()["request_id"] == "trace-42"

    def logged() -> list[dict]:  # the access line is written just after the answer is sent
        return [json.loads(line) for line in server.logs().splitlines() if "trace-42" in line]

    deadline = time.monotonic() + 5
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged() and all(entry["request_id"] == "trace-42" for entry in logged())
    assert {"method", "path", "status", "duration_ms"} <= logged()[-1].keys()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_predict_file(served, fmt: str) -> None:
    server, registry = served
    data = factories.frame(50, seed=8)
    data.insert(0, "customer_id", [f"c{i}" for i in range(50)])
    upload = write_table(data, fmt)
    response = server.client.post(
        "/v1/models/churn/predict-file", files={"file": (f"customers.{fmt}", upload)}
    )

    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == "1"
    assert f"customers.predictions.{fmt}" in response.headers["content-disposition"]
    readers = {
        "csv": pd.read_csv,
        "parquet": pd.read_parquet,
        "jsonl": lambda b: pd.read_json(b, lines=True, precise_float=True),
    }
    scored = readers[fmt](io.BytesIO(response.content))
    model = estimator(registry, "churn", 1)
    features = data[["age", "income", "color"]]
    assert list(scored.columns) == [
        *data.columns,
        "prediction",
        "probability_no",
        "probability_yes",
    ]
    assert scored["customer_id"].tolist() == data["customer_id"].tolist()
    assert scored["prediction"].tolist() == model.predict(features).tolist()
    expected = model.predict_proba(features)
    assert np.array_equal(scored[["probability_no", "probability_yes"]].to_numpy(), expected)


def test_models_list_and_show(served) -> None:
    server, _ = served
    listed = server.client.get("/v1/models").json()["models"]
    assert {m["name"]: (m["versions"], m["aliases"], m["serving_version"]) for m in listed} == {
        "churn": ([1, 2], {"canary": 2, "production": 1}, 1),
        "price": ([1], {"production": 1}, 1),
    }
    shown = server.client.get("/v1/models/churn").json()
    assert [f["name"] for f in shown["input_schema"]["features"]] == ["age", "income", "color"]
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["versions"][0]["artifact"]["sha256"]


def test_metrics_count_requests_rows_and_latency(served) -> None:
    server, _ = served
    server.client.post("/v1/models/churn/predict", json={"instances": factories.records(7)})
    text = server.client.get("/metrics").text
    assert 'modelyard_predict_requests_total{model="churn",status="ok",version="1"}' in text
    assert 'modelyard_rows_scored_total{model="churn",version="1"}' in text
    assert 'modelyard_predict_duration_seconds_bucket{le="0.005",model="churn"}' in text
    assert 'modelyard_serving_version{model="churn"} 1.0' in text


def test_health_and_readiness(served) -> None:
    server, _ = served
    assert server.client.get("/healthz").json() == {"status": "ok"}
    ready = server.client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert {m["model"]: m["status"] for m in ready["models"]} == {
        "churn": "ready",
        "price": "ready",
    }


def test_odd_upload_names_are_made_header_safe(served) -> None:
    server, _ = served
    content = write_table(factories.frame(3), "csv")
    response = server.client.post(
        "/v1/models/churn/predict-file", files={"file": ('mé "report"\r\n.csv', content)}
    )
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(r'attachment; filename="m_[A-Za-z0-9._-]+\.predictions\.csv"', disposition)
