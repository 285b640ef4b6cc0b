"""The batch stack the tests of this folder share: a private redis-server, the API over HTTP, and
`modelyard worker` subprocesses started per test."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from modelyard.registry.store import Registry
from tests import factories
from tests.server import ApiServer, RedisServer, WorkerProcess

SLOW_CHUNK_S = 0.15


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("jobs")
    registry = Registry(root / "models")
    for name, model in [("churn", factories.classifier()), ("slow", factories.slow_classifier(SLOW_CHUNK_S))]:
        registry.register(factories.save(model, root / f"{name}.joblib"), name)
        registry.promote(name, 1)
    (root / "data" / "incoming").mkdir(parents=True)
    redis_server = RedisServer(root / "redis")
    api = ApiServer(
        registry.root, root / "api.log", data_dir=str(root / "data"), redis_url=redis_server.url
    ).wait()
    yield {"root": root, "registry": registry, "redis": redis_server, "api": api}
    api.stop()
    redis_server.stop()


@pytest.fixture
def workers(stack: dict[str, Any]) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers (stopped at the end of the test) on an emptied queue."""
    stack["redis"].client().flushall()
    started: list[WorkerProcess] = []

    def start(name: str, **settings: str) -> WorkerProcess:
        worker = WorkerProcess(stack["root"], stack["redis"].url, name, **settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
