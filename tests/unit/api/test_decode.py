"""The fast path answers exactly as the full path, or steps aside: whatever it decodes gives the
predictions validation would have given, and every request with a problem or a warning falls to
the full path (decode returns None)."""

import json

import numpy as np
import pytest

from modelyard.api.decode import RequestDecoder
from modelyard.registry.artifacts import describe
from modelyard.registry.schema import InputSchema
from modelyard.scoring.predict import LoadedModel, predict, score
from modelyard.tabular import Table
from tests import factories


def loaded(estimator) -> LoadedModel:
    meta = describe(estimator)
    return LoadedModel("m", 1, estimator, InputSchema.from_dict(meta["input_schema"]), meta)


def body(instances) -> bytes:
    return json.dumps({"instances": instances}).encode()


@pytest.mark.parametrize(
    "estimator", [factories.classifier(), factories.imputing_classifier(), factories.array_regressor()]
)
@pytest.mark.parametrize("rows", [1, 7, 300])
def test_decoded_records_score_as_validated_ones(estimator, rows: int) -> None:
    model = loaded(estimator)
    records = factories.records(rows, seed=rows)
    if estimator is not None and "x0" in model.schema.names:
        records = [{"x0": r["age"], "x1": r["income"], "x2": float(i)} for i, r in enumerate(records)]
    records = [
        {k: v for k, v in r.items() if k in model.schema.names} | {"extra": "ignored"} for r in records
    ]
    if model.schema.features[-1].nullable:
        records[0][model.schema.names[-1]] = None  # a null that the imputer takes
    decoded = RequestDecoder(model.schema).decode(body(records))
    assert decoded is not None and len(decoded) == rows
    fast = predict(model, decoded)
    full = score(model, Table.from_records(records))
    assert np.array_equal(fast[0], full.predictions)
    assert (fast[1] is None and full.probabilities is None) or np.array_equal(fast[1], full.probabilities)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda r: r.pop("age"), "a missing field"),
        (lambda r: r.update(age="41"), "a number sent as a string"),
        (lambda r: r.update(age=True), "a boolean"),
        (lambda r: r.update(age=None), "a null the model cannot take"),
        (lambda r: r.update(color="purple"), "an unknown category (a warning)"),
        (lambda r: r.update(color=3), "a category sent as a number"),
    ],
)
def test_requests_with_a_problem_or_a_warning_take_the_full_path(change, why) -> None:
    model = loaded(factories.classifier())
    records = factories.records(3)
    change(records[1])
    assert RequestDecoder(model.schema).decode(body(records)) is None, why


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b'[{"age": 1}]',
        b'{"instances": []}',
        b'{"records": []}',
        b'{"instances": [[30, 50.0, "red"]]}',
        b'{"instances": [{"age": 1e999, "income": 1, "color": "red"}]}',
        b'\xff{"instances": []}',
    ],
)
def test_bodies_it_cannot_vouch_for(raw: bytes) -> None:
    assert RequestDecoder(loaded(factories.classifier()).schema).decode(raw) is None
