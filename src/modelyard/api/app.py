"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from modelyard import __version__
from modelyard.api.errors import install_error_handlers
from modelyard.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from modelyard.api.routes import health, models, predict
from modelyard.config import Settings, get_settings
from modelyard.metrics import ApiMetrics
from modelyard.registry import Registry
from modelyard.serving import ModelStore


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.store.start()
        yield
        app.state.store.stop()

    app = FastAPI(
        title="modelyard",
        version=__version__,
        description="Real-time predictions from registered scikit-learn models.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = ApiMetrics()
    app.state.store = ModelStore(Registry(settings.model_dir), settings, app.state.metrics)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(RequestContextMiddleware)  # outermost: every response gets an id
    for router in (health.router, models.router, predict.router):
        app.include_router(router)
    return app
