"""How a driver's failures reach users: our own errors, never the driver's text; retried only when
the store did not answer."""

import pytest

from modelyard.stores import errors as store_errors
from modelyard.stores import s3
from modelyard.stores.uris import parse

URI = parse("s3://landing/x.csv", "input")
DRIVER_TEXT = "AWS Error ACCESS_DENIED during HeadObject operation: key AKIASECRETID, request 1234"


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (
            FileNotFoundError("Path does not exist 'landing/x.csv'"),
            store_errors.StoreObjectNotFound,
            "store_object_not_found",
        ),
        (OSError(DRIVER_TEXT), store_errors.StoreAccessDenied, "store_access_denied"),
        (OSError("SIGNATUREDOESNOTMATCH 403"), store_errors.StoreAccessDenied, "store_access_denied"),
        (OSError("NOSUCHBUCKET 404"), store_errors.StoreObjectNotFound, "store_object_not_found"),
        (
            OSError("AWS Error NETWORK_CONNECTION during HeadObject: curlCode: 7"),
            store_errors.StoreUnavailable,
            "store_unavailable",
        ),
    ],
)
def test_driver_errors_become_ours(error: Exception, kind: type, code: str) -> None:
    ours = s3.translated(error, "lake", URI, "reading")
    assert isinstance(ours, kind) and ours.code == code
    assert "lake" in ours.message and str(URI) in ours.message
    assert "AKIASECRETID" not in ours.message and "AWS Error" not in ours.message


def test_only_a_store_that_does_not_answer_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(s3.time, "sleep", waits.append)
    calls = []

    def down() -> None:
        calls.append(1)
        raise OSError("AWS Error NETWORK_CONNECTION: Could not connect to server")

    with pytest.raises(store_errors.StoreUnavailable):
        s3.retried(down, "lake", URI, "reading")
    assert len(calls) == s3.RETRIES and waits == [1.0, 2.0, 4.0, 8.0]

    calls.clear()
    answers = iter([OSError("NETWORK_CONNECTION"), "read"])

    def blip() -> str:
        calls.append(1)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert s3.retried(blip, "lake", URI, "reading") == "read" and len(calls) == 2

    calls.clear()

    def refused() -> None:
        calls.append(1)
        raise OSError(DRIVER_TEXT)

    with pytest.raises(store_errors.StoreAccessDenied) as caught:
        s3.retried(refused, "lake", URI, "reading")
    assert len(calls) == 1 and caught.value.__cause__ is None  # the driver's error is not chained either
