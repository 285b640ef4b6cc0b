"""Real modelyard processes: the API (`python -m modelyard serve`) on a free port, and the CLI."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def run_cli(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The modelyard CLI in its own process, as an operator on another container would run it,
    with the registry in root/models and data in root/data."""
    env = {
        **os.environ,
        "MODELYARD_MODEL_DIR": str(root / "models"),
        "MODELYARD_DATA_DIR": str(root / "data"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", *args], env=env, cwd=root, capture_output=True, text=True
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ApiServer:
    def __init__(self, model_dir: Path, log_path: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            **os.environ,
            "MODELYARD_MODEL_DIR": str(model_dir),
            "MODELYARD_RELOAD_INTERVAL_S": "0.5",
        }
        env.update({f"MODELYARD_{key.upper()}": value for key, value in settings.items()})
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelyard", "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait(self, ready: bool = True, timeout: float = 60) -> "ApiServer":
        """Until /healthz answers (and, with ready, /readyz says ready)."""
        path = "/readyz" if ready else "/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if self.client.get(path).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the API did not answer {path} within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
