"""The process that holds a split table job's snapshot open for its parts (batch/snapshots.py):

    python -m modelyard.batch.keeper JOB_ID INPUT_URI

It exports the snapshot, prints `snapshot ID` (or `CODE MESSAGE`), then holds the transaction
until every part listed under parts_key has said, under imported_key, that it holds the snapshot
or has ended; or the job is canceled; or the job's timeout passes. It imports little, so that it
starts in a fraction of a second.
"""

import json
import logging
import sys
import time

import redis

from modelyard.batch import queue
from modelyard.config import get_settings
from modelyard.errors import ModelyardError
from modelyard.stores import connections
from modelyard.stores import postgres as pg
from modelyard.stores.uris import parse_table

log = logging.getLogger(__name__)

POLL_S = 0.2
PLANNING_S = 300
"""How long the keeper waits for its planner to list the parts."""


def imported_key(job_id: str) -> str:
    return f"{queue.PREFIX}snapshot:{job_id}:imported"


def parts_key(job_id: str) -> str:
    return f"{queue.PREFIX}snapshot:{job_id}:parts"


def keep(job_id: str, input_uri: str) -> None:
    """Export a snapshot, print its id, and hold it until the parts no longer need it."""
    settings = get_settings()
    connection = queue.connect(settings.redis_url)
    try:
        uri = parse_table(input_uri, "input")
        connection_config = connections.load(settings.connections).for_table(uri, "read", "input")
        with pg.session(uri.connection, connection_config, "exporting a snapshot of") as conn:
            pg.execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = pg.rows(conn, "SELECT pg_export_snapshot()")[0][0]
            print(f"snapshot {snapshot}", flush=True)
            _hold(connection, job_id, settings.job_timeout_s)
    except ModelyardError as exc:
        print(f"{exc.code} {exc.message}", flush=True)
    finally:
        connection.delete(imported_key(job_id), parts_key(job_id))


def _hold(connection: redis.Redis, job_id: str, timeout_s: float) -> None:
    started = time.monotonic()
    while time.monotonic() < started + timeout_s:
        parts = connection.get(parts_key(job_id))
        if parts is None and time.monotonic() > started + PLANNING_S:
            break  # the planner died before it enqueued the parts
        done = connection.smembers(imported_key(job_id))
        if parts is not None and {p.encode() for p in json.loads(parts)} <= done:
            return
        if connection.exists(queue.cancel_key(job_id)):
            return
        time.sleep(POLL_S)
    log.warning("snapshot released: the job's parts did not all start in time", extra={"job_id": job_id})


if __name__ == "__main__":
    keep(sys.argv[1], sys.argv[2])
