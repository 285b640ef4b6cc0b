"""The images every end-to-end test runs, built once per session."""

import shutil
import subprocess

import pytest

from tests.e2e.compose import ROOT, run


@pytest.fixture(scope="session")
def images(request: pytest.FixtureRequest) -> str:
    """Built offline, as on a host with no registry: Debian stand-in bases, wheels from this host;
    the demo profile's S3 test server and PostgreSQL too."""
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        raise RuntimeError(
            "the end-to-end tests need a running Docker engine: run `make test` (it starts one)"
        )
    log = run("scripts/images.sh", "--offline", "--demo", both=True)
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        for line in log.splitlines():  # into CI's log: how the images were built
            if line.startswith("images.sh:") or ("modelyard/" in line and "MB" in line):
                terminal.write_line(f"    {line}")
    chosen = (ROOT / ".images.env").read_text()
    assert "PYTHON_IMAGE=modelyard/python-offline" in chosen, chosen
    return chosen
