"""The API's published contract holds: its OpenAPI document tells the truth about every endpoint,
each model's requests have a schema and an example that work, its security is the server's own (a
key when it has one, none when it has none), and a fuzzer (schemathesis, every check, every phase,
against the live server with Redis up, with a key and without) finds no server error, no
undocumented status, header or content type, no response that breaks its documented schema, no
deleted job still readable and no 405 that hides a method."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelyard.registry.store import Registry
from modelyard.tabular import write_table
from tests import factories
from tests.server import ApiServer, RedisServer, run_cli

HERE = Path(__file__).resolve().parent
KEY = "contract-key"


@dataclass
class Live:
    api: ApiServer
    """With a key (KEY), which its client sends."""
    keyless: ApiServer
    """The same registry, data and Redis, without a key."""
    root: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("contract")
    run_cli(root, "demo", "train")  # churn, the demo: categories, a scaler; incoming/churn-sample.csv
    registry = Registry(root / "models")
    for name, model in [
        ("strict", factories.classifier(handle_unknown="error")),
        ("unnamed", factories.array_regressor()),
        ("imputed", factories.imputing_classifier()),
    ]:
        registry.register(factories.save(model, root / f"{name}.joblib"), name)
        registry.promote(name, 1)
    (root / "data" / "incoming" / "small.csv").write_bytes(write_table(factories.frame(5), "csv"))
    redis_server = RedisServer(root / "redis")
    settings = {"data_dir": str(root / "data"), "redis_url": redis_server.url}
    api = ApiServer(registry.root, root / "api.log", api_key=KEY, **settings)
    keyless = ApiServer(registry.root, root / "keyless.log", **settings)
    api.wait().client.headers["Authorization"] = f"Bearer {KEY}"
    yield Live(api, keyless.wait(), root)
    api.stop()
    keyless.stop()
    redis_server.stop()


def document(api: ApiServer) -> dict[str, Any]:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_error_is_documented_with_the_one_envelope(live) -> None:
    doc = document(live.api)
    assert (
        "HTTPValidationError" not in json.dumps(doc) and "ValidationError" not in doc["components"]["schemas"]
    )
    envelope = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, method, operation in operations(doc):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path == "/readyz":
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == envelope, (method, path, status)
            assert response["description"].count("_") or ":" in response["description"]
        if path not in ("/healthz", "/readyz"):
            assert "401" in operation["responses"], (method, path)
    predict = doc["paths"]["/v1/models/{name}/predict"]["post"]["responses"]
    assert {"400", "401", "404", "413", "422", "503"} <= set(predict)
    assert "invalid_input" in predict["422"]["description"]
    assert "server_busy (the process holds MODELYARD_MAX_INFLIGHT_MB" in predict["503"]["description"]
    assert "MODELYARD_MAX_INFLIGHT_MB" in doc["info"]["description"]
    assert "queue_unavailable" in doc["paths"]["/v1/jobs"]["post"]["responses"]["503"]["description"]
    assert (
        "job_not_finished"
        in doc["paths"]["/v1/jobs/{job_id}/result"]["get"]["responses"]["409"]["description"]
    )
    for model in ("ModelList", "ModelDetail", "Readiness", "PredictResponse", "JobRecord", "ScheduleList"):
        assert model in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"].keys() == {"HTTPBearer", "APIKeyHeader"}


def test_each_model_has_a_request_component_whose_example_scores(live) -> None:
    api = live.api
    doc = document(api)
    schemas = doc["components"]["schemas"]
    for name in ("churn", "strict", "unnamed", "imputed"):
        record = schemas[f"{name}.Record"]
        request = schemas[f"{name}.PredictRequest"]
        path = doc["paths"][f"/v1/models/{name}/predict"]["post"]
        assert path["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
            f"{name}.PredictRequest"
        )
        answer = api.client.post(f"/v1/models/{name}/predict", json=request["example"])
        assert answer.status_code == 200, (name, answer.text)
        assert set(record["required"]) == set(record["properties"])
    churn = schemas["churn.Record"]["properties"]
    assert churn["plan"]["type"] == "string" and "premium" in churn["plan"]["description"]
    assert schemas["churn.Record"]["example"]["tenure_months"] > 0  # the fitted scaler's mean, not 0
    assert schemas["strict.Record"]["properties"]["color"]["enum"] == ["blue", "green", "red"]
    assert schemas["imputed.Record"]["properties"]["age"]["type"] == ["number", "null"]
    assert "oneOf" in schemas["unnamed.PredictRequest"]["properties"]["instances"]["items"]
    array = schemas["unnamed.PredictRequest"]["properties"]["instances"]["items"]["oneOf"][1]
    assert [item["type"] for item in array["prefixItems"]] == ["number"] * 3  # no imputer: no null


def test_the_document_follows_registrations_and_promotions(live) -> None:
    api, root = live.api, live.root
    run_cli(root, "models", "register", str(factories.save(factories.array_regressor(), root / "n.joblib")),
            "--name", "newcomer", "--promote")  # fmt: skip
    deadline = time.monotonic() + 10
    while "newcomer.PredictRequest" not in document(api)["components"]["schemas"]:
        assert time.monotonic() < deadline, "the new model never appeared in /openapi.json"
        time.sleep(0.2)
    assert "/v1/models/newcomer/predict" in document(api)["paths"]


def test_metrics_are_prometheus_text_or_openmetrics(live) -> None:
    api = live.api
    plain = api.client.get("/metrics")
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    negotiated = api.client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert negotiated.headers["content-type"].startswith("application/openmetrics-text")
    assert negotiated.text.endswith("# EOF\n")
    spec = document(api)["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(spec) == {plain.headers["content-type"], negotiated.headers["content-type"]}


def test_docs_work_without_internet(live) -> None:
    page = live.keyless.client.get("/docs").text
    assert "cdn" not in page.lower() and "/static-offline-docs/swagger-ui-bundle.js" in page
    assert "const needsKey = false;" in page  # no key set: the page asks for none
    assert live.keyless.client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    assert "const needsKey = true;" in live.api.client.get("/docs").text


def test_a_server_without_a_key_publishes_a_document_that_asks_for_none(live) -> None:
    """Generated clients and Swagger would otherwise demand a key this server does not take."""
    response = live.keyless.client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert "securitySchemes" not in doc["components"]
    for path, method, operation in operations(doc):
        assert "security" not in operation and "401" not in operation["responses"], (method, path)
    assert live.keyless.client.get("/v1/jobs").status_code == 200  # as the document says: no key
    keyed = document(live.api)  # the same routes, with a key: every operation but the probes asks for it
    for path, method, operation in operations(keyed):
        if path not in ("/healthz", "/readyz"):
            assert operation["security"] and "401" in operation["responses"], (method, path)


def test_a_form_says_what_a_form_can(live) -> None:
    """No null in a multipart form (a field left out is none), and the file part names its type."""
    doc = document(live.api)
    upload = doc["paths"]["/v1/jobs/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["encoding"]["file"]["contentType"].split(", ") == [
        "text/csv",
        "application/vnd.apache.parquet",
        "application/jsonl",
    ]
    body = doc["components"]["schemas"][upload["schema"]["$ref"].rpartition("/")[2]]
    assert body["properties"]["version"] == {"type": "integer", "minimum": 1, "title": "Version"}
    assert body["properties"]["model"]["minLength"] == 1


@pytest.mark.parametrize("with_key", [True, False], ids=["key", "no-key"])
def test_a_fuzzer_finds_nothing_and_the_server_serves_on(live, with_key: bool) -> None:
    """schemathesis against the live server's own OpenAPI document: every operation, every check,
    every phase (stateful too: a job submitted, followed, canceled, deleted, then gone), bounded
    (`make fuzz` runs longer). Its settings (schemathesis.toml) say what it allows, and why."""
    api = live.api if with_key else live.keyless
    examples = int(os.environ.get("MODELYARD_FUZZ_EXAMPLES", "12"))
    phases = os.environ.get("MODELYARD_FUZZ_PHASES", "examples,coverage,fuzzing,stateful")
    result = fuzz(api.url, examples, phases, seed=20261126, key=KEY if with_key else None)
    assert result.returncode == 0, result.stdout[-8000:]
    assert "generated" in result.stdout
    summary = result.stdout.rfind("\n", 0, result.stdout.rfind(" SUMMARY ")) + 1
    print(
        f"\nschemathesis {'with' if with_key else 'without'} a key:\n{result.stdout[summary:]}"
    )  # make fuzz
    body = {"instances": factories.records(2)}
    assert api.client.post("/v1/models/strict/predict", json=body).status_code == 200


def fuzz(
    url: str, examples: int, phases: str, seed: int, key: str | None
) -> subprocess.CompletedProcess[str]:
    schemathesis = str(Path(sys.executable).parent / "st")
    command = [
        schemathesis, "--config-file", str(HERE / "schemathesis.toml"), "run", f"{url}/openapi.json",
        "--checks", "all", "--max-examples", str(examples), "--seed", str(seed), "--no-color",
        "--phases", phases, "--workers", "1",
        *(["--header", f"Authorization: Bearer {key}"] if key else []),
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "fuzz_hooks.py")}
    return subprocess.run(command, capture_output=True, text=True, timeout=1200, env=env)
