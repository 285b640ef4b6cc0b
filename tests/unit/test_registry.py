import pickle
import stat
import threading
from pathlib import Path

import pytest
from sklearn.preprocessing import StandardScaler

from modelyard.errors import AliasNotFound, ModelNotFound, RegistryError, VersionNotFound
from modelyard.registry import PRODUCTION, Registry
from tests import factories


def test_register_writes_artifact_and_metadata(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.classifier(), tmp_path / "clf.joblib")
    version = registry.register(artifact, "churn", description="first", metrics={"auc": 0.9})

    assert version.version == 1
    assert version.artifact.read_bytes() == artifact.read_bytes()
    meta = version.metadata
    assert meta["artifact"]["format"] == "joblib"
    assert len(meta["artifact"]["sha256"]) == 64
    assert meta["artifact"]["size_bytes"] == artifact.stat().st_size
    assert meta["task"] == "classification"
    assert meta["classes"] == ["no", "yes"]
    assert set(meta["versions"]) == {"python", "scikit-learn", "numpy", "joblib"}
    assert meta["description"] == "first" and meta["metrics"] == {"auc": 0.9}
    assert [f["name"] for f in meta["input_schema"]["features"]] == ["age", "income", "color"]
    assert not version.artifact.stat().st_mode & stat.S_IWUSR, "versions are read-only once written"


def test_versions_count_up_and_pickle_is_accepted(registry: Registry, tmp_path: Path) -> None:
    joblib_file = factories.save(factories.classifier(), tmp_path / "a.joblib")
    pickle_file = tmp_path / "b.pkl"
    pickle_file.write_bytes(pickle.dumps(factories.array_regressor()))

    first = registry.register(joblib_file, "m")
    second = registry.register(pickle_file, "m")

    assert (first.version, second.version) == (1, 2)
    assert second.metadata["artifact"]["format"] == "pickle"
    assert second.metadata["task"] == "regression"
    assert registry.version_numbers("m") == [1, 2]
    assert not list((registry.root / "m").glob(".staging-*"))


def test_concurrent_registrations_get_distinct_versions(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "r.joblib")
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(registry.register(artifact, "r", force_new=True).version)
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [1, 2, 3, 4, 5, 6]


def test_aliases(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "r.joblib")
    registry.register(artifact, "r")
    registry.register(artifact, "r", force_new=True)

    with pytest.raises(AliasNotFound, match="modelyard models promote r VERSION"):
        registry.resolve("r")
    registry.promote("r", 1)
    registry.promote("r", 2, alias="staging")
    assert registry.resolve("r").version == 1
    assert registry.aliases("r") == {PRODUCTION: 1, "staging": 2}
    registry.promote("r", 2)
    assert registry.alias_version("r") == 2


def test_names_that_leave_the_registry_find_nothing(registry: Registry, tmp_path: Path) -> None:
    registry.register(factories.save(factories.array_regressor(), tmp_path / "r.joblib"), "r")
    (registry.root.parent / "7").mkdir()  # a version-like folder just outside the registry
    assert registry.version_numbers("..") == []
    with pytest.raises(ModelNotFound):
        registry.get("..", 7)


def test_lookups_fail_with_404_errors(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        registry.get("nothing", 1)
    registry.register(factories.save(factories.array_regressor(), tmp_path / "r.joblib"), "r")
    with pytest.raises(VersionNotFound, match="versions: \\[1\\]"):
        registry.promote("r", 5)


@pytest.mark.parametrize("name", ["", "../x", "a/b", "12", ".hidden", "x" * 65])
def test_bad_names_are_refused(registry: Registry, tmp_path: Path, name: str) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "r.joblib")
    with pytest.raises(RegistryError, match="not valid"):
        registry.register(artifact, name)


def test_bad_artifacts_are_refused(registry: Registry, tmp_path: Path) -> None:
    text = tmp_path / "model.txt"
    text.write_text("hi")
    with pytest.raises(RegistryError, match=r"expected a \.joblib"):
        registry.register(text, "m")
    garbage = tmp_path / "model.pkl"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(RegistryError, match="cannot be loaded"):
        registry.register(garbage, "m")
    transformer = factories.save(StandardScaler().fit([[1.0], [2.0]]), tmp_path / "scaler.joblib")
    with pytest.raises(RegistryError, match="neither a classifier nor a regressor"):
        registry.register(transformer, "m")
    assert registry.model_names() == []


def test_the_same_bytes_are_registered_once(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "r.joblib")
    first = registry.register(artifact, "r")
    again = registry.register(artifact, "r")
    assert (again.version, again.reused, first.reused) == (1, True, False)
    assert registry.version_numbers("r") == [1]
    assert registry.register(artifact, "r", force_new=True).version == 2
    assert registry.register(artifact, "other").version == 1  # per model name
