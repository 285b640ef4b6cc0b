import os
import pickle
from pathlib import Path

import pytest

from modelyard import loading
from modelyard.errors import ArtifactTampered, VersionMismatch
from modelyard.registry import ModelVersion, Registry
from tests import factories


def register(registry: Registry, tmp_path: Path, estimator=None) -> ModelVersion:
    artifact = factories.save(estimator or factories.classifier(), tmp_path / "m.joblib")
    return registry.register(artifact, "m")


def test_load_sets_n_jobs_when_asked(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path)
    assert loading.load(version).estimator.get_params()["forest__n_jobs"] == -1  # as saved
    model = loading.load(version, n_jobs=1)
    assert model.estimator.get_params()["forest__n_jobs"] == 1
    assert model.classes == ["no", "yes"]


class Payload:
    """A pickle that runs code when loaded: here it only touches a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_swapped_artifact_is_refused_before_unpickling(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path)
    marker = tmp_path / "payload-ran"
    os.chmod(version.artifact, 0o644)
    version.artifact.write_bytes(pickle.dumps(Payload(marker)))

    with pytest.raises(ArtifactTampered) as caught:
        loading.load(version)
    assert not marker.exists(), "the swapped pickle must never be loaded"
    assert str(version.artifact) in caught.value.message
    assert "modelyard models register" in caught.value.message


def test_missing_artifact_is_refused(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path)
    version.artifact.unlink()
    with pytest.raises(ArtifactTampered, match="is missing"):
        loading.load(version)


def test_other_sklearn_minor_is_refused_unless_allowed(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save_as_if_sklearn("1.0.2", factories.classifier(), tmp_path / "old.joblib")
    version = registry.register(artifact, "old")
    assert version.metadata["versions"]["scikit-learn"] == "1.0.2"

    with pytest.raises(VersionMismatch) as caught:
        loading.load(version)
    assert "scikit-learn 1.0.2" in caught.value.message
    assert "MODELYARD_ALLOW_VERSION_MISMATCH=true" in caught.value.message
    assert loading.load(version, allow_version_mismatch=True).version == 1
