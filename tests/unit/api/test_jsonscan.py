"""The shape read from the bytes is the shape of what json decodes: depth, records and a bound of
the values, whatever strings, escapes and block boundaries hold."""

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.api import jsonscan

TRICKY = st.sampled_from(["[", "]", "{", "}", ",", '"', "\\", '\\"', "\\\\", "[{,", "x"])
TEXT = st.lists(TRICKY, max_size=6).map("".join)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=40,
)


def depth(value: Any) -> int:
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        return 1 + max(map(depth, items), default=0)
    return 0


def records(value: Any) -> int:
    """Arrays and objects two levels in."""
    outer = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return sum(
        isinstance(item, (list, dict))
        for middle in outer
        if isinstance(middle, (list, dict))
        for item in (middle.values() if isinstance(middle, dict) else middle)
    )


def values(value: Any) -> int:
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        return 1 + sum(map(values, items))
    return 1


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
@settings(max_examples=150, deadline=None)
@given(document=DOCUMENTS)
def test_the_shape_is_the_decoded_shape(block: int, document: Any) -> None:
    shape = jsonscan.shape(json.dumps(document).encode(), block)  # boundaries in strings, escapes, runs
    assert shape.depth == depth(document)
    assert shape.records == records(document)
    assert values(document) <= shape.values <= 2 * values(document) + 1


@pytest.mark.parametrize("block", [2, 3, 4, 5])
def test_a_run_of_backslashes_across_a_block_boundary(block: int) -> None:
    for run in range(1, 10):
        text = json.dumps(["\\" * run + '"[[[', [[1]]]).encode()
        assert jsonscan.shape(text, block).depth == 3, text


def test_deep_nesting_costs_no_recursion() -> None:
    assert jsonscan.shape(b"[" * 1_000_000 + b"]" * 1_000_000).depth == 1_000_000


def test_what_is_not_json_still_gets_numbers() -> None:
    assert jsonscan.shape(b"").depth == 0
    assert jsonscan.shape(b"]]]").depth == 0
    assert jsonscan.shape(b'"never closed [[[').depth == 0
