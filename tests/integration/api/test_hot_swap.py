"""Moving the production alias while requests run, from another process sharing the registry."""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from modelyard.registry.store import Registry
from tests import factories
from tests.server import ApiServer, descendants, run_cli

SWAP_DEADLINE_S = 5.0


@dataclass
class Traffic:
    """Clients posting predictions in a loop, recording what each answer was."""

    url: str
    answers: list[tuple[float, int, int | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self, clients: int = 2) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._loop) for _ in range(clients)]
        for thread in threads:
            thread.start()
        return threads

    def _loop(self) -> None:
        body = {"instances": factories.records(10)}
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post("/v1/models/churn/predict", json=body)
                except httpx.TransportError:  # a request lost on a closed connection
                    self.answers.append((time.monotonic(), 0, None))
                    continue
                version = response.json().get("version") if response.status_code == 200 else None
                self.answers.append((time.monotonic(), response.status_code, version))

    def stop(self, threads: list[threading.Thread]) -> None:
        self._stop.set()
        for thread in threads:
            thread.join()


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_promotion_swaps_without_failed_requests(registry: Registry, tmp_path: Path, api_server) -> None:
    run_cli(
        registry.root.parent,
        "models",
        "register",
        str(factories.save(factories.classifier(), tmp_path / "a.joblib")),
        "--name",
        "churn",
        "--promote",
    )
    server = api_server(registry.root)
    traffic = Traffic(server.url)
    threads = traffic.run()
    time.sleep(1.0)

    candidate = factories.save(factories.classifier(seed=3, trees=60), tmp_path / "b.joblib")
    run_cli(registry.root.parent, "models", "register", str(candidate), "--name", "churn")
    promoted_at = time.monotonic()
    run_cli(registry.root.parent, "models", "promote", "churn", "2")
    swapped = wait_for(lambda: any(v == 2 for _, _, v in traffic.answers), SWAP_DEADLINE_S + 1)
    time.sleep(1.0)
    traffic.stop(threads)

    assert swapped, "no answer came from version 2"
    failures = [answer for answer in traffic.answers if answer[1] != 200]
    assert failures == [], f"{len(failures)} requests failed during the swap"
    first_v2 = min(t for t, _, v in traffic.answers if v == 2)
    assert first_v2 - promoted_at < SWAP_DEADLINE_S
    assert all(v == 2 for t, _, v in traffic.answers if t > first_v2 + 0.5), "went back to version 1"
    assert len([a for a in traffic.answers if a[2] == 1]) > 10, "traffic ran before the swap too"


def test_tampered_version_is_refused_and_old_keeps_serving(
    registry: Registry, tmp_path: Path, api_server
) -> None:
    for seed in (0, 1):
        registry.register(
            factories.save(factories.classifier(seed=seed), tmp_path / f"{seed}.joblib"), "churn"
        )
    registry.promote("churn", 1)
    server = api_server(registry.root)

    artifact = registry.get("churn", 2).artifact
    os.chmod(artifact, 0o644)
    artifact.write_bytes(artifact.read_bytes()[:-1] + b"\0")
    run_cli(registry.root.parent, "models", "promote", "churn", "2")

    def refused() -> bool:
        return server.client.get("/readyz").json()["models"][0]["status"] == "refused"

    assert wait_for(refused, SWAP_DEADLINE_S)
    ready = server.client.get("/readyz")
    entry = ready.json()["models"][0]
    assert ready.status_code == 200, "version 1 is still served"
    assert (entry["production_version"], entry["serving_version"], entry["code"]) == (
        2,
        1,
        "artifact_tampered",
    )
    assert str(artifact) in entry["message"]
    answer = server.client.post("/v1/models/churn/predict", json={"instances": factories.records(3)})
    assert answer.status_code == 200 and answer.json()["version"] == 1
    assert 'modelyard_model_load_failures_total{code="artifact_tampered",model="churn"} 1.0' in (
        server.client.get("/metrics").text
    )


def test_version_mismatch_is_refused_until_allowed(registry: Registry, tmp_path: Path, api_server) -> None:
    old = factories.save_as_if_sklearn("1.0.2", factories.classifier(), tmp_path / "old.joblib")
    registry.register(old, "churn")
    registry.promote("churn", 1)

    refusing = api_server(registry.root, ready=False)
    assert wait_for(lambda: refusing.client.get("/readyz").status_code == 503, SWAP_DEADLINE_S)
    entry = refusing.client.get("/readyz").json()["models"][0]
    assert entry["code"] == "library_version_mismatch"
    assert "MODELYARD_ALLOW_VERSION_MISMATCH=true" in entry["message"]
    answer = refusing.client.post("/v1/models/churn/predict", json={"instances": factories.records(1)})
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "model_not_ready"

    allowing = api_server(registry.root, allow_version_mismatch="true")
    answer = allowing.client.post("/v1/models/churn/predict", json={"instances": factories.records(1)})
    assert answer.status_code == 200 and answer.json()["version"] == 1


def answering_processes(server: ApiServer, timeout: float = SWAP_DEADLINE_S * 4) -> dict[int, dict]:
    """/readyz from every server process (each request on a connection of its own, so that any of
    the processes sharing the port may take it), once as many as asked for run: ones being replaced
    drain and answer no new connection."""
    seen: dict[int, dict] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
        seen[ready["process"]] = ready["models"][0]
        workers = set(descendants(server.process.pid))
        if len(workers) == server.processes and workers <= seen.keys():
            return {pid: seen[pid] for pid in workers}
    raise AssertionError(f"processes {workers - seen.keys()} of {workers} never answered")


def test_after_a_promotion_every_process_serves_the_new_version(
    registry: Registry, tmp_path: Path, api_server
) -> None:
    for seed in (0, 3):  # registered as users do: compiled, so the parent's ONNX sessions are forked
        model = factories.save(factories.classifier(seed=seed), tmp_path / f"{seed}.joblib")
        run_cli(registry.root.parent, "models", "register", str(model), "--name", "churn")
    registry.promote("churn", 1)
    server = api_server(registry.root, processes=2)
    before = answering_processes(server)
    assert len(before) == 2 and all(entry["serving_version"] == 1 for entry in before.values())
    traffic = Traffic(server.url)
    threads = traffic.run()
    time.sleep(0.5)

    run_cli(registry.root.parent, "models", "promote", "churn", "2")
    # the parent loads version 2, forks two fresh workers sharing it and stops the old ones
    assert wait_for(lambda: set(descendants(server.process.pid)).isdisjoint(before), SWAP_DEADLINE_S * 3)
    traffic.stop(threads)

    after = answering_processes(server)
    assert [entry["serving_version"] for entry in after.values()] == [2, 2]
    failures = [answer for answer in traffic.answers if answer[1] != 200]
    assert failures == [], f"{len(failures)} requests failed while the workers were replaced"
    assert {version for _, _, version in traffic.answers} == {1, 2}
    answers = [
        httpx.post(f"{server.url}/v1/models/churn/predict", json={"instances": factories.records(2)})
        for _ in range(20)
    ]
    assert {answer.json()["version"] for answer in answers} == {2}
    runtimes = [
        httpx.get(f"{server.url}/v1/models/churn").json()["versions"][1]["runtime"] for _ in range(20)
    ]
    assert {runtime["serving"] for runtime in runtimes} == {"onnx"}, runtimes[0]["reason"]
    assert 'modelyard_serving_version{model="churn"} 2.0' in server.client.get("/metrics").text


def test_a_refused_promotion_reaches_every_process(registry: Registry, tmp_path: Path, api_server) -> None:
    for seed in (0, 1):
        registry.register(
            factories.save(factories.classifier(seed=seed), tmp_path / f"{seed}.joblib"), "churn"
        )
    registry.promote("churn", 1)
    server = api_server(registry.root, processes=2)
    tamper = registry.get("churn", 2).artifact
    os.chmod(tamper, 0o644)
    tamper.write_bytes(tamper.read_bytes()[:-1] + b"\0")
    run_cli(registry.root.parent, "models", "promote", "churn", "2")

    def refused_everywhere() -> bool:
        return all(entry["status"] == "refused" for entry in answering_processes(server).values())

    assert wait_for(refused_everywhere, SWAP_DEADLINE_S * 2)
    entries = answering_processes(server).values()
    assert {(e["serving_version"], e["code"]) for e in entries} == {(1, "artifact_tampered")}
    answer = httpx.post(f"{server.url}/v1/models/churn/predict", json={"instances": factories.records(1)})
    assert answer.status_code == 200 and answer.json()["version"] == 1
