"""What a worker runs for each batch job: a whole file, one part of a split one, or the join.

RQ finds these through modelyard/jobs.py, by the dotted names stored in each queued job; each runs
safely (batch/running.py) and reports as it goes (batch/finish.py). A file over the split threshold
is planned into parts (batch/parts.py), each scored as a job of its own by whatever worker is free,
then joined in input order by a last job that depends on them all (batch/split.py).
"""

from functools import partial
from typing import Any

from rq import Worker
from rq.job import Job

from modelyard.batch import inputs, outputs, queue, reporting, running, snapshots, split
from modelyard.batch import parts as parting
from modelyard.batch.files import score_chunks, score_spec
from modelyard.batch.finish import finished, progress_hook
from modelyard.batch.paths import not_found
from modelyard.batch.spec import JobSpec
from modelyard.batch.worker import model_cache
from modelyard.config import Settings
from modelyard.errors import InputNotFound
from modelyard.stores.uris import is_table_uri


def score(spec: dict[str, Any]) -> Any:
    """Score a whole file, or plan its parts and enqueue them when it is big."""
    job_spec = JobSpec.from_dict(spec)
    return running.run(job_spec, partial(_score, spec=job_spec))


def score_part(spec: dict[str, Any], part: dict[str, Any]) -> Any:
    job_spec = JobSpec.from_dict(spec)
    return running.run(job_spec, partial(_score_part, spec=job_spec, part=parting.Part.from_dict(part)))


def join_parts(spec: dict[str, Any], parts: list[dict[str, Any]]) -> Any:
    job_spec = JobSpec.from_dict(spec)
    planned = [parting.Part.from_dict(part) for part in parts]
    return running.run(job_spec, partial(_join, spec=job_spec, planned=planned))


def _score(job: Job, settings: Settings, spec: JobSpec) -> dict[str, Any]:
    workers = max(Worker.count(queue=queue.job_queue(job.connection)), 1)
    if is_table_uri(spec.input):
        planned = snapshots.planned(job, settings, spec, workers)
    else:
        spec = inputs.resolved(settings, spec)
        if not spec.objects and not spec.input_path(settings.data_dir).is_file():
            raise InputNotFound(
                f"{not_found(spec.input, settings.data_dir)}: the API and every worker must share that "
                "folder, or the file was removed after the job was submitted"
            )
        planned = inputs.plan(settings, spec, workers)
    if len(planned) > 1:
        return split.fan_out(job, settings, spec, planned)
    model = model_cache(settings).get(spec.model, spec.version)
    result = score_spec(settings, spec, model, progress_hook(job, spec), reporting.tally_for(settings, spec))
    reporting.publish(job.connection, settings, spec, result)
    return finished(job, settings.data_dir, result, spec)


def _score_part(job: Job, settings: Settings, spec: JobSpec, part: parting.Part) -> dict[str, Any]:
    model = model_cache(settings).get(spec.model, spec.version)
    output, errors = outputs.part(settings, spec, part.index)
    tally = reporting.tally_for(settings, spec)
    with snapshots.sharing(job, spec, part) as holds_snapshot:
        result = score_chunks(
            model,
            inputs.part(settings, spec, part, settings.chunk_rows, holds_snapshot),
            output=output,
            errors_output=errors,
            output_format=spec.format,
            fail_fast=spec.fail_fast,
            on_progress=progress_hook(job, spec),
            whole_file=False,
            keep=spec.keep,
            tally=tally,
        )
    counts = finished(job, settings.data_dir, result, None)  # a part: the whole job is not done yet
    written = outputs.described(output, errors, result.rows_done, result.rows_failed)
    return {**counts, "written": written, **({"tally": tally.to_dict()} if tally is not None else {})}


def _join(job: Job, settings: Settings, spec: JobSpec, planned: list[parting.Part]) -> dict[str, Any]:
    result = split.join(job, settings, spec, planned)
    reporting.publish(job.connection, settings, spec, result)
    return finished(job, settings.data_dir, result, spec)
