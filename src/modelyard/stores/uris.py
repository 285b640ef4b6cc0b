"""Object URIs as jobs and schedules write them: `s3://BUCKET/KEY` (one object) and
`s3://BUCKET/PREFIX/` (every object under it). Anything else is a path on the data volume.

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
