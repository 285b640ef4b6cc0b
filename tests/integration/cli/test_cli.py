"""The modelyard command line, run as a user runs it: a separate process."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.preprocessing import StandardScaler

from tests import factories
from tests.server import run_cli


def test_register_promote_list_show(tmp_path: Path) -> None:
    artifact = factories.save(factories.classifier(), tmp_path / "clf.joblib")
    out = run_cli(
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
    same = run_cli(tmp_path, "models", "register", str(artifact), "--name", "churn").stdout
    assert "is already registered as churn version 1" in same and "nothing added" in same
    out = run_cli(
        tmp_path, "models", "register", str(artifact), "--name", "churn", "--promote", "--force-new"
    ).stdout
    assert "promoted churn version 2 to production" in out
    run_cli(tmp_path, "models", "promote", "churn", "1", "--alias", "staging")

    listed = run_cli(tmp_path, "models", "list").stdout
    assert "churn" in listed and "production=2" in listed and "staging=1" in listed
    shown = run_cli(tmp_path, "models", "show", "churn").stdout
    assert "v2 [production]" in shown and "color: string one of ['blue', 'green', 'red']" in shown
    payload = json.loads(run_cli(tmp_path, "models", "show", "churn", "--json").stdout)
    assert payload["versions"][0]["metrics"] == {"auc": 0.91}
    assert payload["versions"][0]["description"] == "first try"


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "models", "promote", "churn", "1", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"registry: {(tmp_path / 'models').resolve()} (MODELYARD_MODEL_DIR)",  # which folder, first
        "error: no model named 'churn'; registered models: none",
    ]
    bad_metric = run_cli(
        tmp_path, "models", "register", __file__, "--name", "x", "--metric", "auc", check=False
    )
    assert bad_metric.returncode == 2 and "expected NAME=NUMBER" in bad_metric.stderr


def test_corrupt_alias_is_reported_not_a_traceback(tmp_path: Path) -> None:
    artifact = factories.save(factories.classifier(), tmp_path / "clf.joblib")
    run_cli(tmp_path, "models", "register", str(artifact), "--name", "churn", "--promote")
    run_cli(tmp_path, "models", "promote", "churn", "1", "--alias", "staging")
    (tmp_path / "models" / "churn" / "aliases" / "staging.json").write_text("{oops")

    result = run_cli(tmp_path, "models", "list")
    assert "production=1" in result.stdout and "staging" not in result.stdout
    assert "staging.json cannot be read" in result.stderr and "Traceback" not in result.stderr
    assert "modelyard models promote churn VERSION --alias staging" in result.stderr


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (pickle.dumps({"not": "a model"}), "dict is neither a classifier nor a regressor"),
        (None, "StandardScaler is neither a classifier nor a regressor"),
        (b"\x00garbage bytes, not a pickle", "cannot be loaded"),
        ("truncated", "cannot be loaded"),
    ],
)
def test_registering_what_is_not_a_fitted_model_is_one_clear_line(tmp_path: Path, content, why) -> None:
    path = tmp_path / "thing.pkl"
    if content is None:
        factories.save(StandardScaler().fit([[1.0], [2.0]]), path)
    elif content == "truncated":
        whole = factories.save(factories.classifier(), tmp_path / "whole.pkl").read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    else:
        path.write_bytes(content)
    result = run_cli(tmp_path, "models", "register", str(path), "--name", "m", check=False)
    assert result.returncode == 1
    registry, error = result.stderr.strip().splitlines()  # the folder used, then one line of error
    assert registry.startswith("registry: ") and "Traceback" not in result.stderr
    assert error.startswith("error: ") and why in error


def test_first_hour_messages(tmp_path: Path) -> None:
    """Generated feature names are announced; models show says what production takes; a relative
    model folder is shown as the absolute one it is."""
    unnamed = factories.save(factories.array_regressor(), tmp_path / "unnamed.joblib")
    out = run_cli(tmp_path, "models", "register", str(unnamed), "--name", "price", "--promote").stdout
    assert "fitted without feature names: its inputs are called x0, x1, x2" in out

    strict = factories.save(factories.classifier(handle_unknown="error"), tmp_path / "strict.joblib")
    loose = factories.save(factories.classifier(seed=4), tmp_path / "loose.joblib")
    run_cli(tmp_path, "models", "register", str(strict), "--name", "churn", "--promote")
    run_cli(tmp_path, "models", "register", str(loose), "--name", "churn")
    shown = run_cli(tmp_path, "models", "show", "churn").stdout
    assert "input schema of version 1 (production)" in shown
    assert "color: string one of ['blue', 'green', 'red'] (others refused)" in shown

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = subprocess.run(
        [sys.executable, "-m", "modelyard", "models", "list"],
        cwd=elsewhere,
        env={**os.environ, "MODELYARD_MODEL_DIR": "models"},
        capture_output=True,
        text=True,
    )
    assert listed.stdout.strip() == f"no models registered in {elsewhere / 'models'}"
