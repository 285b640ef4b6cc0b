"""Bins, drift scores, tallies and the profile's seal, on small hand-made cases."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.registry.store import Registry
from modelyard.reports import drift
from modelyard.reports import profile as profiles
from modelyard.reports.bins import Bins, categorical_bins, numeric_bins
from modelyard.reports.tally import Tally
from modelyard.tabular import Table
from tests import factories


def test_numeric_bins_are_deciles_with_ties_merged() -> None:
    bins = numeric_bins("calls", [0, 0, 0, 0, 0, 1, 1, 1, 2, 3] * 10)
    assert bins.edges == (0.0, 1.0, 2.0)  # ten deciles, four distinct values
    assert bins.labels == ["(-inf, 0]", "(0, 1]", "(1, 2]", "(2, inf)", "missing"]
    assert bins.count(np.array([0, 0.5, 1, 2, 2.5, 7, np.nan])).tolist() == [1, 2, 1, 2, 1]
    assert bins.count(pd.Series(["1", "x", None], dtype=object)).tolist() == [0, 1, 0, 0, 2]


def test_categorical_bins_most_frequent_first_then_unseen_and_missing() -> None:
    bins = categorical_bins("color", ["red", "blue", "red", None, "green", "red", "blue"])
    assert bins.categories == ("red", "blue", "green")
    assert bins.labels == ["red", "blue", "green", "unseen", "missing"]
    values = np.array(["blue", "pink", None, np.nan, "red", "pink"], dtype=object)
    assert bins.count(values).tolist() == [1, 1, 0, 2, 2]
    classes = categorical_bins("prediction", None, known=[np.int64(0), np.int64(1)])
    assert classes.categories == (0, 1) and classes.count(np.array([1, 1, 0, 2])).tolist() == [1, 2, 1, 0]


def test_bins_survive_json() -> None:
    bins = numeric_bins("x", np.arange(100.0))
    again = Bins.from_dict(json.loads(json.dumps(bins.to_dict())))
    assert again == bins and again.count([5.0, 95.0]).tolist() == bins.count([5.0, 95.0]).tolist()


def test_psi_by_hand() -> None:
    reference, run = [50, 50], [25, 75]
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert drift.psi(reference, run) == pytest.approx(expected, abs=1e-6)
    assert drift.psi([10, 10, 0], [10, 10, 0]) == 0.0  # empty on both sides adds nothing
    one_sided = drift.psi([100, 0], [90, 10])
    assert one_sided == pytest.approx(
        (0.9 - 1) * math.log(0.9) + (0.1 - 1e-4) * math.log(0.1 / 1e-4), abs=1e-6
    )
    assert drift.psi([1, 1], [0, 0]) is None
    assert [drift.status(v) for v in (None, 0.05, 0.1, 0.2, 0.25, 0.3)] == [
        "no rows",
        "stable",
        "stable",
        "moderate",
        "moderate",
        "major",
    ]


def test_tallies_add_up_like_one_run(tmp_path: Path) -> None:
    version = Registry(tmp_path).register(factories.save(factories.classifier(), tmp_path / "m.joblib"), "m")
    made, _ = profiles.profile_rows(version, Table(frame=factories.frame(300, seed=1)), "test")
    rows = factories.frame(100, seed=2)
    predictions = np.where(rows["age"] > 40, "yes", "no")
    whole, first, second = Tally(made), Tally(made), Tally(made)
    whole.add_rows(rows, predictions)
    first.add_rows(rows.iloc[:30], predictions[:30])
    second.add_rows(rows.iloc[30:], predictions[30:])
    problem = {"field": "age", "code": "missing_value", "other_problems": [{"field": "color", "code": "x"}]}
    whole.add_problems([problem, problem])
    first.add_problems([problem])
    second.add_problems([problem])
    joined = Tally(made)
    joined.merge(json.loads(json.dumps(first.to_dict())))
    joined.merge(json.loads(json.dumps(second.to_dict())))
    assert {**joined.to_dict(), "seconds": 0} == {**whole.to_dict(), "seconds": 0}  # times aside
    assert whole.to_dict()["invalid"] == [["age", "missing_value", 2], ["color", "x", 2]]


def test_a_profile_is_used_only_for_its_own_artifact_unchanged(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    first = registry.register(factories.save(factories.classifier(seed=0), tmp_path / "a.joblib"), "m")
    second = registry.register(factories.save(factories.classifier(seed=1), tmp_path / "b.joblib"), "m")
    assert profiles.read(first) == (None, profiles.read(first)[1])
    assert "has no reference profile" in str(profiles.read(first)[1])
    made, _ = profiles.profile_rows(first, Table(frame=factories.frame(200, seed=3)), "test")
    profiles.write(first, made)
    assert profiles.read(first)[0] == made
    (second.path / profiles.PROFILE).write_bytes((first.path / profiles.PROFILE).read_bytes())
    assert profiles.read(second)[0] is None and "made for another artifact" in str(profiles.read(second)[1])
