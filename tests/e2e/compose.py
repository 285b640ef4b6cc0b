"""The stack of compose.yaml as a user runs it, from the end-to-end tests: commands, a stack in a
folder of its own, and waiting for what it does."""

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def run(
    *command: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    check: bool = True,
    both: bool = False,
    stdin: Any = None,
) -> str:
    """The command's standard output (and error, with both)."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=1800,
        stdin=stdin,
    )
    if check and result.returncode != 0:
        message = f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        raise AssertionError(message)
    return result.stdout + result.stderr if both else result.stdout


class Stack:
    """The stack of compose.yaml as a user runs it: in a folder of its own, with its own .env
    (`settings`); its http client sends MODELYARD_API_KEY when the stack has one."""

    def __init__(self, folder: Path, project: str, port: int, **settings: str) -> None:
        self.folder, self.project, self.port = folder, project, port
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "compose.yaml", folder / "compose.yaml")
        shutil.copy(ROOT / ".images.env", folder / "images.env")
        env = {
            "MODELYARD_REDIS_PASSWORD": secrets.token_hex(16),
            # as `make up` writes it when the demo profile is on: its PostgreSQL refuses to start without
            "MODELYARD_POSTGRES_PASSWORD": secrets.token_hex(16),
            "MODELYARD_PORT": str(port),
            "MODELYARD_API_PROCESSES": "2",
            "MODELYARD_WORKERS": "2",
            **settings,
        }
        (folder / ".env").write_text("".join(f"{key}={value}\n" for key, value in env.items()))
        self.settings = env
        key = env.get("MODELYARD_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60)

    def compose(self, *args: str, check: bool = True, both: bool = False) -> str:
        return run(
            "docker", "compose", "-p", self.project, "--env-file", ".env", "--env-file", "images.env", *args,
            cwd=self.folder, check=check, both=both,
        )  # fmt: skip

    def down(self) -> None:
        self.http.close()
        self.compose("down", "-v", "--remove-orphans", check=False)

    @contextmanager
    def running(self, what: str) -> Iterator["Stack"]:
        """Started afresh (`up --wait`, from empty volumes), then its last logs printed and it taken
        down with its volumes, whatever happened."""
        self.compose("down", "-v", check=False)
        try:
            started = time.monotonic()
            self.compose("up", "-d", "--wait")
            print(f"{what} healthy {time.monotonic() - started:.0f}s after `up`")
            yield self
        finally:
            print(self.compose("logs", "--tail", "30", check=False, both=True)[-6000:])
            self.down()


def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting: {value}"
        time.sleep(0.5)


def job(stack: Stack, job_id: str) -> dict[str, Any]:
    return stack.http.get(f"/v1/jobs/{job_id}").json()


def ended(record: dict[str, Any]) -> bool:
    return record["status"] in ("finished", "failed", "canceled")
