"""The demo: a customer-churn classifier trained on deterministic synthetic data."""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelyard.compiled.choose import read_report
from modelyard.compiled.compile import compile_registered
from modelyard.fsutil import atomic_write_bytes
from modelyard.registry.store import Registry
from modelyard.reports import profile as profiles
from modelyard.tabular import Table

MODEL_NAME = "churn"
NUMERIC = ["tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]
CATEGORICAL = ["plan", "contract", "payment_method", "region"]
PLANS = ["basic", "standard", "premium"]
CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["card", "bank-transfer", "invoice", "wallet"]
REGIONS = ["north", "south", "east", "west"]


@dataclass
class DemoResult:
    version: int
    reused: bool
    metrics: dict[str, float]
    sample_path: Path | None
    """The sample written, if it was not there yet."""


def customers(rows: int, seed: int) -> pd.DataFrame:
    """Synthetic customers; the same seed always gives the same rows."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"C{seed:02d}-{i:06d}" for i in range(rows)],
            "tenure_months": rng.integers(0, 73, rows),
            "monthly_charges": rng.normal(65, 25, rows).clip(15, 150).round(2),
            "support_calls": rng.poisson(1.5, rows),
            "data_usage_gb": rng.gamma(2.0, 8.0, rows).round(1),
            "plan": rng.choice(PLANS, rows, p=[0.5, 0.3, 0.2]),
            "contract": rng.choice(CONTRACTS, rows, p=[0.55, 0.25, 0.2]),
            "payment_method": rng.choice(PAYMENTS, rows),
            "region": rng.choice(REGIONS, rows),
        }
    )


def drifted(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Customers unlike the training data: monthly charges one standard deviation (25) higher, and
    twice the share on the premium plan (40% instead of 20%)."""
    rng = np.random.default_rng(seed + 1)
    return frame.assign(
        monthly_charges=(frame["monthly_charges"] + 25).round(2),
        plan=rng.choice(PLANS, len(frame), p=[0.375, 0.225, 0.4]),
    )


def with_bad_rows(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """`count` rows spoiled as real exports spoil them, spread over the file: half with a tenure
    that is no number, half with no monthly charges."""
    spoiled = frame.astype({"tenure_months": object, "monthly_charges": object})
    rows = np.linspace(0, len(frame) - 1, count).astype(int) if count else np.empty(0, int)
    spoiled.loc[rows[::2], "tenure_months"] = "unknown"
    spoiled.loc[rows[1::2], "monthly_charges"] = None
    return spoiled


def churn_labels(frame: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    logit = (
        1.2
        - 0.05 * frame["tenure_months"]
        + 0.02 * (frame["monthly_charges"] - 65)
        + 0.45 * frame["support_calls"]
        + frame["contract"].map({"month-to-month": 0.9, "one-year": -0.4, "two-year": -1.4})
        + frame["payment_method"].map({"invoice": 0.4}).fillna(0.0)
        + rng.normal(0, 0.7, len(frame))
    )
    return np.where(rng.random(len(frame)) < 1 / (1 + np.exp(-logit)), "yes", "no")


def build_pipeline() -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    forest = RandomForestClassifier(n_estimators=100, max_depth=10, random_state=0, n_jobs=-1)
    return Pipeline([("preprocess", preprocess), ("classifier", forest)])


def train(registry: Registry, data_dir: Path, rows: int = 5000) -> DemoResult:
    """Train, register (reusing an identical latest version) and promote the demo; write a sample."""
    frame = customers(rows, seed=7)
    labels = churn_labels(frame, seed=7)
    features = frame[NUMERIC + CATEGORICAL]
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.2, random_state=0, stratify=labels
    )
    pipeline = build_pipeline().fit(x_train, y_train)
    proba = pipeline.predict_proba(x_test)[:, list(pipeline.classes_).index("yes")]
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, pipeline.predict(x_test))), 4),
        "roc_auc": round(float(roc_auc_score(y_test == "yes", proba)), 4),
    }
    with tempfile.TemporaryDirectory() as tmp:
        artifact = Path(tmp) / "churn.joblib"
        joblib.dump(pipeline, artifact)
        version, reused = _register_once(registry, artifact, metrics)
    model_version = registry.get(MODEL_NAME, version)
    if read_report(model_version) is None:
        compile_registered(model_version, x_test)  # verified on the holdout rows
    if profiles.read(model_version)[0] is None:
        profile, _ = profiles.profile_rows(model_version, Table(frame=x_train), "the demo's training data")
        profiles.write(model_version, profile)
    registry.promote(MODEL_NAME, version)
    return DemoResult(version=version, reused=reused, metrics=metrics, sample_path=write_sample(data_dir))


def write_sample(data_dir: Path) -> Path | None:
    """200 new customers to score, in <data>/incoming/churn-sample.csv, where it is not yet; None
    when it is. Written once, never again: a file rewritten would wait another
    MODELYARD_FILE_SETTLE_S before a schedule scores it."""
    path = data_dir / "incoming" / "churn-sample.csv"
    if path.exists():
        return None
    atomic_write_bytes(path, customers(200, seed=11).to_csv(index=False).encode())
    return path


def _register_once(registry: Registry, artifact: Path, metrics: dict[str, float]) -> tuple[int, bool]:
    registered = registry.register(
        artifact,
        MODEL_NAME,
        description="Demo: churn of synthetic customers (random forest on scaled and one-hot features)",
        metrics=metrics,
    )
    return registered.version, registered.reused
