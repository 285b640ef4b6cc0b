"""The real-time API."""

import click

from modelyard.cli.base import main
from modelyard.config import get_settings


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes. With more than one, a parent process loads the models and forks the "
    "servers, which share them, and forks fresh ones after a promotion; set PROMETHEUS_MULTIPROC_DIR "
    "to an empty folder so that /metrics sums them.",
)
def serve(host: str, port: int, processes: int) -> None:
    """Run the real-time API: uvicorn, or with several processes a pre-fork server of uvicorn workers."""
    import uvicorn

    from modelyard.api import create_app, prefork
    from modelyard.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    if processes > 1:
        prefork.serve(app, settings, host, port, processes)
    else:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
