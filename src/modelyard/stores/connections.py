"""The stores jobs may read from and write to, named in the connections file (MODELYARD_CONNECTIONS).

    connections:                       # connections.yaml ([connections.lake] tables in TOML)
      lake:
        type: s3
        endpoint: http://minio:9000    # empty or left out for AWS
        region: us-east-1
        access_key: {env: LAKE_ACCESS_KEY}          # or {file: /run/secrets/lake_access_key}
        secret_key: {file: /run/secrets/lake_secret_key}
        read: [incoming, "shared/daily/"]           # a bucket, or a bucket and a prefix
        write: ["scores/nightly/"]
      warehouse:
        type: postgresql
        host: db                       # port: 5432 by default
        database: shop
        user: modelyard
        password: {file: /run/secrets/warehouse_password}
        read: [landing]                # schemas
        write: [scores]
        queries:                       # postgresql://warehouse?query=recent_orders
          recent_orders:
            sql: SELECT id, amount, country FROM landing.orders WHERE status = 'open'
            key: [id]

The bucket of an `s3://` URI picks its connection (a bucket belongs to one connection), and the
URI's key must lie under one of the prefixes that connection lists for the use: reading and writing
are allowed separately, so an API caller can copy nothing the credentials reach beyond them. The
file holds where the credentials come from, never the credentials themselves. A `postgresql://`
URI names its connection; the schemas it lists for the use are the only ones jobs reach, and SQL
comes only from this file.
"""

import os
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from modelyard.configfile import ConfigFileError, read_config
from modelyard.errors import InvalidRequest, ModelyardError
from modelyard.stores.uris import BUCKET, IDENTIFIER, ObjectUri, TableUri

Use = Literal["read", "write"]


class ConnectionsConfigError(ModelyardError):
    """The connections file cannot be used as written; nothing that needs it starts."""

    status_code = 503
    code = "connections_config_error"


class StoreNotAllowed(InvalidRequest):
    """A bucket or prefix no connection allows for this use."""

    code = "store_not_allowed"


class MissingSecret(ModelyardError):
    """A credential's environment variable or secret file is not there."""

    status_code = 503
    code = "store_credentials_missing"


class Secret(BaseModel):
    """Where a credential comes from: an environment variable or a file (a Docker secret)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: Path | None = None

    @field_validator("file")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_absolute():
            raise ValueError(f"{value}: give the secret file's absolute path, e.g. /run/secrets/NAME")
        return value

    def value(self, connection: str, what: str) -> SecretStr:
        """Read now, so that a rotated secret is used from the next job on; never logged."""
        if (self.env is None) == (self.file is None):
            raise ConnectionsConfigError(f"connection {connection!r}: {what} needs exactly one of env, file")
        if self.env is not None:
            found = os.environ.get(self.env)
            if not found:
                raise MissingSecret(
                    f"connection {connection!r}: the {what} is read from the environment variable "
                    f"{self.env}, which is not set in this container"
                )
            return SecretStr(found)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text().strip())
        except OSError as exc:
            raise MissingSecret(
                f"connection {connection!r}: the {what} file {self.file} cannot be read "
                f"({exc.strerror or 'unreadable'}); mount it as a Docker secret"
            ) from None


def _places(value: tuple[str, ...]) -> tuple[str, ...]:
    for place in value:
        bucket = place.split("/", 1)[0]
        if not BUCKET.match(bucket) or "//" in place or "/../" in f"/{place}/" or "/./" in f"/{place}/":
            raise ValueError(f"{place!r} is not a bucket, or a bucket and a prefix (bucket/prefix/)")
    return value


class S3Connection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["s3"]
    endpoint: str = ""
    """The S3 API's address, e.g. http://minio:9000; empty for AWS."""
    region: str = "us-east-1"
    access_key: Secret
    secret_key: Secret
    read: tuple[str, ...] = ()
    """Buckets, or bucket/prefix/, whose objects jobs may read."""
    write: tuple[str, ...] = ()
    """Buckets, or bucket/prefix/, where jobs may write."""

    _places = field_validator("read", "write")(_places)

    def allows(self, uri: ObjectUri, use: Use) -> bool:
        """Whether the URI (an object, or every object under a prefix) lies where `use` is allowed."""
        target = f"{uri.bucket}/{uri.key}"
        for place in self.read if use == "read" else self.write:
            bucket, _, prefix = place.partition("/")
            folder = (
                prefix if not prefix or prefix.endswith("/") else prefix + "/"
            )  # a folder, not a name start
            if bucket == uri.bucket and target.startswith(f"{bucket}/{folder}"):
                return True
        return False

    def buckets(self) -> set[str]:
        return {place.partition("/")[0] for place in [*self.read, *self.write]}


def _names(value: tuple[str, ...]) -> tuple[str, ...]:
    for name in value:
        if not IDENTIFIER.match(name):
            raise ValueError(f"{name!r} is not a name of letters, digits and '_' (at most 63)")
    return value


class NamedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sql: str = Field(min_length=1)
    """One SELECT; jobs read its rows as they read a table's."""
    key: tuple[str, ...] = Field(min_length=1)
    """The columns that identify a row: a query has no primary key to fall back on."""

    _key = field_validator("key")(_names)


class PostgresConnection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["postgresql"]
    host: str = Field(min_length=1)
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    password: Secret
    read: tuple[str, ...] = ()
    """Schemas whose tables jobs may read."""
    write: tuple[str, ...] = ()
    """Schemas where jobs may write tables (and their staging, errors and ledger tables)."""
    queries: dict[Annotated[str, Field(pattern=IDENTIFIER.pattern)], NamedQuery] = {}

    _schemas = field_validator("read", "write")(_names)

    def allows(self, uri: TableUri, use: Use) -> bool:
        if uri.query:
            return use == "read" and uri.query in self.queries
        return uri.schema in (self.read if use == "read" else self.write)


Connection = Annotated[S3Connection | PostgresConnection, Field(discriminator="type")]


class ConnectionsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connections: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")], Connection] = {}


class Connections:
    """The named connections, and which one a URI goes through."""

    def __init__(self, named: dict[str, S3Connection | PostgresConnection], origin: str) -> None:
        self.named = named
        self.origin = origin
        self._by_bucket: dict[str, str] = {}
        for name, connection in named.items():
            if not isinstance(connection, S3Connection):
                continue
            for bucket in connection.buckets():
                other = self._by_bucket.setdefault(bucket, name)
                if other != name:
                    raise ConnectionsConfigError(
                        f"{origin}: bucket {bucket!r} is listed by connections {other!r} and {name!r}; "
                        "a bucket belongs to one connection"
                    )

    def for_uri(self, uri: ObjectUri, use: Use, what: str) -> tuple[str, S3Connection]:
        """The connection that allows `use` of the URI, else a refusal (422) that says how to allow it."""
        name = self._by_bucket.get(uri.bucket)
        connection = self.named.get(name) if name else None
        if not isinstance(connection, S3Connection) or not connection.allows(uri, use):
            where = f"connection {name!r}" if name else "no connection"
            raise StoreNotAllowed(
                f"{what} {uri}: {where} allows {'reading' if use == 'read' else 'writing'} there; "
                f"list the bucket or prefix under `{use}` in the connections file ({self.origin})"
            )
        return name, connection  # type: ignore[return-value]

    def for_table(self, uri: TableUri, use: Use, what: str) -> PostgresConnection:
        """The PostgreSQL connection the URI names, if it allows `use` there; else a refusal (422)."""
        connection = self.named.get(uri.connection)
        if not isinstance(connection, PostgresConnection):
            raise StoreNotAllowed(
                f"{what} {uri}: no PostgreSQL connection {uri.connection!r} in the connections file "
                f"({self.origin})"
            )
        if not connection.allows(uri, use):
            place = f"query {uri.query!r}" if uri.query else f"schema {uri.schema!r}"
            fix = (
                f"write it under `queries` in the connections file ({self.origin})"
                if uri.query
                else f"list the schema under `{use}` in the connections file ({self.origin})"
            )
            raise StoreNotAllowed(
                f"{what} {uri}: connection {uri.connection!r} allows no "
                f"{'reading' if use == 'read' else 'writing'} of {place}; {fix}"
            )
        return connection


def load(path: Path | None) -> Connections:
    """The connections file's connections (none without a file); any mistake names the field."""
    if path is None:
        return Connections({}, "MODELYARD_CONNECTIONS is not set")
    return _load(path, path.stat().st_mtime_ns if path.exists() else 0)


@cache
def _load(path: Path, _mtime_ns: int) -> Connections:
    """Read once per content: the file is re-read when it changes (its mtime is in the cache key)."""
    try:
        data = read_config(path)
    except ConfigFileError as exc:
        raise ConnectionsConfigError(f"the connections file {exc}") from exc
    try:
        parsed = ConnectionsFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise ConnectionsConfigError(f"the connections file {path}: field {field!r}: {message}") from None
    return Connections(parsed.connections, str(path))
