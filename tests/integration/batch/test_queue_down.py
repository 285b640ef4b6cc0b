"""Redis stopped: job requests fail fast with 503, real-time prediction goes on, and the API says so."""

import time

from modelyard.registry.store import Registry
from tests import factories
from tests.server import ApiServer, RedisServer


def test_redis_down_gives_503_for_jobs_and_predictions_go_on(
    registry: Registry, tmp_path, api_server
) -> None:
    registry.register(factories.save(factories.classifier(), tmp_path / "m.joblib"), "churn")
    registry.promote("churn", 1)
    (tmp_path / "data" / "incoming").mkdir(parents=True)
    (tmp_path / "data" / "incoming" / "x.csv").write_text("age,income,color\n30,1.5,red\n")
    redis_server = RedisServer(tmp_path / "redis")
    try:
        check_jobs_and_predictions(
            api_server(registry.root, data_dir=str(tmp_path / "data"), redis_url=redis_server.url),
            redis_server,
        )
    finally:
        redis_server.stop()


def check_jobs_and_predictions(api: ApiServer, redis_server: RedisServer) -> None:
    assert api.client.get("/readyz").json()["queue"] == {"status": "ok", "workers": 0}
    redis_server.stop()

    started = time.monotonic()
    response = api.client.post("/v1/jobs", json={"model": "churn", "input": "incoming/x.csv"})
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    error = response.json()["error"]
    assert (
        error["code"] == "queue_unavailable" and "real-time predictions are not affected" in error["message"]
    )
    assert api.client.get("/v1/jobs").status_code == 503

    predicted = api.client.post("/v1/models/churn/predict", json={"instances": factories.records(2)})
    assert predicted.status_code == 200
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["queue"]["status"] == "unavailable"
    assert "modelyard_queue_up 0.0" in api.client.get("/metrics").text

    redis_server.start()
    response = api.client.post("/v1/jobs", json={"model": "churn", "input": "incoming/x.csv"})
    assert response.status_code == 202, response.text
