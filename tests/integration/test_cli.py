"""The modelyard command line, run as a user runs it: a separate process."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
