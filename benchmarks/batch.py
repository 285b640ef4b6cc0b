"""Batch scoring throughput and memory: `modelyard score`, one worker, two workers with fan-out.

Generates demo-model CSV files of 100,000 and 1,000,000 rows and scores each (a) with `modelyard
score`, (b) through one `modelyard worker`, (c) through two workers with the file split into parts,
next to the floor: `predict_proba` of the same pipeline (n_jobs=1) on the same rows already in
memory as a DataFrame, in this process. Rows/s count the scoring itself (for jobs, from their
start to their end as recorded by the queue); "wall" adds process start-up and queueing. Peak RSS
is the largest resident set of any scoring process (a worker's work horse included).

    .venv/bin/python benchmarks/batch.py [--rows 100000 1000000]
"""

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import joblib
from rq import Worker

from modelyard import demo
from modelyard.batch import queue, records
from modelyard.batch.spec import ENDED
from modelyard.batch.submit import JobRequest, submit
from modelyard.config import Settings
from modelyard.registry.artifacts import set_n_jobs
from modelyard.registry.store import Registry

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
PEAK_RSS = """
import resource, signal, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *_: child.terminate())
code = child.wait()
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""
"""Runs a command, passing SIGTERM on, and reports the largest RSS of the processes under it: the
kernel folds a reaped child's peak (and its own children's, a work horse's) into its parent's."""


def measured(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", PEAK_RSS, *command], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def peak_mb(log: Path) -> float:
    line = next(line for line in log.read_text().splitlines() if line.startswith("PEAK_RSS_KB"))
    return int(line.split()[1]) / 1024


def floor(model_path: Path, csv: Path, repeat: int = 3) -> float:
    """The model's own speed on rows already in memory: the median of a few runs (it is noisy)."""
    import pandas as pd

    pipeline = joblib.load(model_path)
    set_n_jobs(pipeline, 1)
    frame = pd.read_csv(csv).drop(columns="customer_id")
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        pipeline.predict_proba(frame)
        rates.append(len(frame) / (time.perf_counter() - started))
    return sorted(rates)[len(rates) // 2]


def local_score(root: Path, env: dict[str, str], csv: Path, rows: int) -> dict[str, float]:
    log = root / f"score-{rows}.log"
    started = time.perf_counter()
    process = measured(
        [
            sys.executable,
            "-m",
            "modelyard",
            "score",
            str(csv),
            "--model",
            "churn",
            "--output",
            str(root / f"local-{rows}.csv"),
        ],
        env,
        log,
    )
    if process.wait() != 0:
        raise SystemExit(log.read_text())
    wall = time.perf_counter() - started
    seconds = float(re.search(r" in ([\d.]+)s ", log.read_text()).group(1))  # the CLI's own timing
    return {"rows_per_s": rows / seconds, "wall": wall, "peak_mb": peak_mb(log)}


def through_workers(
    root: Path, env: dict[str, str], settings: Settings, csv: Path, rows: int, count: int
) -> dict[str, float]:
    connection = queue.connect(settings.redis_url)
    connection.flushall()
    split = {"MODELYARD_SPLIT_THRESHOLD_MB": "1", "MODELYARD_PART_ROWS": str(math.ceil(rows / 4))}
    worker_env = {**env, **(split if count > 1 else {"MODELYARD_SPLIT_THRESHOLD_MB": "100000"})}
    logs = [root / f"worker-{count}-{rows}-{i}.log" for i in range(count)]
    workers = [
        measured([sys.executable, "-m", "modelyard", "worker", "--name", f"w{i}"], worker_env, log)
        for i, log in enumerate(logs)
    ]
    while len(Worker.all(connection=connection)) < count:
        time.sleep(0.1)
    started = time.perf_counter()
    job = submit(
        JobRequest(model="churn", input=csv.name, output=f"scored/{count}-{rows}.csv"),
        settings,
        connection,
    )
    while (record := records.view(connection, job.id))["status"] not in ENDED:
        time.sleep(0.05)
    wall = time.perf_counter() - started
    for worker in workers:
        worker.terminate()
        worker.wait(timeout=120)
    if record["status"] != "finished":
        raise SystemExit(f"job {record}:\n" + "\n".join(log.read_text()[-2000:] for log in logs))
    seconds = (_at(record["ended_at"]) - _at(record["started_at"])).total_seconds()
    return {"rows_per_s": rows / seconds, "wall": wall, "peak_mb": max(peak_mb(log) for log in logs)}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        registry = Registry(root / "models")
        demo.train(registry, data)
        redis = subprocess.Popen(
            ["redis-server", "--port", "6399", "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        env = {
            **os.environ,
            **ONE_THREAD,
            "MODELYARD_MODEL_DIR": str(registry.root),
            "MODELYARD_DATA_DIR": str(data),
            "MODELYARD_REDIS_URL": "redis://127.0.0.1:6399/0",
            "MODELYARD_LOG_LEVEL": "WARNING",
        }
        settings = Settings(
            _env_file=None, model_dir=registry.root, data_dir=data, redis_url=env["MODELYARD_REDIS_URL"]
        )
        os.environ.update(ONE_THREAD)
        results: dict[int, dict[str, dict[str, float]]] = {}
        try:
            time.sleep(0.5)
            for rows in args.rows:
                csv = data / f"customers-{rows}.csv"
                demo.customers(rows, seed=21).to_csv(csv, index=False)
                floor_rate = floor(registry.get("churn", 1).artifact, csv)
                results[rows] = {
                    "floor: predict_proba in memory": {
                        "rows_per_s": floor_rate,
                        "wall": float("nan"),
                        "peak_mb": float("nan"),
                    },
                    "(a) modelyard score": local_score(root, env, csv, rows),
                    "(b) one worker": through_workers(root, env, settings, csv, rows, 1),
                    "(c) two workers, file split": through_workers(root, env, settings, csv, rows, 2),
                }
        finally:
            redis.terminate()
        print_table(results)


def print_table(results: dict[int, dict[str, dict[str, float]]]) -> None:
    print(f"\n{'rows':>9}  {'run':<32} {'rows/s':>9} {'x floor':>8} {'wall s':>7} {'peak RSS MB':>12}")
    for rows, runs in results.items():
        floor_rate = runs["floor: predict_proba in memory"]["rows_per_s"]
        for name, run in runs.items():
            print(
                f"{rows:>9,}  {name:<32} {run['rows_per_s']:>9,.0f} {run['rows_per_s'] / floor_rate:>8.2f} "
                f"{run['wall']:>7.1f} {run['peak_mb']:>12.0f}"
            )
    if len(results) > 1:
        small, large = min(results), max(results)
        print(f"\npeak RSS, {large:,} rows / {small:,} rows:")
        for name in list(results[large])[1:]:
            print(f"  {name:<32} {results[large][name]['peak_mb'] / results[small][name]['peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
