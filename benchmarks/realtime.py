"""Real-time throughput and latency: each runtime of the API next to the in-process floor.

The server (`modelyard serve`, one process) is pinned to core 0 and `wrk` to core 1. For the demo
churn pipeline and a 100-tree forest on 20 numeric features (fit on a DataFrame), under the
scikit-learn runtime without and with micro-batching and under the compiled runtime, it measures
single-record requests at 1 and 16 connections (req/s, p50, p99) and 1000-record requests at 4
connections (rows/s). The floor is `predict_proba` in process on core 0, no HTTP: 1 row (as req/s,
1 / its latency) and 1000 rows (rows/s), measured again before each server runs, since this
machine's speed drifts over minutes. Ratios to the floor are what a noisy machine cannot move.

    .venv/bin/python benchmarks/realtime.py [--seconds 3 --rounds 3]   # needs wrk (apt install wrk)
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from pinned_server import LOAD_CORE, SERVER_CORE, start_server
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from modelyard import demo
from modelyard.registry.store import Registry

CONFIGS = {  # name -> server environment
    "scikit-learn": {"MODELYARD_RUNTIME": "sklearn", "MODELYARD_MICROBATCH": "false"},
    "scikit-learn, micro-batched": {"MODELYARD_RUNTIME": "sklearn", "MODELYARD_MICROBATCH": "true"},
    "compiled (auto)": {"MODELYARD_RUNTIME": "auto", "MODELYARD_MICROBATCH": "true"},
}
LOADS = {  # name -> (records per request, connections)
    "1 record, 1 conn": (1, 1),
    "1 record, 16 conns": (1, 16),
    "1000 records, 4 conns": (1000, 4),
}
TARGETS = [  # (config, load, figure, at least / at most, multiple of the floor) on the forest
    ("compiled (auto)", "1 record, 16 conns", "req/s", ">=", 11.4),
    ("compiled (auto)", "1 record, 1 conn", "p50", "<=", 0.28),
    ("compiled (auto)", "1000 records, 4 conns", "rows/s", ">=", 1.72),  # MLServer batching: 85,722 / 49,966
    ("scikit-learn", "1 record, 1 conn", "req/s", ">=", 0.83),
    ("scikit-learn, micro-batched", "1 record, 16 conns", "req/s", ">=", 3.8),
]


@dataclass
class Result:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    rows_per_request: int
    errors: int
    floor: "Floor"
    """The in-process floor, measured just before this load ran."""

    @property
    def rows_per_s(self) -> float:
        return self.requests_per_s * self.rows_per_request


@dataclass
class Floor:
    """`predict_proba` in process: the latency of 1 row (ms), the rows per second of 1000 rows."""

    one_ms: float
    rows_per_s: float


def forest(root: Path) -> tuple[Path, pd.DataFrame]:
    """The peers' model (../shared/bench-peers/make_model.py): RandomForestClassifier(100 trees) on
    20 numeric features f0..f19, fit on a frame; requests carry its first training rows."""
    x, y = make_classification(n_samples=20_000, n_features=20, n_informative=10, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(20)])
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(frame, y)
    path = root / "forest.joblib"
    joblib.dump(model, path)
    frame.sample(2000, random_state=1).to_csv(root / "forest-sample.csv", index=False)
    return path, frame


def modelyard(model_dir: Path, *args: str) -> None:
    env = {**os.environ, "MODELYARD_MODEL_DIR": str(model_dir)}
    subprocess.run([sys.executable, "-m", "modelyard", *args], env=env, check=True, stdout=subprocess.DEVNULL)


def floor(estimator: object, rows: pd.DataFrame, repeat_s: float = 1.0) -> Floor:
    """In process, on the server's core: (1-row latency in ms, 1000-row rows per second)."""
    os.sched_setaffinity(0, {SERVER_CORE})
    try:
        one, thousand = rows[:1], rows[:1000]

        def median_s(batch: pd.DataFrame) -> float:
            times = []
            deadline = time.monotonic() + repeat_s
            while time.monotonic() < deadline or len(times) < 5:
                started = time.perf_counter()
                estimator.predict_proba(batch)  # type: ignore[attr-defined]
                times.append(time.perf_counter() - started)
            return statistics.median(times)

        median_s(one)  # warm
        return Floor(median_s(one) * 1000, 1000 / median_s(thousand))
    finally:
        os.sched_setaffinity(0, {LOAD_CORE})


def wrk(
    url: str,
    body: bytes,
    connections: int,
    seconds: float,
    script_dir: Path,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    (script_dir / "body.json").write_bytes(body)
    script = script_dir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        + "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in (headers or {}).items())
        + f'local f = io.open("{script_dir / "body.json"}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    command = [
        "taskset",
        "-c",
        str(LOAD_CORE),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
    ]
    out = subprocess.run(
        [*command, "--latency", "-s", str(script), url], capture_output=True, text=True, check=True
    ).stdout
    if "Latency Distribution" not in out:
        raise SystemExit(f"wrk measured nothing:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "req/s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "errors": (int(errors.group(1)) if errors else 0) + (sum(map(int, socket.groups())) if socket else 0),
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(
    url: str, estimator: object, rows: pd.DataFrame, args: argparse.Namespace, scratch: Path
) -> dict[str, Result]:
    """Each load through the server, in rounds, each round right after the floor measured in
    process: this machine's speed drifts over minutes, so a floor taken once would move the ratios.
    Every figure is the median of the rounds."""
    records = _records(rows)
    results = {}
    for load, (size, connections) in LOADS.items():
        body = json.dumps({"instances": records[:size]}).encode()
        wrk(url, body, connections, args.warmup, scratch)
        floors, runs = [], []
        for _ in range(args.rounds):
            floors.append(floor(estimator, rows))
            runs.append(wrk(url, body, connections, args.seconds, scratch))
        results[load] = Result(
            *(statistics.median(run[figure] for run in runs) for figure in ("req/s", "p50", "p99")),
            size,
            int(sum(run["errors"] for run in runs)),
            Floor(
                statistics.median(f.one_ms for f in floors), statistics.median(f.rows_per_s for f in floors)
            ),
        )
    return results


def print_table(title: str, results: dict[str, dict[str, Result]]) -> None:
    print(f"\n{title}")
    header = [
        "server",
        "1 rec, 1 conn: req/s (p50, p99 ms)",
        "1 rec, 16 conns: req/s (p99 ms)",
        "1000 rec, 4 conns: rows/s",
    ]
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|")
    floors = [result.floor for loads in results.values() for result in loads.values()]
    one_ms = statistics.median(f.one_ms for f in floors)
    rows_per_s = statistics.median(f.rows_per_s for f in floors)
    floor = f"{1000 / one_ms:,.0f} ({one_ms:.3f})"
    print(f"| predict_proba in process, no HTTP (median) | {floor} | - | {rows_per_s:,.0f} |")
    for config, loads in results.items():
        one, many, big = (
            loads["1 record, 1 conn"],
            loads["1 record, 16 conns"],
            loads["1000 records, 4 conns"],
        )
        errors = sum(r.errors for r in loads.values())
        print(
            f"| modelyard, {config}{f' ({errors} errors!)' if errors else ''} "
            f"| {one.requests_per_s:,.0f} ({one.p50_ms:.3f}, {one.p99_ms:.2f}) "
            f"| {many.requests_per_s:,.0f} ({many.p99_ms:.2f}) | {big.rows_per_s:,.0f} |"
        )


def print_targets(results: dict[str, dict[str, Result]]) -> None:
    print("\nTargets on the forest, as multiples of the floor measured just before each load")
    print("| runtime | load | figure | measured | target | met |")
    print("|---|---|---|---:|---:|:-:|")
    for config, load, figure, direction, target in TARGETS:
        result = results[config][load]
        floor = result.floor
        ratio = {
            "req/s": result.requests_per_s * floor.one_ms / 1000,
            "p50": result.p50_ms / floor.one_ms,
            "rows/s": result.rows_per_s / floor.rows_per_s,
        }[figure]
        met = "yes" if (ratio >= target if direction == ">=" else ratio <= target) else "NO"
        print(f"| {config} | {load} | {figure} | {ratio:.2f}x | {direction} {target}x | {met} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="Length of each measurement.")
    parser.add_argument("--rounds", type=int, default=3, help="Measurements per figure (median).")
    parser.add_argument("--warmup", type=float, default=1.0, help="Unmeasured load before each.")
    parser.add_argument("--only", choices=["demo", "forest"], help="Measure one model only.")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(
                f"{tool} is not installed: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'}"
            )
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("this benchmark needs two cores: one for the server, one for wrk")
    os.sched_setaffinity(0, {LOAD_CORE})

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = Registry(root / "models")
        print("training and compiling the demo model and the forest ...", flush=True)
        demo.train(registry, root / "data")
        demo_rows = pd.read_csv(root / "data" / "incoming" / "churn-sample.csv").drop(columns="customer_id")
        demo_rows = pd.concat([demo_rows] * (1000 // len(demo_rows) + 1), ignore_index=True)
        forest_path, forest_rows = forest(root)
        modelyard(registry.root, "models", "register", str(forest_path), "--name", "forest",
                  "--sample", str(root / "forest-sample.csv"), "--promote")  # fmt: skip
        models = {
            "demo": (registry.get("churn", 1).artifact, demo_rows),
            "forest": (registry.get("forest", 1).artifact, forest_rows),
        }
        names = {"demo": "churn", "forest": "forest"}
        chosen = [args.only] if args.only else list(models)
        results: dict[str, dict[str, dict[str, Result]]] = {model: {} for model in chosen}
        estimators = {model: joblib.load(models[model][0]) for model in chosen}
        port = 18000 + os.getpid() % 1000
        for config, env in CONFIGS.items():
            print(f"server: {config} ...", flush=True)
            server = start_server(registry.root, port, root / "api.log", env)
            try:
                for model in chosen:
                    url = f"http://127.0.0.1:{port}/v1/models/{names[model]}/predict"
                    results[model][config] = measure(url, estimators[model], models[model][1], args, root)
            finally:
                server.terminate()
                server.wait()
        for model in chosen:
            title = {
                "demo": "Demo churn pipeline (ColumnTransformer + forest)",
                "forest": "RandomForestClassifier, 100 trees, 20 numeric features",
            }[model]
            print_table(title, results[model])
        if "forest" in chosen:
            print_targets(results["forest"])


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready records: numpy scalars as Python numbers, missing values as null."""
    return json.loads(frame[:1000].to_json(orient="records"))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
