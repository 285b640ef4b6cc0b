"""With MODELYARD_API_KEY set, everything but the probes needs the key."""

import json
import time
from collections.abc import Iterator

import pytest

from tests import factories
from tests.server import ApiServer, churn_api

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = churn_api(tmp_path_factory.mktemp("auth"), api_key=KEY)
    yield api
    api.stop()


def test_probes_are_open(server) -> None:
    assert server.client.get("/healthz").status_code == 200
    assert server.client.get("/readyz").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("GET", "/v1/models/churn"),
        ("GET", "/metrics"),
        ("POST", "/v1/models/churn/predict"),
        ("POST", "/v1/models/churn/predict-file"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": KEY}],
)
def test_everything_else_needs_the_key(server, method: str, path: str, headers: dict) -> None:
    response = server.client.request(method, path, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEY}"}, {"X-API-Key": KEY}])
def test_either_header_works(server, headers: dict) -> None:
    response = server.client.post(
        "/v1/models/churn/predict", headers=headers, json={"instances": factories.records(1)}
    )
    assert response.status_code == 200, response.text


def test_the_document_needs_the_key_and_the_page_asks_for_it(server) -> None:
    """The document lists every model's features: with a key set, it is no more open than they are."""
    refused = server.client.get("/openapi.json")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    assert server.client.get("/openapi.json", params={"api_key": KEY}).status_code == 401  # never in a URL
    document = server.client.get("/openapi.json", headers={"X-API-Key": KEY})
    assert document.status_code == 200 and "churn.Record" in document.json()["components"]["schemas"]
    page = server.client.get("/docs")  # the page loads without the key, asks for it, sends it
    assert page.status_code == 200
    assert "const needsKey = true;" in page.text and 'type="password"' in page.text
    assert 'request.headers["Authorization"] = "Bearer " + key' in page.text
    assert 'fetch("/openapi.json", {headers: {Authorization: "Bearer " + key}})' in page.text


def test_probes_are_not_logged_at_info(server) -> None:
    """Compose asks /readyz every few seconds: the access log keeps the requests that matter (a
    probe that fails, while the models load say, is still logged)."""
    before = len(server.logs().splitlines())
    for path in ("/healthz", "/readyz", "/healthz"):
        assert server.client.get(path).status_code == 200
    assert server.client.get("/v1/models", headers={"X-API-Key": KEY}).status_code == 200
    time.sleep(0.2)
    new = server.logs().splitlines()[before:]
    logged = [json.loads(line) for line in new if '"message": "request"' in line]
    assert any(line["path"] == "/v1/models" for line in logged)
    assert not any(line["path"] in ("/healthz", "/readyz") for line in logged)
