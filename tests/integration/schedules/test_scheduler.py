"""The scheduler against a real redis-server, its clock driven by the tests: exactly once per slot,
catch-up, the window, clock changes, no double scoring, a model not yet registered, bad
configuration; then the real processes end to end."""

import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import yaml

from modelyard.batch import queue
from modelyard.config import Settings
from modelyard.registry.store import Registry
from modelyard.reports import profile as profiles
from modelyard.schedules import runs as schedule_runs
from modelyard.schedules.config import Schedule
from modelyard.schedules.service import Scheduler
from modelyard.tabular import Table, write_table
from tests import factories
from tests.server import ApiServer, RedisServer, WorkerProcess, run_cli

DAY = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def root(tmp_path: Path, redis_server: RedisServer) -> Path:
    redis_server.client().flushall()
    registry = Registry(tmp_path / "models")
    registry.register(factories.save(factories.classifier(), tmp_path / "m.joblib"), "churn")
    registry.promote("churn", 1)
    (tmp_path / "data" / "incoming").mkdir(parents=True)
    return tmp_path


def settings_for(root: Path, redis_server: RedisServer, **values: Any) -> Settings:
    return Settings(
        _env_file=None,
        model_dir=root / "models",
        data_dir=root / "data",
        redis_url=redis_server.url,
        nightly_cron="",
        **values,
    )


def nightly(**values: Any) -> Schedule:
    return Schedule(
        **{"name": "night", "cron": "0 2 * * *", "model": "churn", "input": "incoming/*.csv", **values}
    )


def add_file(root: Path, name: str, rows: int = 20, modified: datetime = DAY - timedelta(days=30)) -> Path:
    path = root / "data" / "incoming" / name
    path.write_bytes(write_table(factories.frame(rows, seed=len(name)), "csv"))
    os.utime(path, (modified.timestamp(), modified.timestamp()))
    return path


def queued_jobs(redis_server: RedisServer) -> list[str]:
    return queue.job_queue(redis_server.client()).job_ids


def runs(redis_server: RedisServer, name: str = "night") -> list[dict[str, Any]]:
    return schedule_runs.runs(redis_server.client(), name, limit=100)


def test_a_slot_enqueues_one_job_per_file_once(root: Path, redis_server: RedisServer) -> None:
    for name in ("a.csv", "b.csv", "c.csv"):
        add_file(root, name)
    settings = settings_for(root, redis_server)
    first, second = (Scheduler(settings, [nightly()], redis_server.client()) for _ in range(2))
    first.tick(DAY)  # both replicas have seen the schedule before 02:00
    assert first.tick(DAY + timedelta(hours=2, seconds=1))[0]["status"] == "enqueued"
    assert second.tick(DAY + timedelta(hours=2, seconds=2)) == []  # the slot is claimed
    assert first.tick(DAY + timedelta(hours=2, minutes=1)) == []  # and this one ran it
    [run] = runs(redis_server)
    assert run["id"] == "night-20261126T0200" and len(run["jobs"]) == 3
    assert sorted(queued_jobs(redis_server)) == sorted(run["jobs"])


def test_two_scheduler_processes_at_once_run_a_slot_once(root: Path, redis_server: RedisServer) -> None:
    for name in ("a.csv", "b.csv"):
        add_file(root, name)
    schedules = root / "schedules.yaml"
    schedules.write_text(yaml.safe_dump({"schedules": [nightly().model_dump()]}))
    env = {
        **os.environ,
        "MODELYARD_MODEL_DIR": str(root / "models"),
        "MODELYARD_DATA_DIR": str(root / "data"),
        "MODELYARD_REDIS_URL": redis_server.url,
        "MODELYARD_SCHEDULES": str(schedules),
        "MODELYARD_NIGHTLY_CRON": "",
    }
    command = [sys.executable, "-m", "modelyard", "scheduler", "--once", "--at"]
    subprocess.run([*command, "2026-11-26T01:00:00+0000"], env=env, check=True, capture_output=True)
    both = [
        subprocess.Popen([*command, "2026-11-26T02:00:05+0000"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60)[0] for process in both]
    assert all(process.returncode == 0 for process in both)
    ran = [output for output in outputs if "night-20261126T0200: enqueued, 2 job(s)" in output]
    assert len(ran) == 1, outputs
    assert len(runs(redis_server)) == 1 and len(queued_jobs(redis_server)) == 2


def test_a_restart_runs_a_missed_slot_once(root: Path, redis_server: RedisServer) -> None:
    add_file(root, "a.csv")
    settings = settings_for(root, redis_server)
    Scheduler(settings, [nightly()], redis_server.client()).tick(DAY + timedelta(hours=1))
    # down from 01:00 to 05:00: the 02:00 slot was missed
    back = Scheduler(settings, [nightly()], redis_server.client())
    [caught_up] = back.tick(DAY + timedelta(hours=5))
    assert caught_up["slot"] == "2026-11-26T02:00:00+00:00" and caught_up["status"] == "enqueued"
    assert Scheduler(settings, [nightly()], redis_server.client()).tick(DAY + timedelta(hours=6)) == []
    assert len(runs(redis_server)) == 1


def test_a_slot_older_than_the_window_is_skipped_with_a_log_line(
    root: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(root, redis_server, catchup_window_h=24)
    Scheduler(settings, [nightly()], redis_server.client()).tick(DAY + timedelta(hours=1))
    caplog.set_level(logging.WARNING, logger="modelyard.schedules.service")
    done = Scheduler(settings, [nightly()], redis_server.client()).tick(DAY + timedelta(days=2, hours=3))
    assert [run["slot"][:16] for run in done] == ["2026-11-28T02:00"]  # 26th and 27th: over 24 h ago
    [skipped] = [r for r in caplog.records if "older than the catch-up window" in r.message]
    assert (skipped.slots, skipped.first[:16], skipped.last[:16]) == (
        2,
        "2026-11-26T02:00",
        "2026-11-27T02:00",
    )


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        ("Europe/Berlin", datetime(2026, 3, 29), datetime(2026, 10, 25)),
        ("America/New_York", datetime(2026, 3, 8), datetime(2026, 11, 1)),
    ],
)
def test_each_clock_change_night_gives_one_run(
    root: Path, redis_server: RedisServer, zone: str, spring: datetime, autumn: datetime
) -> None:
    settings = settings_for(root, redis_server)
    schedule = nightly(cron="30 2 * * *", timezone=zone)
    tz = ZoneInfo(zone)
    for night, expected in ((spring, "03:00"), (autumn, "02:30")):  # 02:30 is skipped, then doubled
        redis_server.client().flushall()  # a schedule new that evening: nothing to catch up
        scheduler = Scheduler(settings, [schedule], redis_server.client())
        start = night.replace(tzinfo=tz) - timedelta(hours=2)
        for step in range(0, 8 * 60, 10):  # a tick every 10 minutes from 22:00 to 06:00
            scheduler.tick((start + timedelta(minutes=step)).astimezone(UTC))
        assert [run["slot"][:16] for run in runs(redis_server)] == [f"{night:%Y-%m-%d}T{expected}"]


def test_files_already_scored_are_skipped_new_or_changed_ones_picked_up(
    root: Path, redis_server: RedisServer
) -> None:
    for name in ("a.csv", "b.csv"):
        add_file(root, name)
    worker = WorkerProcess(root, redis_server.url, "w1")
    try:
        settings = settings_for(root, redis_server, file_settle_s=60)
        scheduler = Scheduler(settings, [nightly()], redis_server.client())
        scheduler.tick(DAY)
        first = scheduler.tick(DAY + timedelta(hours=2))[0]
        wait_for_runs_to_finish(redis_server)
        assert scheduler.tick(DAY + timedelta(days=1, hours=2))[0]["status"] == "no new files"

        add_file(root, "new.csv")
        changed = add_file(root, "b.csv", rows=30)
        add_file(root, "still-writing.csv", modified=DAY + timedelta(days=2, hours=2) - timedelta(seconds=5))
        third = scheduler.tick(DAY + timedelta(days=2, hours=2))[0]
        assert sorted(third["files"]) == ["incoming/b.csv", "incoming/new.csv"]
        assert third["waiting"] == ["incoming/still-writing.csv"] and third["unchanged"] == 1
        wait_for_runs_to_finish(redis_server)
        output = root / "data" / "scored" / "night" / "2026-11-28" / "b.predictions.csv"
        assert len(pd.read_csv(output)) == 30 == len(pd.read_csv(changed))
        assert (root / "data" / "scored" / "night" / "2026-11-26" / "a.predictions.csv").exists()
        assert first["files"] == ["incoming/a.csv", "incoming/b.csv"]
    finally:
        worker.stop()


def wait_for_runs_to_finish(redis_server: RedisServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(run["status"] not in ("finished", "no new files") for run in runs(redis_server)):
        assert time.monotonic() < deadline, runs(redis_server)
        time.sleep(0.2)


def test_a_model_not_registered_yet_is_recorded_not_fatal(root: Path, redis_server: RedisServer) -> None:
    add_file(root, "a.csv")
    settings = settings_for(root, redis_server)
    scheduler = Scheduler(settings, [nightly(model="later")], redis_server.client())
    scheduler.tick(DAY)
    [record] = scheduler.tick(DAY + timedelta(hours=2))
    assert (record["status"], record["jobs"]) == ("model not registered", [])
    Registry(root / "models").register(factories.save(factories.classifier(), root / "l.joblib"), "later")
    Registry(root / "models").promote("later", 1)
    [record] = scheduler.tick(DAY + timedelta(days=1, hours=2))
    assert record["status"] == "enqueued" and len(record["jobs"]) == 1


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            {"cron": "0 25 * * *"},
            "schedule 'bad' ({file}): field 'cron': '0 25 * * *' is not a cron expression",
        ),
        (
            {"input": "../../etc/*"},
            "schedule 'bad' ({file}): field 'input': '../../etc/*' leaves the data volume",
        ),
        (
            {"timezone": "Europe/Atlantis"},
            "schedule 'bad' ({file}): field 'timezone': 'Europe/Atlantis' is not",
        ),
        ({"name": "nightly"}, "schedule 'nightly' ({file}): field 'name': another schedule has this name"),
        ({"when": "daily"}, "schedule 'bad' ({file}): field 'when': unknown field"),
    ],
)
def test_bad_configuration_stops_the_scheduler_at_start(
    root: Path, redis_server: RedisServer, entry: dict[str, Any], expected: str
) -> None:
    schedules = root / "schedules.yaml"
    fields = {"name": "bad", "cron": "0 3 * * *", "model": "churn", "input": "incoming/*.csv", **entry}
    schedules.write_text(yaml.safe_dump({"schedules": [fields]}))
    env = {"MODELYARD_REDIS_URL": redis_server.url, "MODELYARD_SCHEDULES": str(schedules)}
    result = run_cli(root, "scheduler", "--once", check=False, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: " + expected.format(file=schedules)), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert redis_server.client().keys("*") == []  # nothing enqueued, nothing published


def test_scheduled_and_manual_runs_through_the_real_processes(root: Path, redis_server: RedisServer) -> None:
    """redis-server, the API, a worker and the scheduler, each its own process, with a schedule
    every minute; then a run started through POST /v1/schedules/{name}/run."""
    data = factories.frame(40, seed=8)
    (root / "data" / "incoming" / "customers.csv").write_bytes(write_table(data, "csv"))
    schedules = root / "schedules.toml"
    schedules.write_text(
        '[[schedules]]\nname = "minutely"\ncron = "* * * * *"\nmodel = "churn"\n'
        'input = "incoming/*.csv"\noutput = "scored/{date}/"\n'
    )
    version = Registry(root / "models").get("churn", 1)
    profiles.write(version, profiles.profile_rows(version, Table(frame=factories.frame(500, seed=1)), "t")[0])
    settings = {"redis_url": redis_server.url, "file_settle_s": "0", "scheduler_tick_s": "1"}
    api = ApiServer(root / "models", root / "api.log", data_dir=str(root / "data"), **settings).wait()
    worker = WorkerProcess(root, redis_server.url, "w1")
    env = {**os.environ, **{f"MODELYARD_{k.upper()}": v for k, v in settings.items()}}
    env.update(
        MODELYARD_MODEL_DIR=str(root / "models"),
        MODELYARD_DATA_DIR=str(root / "data"),
        MODELYARD_SCHEDULES=str(schedules),
        MODELYARD_SCHEDULER_HEARTBEAT=str(root / "heartbeat"),
    )
    log = (root / "scheduler.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "modelyard", "scheduler"], env=env, stdout=log, stderr=log
    )
    try:
        listed = wait_for(lambda: api.client.get("/v1/schedules").json(), lambda body: body["schedules"])
        assert {s["name"] for s in listed["schedules"]} == {"minutely", "nightly"}
        assert listed["scheduler"]["alive"]
        check = subprocess.run([sys.executable, "-m", "modelyard", "scheduler", "--check"], env=env)
        assert check.returncode == 0

        schedule = wait_for(lambda: published(api, "minutely"), ran_and_finished, 150)
        run = schedule["last_run"]
        assert len(run["jobs"]) == 1 and run["files"] == ["incoming/customers.csv"]
        day = datetime.fromisoformat(run["slot"]).strftime("%Y-%m-%d")
        assert_predictions(root / "data" / "scored" / day / "customers.predictions.csv", root, data)

        manual = api.client.post("/v1/schedules/minutely/run", params={"rescore": "true"})
        assert manual.status_code == 202, manual.text
        [job_id] = manual.json()["jobs"]
        job = wait_for(
            lambda: api.client.get(f"/v1/jobs/{job_id}").json(), lambda j: j["status"] == "finished"
        )
        scored = api.client.get(f"/v1/jobs/{job['id']}/result")
        assert_predictions(io.BytesIO(scored.content), root, data)
        report = api.client.get(f"/v1/jobs/{job_id}/report").json()
        assert report["schedule"] == "minutely" and report["rows"]["scored"] == 40
        metrics = api.client.get("/metrics").text  # the schedule's last run, for alerts
        assert 'modelyard_schedule_rows_scored{schedule="minutely"} 40.0' in metrics
        assert 'modelyard_schedule_invalid_share{schedule="minutely"} 0.0' in metrics
        age = next(f["psi"] for f in report["features"] if f["name"] == "age")
        assert f'modelyard_schedule_drift{{feature="age",schedule="minutely"}} {age}' in metrics
        assert 'modelyard_schedule_last_success_timestamp_seconds{schedule="minutely"}' in metrics
        assert "modelyard_scheduler_heartbeat_timestamp_seconds " in metrics
        assert api.client.post("/v1/schedules/nope/run").json()["error"]["code"] == "schedule_not_found"
        cli = run_cli(root, "schedules", "list", env={"MODELYARD_API_URL": api.url})
        assert "minutely: * * * * * UTC" in cli.stdout and "scheduler: alive" in cli.stdout
        ran = run_cli(root, "schedules", "run", "minutely", "--rescore", env={"MODELYARD_API_URL": api.url})
        assert ": enqueued, 1 job(s)" in ran.stdout and "incoming/customers.csv" in ran.stdout
        nothing_new = run_cli(root, "schedules", "run", "minutely", env={"MODELYARD_API_URL": api.url})
        assert ": no new files, 0 job(s)" in nothing_new.stdout
    finally:
        process.terminate()
        code = process.wait(timeout=20)
        worker.stop()
        api.stop()
    assert code == 0, "SIGTERM stops the scheduler cleanly"


def published(api: ApiServer, name: str) -> dict[str, Any]:
    return next(s for s in api.client.get("/v1/schedules").json()["schedules"] if s["name"] == name)


def ran_and_finished(schedule: dict[str, Any]) -> bool:
    return bool(schedule["last_run"]) and schedule["last_run"]["status"] == "finished"


def wait_for(fetch: Any, ready: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ready(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.5)


def assert_predictions(source: Any, root: Path, data: pd.DataFrame) -> None:
    scored = pd.read_csv(source)
    model = factories.load_as_served(Registry(root / "models").get("churn", 1).artifact)
    assert scored["prediction"].tolist() == model.predict(data).tolist()
    assert (scored[["probability_no", "probability_yes"]].to_numpy() == model.predict_proba(data)).all()


def test_a_fresh_file_waits_and_the_run_says_until_when(root: Path, redis_server: RedisServer) -> None:
    now = datetime.now(UTC)
    path = add_file(root, "fresh.csv", modified=now)
    settings = settings_for(root, redis_server, file_settle_s=60)
    record = schedule_runs.run(nightly(), now, "night-now-1", settings, redis_server.client(), now)
    assert (record["status"], record["waiting"], record["jobs"]) == (
        "waiting for files",
        ["incoming/fresh.csv"],
        [],
    )
    settles = datetime.fromisoformat(record["settles_at"]["incoming/fresh.csv"])
    assert abs(settles.timestamp() - (path.stat().st_mtime + 60)) < 1
    later = settles + timedelta(seconds=1)  # the settle rule holds: no file time moved back
    record = schedule_runs.run(nightly(), later, "night-now-2", settings, redis_server.client(), later)
    assert (record["status"], record["files"], record["settles_at"]) == (
        "enqueued",
        ["incoming/fresh.csv"],
        {},
    )
