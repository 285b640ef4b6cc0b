"""Batch scoring jobs: what the API, the CLI and the scheduler submit, and what a worker runs.

A job takes paths relative to the data volume and a model version resolved when it was submitted
(a promotion in between does not change what it scores with), never data: the file stays on the
shared volume. The functions a worker runs (`score`, `score_part`, `join_parts`) have stable dotted
paths and JSON arguments.

A file over the split threshold is planned into parts, each scored as a job of its own by whatever
worker is free, then joined in input order by a last job that depends on them all.
"""

import json
import logging
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import redis
from rq import Retry, Worker, get_current_job
from rq.job import Dependency, Job, JobStatus

from modelyard import parts as parting
from modelyard import queue, queue_metrics
from modelyard.batch import BatchResult, nothing_valid, score_chunks, score_file
from modelyard.cache import LoadPolicy, ModelCache
from modelyard.config import Settings, get_settings
from modelyard.errors import (
    InputNotFound,
    InvalidPath,
    InvalidRequest,
    JobStopped,
    ModelyardError,
    OutputExists,
)
from modelyard.formats import detect_format, output_format
from modelyard.fsutil import atomic_path, atomic_write_json
from modelyard.progress import Progress, counted
from modelyard.registry import PRODUCTION, Registry

log = logging.getLogger(__name__)

LOCK_TTL_S = 30
"""A running job holds a lock, so that no job ever runs in two places at once."""
INTERRUPTIONS = 1000
"""How often a job may be handed back by a stopping worker before it counts as failed."""


# ---- Submitting ---------------------------------------------------------------------------


@dataclass
class JobRequest:
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
    marker: dict[str, Any] | None = None,
) -> Job:
    """Check the request against the registry and the data volume, then enqueue it.

    `marker`, for scheduled runs, is written (to its `path` on the data volume) once the job's
    outputs are committed: the schedule's record that this input was scored.
    """
    job_id = job_id or uuid.uuid4().hex[:16]
    spec = job_spec(request, settings, job_id, origin)
    if marker is not None:
        spec["marker"] = marker
    job = queue.job_queue(connection).enqueue_call(
        "modelyard.jobs.score",
        args=(spec,),
        job_id=job_id,
        description=f"score {spec['input']} with {spec['model']} v{spec['version']}",
        retry=_retries(settings),
        **queue.enqueue_options(settings.job_retention_s, settings.job_timeout_s),
    )
    queue.remember(connection, job_id, settings.job_retention_s)
    log.info("job submitted", extra={k: spec[k] for k in ("id", "model", "version", "input", "output")})
    return job


def _retries(settings: Settings) -> Retry | None:
    return Retry(max=settings.job_retries) if settings.job_retries else None


def job_spec(request: JobRequest, settings: Settings, job_id: str, origin: str) -> dict[str, Any]:
    """Everything a worker needs, resolved now: paths, formats and the model version."""
    source = data_path(settings.data_dir, request.input, "input")
    if not source.is_file():
        raise InputNotFound(_not_found(request.input, settings.data_dir))
    input_format = detect_format(source.name, None, request.input_format, "give input_format")
    version = _resolve_version(Registry(settings.model_dir), request)
    output, errors, output_format = _outputs(request, source, job_id, input_format)
    for path in (output, errors):
        target = data_path(settings.data_dir, path, "output")
        if target == source:
            raise InvalidPath(f"output {path!r} is the input file: choose another name")
    if not request.overwrite and data_path(settings.data_dir, output, "output").exists():
        raise OutputExists(f"output {output!r} already exists: choose another, or ask to overwrite it")
    return {
        "id": job_id,
        "model": request.model,
        "version": version,
        "input": _relative(settings.data_dir, source),
        "input_format": input_format,
        "output": output,
        "errors_output": errors,
        "format": output_format,
        "fail_fast": request.fail_fast,
        "origin": origin,
        "submitted_at": datetime.now(UTC).isoformat(),
    }


def _not_found(relative: str, data_dir: Path) -> str:
    folder = data_dir.resolve()
    parts = PurePosixPath(relative).parts
    hint = ""
    if parts[:1] == (folder.name,) and len(parts) > 1:
        meant = str(PurePosixPath(*parts[1:]))
        hint = f"; paths are relative to the data folder: did you mean {meant!r}?"
    return f"input {relative!r}: no such file in the data folder {folder} (MODELYARD_DATA_DIR){hint}"


def _resolve_version(registry: Registry, request: JobRequest) -> int:
    if request.version is not None and request.alias is not None:
        raise InvalidRequest("pass either version or alias, not both")
    if request.version is not None:
        return registry.get(request.model, request.version).version
    return registry.resolve(request.model, request.alias or PRODUCTION).version


def _outputs(request: JobRequest, source: Path, job_id: str, input_format: str) -> tuple[str, str, str]:
    """Output and errors file paths, and the output format. By default, beside each other in
    scored/, named after the input and the job; a folder given ends with '/'."""
    wanted = request.output or "scored/"
    if wanted.endswith("/"):
        fmt = output_format(request.format, None, input_format)
        name = source.stem if request.output else f"{source.stem}.{job_id}"
        folder = PurePosixPath(wanted)
        return str(folder / f"{name}.predictions.{fmt}"), str(folder / f"{name}.errors.jsonl"), fmt
    path = PurePosixPath(wanted)
    fmt = output_format(request.format, path.name, input_format)
    return wanted, str(path.with_suffix("")) + ".errors.jsonl", fmt


def data_path(data_dir: Path, relative: str, what: str) -> Path:
    """A path inside the data volume, refused when it is absolute or leaves it (.., a symlink)."""
    if not relative or PurePath(relative).is_absolute() or relative.startswith("~"):
        raise InvalidPath(f"{what} {relative!r}: give a path relative to the data volume")
    if "\x00" in relative or not _encodable(relative):
        raise InvalidPath(f"{what} {relative!r} is not a file name (a NUL byte, or text that is not UTF-8)")
    root = data_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or path == root:
        raise InvalidPath(f"{what} {relative!r} leaves the data volume; paths must stay inside it")
    return path


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # an unpaired surrogate, which JSON can carry and no file name can
        return False
    return True


def _relative(data_dir: Path, path: Path) -> str:
    return str(path.relative_to(data_dir.resolve()))


# ---- Running (in a worker) ----------------------------------------------------------------

_stop = threading.Event()
_cache: ModelCache | None = None


def request_stop() -> None:
    """The worker is stopping: end the running job at the next chunk and hand it back."""
    _stop.set()


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


class Canceled(JobStopped):
    """The job was canceled while it ran; it stopped between two chunks."""


class Interrupted(JobStopped):
    """The worker is shutting down; the job goes back to the queue for another worker."""


def score(spec: dict[str, Any]) -> Any:
    """Score a whole file, or plan its parts and enqueue them when it is big."""
    return _run(_score, spec)


def score_part(spec: dict[str, Any], part: dict[str, Any]) -> Any:
    return _run(_score_part, spec, parting.Part.from_dict(part))


def join_parts(spec: dict[str, Any], parts: list[dict[str, Any]]) -> Any:
    return _run(_join, spec, [parting.Part.from_dict(p) for p in parts])


def _run(body: Callable[..., dict[str, Any]], *args: Any) -> Any:
    job = get_current_job()
    assert job is not None, "modelyard jobs run in an RQ worker"
    settings = get_settings()
    job.meta.pop("error", None)
    try:
        if canceled(job):
            raise Canceled(f"job {job.id} was canceled before it started")
        with _exclusive(job, settings.job_timeout_s):
            done = _done_key(job.id)
            recorded = job.connection.get(done)
            if recorded is not None:
                log.info("already done: nothing to do", extra={"job_id": job.id})
                return json.loads(recorded)
            result = body(job, settings, *args)
            job.connection.set(done, json.dumps(result), ex=settings.job_retention_s)
            return result
    except Interrupted:
        log.warning("worker stopping: job handed back to the queue", extra={"job_id": job.id})
        return Retry(max=INTERRUPTIONS, enqueue_at_front=True)
    except Canceled:
        discard_parts(settings.data_dir, args[0])
        raise
    except ModelyardError as exc:
        _record_error(job, exc.code, exc.message, exc.details)
        job.retries_left = 0  # the same input would fail the same way: no retry
        raise
    except Exception as exc:
        if canceled(job):  # e.g. its parts' folder removed by the cancel while it wrote there
            discard_parts(settings.data_dir, args[0])
            raise Canceled(f"job {job.id} was canceled") from exc
        _record_error(job, "internal_error", f"{type(exc).__name__}: {exc}", [])
        raise


def canceled(job: Job) -> bool:
    """Whether the job, or the submitted job it is a part of, was canceled."""
    spec = job.args[0] if job.args and isinstance(job.args[0], dict) else {}
    return job.get_status(refresh=True) == JobStatus.CANCELED or bool(
        job.connection.exists(queue.cancel_key(spec.get("id", job.id)))
    )


def _done_key(job_id: str) -> str:
    """Set when a job's outputs are committed: running it again returns what it recorded."""
    return f"{queue.PREFIX}done:{job_id}"


@contextmanager
def _exclusive(job: Job, wait_s: int) -> Iterator[None]:
    """Hold the job's lock while it runs, renewed by a thread: if this process dies, the lock lapses
    within LOCK_TTL_S, well before RQ gives the job to another worker. A second runner (its first
    worker dead but the process still going) waits for the first to end, then finds the work done."""
    lock = job.connection.lock(f"{queue.PREFIX}lock:{job.id}", timeout=LOCK_TTL_S, sleep=1)
    if not lock.acquire(blocking=False):
        log.warning("another process runs this job: waiting for it to end", extra={"job_id": job.id})
        if not lock.acquire(blocking=True, blocking_timeout=wait_s):
            raise TimeoutError(f"job {job.id} is still running elsewhere after {wait_s}s")
    done = threading.Event()

    def renew() -> None:
        while not done.wait(LOCK_TTL_S / 3):
            with suppress(redis.exceptions.RedisError):
                lock.extend(LOCK_TTL_S, replace_ttl=True)

    renewer = threading.Thread(target=renew, name="job-lock", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()
        with suppress(redis.exceptions.LockError):  # lapsed: whoever runs it next finds it done
            lock.release()


def _record_error(job: Job, code: str, message: str, details: list[Any]) -> None:
    job.meta["error"] = {"code": code, "message": message, "details": details[:20]}
    job.save_meta()


def _score(job: Job, settings: Settings, spec: dict[str, Any]) -> dict[str, Any]:
    source = data_path(settings.data_dir, spec["input"], "input")
    if not source.is_file():
        raise InputNotFound(
            f"{_not_found(spec['input'], settings.data_dir)}: the API and every worker must share that "
            "folder, or the file was removed after the job was submitted"
        )
    if source.stat().st_size > settings.split_threshold_mb * 1024 * 1024:
        workers = Worker.count(queue=queue.job_queue(job.connection))
        planned = parting.plan(source, spec["input_format"], settings.part_rows, max(workers, 1))
        if len(planned) > 1:
            return _fan_out(job, settings, spec, planned)
    model = model_cache(settings).get(spec["model"], spec["version"])
    result = score_file(
        model,
        source,
        spec["input_format"],
        data_path(settings.data_dir, spec["output"], "output"),
        data_path(settings.data_dir, spec["errors_output"], "output"),
        spec["format"],
        settings.chunk_rows,
        spec["fail_fast"],
        _progress_hook(job, spec),
    )
    return _finished(job, settings, spec, result)


def _fan_out(
    job: Job, settings: Settings, spec: dict[str, Any], planned: list[parting.Part]
) -> dict[str, Any]:
    """Enqueue one job per part and the join that waits for them. Ids are fixed, so running this
    again (the worker died halfway) enqueues only what is missing."""
    jobs = queue.job_queue(job.connection)
    options = queue.enqueue_options(settings.job_retention_s, settings.job_timeout_s)
    part_ids = [_part_id(job.id, part) for part in planned]
    join_id = f"{job.id}-join"
    job.meta.update(parts=part_ids, join=join_id, rows_total=sum(p.rows for p in planned))
    job.save_meta()
    for part, part_id in zip(planned, part_ids, strict=True):
        if not Job.exists(part_id, job.connection):
            jobs.enqueue_call(
                "modelyard.jobs.score_part",
                args=(spec, part.to_dict()),
                job_id=part_id,
                description=f"part {part.index + 1}/{len(planned)} of job {job.id}",
                meta={"parent": job.id, "rows_total": part.rows},
                retry=_retries(settings),
                **options,
            )
    if not Job.exists(join_id, job.connection):
        jobs.enqueue_call(
            "modelyard.jobs.join_parts",
            args=(spec, [part.to_dict() for part in planned]),
            job_id=join_id,
            description=f"join the {len(planned)} parts of job {job.id}",
            depends_on=list[Dependency | Job | str](part_ids),
            meta={"parent": job.id},
            retry=_retries(settings),
            **options,
        )
    log.info("file split into parts", extra={"job_id": job.id, "parts": len(planned)})
    return {"parts": len(planned)}


def _part_id(job_id: str, part: parting.Part) -> str:
    return f"{job_id}-part{part.index:04d}"


def _part_files(settings: Settings, spec: dict[str, Any], part: parting.Part) -> tuple[Path, Path]:
    """Where a part waits for the join: beside the output, so renames stay on one file system."""
    output = data_path(settings.data_dir, spec["output"], "output")
    folder = output.parent / f".{spec['id']}.parts"
    return folder / f"part-{part.index:05d}.{spec['format']}", folder / f"part-{part.index:05d}.errors.jsonl"


def _score_part(job: Job, settings: Settings, spec: dict[str, Any], part: parting.Part) -> dict[str, Any]:
    source = data_path(settings.data_dir, spec["input"], "input")
    model = model_cache(settings).get(spec["model"], spec["version"])
    output, errors = _part_files(settings, spec, part)
    with source.open("rb") as handle:
        chunks = parting.read_part(handle, spec["input_format"], part, settings.chunk_rows, source)
        result = score_chunks(
            model,
            chunks,
            output,
            errors,
            spec["format"],
            spec["fail_fast"],
            _progress_hook(job, spec),
            whole_file=False,
        )
    return _finished(job, settings, {}, result)  # a part: the whole job is not done yet


def _join(job: Job, settings: Settings, spec: dict[str, Any], planned: list[parting.Part]) -> dict[str, Any]:
    started = time.perf_counter()
    files = [_part_files(settings, spec, part) for part in planned]
    missing = [str(path) for pair in files for path in pair if not path.is_file()]
    if missing:
        raise InputNotFound(f"the outputs of some parts are gone, score the file again: {missing[:3]}")
    totals = [json.loads(job.connection.get(_done_key(_part_id(spec["id"], p))) or b"{}") for p in planned]
    done, failed = sum(t.get("rows_done", 0) for t in totals), sum(t.get("rows_failed", 0) for t in totals)
    if failed and not done:
        first = next(line for _, errors_part in files for line in errors_part.open() if line.strip())
        raise nothing_valid(failed, json.loads(first))
    output = data_path(settings.data_dir, spec["output"], "output")
    errors = data_path(settings.data_dir, spec["errors_output"], "output")
    with atomic_path(output) as tmp:
        parting.join([pair[0] for pair in files], spec["format"], tmp)
    with atomic_path(errors) as tmp:
        parting.join([pair[1] for pair in files], "jsonl", tmp)
    warned: Counter[tuple[str, str]] = Counter()
    for total in totals:
        warned.update({(w["field"], w["code"]): w["count"] for w in total.get("warnings", [])})
    result = BatchResult(done, failed, output, errors, time.perf_counter() - started, counted(warned))
    discard_parts(settings.data_dir, spec)
    return _finished(job, settings, spec, result)


def discard_parts(data_dir: Path, spec: dict[str, Any]) -> None:
    """Remove what the parts of a split job left, once joined or canceled."""
    output = data_path(data_dir, spec["output"], "output")
    shutil.rmtree(output.parent / f".{spec['id']}.parts", ignore_errors=True)


def _finished(job: Job, settings: Settings, spec: dict[str, Any], result: BatchResult) -> dict[str, Any]:
    counts = {
        "rows_done": result.rows_done,
        "rows_failed": result.rows_failed,
        "rows_total": result.rows_total,
        "warnings": result.warnings,
    }
    job.meta.update(counts, progress=1.0)
    job.save_meta()
    marker = spec.get("marker")
    if marker is not None:
        scored = {**marker, "job_id": spec["id"], "output": spec["output"], "scored_at": datetime.now(UTC)}
        atomic_write_json(data_path(settings.data_dir, marker["path"], "marker"), scored)
    return counts


def _progress_hook(job: Job, spec: dict[str, Any]) -> Callable[[Progress], None]:
    """After every chunk: report progress, and stop if the job was canceled or the worker stops."""
    reported = {"rows_done": 0, "rows_failed": 0}

    def on_progress(progress: Progress) -> None:
        new_done = progress.rows_done - reported["rows_done"]
        new_failed = progress.rows_failed - reported["rows_failed"]
        reported.update(rows_done=progress.rows_done, rows_failed=progress.rows_failed)
        queue_metrics.record_chunk(
            job.connection, spec["model"], spec["version"], new_done, new_failed, progress.chunk_seconds
        )
        job.meta.update(
            rows_done=progress.rows_done,
            rows_failed=progress.rows_failed,
            progress=progress.fraction,
            warnings=progress.warnings,
            **({"rows_total": progress.rows_total} if progress.rows_total is not None else {}),
        )
        job.save_meta()
        if canceled(job):
            raise Canceled(f"job {job.id} was canceled")
        if _stop.is_set():
            raise Interrupted(f"job {job.id} handed back: its worker is stopping")

    return on_progress
