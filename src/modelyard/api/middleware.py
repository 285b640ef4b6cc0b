"""Plain ASGI middleware: request ids, access logs, the last-resort error handler and the body limits."""

import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.api import memory
from modelyard.api.errors import error_response
from modelyard.errors import ModelyardError, PayloadTooLarge, ServerBusy
from modelyard.logs import request_id

log = logging.getLogger("modelyard.access")
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PROBES = {"/healthz", "/readyz"}
"""Logged at DEBUG when they succeed: Compose and Kubernetes ask every few seconds."""
RETRY = {"Retry-After": "1"}
RELEASE_AFTER_BYTES = 8 * 1024 * 1024
"""Bodies this big leave freed memory behind that is worth handing back to the system."""


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-ID if sane), echoes it, logs the request,
    and tells `on_response` its status."""

    def __init__(self, app: ASGIApp, on_response: Callable[[int], None] | None = None) -> None:
        self.app = app
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        rid = given if VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        status, started = 500, time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"path": scope["path"]})
            if status == 500:  # nothing sent yet: answer with a JSON error instead of dropping it
                error = ModelyardError(f"internal error; quote request id {rid} when reporting it")
                await error_response(error)(scope, receive, send_with_id)
        finally:
            if self.on_response is not None:
                self.on_response(status)
            quiet = scope["path"] in PROBES and status < 400  # a healthcheck every few seconds
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id.reset(token)


class BodyLimitMiddleware:
    """Two bounds on the request bodies a process holds in memory.

    One body: over its path's limit, 413 before more than the limit is read. All bodies at once: past
    `budget` bytes in flight, 503 server_busy with Retry-After, instead of memory growing with the
    number of clients; a request alone is always taken (its own limit bounds it). Paths allowed more
    (`larger`, batch uploads) stream to disk and are outside the budget. When a burst of big bodies
    is over, the process hands its freed memory back to the system (api/memory.py)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, budget: int, larger: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.budget = budget
        self.larger = larger or {}
        """Paths allowed more, e.g. batch uploads."""
        self.held = 0
        """Bytes of the bodies being read or served now (the event loop is one thread: no lock)."""
        self.after_bursts = memory.AfterBursts()

    def _too_large(self, limit: int, setting: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is over the limit of {limit / 1024 / 1024:g} MB "
            f"({setting}); split the file or raise the limit"
        )

    def _busy(self) -> ServerBusy:
        return ServerBusy(
            f"the server holds {self.held / 1024 / 1024:.0f} MB of requests, its budget "
            f"(MODELYARD_MAX_INFLIGHT_MB is {self.budget / 1024 / 1024:g}); try again in a second"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        size = int(declared) if declared.isdigit() else 0
        try:
            size = await self._limited(scope, receive, send, size)
        finally:
            if size >= RELEASE_AFTER_BYTES:
                self.after_bursts.big_request_ended()

    async def _limited(self, scope: Scope, receive: Receive, send: Send, size: int) -> int:
        """Serves the request within the limits; returns the size of its body, as far as it is known."""
        streamed = scope["path"] in self.larger
        limit = self.larger.get(scope["path"], self.max_bytes)
        setting = "MODELYARD_MAX_JOB_UPLOAD_MB" if streamed else "MODELYARD_MAX_UPLOAD_MB"
        if size > limit:
            await error_response(self._too_large(limit, setting))(scope, receive, send)
            return size
        if not streamed and self._over_budget(size):
            await error_response(self._busy(), RETRY)(scope, receive, send)
            return size
        received, held, refused, answered = 0, 0 if streamed else size, False, False
        self.held += held

        def let_go() -> None:
            """The body's share of the budget given back, once: when the answer is complete (the
            client may send its next request before the app has returned)."""
            nonlocal answered
            if not answered:
                answered = True
                self.held -= held

        async def limited_receive() -> Message:
            nonlocal received, held, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                error: ModelyardError | None = None
                headers = None
                if received > limit:
                    error = self._too_large(limit, setting)
                elif received > held and not streamed and not answered:  # no Content-Length, or a longer body
                    if self._over_budget(received - held):
                        error, headers = self._busy(), RETRY
                    self.held += received - held
                    held = received
                if error is not None:
                    refused = True
                    await error_response(error, headers)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if refused:  # the 413 or 503 has been sent already
                return
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                let_go()
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise
        finally:
            let_go()
        return max(size, received)

    def _over_budget(self, size: int) -> bool:
        return self.held > 0 and self.held + size > self.budget
