"""Plain ASGI middleware: request ids, access logs, the last-resort error handler and the body limit."""

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.api.errors import error_response
from modelyard.errors import ModelyardError, PayloadTooLarge
from modelyard.logs import request_id

log = logging.getLogger("modelyard.access")
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PROBES = {"/healthz", "/readyz"}
"""Logged at DEBUG when they succeed: Compose and Kubernetes ask every few seconds."""


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-ID if sane), echoes it, logs the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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


class BodySizeLimitMiddleware:
    """Refuses a request body over the limit with 413, before reading more of it than the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}
        """Paths allowed more, e.g. batch uploads."""

    def _too_large(self, limit: int, setting: str) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is over the limit of {limit / 1024 / 1024:g} MB "
            f"({setting}); split the file or raise the limit"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_bytes)
        setting = "MODELYARD_MAX_JOB_UPLOAD_MB" if scope["path"] in self.larger else "MODELYARD_MAX_UPLOAD_MB"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await error_response(self._too_large(limit, setting))(scope, receive, send)
            return
        received, refused = 0, False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await error_response(self._too_large(limit, setting))(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the 413 has been sent already
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not refused:
                raise
