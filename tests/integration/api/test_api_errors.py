"""Every kind of bad input gets its status and code over real HTTP, and the server keeps serving."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelyard.registry.store import Registry
from modelyard.tabular import write_table
from tests import factories
from tests.server import ApiServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("errors")
    registry = Registry(root / "models")
    for name, model in [
        ("churn", factories.classifier()),
        ("strict", factories.classifier(handle_unknown="error")),
        ("fragile", factories.FragileRegressor().fit([[0.0, 0.0]], [0.0])),
    ]:
        registry.register(factories.save(model, root / f"{name}.joblib"), name)
        registry.promote(name, 1)
    api = ApiServer(registry.root, root / "api.log", max_upload_mb="1", max_instances="500").wait()
    yield api
    api.stop()


@pytest.fixture(autouse=True)
def still_serving(server: ApiServer) -> Iterator[None]:
    yield
    response = server.client.post("/v1/models/churn/predict", json={"instances": factories.records(2)})
    assert response.status_code == 200, f"the server stopped serving: {response.text}"


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert response.headers["x-request-id"]
    return body["error"]


def predict(server: ApiServer, instances: Any, model: str = "churn") -> httpx.Response:
    return server.client.post(f"/v1/models/{model}/predict", json={"instances": instances})


def upload(server: ApiServer, filename: str, content: bytes, model: str = "churn") -> httpx.Response:
    return server.client.post(f"/v1/models/{model}/predict-file", files={"file": (filename, content)})


def test_missing_feature(server: ApiServer) -> None:
    records = factories.records(3)
    del records[2]["age"]
    details = error(predict(server, records), 422, "invalid_input")["details"]
    assert details == [
        {
            "row": 2,
            "field": "age",
            "code": "missing_feature",
            "message": "no field 'age' in the input",
        }
    ]


def test_wrong_type(server: ApiServer) -> None:
    records = factories.records(3)
    records[1]["income"] = "lots"
    found = error(predict(server, records), 422, "invalid_input")
    assert [(d["row"], d["field"], d["code"], d["value"]) for d in found["details"]] == [
        (1, "income", "wrong_type", "lots")
    ]
    assert found["details"][0]["message"] == "expected a finite number, got a string ('lots')"
    assert "got a string" in found["message"]


def test_an_integer_past_64_bits_is_named_not_a_crash(server: ApiServer) -> None:
    records = factories.records(2)
    records[1]["color"] = 174520393446889652224  # numpy cannot hold it, nor test it for infinity
    found = error(predict(server, records), 422, "invalid_input")
    assert [(d["row"], d["field"], d["code"]) for d in found["details"]] == [(1, "color", "wrong_type")]
    assert found["details"][0]["message"].endswith("got a number")


def test_null_without_imputer(server: ApiServer) -> None:
    records = factories.records(2)
    records[0]["age"] = None
    details = error(predict(server, records), 422, "invalid_input")["details"]
    assert (details[0]["row"], details[0]["field"], details[0]["code"]) == (
        0,
        "age",
        "missing_value",
    )


def test_wrong_type_in_a_csv_names_the_row(server: ApiServer) -> None:
    data = factories.frame(5).astype(object)
    data.loc[3, "age"] = "forty"
    details = error(upload(server, "x.csv", write_table(data, "csv")), 422, "invalid_input")["details"]
    assert [(d["row"], d["field"], d["value"]) for d in details] == [(3, "age", "forty")]


def test_missing_column_in_a_file(server: ApiServer) -> None:
    content = write_table(factories.frame(5).drop(columns="income"), "parquet")
    details = error(upload(server, "x.parquet", content), 422, "invalid_input")["details"]
    assert details == [
        {
            "row": None,
            "field": "income",
            "code": "missing_feature",
            "message": "no field 'income' in the input",
        }
    ]


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("x.csv", b"age,income,color\n1,2,red\n3,4,blue,extra,fields\n"),
        ("x.parquet", b"PAR1 this is not parquet"),
        ("x.jsonl", b'{"age": 1, "income": 2, "color": "red"}\n{"age": \n'),
        ("x.csv", b""),
    ],
)
def test_unparseable_file(server: ApiServer, filename: str, content: bytes) -> None:
    error(upload(server, filename, content), 422, "unparseable_file")


def test_unsupported_format(server: ApiServer) -> None:
    found = error(upload(server, "x.xlsx", b"PK\x03\x04"), 415, "unsupported_format")
    assert "?format=" in found["message"]


def test_malformed_json(server: ApiServer) -> None:
    response = server.client.post(
        "/v1/models/churn/predict",
        content=b'{"instances": [',
        headers={"content-type": "application/json"},
    )
    error(response, 400, "malformed_json")


def test_body_that_is_not_the_contract(server: ApiServer) -> None:
    found = error(server.client.post("/v1/models/churn/predict", json={"rows": []}), 422, "invalid_request")
    assert found["details"][0]["field"] == "instances"
    error(predict(server, [1, 2]), 422, "invalid_request")
    error(predict(server, []), 422, "invalid_request")
    bare = error(server.client.post("/v1/models/churn/predict", json=[{"age": 1}]), 422, "invalid_request")
    assert bare["message"] == 'the request body must be a JSON object with "instances", not an array'
    assert "PredictRequest" not in json.dumps(bare)
    arrays = error(predict(server, [[40, 50.0, "red"]]), 422, "invalid_request")
    assert "this model's features have names: send objects" in arrays["message"]


def test_numbers_beyond_float32_are_refused_not_a_crash(server: ApiServer) -> None:
    records = factories.records(2)
    records[1]["income"] = 1e200
    details = error(predict(server, records), 422, "invalid_input")["details"]
    assert [(d["row"], d["field"], d["code"]) for d in details] == [(1, "income", "out_of_range")]


def test_unknown_model_and_version(server: ApiServer) -> None:
    error(predict(server, factories.records(1), model="nope"), 404, "model_not_found")
    response = server.client.post(
        "/v1/models/churn/predict?version=9", json={"instances": factories.records(1)}
    )
    error(response, 404, "version_not_found")
    error(server.client.get("/v1/models/nope"), 404, "model_not_found")
    response = server.client.post(
        "/v1/models/churn/predict?alias=nope", json={"instances": factories.records(1)}
    )
    error(response, 404, "alias_not_found")
    response = server.client.post(
        "/v1/models/churn/predict?alias=production&version=1", json={"instances": factories.records(1)}
    )
    error(response, 400, "bad_request")
    error(server.client.get("/no/such/route"), 404, "not_found")


def test_upload_over_the_limit(server: ApiServer) -> None:
    big = b"age,income,color\n" + b"30,50.0,red\n" * 120_000  # about 1.4 MB
    error(upload(server, "big.csv", big), 413, "payload_too_large")


def test_streamed_body_over_the_limit(server: ApiServer) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b" " * 65_536

    response = server.client.post("/v1/models/churn/predict", content=chunks())
    error(response, 413, "payload_too_large")


def test_too_many_instances(server: ApiServer) -> None:
    error(predict(server, factories.records(1) * 501), 413, "payload_too_large")


def test_unknown_category_is_scored_with_a_warning(server: ApiServer) -> None:
    records = factories.records(2)
    records[1]["color"] = "purple"
    response = predict(server, records)
    assert response.status_code == 200
    assert response.json()["warnings"] == [
        {
            "row": 1,
            "field": "color",
            "code": "unknown_category",
            "value": "purple",
            "message": "a category the model was not fitted on; scored as the encoder allows",
        }
    ]
    data = factories.frame(4).astype(object)
    data.loc[2, "color"] = "purple"
    response = upload(server, "x.csv", write_table(data, "csv"))
    assert response.status_code == 200
    assert response.headers["x-modelyard-warnings"] == (
        '[{"field":"color","code":"unknown_category","count":1,"rows":[2]}]'
    )


def test_unknown_category_refused_by_a_strict_encoder(server: ApiServer) -> None:
    records = factories.records(2)
    records[0]["color"] = "purple"
    details = error(predict(server, records, model="strict"), 422, "invalid_input")["details"]
    assert (details[0]["row"], details[0]["field"], details[0]["code"]) == (
        0,
        "color",
        "unknown_category",
    )


def test_output_column_clash(server: ApiServer) -> None:
    data = factories.frame(3)
    data["prediction"] = 1
    details = error(upload(server, "x.csv", write_table(data, "csv")), 422, "invalid_input")["details"]
    assert details[0]["field"] == "prediction" and details[0]["code"] == "column_conflict"


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_numbers(server: ApiServer, value: float) -> None:
    records = factories.records(2)
    records[1]["income"] = value
    body = json.dumps({"instances": records})  # writes Infinity / NaN, which Python's json reads back
    response = server.client.post("/v1/models/churn/predict", content=body)
    details = error(response, 422, "invalid_input")["details"]
    assert (details[0]["row"], details[0]["field"]) == (1, "income")


def test_model_failing_on_valid_input_is_a_500_not_a_crash(server: ApiServer) -> None:
    response = predict(server, [{"x0": 1.0, "x1": 2.0}, {"x0": 500.0, "x1": 0.0}], model="fragile")
    found = error(response, 500, "prediction_failed")
    assert "overflow in the model's own code" in found["message"]
    fine = predict(server, [{"x0": 1.0, "x1": 2.0}], model="fragile")
    assert fine.json()["predictions"] == [3.0]


def test_unknown_model_names_do_not_become_metric_labels(server: ApiServer) -> None:
    predict(server, factories.records(1), model="made-up-name")
    metrics = server.client.get("/metrics").text
    assert "made-up-name" not in metrics
    assert (
        'modelyard_predict_requests_total{model="unknown",status="model_not_found",version="none"}' in metrics
    )


@pytest.mark.parametrize("path", ["/v1/models/..", "/v1/models/%2E%2E", "/v1/models/..%2F..%2Fetc"])
def test_path_tricks_find_no_model(server: ApiServer, path: str) -> None:
    response = server.client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] in {"model_not_found", "not_found"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/jobs/abc", "DELETE, GET"),  # Starlette alone names GET, the first route's
        ("OPTIONS", "/v1/jobs/abc", "DELETE, GET"),
        ("PATCH", "/v1/jobs", "GET, POST"),
        ("GET", "/v1/jobs/abc/cancel", "POST"),
        ("PUT", "/v1/jobs/upload", "POST"),
        ("GET", "/v1/models/churn/predict", "POST"),
        ("DELETE", "/static-offline-docs/swagger-ui.css", "GET, HEAD"),
    ],
)
def test_a_405_lists_every_method_of_the_path(
    server: ApiServer, method: str, path: str, allowed: str
) -> None:
    response = server.client.request(method, path)
    found = error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allowed
    assert found["message"] == f"{method} is not allowed on {path}: it takes {allowed}"
