"""The `modelyard` command: its group, and one clear line instead of a traceback for every error."""

import json
import sys
from typing import Any

import click
from pydantic import ValidationError

from modelyard.config import get_settings
from modelyard.errors import ModelyardError
from modelyard.registry.store import Registry


def open_registry() -> Registry:
    return Registry(get_settings().model_dir)


class Group(click.Group):
    """Prints modelyard errors as one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            click.echo(f"error: {exc.message}", err=True)
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
