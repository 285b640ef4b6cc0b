"""Batch jobs as their submitters see them: status, progress, outputs, errors; listing; canceling;
deleting.

A split job is one job to its submitter: its status and counts sum those of its parts and of the
final join, whatever RQ says of the job that planned them.
"""

import shutil
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import redis
from rq import Queue
from rq.job import Job, JobStatus

from modelyard.batch import keeper, queue
from modelyard.batch.paths import data_path, upload_folder
from modelyard.batch.progress import merge_warnings
from modelyard.batch.spec import ENDED, JobSpec, Status
from modelyard.errors import JobAlreadyEnded, JobNotEnded, JobNotFound, ModelyardError
from modelyard.reports import report as reports
from modelyard.stores.uris import is_object_uri, is_table_uri

COUNTS = ("rows_done", "rows_failed", "rows_total")
RQ_STATUS: dict[JobStatus, Status] = {
    JobStatus.QUEUED: "queued",
    JobStatus.DEFERRED: "queued",
    JobStatus.SCHEDULED: "queued",
    JobStatus.STARTED: "started",
    JobStatus.FINISHED: "finished",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
    JobStatus.STOPPED: "canceled",
}


def view(connection: redis.Redis, job_id: str) -> dict[str, Any]:
    job = _fetch(connection, job_id)
    return _view(connection, job)


def list_views(
    connection: redis.Redis, status: Status | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Recent submitted jobs, newest first, optionally only those in one status."""
    found: list[dict[str, Any]] = []
    ids = queue.recent(connection, queue.JOB_INDEX_MAX)
    for start in range(0, len(ids), 100):
        for job in queue.fetch_many(connection, ids[start : start + 100]):
            if job is None:
                continue
            record = _view(connection, job)
            if status is None or record["status"] == status:
                found.append(record)
                if len(found) == limit:
                    return found
    return found


def cancel(connection: redis.Redis, job_id: str) -> dict[str, Any]:
    """Cancel a queued or running job (and every part of a split one). A running job stops at its
    next chunk boundary and leaves no partial output."""
    job = _fetch(connection, job_id)
    record = _view(connection, job)
    if record["status"] in ENDED:
        raise JobAlreadyEnded(f"job {job_id} has already ended ({record['status']}); nothing to cancel")
    connection.set(queue.cancel_key(job_id), "1", ex=job.result_ttl or 7 * 86400)
    for member in [job, *_members(connection, job)]:
        if member is not None and _status(member) not in ENDED:
            member.cancel()
    return _view(connection, job)


@dataclass(frozen=True)
class Deletion:
    """What deleting an ended job took away, besides its record, and what it left."""

    id: str
    removed: tuple[str, ...]
    """Files and folders removed from the data volume (only when asked to)."""
    kept: tuple[str, ...]
    """The job's files left on the data volume, and its outputs in a store, never deleted here."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "removed": list(self.removed), "kept": list(self.kept)}


def delete(connection: redis.Redis, job_id: str, data_dir: Path, files: bool = False) -> Deletion:
    """Forget an ended job: what Redis holds for it and for its parts and join (RQ's records and
    results, the job list's entry, the cancel, done, lock and snapshot keys, RQ's intermediate-queue
    marks) and its report. With
    `files`, also its output and errors files and its uploaded input (uploads/<id>/), on the data
    volume only: an output in a store (s3://, postgresql://) is never deleted here. A scheduled
    run's markers stay, so that the schedule does not score the same input again."""
    job = _fetch(connection, job_id)
    status = _view(connection, job)["status"]
    if status not in ENDED:
        raise JobNotEnded(f"job {job_id} is {status}: cancel it first (POST /v1/jobs/{job_id}/cancel)")
    members = [member for member in _members(connection, job) if member is not None]
    if any(member.execution_registry.get_execution_ids() for member in [job, *members]):
        raise JobNotEnded(
            f"job {job_id} is {status}, but a worker still holds it (it stops at its next chunk): "
            "delete it again in a few seconds"
        )
    removed, kept = _files(JobSpec.from_dict(job.args[0]), data_dir, files)
    with suppress(ModelyardError):  # an id that cannot name a report has none
        reports.path(data_dir, job_id).unlink(missing_ok=True)
    with connection.pipeline() as pipe:
        for member in [job, *members]:
            member.delete(pipeline=pipe)
            pipe.delete(
                queue.done_key(member.id), queue.lock_key(member.id), _first_seen_key(connection, member)
            )
        pipe.delete(queue.cancel_key(job_id), keeper.imported_key(job_id), keeper.parts_key(job_id))
        pipe.zrem(queue.JOB_INDEX, job_id)
        pipe.execute()
    return Deletion(job_id, tuple(removed), tuple(kept))


def _first_seen_key(connection: redis.Redis, job: Job) -> str:
    """RQ's mark of a job its worker's maintenance saw between dequeuing and starting it (kept a
    day, whatever becomes of the job)."""
    return Queue(job.origin, connection=connection).intermediate_queue.get_first_seen_key(job.id)


def _files(submitted: JobSpec, data_dir: Path, remove: bool) -> tuple[list[str], list[str]]:
    """The job's files on the data volume, removed or kept, and its outputs in a store, kept."""
    removed: list[str] = []
    kept: list[str] = []
    for place in (submitted.output, submitted.errors_output):
        if is_object_uri(place) or is_table_uri(place):
            kept.append(place)
            continue
        with suppress(ModelyardError):  # a path that leaves the volume is never touched
            path = data_path(data_dir, place, "output")
            if path.is_file():
                if remove:
                    path.unlink(missing_ok=True)
                (removed if remove else kept).append(place)
    folder = upload_folder(submitted.id)
    if submitted.origin == "upload" and PurePosixPath(submitted.input).parent == PurePosixPath(folder):
        path = data_path(data_dir, folder, "input")
        if path.is_dir():
            if remove:
                shutil.rmtree(path, ignore_errors=True)
            (removed if remove else kept).append(f"{folder}/")
    return removed, kept


def spec(connection: redis.Redis, job_id: str) -> JobSpec:
    """What a submitted job was asked to do."""
    return JobSpec.from_dict(_fetch(connection, job_id).args[0])


def _fetch(connection: redis.Redis, job_id: str) -> Job:
    job = queue.fetch(connection, job_id)
    if job is None or job.func_name != queue.SCORE:  # parts and joins are not jobs of their own
        raise JobNotFound(f"no job {job_id!r}: it never existed or its record has expired")
    return job


def _members(connection: redis.Redis, job: Job) -> list[Job | None]:
    """The parts and the join of a split job; nothing for a job that was not split."""
    ids = [*job.meta.get("parts", []), *([job.meta["join"]] if job.meta.get("join") else [])]
    return queue.fetch_many(connection, ids) if ids else []


def _view(connection: redis.Redis, job: Job) -> dict[str, Any]:
    submitted = JobSpec.from_dict(job.args[0])
    meta = job.meta
    record: dict[str, Any] = {
        "id": job.id,
        "status": _status(job),
        "model": submitted.model,
        "version": submitted.version,
        "input": submitted.input,
        "output": submitted.output,
        "errors_output": submitted.errors_output,
        "format": submitted.format,
        "fail_fast": submitted.fail_fast,
        "origin": submitted.origin,
        "rows_total": meta.get("rows_total"),
        "rows_done": meta.get("rows_done", 0),
        "rows_failed": meta.get("rows_failed", 0),
        "progress": meta.get("progress"),
        "warnings": meta.get("warnings", []),
        "error": _error(job),
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "ended_at": _iso(job.ended_at),
        "worker": job.worker_name or None,
        "heartbeat_at": _iso(job.last_heartbeat) if _status(job) == "started" else None,
        "parts": None,
    }
    if meta.get("parts"):
        _sum_parts(connection, job, record)
    return record


def _sum_parts(connection: redis.Redis, job: Job, record: dict[str, Any]) -> None:
    members = _members(connection, job)
    parts, join = members[:-1], members[-1]
    statuses = [(_status(member) if member else "failed") for member in members]
    done = sum(member.meta.get("rows_done", 0) for member in parts if member)
    failed = sum(member.meta.get("rows_failed", 0) for member in parts if member)
    total = record["rows_total"] or 0
    record.update(
        rows_done=done,
        rows_failed=failed,
        progress=(done + failed) / total if total else None,
        warnings=merge_warnings(member.meta.get("warnings", []) for member in parts if member),
        parts={"count": len(parts), "finished": statuses[:-1].count("finished")},
    )
    if record["status"] not in ENDED:
        return  # still planning the parts
    if join is not None and statuses[-1] == "finished":
        record.update(status="finished", ended_at=_iso(join.ended_at), worker=join.worker_name or None)
        record.update({key: join.meta[key] for key in COUNTS if key in join.meta})
        record["progress"] = 1.0
    elif "failed" in statuses:
        index = statuses.index("failed")
        member = members[index]
        which = "the join" if index == len(parts) else f"part {index + 1} of {len(parts)}"
        error = _error(member) if member else None
        error = error or {"code": "internal_error", "message": "its record is gone", "details": []}
        record.update(
            status="failed",
            error={**error, "message": f"{which}: {error['message']}"},
            ended_at=_iso(member.ended_at) if member else None,
        )
    elif "canceled" in statuses:
        record["status"] = "canceled"
    else:
        record["status"] = "started"


def _status(job: Job) -> Status:
    return RQ_STATUS.get(job.get_status(refresh=False), "queued")


def _error(job: Job) -> dict[str, Any] | None:
    if _status(job) != "failed":
        return None
    recorded = job.meta.get("error")
    if recorded:
        return dict(recorded)
    result = job.latest_result()
    reason = result.exc_string if result and result.exc_string else ""
    if "AbandonedJobError" in reason or "Work-horse terminated" in reason:
        return {
            "code": "worker_lost",
            "message": "the worker running this job died and every retry did too "
            "(MODELYARD_JOB_RETRIES); see the worker logs, e.g. for an out-of-memory kill",
            "details": [],
        }
    if "JobTimeoutException" in reason:
        return {"code": "job_timeout", "message": "the job ran past MODELYARD_JOB_TIMEOUT_S", "details": []}
    last_line = reason.strip().splitlines()[-1] if reason.strip() else "no reason recorded"
    return {"code": "internal_error", "message": last_line, "details": []}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
