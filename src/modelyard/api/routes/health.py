"""Liveness, readiness and metrics."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from rq import Worker

from modelyard import queue
from modelyard.api.deps import Authorized, MetricsDep, QueueDep, SettingsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(store: StoreDep, connection: QueueDep, settings: SettingsDep) -> JSONResponse:
    """Ready when every production model serves. The queue's state is reported, but a queue that
    cannot be reached does not make the API unready: real-time predictions go on without it."""
    ready, models = store.readiness()
    body = {
        "status": "ready" if ready else "not_ready",
        "models": models,
        "queue": _queue_state(connection, settings),
    }
    return JSONResponse(body, status_code=200 if ready else 503)


def _queue_state(connection: QueueDep, settings: SettingsDep) -> dict[str, Any]:
    try:
        workers = Worker.count(queue=queue.job_queue(connection))
    except queue.REDIS_DOWN as exc:
        return {"status": "unavailable", "message": queue.unavailable(settings.redis_url, exc).message}
    return {"status": "ok", "workers": workers}


@router.get("/metrics", dependencies=[Authorized])
def metrics(api_metrics: MetricsDep) -> Response:
    return Response(api_metrics.render(), media_type=CONTENT_TYPE_LATEST)
