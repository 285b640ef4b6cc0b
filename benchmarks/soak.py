"""A soak of hostile traffic: 16 connections for 10 minutes of mixed valid, malformed and oversize
requests against one API process (compiled forest, a key set, pinned to core 0; the load on core 1).

It prints every kind of request with the statuses it got, the count of 500s (the target is 0) and of
503 server_busy, and the server's RSS each minute (the target is flat: no growth from the first
minute to the last beyond noise).

    .venv/bin/python benchmarks/soak.py [--minutes 10 --connections 16]
"""

import argparse
import asyncio
import collections
import json
import os
import random
import tempfile
import time
from pathlib import Path

import httpx
from hostile import AUTH, KEY, big_body, registered_forest, rss_kib
from pinned_server import start_server

MIX = {  # kind -> share of the requests
    "valid, 1 record": 0.55,
    "valid, 1000 records": 0.05,
    "malformed": 0.10,
    "unknown model": 0.05,
    "no key": 0.05,
    "wrong shape": 0.05,
    "nested 100,000 deep": 0.04,
    "one instance too many": 0.05,
    "71 MiB of records": 0.01,
    "10,000 values in a field": 0.05,
}


def bodies(record: dict, records: list[dict]) -> dict[str, tuple[str, bytes, bool]]:
    """kind -> (model, body, with the key)"""
    one = json.dumps({"instances": [record]}).encode()
    nested = b"[" * 100_000 + b"]" * 100_000
    return {
        "valid, 1 record": ("forest", one, True),
        "valid, 1000 records": ("forest", json.dumps({"instances": records[:1000]}).encode(), True),
        "malformed": ("forest", one[:-5], True),
        "unknown model": ("no-such-model", one, True),
        "no key": ("forest", one, False),
        "wrong shape": ("forest", json.dumps({"rows": [record]}).encode(), True),
        "nested 100,000 deep": ("forest", b'{"instances": ' + nested + b"}", True),
        "one instance too many": ("forest", json.dumps({"instances": [record] * 10_001}).encode(), True),
        "71 MiB of records": ("forest", big_body(record), True),
        "10,000 values in a field": (
            "forest",
            json.dumps({"instances": [{**record, "f0": [0] * 10_000}]}).encode(),
            True,
        ),
    }


async def soak(port: int, pid: int, kinds: dict, args: argparse.Namespace) -> tuple[dict, list]:
    statuses: dict[str, collections.Counter] = {kind: collections.Counter() for kind in kinds}
    memory: list[tuple[float, float]] = []
    started = time.monotonic()
    deadline = started + args.minutes * 60
    names, weights = list(MIX), list(MIX.values())

    async def connection(seed: int) -> None:
        chooser = random.Random(seed)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            while time.monotonic() < deadline:
                kind = chooser.choices(names, weights)[0]
                model, body, keyed = kinds[kind]
                try:
                    response = await client.post(
                        f"/v1/models/{model}/predict", content=body, headers=AUTH if keyed else {}
                    )
                    code = response.status_code
                    if code == 503:
                        code = f"503 {response.json()['error']['code']}"
                except httpx.TransportError as exc:
                    code = f"connection: {type(exc).__name__}"
                statuses[kind][code] += 1

    async def sample() -> None:
        while time.monotonic() < deadline:
            memory.append(((time.monotonic() - started) / 60, rss_kib(pid) / 1024))
            await asyncio.sleep(min(60, args.minutes * 60 / 10))

    await asyncio.gather(sample(), *(connection(seed) for seed in range(args.connections)))
    memory.append(((time.monotonic() - started) / 60, rss_kib(pid) / 1024))
    return statuses, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry, frame = registered_forest(root)
        records = json.loads(frame[:1000].to_json(orient="records"))
        kinds = bodies(records[0], records)
        port = 18000 + os.getpid() % 1000
        env = {"MODELYARD_API_KEY": KEY, "MODELYARD_RUNTIME": "auto"}
        server = start_server(registry.root, port, root / "api.log", env)
        try:
            url = f"http://127.0.0.1:{port}/v1/models/forest/predict"
            first = httpx.post(url, content=kinds["valid, 1 record"][1], headers=AUTH)
            assert first.status_code == 200, first.text
            print(f"soaking for {args.minutes:g} minutes at {args.connections} connections ...", flush=True)
            statuses, memory = asyncio.run(soak(port, server.pid, kinds, args))
        finally:
            server.terminate()
            server.wait()

    total = sum(sum(counter.values()) for counter in statuses.values())
    errors = sum(n for counter in statuses.values() for code, n in counter.items() if code == 500)
    busy = sum(n for counter in statuses.values() for code, n in counter.items() if code == "503 server_busy")
    print(f"\n{total:,} requests in {args.minutes:g} minutes at {args.connections} connections")
    print("| request | share | sent | statuses |")
    print("|---|---:|---:|---|")
    for kind, counter in statuses.items():
        found = ", ".join(f"{code}: {n:,}" for code, n in sorted(counter.items(), key=str))
        print(f"| {kind} | {MIX[kind]:.0%} | {sum(counter.values()):,} | {found} |")
    print(f"\n500 responses: {errors} (target 0); 503 server_busy: {busy:,}")
    print("\n| minute | RSS MiB |")
    print("|---:|---:|")
    for minute, rss in memory:
        print(f"| {minute:.1f} | {rss:,.0f} |")
    first = next((rss for minute, rss in memory if minute >= 1), memory[0][1])
    print(f"\nRSS at the end / after the first minute: {memory[-1][1] / first:.2f}")


if __name__ == "__main__":
    main()
