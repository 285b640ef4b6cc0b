"""Which rows of a table a scheduled run scores: those whose watermark column (`since`) lies above
what the schedule's last committed run reached, up to the column's maximum when the run is planned.

The lower end comes from the ledger beside the destination, written in the same transaction as the
rows: a run killed after its commit, before Redis heard of it, still counts, and its rows are not
appended again. A run that failed or never ran moves nothing, so the next one catches up at once.
"""

from modelyard.batch import staging, tables
from modelyard.batch.spec import Since, scheduled_by
from modelyard.config import Settings
from modelyard.schedules.config import Schedule
from modelyard.stores import postgres as pg
from modelyard.stores.postgres import ident, literal
from modelyard.stores.uris import parse_table


def new_rows(settings: Settings, schedule: Schedule) -> Since | None:
    """The range the next run scores, or None when no row is new."""
    assert schedule.since is not None
    source = tables.place_for(settings, parse_table(schedule.input, "input"), "read", "input")
    destination = tables.place_for(settings, parse_table(schedule.output, "output"), "write", "output")
    last = staging.committed(destination, scheduled_by(schedule.name))
    after = last["upto"] if last is not None and last["column"] == schedule.since else None
    column = ident(schedule.since)
    conditions = [f"{column} > {literal(after)}"] if after is not None else []
    if schedule.lag_seconds:
        conditions.append(f"{column} <= now() - make_interval(secs => {schedule.lag_seconds})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    with source.session("reading") as conn:
        upto = pg.rows(conn, f"SELECT max({column})::text FROM {source.relation}{where}")[0][0]
        conn.rollback()
    return Since(schedule.since, after, str(upto)) if upto is not None else None
