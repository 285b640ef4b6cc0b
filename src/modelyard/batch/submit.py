"""Submitting a batch job: the request checked against the registry and the data volume, resolved
into a spec (paths, formats, model version), and enqueued for the workers.

A job takes paths relative to the data volume and a model version resolved now (a promotion in
between does not change what it scores with), never data: the file stays on the shared volume.
"""

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath

import redis
from rq.job import Job

from modelyard.batch import inputs, queue, staging, tables
from modelyard.batch.files import output_files
from modelyard.batch.outputs import ERRORS_FOLDER, MANIFEST
from modelyard.batch.paths import data_path, not_found, relative_path
from modelyard.batch.places import object_uri, store_for
from modelyard.batch.spec import JobSpec, Marker, Since
from modelyard.batch.tables import table_uri
from modelyard.config import Settings
from modelyard.errors import InputNotFound, InvalidPath, InvalidRequest, OutputExists
from modelyard.formats import detect_format
from modelyard.registry.store import Registry
from modelyard.stores import errors as store_errors
from modelyard.stores import s3
from modelyard.stores.s3 import StoredObject
from modelyard.stores.uris import TableUri

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = "scored/"
TABLE_FORMAT = "table"
"""The format of a table input or output: rows, not a file."""
TABLE_FILE_FORMAT = "parquet"
"""A table scored into a file or objects: Parquet by default, which keeps the columns' types."""


@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """What a submitter asks for, before anything is checked."""

    model: str
    input: str
    """Path of the file to score, relative to the data volume; or s3://BUCKET/KEY, s3://BUCKET/PREFIX/."""
    version: int | None = None
    alias: str | None = None
    output: str | None = None
    """Output file, or folder when it ends with '/'; relative to the data volume. Or an object
    (s3://BUCKET/KEY), or a dataset of parts and a _SUCCESS manifest (s3://BUCKET/PREFIX/)."""
    format: str | None = None
    """Output format: csv, parquet or jsonl; by default the output's suffix, else the input's."""
    fail_fast: bool = False
    input_format: str | None = None
    """For an input whose name does not say (e.g. data.txt)."""
    overwrite: bool = False
    """Replace an output that exists; without it, such a job is refused."""
    key: tuple[str, ...] = ()
    """For a table input: the columns that identify a row; by default its primary key."""
    keep: tuple[str, ...] = ()
    """The input columns the output keeps; for a table input, by default its key and the features."""
    mode: str | None = None
    """For a table output: create (the default; refused if it exists), replace or append."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", tuple(self.key))  # from JSON, lists
        object.__setattr__(self, "keep", tuple(self.keep))


def submit(
    request: JobRequest,
    settings: Settings,
    connection: redis.Redis,
    job_id: str | None = None,
    origin: str = "api",
    marker: Marker | None = None,
    objects: tuple[StoredObject, ...] | None = None,
    markers: tuple[Marker, ...] = (),
    since: Since | None = None,
) -> Job:
    """Check the request, then enqueue it. `marker` (`markers` for objects), for scheduled runs, is
    written once the job's outputs are committed: the schedule's record that this input was scored."""
    identifier = job_id or uuid.uuid4().hex[:16]
    spec = resolve(
        request,
        settings,
        job_id=identifier,
        origin=origin,
        marker=marker,
        objects=objects,
        markers=markers,
        since=since,
    )
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
    request: JobRequest,
    settings: Settings,
    *,
    job_id: str,
    origin: str,
    marker: Marker | None = None,
    objects: tuple[StoredObject, ...] | None = None,
    markers: tuple[Marker, ...] = (),
    since: Since | None = None,
) -> JobSpec:
    """Everything a worker needs, resolved now: places, formats and the model version. An s3://
    input's objects are fixed now (`objects`, when the caller listed them already)."""
    picked = Registry(settings.model_dir).pick(request.model, request.version, request.alias)
    table_in = table_uri(request.input, "input")
    source = (
        _table_source(request, settings, table_in, picked.schema.names)
        if table_in
        else _source(request, settings, objects)
    )
    wanted = request.output or DEFAULT_OUTPUT
    table_out = table_uri(wanted, "output")
    if table_out is not None:
        output, errors, output_format = wanted, str(staging.errors_table(table_out)), TABLE_FORMAT
        mode = _table_mode(settings, table_out, request)
    else:
        output, errors, output_format = _file_or_object(request, wanted, source, job_id)
        mode = None
        for path in (output, errors):
            if _same_place(settings, path, source.place):
                raise InvalidPath(f"output {path!r} is the input: choose another name")
        _check_output(settings, output, errors, request.overwrite)
    return JobSpec(
        id=job_id,
        model=request.model,
        version=picked.version,
        input=source.place,
        input_format=source.format,
        output=output,
        errors_output=errors,
        format=output_format,
        fail_fast=request.fail_fast,
        origin=origin,
        submitted_at=datetime.now(UTC).isoformat(),
        marker=marker,
        objects=source.objects,
        markers=markers,
        overwrite=request.overwrite and object_uri(output, "output") is not None,  # a file: checked here
        key=source.key,
        columns=source.columns,
        keep=request.keep,
        mode=mode,
        since=since,
    )


def _file_or_object(request: JobRequest, wanted: str, source: "_Source", job_id: str) -> tuple[str, str, str]:
    """The output and errors places of a job writing a file or objects, and the output's format."""
    output_uri = object_uri(wanted, "output")
    place: PurePosixPath = PurePosixPath(output_uri.key if output_uri else wanted)
    folder = wanted.endswith("/") and not (output_uri and output_uri.is_prefix)
    named, errors_place, output_format = output_files(
        place,
        folder=folder,
        stem=source.stem if request.output else f"{source.stem}.{job_id}",
        input_format=source.format if source.format != TABLE_FORMAT else TABLE_FILE_FORMAT,
        requested_format=request.format,
    )
    if output_uri is None:
        return str(named) if folder else wanted, str(errors_place), output_format  # as the user wrote it
    if output_uri.is_prefix:
        return wanted, str(output_uri.under(ERRORS_FOLDER)), output_format
    return wanted, str(output_uri.beside(errors_place.name)), output_format


def _table_source(request: JobRequest, settings: Settings, uri: TableUri, features: list[str]) -> "_Source":
    """A table or named query: its key (the one asked for, else the primary key) and the columns
    a job reads, checked now."""
    described = tables.describe(tables.place_for(settings, uri, "read", "input"), request.key)
    columns = tables.columns_read(described, features, request.keep)
    missing = [name for name in request.keep if name not in columns]
    if missing:
        raise InvalidRequest(f"keep: column {missing[0]!r} is not read")
    return _Source(str(uri), uri.table or uri.query, TABLE_FORMAT, key=described.key, columns=columns)


def _table_mode(settings: Settings, uri: TableUri, request: JobRequest) -> str:
    """How a table output is written; `create` is refused now if the table exists."""
    mode = request.mode or ("replace" if request.overwrite else "create")
    if mode not in staging.MODES:
        raise InvalidRequest(f"mode {mode!r}: give one of {', '.join(staging.MODES)}")
    place = tables.place_for(settings, uri, "write", "output")
    if mode == "create" and staging.exists(place, attempts=1):
        raise OutputExists(
            f"output {uri} already exists: choose another table, or ask to replace it or append to it "
            '("mode": "replace" or "append"; modelyard jobs submit --mode replace)'
        )
    return mode


@dataclass(frozen=True)
class _Source:
    place: str
    stem: str
    format: str
    objects: tuple[StoredObject, ...] = ()
    key: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()


def _source(request: JobRequest, settings: Settings, objects: tuple[StoredObject, ...] | None) -> _Source:
    """The input as the worker will name it, checked now: a file that exists, or objects the store
    lists (a missing bucket or object refused when the store answers)."""
    uri = object_uri(request.input, "input")
    if uri is None:
        path = data_path(settings.data_dir, request.input, "input")
        if not path.is_file():
            raise InputNotFound(not_found(request.input, settings.data_dir))
        fmt = detect_format(path.name, None, request.input_format, "give input_format")
        return _Source(relative_path(settings.data_dir, path), path.stem, fmt)
    store = store_for(settings, uri, "read", "input")
    if objects is None:
        try:
            objects = inputs.listed(store, uri, attempts=1)
        except store_errors.StoreUnavailable:  # the worker lists them, with retries, or fails saying why
            named = request.input_format or ("csv" if uri.is_prefix else None)
            fmt = detect_format(uri.key, None, named, "give input_format")
            return _Source(str(uri), PurePosixPath(uri.name).stem, fmt)
    if not objects:
        raise InputNotFound(f"input {uri}: no CSV, Parquet or JSON Lines object under this prefix")
    if uri.is_prefix:
        formats = {item.format for item in objects}
        if request.input_format is None and len(formats) > 1:
            raise InvalidRequest(f"input {uri} mixes formats {sorted(formats)}: score one format per job")
        fmt = detect_format(objects[0].key, None, request.input_format, "give input_format")
        if request.input_format:
            objects = tuple(replace(item, format=fmt) for item in objects)
    else:
        fmt = detect_format(uri.key, None, request.input_format, "give input_format")
        objects = tuple(replace(item, format=fmt) for item in objects)
    return _Source(str(uri), PurePosixPath(uri.name).stem, fmt, objects)


def _same_place(settings: Settings, output: str, source: str) -> bool:
    if object_uri(output, "output") or object_uri(source, "input"):
        return output == source
    return data_path(settings.data_dir, output, "output") == data_path(settings.data_dir, source, "input")


def _check_output(settings: Settings, output: str, errors: str, overwrite: bool) -> None:
    """The output may be written (the connections file allows it), and is new unless replaced."""
    uri = object_uri(output, "output")
    if uri is None:
        exists = data_path(settings.data_dir, output, "output").exists()
    else:
        store = store_for(settings, uri, "write", "output")
        errors_uri = object_uri(errors, "output")
        assert errors_uri is not None
        store_for(settings, errors_uri, "write", "output")
        fs = store.fs()
        try:
            if not s3.bucket_exists(fs, store.name, uri, attempts=1):
                raise store_errors.StoreObjectNotFound(
                    f"output {uri}: no such bucket (connection {store.name!r})"
                )
            exists = s3.exists(fs, store.name, uri.under(MANIFEST) if uri.is_prefix else uri, attempts=1)
        except store_errors.StoreUnavailable:
            return  # a dataset's manifest is looked for again when the job commits
    if exists and not overwrite:
        what = (
            f"output {output!r} already holds a dataset ({MANIFEST} exists)"
            if uri and uri.is_prefix
            else f"output {output!r} already exists"
        )
        raise OutputExists(
            f"{what}: choose another, or ask to replace it "
            '("overwrite": true; modelyard jobs submit --overwrite)'
        )
