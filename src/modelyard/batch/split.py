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
from typing import Any

from rq.job import Dependency, Job

from modelyard.batch import outputs, queue, reporting
from modelyard.batch import parts as parting
from modelyard.batch.files import BatchResult, nothing_valid
from modelyard.batch.places import Target, object_uri
from modelyard.batch.progress import merge_warnings
from modelyard.batch.spec import JobSpec
from modelyard.config import Settings
from modelyard.errors import InputNotFound

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


def join(job: Job, settings: Settings, spec: JobSpec, planned: list[parting.Part]) -> BatchResult:
    """The parts' outputs and errors as the job's own, committed atomically; their counts summed.
    A dataset's parts are its files already: it only gets its manifest."""
    started = time.perf_counter()
    totals = [
        json.loads(job.connection.get(queue.done_key(part_id(spec, part))) or b"{}") for part in planned
    ]
    done, failed = sum(t.get("rows_done", 0) for t in totals), sum(t.get("rows_failed", 0) for t in totals)
    warnings = merge_warnings(total.get("warnings", []) for total in totals)
    tally = reporting.merged(settings, spec, [total.get("tally", {}) for total in totals])
    pieces = [outputs.part(settings, spec, part.index) for part in planned]
    missing = [str(target) for pair in pieces for target in pair if not target.exists()]
    if missing:
        raise InputNotFound(f"the outputs of some parts are gone, score the file again: {missing[:3]}")
    whole = None if outputs.in_place(spec) else outputs.whole(settings, spec)
    if whole is not None:  # a file's or an object's errors, kept also when no row was valid
        with whole[1].open() as sink:
            parting.join([pair[1].opener() for pair in pieces], "jsonl", sink)
    if failed and not done:
        first = _first_problem([errors for _, errors in pieces])
        discard_parts(settings, spec)
        raise nothing_valid(failed, first)
    if whole is None:
        outputs.commit(settings, spec, [total["written"] for total in totals])
        return BatchResult(
            done, failed, spec.output, spec.errors_output, time.perf_counter() - started, warnings, tally
        )
    output, errors = whole
    with output.open() as sink:
        parting.join([pair[0].opener() for pair in pieces], spec.format, sink)
    result = BatchResult(
        done, failed, str(output), str(errors), time.perf_counter() - started, warnings, tally
    )
    discard_parts(settings, spec)
    return result


def _first_problem(errors: list[Target]) -> dict[str, Any]:
    for target in errors:
        with target.opener()() as records:
            for line in records:
                if line.strip():
                    return dict(json.loads(line))
    raise AssertionError("rows failed, but no part recorded one")


def discard_parts(settings: Settings, spec: JobSpec) -> None:
    """Remove what the parts of a split job left: once joined, or when it failed or was canceled."""
    if not outputs.in_place(spec) and object_uri(spec.output, "output") is None:
        shutil.rmtree(spec.parts_folder(settings.data_dir), ignore_errors=True)
    else:
        outputs.discard(settings, spec)
