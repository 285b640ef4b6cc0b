"""The `modelyard` command line: registry and demo, batch scoring and jobs, schedules, the API."""

from modelyard.cli import batch, models, schedules, serve
from modelyard.cli.base import main

__all__ = ["batch", "main", "models", "schedules", "serve"]
