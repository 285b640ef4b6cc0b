"""Scoring schedules, as the scheduler published them in Redis, and runs started by hand."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from modelyard.api.deps import Authorized, QueueDep, SettingsDep
from modelyard.api.errors import QUEUE_ERRORS, documented
from modelyard.api.schemas import RunList, RunRecord, ScheduleList
from modelyard.errors import (
    OutputExists,
    ScheduleNotFound,
    UnsupportedFormat,
)
from modelyard.schedules import runs as schedule_runs

router = APIRouter(
    prefix="/v1/schedules",
    tags=["schedules"],
    dependencies=[Authorized],
)


@router.get("", response_model=ScheduleList, responses=documented(*QUEUE_ERRORS))
def list_schedules(connection: QueueDep) -> dict[str, Any]:
    """Every schedule with its next run and its last run (slot, start, files, job ids, status)."""
    now = datetime.now(UTC)
    beat = schedule_runs.heartbeat(connection)
    schedules = []
    for schedule in schedule_runs.published(connection):
        last = schedule_runs.runs(connection, schedule.name, limit=1)
        schedules.append(
            {
                **schedule.model_dump(),
                "next_run": schedule.next_slot(now).isoformat(),
                "last_run": last[0] if last else None,
            }
        )
    return {
        "scheduler": {"alive": beat is not None, "last_tick": beat},
        "schedules": schedules,
    }


@router.get("/{name}/runs", response_model=RunList, responses=documented(*QUEUE_ERRORS, ScheduleNotFound))
def list_runs(
    name: str, connection: QueueDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> dict[str, Any]:
    """A schedule's latest runs, newest first."""
    schedule_runs.find(connection, name)
    return {"runs": schedule_runs.runs(connection, name, limit)}


@router.post(
    "/{name}/run",
    status_code=202,
    response_model=RunRecord,
    responses=documented(*QUEUE_ERRORS, ScheduleNotFound, OutputExists, UnsupportedFormat),
)
def run_schedule(
    name: str,
    connection: QueueDep,
    settings: SettingsDep,
    rescore: Annotated[bool, Query(description="Score files again even if this schedule has.")] = False,
) -> dict[str, Any]:
    """Run a schedule now: one job per new file (every matching file with rescore)."""
    return schedule_runs.run_now(connection, settings, name, rescore)
