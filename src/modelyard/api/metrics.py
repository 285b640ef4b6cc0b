"""Prometheus metrics of the API, in a registry of their own (one per app).

The real-time ones are counted here; the batch ones are read from Redis at every scrape, where the
workers leave them (see batch/metrics.py).
"""

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from modelyard.batch import metrics as queue_metrics
from modelyard.batch import queue
from modelyard.errors import ModelyardError
from modelyard.schedules import runs as schedule_runs

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class PredictionTrack:
    """Filled in by a prediction as it goes; read when it ends."""

    model: str = "unknown"
    """Set once the model is found: names from the URL alone would let anyone add label values."""
    version: str = "none"
    rows: int = 0

    def serving(self, model: str, version: int) -> None:
        self.model, self.version = model, str(version)


class ApiMetrics:
    def __init__(self, queue_source: redis.Redis | None = None) -> None:
        disable_created_metrics()  # the *_created series only double what Prometheus scrapes
        self.registry = CollectorRegistry()
        self.queue = QueueCollector(queue_source) if queue_source is not None else None
        if self.queue is not None:
            self.registry.register(self.queue)
        self.requests = Counter(
            "modelyard_predict_requests",
            "Prediction requests by model, version and outcome",
            ["model", "version", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelyard_predict_duration_seconds",
            "Time to answer a prediction request",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Counter(
            "modelyard_rows_scored",
            "Rows scored by model and version",
            ["model", "version"],
            registry=self.registry,
        )
        self.load_failures = Counter(
            "modelyard_model_load_failures",
            "Model versions the load gate or loader refused",
            ["model", "code"],
            registry=self.registry,
        )
        self.serving_version = Gauge(
            "modelyard_serving_version",
            "Version of each model now served as production",
            ["model"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )

        self.responses = Counter(
            "modelyard_http_responses",
            "HTTP responses by status code",
            ["status"],
            registry=self.registry,
        )
        self._responses_by_status: dict[int, Any] = {}
        self.microbatch = Histogram(
            "modelyard_microbatch_requests",
            "Requests scored together in one micro-batch",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )

    def responded(self, status: int) -> None:
        counter = self._responses_by_status.get(status)
        if counter is None:  # a label lookup per request costs more than the count itself
            counter = self._responses_by_status[status] = self.responses.labels(str(status))
        counter.inc()

    @contextmanager
    def track_prediction(self) -> Iterator[PredictionTrack]:
        track, status, started = PredictionTrack(), "ok", time.perf_counter()
        try:
            yield track
        except ModelyardError as exc:
            status = exc.code
            raise
        except Exception:
            status = "internal_error"
            raise
        finally:
            self.latency.labels(track.model).observe(time.perf_counter() - started)
            self.requests.labels(track.model, track.version, status).inc()
            if status == "ok":
                self.rows.labels(track.model, track.version).inc(track.rows)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition in the format the scraper asks for (Prometheus text, or OpenMetrics), and
        its content type; with several server processes (PROMETHEUS_MULTIPROC_DIR), summed."""
        encoder, content_type = choose_encoder(accept)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return encoder(self.registry), content_type
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        if self.queue is not None:
            registry.register(self.queue)
        return encoder(registry), content_type


class QueueCollector(Collector):
    """The batch side, read from Redis at scrape time; `modelyard_queue_up` is 0 when it is away."""

    def __init__(self, connection: redis.Redis) -> None:
        self.connection = connection

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("modelyard_queue_up", "1 when the job queue (Redis) answers, else 0")
        try:
            snap = queue_metrics.snapshot(self.connection)
        except queue.REDIS_DOWN:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("modelyard_queue_depth", "Batch jobs waiting in the queue")
        depth.add_metric([], snap.depth)
        yield depth
        states = GaugeMetricFamily(
            "modelyard_batch_jobs", "Batch jobs (parts of split files included) by state", labels=["status"]
        )
        for state, count in sorted(snap.jobs.items()):
            states.add_metric([state], count)
        yield states
        for kind in ("scored", "failed"):
            rows = CounterMetricFamily(
                f"modelyard_batch_rows_{kind}", f"Rows {kind} by batch jobs", labels=["model", "version"]
            )
            for (found, model, version), count in sorted(snap.rows.items()):
                if found == kind:
                    rows.add_metric([model, version], count)
            yield rows
        chunks = HistogramMetricFamily(
            "modelyard_batch_chunk_duration_seconds", "Time to read, score and write one chunk"
        )
        chunks.add_metric([], snap.chunk_buckets, snap.chunk_sum)
        yield chunks
        # only schedules the scheduler still has: a removed one must not alert for want of runs
        current = {schedule.name for schedule in schedule_runs.published(self.connection)}
        yield from _schedule_metrics({name: f for name, f in snap.schedules.items() if name in current})
        beat = schedule_runs.last_beat(self.connection)
        if beat is not None:
            heartbeat = GaugeMetricFamily(
                "modelyard_scheduler_heartbeat_timestamp_seconds", "When the scheduler last ticked"
            )
            heartbeat.add_metric([], beat.timestamp())
            yield heartbeat


def _schedule_metrics(schedules: dict[str, queue_metrics.ScheduleFigures]) -> Iterator[Metric]:
    """Each schedule's last run with a report (batch/reporting.py), for alerts on drift and bad rows."""
    families = {
        "drift": GaugeMetricFamily(
            "modelyard_schedule_drift",
            "Population stability index of each feature in the schedule's last run, against the "
            "version's reference profile (0.1 moderate, 0.25 major)",
            labels=["schedule", "feature"],
        ),
        "prediction": GaugeMetricFamily(
            "modelyard_schedule_prediction_drift",
            "Population stability index of the predictions in the schedule's last run",
            labels=["schedule"],
        ),
        "invalid": GaugeMetricFamily(
            "modelyard_schedule_invalid_share",
            "Share of invalid rows in the schedule's last run",
            labels=["schedule"],
        ),
        "rows": GaugeMetricFamily(
            "modelyard_schedule_rows_scored", "Rows scored by the schedule's last run", labels=["schedule"]
        ),
        "success": GaugeMetricFamily(
            "modelyard_schedule_last_success_timestamp_seconds",
            "When the schedule's last successful run was committed",
            labels=["schedule"],
        ),
    }
    for name, figures in sorted(schedules.items()):
        for feature, value in sorted(figures.drift.items()):
            families["drift"].add_metric([name, feature], value)
        if figures.prediction_drift is not None:
            families["prediction"].add_metric([name], figures.prediction_drift)
        families["invalid"].add_metric([name], figures.invalid_share)
        families["rows"].add_metric([name], figures.rows_scored)
        families["success"].add_metric([name], figures.finished_at)
    yield from families.values()
