"""The real-time API."""

import click

from modelyard.cli.base import main
from modelyard.config import get_settings


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the real-time API with uvicorn."""
    import uvicorn

    from modelyard.api import create_app
    from modelyard.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)
