"""Real processes: the API (`python -m modelyard serve`) on a free port, the CLI, batch workers and Redis."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
"""The repository."""


def run_cli(
    root: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The modelyard CLI in its own process, as an operator on another container would run it,
    with the registry in root/models and data in root/data (and any other settings in env)."""
    env = {
        **os.environ,
        "MODELYARD_MODEL_DIR": str(root / "models"),
        "MODELYARD_DATA_DIR": str(root / "data"),
        **(env or {}),
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
    def __init__(self, model_dir: Path, log_path: Path, processes: int = 1, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            **os.environ,
            "MODELYARD_MODEL_DIR": str(model_dir),
            "MODELYARD_RELOAD_INTERVAL_S": "0.5",
        }
        env.update({f"MODELYARD_{key.upper()}": value for key, value in settings.items()})
        self.processes = processes
        if processes > 1:  # /metrics sums the processes
            metrics = log_path.with_suffix(".metrics")
            metrics.mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelyard",
                "serve",
                "--port",
                str(self.port),
                "--processes",
                str(processes),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait(self, ready: bool = True, timeout: float = 60) -> "ApiServer":
        """Until /healthz answers (and, with ready, /readyz says ready) and every process is up."""
        path = "/readyz" if ready else "/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}:\n{self.logs()}")
            try:
                workers = len(descendants(self.process.pid)) if self.processes > 1 else 1
                if self.client.get(path).status_code == 200 and workers == self.processes:
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


class RedisServer:
    """A private redis-server on a free port, in its own folder, persisting nothing."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed: run `make test`, whose set-up installs it "
                "(apt-get install redis-server), or install it yourself"
            )
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self._binary = binary
        self.start()

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(
            [
                self._binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.folder / "redis.log"),
            ],
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start: {(self.folder / 'redis.log').read_text()}")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class S3Server:
    """moto's S3 server (`moto_server`, from PyPI: no S3 server is packaged in Debian) in its own
    process on a free port, checking request signatures: only the access key of the IAM user made
    at start works, and a wrong secret is refused as a real store refuses it."""

    UNSIGNED_SETUP_CALLS = 4  # the user, its policy and its key are made before signing is enforced

    def __init__(self, folder: Path) -> None:
        binary = Path(sys.executable).with_name("moto_server")
        if not binary.exists():
            raise RuntimeError(
                "moto_server is not installed: run `make test`, whose set-up installs the dev "
                'dependencies (pip install "moto[server]")'
            )
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "moto.log"
        self._log = self.log_path.open("w")
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(self.UNSIGNED_SETUP_CALLS)}
        self.process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait()
        self.access_key, self.secret_key = self._make_user()

    def _wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"moto_server did not start: {self.log_path.read_text()}")

    def _make_user(self) -> tuple[str, str]:
        import json

        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="modelyard")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="modelyard", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="modelyard")["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def client(self, secret_key: str | None = None):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self._log.close()


class WorkerProcess:
    """`modelyard worker` in its own process, as the worker container runs it."""

    def __init__(self, root: Path, redis_url: str, name: str, **settings: str) -> None:
        self.name = name
        self.log_path = root / f"worker-{name}.log"
        env = {
            **os.environ,
            "MODELYARD_MODEL_DIR": str(root / "models"),
            "MODELYARD_DATA_DIR": str(root / "data"),
            "MODELYARD_REDIS_URL": redis_url,
        }
        env.update({f"MODELYARD_{key.upper()}": value for key, value in settings.items()})
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelyard", "worker", "--name", name],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def kill_tree(self) -> None:
        """SIGKILL the worker and every process under it (its work horse is in a group of its own)."""
        pids = [self.process.pid, *descendants(self.process.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_tree()
        self._log.close()


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def churn_api(root: Path, **settings: str) -> "ApiServer":
    """An API on a registry of its own in root, serving a churn-like classifier as version 1."""
    from modelyard.registry.store import Registry
    from tests import factories

    registry = Registry(root / "models")
    registry.register(factories.save(factories.classifier(), root / "m.joblib"), "churn")
    registry.promote("churn", 1)
    return ApiServer(registry.root, root / "api.log", **settings).wait()


@contextlib.contextmanager
def starting_workers(root: Path, redis_url: str, **defaults: str) -> Iterator[Callable[..., WorkerProcess]]:
    """A call that starts a named worker (settings over `defaults`); all of them stopped at the end."""
    started: list[WorkerProcess] = []

    def start(name: str, **settings: str) -> WorkerProcess:
        worker = WorkerProcess(root, redis_url, name, **{**defaults, **settings})
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
