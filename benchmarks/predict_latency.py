"""Latency and throughput of the real-time API on the demo model, and of a hot swap under load.

Starts `modelyard serve` on a free port (pinned to core 0 when `taskset` exists) against a fresh
registry with the demo model, drives it from this process (core 1) over HTTP, prints tables.

    .venv/bin/python benchmarks/predict_latency.py [--seconds 5]
"""

import argparse
import io
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import pandas as pd
from pinned_server import start_server

from modelyard import demo
from modelyard.registry.store import Registry

ROOT = Path(__file__).resolve().parents[1]


def drive(send: Callable[[httpx.Client], httpx.Response], url: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    failures = 0
    stop = time.monotonic() + seconds
    first_seen: dict[int, float] = {}  # model version -> when it first answered

    def loop() -> None:
        nonlocal failures
        with httpx.Client(base_url=url, timeout=60) as client:
            while time.monotonic() < stop:
                started = time.perf_counter()
                response = send(client)
                latencies.append(time.perf_counter() - started)
                failures += response.status_code != 200
                version = int(response.headers.get("x-model-version") or response.json().get("version", 0))
                first_seen.setdefault(version, time.monotonic())

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**summarize(latencies, failures, seconds), "first_seen": first_seen}


def summarize(latencies: list[float], failures: int, seconds: float) -> dict:
    ordered = sorted(latencies) or [float("nan")]

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {
        "requests": len(latencies),
        "failed": failures,
        "req/s": len(latencies) / seconds,
        "p50 ms": pct(0.50),
        "p95 ms": pct(0.95),
        "p99 ms": pct(0.99),
        "max ms": ordered[-1] * 1000,
    }


def print_table(title: str, rows: list[tuple[str, dict]]) -> None:
    columns = [column for column in rows[0][1] if column != "first_seen"]
    print(f"\n{title}")
    print(f"| {'scenario':<38} | " + " | ".join(f"{c:>8}" for c in columns) + " |")
    print(f"|{'-' * 40}|" + "|".join("-" * 10 for _ in columns) + "|")
    for name, row in rows:
        cells = " | ".join(
            f"{row[c]:>8.1f}" if isinstance(row[c], float) else f"{row[c]:>8}" for c in columns
        )
        print(f"| {name:<38} | {cells} |")


def in_process_n_jobs(model_path: Path, record: pd.DataFrame) -> list[tuple[str, dict]]:
    """The reason the API pins n_jobs=1: one-row predictions of a 100-tree forest."""
    rows = []
    for n_jobs in (-1, 1):
        model = joblib.load(model_path)
        model.set_params(classifier__n_jobs=n_jobs)
        latencies = []
        for _ in range(200):
            started = time.perf_counter()
            model.predict_proba(record)
            latencies.append(time.perf_counter() - started)
        rows.append((f"predict_proba, 1 row, n_jobs={n_jobs}", summarize(latencies, 0, sum(latencies))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each scenario.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = Registry(root / "models")
        demo.train(registry, root / "data")
        sample = pd.read_csv(root / "data" / "incoming" / "churn-sample.csv")
        one_row = sample.drop(columns="customer_id")[:1]
        print_table(
            "In-process, no HTTP, all cores", in_process_n_jobs(registry.get("churn", 1).artifact, one_row)
        )
        records = sample.drop(columns="customer_id").to_dict(orient="records")
        upload = pd.concat([sample] * 5).to_csv(index=False).encode()
        port = 18000 + os.getpid() % 1000
        url = f"http://127.0.0.1:{port}"
        server = start_server(registry.root, port, root / "api.log", {"MODELYARD_LOG_LEVEL": "WARNING"})
        try:
            path = "/v1/models/churn/predict"
            scenarios = {
                "predict, 1 record, 1 client": (lambda c: c.post(path, json={"instances": records[:1]}), 1),
                "predict, 1 record, 4 clients": (lambda c: c.post(path, json={"instances": records[:1]}), 4),
                "predict, 100 records, 1 client": (
                    lambda c: c.post(path, json={"instances": records[:100]}),
                    1,
                ),
                "predict-file, 1000-row CSV, 1 client": (
                    lambda c: c.post(f"{path}-file", files={"file": ("s.csv", io.BytesIO(upload))}),
                    1,
                ),
            }
            rows = [
                (name, drive(send, url, clients, args.seconds)) for name, (send, clients) in scenarios.items()
            ]
            print_table("Real-time API, demo churn model (RandomForest, 100 trees)", rows)

            single = scenarios["predict, 1 record, 1 client"][0]
            rows = [("steady, 2 clients", drive(single, url, 2, 3.0))]
            demo.train(registry, root / "data", rows=6000)  # version 2, promoted: the API swaps
            promoted_at = time.monotonic()
            rows.append(("during swap to v2, 2 clients", drive(single, url, 2, 3.0)))
            print_table("Hot swap under load (the 3 s window right after promotion)", rows)
            swapped_at = rows[1][1]["first_seen"].get(2)
            delay = f"{swapped_at - promoted_at:.2f} s" if swapped_at else "not within 3 s"
            print(f"\nfirst answer from version 2: {delay} after promotion")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
