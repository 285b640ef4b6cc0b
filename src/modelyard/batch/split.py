"""A big file's job split over the workers: one job per part, and a last job that joins them.

The parts are planned by batch/parts.py; here they become jobs. Their ids are fixed by the
submitted job's id and the part's index, so planning again (the worker died halfway) enqueues only
what is missing. Each part writes its output and errors beside the final output, in a hidden
folder; the join, which RQ starts once every part has finished, concatenates them in input order.
"""

import json
import logging
import shutil
import time
from pathlib import Path

from rq.job import Dependency, Job

from modelyard.batch import parts as parting
from modelyard.batch import queue
from modelyard.batch.files import BatchResult, nothing_valid
from modelyard.batch.progress import merge_warnings
from modelyard.batch.spec import JobSpec
from modelyard.config import Settings
from modelyard.errors import InputNotFound
from modelyard.fsutil import atomic_path

log = logging.getLogger(__name__)


def fan_out(job: Job, settings: Settings, spec: JobSpec, planned: list[parting.Part]) -> dict[str, int]:
    """Enqueue one job per part and the join that waits for them."""
    jobs = queue.job_queue(job.connection)
    options = queue.enqueue_options(settings)
    part_ids = [part_id(spec, part) for part in planned]
    join_id = f"{job.id}-join"
    job.meta.update(parts=part_ids, join=join_id, rows_total=sum(p.rows for p in planned))
    job.save_meta()
    for part, identifier in zip(planned, part_ids, strict=True):
        if not Job.exists(identifier, job.connection):
            jobs.enqueue_call(
                queue.SCORE_PART,
                args=(spec.to_dict(), part.to_dict()),
                job_id=identifier,
                description=f"part {part.index + 1}/{len(planned)} of job {job.id}",
                meta={"parent": job.id, "rows_total": part.rows},
                **options,
            )
    if not Job.exists(join_id, job.connection):
        jobs.enqueue_call(
            queue.JOIN_PARTS,
            args=(spec.to_dict(), [part.to_dict() for part in planned]),
            job_id=join_id,
            description=f"join the {len(planned)} parts of job {job.id}",
            depends_on=list[Dependency | Job | str](part_ids),
            meta={"parent": job.id},
            **options,
        )
    log.info("file split into parts", extra={"job_id": job.id, "parts": len(planned)})
    return {"parts": len(planned)}


def part_id(spec: JobSpec, part: parting.Part) -> str:
    return f"{spec.id}-part{part.index:04d}"


def part_files(data_dir: Path, spec: JobSpec, part: parting.Part) -> tuple[Path, Path]:
    """Where a part's output and errors wait for the join."""
    folder = spec.parts_folder(data_dir)
    return folder / f"part-{part.index:05d}.{spec.format}", folder / f"part-{part.index:05d}.errors.jsonl"


def join(job: Job, data_dir: Path, spec: JobSpec, planned: list[parting.Part]) -> BatchResult:
    """The parts' outputs and errors as the job's own, committed atomically; their counts summed."""
    started = time.perf_counter()
    files = [part_files(data_dir, spec, part) for part in planned]
    missing = [str(path) for pair in files for path in pair if not path.is_file()]
    if missing:
        raise InputNotFound(f"the outputs of some parts are gone, score the file again: {missing[:3]}")
    totals = [
        json.loads(job.connection.get(queue.done_key(part_id(spec, part))) or b"{}") for part in planned
    ]
    done, failed = sum(t.get("rows_done", 0) for t in totals), sum(t.get("rows_failed", 0) for t in totals)
    output, errors = spec.output_path(data_dir), spec.errors_path(data_dir)
    with atomic_path(errors) as tmp:
        parting.join([pair[1] for pair in files], "jsonl", tmp)
    if failed and not done:
        discard_parts(data_dir, spec)
        with errors.open() as records:
            raise nothing_valid(failed, json.loads(next(line for line in records if line.strip())))
    with atomic_path(output) as tmp:
        parting.join([pair[0] for pair in files], spec.format, tmp)
    warnings = merge_warnings(total.get("warnings", []) for total in totals)
    result = BatchResult(done, failed, output, errors, time.perf_counter() - started, warnings)
    discard_parts(data_dir, spec)
    return result


def discard_parts(data_dir: Path, spec: JobSpec) -> None:
    """Remove what the parts of a split job left, once joined or canceled."""
    shutil.rmtree(spec.parts_folder(data_dir), ignore_errors=True)
