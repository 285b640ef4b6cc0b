"""Real-time scoring: JSON records, or a whole CSV, Parquet or JSON Lines file.

Scoring is CPU work, so it runs in the thread pool (plain `def` handlers, or run_in_threadpool),
never on the event loop. A valid JSON request for a loaded production model has been answered
before it gets here, by api/fastpredict.py; these routes are the full path, which validates every
record and words every error and warning.
"""

import json
from collections import defaultdict
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from modelyard.api.body import json_body
from modelyard.api.deps import Authorized, MetricsDep, SettingsDep, StoreDep
from modelyard.api.errors import documented
from modelyard.api.fastpredict import answer
from modelyard.api.metrics import PredictionTrack
from modelyard.api.records import read_records
from modelyard.api.schemas import PredictRequest, PredictResponse
from modelyard.errors import (
    AliasNotFound,
    AliasUnreadable,
    ArtifactRefused,
    ArtifactTampered,
    BadRequest,
    InvalidInput,
    InvalidRequest,
    MalformedJSON,
    ModelNotFound,
    ModelNotReady,
    PayloadTooLarge,
    PredictionFailed,
    ServerBusy,
    Unauthorized,
    UnparseableFile,
    UnsupportedFormat,
    VersionMismatch,
    VersionNotFound,
)
from modelyard.formats import FORMATS, detect_format, safe_stem
from modelyard.scoring.predict import LoadedModel, Scores, refuse_clashes, score, with_predictions
from modelyard.serving.cache import ModelCache
from modelyard.tabular import read_table, write_table

router = APIRouter(prefix="/v1/models", tags=["predict"], dependencies=[Authorized])
VersionQuery = Annotated[int | None, Query(ge=1, description="Pin a version instead of production.")]
AliasQuery = Annotated[
    str | None, Query(description="Score with the version an alias (e.g. canary) points at.")
]


# The body is read by hand so that it is JSON whatever Content-Type claims (`curl -d` says form).
SCORING_ERRORS = (
    Unauthorized,
    BadRequest,
    ModelNotFound,
    VersionNotFound,
    AliasNotFound,
    PayloadTooLarge,
    InvalidRequest,
    InvalidInput,
    PredictionFailed,
    ModelNotReady,
    ArtifactRefused,
    ArtifactTampered,
    VersionMismatch,
    AliasUnreadable,
    ServerBusy,
)


@router.post(
    "/{name}/predict",
    response_model=PredictResponse,
    openapi_extra=json_body(PredictRequest),
    responses=documented(*SCORING_ERRORS, MalformedJSON),
)
async def predict(
    name: str,
    request: Request,
    store: StoreDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    version: VersionQuery = None,
    alias: AliasQuery = None,
) -> Response:
    """The full path: what api/fastpredict.py did not answer. Every check, every error and warning."""
    raw = await request.body()
    with metrics.track_prediction() as track:
        model, scores = await run_in_threadpool(
            _score_json, store, name, version, alias, raw, settings.max_instances, track
        )
    return Response(orjson.dumps(answer(model, scores)), media_type="application/json")


def _score_json(
    store: ModelCache,
    name: str,
    version: int | None,
    alias: str | None,
    raw: bytes,
    limit: int,
    track: PredictionTrack,
) -> tuple[LoadedModel, Scores]:
    model = store.get(name, version, alias)
    track.serving(model.name, model.version)
    scores = score(model, read_records(raw, model, limit))
    track.rows = len(scores)
    return model, scores


@router.post(
    "/{name}/predict-file",
    response_class=Response,
    responses={
        200: {
            "description": "The uploaded file, in its own format, with prediction columns",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}} for media in FORMATS.values()
            },
        },
        **documented(*SCORING_ERRORS, UnsupportedFormat, UnparseableFile),
    },
)
def predict_file(
    name: str,
    file: Annotated[UploadFile, File(description="A .csv, .parquet or .jsonl file of records")],
    store: StoreDep,
    metrics: MetricsDep,
    version: VersionQuery = None,
    alias: AliasQuery = None,
    format: Annotated[
        str | None, Query(description="csv, parquet or jsonl, if the name does not say")
    ] = None,
) -> Response:
    with metrics.track_prediction() as track:
        fmt = detect_format(file.filename, file.content_type, format)
        model = store.get(name, version, alias)
        track.serving(model.name, model.version)
        table = read_table(file.file.read(), fmt)
        refuse_clashes(list(table.frame.columns), model.output_columns)
        scores = score(model, table, bulk=True)
        assert table.arrow is not None
        scored = with_predictions(table.arrow, model, scores.predictions, scores.probabilities)
        output = write_table(scored, fmt)
        track.rows = len(scores)
    stem = safe_stem(file.filename)
    headers = {
        "X-Model-Name": model.name,
        "X-Model-Version": str(model.version),
        "X-Modelyard-Warnings": _summary(scores.warnings),
        "Content-Disposition": f'attachment; filename="{stem}.predictions.{fmt}"',
    }
    return Response(output, media_type=FORMATS[fmt], headers=headers)


def _summary(warnings: list[dict[str, Any]]) -> str:
    """Warnings grouped by field and code, small enough for a header."""
    rows: dict[tuple[str, str], list[int]] = defaultdict(list)
    for warning in warnings:
        rows[(warning["field"], warning["code"])].append(warning["row"])
    summary = [
        {"field": field, "code": code, "count": len(found), "rows": found[:20]}
        for (field, code), found in rows.items()
    ]
    return json.dumps(summary, separators=(",", ":"))
