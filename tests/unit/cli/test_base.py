"""What the CLI's messages suggest: the command as the user runs it, and the file they gave."""

import sys
from pathlib import Path

import pytest

from modelyard.cli import base


@pytest.mark.parametrize(
    ("args", "found"),
    [
        (["score", "people.csv", "--model", "churn"], "people.csv"),
        (["score", "--model", "churn", "--output", "out/", "my file.csv"], "my file.csv"),
        (["score", "--fail-fast", "--format", "parquet", "a.csv"], "a.csv"),
        (["score", "--model", "churn"], "FILE"),
    ],
)
def test_the_input_of_a_score_command_line(args: list[str], found: str) -> None:
    assert base.score_input(args) == found


def test_the_program_is_named_as_the_user_runs_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = tmp_path / ".venv" / "bin" / "modelyard"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [".venv/bin/modelyard", "jobs", "list"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin")
    assert base.program() == ".venv/bin/modelyard"  # not on the PATH: the path it was run by
    monkeypatch.setenv("PATH", str(script.parent))
    assert base.program() == "modelyard"
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/modelyard/__main__.py", "jobs"])
    assert base.program() == "modelyard"  # python -m modelyard
