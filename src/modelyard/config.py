"""Every setting of modelyard, read from the environment (prefix MODELYARD_) or a .env file."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELYARD_", env_file=".env", extra="ignore")

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

    log_level: str = "INFO"
    """Python logging level name for every service."""

    allow_version_mismatch: bool = False
    """Load artifacts saved with another scikit-learn minor version (predictions may differ)."""

    reload_interval_s: float = Field(default=1.0, gt=0)
    """How often the API checks the registry for a moved production alias."""

    model_cache_size: int = Field(default=4, ge=1)
    """How many pinned (?version=N) model versions the API keeps loaded besides production."""

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_means_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@lru_cache
def get_settings() -> Settings:
    return Settings()
