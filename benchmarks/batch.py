"""Batch scoring throughput and memory: `modelyard score`, one worker, two workers with fan-out, and
one worker reading from and writing to S3.

Generates demo-model CSV files of 100,000 and 1,000,000 rows and scores each (a) with `modelyard
score`, (b) through one `modelyard worker`, (c) through two workers with the file split into parts,
next to the floor: `predict_proba` of the same pipeline (n_jobs=1) on the same rows already in
memory as a DataFrame, in this process. Rows/s count the scoring itself (for jobs, from their
start to their end as recorded by the queue); "wall" adds process start-up and queueing. Peak RSS
is the largest resident set of any scoring process (a worker's work horse included).

Then S3 (`--only s3` for these alone), against moto's S3 server started here on a free port
(`moto_server`, from PyPI: a test server written in Python, so its own speed is part of what is
measured). The worker is pinned to core 0 and the S3 server to core 1 (with Redis and this process),
so that scoring never shares its core with the store; the file rows it is compared with are pinned
the same way:

- the same rows through one worker, from a file to a file, and from an S3 prefix (holding the same
  bytes as one object) to an S3 prefix (a dataset of parts and a _SUCCESS manifest), CSV to CSV and
  Parquet to Parquet; each figure is the median of `--repeat` runs, files and S3 alternated;
- the peak RSS of one worker scoring one file, or one object, of 300,000 and of 3,000,000 rows,
  each in a worker process of its own.

Then the cost of reports (`--only reports` for these alone): the same job through one worker
(pinned to core 0; Redis and this process on core 1) with MODELYARD_REPORTS off and on, alternated,
the median of `--repeat` runs each: the demo model on a CSV of `--report-rows` rows, and a model of
200 numeric features (scaling and a logistic regression, as fast as models get, so the report's
share is at its largest) on a Parquet file of as many rows. Both versions have a reference profile.

    .venv/bin/python benchmarks/batch.py [--rows 100000 1000000] [--only files|s3|reports]
        [--repeat 3] [--rss-rows 300000 3000000] [--report-rows 1000000]
"""

import argparse
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from statistics import median

import joblib
import numpy as np
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
SCORING_CORE, STORE_CORE = 0, 1
"""For the S3 rows: the worker on one core; the S3 server, Redis and this process on the other."""
BUCKET = "bench"
ONE_WORKER = {"MODELYARD_SPLIT_THRESHOLD_MB": "100000"}
FORMATS = {"csv": "CSV", "parquet": "Parquet"}
FILES_RUN, S3_RUN = "files, {0} -> {0}", "S3 prefix, {0} -> {0} prefix"
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
    root: Path,
    env: dict[str, str],
    settings: Settings,
    source: str,
    output: str,
    rows: int,
    count: int,
    core: int | None = None,
    model: str = "churn",
) -> dict[str, float]:
    """Score `source` (a path on the data volume or an s3:// URI) into `output` through `count`
    fresh workers, pinned to `core` if given."""
    connection = queue.connect(settings.redis_url)
    connection.flushall()
    split = {"MODELYARD_SPLIT_THRESHOLD_MB": "1", "MODELYARD_PART_ROWS": str(math.ceil(rows / 4))}
    worker_env = {**env, **(split if count > 1 else ONE_WORKER)}
    pinned = ["taskset", "-c", str(core)] if core is not None else []
    name = re.sub(r"\W+", "-", f"{count}-{output}")
    logs = [root / f"worker-{name}-{i}.log" for i in range(count)]
    workers = [
        measured([*pinned, sys.executable, "-m", "modelyard", "worker", "--name", f"w{i}"], worker_env, log)
        for i, log in enumerate(logs)
    ]

    def alive() -> None:
        if any(worker.poll() is not None for worker in workers):
            raise SystemExit("a worker exited:\n" + "\n".join(log.read_text()[-2000:] for log in logs))

    while len(Worker.all(connection=connection)) < count:
        alive()
        time.sleep(0.1)
    started = time.perf_counter()
    job = submit(JobRequest(model=model, input=source, output=output), settings, connection)
    while (record := records.view(connection, job.id))["status"] not in ENDED:
        alive()
        time.sleep(0.05)
    wall = time.perf_counter() - started
    for worker in workers:
        worker.terminate()
        worker.wait(timeout=120)
    if record["status"] != "finished" or record["rows_done"] != rows:
        raise SystemExit(f"job {record}:\n" + "\n".join(log.read_text()[-2000:] for log in logs))
    seconds = (_at(record["ended_at"]) - _at(record["started_at"])).total_seconds()
    report = settings.data_dir / "reports" / f"{job.id}.json"
    counting = json.loads(report.read_text())["counting_seconds"] if report.exists() else 0.0
    return {
        "rows_per_s": rows / seconds,
        "wall": wall,
        "peak_mb": max(peak_mb(log) for log in logs),
        "counting_share": counting / seconds,
    }


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def customers_file(data: Path, rows: int, fmt: str) -> Path:
    """The demo's customers (the same rows for a given count), as CSV or Parquet on the data volume."""
    path = data / f"customers-{rows}.{fmt}"
    if not path.exists():
        frame = demo.customers(rows, seed=21)
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
    return path


@contextmanager
def s3_server(root: Path) -> Iterator[str]:
    """moto's S3 server on a free port and on the store's core, with a bucket; yields its endpoint.
    Started without request signing checked: any access key works."""
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        raise SystemExit('moto_server is not installed: .venv/bin/pip install "moto[server]" (or make setup)')
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = root / "moto"
    folder.mkdir()
    log = root / "moto.log"
    server = subprocess.Popen(
        ["taskset", "-c", str(STORE_CORE), str(binary), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "TMPDIR": str(folder)},  # where it spools object bodies
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"moto_server did not start:\n{log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def s3_client(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )


def emptied(client, prefix: str) -> None:  # type: ignore[no-untyped-def]
    """Delete a run's output, so that every run finds the store as small as the first did."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


def s3_results(
    root: Path,
    env: dict[str, str],
    settings: Settings,
    data: Path,
    endpoint: str,
    rows_list: list[int],
    rss_rows: list[int],
    repeat: int,
) -> tuple[dict[int, dict[str, dict[str, float]]], dict[str, dict[int, float]]]:
    """Rows/s of the same rows as files and through S3 (medians), and peak RSS by input size."""
    client = s3_client(endpoint)
    connections = root / "connections.yaml"
    connections.write_text(
        f"connections:\n  bench:\n    type: s3\n    endpoint: {endpoint}\n"
        "    access_key: {env: BENCH_ACCESS_KEY}\n    secret_key: {env: BENCH_SECRET_KEY}\n"
        f"    read: [{BUCKET}]\n    write: [{BUCKET}]\n"
    )
    keys = {"BENCH_ACCESS_KEY": "bench", "BENCH_SECRET_KEY": "bench"}  # any key: moto checks none
    os.environ.update(keys)  # for submitting, which lists the input's objects
    env = {**env, **keys, "MODELYARD_CONNECTIONS": str(connections)}
    settings = settings.model_copy(update={"connections": connections})

    def one_worker(source: str, output: str, rows: int) -> dict[str, float]:
        return through_workers(root, env, settings, source, output, rows, 1, SCORING_CORE)

    throughput: dict[int, dict[str, dict[str, float]]] = {}
    for rows in rows_list:
        runs: dict[str, list[dict[str, float]]] = {}
        for fmt in FORMATS:
            path = customers_file(data, rows, fmt)
            client.upload_file(str(path), BUCKET, f"in/{rows}/{fmt}/{path.name}")
        for attempt in range(repeat):  # alternated, so that a slow spell hits both sides alike
            for fmt, label in FORMATS.items():
                path = customers_file(data, rows, fmt)
                local = one_worker(path.name, f"scored/s3cmp-{rows}-{attempt}.{fmt}", rows)
                prefix = f"s3://{BUCKET}/in/{rows}/{fmt}/"
                remote = one_worker(prefix, f"s3://{BUCKET}/out/{rows}/{fmt}-{attempt}/", rows)
                emptied(client, f"out/{rows}/{fmt}-{attempt}/")
                runs.setdefault(FILES_RUN.format(label), []).append(local)
                runs.setdefault(S3_RUN.format(label), []).append(remote)
        throughput[rows] = {name: _medians(measures) for name, measures in runs.items()}
    rss: dict[str, dict[int, float]] = {}
    for rows in rss_rows:
        for fmt, label in FORMATS.items():
            path = customers_file(data, rows, fmt)
            key = f"in/one/{path.name}"
            client.upload_file(str(path), BUCKET, key)
            local = one_worker(path.name, f"scored/rss-{rows}.{fmt}", rows)
            remote = one_worker(f"s3://{BUCKET}/{key}", f"s3://{BUCKET}/rss/{rows}/{fmt}/", rows)
            emptied(client, f"rss/{rows}/{fmt}/")
            rss.setdefault(f"file, {label} -> {label} file", {})[rows] = local["peak_mb"]
            rss.setdefault(f"S3 object, {label} -> {label} prefix", {})[rows] = remote["peak_mb"]
    return throughput, rss


WIDE_FEATURES = 200


def wide_model(registry: Registry, root: Path) -> None:
    """`wide`: scaling and a logistic regression on 200 numeric features, with a reference profile."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelyard.reports import profile as profiles
    from modelyard.tabular import Table

    frame = wide_frame(20_000, seed=1)
    labels = frame.to_numpy() @ np.linspace(-1, 1, WIDE_FEATURES) > 0
    joblib.dump(
        make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, labels), root / "wide.joblib"
    )
    version = registry.register(root / "wide.joblib", "wide")
    registry.promote("wide", version.version)
    profiles.write(version, profiles.profile_rows(version, Table(frame=pd.DataFrame(frame)), "bench")[0])


def wide_frame(rows: int, seed: int):  # type: ignore[no-untyped-def]
    import pandas as pd

    values = np.random.default_rng(seed).normal(size=(rows, WIDE_FEATURES)).round(4)
    return pd.DataFrame(values, columns=[f"f{i:03d}" for i in range(WIDE_FEATURES)])


def wide_file(data: Path, rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = data / f"wide-{rows}.parquet"
    if not path.exists():
        step = 100_000
        writer = None
        for start in range(0, rows, step):
            table = pa.Table.from_pandas(
                wide_frame(min(step, rows - start), seed=start + 2), preserve_index=False
            )
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()
    return path


def reports_results(
    root: Path, env: dict[str, str], settings: Settings, data: Path, rows: int, repeat: int
) -> dict[str, dict[str, float]]:
    """Rows/s of the same jobs with reports off and on (medians), by model."""
    sources = {"churn": customers_file(data, rows, "csv").name, "wide": wide_file(data, rows).name}
    runs: dict[str, dict[str, list[float]]] = {}
    for attempt in range(repeat):
        for model, source in sources.items():
            for state in ("off", "on") if attempt % 2 == 0 else ("on", "off"):  # neither always first
                switched = {**env, "MODELYARD_REPORTS": "true" if state == "on" else "false"}
                output = f"scored/reports-{model}-{state}-{attempt}{Path(source).suffix}"
                run = through_workers(root, switched, settings, source, output, rows, 1, SCORING_CORE, model)
                (data / output).unlink()
                runs.setdefault(model, {}).setdefault(state, []).append(run["rows_per_s"])
                if state == "on":
                    runs[model].setdefault("counting", []).append(run["counting_share"])
    return {
        model: {state: median(rates) for state, rates in states.items()} for model, states in runs.items()
    }


def print_reports_table(results: dict[str, dict[str, float]], rows: int, repeat: int) -> None:
    targets = {"churn": 5, "wide": 10}
    labels = {"churn": "demo model (CSV)", "wide": f"{WIDE_FEATURES} numeric features (Parquet)"}
    print(f"\nreports off vs on, one worker on core {SCORING_CORE}, {rows:,} rows, median of {repeat}")
    print(f"{'model':<34} {'off rows/s':>11} {'on rows/s':>11} {'added':>7} {'counting':>9} {'target':>7}")
    for model, rates in results.items():
        added = rates["off"] / rates["on"] - 1
        print(
            f"{labels[model]:<34} {rates['off']:>11,.0f} {rates['on']:>11,.0f} {added:>7.1%} "
            f"{rates['counting']:>9.1%} {'<=' + str(targets[model]) + '%':>7}"
        )
    print(
        "added: rows/s off over on, minus 1 (runs minutes apart: this machine's drift shows in it);\n"
        "counting: the share of the 'on' jobs' time spent counting for the report, timed inside them"
    )


def _medians(measures: list[dict[str, float]]) -> dict[str, float]:
    return {field: median(m[field] for m in measures) for field in measures[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--only",
        choices=["files", "s3", "reports"],
        help="Measure the file rows, the S3 rows or reports only.",
    )
    parser.add_argument("--report-rows", type=int, default=1_000_000, help="Rows of the reports' jobs.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs of each S3 comparison (the median).")
    parser.add_argument(
        "--rss-rows", type=int, nargs=2, default=[300_000, 3_000_000], help="Input sizes for S3's peak RSS."
    )
    args = parser.parse_args()
    if args.only != "files" and (not shutil.which("taskset") or len(os.sched_getaffinity(0)) < 2):
        raise SystemExit("the S3 and report rows need taskset and two cores: one for the worker")

    began = time.perf_counter()
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
        reported: dict[str, dict[str, float]] = {}
        try:
            time.sleep(0.5)
            for rows in args.rows if args.only in (None, "files") else []:
                csv = customers_file(data, rows, "csv")
                floor_rate = floor(registry.get("churn", 1).artifact, csv)
                results[rows] = {
                    "floor: predict_proba in memory": {
                        "rows_per_s": floor_rate,
                        "wall": float("nan"),
                        "peak_mb": float("nan"),
                    },
                    "(a) modelyard score": local_score(root, env, csv, rows),
                    "(b) one worker": through_workers(
                        root, env, settings, csv.name, f"scored/1-{rows}.csv", rows, 1
                    ),
                    "(c) two workers, file split": through_workers(
                        root, env, settings, csv.name, f"scored/2-{rows}.csv", rows, 2
                    ),
                }
            if args.only in (None, "s3", "reports"):
                os.sched_setaffinity(0, {STORE_CORE})  # this process and Redis; workers are pinned
                os.sched_setaffinity(redis.pid, {STORE_CORE})
            if args.only in (None, "reports"):
                wide_model(registry, root)
                reported = reports_results(root, env, settings, data, args.report_rows, args.repeat)
            if args.only in (None, "s3"):
                with s3_server(root) as endpoint:
                    throughput, rss = s3_results(
                        root, env, settings, data, endpoint, args.rows, args.rss_rows, args.repeat
                    )
        finally:
            redis.terminate()
            redis.wait(timeout=30)
        if results:
            print_table(results)
        if args.only in (None, "s3"):
            print_s3_tables(throughput, rss, args.repeat)
        if reported:
            print_reports_table(reported, args.report_rows, args.repeat)
        print(f"\n{time.perf_counter() - began:.0f} s in all")


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


def print_s3_tables(
    throughput: dict[int, dict[str, dict[str, float]]], rss: dict[str, dict[int, float]], repeat: int
) -> None:
    print(
        f"\nS3 vs files, one worker on core {SCORING_CORE}; moto_server, Redis and this process on core "
        f"{STORE_CORE}; median of {repeat}"
    )
    print(f"{'rows':>9}  {'run':<36} {'rows/s':>9} {'x files':>8} {'wall s':>7} {'peak RSS MB':>12}")
    for rows, runs in throughput.items():
        for label in FORMATS.values():
            files = runs[FILES_RUN.format(label)]["rows_per_s"]
            for name in (FILES_RUN.format(label), S3_RUN.format(label)):
                run = runs[name]
                print(
                    f"{rows:>9,}  {name:<36} {run['rows_per_s']:>9,.0f} {run['rows_per_s'] / files:>8.2f} "
                    f"{run['wall']:>7.1f} {run['peak_mb']:>12.0f}"
                )
    print("\nS3 prefix / files, rows/s (target: at least 0.90x):")
    for rows, runs in throughput.items():
        ratios = [f"{label} {_s3_ratio(runs, label):.2f}x" for label in FORMATS.values()]
        print(f"  {rows:>9,} rows  {'  '.join(ratios)}")
    small, large = sorted(next(iter(rss.values())))
    print(f"\npeak RSS MB, one worker, one input of {small:,} or {large:,} rows (target: S3 at most 1.20x)")
    print(f"  {'run':<36} {small:>11,} {large:>11,} {'ratio':>7}")
    for name, peaks in rss.items():
        print(
            f"  {name:<36} {peaks[small]:>11.0f} {peaks[large]:>11.0f} {peaks[large] / peaks[small]:>6.2f}x"
        )


def _s3_ratio(runs: dict[str, dict[str, float]], label: str) -> float:
    return runs[S3_RUN.format(label)]["rows_per_s"] / runs[FILES_RUN.format(label)]["rows_per_s"]


if __name__ == "__main__":
    main()
