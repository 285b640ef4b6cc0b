"""With MODELYARD_API_KEY set, everything but the probes needs the key."""

from collections.abc import Iterator

import pytest

from modelyard.registry.store import Registry
from tests import factories
from tests.server import ApiServer

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("auth")
    registry = Registry(root / "models")
    registry.register(factories.save(factories.classifier(), root / "m.joblib"), "churn")
    registry.promote("churn", 1)
    api = ApiServer(registry.root, root / "api.log", api_key=KEY).wait()
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
