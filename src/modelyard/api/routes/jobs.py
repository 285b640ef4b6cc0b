"""Batch jobs: submit a file on the data volume (or upload one), follow it, fetch its outputs.

Redis calls block, so these are plain `def` handlers, run in the thread pool.
"""

import shutil
import uuid
from contextlib import suppress
from pathlib import Path, PurePath
from typing import Annotated, Any

import redis
from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modelyard.api.body import json_body, parse_body
from modelyard.api.deps import Authorized, QueueDep, SettingsDep
from modelyard.api.errors import QUEUE_ERRORS, documented
from modelyard.api.schemas import JobCreate, JobList, JobRecord, JobReport
from modelyard.batch import records
from modelyard.batch.paths import data_path, upload_folder
from modelyard.batch.spec import ENDED, Status
from modelyard.batch.split import discard_parts
from modelyard.batch.submit import JobRequest, submit
from modelyard.config import Settings
from modelyard.errors import (
    AliasNotFound,
    ArtifactRefused,
    BadRequest,
    InputNotFound,
    InvalidPath,
    InvalidRequest,
    JobAlreadyEnded,
    JobNotEnded,
    JobNotFinished,
    JobNotFound,
    MalformedJSON,
    ModelNotFound,
    ModelyardError,
    NotFound,
    OutputExists,
    PayloadTooLarge,
    ReportNotFound,
    ServerBusy,
    UnsupportedFormat,
    VersionNotFound,
)
from modelyard.formats import FORMATS, detect_format, safe_stem
from modelyard.fsutil import atomic_path
from modelyard.reports import report as reports
from modelyard.stores.connections import ConnectionsConfigError, MissingSecret, StoreNotAllowed
from modelyard.stores.errors import StoreAccessDenied, StoreObjectNotFound, StoreUnavailable
from modelyard.stores.uris import is_object_uri, is_table_uri

router = APIRouter(
    prefix="/v1/jobs",
    tags=["jobs"],
    dependencies=[Authorized],
)
SUBMIT_ERRORS = (
    ModelNotFound,
    VersionNotFound,
    AliasNotFound,
    ArtifactRefused,
    OutputExists,
    PayloadTooLarge,
    UnsupportedFormat,
    InvalidRequest,
    InvalidPath,
    InputNotFound,
)
STORE_ERRORS = (
    StoreNotAllowed,
    StoreObjectNotFound,
    StoreAccessDenied,
    StoreUnavailable,
    MissingSecret,
    ConnectionsConfigError,
)
"""What an input or output in a store can meet at submission (an S3 store that does not answer
fails the job; a database must answer at once, since the table's key and columns are read then)."""
FILES = {
    200: {
        "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in FORMATS.values()}
    },
    **documented(*QUEUE_ERRORS, JobNotFound, NotFound, JobNotFinished),
}
DEPRECATED_SINCE = "@1796256000"
"""2026-12-03, when DELETE stopped meaning cancel: the Deprecation header's date (RFC 9745)."""


def _operation(path: str, method: str) -> str:
    """A link's operationRef: a JSON pointer to an operation of this router."""
    return "#/paths/" + f"/v1/jobs{path}".replace("~", "~0").replace("/", "~1") + f"/{method}"


def _links(*names: str) -> dict[str, Any]:
    """OpenAPI links from an answer carrying a job (its `id`) to what may follow it: the document's
    account of a job's life (submit, follow, cancel, then delete), which clients and fuzzers use."""
    operations = {
        "GetJob": ("/{job_id}", "get"),
        "CancelJob": ("/{job_id}/cancel", "post"),
        "DeleteJob": ("/{job_id}", "delete"),
        "GetJobResult": ("/{job_id}/result", "get"),
        "GetJobErrors": ("/{job_id}/errors", "get"),
    }
    return {
        name: {
            "operationRef": _operation(*operations[name]),
            "parameters": {"job_id": "$response.body#/id"},
        }
        for name in names
    }


SUBMITTED = {"links": _links("GetJob", "CancelJob", "GetJobResult", "GetJobErrors")}
"""A submitted job is followed, or canceled; deleted once it has ended."""


class JobDeletion(BaseModel):
    """What deleting an ended job did besides removing its record (and its report)."""

    id: str
    removed: list[str] = Field(
        description="Removed from the data volume (only with files=true): the output and errors "
        "files, and an uploaded input's folder uploads/<id>/."
    )
    kept: list[str] = Field(
        description="Left in place: the job's files on the data volume (without files=true), and "
        "its outputs in a store (s3://, postgresql://), which the API never deletes."
    )


def _accepted(response: Response, record: dict[str, Any]) -> dict[str, Any]:
    response.headers["Location"] = f"/v1/jobs/{record['id']}"
    return record


@router.post(
    "",
    status_code=202,
    response_model=JobRecord,
    openapi_extra=json_body(JobCreate),
    responses={
        202: SUBMITTED,
        **documented(*QUEUE_ERRORS, *SUBMIT_ERRORS, *STORE_ERRORS, MalformedJSON, ServerBusy),
    },
)
async def create_job(
    request: Request, response: Response, settings: SettingsDep, connection: QueueDep
) -> dict[str, Any]:
    """Score a file on the data volume, or objects in a store (s3://). The body is JSON whatever the
    Content-Type says."""
    body = parse_body(await request.body(), JobCreate)
    return _accepted(response, await run_in_threadpool(_submit, body, settings, connection))


def _submit(body: JobCreate, settings: Settings, connection: redis.Redis) -> dict[str, Any]:
    job = submit(JobRequest(**body.model_dump()), settings, connection)
    return records.view(connection, job.id)


@router.post(
    "/upload",
    status_code=202,
    response_model=JobRecord,
    responses={202: SUBMITTED, **documented(*QUEUE_ERRORS, *SUBMIT_ERRORS, BadRequest)},
)
def upload_job(
    response: Response,
    settings: SettingsDep,
    connection: QueueDep,
    file: Annotated[UploadFile, File(description="A .csv, .parquet or .jsonl file to score")],
    model: Annotated[str, Form(min_length=1)],
    version: Annotated[int | None, Form(ge=1)] = None,
    alias: Annotated[str | None, Form()] = None,
    output: Annotated[str | None, Form()] = None,
    format: Annotated[str | None, Form()] = None,
    fail_fast: Annotated[bool, Form()] = False,
    input_format: Annotated[str | None, Form()] = None,
    overwrite: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """The file is stored on the data volume under uploads/<job id>/, then scored like any other."""
    fmt = detect_format(file.filename, file.content_type, input_format, "give input_format")
    job_id = uuid.uuid4().hex[:16]
    stem = safe_stem(file.filename)
    relative = f"{upload_folder(job_id)}/{stem}.{fmt}"
    stored = settings.data_dir / relative
    with atomic_path(stored) as tmp, tmp.open("wb") as sink:
        shutil.copyfileobj(file.file, sink, 1 << 20)
    request = JobRequest(
        model=model,
        input=relative,
        version=version,
        alias=alias,
        output=output,
        format=format,
        fail_fast=fail_fast,
        overwrite=overwrite,
    )
    try:
        job = submit(request, settings, connection, job_id=job_id, origin="upload")
    except Exception:
        shutil.rmtree(stored.parent, ignore_errors=True)
        raise
    return _accepted(response, records.view(connection, job.id))


@router.get("", response_model=JobList, responses=documented(*QUEUE_ERRORS))
def list_jobs(
    connection: QueueDep,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """Recent jobs, newest first."""
    return {"jobs": records.list_views(connection, status, limit)}


@router.get("/{job_id}", response_model=JobRecord, responses=documented(*QUEUE_ERRORS, JobNotFound))
def get_job(job_id: str, connection: QueueDep) -> dict[str, Any]:
    return records.view(connection, job_id)


@router.post(
    "/{job_id}/cancel",
    response_model=JobRecord,
    responses={
        200: {"links": _links("GetJob", "DeleteJob")},
        **documented(*QUEUE_ERRORS, JobNotFound, JobAlreadyEnded),
    },
)
def cancel_job(job_id: str, connection: QueueDep, settings: SettingsDep) -> dict[str, Any]:
    """Cancel a queued or running job; a running one stops at its next chunk, leaving no output.
    Its record stays, with the status canceled, until it is deleted."""
    return _cancel(job_id, connection, settings)


def _cancel(job_id: str, connection: redis.Redis, settings: Settings) -> dict[str, Any]:
    record = records.cancel(connection, job_id)
    if record["parts"]:  # the workers discard them too, when a store cannot be reached from here
        with suppress(ModelyardError):
            discard_parts(settings, records.spec(connection, job_id))
    return record


@router.delete(
    "/{job_id}",
    response_model=JobDeletion | JobRecord,
    responses={
        200: {
            "description": "An ended job: what was removed besides its record. A queued or running "
            "job: canceled, as POST /v1/jobs/{job_id}/cancel does, and its record (deprecated: "
            "the answer carries Deprecation and Link headers naming the cancel operation).",
            "headers": {
                "Deprecation": {
                    "description": "On a cancel: this use of DELETE is deprecated (RFC 9745).",
                    "schema": {"type": "string"},
                },
                "Link": {
                    "description": "On a cancel: the operation to use instead (rel=successor-version).",
                    "schema": {"type": "string"},
                },
            },
        },
        **documented(*QUEUE_ERRORS, JobNotFound, JobAlreadyEnded, JobNotEnded),
    },
)
def delete_job(
    job_id: str,
    response: Response,
    connection: QueueDep,
    settings: SettingsDep,
    files: Annotated[
        bool,
        Query(
            description="Also remove the job's output and errors files, and its uploaded input, from "
            "the data volume. Outputs in a store (s3://, postgresql://) are never deleted."
        ),
    ] = False,
) -> dict[str, Any]:
    """Delete an ended job (finished, failed or canceled): its record and report go, and with
    files=true its files on the data volume; GET /v1/jobs/{job_id} then answers 404. A queued or
    running job is canceled instead, as before (use POST /v1/jobs/{job_id}/cancel)."""
    if records.view(connection, job_id)["status"] not in ENDED:
        response.headers["Deprecation"] = DEPRECATED_SINCE
        response.headers["Link"] = f'</v1/jobs/{job_id}/cancel>; rel="successor-version"'
        return _cancel(job_id, connection, settings)
    return records.delete(connection, job_id, settings.data_dir, files).to_dict()


@router.get("/{job_id}/result", response_class=FileResponse, responses=FILES)
def job_result(job_id: str, connection: QueueDep, settings: SettingsDep) -> FileResponse:
    record = records.view(connection, job_id)
    if record["status"] != "finished":
        raise JobNotFinished(f"job {job_id} is {record['status']}: its output exists once it has finished")
    return _download(record["output"], FORMATS.get(record["format"], ""), settings.data_dir)


@router.get("/{job_id}/errors", response_class=FileResponse, responses=FILES)
def job_errors(job_id: str, connection: QueueDep, settings: SettingsDep) -> FileResponse:
    """The rows that failed validation, one JSON object per line (empty when there were none); kept
    too by a job that failed because no row was valid (error code invalid_input)."""
    record = records.view(connection, job_id)
    no_valid_row = record["status"] == "failed" and (record["error"] or {}).get("code") == "invalid_input"
    if record["status"] != "finished" and not no_valid_row:
        raise JobNotFinished(
            f"job {job_id} is {record['status']}: its errors file exists once it has finished "
            "(or failed for its rows)"
        )
    return _download(record["errors_output"], FORMATS["jsonl"], settings.data_dir)


@router.get(
    "/{job_id}/report",
    response_model=JobReport,
    responses=documented(*QUEUE_ERRORS, JobNotFound, ReportNotFound),
)
def job_report(job_id: str, connection: QueueDep, settings: SettingsDep) -> dict[str, Any]:
    """The run's report: rows scored, invalid rows by field and code, and per feature its drift from
    the version's reference profile (worst first), with both sides' counts per bin."""
    record = records.view(connection, job_id)

    def why_none() -> str:
        if record["status"] != "finished":
            return f"job {job_id} is {record['status']}: its report is written once it has finished"
        return f"job {job_id} has no report: reports were off (MODELYARD_REPORTS) when it ran"

    return reports.read(settings.data_dir, job_id, why_none)


def _download(relative: str, media_type: str, data_dir: Path) -> FileResponse:
    if is_object_uri(relative) or is_table_uri(relative):
        raise NotFound(
            f"the job wrote to the store: read {relative} there (the API serves the data volume only)"
        )
    try:
        path = data_path(data_dir, relative, "output")
    except ModelyardError as exc:
        raise NotFound(exc.message) from exc
    if not path.is_file():
        raise NotFound(
            f"{relative} is no longer on the data volume (moved or deleted since the job finished)"
        )
    return FileResponse(path, media_type=media_type, filename=PurePath(relative).name)
