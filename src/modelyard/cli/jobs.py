"""Batch jobs through the REST API (MODELYARD_API_URL): submit, follow, list, cancel, delete, download."""

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import click

from modelyard.batch.progress import Progress
from modelyard.batch.spec import ENDED, STATUSES
from modelyard.cli.base import Group, main, print_warnings, program
from modelyard.cli.client import ApiClient
from modelyard.cli.progress import progress_bar
from modelyard.config import get_settings
from modelyard.formats import FORMATS


@main.group(cls=Group)
def jobs() -> None:
    """Submit and follow batch jobs through the REST API (MODELYARD_API_URL)."""


@jobs.command("submit")
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option(
    "--input",
    "input_path",
    default=None,
    help="File to score, relative to the data folder; or s3://BUCKET/KEY or s3://BUCKET/PREFIX/.",
)
@click.option(
    "--upload",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Or a file on this machine: it is uploaded to the data folder first.",
)
@click.option("--version", type=int, default=None, help="Pin a version instead of production.")
@click.option("--alias", default=None, help="Score with the version this alias points at.")
@click.option(
    "--output",
    default=None,
    help="Output file, or folder ending in '/', in the data folder; or s3://BUCKET/KEY, or "
    "s3://BUCKET/PREFIX/ for a dataset with a _SUCCESS manifest.",
)
@click.option("--format", "output_format", type=click.Choice(sorted(FORMATS)), default=None)
@click.option(
    "--input-format", type=click.Choice(sorted(FORMATS)), default=None, help="When the name does not say."
)
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists (else the job is refused).")
@click.option("--fail-fast", is_flag=True, help="Fail the job at the first invalid row.")
@click.option("--key", multiple=True, help="A table input's column that identifies a row (repeat for more).")
@click.option("--keep", multiple=True, help="An input column the output keeps (repeat for more).")
@click.option(
    "--mode",
    type=click.Choice(["create", "replace", "append"]),
    default=None,
    help="For a table output: create (default), replace or append.",
)
@click.option("--wait", is_flag=True, help="Follow the job until it ends (a progress bar on a terminal).")
def jobs_submit(
    model_name: str,
    input_path: str | None,
    upload: Path | None,
    version: int | None,
    alias: str | None,
    output: str | None,
    output_format: str | None,
    input_format: str | None,
    overwrite: bool,
    fail_fast: bool,
    key: tuple[str, ...],
    keep: tuple[str, ...],
    mode: str | None,
    wait: bool,
) -> None:
    """Submit a file for scoring by the workers (--input in the data folder, or --upload)."""
    if (input_path is None) == (upload is None):
        raise click.UsageError("give either --input (a file in the data folder) or --upload (a local file)")
    fields = {
        "model": model_name,
        "version": version,
        "alias": alias,
        "output": output,
        "format": output_format,
        "input_format": input_format,
        "overwrite": overwrite,
        "fail_fast": fail_fast,
        "key": list(key) or None,
        "keep": list(keep) or None,
        "mode": mode,
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    client = ApiClient(get_settings())
    if upload is not None:
        with upload.open("rb") as handle:
            form = {
                name: str(value).lower() if isinstance(value, bool) else str(value)
                for name, value in fields.items()
            }
            record = client.request(
                "POST", "/v1/jobs/upload", files={"file": (upload.name, handle)}, data=form
            )
    else:
        record = client.request("POST", "/v1/jobs", json={"input": input_path, **fields})
    click.echo(f"job {record['id']} {record['status']}: {record['input']} -> {record['output']}")
    if wait:
        _follow(client, record)


def _follow(client: ApiClient, record: dict[str, Any]) -> None:
    """Poll the job until it ends, with a progress bar; a job that does not finish exits 1."""
    started, hinted = time.monotonic(), False
    try:
        with progress_bar(f"job {record['id']}") as bar:
            while record["status"] not in ENDED:
                time.sleep(0.5)
                record = client.request("GET", f"/v1/jobs/{record['id']}")
                bar(_job_progress(record))
                if record["status"] == "queued" and not hinted and time.monotonic() - started > 10:
                    hinted = True
                    _hint_no_worker(client)
    except KeyboardInterrupt:
        click.echo(
            f"\nstopped following; job {record['id']} goes on: {program()} jobs status {record['id']} "
            f"(or jobs cancel {record['id']})",
            err=True,
        )
        sys.exit(130)
    _print_job(record)
    if record["status"] != "finished":
        sys.exit(1)


def _hint_no_worker(client: ApiClient) -> None:
    queue = client.request("GET", "/readyz", expect_error=True).get("queue", {})
    if queue.get("workers") == 0:
        click.echo(f"\nstill queued: no worker is running (start one with `{program()} worker`)", err=True)


def _job_progress(record: dict[str, Any]) -> Progress:
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
    job_id, failed_rows = record["id"], record["error"] and record["error"]["code"] == "invalid_input"
    if record["status"] == "finished":
        click.echo(
            f"  output   {record['output']} in the data folder; get it: {program()} jobs result {job_id}"
        )
    if (record["status"] == "finished" or failed_rows) and record["rows_failed"]:
        click.echo(f"  errors   {record['errors_output']}; get it: {program()} jobs errors {job_id}")
    if record["status"] == "finished":
        click.echo(f"  report   rows, invalid rows and drift: {program()} jobs report {job_id}")
    if record["error"]:
        click.echo(f"  error    {record['error']['code']}: {record['error']['message']}")
    print_warnings(record.get("warnings", []))


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--limit", type=int, default=20, show_default=True)
def jobs_list(status: str | None, limit: int) -> None:
    """Recent jobs, newest first."""
    params: dict[str, Any] = {"limit": limit, **({"status": status} if status else {})}
    records = ApiClient(get_settings()).request("GET", "/v1/jobs", params=params)["jobs"]
    if not records:
        click.echo("no jobs")
        return
    width = max(18, *(len(r["id"]) for r in records))  # a scheduled job's id is longer
    click.echo(f"{'ID':<{width}} {'STATUS':<9} {'MODEL':<16} {'ROWS':>10} {'INVALID':>8}  INPUT")
    for r in records:
        model = f"{r['model']} v{r['version']}"
        counts = f"{r['rows_done']:>10} {r['rows_failed']:>8}"
        click.echo(f"{r['id']:<{width}} {r['status']:<9} {model:<16} {counts}  {r['input']}")


@jobs.command("cancel")
@click.argument("job_id")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued or running job (a running one stops at its next chunk, leaving no output)."""
    record = ApiClient(get_settings()).request("POST", f"/v1/jobs/{job_id}/cancel")
    click.echo(f"job {record['id']}: {record['status']}")


@jobs.command("delete")
@click.argument("job_id")
@click.option(
    "--files",
    is_flag=True,
    help="Also remove its output and errors files, and its uploaded input, from the data folder "
    "(outputs in a store are never deleted).",
)
def jobs_delete(job_id: str, files: bool) -> None:
    """Delete an ended job's record and report (cancel a running one first)."""
    client = ApiClient(get_settings())
    status = client.request("GET", f"/v1/jobs/{job_id}")["status"]
    if status not in ENDED:  # the API would cancel it (DELETE's old meaning): say so instead
        raise click.ClickException(
            f"job {job_id} is {status}: cancel it first ({program()} jobs cancel {job_id}), then delete it"
        )
    deleted = client.request("DELETE", f"/v1/jobs/{job_id}", params={"files": str(files).lower()})
    click.echo(f"job {job_id} deleted")
    for place in deleted["removed"]:
        click.echo(f"  removed  {place}")
    for place in deleted["kept"]:
        click.echo(f"  kept     {place}")


def download_options(default: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """JOB_ID, -o FILE and --force, for the commands that download a job's file."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option("--force", is_flag=True, help="Replace the file if it exists.")(command)
        command = click.option(
            "-o",
            "--output",
            "target",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help=f"The file to write [default: the job's {default} name, in this folder].",
        )(command)
        return click.argument("job_id")(command)

    return decorate


@jobs.command("result")
@download_options("output")
def jobs_result(job_id: str, target: Path | None, force: bool) -> None:
    """Download a finished job's scored file."""
    _download(job_id, "result", target, force)


@jobs.command("errors")
@download_options("errors file")
def jobs_errors(job_id: str, target: Path | None, force: bool) -> None:
    """Download a job's errors file: the rows set aside, one JSON object per line. A job that failed
    because no row was valid keeps it too."""
    _download(job_id, "errors", target, force)


def _download(job_id: str, which: str, target: Path | None, force: bool) -> None:
    client = ApiClient(get_settings())
    record = client.request("GET", f"/v1/jobs/{job_id}")
    named = record["output"] if which == "result" else record["errors_output"]
    target = target or Path(local_name(named, f"{job_id}.{which}"))
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists: pass --force to replace it, or -o another file")
    size = client.download(f"/v1/jobs/{job_id}/{which}", target)
    click.echo(f"wrote {target} ({size:,} bytes)")


def local_name(remote: str, fallback: str) -> str:
    """A file name for this folder from one the server gave: its last part, in safe characters
    only, never hidden, never a path."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(remote).name)[:150].lstrip(".")
    return name or fallback
