"""Typed dependencies of the routes."""

import secrets
from collections.abc import Mapping
from typing import Annotated

import redis
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from modelyard.api.metrics import ApiMetrics
from modelyard.config import Settings
from modelyard.errors import Unauthorized
from modelyard.serving.cache import ModelCache


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> ModelCache:
    store: ModelCache = request.app.state.store
    return store


async def get_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


async def get_queue(request: Request) -> redis.Redis:
    """The Redis client of the job queue; it connects on first use, so the API starts without it."""
    connection: redis.Redis = request.app.state.redis
    return connection


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[ModelCache, Depends(get_store)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
QueueDep = Annotated[redis.Redis, Depends(get_queue)]


# Declared as security schemes, so that the OpenAPI document (and /docs' Authorize) knows of them.
BEARER = HTTPBearer(auto_error=False, description="MODELYARD_API_KEY, when the API has one")
KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same key, another header")


async def require_api_key(
    request: Request,
    settings: SettingsDep,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    _header: Annotated[str | None, Security(KEY_HEADER)],
) -> None:
    """The schemes are declared for the OpenAPI document; the key itself is read by `authorized`,
    the one rule the fast path (api/fastpredict.py) applies too."""
    if not authorized(settings, request.headers):
        raise unauthorized()


def unauthorized() -> Unauthorized:
    return Unauthorized(
        "this endpoint needs the API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
    )


def authorized(settings: Settings, headers: Mapping[str, str]) -> bool:
    """True when the API has no key, or the request carries it: 'Authorization: Bearer KEY', else
    'X-API-Key: KEY' (compared in constant time)."""
    if settings.api_key is None:
        return True
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    given = (credentials.strip() if scheme.lower() == "bearer" else "") or headers.get("x-api-key", "")
    expected = settings.api_key.get_secret_value()
    return bool(given) and secrets.compare_digest(given.encode(), expected.encode())


Authorized = Depends(require_api_key)
