"""The fast path of `POST /v1/models/{name}/predict`, in front of FastAPI's routing.

A request for a production model already loaded, whose body api/decode.py can vouch for, is scored and
answered here: no routing, no dependency injection, no DataFrame, no thread hop for a compiled
model (its microseconds cost less than the hop). Everything else (a pinned version or alias, a model
not loaded yet, a missing key, any body that is not valid as sent) goes on to the route, with the
body replayed, which validates every record and words every error and warning. So this never
answers differently, only sooner.
"""

import os
import re
from typing import Any

import orjson
from anyio import CapacityLimiter, to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.api.decode import Decoded, RequestDecoders
from modelyard.api.deps import authorized
from modelyard.api.errors import error_response
from modelyard.api.metrics import ApiMetrics
from modelyard.api.microbatch import MicroBatcher
from modelyard.config import Settings
from modelyard.errors import ModelyardError
from modelyard.logs import request_id
from modelyard.scoring.predict import LoadedModel, Scores, predict
from modelyard.scoring.runtimes import Predictions
from modelyard.serving.cache import ModelCache

INLINE_ROWS = 64
"""Up to this many rows, the compiled runtime scores on the event loop itself."""
INLINE_BODY_BYTES = 64 * 1024
"""Bodies up to this size are decoded on the event loop (about 100 records of 20 numbers)."""
JSON_HEADERS = [(b"content-type", b"application/json")]


class FastPredictMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        store: ModelCache,
        metrics: ApiMetrics,
        batcher: MicroBatcher | None,
        path: re.Pattern[str],
    ) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.batcher = batcher
        self.path = path
        """The predict route's own path pattern, with its `name` parameter."""
        self.decoders = RequestDecoders()
        self.limiter: CapacityLimiter | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = self._served(scope)
        if model is None:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client left, or the body limit has answered already
        decoded = await self._decode(model, body)
        if decoded is None or len(decoded) > self.settings.max_instances:
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            with self.metrics.track_prediction() as track:
                track.serving(model.name, model.version)
                predictions, probabilities = await self._predict(model, decoded)
                track.rows = len(predictions)
        except ModelyardError as error:
            await error_response(error)(scope, receive, send)
            return
        await _send_json(send, answer(model, Scores(predictions, probabilities, [])))

    def _served(self, scope: Scope) -> LoadedModel | None:
        """The production model this request is for, if loaded and the request may take the fast path."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope["query_string"]:
            return None
        match = self.path.match(scope["path"])
        if match is None or not authorized(self.settings, Headers(scope=scope)):
            return None
        return self.store.production.get(match.group("name"))

    async def _decode(self, model: LoadedModel, body: bytes) -> Decoded | None:
        decoder = self.decoders.of(model)
        if len(body) <= INLINE_BODY_BYTES:
            return decoder.decode(body)
        # milliseconds of work: in a scoring thread, between scorings, rather than on the loop
        # beside them, where the two would take turns on a core and evict each other's caches
        return await to_thread.run_sync(decoder.decode, body, limiter=self._limiter())

    async def _predict(self, model: LoadedModel, decoded: Decoded) -> Predictions:
        runtime = model.runtime_for(bulk=False)
        if runtime.name == "onnx" and len(decoded) <= INLINE_ROWS:
            return predict(model, decoded)  # microseconds: a hop to the thread pool costs more
        if self.batcher is not None and runtime.name == "sklearn":
            return await self.batcher.predict(model, decoded)
        return await to_thread.run_sync(predict, model, decoded, limiter=self._limiter())

    def _limiter(self) -> CapacityLimiter:
        """At most one scoring thread per core: more only take turns on it, and evict each other's
        trees from its cache."""
        if self.limiter is None:  # made on the event loop, which anyio needs
            self.limiter = CapacityLimiter(len(os.sched_getaffinity(0)))
        return self.limiter


def answer(model: LoadedModel, scores: Scores) -> dict[str, Any]:
    """The JSON answer to a prediction request (PredictResponse)."""
    content: dict[str, Any] = {"model": model.name, "version": model.version, **scores.as_json()}
    if model.classes is not None:
        content["classes"] = model.classes
    content["warnings"] = scores.warnings
    content["request_id"] = request_id.get()
    return content


async def _send_json(send: Send, content: dict[str, Any]) -> None:
    body = orjson.dumps(content)
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read, then whatever comes next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
