"""The README's promise: `modelyard demo train && modelyard serve`, then predictions that equal the
model's own predict and predict_proba, for records and for CSV, Parquet and JSON Lines files."""

import io
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from modelyard.registry import Registry
from modelyard.tabular import write_table
from tests import factories
from tests.server import ApiServer, run_cli


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, object, pd.DataFrame]]:
    root = tmp_path_factory.mktemp("demo")
    assert "churn registered as version 1, promoted to production" in run_cli(root, "demo", "train").stdout
    again = run_cli(root, "demo", "train").stdout
    assert "already registered as version 1" in again, "same data, same model: no new version"
    registry = Registry(root / "models")
    model = factories.load_as_served(registry.get("churn", 1).artifact)
    sample = pd.read_csv(root / "data" / "incoming" / "churn-sample.csv")
    server = ApiServer(registry.root, root / "api.log").wait()
    server.root = root
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
    assert np.array_equal(np.array(body["probabilities"]), model.predict_proba(customers))


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
    assert np.array_equal(probabilities, model.predict_proba(sample)), "every digit survives the file"


def test_score_a_file_locally(demo) -> None:
    """`modelyard score` runs the batch path in-process, no Redis: same answers, a summary line."""
    server, model, sample = demo
    root = server.root
    broken = root / "data" / "broken.csv"
    text = (root / "data" / "incoming" / "churn-sample.csv").read_text().splitlines()
    text[5] = text[5].replace(text[5].split(",")[1], "soon", 1)  # tenure_months of data row 5
    broken.write_text("\n".join(text) + "\n")
    result = run_cli(root, "score", str(broken), "--model", "churn", "--output", str(root / "out.parquet"))
    assert "scored 199 rows with churn version 1" in result.stdout
    assert "1 invalid rows set aside" in result.stdout
    scored = pd.read_parquet(root / "out.parquet")
    kept = sample.drop(index=4).reset_index(drop=True)
    assert scored["prediction"].tolist() == model.predict(kept).tolist()
    assert np.array_equal(scored[["probability_no", "probability_yes"]].to_numpy(), model.predict_proba(kept))
    errors = (root / "out.errors.jsonl").read_text().splitlines()
    assert len(errors) == 1 and '"row": 5, "field": "tenure_months", "code": "wrong_type"' in errors[0]

    run_cli(
        root, "score", str(broken), "--model", "churn", "--output", f"{root}/folder/", "--format", "jsonl"
    )
    assert sorted(p.name for p in (root / "folder").iterdir()) == [
        "broken.errors.jsonl",
        "broken.predictions.jsonl",
    ]
