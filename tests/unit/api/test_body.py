"""One decoder for every JSON body: what it refuses before decoding, and what it decodes as Python's
json would."""

import math

import pytest

from modelyard.api.body import MAX_DEPTH, decode_json
from modelyard.errors import MalformedJSON, PayloadTooLarge


def test_nesting_up_to_the_limit_and_past_it() -> None:
    assert decode_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(MalformedJSON, match=r"nests 33 levels of arrays and objects; at most 32 are read"):
        decode_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


def test_records_and_values_past_their_limits() -> None:
    body = b'{"instances": [' + b",".join([b'{"a": 1}'] * 11) + b"]}"
    assert len(decode_json(body, max_records=11, max_values=100)["instances"]) == 11
    with pytest.raises(PayloadTooLarge, match=r"^11 instances in one request; the limit is 10 "):
        decode_json(body, max_records=10, max_values=100)
    with pytest.raises(PayloadTooLarge, match=r"holds 24 values; at most 20 are read"):
        decode_json(body, max_records=11, max_values=20)
    with pytest.raises(PayloadTooLarge, match=r"holds 1001 values; at most 1000 are read$"):
        decode_json(b"[" + b",".join([b"1"] * 1000) + b"]")  # a body without records: a job's


def test_what_msgspec_refuses_python_reads() -> None:
    decoded = decode_json(b'[NaN, Infinity, -Infinity, 1e400, "\\ud800", {"a": 1, "a": 2}]')
    assert math.isnan(decoded[0]) and decoded[1:4] == [math.inf, -math.inf, math.inf]
    assert decoded[4:] == ["\ud800", {"a": 2}]


@pytest.mark.parametrize(
    ("body", "where"),
    [(b'{"a": [1,]}', "line 1 column 10"), (b"", "line 1 column 1"), (b"\xff", "can't decode byte 0xff")],
)
def test_not_json_says_where(body: bytes, where: str) -> None:
    with pytest.raises(MalformedJSON, match=r"^the request body is not valid JSON: ") as caught:
        decode_json(body)
    assert where in caught.value.message
