"""Places in stores as jobs and schedules write them: `s3://BUCKET/KEY` (one object),
`s3://BUCKET/PREFIX/` (every object under it), and `postgresql://CONNECTION/SCHEMA.TABLE` or
`postgresql://CONNECTION?query=NAME` (a table, a named query). Anything else is a path on the data
volume.

A URI is checked before any connection is looked up: no credentials in it (they come only from the
connections file), no `.` or `..` segments (some servers normalise them, which would step out of an
allowed prefix), and a bucket name as S3 defines it.
"""

import re
from dataclasses import dataclass

from modelyard.errors import InvalidPath

SCHEME = "s3://"
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def is_object_uri(text: str) -> bool:
    return text.lower().startswith(SCHEME)


@dataclass(frozen=True)
class ObjectUri:
    bucket: str
    key: str
    """The object's key; for a prefix, empty or ending with '/'."""

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    @property
    def path(self) -> str:
        """As pyarrow's file system names it."""
        return f"{self.bucket}/{self.key}".rstrip("/")

    @property
    def name(self) -> str:
        """The last part of the key: an object's file name, or a prefix's last folder."""
        return self.key.rstrip("/").rsplit("/", 1)[-1] or self.bucket

    def under(self, name: str) -> "ObjectUri":
        """An object under this prefix."""
        return ObjectUri(self.bucket, self.key + name)

    def beside(self, name: str) -> "ObjectUri":
        """An object in the same folder as this one."""
        folder = self.key.rpartition("/")[0]
        return ObjectUri(self.bucket, f"{folder}/{name}" if folder else name)

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def parse(text: str, what: str) -> ObjectUri:
    """The URI's bucket and key; refused (422) with a message that never repeats a credential."""
    if not is_object_uri(text):
        raise InvalidPath(f"{what} is not an s3:// URI")
    rest = text[len(SCHEME) :]
    bucket, _, key = rest.partition("/")
    if "@" in bucket or ":" in bucket:
        raise InvalidPath(
            f"{what}: an s3:// URI names a bucket, never credentials or a host; they come from the "
            "connections file (MODELYARD_CONNECTIONS)"
        )
    if not BUCKET.match(bucket):
        raise InvalidPath(f"{what} {text!r}: {bucket!r} is not a bucket name (3-63 of a-z, 0-9, '.', '-')")
    segments = key.split("/")
    inner = segments[:-1] if key.endswith("/") else segments
    if key and any(segment in ("", ".", "..") for segment in inner):
        raise InvalidPath(f"{what} {text!r}: a key with an empty, '.' or '..' part is not taken")
    if "\x00" in key or any(ord(c) < 32 for c in key):
        raise InvalidPath(f"{what} {text!r}: a key with control characters is not taken")
    return ObjectUri(bucket, key)


TABLE_SCHEME = "postgresql://"
CONNECTION = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
"""A connection's name, as the connections file allows it."""
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
"""A schema, table or column name jobs may use: quoted as an identifier wherever it goes into SQL."""


def is_table_uri(text: str) -> bool:
    return text.lower().startswith(TABLE_SCHEME)


@dataclass(frozen=True)
class TableUri:
    """`postgresql://CONNECTION/SCHEMA.TABLE`, or `postgresql://CONNECTION?query=NAME` (a query
    written in the connections file: SQL never comes from a request)."""

    connection: str
    schema: str = ""
    table: str = ""
    query: str = ""

    def beside(self, table: str) -> "TableUri":
        """Another table in the same schema."""
        return TableUri(self.connection, self.schema, table)

    def __str__(self) -> str:
        if self.query:
            return f"{TABLE_SCHEME}{self.connection}?query={self.query}"
        return f"{TABLE_SCHEME}{self.connection}/{self.schema}.{self.table}"


def parse_table(text: str, what: str) -> TableUri:
    """The URI's connection and table or query; refused (422) without repeating what a pasted
    connection string may carry (a user, a password, a host)."""
    if not is_table_uri(text):
        raise InvalidPath(f"{what} is not a postgresql:// URI")
    rest = text[len(TABLE_SCHEME) :]
    authority, _, path = rest.partition("/")
    authority, _, options = authority.partition("?")
    if not CONNECTION.match(authority):
        raise InvalidPath(
            f"{what}: a postgresql:// URI names a connection of the connections file "
            "(postgresql://CONNECTION/SCHEMA.TABLE), never a user, password, host or port"
        )
    if options and not path:
        name = options.removeprefix("query=")
        if not options.startswith("query=") or not IDENTIFIER.match(name):
            raise InvalidPath(f"{what}: give a named query as postgresql://{authority}?query=NAME")
        return TableUri(authority, query=name)
    schema, dot, table = path.partition(".")
    if not dot or not IDENTIFIER.match(schema) or not IDENTIFIER.match(table):
        raise InvalidPath(
            f"{what}: postgresql://{authority}/... must name SCHEMA.TABLE, each a name of letters, digits "
            "and '_' (at most 63), e.g. postgresql://warehouse/public.customers"
        )
    return TableUri(authority, schema, table)
