"""Reading S3 objects through pyarrow's own S3 file system, and what its failures mean to a user.

A driver's error text can carry request ids, endpoints and, from some servers, the access key id:
it is never passed on. Every failure becomes one of three errors of our own, whose message names the
connection, the bucket and the key, and what to check.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast
from urllib.parse import urlsplit

from modelyard.errors import ModelyardError
from modelyard.formats import SUFFIXES
from modelyard.stores.connections import S3Connection
from modelyard.stores.errors import StoreAccessDenied, StoreObjectNotFound, StoreUnavailable
from modelyard.stores.uris import ObjectUri

if TYPE_CHECKING:  # imported where used: the API's processes load it only when a job names a store
    import pyarrow.fs as pafs

log = logging.getLogger(__name__)

RETRIES = 5
"""Attempts at a call whose store did not answer, with doubling waits: about 30 s in all."""
FIRST_WAIT_S = 1.0
READ_BYTES = 8 << 20
"""Bytes per ranged GET of a CSV or JSON Lines object: few requests, little memory."""
T = TypeVar("T")


@dataclass(frozen=True)
class StoredObject:
    """An input object as a job fixed it at submission: the same bytes are read on every retry."""

    key: str
    size: int
    etag: str
    format: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def _filesystem(address: str, region: str, access_key: str, secret_key: str) -> pafs.S3FileSystem:
    import pyarrow.fs as pafs

    endpoint = urlsplit(address) if address else None
    return pafs.S3FileSystem(
        access_key=access_key,
        secret_key=secret_key,
        region=region,
        endpoint_override=endpoint.netloc if endpoint else None,
        scheme=endpoint.scheme if endpoint else "https",
        connect_timeout=5,
        request_timeout=30,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    )


def filesystem(name: str, connection: S3Connection) -> pafs.S3FileSystem:
    """pyarrow's S3 file system for a connection, with the credentials as they are now."""
    access = connection.access_key.value(name, "access key").get_secret_value()
    secret = connection.secret_key.value(name, "secret key").get_secret_value()
    return _filesystem(connection.endpoint, connection.region, access, secret)


def translated(exc: BaseException, name: str, uri: ObjectUri | str, doing: str) -> ModelyardError:
    """Our own error for a driver's failure; its text is read for the kind, never passed on."""
    text = str(exc).upper()
    if isinstance(exc, FileNotFoundError) or "NO_SUCH" in text or "NOSUCH" in text or "404" in text:
        return StoreObjectNotFound(f"{uri}: no such bucket or object (connection {name!r})")
    if any(word in text for word in ("ACCESS_DENIED", "SIGNATURE", "INVALID_ACCESS_KEY", "FORBIDDEN", "403")):
        return StoreAccessDenied(
            f"{doing} {uri}: the store refused connection {name!r}'s credentials or rights; check the "
            "access key and secret it reads, and the bucket's policy"
        )
    return StoreUnavailable(
        f"{doing} {uri}: the store of connection {name!r} did not answer; check its endpoint and that "
        "it is running"
    )


def retried(call: Callable[[], T], name: str, uri: ObjectUri | str, doing: str, attempts: int = RETRIES) -> T:
    """The call's result; a store that does not answer is tried again with backoff, and a refusal
    or a missing object is not (it would answer the same)."""
    wait = FIRST_WAIT_S
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ModelyardError:
            raise
        except (OSError, ValueError) as exc:
            error = translated(exc, name, uri, doing)
            if not isinstance(error, StoreUnavailable) or attempt == attempts:
                raise error from None
            log.warning(
                "store did not answer: retrying",
                extra={"connection": name, "uri": str(uri), "attempt": attempt, "wait_s": wait},
            )
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable")


def head(fs: pafs.S3FileSystem, name: str, uri: ObjectUri, attempts: int = RETRIES) -> StoredObject:
    """One object's size and ETag (from the store's HEAD), refused when it is missing."""

    def call() -> StoredObject:
        with fs.open_input_file(uri.path) as handle:
            meta = handle.metadata()
            size = handle.size()
        etag = meta.get("ETag", meta.get("etag", b"")).decode(errors="replace").strip('"')
        return StoredObject(uri.key, size, etag, SUFFIXES.get(_suffix(uri.key), ""))

    return retried(call, name, uri, "reading", attempts)


def listed(fs: pafs.S3FileSystem, name: str, uri: ObjectUri, attempts: int = RETRIES) -> list[StoredObject]:
    """The CSV, Parquet and JSON Lines objects under a prefix, in key order, with their ETags; keys
    whose last part starts with '_' or '.' (markers, hidden parts) are skipped."""
    import pyarrow.fs as pafs

    if not bucket_exists(fs, name, uri, attempts):
        raise StoreObjectNotFound(f"{uri}: no such bucket (connection {name!r})")
    selector = pafs.FileSelector(uri.path, recursive=True, allow_not_found=True)
    infos = retried(lambda: fs.get_file_info(selector), name, uri, "listing", attempts)
    keys = sorted(
        info.path.split("/", 1)[1]
        for info in infos
        if info.type == pafs.FileType.File
        and not info.base_name.startswith(("_", "."))
        and _suffix(info.path) in SUFFIXES
        and not _hidden_folder(info.path.split("/", 1)[1], uri.key)
    )
    return [head(fs, name, ObjectUri(uri.bucket, key), attempts) for key in keys]


def _hidden_folder(key: str, prefix: str) -> bool:
    """Whether the key lies in a folder, below the prefix, whose name starts with '_' or '.'."""
    inner = key[len(prefix) :].split("/")[:-1]
    return any(part.startswith(("_", ".")) for part in inner)


def _suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return name[name.rfind(".") :].lower() if "." in name else ""


def exists(fs: pafs.S3FileSystem, name: str, uri: ObjectUri, attempts: int = RETRIES) -> bool:
    import pyarrow.fs as pafs

    info = retried(lambda: fs.get_file_info(uri.path), name, uri, "reading", attempts)
    return bool(info.type == pafs.FileType.File)


def bucket_exists(fs: pafs.S3FileSystem, name: str, uri: ObjectUri, attempts: int = RETRIES) -> bool:
    import pyarrow.fs as pafs

    info = retried(lambda: fs.get_file_info(uri.bucket), name, uri, "reading", attempts)
    return bool(info.type == pafs.FileType.Directory)


class ObjectReader(io.RawIOBase):
    """An object as a seekable file: each read is a ranged GET at the position we hold, retried
    with backoff when the store does not answer, so a blip mid-job does not fail it."""

    def __init__(self, fs: pafs.S3FileSystem, name: str, uri: ObjectUri) -> None:
        self.name_, self.uri = name, uri
        self._file = retried(lambda: fs.open_input_file(uri.path), name, uri, "reading")
        self.size = self._file.size()
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = min(len(view), self.size - self._position)
        if count <= 0:
            return 0
        position = self._position
        data = retried(lambda: self._file.read_at(count, position), self.name_, self.uri, "reading")
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def open_object(fs: pafs.S3FileSystem, name: str, uri: ObjectUri, buffered: bool = True) -> BinaryIO:
    """A handle on one object: buffered for CSV and JSON Lines, which read on line by line; raw for
    Parquet, which reads the column chunks it needs at their offsets."""
    raw = ObjectReader(fs, name, uri)
    return cast(BinaryIO, io.BufferedReader(raw, buffer_size=READ_BYTES) if buffered else raw)
