"""The `modelyard` command line: registry and demo, batch scoring and jobs, schedules, the API."""

from modelyard.cli import batch, jobs, models, report, schedules, serve
from modelyard.cli.base import main

__all__ = ["batch", "jobs", "main", "models", "report", "schedules", "serve"]
