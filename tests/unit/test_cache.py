import os
from pathlib import Path

import pytest

from modelyard.cache import LoadPolicy, ModelCache
from modelyard.errors import AliasNotFound, ArtifactRefused, ModelNotFound
from modelyard.registry import Registry
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
