"""The lean path of `POST /v1/models/{name}/predict` (production version), in front of FastAPI's routing.

A request for a production model already loaded, whose body api/decode.py can vouch for, is scored and
answered here: no routing, no dependency injection, no DataFrame, no thread hop for a compiled
model (its microseconds cost less than the hop). A request that is refused (no key, no such model,
a body that is not JSON, too big, or not valid) is refused here too, by the same functions the route
calls (api/records.py), so that a flood of bad requests costs no more than one of good ones. Only
a pinned version or alias (a query string) goes on to the route, its body unread.
"""

import os
import re
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import orjson
from anyio import CapacityLimiter, to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.api.decode import Decoded, RequestDecoders
from modelyard.api.deps import authorized, unauthorized
from modelyard.api.errors import error_response
from modelyard.api.metrics import ApiMetrics
from modelyard.api.microbatch import Arrival, MicroBatcher
from modelyard.api.records import read_records
from modelyard.config import Settings
from modelyard.errors import ModelyardError
from modelyard.logs import request_id
from modelyard.scoring.predict import LoadedModel, Scores, predict, score
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
        name = self._model_name(scope)
        if name is None:
            await self.app(scope, receive, send)
            return
        if not authorized(self.settings, Headers(scope=scope)):
            await error_response(unauthorized())(scope, receive, send)
            return
        # batches of the version served wait for this request while it is read and decoded
        with self._arriving(self.store.production.get(name)) as arrival:
            body = await _read_body(receive)
            if body is None:
                return  # the client left, or the body limit has answered already
            try:
                with self.metrics.track_prediction() as track:
                    model = self.store.get(name)  # the production version: never loads, refuses at once
                    track.serving(model.name, model.version)
                    scores = await self._score(model, body, arrival)
                    track.rows = len(scores)
            except ModelyardError as error:
                await error_response(error)(scope, receive, send)
                return
        await _send_json(send, answer(model, scores))

    def _model_name(self, scope: Scope) -> str | None:
        """The model of a request for its production version, the lean path's requests."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope["query_string"]:
            return None
        match = self.path.match(scope["path"])
        return None if match is None else match.group("name")

    async def _score(self, model: LoadedModel, body: bytes, arrival: Arrival | None) -> Scores:
        # records are objects, so no more than this many braces hold no more records than allowed:
        # decoding is bounded before it starts
        if body.count(b"{") <= self.settings.max_instances + 1:
            decoded = await self._decode(model, body)
            if decoded is not None:
                predictions, probabilities = await self._predict(model, decoded, arrival)
                return Scores(predictions, probabilities, [])
        if arrival is not None:
            arrival.here()  # not for a batch: the full reading scores on its own
        # the full reading, which words every error and warning
        if len(body) <= INLINE_BODY_BYTES:
            table = read_records(body, model, self.settings.max_instances)
        else:
            table = await to_thread.run_sync(
                read_records, body, model, self.settings.max_instances, limiter=self._limiter()
            )
        return await to_thread.run_sync(score, model, table, limiter=self._limiter())

    async def _decode(self, model: LoadedModel, body: bytes) -> Decoded | None:
        decoder = self.decoders.of(model)
        if len(body) <= INLINE_BODY_BYTES:
            return decoder.decode(body)
        # milliseconds of work: in a scoring thread, between scorings, rather than on the loop
        # beside them, where the two would take turns on a core and evict each other's caches
        return await to_thread.run_sync(decoder.decode, body, limiter=self._limiter())

    def _arriving(self, model: LoadedModel | None) -> AbstractContextManager[Arrival | None]:
        """Tells the micro-batcher a request for this version is on its way."""
        return nullcontext() if self.batcher is None or model is None else self.batcher.arriving(model)

    async def _predict(self, model: LoadedModel, decoded: Decoded, arrival: Arrival | None) -> Predictions:
        runtime = model.runtime_for(bulk=False, rows=len(decoded))
        if runtime.name == "onnx" and len(decoded) <= INLINE_ROWS:
            return predict(model, decoded)  # microseconds: a hop to the thread pool costs more
        if self.batcher is not None:
            # scored together with concurrent requests, on the runtime measured faster for the
            # batch's size: scikit-learn's cost per row falls with the batch
            return await self.batcher.predict(model, decoded, arrival)
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
