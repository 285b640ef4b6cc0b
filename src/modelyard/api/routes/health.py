"""Liveness, readiness and metrics."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from modelyard.api.deps import Authorized, MetricsDep, StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(store: StoreDep) -> JSONResponse:
    ready, models = store.readiness()
    body = {"status": "ready" if ready else "not_ready", "models": models}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", dependencies=[Authorized])
def metrics(api_metrics: MetricsDep) -> Response:
    return Response(api_metrics.render(), media_type=CONTENT_TYPE_LATEST)
