"""The stack the console is tried on, each part its own real process: redis-server, the API with a
key, a worker and the scheduler; the demo model with its reference profile, a model whose feature
name is markup, and demo customers on the data volume (one file of them drifted, with bad rows).
The browser tests and `make screenshots` both use it."""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import yaml
from sklearn.linear_model import LogisticRegression

from modelyard.registry.store import Registry
from modelyard.tabular import write_table
from tests import factories
from tests.server import ApiServer, RedisServer, WorkerProcess, run_cli

KEY = "console-test-key"
MARKUP = "<img src=x onerror=alert(1)>"
"""A feature name that a page building HTML from strings would turn into a running script."""
WIDE_FEATURES = 30
"""The model "wide" has more features than a page of charts shows at first."""
SCHEDULE = "nightly"
CHUNK_ROWS = 200
SLOW_S = 0.5
"""The model "slow" takes this long per chunk: its job on incoming/slow.csv lasts 10 s."""


@dataclass
class ConsoleStack:
    root: Path
    api: ApiServer
    key: str

    @property
    def data(self) -> Path:
        return self.root / "data"

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )


@contextlib.contextmanager
def console_stack(root: Path) -> Iterator[ConsoleStack]:
    run_cli(root, "demo", "train")  # churn, profiled on its training data
    _register_markup_model(root)
    _register_wide_model(root)
    registry = Registry(root / "models")
    registry.register(factories.save(factories.slow_classifier(SLOW_S), root / "slow.joblib"), "slow")
    registry.promote("slow", 1)
    incoming = root / "data" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    (incoming / "slow.csv").write_bytes(write_table(factories.frame(20 * CHUNK_ROWS), "csv"))
    run_cli(root, "demo", "customers", "--rows", "2000", "-o", str(incoming / "customers.csv"))
    nightly = incoming / SCHEDULE
    nightly.mkdir()
    run_cli(root, "demo", "customers", "--rows", "3000", "--seed", "5", "--drift", "--bad-rows", "60",
            "-o", str(nightly / "drifted.csv"))  # fmt: skip
    schedules = root / "schedules.yaml"
    schedule = {
        "name": SCHEDULE,
        "cron": "0 2 * * *",
        "model": "churn",
        "input": f"incoming/{SCHEDULE}/*.csv",
    }
    schedules.write_text(yaml.safe_dump({"schedules": [schedule]}))

    redis_server = RedisServer(root / "redis")
    settings = {
        "redis_url": redis_server.url,
        "data_dir": str(root / "data"),
        "file_settle_s": "0",
        "chunk_rows": str(CHUNK_ROWS),  # jobs in steps, so that a slow one can be watched
    }
    processes: list[subprocess.Popen[bytes]] = []
    api = worker = None
    try:
        api = ApiServer(root / "models", root / "api.log", api_key=KEY, **settings).wait()
        worker = WorkerProcess(root, redis_server.url, "w1", chunk_rows=str(CHUNK_ROWS))
        env = {
            **os.environ,
            **{f"MODELYARD_{name.upper()}": value for name, value in settings.items()},
            "MODELYARD_MODEL_DIR": str(root / "models"),
            "MODELYARD_SCHEDULES": str(schedules),
            "MODELYARD_SCHEDULER_TICK_S": "1",
            "MODELYARD_NIGHTLY_CRON": "",  # the built-in schedule: this one takes its name
        }
        with (root / "scheduler.log").open("w") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "modelyard", "scheduler"], env=env, stdout=log, stderr=log
                )
            )
        yield ConsoleStack(root, api, KEY)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
        if worker is not None:
            worker.stop()
        if api is not None:
            api.stop()
        redis_server.stop()


def _register_wide_model(root: Path) -> None:
    """A model of many numeric features, with a reference profile."""
    rows = np.random.default_rng(3).normal(size=(300, WIDE_FEATURES))
    data = pd.DataFrame(rows, columns=[f"x{i:02d}" for i in range(WIDE_FEATURES)])
    model = LogisticRegression().fit(data, rows[:, 0] > 0)
    registry = Registry(root / "models")
    registry.register(factories.save(model, root / "wide.joblib"), "wide")
    registry.promote("wide", 1)
    data.to_csv(root / "wide.csv", index=False)
    run_cli(root, "models", "profile", "wide", "1", "--reference", str(root / "wide.csv"))


def _register_markup_model(root: Path) -> None:
    data = factories.frame(80, seed=2).rename(columns={"income": MARKUP})[["age", MARKUP]]
    registry = Registry(root / "models")
    for strength in (1.0, 0.5):  # version 2 waits for promotion
        model = LogisticRegression(C=strength).fit(data, factories.labels(factories.frame(80, seed=2)))
        registry.register(factories.save(model, root / "markup.joblib"), "markup")
    registry.promote("markup", 1)
