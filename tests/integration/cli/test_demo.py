"""The README's promise: `modelyard demo train && modelyard serve`, then the model's own predict and
predict_proba, for records and for CSV, Parquet and JSON Lines files: to the last digit under the
scikit-learn runtime, and under the compiled one (which the demo gets) the same labels and
probabilities within the verified 1e-5."""

import io
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from modelyard.registry.store import Registry
from modelyard.tabular import write_table
from tests import factories
from tests.server import ApiServer, run_cli

TOLERANCE = 1e-5


@pytest.fixture(scope="module", params=["auto", "sklearn"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiServer, object, pd.DataFrame]]:
    root = tmp_path_factory.mktemp("demo")
    assert "churn registered as version 1, promoted to production" in run_cli(root, "demo", "train").stdout
    again = run_cli(root, "demo", "train").stdout
    assert "already registered as version 1" in again, "same data, same model: no new version"
    registry = Registry(root / "models")
    model = factories.load_as_served(registry.get("churn", 1).artifact)
    sample = pd.read_csv(root / "data" / "incoming" / "churn-sample.csv")
    server = ApiServer(registry.root, root / "api.log", runtime=request.param).wait()
    server.root = root
    server.runtime = request.param
    served = server.client.get("/v1/models/churn").json()["versions"][0]["runtime"]
    assert served["serving"] == ("onnx" if request.param == "auto" else "sklearn"), served
    yield server, model, sample
    server.stop()


@pytest.mark.parametrize("rows", [1, 100])
def test_records(demo, rows: int) -> None:
    server, model, sample = demo
    customers = sample.drop(columns="customer_id")[:rows]
    response = server.client.post(
        "/v1/models/churn/predict", json={"instances": customers.to_dict(orient="records")}
    )
    body = response.json()
    assert response.status_code == 200, response.text
    assert (body["model"], body["version"], body["classes"]) == ("churn", 1, ["no", "yes"])
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["predictions"] == model.predict(customers).tolist()
    assert_probabilities(server, np.array(body["probabilities"]), model.predict_proba(customers))


def assert_probabilities(server: ApiServer, served: np.ndarray, expected: np.ndarray) -> None:
    if server.runtime == "sklearn":
        assert np.array_equal(served, expected), "every digit survives"
    else:
        assert np.abs(served - expected).max() <= TOLERANCE


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_files(demo, fmt: str) -> None:
    server, model, sample = demo
    response = server.client.post(
        "/v1/models/churn/predict-file",
        files={"file": (f"churn-sample.{fmt}", write_table(sample, fmt))},
    )
    assert response.status_code == 200, response.text
    readers = {
        "csv": pd.read_csv,
        "parquet": pd.read_parquet,
        "jsonl": lambda b: pd.read_json(b, lines=True, precise_float=True),
    }
    scored = readers[fmt](io.BytesIO(response.content))
    assert len(scored) == len(sample) == 200
    assert scored["customer_id"].tolist() == sample["customer_id"].tolist()
    assert scored["prediction"].tolist() == model.predict(sample).tolist()
    probabilities = scored[["probability_no", "probability_yes"]].to_numpy()
    assert_probabilities(server, probabilities, model.predict_proba(sample))


def test_score_a_file_locally(demo) -> None:
    """`modelyard score` runs the batch path in-process, no Redis: same answers, a summary line."""
    server, model, sample = demo
    root = server.root
    broken = root / "data" / "broken.csv"
    text = (root / "data" / "incoming" / "churn-sample.csv").read_text().splitlines()
    text[5] = text[5].replace(text[5].split(",")[1], "soon", 1)  # tenure_months of data row 5
    broken.write_text("\n".join(text) + "\n")
    env = {"MODELYARD_RUNTIME": server.runtime}
    output = str(root / "out.parquet")
    result = run_cli(root, "score", str(broken), "--model", "churn", "--output", output, env=env)
    assert "scored 199 rows with churn version 1" in result.stdout
    assert "1 invalid rows set aside" in result.stdout
    scored = pd.read_parquet(root / "out.parquet")
    kept = sample.drop(index=4).reset_index(drop=True)
    assert scored["prediction"].tolist() == model.predict(kept).tolist()
    assert_probabilities(
        server, scored[["probability_no", "probability_yes"]].to_numpy(), model.predict_proba(kept)
    )
    errors = (root / "out.errors.jsonl").read_text().splitlines()
    assert (
        len(errors) == 1
        and '"row": 4, "line": 6, "field": "tenure_months", "code": "wrong_type"' in errors[0]
    )

    run_cli(
        root,
        "score",
        str(broken),
        "--model",
        "churn",
        "--output",
        f"{root}/folder/",
        "--format",
        "jsonl",
        env=env,
    )
    assert sorted(p.name for p in (root / "folder").iterdir()) == [
        "broken.errors.jsonl",
        "broken.predictions.jsonl",
    ]


def test_the_sample_is_written_once(tmp_path) -> None:
    """The tour runs the nightly schedule right after `make up`: a sample rewritten by every
    `demo train` would never have settled."""
    run_cli(tmp_path, "demo", "train", "--rows", "300")
    sample = tmp_path / "data" / "incoming" / "churn-sample.csv"
    written, content = sample.stat().st_mtime_ns, sample.read_bytes()
    assert "registered as version 2" in run_cli(tmp_path, "demo", "train", "--rows", "400").stdout
    assert (sample.stat().st_mtime_ns, sample.read_bytes()) == (written, content)


def test_demo_customers_new_drifted_and_spoiled(tmp_path) -> None:
    """`demo customers`: the same seed gives the same rows; --drift moves two features the way the
    README's report shows; --bad-rows spoils that many rows, half of each kind."""
    plain = tmp_path / "plain.csv"
    run_cli(tmp_path, "demo", "customers", "--rows", "2000", "--seed", "3", "-o", str(plain))
    again = tmp_path / "again.parquet"
    run_cli(tmp_path, "demo", "customers", "--rows", "2000", "--seed", "3", "-o", str(again))
    base = pd.read_csv(plain)
    pd.testing.assert_frame_equal(base, pd.read_parquet(again), check_dtype=False)
    moved = tmp_path / "drifted.csv"
    args = ["--rows", "2000", "--seed", "3", "--drift", "--bad-rows", "10", "-o", str(moved)]
    assert "2,000 drifted demo customers" in run_cli(tmp_path, "demo", "customers", *args).stdout
    drifted = pd.read_csv(moved)
    assert (drifted["tenure_months"] == "unknown").sum() == 5 and drifted["monthly_charges"].isna().sum() == 5
    charges = pd.to_numeric(drifted["monthly_charges"]).dropna()
    assert charges.mean() == pytest.approx(base["monthly_charges"].mean() + 25, abs=1)
    assert (drifted["plan"] == "premium").mean() == pytest.approx(0.4, abs=0.03)
