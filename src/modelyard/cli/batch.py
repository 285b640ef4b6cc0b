"""Scoring files here (`score`), without Redis or the API, and the batch worker itself."""

from pathlib import Path

import click

from modelyard.cli.base import main, open_registry, print_warnings
from modelyard.cli.progress import progress_bar
from modelyard.config import get_settings
from modelyard.formats import FORMATS


@main.command("score")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--version", type=int, default=None, help="Pin a version instead of production.")
@click.option("--alias", default=None, help="Score with the version this alias points at.")
@click.option(
    "--output",
    default=None,
    help="Output file, or folder when it ends with '/' [default: beside INPUT, INPUT's name + "
    ".predictions.FORMAT].",
)
@click.option(
    "--format",
    "fmt_option",
    type=click.Choice(sorted(FORMATS)),
    default=None,
    help="Output format [default: OUTPUT's suffix, else the input's].",
)
@click.option(
    "--input-format", type=click.Choice(sorted(FORMATS)), default=None, help="When INPUT's name does not say."
)
@click.option("--fail-fast", is_flag=True, help="Stop at the first invalid row instead of setting it aside.")
def score_command(
    input_path: Path,
    model_name: str,
    version: int | None,
    alias: str | None,
    output: str | None,
    fmt_option: str | None,
    input_format: str | None,
    fail_fast: bool,
) -> None:
    """Score a CSV, Parquet or JSON Lines file here, in chunks, without Redis or the API.

    INPUT is a path on this machine (jobs, by contrast, name files in the data folder). Rows that
    fail validation go to OUTPUT's name + .errors.jsonl, one JSON object per row.
    """
    from modelyard.batch.files import output_files, score_file
    from modelyard.formats import detect_format
    from modelyard.serving.load import load

    settings = get_settings()
    if version is not None and alias is not None:
        raise click.UsageError("pass either --version or --alias, not both")
    model_version = open_registry().pick(model_name, version, alias)
    source_format = detect_format(input_path.name, None, input_format, "pass --input-format")
    folder = output is None or output.endswith("/") or Path(output).is_dir()
    target, errors, fmt = output_files(
        Path(output) if output else input_path.parent,
        folder=folder,
        stem=input_path.stem,
        input_format=source_format,
        requested_format=fmt_option,
    )
    model = load(model_version, settings.allow_version_mismatch, settings.batch_n_jobs, settings.runtime)
    with progress_bar(f"{model_name} v{model.version}") as bar:
        result = score_file(
            model,
            input_path,
            source_format,
            output=target,
            errors_output=errors,
            output_format=fmt,
            chunk_rows=settings.chunk_rows,
            fail_fast=fail_fast,
            on_progress=bar,
        )
    rate = result.rows_total / result.seconds if result.seconds else 0.0
    click.echo(
        f"scored {result.rows_done} rows with {model_name} version {model.version} in "
        f"{result.seconds:.1f}s ({rate:,.0f} rows/s): {target}"
    )
    click.echo(f"{result.rows_failed} invalid rows set aside: {errors}")
    print_warnings(result.warnings)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for jobs.")
@click.option("--name", default=None, help="Worker name, as shown in job records [default: generated].")
def worker_command(burst: bool, name: str | None) -> None:
    """Run a batch worker: takes jobs from the Redis queue (MODELYARD_REDIS_URL) and scores them."""
    from modelyard.batch import worker

    worker.run(get_settings(), burst=burst, name=name)
