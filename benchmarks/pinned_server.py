"""`modelyard serve` for a benchmark: pinned to core 0, with the caller moved to core 1."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

SERVER_CORE, LOAD_CORE = 0, 1


def start_server(
    model_dir: Path, port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The API on `model_dir`, with only the MODELYARD_ settings given here; returns once ready."""
    command = [sys.executable, "-m", "modelyard", "serve", "--port", str(port)]
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) > 1:
        command = ["taskset", "-c", str(SERVER_CORE), *command]
        os.sched_setaffinity(0, {LOAD_CORE})  # the load generator (this process and its children)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    environment |= {"MODELYARD_MODEL_DIR": str(model_dir), **(env or {})}
    process = subprocess.Popen(command, env=environment, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the API did not become ready:\n{log.read_text()}")
