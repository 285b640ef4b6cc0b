"""Scoring schedules: what to score when, read from a YAML or TOML file and the environment.

    schedules:                          # schedules.yaml ([[schedules]] tables in TOML)
      - name: nightly-churn
        cron: "0 2 * * *"               # minute hour day month weekday
        timezone: Europe/Berlin         # IANA name; UTC by default
        model: churn                    # production by default; or `version: 3`, or `alias: canary`
        input: "incoming/*.csv"         # glob relative to the data volume, or s3://BUCKET/PREFIX/
        output: "scored/{date}/"        # folder, or s3:// prefix; {date}, {time} and {schedule} are the run's
        format: parquet                 # csv, parquet or jsonl; the input's by default
        fail_fast: false
      - name: nightly-table                # a table's new rows into a scores table
        cron: "0 2 * * *"
        model: churn
        input: postgresql://warehouse/landing.customers
        since: updated_at               # each run scores the rows in (last run's maximum, now's]
        since_lag: 5m                   # leave the last 5 minutes for transactions still open
        output: postgresql://warehouse/scores.churn    # appended to (mode: append by default)

A slot is one moment a schedule's cron names, in its own timezone. Slots are told apart by their
wall-clock time, as cron does: the hour repeated when clocks go back runs once, and a time skipped
when they go forward runs at the first minute after the jump.
"""

import re
import string
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelyard.config import Settings
from modelyard.configfile import ConfigFileError, read_config
from modelyard.errors import InvalidPath, ModelyardError
from modelyard.formats import FORMATS
from modelyard.registry.store import NAME_PATTERN
from modelyard.stores import connections
from modelyard.stores.uris import IDENTIFIER, is_object_uri, is_table_uri, parse, parse_table

OUTPUT_FIELDS = {"date", "time", "schedule"}
LAG = re.compile(r"^(\d+)([smh])$")


class ScheduleConfigError(ModelyardError):
    """The schedules cannot be used as configured; the scheduler does not start."""

    code = "schedule_config_error"


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN.pattern)
    cron: str
    timezone: str = "UTC"
    model: str = Field(pattern=NAME_PATTERN.pattern)
    version: int | None = Field(default=None, ge=1)
    alias: str | None = None
    input: str
    output: str = "scored/{schedule}/{date}/"
    format: str | None = None
    fail_fast: bool = False
    since: str | None = Field(default=None, pattern=IDENTIFIER.pattern)
    """For a table input: the watermark column (e.g. updated_at); each run scores the rows above the
    last committed run's maximum, up to the maximum when it is planned."""
    since_lag: str | None = None
    """For a timestamp watermark: rows newer than this (e.g. 5m, 2h, 30s) wait for the next run,
    so that transactions still open when a run is planned are not skipped."""
    key: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    mode: Literal["create", "replace", "append"] | None = None
    """For a table output: append by default."""

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (minute hour day month weekday)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA timezone name, e.g. UTC or Europe/Berlin") from exc
        return value

    @field_validator("input")
    @classmethod
    def _input(cls, value: str) -> str:
        if is_table_uri(value):
            return _table(value, "input")
        if is_object_uri(value):
            return _object_prefix(value, value, "input")
        return _inside_data(value, "a glob")

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        if fields - OUTPUT_FIELDS:
            raise ValueError(
                f"unknown {sorted(fields - OUTPUT_FIELDS)} in {value!r}; use {sorted(OUTPUT_FIELDS)}"
            )
        if is_table_uri(value):
            return _table(value, "output")
        folder = value if value.endswith("/") else value + "/"
        if is_object_uri(folder):
            return _object_prefix(
                folder, folder.format(date="2000-01-01", time="0000", schedule="s"), "output"
            )
        return _inside_data(folder, "a folder")

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        if value is not None and value not in FORMATS:
            raise ValueError(f"{value!r} is not one of {sorted(FORMATS)}")
        return value

    @field_validator("since_lag")
    @classmethod
    def _lag(cls, value: str | None) -> str | None:
        if value is not None and not LAG.match(value):
            raise ValueError(f"{value!r} is not a duration such as 30s, 5m or 2h")
        return value

    @model_validator(mode="after")
    def _one_version(self) -> "Schedule":
        if self.version is not None and self.alias is not None:
            raise ValueError("give either version or alias, not both")
        table_in, table_out = is_table_uri(self.input), is_table_uri(self.output)
        if (self.since or self.key or self.since_lag) and not table_in:
            raise ValueError("since, since_lag and key are for a postgresql:// input")
        if self.since and not table_out:
            raise ValueError(
                "since needs a postgresql:// output: the ledger beside it records each run's range"
            )
        if self.since_lag and not self.since:
            raise ValueError("since_lag needs since")
        if self.mode and not table_out:
            raise ValueError("mode is for a postgresql:// output")
        return self

    @property
    def lag_seconds(self) -> int:
        match = LAG.match(self.since_lag or "0s")
        assert match is not None
        return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def slots(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """The schedule's moments in (after, until], in its timezone, one per wall-clock time."""
        iterator = croniter(self.cron, after.astimezone(self.zone))
        seen: set[str] = set()
        while (moment := iterator.get_next(datetime)) <= until:
            if slot_key(moment) not in seen:
                seen.add(slot_key(moment))
                yield moment

    def next_slot(self, now: datetime) -> datetime:
        return next(self.slots(now, now + timedelta(days=400)))

    def output_folder(self, slot: datetime) -> str:
        return self.output.format(
            date=slot.strftime("%Y-%m-%d"), time=slot.strftime("%H%M"), schedule=self.name
        )


def slot_key(moment: datetime) -> str:
    """A slot's identity: its wall-clock time in the schedule's timezone, to the minute."""
    return moment.strftime("%Y-%m-%dT%H:%M")


def _object_prefix(value: str, example: str, what: str) -> str:
    """An s3:// prefix (checked with its fields filled in, for an output)."""
    try:
        uri = parse(example, what)
    except InvalidPath as exc:
        raise ValueError(exc.message) from None
    if not uri.is_prefix:
        raise ValueError(f"{value!r}: a schedule's {what} in a store is a prefix: end it with '/'")
    return value


def _table(value: str, what: str) -> str:
    try:
        parse_table(value, what)
    except InvalidPath as exc:
        raise ValueError(exc.message) from None
    return value


def _inside_data(value: str, what: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or value.startswith("~") or ".." in path.parts:
        raise ValueError(f"{value!r} leaves the data volume: give {what} relative to it, without '..'")
    return value


def load(settings: Settings, check_stores: bool = False) -> list[Schedule]:
    """The schedules file's schedules and the nightly one from the environment; any mistake stops
    here with one message that names the schedule and the field. With check_stores, a schedule over
    a store must also be allowed by the connections file (the scheduler checks it at start)."""
    entries: list[tuple[str, dict[str, Any]]] = []
    if settings.nightly_cron:
        entries.append(("MODELYARD_NIGHTLY_*", nightly(settings)))
    if settings.schedules is not None:
        entries += [(str(settings.schedules), entry) for entry in _read(settings.schedules)]
    schedules: list[Schedule] = []
    for origin, entry in entries:
        schedule = _parse(origin, entry)
        if any(other.name == schedule.name for other in schedules):
            raise ScheduleConfigError(
                f"schedule {schedule.name!r} ({origin}): field 'name': another schedule has this name"
            )
        schedules.append(schedule)
    if check_stores:
        _check_stores(schedules, settings)
    return schedules


def _check_stores(schedules: list[Schedule], settings: Settings) -> None:
    allowed = connections.load(settings.connections)
    for schedule in schedules:
        places = [
            ("input", schedule.input, "read"),
            ("output", schedule.output_folder(datetime.now()), "write"),
        ]
        for field, place, use in places:
            try:
                if is_object_uri(place):
                    allowed.for_uri(parse(place, field), use, field)  # type: ignore[arg-type]
                elif is_table_uri(place):
                    allowed.for_table(parse_table(place, field), use, field)  # type: ignore[arg-type]
            except ModelyardError as exc:
                raise ScheduleConfigError(
                    f"schedule {schedule.name!r}: field {field!r}: {exc.message}"
                ) from None


def nightly(settings: Settings) -> dict[str, Any]:
    return {
        "name": "nightly",
        "cron": settings.nightly_cron,
        "timezone": settings.nightly_timezone,
        "model": settings.nightly_model,
        "input": settings.nightly_input,
        "output": settings.nightly_output,
    }


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = read_config(path)
    except ConfigFileError as exc:
        raise ScheduleConfigError(f"the schedules file {exc}") from exc
    if (
        not isinstance(data, dict)
        or set(data) - {"schedules"}
        or not isinstance(data.get("schedules", []), list)
    ):
        raise ScheduleConfigError(
            f"the schedules file {path} must hold one list, `schedules`, of schedules (see the README)"
        )
    entries: list[dict[str, Any]] = []
    for index, entry in enumerate(data.get("schedules", [])):
        if not isinstance(entry, dict):
            raise ScheduleConfigError(f"schedule #{index + 1} in {path} is not a table of fields")
        entries.append(entry)
    return entries


def _parse(origin: str, entry: dict[str, Any]) -> Schedule:
    try:
        return Schedule.model_validate(entry)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(schedule)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field; the fields are {sorted(Schedule.model_fields)}"
        raise ScheduleConfigError(
            f"schedule {entry.get('name', '?')!r} ({origin}): field {field!r}: {message}"
        ) from exc
