import os
import time
from pathlib import Path

import pytest

from modelyard.errors import AliasNotFound, ArtifactRefused, BadRequest, ModelNotFound, ModelNotReady
from modelyard.registry.store import Registry
from modelyard.serving import cache
from modelyard.serving.cache import LoadPolicy, ModelCache
from tests import factories


@pytest.fixture
def store(registry: Registry, tmp_path: Path) -> ModelCache:
    for seed in range(3):
        registry.register(
            factories.save(factories.classifier(seed=seed), tmp_path / f"{seed}.joblib"), "churn"
        )
    registry.promote("churn", 1)
    return ModelCache(registry, LoadPolicy(n_jobs=1, pinned_size=1))


def entry(store: ModelCache) -> dict:
    return store.readiness()[1][0]


def test_follows_the_production_alias(store: ModelCache) -> None:
    assert store.readiness() == (False, [])
    store.sync()
    assert store.get("churn").version == 1
    store.registry.promote("churn", 2)
    store.sync()
    assert store.get("churn").version == 2
    assert store.readiness() == (
        True,
        [{"model": "churn", "production_version": 2, "serving_version": 2, "status": "ready"}],
    )


def test_refused_version_keeps_the_old_one(store: ModelCache) -> None:
    store.sync()
    artifact = store.registry.get("churn", 3).artifact
    os.chmod(artifact, 0o644)
    artifact.write_bytes(b"changed")
    store.registry.promote("churn", 3)
    store.sync()
    assert store.get("churn").version == 1
    ready, _ = store.readiness()
    assert ready and entry(store)["status"] == "refused" and entry(store)["code"] == "artifact_tampered"


def test_unreadable_alias_or_metadata_do_not_stop_serving(store: ModelCache) -> None:
    store.sync()
    (store.registry.root / "churn" / "aliases" / "production.json").write_text("{not json")
    store.sync()
    assert store.get("churn").version == 1
    store.registry.promote("churn", 2)
    metadata = store.registry.root / "churn" / "2" / "metadata.json"
    os.chmod(metadata, 0o644)
    metadata.write_text("{")
    store.sync()
    assert store.get("churn").version == 1
    assert "metadata.json cannot be read" in entry(store)["message"]
    with pytest.raises(ArtifactRefused):
        store.get("churn", 2)


def test_pinned_versions_are_cached_up_to_the_limit(store: ModelCache) -> None:
    store.sync()
    second = store.get("churn", 2)
    assert store.get("churn", 2) is second
    store.get("churn", 3)  # cache size 1: version 2 is evicted
    assert store.get("churn", 2) is not second
    assert store.get("churn", 1) is store.get("churn")  # production is never loaded twice


def test_missing_model_or_alias(store: ModelCache, registry: Registry, tmp_path: Path) -> None:
    registry.register(factories.save(factories.array_regressor(), tmp_path / "r.joblib"), "unpromoted")
    store.sync()
    with pytest.raises(ModelNotFound):
        store.get("nothing")
    with pytest.raises(AliasNotFound):
        store.get("unpromoted")


def tamper(store: ModelCache, version: int) -> bytes:
    artifact = store.registry.get("churn", version).artifact
    original = artifact.read_bytes()
    os.chmod(artifact, 0o644)
    artifact.write_bytes(b"changed")
    return original


def test_a_refused_version_rests_then_is_tried_again(
    store: ModelCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded, refused = [], []
    store.on_loaded = lambda name, version: loaded.append((name, version))
    store.on_refused = lambda name, code: refused.append((name, code))
    store.sync()
    original = tamper(store, 3)
    store.registry.promote("churn", 3)
    store.sync()
    store.registry.get("churn", 3).artifact.write_bytes(original)  # restored
    store.sync()
    assert store.get("churn").version == 1 and refused == [("churn", "artifact_tampered")]

    clock = time.monotonic() + cache.RETRY_REFUSED_S + 1
    monkeypatch.setattr(cache.time, "monotonic", lambda: clock)
    store.sync()
    assert store.get("churn").version == 3 and entry(store)["status"] == "ready"
    assert loaded == [("churn", 1), ("churn", 3)] and refused == [("churn", "artifact_tampered")]


def test_a_cache_that_leaves_moves_to_its_parent_loads_them_itself_only_late(
    store: ModelCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.sync()
    store.leave_moves_s = 60.0  # a pre-fork worker's: the parent loads and forks fresh workers
    before = store.state()
    store.registry.promote("churn", 2)
    store.sync()
    assert store.get("churn").version == 1 and store.state() == before
    assert entry(store)["status"] == "loading" and entry(store)["production_version"] == 2

    clock = time.monotonic() + 61
    monkeypatch.setattr(cache.time, "monotonic", lambda: clock)
    store.sync()  # the parent never delivered it: this process loads it
    assert store.get("churn").version == 2 and entry(store)["status"] == "ready"
    assert store.state() == ({"churn": 2}, {})


def test_the_state_names_what_is_served_and_refused(store: ModelCache) -> None:
    store.sync()
    tamper(store, 3)
    store.registry.promote("churn", 3)
    store.sync()
    assert store.state() == ({"churn": 1}, {"churn": (3, "artifact_tampered")})


def test_refused_with_nothing_to_serve(store: ModelCache) -> None:
    tamper(store, 1)
    store.sync()
    assert store.readiness() == (
        False,
        [
            {
                "model": "churn",
                "production_version": 1,
                "serving_version": None,
                "status": "refused",
                "code": "artifact_tampered",
                "message": entry(store)["message"],
            }
        ],
    )
    with pytest.raises(ModelNotReady, match="has no production version loaded: model 'churn' version 1"):
        store.get("churn")


def test_the_watcher_follows_promotions_until_stopped(store: ModelCache) -> None:
    store.start(interval_s=0.05)
    try:
        deadline = time.monotonic() + 30
        while store.readiness()[0] is False and time.monotonic() < deadline:
            time.sleep(0.05)
        store.registry.promote("churn", 2)
        while store.get("churn").version != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.get("churn").version == 2
    finally:
        store.stop()
    assert store._thread is not None and not store._thread.is_alive()


def test_version_or_alias_not_both(store: ModelCache) -> None:
    store.sync()
    store.registry.promote("churn", 2, alias="canary")
    assert store.get("churn", alias="canary").version == 2
    assert store.get("churn", alias="production").version == 1
    with pytest.raises(BadRequest, match=r"^pass either \?version=N or \?alias=NAME, not both$"):
        store.get("churn", version=2, alias="canary")
    with pytest.raises(AliasNotFound, match="staging"):
        store.get("churn", alias="staging")


def test_what_the_store_logs(store: ModelCache, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="modelyard.serving.cache")
    store.sync()
    tamper(store, 2)
    store.registry.promote("churn", 2)
    store.sync()
    (store.registry.root / "churn" / "aliases" / "production.json").write_text("{")
    store.sync()
    logged = [(r.levelname, r.getMessage(), getattr(r, "model", None)) for r in caplog.records]
    assert logged[0] == ("INFO", "now serving", "churn") and caplog.records[0].version == 1
    assert logged[1] == ("ERROR", "refused to load a production version; still serving version 1", "churn")
    refused = caplog.records[1]
    assert (refused.version, refused.code) == (2, "artifact_tampered")
    assert refused.reason.startswith("model 'churn' version 2: ")
    assert logged[2][0] == "ERROR" and logged[2][1].startswith("keeping what is served; the alias file ")
    assert logged[2][2] == "churn" and len(logged) == 3


def test_nothing_served_until_the_first_sync(store: ModelCache, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ModelNotReady) as caught:
        store.get("churn")
    assert caught.value.message == (
        "model 'churn' has no production version loaded: it is still loading; try again shortly"
    )
    tamper(store, 1)
    store.sync()
    assert caplog.records[-1].getMessage() == "refused to load a production version; nothing is served"


def test_readiness_of_several_models(store: ModelCache, registry: Registry, tmp_path: Path) -> None:
    registry.register(factories.save(factories.array_regressor(), tmp_path / "r.joblib"), "price")
    registry.promote("price", 1)
    store.sync()
    assert store.readiness() == (
        True,
        [
            {"model": "churn", "production_version": 1, "serving_version": 1, "status": "ready"},
            {"model": "price", "production_version": 1, "serving_version": 1, "status": "ready"},
        ],
    )
    store.production.pop("price")  # as if its load were still under way
    assert store.readiness()[0] is False
    assert store.readiness()[1][1] == {
        "model": "price",
        "production_version": 1,
        "serving_version": None,
        "status": "loading",
    }
    (registry.root / "price" / "aliases" / "production.json").unlink()
    store.sync()
    assert [e["model"] for e in store.readiness()[1]] == ["churn"] and "price" not in store.production
