"""Drift reports on the demo model: a reference of 20,000 demo customers (one seed), runs of 200,000
fresh ones (another seed), scored through the batch path (score_chunks) with a tally."""

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from modelyard import demo
from modelyard.batch.files import score_chunks
from modelyard.registry.store import ModelVersion, Registry
from modelyard.reports import drift, report
from modelyard.reports import profile as profiles
from modelyard.reports.tally import Tally
from modelyard.scoring.predict import LoadedModel
from modelyard.serving.load import load
from modelyard.tabular import Table, read_chunks

RUN_ROWS = 200_000


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelVersion, LoadedModel]:
    """The demo pipeline (fewer trees: its predictions matter here, not its accuracy), with a
    reference profile of 20,000 customers of seed 1."""
    folder = tmp_path_factory.mktemp("churn")
    training = demo.customers(5000, seed=7)
    pipeline = demo.build_pipeline().set_params(classifier__n_estimators=10)
    pipeline.fit(training[demo.NUMERIC + demo.CATEGORICAL], demo.churn_labels(training, seed=7))
    joblib.dump(pipeline, folder / "churn.joblib")
    version = Registry(folder / "models").register(folder / "churn.joblib", "churn")
    reference = demo.customers(20_000, seed=1)
    made, invalid = profiles.profile_rows(version, Table(frame=reference), "20,000 demo customers")
    assert invalid == 0 and made.rows == 20_000
    profiles.write(version, made)
    return version, load(version, runtime="sklearn")


def run(churn: tuple[ModelVersion, LoadedModel], frame: pd.DataFrame, tmp_path: Path) -> dict[str, Any]:
    version, model = churn
    source = tmp_path / "run.csv"
    frame.to_csv(source, index=False)
    profile, note = profiles.read(version)
    assert note is None
    tally = Tally(profile)
    with source.open("rb") as handle:
        result = score_chunks(
            model,
            read_chunks(handle, "csv", 50_000),
            tmp_path / "out.csv",
            tmp_path / "errors.jsonl",
            "csv",
            tally=tally,
        )
    return report.build(tally, result.rows_done, result.rows_failed, {"job_id": "test"})


def by_name(made: dict[str, Any]) -> dict[str, float]:
    return {item["name"]: item["psi"] for item in made["features"]}


def test_fresh_rows_of_the_same_kind_do_not_drift(churn: Any, tmp_path: Path) -> None:
    made = run(churn, demo.customers(RUN_ROWS, seed=2), tmp_path)
    assert made["rows"] == {"read": RUN_ROWS, "scored": RUN_ROWS, "invalid": 0}
    scores = by_name(made)
    assert set(scores) == set(demo.NUMERIC + demo.CATEGORICAL)
    assert max(scores.values()) < 0.02, scores
    assert made["prediction"]["psi"] < 0.02
    assert {item["status"] for item in made["features"]} == {"stable"}
    assert sum(made["features"][0]["run"]) == RUN_ROWS  # every scored row in one bin of each feature


def test_a_numeric_feature_shifted_by_one_standard_deviation_is_flagged_alone(
    churn: Any, tmp_path: Path
) -> None:
    fresh = demo.customers(RUN_ROWS, seed=2)
    fresh["monthly_charges"] += fresh["monthly_charges"].std()
    made = run(churn, fresh, tmp_path)
    scores = by_name(made)
    assert scores.pop("monthly_charges") > drift.MAJOR
    assert made["features"][0]["name"] == "monthly_charges"  # worst first
    assert made["features"][0]["status"] == "major"
    assert max(scores.values()) < 0.05, scores


def test_a_category_whose_share_doubles_is_flagged_alone(churn: Any, tmp_path: Path) -> None:
    fresh = demo.customers(RUN_ROWS, seed=2)
    rng = np.random.default_rng(3)
    # premium is 20% of the reference's plans: 40% here, the others' shares shrunk alike
    fresh["plan"] = rng.choice(demo.PLANS, RUN_ROWS, p=[0.375, 0.225, 0.4])
    made = run(churn, fresh, tmp_path)
    scores = by_name(made)
    assert scores.pop("plan") > drift.MODERATE
    assert max(scores.values()) < drift.MODERATE, scores
    plan = next(item for item in made["features"] if item["name"] == "plan")
    shares = dict(zip(plan["bins"], np.asarray(plan["run"]) / RUN_ROWS, strict=True))
    assert shares["premium"] == pytest.approx(0.4, abs=0.01)


def test_unseen_categories_and_missing_values_land_in_their_own_bins(churn: Any, tmp_path: Path) -> None:
    fresh = demo.customers(10_000, seed=2)
    fresh.loc[:999, "region"] = "atlantis"  # the encoder ignores unknown categories: scored with a warning
    fresh.loc[1000:1499, "tenure_months"] = np.nan  # not nullable in this model: invalid rows
    made = run(churn, fresh, tmp_path)
    region = next(item for item in made["features"] if item["name"] == "region")
    assert dict(zip(region["bins"], region["run"], strict=True))["unseen"] == 1000
    assert region["status"] == "major"  # 10% of a category the reference never had
    assert made["rows"]["invalid"] == 500
    assert made["invalid"] == [{"field": "tenure_months", "code": "missing_value", "rows": 500}]
    tenure = next(item for item in made["features"] if item["name"] == "tenure_months")
    assert tenure["bins"][-1] == "missing" and tenure["run"][-1] == 0  # invalid rows are not scored


def test_missing_values_a_model_accepts_are_counted_in_the_missing_bin(tmp_path: Path) -> None:
    from modelyard.reports.bins import numeric_bins

    bins = numeric_bins("x", [1.0, 2.0, 3.0, 4.0, np.nan])
    counts = bins.count(np.array([np.nan, np.nan, 1.0, 100.0]))
    assert counts[-1] == 2 and counts.sum() == 4 and counts[-2] == 1  # 100 falls in the open last bin
