"""The Redis queue between whoever submits batch jobs (API, scheduler) and the workers that run them.

Everything crosses Redis as JSON (RQ's JSONSerializer): nothing read from Redis is ever unpickled.
Every key written here has a TTL or a bounded size, since Redis runs with `noeviction`.
"""

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer

from modelyard.config import Settings
from modelyard.errors import QueueUnavailable

QUEUE_NAME = "modelyard"
PREFIX = "modelyard:"
JOB_INDEX = PREFIX + "jobs"
"""Sorted set of the submitted (top-level) job ids, scored by submission time: the job list."""
JOB_INDEX_MAX = 10_000

# What RQ runs, by the dotted names stored in every queued job: a permanent contract (modelyard/jobs.py
# keeps them, whatever moves), so that jobs queued before an upgrade, and workers still on the
# previous release, keep working.
SCORE = "modelyard.jobs.score"
"""A submitted job: scores a whole file, or plans its parts and enqueues them."""
SCORE_PART = "modelyard.jobs.score_part"
JOIN_PARTS = "modelyard.jobs.join_parts"
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def connect(url: str, timeout_s: float | None = None) -> redis.Redis:
    """A client that gives up after `timeout_s` instead of hanging when Redis is away."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, health_check_interval=30
    )


def job_queue(connection: redis.Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def fetch(connection: redis.Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except Exception as exc:  # rq raises NoSuchJobError, or a ValueError for a malformed id
        if isinstance(exc, REDIS_DOWN):
            raise
        return None


def fetch_many(connection: redis.Redis, job_ids: list[str]) -> list[Job | None]:
    return Job.fetch_many(job_ids, connection=connection, serializer=JSONSerializer)


def safe_url(url: str) -> str:
    """The Redis URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def unavailable(url: str, exc: Exception) -> QueueUnavailable:
    return QueueUnavailable(
        f"the job queue (Redis at {safe_url(url)}) cannot be reached: {str(exc).rstrip('.')}. "
        "Batch jobs cannot be submitted or read until it is back; real-time predictions are not affected"
    )


def remember(connection: redis.Redis, job_id: str, retention_s: int) -> None:
    """Add a submitted job to the job list, forgetting the ones older than the retention."""
    now = time.time()
    with connection.pipeline() as pipe:
        pipe.zadd(JOB_INDEX, {job_id: now})
        pipe.zremrangebyscore(JOB_INDEX, "-inf", now - retention_s)
        pipe.zremrangebyrank(JOB_INDEX, 0, -JOB_INDEX_MAX - 1)
        pipe.expire(JOB_INDEX, retention_s)
        pipe.execute()


def recent(connection: redis.Redis, limit: int) -> list[str]:
    """Ids of submitted jobs, newest first."""
    return [text(item) for item in connection.zrevrange(JOB_INDEX, 0, limit - 1)]


def text(value: Any) -> str:
    """A Redis reply as text (RQ needs the client to answer bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def cancel_key(job_id: str) -> str:
    """Set when a submitted job is canceled; its parts look here too. RQ's own status is not enough:
    a job dequeued at the moment it is canceled is marked started again by its worker."""
    return f"{PREFIX}canceled:{job_id}"


def done_key(job_id: str) -> str:
    """Set when a job's outputs are committed, to what it returned: running it again returns that."""
    return f"{PREFIX}done:{job_id}"


def lock_key(job_id: str) -> str:
    """Held by the process that runs a job (or a part), renewed while it runs (batch/running.py)."""
    return f"{PREFIX}lock:{job_id}"


def enqueue_options(settings: Settings) -> dict[str, Any]:
    """What every modelyard job is enqueued with: kept for the retention period whatever its end,
    and retried (MODELYARD_JOB_RETRIES) when its worker dies."""
    return {
        "result_ttl": settings.job_retention_s,
        "failure_ttl": settings.job_retention_s,
        "ttl": settings.job_retention_s,
        "timeout": settings.job_timeout_s,
        "retry": Retry(max=settings.job_retries) if settings.job_retries else None,
    }
