"""Every error the API returns has one shape: {"error": {"code", "message", "details"}}."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException

from modelyard.api.schemas import ErrorResponse
from modelyard.batch import queue
from modelyard.errors import InvalidRequest, MalformedJSON, ModelyardError, QueueUnavailable, Unauthorized

HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}


def error_response(error: ModelyardError, headers: dict[str, str] | None = None) -> JSONResponse:
    _forget_frames(error)
    if error.status_code == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(error.to_dict(), status_code=error.status_code, headers=headers)


def _forget_frames(error: BaseException | None) -> None:
    """Drops the tracebacks of an error that is answered: their frames hold the request's body, and
    an error raised in a worker thread sits in a reference cycle with the future that carried it,
    which only the cyclic collector frees, a few hundred allocations later. A refused 100 MB body
    would otherwise outlive its answer, and a few of them pile up."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


async def _modelyard_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ModelyardError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(invalid_request(list(exc.errors())))


def invalid_request(errors: list[Any]) -> ModelyardError:
    """Pydantic's errors of a request (their `loc` starting with where: body, query, path) as ours."""
    if any(error["type"] == "json_invalid" for error in errors):
        reason = errors[0].get("ctx", {}).get("error", "invalid JSON")
        return MalformedJSON(f"the request body is not valid JSON: {reason}")
    details = [
        {
            "field": ".".join(str(part) for part in error["loc"][1:]) or error["loc"][0],
            "in": error["loc"][0],
            "code": error["type"],
            "message": error["msg"],
        }
        for error in errors
    ]
    first = details[0]
    message = f"invalid request: {first['in']} field {first['field']!r}: {first['message']}"
    return InvalidRequest(message, details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    message = str(exc.detail)
    if exc.status_code == 405:
        allowed = allowed_methods(request) or headers.get("Allow", "")
        headers["Allow"] = allowed
        message = f"{request.method} is not allowed on {request.url.path}: it takes {allowed or 'none'}"
    error = ModelyardError(message)
    error.status_code = exc.status_code
    error.code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(error, headers)


def allowed_methods(request: Request) -> str:
    """Every method the request's path takes, for a 405's Allow header. Starlette names those of
    the first route whose path matches, though routes of the same path after it take others (GET
    and DELETE /v1/jobs/{job_id}): the path is the first match's, its methods those of every route
    of that path. Empty for a mount (static files), which names its own."""
    path = request.scope["path"].removeprefix(request.scope.get("root_path", ""))
    template: str | None = None
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is None or not regex.match(path):
            continue
        if route.methods is None:  # a mount
            if template is None:
                return ""
            continue
        template = template or route.path
        if route.path == template:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _queue_down(request: Request, exc: Exception) -> JSONResponse:
    return error_response(queue.unavailable(request.app.state.settings.redis_url, exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ModelyardError, _modelyard_error)
    for redis_down in queue.REDIS_DOWN:
        app.add_exception_handler(redis_down, _queue_down)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


QUEUE_ERRORS = (Unauthorized, QueueUnavailable, InvalidRequest)
"""What any endpoint that reads or writes the queue can answer."""


def documented(*errors: type[ModelyardError]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of an endpoint that can fail with these errors: the one envelope,
    with the codes each status may carry."""
    codes: dict[int, list[str]] = {}
    for error in errors:
        codes.setdefault(error.status_code, []).append(
            f"{error.code} ({error.when})" if error.when else error.code
        )
    return {
        status: {
            "model": ErrorResponse,
            "description": f"{HTTPStatus(status).phrase}: {', '.join(sorted(set(found)))}",
        }
        for status, found in sorted(codes.items())
    }
