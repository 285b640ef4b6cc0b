"""The compiled runtime: used only where it computes what scikit-learn computes, and gated like the
pickle. Each model below is compiled, then its ONNX runtime is compared with scikit-learn on the
verification set and on 10,000 fresh random rows: the same labels, probabilities within 1e-5,
regression outputs within 1e-9 * max(1, |value|)."""

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelyard import demo
from modelyard.compiled import choose as compiled
from modelyard.compiled.compile import bulk_runtime, compile_registered
from modelyard.compiled.verify import input_rows
from modelyard.errors import AlreadyCompiled, ArtifactTampered, RuntimeUnavailable
from modelyard.registry.store import ModelVersion, Registry
from modelyard.scoring.runtimes import REGRESSION_TOLERANCE, TOLERANCE
from modelyard.serving import load as loading
from tests import factories

FEATURES = [f"f{i}" for i in range(6)]


def numbers(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(FEATURES))) * [1, 10, 100, 0.1, 5, 1], columns=FEATURES)


def churn_pipeline():
    data = demo.customers(3000, seed=1)
    return demo.build_pipeline().fit(data[demo.NUMERIC + demo.CATEGORICAL], demo.churn_labels(data, 1))


def regression_pipeline():
    data = numbers(2000, seed=1)
    target = data["f0"] * 30 + data["f1"] ** 2 + data["f2"] + 500
    return make_pipeline(
        StandardScaler(), RandomForestRegressor(n_estimators=30, max_depth=8, random_state=0)
    ).fit(data, target)


def boosting_classifier():
    data = numbers(2000, seed=2)
    labels = np.where(data["f0"] * data["f3"] + data["f1"] / 10 > 0, "up", "down")
    return GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0).fit(data, labels)


MODELS = {
    "churn": (churn_pipeline, lambda seed: demo.customers(10_000, seed)[demo.NUMERIC + demo.CATEGORICAL]),
    "price": (regression_pipeline, lambda seed: numbers(10_000, seed)),
    "trend": (boosting_classifier, lambda seed: numbers(10_000, seed)),
}


def register(registry: Registry, tmp_path: Path, name: str, estimator) -> ModelVersion:
    return registry.register(factories.save(estimator, tmp_path / f"{name}.joblib"), name)


def edit_report(version: ModelVersion, edit: Callable[[dict], object]) -> None:
    path = version.path / "compiled.json"
    report = json.loads(path.read_text())
    edit(report)
    os.chmod(path, 0o644)
    path.write_text(json.dumps(report))


def assert_same_answers(model, estimator, rows: pd.DataFrame) -> None:
    labels, values = model.runtime.predict(rows)
    if values is None:  # a regressor
        expected = estimator.predict(rows)
        assert np.all(np.abs(labels - expected) <= REGRESSION_TOLERANCE * np.maximum(1, np.abs(expected)))
        return
    assert np.array_equal(labels, estimator.predict(rows))
    assert np.abs(values - estimator.predict_proba(rows)).max() <= TOLERANCE


@pytest.mark.parametrize("name", list(MODELS))
def test_the_compiled_runtime_answers_as_scikit_learn(registry: Registry, tmp_path: Path, name: str) -> None:
    build, fresh_rows = MODELS[name]
    estimator = build()
    version = register(registry, tmp_path, name, estimator)
    sample = fresh_rows(7).iloc[:500]
    report = compile_registered(version, sample)
    assert report["runtime"] == "onnx", report["reason"]
    assert report["graph"] == "whole" and report["batch"]["runtime"] in ("onnx", "sklearn")
    assert report["sha256"] == hashlib.sha256((version.path / "model.onnx").read_bytes()).hexdigest()
    assert report["reason"].startswith("verified on ")

    model = loading.load(version, n_jobs=1)
    assert model.runtime.name == "onnx"
    verification = pd.concat(
        [rows for _, rows in input_rows(version.schema, sample, np.random.default_rng(0))], ignore_index=True
    )
    assert_same_answers(model, estimator, verification)
    assert_same_answers(model, estimator, fresh_rows(8))


def test_a_model_that_cannot_be_converted_keeps_scikit_learn(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path, "fragile", factories.FragileRegressor().fit([[0.0, 0.0]], [0.0]))
    report = compile_registered(version)
    assert report["runtime"] == "sklearn" and "model.onnx" not in os.listdir(version.path)
    assert report["reason"].startswith("not converted to ONNX: ")
    assert "FragileRegressor" in report["reason"]
    model = loading.load(version)
    assert (model.runtime.name, model.runtime_reason) == ("sklearn", report["reason"])
    with pytest.raises(RuntimeUnavailable) as caught:
        loading.load(version, runtime="onnx")
    assert "has no verified compiled runtime, and MODELYARD_RUNTIME=onnx asks for one" in caught.value.message


def test_a_tampered_graph_is_refused_by_the_gate(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path, "trend", boosting_classifier())
    compile_registered(version)
    graph = version.path / "model.onnx"
    os.chmod(graph, 0o644)
    graph.write_bytes(graph.read_bytes()[:-8] + b"\x00" * 8)
    with pytest.raises(ArtifactTampered) as caught:
        loading.load(version)
    assert f"{graph} has SHA-256" in caught.value.message
    assert "modelyard models compile trend 1 --again" in caught.value.message
    assert loading.load(version, runtime="sklearn").runtime.name == "sklearn"  # the gate is per runtime


def test_compiling_adds_files_and_rewrites_nothing(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path, "trend", boosting_classifier())
    before = {path.name: path.read_bytes() for path in version.path.iterdir()}
    compile_registered(version)
    after = {path.name: path.read_bytes() for path in version.path.iterdir()}
    assert set(after) - set(before) == {"model.onnx", "compiled.json"}
    assert all(after[name] == data for name, data in before.items())
    with pytest.raises(AlreadyCompiled, match="pass --again"):
        compile_registered(version)
    assert compile_registered(version, again=True)["runtime"] == "onnx"


def test_another_onnxruntime_release_falls_back_to_scikit_learn(registry: Registry, tmp_path: Path) -> None:
    version = register(registry, tmp_path, "trend", boosting_classifier())
    compile_registered(version)
    edit_report(version, lambda report: report["libraries"].update(onnxruntime="0.1.0"))
    choice = compiled.choose(version, "auto")
    assert choice.realtime == "sklearn"
    assert choice.reason.startswith("verified with onnxruntime 0.1.0, this process runs ")
    assert choice.reason.endswith("modelyard models compile trend 1 --again")


def test_files_go_to_onnx_only_when_it_is_clearly_faster_on_big_chunks() -> None:
    assert bulk_runtime({"sklearn": 100_000, "onnx": 114_000}) == "sklearn"
    assert bulk_runtime({"sklearn": 100_000, "onnx": 115_000}) == "onnx"
    assert bulk_runtime({"sklearn": 100_000, "onnx": 60_000}) == "sklearn"


def test_a_regressor_verified_under_the_old_tolerance_is_served_by_scikit_learn(
    registry: Registry, tmp_path: Path
) -> None:
    version = register(registry, tmp_path, "price", regression_pipeline())
    compile_registered(version)
    edit_report(version, lambda report: report.pop("tolerances"))  # as compiled before the 1e-9 rule
    choice = compiled.choose(version, "auto")
    assert choice.realtime == "sklearn"
    assert choice.reason.startswith("verified within 1e-5 of scikit-learn, where regressors are now held")
    assert choice.reason.endswith("modelyard models compile price 1 --again")
    assert compile_registered(version, again=True)["runtime"] == "onnx"
    assert compiled.choose(version, "auto").realtime == "onnx"


def test_requests_from_the_measured_size_go_to_the_runtime_faster_there(
    registry: Registry, tmp_path: Path
) -> None:
    version = register(registry, tmp_path, "price", regression_pipeline())
    sample = numbers(600, seed=9)
    report = compile_registered(version, sample)
    assert report["batch"]["timed_on"] == "the 600 sample rows"
    edit_report(version, lambda report: report["batch"].update(runtime="sklearn", from_rows=256))
    model = loading.load(version, n_jobs=1)
    assert model.bulk_from_rows == 256
    names = {rows: model.runtime_for(bulk=False, rows=rows).name for rows in (1, 255, 256, 5000)}
    assert names == {1: "onnx", 255: "onnx", 256: "sklearn", 5000: "sklearn"}
    assert model.runtime_for(bulk=True).name == "sklearn"
    assert loading.load(version, runtime="onnx").runtime_for(bulk=False, rows=5000).name == "onnx"
    edit_report(version, lambda report: report["batch"].pop("from_rows"))  # compiled before: never
    assert loading.load(version, n_jobs=1).runtime_for(bulk=False, rows=5000).name == "onnx"
