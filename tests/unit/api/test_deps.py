"""The API key is read by one rule, for the routes and for the fast path in front of them."""

import pytest
from starlette.datastructures import Headers

from modelyard.api.decode import RequestDecoders
from modelyard.api.deps import authorized
from modelyard.config import Settings
from modelyard.registry.artifacts import describe
from modelyard.registry.schema import InputSchema
from modelyard.scoring.predict import LoadedModel
from tests import factories


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ([(b"authorization", b"Bearer s3cret")], True),
        ([(b"authorization", b"bearer  s3cret ")], True),
        ([(b"x-api-key", b"s3cret")], True),
        ([(b"authorization", b"Basic s3cret"), (b"x-api-key", b"s3cret")], True),
        ([(b"authorization", b"Bearer wrong"), (b"x-api-key", b"s3cret")], False),
        ([(b"authorization", b"Basic s3cret")], False),
        ([(b"authorization", b"Bearer")], False),
        ([(b"x-api-key", b"")], False),
        ([], False),
    ],
)
def test_the_key_is_taken_from_either_header(headers: list, allowed: bool) -> None:
    settings = Settings(_env_file=None, api_key="s3cret")
    assert authorized(settings, Headers(raw=headers)) is allowed


def test_without_a_key_everything_is_allowed() -> None:
    assert authorized(Settings(_env_file=None), Headers(raw=[]))


def test_one_decoder_per_model_rebuilt_when_its_version_changes() -> None:
    estimator = factories.classifier()
    meta = describe(estimator)
    schema = InputSchema.from_dict(meta["input_schema"])
    decoders = RequestDecoders()
    first = decoders.of(LoadedModel("m", 1, estimator, schema, meta))
    assert decoders.of(LoadedModel("m", 1, estimator, schema, meta)) is first
    promoted = decoders.of(LoadedModel("m", 2, estimator, schema, meta))
    assert promoted is not first
    assert decoders.of(LoadedModel("m", 2, estimator, schema, meta)) is promoted
