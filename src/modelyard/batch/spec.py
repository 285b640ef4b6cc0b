"""A batch job as it crosses the queue: everything a worker needs, resolved when it was submitted.

The spec travels as JSON in the job's arguments (RQ's JSON serializer) and is read back by workers
of this release and of the previous one, so its JSON is a contract: `to_dict` gives the same keys in
the same order, whatever the dataclass looks like inside.
"""

import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

from modelyard.batch.paths import data_path
from modelyard.stores.s3 import StoredObject

Status = Literal["queued", "started", "finished", "failed", "canceled"]
"""A job as its submitter sees it; a split job's status sums those of its parts."""
STATUSES: tuple[Status, ...] = get_args(Status)
ENDED: frozenset[Status] = frozenset({"finished", "failed", "canceled"})
SCHEDULE_ORIGIN = "schedule:"
"""A scheduled run's jobs have the origin schedule:<name>."""


def scheduled_by(name: str) -> str:
    return f"{SCHEDULE_ORIGIN}{name}"


def scheduled_job_id(run_id: str, input_place: str) -> str:
    """A scheduled run's job for one input: the same run and input always give the same job."""
    return f"{run_id}-{hashlib.sha256(input_place.encode()).hexdigest()[:10]}"


def run_of(job_id: str) -> str:
    """The run a scheduled job belongs to (see scheduled_job_id)."""
    return job_id.rsplit("-", 1)[0]


@dataclass(frozen=True)
class Marker:
    """For a scheduled run: written to `path` (on the data volume) once the job's outputs are
    committed, the schedule's record that this content of `input` was scored."""

    path: str
    input: str
    sha256: str
    size: int
    mtime: float
    etag: str | None = None
    """For an object: the ETag it had (its sha256 and mtime are then empty)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.etag is None:
            del data["etag"]  # a file's marker keeps the keys it always had
        return data


@dataclass(frozen=True)
class Since:
    """The rows of a table input a scheduled run scores: `column` in (after, upto], fixed when the
    run was planned (values as PostgreSQL prints them); no lower bound on a schedule's first run."""

    column: str
    after: str | None
    upto: str


TABLE_DEFAULTS = (("key", ()), ("columns", ()), ("keep", ()), ("mode", None), ("since", None))


@dataclass(frozen=True)
class JobSpec:
    id: str
    model: str
    version: int
    """Resolved at submission: a promotion in between does not change what the job scores with."""
    input: str
    """The file to score, relative to the data volume (as every path here), or an s3:// URI."""
    input_format: str
    output: str
    errors_output: str
    format: str
    """The output's format: csv, parquet or jsonl."""
    fail_fast: bool
    origin: str | None = None
    """Who submitted it: api, cli, or schedule:<name>."""
    submitted_at: str | None = None
    marker: Marker | None = None
    objects: tuple[StoredObject, ...] = ()
    """For an s3:// input: its objects (one, or those under the prefix), fixed at submission."""
    markers: tuple[Marker, ...] = ()
    """For a scheduled run over objects: one marker per object, written once the job is committed."""
    overwrite: bool = False
    """For an output in a store: replace it if it exists (a dataset's old parts are deleted once the
    new manifest is written). A file's output was checked at submission."""
    key: tuple[str, ...] = ()
    """For a table input: the columns that identify a row (its primary key unless asked)."""
    columns: tuple[str, ...] = ()
    """For a table input: the columns read (the key, the model's features, the kept ones)."""
    keep: tuple[str, ...] = ()
    """The input columns the output keeps, when asked; else every column read."""
    mode: str | None = None
    """For a table output: create (refused if it exists), replace or append."""
    since: Since | None = None
    """For a scheduled run on a table's new rows: the range it scores."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for marker in [data["marker"] or {}, *data["markers"]]:
            if marker.get("etag", "") is None:
                del marker["etag"]  # a file's marker keeps the keys it always had
        optional = ("marker", None), ("objects", ()), ("markers", ()), ("overwrite", False)
        for name, default in (*optional, *TABLE_DEFAULTS):
            if data[name] == default:
                del data[name]  # the spec of a file job keeps the keys it always had
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobSpec":
        known = {field.name for field in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        if values.get("marker") is not None:
            values["marker"] = Marker(**values["marker"])
        values["objects"] = tuple(StoredObject(**item) for item in values.get("objects", ()))
        values["markers"] = tuple(Marker(**item) for item in values.get("markers", ()))
        for name in ("key", "columns", "keep"):
            values[name] = tuple(values.get(name, ()))
        if values.get("since") is not None:
            values["since"] = Since(**values["since"])
        return cls(**values)

    @classmethod
    def of(cls, args: tuple[Any, ...] | list[Any]) -> "JobSpec | None":
        """The spec among a queued job's arguments (its first), or None for a job not of ours."""
        first = args[0] if args else None
        if not isinstance(first, dict):
            return None
        try:
            return cls.from_dict(first)
        except TypeError:  # not a spec: some other job on the queue
            return None

    @property
    def schedule(self) -> str | None:
        """The schedule whose run this job is, if it is one."""
        origin = self.origin or ""
        return origin.removeprefix(SCHEDULE_ORIGIN) if origin.startswith(SCHEDULE_ORIGIN) else None

    def input_path(self, data_dir: Path) -> Path:
        return data_path(data_dir, self.input, "input")

    def output_path(self, data_dir: Path) -> Path:
        return data_path(data_dir, self.output, "output")

    def errors_path(self, data_dir: Path) -> Path:
        return data_path(data_dir, self.errors_output, "output")

    def parts_folder(self, data_dir: Path) -> Path:
        """Where a split job's parts wait for the join: beside the output, so that renames stay on
        one file system, and hidden, so that schedules never take them for inputs."""
        return self.output_path(data_dir).parent / f".{self.id}.parts"
