"""Liveness, readiness and metrics."""

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import choose_encoder
from rq import Worker

from modelyard.api.deps import Authorized, MetricsDep, QueueDep, SettingsDep, StoreDep
from modelyard.api.errors import documented
from modelyard.api.schemas import Health, Readiness
from modelyard.batch import queue
from modelyard.errors import Unauthorized

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    """The process is alive. Never needs the API key."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A production model is not served yet"}},
)
def readyz(store: StoreDep, connection: QueueDep, settings: SettingsDep) -> JSONResponse:
    """Ready when every production model serves. The queue's state is reported, but a queue that
    cannot be reached does not make the API unready: real-time predictions go on without it.
    Never needs the API key."""
    ready, models = store.readiness()
    body = Readiness.model_validate(
        {
            "status": "ready" if ready else "not_ready",
            "models": models,
            "queue": _queue_state(connection, settings),
            "process": os.getpid(),
        }
    )
    return JSONResponse(body.model_dump(exclude_unset=True), status_code=200 if ready else 503)


def _queue_state(connection: QueueDep, settings: SettingsDep) -> dict[str, Any]:
    try:
        workers = Worker.count(queue=queue.job_queue(connection))
    except queue.REDIS_DOWN as exc:
        return {"status": "unavailable", "message": queue.unavailable(settings.redis_url, exc).message}
    return {"status": "ok", "workers": workers}


TEXT = {"schema": {"type": "string"}}
PROMETHEUS_TEXT = choose_encoder("")[1]
OPENMETRICS = choose_encoder("application/openmetrics-text; version=1.0.0")[1]


@router.get(
    "/metrics",
    dependencies=[Authorized],
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition, or OpenMetrics when the Accept header asks",
            "content": {PROMETHEUS_TEXT: TEXT, OPENMETRICS: TEXT},
        },
        **documented(Unauthorized),
    },
)
def metrics(request: Request, api_metrics: MetricsDep) -> Response:
    body, content_type = api_metrics.render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
