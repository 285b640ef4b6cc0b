"""JSON request bodies read by hand: JSON whatever the Content-Type says (`curl -d` says form), with
the API's own errors for a body that is not JSON, nests too deep, holds too much, or is not the shape
the endpoint takes.

Every JSON body goes through `decode_json`, which reads the body's shape first (api/jsonscan.py) and
refuses it before anything is materialised as Python objects: a body nested deeper than MAX_DEPTH,
or with more records or values than the caller allows. What is left costs, decoded, a bounded
multiple of what the caller allows, whatever the body's size.
"""

import json
from typing import Any, TypeVar

import msgspec
from pydantic import BaseModel, ValidationError

from modelyard.api import jsonscan
from modelyard.api.errors import invalid_request
from modelyard.errors import InvalidRequest, MalformedJSON, PayloadTooLarge

Body = TypeVar("Body", bound=BaseModel)
MAX_DEPTH = 32
"""Levels of arrays and objects: a prediction request needs 3, a job 1."""
MAX_FIELDS = 1000
"""Values in a body that holds no records (a job's)."""


def decode_json(raw: bytes, max_records: int | None = None, max_values: int = MAX_FIELDS) -> Any:
    """The body decoded, once it is known to nest at most MAX_DEPTH levels, to hold at most
    `max_records` records (objects or arrays two levels in, as in {"instances": [{...}]}) when it
    holds records, and at most `max_values` values in all."""
    openers = raw.count(b"[") + raw.count(b"{")  # bounds of the shape, at memchr's speed
    if openers > min(MAX_DEPTH, max_records or MAX_DEPTH) or openers + raw.count(b",") + 1 > max_values:
        _refuse_oversize(jsonscan.shape(raw), max_records, max_values)
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass  # NaN, Infinity and 1e400, which the validation words better; or not JSON: json says where
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedJSON(f"the request body is not valid JSON: {exc}") from exc


def _refuse_oversize(shape: jsonscan.Shape, max_records: int | None, max_values: int) -> None:
    if shape.depth > MAX_DEPTH:
        raise MalformedJSON(
            f"the request body nests {shape.depth} levels of arrays and objects; at most {MAX_DEPTH} are read"
        )
    if max_records is not None and shape.records > max_records:
        raise PayloadTooLarge(
            f"{shape.records} instances in one request; the limit is {max_records} "
            "(MODELYARD_MAX_INSTANCES): split it or use predict-file"
        )
    if shape.values > max_values:
        raise PayloadTooLarge(
            f"the request body holds {shape.values} values; at most {max_values} are read "
            f"({max_records} instances of the model's features, MODELYARD_MAX_INSTANCES)"
            if max_records
            else f"the request body holds {shape.values} values; at most {max_values} are read"
        )


def parse_body(
    raw: bytes, shape: type[Body], max_records: int | None = None, max_values: int = MAX_FIELDS
) -> Body:
    body = decode_json(raw, max_records, max_values)
    if not isinstance(body, dict):
        fields = ", ".join(f'"{name}"' for name in shape.model_fields)
        raise InvalidRequest(
            f"the request body must be a JSON object with {fields}, not {_kind(body)}",
            [{"field": "body", "in": "body", "code": "wrong_type", "message": "expected a JSON object"}],
        )
    try:
        return shape.model_validate(body)
    except ValidationError as exc:
        raise invalid_request([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]) from exc


def _kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def json_body(shape: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that reads `shape` with parse_body."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": shape.model_json_schema()}},
        }
    }
