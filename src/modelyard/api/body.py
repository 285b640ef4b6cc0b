"""JSON request bodies read by hand: JSON whatever the Content-Type says (`curl -d` says form), with
the API's own errors for a body that is not JSON or not the shape the endpoint takes."""

import json
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from modelyard.errors import InvalidRequest, MalformedJSON

Body = TypeVar("Body", bound=BaseModel)


def parse_body(raw: bytes, shape: type[Body]) -> Body:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedJSON(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        fields = ", ".join(f'"{name}"' for name in shape.model_fields)
        raise InvalidRequest(
            f"the request body must be a JSON object with {fields}, not {_kind(body)}",
            [{"field": "body", "in": "body", "code": "wrong_type", "message": "expected a JSON object"}],
        )
    try:
        return shape.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc


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
