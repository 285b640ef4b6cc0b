"""What the batch workers did, kept in Redis where the API can read it for /metrics.

Workers come and go (and fork a process per job), so they do not serve metrics themselves: each
chunk adds its rows and its duration to two small Redis hashes, bounded by the models and versions
scored, and the API reads them, with the queue's depth and the job counts, at every scrape.
"""

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import redis
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from modelyard.batch.queue import PREFIX, job_queue, text

ROWS_KEY = PREFIX + "metrics:rows"
CHUNKS_KEY = PREFIX + "metrics:chunks"
SCHEDULES_KEY = PREFIX + "metrics:schedules"
"""Each schedule's last run with a report, as /metrics exports it: schedule -> JSON."""
CHUNK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REGISTRIES = {
    "started": StartedJobRegistry,
    "finished": FinishedJobRegistry,
    "failed": FailedJobRegistry,
    "canceled": CanceledJobRegistry,
    "deferred": DeferredJobRegistry,
    "scheduled": ScheduledJobRegistry,
}


def record_chunk(
    connection: redis.Redis, model: str, version: int, rows_done: int, rows_failed: int, seconds: float
) -> None:
    bucket = next((str(b) for b in CHUNK_BUCKETS if seconds <= b), "+Inf")
    with connection.pipeline(transaction=False) as pipe:
        pipe.hincrby(ROWS_KEY, f"scored\t{model}\t{version}", rows_done)
        pipe.hincrby(ROWS_KEY, f"failed\t{model}\t{version}", rows_failed)
        pipe.hincrby(CHUNKS_KEY, bucket, 1)
        pipe.hincrbyfloat(CHUNKS_KEY, "sum", seconds)
        pipe.execute()


@dataclass
class ScheduleFigures:
    """A schedule's last run with a report: its jobs' rows summed, each feature's worst drift."""

    run: str
    finished_at: float
    rows_read: int
    rows_scored: int
    rows_invalid: int
    drift: dict[str, float]
    prediction_drift: float | None

    @property
    def invalid_share(self) -> float:
        return self.rows_invalid / self.rows_read if self.rows_read else 0.0

    def after(self, earlier: "ScheduleFigures") -> "ScheduleFigures":
        """These figures added to those of an earlier job of the same run."""
        drift = {**earlier.drift}
        for name, value in self.drift.items():
            drift[name] = max(value, drift.get(name, value))
        predictions = [d for d in (earlier.prediction_drift, self.prediction_drift) if d is not None]
        return replace(
            self,
            rows_read=self.rows_read + earlier.rows_read,
            rows_scored=self.rows_scored + earlier.rows_scored,
            rows_invalid=self.rows_invalid + earlier.rows_invalid,
            drift=drift,
            prediction_drift=max(predictions, default=None),
        )


def _figures(stored: bytes | str | None) -> ScheduleFigures | None:
    try:
        return ScheduleFigures(**json.loads(stored)) if stored else None
    except (TypeError, ValueError):
        return None  # written by another release: replaced at the schedule's next run


def record_schedule_run(connection: redis.Redis, schedule: str, run: str, report: dict[str, Any]) -> None:
    """A job of a schedule's run is committed: what its report says, kept for /metrics. The jobs of
    one run (one per file) add up: rows summed, the worst drift of each feature kept, so that a
    drifted file is seen whichever job of the run ends last."""
    rows = report["rows"]
    figures = ScheduleFigures(
        run=run,
        finished_at=time.time(),
        rows_read=rows["read"],
        rows_scored=rows["scored"],
        rows_invalid=rows["invalid"],
        drift={item["name"]: item["psi"] for item in report["features"] if item["psi"] is not None},
        prediction_drift=(report["prediction"] or {}).get("psi"),
    )

    def add(pipe: redis.client.Pipeline) -> None:
        earlier = _figures(pipe.hget(SCHEDULES_KEY, schedule))
        combined = figures.after(earlier) if earlier is not None and earlier.run == run else figures
        pipe.multi()
        pipe.hset(SCHEDULES_KEY, schedule, json.dumps(asdict(combined)))

    connection.transaction(add, SCHEDULES_KEY)  # two jobs of a run may end at once


@dataclass
class QueueSnapshot:
    depth: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    """Jobs (parts of split files included) by state."""
    rows: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(scored|failed, model, version) -> rows."""
    chunk_buckets: list[tuple[str, int]] = field(default_factory=list)
    """Cumulative counts of chunk durations, Prometheus-style, ending with +Inf."""
    chunk_sum: float = 0.0
    schedules: dict[str, ScheduleFigures] = field(default_factory=dict)


def snapshot(connection: redis.Redis) -> QueueSnapshot:
    jobs = job_queue(connection)
    counts = {
        state: registry(queue=jobs).get_job_count(cleanup=False) for state, registry in REGISTRIES.items()
    }
    counts["queued"] = jobs.count
    rows = {}
    for key, value in connection.hgetall(ROWS_KEY).items():
        kind, model, version = text(key).split("\t")
        rows[(kind, model, version)] = int(value)
    chunks = {text(key): float(value) for key, value in connection.hgetall(CHUNKS_KEY).items()}
    cumulative, buckets = 0, []
    for bound in [*map(str, CHUNK_BUCKETS), "+Inf"]:
        cumulative += int(chunks.get(bound, 0))
        buckets.append((bound, cumulative))
    schedules = {
        text(name): figures
        for name, value in connection.hgetall(SCHEDULES_KEY).items()
        if (figures := _figures(value)) is not None
    }
    return QueueSnapshot(jobs.count, counts, rows, buckets, chunks.get("sum", 0.0), schedules)
