"""Micro-batching: concurrent requests to the same model version are scored in one call.

One scikit-learn `predict_proba` of 32 rows costs about what one row does (the per-call work
dominates), so requests that arrive while a batch is being scored wait for the next batch, which
takes them all (up to `max_rows` rows) in one call in the thread pool. A lone request waits for no
one unless `max_wait_s` says to, or requests for the same version are still being read or decoded
(big bodies are decoded in a thread): a batch waits for those, up to ARRIVAL_WAIT_S, since scikit-learn
scores 4,000 rows in little more time than 1,000 and a batch started without them leaves them for a
batch of their own. A batch is scored by the runtime measured faster for its size
(`LoadedModel.runtime_for`), so big requests batched together may go to scikit-learn where single
ones go to the compiled graph. Answers stay per request: if the joint call fails, each request is
scored on its own, so one bad request gets its own error and its neighbours their predictions.
"""

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from modelyard.api.decode import Decoded
from modelyard.scoring.predict import LoadedModel, predict
from modelyard.scoring.runtimes import Predictions


@dataclass
class _Waiting:
    features: Decoded
    answer: asyncio.Future[Predictions]


ARRIVAL_WAIT_S = 0.01
BIG_ROWS = 100
"""A request this big costs milliseconds to score: waiting a few for others to join costs less than
scoring it alone."""


@dataclass
class _Line:
    """The requests waiting for one model version, and whether a batch of theirs is being scored."""

    waiting: deque[_Waiting] = field(default_factory=deque)
    arriving: int = 0
    """Requests being read or decoded, which may wait here next."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    last: int = 0
    """Requests in the last batch."""
    busy: bool = False
    task: asyncio.Task[None] | None = None
    """The task scoring them (held here: the event loop keeps only a weak reference)."""


class Arrival:
    """A request on its way to a line: counted in `arriving` until it is there (or gone)."""

    def __init__(self, line: _Line) -> None:
        self.line = line
        self.pending = True
        line.arriving += 1

    def here(self) -> None:
        if self.pending:
            self.pending = False
            self.line.arriving -= 1
            self.line.changed.set()


class MicroBatcher:
    def __init__(
        self, max_rows: int, max_wait_s: float = 0.0, on_batch: Callable[[str, int], None] | None = None
    ) -> None:
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        """Told the model's name and how many requests each batch holds (for the metrics)."""
        self._lines: dict[tuple[str, int], _Line] = {}

    @contextmanager
    def arriving(self, model: LoadedModel) -> Iterator["Arrival"]:
        """Around the reading and decoding of a request that may be `predict`ed next: batches of its
        version wait for it until it is predicted (given to `predict`) or gone."""
        arrival = Arrival(self._line(model))
        try:
            yield arrival
        finally:
            arrival.here()

    def _line(self, model: LoadedModel) -> _Line:
        return self._lines.setdefault((model.name, model.version), _Line())

    async def predict(
        self, model: LoadedModel, features: Decoded, arrival: "Arrival | None" = None
    ) -> Predictions:
        line = self._line(model)
        answer: asyncio.Future[Predictions] = asyncio.get_running_loop().create_future()
        line.waiting.append(_Waiting(features, answer))
        if arrival is not None:
            arrival.here()
        line.changed.set()
        if not line.busy:
            line.busy = True
            line.task = asyncio.create_task(self._drain(model, line))
        return await answer

    async def _drain(self, model: LoadedModel, line: _Line) -> None:
        try:
            while line.waiting:
                if self.max_wait_s and _rows(line.waiting) < self.max_rows:
                    await asyncio.sleep(self.max_wait_s)
                await self._arrivals(line)
                batch = self._take(line.waiting)
                line.last = len(batch)
                if self.on_batch:
                    self.on_batch(model.name, len(batch))
                results = await run_in_threadpool(_predict_each, model, [w.features for w in batch])
                for waiting, result in zip(batch, results, strict=True):
                    if waiting.answer.done():
                        continue  # the client went away
                    if isinstance(result, BaseException):
                        waiting.answer.set_exception(result)
                    else:
                        waiting.answer.set_result(result)
        finally:
            line.busy = False

    async def _arrivals(self, line: _Line) -> None:
        """Until the requests being read or decoded are waiting too, the batch is full, or
        ARRIVAL_WAIT_S. Big requests also wait for as many as the last batch held: their clients,
        just answered, are about to come back, and a batch started without them leaves the clients
        in two groups that take turns for good."""
        deadline = asyncio.get_running_loop().time() + ARRIVAL_WAIT_S
        while _rows(line.waiting) < self.max_rows and (
            line.arriving or (_big(line.waiting) and len(line.waiting) < line.last)
        ):
            line.changed.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(line.changed.wait(), left)

    def _take(self, waiting: deque[_Waiting]) -> list[_Waiting]:
        batch = [waiting.popleft()]
        rows = len(batch[0].features)
        while waiting and rows + len(waiting[0].features) <= self.max_rows:
            rows += len(waiting[0].features)
            batch.append(waiting.popleft())
        return batch


def _big(waiting: deque[_Waiting]) -> bool:
    return bool(waiting) and len(waiting[0].features) >= BIG_ROWS


def _rows(waiting: deque[_Waiting]) -> int:
    return sum(len(w.features) for w in waiting)


def _predict_each(model: LoadedModel, parts: list[Decoded]) -> list[Predictions | BaseException]:
    """One call for every part; if it fails, one call per part, so that only the culprit fails."""
    if len(parts) > 1:
        try:
            predictions, probabilities = predict(model, _joined(parts))
        except Exception:
            pass
        else:
            bounds = np.cumsum([0, *(len(part) for part in parts)])
            return [
                (
                    predictions[start:end],
                    None if probabilities is None else probabilities[start:end],
                )
                for start, end in itertools.pairwise(bounds)
            ]
    results: list[Predictions | BaseException] = []
    for part in parts:
        try:
            results.append(predict(model, part))
        except Exception as exc:
            results.append(exc)
    return results


def _joined(parts: list[Decoded]) -> Decoded:
    first = parts[0]
    return Decoded(
        first.names,
        np.concatenate([part.numbers for part in parts]),
        first.number_columns,
        {name: np.concatenate([part.texts[name] for part in parts]) for name in first.texts},
    )
