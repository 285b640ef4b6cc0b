"""Several API processes that share one copy of every model: a pre-fork server (gunicorn).

The parent process builds the app and loads the production models, then forks the workers, which
share its pages (copy-on-write) where each would otherwise load a copy of its own. The parent keeps
following the registry from its main loop, between forks: a thread loading a model while the parent
forks could hold a lock the child then waits on forever. When a production version moves (or is
refused), the parent loads it, forks a fresh set of workers, and stops the old ones gracefully: they
finish the requests they hold, while the new ones already take connections on the same socket.

A worker told to stop drains before it closes: it takes no new connection, answers the next request
on each open keep-alive connection with `Connection: close`, and closes idle ones only at their
keep-alive timeout, as always. Closing an idle connection at once would race a client that is
sending on it this very moment, and lose that request.

Each worker still follows the aliases itself, so that its readiness is true at once, but leaves a
moved version to the parent for `LEAVE_MOVES_S`, loading it alone only if the parent has not
delivered it by then.
"""

import asyncio
import gc
import logging
import os
import socket
import sys
import time
from typing import Any

from fastapi import FastAPI
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from prometheus_client import multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn import Server
from uvicorn_worker import UvicornWorker

from modelyard import heap
from modelyard.config import Settings
from modelyard.serving.cache import ModelCache

log = logging.getLogger(__name__)

LEAVE_MOVES_S = 60.0
"""How long a worker waits for the parent to deliver a moved version before loading it alone."""

KEEPALIVE_S = 5
"""uvicorn's default: how long an idle keep-alive connection stays open."""


class DrainingServer(Server):
    draining = False

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections: the fresh workers take them
        self.draining = True
        deadline = time.monotonic() + KEEPALIVE_S + 1
        while self.server_state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)


class CloseWhenDraining:
    """Adds `Connection: close` to every response once the server drains."""

    def __init__(self, app: ASGIApp, server: DrainingServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and self.server.draining:
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self.app(scope, receive, sending)


class Worker(UvicornWorker):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        errors = logging.getLogger("uvicorn.error")  # through the JSON logs, not gunicorn's
        errors.handlers[:], errors.propagate = [], True
        access = logging.getLogger("uvicorn.access")  # off: modelyard.access logs each request
        access.handlers[:], access.propagate = [], False

    async def _serve(self) -> None:  # uvicorn_worker's, with a server that drains
        server = DrainingServer(config=self.config)
        self.config.app = CloseWhenDraining(self.wsgi, server)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


class Logs(glogging.Logger):  # type: ignore[misc]
    """gunicorn's own lines (workers booted and stopped) in the service's JSON logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers[:] = []
            logger.propagate = True


class FollowingArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's parent loop, plus: follow the registry, and fork fresh workers when it moved."""

    def __init__(self, app: "PreforkServer") -> None:
        super().__init__(app)
        self.store: ModelCache = app.application.state.store
        self.interval_s = app.settings.reload_interval_s
        self.next_look = time.monotonic() + self.interval_s

    def manage_workers(self) -> None:
        super().manage_workers()
        if time.monotonic() < self.next_look:
            return
        before = self.store.state()
        self.store.look()
        self.next_look = time.monotonic() + self.interval_s
        if self.store.state() != before:
            log.info("the served models changed: forking fresh workers that share them")
            ready_to_fork()
            for _ in range(self.num_workers):
                self.spawn_worker()
            super().manage_workers()  # stops the oldest workers, gracefully


class PreforkServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, application: FastAPI, settings: Settings, options: dict[str, Any]) -> None:
        self.application = application
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> FastAPI:
        return self.application

    def run(self) -> None:
        FollowingArbiter(self).run()


def serve(application: FastAPI, settings: Settings, host: str, port: int, processes: int) -> None:
    """Load the production models here, then serve them from `processes` forked workers."""
    store: ModelCache = application.state.store
    store.look()  # a registry that cannot be read yet: the parent's loop retries, as a worker's would
    ready_to_fork()
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": processes,
        "worker_class": Worker,
        "preload_app": True,
        "timeout": 120,  # a worker whose event loop stops turning that long is replaced
        "graceful_timeout": 30,
        "keepalive": KEEPALIVE_S,
        "control_socket_disable": True,  # its server is a thread in the parent, which forks
        "logger_class": Logs,
        "loglevel": settings.log_level.lower(),
        "proc_name": "modelyard-api",
        "post_fork": _leave_moves_to_parent,
        "child_exit": _forget_metrics,
    }
    PreforkServer(application, settings, options).run()


def ready_to_fork() -> None:
    """Leave the children as little to copy as possible: garbage collected and handed back, and the
    rest frozen, so that the children's collections never write to the shared objects' headers."""
    gc.collect()
    heap.trim()
    gc.freeze()


def _leave_moves_to_parent(_server: Arbiter, worker: Worker) -> None:
    worker.app.application.state.store.leave_moves_s = LEAVE_MOVES_S


def _forget_metrics(_server: Arbiter, worker: Worker) -> None:
    """A stopped worker's gauges leave /metrics (its counters stay counted)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
