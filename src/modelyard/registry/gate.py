"""The load gate: nothing is unpickled unless the registry vouches for the exact bytes.

Pickle runs whatever code is inside the file, so the SHA-256 recorded at registration is checked
before loading, and so are the library versions the artifact was saved with. The bytes checked are
the bytes returned: nothing reads the file again between the check and the load.
"""

import hashlib

import numpy as np
import sklearn

from modelyard.errors import ArtifactTampered, VersionMismatch
from modelyard.registry.store import ModelVersion


def verified_bytes(model_version: ModelVersion, allow_version_mismatch: bool = False) -> bytes:
    """The artifact's bytes, read once, after checking them against what the registry recorded."""
    artifact = model_version.artifact
    recorded = model_version.metadata["artifact"]["sha256"]
    label = f"model {model_version.name!r} version {model_version.version}"
    try:
        data = artifact.read_bytes()
    except FileNotFoundError:
        raise ArtifactTampered(
            f"{label}: {artifact} is missing; restore it or register the model again"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        raise ArtifactTampered(
            f"{label}: {artifact} has SHA-256 {actual[:12]}…, but the registry recorded {recorded[:12]}…; "
            "the file changed after registration and will not be loaded. Restore the original file, "
            "or register the new one as a new version: "
            f"modelyard models register FILE --name {model_version.name}"
        )
    if not allow_version_mismatch:
        _check_versions(label, model_version.metadata["versions"])
    return data


def _check_versions(label: str, saved: dict[str, str]) -> None:
    running = {"scikit-learn": sklearn.__version__, "numpy": np.__version__}
    # scikit-learn only promises pickles load within a minor version; numpy changed its pickles at 2.0.
    parts = {"scikit-learn": 2, "numpy": 1}
    for library, count in parts.items():
        if _release(saved[library], count) != _release(running[library], count):
            raise VersionMismatch(
                f"{label} was saved with {library} {saved[library]}, this process runs "
                f"{running[library]}. Retrain and register it with {library} "
                f"{'.'.join(_release(running[library], count))}.x, or run modelyard with "
                f"{library}=={saved[library]}, or set MODELYARD_ALLOW_VERSION_MISMATCH=true "
                "to load it anyway (its predictions may differ)"
            )


def _release(version: str, parts: int) -> tuple[str, ...]:
    return tuple(version.split(".")[:parts])
