"""The `modelyard` command: its group, and one clear line instead of a traceback for every error.

Commands that work on a registry folder here (models, demo, score) say which folder on stderr: in
the Compose setting the stack reads its own models volume, and a folder on the host is another
registry. When such a command finds no model that the API serves, it says where that model is.
"""

import json
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from modelyard.cli.client import ApiClient
from modelyard.config import get_settings
from modelyard.errors import ModelNotFound, ModelyardError
from modelyard.registry.store import Registry

ASK_API_S = 1.0
"""How long a local command waits for the API to say what it serves."""


def program() -> str:
    """How the user runs this command, for the commands a message suggests: `modelyard` when that
    is on the PATH, else the path it was run by (e.g. .venv/bin/modelyard)."""
    invoked, found = sys.argv[0], shutil.which("modelyard")
    if Path(invoked).name != "modelyard" or (found and Path(found).resolve() == Path(invoked).resolve()):
        return "modelyard"
    return invoked


SCORE_VALUES = {"--model", "--version", "--alias", "--output", "--format", "--input-format"}
"""The options of `score` that take a value, to find its INPUT among the arguments."""


def score_input(args: list[str]) -> str:
    """The INPUT of a `score` command line, or FILE when it cannot be told."""
    rest = iter(args[1:])
    for arg in rest:
        if arg in SCORE_VALUES:
            next(rest, None)
        elif not arg.startswith("-"):
            return arg
    return "FILE"


def open_registry() -> Registry:
    """The registry folder the settings name (MODELYARD_MODEL_DIR), said on stderr."""
    registry = Registry(get_settings().model_dir)
    click.echo(f"registry: {registry.root.resolve()} (MODELYARD_MODEL_DIR)", err=True)
    return registry


def served_by_api() -> tuple[str, list[str]] | None:
    """The API at MODELYARD_API_URL and the models it serves, as its /readyz says within a second;
    None when no API answers. Never Docker: the API may as well be on another machine."""
    client = ApiClient(get_settings(), timeout_s=ASK_API_S)
    try:
        answer = client.request("GET", "/readyz", expect_error=True)
    except ModelyardError:
        return None
    finally:
        client.close()
    return client.url, [str(entry.get("model")) for entry in answer.get("models", [])]


def served_elsewhere(model: str) -> str:
    """Where a model this folder lacks is, when the API serves it; empty when it does not."""
    served = served_by_api()
    if served is None or model not in served[1]:
        return ""
    args = sys.argv[1:]
    if args[:1] == ["score"]:
        upload = shlex.quote(score_input(args))
        how = (
            f"score the file on its workers: {program()} jobs submit --model {model} --upload {upload} --wait"
        )
    else:
        how = f"run the command in the stack: docker compose run --rm admin modelyard {shlex.join(args)}"
    return (
        f". The API at {served[0]} serves {model!r}: it reads another registry (in the Compose stack, "
        f"its models volume) than this command's folder; to use it, {how}"
    )


class Group(click.Group):
    """Prints modelyard errors as one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            elsewhere = served_elsewhere(exc.model) if isinstance(exc, ModelNotFound) else ""
            click.echo(f"error: {exc.message}{elsewhere}", err=True)
            for detail in exc.details[:20]:
                click.echo(f"  {json.dumps(detail, default=str)}", err=True)
            sys.exit(1)
        except ValidationError as exc:
            click.echo(f"error: invalid MODELYARD_ setting(s); see .env.example\n{exc}", err=True)
            sys.exit(1)


@click.group(cls=Group)
@click.version_option(package_name="modelyard")
def main() -> None:
    """Serve, register and manage scikit-learn models; score files; run the worker and scheduler."""


def print_warnings(warnings: list[dict[str, Any]]) -> None:
    for warning in warnings:
        click.echo(
            f"warning: {warning['count']} row(s) scored with {warning['code']} in {warning['field']!r}"
        )
