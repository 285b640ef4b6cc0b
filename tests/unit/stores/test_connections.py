from pathlib import Path

import pytest

from modelyard.stores.connections import (
    ConnectionsConfigError,
    MissingSecret,
    StoreNotAllowed,
    load,
)
from modelyard.stores.uris import parse

FILE = """
connections:
  lake:
    type: s3
    endpoint: http://minio:9000
    access_key: {env: LAKE_TEST_ACCESS}
    secret_key: {file: SECRET}
    read: [landing, "shared/daily/", "shared/hourly"]
    write: ["scores/nightly/"]
"""


def connections_file(tmp_path: Path, text: str = FILE, suffix: str = ".yaml") -> Path:
    (tmp_path / "secret").write_text("the-secret\n")
    path = tmp_path / f"connections{suffix}"
    path.write_text(text.replace("SECRET", str(tmp_path / "secret")))
    return path


@pytest.mark.parametrize(
    ("uri", "use", "allowed"),
    [
        ("s3://landing/any/x.csv", "read", True),
        ("s3://landing/any/x.csv", "write", False),
        ("s3://shared/daily/x.csv", "read", True),
        ("s3://shared/daily-other/x.csv", "read", False),  # a prefix is a folder, not a start of name
        ("s3://shared/weekly/x.csv", "read", False),
        ("s3://shared/hourly/x.csv", "read", True),
        ("s3://shared/hourly-old/x.csv", "read", False),
        ("s3://scores/nightly/2026-12-01/", "write", True),
        ("s3://scores/", "write", False),
        ("s3://elsewhere/x.csv", "read", False),
    ],
)
def test_reading_and_writing_are_allowed_separately(
    tmp_path: Path, uri: str, use: str, allowed: bool
) -> None:
    connections = load(connections_file(tmp_path))
    if allowed:
        assert connections.for_uri(parse(uri, "input"), use, "input")[0] == "lake"  # type: ignore[arg-type]
    else:
        with pytest.raises(StoreNotAllowed, match="connections file"):
            connections.for_uri(parse(uri, "input"), use, "input")  # type: ignore[arg-type]


def test_secrets_come_from_the_environment_or_a_file_and_are_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, connection = next(iter(load(connections_file(tmp_path)).named.items()))
    with pytest.raises(MissingSecret, match="LAKE_TEST_ACCESS, which is not set"):
        connection.access_key.value(name, "access key")
    monkeypatch.setenv("LAKE_TEST_ACCESS", "AKIA-from-env")
    assert connection.access_key.value(name, "access key").get_secret_value() == "AKIA-from-env"
    secret = connection.secret_key.value(name, "secret key")
    assert secret.get_secret_value() == "the-secret" and "the-secret" not in repr(secret) + str(secret)


def test_toml_works_as_yaml_does(tmp_path: Path) -> None:
    toml = """
[connections.lake]
type = "s3"
access_key = {env = "A"}
secret_key = {env = "B"}
read = ["landing"]
"""
    connections = load(connections_file(tmp_path, toml, ".toml"))
    assert connections.named["lake"].endpoint == "" and connections.named["lake"].read == ("landing",)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("connections: {lake: {type: s3, secret_key: {env: B}}}", "access_key"),
        ("connections: {lake: {type: s3, access_key: {env: A}, secret_key: {env: B}, key: x}}", "key"),
        ("connections: {lake: {type: s3, access_key: {env: A}, secret_key: {env: B}, read: [Bad]}}", "Bad"),
        ("connections: {lake: {type: s3, access_key: {file: rel/path}, secret_key: {env: B}}}", "absolute"),
        (
            "connections: {a: {type: s3, access_key: {env: A}, secret_key: {env: B}, read: [x1x]},"
            " b: {type: s3, access_key: {env: A}, secret_key: {env: B}, write: [x1x]}}",
            "one connection",
        ),
        ("connections: [", "not valid yaml"),
    ],
)
def test_mistakes_in_the_file_name_the_field(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(ConnectionsConfigError, match=says):
        load(connections_file(tmp_path, text))


def test_no_file_allows_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreNotAllowed, match="no connection allows reading"):
        load(None).for_uri(parse("s3://landing/x.csv", "input"), "read", "input")
