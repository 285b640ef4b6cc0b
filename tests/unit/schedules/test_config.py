"""Schedules as configuration: files, the nightly default, every bad configuration, and slots."""

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from modelyard.config import Settings
from modelyard.schedules.config import Schedule, ScheduleConfigError, load, slot_key

YAML = """
schedules:
  - name: hourly-fraud
    cron: "15 * * * *"
    timezone: Europe/Berlin
    model: fraud
    alias: canary
    input: "landing/**/*.parquet"
    output: "scored/{schedule}/{date}/{time}/"
    format: csv
    fail_fast: true
"""
TOML = """
[[schedules]]
name = "weekly"
cron = "0 6 * * 1"
model = "churn"
version = 2
input = "incoming/*.jsonl"
"""


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", **values)


def test_nightly_default_from_the_environment(tmp_path: Path) -> None:
    [nightly] = load(settings(tmp_path))
    assert (nightly.name, nightly.cron, nightly.timezone, nightly.model) == (
        "nightly",
        "0 2 * * *",
        "UTC",
        "churn",
    )
    assert (nightly.input, nightly.output) == ("incoming/*.csv", "scored/{date}/")
    assert load(settings(tmp_path, nightly_cron="")) == []


@pytest.mark.parametrize(("suffix", "text"), [(".yaml", YAML), (".toml", TOML)])
def test_schedules_files(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"schedules{suffix}"
    path.write_text(text)
    found = {s.name: s for s in load(settings(tmp_path, schedules=path))}
    assert set(found) == {"nightly", "hourly-fraud" if suffix == ".yaml" else "weekly"}
    if suffix == ".yaml":
        fraud = found["hourly-fraud"]
        assert (fraud.alias, fraud.format, fraud.fail_fast) == ("canary", "csv", True)
        slot = datetime(2026, 11, 26, 9, 15, tzinfo=ZoneInfo("Europe/Berlin"))
        assert fraud.output_folder(slot) == "scored/hourly-fraud/2026-11-26/0915/"
    else:
        assert found["weekly"].version == 2 and found["weekly"].output == "scored/{schedule}/{date}/"


BAD = [
    ({"cron": "61 * * * *"}, "field 'cron'", "not a cron expression"),
    ({"timezone": "Mars/Olympus"}, "field 'timezone'", "not an IANA timezone"),
    ({"input": "../secrets/*.csv"}, "field 'input'", "leaves the data volume"),
    ({"input": "/etc/*.csv"}, "field 'input'", "leaves the data volume"),
    ({"output": "scored/{when}/"}, "field 'output'", "unknown ['when']"),
    ({"colour": "blue"}, "field 'colour'", "unknown field"),
    ({"version": 1, "alias": "canary"}, "field '(schedule)'", "either version or alias"),
    ({"format": "xlsx"}, "field 'format'", "not one of"),
    ({"since": "updated_at"}, "field '(schedule)'", "for a postgresql:// input"),
    (
        {"input": "postgresql://wh/landing.t", "since": "updated_at", "output": "scored/"},
        "field '(schedule)'",
        "since needs a postgresql:// output",
    ),
    (
        {"input": "postgresql://wh/landing.t", "since_lag": "5m", "output": "postgresql://wh/scores.t"},
        "field '(schedule)'",
        "since_lag needs since",
    ),
    ({"input": "postgresql://wh/landing.t", "since": "at", "since_lag": "5 min"}, "field 'since_lag'", "30s"),
    ({"input": "postgresql://wh/landing.t; drop table x"}, "field 'input'", "SCHEMA.TABLE"),
    ({"input": "postgresql://u:pw@db/shop"}, "field 'input'", "never a user, password, host or port"),
]


def test_a_watermark_schedule_reads_its_lag() -> None:
    schedule = Schedule(
        name="rows",
        cron="0 2 * * *",
        model="m",
        input="postgresql://wh/landing.t",
        since="updated_at",
        since_lag="5m",
        output="postgresql://wh/scores.t",
    )
    assert schedule.lag_seconds == 300 and schedule.output_folder(datetime(2026, 1, 1)) == schedule.output


@pytest.mark.parametrize(("change", "field", "message"), BAD)
def test_each_bad_configuration_names_the_schedule_and_field(
    tmp_path: Path, change: dict[str, object], field: str, message: str
) -> None:
    entry = {"name": "broken", "cron": "0 3 * * *", "model": "churn", "input": "incoming/*.csv", **change}
    path = tmp_path / "schedules.yaml"
    path.write_text(yaml.safe_dump({"schedules": [entry]}))
    with pytest.raises(ScheduleConfigError) as caught:
        load(settings(tmp_path, schedules=path))
    assert caught.value.message.startswith(f"schedule 'broken' ({path}): {field}: ")
    assert message in caught.value.message


def test_duplicate_names_and_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(TOML.replace("weekly", "nightly"))
    with pytest.raises(
        ScheduleConfigError, match=r"schedule 'nightly' .*field 'name': another schedule has this"
    ):
        load(settings(tmp_path, schedules=path))
    path.write_text("schedules = [1, 2")
    with pytest.raises(ScheduleConfigError, match="is not valid toml"):
        load(settings(tmp_path, schedules=path))
    with pytest.raises(ScheduleConfigError, match="cannot be read"):
        load(settings(tmp_path, schedules=tmp_path / "missing.yaml"))


def nights(schedule: Schedule, day: datetime) -> list[str]:
    start = day - timedelta(hours=12)
    return [slot_key(slot) for slot in schedule.slots(start, start + timedelta(hours=24))]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_clock_changes_neither_skip_nor_double_a_nightly_slot(zone: str) -> None:
    schedule = Schedule(name="n", cron="30 2 * * *", timezone=zone, model="m", input="*.csv")
    tz = ZoneInfo(zone)
    spring, autumn = (29, 25) if zone == "Europe/Berlin" else (8, 1)
    spring_month, autumn_month = (3, 10) if zone == "Europe/Berlin" else (3, 11)
    forward = nights(schedule, datetime(2026, spring_month, spring, 2, 30, tzinfo=tz))
    back = nights(schedule, datetime(2026, autumn_month, autumn, 2, 30, tzinfo=tz))
    assert forward == [f"2026-{spring_month:02d}-{spring:02d}T03:00"]  # 02:30 does not exist that night
    assert back == [f"2026-{autumn_month:02d}-{autumn:02d}T02:30"]  # 02:30 happens twice, runs once
