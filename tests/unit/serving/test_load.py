import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import sklearn

from modelyard.errors import ArtifactRefused, ArtifactTampered, VersionMismatch
from modelyard.registry.gate import verified_bytes
from modelyard.registry.store import ModelVersion, Registry
from modelyard.serving.load import load
from tests import factories


def register(registry: Registry, tmp_path: Path, estimator=None) -> ModelVersion:
    artifact = factories.save(estimator or factories.classifier(), tmp_path / "m.joblib")
    return registry.register(artifact, "m")


def test_load_sets_n_jobs_when_asked(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path)
    assert load(version).estimator.get_params()["forest__n_jobs"] == -1  # as saved
    model = load(version, n_jobs=1)
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
        load(version)
    assert not marker.exists(), "the swapped pickle must never be loaded"
    assert str(version.artifact) in caught.value.message
    assert "modelyard models register" in caught.value.message


def test_missing_artifact_is_refused(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path)
    version.artifact.unlink()
    with pytest.raises(ArtifactTampered, match="is missing"):
        load(version)


def test_other_sklearn_minor_is_refused_unless_allowed(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save_as_if_sklearn("1.0.2", factories.classifier(), tmp_path / "old.joblib")
    version = registry.register(artifact, "old")
    assert version.metadata["versions"]["scikit-learn"] == "1.0.2"

    with pytest.raises(VersionMismatch) as caught:
        load(version)
    assert "scikit-learn 1.0.2" in caught.value.message
    assert "MODELYARD_ALLOW_VERSION_MISMATCH=true" in caught.value.message
    assert load(version, allow_version_mismatch=True).version == 1


def test_a_model_that_cannot_predict_is_refused_when_loaded(registry: Registry, tmp_path: Path) -> None:
    broken = factories.array_regressor()
    broken.coef_ = np.zeros(5)  # a state that no longer fits its 3 inputs: every predict raises
    version = register(registry, tmp_path, broken)
    with pytest.raises(ArtifactRefused) as caught:
        load(version)  # the warm-up prediction finds it, not the first request
    assert caught.value.message.startswith(
        "model 'm' version 1 loads but fails to score a valid example record, so it is not served: "
        "model 'm' version 1 failed on valid input: ValueError: matmul"
    )


def test_a_changed_artifact_is_refused_with_both_digests(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path)
    recorded = version.metadata["artifact"]["sha256"]
    os.chmod(version.artifact, 0o644)
    version.artifact.write_bytes(b"changed")
    actual = hashlib.sha256(b"changed").hexdigest()
    with pytest.raises(ArtifactTampered) as caught:
        verified_bytes(version)
    assert caught.value.message == (
        f"model 'm' version 1: {version.artifact} has SHA-256 {actual[:12]}…, but the registry recorded "
        f"{recorded[:12]}…; the file changed after registration and will not be loaded. Restore the "
        "original file, or register the new one as a new version: modelyard models register FILE --name m"
    )


@pytest.mark.parametrize(
    ("saved", "refused"),
    [
        ({"scikit-learn": "{sklearn_minor}.99"}, None),  # another patch release: same pickles
        ({"scikit-learn": "1.0.2"}, "scikit-learn 1.0.2"),
        ({"numpy": "1.26.4"}, "numpy 1.26.4"),
        ({"numpy": "{numpy_major}.0.0"}, None),
    ],
)
def test_library_versions_that_must_match(registry: Registry, tmp_path: Path, saved, refused) -> None:
    version = register(registry, tmp_path)
    values = {
        "sklearn_minor": ".".join(sklearn.__version__.split(".")[:2]),
        "numpy_major": np.__version__.split(".")[0],
    }
    version.metadata["versions"].update({k: v.format(**values) for k, v in saved.items()})
    if refused is None:
        verified_bytes(version)
        return
    library = refused.split()[0]
    running = {"scikit-learn": sklearn.__version__, "numpy": np.__version__}[library]
    keep = 2 if library == "scikit-learn" else 1
    with pytest.raises(VersionMismatch) as caught:
        verified_bytes(version)
    assert caught.value.message == (
        f"model 'm' version 1 was saved with {refused}, this process runs {running}. Retrain and "
        f"register it with {library} {'.'.join(running.split('.')[:keep])}.x, or run modelyard with "
        f"{library}=={refused.split()[1]}, or set MODELYARD_ALLOW_VERSION_MISMATCH=true to load it "
        "anyway (its predictions may differ)"
    )


def test_an_artifact_that_fails_to_unpickle(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path)
    data = pickle.dumps(ValueError("x"))[:-1]  # truncated: no STOP opcode
    os.chmod(version.artifact, 0o644)
    version.artifact.write_bytes(data)
    version.metadata["artifact"]["sha256"] = hashlib.sha256(data).hexdigest()
    with pytest.raises(ArtifactRefused) as caught:
        load(version)
    assert caught.value.message == "model 'm' version 1 failed to load: EOFError: "
