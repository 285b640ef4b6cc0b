"""One run of a schedule: the new files it finds, one batch job each, and the record of it in Redis.

A file is new to a schedule unless a marker says that schedule already scored this very content:
one marker per input file, written by the worker (atomically) when the file's job has finished,
under .modelyard/scored/<schedule>/ on the data volume. A new model version does not re-score old
files; `--rescore` does. A file changed within MODELYARD_FILE_SETTLE_S is still being written and
waits for the next run.

The scheduler publishes its schedules and the runs here, so the API can list them and start a run
without reading the scheduler's configuration.
"""

import hashlib
import json
import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from rq.job import Job

from modelyard.batch import inputs, queue, records
from modelyard.batch.paths import relative_path
from modelyard.batch.places import store_for
from modelyard.batch.spec import Marker, Since, scheduled_by, scheduled_job_id
from modelyard.batch.submit import JobRequest, submit
from modelyard.config import Settings
from modelyard.errors import (
    AliasNotFound,
    ModelNotFound,
    ModelyardError,
    NotFound,
    ScheduleNotFound,
    VersionNotFound,
)
from modelyard.fsutil import sha256_file
from modelyard.registry.store import Registry
from modelyard.schedules.config import Schedule, slot_key
from modelyard.schedules.watermark import new_rows
from modelyard.stores.s3 import StoredObject
from modelyard.stores.uris import ObjectUri, is_object_uri, is_table_uri, parse

log = logging.getLogger(__name__)

MARKERS = ".modelyard/scored"
SCHEDULES_KEY = queue.PREFIX + "schedules"
RUNS_KEY = queue.PREFIX + "schedule-runs:{name}"
HEARTBEAT_KEY = queue.PREFIX + "scheduler:heartbeat"
"""When the scheduler last ticked (it expires after three ticks without one)."""
LAST_BEAT_KEY = queue.PREFIX + "scheduler:last-beat"
"""The same, never expiring: /metrics exports it, so that an alert sees it grow old."""
RUNS_KEPT = 100
RANGE_KEY = queue.PREFIX + "schedule-range:{job}"
"""The rows a table run scores, kept before its job is enqueued."""


def run_id(schedule: Schedule, slot: datetime) -> str:
    """The same schedule and slot always give the same run, and the same job ids."""
    return f"{schedule.name}-{slot_key(slot).replace('-', '').replace(':', '')}"


def run(
    schedule: Schedule,
    slot: datetime,
    identifier: str,
    settings: Settings,
    connection: redis.Redis,
    now: datetime,
    rescore: bool = False,
) -> dict[str, Any]:
    """Enqueue one job per new file matching the schedule, and record the run."""
    record: dict[str, Any] = {
        "id": identifier,
        "schedule": schedule.name,
        "slot": slot.isoformat(),
        "started_at": now.isoformat(),
        "rescore": rescore,
        "files": [],
        "jobs": [],
        "unchanged": 0,
        "waiting": [],
        "settles_at": {},
    }
    problem = _model_problem(schedule, Registry(settings.model_dir))
    if problem:
        record.update(status=problem)
        log.warning("schedule run enqueues nothing: %s", problem, extra={"schedule": schedule.name})
        return _record(connection, settings, record)
    ctx = _Run(schedule, slot, identifier, settings, connection)
    if is_table_uri(schedule.input):
        _enqueue_rows(ctx, record)
    elif is_object_uri(schedule.input):
        _enqueue_objects(ctx, record)
    else:
        _enqueue_files(ctx, record, now)
    record["status"] = record.get("status") or (
        "enqueued" if record["jobs"] else "waiting for files" if record["waiting"] else "no new files"
    )  # a table's run says "no new rows" itself
    log.info(
        "schedule run",
        extra={
            "schedule": schedule.name,
            "run": identifier,
            "jobs": len(record["jobs"]),
            "status": record["status"],
        },
    )
    return _record(connection, settings, record)


@dataclass(frozen=True)
class _Run:
    """One run being enqueued."""

    schedule: Schedule
    slot: datetime
    id: str
    settings: Settings
    connection: redis.Redis

    def enqueue(self, input_place: str, job_id: str, overwrite: bool, **scored: Any) -> None:
        """Submit the job of one input; `scored` holds what its markers need, or the rows of a
        table it scores (see submit)."""
        output = self.schedule.output_folder(self.slot)
        request = JobRequest(
            model=self.schedule.model,
            input=input_place,
            version=self.schedule.version,
            alias=self.schedule.alias,
            output=output,
            format=self.schedule.format,
            fail_fast=self.schedule.fail_fast,
            overwrite=overwrite,
            key=self.schedule.key,
            keep=self.schedule.keep,
            mode=self.schedule.mode or ("append" if is_table_uri(output) else None),
        )
        origin = scheduled_by(self.schedule.name)
        submit(request, self.settings, self.connection, job_id=job_id, origin=origin, **scored)

    def job_id(self, input_place: str) -> str:
        return scheduled_job_id(self.id, input_place)


def _enqueue_files(ctx: "_Run", record: dict[str, Any], now: datetime) -> None:
    """One job per new or changed file matching the glob."""
    rescore = record["rescore"]
    for path in _matching(ctx.schedule, ctx.settings.data_dir):
        relative = relative_path(ctx.settings.data_dir, path)
        stat = path.stat()
        if now.timestamp() - stat.st_mtime < ctx.settings.file_settle_s:
            record["waiting"].append(relative)
            settles = datetime.fromtimestamp(stat.st_mtime + ctx.settings.file_settle_s, UTC)
            record["settles_at"][relative] = settles.isoformat(timespec="seconds")
            continue
        marker_file = _marker_path(ctx.settings.data_dir, ctx.schedule, relative)
        if not rescore and _already_scored(marker_file, path, stat):
            record["unchanged"] += 1
            continue
        job_id = ctx.job_id(relative)
        if not Job.exists(job_id, ctx.connection):
            marker = Marker(
                path=relative_path(ctx.settings.data_dir, marker_file),
                input=relative,
                sha256=sha256_file(path),
                size=stat.st_size,
                mtime=stat.st_mtime,
            )
            ctx.enqueue(relative, job_id, overwrite=True, marker=marker)  # a file scored again is replaced
        record["files"].append(relative)
        record["jobs"].append(job_id)


def _enqueue_objects(ctx: "_Run", record: dict[str, Any]) -> None:
    """One job for the new or changed objects under the prefix (by key and ETag): their rows form
    one dataset, or one file, per run. A store that cannot be read is the run's status, not a crash."""
    prefix = parse(ctx.schedule.input, "input")
    job_id = ctx.job_id(ctx.schedule.input)
    try:
        store = store_for(ctx.settings, prefix, "read", "input")
        found = inputs.listed(store, prefix)
    except ModelyardError as exc:
        record["status"] = f"{exc.code}: {exc.message}"
        log.warning("schedule run enqueues nothing: %s", exc.message, extra={"schedule": ctx.schedule.name})
        return
    new, markers = [], []
    for item in found:
        uri = str(ObjectUri(prefix.bucket, item.key))
        marker_file = _marker_path(ctx.settings.data_dir, ctx.schedule, uri)
        if not record["rescore"] and _same_object(marker_file, item):
            record["unchanged"] += 1
            continue
        new.append(item)
        markers.append(
            Marker(
                path=relative_path(ctx.settings.data_dir, marker_file),
                input=uri,
                sha256="",
                size=item.size,
                mtime=0.0,
                etag=item.etag,
            )
        )
        record["files"].append(uri)
    if not new:
        return
    if not Job.exists(job_id, ctx.connection):
        try:  # only --rescore replaces a dataset: a run for new objects must not delete the last run's
            ctx.enqueue(
                ctx.schedule.input,
                job_id,
                overwrite=record["rescore"],
                objects=tuple(new),
                markers=tuple(markers),
            )
        except ModelyardError as exc:
            record["status"] = f"{exc.code}: {exc.message}"
            return
    record["jobs"].append(job_id)


def _enqueue_rows(ctx: "_Run", record: dict[str, Any]) -> None:
    """One job for the table: all its rows, or with `since`, the new ones (schedules/watermark.py).
    The range is fixed and kept with the run before the job is enqueued, so planning the same run
    again gives the same job; a run waits while an earlier one of its schedule has not ended."""
    job_id = ctx.job_id(ctx.schedule.input)
    record["jobs"].append(job_id)
    if Job.exists(job_id, ctx.connection):
        return
    since = None
    try:
        if ctx.schedule.since is not None:
            running = [
                r["id"] for r in runs(ctx.connection, ctx.schedule.name, 5) if r["status"] == "running"
            ]
            if running:
                record.update(jobs=[], status=f"waiting: run {running[0]} has not ended")
                return
            since = _range(ctx, job_id)
            if since is None:
                record.update(jobs=[], status="no new rows")
                return
            record["range"] = {"column": since.column, "after": since.after, "upto": since.upto}
        ctx.enqueue(ctx.schedule.input, job_id, overwrite=False, since=since)
    except ModelyardError as exc:
        record.update(jobs=[], status=f"{exc.code}: {exc.message}")
        log.warning("schedule run enqueues nothing: %s", exc.message, extra={"schedule": ctx.schedule.name})


def _range(ctx: "_Run", job_id: str) -> Since | None:
    """The run's range: the one kept for this job if it was planned already, else a new one, kept."""
    key = RANGE_KEY.format(job=job_id)
    kept = ctx.connection.get(key)
    if kept is not None:
        return Since(**json.loads(kept))
    since = new_rows(ctx.settings, ctx.schedule)
    if since is not None:
        ctx.connection.set(key, json.dumps(asdict(since)), ex=ctx.settings.job_retention_s, nx=True)
        return Since(**json.loads(ctx.connection.get(key) or json.dumps(asdict(since))))
    return None


def _same_object(marker: Path, item: StoredObject) -> bool:
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded.get("etag") == item.etag and recorded.get("size") == item.size)


def _model_problem(schedule: Schedule, registry: Registry) -> str | None:
    """Why the schedule's model cannot be used now, if it cannot (e.g. not trained yet)."""
    try:
        registry.pick(schedule.model, schedule.version, schedule.alias)
    except ModelNotFound:
        return "model not registered"
    except (AliasNotFound, VersionNotFound) as exc:
        return f"model not ready: {exc.message}"
    return None


def _matching(schedule: Schedule, data_dir: Path) -> list[Path]:
    """Regular files matching the glob, inside the data volume (a symlink out is ignored), and
    never modelyard's own outputs or markers."""
    root = data_dir.resolve()
    found = []
    for path in sorted(root.glob(schedule.input)):
        resolved = path.resolve()
        relative = path.relative_to(root)
        if not resolved.is_file() or not resolved.is_relative_to(root):
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        found.append(path)
    return found


def _marker_path(data_dir: Path, schedule: Schedule, relative: str) -> Path:
    digest = hashlib.sha256(relative.encode()).hexdigest()[:32]
    return data_dir.resolve() / MARKERS / schedule.name / f"{digest}.json"


def _already_scored(marker: Path, path: Path, stat: Any) -> bool:
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if recorded.get("size") == stat.st_size and recorded.get("mtime") == stat.st_mtime:
        return True  # unchanged since it was scored: no need to read it again
    return bool(recorded.get("size") == stat.st_size and recorded.get("sha256") == sha256_file(path))


def _record(connection: redis.Redis, settings: Settings, record: dict[str, Any]) -> dict[str, Any]:
    key = RUNS_KEY.format(name=record["schedule"])
    with connection.pipeline() as pipe:
        pipe.lpush(key, json.dumps(record))
        pipe.ltrim(key, 0, RUNS_KEPT - 1)
        pipe.expire(key, settings.job_retention_s)
        pipe.execute()
    return record


# ---- What the API reads ---------------------------------------------------------------------


def publish(connection: redis.Redis, schedules: list[Schedule], ttl_s: int) -> None:
    """The scheduler's schedules, for the API (replaced as a whole, so a removed one disappears)."""
    with connection.pipeline() as pipe:
        pipe.delete(SCHEDULES_KEY)
        if schedules:
            pipe.hset(SCHEDULES_KEY, mapping={s.name: s.model_dump_json() for s in schedules})
            pipe.expire(SCHEDULES_KEY, ttl_s)
        pipe.execute()


def published(connection: redis.Redis) -> list[Schedule]:
    raw = connection.hgetall(SCHEDULES_KEY)
    return sorted((Schedule.model_validate_json(value) for value in raw.values()), key=lambda s: s.name)


def heartbeat(connection: redis.Redis) -> str | None:
    """When the scheduler last ticked; None when it has not for three ticks."""
    beat = connection.get(HEARTBEAT_KEY)
    return queue.text(beat) if beat is not None else None


def last_beat(connection: redis.Redis) -> datetime | None:
    """When the scheduler last ticked, however long ago; None if it never did."""
    beat = connection.get(LAST_BEAT_KEY)
    return datetime.fromisoformat(queue.text(beat)) if beat is not None else None


def find(connection: redis.Redis, name: str) -> Schedule:
    raw = connection.hget(SCHEDULES_KEY, name)
    if raw is None:
        names = [s.name for s in published(connection)]
        raise ScheduleNotFound(
            f"no schedule named {name!r}; schedules: {names or 'none (is the scheduler running?)'}"
        )
    return Schedule.model_validate_json(raw)


def runs(connection: redis.Redis, name: str, limit: int = 10) -> list[dict[str, Any]]:
    """The latest runs, newest first, with the state of their jobs now."""
    records = [json.loads(item) for item in connection.lrange(RUNS_KEY.format(name=name), 0, limit - 1)]
    for record in records:
        record["status"] = _progress(connection, record)
    return records


def _progress(connection: redis.Redis, record: dict[str, Any]) -> str:
    if record["status"] != "enqueued":
        return str(record["status"])
    states = []
    for job_id in record["jobs"]:
        try:
            states.append(records.view(connection, job_id)["status"])
        except NotFound:
            states.append("expired")
    for state in ("failed", "canceled", "started", "queued"):
        if state in states:
            return "running" if state in ("started", "queued") else state
    return "finished"


def run_now(connection: redis.Redis, settings: Settings, name: str, rescore: bool = False) -> dict[str, Any]:
    """A run outside the schedule's slots, e.g. from POST /v1/schedules/{name}/run."""
    schedule = find(connection, name)
    now = datetime.now(UTC)
    slot = now.astimezone(schedule.zone)
    identifier = f"{schedule.name}-now-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:4]}"
    return run(schedule, slot, identifier, settings, connection, now, rescore=rescore)
