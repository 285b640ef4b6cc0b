"""One snapshot for all the parts of a split table job, so that rows changed while the job runs are
neither missed nor scored twice.

PostgreSQL lets a transaction export its snapshot for others to import, for as long as it stays
open. The planner starts a keeper (batch/keeper.py): a small process of its own session that exports
the snapshot, prints its id, and holds the transaction until every part has imported it (or ended),
the job is canceled, or the job's timeout passes. The planner plans the key ranges inside that snapshot and
returns at once, so its worker is free to score a part. A part that starts after the keeper ended
(rescued long after its worker died) reads the table as it is then, and says so in the log.
"""

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rq.job import Job

from modelyard.batch import keeper, tables
from modelyard.batch import parts as parting
from modelyard.batch.spec import JobSpec
from modelyard.config import Settings
from modelyard.stores.errors import StoreUnavailable

PLAN_META = "table_plan"


def planned(job: Job, settings: Settings, spec: JobSpec, workers: int) -> list[parting.Part]:
    """The job's parts: one for a small table or a single worker; else key ranges in a snapshot
    that a keeper holds for them. Planned once: a planner run again keeps the first plan."""
    if PLAN_META in job.meta:
        return [parting.Part.from_dict(item) for item in job.meta[PLAN_META]]
    if workers <= 1:
        return [parting.Part(0, 0, 0)]  # its reader counts the rows
    place = tables.input_place(settings, spec)
    assert place is not None
    process = _start_keeper(spec)  # meanwhile the table is counted: most of its start-up is hidden
    try:
        with place.session("reading") as conn:
            tables.begin_snapshot(conn)
            rows = tables.count(conn, place, spec)
            conn.rollback()
            if rows <= settings.part_rows:
                process.terminate()  # not needed: the table is scored in one piece
                return [parting.Part(0, 0, rows)]
            snapshot = _snapshot_of(process)
            tables.begin_snapshot(conn, snapshot)
            pieces = tables.plan(conn, place, spec, settings.part_rows, workers, snapshot)
            conn.rollback()
    except BaseException:
        process.terminate()
        raise
    from modelyard.batch.split import part_id  # split imports running, which imports this room

    job.connection.set(
        keeper.parts_key(spec.id), json.dumps([part_id(spec, p) for p in pieces]), ex=settings.job_timeout_s
    )
    job.meta[PLAN_META] = [piece.to_dict() for piece in pieces]
    job.save_meta()
    return pieces


@contextmanager
def sharing(job: Job, spec: JobSpec, piece: parting.Part) -> Iterator[Callable[[], None]]:
    """For a part that reads the job's snapshot: a call that tells the keeper it holds it now,
    made again when the part ends (however it ends), so the keeper never waits for it in vain."""

    def imported() -> None:
        if piece.snapshot is not None:
            job.connection.sadd(keeper.imported_key(spec.id), job.id)

    try:
        yield imported
    finally:
        imported()


def _start_keeper(spec: JobSpec) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "modelyard.batch.keeper", spec.id, spec.input],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,  # it outlives the planner's work horse
        text=True,
    )


def _snapshot_of(process: subprocess.Popen[str]) -> str:
    """The snapshot the keeper exported, once it has."""
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    process.stdout.close()
    if not line.startswith("snapshot "):
        process.wait()
        raise StoreUnavailable(line.partition(" ")[2] or "the snapshot keeper ended without a snapshot")
    return line.removeprefix("snapshot ")
