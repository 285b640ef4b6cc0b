"""The batch worker: an RQ worker over the modelyard queue, with the models loaded beforehand.

RQ forks a work horse per job. Models are loaded (through the load gate) in the worker before the
fork, so every horse starts with them in memory and the next job finds them still there.

Stopping and dying:
- SIGTERM (docker stop): the horse finishes the chunk it is on, hands the job back to the front of
  the queue for another worker, and the worker exits. A second SIGTERM kills the horse at once.
- SIGKILL of the worker and its horse: the job stays "started" until its heartbeat runs out
  (JOB_MONITORING_S + 60 s, RQ's margin), then the next maintenance pass of any worker (every
  MAINTENANCE_S) retries it. Together about 80 s instead of RQ's default of over ten minutes.
"""

import logging
import os
import signal
import threading
from types import FrameType
from typing import Any

from rq import Worker
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.serializers import JSONSerializer

from modelyard.batch import queue
from modelyard.batch.running import Canceled, canceled
from modelyard.batch.spec import JobSpec
from modelyard.config import Settings
from modelyard.logs import configure_logging
from modelyard.registry.store import Registry
from modelyard.serving.cache import LoadPolicy, ModelCache
from modelyard.stores import connections, upload

log = logging.getLogger(__name__)

JOB_MONITORING_S = 5
"""How often a busy worker renews its job's heartbeat."""
MAINTENANCE_S = 15
"""How often a worker looks for jobs abandoned by dead workers."""
WORKER_TTL_S = 30
"""A worker's own heartbeat; an idle worker wakes this often (minus 15 s) to do maintenance."""


_stop = threading.Event()
_cache: ModelCache | None = None


def request_stop() -> None:
    """The worker is stopping: end the running job at the next chunk and hand it back."""
    _stop.set()


def stopping() -> bool:
    return _stop.is_set()


def model_cache(settings: Settings) -> ModelCache:
    """The worker's loaded models; a forked job inherits what its worker loaded beforehand."""
    global _cache
    if _cache is None:
        policy = LoadPolicy(
            settings.allow_version_mismatch,
            settings.batch_n_jobs,
            settings.model_cache_size,
            settings.runtime,
        )
        _cache = ModelCache(Registry(settings.model_dir), policy)
    return _cache


class ModelyardWorker(Worker):
    def __init__(self, *args: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings

    def execute_job(self, job: Job, queue: Queue) -> None:
        self._load_models_for(job)
        super().execute_job(job, queue)

    def _load_models_for(self, job: Job) -> None:
        """Load the job's model in this (parent) process, so that its horse and later jobs have it.
        A refusal is left for the job itself to report, with its reason."""
        cache = model_cache(self.settings)
        try:
            cache.sync()
            spec = JobSpec.of(job.args)
            if spec is not None:
                cache.get(spec.model, spec.version)
        except Exception as exc:
            log.warning("model not preloaded: %s", exc, extra={"job_id": job.id})

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.horse_pid:  # the horse finishes its chunk, then hands the job back
            os.kill(self.horse_pid, signal.SIGTERM)
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()  # type: ignore[no-untyped-call]
        signal.signal(signal.SIGTERM, lambda *_: request_stop())

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        if isinstance(exc_info[1], Canceled):
            return  # not an error: handle_job_failure below records it
        super().handle_exception(job, *exc_info)

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        """A job canceled while it ran stops with an exception at the next chunk: it stays canceled."""
        if canceled(job):
            with self.connection.pipeline() as pipe:
                job.set_status(JobStatus.CANCELED, pipeline=pipe)  # its worker may have marked it started
                self.cleanup_execution(job, pipeline=pipe, execution=kwargs.get("execution"))
                pipe.execute()
            log.info("job canceled while running: stopped between two chunks", extra={"job_id": job.id})
            return
        super().handle_job_failure(job, queue, *args, **kwargs)


def run(settings: Settings, burst: bool = False, name: str | None = None) -> None:
    """Run a worker until SIGTERM (or, with burst, until the queue is empty)."""
    configure_logging(settings.log_level)
    connection = queue.connect(settings.redis_url)
    cache = model_cache(settings)
    cache.sync()  # preload the production models
    models, data = settings.model_dir.resolve(), settings.data_dir.resolve()
    stores = connections.load(settings.connections)  # a mistake in the file stops the worker here
    if stores.named:
        upload.warm()
    log.info(
        "worker starting",
        extra={
            "queue": queue.safe_url(settings.redis_url),
            "model_dir": str(models),
            "data_dir": str(data),
            "models": {n: m.version for n, m in cache.production.items()},
            "connections": sorted(stores.named),
        },
    )
    if not data.is_dir():
        log.warning("the data folder %s does not exist: set MODELYARD_DATA_DIR to the API's", data)
    if not cache.registry.model_names():
        log.warning("no model registered in %s: set MODELYARD_MODEL_DIR to the API's", models)
    worker = ModelyardWorker(
        [queue.job_queue(connection)],
        connection=connection,
        serializer=JSONSerializer,
        name=name,
        job_monitoring_interval=JOB_MONITORING_S,
        maintenance_interval=MAINTENANCE_S,
        worker_ttl=WORKER_TTL_S,
        settings=settings,
    )
    worker.work(burst=burst, logging_level=settings.log_level.upper())
