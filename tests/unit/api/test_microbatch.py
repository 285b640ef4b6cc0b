"""Micro-batching: requests that arrive together are scored in one call, and each still gets its own
answer, or its own error."""

import asyncio
import json

import numpy as np
import pytest

from modelyard.api import microbatch
from modelyard.api.decode import RequestDecoder
from modelyard.api.microbatch import MicroBatcher
from modelyard.errors import InvalidInput
from modelyard.registry.artifacts import describe
from modelyard.registry.schema import InputSchema
from modelyard.scoring.predict import LoadedModel, predict
from tests import factories


def loaded(estimator) -> LoadedModel:
    meta = describe(estimator)
    return LoadedModel("m", 1, estimator, InputSchema.from_dict(meta["input_schema"]), meta)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of every scoring call the batcher makes."""
    made: list[int] = []

    def counted(model, features):
        made.append(len(features))
        return predict(model, features)

    monkeypatch.setattr(microbatch, "predict", counted)
    return made


def decode(model: LoadedModel, records) -> object:
    decoded = RequestDecoder(model.schema).decode(json.dumps({"instances": records}).encode())
    assert decoded is not None
    return decoded


async def together(batcher: MicroBatcher, model: LoadedModel, requests: list) -> list:
    return await asyncio.gather(*(batcher.predict(model, r) for r in requests), return_exceptions=True)


def test_requests_that_arrive_while_a_batch_is_scored_make_the_next_batch(calls: list[int]) -> None:
    model = loaded(factories.slow_classifier(seconds=0.1))
    requests = [decode(model, factories.records(rows, seed=rows)) for rows in (1, 3, 1, 2, 1, 5, 1, 1)]

    async def arrive() -> list:
        batcher = MicroBatcher(max_rows=1000)
        first = asyncio.create_task(batcher.predict(model, requests[0]))
        await asyncio.sleep(0.05)  # the first is being scored
        return [await first, *await together(batcher, model, requests[1:])]

    answers = asyncio.run(arrive())
    assert calls == [1, 14]  # the first alone, the seven that came while it was scored together
    for request, (labels, probabilities) in zip(requests, answers, strict=True):
        alone_labels, alone_probabilities = predict(model, request)
        assert np.array_equal(labels, alone_labels) and np.array_equal(probabilities, alone_probabilities)


def test_batches_hold_at_most_max_rows(calls: list[int]) -> None:
    model = loaded(factories.classifier())
    requests = [decode(model, factories.records(2, seed=i)) for i in range(6)] + [
        decode(model, factories.records(9))  # more than max_rows: scored on its own
    ]
    asyncio.run(together(MicroBatcher(max_rows=4), model, requests))
    assert calls == [4, 4, 4, 9]


def test_a_bad_request_in_a_batch_fails_alone(calls: list[int]) -> None:
    model = loaded(factories.classifier())
    good = factories.records(2)
    bad = [{"age": 30, "income": 1e300, "color": "red"}]  # valid JSON, but beyond float32
    requests = [decode(model, good), decode(model, good), decode(model, bad), decode(model, good)]
    answers = asyncio.run(together(MicroBatcher(max_rows=100), model, requests))
    assert isinstance(answers[2], InvalidInput) and answers[2].details[0]["code"] == "out_of_range"
    for index in (0, 1, 3):
        assert np.array_equal(answers[index][0], predict(model, requests[index])[0])
    assert calls == [7, 2, 2, 1, 2]  # together, which fails; then one by one


def test_a_wait_gathers_requests_that_come_a_little_later(calls: list[int]) -> None:
    model = loaded(factories.classifier())

    async def staggered() -> None:
        batcher = MicroBatcher(max_rows=100, max_wait_s=0.05)
        first = asyncio.create_task(batcher.predict(model, decode(model, factories.records(1))))
        await asyncio.sleep(0.01)
        await asyncio.gather(first, batcher.predict(model, decode(model, factories.records(1, seed=4))))

    asyncio.run(staggered())
    assert calls == [2]


def test_a_batch_waits_for_requests_still_being_decoded_but_not_forever(calls: list[int]) -> None:
    model = loaded(factories.classifier())
    requests = [decode(model, factories.records(rows, seed=rows)) for rows in (2, 3)]

    async def decoded_later(batcher: MicroBatcher, request, seconds: float):
        with batcher.arriving(model):
            await asyncio.sleep(seconds)  # a big body decoded in a thread
        return await batcher.predict(model, request)

    async def arrive(seconds: float) -> list:
        batcher = MicroBatcher(max_rows=1000)
        late = asyncio.create_task(decoded_later(batcher, requests[1], seconds))
        await asyncio.sleep(0)  # the second is being decoded when the first is ready
        return [await batcher.predict(model, requests[0]), await late]

    asyncio.run(arrive(0.002))
    assert calls == [5]  # one batch: the first waited for the second
    calls.clear()
    asyncio.run(arrive(microbatch.ARRIVAL_WAIT_S * 5))
    assert calls == [2, 3]  # not for longer than ARRIVAL_WAIT_S


BIG = microbatch.BIG_ROWS


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ((BIG, BIG + 1, BIG + 2, BIG + 3), [2 * BIG + 1, 2 * BIG + 5]),  # the second batch waited
        ((1, 2, 3, 4), [3, 3, 4]),  # small requests wait for no one who is not on the way
    ],
)
def test_big_requests_wait_for_as_many_as_the_last_batch_held(calls: list[int], rows, expected) -> None:
    model = loaded(factories.classifier())
    requests = [decode(model, factories.records(count, seed=count)) for count in rows]

    async def later(batcher: MicroBatcher, request, seconds: float):
        await asyncio.sleep(seconds)  # a client just answered, coming back
        return await batcher.predict(model, request)

    async def arrive() -> None:
        batcher = MicroBatcher(max_rows=10_000)
        await together(batcher, model, requests[:2])  # a batch of two
        await asyncio.gather(batcher.predict(model, requests[2]), later(batcher, requests[3], 0.003))

    asyncio.run(arrive())
    assert calls == expected
