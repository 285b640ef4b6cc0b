"""The scheduler service, and the schedules it publishes (through the REST API)."""

import sys
from datetime import UTC, datetime

import click

from modelyard.cli.base import Group, main
from modelyard.cli.client import ApiClient
from modelyard.config import get_settings


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
    from modelyard.batch import queue
    from modelyard.logs import configure_logging
    from modelyard.schedules.config import load as load_schedules
    from modelyard.schedules.service import Scheduler, alive

    settings = get_settings()
    if check:
        sys.exit(0 if alive(settings) else 1)
    if at is not None and not once:
        raise click.UsageError("--at goes with --once")
    configure_logging(settings.log_level)
    scheduler = Scheduler(
        settings, load_schedules(settings, check_stores=True), queue.connect(settings.redis_url)
    )
    if once:
        for run in scheduler.tick(at or datetime.now(UTC)):
            click.echo(f"{run['id']}: {run['status']}, {len(run['jobs'])} job(s)")
        return
    scheduler.run_forever()


@main.group(cls=Group)
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
    if len(record["jobs"]) == len(record["files"]):  # files: a job each
        for path, job_id in zip(record["files"], record["jobs"], strict=True):
            click.echo(f"  {job_id}  {path}")
    else:  # the objects of a bucket prefix: one job for them all
        for job_id in record["jobs"]:
            click.echo(f"  {job_id}  {len(record['files'])} object(s): {', '.join(record['files'])}")
    for path in record["waiting"]:
        settles = record.get("settles_at", {}).get(path, "later")
        click.echo(f"  waiting  {path}: changed lately, scored by a run from {settles} on")
