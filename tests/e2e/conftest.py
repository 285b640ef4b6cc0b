"""The images every end-to-end test runs, built once per session, and the stack most of them share."""

import secrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.compose import ROOT, Stack, run
from tests.server import free_port

BUNDLE_TEST = "test_the_bundle_installs_with_nothing_but_docker"
"""test_stack.py's last test, which takes the shared stack down."""


@pytest.fixture(scope="session")
def images(request: pytest.FixtureRequest) -> str:
    """Built offline, as on a host with no registry: Debian stand-in bases, wheels from this host;
    the demo profile's S3 test server and PostgreSQL, and the monitoring profile's Prometheus and
    Alertmanager too."""
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        raise RuntimeError(
            "the end-to-end tests need a running Docker engine: run `make test` (it starts one)"
        )
    log = run("scripts/images.sh", "--offline", "--demo", "--monitoring", both=True)
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        for line in log.splitlines():  # into CI's log: how the images were built
            if line.startswith("images.sh:") or ("modelyard/" in line and "MB" in line):
                terminal.write_line(f"    {line}")
    chosen = (ROOT / ".images.env").read_text()
    assert "PYTHON_IMAGE=modelyard/python-offline" in chosen, chosen
    return chosen


@pytest.fixture(scope="session")
def stack(images: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack of test_stack.py and test_monitoring.py (one start for both): the monitoring profile
    on, with an API key as the bundle's installer sets one (Prometheus scrapes /metrics with it), and
    a scrape and rule evaluation every 2 s rather than 15, so that an alert fires within seconds."""
    folder = tmp_path_factory.mktemp("stack")
    stack = Stack(
        folder, "modelyard-e2e", free_port(),
        MODELYARD_CHUNK_ROWS="5000",
        MODELYARD_FILE_SETTLE_S="0",
        MODELYARD_API_KEY=secrets.token_hex(16),
        COMPOSE_PROFILES="monitoring",
        MODELYARD_PROMETHEUS_PORT=str(free_port()),
        MODELYARD_ALERTMANAGER_PORT=str(free_port()),
        MODELYARD_PROMETHEUS_INTERVAL="2s",
    )  # fmt: skip
    with stack.running("stack, before any model,"):
        yield stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_monitoring.py's tests run on the stack test_stack.py's tests leave: after those (the
    first wants a stack with no model yet) and before its bundle test, which takes the stack down."""
    monitoring = [item for item in items if item.path.name == "test_monitoring.py"]
    if not monitoring:
        return
    rest = [item for item in items if item not in monitoring]
    at = next((i for i, item in enumerate(rest) if item.name == BUNDLE_TEST), None)
    if at is None:  # no bundle test: after test_stack.py's tests, or where they were
        stack_tests = [i for i, item in enumerate(rest) if item.path.name == "test_stack.py"]
        at = stack_tests[-1] + 1 if stack_tests else items.index(monitoring[0])
    items[:] = rest[:at] + monitoring + rest[at:]
