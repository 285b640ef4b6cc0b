"""The compiled runtime exact where scikit-learn is: tree ensembles' probabilities in [0, 1] and
regressors within 1e-9 * max(1, |predict|), served compiled (requests and batch chunks alike).
Each fixture first shows the bug on skl2onnx's own float graph, the graph served before."""

from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelyard.batch.files import score_file
from modelyard.compiled.compile import compile_registered
from modelyard.registry.store import Registry
from modelyard.scoring.runtimes import REGRESSION_TOLERANCE, SUM_TOLERANCE
from modelyard.serving import load as loading
from tests import factories

WIDTH = 8
ROWS = 10_000


def random_rows(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(ROWS, WIDTH)) * [1, 3, 10, 0.5, 1, 2, 5, 1]


def forest_on_an_array() -> RandomForestClassifier:
    """As a new user fitted it: 20 trees, no depth limit, a numpy array (no feature names)."""
    x = random_rows(1)[:2000]
    labels = (x[:, 0] + x[:, 1] * x[:, 2] / 10 + np.random.default_rng(2).normal(size=2000) > 0).astype(int)
    return RandomForestClassifier(n_estimators=20, random_state=0).fit(x, labels)


def prices(x: np.ndarray) -> np.ndarray:
    return 9000 + 3000 * x[:, 0] + 40 * x[:, 2] ** 2 + 500 * x[:, 1]  # up to about 19,000 and beyond


def regressors() -> dict[str, object]:
    x = random_rows(3)[:3000]
    return {
        "pipeline": make_pipeline(
            StandardScaler(), RandomForestRegressor(n_estimators=40, random_state=0)
        ).fit(pd.DataFrame(x, columns=[f"f{i}" for i in range(WIDTH)]), prices(x)),
        "forest": RandomForestRegressor(n_estimators=40, random_state=0).fit(x, prices(x)),
        "boosting": GradientBoostingRegressor(n_estimators=100, random_state=0).fit(x, prices(x)),
    }


def float_graph_answers(final: object, x: np.ndarray, output: str) -> np.ndarray:
    options = {id(final): {"zipmap": False}} if output == "probabilities" else None
    graph = to_onnx(final, x[:1].astype(np.float32), options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    session = onnxruntime.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run([output], {"X": x.astype(np.float32)})[0], dtype=np.float64)


def compiled(registry: Registry, tmp_path: Path, name: str, estimator: object):
    version = registry.register(factories.save(estimator, tmp_path / f"{name}.joblib"), name)
    report = compile_registered(version)
    assert report["runtime"] == "onnx", report["reason"]
    model = loading.load(version, n_jobs=1, runtime="onnx")  # the graph for requests and big chunks alike
    assert (model.runtime.name, model.runtime_for(bulk=True).name) == ("onnx", "onnx")
    return model


def frame(model, x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=model.schema.names)


def scored_as_a_batch(model, x: np.ndarray, tmp_path: Path) -> pd.DataFrame:
    source = tmp_path / "rows.parquet"
    frame(model, x).to_parquet(source)
    result = score_file(
        model, source, "parquet", tmp_path / "out.parquet", tmp_path / "errors.csv", chunk_rows=4000
    )
    assert result.rows_failed == 0
    return pd.read_parquet(tmp_path / "out.parquet")


def test_probabilities_are_probabilities(registry: Registry, tmp_path: Path) -> None:
    forest = forest_on_an_array()
    x = random_rows(4)
    before = float_graph_answers(forest, x, "probabilities")
    assert ((before < 0) | (before > 1)).any(axis=1).sum() > 0  # the bug, on the graph served before

    model = compiled(registry, tmp_path, "forest20", forest)
    labels, probabilities = model.runtime.predict(frame(model, x))
    assert ((probabilities < 0) | (probabilities > 1)).sum() == 0
    assert np.abs(probabilities.sum(axis=1) - 1).max() <= SUM_TOLERANCE
    assert np.abs(probabilities - forest.predict_proba(x)).max() <= 1e-12
    assert np.array_equal(labels, forest.predict(x))
    batch = scored_as_a_batch(model, x, tmp_path)
    columns = batch[[column for column in batch.columns if column.startswith("probability_")]].to_numpy()
    assert ((columns < 0) | (columns > 1)).sum() == 0
    assert np.abs(columns - forest.predict_proba(x)).max() <= 1e-12


@pytest.mark.parametrize("name", ["pipeline", "forest", "boosting"])
def test_regressors_within_1e_9_of_predict(registry: Registry, tmp_path: Path, name: str) -> None:
    estimator = regressors()[name]
    x = random_rows(5)
    expected = estimator.predict(
        x if name != "pipeline" else pd.DataFrame(x, columns=[f"f{i}" for i in range(WIDTH)])
    )
    scale = np.maximum(1, np.abs(expected))
    final = estimator[-1] if name == "pipeline" else estimator
    inputs = (
        estimator[:-1].transform(pd.DataFrame(x, columns=[f"f{i}" for i in range(WIDTH)]))
        if name == "pipeline"
        else x
    )
    before = float_graph_answers(final, np.asarray(inputs), "variable")[:, 0]
    assert (np.abs(before - expected) / scale).max() > REGRESSION_TOLERANCE  # the bug, served before

    model = compiled(registry, tmp_path, name, estimator)
    served, _ = model.runtime.predict(frame(model, x))
    assert (np.abs(served - expected) / scale).max() <= REGRESSION_TOLERANCE
    batch = scored_as_a_batch(model, x, tmp_path)["prediction"].to_numpy()
    assert (np.abs(batch - expected) / scale).max() <= REGRESSION_TOLERANCE
