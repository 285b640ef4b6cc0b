"""Running a job safely on a worker: never in two places at once, never twice, stopped when canceled.

- A running job holds a lock in Redis, renewed by a thread: if its process dies, the lock lapses
  within LOCK_TTL_S, well before RQ gives the job to another worker.
- A job whose outputs are committed records what it returned under its done key: run again (its
  worker died after the commit), it returns that without scoring anything.
- A canceled job stops between two chunks; one handed back by a stopping worker goes to the front
  of the queue for another.
"""

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import redis
from rq import Retry, get_current_job
from rq.job import Job, JobStatus

from modelyard.batch import queue
from modelyard.batch.spec import JobSpec
from modelyard.batch.split import discard_parts
from modelyard.config import Settings, get_settings
from modelyard.errors import JobStopped, ModelyardError

log = logging.getLogger(__name__)

LOCK_TTL_S = 30
"""A running job holds a lock, so that no job ever runs in two places at once."""
INTERRUPTIONS = 1000
"""How often a job may be handed back by a stopping worker before it counts as failed."""

Body = Callable[[Job, Settings], dict[str, Any]]
"""The work of one job, given its RQ job and the settings; returns the counts it records."""


class Canceled(JobStopped):
    """The job was canceled while it ran; it stopped between two chunks."""


class Interrupted(JobStopped):
    """The worker is shutting down; the job goes back to the queue for another worker."""


def run(spec: JobSpec, body: Body) -> Any:
    """Run `body` as the current RQ job, safely; what RQ records as the job's result."""
    job = get_current_job()
    assert job is not None, "modelyard jobs run in an RQ worker"
    settings = get_settings()
    job.meta.pop("error", None)
    try:
        if canceled(job):
            raise Canceled(f"job {job.id} was canceled before it started")
        with _exclusive(job, settings.job_timeout_s):
            done = queue.done_key(job.id)
            recorded = job.connection.get(done)
            if recorded is not None:
                log.info("already done: nothing to do", extra={"job_id": job.id})
                return json.loads(recorded)
            result = body(job, settings)
            job.connection.set(done, json.dumps(result), ex=settings.job_retention_s)
            return result
    except Interrupted:
        log.warning("worker stopping: job handed back to the queue", extra={"job_id": job.id})
        return Retry(max=INTERRUPTIONS, enqueue_at_front=True)
    except Canceled:
        _discard(settings, spec)
        raise
    except ModelyardError as exc:
        _record_error(job, exc.code, exc.message, exc.details)
        job.retries_left = 0  # the same input would fail the same way: no retry
        _discard(settings, spec)
        raise
    except Exception as exc:
        if canceled(job):  # e.g. its parts' folder removed by the cancel while it wrote there
            _discard(settings, spec)
            raise Canceled(f"job {job.id} was canceled") from exc
        _record_error(job, "internal_error", f"{type(exc).__name__}: {exc}", [])
        raise


def _discard(settings: Settings, spec: JobSpec) -> None:
    """A failed or canceled job leaves no parts; a store that cannot be reached to delete them
    must not hide why the job ended (the parts carry no manifest: no reader takes them)."""
    try:
        discard_parts(settings, spec)
    except ModelyardError as exc:
        log.warning("parts left behind: %s", exc.message, extra={"job_id": spec.id})


def canceled(job: Job) -> bool:
    """Whether the job, or the submitted job it is a part of, was canceled."""
    spec = JobSpec.of(job.args)
    submitted = spec.id if spec is not None else job.id
    return job.get_status(refresh=True) == JobStatus.CANCELED or bool(
        job.connection.exists(queue.cancel_key(submitted))
    )


@contextmanager
def _exclusive(job: Job, wait_s: int) -> Iterator[None]:
    """Hold the job's lock while it runs, renewed by a thread. A second runner (its first worker
    dead but the process still going) waits for the first to end, then finds the work done."""
    lock = job.connection.lock(queue.lock_key(job.id), timeout=LOCK_TTL_S, sleep=1)
    if not lock.acquire(blocking=False):
        log.warning("another process runs this job: waiting for it to end", extra={"job_id": job.id})
        if not lock.acquire(blocking=True, blocking_timeout=wait_s):
            raise TimeoutError(f"job {job.id} is still running elsewhere after {wait_s}s")
    done = threading.Event()

    def renew() -> None:
        while not done.wait(LOCK_TTL_S / 3):
            with suppress(redis.exceptions.RedisError):
                lock.extend(LOCK_TTL_S, replace_ttl=True)

    renewer = threading.Thread(target=renew, name="job-lock", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()
        with suppress(redis.exceptions.LockError):  # lapsed: whoever runs it next finds it done
            lock.release()


def _record_error(job: Job, code: str, message: str, details: list[Any]) -> None:
    job.meta["error"] = {"code": code, "message": message, "details": details[:20]}
    job.save_meta()
