"""The report of a batch run, as a worker makes it: a tally that counts the chunks on the version's
reference profile, and once the run's outputs are committed, its report on the data volume and, for
a schedule's run, the figures /metrics exports (batch/metrics.py)."""

from datetime import UTC, datetime
from typing import Any

import redis

from modelyard.batch import metrics
from modelyard.batch.files import BatchResult
from modelyard.batch.spec import JobSpec, run_of
from modelyard.config import Settings
from modelyard.registry.store import Registry
from modelyard.reports import profile as profiles
from modelyard.reports import report as reports
from modelyard.reports.tally import Tally


def tally_for(settings: Settings, spec: JobSpec) -> Tally | None:
    """A tally on the job's version's profile (none when reports are off)."""
    if not settings.reports:
        return None
    profile, note = profiles.read(Registry(settings.model_dir).get(spec.model, spec.version))
    return Tally(profile, note)


def merged(settings: Settings, spec: JobSpec, parts: list[dict[str, Any]]) -> Tally | None:
    """A split job's tally: its parts' counts summed."""
    tally = tally_for(settings, spec)
    if tally is not None:
        for part in parts:
            tally.merge(part)
    return tally


def publish(connection: redis.Redis, settings: Settings, spec: JobSpec, result: BatchResult) -> None:
    """Write the report of a committed run; a schedule's run also leaves its figures for /metrics."""
    if result.tally is None:
        return
    schedule = spec.schedule
    about = {
        "job_id": spec.id,
        "model": spec.model,
        "version": spec.version,
        "origin": spec.origin,
        "schedule": schedule,
        "input": spec.input,
        "output": spec.output,
        "submitted_at": spec.submitted_at,
        "finished_at": datetime.now(UTC).isoformat(),
    }
    made = reports.build(result.tally, result.rows_done, result.rows_failed, about)
    reports.write(settings.data_dir, spec.id, made, settings.job_retention_s)
    if schedule is not None:
        metrics.record_schedule_run(connection, schedule, run_of(spec.id), made)
