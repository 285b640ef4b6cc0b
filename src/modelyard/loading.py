"""The load gate: nothing is unpickled unless the registry vouches for the exact bytes.

Pickle runs whatever code is inside the file, so the SHA-256 recorded at registration is checked
before loading, and so are the library versions the artifact was saved with.
"""

import hashlib
from typing import Any

import numpy as np
import sklearn

from modelyard import compiled
from modelyard.artifacts import set_n_jobs, unpickle
from modelyard.errors import ArtifactRefused, ArtifactTampered, ModelyardError, VersionMismatch
from modelyard.registry import ModelVersion
from modelyard.runtimes import OnnxRuntime, SklearnRuntime
from modelyard.scoring import LoadedModel, score
from modelyard.tabular import Table
from modelyard.validation import prepare


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


def load(
    model_version: ModelVersion,
    allow_version_mismatch: bool = False,
    n_jobs: int | None = None,
    runtime: str = "auto",
) -> LoadedModel:
    """Verify, unpickle and warm up a registered model version, with the runtime `runtime` (the
    MODELYARD_RUNTIME setting) chooses for it.

    n_jobs, when given, is set on every step that has one (the API wants 1); None keeps the saved value.
    """
    data = verified_bytes(model_version, allow_version_mismatch)
    label = f"model {model_version.name!r} version {model_version.version}"
    choice = compiled.choose(model_version, runtime)
    graph = compiled.verified_graph(model_version, choice.report) if choice.report else None
    try:
        estimator, _ = unpickle(data)
        if n_jobs is not None:
            set_n_jobs(estimator, n_jobs)
        sklearn = SklearnRuntime(estimator, bool(model_version.metadata.get("has_predict_proba")))
        onnx = _onnx_runtime(choice.report, graph, model_version, sklearn, n_jobs) if graph else None
        runtimes = {"sklearn": sklearn, "onnx": onnx}
        model = LoadedModel(
            name=model_version.name,
            version=model_version.version,
            estimator=estimator,
            schema=model_version.schema,
            metadata=model_version.metadata,
            runtime=runtimes[choice.realtime],
            bulk=runtimes[choice.bulk],
            runtime_reason=choice.reason,
        )
    except Exception as exc:
        raise ArtifactRefused(f"{label} failed to load: {type(exc).__name__}: {exc}") from exc
    _warm(model, label)
    return model


def _onnx_runtime(
    report: dict[str, Any] | None,
    graph: bytes,
    model_version: ModelVersion,
    sklearn: SklearnRuntime,
    n_jobs: int | None,
) -> OnnxRuntime:
    assert report is not None
    threads = n_jobs if n_jobs and n_jobs > 0 else 0  # 0: onnxruntime's default, every core
    return OnnxRuntime(
        compiled.session(graph, threads),
        report["graph"],
        model_version.schema,
        sklearn,
        np.dtype(report["final_dtype"]).type,
    )


def _warm(model: LoadedModel, label: str) -> None:
    """One prediction before serving, by each runtime: pays the first call's costs and finds a model
    that cannot predict."""
    example = Table.from_records([model.schema.example_row()])
    try:
        score(model, example)
        if model.bulk is not model.runtime:
            assert model.bulk is not None
            model.bulk.predict(prepare(example, model.schema).frame)
    except ModelyardError as exc:
        raise ArtifactRefused(
            f"{label} loads but fails to score a valid example record, so it is not served: {exc.message}"
        ) from exc
