"""Scoring files here (`score`), without Redis or the API, and the batch worker itself."""

from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelyard.cli.base import main, open_registry, print_warnings
from modelyard.cli.progress import progress_bar
from modelyard.config import get_settings
from modelyard.formats import FORMATS

if TYPE_CHECKING:
    from modelyard.batch.files import BatchResult
    from modelyard.scoring.predict import LoadedModel


@main.command("score")
@click.argument("input_path", metavar="INPUT")
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--version", type=int, default=None, help="Pin a version instead of production.")
@click.option("--alias", default=None, help="Score with the version this alias points at.")
@click.option(
    "--output",
    default=None,
    help="Output file, or folder when it ends with '/'; or s3://BUCKET/KEY, or s3://BUCKET/PREFIX/ "
    "for a dataset [default: beside INPUT, INPUT's name + .predictions.FORMAT].",
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
    input_path: str,
    model_name: str,
    version: int | None,
    alias: str | None,
    output: str | None,
    fmt_option: str | None,
    input_format: str | None,
    fail_fast: bool,
) -> None:
    """Score a CSV, Parquet or JSON Lines file here, in chunks, without Redis or the API.

    INPUT is a path on this machine (jobs, by contrast, name files in the data folder), or an object
    (s3://BUCKET/KEY) or every object under a prefix (s3://BUCKET/PREFIX/) of a store named in the
    connections file (MODELYARD_CONNECTIONS). Rows that fail validation go to OUTPUT's name +
    .errors.jsonl, one JSON object per row.
    """
    from modelyard.batch.files import output_files, score_file
    from modelyard.formats import detect_format
    from modelyard.serving.load import load
    from modelyard.stores.uris import is_object_uri, is_table_uri

    settings = get_settings()
    if version is not None and alias is not None:
        raise click.UsageError("pass either --version or --alias, not both")
    model_version = open_registry().pick(model_name, version, alias)
    model = load(model_version, settings.allow_version_mismatch, settings.batch_n_jobs, settings.runtime)
    in_store = [
        place for place in (input_path, output) if place and (is_object_uri(place) or is_table_uri(place))
    ]
    if in_store:
        _score_in_stores(model, input_path, output, fmt_option, input_format, fail_fast)
        return
    source = Path(input_path)
    if not source.is_file():
        raise click.BadParameter(f"{input_path!r} is no file on this machine", param_hint="INPUT")
    source_format = detect_format(source.name, None, input_format, "pass --input-format")
    folder = output is None or output.endswith("/") or Path(output).is_dir()
    target, errors, fmt = output_files(
        Path(output) if output else source.parent,
        folder=folder,
        stem=source.stem,
        input_format=source_format,
        requested_format=fmt_option,
    )
    with progress_bar(f"{model_name} v{model.version}") as bar:
        result = score_file(
            model,
            source,
            source_format,
            output=target,
            errors_output=errors,
            output_format=fmt,
            chunk_rows=settings.chunk_rows,
            fail_fast=fail_fast,
            on_progress=bar,
        )
    _report(result, model)


def _report(result: "BatchResult", model: "LoadedModel") -> None:
    rate = result.rows_total / result.seconds if result.seconds else 0.0
    click.echo(
        f"scored {result.rows_done} rows with {model.name} version {model.version} in "
        f"{result.seconds:.1f}s ({rate:,.0f} rows/s): {result.output}"
    )
    click.echo(f"{result.rows_failed} invalid rows set aside: {result.errors_output}")
    print_warnings(result.warnings)


def _score_in_stores(
    model: "LoadedModel",
    input_place: str,
    output: str | None,
    fmt: str | None,
    input_format: str | None,
    fail_fast: bool,
) -> None:
    """Scoring from or to a store, as a worker scores a job in one piece; a path on this machine
    is then taken relative to the current folder (as a job's to the data volume)."""
    import uuid

    from modelyard.batch.files import score_spec
    from modelyard.batch.submit import JobRequest, resolve

    settings = get_settings().model_copy(update={"data_dir": Path.cwd().resolve()})
    request = JobRequest(
        model=model.name,
        input=input_place,
        version=model.version,
        output=output,
        format=fmt,
        fail_fast=fail_fast,
        input_format=input_format,
        overwrite=True,  # as for files here: the output is replaced
    )
    spec = resolve(request, settings, job_id=uuid.uuid4().hex[:16], origin="cli")
    with progress_bar(f"{model.name} v{model.version}") as bar:
        result = score_spec(settings, spec, model, bar)
    _report(result, model)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for jobs.")
@click.option("--name", default=None, help="Worker name, as shown in job records [default: generated].")
def worker_command(burst: bool, name: str | None) -> None:
    """Run a batch worker: takes jobs from the Redis queue (MODELYARD_REDIS_URL) and scores them."""
    from modelyard.batch import worker

    worker.run(get_settings(), burst=burst, name=name)
