"""The real-time REST API: a thin adapter between HTTP and the registry and scoring core."""

from modelyard.api.app import create_app

__all__ = ["create_app"]
