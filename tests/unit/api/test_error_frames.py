"""An answered error lets go of the request it refused at once, not when the cyclic collector
next runs: its traceback's frames hold the body."""

import gc
import weakref

from modelyard.api.errors import error_response
from modelyard.errors import MalformedJSON


class Body:
    """Stands for a request's bytes (which cannot be weakly referenced)."""


def refuse(body: Body) -> None:
    try:
        raise ValueError("not JSON")
    except ValueError as exc:
        raise MalformedJSON("the request body is not valid JSON") from exc


def test_the_body_is_freed_when_its_error_is_answered() -> None:
    body = Body()
    alive = weakref.ref(body)
    gc.disable()
    try:
        try:
            refuse(body)
        except MalformedJSON as error:
            caught = error
        caught.__cause__.__context__ = caught  # a cycle in the chain must not loop forever
        cycle = [caught]
        caught.args = (cycle,)  # the exception in a cycle, as with the future that carried it
        del body
        assert alive() is not None  # the traceback's frame holds it
        error_response(caught)
        assert alive() is None
    finally:
        gc.enable()
