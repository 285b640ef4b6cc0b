"""The modelyard command line, run as a user runs it: a separate process."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd

from modelyard.registry import Registry
from tests import factories


def run(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MODELYARD_MODEL_DIR": str(tmp_path / "models"),
        "MODELYARD_DATA_DIR": str(tmp_path / "data"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_register_promote_list_show(tmp_path: Path) -> None:
    artifact = factories.save(factories.classifier(), tmp_path / "clf.joblib")
    out = run(
        tmp_path,
        "models",
        "register",
        str(artifact),
        "--name",
        "churn",
        "--description",
        "first try",
        "--metric",
        "auc=0.91",
    ).stdout
    assert "registered churn version 1" in out
    out = run(tmp_path, "models", "register", str(artifact), "--name", "churn", "--promote").stdout
    assert "promoted churn version 2 to production" in out
    run(tmp_path, "models", "promote", "churn", "1", "--alias", "staging")

    listed = run(tmp_path, "models", "list").stdout
    assert "churn" in listed and "production=2" in listed and "staging=1" in listed
    shown = run(tmp_path, "models", "show", "churn").stdout
    assert "v2 [production]" in shown and "color: string one of ['blue', 'green', 'red']" in shown
    payload = json.loads(run(tmp_path, "models", "show", "churn", "--json").stdout)
    assert payload["versions"][0]["metrics"] == {"auc": 0.91}
    assert payload["versions"][0]["description"] == "first try"


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    result = run(tmp_path, "models", "promote", "churn", "1", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no model named 'churn'; registered models: none"
    bad_metric = run(tmp_path, "models", "register", __file__, "--name", "x", "--metric", "auc", check=False)
    assert bad_metric.returncode == 2 and "expected NAME=NUMBER" in bad_metric.stderr


def test_demo_train_then_serve_the_sample(tmp_path: Path, api_server) -> None:
    out = run(tmp_path, "demo", "train").stdout
    assert "churn registered as version 1, promoted to production" in out
    again = run(tmp_path, "demo", "train").stdout
    assert "already registered as version 1" in again, "same data, same model: no new version"

    sample = tmp_path / "data" / "incoming" / "churn-sample.csv"
    registry = Registry(tmp_path / "models")
    model = joblib.load(registry.get("churn", 1).artifact)
    server = api_server(registry.root)
    response = server.client.post(
        "/v1/models/churn/predict-file", files={"file": (sample.name, sample.read_bytes())}
    )
    assert response.status_code == 200, response.text
    scored = pd.read_csv(io.BytesIO(response.content))
    customers = pd.read_csv(sample)
    assert len(scored) == len(customers) == 200
    assert scored["prediction"].tolist() == model.predict(customers).tolist()
    assert registry.get("churn", 1).metadata["metrics"]["roc_auc"] > 0.7
