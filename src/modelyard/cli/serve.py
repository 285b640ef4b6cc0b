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
    help="Server processes; each loads the models and follows hot swaps. With more than one, set "
    "PROMETHEUS_MULTIPROC_DIR to an empty folder so that /metrics sums them.",
)
def serve(host: str, port: int, processes: int) -> None:
    """Run the real-time API with uvicorn."""
    import uvicorn

    from modelyard.api import create_app
    from modelyard.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    # several processes need an import string: each builds its own app
    app = create_app(settings) if processes == 1 else "modelyard.api:create_app"
    uvicorn.run(
        app, factory=processes > 1, workers=processes, host=host, port=port, log_config=None, access_log=False
    )
