"""The CLI on a host beside a running API that reads another registry (the Compose setting): local
commands say which folder they used and where the model they did not find is; commands that go
through the API say how to give it its key."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.tabular import write_table
from tests import factories
from tests.server import ROOT, ApiServer, churn_api, free_port, run_cli

KEY = "stack-key"


@pytest.fixture(scope="module")
def stack_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The stack's API, on a registry of its own that serves churn, with a key."""
    api = churn_api(tmp_path_factory.mktemp("stack"), api_key=KEY)
    yield api
    api.stop()


def test_local_commands_name_their_folder_and_point_at_the_stack(
    stack_api: ApiServer, tmp_path: Path
) -> None:
    env = {"MODELYARD_API_URL": stack_api.url}
    folder = (tmp_path / "models").resolve()
    shown = run_cli(tmp_path, "models", "show", "churn", env=env, check=False)
    assert shown.returncode == 1
    assert shown.stderr.splitlines()[0] == f"registry: {folder} (MODELYARD_MODEL_DIR)"
    assert f"error: no model named 'churn'; registered models: none. The API at {stack_api.url} serves " in (
        shown.stderr
    )
    assert (
        "to use it, run the command in the stack: docker compose run --rm admin modelyard models show churn"
        in (shown.stderr)
    )

    people = tmp_path / "people.csv"
    people.write_bytes(write_table(factories.frame(5), "csv"))
    scored = run_cli(tmp_path, "score", str(people), "--model", "churn", env=env, check=False)
    assert scored.returncode == 1
    assert f"modelyard jobs submit --model churn --upload {people} --wait" in scored.stderr  # its own file

    artifact = factories.save(factories.classifier(seed=3), tmp_path / "fraud2.joblib")
    registered = run_cli(
        tmp_path, "models", "register", str(artifact), "--name", "fraud2", "--no-compile", env=env
    )
    assert registered.stdout.startswith("registered fraud2 version 1")  # stdout stays parseable
    assert (
        f"note: the API at {stack_api.url} serves ['churn'], which {folder} does not have"
        in registered.stderr
    )
    assert f"make register FILE={artifact} NAME=fraud2" in registered.stderr


def test_an_empty_folder_s_list_points_at_the_stack(stack_api: ApiServer, tmp_path: Path) -> None:
    listed = run_cli(tmp_path, "models", "list", env={"MODELYARD_API_URL": stack_api.url})
    assert listed.stdout.startswith("no models registered in")
    assert f"note: the API at {stack_api.url} serves ['churn']: it reads another registry" in listed.stderr


def test_without_an_api_the_message_is_the_folder_s_alone(tmp_path: Path) -> None:
    env = {"MODELYARD_API_URL": f"http://127.0.0.1:{free_port()}"}
    shown = run_cli(tmp_path, "models", "show", "churn", env=env, check=False)
    assert shown.stderr.splitlines()[1:] == ["error: no model named 'churn'; registered models: none"]


def test_a_command_through_the_api_says_how_to_give_it_the_key(stack_api: ApiServer, tmp_path: Path) -> None:
    env = {"MODELYARD_API_URL": stack_api.url}
    missing = run_cli(tmp_path, "jobs", "list", env=env, check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith(
        f"error: the API at {stack_api.url} wants its key, and this command has none: "
    )
    assert "export MODELYARD_API_KEY=KEY" in missing.stderr and "MODELYARD_ENV_FILE=.env" in missing.stderr
    wrong = run_cli(tmp_path, "jobs", "list", env={**env, "MODELYARD_API_KEY": "nope"}, check=False)
    assert "wants its key, and this command sent another one" in wrong.stderr
    (tmp_path / "stack.env").write_text(f"MODELYARD_API_KEY={KEY}\n")
    keyed = {**env, "MODELYARD_ENV_FILE": str(tmp_path / "stack.env")}
    listed = run_cli(tmp_path, "jobs", "list", env=keyed, check=False)
    assert "the job queue" in listed.stderr and "key" not in listed.stderr  # past the key; no Redis here


def test_registering_a_directory_says_what_probably_happened(tmp_path: Path) -> None:
    (tmp_path / "fraud.joblib").mkdir()  # what `docker run -v missing.joblib:/in/fraud.joblib` leaves
    refused = run_cli(
        tmp_path, "models", "register", str(tmp_path / "fraud.joblib"), "--name", "fraud", check=False
    )
    assert refused.returncode == 2
    assert "is a directory, not a model file" in refused.stderr
    assert (
        "Docker mounts an empty directory in its place" in refused.stderr
        and "modelyard models register - < FILE" in refused.stderr
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("missing.joblib", "register: missing.joblib: no such file"),
        ("folder.joblib", "register: folder.joblib is not a file (a directory?): give the model file itself"),
        ("notes.txt", "register: notes.txt: expected a .joblib, .pkl or .pickle file"),
    ],
)
def test_make_register_checks_the_file_before_docker(tmp_path: Path, given: str, message: str) -> None:
    (tmp_path / "folder.joblib").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "register.sh"), given, "fraud"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and result.stderr.strip() == message
