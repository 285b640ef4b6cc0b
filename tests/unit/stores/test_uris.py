import pytest

from modelyard.errors import InvalidPath
from modelyard.stores.uris import ObjectUri, is_object_uri, parse


def test_an_object_and_a_prefix() -> None:
    assert parse("s3://landing/2026/a.csv", "input") == ObjectUri("landing", "2026/a.csv")
    prefix = parse("s3://landing/2026/", "input")
    assert prefix.is_prefix and prefix.path == "landing/2026" and prefix.name == "2026"
    assert parse("s3://landing", "input").is_prefix and parse("s3://landing/", "input").key == ""
    assert str(prefix.under("part-00000.csv")) == "s3://landing/2026/part-00000.csv"
    assert str(parse("s3://b-1/x/y.csv", "output").beside("y.errors.jsonl")) == "s3://b-1/x/y.errors.jsonl"
    assert str(parse("s3://b-1/y.csv", "output").beside("y.errors.jsonl")) == "s3://b-1/y.errors.jsonl"
    assert is_object_uri("S3://x/y") and not is_object_uri("incoming/s3://x")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("s3://AKIAEXAMPLE:s3cr3t@landing/x.csv", "never credentials"),
        ("s3://landing:9000/x.csv", "never credentials"),
        ("s3://Landing/x.csv", "not a bucket name"),
        ("s3://ab/x.csv", "not a bucket name"),
        ("s3://landing/a/../b.csv", "'..'"),
        ("s3://landing/a//b.csv", "empty"),
        ("s3://landing/./b.csv", "'.'"),
        ("s3://landing/a\nb.csv", "control characters"),
    ],
)
def test_uris_that_are_refused(text: str, says: str) -> None:
    with pytest.raises(InvalidPath, match=says) as refused:
        parse(text, "input")
    assert "s3cr3t" not in refused.value.message and "AKIAEXAMPLE" not in refused.value.message
