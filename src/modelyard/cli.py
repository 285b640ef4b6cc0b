"""The `modelyard` command line."""

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from modelyard.api_client import ApiClient
from modelyard.config import get_settings
from modelyard.errors import ModelyardError
from modelyard.progress import progress_bar
from modelyard.registry import PRODUCTION, Registry
from modelyard.tabular import FORMATS

if TYPE_CHECKING:
    from modelyard.batch import Progress


def _registry() -> Registry:
    return Registry(get_settings().model_dir)


class _Group(click.Group):
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


@click.group(cls=_Group)
@click.version_option(package_name="modelyard")
def main() -> None:
    """Serve, register and manage scikit-learn models."""


@main.group(cls=_Group)
def demo() -> None:
    """The demo churn model."""


@demo.command("train")
@click.option("--rows", default=5000, show_default=True, help="Training rows to generate.")
def demo_train(rows: int) -> None:
    """Train the demo churn model, register it as `churn` and promote it to production."""
    from modelyard import demo as demo_module

    settings = get_settings()
    result = demo_module.train(_registry(), settings.data_dir, rows=rows)
    state = "already registered as" if result.reused else "registered as"
    click.echo(f"churn {state} version {result.version}, promoted to {PRODUCTION}")
    click.echo(f"holdout metrics: {json.dumps(result.metrics)}")
    click.echo(f"sample of new customers: {result.sample_path}")


@main.group(cls=_Group)
def models() -> None:
    """Register, promote and inspect model versions."""


def _parse_metric(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, float]:
    metrics = {}
    for item in values:
        key, sep, value = item.partition("=")
        try:
            metrics[key] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected NAME=NUMBER, e.g. accuracy=0.91")
    return metrics


@models.command("register")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name, e.g. churn.")
@click.option("--promote", is_flag=True, help="Also make this version the production one.")
@click.option("--description", default=None, help="A line about this version.")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    callback=_parse_metric,
    help="NAME=NUMBER, repeatable: metrics to keep with the version.",
)
def models_register(
    path: Path, name: str, promote: bool, description: str | None, metrics: dict[str, float]
) -> None:
    """Copy a fitted model (.joblib, .pkl, .pickle) into the registry as a new version."""
    registry = _registry()
    version = registry.register(path, name, description=description, metrics=metrics)
    click.echo(
        f"registered {name} version {version.version} (sha256 {version.metadata['artifact']['sha256'][:12]}…)"
    )
    if promote:
        registry.promote(name, version.version)
        click.echo(f"promoted {name} version {version.version} to {PRODUCTION}")


@models.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--alias", default=PRODUCTION, show_default=True, help="Alias to point at VERSION.")
def models_promote(name: str, version: int, alias: str) -> None:
    """Point an alias (production by default) at a version."""
    _registry().promote(name, version, alias)
    click.echo(f"promoted {name} version {version} to {alias}")


@models.command("list")
def models_list() -> None:
    """Every registered model with its versions and aliases."""
    registry = _registry()
    names = registry.model_names()
    if not names:
        click.echo(f"no models registered in {registry.root}")
        return
    click.echo(f"{'MODEL':<24} {'VERSIONS':<12} ALIASES")
    for name in names:
        aliases = ", ".join(f"{alias}={v}" for alias, v in registry.aliases(name).items()) or "-"
        numbers = registry.version_numbers(name)
        click.echo(f"{name:<24} {f'{numbers[0]}..{numbers[-1]}':<12} {aliases}")


@models.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print every version's full metadata as JSON.")
def models_show(name: str, as_json: bool) -> None:
    """A model's versions, aliases and input schema."""
    registry = _registry()
    versions = registry.versions(name)
    aliases = registry.aliases(name)
    if as_json:
        payload = {"name": name, "aliases": aliases, "versions": [v.metadata for v in versions]}
        click.echo(json.dumps(payload, indent=2))
        return
    by_version: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        by_version.setdefault(number, []).append(alias)
    click.echo(f"{name}")
    for version in versions:
        meta = version.metadata
        tags = f" [{', '.join(by_version[version.version])}]" if version.version in by_version else ""
        click.echo(
            f"  v{version.version}{tags}  {meta['created_at'][:19]}  {meta['task']}  "
            f"sklearn {meta['versions']['scikit-learn']}  metrics {json.dumps(meta['metrics'])}"
        )
    click.echo("input schema (newest version):")
    for feature in versions[-1].schema.features:
        extra = f" one of {feature.categories}" if feature.categories else ""
        click.echo(f"  {feature.name}: {feature.dtype}{extra}{' (nullable)' if feature.nullable else ''}")


@main.command("score")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--version", type=int, default=None, help="Pin a version instead of production.")
@click.option("--alias", default=None, help="Score with the version this alias points at.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output file [default: INPUT's name + .predictions.FORMAT, beside it].",
)
@click.option(
    "--format",
    "fmt_option",
    type=click.Choice(sorted(FORMATS)),
    default=None,
    help="Output format [default: OUTPUT's suffix, else the input's].",
)
@click.option("--fail-fast", is_flag=True, help="Stop at the first invalid row instead of setting it aside.")
def score_command(
    input_path: Path,
    model_name: str,
    version: int | None,
    alias: str | None,
    output: Path | None,
    fmt_option: str | None,
    fail_fast: bool,
) -> None:
    """Score a CSV, Parquet or JSON Lines file here, in chunks, without Redis or the API.

    Rows that fail validation go to OUTPUT's name + .errors.jsonl, one JSON object per row.
    """
    from modelyard import loading
    from modelyard.batch import score_file
    from modelyard.tabular import detect_format, output_format

    settings = get_settings()
    registry = _registry()
    if version is not None and alias is not None:
        raise click.UsageError("pass either --version or --alias, not both")
    model_version = (
        registry.get(model_name, version)
        if version is not None
        else registry.resolve(model_name, alias or PRODUCTION)
    )
    input_format = detect_format(input_path.name, None)
    fmt = output_format(fmt_option, output.name if output else None, input_format)
    output = output or input_path.with_name(f"{input_path.stem}.predictions.{fmt}")
    errors = output.with_name(f"{output.name.removesuffix(output.suffix)}.errors.jsonl")
    model = loading.load(model_version, settings.allow_version_mismatch, settings.batch_n_jobs)
    with progress_bar(f"{model_name} v{model.version}") as bar:
        result = score_file(
            model, input_path, input_format, output, errors, fmt, settings.chunk_rows, fail_fast, bar
        )
    rate = result.rows_total / result.seconds if result.seconds else 0.0
    click.echo(
        f"scored {result.rows_done} rows with {model_name} version {model.version} in "
        f"{result.seconds:.1f}s ({rate:,.0f} rows/s): {output}"
    )
    click.echo(f"{result.rows_failed} invalid rows set aside: {errors}")


@main.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty instead of waiting for jobs.")
@click.option("--name", default=None, help="Worker name, as shown in job records [default: generated].")
def worker_command(burst: bool, name: str | None) -> None:
    """Run a batch worker: takes jobs from the Redis queue (MODELYARD_REDIS_URL) and scores them."""
    from modelyard import worker

    worker.run(get_settings(), burst=burst, name=name)


@main.group(cls=_Group)
def jobs() -> None:
    """Submit and follow batch jobs through the REST API (MODELYARD_API_URL)."""


@jobs.command("submit")
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--input", "input_path", required=True, help="File to score, relative to the data volume.")
@click.option("--version", type=int, default=None, help="Pin a version instead of production.")
@click.option("--alias", default=None, help="Score with the version this alias points at.")
@click.option(
    "--output", default=None, help="Output file, or folder ending in '/', relative to the data volume."
)
@click.option("--format", "output_format", type=click.Choice(sorted(FORMATS)), default=None)
@click.option("--fail-fast", is_flag=True, help="Fail the job at the first invalid row.")
@click.option("--wait", is_flag=True, help="Follow the job with a progress bar until it ends.")
def jobs_submit(
    model_name: str,
    input_path: str,
    version: int | None,
    alias: str | None,
    output: str | None,
    output_format: str | None,
    fail_fast: bool,
    wait: bool,
) -> None:
    """Submit a file on the data volume for scoring by the workers."""
    body = {
        "model": model_name,
        "input": input_path,
        "version": version,
        "alias": alias,
        "output": output,
        "format": output_format,
        "fail_fast": fail_fast,
    }
    client = ApiClient(get_settings())
    record = client.request("POST", "/v1/jobs", json={k: v for k, v in body.items() if v is not None})
    click.echo(f"job {record['id']} {record['status']}: {record['input']} -> {record['output']}")
    if wait:
        _follow(client, record)


def _follow(client: ApiClient, record: dict[str, Any]) -> None:
    """Poll the job until it ends, with a progress bar; a job that does not finish exits 1."""
    with progress_bar(f"job {record['id']}") as bar:
        while record["status"] not in ("finished", "failed", "canceled"):
            time.sleep(0.5)
            record = client.request("GET", f"/v1/jobs/{record['id']}")
            bar(_job_progress(record))
    _print_job(record)
    if record["status"] != "finished":
        sys.exit(1)


def _job_progress(record: dict[str, Any]) -> "Progress":
    from modelyard.batch import Progress

    return Progress(record["rows_done"], record["rows_failed"], record["progress"], record["rows_total"], 0.0)


@jobs.command("status")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the whole job record as JSON.")
def jobs_status(job_id: str, as_json: bool) -> None:
    """One job: status, progress, outputs, error."""
    record = ApiClient(get_settings()).request("GET", f"/v1/jobs/{job_id}")
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        _print_job(record)


def _print_job(record: dict[str, Any]) -> None:
    click.echo(f"job {record['id']}: {record['status']}")
    click.echo(f"  model    {record['model']} version {record['version']}")
    click.echo(f"  input    {record['input']}")
    total = record["rows_total"] if record["rows_total"] is not None else "?"
    click.echo(f"  rows     {record['rows_done']} scored, {record['rows_failed']} invalid, of {total}")
    if record["status"] == "finished":
        click.echo(f"  output   {record['output']}")
        click.echo(f"  errors   {record['errors_output']}")
    if record["error"]:
        click.echo(f"  error    {record['error']['code']}: {record['error']['message']}")


@jobs.command("list")
@click.option("--status", type=click.Choice(["queued", "started", "finished", "failed", "canceled"]))
@click.option("--limit", type=int, default=20, show_default=True)
def jobs_list(status: str | None, limit: int) -> None:
    """Recent jobs, newest first."""
    params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
    records = ApiClient(get_settings()).request("GET", "/v1/jobs", params=params)["jobs"]
    if not records:
        click.echo("no jobs")
        return
    click.echo(f"{'ID':<18} {'STATUS':<9} {'MODEL':<16} {'ROWS':>10} {'INVALID':>8}  INPUT")
    for r in records:
        model = f"{r['model']} v{r['version']}"
        counts = f"{r['rows_done']:>10} {r['rows_failed']:>8}"
        click.echo(f"{r['id']:<18} {r['status']:<9} {model:<16} {counts}  {r['input']}")


@jobs.command("cancel")
@click.argument("job_id")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued or running job (a running one stops at its next chunk, leaving no output)."""
    record = ApiClient(get_settings()).request("DELETE", f"/v1/jobs/{job_id}")
    click.echo(f"job {record['id']}: {record['status']}")


@main.command("scheduler")
@click.option("--once", is_flag=True, help="Run the slots due now, then exit.")
@click.option(
    "--at",
    "at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
    default=None,
    help="With --once: take this moment as now, e.g. 2026-03-29T02:00+00:00 (tests, replays).",
)
@click.option("--check", is_flag=True, help="Exit 0 if a running scheduler ticked lately (a healthcheck).")
def scheduler_command(once: bool, at: datetime | None, check: bool) -> None:
    """Run the scheduler: enqueues each schedule's runs for the workers, exactly once per slot."""
    from modelyard import queue, scheduler, schedules
    from modelyard.logs import configure_logging

    settings = get_settings()
    if check:
        sys.exit(0 if scheduler.alive(settings) else 1)
    if at is not None and not once:
        raise click.UsageError("--at goes with --once")
    configure_logging(settings.log_level)
    service = scheduler.Scheduler(settings, schedules.load(settings), queue.connect(settings.redis_url))
    if once:
        for run in service.tick(at or datetime.now(UTC)):
            click.echo(f"{run['id']}: {run['status']}, {len(run['jobs'])} job(s)")
        return
    service.run_forever()


@main.group(cls=_Group)
def schedules() -> None:
    """Scoring schedules, through the REST API (MODELYARD_API_URL)."""


@schedules.command("list")
def schedules_list() -> None:
    """Every schedule with its next run and its last run."""
    answer = ApiClient(get_settings()).request("GET", "/v1/schedules")
    beat = answer["scheduler"]
    click.echo(
        f"scheduler: {'alive' if beat['alive'] else 'not running'} (last tick {beat['last_tick'] or '-'})"
    )
    if not answer["schedules"]:
        click.echo("no schedules published (is the scheduler running?)")
    for schedule in answer["schedules"]:
        last = schedule["last_run"]
        click.echo(
            f"{schedule['name']}: {schedule['cron']} {schedule['timezone']}, {schedule['model']} on "
            f"{schedule['input']} -> {schedule['output']}; next {schedule['next_run']}"
        )
        if last:
            click.echo(
                f"  last run {last['id']}: {last['status']}, {len(last['jobs'])} job(s) {last['jobs']}"
            )


@schedules.command("run")
@click.argument("name")
@click.option("--rescore", is_flag=True, help="Score every matching file, even those scored before.")
def schedules_run(name: str, rescore: bool) -> None:
    """Run a schedule now."""
    params = {"rescore": "true"} if rescore else {}
    record = ApiClient(get_settings()).request("POST", f"/v1/schedules/{name}/run", params=params)
    click.echo(f"run {record['id']}: {record['status']}, {len(record['jobs'])} job(s)")
    for path, job_id in zip(record["files"], record["jobs"], strict=True):
        click.echo(f"  {job_id}  {path}")


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
