"""The FastAPI application factory."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from modelyard import __version__
from modelyard.api import console, docs, openapi
from modelyard.api.errors import install_error_handlers
from modelyard.api.fastpredict import FastPredictMiddleware
from modelyard.api.metrics import ApiMetrics
from modelyard.api.microbatch import MicroBatcher
from modelyard.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from modelyard.api.routes import files, health, jobs, models, predict, schedules
from modelyard.batch import queue
from modelyard.config import Settings, get_settings
from modelyard.logs import configure_logging
from modelyard.registry.store import Registry
from modelyard.serving.cache import LoadPolicy, ModelCache
from modelyard.stores import connections


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gc.collect()
        _freeze_heap()
        app.state.store.start(settings.reload_interval_s)
        yield
        app.state.store.stop()

    configure_logging(settings.log_level)  # in each server process, when there are several
    # /docs from Swagger UI files shipped in the package: it works in a network without internet
    app = FastAPIOffline(
        docs_url=None,  # api/docs.py serves its own page, which asks for the key
        redoc_url=None,
        title="modelyard",
        version=__version__,
        description="Real-time predictions, batch jobs and schedules for registered scikit-learn models. "
        "Request bodies: at most MODELYARD_MAX_UPLOAD_MB each (413), JSON nested at most 32 levels "
        "(400), and MODELYARD_MAX_INFLIGHT_MB of them at once per server process (503 server_busy, "
        "with Retry-After).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    connections.load(settings.connections)  # a mistake in the connections file stops the API here
    app.state.redis = connection = queue.connect(settings.redis_url, settings.redis_timeout_s)
    app.state.metrics = metrics = ApiMetrics(queue_source=connection)
    app.state.store = ModelCache(
        Registry(settings.model_dir),
        # One request is a few rows: starting threads per call would cost more than it saves.
        LoadPolicy(settings.allow_version_mismatch, 1, settings.model_cache_size, settings.runtime),
        on_loaded=lambda name, version: _loaded(metrics, name, version),
        on_refused=lambda name, code: metrics.load_failures.labels(name, code).inc(),
    )
    app.state.batcher = (
        MicroBatcher(
            settings.microbatch_max_rows,
            settings.microbatch_max_wait_ms / 1000,
            on_batch=lambda name, requests: metrics.microbatch.labels(name).observe(requests),
        )
        if settings.microbatch
        else None
    )
    install_error_handlers(app)
    for router in (health.router, models.router, predict.router, jobs.router, schedules.router, files.router):
        app.include_router(router)
    [predict_route] = [
        r for r in predict.router.routes if isinstance(r, APIRoute) and r.endpoint is predict.predict
    ]
    app.add_middleware(
        FastPredictMiddleware,
        settings=settings,
        store=app.state.store,
        metrics=metrics,
        batcher=app.state.batcher,
        path=predict_route.path_regex,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_upload_bytes,
        budget=settings.max_inflight_bytes,
        larger={"/v1/jobs/upload": settings.max_job_upload_bytes},
    )
    # outermost: every response gets an id, and is counted by status
    app.add_middleware(RequestContextMiddleware, on_response=metrics.responded)
    openapi.install(app, app.state.store)
    docs.install(app, settings)
    console.install(app, settings)
    return app


def _loaded(metrics: ApiMetrics, name: str, version: int) -> None:
    metrics.serving_version.labels(name).set(version)
    _freeze_heap()


def _freeze_heap() -> None:
    """The heap of imports and loaded models lives as long as the process. Left to the collector's
    oldest generation, each full collection walks all of it (about 80 ms on 2 cores), and every
    request waits behind it; frozen, it is skipped (objects are still freed once unreferenced)."""
    gc.freeze()
