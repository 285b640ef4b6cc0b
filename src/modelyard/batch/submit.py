"""Submitting a batch job: the request checked against the registry and the data volume, resolved
into a spec (paths, formats, model version), and enqueued for the workers.

A job takes paths relative to the data volume and a model version resolved now (a promotion in
between does not change what it scores with), never data: the file stays on the shared volume.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath

import redis
from rq.job import Job

from modelyard.batch import queue
from modelyard.batch.files import output_files
from modelyard.batch.paths import data_path, not_found, relative_path
from modelyard.batch.spec import JobSpec, Marker
from modelyard.config import Settings
from modelyard.errors import InputNotFound, InvalidPath, OutputExists
from modelyard.formats import detect_format
from modelyard.registry.store import Registry

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = "scored/"


@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """What a submitter asks for, before anything is checked."""

    model: str
    input: str
    """Path of the file to score, relative to the data volume."""
    version: int | None = None
    alias: str | None = None
    output: str | None = None
    """Output file, or folder when it ends with '/'; relative to the data volume."""
    format: str | None = None
    """Output format: csv, parquet or jsonl; by default the output's suffix, else the input's."""
    fail_fast: bool = False
    input_format: str | None = None
    """For an input whose name does not say (e.g. data.txt)."""
    overwrite: bool = False
    """Replace an output that exists; without it, such a job is refused."""


def submit(
    request: JobRequest,
    settings: Settings,
    connection: redis.Redis,
    job_id: str | None = None,
    origin: str = "api",
    marker: Marker | None = None,
) -> Job:
    """Check the request, then enqueue it. `marker`, for scheduled runs, is written once the job's
    outputs are committed: the schedule's record that this input was scored."""
    spec = resolve(request, settings, job_id=job_id or uuid.uuid4().hex[:16], origin=origin, marker=marker)
    job = queue.job_queue(connection).enqueue_call(
        queue.SCORE,
        args=(spec.to_dict(),),
        job_id=spec.id,
        description=f"score {spec.input} with {spec.model} v{spec.version}",
        **queue.enqueue_options(settings),
    )
    queue.remember(connection, spec.id, settings.job_retention_s)
    log.info(
        "job submitted",
        extra={
            "id": spec.id,
            "model": spec.model,
            "version": spec.version,
            "input": spec.input,
            "output": spec.output,
        },
    )
    return job


def resolve(
    request: JobRequest, settings: Settings, *, job_id: str, origin: str, marker: Marker | None = None
) -> JobSpec:
    """Everything a worker needs, resolved now: paths, formats and the model version."""
    source = data_path(settings.data_dir, request.input, "input")
    if not source.is_file():
        raise InputNotFound(not_found(request.input, settings.data_dir))
    input_format = detect_format(source.name, None, request.input_format, "give input_format")
    version = Registry(settings.model_dir).pick(request.model, request.version, request.alias).version
    wanted = request.output or DEFAULT_OUTPUT
    folder = wanted.endswith("/")
    named, errors_path, output_format = output_files(
        PurePosixPath(wanted),
        folder=folder,
        stem=source.stem if request.output else f"{source.stem}.{job_id}",
        input_format=input_format,
        requested_format=request.format,
    )
    output, errors = str(named) if folder else wanted, str(errors_path)  # a file: as the user wrote it
    for path in (output, errors):
        if data_path(settings.data_dir, path, "output") == source:
            raise InvalidPath(f"output {path!r} is the input file: choose another name")
    if not request.overwrite and data_path(settings.data_dir, output, "output").exists():
        raise OutputExists(
            f"output {output!r} already exists: choose another, or ask to replace it "
            '("overwrite": true; modelyard jobs submit --overwrite)'
        )
    return JobSpec(
        id=job_id,
        model=request.model,
        version=version,
        input=relative_path(settings.data_dir, source),
        input_format=input_format,
        output=output,
        errors_output=errors,
        format=output_format,
        fail_fast=request.fail_fast,
        origin=origin,
        submitted_at=datetime.now(UTC).isoformat(),
        marker=marker,
    )
