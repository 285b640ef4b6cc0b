"""Hostile input: what a refused big body costs in memory, whether memory comes back after a burst,
and how fast refusals are answered next to valid predictions.

One API process (`modelyard serve`, pinned to core 0, a key set) serves the 100-tree forest of
benchmarks/realtime.py on its compiled runtime; the load runs on core 1. "Start" is the process's
RSS after its first prediction; each round starts a fresh server. Figures are medians of the rounds.

- one refused body: a ~71 MiB JSON body of records, over MODELYARD_MAX_INSTANCES (413); the peak
  RSS growth while it is refused (the kernel's high-water mark, reset at start), as a multiple of
  the body's size. Target: at most 3x.
- a burst: ten such bodies sent at once (413, or 503 server_busy past MODELYARD_MAX_INFLIGHT_MB);
  RSS two seconds after the last answer, as a multiple of the start. Target: at most 1.5x.
- refusals at 16 connections (wrk): a malformed body (400), an unknown model (404), no key (401),
  a record of the wrong shape (422), next to valid single-record predictions in the same server.
  Target: malformed and unknown model at least 1.0x the valid rate.

    .venv/bin/python benchmarks/hostile.py [--rounds 3 --seconds 3]   # needs wrk (apt install wrk)
"""

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
from pinned_server import start_server
from realtime import forest, modelyard, wrk

from modelyard.registry.store import Registry

KEY = "hostile-benchmark-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
BIG_BODY_MIB = 71
REFUSALS = {  # name -> (model, body, with the key)
    "valid, 1 record": ("forest", "valid", True),
    "malformed body (400)": ("forest", "malformed", True),
    "unknown model (404)": ("no-such-model", "valid", True),
    "no key (401)": ("forest", "valid", False),
    "wrong shape (422)": ("forest", "shape", True),
}


def registered_forest(root: Path) -> tuple[Registry, pd.DataFrame]:
    """The forest of benchmarks/realtime.py registered, compiled and promoted in root; its rows."""
    registry = Registry(root / "models")
    print("training and compiling the forest ...", flush=True)
    forest_path, frame = forest(root)
    modelyard(registry.root, "models", "register", str(forest_path), "--name", "forest",
              "--sample", str(root / "forest-sample.csv"), "--promote")  # fmt: skip
    return registry, frame


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} for process {pid}")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the high-water mark starts again from now


def big_body(record: dict[str, float]) -> bytes:
    """About BIG_BODY_MIB of records, far over the instance limit."""
    one = json.dumps({k: round(v, 3) for k, v in record.items()}, separators=(",", ":"))
    count = BIG_BODY_MIB * 1024 * 1024 // (len(one) + 1)
    return ('{"instances":[' + ",".join([one] * count) + "]}").encode()


def memory_round(
    registry: Registry, root: Path, port: int, record: dict[str, float], body: bytes, accepted: bytes
) -> dict:
    env = {"MODELYARD_API_KEY": KEY, "MODELYARD_RUNTIME": "auto"}
    server = start_server(registry.root, port, root / "api.log", env)
    url = f"http://127.0.0.1:{port}/v1/models/forest/predict"
    try:
        with httpx.Client(timeout=120, headers=AUTH) as client:
            assert client.post(url, json={"instances": [record]}).status_code == 200
            time.sleep(1)
            start = rss_kib(server.pid)
            reset_peak(server.pid)
            assert client.post(url, content=accepted).status_code == 200
            taken = rss_kib(server.pid, "VmHWM") - start
            time.sleep(1)
            start = rss_kib(server.pid)
            reset_peak(server.pid)
            one = client.post(url, content=body)
            assert one.status_code == 413, one.text[:300]
            peak = rss_kib(server.pid, "VmHWM") - start
        statuses: list[int] = []

        def send() -> None:
            with httpx.Client(timeout=300, headers=AUTH) as client:
                statuses.append(client.post(url, content=body).status_code)

        threads = [threading.Thread(target=send) for _ in range(10)]
        reset_peak(server.pid)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        burst_peak = rss_kib(server.pid, "VmHWM")
        time.sleep(2)
        after = rss_kib(server.pid)
        with httpx.Client(timeout=30, headers=AUTH) as client:  # still serving
            assert client.post(url, json={"instances": [record]}).status_code == 200
        arrays = (accepted.count(b"{") - 1) * len(record) * 8  # the records as float64
        return {
            "accepted 10,000 records: peak growth MiB": taken / 1024,
            "accepted: growth / body": taken * 1024 / len(accepted),
            "accepted: growth / its float64 array": taken * 1024 / arrays,
            "start MiB": start / 1024,
            "one: peak growth MiB": peak / 1024,
            "one: growth / body": peak * 1024 / len(body),
            "burst: peak MiB": burst_peak / 1024,
            "burst: after MiB": after / 1024,
            "burst: after / start": after / start,
            "burst: 413": statuses.count(413),
            "burst: 503": statuses.count(503),
            "burst: other": len(statuses) - statuses.count(413) - statuses.count(503),
        }
    finally:
        server.terminate()
        server.wait()


def rates_round(registry: Registry, root: Path, port: int, record: dict, args: argparse.Namespace) -> dict:
    env = {"MODELYARD_API_KEY": KEY, "MODELYARD_RUNTIME": "auto"}
    server = start_server(registry.root, port, root / "api.log", env)
    bodies = {
        "valid": json.dumps({"instances": [record]}).encode(),
        "malformed": b'{"instances": [{"f0": 0.5,',
        "shape": json.dumps({"instances": {"f0": 1}}).encode(),
    }
    rates = {}
    try:
        for name, (model, body, keyed) in REFUSALS.items():
            url = f"http://127.0.0.1:{port}/v1/models/{model}/predict"
            headers = AUTH if keyed else {}
            wrk(url, bodies[body], 16, args.warmup, root, headers)
            rates[name] = wrk(url, bodies[body], 16, args.seconds, root, headers)["req/s"]
    finally:
        server.terminate()
        server.wait()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="Length of each wrk measurement.")
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry, frame = registered_forest(root)
        record = json.loads(frame[:1].to_json(orient="records"))[0]
        body = big_body(record)
        accepted = json.dumps({"instances": json.loads(frame.sample(10_000, replace=True, random_state=0)
                                                       .to_json(orient="records"))}).encode()  # fmt: skip
        port = 18000 + os.getpid() % 1000
        memory = [memory_round(registry, root, port, record, body, accepted) for _ in range(args.rounds)]
        rates = [rates_round(registry, root, port, record, args) for _ in range(args.rounds)]

    print(f"\nOne API process, compiled forest, a key set; medians of {args.rounds} rounds")
    print(f"\nMemory: a {len(body) / 2**20:.1f} MiB body of {body.count(b'{') - 1:,} records (refused), "
          f"a {len(accepted) / 2**20:.1f} MiB body of 10,000 (accepted)")  # fmt: skip
    print("| figure | median | rounds |")
    print("|---|---:|---|")
    for figure in memory[0]:
        values = [m[figure] for m in memory]
        print(f"| {figure} | {statistics.median(values):,.2f} | {', '.join(f'{v:,.2f}' for v in values)} |")
    valid = statistics.median(r["valid, 1 record"] for r in rates)
    print("\nAnswers at 16 connections (wrk), req/s")
    print("| request | req/s (median) | x valid | rounds |")
    print("|---|---:|---:|---|")
    for name in REFUSALS:
        values = [r[name] for r in rates]
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / valid:.2f} | {', '.join(f'{v:,.0f}' for v in values)} |")
    growth = statistics.median(m["one: growth / body"] for m in memory)
    after = statistics.median(m["burst: after / start"] for m in memory)
    malformed = statistics.median(r["malformed body (400)"] for r in rates) / valid
    unknown = statistics.median(r["unknown model (404)"] for r in rates) / valid
    print("\nTargets")
    print("| figure | measured | target | met |")
    print("|---|---:|---:|:-:|")
    for figure, measured, direction, target in (
        ("peak RSS growth, one refused body / body", growth, "<=", 3.0),
        ("RSS after a burst of ten / start", after, "<=", 1.5),
        ("malformed body / valid, req/s", malformed, ">=", 1.0),
        ("unknown model / valid, req/s", unknown, ">=", 1.0),
    ):
        met = measured <= target if direction == "<=" else measured >= target
        print(f"| {figure} | {measured:.2f} | {direction} {target} | {'yes' if met else 'NO'} |")


if __name__ == "__main__":
    main()
