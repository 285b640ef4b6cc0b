"""Loading a registered version to serve it: its bytes through the load gate, unpickled, its runtime
chosen (scikit-learn, or its verified compiled graph), and one prediction made before it serves.
"""

from typing import Any

import numpy as np

from modelyard.compiled.choose import choose, session, verified_graph
from modelyard.errors import ArtifactRefused, ModelyardError
from modelyard.registry.artifacts import set_n_jobs, unpickle
from modelyard.registry.gate import verified_bytes
from modelyard.registry.store import ModelVersion
from modelyard.scoring.predict import LoadedModel, score
from modelyard.scoring.runtimes import OnnxRuntime, SklearnRuntime
from modelyard.scoring.validation import prepare
from modelyard.tabular import Table


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
    choice = choose(model_version, runtime)
    graph = verified_graph(model_version, choice.report) if choice.report else None
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
            bulk_from_rows=choice.bulk_from_rows,
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
        session(graph, threads),
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
