"""Every setting of modelyard, read from the environment (prefix MODELYARD_), or from the file that
MODELYARD_ENV_FILE names. Never from a .env that happens to lie in the current folder: that one is
Compose's, and a key generated there must not reach, say, the test suite's own servers."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELYARD_", env_file=None, extra="ignore")

    model_dir: Path = Path("models")
    """The registry: models/<name>/<version>/ on the volume every service shares."""

    data_dir: Path = Path("data")
    """Input and output files; the demo writes its sample to <data_dir>/incoming/."""

    redis_url: str = "redis://localhost:6379/0"
    """The queue that batch and scheduled scoring go through."""

    api_key: SecretStr | None = None
    """When set, every endpoint but /healthz and /readyz asks for it (Bearer or X-API-Key)."""

    max_upload_mb: float = Field(default=100.0, gt=0)
    """Largest request body the API accepts, uploads included; larger ones get 413."""

    max_instances: int = Field(default=10_000, gt=0)
    """Most records one JSON predict request may carry."""

    max_inflight_mb: float = Field(default=256.0, gt=0)
    """Request bodies one API process holds at once, in MB; past it, 503 server_busy (batch uploads,
    which stream to disk, aside)."""

    log_level: str = "INFO"
    """Python logging level name for every service."""

    allow_version_mismatch: bool = False
    """Load artifacts saved with another scikit-learn minor version (predictions may differ)."""

    reload_interval_s: float = Field(default=1.0, gt=0)
    """How often the API checks the registry for a moved production alias."""

    runtime: Literal["auto", "sklearn", "onnx"] = "auto"
    """What computes predictions: auto takes a version's verified ONNX graph where it has one
    (`modelyard models compile`), sklearn never does, onnx refuses a version without one."""

    microbatch: bool = True
    """Score concurrent requests to the same model version together (the scikit-learn runtime)."""

    microbatch_max_rows: int = Field(default=4096, ge=1)
    """Most rows scored together in one micro-batch; a larger request is scored on its own."""

    microbatch_max_wait_ms: float = Field(default=0.0, ge=0)
    """How long a micro-batch waits for more requests; 0 takes whatever arrived while the previous
    batch was scored, which adds no delay to a lone request."""

    model_cache_size: int = Field(default=4, ge=1)
    """How many pinned (?version=N) model versions the API keeps loaded besides production."""

    api_url: str = "http://127.0.0.1:8000"
    """Where the `modelyard jobs` commands find the API (they send MODELYARD_API_KEY when set)."""

    redis_timeout_s: float = Field(default=3.0, gt=0)
    """How long the API waits for Redis before answering 503 (batch jobs only; predictions go on)."""

    chunk_rows: int = Field(default=50_000, ge=1)
    """Rows a batch job reads, scores and writes at a time: memory stays flat whatever the file size."""

    split_threshold_mb: float = Field(default=16.0, gt=0)
    """Input files larger than this are split into parts that several workers score at once."""

    part_rows: int = Field(default=250_000, ge=1)
    """Rows in each part of a split file."""

    job_retention_days: float = Field(default=7.0, gt=0)
    """How long finished and failed job records stay visible (GET /v1/jobs/{id})."""

    reports: bool = True
    """Write a report of every batch run (rows, invalid rows, drift from the version's reference
    profile) to <data_dir>/reports/; kept as long as job records."""

    job_timeout_s: int = Field(default=6 * 3600, ge=1)
    """Longest a batch job (or one part of a split file) may run before the worker stops it."""

    job_retries: int = Field(default=3, ge=0)
    """Times a job is run again after its worker died or an unexpected error; bad input is not retried."""

    batch_n_jobs: int | None = 1
    """n_jobs set on models in the worker (1: scale with more workers instead); empty keeps the saved one."""

    max_job_upload_mb: float = Field(default=2048.0, gt=0)
    """Largest file POST /v1/jobs/upload accepts, in MB."""

    schedules: Path | None = None
    """A YAML or TOML file of scoring schedules, read by the scheduler (see the README)."""

    connections: Path | None = None
    """A YAML or TOML file naming the object stores jobs may read and write (s3:// URIs; see the README)."""

    nightly_cron: str = "0 2 * * *"
    """The built-in `nightly` schedule's cron expression; empty turns that schedule off."""

    nightly_timezone: str = "UTC"
    """The timezone the nightly cron expression is read in (an IANA name)."""

    nightly_model: str = "churn"
    """The model the nightly schedule scores with (its production version)."""

    nightly_input: str = "incoming/*.csv"
    """The files the nightly schedule scores: a glob relative to the data volume."""

    nightly_output: str = "scored/{date}/"
    """Where the nightly schedule writes, relative to the data volume; {date} is the run's date."""

    catchup_window_h: float = Field(default=24.0, ge=0)
    """A slot missed while the scheduler was down runs when it is back if it is younger than this."""

    file_settle_s: float = Field(default=60.0, ge=0)
    """A file modified more recently than this is taken to be still written: it waits for the next run."""

    scheduler_tick_s: float = Field(default=10.0, gt=0)
    """How often the scheduler looks for due slots (it also wakes for the next slot)."""

    scheduler_heartbeat: Path = Path("/tmp/modelyard-scheduler.heartbeat")
    """The file the scheduler touches at every tick, for `modelyard scheduler --check`."""

    @field_validator("model_dir", "data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        """Resolved once, so that every message names the folder for what it is."""
        return value.expanduser().resolve()

    @field_validator("api_key", "batch_n_jobs", "schedules", "connections", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_inflight_bytes(self) -> int:
        return int(self.max_inflight_mb * 1024 * 1024)

    @property
    def max_job_upload_bytes(self) -> int:
        return int(self.max_job_upload_mb * 1024 * 1024)

    @property
    def job_retention_s(self) -> int:
        return int(self.job_retention_days * 86400)


@lru_cache
def get_settings() -> Settings:
    return Settings(_env_file=os.environ.get("MODELYARD_ENV_FILE") or None)  # type: ignore[call-arg]
