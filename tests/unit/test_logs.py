import json
import logging
from collections.abc import Iterator

import pytest

from modelyard.logs import configure_logging, request_id


@pytest.fixture
def json_logs() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_each_line_is_json_with_the_request_id(json_logs, capsys) -> None:
    configure_logging("info")  # in the test: the handler writes to the stdout capsys captures
    token = request_id.set("req-42")
    try:
        logging.getLogger("modelyard.test").info("scored", extra={"rows": 3})
    finally:
        request_id.reset(token)
    logging.getLogger("uvicorn.error").warning("outside a request", extra={"color_message": "\x1b[1m"})
    logging.getLogger("modelyard.test").debug("below the level")

    first, second = lines(capsys)
    assert first["request_id"] == "req-42" and first["message"] == "scored" and first["rows"] == 3
    assert first["level"] == "INFO" and first["logger"] == "modelyard.test" and "time" in first
    assert second["request_id"] is None and second["level"] == "WARNING"
    assert "color_message" not in second  # uvicorn's terminal copy of the message is dropped
