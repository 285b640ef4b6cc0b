"""The API's memory with many models and several processes: what each process adds.

Ten copies of the peers' 100-tree forest (benchmarks/realtime.py) are registered and compiled, twice
each (versions 1 and 2), version 1 promoted. The API is started with 1 and then 2 server processes
(`modelyard serve --processes N`: 1 is a single uvicorn process, 2 a parent that loads the models
and two server processes forked from it); for each, the resident set (RSS) and the proportional set
(Pss: shared pages divided among the processes sharing them, from /proc/PID/smaps_rollup) are summed
over the server's processes right after start, then again once version 2 of all ten is promoted and
served. RSS counts a shared page once per process, Pss once in all. The target (issue 16): the summed
Pss of 2 processes at most 1.3x that of 1, both times.

    .venv/bin/python benchmarks/memory.py [--models 10]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from realtime import forest, modelyard

from modelyard.registry.store import Registry


def tree(pid: int) -> list[int]:
    """The process and every process below it (the kernel lists each thread's children)."""
    children = [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return [pid, *(found for child in children for found in tree(child))]


def measure(pid: int) -> dict[str, float]:
    """RSS and Pss summed over the server's processes, in MiB."""
    sums = {"Rss": 0, "Pss": 0}
    processes = [p for p in tree(pid) if Path(f"/proc/{p}/smaps_rollup").exists()]
    for process in processes:
        for line in Path(f"/proc/{process}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in sums:
                sums[name] += int(rest.split()[0])
    return {"processes": len(processes), "RSS MiB": sums["Rss"] / 1024, "Pss MiB": sums["Pss"] / 1024}


def serving(port: int, names: list[str], version: int, timeout: float = 300) -> None:
    """Until /readyz shows every model served at `version`, ten answers in a row (from whichever
    processes give them)."""
    deadline, seen = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        try:
            models = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()["models"]
            ready = {m["model"] for m in models if m.get("serving_version") == version}
            seen = seen + 1 if ready >= set(names) else 0
            if seen >= 10:
                return
        except (httpx.TransportError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"not every model served version {version} within {timeout:.0f} s")


def server(registry: Registry, root: Path, processes: int) -> tuple[subprocess.Popen[bytes], int]:
    port = 18000 + os.getpid() % 1000 + processes
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MODELYARD_", "PROMETHEUS_"))}
    environment["MODELYARD_MODEL_DIR"] = str(registry.root)
    if processes > 1:  # /metrics sums the processes
        (root / f"prometheus-{processes}").mkdir()
        environment["PROMETHEUS_MULTIPROC_DIR"] = str(root / f"prometheus-{processes}")
    command = [sys.executable, "-m", "modelyard", "serve", "--port", str(port), "--processes", str(processes)]
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ), port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    args = parser.parse_args()
    results: dict[int, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path, _ = forest(root)
        names = [f"forest{i}" for i in range(args.models)]
        base = Registry(root / "base")
        print(f"registering and compiling {len(names)} models, twice each ...", flush=True)
        sample = ["--sample", str(root / "forest-sample.csv")]
        for name in names:
            modelyard(base.root, "models", "register", str(path), "--name", name, *sample, "--promote")
            modelyard(base.root, "models", "register", str(path), "--name", name, *sample, "--force-new")
        for processes in (1, 2):
            registry = Registry(root / f"models-{processes}")
            shutil.copytree(base.root, registry.root)
            process, port = server(registry, root, processes)
            try:
                serving(port, names, 1)
                time.sleep(2)
                results[processes] = {"after start": measure(process.pid)}
                for name in names:
                    modelyard(registry.root, "models", "promote", name, "2")
                serving(port, names, 2)
                time.sleep(2)
                results[processes]["after promoting all"] = measure(process.pid)
            finally:
                process.terminate()
                process.wait()

    print(f"\n{args.models} models (100-tree forests, compiled), `modelyard serve --processes N`")
    print("| processes | moment | server processes | RSS MiB | Pss MiB |")
    print("|---:|---|---:|---:|---:|")
    for processes, moments in results.items():
        for moment, figures in moments.items():
            print(
                f"| {processes} | {moment} | {figures['processes']:.0f} | {figures['RSS MiB']:,.0f} "
                f"| {figures['Pss MiB']:,.0f} |"
            )
    for moment in results[1]:
        ratio = results[2][moment]["Pss MiB"] / results[1][moment]["Pss MiB"]
        print(f"\nPss of 2 processes / 1, {moment}: {ratio:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
