import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelyard.registry.store import Registry
from tests.server import ApiServer

if os.environ.get("MUTANT_UNDER_TEST"):  # mutmut: the CLI and servers in subprocesses run the mutant too
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
    )


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "models")


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """Starts real API servers on a registry folder; stops them all at the end of the test."""
    servers: list[ApiServer] = []

    def start(model_dir: Path, ready: bool = True, processes: int = 1, **settings: str) -> ApiServer:
        server = ApiServer(model_dir, tmp_path / f"api-{len(servers)}.log", processes, **settings)
        servers.append(server)
        return server.wait(ready=ready)

    yield start
    for server in servers:
        server.stop()
