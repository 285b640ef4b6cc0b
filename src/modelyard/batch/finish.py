"""What a running job reports: its progress after every chunk (where a cancel or a stopping worker
stops it), and its counts and the schedule's marker once its outputs are committed."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rq.job import Job

from modelyard.batch import metrics, worker
from modelyard.batch.files import BatchResult
from modelyard.batch.paths import data_path
from modelyard.batch.progress import Progress
from modelyard.batch.running import Canceled, Interrupted, canceled
from modelyard.batch.spec import JobSpec
from modelyard.fsutil import atomic_write_json


def progress_hook(job: Job, spec: JobSpec) -> Callable[[Progress], None]:
    """After every chunk: report progress, and stop if the job was canceled or the worker stops."""
    reported = {"rows_done": 0, "rows_failed": 0}

    def on_progress(progress: Progress) -> None:
        new_done = progress.rows_done - reported["rows_done"]
        new_failed = progress.rows_failed - reported["rows_failed"]
        reported.update(rows_done=progress.rows_done, rows_failed=progress.rows_failed)
        metrics.record_chunk(
            job.connection, spec.model, spec.version, new_done, new_failed, progress.chunk_seconds
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
        if worker.stopping():
            raise Interrupted(f"job {job.id} handed back: its worker is stopping")

    return on_progress


def finished(job: Job, data_dir: Path, result: BatchResult, spec: JobSpec | None) -> dict[str, Any]:
    """Record the counts of a committed run; for a whole job (`spec`; None for a part), also write
    its schedule's marker."""
    counts = {
        "rows_done": result.rows_done,
        "rows_failed": result.rows_failed,
        "rows_total": result.rows_total,
        "warnings": result.warnings,
    }
    job.meta.update(counts, progress=1.0)
    job.save_meta()
    for marker in [spec.marker, *spec.markers] if spec is not None else []:
        if marker is not None:
            assert spec is not None
            scored = {
                **marker.to_dict(),
                "job_id": spec.id,
                "output": spec.output,
                "scored_at": datetime.now(UTC),
            }
            atomic_write_json(data_path(data_dir, marker.path, "marker"), scored)
    return counts
