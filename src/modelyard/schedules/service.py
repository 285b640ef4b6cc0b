"""The scheduler service: enqueues each schedule's runs, exactly once per slot, and never scores.

Every tick it looks at the slots that came due since the last tick. A slot is claimed in Redis
with SET NX before its run (the claim lives longer than the catch-up window, long after RQ has
forgotten the jobs): a restart, a second replica started by mistake or a retry finds the claim and
does nothing. A claim first holds for CLAIM_S only; if its holder dies before recording the run,
it lapses and another tick runs the slot again, which enqueues only the jobs still missing (their
ids are fixed by the schedule, the slot and the file).

When the scheduler comes back after being down, the slots it missed since it last ran (Redis
keeps when that was) are run once each if they are younger than MODELYARD_CATCHUP_WINDOW_H, and
logged and skipped if older. A schedule seen for the first time starts from now.
"""

import logging
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import redis

from modelyard.batch import queue
from modelyard.config import Settings
from modelyard.schedules import runs as schedule_runs
from modelyard.schedules.config import Schedule, slot_key

log = logging.getLogger(__name__)

CLAIM_S = 120
"""How long a fresh claim holds before its run is recorded."""


class Scheduler:
    def __init__(self, settings: Settings, schedules: list[Schedule], connection: redis.Redis) -> None:
        self.settings = settings
        self.schedules = schedules
        self.connection = connection
        self.instance = uuid.uuid4().hex[:12]
        self.window = timedelta(hours=settings.catchup_window_h)
        self.keep_s = int(self.window.total_seconds()) + 2 * 86400
        """Claims and the last-seen time outlive the window by two days."""
        self._checked: dict[str, datetime] = {}
        self._stop = threading.Event()

    def tick(self, now: datetime) -> list[dict[str, Any]]:
        """Run every slot that came due up to `now`; the runs done."""
        schedule_runs.publish(self.connection, self.schedules, self.keep_s)
        done = []
        for schedule in self.schedules:
            handled = self._checked.get(schedule.name) or self._handled(schedule, now)
            slots = list(schedule.slots(handled, now))
            missed = [slot for slot in slots if now - slot > self.window]
            if missed:
                log.warning(
                    "missed slots skipped: older than the catch-up window (MODELYARD_CATCHUP_WINDOW_H)",
                    extra={
                        "schedule": schedule.name,
                        "slots": len(missed),
                        "first": missed[0].isoformat(),
                        "last": missed[-1].isoformat(),
                    },
                )
            handled = missed[-1] if missed else handled
            waiting = False
            for slot in slots[len(missed) :]:
                state, record = self._run_slot(schedule, slot, now)
                if record is not None:
                    done.append(record)
                waiting = waiting or state == "running"  # someone else's run: look again next tick
                handled = handled if waiting else slot
            handled = handled if waiting else now
            self._checked[schedule.name] = handled
            self.connection.set(self._handled_key(schedule), handled.isoformat(), ex=self.keep_s)
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.set(
                schedule_runs.HEARTBEAT_KEY, now.isoformat(), ex=int(self.settings.scheduler_tick_s * 3) + 1
            )
            pipe.set(schedule_runs.LAST_BEAT_KEY, now.isoformat())
            pipe.execute()
        return done

    def _handled_key(self, schedule: Schedule) -> str:
        """Every slot of the schedule up to this time has run (or was skipped)."""
        return f"{queue.PREFIX}schedule-handled:{schedule.name}"

    def _handled(self, schedule: Schedule, now: datetime) -> datetime:
        """Where the last scheduler left off; now, for a schedule never seen before."""
        recorded = self.connection.get(self._handled_key(schedule))
        return datetime.fromisoformat(queue.text(recorded)) if recorded else now

    def _run_slot(
        self, schedule: Schedule, slot: datetime, now: datetime
    ) -> tuple[str, dict[str, Any] | None]:
        """Claim the slot and run it: ("ran", record); or ("done" | "running", None) when another
        scheduler has run it or is running it."""
        key = f"{queue.PREFIX}slot:{schedule.name}:{slot_key(slot)}"
        claim = f"running:{self.instance}"
        if not self.connection.set(key, claim, nx=True, ex=CLAIM_S):
            state = queue.text(self.connection.get(key) or b"done")
            return ("running" if state.startswith("running") else "done"), None
        try:
            record = schedule_runs.run(
                schedule, slot, schedule_runs.run_id(schedule, slot), self.settings, self.connection, now
            )
        except BaseException:
            if queue.text(self.connection.get(key) or b"") == claim:
                self.connection.delete(key)  # let the next tick try again
            raise
        self.connection.set(key, f"done:{record['id']}", ex=self.keep_s)
        return "ran", record

    def run_forever(self) -> None:
        """Tick until SIGTERM; each tick touches the heartbeat file the healthcheck reads."""
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        names = ", ".join(f"{s.name} ({s.cron}, {s.timezone})" for s in self.schedules) or "none"
        log.info("scheduler started", extra={"schedules": names, "instance": self.instance})
        while not self._stop.is_set():
            now = datetime.now(UTC)
            try:
                self.tick(now)
            except queue.REDIS_DOWN as exc:
                log.error("the queue cannot be reached; retrying at the next tick: %s", exc)
            self.settings.scheduler_heartbeat.touch()
            self._stop.wait(self._sleep(now))
        log.info("scheduler stopped")

    def _sleep(self, now: datetime) -> float:
        """Until the next tick, or the next slot if that comes first."""
        seconds = self.settings.scheduler_tick_s
        for schedule in self.schedules:
            until = (schedule.next_slot(now) - now).total_seconds() + 0.1
            seconds = min(seconds, max(until, 0.1))
        return seconds

    def _request_stop(self, _signum: int, _frame: FrameType | None) -> None:
        self._stop.set()


def alive(settings: Settings) -> bool:
    """The container healthcheck: the heartbeat file was touched within three ticks."""
    try:
        age = time.time() - settings.scheduler_heartbeat.stat().st_mtime
    except OSError:
        return False
    return age < 3 * settings.scheduler_tick_s + 5
